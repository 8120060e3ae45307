"""Kernel parameters, judged as the kernel applies them now and as the next boot will set them.

Now: the live value in ``/proc/sys``. Next boot: what systemd-sysctl writes from the sysctl.d files, in its
own order (see :mod:`hds_compliance.facts.sysctl_conf`). A host whose live value is right but whose files
would undo it, or leave it to the kernel's default, fails and the message names the file and line.

Per-interface parameters (``net.ipv4.conf.<if>.<key>``) are judged on every interface with the kernel's
own combination of the ``all`` value and the interface's (include/linux/inetdevice.h, ip-sysctl.rst):
some keys are ORed, some ANDed, some take the maximum, ``accept_redirects`` is ANDed on an interface that
forwards and ORed on one that does not. IPv6 reads the interface's own value (net/ipv6: rt6_do_redirect,
ipv6_accept_ra), except accept_source_route, the minimum of all and the interface (ipv6_rthdr_rcv).
``default`` is judged as what the next interface created gets. At boot an interface gets the sysctl.d keys
that name it (explicit or glob: systemd-sysctl runs again for each interface that appears), else the value
of conf/default (copied to it when default is written, or at its creation).
Values are compared after collapsing whitespace, so ``32768 65535`` matches the kernel's tab-separated
``32768\t65535``. Expected values may be YAML numbers or strings, or a list of accepted values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    passed,
)
from hds_compliance.facts import Fact, Sysctl
from hds_compliance.facts.boot import BootEntries
from hds_compliance.facts.sysctl_conf import (
    NET_KEYS,
    NetConf,
    SysctlApplied,
    SysctlConf,
    SysctlConfig,
    dotted_name,
)

CONF = SysctlConf()
BOOT = BootEntries()
SYSCTL_DIRS_TEXT = "/etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d or /usr/lib/sysctl.d"

Expected = str | int | list[str | int]


def _norm(value: str | int) -> str:
    return " ".join(str(value).split())


def _accepted(expected: Expected) -> list[str]:
    return [_norm(v) for v in expected] if isinstance(expected, list) else [_norm(expected)]


def _show(expected: Expected) -> str:
    accepted = _accepted(expected)
    return accepted[0] if len(accepted) == 1 else "one of " + ", ".join(accepted)


def _valid_name(name: str) -> str:
    Sysctl(name)  # raises ValueError on anything that is not a dotted sysctl name
    return name


class _Persisted(Params):
    require_persisted: bool = Field(
        default=True,
        description="a value no sysctl.d file sets fails (the next boot leaves the kernel's default); "
        "false accepts it when the live value is right",
    )


def _persisted_problem(
    name: str, path: str, expected: Expected, config: SysctlConfig, require: bool
) -> str | None:
    """Why the next boot would not give ``name`` an accepted value, or None."""
    entry = config.assignment(path)
    if entry is None or entry.value is None:
        if not require:
            return None
        why = f"{entry.where} excludes it from glob keys and " if entry is not None else ""
        return (
            f"{name}: {why}no file in {SYSCTL_DIRS_TEXT} sets it, "
            "so the next boot leaves the kernel's default"
        )
    if _norm(entry.value) not in _accepted(expected):
        return f"{name}: {entry.where} sets {entry.name} = {_norm(entry.value)}, which the next boot applies"
    return None


def _judge(name: str, expected: Expected, require: bool, ctx: Context) -> list[str]:
    """Problems of one parameter, live and persisted (raises FactUnavailable when a fact is missing)."""
    problems = []
    value = ctx.get(Sysctl(name))
    path = Sysctl(name).path.removeprefix("/proc/sys/")
    if value is None:
        problems.append(f"{name} does not exist in this kernel (no /proc/sys/{path})")
    elif value not in _accepted(expected):
        problems.append(f"{name} is {value} now")
    persisted = _persisted_problem(name, path, expected, ctx.get(CONF), require)
    if persisted:
        problems.append(persisted)
    return problems


class ValueParams(_Persisted):
    name: str = Field(description="sysctl name, e.g. kernel.kptr_restrict")
    expect: Expected = Field(description="required value (or list of accepted values), live and persisted")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value)


@check("sysctl.value", params=ValueParams, facts=lambda p: [Sysctl(p.name), CONF])
def sysctl_value(p: ValueParams, ctx: Context) -> Outcome:
    """A kernel parameter has the expected value now and after the next boot."""
    problems = _judge(p.name, p.expect, p.require_persisted, ctx)
    if problems:
        return failed(f"{'; '.join(problems)} (expected {_show(p.expect)})")
    entry = ctx.get(CONF).assignment(Sysctl(p.name).path.removeprefix("/proc/sys/"))
    if entry is None or entry.value is None:
        return passed(
            f"{p.name} is {ctx.get(Sysctl(p.name))} now (no sysctl.d file sets it, which is accepted)"
        )
    return passed(f"{p.name} is {ctx.get(Sysctl(p.name))} now and {entry.where} keeps it at boot")


class ValuesParams(_Persisted):
    expect: dict[str, Expected] = Field(
        min_length=1, description="sysctl name -> required value (or list of accepted values)"
    )

    @field_validator("expect")
    @classmethod
    def _names(cls, value: dict[str, Expected]) -> dict[str, Expected]:
        for name in value:
            _valid_name(name)
        return value


@check("sysctl.values", params=ValuesParams, facts=lambda p: [*(Sysctl(n) for n in p.expect), CONF])
def sysctl_values(p: ValuesParams, ctx: Context) -> Outcome:
    """Several kernel parameters have their expected values now and after the next boot; every mismatch
    is reported at once."""
    wrong: list[str] = []
    unknown: list[str] = []
    for name, expected in p.expect.items():
        try:
            problems = _judge(name, expected, p.require_persisted, ctx)
        except FactUnavailable as exc:
            unknown.append(str(exc))
            continue
        if problems:
            wrong.append(f"{'; '.join(problems)} (expected {_show(expected)})")
    if wrong:
        tail = f" ({len(unknown)} more could not be read: {'; '.join(unknown)})" if unknown else ""
        return failed(
            f"{len(wrong)} of {len(p.expect)} kernel parameters are wrong: {'; '.join(wrong)}{tail}"
        )
    if unknown:
        raise FactUnavailable("; ".join(unknown))
    return passed(f"all {len(p.expect)} kernel parameters have their expected values now and at boot")


# ------------------------------------------------------------------------------- per-interface values

Combine = Literal["or", "and", "max", "min", "own", "redirects4", "redirects6", "ra6"]

# How the kernel combines conf/all/<key> with conf/<if>/<key> (include/linux/inetdevice.h IN_DEV_*CONF
# macros for IPv4; net/ipv6 reads the interface's own value except accept_source_route, a minimum).
COMBINE: dict[str, dict[str, Combine]] = {
    "ipv4": {
        "accept_local": "or",
        "accept_redirects": "redirects4",
        "accept_source_route": "and",
        "arp_accept": "max",
        "arp_announce": "max",
        "arp_filter": "or",
        "arp_ignore": "max",
        "arp_notify": "max",
        "bc_forwarding": "and",
        "bootp_relay": "and",
        "drop_gratuitous_arp": "or",
        "drop_unicast_in_l2_multicast": "or",
        "forwarding": "own",
        "log_martians": "or",
        "mc_forwarding": "and",
        "proxy_arp": "or",
        "route_localnet": "or",
        "rp_filter": "max",
        "secure_redirects": "or",
        "send_redirects": "or",
        "shared_media": "or",
    },
    "ipv6": {
        "accept_ra": "ra6",
        "accept_ra_defrtr": "own",
        "accept_ra_pinfo": "own",
        "accept_ra_rtr_pref": "own",
        "accept_redirects": "redirects6",
        "accept_source_route": "min",
        "autoconf": "own",
        "dad_transmits": "own",
        "disable_ipv6": "own",
        "forwarding": "own",
        "max_addresses": "own",
        "router_solicitations": "own",
        "use_tempaddr": "own",
    },
}
assert {f: set(keys) for f, keys in COMBINE.items()} == {f: set(keys) for f, keys in NET_KEYS.items()}

# Values a key can take, to judge a persisted value left to the kernel's default: the outcome must be
# right whatever that default is. Keys absent here have too many values to enumerate.
_DOMAIN: dict[str, tuple[int, ...]] = {
    "rp_filter": (0, 1, 2),
    "arp_announce": (0, 1, 2),
    "arp_ignore": (0, 1, 2, 3, 4, 5, 6, 7, 8),
    "arp_accept": (0, 1, 2),
    "accept_ra": (0, 1, 2),
    "accept_source_route": (-1, 0, 1),
}
_BOOLEAN = (0, 1)


def effective(rule: Combine, all_value: int, own: int, forwarding: int) -> int:
    """The value the kernel applies on an interface from ``all``, the interface's own value and whether
    the interface forwards."""
    if rule == "or":
        return int(bool(all_value or own))
    if rule == "and":
        return int(bool(all_value and own))
    if rule == "max":
        return max(all_value, own)
    if rule == "min":
        return min(all_value, own)
    if rule == "redirects4":  # IN_DEV_RX_REDIRECTS
        return int(bool(all_value and own)) if forwarding else int(bool(all_value or own))
    if rule == "redirects6":  # rt6_do_redirect: a forwarding interface ignores redirects
        return 0 if forwarding else own
    if rule == "ra6":  # ipv6_accept_ra: a forwarding interface accepts RAs only with accept_ra=2
        return int(own == 2) if forwarding else int(own > 0)
    return own


def _formula(rule: Combine, slot: str, all_value: object, own: object, forwarding: object) -> str:
    label = "interfaces created later" if slot == "default" else slot
    if rule == "or":
        return f"all={all_value} OR {slot}={own}"
    if rule == "and":
        return f"all={all_value} AND {slot}={own}"
    if rule in ("max", "min"):
        return f"{rule}(all={all_value}, {slot}={own})"
    if rule == "redirects4":
        how = "AND" if forwarding else "OR"
        return f"{label} forward={forwarding}, so all={all_value} {how} {slot}={own}"
    if rule in ("redirects6", "ra6"):
        return f"{slot}={own}, {slot} forwarding={forwarding}"
    return f"{slot}={own}"


@dataclass(frozen=True)
class _Slot:
    """Inputs of one interface's effective value; None where the next boot leaves the kernel default."""

    all_value: int | None
    own: int | None
    forwarding: int | None


