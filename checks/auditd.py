"""Linux audit (auditd): the daemon runs, the kernel holds rules, the rules survive a reboot, the
configuration is locked, the audit trail is protected, kept and sent off the host.

Rules are judged twice: as the kernel holds them now (``auditctl -l``) and as the next boot will load
them (see :mod:`checks.audit_rules`); a finding says which. Rules written but never loaded audit nothing;
rules loaded by hand vanish at the next reboot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

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
from hds_compliance.checks.audit_rules import Persisted, Rule, parse_rule, persisted_rules, task_never
from hds_compliance.checks.log_forwarding import (
    AUDIT_FORWARDING_FACTS,
    AUDITD_CONFIG,
    audit_forwarding,
    auditd_settings,
)
from hds_compliance.facts import AuditRules, AuditStatus, Fact, FileContent, Processes
from hds_compliance.facts.audit import AuditLogDir, AuditRulesConfig

RULES = AuditRules()
STATUS = AuditStatus()
PROCESSES = Processes()
PERSISTED = AuditRulesConfig()
LOG_DIR = AuditLogDir()
GROUPS = FileContent("/etc/group")
AUDITD_CONF = "/etc/audit/auditd.conf"

_TASK_NEVER = "it turns off syscall auditing, watches included, for every task"
_EVENT_LISTS = ("exit", "task", "user", "io_uring")
_NOT_INSTALLED = "auditctl is not installed: the Linux audit userspace (auditd package) is missing"
_LOADED = "the loaded rules (auditctl -l)"


def _loaded(ctx: Context) -> list[Rule] | None:
    lines = ctx.get(RULES)
    return None if lines is None else [parse_rule(line) for line in lines]


def _persisted(ctx: Context) -> Persisted | str:
    return persisted_rules(ctx.get(PERSISTED))


def _rule_sets(ctx: Context) -> list[tuple[str, list[Rule] | None, str]]:
    """(label, rules, why not) for the loaded rules and those the next boot loads."""
    loaded = _loaded(ctx)
    persisted = _persisted(ctx)
    sets: list[tuple[str, list[Rule] | None, str]] = [(_LOADED, loaded, _NOT_INSTALLED)]
    if isinstance(persisted, str):
        sets.append(("the rules loaded at boot", None, persisted))
    else:
        sets.append((f"the rules loaded at boot ({persisted.source})", list(persisted.rules), ""))
    return sets


@check("auditd.service_running", facts=lambda p: [PROCESSES])
def auditd_service_running(p: NoParams, ctx: Context) -> Outcome:
    """The audit daemon (auditd) is running, so audit events are written to disk rather than lost."""
    processes = ctx.get(PROCESSES)
    if "auditd" not in processes:
        return failed(f"no auditd process among the {len(processes)} running processes")
    return passed("auditd is running")


class RulesParams(Params):
    min_rules: int = Field(default=1, ge=1, description="fewest rules that must generate events")


def _effective(rules: list[Rule] | tuple[Rule, ...]) -> int:
    return sum(r.action == "always" and r.list_name in _EVENT_LISTS for r in rules)


@check("auditd.rules_loaded", params=RulesParams, facts=lambda p: [RULES])
def auditd_rules_loaded(p: RulesParams, ctx: Context) -> Outcome:
    """The kernel holds audit rules that generate events (auditctl -l), and none switches auditing off."""
    rules = _loaded(ctx)
    if rules is None:
        return failed(_NOT_INSTALLED)
    if not rules:
        return failed("no audit rules are loaded in the kernel (auditctl -l: No rules)")
    blocker = task_never(rules)
    if blocker is not None:
        return failed(f"'{blocker.text}' is loaded: {_TASK_NEVER}")
    if _effective(rules) < p.min_rules:
        return failed(
            f"{_effective(rules)} audit rules generating events are loaded "
            f"({len(rules)} in total), expected at least {p.min_rules}"
        )
    return passed(f"{_effective(rules)} audit rules generating events are loaded in the kernel")


@check("auditd.rules_persisted", params=RulesParams, facts=lambda p: [PERSISTED])
def auditd_rules_persisted(p: RulesParams, ctx: Context) -> Outcome:
    """The rules the next boot loads (augenrules' rules.d merge, or audit.rules) generate events."""
    persisted = _persisted(ctx)
    if isinstance(persisted, str):
        return failed(persisted)
    if not persisted.rules:
        return failed(f"the rules loaded at boot ({persisted.source}) hold no audit rule")
    blocker = task_never(list(persisted.rules))
    if blocker is not None:
        return failed(f"'{blocker.text}' is loaded at boot ({blocker.where}): {_TASK_NEVER}")
    count = _effective(persisted.rules)
    if count < p.min_rules:
        return failed(
            f"{count} rules generating events are loaded at boot from {persisted.source} "
            f"({len(persisted.rules)} in total), expected at least {p.min_rules}"
        )
    return passed(f"{count} rules generating events are loaded at boot from {persisted.source}")


class WatchParams(Params):
    paths: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        min_length=1, description="absolute paths whose changes must be audited"
    )
    permissions: str = Field(
        default="wa", pattern=r"^[rwxa]+$", description="access types each watch must cover (r, w, x, a)"
    )


