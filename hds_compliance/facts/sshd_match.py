"""sshd's ``Match`` criteria: OpenSSH's pattern semantics, and connections that satisfy (or avoid) each block.

sshd applies a ``Match`` block to a connection when every criterion of the block holds. To know what sshd
enforces for the connections a block covers, the probe asks sshd itself (``sshd -T -C <spec>``) for a
connection that satisfies the block; this module finds such a connection (a *spec*), and one that
satisfies no block. It only proposes: sshd's own debug output says which blocks it applied, and that is
what the verdict rests on.

Semantics follow OpenSSH's match.c and addrmatch.c: a pattern list is comma-separated, ``*`` and ``?`` are
wildcards, a ``!`` pattern that matches vetoes the list, and a list without a matching positive pattern does
not match (``User !root`` alone matches nobody). Addresses match by CIDR, or by wildcard on their text.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Criteria sshd accepts after "Match" (OpenSSH 9.x), lower-case.
CRITERIA = ("all", "user", "group", "host", "localaddress", "localport", "rdomain", "address")
# Values a spec may carry: what sshd -C parses, and nothing a shell would interpret.
_SAFE = re.compile(r"^[A-Za-z0-9._@%+:-]+$")
_FRESH_USER = "hds-nomatch"
_FRESH_HOST = "nomatch.invalid"
_FRESH_ADDRS = ("192.0.2.10", "2001:db8::10")  # documentation ranges (RFC 5737, RFC 3849)
_FRESH_LOCAL = {4: "198.51.100.10", 6: "2001:db8::20"}
_MAX_TRIES = 20_000
_ADDRESS_FILLERS = ("1", "1.1", "1.1.1", ":1", "::1")


def match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH's match_pattern: ``*`` any run of characters, ``?`` one character, the rest literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.S) is not None


def match_list(text: str, patterns: str, lower: bool = False) -> int:
    """OpenSSH's match_pattern_list: 1 if a positive pattern matches, -1 if a negated one does, else 0."""
    if lower:
        text, patterns = text.lower(), patterns.lower()
    found = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if match_pattern(text, pattern[1:] if negated else pattern):
            if negated:
                return -1
            found = 1
    return found


