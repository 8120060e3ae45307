"""SSH daemon hardening, judged as sshd judges: the effective configuration (``sshd -T``) of each of the
host's own daemons, for connections matching no ``Match`` block and for those each block selects.

A finding names the daemon's config file and, when it comes from a ``Match`` block, the block's criteria and
the connection sshd was asked about. Keywords are read as sshd reads them: ``DisableForwarding yes`` turns
every forwarding off whatever the other keywords print, algorithms are compared by exact name, and bounds
where 0 (or ``none``) means "no limit" are failures.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
from hds_compliance.facts.sshd import SshdEffectiveConfig, SshdHostKeys, SshdView, views

SSHD = SshdEffectiveConfig()
HOST_KEYS = SshdHostKeys()

# A judgement of one configuration: (holds, what was found). The helper says where.
Judgement = tuple[bool, str]


def _every_view(ctx: Context, judge: Callable[[SshdView], Judgement]) -> Outcome:
    """Pass when every daemon's configuration holds for every kind of connection; else say which and where."""
    configs = ctx.get(SSHD)
    if configs is None:
        return not_applicable("sshd is not installed: no SSH service to harden")
    failing: dict[str, list[str]] = {}
    holding: list[str] = []
    for config in configs:
        judged = [(view, *judge(view)) for view in views(config)]
        for view, holds, found in judged:
            if not holds:
                failing.setdefault(found, []).append(view.where)
        base_found = judged[0][2]
        extra = len(judged) - 1
        note = f" (and for the connections of its {extra} Match block(s))" if extra else ""
        skipped = [
            f"'Match {v.criteria}' not judged: {v.unreachable}" for v in config.variants if v.unreachable
        ]
        holding.append(
            f"{base_found} in {config.source}{note}" + (f"; {'; '.join(skipped)}" if skipped else "")
        )
    if failing:
        return failed(
            "; ".join(
                f"{found} in the effective configuration of {' and of '.join(w)}"
                for found, w in failing.items()
            )
        )
    return passed("; ".join(holding))


def _keyword_is(ctx: Context, keyword: str, wanted: str) -> Outcome:
    """Every configuration sets ``keyword`` (named as sshd_config(5) spells it) to ``wanted``."""

    def judge(view: SshdView) -> Judgement:
        value = view.get(keyword) or "unset"
        return value == wanted, f"{keyword} is {value}"

    return _every_view(ctx, judge)


class OptionParams(Params):
    name: str = Field(description="sshd keyword, case-insensitive (as printed by sshd -T)")
    expect: str = Field(description="required value, compared case-insensitively")


@check("sshd.option", params=OptionParams, facts=lambda p: [SSHD])
def sshd_option(p: OptionParams, ctx: Context) -> Outcome:
    """An sshd keyword has exactly the expected effective value, for every kind of connection."""

    def judge(view: SshdView) -> Judgement:
        value = view.get(p.name)
        if value is None:
            return False, f"{p.name} is not reported by sshd -T (expected {p.expect})"
        if value.lower() != p.expect.lower():
            return False, f"{p.name} is {value} (expected {p.expect})"
        return True, f"{p.name} is {value}"

    return _every_view(ctx, judge)


# Keywords whose value 0 (or "none") lifts the limit, per sshd_config(5) of OpenSSH 9.x.
UNLIMITED_WHEN_ZERO = {
    "logingracetime": "0 means no time limit to log in",
    "clientaliveinterval": "0 means the server never checks that the client is alive",
    "clientalivecountmax": "0 means an unresponsive client is never disconnected",
    "unusedconnectiontimeout": "none means connections without channels never expire",
    "persourcemaxstartups": "none means no limit per source address",
}


class MaxParams(Params):
    name: str = Field(description="numeric sshd keyword, e.g. maxauthtries")
    max: int = Field(ge=0, description="highest accepted value")


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


@check("sshd.option_at_most", params=MaxParams, facts=lambda p: [SSHD])
def sshd_option_at_most(p: MaxParams, ctx: Context) -> Outcome:
    """A numeric sshd keyword is at most a bound; where 0 means "no limit" (LoginGraceTime...), 0 fails."""
    name = p.name.lower()

    def judge(view: SshdView) -> Judgement:
        value = view.get(name)
        unlimited = UNLIMITED_WHEN_ZERO.get(name)
        if unlimited and value in ("0", "none"):
            return False, f"{p.name} is {value}: {unlimited} (expected at most {p.max})"
        number = _number(value)
        if number is None:
            return False, f"{p.name} is {value!r}, not a number (expected at most {p.max})"
        if number > p.max:
            return False, f"{p.name} is {value} (expected at most {p.max})"
        return True, f"{p.name} is {value} (at most {p.max})"

    return _every_view(ctx, judge)


