"""The live packet filter, as the kernel holds it: nftables (``nft -j list ruleset``) and legacy iptables.

The kernel filters an inbound packet through every base chain hooked where it passes (nftables tables, the
legacy ``iptables`` filter table, which coexist), so the fact reads both: nftables as JSON (exact, with its
sets and verdict maps), and the legacy tables with ``iptables-legacy-save`` only when the legacy ``filter``
module is loaded (``/proc/net/ip_tables_names``: reading it loads nothing). Without ``nft``, the
``iptables-save`` of the nf_tables backend shows the same rules. Rules are normalised into conditions and
verdicts (:class:`Rule`), so checks can follow jumps into user chains as the kernel does.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, in_shell_sh
from hds_compliance.model import Capture

BOTH = (4, 6)
_TABLE_FAMILIES = {"inet": BOTH, "ip": (4,), "ip6": (6,), "netdev": BOTH}
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}


@dataclass(frozen=True)
class Cond:
    """A condition of a rule, normalised.

    ``kind`` is ``saddr`` (``values``: networks), ``dport`` (``values``: ``"lo-hi"`` port ranges, ``proto``
    the layer-4 protocol it implies, "" for any), ``proto``, ``ctstate``, ``ctstatus``, ``iif``, ``nfproto``,
    ``local`` (destination is a local address) or ``other`` (anything else: ``text`` says what).
    """

    kind: str
    values: tuple[str, ...] = ()
    negated: bool = False
    proto: str = ""
    text: str = ""


@dataclass(frozen=True)
class Rule:
    """A rule: all its conditions, then a verdict (``None``: it only counts or logs)."""

    conds: tuple[Cond, ...]
    verdict: str | None  # accept, drop, reject, jump, goto, return, queue
    target: str | None = None  # chain of a jump or goto
    text: str = ""


@dataclass(frozen=True)
class Chain:
    """A chain of a table; base chains have a hook, a priority and a policy."""

    table: str  # "nft inet filter", "iptables-legacy filter", "ip6tables-legacy filter"...
    name: str
    families: tuple[int, ...]
    hook: str | None
    priority: int
    policy: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Firewall:
    """Every chain the packet filter holds, from each dump the probe read (``sources``)."""

    sources: tuple[str, ...]  # nft, iptables-legacy, ip6tables-legacy, iptables (nf_tables backend)
    chains: tuple[Chain, ...]

    def chain(self, table: str, name: str) -> Chain | None:
        """The chain ``name`` of ``table``, ``None`` if it does not exist."""
        return next((c for c in self.chains if c.table == table and c.name == name), None)

    def base_chains(self, hooks: tuple[str, ...]) -> list[Chain]:
        """Base chains on these hooks, by priority."""
        return sorted((c for c in self.chains if c.hook in hooks), key=lambda c: c.priority)


_SHOWN = {"proto": "l4proto", "ctstate": "ct state", "ctstatus": "ct status", "local": "daddr type"}


def render(conds: tuple[Cond, ...], verdict: str | None, target: str | None) -> str:
    """A rule in nft-like words, for messages."""
    parts = []
    for cond in conds:
        if cond.text.endswith(" header"):
            continue  # implied by the match that follows
        if cond.kind == "other":
            parts.append(cond.text if len(cond.text) <= 60 else cond.text[:57] + "...")
            continue
        values = [v.split("-")[0] if v.split("-")[0] == v.split("-")[-1] else v for v in cond.values]
        name = f"{cond.proto or 'th'} dport" if cond.kind == "dport" else _SHOWN.get(cond.kind, cond.kind)
        shown = values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"
        parts.append(f"{name} {'!= ' if cond.negated else ''}{shown}")
    parts.append(f"{verdict} {target}" if target else verdict or "(no verdict)")
    return " ".join(parts)


# ----------------------------------------------------------------------------------------- nftables


def _flatten(
    value: Any, sets: dict[str, list[Any]], leaf: Callable[[Any], list[str] | None]
) -> list[str] | None:
    """The items of an nft right-hand side (a value, an anonymous or a named ``@set``) through ``leaf``;
    ``None`` if one of them is not what ``leaf`` reads."""
    if isinstance(value, str) and value.startswith("@"):
        return _flatten({"set": sets[value[1:]]}, sets, leaf) if value[1:] in sets else None
    if isinstance(value, dict) and "set" in value:
        out: list[str] = []
        for item in value["set"]:
            more = _flatten(item, sets, leaf)
            if more is None:
                return None
            out += more
        return out
    return leaf(value)


def _network(value: Any) -> list[str] | None:
    """Networks of an address, prefix or address range."""
    if isinstance(value, dict) and "prefix" in value:
        return [f"{value['prefix']['addr']}/{value['prefix']['len']}"]
    if isinstance(value, dict) and "range" in value:
        low, high = (ipaddress.ip_address(v) for v in value["range"])
        return [str(n) for n in ipaddress.summarize_address_range(low, high)]
    if isinstance(value, str):
        try:
            return [str(ipaddress.ip_network(value, strict=False))]
        except ValueError:
            return None
    return None


def _port(value: Any) -> list[str] | None:
    """``"lo-hi"`` of a port or a port range (nft -j prints service names as numbers)."""
    if isinstance(value, dict) and "range" in value:
        return [f"{int(value['range'][0])}-{int(value['range'][1])}"]
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return [f"{value}-{value}"]
    return None


def _names(value: Any, sets: dict[str, list[Any]]) -> list[str]:
    if isinstance(value, str) and value.startswith("@"):
        return _names({"set": sets.get(value[1:], [])}, sets)
    if isinstance(value, dict) and "set" in value:
        return [n for item in value["set"] for n in _names(item, sets)]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [PROTOCOL_NUMBERS.get(str(value), str(value))]


# Headers whose fields a payload match reads: matching one implies the protocol (and, for ip/ip6, the family).
_L4_HEADERS = {
    "tcp": "tcp",
    "udp": "udp",
    "udplite": "udplite",
    "sctp": "sctp",
    "dccp": "dccp",
    "icmp": "icmp",
    "icmpv6": "ipv6-icmp",
}
_L3_HEADERS = {"ip": "ipv4", "ip6": "ipv6"}


def _implied(match: dict[str, Any]) -> list[Cond]:
    """The protocol or family a payload match implies (nft adds that dependency itself)."""
    left = match.get("left")
    payload = left.get("payload") if isinstance(left, dict) else None
    if not isinstance(payload, dict):
        return []
    proto = payload.get("protocol")
    if proto in _L4_HEADERS:
        return [Cond("proto", (_L4_HEADERS[proto],), text=f"{proto} header")]
    if proto in _L3_HEADERS:
        return [Cond("nfproto", (_L3_HEADERS[proto],), text=f"{proto} header")]
    return []


def _nft_cond(match: dict[str, Any], sets: dict[str, list[Any]]) -> Cond:
    op, left, right = match.get("op", "=="), match.get("left"), match.get("right")
    negated = op == "!="
    text = f"{json.dumps(left, sort_keys=True)} {op} {json.dumps(right, sort_keys=True)}"
    if op not in ("==", "!=", "in") or not isinstance(left, dict):
        return Cond("other", text=text)
    payload, meta, ct = left.get("payload"), left.get("meta"), left.get("ct")
    if isinstance(payload, dict):
        proto, name = payload.get("protocol"), payload.get("field")
        if proto in ("ip", "ip6") and name == "saddr":
            nets = _flatten(right, sets, _network)
            if nets is not None:
                return Cond("saddr", tuple(nets), negated, text=text)
        if name == "dport" and proto in ("tcp", "udp", "th", "sctp", "dccp", "udplite"):
            ports = _flatten(right, sets, _port)
            if ports is not None:
                return Cond("dport", tuple(ports), negated, proto="" if proto == "th" else proto, text=text)
        if (proto, name) in (("ip", "protocol"), ("ip6", "nexthdr")):
            return Cond("proto", tuple(_names(right, sets)), negated, text=text)
    if isinstance(meta, dict):
        key = meta.get("key")
        if key == "l4proto":
            return Cond("proto", tuple(_names(right, sets)), negated, text=text)
        if key == "nfproto":
            return Cond("nfproto", tuple(_names(right, sets)), negated, text=text)
        if key in ("iif", "iifname"):
            return Cond("iif", tuple(_names(right, sets)), negated, text=text)
    if isinstance(ct, dict) and ct.get("key") in ("state", "status") and "dir" not in ct:
        return Cond(f"ct{ct['key']}", tuple(_names(right, sets)), negated, text=text)
    fib = left.get("fib")
    if isinstance(fib, dict) and fib.get("result") == "type" and fib.get("flags") == ["daddr"]:
        return Cond("local", tuple(_names(right, sets)), negated, text=text)
    return Cond("other", text=text)


_NFT_VERDICTS = ("accept", "drop", "reject", "return", "jump", "goto", "queue")
# Statements that only act on a packet that already matched (count, log, mark, set a field).
_NFT_STATEMENTS = (
    "counter",
    "log",
    "mangle",
    "notrack",
    "dup",
    "fwd",
    "xt_target",
    "snat",
    "dnat",
    "masquerade",
)


def _nft_verdict(expr: dict[str, Any]) -> tuple[str, str | None] | None:
    for verdict in _NFT_VERDICTS:
        if verdict in expr:
            target = expr[verdict].get("target") if isinstance(expr[verdict], dict) else None
            return verdict, target
    return None


def _nft_rules(exprs: list[dict[str, Any]], sets: dict[str, list[Any]]) -> list[Rule]:
    """One rule, or several when a verdict map spreads it (``tcp dport vmap { 22 : accept, ... }``)."""
    conds: list[Cond] = []
    for expr in exprs:
        if "match" in expr:
            conds += [*_implied(expr["match"]), _nft_cond(expr["match"], sets)]
            continue
        verdict = _nft_verdict(expr)
        if verdict is not None:
            return [Rule(tuple(conds), verdict[0], verdict[1], render(tuple(conds), *verdict))]
        if "vmap" in expr:
            rules = []
            for key, data in expr["vmap"]["data"].get("set", []):
                match = {"op": "==", "left": expr["vmap"]["key"], "right": key}
                verdict = _nft_verdict(data) if isinstance(data, dict) else None
                if verdict is not None:
                    more = (*conds, _nft_cond(match, sets))
                    rules.append(Rule(more, verdict[0], verdict[1], render(more, *verdict)))
            return rules
        if "xt" in expr and expr["xt"].get("type") == "match":
            conds.append(Cond("other", text=f"xt match {expr['xt'].get('name')}"))
        elif not any(k in expr for k in _NFT_STATEMENTS) and "xt" not in expr:
            conds.append(Cond("other", text=json.dumps(expr, sort_keys=True)))  # limit, quota, meter...
    return [Rule(tuple(conds), None, None, render(tuple(conds), None, None))]


def parse_nft(text: str) -> list[Chain]:
    """Chains of ``nft -j list ruleset``."""
    try:
        items = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FactError(f"nft -j list ruleset: not the JSON nft prints ({exc})") from exc
    sets: dict[tuple[str, str], dict[str, list[Any]]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    for item in items:
        if "set" in item:
            s = item["set"]
            sets.setdefault((s["family"], s["table"]), {})[s["name"]] = s.get("elem", [])
        elif "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            rules.setdefault(key, []).extend(_nft_rules(r.get("expr", []), sets.get(key[:2], {})))
    out = []
    for (family, table, name), c in chains.items():
        if family not in _TABLE_FAMILIES:
            continue  # bridge and arp tables do not see IP packets addressed to the host
        hook = c.get("hook") if c.get("type") == "filter" else None
        prio = c.get("prio", 0)
        out.append(
            Chain(
                table=f"nft {family} {table}",
                name=name,
                families=_TABLE_FAMILIES[family],
                hook=hook,
                priority=prio if isinstance(prio, int) else 0,
                policy=c.get("policy", "accept") if hook else "",
                rules=tuple(rules.get((family, table, name), [])),
            )
        )
    return out


# ------------------------------------------------------------------------------------------ iptables

_IPT_VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return", "QUEUE": "queue"}
_IPT_ONLY_ACTS = {"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "TRACE", "AUDIT", "CLASSIFY", "TCPMSS"}


def _ipt_ports(value: str) -> tuple[str, ...]:
    """``22``, ``1000:2000``, ``:1024``, ``1024:`` and comma lists (multiport) as ``"lo-hi"`` ranges."""
    out = []
    for part in value.split(","):
        low, colon, high = part.partition(":")
        out.append(f"{low or 0}-{(high or 65535) if colon else low}")
    return tuple(out)


def _ipt_rule(line: str, chains: set[str]) -> tuple[str, Rule] | None:
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "-A":
        return None
    chain, words = words[1], words[2:]
    conds: list[Cond] = []
    verdict: str | None = None
    target: str | None = None
    proto, negated, module, i = "", False, "", 0
    while i < len(words):
        word = words[i]
        args: list[str] = []
        j = i + 1
        while j < len(words) and not (words[j].startswith("-") and len(words[j]) > 1) and words[j] != "!":
            args.append(words[j])
            j += 1
        value = args[0] if args else ""
        if word == "!":
            negated = True
            i += 1
            continue
        if word in ("-s", "--source"):
            nets = tuple(str(ipaddress.ip_network(v, strict=False)) for v in value.split(","))
            conds.append(Cond("saddr", nets, negated, text=f"-s {value}"))
        elif word in ("-p", "--protocol"):
            proto = PROTOCOL_NUMBERS.get(value, value.lower())
            conds.append(Cond("proto", (proto,), negated, text=f"-p {value}"))
        elif word in ("-i", "--in-interface"):
            conds.append(Cond("iif", (value,), negated, text=f"-i {value}"))
        elif word in ("-m", "--match"):
            module = value
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            conds.append(Cond("dport", _ipt_ports(value), negated, proto=proto, text=f"{word} {value}"))
        elif word in ("--ctstate", "--state"):
            conds.append(Cond("ctstate", tuple(v.lower() for v in value.split(",")), negated, text=word))
        elif word == "--dst-type" and module == "addrtype":
            conds.append(Cond("local", (value.lower(),), negated, text=f"--dst-type {value}"))
        elif word in ("-j", "--jump", "-g", "--goto"):
            if word in ("-g", "--goto"):
                verdict, target = "goto", value
            elif value in _IPT_VERDICTS:
                verdict = _IPT_VERDICTS[value]
            elif value in chains:
                verdict, target = "jump", value
            elif value not in _IPT_ONLY_ACTS:
                conds.append(Cond("other", text=f"-j {value}"))  # an extension target: unknown effect
            break  # the target's own options (--reject-with, --log-prefix...) end the rule
        elif word == "--comment":
            pass
        elif word not in ("-c",):
            shown = " ".join([f"-m {module}" if module else "", word, *args]).strip()
            conds.append(Cond("other", negated=negated, text=shown))
        negated = False
        i = j
    return chain, Rule(tuple(conds), verdict, target, line)


# Dumps of iptables-save: the table name their chains get, and the address family.
_IPTABLES_DUMPS = {
    "iptables-legacy": ("iptables-legacy filter", 4),
    "ip6tables-legacy": ("ip6tables-legacy filter", 6),
    "iptables": ("iptables filter", 4),
    "ip6tables": ("ip6tables filter", 6),
    "iptables-nft": ("nft ip filter", 4),  # the same kernel table as nft shows
    "ip6tables-nft": ("nft ip6 filter", 6),
}


def parse_iptables(text: str, table_name: str, family: int) -> list[Chain]:
    """Chains of the ``filter`` table of an ``iptables-save`` dump, as table ``table_name``."""
    out: list[Chain] = []
    table = ""
    policies: dict[str, str] = {}
    rules: dict[str, list[Rule]] = {}
    lines = text.splitlines()

    def close() -> None:
        if table == "filter":
            for name, policy in policies.items():
                builtin = policy != "-"
                out.append(
                    Chain(
                        table=table_name,
                        name=name,
                        families=(family,),
                        hook=name.lower() if builtin and name in ("INPUT", "FORWARD", "OUTPUT") else None,
                        priority=0,
                        policy=policy.lower() if builtin else "",
                        rules=tuple(rules.get(name, [])),
                    )
                )

    for raw in lines:
        line = raw.strip()
        if line.startswith("*"):
            table, policies, rules = line[1:], {}, {}
        elif line.startswith(":"):
            name, policy = [*line[1:].split(), "-"][:2]
            policies[name] = policy
        elif line.startswith("-A ") and table == "filter":
            parsed = _ipt_rule(line, set(policies))
            if parsed is not None:
                rules.setdefault(parsed[0], []).append(parsed[1])
        elif line == "COMMIT":
            close()
            table = ""
    return out


# ---------------------------------------------------------------------------------------------- fact

_MARK = "# hds "


@dataclass(frozen=True)
class FirewallRules(Fact[Firewall | None]):
    """Every packet-filter rule the kernel holds; ``None`` if neither nft nor iptables is installed.

    nftables as JSON; the legacy iptables filter tables when that backend is in use (its kernel tables are
    listed in ``/proc/net/ip*_tables_names``, read without loading anything); without ``nft``, the nf_tables
    backend through ``iptables-save``.
    """

    kind: ClassVar[str] = "firewall"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        # $L/$L6: the legacy dumpers, $l/$l6 their labels. When nft shows rules iptables-nft wrote (xt
        # matches, which its JSON leaves opaque), iptables-nft-save prints them whole. Without nft, the
        # nf_tables backend is read through iptables-save.
        nft_save = (
            "N=; N6=; if command -v iptables-nft-save >/dev/null 2>&1; then N=iptables-nft-save; "
            "N6=ip6tables-nft-save; elif iptables-save -V 2>&1 | grep -q nf_tables; then N=iptables-save; "
            "N6=ip6tables-save; fi; "
        )
        return in_shell_sh(
            "n L L6 l l6 r N N6 t",
            "n=; command -v nft >/dev/null 2>&1 && n=1; L=; L6=; l=iptables-legacy; l6=ip6tables-legacy; "
            "if command -v iptables-legacy-save >/dev/null 2>&1; then L=iptables-legacy-save; "
            "L6=ip6tables-legacy-save; elif command -v iptables-save >/dev/null 2>&1; then "
            'case "$(iptables-save -V 2>&1)" in *nf_tables*) [ -n "$n" ] || { L=iptables-save; '
            "L6=ip6tables-save; l=iptables; l6=ip6tables; };; "
            "*) L=iptables-save; L6=ip6tables-save;; esac; fi; "
            f'[ -n "$n$L" ] || return {ABSENT}; '
            'if [ -n "$n" ]; then r=$(nft -j list ruleset) || return 1; '
            f"echo '{_MARK}nft'; printf '%s\\n' \"$r\"; case \"$r\" in *'\"xt\"'*) {nft_save}"
            f'[ -z "$N" ] || {{ echo "{_MARK}iptables-nft"; $N || return 1; }}; '
            f'[ -z "$N6" ] || ! command -v "$N6" >/dev/null 2>&1 || {{ echo "{_MARK}ip6tables-nft"; '
            "$N6 || return 1; };; esac; fi; "
            'if [ -n "$L" ] && { [ "$l" = iptables ] || read -r t < /proc/net/ip_tables_names; } '
            f'2>/dev/null; then echo "{_MARK}$l"; $L || return 1; fi; '
            'if [ -n "$L6" ] && { [ "$l" = iptables ] || read -r t < /proc/net/ip6_tables_names; } '
            '2>/dev/null; then command -v "$L6" >/dev/null 2>&1 || '
            '{ echo "IPv6 rules are loaded but $L6 is missing" >&2; '
            f'return 1; }}; echo "{_MARK}$l6"; $L6 || return 1; fi; return 0',
        )

    def parse(self, capture: Capture) -> Firewall | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        parts: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in capture.stdout_text().splitlines():
            if line.startswith(_MARK):
                current = parts.setdefault(line[len(_MARK) :].strip(), [])
            elif current is not None:
                current.append(line)
        if not parts:
            raise FactError(f"{self.describe()}: no rule dump in the output")
        by_source: dict[str, list[Chain]] = {}
        for source, lines in parts.items():
            text = "\n".join(lines)
            if source == "nft":
                by_source[source] = parse_nft(text)
            elif source in _IPTABLES_DUMPS:
                by_source[source] = parse_iptables(text, *_IPTABLES_DUMPS[source])
            else:
                raise FactError(f"{self.describe()}: unknown dump {source!r}")
        # iptables-nft's dump of a table replaces nft's view of it, whose xt matches are opaque.
        rewritten = {c.table for s in ("iptables-nft", "ip6tables-nft") for c in by_source.get(s, [])}
        chains = [c for s, cs in by_source.items() for c in cs if s != "nft" or c.table not in rewritten]
        return Firewall(sources=tuple(parts), chains=tuple(chains))

    def describe(self) -> str:
        return "host firewall rules"