def _outcomes(rule: Combine, key: str, slot: _Slot) -> set[int] | None:
    """Every value the kernel may apply, given unknown inputs; None if an unknown cannot be enumerated."""
    domain = _DOMAIN.get(key, _BOOLEAN if rule in ("or", "and", "redirects4") else None)
    # Inputs the rule does not read cannot make the outcome unknown.
    all_value = 0 if rule in ("own", "redirects6", "ra6") else slot.all_value
    forwarding = slot.forwarding if rule in ("redirects4", "redirects6", "ra6") else 0
    choices: list[Iterable[int]] = []
    for known, values in ((all_value, domain), (slot.own, domain), (forwarding, _BOOLEAN)):
        if known is not None:
            choices.append((known,))
        elif values is None:
            return None
        else:
            choices.append(values)
    return {effective(rule, a, o, f) for a, o, f in itertools.product(*choices)}


class InterfaceParams(_Persisted):
    family: Literal["ipv4", "ipv6"] = Field(description="address family: ipv4 (net.ipv4.conf) or ipv6")
    expect: dict[str, int | list[int]] = Field(
        min_length=1,
        description="per-interface key (e.g. rp_filter) -> value (or accepted values) the kernel must apply "
        "on every interface, after combining conf/all with the interface's own value",
    )
    skip_interfaces: list[str] = Field(
        default_factory=lambda: ["lo"],
        description="interfaces not judged (loopback never carries another host's packets)",
    )
    pass_if_ipv6_disabled: bool = Field(
        default=True, description="ipv6 only: IPv6 disabled on every interface, now and at boot, passes"
    )

    @model_validator(mode="after")
    def _keys(self) -> InterfaceParams:
        unknown = sorted(set(self.expect) - set(COMBINE[self.family]))
        if unknown:
            raise ValueError(f"not judged per interface for {self.family}: {', '.join(unknown)}")
        return self