def _covers(rule: Rule, path: str) -> bool:
    return any(
        path == watched or (subtree and path.startswith(watched.rstrip("/") + "/"))
        for watched, subtree in rule.paths
    )


def _watch_problems(rules: list[Rule], paths: list[str], permissions: str) -> list[str]:
    blocker = task_never(rules)
    if blocker is not None:
        return [f"'{blocker.text}' is present: {_TASK_NEVER}"]
    problems: list[str] = []
    for path in paths:
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
        missing = "".join(c for c in permissions if c not in perms)
        if missing:
            problems.append(f"{path} is watched without '{missing}' (-p {''.join(sorted(perms))})")
    return problems


def _findings(ctx: Context, judge: Callable[[list[Rule]], list[str]]) -> list[str]:
    """``judge(rules) -> problems`` applied to the loaded and the persisted rules, each naming its source."""
    findings: list[str] = []
    for label, rules, why in _rule_sets(ctx):
        if rules is None:
            findings.append(f"{label}: {why}")
            continue
        problems = judge(rules)
        if problems:
            findings.append(f"{'; '.join(problems)} in {label}")
    return findings


def _judge_sets(ctx: Context, judge: Callable[[list[Rule]], list[str]], what: str) -> Outcome:
    findings = _findings(ctx, judge)
    if findings:
        return failed("; ".join(findings))
    return passed(f"{what} in the loaded rules and in the rules loaded at boot")


WATCH_FACTS: list[Fact[Any]] = [RULES, PERSISTED]


def watch_gaps(ctx: Context, paths: list[str], permissions: str = "wa") -> list[str]:
    """Why some of ``paths`` are not audited for ``permissions``, in the loaded rules or in those the boot
    loads (each finding names its source); empty when all are. Public: the sudo log file of the sudo area
    can be judged with it. The caller declares :data:`WATCH_FACTS`."""
    return _findings(ctx, lambda rules: _watch_problems(rules, paths, permissions))


@check("auditd.watches_present", params=WatchParams, facts=lambda p: WATCH_FACTS)
def auditd_watches_present(p: WatchParams, ctx: Context) -> Outcome:
    """Each listed path is audited (-w or -F path/dir) for the required access types, now and after a reboot.

    A directory watch covers the files below it. Extra filters of a rule (auid, uid, arch...) are not
    evaluated: a rule restricted to some users still counts as a watch.
    """
    return _judge_sets(
        ctx,
        lambda rules: _watch_problems(rules, p.paths, p.permissions),
        f"{', '.join(p.paths)} watched for '{p.permissions}'",
    )


Arch = Literal["b64", "b32"]


class SyscallParams(Params):
    syscalls: list[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]] = Field(
        min_length=1, description="system calls that must each be audited"
    )
    arches: list[Arch] = Field(
        default_factory=lambda: list[Arch](["b64", "b32"]),
        min_length=1,
        description="ABIs a rule must cover (a rule without -F arch covers the native b64 only)",
    )


