"""Linux audit (auditd): the daemon runs and the kernel holds rules, including watches on sensitive files.

Judged on what the kernel has loaded (``auditctl -l``), not on ``/etc/audit/rules.d``: rules that were
written but never loaded, or that failed to load, audit nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, passed
from hds_compliance.facts import AuditRules, AuditStatus, Processes

RULES = AuditRules()
STATUS = AuditStatus()
PROCESSES = Processes()

_TASK_NEVER = "it turns off syscall auditing, watches included, for every task"
_EVENT_LISTS = ("exit", "task", "user", "io_uring")
_NOT_INSTALLED = "auditctl is not installed: the Linux audit userspace (auditd package) is missing"


@dataclass(frozen=True)
class _Rule:
    """One line of ``auditctl -l``: its list, action, watched paths and permission filter."""

    text: str
    list_name: str  # exit, task, user, exclude, filesystem, io_uring
    action: str  # always, never
    paths: tuple[tuple[str, bool], ...]  # (path, covers descendants)
    perms: str  # rwxa letters, "" when the rule has no permission filter
    filters: tuple[str, ...]  # every -F / -S / -C argument, for "is it unconditional?"


def _parse_rule(line: str) -> _Rule:
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
    list_name, action, perms = "", "", ""
    paths: list[tuple[str, bool]] = []
    filters: list[str] = []
    i = 0
    while i < len(tokens):
        token, value = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ("-a", "-A"):
            parts = value.split(",")
            action = next((p for p in parts if p in ("always", "never")), "")
            list_name = next((p for p in parts if p not in ("always", "never")), "")
            i += 2
        elif token == "-w":
            # auditctl -l prints a directory watch (or -F dir=) as "-w DIR": a file under it is covered too.
            list_name, action = "exit", "always"
            paths.append((value.rstrip("/") or "/", True))
            i += 2
        elif token == "-p":
            perms = value
            i += 2
        elif token in ("-F", "-S", "-C"):
            name, _, arg = _split_field(value)
            if token == "-F" and name == "path":
                paths.append((arg, False))
            elif token == "-F" and name == "dir":
                paths.append((arg.rstrip("/") or "/", True))
            elif token == "-F" and name == "perm":
                perms = arg
            elif token == "-F" and name in ("key", "arch"):
                pass
            else:
                filters.append(value)
            i += 2
        elif token == "-k":
            i += 2
        else:
            i += 1
    return _Rule(line, list_name, action, tuple(paths), perms, tuple(filters))


def _split_field(value: str) -> tuple[str, str, str]:
    match = re.match(r"^([A-Za-z0-9_]+)(!=|>=|<=|&=|=|>|<|&)(.*)$", value)
    if not match:
        return value, "", ""
    return match.group(1), match.group(2), match.group(3)


def _loaded(ctx: Context) -> list[_Rule] | None:
    lines = ctx.get(RULES)
    return None if lines is None else [_parse_rule(line) for line in lines]


def _task_never(rules: list[_Rule]) -> _Rule | None:
    """An unconditional ``-a never,task``: no audit context for any task, so no syscall or watch event."""
    return next(
        (r for r in rules if r.list_name == "task" and r.action == "never" and not r.filters and not r.paths),
        None,
    )


@check("auditd.service_running", facts=lambda p: [PROCESSES])
def auditd_service_running(p: NoParams, ctx: Context) -> Outcome:
    """The audit daemon (auditd) is running, so audit events are written to disk rather than lost."""
    processes = ctx.get(PROCESSES)
    if "auditd" not in processes:
        return failed(f"no auditd process among the {len(processes)} running processes")
    return passed("auditd is running")


class RulesParams(Params):
    min_rules: int = Field(default=1, ge=1, description="fewest rules that must generate events")


@check("auditd.rules_loaded", params=RulesParams, facts=lambda p: [RULES])
def auditd_rules_loaded(p: RulesParams, ctx: Context) -> Outcome:
    """The kernel holds audit rules that generate events (auditctl -l), and none switches auditing off."""
    rules = _loaded(ctx)
    if rules is None:
        return failed(_NOT_INSTALLED)
    if not rules:
        return failed("no audit rules are loaded in the kernel (auditctl -l: No rules)")
    blocker = _task_never(rules)
    if blocker is not None:
        return failed(f"'{blocker.text}' is loaded: {_TASK_NEVER}")
    effective = [r for r in rules if r.action == "always" and r.list_name in _EVENT_LISTS]
    if len(effective) < p.min_rules:
        return failed(
            f"{len(effective)} audit rules generating events are loaded "
            f"({len(rules)} in total), expected at least {p.min_rules}"
        )
    return passed(f"{len(effective)} audit rules generating events are loaded in the kernel")


class WatchParams(Params):
    paths: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        min_length=1, description="absolute paths whose changes must be audited"
    )
    permissions: str = Field(
        default="wa", pattern=r"^[rwxa]+$", description="access types each watch must cover (r, w, x, a)"
    )


def _covers(rule: _Rule, path: str) -> bool:
    return any(
        path == watched or (subtree and path.startswith(watched.rstrip("/") + "/"))
        for watched, subtree in rule.paths
    )


@check("auditd.watches_present", params=WatchParams, facts=lambda p: [RULES])
def auditd_watches_present(p: WatchParams, ctx: Context) -> Outcome:
    """Each listed path is audited by a loaded rule (-w or -F path/dir) for the required access types.

    A directory watch covers the files below it. Extra filters of a rule (auid, uid, arch...) are not
    evaluated: a rule restricted to some users still counts as a watch.
    """
    rules = _loaded(ctx)
    if rules is None:
        return failed(_NOT_INSTALLED)
    blocker = _task_never(rules)
    if blocker is not None:
        return failed(f"'{blocker.text}' is loaded: {_TASK_NEVER}")
    problems: list[str] = []
    for path in p.paths:
        path = path.rstrip("/") or "/"
        exit_rules = [r for r in rules if r.list_name == "exit" and _covers(r, path)]
        suppressed = next((r for r in exit_rules if r.action == "never"), None)
        if suppressed is not None:
            problems.append(f"{path} is excluded by '{suppressed.text}'")
            continue
        watching = [r for r in exit_rules if r.action == "always"]
        if not watching:
            problems.append(f"{path} is not watched")
            continue
        perms = set("".join(r.perms or "rwxa" for r in watching))
        missing = "".join(c for c in p.permissions if c not in perms)
        if missing:
            problems.append(f"{path} is watched without '{missing}' (-p {''.join(sorted(perms))})")
    if problems:
        return failed("; ".join(problems) + " in the loaded audit rules")
    return passed(f"{', '.join(p.paths)} watched for '{p.permissions}' in the loaded audit rules")


@check("auditd.enabled_in_kernel", facts=lambda p: [STATUS])
def auditd_enabled_in_kernel(p: NoParams, ctx: Context) -> Outcome:
    """Kernel auditing is switched on (auditctl -s: enabled 1, or 2 when the configuration is locked)."""
    status = ctx.get(STATUS)
    if status is None:
        return failed(_NOT_INSTALLED)
    enabled = status["enabled"].strip()
    if enabled == "2":
        return passed("kernel auditing is enabled and its configuration locked until reboot (enabled 2)")
    if enabled == "1":
        return passed("kernel auditing is enabled (enabled 1); rules can still be changed at run time")
    return failed(
        f"kernel auditing is switched off (auditctl -s: enabled {enabled}): loaded rules audit nothing"
    )
