"""Backups over real SSH: a backup host and two data hosts, scanned with the whole catalogue.

bk1 keeps a real restic repository (made here) and runs an append-only rest-server; data-pulled holds no
backup job and no key, and has a fresh snapshot on bk1; data-push pushes over SFTP with a password file and a
key that logs in to bk1 as root, its last snapshot is years old, and it sits in Switzerland. Each host is
scanned through the real collector (one probe per host over SSH), and the backup checks' verdicts follow
what each host really holds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_lab
from lab.sshlab import SSHLab, make_lab_root
from lab.verdicts import verdict_of
from test_backup_tools import Repos, keypair, needs

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan

PASSWD = Path("/etc/passwd").read_text()


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[SSHLab, dict[str, dict[str, Any]]]]:
    """The three hosts, started, with their inventory data."""
    needs_lab()
    needs("restic", "ssh-keygen")
    lab = SSHLab(make_lab_root())
    repos = Repos(lab.root / "backups")
    repo = repos.restic()
    repos.restic_backup(repo, "data-pulled")
    repos.restic_backup(repo, "data-push", "2020-01-01 00:00:00")
    key, public = keypair(lab.root / "data-push-keys", "id_ed25519")
    lab.add_host(
        "bk1",
        "127.0.17.1",
        sshd_options={"AuthorizedKeysFile": f"{lab.authorized_keys} /etc/ssh/authorized_keys/%u"},
        overlays=("/etc",),
        files={"/etc/ssh/authorized_keys/root": f"{public}\n"},
        processes=("rest-server --append-only --path /srv/restic --private-repos",),
    )
    lab.add_host("data-pulled", "127.0.17.2")
    lab.add_host(
        "data-push",
        "127.0.17.3",
        overlays=("/etc",),
        tmp_mount_options="",
        files={
            "/etc/passwd": PASSWD + "dbbackup:x:2991:2991:backups:/tmp/dbbackup:/bin/sh\n",
            "/etc/restic/password": "not-the-repository-password\n",
            "/etc/restic/db.env": f"RESTIC_REPOSITORY=sftp:root@127.0.17.1:{repo}\n"
            "RESTIC_PASSWORD_FILE=/etc/restic/password\n",
            "/etc/systemd/system/restic-backup.service": "[Service]\nEnvironmentFile=/etc/restic/db.env\n"
            "ExecStart=/usr/bin/restic backup /var/lib/postgresql\n",
            "/tmp/dbbackup/.ssh/id_ed25519": key.read_text(),
        },
        file_modes={"/etc/restic/password": 0o600, "/tmp/dbbackup/.ssh/id_ed25519": 0o600},
    )
    repository = {"tool": "restic", "repository": str(repo), "password_file": str(repos.password_file)}
    data = {
        "bk1": {"roles": ["backup"], "hds_activities": [6], "location_country": "FR"},
        "data-pulled": {"roles": ["database"], "hds_activities": [3, 4, 5], "location_country": "FR"},
        "data-push": {"roles": ["app"], "hds_activities": [4, 5], "location_country": "CH"},
    }
    data["bk1"]["backup_repositories"] = [repository]
    lab.start()
    try:
        yield lab, data
    finally:
        lab.stop()
        subprocess.run(["rm", "-rf", str(lab.root)], check=False)


@pytest.fixture(scope="module")
def result(
    lab: tuple[SSHLab, dict[str, dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> ScanResult:
    """One scan of the three hosts with the whole catalogue."""
    ssh_lab, data = lab
    inventory = ssh_lab.write_inventory(tmp_path_factory.mktemp("inventory") / "backup_lab.py", data)
    options = CollectOptions(connect_timeout=5.0, command_timeout=60.0)
    return scan(load_catalog(), registry(), load_inventory(inventory), options)


EXPECTED = {
    # check: {host: (status, substring of the message)}
    "fleet.backups_recent": {
        "data-pulled": (Status.PASS, "newest backup of data-pulled"),
        "data-push": (Status.FAIL, "newest backup of data-push is"),
        "bk1": (Status.NOT_APPLICABLE, "is a backup host"),
    },
    "fleet.backups_encrypted": {
        "data-pulled": (Status.PASS, "AES-256"),
        "data-push": (Status.PASS, "AES-256"),
        "bk1": (Status.PASS, "AES-256"),
    },
    "fleet.backups_out_of_reach": {
        "data-pulled": (Status.PASS, "data-pulled is pulled"),
        "data-push": (Status.FAIL, "/tmp/dbbackup/.ssh/id_ed25519 logs in to bk1 as root"),
    },
    "fleet.storage_in_eea": {
        "data-pulled": (Status.PASS, "data-pulled in FR"),
        "data-push": (Status.FAIL, "data-push is located in CH, outside the EEA"),
        "bk1": (Status.PASS, "bk1 in FR"),
    },
    "backup.repositories_readable": {"bk1": (Status.PASS, "backups of 2 hosts")},
    "backup.password_files_private": {"bk1": (Status.PASS, "readable by their owner only")},
    "backup.rest_server_append_only": {"bk1": (Status.PASS, "rest-server --append-only --path /srv/restic")},
    "backup.borg_serve_append_only": {"bk1": (Status.NOT_APPLICABLE, "no authorized key on bk1 is forced")},
}
CASES = [(check, host) for check, hosts in EXPECTED.items() for host in hosts]


@pytest.mark.parametrize(("check", "host"), CASES, ids=[f"{c}@{h}" for c, h in CASES])
def test_backup_verdicts_follow_what_each_host_holds(result: ScanResult, check: str, host: str) -> None:
    """Each host's verdict for each backup check, with what was found in the message."""
    status, message = verdict_of(result, host, check)
    expected, text = EXPECTED[check][host]
    assert status is expected, message
    assert text in message


def test_the_push_failure_names_every_path(result: ScanResult) -> None:
    """data-push fails for its SFTP repository and for its key, both named with where they are configured."""
    _, message = verdict_of(result, "data-push", "fleet.backups_out_of_reach")
    assert "(/etc/restic/db.env:1): an SFTP login can delete snapshots" in message
    assert "(/etc/ssh/authorized_keys/root:1) with no forced command" in message


def test_no_password_enters_the_scan(result: ScanResult) -> None:
    """Neither repository password is in any capture of any host."""
    text = result.model_dump_json()
    assert "not-the-repository-password" not in text
    assert "Tr0ub4dor" not in text


def test_the_backup_host_was_probed_once(result: ScanResult) -> None:
    """All of bk1's backup facts came back in its one probe (no write, one command)."""
    [bk1] = [h for h in result.hosts if h.name == "bk1"]
    assert bk1.probe.connected and bk1.probe.commands == 1, bk1.probe.error
    keys = {c.fact for c in bk1.captures}
    assert {"ssh-authorized", "process-table:rest-server"} <= keys
    assert any(k.startswith("restic:") for k in keys)