@check("sshd.root_login_disabled", facts=lambda p: [SSHD])
def sshd_root_login_disabled(p: NoParams, ctx: Context) -> Outcome:
    """root cannot log in over SSH: administrators log in by name and elevate, so actions are attributable."""

    return _keyword_is(ctx, "PermitRootLogin", "no")


_PASSWORD_KEYWORDS = ("passwordauthentication", "kbdinteractiveauthentication")


def _key_always_required(view: SshdView) -> bool:
    """Whether AuthenticationMethods makes every login need a key (a password is then a second factor)."""
    methods = view.get("authenticationmethods") or "any"
    if methods == "any":
        return False
    return all("publickey" in [m.split(":")[0] for m in chain.split(",")] for chain in methods.split())


@check("sshd.password_authentication_disabled", facts=lambda p: [SSHD])
def sshd_password_authentication_disabled(p: NoParams, ctx: Context) -> Outcome:
    """A password alone never opens an SSH session (keys or certificates; a password only as 2nd factor)."""

    def judge(view: SshdView) -> Judgement:
        if view.get("permitemptypasswords") == "yes":
            return False, "permitemptypasswords yes"
        enabled = [n for n in _PASSWORD_KEYWORDS if view.get(n) == "yes"]
        if not enabled:
            return True, "password and keyboard-interactive authentication are off"
        if _key_always_required(view):
            methods = view.get("authenticationmethods")
            return (
                True,
                f"{', '.join(enabled)} yes, but AuthenticationMethods {methods} always requires a key",
            )
        return False, f"{', '.join(enabled)} yes"

    return _every_view(ctx, judge)


# Exact algorithm names (as `ssh -Q` lists them) that ANSSI's guides and OpenSSH's own deprecations rule out:
# CBC modes, RC4, 3DES/Blowfish/CAST, MD5 and SHA-1 MACs, 64-bit tag UMAC, SHA-1 or 1024-bit DH groups,
# DSA keys and SHA-1 RSA signatures.
DEFAULT_FORBIDDEN = (
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "rijndael-cbc@lysator.liu.se",
    "blowfish-cbc",
    "cast128-cbc",
    "arcfour",
    "arcfour128",
    "arcfour256",
    "hmac-md5",
    "hmac-md5-96",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-ripemd160",
    "hmac-ripemd160@openssh.com",
    "hmac-ripemd160-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-64-etm@openssh.com",
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
)


class AlgorithmParams(Params):
    forbidden: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FORBIDDEN),
        description="exact algorithm names (as `ssh -Q cipher|mac|kex|key` prints them) never to offer",
    )

    @field_validator("forbidden")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not re.fullmatch(r"[A-Za-z0-9@._+-]+", v)]
        if bad:
            raise ValueError(f"algorithm names hold no blank or comma: {bad}")
        return values


_ALGORITHM_KEYWORDS = (
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
)


@check("sshd.weak_algorithms_disabled", params=AlgorithmParams, facts=lambda p: [SSHD])
def sshd_weak_algorithms_disabled(p: AlgorithmParams, ctx: Context) -> Outcome:
    """No forbidden cipher, MAC, key exchange or key algorithm is offered, compared by exact name."""
    forbidden = {name.lower() for name in p.forbidden}

    def judge(view: SshdView) -> Judgement:
        keywords = list(_ALGORITHM_KEYWORDS)
        if view.get("gssapikeyexchange") == "yes":  # GSSAPI key exchange offers these only when enabled
            keywords.append("gssapikexalgorithms")
        weak = [
            f"{keyword}: {algorithm}"
            for keyword in keywords
            for algorithm in (view.get(keyword) or "").split(",")
            if algorithm.lower() in forbidden
        ]
        if weak:
            shown = "; ".join(weak[:6]) + (f" (+{len(weak) - 6} more)" if len(weak) > 6 else "")
            return False, f"weak algorithms offered: {shown}"
        return True, "no forbidden cipher, MAC, key exchange or key algorithm offered"

    return _every_view(ctx, judge)


