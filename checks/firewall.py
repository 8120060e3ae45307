"""Host firewall, judged as the kernel filters: every base chain an inbound packet crosses, rule by rule, into
the chains they jump or go to.

A packet must pass every base chain of the hooks it crosses (prerouting and input; nftables tables and the
legacy iptables filter table alike): an accept only ends one base chain, a drop or reject is final. Within a
chain, ``jump`` returns to the next rule when the target chain ends without a verdict, ``goto`` returns to
the caller's caller. A rule whose condition cannot be decided for the packet (an interface name, a rate
limit, an extension match) may or may not apply: both paths are followed, so "accepted" below means "some
path accepts", and a verdict of "denied" holds on every path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field, field_validator

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.facts import Sysctl
from hds_compliance.facts.firewall import Chain, Cond, Firewall, FirewallRules, Rule
from hds_compliance.facts.sshd import SshdEffectiveConfig

FIREWALL = FirewallRules()
SSHD = SshdEffectiveConfig()
IPV6_DISABLED = Sysctl("net.ipv6.conf.all.disable_ipv6")

_NOT_INSTALLED = "neither nft nor iptables is installed: no host packet filter"
INBOUND_HOOKS = ("ingress", "prerouting", "input")
_MAX_DEPTH = 32
_BITS = {4: 32, 6: 128}


class Span:
    """A set of source addresses of one family, as sorted disjoint integer intervals."""

    def __init__(self, family: int, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self.family = family
        merged: list[tuple[int, int]] = []
        for low, high in sorted(intervals):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        self.intervals = tuple(merged)

    @classmethod
    def everything(cls, family: int) -> Span:
        """Every address of the family."""
        return cls(family, [(0, (1 << _BITS[family]) - 1)])

    @classmethod
    def of(cls, family: int, networks: Iterable[str]) -> Span:
        """The addresses of the family inside ``networks`` (others are left out)."""
        out = []
        for text in networks:
            net = ipaddress.ip_network(text, strict=False)
            if net.version == family:
                out.append((int(net.network_address), int(net.broadcast_address)))
        return cls(family, out)

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def __or__(self, other: Span) -> Span:
        return Span(self.family, [*self.intervals, *other.intervals])

    def __and__(self, other: Span) -> Span:
        out = []
        for a_low, a_high in self.intervals:
            for b_low, b_high in other.intervals:
                low, high = max(a_low, b_low), min(a_high, b_high)
                if low <= high:
                    out.append((low, high))
        return Span(self.family, out)

    def __sub__(self, other: Span) -> Span:
        return self & other.complement()

    def complement(self) -> Span:
        """Every address of the family not in this set."""
        out, start = [], 0
        for low, high in self.intervals:
            if low > start:
                out.append((start, low - 1))
            start = high + 1
        top = (1 << _BITS[self.family]) - 1
        if start <= top:
            out.append((start, top))
        return Span(self.family, out)

    def networks(self) -> list[str]:
        """The set as CIDR networks."""
        kind = ipaddress.IPv4Address if self.family == 4 else ipaddress.IPv6Address
        return [
            str(net)
            for low, high in self.intervals
            for net in ipaddress.summarize_address_range(kind(low), kind(high))
        ]

    def __str__(self) -> str:
        nets = self.networks()
        return ", ".join(nets[:6]) + (f" (+{len(nets) - 6} more)" if len(nets) > 6 else "")


@dataclass(frozen=True)
class Packet:
    """The packet a judgement is about: a new connection from outside (not on loopback) to a local address.

    ``dport`` ``None``: a port no rule names; ``anyone``: the source is an address no rule names (else the
    source is what the walk tracks, as a :class:`Span`).
    """

    family: int
    proto: str = "tcp"
    dport: int | None = None
    anyone: bool = True


# A condition's truth for the packet: True, False, None (cannot be decided), or the sources it holds for.
Truth = bool | None | Span


def _truth(cond: Cond, packet: Packet) -> Truth:
    if cond.kind == "saddr":
        family = [v for v in cond.values if ipaddress.ip_network(v).version == packet.family]
        if not family and cond.values:
            return False  # "ip saddr" only matches IPv4 packets, "ip6 saddr" IPv6 ones
        if packet.anyone:
            return cond.negated
        span = Span.of(packet.family, family)
        return span.complement() if cond.negated else span
    if cond.kind == "dport":
        if cond.proto and cond.proto != packet.proto:
            return False  # "udp dport" implies UDP
        if packet.dport is None:
            return cond.negated
        inside = any(int(lo) <= packet.dport <= int(hi) for lo, hi in (v.split("-") for v in cond.values))
        return inside != cond.negated
    if cond.kind == "proto":
        return (packet.proto in cond.values) != cond.negated
    if cond.kind == "nfproto":
        return (f"ipv{packet.family}" in cond.values) != cond.negated
    if cond.kind == "ctstate":
        return ("new" in cond.values) != cond.negated
    if cond.kind == "ctstatus":
        return cond.negated  # a new inbound connection was not NATed to this host: status has no dnat...
    if cond.kind == "local":
        return ("local" in cond.values) != cond.negated  # the input hook sees packets for local addresses
    if cond.kind == "iif" and set(cond.values) == {"lo"}:
        return cond.negated  # the packet comes from the network, not loopback
    return None  # interface names, rate limits, marks, extension matches: either way


def _split(rule: Rule, packet: Packet, live: Span) -> tuple[Span, Span]:
    """The sources for which the rule surely applies, and those for which it may."""
    sure, maybe = live, Span(live.family)
    for cond in rule.conds:
        truth = _truth(cond, packet)
        if truth is False:
            return Span(live.family), Span(live.family)
        if truth is None:
            sure, maybe = Span(live.family), maybe | sure
        elif isinstance(truth, Span):
            sure, maybe = sure & truth, maybe & truth
    return sure, maybe


@dataclass(frozen=True)
class Path:
    """Sources whose packet gets ``outcome``, and the rule (or policy) that decided it."""

    sources: Span
    outcome: str  # accept, drop, reject, return, continue
    why: str


def _walk(fw: Firewall, chain: Chain, packet: Packet, region: Span, depth: int = 0) -> list[Path]:
    if depth > _MAX_DEPTH:
        raise FactUnavailable(f"host firewall: jumps from {chain.table} {chain.name} nest too deep (a loop?)")
    out: list[Path] = []
    live = region
    for rule in chain.rules:
        if not live:
            break
        sure, maybe = _split(rule, packet, live)
        applied = sure | maybe
        if not applied:
            continue
        rest = live - sure
        for path in _apply(fw, chain, rule, packet, applied, depth):
            if path.outcome == "continue":
                rest = rest | path.sources
            else:
                out.append(path)
        live = rest
    if live:
        out.append(Path(live, "return", f"end of {chain.table} {chain.name}"))
    return out


def _apply(fw: Firewall, chain: Chain, rule: Rule, packet: Packet, applied: Span, depth: int) -> list[Path]:
    why = f"'{rule.text}' in {chain.table} {chain.name}"
    if rule.verdict in ("accept", "drop", "reject", "return"):
        return [Path(applied, rule.verdict, why)]
    if rule.verdict == "queue":
        return [Path(applied, "accept", why)]  # a userspace program decides: it may accept
    if rule.verdict in ("jump", "goto") and rule.target:
        target = fw.chain(chain.table, rule.target)
        if target is None:
            raise FactUnavailable(f"host firewall: {why} names a chain that does not exist")
        paths = _walk(fw, target, packet, applied, depth + 1)
        if rule.verdict == "goto":
            return paths  # the target's end returns to the caller of this chain
        return [Path(p.sources, "continue", p.why) if p.outcome == "return" else p for p in paths]
    return [Path(applied, "continue", why)]


def inbound_chains(fw: Firewall, family: int) -> list[Chain]:
    """Base chains an inbound packet of the family crosses (prerouting, input; netdev ingress)."""
    return [c for c in fw.base_chains(INBOUND_HOOKS) if family in c.families]


def accepted(fw: Firewall, packet: Packet) -> tuple[Span, list[str]]:
    """Sources whose packet some path lets through every inbound base chain, and what lets it through."""
    region = Span.everything(packet.family)
    chains = inbound_chains(fw, packet.family)
    if not chains:
        return region, [f"no base chain filters inbound IPv{packet.family} traffic"]
    passes: list[tuple[bool, str, Span]] = []
    for chain in chains:
        passing = Span(packet.family)
        for path in _walk(fw, chain, packet, region):
            outcome = chain.policy if path.outcome == "return" else path.outcome
            if outcome == "accept":
                passing = passing | path.sources
                why = f"policy accept of {chain.table} {chain.name}" if path.outcome == "return" else path.why
                passes.append((chain.hook == "input", why, path.sources))
        region = region & passing
    # What let the packet through the input hook says more than prerouting chains that accept everything.
    decisive = [p for p in passes if p[0]] or passes
    return region, list(dict.fromkeys(why for _, why, sources in decisive if sources & region))


def _families(ctx: Context) -> list[int]:
    return [4] if ctx.get(IPV6_DISABLED) in (None, "1") else [4, 6]


def _rules_anywhere(fw: Firewall, chain: Chain, seen: set[str]) -> list[Rule]:
    """Every rule reachable from a chain through jumps and gotos."""
    key = f"{chain.table} {chain.name}"
    if key in seen:
        return []
    seen.add(key)
    out = list(chain.rules)
    for rule in chain.rules:
        target = fw.chain(chain.table, rule.target) if rule.target else None
        if target is not None:
            out += _rules_anywhere(fw, target, seen)
    return out


@check("firewall.host_firewall_active", facts=lambda p: [FIREWALL])
def firewall_host_firewall_active(p: NoParams, ctx: Context) -> Outcome:
    """A host packet filter is loaded and filters inbound traffic: some inbound chain drops or rejects."""
    fw = ctx.get(FIREWALL)
    if fw is None:
        return failed(_NOT_INSTALLED)
    chains = [c for family in (4, 6) for c in inbound_chains(fw, family)]
    chains = list({(c.table, c.name): c for c in chains}.values())
    if not chains:
        return failed(f"no base chain on an inbound hook in the live rules ({', '.join(fw.sources)})")
    filtering = []
    for chain in chains:
        rules = _rules_anywhere(fw, chain, set())
        denying = [r for r in rules if r.verdict in ("drop", "reject")]
        if chain.policy == "drop" or denying:
            how = (
                f"policy {chain.policy}" if chain.policy == "drop" else f"{len(denying)} drop/reject rule(s)"
            )
            filtering.append(f"{chain.table} {chain.name} ({how})")
    if not filtering:
        shown = ", ".join(f"{c.table} {c.name} (policy {c.policy}, {len(c.rules)} rules)" for c in chains)
        return failed(
            f"nothing is filtered: the inbound chains {shown} accept by default and no rule they reach "
            "(through jumps into user chains too) drops or rejects"
        )
    return passed(f"inbound traffic filtered by {'; '.join(filtering)}")


@check("firewall.default_deny_inbound", facts=lambda p: [FIREWALL, IPV6_DISABLED])
def firewall_default_deny_inbound(p: NoParams, ctx: Context) -> Outcome:
    """A new inbound connection that no rule allows is dropped, for IPv4 and (when enabled) IPv6."""
    fw = ctx.get(FIREWALL)
    if fw is None:
        return failed(_NOT_INSTALLED)
    families = _families(ctx)
    open_: list[str] = []
    for family in families:
        for proto in ("tcp", "udp"):
            sources, reasons = accepted(fw, Packet(family, proto))
            if sources:
                open_.append(
                    f"IPv{family} {proto} to a port no rule opens is accepted: {'; '.join(reasons[:3])}"
                )
    if open_:
        return failed("; ".join(open_))
    note = " (IPv6 is disabled)" if families == [4] else ""
    chains = {f"{c.table} {c.name}" for f in families for c in inbound_chains(fw, f)}
    return passed(f"new inbound connections no rule allows are dropped{note}: {', '.join(sorted(chains))}")


class SourcesParams(Params):
    allowed: list[str] = Field(
        description="networks (CIDR) SSH may be reached from; empty: not judged (set your admin networks)"
    )

    @field_validator("allowed")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_network(value, strict=False)
        return values


def ssh_ports(ctx: Context) -> list[int] | None:
    """TCP ports the host's SSH daemons listen on (sshd -T ``listenaddress``), ``None`` without sshd."""
    configs = ctx.get(SSHD)
    if configs is None:
        return None
    ports: set[int] = set()
    for config in configs:
        listen = [e.split()[0].rpartition(":")[2] for e in config.options.get("listenaddress", [])]
        # sshd -T prints each listener with its port; "Port" only feeds addresses given without one.
        ports.update(int(p) for p in listen or config.options.get("port", []) if p.isdigit())
    return sorted(ports) or [22]


