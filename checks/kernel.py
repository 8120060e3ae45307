"""Kernel boot arguments, kernel modules that must not load, and core dumps.

Each check judges what is in effect now and what survives the next boot: the running kernel's command
line and the boot loader's entries; the modules loaded now and modprobe's rules; the core-dump handler
and limits.
"""

from __future__ import annotations

import shlex
from fnmatch import fnmatchcase

from pydantic import Field, field_validator

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, passed
from hds_compliance.facts import FileContent, FilesMatching, Sysctl
from hds_compliance.facts.boot import (
    KERNEL_CMDLINE,
    BootEntries,
    after_init_separator,
    has_param,
    kernel_params,
)
from hds_compliance.facts.modules import KernelModules, module_name
from hds_compliance.facts.sysctl_conf import SysctlConf

BOOT = BootEntries()
MODULES = KernelModules()
CONF = SysctlConf()


class CmdlineParams(Params):
    arguments: list[str] = Field(
        min_length=1,
        description="arguments the kernel must get, e.g. [iommu=force] (name=value: its last value or one "
        "comma-separated item of it; a bare name: the flag)",
    )

    @field_validator("arguments")
    @classmethod
    def _plain(cls, value: list[str]) -> list[str]:
        for arg in value:
            if not arg or any(c.isspace() or c == '"' for c in arg) or arg == "--":
                raise ValueError(f"not a single kernel argument: {arg!r}")
        return value


def _live_problem(args: list[str], wanted: str) -> str | None:
    if has_param(args, wanted):
        return None
    name = wanted.partition("=")[0]
    if any(a == name or a.startswith(name + "=") for a in after_init_separator(args)):
        return (
            f"running kernel: {wanted} comes after '--' in /proc/cmdline, so it went to init, not the kernel"
        )
    params = kernel_params(args)
    if name not in params:
        return f"running kernel: /proc/cmdline has no {name}" + (
            "" if name == wanted else f" (wanted {wanted})"
        )
    return f"running kernel: /proc/cmdline has {name}={params[name]}, not {wanted}"


@check("kernel.cmdline_arguments", params=CmdlineParams, facts=lambda p: [KERNEL_CMDLINE, BOOT])
def kernel_cmdline_arguments(p: CmdlineParams, ctx: Context) -> Outcome:
    """The kernel runs with the listed boot arguments (e.g. iommu=force), and every boot entry keeps them."""
    args = ctx.get(KERNEL_CMDLINE)
    boot = ctx.get(BOOT)
    problems = [why for wanted in p.arguments if (why := _live_problem(args, wanted))]
    for wanted in p.arguments:
        for entry in boot.lacking(wanted):
            what = (
                "the next boot-menu regeneration drops it"
                if entry.kind in ("defaults", "kernel-install")
                else "the next boot runs without it"
            )
            problems.append(f"{entry.source} lacks {wanted}: {what}")
    if problems:
        return failed("; ".join(problems))
    sources = ", ".join(sorted({e.source.partition(":")[0] for e in boot.entries}))
    return passed(f"the kernel runs with {' '.join(p.arguments)}, and {sources} keep them at boot")


# Commands that make modprobe return without loading anything (modprobe.d(5): "install <module> /bin/true").
_REFUSING = {"/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true", "false", "true"}


def _refuses(command: str) -> bool:
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return False
    return len(words) >= 1 and words[0] in _REFUSING and not any(c in command for c in ";&|`$")


class ModulesParams(Params):
    modules: list[str] = Field(min_length=1, description="modules that must not load, e.g. [usb-storage]")


@check("kernel.modules_blocked", params=ModulesParams, facts=lambda p: [MODULES])
def kernel_modules_blocked(p: ModulesParams, ctx: Context) -> Outcome:
    """Listed kernel modules are not loaded, not built in, and modprobe refuses to load them (an install
    rule to /bin/false or /bin/true: a blacklist alone still lets ``modprobe X`` and dependencies load)."""
    state = ctx.get(MODULES)
    problems = []
    for wanted in p.modules:
        name = module_name(wanted)
        if state.loaded is not None and name in state.loaded:
            problems.append(f"{wanted} is loaded now (/proc/modules)")
        elif state.builtin is not None and name in state.builtin:
            problems.append(
                f"{wanted} is built into the running kernel (modules.builtin): no rule can stop it"
            )
        elif state.loaded is None and name in state.present:
            problems.append(
                f"{wanted} is part of the running kernel (/sys/module/{name}) and cannot be unloaded"
            )
        command = state.install_command(name)
        if command is None:
            why = (
                "blacklisted only, which stops automatic loading but not"
                if name in state.blacklist
                else "no rule stops"
            )
            problems.append(
                f"{wanted}: {why} `modprobe {wanted}` (modprobe --showconfig has no install rule)"
            )
        elif not _refuses(command):
            problems.append(f"{wanted}: modprobe runs `{command}` instead, which is not known to refuse it")
    if problems:
        return failed("; ".join(problems))
    return passed(f"{', '.join(p.modules)}: not loaded, and modprobe's install rules refuse to load them")


# ----------------------------------------------------------------------------------------- core dumps

LIMITS_CONF = FileContent("/etc/security/limits.conf")
LIMITS_D = FilesMatching("/etc/security/limits.d/*.conf")


