"""Host firewall: a packet filter is loaded and inbound traffic is denied unless explicitly allowed.

Judged on the live ruleset (``nft list ruleset``, else ``iptables-save``), which covers nftables, firewalld
(RHEL), ufw and iptables-nft (Debian/Ubuntu) alike. In nftables a packet must pass every base chain of a
hook and a drop is final, so one input chain that drops by default is enough for a default-deny policy.
What explicit rules accept is not judged (only an unconditional ``accept`` in that chain voids its default
deny); jumps to other chains are not followed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from hds_compliance.check import Context, FactUnavailable, NoParams, Outcome, check, failed, passed
from hds_compliance.facts import Firewall, FirewallRules, Sysctl

FIREWALL = FirewallRules()
IPV6_DISABLED = Sysctl("net.ipv6.conf.all.disable_ipv6")

_NOT_INSTALLED = "neither nft nor iptables-save is installed: no host packet filter"
_FAMILIES = {"inet": {"ipv4", "ipv6"}, "ip": {"ipv4"}, "ip6": {"ipv6"}}


@dataclass
class _Chain:
    """An input-hook base chain, whichever the tool."""

    name: str
    families: set[str]
    policy: str
    rules: list[str] = field(default_factory=list)

    def verdicts(self) -> list[str]:
        return [v for v in (_bare_verdict(r) for r in self.rules) if v]

    def denies_by_default(self) -> bool:
        verdicts = self.verdicts()
        if "accept" in verdicts:
            return False  # an unconditional accept lets everything through
        last = _bare_verdict(self.rules[-1]) if self.rules else None
        return self.policy == "drop" or last in ("drop", "reject")


_LOG_ARGS = {"prefix", "level", "flags", "group", "snaplen", "queue-threshold"}


def _bare_verdict(rule: str) -> str | None:
    """The verdict of a rule that matches every packet (``counter drop``, ``-j REJECT``), else ``None``."""
    if rule.startswith("-A "):
        words = rule.split()
        rest = [w for w in words[2:] if w not in ("-m", "comment")]
        if len(rest) >= 2 and rest[0] == "-j" and (len(rest) == 2 or rest[2] == "--reject-with"):
            return {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}.get(rest[1])
        return None
    try:
        tokens = shlex.split(rule)
    except ValueError:
        return None
    if tokens[:1] == ["counter"]:
        tokens = tokens[5:] if tokens[1:2] == ["packets"] else tokens[1:]
    if tokens[:1] == ["log"]:
        tokens = tokens[1:]
        while len(tokens) >= 2 and tokens[0] in _LOG_ARGS:
            tokens = tokens[2:]
    if tokens in (["accept"], ["drop"]):
        return tokens[0]
    if tokens[:1] == ["reject"] and (len(tokens) == 1 or tokens[1] == "with"):
        return "reject"
    return None


def _nft_input_chains(rules: str) -> list[_Chain]:
    chains: list[_Chain] = []
    depth, family, table, chain = 0, "", "", None
    for raw in rules.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        delta = line.count("{") - line.count("}")
        if depth == 0 and line.startswith("table "):
            family, table = line.split()[1], line.split()[2]
        elif depth == 1 and line.startswith("chain "):
            chain = _Chain(name=f"{family} {table} {line.split()[1]}", families=set(), policy="")
        elif depth == 2 and chain is not None and line != "}":
            header = re.match(r"^type (\w+) hook (\w+)\b", line)
            if header:
                if header.group(1) == "filter" and header.group(2) == "input" and family in _FAMILIES:
                    policy = re.search(r"\bpolicy (\w+);", line)
                    chain.families = set(_FAMILIES[family])
                    chain.policy = policy.group(1) if policy else "accept"
                    chains.append(chain)
            elif not line.startswith(("comment ", "devices ")):  # chain attributes, not rules
                chain.rules.append(line)
        depth += delta
        if depth <= 1:
            chain = None
    return [c for c in chains if c.families]


def _iptables_input_chains(rules: str, family: str, tool: str) -> list[_Chain]:
    table, chain = "", None
    for raw in rules.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(":INPUT "):
            chain = _Chain(name=f"{tool} filter INPUT", families={family}, policy=line.split()[1].lower())
        elif table == "filter" and line.startswith("-A INPUT ") and chain is not None:
            chain.rules.append(line)
    return [chain] if chain is not None else []


def _input_chains(fw: Firewall) -> list[_Chain]:
    if fw.tool == "nft":
        return _nft_input_chains(fw.rules)
    if fw.tool == "iptables":
        chains = _iptables_input_chains(fw.rules, "ipv4", "iptables")
        if fw.rules6 is not None:
            chains += _iptables_input_chains(fw.rules6, "ipv6", "ip6tables")
        return chains
    raise FactUnavailable(f"host firewall rules: unknown tool {fw.tool!r}")


@check("firewall.host_firewall_active", facts=lambda p: [FIREWALL])
def firewall_host_firewall_active(p: NoParams, ctx: Context) -> Outcome:
    """A host packet filter is loaded and filters inbound traffic (input chain with rules or policy drop)."""
    fw = ctx.get(FIREWALL)
    if fw is None:
        return failed(_NOT_INSTALLED)
    chains = _input_chains(fw)
    if not chains:
        what = "the ruleset is empty" if not fw.rules.strip() else "no filter chain on the input hook"
        return failed(f"no inbound filtering in the live {fw.tool} rules: {what}")
    active = [c for c in chains if c.rules or c.policy == "drop"]
    if not active:
        names = ", ".join(c.name for c in chains)
        return failed(f"the input chain(s) {names} have no rule and accept by default: nothing is filtered")
    shown = ", ".join(f"{c.name} ({len(c.rules)} rules, policy {c.policy})" for c in active)
    return passed(f"inbound traffic filtered by {fw.tool}: {shown}")


@check("firewall.default_deny_inbound", facts=lambda p: [FIREWALL, IPV6_DISABLED])
def firewall_default_deny_inbound(p: NoParams, ctx: Context) -> Outcome:
    """Inbound traffic not explicitly allowed is dropped, for IPv4 and (when enabled) IPv6."""
    fw = ctx.get(FIREWALL)
    if fw is None:
        return failed(_NOT_INSTALLED)
    ipv6_off = ctx.get(IPV6_DISABLED) in (None, "1")
    needed = ["ipv4"] if ipv6_off else ["ipv4", "ipv6"]
    chains = _input_chains(fw)
    if fw.tool == "iptables" and fw.rules6 is None and not ipv6_off:
        v4 = [c.name for c in chains if c.denies_by_default()]
        if not v4:
            return failed("the iptables filter INPUT chain accepts by default (IPv4)")
        raise FactUnavailable(
            "IPv6 is enabled and ip6tables-save is not installed: the IPv6 policy is unknown"
        )
    open_families: list[str] = []
    deny: list[str] = []
    for family in needed:
        covering = [c for c in chains if family in c.families]
        denying = [c for c in covering if c.denies_by_default()]
        if denying:
            deny.append(f"{family} by {denying[0].name}")
        elif covering:
            open_families.append(f"{family} ({', '.join(f'{c.name} policy {c.policy}' for c in covering)})")
        else:
            open_families.append(f"{family} (no input chain)")
    if open_families:
        shown = "; ".join(open_families)
        return failed(f"inbound traffic is accepted by default in the live {fw.tool} rules: {shown}")
    note = "" if not ipv6_off else " (IPv6 is disabled)"
    return passed(f"inbound traffic is denied by default: {'; '.join(deny)}{note}")
