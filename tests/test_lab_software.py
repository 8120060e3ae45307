"""The software area over real SSH: two lab hosts built compliant and non-compliant for the software
controls, scanned with the whole catalogue through the real collector; each host's verdicts for the
area's checks follow what that host shows (its dpkg status, apt sources and configuration, postfix,
AIDE's files, ClamAV's databases, processes, OpenSSL configuration, GRUB, cron).

The lab hosts share this machine's kernel and network namespace: listening sockets, AppArmor/SELinux and
dm-crypt are the same for both and are judged in tests/test_software_semantics.py and the recorded
captures instead.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs_lab
from lab.sshlab import SSHLab, make_lab_root
from lab.verdicts import verdict_of
from software_env import DEBIAN_MAIN, DEBIAN_SECURITY, aide_files, candidate, clam_databases, dpkg_status

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan

SOURCES = DEBIAN_MAIN
SECURITY = "\n" + DEBIAN_SECURITY.format(option="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")
VENDOR = "Types: deb\nURIs: http://vendor.example.org/apt\nSuites: stable\nComponents: main\nTrusted: yes\n"
AUTO = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
GRUB_CFG = 'set default="0"\nmenuentry Debian --class debian {\n\tlinux /vmlinuz root=/dev/vda1 ro\n}\n'
PASSWORD = (
    'set superusers="admin"\npassword_pbkdf2 admin grub.pbkdf2.sha512.10000.'
    + "AB" * 32
    + "."
    + "CD" * 32
    + "\n"
)

# check -> (substring of the weak host's failure). The hardened host passes each.
EXPECTED = {
    "packages.apt_sources_authenticated": "hds-vendor.sources stanza 1",
    "packages.security_updates_applied": "no security archive among apt's sources",
    "packages.automatic_security_updates": "APT::Periodic::Enable is 0",
    "packages.forbidden_absent": "telnetd",
    "mail.local_only": "follows inet_interfaces = all",
    "integrity.aide_database_present": "aide.db (database_in of /etc/aide/aide.conf) does not exist",
    "integrity.aide_check_scheduled": "nothing schedules an AIDE check",
    "integrity.aide_report_recent": "no AIDE report found",
    "cron.permissions_restricted": "/etc/cron.d/backup mode 0666",
    "malware.agent_running": "none of clamd",
    "malware.signatures_fresh": "no ClamAV daily signature database",
    "monitoring.agent_running": "none of zabbix_agentd",
    "crypto.openssl_min_protocol": "OpenSSL accepts TLSv1 by default",
    "boot.grub_password_set": "sets no superusers",
}


def _candidate(name: str) -> str:
    found = candidate(name)
    if found is None:
        pytest.skip(f"apt's lists on this machine do not know {name}")
    return found[0]


@pytest.fixture(scope="module")
def software_lab() -> Iterator[SSHLab]:
    """sw-good and sw-weak on 127.0.15.x, each with its own view of the software area's files."""
    needs_lab()
    for tool in ("aide", "postconf", "apt-get"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (the software area's package list)")
    if not Path("/etc/cron.daily/aide").exists() or not Path("/etc/grub.d/40_custom").exists():
        pytest.skip("needs aide-common's /etc/cron.daily/aide and grub-common's /etc/grub.d/40_custom")
    lab = SSHLab(make_lab_root())
    work = lab.root / "software"
    db, report, _cut = aide_files(work / "aide")
    clam = clam_databases(work / "clamav", int(time.time()) - 7200)
    packages = ["linux-libc-dev", "distro-info-data", "unattended-upgrades"]
    current = [(name, _candidate(name), "installed") for name in packages]
    telnetd = ("telnetd", "0.17+2.4-2", "installed")  # any version: only dpkg reads it
    main_cf = Path("/etc/postfix/main.cf").read_text()
    openssl = Path("/etc/ssl/openssl.cnf").read_text()
    seclevel0 = openssl.replace(
        "[openssl_init]\n",
        "[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = sd\n"
        "[sd]\nCipherString = DEFAULT@SECLEVEL=0\n",
        1,
    )
    custom = Path("/etc/grub.d/40_custom").read_text()
    freshclam = Path("/etc/clamav/freshclam.conf")
    # freshclam keeps the last DatabaseDirectory: sw-good's signatures are in /srv, /var/lib/clamav is empty
    moved = (freshclam.read_text() if freshclam.exists() else "") + "DatabaseDirectory /srv\n"
    lab.add_host(
        "sw-good",
        "127.0.15.2",
        overlays=("/etc", "/boot"),
        processes=("cron", "clamd", "freshclam", "zabbix_agentd"),
        files={
            "/var/lib/dpkg/status": dpkg_status(*current, relations=False),
            "/etc/apt/sources.list.d/debian.sources": SOURCES + SECURITY,
            "/etc/apt/apt.conf.d/20auto-upgrades": AUTO,
            "/etc/postfix/main.cf": main_cf.replace(
                "inet_interfaces = all", "inet_interfaces = loopback-only"
            ),
            "/boot/grub/grub.cfg": GRUB_CFG + PASSWORD,
            "/etc/grub.d/40_custom": custom + PASSWORD,
            "/etc/clamav/freshclam.conf": "DatabaseDirectory /var/lib/clamav\n" + moved,
        },
        dirs={
            "/var/lib/aide": {"aide.db": db.read_bytes()},
            "/var/log/aide": {"aide.log": report.read_bytes()},
            "/var/lib/clamav": {},
            "/srv": {p.name: p.read_bytes() for p in clam.iterdir()},
        },
        file_modes={"/boot/grub/grub.cfg": 0o600},
    )
    lab.add_host(
        "sw-weak",
        "127.0.15.3",
        overlays=("/etc", "/boot"),
        processes=("sshd",),
        files={
            "/var/lib/dpkg/status": dpkg_status(*current, telnetd, relations=False),
            "/etc/apt/sources.list.d/debian.sources": SOURCES,
            "/etc/apt/sources.list.d/hds-vendor.sources": VENDOR,
            "/etc/apt/apt.conf.d/20auto-upgrades": AUTO,
            "/etc/apt/apt.conf.d/99hds": 'APT::Periodic::Enable "0";\n',
            "/etc/postfix/main.cf": main_cf.replace(
                "inet_interfaces = loopback-only", "inet_interfaces = all"
            ),
            "/etc/ssl/openssl.cnf": seclevel0,
            "/etc/cron.d/backup": "0 1 * * * root /usr/local/bin/backup\n",
            "/boot/grub/grub.cfg": GRUB_CFG,
        },
        dirs={"/var/lib/aide": {}, "/var/log/aide": {}, "/var/lib/clamav": {}},
        absent=("/etc/cron.daily/aide",),
        file_modes={"/etc/cron.d/backup": 0o666, "/boot/grub/grub.cfg": 0o644},
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


@pytest.fixture(scope="module")
def result(software_lab: SSHLab, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    data = {
        name: {"hds_activities": [2, 3, 4, 5], "roles": ["database"], "location_country": "FR"}
        for name in software_lab.hosts
    }
    inventory = software_lab.write_inventory(tmp_path_factory.mktemp("sw") / "inventory.py", data)
    options = CollectOptions(connect_timeout=5.0, command_timeout=60.0)
    return scan(load_catalog(), registry(), load_inventory(inventory), options)


@pytest.mark.parametrize("check", sorted(EXPECTED))
def test_software_verdicts_follow_each_hosts_own_state(result: ScanResult, check: str) -> None:
    """Same catalogue, same machine: sw-good passes the check, sw-weak fails it and says why."""
    status, message = verdict_of(result, "sw-good", check)
    assert status is Status.PASS, message
    status, message = verdict_of(result, "sw-weak", check)
    assert status is Status.FAIL, message
    assert EXPECTED[check].lower() in message.lower()


def test_grub_cfg_permissions_of_the_boot_control(result: ScanResult) -> None:
    """BOOT-01 also holds grub.cfg to 0600 through the shared permissions check."""
    grub = {"control": "BOOT-01", "path": "/boot/grub/grub.cfg"}
    assert verdict_of(result, "sw-good", "files.permissions_at_most", **grub)[0] is Status.PASS
    status, message = verdict_of(result, "sw-weak", "files.permissions_at_most", **grub)
    assert status is Status.FAIL and "others read" in message, message


def test_probes_stay_within_two_commands(result: ScanResult) -> None:
    """The area's facts add no round trip beyond the probe's two."""
    for host in result.hosts:
        assert host.probe.connected and host.probe.complete and host.probe.commands <= 2, host.probe
