"""Exposed network services (ANSSI-BP-028 R79-R80, R74): what listens beyond the host itself.

A socket is exposed unless it is bound to a loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or to the
``lo`` interface (``0.0.0.0%lo``). ``0.0.0.0``, ``::`` and ``*`` accept connections on every address, and
``::`` with dual stack accepts IPv4 as well: all three are exposed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts.services import ListeningSockets, PostfixConfig, Socket

SOCKETS = ListeningSockets()
POSTFIX = PostfixConfig()

Service = Annotated[str, Field(pattern=r"^((tcp|udp)/\d{1,5}|[A-Za-z0-9_.@:+-]{1,64})$")]


class _Entries:
    """Service entries (``tcp/22`` or a process name), split once for all the sockets of a host."""

    def __init__(self, entries: list[str]) -> None:
        self.ports = {(proto, int(port)): e for e in entries if "/" in e for proto, port in [e.split("/")]}
        self.names = [e for e in entries if "/" not in e]

    def matching(self, socket: Socket) -> str | None:
        """The first entry that covers ``socket``, ports before process names; ``None`` if none does."""
        port = self.ports.get((socket.proto, socket.port))
        return port if port is not None else next((e for e in self.names if e in socket.processes), None)


def _listing(sockets: list[Socket]) -> str:
    shown = ", ".join(s.describe() for s in sockets[:12])
    return shown + (f" and {len(sockets) - 12} more" if len(sockets) > 12 else "")


class AllowedParams(Params):
    allowed: list[Service] = Field(
        description="services that may listen beyond loopback: 'tcp/22', 'udp/123', or a process name"
    )


@check("services.listening_only_allowed", params=AllowedParams, facts=lambda p: [SOCKETS])
def listening_only_allowed(p: AllowedParams, ctx: Context) -> Outcome:
    """Only the allowed services listen on non-loopback addresses (0.0.0.0, ::, * or a public address)."""
    sockets = ctx.get(SOCKETS)
    exposed = [s for s in sockets if not s.loopback_only]
    allowed = _Entries(p.allowed)
    extra = [s for s in exposed if allowed.matching(s) is None]
    local = len(sockets) - len(exposed)
    if extra:
        return failed(f"listening beyond loopback without being allowed: {_listing(extra)}")
    shown = f": {_listing(exposed)}" if exposed else ""
    return passed(f"{len(exposed)} exposed socket(s), all allowed{shown}; {local} loopback-only")


class ForbiddenParams(Params):
    ports: list[Annotated[str, Field(pattern=r"^(tcp|udp)/\d{1,5}$")]] = Field(
        description="ports that must not listen on any address, e.g. 'tcp/23' (telnet)"
    )
    processes: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@:+-]{1,64}$")]] = Field(
        default_factory=list, description="process names that must not own a listening socket"
    )


@check("services.forbidden_not_listening", params=ForbiddenParams, facts=lambda p: [SOCKETS])
def forbidden_not_listening(p: ForbiddenParams, ctx: Context) -> Outcome:
    """No forbidden service (telnet, rsh, rlogin, rexec, ftp, tftp...) listens, on any address."""
    sockets = ctx.get(SOCKETS)
    forbidden = _Entries([*p.ports, *p.processes])
    found = [s for s in sockets if forbidden.matching(s) is not None]
    if found:
        return failed(f"forbidden service(s) listening: {_listing(found)}")
    return passed(f"none of {len(p.ports)} forbidden ports nor {len(p.processes)} forbidden programs listens")


_MAIL_PORTS = (25, 465, 587)
_LOOPBACK_WORDS = {"loopback-only", "localhost", "127.0.0.1", "[::1]", "::1"}


def _postfix_exposed(interfaces: list[str], services: list[str]) -> list[str]:
    """What in postfix's configuration listens beyond loopback."""
    problems = []
    for service in services:
        host, sep, _port = service.rpartition(":")
        if sep:  # a master.cf service with its own address ignores inet_interfaces
            address = host.strip("[]")
            if address not in ("127.0.0.1", "::1", "localhost") and not re.match(r"^127\.", address):
                problems.append(f"master.cf service {service} listens on {address or 'every address'}")
        elif not all(value.lower() in _LOOPBACK_WORDS or value.startswith("127.") for value in interfaces):
            problems.append(f"master.cf service {service} follows inet_interfaces = {', '.join(interfaces)}")
    return problems


@check("mail.local_only", facts=lambda p: [SOCKETS, POSTFIX])
def mail_local_only(p: NoParams, ctx: Context) -> Outcome:
    """The local mail agent listens on loopback only, now (sockets on 25/465/587) and in postfix's
    configuration (inet_interfaces, master.cf)."""
    sockets = ctx.get(SOCKETS)
    postfix = ctx.get(POSTFIX)
    mail = [s for s in sockets if s.proto == "tcp" and s.port in _MAIL_PORTS]
    exposed = [s for s in mail if not s.loopback_only]
    problems = [f"listening now: {_listing(exposed)}"] if exposed else []
    if postfix is not None:
        problems += [
            f"postfix after a restart: {why}"
            for why in _postfix_exposed(postfix.inet_interfaces, postfix.services)
        ]
    if problems:
        return failed("; ".join(problems))
    if postfix is None and not mail:
        return not_applicable("no mail agent listens and postfix is not installed")
    config = f"postfix inet_interfaces = {', '.join(postfix.inet_interfaces)}" if postfix else "no postfix"
    return passed(f"{len(mail)} mail socket(s), all on loopback; {config}")
