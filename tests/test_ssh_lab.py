"""Scans over real SSH: per-host verdicts on a lab of sshd hosts that each see a different system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_HOST_DATA
from lab.netfail import HangingServer, closed_port
from lab.sshlab import SSHLab
from lab.verdicts import verdict_of

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions, HostJob, collect
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan

# Checks whose verdict the lab hosts' own files, mounts, processes and daemons decide: hardened passes,
# weak fails, with what was found in the message.
EXPECTED_DIFFERENCES = {
    "sshd.root_login_disabled": "PermitRootLogin is yes",
    "sshd.password_authentication_disabled": "passwordauthentication yes",
    "sshd.forwarding_disabled": "x11forwarding yes",
    "sshd.option_at_most": "maxauthtries is 6",
    "sshd.weak_algorithms_disabled": "umac-64",
    "accounts.no_empty_password": "guest",
    "accounts.password_hashing_configured": "ENCRYPT_METHOD is MD5",
    "sudo.logging_enabled": "no explicit sudo logging",
    "files.permissions_at_most": "/etc/shadow",
    "mounts.options_present": "/tmp is not a separate mount",
    "auditd.service_running": "no auditd process",
    "time.sync_service_running": "none of chronyd",
    "inventory.location_in_eea": "outside the EEA",
}


def _scan(lab: SSHLab, tmp_path: Path, extra: str = "", **options: Any) -> ScanResult:
    inventory = lab.write_inventory(tmp_path / "lab_inventory.py", LAB_HOST_DATA)
    if extra:
        inventory.write_text(inventory.read_text() + extra)
    collect = CollectOptions(**{"connect_timeout": 5.0, "command_timeout": 30.0, **options})
    return scan(load_catalog(), registry(), load_inventory(inventory), collect)


# Checks used several times in the catalogue: the instance these tests look at.
_INSTANCE = {
    "files.permissions_at_most": {"path": "/etc/shadow"},
    "sshd.option_at_most": {"name": "maxauthtries"},
    "mounts.options_present": {"path": "/tmp"},
}


def _status(result: ScanResult, host: str, check: str) -> tuple[Status, str]:
    return verdict_of(result, host, check, **_INSTANCE.get(check, {}))


@pytest.fixture(scope="module")
def lab_result(ssh_lab: SSHLab, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    for name in ssh_lab.hosts:  # count only this scan's commands
        ssh_lab.log_path(name).write_text("")
    return _scan(ssh_lab, tmp_path_factory.mktemp("scan"))


@pytest.mark.parametrize("check", sorted(EXPECTED_DIFFERENCES))
def test_verdicts_follow_each_hosts_own_system(lab_result: ScanResult, check: str) -> None:
    """Same catalogue, same machine, two hosts: the hardened one passes, the weak one fails, and says why."""
    status, message = _status(lab_result, "hardened", check)
    assert status is Status.PASS, message
    status, message = _status(lab_result, "weak", check)
    assert status is Status.FAIL, message
    assert EXPECTED_DIFFERENCES[check].lower() in message.lower()


def test_the_effective_sshd_config_is_the_running_daemons(lab_result: ScanResult, ssh_lab: SSHLab) -> None:
    message = _status(lab_result, "hardened", "sshd.root_login_disabled")[1]
    assert str(ssh_lab.sshd_config_path("hardened")) in message


def test_missing_sudo_rule_is_an_error_not_a_prompt(lab_result: ScanResult) -> None:
    verdicts = [v for v in lab_result.verdicts if v.host == "nosudo" and v.check is not None]
    verdicts = [v for v in verdicts if v.status is not Status.NOT_APPLICABLE]  # outside its HDS activities
    assert verdicts and all(v.status is Status.ERROR for v in verdicts)
    assert all("a password is required" in v.message for v in verdicts)


def test_each_host_received_one_command(lab_result: ScanResult, ssh_lab: SSHLab) -> None:
    for host in lab_result.hosts:
        assert host.probe.connected and host.probe.commands == 1
        # weak's login.defs holds invalid UTF-8 and a fake marker line: its probe is complete all the same.
        assert host.probe.complete == (host.name != "nosudo"), host.probe.error
        # The daemon's own log (LogLevel DEBUG1) is the independent witness of what the host executed.
        execs = ssh_lab.log_path(host.name).read_text().count("request exec")
        assert 1 <= execs <= 2, (host.name, execs)


def test_controls_without_checks_are_reported_not_reviewed(lab_result: ScanResult) -> None:
    manual = [v for v in lab_result.verdicts if v.check is None]
    assert manual and all(v.status in (Status.NOT_REVIEWED, Status.NOT_APPLICABLE) for v in manual)
    assert {v.host for v in manual if v.status is Status.NOT_REVIEWED} == {"hardened", "weak", "nosudo"}


def test_unreachable_and_hanging_hosts_are_errors_and_others_complete(
    ssh_lab: SSHLab, tmp_path: Path
) -> None:
    port = closed_port("127.0.0.5")
    with HangingServer("127.0.0.6") as hanging:
        extra = (
            f"down = [('closed', {{'ssh_hostname': '127.0.0.5', 'ssh_port': {port}}}),\n"
            f"        ('hanging', {{'ssh_hostname': '127.0.0.6', 'ssh_port': {hanging.port}}})]\n"
        )
        result = _scan(ssh_lab, tmp_path, extra, connect_timeout=2.0)
        assert hanging.accepted >= 1
    for name in ("closed", "hanging"):
        # Controls scoped to roles these hosts lack say so; every other check is an error, none passes.
        verdicts = [v for v in result.verdicts if v.host == name and v.check is not None]
        judged = [
            v
            for v in verdicts
            if v.status is not Status.NOT_APPLICABLE or "applies to roles" not in v.message
        ]
        assert judged and all(v.status is Status.ERROR for v in judged), name
        assert all("unreachable" in v.message for v in judged)
    assert _status(result, "hardened", "sshd.root_login_disabled")[0] is Status.PASS
    assert _status(result, "weak", "sshd.root_login_disabled")[0] is Status.FAIL


def test_unknown_host_key_is_refused(ssh_lab: SSHLab, tmp_path: Path) -> None:
    """Strict host-key checking: an empty known_hosts file means no connection, never accept-new."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inventory = ssh_lab.write_inventory(
        tmp_path / "inv.py",
        {name: {**data, "ssh_known_hosts_file": str(empty)} for name, data in LAB_HOST_DATA.items()},
    )
    result = scan(load_catalog(), registry(), load_inventory(inventory), CollectOptions(connect_timeout=5))
    assert all(not h.probe.connected for h in result.hosts)
    assert empty.read_text() == ""  # nothing was appended


def test_large_probe_through_sudo(ssh_lab: SSHLab, tmp_path: Path) -> None:
    """`sudo -n -- sh -s` reads the script from stdin: no 128 KiB argument limit, no prompt."""
    inventory = load_inventory(ssh_lab.write_inventory(tmp_path / "inv.py", LAB_HOST_DATA))
    hardened = next(h for h in inventory.hosts if h.name == "hardened")
    script = "# padding\n" * 20_000 + "id -u"
    [raw] = collect(
        [HostJob(name="hardened", data=hardened.data, script=script, sudo=True)], CollectOptions()
    ).values()
    [first] = raw.rounds
    assert raw.connected and first.stdout == "0", (first.error, first.stdout[:200])


def test_ssh_connections_disable_nagle(ssh_lab: SSHLab, tmp_path: Path) -> None:
    inventory = load_inventory(ssh_lab.write_inventory(tmp_path / "inv.py", LAB_HOST_DATA))
    jobs = [HostJob(name=h.name, data=h.data, script="echo ok") for h in inventory.hosts]
    results = collect(jobs, CollectOptions(connect_timeout=5))
    assert all(r.connected and r.tcp_nodelay for r in results.values()), results