def _core_limit(text: str, source: str) -> list[tuple[str, str, str, str]]:
    """(domain, type, value, file:line) of every ``core`` line of a limits file."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 4 and fields[2] == "core":
            out.append((fields[0], fields[1], fields[3], f"{source}:{number}"))
    return out


@check("kernel.core_dumps_limited", facts=lambda p: [LIMITS_CONF, LIMITS_D])
def kernel_core_dumps_limited(p: NoParams, ctx: Context) -> Outcome:
    """Login sessions cannot write core dumps: pam_limits gives every user a hard core limit of 0."""
    text = ctx.get(LIMITS_CONF)
    files = ctx.get(LIMITS_D)
    lines = _core_limit((text or b"").decode("utf-8", "replace"), LIMITS_CONF.arg)
    for name, body in files.items():  # limits.d is read after limits.conf, in name order
        lines += _core_limit(body.decode("utf-8", "replace"), name)
    hard = soft = None
    overriding = []
    for domain, kind, value, where in lines:
        if domain == "*":
            if kind in ("hard", "-"):
                hard = (value, where)
            if kind in ("soft", "-"):
                soft = (value, where)
        elif value not in ("0",) and kind in ("hard", "-", "soft"):
            # A user or group line beats '*' for its members, whatever the order (pam_limits).
            overriding.append(f"{where} gives {domain} a {kind} core limit of {value}")
    problems = []
    if hard is None:
        problems.append(
            "no '* hard core 0' line in /etc/security/limits.conf or limits.d: "
            "users may raise their core limit"
        )
    elif hard[0] != "0":
        problems.append(f"{hard[1]} sets the hard core limit of every user to {hard[0]}")
    problems += overriding
    if problems:
        return failed("; ".join(problems))
    assert hard is not None
    extra = f" (soft {soft[0]} at {soft[1]})" if soft else ""
    return passed(f"{hard[1]} sets a hard core limit of 0 for every user{extra}")


CORE_PATTERN = Sysctl("kernel.core_pattern")
COREDUMP_CONF = FileContent("/etc/systemd/coredump.conf")
COREDUMP_DIRS = (
    "/etc/systemd/coredump.conf.d",
    "/run/systemd/coredump.conf.d",
    "/usr/local/lib/systemd/coredump.conf.d",
    "/usr/lib/systemd/coredump.conf.d",
)
COREDUMP_DROPINS = [FilesMatching(f"{d}/*.conf") for d in COREDUMP_DIRS]


def _coredump_settings(ctx: Context) -> dict[str, tuple[str, str]]:
    """[Coredump] settings systemd-coredump uses: coredump.conf, then drop-ins by name across directories
    (the same name in a higher directory replaces the lower one); later assignments win."""
    sources: list[tuple[str, bytes]] = []
    main = ctx.get(COREDUMP_CONF)
    if main is not None:
        sources.append((COREDUMP_CONF.arg, main))
    chosen: dict[str, tuple[str, bytes]] = {}
    for fact in COREDUMP_DROPINS:  # highest precedence first
        for path, body in ctx.get(fact).items():
            chosen.setdefault(path.rpartition("/")[2], (path, body))
    sources += [chosen[name] for name in sorted(chosen)]
    settings: dict[str, tuple[str, str]] = {}
    for path, body in sources:
        section = ""
        for number, raw in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif "=" in line and not line.startswith(("#", ";")) and section == "Coredump":
                key, _, value = line.partition("=")
                settings[key.strip()] = (value.strip(), f"{path}:{number}")
    return settings


def _size_is_zero(value: str) -> bool:
    return value.strip().upper() in ("0", "0B", "0K", "0M", "0G")


@check(
    "kernel.core_dumps_not_stored",
    facts=lambda p: [CORE_PATTERN, CONF, COREDUMP_CONF, *COREDUMP_DROPINS],
)
def kernel_core_dumps_not_stored(p: NoParams, ctx: Context) -> Outcome:
    """Core dumps of crashing programs (memory that may hold health data) are not written to disk: the
    kernel's core_pattern discards them or hands them to systemd-coredump with Storage=none, now and at
    boot."""
    live = ctx.get(CORE_PATTERN)
    persisted = ctx.get(CONF).assignment("kernel/core_pattern")
    patterns = [("now", live or "core")]
    if persisted is not None and persisted.value is not None:
        patterns.append((f"at boot ({persisted.where})", persisted.value))
    else:
        patterns.append(("at boot (no sysctl.d file sets it: the kernel's default)", "core"))
    problems = []
    needs_coredump_conf = False
    for when, pattern in patterns:
        command = pattern[1:].split()[0] if pattern.startswith("|") and pattern[1:].split() else ""
        if command.rpartition("/")[2] in ("false", "true"):
            continue  # a handler that reads nothing: the dump is dropped
        if fnmatchcase(command, "*/systemd-coredump"):
            needs_coredump_conf = True
            continue
        shown = f"pipes to {command}" if command else f"writes files named {pattern!r}"
        problems.append(f"kernel.core_pattern {when} {shown}: dumps are stored unless every limit is 0")
    if needs_coredump_conf:
        settings = _coredump_settings(ctx)
        storage = settings.get("Storage", ("external", "systemd default"))
        size = settings.get("ProcessSizeMax", ("", ""))
        if storage[0] != "none" and not _size_is_zero(size[0]):
            problems.append(
                f"systemd-coredump stores dumps: Storage={storage[0]} ({storage[1]}) "
                "and ProcessSizeMax is not 0"
            )
    if problems:
        return failed("; ".join(problems))
    return passed(f"core dumps are discarded (core_pattern {live!r}, now and at boot)")
