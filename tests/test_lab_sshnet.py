"""SSH lab for the sshnet area: real sshd hosts on 127.0.11.x scanned through the real collector with the
shipped catalogue: a bastion, a hardened data host that admits SSH logins from the bastion only, a weak data
host open to every source, and one that admits a source which is not a bastion.

The lab hosts share this machine's network namespace: their packet filter is the machine's, so the firewall
verdicts are not asserted here (tests/test_firewall_semantics.py judges rulesets in namespaces of their own);
the fleet verdict rests on each host's sshd, read over SSH in both probe rounds. A daemon that listens on
loopback only takes no remote administration at all, so the data hosts also listen on this machine's own
address (the one the bastion's probe reports), on a port of their own.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SCANNER, SUDOERS_HARDENED, _passwd, _shadow, needs_lab
from lab.sshlab import SSHLab, make_lab_root
from lab.verdicts import verdict_of

from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions
from hds_compliance.inventory import load_inventory
from hds_compliance.model import ScanResult, Status
from hds_compliance.scan import scan


def _machine_address() -> str | None:
    """A non-loopback IPv4 address of this machine: what the bastion's own probe reports (shared netns)."""
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        address = ipaddress.ip_address(line.split()[3].split("/")[0])
        if not address.is_loopback and not address.is_link_local:
            return str(address)
    return None


BASTION_ADDRESS = _machine_address()

HARDENED = {
    "PermitRootLogin": "no",
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "no",
    "DisableForwarding": "yes",
    "PermitTunnel": "no",
    "GatewayPorts": "no",
    "LogLevel": "VERBOSE",
    # The scanner logs in from 127.0.0.1 (local, not remote administration); admins only from the bastion.
    "AllowUsers": f"{SCANNER}@127.0.0.1 {SCANNER}@{BASTION_ADDRESS or '192.0.2.1'}",
    "MaxAuthTries": "3",
    "LoginGraceTime": "30",
    "MaxSessions": "4",
    "MaxStartups": "10:30:60",
    "ClientAliveInterval": "300",
    "ClientAliveCountMax": "3",
    "ChannelTimeout": "session:*=15m",
    "RequiredRSASize": "3072",
    "Ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
    "MACs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    "KexAlgorithms": "curve25519-sha256,curve25519-sha256@libssh.org",
    "HostKeyAlgorithms": "ssh-ed25519",
}
WEAK = {"X11Forwarding": "yes", "GatewayPorts": "yes", "LoginGraceTime": "0", "PermitTunnel": "no"}

# Check (with its distinguishing parameter) -> what the weak host's message says; the hardened host passes.
DIFFERENCES = {
    "sshd.root_login_disabled": "PermitRootLogin is without-password",
    "sshd.forwarding_disabled": "x11forwarding yes",
    "sshd.unix_socket_forwarding_disabled": "AllowStreamLocalForwarding is yes",
    "sshd.tunnel_disabled": "PermitTunnel is yes in the effective configuration of",
    "sshd.gateway_ports_disabled": "GatewayPorts is yes with remote TCP forwarding allowed",
    "sshd.log_level_verbose": "LogLevel is ERROR",
    "sshd.allow_list_defined": "neither AllowUsers nor AllowGroups",
    "sshd.idle_sessions_closed": "no ChannelTimeout applies",
    "sshd.unresponsive_clients_disconnected": "ClientAliveInterval is 0",
    "sshd.max_startups_bounded": "MaxStartups 200:30:400",
    "sshd.required_rsa_size": "RequiredRSASize is 1024",
    "sshd.weak_algorithms_disabled": "umac-64",
    "sshd.option_at_most logingracetime": "logingracetime is 0: 0 means no time limit",
}


def _free_port(address: str, after: int) -> int:
    for port in range(after + 1, after + 200):
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {address}")


