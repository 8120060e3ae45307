"""Through the bastion: a data host that only its bastion can reach, scanned through it (ProxyJump).

Three network namespaces made here: the scanner's, the bastion's, the data host's. The scanner reaches the
bastion (10.203.1.0/24) and nothing else; the bastion also reaches the data host (10.203.2.0/24). The data
host is judged through the bastion with one probe command on the data host, and nothing run on the
bastion (its sshd only relays a ``direct-tcpip`` channel); without the jump host it is unreachable, and a
bastion whose host key is not known is refused, never prompted for.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs_lab
from lab.sshlab import SSHLab, make_lab_root

EXE = Path(sys.executable).with_name("hds-compliance")
BASTION, DATA = "10.203.1.2", "10.203.2.2"
_OPTIONS = ("-q", "--profile", "minimal", "--connect-timeout", "5")


@pytest.fixture(scope="module")
def jump_lab() -> Iterator[tuple[SSHLab, str]]:
    """The bastion and the data host started in their namespaces; yields the lab and the scanner's netns."""
    needs_lab()
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")
    tag = secrets.token_hex(3)
    scan_ns, jump_ns, data_ns = f"hds-js-{tag}", f"hds-jj-{tag}", f"hds-jd-{tag}"
    links = [(scan_ns, f"js{tag}", "10.203.1.1/24", jump_ns, f"jb{tag}", f"{BASTION}/24")]
    links.append((jump_ns, f"jc{tag}", "10.203.2.1/24", data_ns, f"jd{tag}", f"{DATA}/24"))
    commands = []
    for ns in (scan_ns, jump_ns, data_ns):
        commands += [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"]]
    for ns_a, dev_a, addr_a, ns_b, dev_b, addr_b in links:
        commands += [
            ["ip", "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b],
            ["ip", "-n", ns_a, "addr", "add", addr_a, "dev", dev_a],
            ["ip", "-n", ns_b, "addr", "add", addr_b, "dev", dev_b],
            ["ip", "-n", ns_a, "link", "set", dev_a, "up"],
            ["ip", "-n", ns_b, "link", "set", dev_b, "up"],
        ]
    lab = SSHLab(make_lab_root())
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        # the bastion relays (AllowTcpForwarding) and logs the channels it opens (DEBUG1)
        lab.add_host("bastion", BASTION, netns=jump_ns, sshd_options={"LogLevel": "DEBUG1"})
        lab.add_host(
            "db1", DATA, netns=data_ns, sshd_options={"LogLevel": "DEBUG1", "PasswordAuthentication": "yes"}
        )
        lab.start()
        yield lab, scan_ns
    finally:
        lab.stop()
        for ns in (scan_ns, jump_ns, data_ns):
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)
        shutil.rmtree(lab.root, ignore_errors=True)


def _scan(lab: SSHLab, scan_ns: str, tmp_path: Path, jump: str | None, **extra: object) -> dict[str, dict]:
    data: dict[str, dict[str, object]] = {name: {"hds_activities": [5], **extra} for name in lab.hosts}
    if jump is not None:
        data["db1"]["hds_ssh_jump"] = jump
    inventory = lab.write_inventory(tmp_path / "inv.py", data)
    for name in lab.hosts:
        lab.log_path(name).write_text("")
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            scan_ns,
            str(EXE),
            "scan",
            "-i",
            str(inventory),
            "--json",
            "r.json",
            *_OPTIONS,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode in (0, 1), done.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    return {h["name"]: h for h in results["hosts"]} | {"verdicts": results["verdicts"]}  # type: ignore[dict-item]


def test_without_the_jump_host_the_data_host_is_unreachable(
    jump_lab: tuple[SSHLab, str], tmp_path: Path
) -> None:
    lab, scan_ns = jump_lab
    hosts = _scan(lab, scan_ns, tmp_path, None)
    assert hosts["bastion"]["probe"]["connected"]
    assert not hosts["db1"]["probe"]["connected"]
    assert "unreachable" in hosts["db1"]["probe"]["error"].lower(), hosts["db1"]["probe"]["error"]


@pytest.mark.parametrize("jump", ["bastion", f"root@{BASTION}"])
def test_the_data_host_is_scanned_through_its_bastion(
    jump_lab: tuple[SSHLab, str], tmp_path: Path, jump: str
) -> None:
    lab, scan_ns = jump_lab
    hosts = _scan(lab, scan_ns, tmp_path, jump if "@" not in jump else f"{jump}:{lab.port}")
    probe = hosts["db1"]["probe"]
    logs = {name: lab.log_path(name).read_text()[-1500:] for name in lab.hosts}
    assert probe["connected"] and probe["complete"] and probe["commands"] == 1, (probe, logs)
    # db1's own sshd was read (the bastion refuses passwords, db1 does not)
    password = {
        v["host"]: v["status"]
        for v in hosts["verdicts"]
        if v["check"] == "sshd.password_authentication_disabled"
    }
    assert password == {"bastion": "pass", "db1": "fail"}, password
    relay = lab.log_path("bastion").read_text()
    assert f"to {DATA} port {lab.port}" in relay, relay[-2000:]  # the bastion opened the channel to db1
    data_log = lab.log_path("db1").read_text()
    assert data_log.count("Starting session: command") == 1, data_log[-2000:]


def test_a_bastion_with_an_unknown_host_key_is_refused_not_prompted(
    jump_lab: tuple[SSHLab, str], tmp_path: Path
) -> None:
    lab, scan_ns = jump_lab
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(line for line in lab.known_hosts.read_text().splitlines(True) if BASTION not in line)
    )
    hosts = _scan(lab, scan_ns, tmp_path, "bastion", ssh_known_hosts_file=str(known))
    assert not hosts["db1"]["probe"]["connected"]
    assert "host key" in hosts["db1"]["probe"]["error"].lower() or BASTION in hosts["db1"]["probe"]["error"]