def _syscall_problems(rules: list[Rule], p: SyscallParams) -> list[str]:
    blocker = task_never(rules)
    if blocker is not None:
        return [f"'{blocker.text}' is present: {_TASK_NEVER}"]
    problems = []
    for arch in p.arches:
        for name in p.syscalls:
            matching = [
                r
                for r in rules
                if r.list_name == "exit"
                and (r.arch == arch or (not r.arch and arch == "b64"))
                and (name in r.syscalls or "all" in r.syscalls)
                and not r.paths
            ]
            # the first matching rule decides; an unconditional "never" before any "always" silences the call
            first = next((r for r in matching if r.action == "always" or not r.filters), None)
            if first is None:
                problems.append(f"{name} ({arch}) is not audited")
            elif first.action == "never":
                problems.append(f"{name} ({arch}) is excluded by '{first.text}'")
    return problems


def syscall_gaps(ctx: Context, syscalls: list[str]) -> list[str]:
    """Why some of ``syscalls`` are not audited (b64 and b32), in the loaded rules or in those the boot loads;
    empty when all are. Public: the bastion's session recording counts an audited execve. The caller
    declares :data:`WATCH_FACTS`."""
    params = SyscallParams(syscalls=syscalls)
    return _findings(ctx, lambda rules: _syscall_problems(rules, params))


@check("auditd.syscalls_audited", params=SyscallParams, facts=lambda p: [RULES, PERSISTED])
def auditd_syscalls_audited(p: SyscallParams, ctx: Context) -> Outcome:
    """Each listed system call is audited for each ABI (-a always,exit -S), now and after a reboot."""
    return _judge_sets(
        ctx,
        lambda rules: _syscall_problems(rules, p),
        f"{', '.join(p.syscalls)} audited for {', '.join(p.arches)}",
    )


def _status(ctx: Context) -> dict[str, str] | Outcome:
    """``auditctl -s`` as a mapping, or the failure of a host without auditctl."""
    status = ctx.get(STATUS)
    return failed(_NOT_INSTALLED) if status is None else status


@check("auditd.enabled_in_kernel", facts=lambda p: [STATUS])
def auditd_enabled_in_kernel(p: NoParams, ctx: Context) -> Outcome:
    """Kernel auditing is switched on (auditctl -s: enabled 1, or 2 when the configuration is locked)."""
    status = _status(ctx)
    if isinstance(status, Outcome):
        return status
    enabled = status["enabled"].strip()
    if enabled == "2":
        return passed("kernel auditing is enabled and its configuration locked until reboot (enabled 2)")
    if enabled == "1":
        return passed("kernel auditing is enabled (enabled 1); rules can still be changed at run time")
    return failed(
        f"kernel auditing is switched off (auditctl -s: enabled {enabled}): loaded rules audit nothing"
    )


@check("auditd.rules_locked_in_kernel", facts=lambda p: [STATUS])
def auditd_rules_locked_in_kernel(p: NoParams, ctx: Context) -> Outcome:
    """The kernel's audit configuration is immutable until reboot (auditctl -s: enabled 2)."""
    status = _status(ctx)
    if isinstance(status, Outcome):
        return status
    enabled = status["enabled"].strip()
    if enabled == "2":
        return passed("the audit configuration is locked until reboot (auditctl -s: enabled 2)")
    return failed(
        f"auditctl -s reports enabled {enabled}: a root process can change or delete the audit rules "
        "without a reboot (-e 2 was not loaded)"
    )


@check("auditd.rules_locked_at_boot", facts=lambda p: [PERSISTED])
def auditd_rules_locked_at_boot(p: NoParams, ctx: Context) -> Outcome:
    """The rules the boot loads end with -e 2, so the audit configuration is locked at every boot."""
    persisted = _persisted(ctx)
    if isinstance(persisted, str):
        return failed(persisted)
    if persisted.enabled is None:
        return failed(
            f"no -e 2 in the rules loaded at boot ({persisted.source}): the configuration stays mutable"
        )
    value, where = persisted.enabled
    if value != "2":
        return failed(f"the last -e in the rules loaded at boot is -e {value} ({where}), not -e 2")
    if persisted.refused:
        return failed(
            f"-e 2 ({where}) comes before rules the kernel will then refuse: "
            + "; ".join(persisted.refused[:5])
        )
    return passed(f"-e 2 is the last rule loaded at boot ({where}; {persisted.source})")