@pytest.fixture(scope="module")
def sshnet_lab() -> Iterator[SSHLab]:
    """bastion, hardened, weak, elsewhere on 127.0.11.1-4; the data hosts also on this machine's address."""
    needs_lab()
    if BASTION_ADDRESS is None:
        pytest.skip("this machine has no non-loopback IPv4 address for the bastion to report")
    lab = SSHLab(make_lab_root())
    lab.root.chmod(0o755)  # the unprivileged scanner reads authorized_keys
    lab.authorized_keys.chmod(0o644)
    ports = [_free_port(BASTION_ADDRESS, lab.port)]
    for _ in range(2):
        ports.append(_free_port(BASTION_ADDRESS, ports[-1]))
    remote = [f"ListenAddress {BASTION_ADDRESS}:{port}\n" for port in ports]
    passwd = _passwd()
    lab.add_host("bastion", "127.0.11.1")
    lab.add_host(
        "hardened",
        "127.0.11.2",
        login_user=SCANNER,
        sshd_options=HARDENED,
        files={"/etc/passwd": passwd, "/etc/shadow": _shadow(passwd, {}), "/etc/sudoers": SUDOERS_HARDENED},
        file_modes={"/etc/sudoers": 0o440, "/etc/shadow": 0o640},
        # A block for a group nobody is in: collected in the second round, reported as reaching nobody.
        sshd_config_extra=remote[0] + "Match Group sftponly\n  ForceCommand internal-sftp\n",
    )
    lab.add_host(
        "weak",
        "127.0.11.3",
        sshd_options=WEAK,
        sshd_config_extra=remote[1] + "Match Address 10.0.0.0/8\n  PermitTunnel yes\n",
    )
    lab.add_host(
        "elsewhere",
        "127.0.11.4",
        sshd_options={"AllowUsers": "root@127.0.0.1 root@10.99.0.9"},
        sshd_config_extra=remote[2],
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)


@pytest.fixture(scope="module")
def result(sshnet_lab: SSHLab, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    data: dict[str, dict[str, object]] = {
        "bastion": {"roles": ["bastion"]},
        "hardened": {"roles": ["database"], "hds_sudo": True},
        "weak": {"roles": ["database"]},
        "elsewhere": {"roles": ["storage"]},
    }
    for host in data.values():
        host.update({"hds_activities": [3, 4, 5], "location_country": "FR"})
    inventory = sshnet_lab.write_inventory(tmp_path_factory.mktemp("inv") / "inventory.py", data)
    options = CollectOptions(connect_timeout=5.0, command_timeout=30.0)
    return scan(load_catalog(), registry(), load_inventory(inventory), options)


def _verdict(result: ScanResult, host: str, check: str) -> tuple[Status, str]:
    """``check`` is a check id, or "id name" for sshd.option_* checks of one keyword."""
    check_id, _, name = check.partition(" ")
    return verdict_of(result, host, check_id, **({"name": name} if name else {}))


@pytest.mark.parametrize("check", sorted(DIFFERENCES))
def test_hardened_passes_and_weak_fails(result: ScanResult, check: str) -> None:
    status, message = _verdict(result, "hardened", check)
    assert status is Status.PASS, message
    status, message = _verdict(result, "weak", check)
    assert status is Status.FAIL, message
    assert DIFFERENCES[check].lower() in message.lower()


def test_match_blocks_are_judged_over_ssh(result: ScanResult) -> None:
    """Both probe rounds ran over SSH: the weak host's tunnel comes from its Match Address block."""
    message = _verdict(result, "weak", "sshd.tunnel_disabled")[1]
    assert "for connections matching 'Match Address 10.0.0.0/8' (sshd -T -C" in message
    message = _verdict(result, "hardened", "sshd.root_login_disabled")[1]
    assert "'Match Group sftponly' not judged: no account of group sftponly on the host" in message
    rounds = {h.name: h.probe.commands for h in result.hosts}
    assert rounds["hardened"] == 2 and rounds["weak"] == 2 and rounds["bastion"] == 1, rounds


def test_ssh_admin_only_from_bastions(result: ScanResult) -> None:
    """The bastion reports its own addresses; each data host is judged from its own sshd."""
    assert _verdict(result, "bastion", "fleet.ssh_admin_only_from_bastions")[0] is Status.NOT_APPLICABLE
    status, message = _verdict(result, "weak", "fleet.ssh_admin_only_from_bastions")
    assert status is Status.FAIL and "0.0.0.0/0 (IPv4)" in message and "every source" in message
    status, message = _verdict(result, "elsewhere", "fleet.ssh_admin_only_from_bastions")
    assert status is Status.FAIL and "open to logins from 10.99.0.9/32 (IPv4)" in message
    status, message = _verdict(result, "hardened", "fleet.ssh_admin_only_from_bastions")
    assert status is Status.PASS and BASTION_ADDRESS in message, message


def test_lab_paths_are_in_the_messages(result: ScanResult, sshnet_lab: SSHLab) -> None:
    """The verdicts name the config file the running daemon was started with (-f), not the default one."""
    message = _verdict(result, "hardened", "sshd.log_level_verbose")[1]
    assert str(sshnet_lab.sshd_config_path("hardened")) in message
    assert Path(sshnet_lab.sshd_config_path("weak")).exists()
