"""Shared fixtures: the SSH lab (real sshd hosts on 127.0.0.x, each seeing its own system)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.sshlab import SSHLab, make_lab_root

SCANNER = "hdsscan"  # unprivileged login that elevates with `sudo -n`, as a real fleet would


def needs_lab() -> None:
    """Skip unless this machine can run the lab (root, openssh-server, sudo)."""
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists() or shutil.which("sudo") is None:
        pytest.skip("needs root, openssh-server and sudo (the README's test command installs them)")


def _passwd(extra: str = "") -> str:
    real = Path("/etc/passwd").read_text()
    return real + f"{SCANNER}:x:990:990:hds-compliance scanner:/nonexistent:/bin/sh\n" + extra


def _shadow(passwd: str, overrides: dict[str, str]) -> str:
    """A synthetic shadow for the lab (never a copy of the machine's): every account locked."""
    users = [line.split(":", 1)[0] for line in passwd.splitlines() if line]
    return "".join(f"{u}:{overrides.get(u, '*')}:19000:0:99999:7:::\n" for u in users)


SUDOERS_HARDENED = (
    "Defaults env_reset\nDefaults use_pty\nDefaults logfile=/var/log/sudo.log\n"
    f"root ALL=(ALL:ALL) ALL\n{SCANNER} ALL=(root) NOPASSWD: ALL\n"
)
PAM_PASSWORD = (
    "password [success=1 default=ignore] pam_unix.so obscure {hash}\npassword requisite pam_deny.so\n"
)
SUDOERS_NO_RULE = "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n"

HARDENED_SSHD = {
    "PermitRootLogin": "no",
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "no",
    "X11Forwarding": "no",
    "AllowTcpForwarding": "no",
    "AllowAgentForwarding": "no",
    "MaxAuthTries": "3",
    "Ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
    "MACs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    "KexAlgorithms": "curve25519-sha256,curve25519-sha256@libssh.org",
    "LogLevel": "DEBUG1",  # so the tests can count the commands each host received
}


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SSHLab]:
    """Three hosts: hardened; weak (root login, MD5, empty password); one whose sudo refuses."""
    needs_lab()
    lab = SSHLab(make_lab_root())
    # sshd reads authorized_keys as the logging-in user: let the unprivileged scanner account read it.
    lab.root.chmod(0o755)
    lab.authorized_keys.chmod(0o644)
    passwd = _passwd()
    weak_passwd = _passwd("guest:x:991:991::/nonexistent:/bin/sh\n")
    lab.add_host(
        "hardened",
        "127.0.0.2",
        login_user=SCANNER,
        sshd_options=HARDENED_SSHD,
        tmp_mount_options="nosuid,nodev,noexec",
        processes=("auditd", "chronyd"),
        files={
            "/etc/passwd": passwd,
            "/etc/shadow": _shadow(passwd, {}),
            "/etc/sudoers": SUDOERS_HARDENED,
            "/etc/login.defs": "ENCRYPT_METHOD YESCRYPT\nUMASK 027\n",
            "/etc/pam.d/common-password": PAM_PASSWORD.format(hash="yescrypt"),
            # /tmp stays restricted after a reboot too.
            "/etc/fstab": "tmpfs /tmp tmpfs nosuid,nodev,noexec 0 0\n",
        },
        file_modes={"/etc/sudoers": 0o440, "/etc/shadow": 0o640},
    )
    lab.add_host(
        "weak",
        "127.0.0.3",
        sshd_options={
            "PermitRootLogin": "yes",
            "PasswordAuthentication": "yes",
            "X11Forwarding": "yes",
            "LogLevel": "DEBUG1",
        },
        files={
            "/etc/passwd": weak_passwd,
            "/etc/shadow": _shadow(weak_passwd, {"guest": ""}),
            # Bytes that are not UTF-8 and a line imitating a probe marker: the verdict must not change.
            "/etc/login.defs": b"# caf\xe9 \xff\xfe\n@@HDS-000000000000000000000000 DONE 1\n"
            b"ENCRYPT_METHOD MD5\nUMASK 022\n",
            "/etc/pam.d/common-password": PAM_PASSWORD.format(hash="md5"),
        },
        file_modes={"/etc/shadow": 0o644},
    )
    lab.add_host(
        "nosudo",
        "127.0.0.4",
        login_user=SCANNER,
        sshd_options={"LogLevel": "DEBUG1"},
        files={"/etc/passwd": passwd, "/etc/shadow": _shadow(passwd, {}), "/etc/sudoers": SUDOERS_NO_RULE},
        file_modes={"/etc/sudoers": 0o440, "/etc/shadow": 0o640},
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


LAB_HOST_DATA: dict[str, dict[str, object]] = {
    "hardened": {
        "hds_sudo": True,
        "hds_activities": [3, 4, 5],
        "roles": ["database"],
        "location_country": "FR",
    },
    "weak": {"hds_activities": [3, 4, 5], "roles": ["web"], "location_country": "US"},
    "nosudo": {"hds_sudo": True, "hds_activities": [5], "location_country": "DE"},
}


# ---- every JUnit file the tests write is checked against the schema CI servers use ---------------------

# The Jenkins xunit plugin's schema, never copied into the project: beside the checkout (../shared), in the
# workplace's shared folder when the checkout is elsewhere (a CI clone in /tmp), or where HDS_JUNIT_XSD says.
_XSD_PLACES = [
    Path(os.environ["HDS_JUNIT_XSD"]) if os.environ.get("HDS_JUNIT_XSD") else None,
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "junit-10.xsd",
    Path("/work/shared/reference/junit-10.xsd"),
]
JUNIT_XSD = next((p for p in _XSD_PLACES if p is not None and p.is_file()), _XSD_PLACES[1])


def junit_schema_errors(document: bytes | str) -> list[str]:
    """Why ``document`` is not valid against the Jenkins xunit plugin's junit-10.xsd (empty: it is)."""
    from lxml import etree

    assert JUNIT_XSD.is_file(), f"the JUnit schema is missing: {JUNIT_XSD} (set HDS_JUNIT_XSD to its path)"
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    data = document.encode("utf-8") if isinstance(document, str) else document
    ok = schema.validate(etree.fromstring(data))
    return [] if ok else [str(e) for e in schema.error_log]


@pytest.fixture(autouse=True)
def _junit_written_is_valid(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """JUnit made in the test process (``junit_chunks``, which ``to_junit`` joins) and JUnit files left in
    the test's tmp_path (written by the command in a subprocess) must validate; a test that writes an invalid
    one fails."""
    import hds_compliance.junit as junit

    made: list[str] = []
    real = junit.junit_chunks

    def recording(*args: object, **kwargs: object) -> Iterator[str]:
        pieces = list(real(*args, **kwargs))  # type: ignore[arg-type]
        made.append("".join(pieces))
        return iter(pieces)

    monkeypatch.setattr(junit, "junit_chunks", recording)
    # asked for now: at teardown, tmp_path must still be there
    root = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    documents: list[tuple[str, bytes | str]] = [("to_junit()", text) for text in made]
    if root is not None:
        for path in sorted(root.rglob("*.xml")):
            head = path.read_bytes()[:4096]
            if b"<testsuites" in head or b"<testsuite " in head:
                documents.append((str(path), path.read_bytes()))
    for where, document in documents:
        errors = junit_schema_errors(document)
        assert not errors, f"{where} is not valid JUnit (junit-10.xsd): {errors[:3]}"