@check("auditd.no_records_lost", facts=lambda p: [STATUS])
def auditd_no_records_lost(p: NoParams, ctx: Context) -> Outcome:
    """The kernel has dropped no audit record since boot (auditctl -s: lost 0)."""
    status = _status(ctx)
    if isinstance(status, Outcome):
        return status
    lost = status.get("lost", "").strip()
    if not lost.isdigit():
        raise FactUnavailable(f"auditctl -s gives no readable 'lost' counter ({lost!r})")
    backlog = status.get("backlog_limit", "?").strip()
    if lost != "0":
        return failed(f"the kernel dropped {lost} audit records since boot (backlog_limit {backlog})")
    return passed(f"no audit record lost since boot (backlog_limit {backlog})")


# --------------------------------------------------------------------------------------------- auditd.conf

# auditd's own defaults when a key is absent (audit userspace clear_config()).
_AUDITD_DEFAULTS = {
    "max_log_file_action": "ignore",
    "space_left_action": "ignore",
    "admin_space_left_action": "ignore",
    "disk_full_action": "ignore",
    "disk_error_action": "syslog",
    "log_group": "root",
    "log_file": "/var/log/audit/audit.log",
    "num_logs": "0",
}


def _auditd_conf(ctx: Context) -> dict[str, tuple[str, str]] | None:
    """auditd.conf as auditd reads it: (value, where) by key, defaults filled in; None if absent."""
    data = ctx.get(AUDITD_CONFIG).get(AUDITD_CONF)
    if data is None:
        return None
    found = {k: (v, f"{AUDITD_CONF} line {n}") for k, (v, n) in auditd_settings(data).items()}
    return {k: found.get(k, (v, "auditd's default")) for k, v in _AUDITD_DEFAULTS.items()} | found


Action = Annotated[str, Field(pattern=r"^[a-z_]+$")]


class DiskParams(Params):
    space_left_action: list[Action] = Field(
        default_factory=lambda: ["syslog", "email", "exec", "single", "halt"],
        description="accepted actions when space runs low "
        "(ignore warns nobody, rotate and suspend lose records)",
    )
    admin_space_left_action: list[Action] = Field(
        default_factory=lambda: ["single", "halt"], description="accepted actions at the last threshold"
    )
    disk_full_action: list[Action] = Field(
        default_factory=lambda: ["single", "halt"], description="accepted actions when the disk is full"
    )
    disk_error_action: list[Action] = Field(
        default_factory=lambda: ["syslog", "single", "halt"], description="accepted actions on a write error"
    )


@check("auditd.disk_full_handled", params=DiskParams, facts=lambda p: [AUDITD_CONFIG])
def auditd_disk_full_handled(p: DiskParams, ctx: Context) -> Outcome:
    """auditd.conf neither ignores low disk space nor silently stops recording when the disk fills."""
    conf = _auditd_conf(ctx)
    if conf is None:
        return failed(f"{AUDITD_CONF} does not exist: auditd is not configured")
    problems, seen = [], []
    for key in ("space_left_action", "admin_space_left_action", "disk_full_action", "disk_error_action"):
        value, where = conf[key]
        action = value.split()[0].lower() if value.split() else ""
        seen.append(f"{key}={action}")
        if action not in getattr(p, key):
            problems.append(f"{key} = {value} ({where}), expected one of {', '.join(getattr(p, key))}")
    if problems:
        return failed("; ".join(problems))
    return passed(", ".join(seen) + f" in {AUDITD_CONF}")


class RotationParams(Params):
    actions: list[Action] = Field(
        default_factory=lambda: ["keep_logs"],
        description="accepted max_log_file_action (rotate deletes the oldest file beyond num_logs)",
    )