def _network(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


def address_matches(address: str, patterns: str) -> int:
    """OpenSSH's addr_match_list: CIDR and plain addresses compared as addresses, others as wildcards."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return 0
    found = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        network = _network(body)
        hit = addr in network if network is not None else match_pattern(address, body)
        if hit:
            if negated:
                return -1
            found = 1
    return found


@dataclass(frozen=True)
class Block:
    """One Match block as sshd parsed it: its criteria in order, ``(keyword, value)``."""

    text: str  # what follows "Match", e.g. "User alice,bob Address 10.0.0.0/8"
    criteria: tuple[tuple[str, str], ...]

    @property
    def is_all(self) -> bool:
        """``Match all``: applies to every connection (ends a Match section)."""
        return any(k == "all" for k, _ in self.criteria)

    def values(self, keyword: str) -> list[str]:
        """Pattern lists given for ``keyword``."""
        return [v for k, v in self.criteria if k == keyword]


def parse_block(text: str) -> Block:
    """A block from the criteria text sshd printed (``checking syntax for 'Match <text>'``)."""
    words = text.split()
    criteria: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        keyword = words[i].lower()
        if keyword == "all":
            criteria.append(("all", ""))
            i += 1
            continue
        if keyword not in CRITERIA or i + 1 >= len(words):
            raise ValueError(f"unknown Match criterion {words[i]!r} in 'Match {text}'")
        criteria.append((keyword, words[i + 1].strip('"')))
        i += 2
    return Block(text=text, criteria=tuple(criteria))


@dataclass(frozen=True)
class Listener:
    """Where the daemon accepts connections: an address (``None``: any of the family) and a port."""

    address: str | None
    port: int
    family: int


def parse_listeners(values: Iterable[str]) -> list[Listener]:
    """``listenaddress`` values of ``sshd -T`` (``0.0.0.0:22``, ``[::]:22``, ``10.0.0.5:2222 rdomain r``)."""
    out = []
    for value in values:
        where = value.split()[0]
        host, _, port = where.rpartition(":")
        host = host.strip("[]")
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            continue
        if not port.isdigit():
            continue
        wildcard = addr.is_unspecified
        out.append(Listener(None if wildcard else str(addr), int(port), addr.version))
    return out


@dataclass(frozen=True)
class Spec:
    """A connection to ask sshd about. ``groups``: the user is a member of one of them, found on the host."""

    user: str | None
    host: str
    addr: str
    laddr: str
    lport: int
    rdomain: str | None = None
    groups: tuple[str, ...] = ()

    def render(self) -> str:
        """The ``-C`` argument without the user when it is resolved on the host from ``groups``."""
        parts = [] if self.user is None else [f"user={self.user}"]
        parts += [f"host={self.host}", f"addr={self.addr}", f"laddr={self.laddr}", f"lport={self.lport}"]
        if self.rdomain is not None:
            parts.append(f"rdomain={self.rdomain}")
        return ",".join(parts)


def _safe(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and _SAFE.match(value) and value not in out:
            out.append(value)
    return out


def _from_name_patterns(lists: Iterable[str]) -> list[str]:
    """Names that satisfy or dodge each pattern: wildcards filled two ways, negations stripped."""
    out: list[str] = []
    for patterns in lists:
        for pattern in patterns.split(","):
            body = pattern.lstrip("!")
            out += [body.replace("*", "").replace("?", "x"), body.replace("*", "x").replace("?", "x")]
    return _safe(out)


def _from_address_patterns(lists: Iterable[str]) -> list[str]:
    out: list[str] = []
    for patterns in lists:
        for pattern in patterns.split(","):
            body = pattern.lstrip("!")
            network = _network(body)
            if network is not None:
                first = network.network_address + 1 if network.num_addresses > 2 else network.network_address
                out += [str(first), str(network.network_address)]
            else:  # a wildcard: "192.168.*" needs "*" to stand for "1.1" to make an address
                for filler in _ADDRESS_FILLERS:
                    filled = body.replace("*", filler).replace("?", "1")
                    if _network(filled) is not None and match_pattern(filled, body):
                        out.append(filled)
    return _safe(out)


@dataclass
class _Space:
    """Candidate values per field of a spec."""

    users: list[str | None]
    hosts: list[str]
    addrs: list[str]
    locals: list[tuple[str, int]]
    rdomains: list[str | None]


def _space(blocks: Sequence[Block], listeners: Sequence[Listener]) -> _Space:
    def lists(keyword: str) -> list[str]:
        return [v for b in blocks for v in b.values(keyword)]

    laddr_candidates = _from_address_patterns(lists("localaddress"))
    local: list[tuple[str, int]] = []
    for listener in sorted(listeners, key=lambda each: each.family):  # IPv4 first: the usual case
        if listener.address is not None:
            local.append((listener.address, listener.port))
            continue
        family = [a for a in laddr_candidates if ipaddress.ip_address(a).version == listener.family]
        local += [(a, listener.port) for a in [_FRESH_LOCAL[listener.family], *family]]
    return _Space(
        users=[_FRESH_USER, *_from_name_patterns(lists("user"))],
        hosts=[_FRESH_HOST, *_from_name_patterns(lists("host")), *_from_address_patterns(lists("host"))],
        addrs=[*_FRESH_ADDRS, *_from_address_patterns(lists("address"))],
        locals=list(dict.fromkeys(local)),
        rdomains=[None, *_from_name_patterns(lists("rdomain"))],
    )


def block_matches(block: Block, spec: Spec) -> bool | None:
    """Whether sshd applies ``block`` to ``spec``; ``None`` when it depends on the host's group members."""
    result: bool | None = True
    for keyword, value in block.criteria:
        if keyword == "all":
            continue
        if keyword == "group":
            hit: bool | None = None if spec.user is None else False  # a spec's own user does not exist
        elif keyword == "user":
            hit = None if spec.user is None else match_list(spec.user, value) == 1
        elif keyword == "host":
            hit = match_list(spec.host, value, lower=True) == 1
        elif keyword == "address":
            hit = address_matches(spec.addr, value) == 1
        elif keyword == "localaddress":
            hit = address_matches(spec.laddr, value) == 1
        elif keyword == "localport":
            hit = value.isdigit() and int(value) == spec.lport
        else:  # rdomain
            hit = spec.rdomain is not None and match_list(spec.rdomain, value) == 1
        if hit is False:
            return False
        if hit is None:
            result = None
    return result


def _group_names(block: Block) -> tuple[str, ...]:
    names = [p for v in block.values("group") for p in v.split(",") if p and not p.startswith("!")]
    return tuple(_safe(n for n in names if "*" not in n and "?" not in n))


def _fits(target: Block, keyword: str, value: str | None) -> bool:
    """Whether a field value satisfies every criterion the target puts on that field."""
    lists = target.values(keyword)
    if value is None:
        return not lists
    if keyword == "address":
        return all(address_matches(value, v) == 1 for v in lists)
    return all(match_list(value, v, lower=keyword == "host") == 1 for v in lists)


def _local_fits(target: Block, laddr: str, lport: int) -> bool:
    addresses, ports = target.values("localaddress"), target.values("localport")
    return all(address_matches(laddr, v) == 1 for v in addresses) and all(
        p.isdigit() and int(p) == lport for p in ports
    )


def _search(space: _Space, blocks: Sequence[Block], target: Block | None) -> Spec | None:
    """The spec satisfying ``target`` (no block when ``None``) that matches the fewest other blocks."""
    groups = _group_names(target) if target is not None else ()
    if target is not None and target.values("group") and not groups:
        return None
    users: list[str | None] = [None] if groups else list(space.users)
    hosts, addrs, locals_, rdomains = space.hosts, space.addrs, space.locals, space.rdomains
    if target is not None:  # each criterion reads one field: keep the values that satisfy the target
        if not groups:
            users = [u for u in users if _fits(target, "user", u)]
        hosts = [h for h in hosts if _fits(target, "host", h)]
        addrs = [a for a in addrs if _fits(target, "address", a)]
        rdomains = [r for r in rdomains if _fits(target, "rdomain", r)]
        locals_ = [(a, p) for a, p in locals_ if _local_fits(target, a, p)]
    others = [b for b in blocks if b is not target and not b.is_all]
    best: tuple[int, Spec] | None = None
    combos = itertools.product(users, hosts, addrs, locals_, rdomains)
    for user, host, addr, (laddr, lport), rdomain in itertools.islice(combos, _MAX_TRIES):
        spec = Spec(user, host, addr, laddr, lport, rdomain, groups)
        if target is not None and block_matches(target, spec) is False:
            continue
        cost = sum(block_matches(b, spec) is not False for b in others)
        if target is None and cost:
            continue
        if best is None or cost < best[0]:
            best = (cost, spec)
            if cost == 0:
                break
    return best[1] if best else None


def specs(blocks: Sequence[Block], listeners: Sequence[Listener]) -> tuple[Spec | None, list[Spec | None]]:
    """A connection matching no block (``None`` if every connection matches one), and one per block.

    A block's entry is ``None`` when no connection to a listening address can satisfy it that this search
    finds (a ``LocalPort`` the daemon does not listen on, a ``Group`` given only by wildcards).
    """
    space = _space(blocks, listeners)
    if not space.locals:
        return None, [None for _ in blocks]
    none = _search(space, blocks, None) if any(not b.is_all for b in blocks) else None
    return none, [None if b.is_all else _search(space, blocks, b) for b in blocks]


def local_reachable(block: Block, listeners: Sequence[Listener]) -> bool:
    """Whether a listening socket of the daemon can satisfy the block's LocalAddress and LocalPort criteria.

    A socket bound to every address (``0.0.0.0``, ``::``) can receive connections for any local address.
    """
    for listener in listeners:
        if listener.address is None:
            if all(p.isdigit() and int(p) == listener.port for p in block.values("localport")):
                return True
        elif _local_fits(block, listener.address, listener.port):
            return True
    return False
