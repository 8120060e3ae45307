"""Self-checks proving the test lab works, using only the plain ssh client, chroot and sockets."""

from __future__ import annotations

import base64
import os
import runpy
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .chroot_tree import BINARIES, build_chroot, tree_digest
from .netfail import HangingServer, closed_port
from .sshlab import SSHD, SSHLab, make_lab_root

LOGIN_DEFS = Path("/etc/login.defs")
CHROOT = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin")
ADDRESSES = {"alpha": "127.0.0.11", "beta": "127.0.0.12", "gamma": "127.0.0.13"}


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


def _require_sshd_lab() -> None:
    _require_root()
    for tool in ("unshare", "ssh", "ssh-keygen", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    if not SSHD.exists():
        pytest.skip("needs openssh-server (/usr/sbin/sshd)")
    if not LOGIN_DEFS.is_file():
        pytest.skip(f"needs a real {LOGIN_DEFS} to bind over")


def _login_defs(name: str) -> str:
    return f"# lab host {name}\nPASS_MAX_DAYS {len(name) * 10}\nUMASK 027\n"


def _real_tmp_options() -> str:
    return subprocess.run(["findmnt", "-no", "OPTIONS", "/tmp"], capture_output=True, text=True).stdout


def _mountinfo() -> list[str]:
    # Any mount leaking out of a lab namespace would change this table.
    return Path("/proc/self/mountinfo").read_text().splitlines()


@pytest.fixture(scope="module")
def real_login_defs() -> bytes:
    """The machine's /etc/login.defs before any lab started."""
    _require_sshd_lab()
    return LOGIN_DEFS.read_bytes()


@pytest.fixture(scope="module")
def lab(real_login_defs: bytes) -> Iterator[SSHLab]:
    """Three hosts that differ in /etc/login.defs, /tmp options, processes and sshd options."""
    root = make_lab_root()
    lab = SSHLab(root)
    lab.add_host(
        "alpha",
        ADDRESSES["alpha"],
        files={str(LOGIN_DEFS): _login_defs("alpha")},
        tmp_mount_options="nosuid,nodev,noexec",
    )
    lab.add_host(
        "beta",
        ADDRESSES["beta"],
        files={
            str(LOGIN_DEFS): _login_defs("beta"),
            "/etc/hds-lab-only/created.conf": "made in the overlay\n",
        },
        processes=("auditd", "rest-server --append-only --path /srv/restic"),
        overlays=("/etc",),
        absent=("/etc/hostname",),
        sshd_config_extra="Match Address 10.0.0.0/8\n    PermitRootLogin yes\n",
    )
    lab.add_host(
        "gamma",
        ADDRESSES["gamma"],
        files={str(LOGIN_DEFS): _login_defs("gamma")},
        sshd_options={"PermitRootLogin": "yes"},
    )
    try:
        with lab:
            yield lab
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _ssh_ok(lab: SSHLab, name: str, command: str) -> str:
    result = lab.ssh(name, command)
    assert result.returncode == 0, f"{name}: {command!r} -> {result.returncode}\n{result.stderr}"
    return result.stdout


# -- SSH lab -----------------------------------------------------------------------------------


def test_each_host_sees_its_own_login_defs(lab: SSHLab, real_login_defs: bytes) -> None:
    for name in ADDRESSES:
        assert _ssh_ok(lab, name, f"cat {LOGIN_DEFS}") == _login_defs(name)
    assert LOGIN_DEFS.read_bytes() == real_login_defs


def test_overlay_creates_and_hides_paths_in_the_host_only(lab: SSHLab) -> None:
    assert _ssh_ok(lab, "beta", "cat /etc/hds-lab-only/created.conf") == "made in the overlay\n"
    assert lab.ssh("beta", "test -e /etc/hostname").returncode == 1
    assert lab.ssh("alpha", "test -e /etc/hostname").returncode == 0
    assert not Path("/etc/hds-lab-only").exists() and Path("/etc/hostname").exists()


def test_process_with_arguments_and_match_block(lab: SSHLab) -> None:
    out = _ssh_ok(
        lab, "beta", "for p in /proc/[0-9]*; do cat $p/comm; tr '\\000' ' ' < $p/cmdline; echo; done"
    )
    assert "rest-server\n" in out and "rest-server --append-only --path /srv/restic" in out
    config = _ssh_ok(lab, "beta", f"sshd -T -C addr=10.1.2.3,user=x,host=y -f {lab.sshd_config_path('beta')}")
    assert "permitrootlogin yes" in config


def test_tmp_noexec_only_on_configured_host(lab: SSHLab) -> None:
    real = _real_tmp_options()
    seen = {name: _ssh_ok(lab, name, "findmnt -no OPTIONS /tmp || true") for name in ADDRESSES}
    assert "noexec" in seen["alpha"].strip().split(",")
    assert seen["beta"] == real
    assert seen["gamma"] == real
    assert _real_tmp_options() == real


def test_auditd_runs_only_on_configured_host(lab: SSHLab) -> None:
    comms = {name: _ssh_ok(lab, name, "cat /proc/*/comm").split() for name in ADDRESSES}
    assert "auditd" in comms["beta"]
    assert "auditd" not in comms["alpha"]
    assert "auditd" not in comms["gamma"]
    assert _ssh_ok(lab, "beta", "pidof auditd").strip().isdigit()


def test_running_daemon_uses_its_host_options(lab: SSHLab) -> None:
    # In its PID namespace the listening sshd is PID 1; its cmdline is setproctitle'd into one
    # space-separated string, so the -f path is cut out of it in the shell.
    script = (
        "cmd=$(tr '\\0' ' ' </proc/1/cmdline); echo \"$cmd\"; "
        "conf=${cmd#* -f }; conf=${conf%% *}; "
        "/usr/sbin/sshd -T -f \"$conf\" | grep -i '^permitrootlogin '"
    )
    expected = {"alpha": "without-password", "beta": "without-password", "gamma": "yes"}
    for name, value in expected.items():
        cmdline, setting = _ssh_ok(lab, name, script).splitlines()
        assert "[listener]" in cmdline
        assert f" -f {lab.sshd_config_path(name)} " in cmdline + " "
        assert setting == f"permitrootlogin {value}"


def test_known_hosts_and_inventory(lab: SSHLab, tmp_path: Path) -> None:
    lines = lab.known_hosts.read_text().splitlines()
    expected = sorted(f"[{address}]:{lab.port}" for address in ADDRESSES.values())
    assert sorted(line.split()[0] for line in lines) == expected
    assert all(line.split()[1] == "ssh-ed25519" for line in lines)
    inventory = lab.write_inventory(tmp_path / "inv.py", host_data={"beta": {"role": "db"}})
    groups = runpy.run_path(str(inventory))
    hosts = dict(groups["lab"])
    assert list(hosts) == list(ADDRESSES)
    assert hosts["beta"]["role"] == "db"
    assert hosts["alpha"] == {
        "ssh_hostname": ADDRESSES["alpha"],
        "ssh_port": lab.port,
        "ssh_user": "root",
        "ssh_key": str(lab.client_key),
        "ssh_known_hosts_file": str(lab.known_hosts),
        "ssh_strict_host_key_checking": "yes",
    }


def test_stop_leaves_no_trace(real_login_defs: bytes) -> None:
    mounts_before = _mountinfo()
    tmp_before = _real_tmp_options()
    root = make_lab_root()
    try:
        lab = SSHLab(root)
        lab.add_host(
            "solo",
            "127.0.0.21",
            files={str(LOGIN_DEFS): "solo\n"},
            tmp_mount_options="noexec",
            processes=("chronyd",),
        )
        with lab:
            assert _ssh_ok(lab, "solo", f"cat {LOGIN_DEFS}") == "solo\n"
            assert LOGIN_DEFS.read_bytes() == real_login_defs
        assert LOGIN_DEFS.read_bytes() == real_login_defs
        assert _mountinfo() == mounts_before
        assert _real_tmp_options() == tmp_before
        leftovers = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if str(root).encode() in (proc / "cmdline").read_bytes():
                    leftovers.append(proc.name)
            except OSError:
                continue
        assert leftovers == []
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.21", lab.port))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_add_host_refuses_to_create_real_paths() -> None:
    _require_sshd_lab()
    root = make_lab_root()
    try:
        lab = SSHLab(root)
        with pytest.raises(ValueError, match="not an existing regular file"):
            lab.add_host("x", "127.0.0.31", files={"/etc/hds-lab-does-not-exist": "x"})
        with pytest.raises(ValueError, match="not an existing directory"):
            lab.add_host("y", "127.0.0.32", dirs={"/etc/hds-lab-does-not-exist.d": {}})
        assert not Path("/etc/hds-lab-does-not-exist").exists()
        # Paths inside the host's private tmpfs may be new: they only exist in its namespace.
        lab.add_host("z", "127.0.0.33", files={"/tmp/hds-lab-new/file": "x"}, tmp_mount_options="")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with pytest.raises(ValueError, match="/tmp"):
        SSHLab(Path("/tmp/hds-lab-bad-root"))


# -- chroot tree -------------------------------------------------------------------------------

OS_RELEASE = (
    'PRETTY_NAME="HDS Lab Linux 12"\nNAME="HDS Lab Linux"\nVERSION_ID="12"\nID=hdslab\nID_LIKE=debian\n'
)


@pytest.fixture(scope="module")
def chroot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chroot tree with an /etc/os-release."""
    _require_root()
    if CHROOT is None:
        pytest.skip("needs chroot")
    return build_chroot(tmp_path_factory.mktemp("chroot") / "root", {"/etc/os-release": OS_RELEASE})


def _chroot(root: Path, script: str) -> str:
    assert CHROOT is not None
    result = subprocess.run(
        [CHROOT, str(root), "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_chroot_reads_files(chroot_root: Path) -> None:
    out = _chroot(chroot_root, "cat /etc/os-release | base64 | head -c 100; stat -c %a /etc/os-release")
    assert out == base64.encodebytes(OS_RELEASE.encode()).decode()[:100] + "644\n"


def test_chroot_binaries_work(chroot_root: Path) -> None:
    for name in BINARIES:
        if shutil.which(name, path="/usr/bin:/bin") is not None:
            assert os.path.lexists(chroot_root / "usr/bin" / name), name
    script = (
        "awk -F= '$1==\"ID\"{print $2}' /etc/os-release; grep -c NAME /etc/os-release; "
        "find /etc -name os-release; sed -n 1p /etc/os-release | cut -c1-11; "
        "ls /etc | sort | uniq | wc -l; bash -c 'echo bash ok'; timeout 5 true && echo timeout ok; "
        "printf abc | od -An -c | tr -d ' '; id -u; ls /proc | wc -l; echo x 2>/dev/null >/dev/null"
    )
    out = _chroot(chroot_root, script)
    assert out.splitlines() == [
        "hdslab",
        "2",
        "/etc/os-release",
        "PRETTY_NAME",
        "1",
        "bash ok",
        "timeout ok",
        "abc",
        "0",
        "0",
    ]


def test_tree_digest_detects_only_real_changes(chroot_root: Path) -> None:
    before = tree_digest(chroot_root)
    assert before["/etc/os-release"][0] == "file"
    assert before["/usr/bin/awk"][0] == "symlink"
    assert before["/tmp"][1] == 0o1777
    _chroot(chroot_root, "cat /etc/os-release >/dev/null; ls -la / /etc /tmp >/dev/null; stat /etc/*")
    assert tree_digest(chroot_root) == before
    _chroot(chroot_root, "echo scan-was-here > /tmp/marker")
    after = tree_digest(chroot_root)
    assert set(after) - set(before) == {"/tmp/marker"}
    assert after["/tmp"] != before["/tmp"]
    (chroot_root / "tmp/marker").unlink()


# -- network failures --------------------------------------------------------------------------


def test_closed_port_refuses() -> None:
    port = closed_port()
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))


def test_hanging_server_accepts_and_stays_silent() -> None:
    with HangingServer("127.0.0.41") as server:
        assert server.address == "127.0.0.41"
        with socket.create_connection((server.address, server.port), timeout=2) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"SSH-2.0-probe\r\n")
            with pytest.raises(TimeoutError):
                sock.recv(1)
            deadline = time.monotonic() + 2
            while server.accepted < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.accepted == 1
    started = time.monotonic()
    server.stop()  # idempotent
    assert time.monotonic() - started < 1
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect((server.address, server.port))
