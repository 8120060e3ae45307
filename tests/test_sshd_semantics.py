"""sshd judged as sshd judges: each case is a configuration tree whose verdict a text match of sshd_config
gets wrong, collected with the probe's own snippets and judged by the real ``sshd -T`` (OpenSSH 9.2 here).
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from facts.record import run
from sshd_trees import DEBIAN_STOCK, collect, enter, have_sshd, host_key, judge, make_tree

from hds_compliance.check import FactUnavailable, HostInfo
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.facts.base import ABSENT, FactError
from hds_compliance.facts.sshd import SshdEffectiveConfig, SshdHostKeys, SshdMatchConfig, _first_round
from hds_compliance.facts.sshkeys import PublicKeyError, public_key_size
from hds_compliance.model import Capture, Status

pytestmark = pytest.mark.skipif(
    not have_sshd() or os.geteuid() != 0, reason="needs root, openssh-server and unshare"
)

SSHD = SshdEffectiveConfig()
HOST_KEYS = SshdHostKeys()


def _effective(tmp_path: Path, config: str, dropins: dict[str, str] | None = None) -> dict[str, Capture]:
    files = {"sshd_config": config, **{f"sshd_config.d/{k}": v for k, v in (dropins or {}).items()}}
    return collect(enter(make_tree(tmp_path, files)))


def test_a_match_block_that_reopens_root_login_fails_naming_the_block(tmp_path: Path) -> None:
    """Text match: 'PermitRootLogin no' is the only global line -> pass. sshd: yes for 10.0.0.0/8 -> fail."""
    captures = _effective(
        tmp_path,
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin no\n"
        "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n",
    )
    outcome = judge("sshd.root_login_disabled", captures)
    assert outcome.status is Status.FAIL, outcome.message
    assert "PermitRootLogin is yes" in outcome.message
    assert "/etc/ssh/sshd_config for connections matching 'Match Address 10.0.0.0/8'" in outcome.message
    assert "addr=10.0.0.1" in outcome.message  # the connection sshd was asked about


def test_first_value_wins_inside_a_match_block(tmp_path: Path) -> None:
    """Text match of the last line: 'PasswordAuthentication yes' -> fail. sshd keeps the first value: no."""
    captures = _effective(
        tmp_path,
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "Match User alice\n  PasswordAuthentication no\n  PasswordAuthentication yes\n",
    )
    outcome = judge("sshd.password_authentication_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message
    assert "its 1 Match block" in outcome.message


def test_match_all_overrides_the_global_value(tmp_path: Path) -> None:
    """Text match: the global 'X11Forwarding no' -> pass. sshd: a Match block's value beats the global one."""
    captures = _effective(
        tmp_path,
        "HostKey /etc/ssh/ssh_host_ed25519_key\nX11Forwarding no\nAllowTcpForwarding no\n"
        "AllowAgentForwarding no\nAllowStreamLocalForwarding no\nMatch all\n  X11Forwarding yes\n",
    )
    outcome = judge("sshd.forwarding_disabled", captures)
    assert outcome.status is Status.FAIL, outcome.message
    assert "x11forwarding yes" in outcome.message