_FORWARDING = ("allowtcpforwarding", "x11forwarding", "allowagentforwarding")


class ForwardingParams(Params):
    relay_roles: list[str] = Field(
        default_factory=list,
        description="roles (bastion) that may relay SSH ProxyJump: TCP forwarding 'local' only, to the "
        "destinations PermitOpen lists; X11 and agent forwarding stay off",
    )


@check("sshd.forwarding_disabled", params=ForwardingParams, facts=lambda p: [SSHD])
def sshd_forwarding_disabled(p: ForwardingParams, ctx: Context) -> Outcome:
    """TCP, X11 and agent forwarding are off, so the server cannot be a pivot around the bastion. A host of
    a relay role (the bastion itself) may forward TCP for ProxyJump, locally only and to listed destinations:
    ``AllowTcpForwarding local`` (no remote forwarding) and a ``PermitOpen`` that is not ``any``."""
    relay = bool(set(ctx.host.roles) & set(p.relay_roles))

    def judge(view: SshdView) -> Judgement:
        if view.get("disableforwarding") == "yes":
            # sshd -T still prints the other keywords as configured; DisableForwarding overrides them all.
            return True, "DisableForwarding yes turns off TCP, X11, agent and stream-local forwarding"
        enabled = [f"{n} {view.get(n)}" for n in _FORWARDING if (view.get(n) or "no") != "no"]
        tcp, opens = view.get("allowtcpforwarding") or "no", view.get("permitopen") or "any"
        relayed = relay and tcp == "local" and opens not in ("any", "none")
        if relayed:  # the bastion's ProxyJump relay, bounded: what else is on is still a failure
            enabled.remove("allowtcpforwarding local")
        if enabled:
            why = f"forwarding enabled: {', '.join(enabled)}"
            if relay and tcp != "no" and not relayed:
                why += (
                    f" (a relay needs AllowTcpForwarding local and PermitOpen limited; it is {tcp}, {opens})"
                )
            return False, why
        if relayed:
            return (
                True,
                f"X11 and agent forwarding off; TCP forwarding local only, to {opens} (ProxyJump relay)",
            )
        return True, "TCP, X11 and agent forwarding are off"

    return _every_view(ctx, judge)


@check("sshd.unix_socket_forwarding_disabled", facts=lambda p: [SSHD])
def sshd_unix_socket_forwarding_disabled(p: NoParams, ctx: Context) -> Outcome:
    """Unix-socket forwarding is off: a client cannot reach the host's local sockets (container daemon...)."""

    def judge(view: SshdView) -> Judgement:
        if view.get("disableforwarding") == "yes":
            return True, "DisableForwarding yes turns off stream-local forwarding"
        value = view.get("allowstreamlocalforwarding") or "unset"
        return value == "no", f"AllowStreamLocalForwarding is {value}"

    return _every_view(ctx, judge)


def _remote_forwarding_off(view: SshdView) -> bool:
    return view.get("disableforwarding") == "yes" or view.get("allowtcpforwarding") in ("no", "local")


@check("sshd.gateway_ports_disabled", facts=lambda p: [SSHD])
def sshd_gateway_ports_disabled(p: NoParams, ctx: Context) -> Outcome:
    """Ports forwarded for a client listen on loopback only (GatewayPorts no), or remote forwarding is off."""

    def judge(view: SshdView) -> Judgement:
        value = view.get("gatewayports") or "unset"
        if value == "no":
            return True, "GatewayPorts is no"
        if _remote_forwarding_off(view):
            return True, f"GatewayPorts is {value} but remote TCP forwarding is off"
        return False, f"GatewayPorts is {value} with remote TCP forwarding allowed"

    return _every_view(ctx, judge)


@check("sshd.tunnel_disabled", facts=lambda p: [SSHD])
def sshd_tunnel_disabled(p: NoParams, ctx: Context) -> Outcome:
    """No tun/tap device forwarding (PermitTunnel no): a tunnel bridges networks past the host firewall."""

    return _keyword_is(ctx, "PermitTunnel", "no")


_VERBOSE_OR_MORE = ("VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")