def _interface_facts(p: InterfaceParams) -> list[Fact[Any]]:
    # IPv6 may be off from the command line (ipv6.disable=1): the boot entries say whether it stays off.
    extra = [BOOT] if p.family == "ipv6" and p.pass_if_ipv6_disabled else []
    return [NetConf(p.family), CONF, *extra]


def _live_problems(p: InterfaceParams, table: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    slots = ["default", *sorted(i for i in table if i not in ("all", "default", *p.skip_interfaces))]
    for key, expected in p.expect.items():
        accepted = expected if isinstance(expected, list) else [expected]
        rule = COMBINE[p.family][key]
        for slot in slots:
            values = table[slot]
            if key not in values or key not in table["all"]:
                problems.append(f"{slot}: this kernel has no {p.family} {key}")
                continue
            all_value, own, fwd = table["all"][key], values[key], values.get("forwarding", 0)
            value = effective(rule, all_value, own, fwd)
            if value not in accepted:
                where = "interfaces created later" if slot == "default" else slot
                problems.append(
                    f"{where}: {key} in effect is {value} ({_formula(rule, slot, all_value, own, fwd)})"
                )
    return problems


def _boot_value(config: SysctlConfig, family: str, slot: str, key: str) -> tuple[int | None, str]:
    """What the next boot writes to conf/<slot>/<key>, and where (or why it is unknown)."""
    entry = config.assignment(f"net/{family}/conf/{slot}/{key}")
    if entry is None and (family, slot, key) == ("ipv4", "all", "forwarding"):
        entry = config.assignment("net/ipv4/ip_forward")  # the same knob under its old name
    if entry is None or entry.value is None:
        return None, "set by no sysctl.d file"
    try:
        return int(entry.value), entry.where
    except ValueError:
        return None, f"{entry.where} writes {entry.value!r}, which the kernel refuses"


def _persisted_problems(p: InterfaceParams, config: SysctlConfig, interfaces: list[str]) -> list[str]:
    problems = []
    for key, expected in p.expect.items():
        accepted = set(expected if isinstance(expected, list) else [expected])
        rule = COMBINE[p.family][key]
        all_value, all_where = _boot_value(config, p.family, "all", key)
        default_value, default_where = _boot_value(config, p.family, "default", key)
        # Writing conf/all/forwarding (net.ipv4.ip_forward) sets it on every interface and on default.
        fwd_all, _ = _boot_value(config, p.family, "all", "forwarding")
        fwd_default = (
            fwd_all if fwd_all is not None else _boot_value(config, p.family, "default", "forwarding")[0]
        )
        for slot in ["default", *interfaces]:
            own, where = default_value, default_where
            fwd = fwd_default
            if slot != "default":
                # An interface gets its own keys (explicit or glob) when it appears, else default's value.
                own_value, own_where = _boot_value(config, p.family, slot, key)
                if own_value is not None or own_where != "set by no sysctl.d file":
                    own, where = own_value, own_where
                fwd_own, _ = _boot_value(config, p.family, slot, "forwarding")
                fwd = fwd_own if fwd_own is not None else fwd_default
            outcomes = _outcomes(rule, key, _Slot(all_value, own, fwd))
            if outcomes is not None and outcomes <= accepted:
                continue
            if not p.require_persisted and None in (all_value, own):
                continue  # left to the kernel's default, which the parameters accept
            name = "interfaces created later" if slot == "default" else slot
            got = "an unknown value" if outcomes is None else " or ".join(map(str, sorted(outcomes)))
            shown_all = "?" if all_value is None else all_value
            shown_own = "?" if own is None else own
            problems.append(
                f"at the next boot {name} would get {key} {got}: all {shown_all} ({all_where}), "
                f"{slot} {shown_own} ({where})"
            )
    return problems


def _ipv6_off(ctx: Context, table: dict[str, dict[str, int]] | None) -> tuple[bool, str]:
    """Whether IPv6 is off on every interface now and at the next boot, and what says so (or why not).
    The boot entries are read only when they decide."""
    if table is None:
        lacking = ctx.get(BOOT).lacking("ipv6.disable=1")
        if not lacking:
            return True, "the kernel runs without IPv6 and every boot entry passes ipv6.disable=1"
        where = ", ".join(e.source for e in lacking)
        return False, (
            f"IPv6 is off in the running kernel (no /proc/sys/net/ipv6/conf), but {where} lack "
            "ipv6.disable=1: the next boot turns it on"
        )
    if not all(values.get("disable_ipv6") == 1 for values in table.values()):
        return False, ""
    config = ctx.get(CONF)
    slots = ("all", "default")
    if all(config.value(f"net/ipv6/conf/{slot}/disable_ipv6") == "1" for slot in slots):
        return True, "disable_ipv6 is 1 on every interface now, and sysctl.d sets it on all and default"
    if not ctx.get(BOOT).lacking("ipv6.disable=1"):
        return True, "disable_ipv6 is 1 on every interface now, and every boot entry passes ipv6.disable=1"
    return False, ""


@check("sysctl.interface_values", params=InterfaceParams, facts=_interface_facts)
def sysctl_interface_values(p: InterfaceParams, ctx: Context) -> Outcome:
    """Per-interface network parameters are in effect on every interface, as the kernel combines conf/all
    with each interface's value, now and after the next boot."""
    table = ctx.get(NetConf(p.family))
    if p.family == "ipv6" and p.pass_if_ipv6_disabled:
        off, why = _ipv6_off(ctx, table)
        if off:
            return passed(f"IPv6 is disabled: {why}")
        if table is None:
            return failed(why)
    if table is None:
        return failed(f"this kernel has no {p.family} parameters (no /proc/sys/net/{p.family}/conf)")
    interfaces = sorted(i for i in table if i not in ("all", "default", *p.skip_interfaces))
    problems = _live_problems(p, table)
    live = len(problems)
    problems += _persisted_problems(p, ctx.get(CONF), interfaces)
    if problems:
        head = f"{live} live and {len(problems) - live} at-boot problem(s)"
        return failed(f"{head}: {'; '.join(problems)}")
    keys = ", ".join(f"{k}={v}" for k, v in p.expect.items())
    judged = ", ".join(interfaces) or "no interface but loopback"
    return passed(f"{keys} in effect on {judged} and for interfaces created later, now and at boot")


# ------------------------------------------------------------------------------------ configuration drift

APPLIED = SysctlApplied()


@check("sysctl.configuration_applied", facts=lambda p: [APPLIED])
def sysctl_configuration_applied(p: NoParams, ctx: Context) -> Outcome:
    """Every kernel parameter the sysctl.d files set has that value now: nothing changed it at run time and
    no file failed to apply (the running kernel is the configuration a reboot would give)."""
    config, live = ctx.get(APPLIED)
    drift = []
    judged = 0
    for path, value in sorted(live.items()):
        entry = config.assignment(path)
        if entry is None or entry.value is None or value is None:
            continue  # not set by the files, or a key this kernel lacks (systemd-sysctl skips it)
        judged += 1
        if _norm(value) != _norm(entry.value):
            via = f" ({entry.name})" if entry.is_glob else ""
            drift.append(
                f"{dotted_name(path)} is {_norm(value)} now but {entry.where}{via} sets {_norm(entry.value)}"
            )
    if drift:
        return failed(f"{len(drift)} of {judged} values set by sysctl.d differ now: {'; '.join(drift)}")
    return passed(f"all {judged} values set by {len(config.files)} sysctl.d files are in effect")
