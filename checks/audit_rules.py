"""Linux audit rules, as the kernel holds them (``auditctl -l``) and as the next boot will load them.

What survives a reboot is what the boot loads: auditd.service (``ExecStartPost``, overrides and drop-ins
included) or audit-rules.service (audit 3.1) runs ``augenrules --load``, or ``auditctl -R FILE``.
augenrules, when /etc/audit/rules.d exists, concatenates ``rules.d/*.rules`` in ``ls -v`` order (version
order: 9-x before 10-y), drops comments and blank lines, keeps the LAST ``-e``, ``-f``, ``-b`` and bare
``-D`` and moves ``-e`` to the end; without rules.d it loads /etc/audit/audit.rules as it is. ``auditctl
-R`` stops at the first rule the kernel refuses: nothing after an ``-e 2`` is loaded.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cmp_to_key

from hds_compliance.facts.audit import AUDIT_RULES_D
from hds_compliance.facts.conftree import ConfigTree

AUDIT_RULES = "/etc/audit/audit.rules"
_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system")


@dataclass(frozen=True)
class Rule:
    """One audit rule: its list, action, watched paths, syscalls, arches and other filters."""

    text: str
    where: str  # "loaded" or file and line
    list_name: str  # exit, task, user, exclude, filesystem, io_uring
    action: str  # always, never
    paths: tuple[tuple[str, bool], ...]  # (path, covers descendants)
    perms: str  # rwxa letters, "" when the rule has no permission filter
    syscalls: frozenset[str]  # names given with -S ("all" for every syscall)
    arch: str  # b64, b32 or "" (the machine's native arch)
    filters: tuple[str, ...]  # every other -F / -C argument


def split_field(value: str) -> tuple[str, str, str]:
    """``auid>=1000`` -> (``auid``, ``>=``, ``1000``)."""
    match = re.match(r"^([A-Za-z0-9_]+)(!=|>=|<=|&=|=|>|<|&)(.*)$", value)
    if not match:
        return value, "", ""
    return match.group(1), match.group(2), match.group(3)


def parse_rule(line: str, where: str = "loaded") -> Rule:
    """A rule in auditctl's syntax (``auditctl -l`` output or a rules file line)."""
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
    list_name, action, perms, arch = "", "", "", ""
    paths: list[tuple[str, bool]] = []
    syscalls: set[str] = set()
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
        elif token == "-S":
            syscalls.update(s for s in value.split(",") if s)
            i += 2
        elif token in ("-F", "-C"):
            name, _, arg = split_field(value)
            if token == "-F" and name == "path":
                paths.append((arg, False))
            elif token == "-F" and name == "dir":
                paths.append((arg.rstrip("/") or "/", True))
            elif token == "-F" and name == "perm":
                perms = arg
            elif token == "-F" and name == "arch":
                arch = arg
            elif not (token == "-F" and name == "key"):
                filters.append(value)
            i += 2
        elif token == "-k":
            i += 2
        else:
            i += 1
    return Rule(
        line, where, list_name, action, tuple(paths), perms, frozenset(syscalls), arch, tuple(filters)
    )


def task_never(rules: list[Rule]) -> Rule | None:
    """An unconditional ``-a never,task``: no audit context for any task, so no syscall or watch event."""
    return next(
        (r for r in rules if r.list_name == "task" and r.action == "never" and not r.filters and not r.paths),
        None,
    )


# ------------------------------------------------------------------------------------ ls -v (filevercmp)


def _order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return -1 if c == "~" else ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = 0 if i == len(a) else _order(a[i])
            cb = 0 if j == len(b) else _order(b[j])
            if ca != cb:
                return ca - cb
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first = 0
        while i < len(a) and j < len(b) and a[i].isdigit() and b[j].isdigit():
            first = first or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first:
            return first
    return 0


def _prefix(name: str) -> str:
    """``name`` without its trailing suffixes (``.rules``, ``.rules~``), as filevercmp cuts them."""
    match = re.search(r"(\.[A-Za-z~][A-Za-z0-9~]*)*$", name[1:])
    return name[: 1 + match.start()] if match else name


def version_compare(a: str, b: str) -> int:
    """GNU ``ls -v`` order of two file names (gnulib filevercmp, then byte order on a tie)."""
    if (a[:1] == "." or b[:1] == ".") and a[:1] != b[:1]:
        return -1 if a[:1] == "." else 1
    result = _verrevcmp(_prefix(a), _prefix(b)) or _verrevcmp(a, b)
    return result or (a > b) - (a < b)


def version_sorted(names: list[str]) -> list[str]:
    """``names`` in ``ls -v`` order."""
    return sorted(names, key=cmp_to_key(version_compare))


# --------------------------------------------------------------------------------- what the boot loads


@dataclass(frozen=True)
class Persisted:
    """The rules the next boot loads, in load order, and where they come from."""

    source: str  # e.g. "/etc/audit/rules.d/*.rules, merged by augenrules at boot"
    rules: tuple[Rule, ...]
    enabled: tuple[str, str] | None  # the -e value in force at the end and where it is set
    refused: tuple[str, ...] = ()  # lines the kernel refuses after an -e 2 (auditctl -R stops there)


