"""The logging, audit and time controls over real SSH: a small inventory of lab hosts (a log collector, a
host built compliant, one built weak, one that logs nowhere), scanned by the real collector with the
catalogue of controls/, each host's verdicts asserted.

Every lab host sees its own /etc and /var/log (overlays: files created, the machine's own hidden); the
kernel's audit state is the machine's and is never changed, so checks of the loaded rules must give
every host the same verdict, whatever it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs_lab
from lab.sshlab import SSHLab, make_lab_root
from lab.verdicts import verdict_of

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan

RSYSLOG_D = Path("/etc/rsyslog.d")
AUDIT_RULES_D = Path("/etc/audit/rules.d")
VAR_LOG = Path("/var/log")
COLLECTOR = "127.0.14.10"

FORWARD = (
    'global(DefaultNetstreamDriverCAFile="/etc/ssl/certs/ca-certificates.crt")\n'
    f'action(type="omfwd" target="{COLLECTOR}" port="6514" protocol="tcp"\n'
    '       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="{auth}"\n'
    '       StreamDriverPermittedPeers="logs.hds.example" queue.type="LinkedList" queue.filename="fwd")\n'
)
HDS_RULES = (
    "-w /etc/passwd -p wa -k identity\n-w /etc/shadow -p wa -k identity\n"
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change\n"
    "-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k rootcmd\n"
    "-a always,exit -F arch=b32 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k rootcmd\n"
    "-w /var/log/sudo.log -p wa -k actions\n"
)
HARDENED_AUDITD = (
    "log_file = /var/log/audit/audit.log\nlog_group = adm\nnum_logs = 5\nmax_log_file = 8\n"
    "max_log_file_action = keep_logs\nspace_left = 75\nspace_left_action = email\n"
    "admin_space_left = 50\nadmin_space_left_action = single\ndisk_full_action = halt\n"
    "disk_error_action = syslog\nplugin_dir = /etc/audit/plugins.d\n"
)
WEAK_AUDITD = (
    "log_file = /var/log/audit/audit.log\nlog_group = adm\nmax_log_file_action = ROTATE\nnum_logs = 5\n"
)
SYSLOG_PLUGIN = (
    "active = {active}\ndirection = out\npath = /sbin/audisp-syslog\ntype = always\nargs = LOG_INFO\n"
)
INTERNAL = "server ntp1.hds.example iburst\nserver ntp2.hds.example iburst\n"
CHRONY = "confdir /etc/chrony/conf.d\n{pool}sourcedir /etc/chrony/sources.d\nmakestep 1 3\n"
LOGROTATE = "/var/log/syslog\n/var/log/auth.log\n{{\n\trotate {rotate}\n\tweekly\n\tmissingok\n}}\n"


def _hidden(directory: Path, shown: set[str]) -> tuple[str, ...]:
    """Entries of a directory of this machine (its own drop-ins, its logs) hidden from a lab host, except
    those the lab host is given (``shown``: paths)."""
    if not directory.is_dir():
        return ()
    return tuple(str(p) for p in sorted(directory.iterdir()) if str(p) not in shown)


def _host(
    lab: SSHLab, name: str, address: str, *, good: bool, forward: str | None, processes: tuple[str, ...]
) -> None:
    files: dict[str, str | bytes] = {
        "/etc/chrony/chrony.conf": CHRONY.format(pool="" if good else "pool 2.debian.pool.ntp.org iburst\n"),
        "/etc/audit/rules.d/30-hds.rules": HDS_RULES,
        "/etc/audit/auditd.conf": HARDENED_AUDITD if good else WEAK_AUDITD,
        "/etc/audit/plugins.d/syslog.conf": SYSLOG_PLUGIN.format(active="yes" if good else "no"),
        "/etc/logrotate.d/rsyslog": LOGROTATE.format(rotate=4 if good else -1),
        "/var/log/syslog": "",
        "/var/log/auth.log": "",
    }
    if good:
        files["/etc/chrony/sources.d/hds.sources"] = INTERNAL
        files["/etc/audit/rules.d/99-finalize.rules"] = "-e 2\n"
    if forward is not None:
        files["/etc/rsyslog.d/60-hds-remote.conf"] = forward
    shown = set(files)
    lab.add_host(
        name,
        address,
        files=files,
        dirs={"/var/log/audit": {"audit.log": ""}},
        file_modes={
            "/var/log/audit": 0o750,
            "/var/log/audit/audit.log": 0o600 if good else 0o644,
            "/var/log/syslog": 0o640,
            "/var/log/auth.log": 0o640 if good else 0o644,
        },
        overlays=("/etc", "/var/log"),
        absent=(
            *_hidden(RSYSLOG_D, shown),
            *_hidden(AUDIT_RULES_D, shown | {"/etc/audit/rules.d/audit.rules"}),
            *_hidden(Path("/etc/chrony/sources.d"), shown),
            *_hidden(VAR_LOG, shown | {"/var/log/audit"}),
        ),
        processes=processes,
    )


HOSTS = {
    "logs1": {"roles": ["log_collector"]},
    "good": {"roles": ["database"]},
    "weak": {"roles": ["app"]},
    "silent": {"roles": ["app"]},
}


@pytest.fixture(scope="module")
def lab_result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanResult]:
    """Scan the four lab hosts once; every test reads the verdicts."""
    needs_lab()
    for tool in ("rsyslogd", "auditctl", "chronyd"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian packages rsyslog, auditd, chrony)")
    lab = SSHLab(make_lab_root())
    daemons = ("rsyslogd", "auditd", "chronyd")
    _host(lab, "logs1", COLLECTOR, good=True, forward=None, processes=daemons)
    _host(lab, "good", "127.0.14.2", good=True, forward=FORWARD.format(auth="x509/name"), processes=daemons)
    _host(
        lab,
        "weak",
        "127.0.14.3",
        good=False,
        forward=FORWARD.format(auth="anon"),
        processes=(*daemons, "systemd-timesyn"),  # comm keeps 15 bytes
    )
    _host(lab, "silent", "127.0.14.4", good=True, forward=None, processes=daemons)
    lab.start()
    try:
        data = {n: {**d, "hds_activities": [5], "location_country": "FR"} for n, d in HOSTS.items()}
        inventory = lab.write_inventory(tmp_path_factory.mktemp("inv") / "inventory.py", data)
        options = CollectOptions(connect_timeout=10.0, command_timeout=60.0)
        yield scan(load_catalog(), registry(), load_inventory(inventory), options)
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


# check, control (when several use it), expected on good, expected on weak, substring of weak's message
HOST_CASES = [
    ("logging.remote_forwarding_configured", None, Status.PASS, Status.FAIL, "peer NOT checked"),
    ("auditd.rules_persisted", None, Status.PASS, Status.PASS, "merged by augenrules"),
    ("auditd.rules_locked_at_boot", None, Status.PASS, Status.FAIL, "no -e 2 in the rules loaded at boot"),
    (
        "auditd.disk_full_handled",
        None,
        Status.PASS,
        Status.FAIL,
        "space_left_action = ignore (auditd's default)",
    ),
    ("auditd.log_rotation_keeps_records", None, Status.PASS, Status.FAIL, "max_log_file_action = ROTATE"),
    ("auditd.log_files_restricted", None, Status.PASS, Status.FAIL, "audit.log is readable by others (0644)"),
    ("auditd.records_forwarded", None, Status.PASS, Status.FAIL, "no active audisp-remote or syslog plugin"),
    ("logging.log_files_not_world_accessible", None, Status.PASS, Status.FAIL, "/var/log/auth.log (0644)"),
    ("logging.rotation_keeps_logs", "LOG-08", Status.PASS, Status.FAIL, "never deleted by age"),
    ("time.servers_configured", "TIM-02", Status.PASS, Status.FAIL, "pool 2.debian.pool.ntp.org"),
    ("time.single_sync_daemon", None, Status.PASS, Status.FAIL, "chronyd and systemd-timesyncd run together"),
]


@pytest.mark.parametrize(
    ("check", "control", "good", "weak", "why"), HOST_CASES, ids=[c[0] for c in HOST_CASES]
)
def test_good_and_weak_hosts(
    lab_result: ScanResult, check: str, control: str | None, good: Status, weak: Status, why: str
) -> None:
    """The host built compliant passes; the weak one gets the verdict its files call for, and says why."""
    status, message = verdict_of(lab_result, "good", check, control=control)
    assert status is good, message
    status, message = verdict_of(lab_result, "weak", check, control=control)
    assert status is weak, message
    assert why.lower() in message.lower()


def test_logs_forwarded_to_the_collector(lab_result: ScanResult) -> None:
    """Fleet check: good forwards over checked TLS to the collector (matched by its ssh_hostname); weak
    reaches it over anonymous TLS; silent logs nowhere; the collector itself is not judged."""
    check = "fleet.logs_forwarded_to_collector"
    assert verdict_of(lab_result, "logs1", check)[0] is Status.NOT_APPLICABLE
    status, message = verdict_of(lab_result, "good", check)
    assert status is Status.PASS and f"logs1: rsyslog to {COLLECTOR}:6514 over tls" in message, message
    status, message = verdict_of(lab_result, "weak", check)
    assert status is Status.FAIL and "not over TLS with the collector checked" in message, message
    status, message = verdict_of(lab_result, "silent", check)
    assert status is Status.FAIL and "forwards its logs nowhere" in message, message


def test_time_sources_consistent(lab_result: ScanResult) -> None:
    """Fleet check: three hosts on the internal servers, weak also on Debian's public pool."""
    check = "fleet.time_sources_consistent"
    for host in ("logs1", "good", "silent"):
        status, message = verdict_of(lab_result, host, check)
        assert status is Status.PASS and "used by 3 of 4 hosts" in message, (host, message)
    status, message = verdict_of(lab_result, "weak", check)
    assert status is Status.FAIL and "uses 2.debian.pool.ntp.org, not among the fleet's sources" in message


def test_collector_retention_applies_to_the_collector_only(lab_result: ScanResult) -> None:
    """LOG-07 is for hosts of role log_collector: 4 weekly rotations keep 28 days, not 180."""
    status, message = verdict_of(lab_result, "logs1", "logging.rotation_keeps_logs", control="LOG-07")
    assert status is Status.FAIL and "/var/log/syslog keeps about 28 days" in message, message
    assert (
        verdict_of(lab_result, "good", "logging.rotation_keeps_logs", control="LOG-07")[0]
        is Status.NOT_APPLICABLE
    )


def test_kernel_wide_audit_state_is_the_same_for_every_host(lab_result: ScanResult) -> None:
    """The loaded rules and auditctl -s belong to the machine's kernel: never changed here, and the same
    verdict for every lab host (error, fail or pass, whatever this kernel holds)."""
    for check in ("auditd.rules_loaded", "auditd.rules_locked_in_kernel", "auditd.enabled_in_kernel"):
        statuses = {verdict_of(lab_result, host, check)[0] for host in HOSTS}
        assert len(statuses) == 1, (check, statuses)
