"""The kernel area over real SSH: two lab hosts, one built compliant and one not, scanned with the catalogue.

The hosts share this machine's kernel and network namespace, so what differs between them is what each
sees in its own mount namespace: sysctl.d, modprobe.d and limits.d files, /etc/fstab, its /tmp mount, /boot
and /srv. Live kernel values (identical for both) decide nothing here; the netns tests cover them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

HARDENED, WEAK = "krn-hardened", "krn-weak"
# This machine's live values that the hardened host's sysctl.d must match (sysctl.configuration_applied).
LIVE_SYSCTL = "fs.suid_dumpable = 0\nkernel.dmesg_restrict = 1\n"
# Paths other labs and tests of this machine write to (the lab roots live in /var/tmp): not ours to judge.
SKIP = "/var/lib/docker,/var/spool/postfix,/run/sudo,/var/tmp"

# (check, parameters that pick the reference) -> substring of the weak host's failure.
EXPECTED: dict[tuple[str, tuple[tuple[str, Any], ...]], str] = {
    ("mounts.options_present", (("path", "/tmp"),)): "is mounted without noexec",
    ("sysctl.value", (("name", "fs.suid_dumpable"),)): "no file in /etc/sysctl.d",
    ("sysctl.configuration_applied", ()): "differ now",
    ("kernel.modules_blocked", (("modules", ("usb-storage",)),)): "no rule stops `modprobe usb-storage`",
    ("kernel.core_dumps_limited", ()): "no '* hard core 0' line",
    ("mounts.boot_protected", ()): "/boot is 0755",
    ("walk.world_writable_dirs_sticky", ()): "/srv",
}


@pytest.fixture(scope="module")
def kernel_lab() -> Iterator[SSHLab]:
    """Two sshd hosts on 127.0.12.x with their own /etc (overlay), /usr/lib/sysctl.d, /tmp, /boot, /srv."""
    needs_lab()
    lab = SSHLab(make_lab_root())
    lab.add_host(
        HARDENED,
        "127.0.12.2",
        overlays=("/etc", "/usr/lib/sysctl.d"),
        # Debian's own files set values this VM never applied (it boots without systemd-sysctl).
        absent=("/usr/lib/sysctl.d/50-pid-max.conf", "/usr/lib/sysctl.d/99-protect-links.conf"),
        tmp_mount_options="nosuid,nodev,noexec,mode=1777",
        files={
            "/etc/sysctl.d/90-hds.conf": LIVE_SYSCTL,
            "/etc/modprobe.d/hds-storage.conf": "install usb-storage /bin/false\nblacklist usb-storage\n",
            "/etc/security/limits.d/90-hds-core.conf": "* hard core 0\n",
            "/etc/fstab": "tmpfs /tmp tmpfs nosuid,nodev,noexec,mode=1777 0 0\n",
        },
        dirs={"/boot": {}},
        file_modes={"/boot": 0o700},
        sshd_options={"LogLevel": "ERROR"},
    )
    lab.add_host(
        WEAK,
        "127.0.12.3",
        overlays=("/etc",),
        tmp_mount_options="nosuid,nodev,mode=1777",
        files={"/etc/fstab": "tmpfs /tmp tmpfs defaults 0 0\n"},
        dirs={"/srv": {"drop.txt": "anyone may replace this\n"}},
        file_modes={"/srv": 0o777},
        sshd_options={"LogLevel": "ERROR"},
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


@pytest.fixture(scope="module")
def result(kernel_lab: SSHLab, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    data = {name: {"hds_activities": [3, 4, 5], "roles": ["database"]} for name in (HARDENED, WEAK)}
    inventory = kernel_lab.write_inventory(tmp_path_factory.mktemp("kernel") / "inventory.py", data)
    catalog = load_catalog(overrides={"walk_skip_paths": SKIP, "blocked_storage_modules": "usb-storage"})
    options = CollectOptions(connect_timeout=5.0, command_timeout=60.0)
    return scan(catalog, registry(), load_inventory(Path(inventory)), options)


@pytest.mark.parametrize(("check", "picks"), sorted(EXPECTED), ids=[c for c, _ in sorted(EXPECTED)])
def test_hardened_host_passes_and_weak_host_fails(
    result: ScanResult, check: str, picks: tuple[tuple[str, Any], ...]
) -> None:
    """Same catalogue, same kernel, two hosts: each verdict follows the host's own files and mounts."""
    status, message = verdict_of(result, HARDENED, check, **dict(picks))
    assert status is Status.PASS, message
    status, message = verdict_of(result, WEAK, check, **dict(picks))
    assert status is Status.FAIL, message
    assert EXPECTED[(check, picks)] in message


def test_both_hosts_were_probed_with_one_command(result: ScanResult) -> None:
    for host in result.hosts:
        assert host.probe.connected and host.probe.complete, host.probe.error
        assert host.probe.commands <= 2