def _unit_commands(tree: ConfigTree, unit: str, key: str) -> tuple[list[str], str] | None:
    """Commands of ``key`` (ExecStartPost...) of a systemd unit, overrides and drop-ins applied."""
    main = next((f"{d}/{unit}" for d in _UNIT_DIRS if f"{d}/{unit}" in tree.files), None)
    if main is None:
        return None
    dropins: dict[str, str] = {}
    for directory in reversed(_UNIT_DIRS):
        for path in tree.under(f"{directory}/{unit}.d", ".conf"):
            dropins[path.rsplit("/", 1)[1]] = path
    commands: list[str] = []
    where = main
    for path in [main, *(dropins[b] for b in sorted(dropins))]:
        for raw in tree.files[path].decode("utf-8", "replace").splitlines():
            name, sep, value = raw.strip().partition("=")
            if sep and name.strip() == key:
                value = value.strip()
                commands = [] if not value else [*commands, value.lstrip("-@+!:")]
                where = path
    return commands, where


def boot_loader(tree: ConfigTree) -> tuple[str, str]:
    """How the boot loads audit rules: ("augenrules", where), ("auditctl -R <file>", where) or ("", why)."""
    found = False
    for unit, key in (("audit-rules.service", "ExecStart"), ("auditd.service", "ExecStartPost")):
        listed = _unit_commands(tree, unit, key)
        if listed is None:
            continue
        found = True
        commands, where = listed
        for command in commands:
            words = command.split()
            if words and words[0].endswith("augenrules") and "--load" in words:
                return "augenrules", f"{unit}, {where}"
            if words and words[0].endswith("auditctl") and "-R" in words[:-1]:
                return f"auditctl -R {words[words.index('-R') + 1]}", f"{unit}, {where}"
    if not found:  # no systemd unit: the init script runs augenrules, which loads audit.rules
        return "augenrules", "no auditd.service unit: the init script loads the rules with augenrules"
    return "", "auditd.service runs neither augenrules --load nor auditctl -R: no rule is loaded at boot"


def _lines(tree: ConfigTree, path: str) -> list[tuple[str, str]]:
    data = tree.files.get(path, b"").decode("utf-8", "replace")
    return [
        (line.strip(), f"{path} line {n}")
        for n, line in enumerate(data.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#")
    ]


def _augenrules_merge(tree: ConfigTree) -> list[tuple[str, str]]:
    files = version_sorted([p.rsplit("/", 1)[1] for p in tree.under(AUDIT_RULES_D, ".rules")])
    rest: list[tuple[str, str]] = []
    last: dict[str, tuple[str, str]] = {}
    for name in files:
        for line, where in _lines(tree, f"{AUDIT_RULES_D}/{name}"):
            if re.match(r"^-(e|f|b)\b", line) or line == "-D":
                last[line[:2]] = (line, where)
            else:
                rest.append((line, where))
    head = [last[k] for k in ("-D", "-b", "-f") if k in last]
    return head + rest + ([last["-e"]] if "-e" in last else [])


def persisted_rules(tree: ConfigTree) -> Persisted | str:
    """The rules the next boot loads, or why none are (a message)."""
    loader, where = boot_loader(tree)
    if not loader:
        return where
    if loader == "augenrules" and AUDIT_RULES_D in tree.dirs:
        lines = _augenrules_merge(tree)
        source = f"{AUDIT_RULES_D}/*.rules, merged by augenrules at boot"
    else:
        path = AUDIT_RULES if loader == "augenrules" else loader.split()[-1]
        if path not in tree.files:
            return f"the boot loads {path} ({where}), which does not exist or was not read"
        lines = _lines(tree, path)
        source = f"{path}, loaded by {loader} at boot"
    rules: list[Rule] = []
    enabled: tuple[str, str] | None = None
    refused: list[str] = []
    for line, at in lines:
        words = line.split()
        if enabled is not None and enabled[0] == "2" and words[0] in ("-a", "-A", "-w", "-d", "-W", "-D"):
            refused.append(f"{line} ({at})")
            continue
        if words[0] == "-e" and len(words) > 1:
            enabled = (words[1], at)
        elif words[0] == "-D" and len(words) == 1:
            rules = []
        elif words[0] in ("-a", "-w"):
            rules.append(parse_rule(line, at))
        elif words[0] == "-A":
            rules.insert(0, parse_rule(line, at))
        elif words[0] in ("-d", "-W"):
            gone = parse_rule(line.replace("-d", "-a", 1).replace("-W", "-w", 1), at)
            rules = [
                r
                for r in rules
                if (r.list_name, r.action, r.paths, r.syscalls)
                != (gone.list_name, gone.action, gone.paths, gone.syscalls)
            ]
    return Persisted(source, tuple(rules), enabled, tuple(refused))