@check("sshd.log_level_verbose", facts=lambda p: [SSHD])
def sshd_log_level_verbose(p: NoParams, ctx: Context) -> Outcome:
    """sshd logs at VERBOSE or above: each login records the fingerprint of the key used (accountability)."""

    def judge(view: SshdView) -> Judgement:
        value = (view.get("loglevel") or "unset").upper()
        if value not in _VERBOSE_OR_MORE:
            return False, f"LogLevel is {value}: key fingerprints of logins are not logged"
        return True, f"LogLevel is {value}"

    return _every_view(ctx, judge)


@check("sshd.allow_list_defined", facts=lambda p: [SSHD])
def sshd_allow_list_defined(p: NoParams, ctx: Context) -> Outcome:
    """Who may log in is a positive list (AllowUsers or AllowGroups), not every account of the host."""

    def judge(view: SshdView) -> Judgement:
        users, groups = view.values("allowusers"), view.values("allowgroups")
        if not users and not groups:
            return False, "neither AllowUsers nor AllowGroups is set: every account may log in"
        shown = [f"AllowUsers {' '.join(users)}"] if users else []
        shown += [f"AllowGroups {' '.join(groups)}"] if groups else []
        return True, "; ".join(shown)

    return _every_view(ctx, judge)


class SecondsParams(Params):
    max_seconds: int = Field(gt=0, description="longest accepted time, in seconds")