def test_a_drop_in_read_first_wins_over_sshd_config(tmp_path: Path) -> None:
    """Text match of sshd_config: 'PasswordAuthentication yes' -> fail. sshd reads the Include first: no."""
    captures = _effective(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n",
        {"10-hds.conf": "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"},
    )
    outcome = judge("sshd.password_authentication_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message


def test_a_drop_in_can_reopen_what_sshd_config_closes(tmp_path: Path) -> None:
    """Text match of sshd_config: 'PermitRootLogin no' -> pass. The drop-in, read first, says yes."""
    captures = _effective(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin no\n",
        {"50-cloud-init.conf": "PermitRootLogin yes\n"},
    )
    outcome = judge("sshd.root_login_disabled", captures)
    assert outcome.status is Status.FAIL and "PermitRootLogin is yes" in outcome.message


def test_disable_forwarding_turns_off_what_sshd_T_still_prints(tmp_path: Path) -> None:
    """sshd -T prints 'allowtcpforwarding yes' under DisableForwarding yes: a reader of that line fails."""
    captures = _effective(tmp_path, "HostKey /etc/ssh/ssh_host_ed25519_key\nDisableForwarding yes\n")
    assert "allowtcpforwarding yes" in captures["sshd"].stdout
    outcome = judge("sshd.forwarding_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message
    assert "DisableForwarding yes" in outcome.message
    gateway = judge("sshd.gateway_ports_disabled", captures)
    assert gateway.status is Status.PASS


def test_a_bastion_relays_proxyjump_locally_and_to_listed_destinations_only(tmp_path: Path) -> None:
    """A bastion that relays ssh -J needs TCP forwarding: it passes only with ``AllowTcpForwarding local``
    (no remote forwarding) and a PermitOpen that lists destinations; sshd -T prints ``permitopen any``
    when none is set, so a text match of "AllowTcpForwarding local" alone would pass a bastion that opens
    to any address. A drop-in read first that says "yes" wins over the main file's "local"."""
    base = "HostKey /etc/ssh/ssh_host_ed25519_key\nX11Forwarding no\nAllowAgentForwarding no\n"
    listed = "AllowTcpForwarding local\nPermitOpen 10.0.2.11:22 10.0.2.12:22\n"
    trees = {
        "relay": _effective(tmp_path / "relay", base + listed),
        "any": _effective(tmp_path / "any", base + "AllowTcpForwarding local\n"),
        "remote": _effective(tmp_path / "remote", base + "AllowTcpForwarding yes\nPermitOpen 10.0.2.11:22\n"),
        "dropin": _effective(
            tmp_path / "dropin",
            "Include /etc/ssh/sshd_config.d/*.conf\n" + base + listed,
            {"10-open.conf": "AllowTcpForwarding yes\n"},
        ),
    }
    assert "permitopen any" in trees["any"]["sshd"].stdout
    bastion = HostInfo(name="bastion1", connector="ssh", roles=("bastion",))
    database = HostInfo(name="db1", connector="ssh", roles=("database",))

    def status(tree: str, host: HostInfo) -> tuple[Status, str]:
        outcome = judge("sshd.forwarding_disabled", trees[tree], host, relay_roles=["bastion"])
        return outcome.status, outcome.message

    relayed = status("relay", bastion)
    assert relayed[0] is Status.PASS and "to 10.0.2.11:22 10.0.2.12:22 (ProxyJump relay)" in relayed[1]
    assert status("relay", database)[0] is Status.FAIL  # a data host relays nothing
    assert status("any", bastion)[0] is Status.FAIL and "it is local, any" in status("any", bastion)[1]
    assert status("remote", bastion)[0] is Status.FAIL
    assert (
        status("dropin", bastion)[0] is Status.FAIL
        and "allowtcpforwarding yes" in status("dropin", bastion)[1]
    )


def test_debian_12_stock_config_fails_only_for_what_it_offers_by_exact_name(tmp_path: Path) -> None:
    """Substring match: 'diffie-hellman-group1' is in 'diffie-hellman-group16-sha512' -> flagged. Not here."""
    stock = DEBIAN_STOCK.read_text()
    captures = _effective(tmp_path, stock + "HostKey /etc/ssh/ssh_host_ed25519_key\n")
    kex = captures["sshd"].stdout
    assert "diffie-hellman-group16-sha512" in kex and "diffie-hellman-group18-sha512" in kex
    outcome = judge("sshd.weak_algorithms_disabled", captures)
    assert outcome.status is Status.FAIL
    assert "group16" not in outcome.message and "group18" not in outcome.message
    assert "macs: umac-64-etm@openssh.com" in outcome.message and "hmac-sha1" in outcome.message
    # The same configuration without the SHA-1 and 64-bit MACs passes, group16/group18 still offered.
    macs = "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com\n"
    captures = _effective(tmp_path / "macs", macs + stock + "HostKey /etc/ssh/ssh_host_ed25519_key\n")
    outcome = judge("sshd.weak_algorithms_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message


def test_zero_means_no_limit(tmp_path: Path) -> None:
    """'at most 60' by arithmetic: 0 <= 60 -> pass. sshd_config(5): LoginGraceTime 0 is no time limit."""
    captures = _effective(
        tmp_path, "HostKey /etc/ssh/ssh_host_ed25519_key\nLoginGraceTime 0\nClientAliveInterval 0\n"
    )
    outcome = judge("sshd.option_at_most", captures, name="logingracetime", max=60)
    assert outcome.status is Status.FAIL and "no time limit" in outcome.message
    alive = judge("sshd.unresponsive_clients_disconnected", captures, max_seconds=900)
    assert alive.status is Status.FAIL and "never checks" in alive.message
    captures = _effective(
        tmp_path / "count",
        "HostKey /etc/ssh/ssh_host_ed25519_key\nClientAliveInterval 300\nClientAliveCountMax 0\n",
    )
    alive = judge("sshd.unresponsive_clients_disconnected", captures, max_seconds=900)
    assert alive.status is Status.FAIL and "never disconnected" in alive.message


def test_a_time_in_minutes_is_read_as_sshd_reads_it(tmp_path: Path) -> None:
    """Text match comparing '2m' or the literal: sshd -T reports LoginGraceTime 2m as 120 seconds."""
    captures = _effective(tmp_path, "HostKey /etc/ssh/ssh_host_ed25519_key\nLoginGraceTime 2m\n")
    outcome = judge("sshd.option_at_most", captures, name="logingracetime", max=60)
    assert outcome.status is Status.FAIL and "logingracetime is 120" in outcome.message


def test_match_group_is_judged_for_a_real_member(tmp_path: Path) -> None:
    """sshd matches Group only for an existing account: the probe finds a member with getent on the host."""
    etc = make_tree(
        tmp_path,
        {
            "sshd_config": "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nMatch Group hdsadmins\n  PasswordAuthentication yes\n"
        },
    )
    passwd = "hdsalice:x:4001:4001::/nonexistent:/usr/sbin/nologin\n"
    captures = collect(enter(etc, passwd=passwd, group="hdsadmins:x:4002:hdsalice\n"))
    outcome = judge("sshd.password_authentication_disabled", captures)
    assert outcome.status is Status.FAIL, outcome.message
    assert "'Match Group hdsadmins'" in outcome.message and "user=hdsalice" in outcome.message
    # Without any member, no connection can reach the block: judged for everyone else, and said so.
    captures = collect(enter(etc, group="hdsadmins:x:4002:\n"))
    outcome = judge("sshd.password_authentication_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message
    assert "no account of group hdsadmins" in outcome.message


def test_match_localport_needs_a_port_and_a_listener(tmp_path: Path) -> None:
    """sshd -T alone refuses 'Match LocalPort'; the block applies only if the daemon listens on that port."""
    config = (
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPort 22\n{extra}PermitRootLogin no\n"
        "Match LocalPort 2222\n  PermitRootLogin yes\n"
    )
    captures = _effective(tmp_path, config.format(extra=""))
    outcome = judge("sshd.root_login_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message
    assert "listens on no address and port" in outcome.message
    captures = _effective(tmp_path / "2222", config.format(extra="Port 2222\n"))
    outcome = judge("sshd.root_login_disabled", captures)
    assert outcome.status is Status.FAIL and "'Match LocalPort 2222'" in outcome.message


def test_negated_and_wildcard_patterns_are_exercised(tmp_path: Path) -> None:
    """'User *,!admin' matches every user but admin; 'Address 192.168.*' is a wildcard, not a prefix."""
    captures = _effective(
        tmp_path,
        "HostKey /etc/ssh/ssh_host_ed25519_key\nMaxAuthTries 3\n"
        "Match User *,!admin Address 192.168.*\n  MaxAuthTries 10\n",
    )
    outcome = judge("sshd.option_at_most", captures, name="maxauthtries", max=4)
    assert outcome.status is Status.FAIL, outcome.message
    assert "maxauthtries is 10" in outcome.message and "addr=192.168.1.1" in outcome.message


def test_host_keys_are_read_from_their_public_halves(tmp_path: Path) -> None:
    """Weak keys are those sshd -T lists (not files lying around), read without opening a private key."""
    etc = tmp_path / "etc-ssh"
    etc.mkdir()
    host_key(etc, "ed25519")
    host_key(etc, "rsa", bits=1024)
    host_key(etc, "rsa", bits=3072, name="unused_rsa_key")  # on disk, not used by sshd: not judged
    config = "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_rsa_key\n"
    (etc / "sshd_config").write_text(config)
    for private in etc.glob("*_key"):
        private.chmod(0o600)
    captures = collect(enter(etc))
    outcome = judge("sshd.host_keys_strong", captures, rsa_min_bits=2048)
    assert outcome.status is Status.FAIL
    assert "/etc/ssh/ssh_host_rsa_key (RSA 1024 bits)" in outcome.message and "unused" not in outcome.message
    # A used key without its public half cannot be judged: an error, never a pass.
    (etc / "ssh_host_rsa_key.pub").unlink()
    captures = collect(enter(etc))
    with pytest.raises(FactUnavailable, match="no public key file"):
        judge("sshd.host_keys_strong", captures, rsa_min_bits=2048)


@pytest.mark.parametrize(
    ("kind", "bits"),
    [
        *[("rsa", bits) for bits in (1024, 2048, 3072)],
        *[("ecdsa", bits) for bits in (256, 384, 521)],
        ("ed25519", None),
        ("dsa", None),
    ],
)
def test_public_key_size_is_what_ssh_keygen_prints(tmp_path: Path, kind: str, bits: int | None) -> None:
    """The probe measures public halves itself; ssh-keygen -l is the judge of type and size."""
    public = Path(f"{host_key(tmp_path, kind, bits)}.pub")
    said = subprocess.run(["ssh-keygen", "-l", "-f", str(public)], capture_output=True, text=True, check=True)
    size, _, rest = said.stdout.partition(" ")
    assert public_key_size(public.read_text()) == (rest.rsplit("(", 1)[1].rstrip(")\n"), int(size))


def test_public_key_size_refuses_what_ssh_keygen_refuses(tmp_path: Path) -> None:
    """Comments before the key are skipped by both; a type that lies about its blob or a cut blob is refused
    by both (a text match on the line's first word would have taken the lie)."""
    line = Path(f"{host_key(tmp_path, 'ed25519')}.pub").read_text()
    kind, blob, *_ = line.split()
    cases = {
        "commented": (f"# made by hand\n\n{line}", True),
        "lying": (f"ssh-rsa {blob} x\n", False),
        "cut": (f"{kind} {blob[:40]} x\n", False),
        "not base64": (f"{kind} ***{blob[3:]} x\n", False),
    }
    for name, (text, readable) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pub"
        path.write_text(text)
        keygen = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, check=False)
        assert (keygen.returncode == 0) is readable, name
        if readable:
            assert public_key_size(text) == ("ED25519", 256)
        else:
            with pytest.raises(PublicKeyError):
                public_key_size(text)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@contextmanager
def _host_running(configs: list[Path], containers: list[Path] = ()) -> Iterator[list[str]]:  # type: ignore[assignment]
    """A "host": a mount namespace of its own (held by a sleeping process) where an sshd runs for each of
    ``configs``, and an sshd for each of ``containers`` in a namespace of its own; yields the command
    prefix that enters the host, once every daemon listens."""
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    holder = subprocess.Popen(["unshare", "-m", "sleep", "infinity"], **quiet)  # type: ignore[call-overload]
    started = [holder]
    try:
        mine, held = os.stat("/proc/self/ns/mnt"), Path(f"/proc/{holder.pid}/ns/mnt")
        deadline = time.monotonic() + 10
        while os.stat(held).st_ino == mine.st_ino and time.monotonic() < deadline:
            time.sleep(0.01)  # until unshare has made the namespace
        inside = ["nsenter", "-t", str(holder.pid), "-m"]
        daemon = ["/usr/sbin/sshd", "-D", "-f"]
        started += [subprocess.Popen([*inside, *daemon, str(c)], **quiet) for c in configs]
        started += [subprocess.Popen(["unshare", "-m", *daemon, str(c)], **quiet) for c in containers]
        titles = [Path(f"/proc/{p.pid}/cmdline") for p in started[1:]]
        deadline = time.monotonic() + 10
        while not all(b"[listener]" in _read(t) for t in titles) and time.monotonic() < deadline:
            time.sleep(0.05)  # sshd retitles itself once it listens
        assert all(b"[listener]" in _read(t) for t in titles), "test daemons did not start"
        yield inside
    finally:
        for process in reversed(started):
            process.kill()
            process.wait()


def test_only_the_hosts_own_daemons_are_judged(tmp_path: Path) -> None:
    """A process list showing a container's sshd (another mount namespace) must not make the host fail.

    Two real daemons run: the host's own (compliant) and a "container" one started by ``unshare -m`` with
    root login allowed. Only the host's is judged, and sshd -T runs once: containers cost nothing.
    """
    own = make_tree(tmp_path / "own", {})
    (own / "sshd_config").write_text(
        f"HostKey {own}/ssh_host_ed25519_key\nListenAddress 127.0.11.250:22250\nPidFile {own}/pid\n"
        "PermitRootLogin no\n"
    )
    box = make_tree(tmp_path / "box", {})
    (box / "sshd_config").write_text(
        f"HostKey {box}/ssh_host_ed25519_key\nListenAddress 127.0.11.251:22251\nPidFile {box}/pid\n"
        "PermitRootLogin yes\n"
    )
    with _host_running([own / "sshd_config"], [box / "sshd_config"]) as inside:
        captures = collect(shlex.join(inside))
    text = captures["sshd"].stdout
    assert text.count("# config ") == 1 and f"# config {own}/sshd_config" in text, text[:300]
    outcome = judge("sshd.root_login_disabled", captures)
    assert outcome.status is Status.PASS, outcome.message
    assert str(own) in outcome.message


def test_a_listener_that_never_retitled_itself_is_found_by_its_command_line(tmp_path: Path) -> None:
    """A daemon whose command line is still its argv (words separated by NULs, no "sshd: ... [listener]"
    title: an OpenSSH before 8.2, or one that has not retitled yet) is found by the word after ``-f``,
    which only ``tr`` can read out of /proc; retitled processes are read by a builtin."""
    own = make_tree(tmp_path / "own", {})
    (own / "sshd_config").write_text(f"HostKey {own}/ssh_host_ed25519_key\nPermitRootLogin no\n")
    fake = tmp_path / "bin" / "sshd"  # a shell named sshd: its comm is "sshd", its argv plain
    fake.parent.mkdir()
    shutil.copy("/bin/dash", fake)
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    argv = [str(fake), "-c", "sleep 30; :", "-f", f"{own}/sshd_config"]
    holder = subprocess.Popen(["unshare", "-m", *argv], **quiet)  # type: ignore[call-overload]
    try:
        line = Path(f"/proc/{holder.pid}/cmdline")
        deadline = time.monotonic() + 10
        while not _read(line).startswith(f"{fake}\0".encode()) and time.monotonic() < deadline:
            time.sleep(0.01)  # until unshare has made the namespace and run the fake daemon
        assert _read(line).startswith(f"{fake}\0-c\0".encode()), _read(line)
        captures = collect(shlex.join(["nsenter", "-t", str(holder.pid), "-m"]))
    finally:
        holder.kill()
        holder.wait()
    text = captures["sshd"].stdout
    assert text.count("# config ") == 1 and f"# config {own}/sshd_config" in text, text[:300]
    assert judge("sshd.root_login_disabled", captures).status is Status.PASS


def _random_loglevel_config(rng: random.Random) -> tuple[str, dict[str, str]]:
    """An sshd_config and drop-ins that set LogLevel (or not) where sshd reads it differently: before and
    after an Include, twice, in a Match block sshd -T does not apply and in ``Match all`` (which it applies
    last, over the rest), as keyword=value, in any case, with a comment after it, quoted, DEBUG and DEBUG1
    (one level)."""
    levels = ["QUIET", "fatal", "Error", "INFO", "verbose", "DEBUG", "debug1", "DEBUG2", "DeBuG3"]

    def setting() -> str:
        level = rng.choice(levels)
        return rng.choice(
            [f"LogLevel {level}", f"loglevel={level}", f"LOGLEVEL\t{level} # note", f'LogLevel "{level}"']
        )

    head = [setting() for _ in range(rng.randint(0, 2))]
    tail = [setting() for _ in range(rng.randint(0, 2))]
    dropin = "\n".join(setting() for _ in range(rng.randint(0, 2))) + "\n"
    match = rng.choice([[], ["Match User nobody-here", f"  {setting()}"], ["Match all", f"  {setting()}"]])
    match += ["Match all", f"  {setting()}", f"  {setting()}"] if rng.random() < 0.3 else []
    config = [*head, "HostKey /etc/ssh/ssh_host_ed25519_key", "Include /etc/ssh/sshd_config.d/*.conf", *tail]
    return "\n".join([*config, *match]) + "\n", {"sshd_config.d/a.conf": dropin}


def test_one_sshd_run_gives_the_loglevel_sshd_T_prints(tmp_path: Path) -> None:
    """The sshd fact runs sshd -T -ddd once per daemon (its debug lines name the Match blocks) and puts back
    the LogLevel that -ddd replaces: on random configs (LogLevel first, after an Include, in a drop-in, in a
    Match block, in Match all, quoted, in any case), the fact's loglevel is what ``sshd -T`` alone prints;
    the same for a connection of the second round (``-C``: a Match block's LogLevel applies to it)."""
    rng = random.Random(5)
    for case in range(60):
        config, dropins = _random_loglevel_config(rng)
        etc = make_tree(tmp_path / str(case), {"sshd_config": config, **dropins})
        prefix = enter(etc)
        alone = subprocess.run(
            [*shlex.split(prefix), "sshd", "-T"], capture_output=True, text=True, check=False
        )
        assert alone.returncode == 0, alone.stderr
        printed = [line.split()[1] for line in alone.stdout.splitlines() if line.startswith("loglevel ")]
        # the first round's dump (with a Match block, the fact's base options come from a second round)
        dumped = _first_round(collect(prefix, [SSHD])["sshd"].stdout, "sshd")
        assert dumped[0].options["loglevel"] == printed, (config, dropins)
        # a second round's connection, which the first Match block selects
        spec = "user=nobody-here,host=h.example,addr=192.0.2.1"
        alone = subprocess.run(
            [*shlex.split(prefix), "sshd", "-T", "-C", spec], capture_output=True, text=True, check=False
        )
        printed = [line.split()[1] for line in alone.stdout.splitlines() if line.startswith("loglevel ")]
        fact = SshdMatchConfig(f"/etc/ssh/sshd_config {spec}")
        result = fact.parse(collect(prefix, [fact])[fact.key])
        assert result.options["loglevel"] == printed, (spec, config, dropins)


def _value(fact: SshdEffectiveConfig | SshdHostKeys, capture: Capture) -> object:
    """A fact's value, or the error it gives, as text."""
    try:
        return fact.parse(capture)
    except FactError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize(
    ("case", "config", "public_half"),
    [
        ("plain", "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_rsa_key\n", True),
        (
            "match localport",
            "HostKey /etc/ssh/ssh_host_rsa_key\nMatch LocalPort 2222\n  X11Forwarding no\n",
            True,
        ),
        ("warning", "HostKey /etc/ssh/ssh_host_rsa_key\nUsePrivilegeSeparation yes\n", True),
        ("no public half", "HostKey /etc/ssh/ssh_host_rsa_key\nHostKey /etc/ssh/nowhere_key\n", False),
        ("sshd refuses it", "HostKey /etc/ssh/ssh_host_rsa_key\nNoSuchKeyword yes\n", True),
    ],
)
def test_the_joint_section_gives_what_each_snippet_gives_alone(
    tmp_path: Path, case: str, config: str, public_half: bool
) -> None:
    """In a probe, the sshd fact and the host keys share one section that runs each sshd -T once: each
    fact gets the bytes its own snippet prints (sshd) or the same value (host keys, whose read carries a
    random marker), including where sshd -T needs a port, warns, fails, or a key lacks its public half."""
    etc = make_tree(tmp_path, {"sshd_config": config}, keys=("ed25519", "rsa"))
    if not public_half:
        (etc / "ssh_host_rsa_key.pub").unlink()
    prefix = enter(etc)
    probe = render([SSHD, HOST_KEYS], new_nonce())
    assert [section.joint for section in probe.sections] == [True]
    joint = {c.fact: c for c in run([SSHD, HOST_KEYS], prefix)}
    alone = {c.fact: c for fact in (SSHD, HOST_KEYS) for c in run([fact], prefix)}
    assert joint["sshd"].stdout == alone["sshd"].stdout and joint["sshd"].exit_code == alone["sshd"].exit_code
    key = HOST_KEYS.key
    assert joint[key].exit_code == alone[key].exit_code, (joint[key], alone[key])
    assert _value(HOST_KEYS, joint[key]) == _value(HOST_KEYS, alone[key])
    assert _value(SSHD, joint["sshd"]) == _value(SSHD, alone["sshd"])
    if case == "sshd refuses it":  # the host keys asked sshd again, as their own snippet does
        assert all(str(_value(f, joint[f.key])).startswith("error: ") for f in (SSHD, HOST_KEYS))
    if case == "match localport":
        assert "# lport 65535" in joint["sshd"].stdout


def test_a_joint_output_is_split_by_its_record_alone() -> None:
    """The first fact's part is a length-prefixed record with its exit code: an output that names a larger
    length than it holds is cut (an error for both, never a shorter part); no sshd: both absent."""
    split = SshdEffectiveConfig.split_joint
    parts = split([SSHD, HOST_KEYS], b"J absent\n", "", ABSENT)
    assert [p.exit_code for p in parts] == [ABSENT, ABSENT]
    parts = split([SSHD, HOST_KEYS], b"J 9 3 J 9 x\ny\nrest\n", "", 1)
    assert [(p.exit_code, p.stdout) for p in parts] == [(3, b"J 9 x\ny"), (1, b"rest\n")]
    cut = split([SSHD, HOST_KEYS], b"J 900 0 # config /etc/ssh/sshd_config\n", "", 0)
    assert [p.exit_code for p in cut] == [1, 1] and "cut" in cut[0].stderr


def test_the_joint_section_keeps_each_daemons_keys_apart(tmp_path: Path) -> None:
    """Two daemons of the host, one whose sshd -T needs a port (Match LocalPort) and serves a 1024-bit RSA
    key: the joint section gives each fact what its own snippet gives, each daemon with its own keys."""
    configs: list[Path] = []
    for name, extra in (("a", ""), ("b", "Match LocalPort 2222\n  X11Forwarding no\n")):
        tree = make_tree(tmp_path / name, {}, keys=("ed25519",))
        if name == "b":
            host_key(tree, "rsa", bits=1024)
        keys = "".join(f"HostKey {k}\n" for k in sorted(str(p) for p in tree.glob("*_key")))
        port = 22260 + len(configs)
        (tree / "sshd_config").write_text(
            f"{keys}ListenAddress 127.0.11.252:{port}\nPidFile {tree}/pid\n{extra}"
        )
        for private in tree.glob("*_key"):
            private.chmod(0o600)
        configs.append(tree / "sshd_config")
    with _host_running(configs) as inside:
        prefix = shlex.join(inside)
        joint = {c.fact: c for c in run([SSHD, HOST_KEYS], prefix)}
        alone = {c.fact: c for fact in (SSHD, HOST_KEYS) for c in run([fact], prefix)}
    assert joint["sshd"].stdout == alone["sshd"].stdout and "# lport 65535" in joint["sshd"].stdout
    daemons = HOST_KEYS.parse(joint[HOST_KEYS.key])
    assert daemons == HOST_KEYS.parse(alone[HOST_KEYS.key])
    assert daemons is not None and [d.source for d in daemons] == [str(c) for c in configs]
    assert [sorted((k.algorithm, k.bits) for k in d.keys) for d in daemons] == [
        [("ED25519", 256)],
        [("ED25519", 256), ("RSA", 1024)],
    ]
