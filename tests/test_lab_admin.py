"""Administration across the fleet over real SSH: two bastions (one records sessions and sends them to a log
server, one records nothing) and a database host, scanned by the real collector with the whole catalogue,
then the same inventory scanned with --limit leaving the bastions out.

Each lab host sees its own /etc through an overlay. The kernel refuses audit requests from the lab's PID
namespaces, so each host's auditctl is a stand-in saying what the real one says here: no rule loaded.
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

AUDITCTL = (
    '#!/bin/sh\ncase "$1" in -l) echo "No rules";; -s) printf "enabled 0\\nfailure 1\\npid 0\\n";; esac\n'
)
ADMINS = "alice:x:1001:1001:Alice:/home/alice:/bin/bash\n"
RECORDING = "Defaults log_output\nDefaults log_servers=logs.example.fr:30344\n"
HOSTS = {
    "bastion-rec": ("127.0.18.2", ["bastion"], RECORDING),
    "bastion-bare": ("127.0.18.3", ["bastion"], ""),
    "db1": ("127.0.18.4", ["database"], ""),
}


def _sudoers_d() -> tuple[str, ...]:
    folder = Path("/etc/sudoers.d")
    return tuple(str(p) for p in sorted(folder.iterdir())) if folder.is_dir() else ()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SSHLab, Path]]:
    """The three hosts, started once, and the inventory naming them."""
    needs_lab()
    lab = SSHLab(make_lab_root())
    for name, (address, _roles, dropin) in HOSTS.items():
        files: dict[str, str | bytes] = {
            "/usr/sbin/auditctl": AUDITCTL,
            "/etc/passwd": Path("/etc/passwd").read_text() + ADMINS,
            "/etc/sudoers": "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\nalice ALL=(ALL) ALL\n"
            "@includedir /etc/sudoers.d\n",
        }
        if dropin:
            files["/etc/sudoers.d/hds"] = dropin
        lab.add_host(
            name,
            address,
            files=files,
            file_modes={"/usr/sbin/auditctl": 0o755, "/etc/sudoers": 0o440},
            overlays=("/etc",),
            absent=tuple(p for p in _sudoers_d() if p not in files),
        )
    lab.start()
    try:
        data = {
            n: {"roles": roles, "hds_activities": [5], "location_country": "FR"}
            for n, (_, roles, _) in HOSTS.items()
        }
        yield lab, lab.write_inventory(tmp_path_factory.mktemp("inv") / "inventory.py", data)
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


def _scan(inventory: Path, only: list[str] | None = None) -> ScanResult:
    loaded = load_inventory(inventory)
    outside = [h for h in loaded.hosts if only is not None and h.name not in only]
    if only is not None:
        loaded.hosts = [h for h in loaded.hosts if h.name in only]
    options = CollectOptions(connect_timeout=10.0, command_timeout=60.0)
    return scan(load_catalog(skip_tags=["fs-walk"]), registry(), loaded, options, outside=outside)


@pytest.fixture(scope="module")
def whole(lab: tuple[SSHLab, Path]) -> ScanResult:
    return _scan(lab[1])


def test_a_bastion_that_sends_its_recordings_away_passes(whole: ScanResult) -> None:
    status, message = verdict_of(whole, "bastion-rec", "bastion.sessions_recorded", control="ADM-02")
    assert status is Status.PASS, message
    assert "sent to the log server(s) logs.example.fr:30344" in message


def test_a_bastion_without_session_recording_fails(whole: ScanResult) -> None:
    status, message = verdict_of(whole, "bastion-bare", "bastion.sessions_recorded", control="ADM-02")
    assert status is Status.FAIL and "no session recording" in message, message


def test_the_recording_control_applies_to_bastions_only(whole: ScanResult) -> None:
    status, message = verdict_of(whole, "db1", "bastion.sessions_recorded", control="ADM-02")
    assert status is Status.NOT_APPLICABLE and "roles ['bastion']" in message, message


def test_every_host_sees_the_fleet_has_a_bastion(whole: ScanResult) -> None:
    for host in HOSTS:
        assert (
            verdict_of(whole, host, "fleet.role_present", control="ADM-04", role="bastion")[0] is Status.PASS
        )


def test_bastions_left_out_of_the_scan_make_it_not_reviewed_never_pass(lab: tuple[SSHLab, Path]) -> None:
    """--limit db1: the fleet check that needs the bastions cannot pass, and says why."""
    result = _scan(lab[1], only=["db1"])
    assert [h.name for h in result.hosts] == ["db1"]
    assert result.run.scope is not None and set(result.run.scope.outside) == {"bastion-rec", "bastion-bare"}
    status, message = verdict_of(result, "db1", "fleet.role_present", control="ADM-04", role="bastion")
    assert status is Status.NOT_REVIEWED and "outside this scan" in message, message