_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(value: str) -> int | None:
    """sshd's TIME FORMAT (``90``, ``10m``, ``1h30m``) in seconds; ``None`` if it is not one."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(int(n) * _TIME_UNITS[u.lower()] for n, u in parts)


def _channel_timeout(entries: list[str], channel: str) -> tuple[str, int] | None:
    """The first ChannelTimeout entry whose type pattern matches ``channel`` (sshd takes the first match)."""
    for entry in " ".join(entries).split():
        pattern, _, interval = entry.partition("=")
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        if re.fullmatch(regex, channel):
            value = seconds(interval)
            if value is None:
                raise FactUnavailable(f"ChannelTimeout entry {entry!r} has no interval sshd would accept")
            return entry, value
    return None


@check("sshd.idle_sessions_closed", params=SecondsParams, facts=lambda p: [SSHD])
def sshd_idle_sessions_closed(p: SecondsParams, ctx: Context) -> Outcome:
    """An idle interactive SSH session is closed by sshd (ChannelTimeout session:shell, OpenSSH >= 9.2)."""

    def judge(view: SshdView) -> Judgement:
        entries = view.values("channeltimeout")
        found = _channel_timeout(entries, "session:shell") if entries else None
        if found is None:
            return False, (
                "no ChannelTimeout applies to interactive sessions (session:shell): an idle shell stays "
                "open; ClientAlive* only drop clients that stopped answering"
            )
        entry, value = found
        if value == 0:
            return False, f"ChannelTimeout {entry}: 0 disables the inactivity timeout"
        if value > p.max_seconds:
            return (
                False,
                f"ChannelTimeout {entry} closes idle shells after {value} s, over {p.max_seconds}",
            )
        return True, f"ChannelTimeout {entry} closes idle shells after {value} s"

    return _every_view(ctx, judge)


@check("sshd.unresponsive_clients_disconnected", params=SecondsParams, facts=lambda p: [SSHD])
def sshd_unresponsive_clients_disconnected(p: SecondsParams, ctx: Context) -> Outcome:
    """A client that stops answering is disconnected: ClientAliveInterval x ClientAliveCountMax is bounded."""

    def judge(view: SshdView) -> Judgement:
        interval, count = _number(view.get("clientaliveinterval")), _number(view.get("clientalivecountmax"))
        if interval is None or count is None:
            shown = f"{view.get('clientaliveinterval')!r} and {view.get('clientalivecountmax')!r}"
            return False, f"ClientAliveInterval and ClientAliveCountMax are {shown}, not numbers"
        if interval == 0:
            return False, f"ClientAliveInterval is 0: {UNLIMITED_WHEN_ZERO['clientaliveinterval']}"
        if count == 0:
            return False, f"ClientAliveCountMax is 0: {UNLIMITED_WHEN_ZERO['clientalivecountmax']}"
        total = interval * count
        found = f"ClientAliveInterval {interval} x ClientAliveCountMax {count} = {total} s"
        if total > p.max_seconds:
            return False, f"{found} (expected at most {p.max_seconds})"
        return True, found

    return _every_view(ctx, judge)


class StartupsParams(Params):
    max_unauthenticated: int = Field(gt=0, description="most concurrent unauthenticated connections accepted")


@check("sshd.max_startups_bounded", params=StartupsParams, facts=lambda p: [SSHD])
def sshd_max_startups_bounded(p: StartupsParams, ctx: Context) -> Outcome:
    """sshd refuses unauthenticated connections beyond a bound (MaxStartups start:rate:full, full <= it)."""

    def judge(view: SshdView) -> Judgement:
        value = view.get("maxstartups") or "unset"
        numbers = [int(n) for n in value.split(":") if n.isdigit()]
        if len(numbers) not in (1, 3) or len(numbers) != len(value.split(":")):
            return False, f"MaxStartups is {value!r}, not start:rate:full"
        full = numbers[-1]
        if full > p.max_unauthenticated:
            return (
                False,
                f"MaxStartups {value} accepts up to {full} unauthenticated connections, "
                f"over {p.max_unauthenticated}",
            )
        return True, f"MaxStartups {value}: at most {full} unauthenticated connections"

    return _every_view(ctx, judge)


class RsaParams(Params):
    rsa_min_bits: int = Field(gt=0, description="smallest RSA modulus accepted, in bits")


@check("sshd.required_rsa_size", params=RsaParams, facts=lambda p: [SSHD])
def sshd_required_rsa_size(p: RsaParams, ctx: Context) -> Outcome:
    """sshd refuses RSA user keys shorter than the minimum (RequiredRSASize, OpenSSH >= 9.1)."""

    def judge(view: SshdView) -> Judgement:
        value = _number(view.get("requiredrsasize"))
        if value is None:
            return (
                False,
                "RequiredRSASize is not reported by sshd -T (OpenSSH older than 9.1 accepts 1024-bit keys)",
            )
        if value < p.rsa_min_bits:
            return False, f"RequiredRSASize is {value} (expected at least {p.rsa_min_bits})"
        return True, f"RequiredRSASize is {value}"

    return _every_view(ctx, judge)


# Host-key algorithms (as HostKeyAlgorithms lists them) through which a key of each type is served.
_SIGNATURES = {
    "DSA": ("ssh-dss",),
    "RSA": ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"),
    "ECDSA": ("ecdsa-sha2-",),
    "ED25519": ("ssh-ed25519",),
}


def _served(algorithm: str, offered: list[str]) -> bool:
    prefixes = _SIGNATURES.get(algorithm)
    return prefixes is None or any(a.startswith(prefixes) for a in offered)


@check("sshd.host_keys_strong", params=RsaParams, facts=lambda p: [SSHD, HOST_KEYS])
def sshd_host_keys_strong(p: RsaParams, ctx: Context) -> Outcome:
    """The host keys sshd serves are strong: no DSA, RSA >= the minimum size, ECDSA >= 256 bits."""
    configs, daemons = ctx.get(SSHD), ctx.get(HOST_KEYS)
    if configs is None or daemons is None:
        return not_applicable("sshd is not installed: no SSH service to harden")
    offered = {c.source: (c.get("hostkeyalgorithms") or "").split(",") for c in configs}
    weak: list[str] = []
    good: list[str] = []
    for daemon in daemons:
        if daemon.source not in offered:
            raise FactUnavailable(f"host keys of {daemon.source}: no effective configuration to go with them")
        for key in daemon.keys:
            if key.problem is not None or key.algorithm is None or key.bits is None:
                why = key.problem or "unknown type"
                raise FactUnavailable(f"host key {key.path} of {daemon.source}: {why}")
            shown = f"{key.path} ({key.algorithm} {key.bits} bits)"
            if not _served(key.algorithm, offered[daemon.source]):
                good.append(f"{shown} loaded but not offered by HostKeyAlgorithms")
            elif key.algorithm == "DSA":
                weak.append(f"{shown}: DSA (1024 bits, SHA-1 signatures)")
            elif key.algorithm == "RSA" and key.bits < p.rsa_min_bits:
                weak.append(f"{shown}: RSA below {p.rsa_min_bits} bits")
            elif key.algorithm == "ECDSA" and key.bits < 256:
                weak.append(f"{shown}: ECDSA below 256 bits")
            else:
                good.append(shown)
        if not daemon.keys:
            weak.append(f"{daemon.source} lists no host key sshd could use")
    if weak:
        return failed("weak host keys served by sshd: " + "; ".join(weak))
    return passed("host keys: " + "; ".join(good))
