"""Who is who across the fleet: every name and address a scanned host is known by (no DNS, ever).

A host is designated by its inventory name, its ``ssh_hostname``, or what its own probe reports (its node
name and its routable addresses). Fleet checks use this to tell whether the target of a log forwarder, the
host of a backup snapshot or a backup repository is a host of the inventory, and which one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from hds_compliance.check import Context, FactUnavailable, Fleet, HostInfo
from hds_compliance.facts import Addresses, Fact, NodeName

NODE = NodeName()
ADDRESSES = Addresses()


def identity_facts(host: HostInfo) -> list[Fact[Any]]:
    """What a host's own probe says it is called (declare these for the hosts a check must recognise)."""
    return [NODE, ADDRESSES]


def normalised(label: str) -> str:
    """A host name or address as compared: lower case, no brackets, no trailing dot."""
    return label.strip().strip("[]").rstrip(".").lower()


def routable(text: str) -> bool:
    """An address that designates one host: loopback and link-local addresses are on every host."""
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return not (address.is_loopback or address.is_link_local)


def _declared(ctx: Context, fact: Fact[Any]) -> bool:
    return ctx.declared is None or fact.key in ctx.declared


@dataclass
class Identities:
    """Every name and address each scanned host is known by, and which hosts a name designates."""

    names: dict[str, set[str]] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)  # host -> identity facts that failed

    @classmethod
    def of(cls, fleet: Fleet, hosts: list[str] | None = None) -> Identities:
        """From the inventory and each host's own identity facts, for ``hosts`` (default: every scanned host).

        A host's node name or addresses count only where the check declared them for that host.
        """
        out = cls()
        for name in fleet.hosts if hosts is None else hosts:
            ctx = fleet.hosts[name]
            ids = {normalised(name)}
            if ctx.host.ssh_hostname:
                ids.add(normalised(ctx.host.ssh_hostname))
            missing = []
            if name in fleet.broken:
                missing.append(fleet.broken[name])
            else:
                if _declared(ctx, NODE):
                    try:
                        ids.add(normalised(ctx.get(NODE)))
                    except FactUnavailable as exc:
                        missing.append(str(exc))
                if _declared(ctx, ADDRESSES):
                    try:
                        ids |= {normalised(a.address) for a in ctx.get(ADDRESSES) if routable(a.address)}
                    except FactUnavailable as exc:
                        missing.append(str(exc))
            out.names[name] = ids
            if missing:
                out.unknown[name] = missing
        return out

    def hosts(self, label: str) -> list[str]:
        """Scanned hosts a host name or address designates (several: it is ambiguous)."""
        key = normalised(label)
        return [name for name, ids in self.names.items() if key in ids]

    def describe(self, name: str) -> str:
        """The names a host is known by, for messages."""
        return ", ".join(sorted(self.names.get(name, {name})))
