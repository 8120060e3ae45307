"""Mandatory access control (ANSSI-BP-028 R37, R45, R46): AppArmor or SELinux enforcing, now and at the
next boot.

Now: the kernel's own state (``/sys/module/apparmor``, the loaded profiles, ``/sys/fs/selinux/enforce``).
At the next boot: the kernel command line each boot configuration gives (``apparmor=0``, ``selinux=0``,
``enforcing=0``, ``security=``), ``/etc/selinux/config`` and whether the AppArmor service loads profiles.
The check for the MAC a host does not use is ``not_applicable`` and names the one it uses.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
from hds_compliance.facts import Fact, FileContent
from hds_compliance.facts.boot import KERNEL_CMDLINE, BootEntries
from hds_compliance.facts.mac import AppArmorStatus, SELinuxStatus
from hds_compliance.facts.packages import InstalledPackages
from hds_compliance.facts.services import SystemdUnit
from hds_compliance.model import Status

APPARMOR = AppArmorStatus()
SELINUX = SELinuxStatus()
BOOT = BootEntries()
SELINUX_CONFIG = FileContent("/etc/selinux/config")
APPARMOR_UNIT = SystemdUnit("apparmor.service")
INSTALLED = InstalledPackages()
FACTS: list[Fact[Any]] = [APPARMOR, SELINUX, KERNEL_CMDLINE, BOOT, SELINUX_CONFIG, APPARMOR_UNIT, INSTALLED]


def _active_mac(ctx: Context) -> str:
    """``apparmor`` or ``selinux``: the MAC the kernel runs, else the one of the host's family."""
    if ctx.get(SELINUX).enforce is not None:
        return "selinux"
    apparmor = ctx.get(APPARMOR)
    if apparmor is not None and apparmor.enabled:
        return "apparmor"
    database = ctx.get(INSTALLED)
    return "selinux" if database is not None and database.tool == "rpm" else "apparmor"