def ssh_open_to(
    fw: Firewall, ports: list[int], families: list[int]
) -> list[tuple[int, int, Span, list[str]]]:
    """For each SSH port and family: the sources the firewall lets reach it, and the rules that let them."""
    out = []
    for port in ports:
        for family in families:
            sources, reasons = accepted(fw, Packet(family, "tcp", port, anyone=False))
            out.append((port, family, sources, reasons))
    return out


@check(
    "firewall.ssh_sources_restricted", params=SourcesParams, facts=lambda p: [FIREWALL, SSHD, IPV6_DISABLED]
)
def firewall_ssh_sources_restricted(p: SourcesParams, ctx: Context) -> Outcome:
    """The host firewall lets SSH (the ports sshd listens on) through only from the allowed networks."""
    if not p.allowed:
        return not_applicable("no administration network is set (parameter ssh_admin_networks): not judged")
    fw, ports = ctx.get(FIREWALL), ssh_ports(ctx)
    if ports is None:
        return not_applicable("sshd is not installed: no SSH service to restrict")
    if fw is None:
        return failed(f"{_NOT_INSTALLED}: SSH (tcp/{ports[0]}) is open to every source")
    too_open = []
    for port, family, sources, reasons in ssh_open_to(fw, ports, _families(ctx)):
        if sources - Span.of(family, p.allowed):
            too_open.append(f"tcp/{port} accepted from {sources} (IPv{family}) by {'; '.join(reasons[:2])}")
    if too_open:
        return failed("; ".join(too_open))
    return passed(f"SSH (tcp/{', '.join(map(str, ports))}) accepted only from {', '.join(p.allowed)}")
