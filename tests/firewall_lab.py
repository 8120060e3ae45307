"""Packet-filter scenarios loaded by the real tools (nft, iptables, ufw) into network namespaces of the tests.

Each scenario is a function that loads rules into a fresh namespace (``ip netns add hds-sshnet-fw<n>``,
deleted afterwards); the probe's own firewall snippet then dumps them there. ufw runs in a private mount
namespace over a copy of /etc/ufw, with its sysctl file emptied: nothing changes on the machine. The
firewalld rulesets in ``tests/data/firewall`` are what firewalld 1.3.3 (Debian's package) loaded in such a
namespace, with a private D-Bus, for its default ``public`` zone and for SSH restricted by a rich rule to
one bastion.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facts.record import run

from hds_compliance.facts import Fact, Sysctl
from hds_compliance.facts.firewall import FirewallRules
from hds_compliance.facts.sshd import SshdEffectiveConfig
from hds_compliance.model import Capture

DATA = Path(__file__).parent / "data" / "firewall"
FACTS: list[Fact[Any]] = [FirewallRules(), SshdEffectiveConfig(), Sysctl("net.ipv6.conf.all.disable_ipv6")]
_COUNTER = itertools.count()


def can_run() -> bool:
    """Root, iproute2 and nft: what these scenarios need."""
    return os.geteuid() == 0 and all(
        shutil.which(t) for t in ("ip", "nft", "iptables-legacy-restore", "ufw", "unshare")
    )


def sh(namespace: str, script: str, stdin: str | None = None) -> None:
    """Run ``script`` inside the namespace; raise with its output if it fails."""
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, "sh", "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script!r} failed in {namespace}: {done.stdout}{done.stderr}")


@contextmanager
def namespace() -> Iterator[str]:
    """A fresh network namespace of this area, deleted on exit."""
    name = f"hds-sshnet-fw{os.getpid() % 10000}-{next(_COUNTER)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def captures(name: str) -> dict[str, Capture]:
    """The probe's firewall, sshd and IPv6 captures for a namespace."""
    return {c.fact: c for c in run(FACTS, f"ip netns exec {shlex.quote(name)}")}


def nft(text: str) -> Callable[[str, Path], None]:
    """A scenario: ``nft -f`` of a ruleset."""
    return lambda ns, _tmp: sh(ns, "nft -f -", text)


def nft_json(path: Path) -> Callable[[str, Path], None]:
    """A scenario: ``nft -j -f`` of a recorded JSON ruleset."""
    return lambda ns, _tmp: sh(ns, f"nft -j -f {shlex.quote(str(path))}")


def iptables(rules: str, tool: str = "iptables-legacy-restore") -> Callable[[str, Path], None]:
    """A scenario: an iptables-save dump restored with ``tool``."""
    return lambda ns, _tmp: sh(ns, tool, rules)


def both(*loaders: Callable[[str, Path], None]) -> Callable[[str, Path], None]:
    """A scenario made of several loads, in order."""

    def load(ns: str, tmp: Path) -> None:
        for loader in loaders:
            loader(ns, tmp)

    return load


def ufw(commands: str) -> Callable[[str, Path], None]:
    """A scenario: ufw commands run over a private copy of /etc/ufw (ufw drives iptables-nft here)."""

    def load(ns: str, tmp: Path) -> None:
        etc = tmp / "etc-ufw"
        shutil.copytree("/etc/ufw", etc)
        (tmp / "sysctl.conf").write_text("")  # ufw would apply its sysctls: nothing to apply here
        default = Path("/etc/default/ufw").read_text().splitlines()
        lines = [f"IPT_SYSCTL={tmp}/sysctl.conf" if ln.startswith("IPT_SYSCTL=") else ln for ln in default]
        (tmp / "default-ufw").write_text("\n".join(lines) + "\n")
        mounts = f"mount --bind {etc} /etc/ufw && mount --bind {tmp}/default-ufw /etc/default/ufw"
        sh(ns, f"unshare -m sh -c {shlex.quote(f'{mounts} && {commands}')} >/dev/null")

    return load