@check("auditd.log_rotation_keeps_records", params=RotationParams, facts=lambda p: [AUDITD_CONFIG])
def auditd_log_rotation_keeps_records(p: RotationParams, ctx: Context) -> Outcome:
    """When the audit log reaches max_log_file, auditd neither deletes old records nor stops writing."""
    conf = _auditd_conf(ctx)
    if conf is None:
        return failed(f"{AUDITD_CONF} does not exist: auditd is not configured")
    value, where = conf["max_log_file_action"]
    action = value.lower()
    if action in p.actions:
        return passed(f"max_log_file_action = {value} ({where})")
    effects = {
        "rotate": f"the oldest of num_logs={conf['num_logs'][0]} files is deleted without a trace",
        "suspend": "auditd stops writing records",
        "ignore": "nothing is done and the file grows until the disk is full",
        "syslog": "only a warning is logged and the file keeps growing",
    }
    effect = effects.get(action, "the action is not one of the accepted ones")
    return failed(f"max_log_file_action = {value} ({where}): {effect}")


def _group_gid(groups: bytes | None, name: str) -> int | None:
    if name.isdigit():
        return int(name)
    for line in (groups or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


@check("auditd.log_files_restricted", facts=lambda p: [AUDITD_CONFIG, LOG_DIR, GROUPS])
def auditd_log_files_restricted(p: NoParams, ctx: Context) -> Outcome:
    """The audit log directory and files belong to root, nobody else writes them, and only log_group reads."""
    conf = _auditd_conf(ctx)
    if conf is None:
        return not_applicable(f"{AUDITD_CONF} does not exist: auditd is not installed")
    files = ctx.get(LOG_DIR)
    log_file, _ = conf["log_file"]
    if files is None:
        return failed(f"the directory of log_file {log_file} does not exist")
    if files.log_file != log_file:
        raise FactUnavailable(f"the probe read log_file {files.log_file}, auditd.conf says {log_file}")
    group, where = conf["log_group"]
    gid = _group_gid(ctx.get(GROUPS), group)
    if gid is None:
        return failed(f"log_group = {group} ({where}) is not a group of /etc/group")
    problems = []
    for path, st in files.entries.items():
        if st.uid != 0:
            problems.append(f"{path} belongs to uid {st.uid}")
        if st.mode & 0o022:
            problems.append(
                f"{path} is writable by {'others' if st.mode & 0o002 else 'its group'} ({st.mode:04o})"
            )
        if st.mode & 0o004 and (st.file_type != "directory" or st.mode & 0o001):
            problems.append(f"{path} is readable by others ({st.mode:04o})")
        if st.mode & 0o040 and st.gid != gid:
            problems.append(f"{path} is readable by group {st.gid}, not log_group {group} (gid {gid})")
    if problems:
        return failed("; ".join(problems) + f" (log_group = {group}, {where})")
    return passed(
        f"{len(files.entries)} entries of {log_file.rsplit('/', 1)[0]} "
        f"restricted to root and log_group {group}"
    )


class ForwardedParams(Params):
    protected: bool = Field(
        default=True, description="require an encrypted channel whose peer is authenticated (TLS, Kerberos)"
    )


@check("auditd.records_forwarded", params=ForwardedParams, facts=lambda p: AUDIT_FORWARDING_FACTS)
def auditd_records_forwarded(p: ForwardedParams, ctx: Context) -> Outcome:
    """Audit records leave the host: audisp-remote, or the syslog plugin with syslog forwarded."""
    if ctx.get(AUDITD_CONFIG).get(AUDITD_CONF) is None:
        return not_applicable(f"{AUDITD_CONF} does not exist: auditd is not installed")
    targets, notes = audit_forwarding(ctx)
    tail = f" ({'; '.join(notes)})" if notes else ""
    if not targets:
        return failed(f"no active audisp-remote or syslog plugin sends audit records off the host{tail}")
    good = [t for t in targets if not t.problem and t.running and (t.protected or not p.protected)]
    if not good:
        shown = "; ".join(t.describe() for t in targets)
        weak = "unprotected or with their daemon stopped" if p.protected else "with their daemon stopped"
        return failed(f"audit records would leave the host only {weak}: {shown}{tail}")
    return passed("audit records forwarded: " + "; ".join(t.describe() for t in good))
