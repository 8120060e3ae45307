"""The authn controls over real SSH: lab hosts on 127.0.13.x built compliant and not, scanned by the real
collector with the whole catalogue (controls/), each host's verdict asserted for the authn checks.

Every lab host sees its own /etc through an overlay (sudoers and drop-ins, PAM stacks, pwquality and
faillock, login.defs, passwd/shadow/group, profile.d, nsswitch). The kernel's audit rules cannot be loaded
here: the hosts' auditctl is a script printing the rules each host would have loaded (the only stand-in).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from authn_ns import DEBIAN12_COMMON_AUTH, DEBIAN12_COMMON_PASSWORD
from conftest import needs_lab
from lab.sshlab import SSHLab, make_lab_root
from lab.verdicts import verdict_of

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan

ETC = Path("/etc")
DEBIAN_SESSION = (ETC / "pam.d/common-session").read_text()
DEBIAN_SU = (ETC / "pam.d/su").read_text()
LOGIN_DEFS = (ETC / "login.defs").read_text()
FAKE_HASH = "$y$j9T$NOT-A-REAL-HASH$only-the-prefix-is-read"  # the shadow fact reads the "$id$" prefix only


def _accounts(extra: list[str], sudo_members: str, hashed: list[str]) -> dict[str, str]:
    passwd = "".join(
        line.replace(":/bin/bash", ":/usr/sbin/nologin") if line.split(":")[2] not in ("0", "1000") else line
        for line in ETC.joinpath("passwd").read_text().splitlines(keepends=True)
    ) + "".join(f"{line}\n" for line in extra)
    names = [line.split(":")[0] for line in passwd.splitlines() if line]
    shadow = "".join(f"{n}:{FAKE_HASH if n in hashed else '*'}:19000:0:99999:7:::\n" for n in names)
    group = "".join(
        f"sudo:x:27:{sudo_members}\n" if line.startswith("sudo:") else line
        for line in ETC.joinpath("group").read_text().splitlines(keepends=True)
    )
    return {"/etc/passwd": passwd, "/etc/shadow": shadow, "/etc/group": group}


COMPLIANT = {
    **_accounts(
        [
            "alice:x:1001:1001:Alice Martin:/home/alice:/bin/bash",
            "bob:x:1002:1002:Bob Durand:/home/bob:/bin/bash",
        ],
        "alice,bob",
        ["alice", "bob"],
    ),
    "/etc/sudoers.d/10-hds": "Defaults noexec, requiretty, use_pty, umask=0077, ignore_dot, env_reset\n"
    "Defaults logfile=/var/log/sudo.log, log_input, log_output\n"
    "Defaults iolog_dir=/var/log/sudo-io/%{user}\n"
    "%sudo ALL=(www-data) /usr/bin/tail -n 100 /var/log/nginx/access.log, sudoedit /etc/nginx/nginx.conf\n",
    "/etc/login.defs": LOGIN_DEFS.replace("ENCRYPT_METHOD SHA512", "ENCRYPT_METHOD YESCRYPT").replace(
        "UMASK\t\t022", "UMASK\t\t027"
    ),
    "/etc/pam.d/common-auth": DEBIAN12_COMMON_AUTH.replace(
        "auth\t[success=1 default=ignore]\tpam_unix.so nullok",
        "auth\trequired\t\t\tpam_faillock.so preauth\n"
        "auth\t[success=2 default=ignore]\tpam_unix.so\n"
        "auth\t[default=die]\t\t\tpam_faillock.so authfail",
    ),
    "/etc/pam.d/common-password": DEBIAN12_COMMON_PASSWORD.replace(
        "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt",
        "password\trequisite\t\t\tpam_pwquality.so retry=3\n"
        "password\trequisite\t\t\tpam_pwhistory.so remember=5 use_authtok enforce_for_root\n"
        "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt",
    ),
    "/etc/pam.d/common-session": DEBIAN_SESSION + "session optional\t\t\tpam_umask.so\n",
    "/etc/pam.d/su": DEBIAN_SU.replace(
        "# auth       required   pam_wheel.so\n", "auth       required   pam_wheel.so group=sudo\n"
    ),
    "/etc/security/pwquality.conf": "minlen = 14\nminclass = 4\nenforce_for_root\n",
    "/etc/security/faillock.conf": "deny = 3\nunlock_time = 900\n",
    "/etc/profile.d/hds.sh": "umask 027\nTMOUT=900\nreadonly TMOUT\nexport TMOUT\n",
    "/usr/sbin/auditctl": "#!/bin/sh\n# lab stand-in for the kernel's loaded rules (auditctl -l)\n"
    "[ \"$1\" = -l ] && echo '-w /var/log/sudo.log -p wa -k sudo_log'\n",
}
NONCOMPLIANT = {
    **_accounts(
        ["admin:x:1005:1005:shared admin:/home/admin:/bin/bash", "svc:x:990:990:a service:/var/lib/svc:"],
        "admin",
        ["admin", "root"],
    ),
    "/etc/sudoers.d/90-weak": "Defaults log_output, logfile=/var/log/sudo.log\n"
    "Defaults!/usr/bin/rsync !log_output, !logfile\n"
    "%ops ALL=(ALL) NOPASSWD: /usr/bin/vim /etc/hosts, /usr/bin/systemctl, /usr/bin/less /var/log/*\n"
    "backup ALL=(root) NOPASSWD:NOLOG_OUTPUT: /usr/bin/rsync\n",
    "/etc/login.defs": LOGIN_DEFS.replace("ENCRYPT_METHOD SHA512", "ENCRYPT_METHOD MD5"),
    "/etc/pam.d/common-auth": DEBIAN12_COMMON_AUTH,
    "/etc/pam.d/common-password": DEBIAN12_COMMON_PASSWORD.replace("obscure yescrypt", "obscure")
    + "password requisite pam_pwquality.so minlen=14\n",
    "/etc/security/faillock.conf": "deny = 5\n",
    "/etc/profile.d/tmout.sh": "TMOUT=600; export TMOUT\n",
    "/usr/sbin/auditctl": "#!/bin/sh\n[ \"$1\" = -l ] && echo 'No rules'\n",
}
DIRECTORY = {
    **COMPLIANT,
    "/etc/nsswitch.conf": ETC.joinpath("nsswitch.conf").read_text() + "sudoers:        files sss\n",
}
MODES = {"/usr/sbin/auditctl": 0o755, "/etc/shadow": 0o640}

# check -> (compliant, non-compliant, what the non-compliant verdict must say)
EXPECTED: dict[str, tuple[Status, Status, str]] = {
    "sudo.use_pty_enabled": (Status.PASS, Status.PASS, ""),
    "sudo.logging_enabled": (Status.PASS, Status.FAIL, "Defaults!/usr/bin/rsync !logfile"),
    "sudo.defaults_set": (Status.PASS, Status.FAIL, "noexec is not set"),
    "sudo.runas_targets_restricted": (
        Status.PASS,
        Status.FAIL,
        "%ops may run /usr/bin/systemctl as any target",
    ),
    "sudo.commands_have_explicit_arguments": (Status.PASS, Status.FAIL, "/usr/bin/less /var/log/*"),
    "sudo.editors_through_sudoedit": (Status.PASS, Status.FAIL, "/usr/bin/vim /etc/hosts for %ops"),
    "sudo.io_logging_enabled": (Status.PASS, Status.FAIL, "log_output turned off by Defaults!/usr/bin/rsync"),
    "sudo.logfile_audited": (Status.PASS, Status.FAIL, "no loaded audit rule watches"),
    "sudo.no_nopasswd_all": (Status.PASS, Status.PASS, ""),
    "sudo.grants_through_groups": (Status.PASS, Status.FAIL, "backup"),
    "pam.password_quality": (Status.PASS, Status.FAIL, "runs after pam_unix"),
    "pam.password_quality_applies_to_root": (Status.PASS, Status.FAIL, "runs after pam_unix"),
    "pam.password_history": (Status.PASS, Status.FAIL, "no pam_pwhistory"),
    "pam.lockout_after_failures": (Status.PASS, Status.FAIL, "no pam_faillock"),
    "pam.empty_passwords_refused": (Status.PASS, Status.FAIL, "nullok"),
    "pam.su_restricted_to_group": (Status.PASS, Status.FAIL, "no pam_wheel"),
    "accounts.password_hashing_configured": (Status.PASS, Status.FAIL, "it uses ENCRYPT_METHOD MD5"),
    "accounts.umask_restrictive": (Status.PASS, Status.FAIL, "UMASK is 022"),
    "accounts.session_timeout": (Status.PASS, Status.FAIL, "not read-only"),
    "accounts.system_accounts_no_login": (Status.PASS, Status.FAIL, "svc (uid 990) has the shell /bin/sh"),
    "accounts.no_duplicate_accounts": (Status.PASS, Status.PASS, ""),
    "accounts.admin_accounts_nominative": (Status.PASS, Status.FAIL, "admin (member of sudo)"),
    "accounts.root_login_console_only": (Status.PASS, Status.FAIL, "no pam_securetty"),
    "accounts.strong_password_hashes": (Status.PASS, Status.PASS, ""),
}


@pytest.fixture(scope="module")
def lab() -> Iterator[SSHLab]:
    needs_lab()
    lab = SSHLab(make_lab_root())
    for name, address, files in (
        ("compliant", "127.0.13.2", COMPLIANT),
        ("noncompliant", "127.0.13.3", NONCOMPLIANT),
        ("directory", "127.0.13.4", DIRECTORY),
    ):
        modes = {path: mode for path, mode in MODES.items() if path in files}
        modes.update({path: 0o440 for path in files if path.startswith("/etc/sudoers.d/")})
        lab.add_host(name, address, files=files, overlays=("/etc",), file_modes=modes)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


@pytest.fixture(scope="module")
def result(lab: SSHLab, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    data: dict[str, dict[str, object]] = {
        name: {"hds_activities": [5], "location_country": "FR"} for name in lab.hosts
    }
    inventory = lab.write_inventory(tmp_path_factory.mktemp("authn") / "inventory.py", data)
    options = CollectOptions(connect_timeout=5.0, command_timeout=30.0)
    return scan(load_catalog(), registry(), load_inventory(inventory), options)


@pytest.mark.parametrize("check", sorted(EXPECTED))
def test_compliant_and_noncompliant_hosts(result: ScanResult, check: str) -> None:
    """Same catalogue, two hosts built for the authn controls: each gets the verdict its own files decide."""
    good, bad, why = EXPECTED[check]
    status, message = verdict_of(result, "compliant", check)
    assert status is good, message
    status, message = verdict_of(result, "noncompliant", check)
    assert status is bad, message
    assert why in message


@pytest.mark.parametrize(
    "check", sorted(c for c in EXPECTED if c.startswith("sudo.") and EXPECTED[c][0] is Status.PASS)
)
def test_sudo_rules_from_a_directory_never_pass(result: ScanResult, check: str) -> None:
    """The compliant host with 'sudoers: files sss': no sudo verdict may be a pass."""
    status, message = verdict_of(result, "directory", check)
    assert status is Status.NOT_REVIEWED, message
    assert "sss" in message


def test_each_host_got_one_probe(result: ScanResult) -> None:
    for host in result.hosts:
        assert host.probe.connected and host.probe.complete, host.probe.error
