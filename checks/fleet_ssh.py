"""Fleet: every data host accepts SSH for administration only from the inventory's bastions.

A source reaches a data host's SSH only if the host firewall lets its packet through to the SSH port AND sshd
then lets it log in; so the sources that can administer a host are the intersection of what the firewall
accepts (judged as the kernel filters, :mod:`hds_compliance.checks.firewall`) and what sshd accepts, judged
as sshd judges, for every kind of connection its Match blocks select:

- a daemon listening on loopback only takes no remote connection;
- ``DenyUsers *`` or ``DenyGroups *`` closes a configuration to everyone;
- ``AllowUsers`` whose every entry is ``user@<address or CIDR>`` admits those sources only;
- a ``Match Address`` block's configuration applies only to its sources, and connections from other sources
  get the configuration of no block (or of blocks that do not test the address).

Bastion addresses are the bastions' inventory names and ``ssh_hostname`` when they are IP addresses, and the
addresses their own probe reports (:class:`~hds_compliance.facts.identity.Addresses`); never DNS. Loopback
sources are not remote administration and are left out.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    Fleet,
    HostInfo,
    Outcome,
    Params,
    errored,
    failed,
    fleet_check,
    not_applicable,
    not_reviewed,
    passed,
)
from hds_compliance.checks.firewall import FIREWALL, IPV6_DISABLED, SSHD, Packet, Span, accepted, ssh_ports
from hds_compliance.facts import Addresses, Fact
from hds_compliance.facts.sshd import SshdConfig, SshdView, views
from hds_compliance.facts.sshd_match import Block, parse_block, parse_listeners

ADDRESSES = Addresses()
_LOOPBACK = {4: Span.of(4, ["127.0.0.0/8"]), 6: Span.of(6, ["::1/128"])}


class BastionParams(Params):
    data_roles: list[str] = Field(description="inventory roles of the hosts that hold health data")
    bastion_role: str = Field(default="bastion", description="inventory role of the administration bastions")


def _facts(p: BastionParams, host: HostInfo) -> list[Fact[Any]]:
    facts: list[Fact[Any]] = []
    if p.bastion_role in host.roles:
        facts.append(ADDRESSES)
    if set(p.data_roles) & set(host.roles):
        facts += [SSHD, FIREWALL, IPV6_DISABLED]
    return facts


def _literal(text: str | None) -> list[str]:
    try:
        return [str(ipaddress.ip_address(text))] if text else []
    except ValueError:
        return []


def _bastion_addresses(fleet: Fleet, names: list[str]) -> tuple[list[str], list[str]]:
    """Addresses of the scanned bastions, and the bastions whose own addresses could not be read."""
    out: list[str] = []
    unknown: list[str] = []
    for name in names:
        ctx = fleet.hosts[name]
        out += _literal(name) + _literal(ctx.host.ssh_hostname)
        try:
            found = ctx.get(ADDRESSES)
        except FactUnavailable:
            unknown.append(name)
            continue
        for address in found:
            ip = ipaddress.ip_address(address.address.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local):
                out.append(str(ip))
    return sorted(set(out)), unknown


# ---------------------------------------------------------------------------------------------- sshd


_IPV4_WILDCARD = re.compile(r"^(\d{1,3}\.){1,3}\*$")


def _address_span(family: int, patterns: str, use_dns: bool) -> Span:
    """Sources an sshd address pattern list can match (``10.0.0.0/8``, ``10.1.2.*``, host names).

    What cannot be bounded (a negation, another wildcard, a host name sshd resolves with UseDNS yes) counts
    as every source. With UseDNS no, sshd compares a host name to the client's address: it never matches.
    """
    out = Span(family)
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            return Span.everything(family)
        try:
            out = out | Span.of(family, [pattern])
            continue
        except ValueError:
            pass
        if _IPV4_WILDCARD.match(pattern):
            octets = pattern.split(".")[:-1]
            network = ".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}"
            out = out | Span.of(family, [network])  # an IPv4 pattern: nothing for IPv6
        elif use_dns or "*" in pattern or "?" in pattern:
            return Span.everything(family)
    return out


def _view_sources(view: SshdView, block: Block | None, others: list[Block], family: int) -> Span:
    """Sources whose connections get this configuration."""
    use_dns = (view.config.get("usedns") or "no") == "yes"
    if block is not None:
        addresses = block.values("address")
        span = Span.everything(family)
        for patterns in addresses:
            span = span & _address_span(family, patterns, use_dns)
        return span
    # No block: every source but those that always match a block testing the address only.
    span = Span.everything(family)
    for other in others:
        if other.criteria and all(k == "address" for k, _ in other.criteria):
            for patterns in other.values("address"):
                if not any(p.startswith("!") for p in patterns.split(",")):
                    span = span - _address_span(family, patterns, use_dns)
    return span


def _logins_from(view: SshdView, family: int) -> tuple[Span, str]:
    """Sources this configuration lets log in, and why."""
    denied = [*view.values("denyusers"), *view.values("denygroups")]
    if any(entry in ("*", "*@*") for entry in denied):
        return Span(family), "DenyUsers/DenyGroups *"
    allow = view.values("allowusers")
    if allow and all("@" in entry for entry in allow):
        use_dns = (view.get("usedns") or "no") == "yes"
        span = Span(family)
        for entry in allow:
            span = span | _address_span(family, entry.partition("@")[2], use_dns)
        return span, f"AllowUsers {' '.join(allow)}"
    return Span.everything(family), "no AllowUsers user@address restriction"


def sshd_logins(config: SshdConfig, family: int) -> tuple[Span, list[str]]:
    """Sources from which some connection to this daemon may log in, and the configurations letting them."""
    listeners = parse_listeners(config.options.get("listenaddress", []))
    if listeners and all(
        lst.address is not None and ipaddress.ip_address(lst.address).is_loopback for lst in listeners
    ):
        return Span(family), []
    blocks = [parse_block(text) for text in config.matches]
    by_text = {b.text: b for b in blocks}
    open_ = Span(family)
    reasons: list[str] = []
    for view in views(config):
        block = by_text.get(view.criteria) if view.criteria is not None else None
        reach = _view_sources(view, block, blocks, family)
        logins, why = _logins_from(view, family)
        span = reach & logins
        if span:
            open_ = open_ | span
            reasons.append(f"{view.where}: {why}")
    return open_, reasons


# ---------------------------------------------------------------------------------------------- judge


def _judge(ctx: Context, bastions: list[str]) -> tuple[Outcome | None, str, bool]:
    """For one data host: an outcome when it is settled (no sshd, a pass), else the finding and whether
    every source of a family gets in; raises FactUnavailable when it cannot tell."""
    configs = ctx.get(SSHD)
    if configs is None:
        return not_applicable("sshd is not installed: no SSH administration"), "", False
    fw, ports = ctx.get(FIREWALL), ssh_ports(ctx) or [22]
    families = [4] if ctx.get(IPV6_DISABLED) in (None, "1") else [4, 6]
    findings: list[str] = []
    everyone = False
    for family in families:
        allowed = Span.of(family, bastions) | _LOOPBACK[family]
        logins = Span(family)
        sshd_reasons: list[str] = []
        for config in configs:
            span, reasons = sshd_logins(config, family)
            logins, sshd_reasons = logins | span, sshd_reasons + reasons
        for port in ports:
            if fw is None:
                reach, fw_reasons = Span.everything(family), ["no packet filter installed"]
            else:
                reach, fw_reasons = accepted(fw, Packet(family, "tcp", port, anyone=False))
            open_ = (reach & logins) - _LOOPBACK[family]
            intruders = open_ - allowed
            if intruders:
                every = not (Span.everything(family) - _LOOPBACK[family] - open_)
                everyone = everyone or every
                shown = Span.everything(family) if every else intruders
                findings.append(
                    f"tcp/{port} reachable and open to logins from {shown} (IPv{family}): "
                    f"firewall: {'; '.join(fw_reasons[:2]) or 'no rule'}; sshd: {'; '.join(sshd_reasons[:2])}"
                )
    if findings:
        return None, "; ".join(findings), everyone
    ports_shown = ", ".join(map(str, ports))
    return (
        passed(f"SSH logins only from the bastions ({', '.join(bastions)}) on tcp/{ports_shown}"),
        "",
        False,
    )


@fleet_check("fleet.ssh_admin_only_from_bastions", params=BastionParams, facts=_facts)
def fleet_ssh_admin_only_from_bastions(p: BastionParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every data host accepts SSH logins only from the inventory's bastions (firewall and sshd together)."""
    scanned = fleet.with_role(p.bastion_role)
    outside = fleet.outside_with_role(p.bastion_role)
    bastions, unreadable = _bastion_addresses(fleet, scanned)
    out: dict[str, Outcome] = {}
    for name in fleet.judged:
        ctx = fleet.hosts[name]
        if not set(p.data_roles) & set(ctx.host.roles):
            out[name] = not_applicable(f"not a data host (roles: {', '.join(ctx.host.roles) or 'none'})")
            continue
        if not scanned and not outside:
            out[name] = failed(
                f"no host of the inventory has the role {p.bastion_role}: nothing to restrict SSH to"
            )
            continue
        try:
            settled, finding, everyone = _judge(ctx, bastions)
        except FactUnavailable as exc:
            out[name] = errored(str(exc))
            continue
        if settled is not None:
            out[name] = settled
        elif everyone:
            out[name] = failed(f"{finding} (every source, whatever the bastions' addresses)")
        elif outside or unreadable:
            missing = ", ".join(outside + unreadable)
            out[name] = not_reviewed(
                f"{finding}; the addresses of bastion(s) {missing} are unknown to this scan"
            )
        else:
            out[name] = failed(f"{finding}; bastions: {', '.join(bastions) or 'no address known'}")
    return out