def scenario(loader: Callable[[str, Path], None], tmp: Path) -> dict[str, Capture]:
    """Load a scenario into a fresh namespace and return the probe's captures there."""
    with namespace() as ns:
        loader(ns, tmp)
        return captures(ns)


HARDENED = """table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iif "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    ip saddr 10.20.0.0/24 tcp dport 22 ct state new accept comment "ssh from the bastion subnet"
    tcp dport { 80, 443 } accept
    counter log prefix "input drop: " level info
  }
}
"""

SCENARIOS: dict[str, Callable[[str, Path], None]] = {
    "nft_empty": lambda ns, tmp: None,
    "nft_debian_default": nft(
        Path("/etc/nftables.conf").read_text() if Path("/etc/nftables.conf").exists() else ""
    ),
    "nft_hardened": nft(HARDENED),
    "nft_jump_then_drop": nft(
        "table inet filter {\n  chain filter_in {\n    ip saddr 10.20.0.0/24 tcp dport 22 accept\n"
        "    counter drop\n  }\n  chain input {\n    type filter hook input priority filter; policy accept;\n"
        "    ct state established,related accept\n    iif lo accept\n    jump filter_in\n  }\n}\n"
    ),
    "nft_goto_then_drop": nft(
        "table inet filter {\n  chain zone {\n    tcp dport 443 accept\n  }\n  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n    goto zone\n    drop\n  }\n}\n"
    ),
    "nft_jump_to_accept_all": nft(
        "table inet filter {\n  chain allow {\n    counter accept\n  }\n  chain input {\n"
        "    type filter hook input priority filter; policy drop;\n    jump allow\n  }\n}\n"
    ),
    "nft_two_base_chains": nft(
        "table inet open {\n  chain input {\n    type filter hook input priority filter; policy accept;\n"
        "    accept\n  }\n}\ntable inet strict {\n  chain input {\n"
        "    type filter hook input priority 10; policy drop;\n    iif lo accept\n"
        "    ip saddr 10.20.0.5 tcp dport 22 accept\n  }\n}\n"
    ),
    "nft_vmap_to_bastion_chain": nft(
        "table inet filter {\n  set bastions {\n    type ipv4_addr\n"
        "    elements = { 10.20.0.5, 10.20.0.6 }\n  }\n"
        "  chain ssh_in {\n    ip saddr @bastions accept\n    drop\n  }\n  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        "    tcp dport vmap { 22 : jump ssh_in, 2222 : jump ssh_in }\n  }\n}\n"
    ),
    "nft_ipv4_only_restriction": nft(
        "table inet filter {\n  chain input {\n    type filter hook input priority filter; policy accept;\n"
        "    ip saddr != 10.20.0.0/24 tcp dport 22 drop\n  }\n}\n"
    ),
    "iptables_legacy_user_chain": iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:hds-in - [0:0]\n"
        "-A INPUT -j hds-in\n-A hds-in -i lo -j ACCEPT\n"
        "-A hds-in -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A hds-in -s 10.20.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT\n-A hds-in -j DROP\nCOMMIT\n"
    ),
    "iptables_legacy_ipv6_off": both(
        lambda ns, tmp: sh(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1"),  # in the test's namespace only
        lambda ns, tmp: SCENARIOS["iptables_legacy_user_chain"](ns, tmp),
    ),
    "nft_open_but_legacy_drops": both(
        nft(
            "table inet filter {\n  chain input {\n"
            "    type filter hook input priority filter; policy accept;\n  }\n}\n"
        ),
        iptables(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -s 10.20.0.5/32 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
        ),
        iptables(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
            "ip6tables-legacy-restore",
        ),
    ),
    "ufw_enabled": ufw("ufw --force enable && ufw allow from 10.20.0.0/24 to any port 22 proto tcp"),
    "ufw_disabled": ufw("ufw --force enable && ufw allow 22/tcp && ufw disable"),
    "firewalld_public": nft_json(DATA / "firewalld-public.json"),
    "firewalld_bastion": nft_json(DATA / "firewalld-bastion.json"),
}