def _kernel_args(ctx: Context, bad: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(live, persisted) findings: kernel arguments ``name=value`` in ``bad`` that switch the MAC off.

    The next boot's command lines come from the boot loader configuration; where none is visible (a
    container, /boot not mounted) they cannot be judged and only the live one is.
    """
    live_args = ctx.get(KERNEL_CMDLINE)
    try:
        entries = [(entry.source, list(entry.args)) for entry in ctx.get(BOOT).entries if not entry.recovery]
    except FactUnavailable:
        entries = []

    def hits(words: list[str]) -> list[str]:
        found = []
        for word in words:
            name, _, value = word.partition("=")
            if name in bad and (not bad[name] or value in bad[name]):
                found.append(word)
        return found

    live = hits(live_args)
    persisted = [f"{word} in {source}" for source, words in entries for word in hits(words)]
    return live, persisted


class AppArmorParams(Params):
    allow_complain: bool = Field(
        default=False, description="accept profiles in complain mode (they log but do not confine)"
    )


def _apparmor(p: AppArmorParams, ctx: Context) -> Outcome:
    state = ctx.get(APPARMOR)
    if state is None or not state.enabled:
        why = "the kernel has no AppArmor module" if state is None else "AppArmor is disabled in the kernel"
        return failed(why)
    if state.profiles is None:
        raise FactUnavailable("securityfs is not mounted: the loaded AppArmor profiles cannot be listed")
    modes: dict[str, list[str]] = {}
    for name, mode in state.profiles.items():
        modes.setdefault(mode, []).append(name)
    enforce = len(modes.get("enforce", [])) + len(modes.get("kill", []))
    problems = []
    if not enforce:
        problems.append(f"no profile in enforce mode ({len(state.profiles)} loaded)")
    loose = {m: names for m, names in modes.items() if m not in ("enforce", "kill")}
    if p.allow_complain:
        loose.pop("complain", None)
    for mode, names in sorted(loose.items()):
        shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
        problems.append(f"{len(names)} profile(s) in {mode} mode: {shown}")
    _live, persisted = _kernel_args(ctx, {"apparmor": {"0"}, "security": set(), "lsm": set()})
    # security= picks the one major LSM; lsm= lists those to start: either must name apparmor.
    persisted = [f for f in persisted if "apparmor" not in f.split(" in ", 1)[0].partition("=")[2]]
    problems += [f"next boot: {finding}" for finding in persisted]
    unit = ctx.get(APPARMOR_UNIT)
    if unit is not None and unit.enabled not in ("not-found",) and not unit.will_start:
        problems.append(f"next boot: apparmor.service is {unit.enabled}, profiles would not be loaded")
    if problems:
        return failed("; ".join(problems))
    return passed(
        f"AppArmor enabled, {enforce} profile(s) enforcing, none weaker; nothing disables it at boot"
    )


@check("mac.apparmor_enforcing", params=AppArmorParams, facts=lambda p: FACTS)
def apparmor_enforcing(p: AppArmorParams, ctx: Context) -> Outcome:
    """AppArmor is enabled with its loaded profiles enforcing, and nothing turns it off at the next boot."""
    if _active_mac(ctx) != "apparmor":
        return not_applicable("AppArmor is not the MAC of this host: SELinux is")
    return _apparmor(p, ctx)


class SELinuxParams(Params):
    policy: str = Field(default="targeted", pattern=r"^[a-z0-9_-]+$", description="required SELinux policy")


def _config_values(ctx: Context) -> dict[str, tuple[str, int]]:
    data = ctx.get(SELINUX_CONFIG)
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate((data or b"").decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[key.strip()] = (value.strip().strip("\"'"), number)
    return values


def _selinux(p: SELinuxParams, ctx: Context) -> Outcome:
    state = ctx.get(SELINUX)
    problems = []
    if state.enforce is None:
        problems.append("SELinux is disabled in the running kernel (selinuxfs is not mounted)")
    elif state.enforce != 1:
        problems.append("SELinux is permissive now (/sys/fs/selinux/enforce is 0)")
    if state.policy is not None and state.policy != p.policy:
        problems.append(f"loaded policy is {state.policy}, not {p.policy}")
    config = _config_values(ctx)
    mode, line = config.get("SELINUX", ("unset", 0))
    kind, kind_line = config.get("SELINUXTYPE", ("unset", 0))
    where = SELINUX_CONFIG.arg
    if mode.lower() != "enforcing":
        problems.append(f"next boot: SELINUX={mode} in {where}" + (f" line {line}" if line else ""))
    if kind != p.policy:
        problems.append(
            f"next boot: SELINUXTYPE={kind} in {where}" + (f" line {kind_line}" if kind_line else "")
        )
    _live, persisted = _kernel_args(ctx, {"selinux": {"0"}, "enforcing": {"0"}})
    problems += [f"next boot: {finding}" for finding in persisted]
    if problems:
        return failed("; ".join(problems))
    policy = state.policy or f"{kind} per {where} (sestatus is not installed)"
    return passed(f"SELinux enforcing now and in {where}, policy {policy}")


@check("mac.selinux_enforcing", params=SELinuxParams, facts=lambda p: FACTS)
def selinux_enforcing(p: SELinuxParams, ctx: Context) -> Outcome:
    """SELinux enforces the targeted policy now (selinuxfs) and at the next boot (/etc/selinux/config,
    kernel command line)."""
    if _active_mac(ctx) != "selinux":
        return not_applicable("SELinux is not the MAC of this host: AppArmor is")
    return _selinux(p, ctx)


@check("mac.enforcing", facts=lambda p: FACTS)
def mac_enforcing(p: NoParams, ctx: Context) -> Outcome:
    """A mandatory access control enforces: AppArmor or SELinux, whichever the host runs."""
    outcomes: list[tuple[str, Outcome]] = [
        ("AppArmor", _apparmor(AppArmorParams(), ctx)),
        ("SELinux", _selinux(SELinuxParams(), ctx)),
    ]
    for name, outcome in outcomes:
        if outcome.status is Status.PASS:
            return passed(f"{name}: {outcome.message}")
    return failed("; ".join(f"{name}: {outcome.message}" for name, outcome in outcomes))
