"""sudo policy: admin commands run in a pty, are logged, and sudoers rules stay simple enough to audit.

The policy is read as sudo reads it: ``/etc/sudoers``, then, at the point of an ``@includedir /etc/sudoers.d``
(or the older ``#includedir``), the files of that directory in lexical order, skipping the names sudo skips
(containing a ``.`` or ending in ``~``). Logical lines are joined across ``\\`` continuations and stripped of
comments (``#`` not starting an include and not a ``#uid``). An include of any other file cannot be judged
from the collected facts: the checks then report an error rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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
from hds_compliance.facts import FileContent, FilesMatching

SUDOERS = FileContent("/etc/sudoers")
DROPINS = FilesMatching("/etc/sudoers.d/*")
_DROPIN_DIR = "/etc/sudoers.d"
_NOT_INSTALLED = "sudo is not installed (/etc/sudoers does not exist)"
_WHERE = "/etc/sudoers and /etc/sudoers.d"


@dataclass(frozen=True)
class _Line:
    file: str
    lineno: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.file} line {self.lineno}"


@dataclass(frozen=True)
class _Setting:
    """One parameter of a Defaults line: ``use_pty``, ``!syslog``, ``logfile="/var/log/sudo.log"``."""

    scope: str  # "" for global Defaults, else e.g. ":alice", "!/usr/bin/less", ">root", "@host"
    name: str
    negated: bool
    value: str | None
    line: _Line


@dataclass(frozen=True)
class _Policy:
    lines: list[_Line]
    settings: list[_Setting]
    note: str  # what was read, for messages


_INCLUDE_RE = re.compile(r"^[#@](include|includedir)\s+(\S+)\s*$")
_DEFAULTS_RE = re.compile(r"^Defaults(?:([:@!>])\s*(\S+))?(?:\s+(.*))?$")
_SETTING_RE = re.compile(r"^(!*)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(\+=|-=|=)\s*(.*))?$", re.S)
_ALIAS_RE = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$")
_TAG_RE = re.compile(
    r"^(NOPASSWD|PASSWD|NOEXEC|EXEC|SETENV|NOSETENV|LOG_INPUT|NOLOG_INPUT|LOG_OUTPUT|NOLOG_OUTPUT|MAIL|NOMAIL"
    r"|FOLLOW|NOFOLLOW|INTERCEPT|NOINTERCEPT)\s*:\s*"
)
_OPTION_RE = re.compile(
    r'^(CWD|CHROOT|ROLE|TYPE|APPARMOR_PROFILE|NOTBEFORE|NOTAFTER|TIMEOUT)\s*=\s*("[^"]*"|\S+)\s*'
)
# "cmd : otherhost = cmd": a new host section of the same user specification.
_HOST_SECTION_RE = re.compile(r"\s:\s*([A-Za-z0-9_.+%*-]+(?:\s*,\s*[A-Za-z0-9_.+%*-]+)*)\s*=\s*")


def _strip_comment(line: str) -> str:
    """The line without its comment: ``#`` outside quotes, unless it is a ``#uid`` (``#`` then a digit)."""
    quoted = escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "#" and not quoted and not line[i + 1 : i + 2].isdigit():
            return line[:i]
    return line


def _logical_lines(name: str, data: bytes) -> list[_Line]:
    lines: list[_Line] = []
    buffer, start = "", 0
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not buffer:
            start = number
        if raw.endswith("\\") and not _INCLUDE_RE.match(raw.strip()):
            buffer += raw[:-1] + " "
            continue
        buffer += raw
        stripped = buffer.strip()
        text = stripped if _INCLUDE_RE.match(stripped) else _strip_comment(buffer).strip()
        if text:
            lines.append(_Line(name, start, text))
        buffer = ""
    return lines


def _sudo_reads(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return "." not in base and not base.endswith("~")


def _expand(
    name: str, data: bytes, dropins: dict[str, bytes], seen: set[str], notes: list[str]
) -> list[_Line]:
    out: list[_Line] = []
    seen.add(name)
    for line in _logical_lines(name, data):
        include = _INCLUDE_RE.match(line.text)
        if include is None:
            out.append(line)
            continue
        kind, target = include.groups()
        if not target.startswith("/"):
            target = name.rsplit("/", 1)[0] + "/" + target
        target = target.rstrip("/")
        if kind == "includedir" and target == _DROPIN_DIR:
            files = [f for f in sorted(dropins) if _sudo_reads(f) and f not in seen]
            notes.append(f"{len(files)} file(s) of {_DROPIN_DIR}")
            for file in files:
                out.extend(_expand(file, dropins[file], dropins, seen, notes))
        elif kind == "include" and target in dropins:
            if target not in seen:
                out.extend(_expand(target, dropins[target], dropins, seen, notes))
        else:
            raise FactUnavailable(
                f"{line.where} includes {target}, which the probe does not collect: "
                "the sudo policy cannot be judged"
            )
    return out


def _split(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside double quotes and parentheses, honouring backslash escapes."""
    parts, current, quoted, depth, escaped = [], "", False, 0, False
    for char in text:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\":
            escaped = True
            current += char
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(0, depth - 1)
        if char == sep and not quoted and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _settings(lines: list[_Line]) -> list[_Setting]:
    settings = []
    for line in lines:
        match = _DEFAULTS_RE.match(line.text)
        if match is None:
            continue
        kind, binding, rest = match.groups()
        scope = f"{kind}{binding}" if kind else ""
        for item in _split(rest or ""):
            parsed = _SETTING_RE.match(item)
            if parsed is None:
                continue
            bangs, name, _op, value = parsed.groups()
            if value is not None:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
            settings.append(_Setting(scope, name, len(bangs) % 2 == 1, value, line))
    return settings


def _policy(ctx: Context) -> _Policy | None:
    main = ctx.get(SUDOERS)
    dropins = ctx.get(DROPINS)
    if main is None:
        return None
    notes: list[str] = []
    lines = _expand("/etc/sudoers", main, dropins, set(), notes)
    note = "/etc/sudoers" + (f" and {notes[0]}" if notes else f" ({_DROPIN_DIR} is not included)")
    return _Policy(lines=lines, settings=_settings(lines), note=note)


def _describe(setting: _Setting) -> str:
    value = "" if setting.value is None else f"={setting.value}"
    bang = "!" if setting.negated else ""
    return f"Defaults{setting.scope} {bang}{setting.name}{value} ({setting.line.where})"


# ------------------------------------------------------------------------------------------------ checks


@check("sudo.use_pty_enabled", facts=lambda p: [SUDOERS, DROPINS])
def sudo_use_pty_enabled(p: NoParams, ctx: Context) -> Outcome:
    """sudo runs commands in their own pseudo-terminal (Defaults use_pty), for every user and command."""
    policy = _policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    own = [s for s in policy.settings if s.name == "use_pty"]
    scoped_off = [s for s in own if s.scope and s.negated]
    if scoped_off:
        return failed(f"use_pty is turned off by {'; '.join(_describe(s) for s in scoped_off)}")
    global_ = [s for s in own if not s.scope]
    if not global_:
        return failed(
            f"use_pty is not set in {policy.note} (sudo before 1.9.14 does not use a pty by default, "
            "and the probe does not see the sudo version)"
        )
    last = global_[-1]
    if last.negated:
        return failed(f"use_pty is turned off by {_describe(last)}")
    return passed(f"use_pty is set by {_describe(last)}")


Mechanism = Literal["logfile", "syslog", "log_output", "log_input"]
_MECHANISMS: tuple[Mechanism, ...] = ("logfile", "syslog", "log_output", "log_input")


class LoggingParams(Params):
    accepted: list[Mechanism] = Field(
        default_factory=lambda: list(_MECHANISMS),
        min_length=1,
        description="explicit Defaults that count as logging sudo use",
    )


def _apply(state: dict[str, _Setting], settings: list[_Setting]) -> dict[str, _Setting]:
    out = dict(state)
    for s in settings:
        if s.name in _MECHANISMS:
            out[s.name] = s
    return out


def _enabled(state: dict[str, _Setting], accepted: Sequence[str]) -> list[_Setting]:
    return [s for name, s in state.items() if name in accepted and not s.negated]


@check("sudo.logging_enabled", params=LoggingParams, facts=lambda p: [SUDOERS, DROPINS])
def sudo_logging_enabled(p: LoggingParams, ctx: Context) -> Outcome:
    """sudoers explicitly logs sudo use (logfile, syslog facility or I/O logs), for every user and command.

    sudo's compiled-in default (syslog to authpriv on Debian and RHEL builds) is not accepted as proof: it
    depends on the build and leaves nothing in the configuration to audit.
    """
    policy = _policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    state = _apply({}, [s for s in policy.settings if not s.scope])
    enabled = _enabled(state, p.accepted)
    if not enabled:
        off = [s for s in state.values() if s.negated]
        if off:
            return failed(f"sudo logging is turned off by {'; '.join(_describe(s) for s in off)}")
        return failed(
            f"no explicit sudo logging ({', '.join(p.accepted)}) in the Defaults of {policy.note}; "
            "the compiled-in syslog default is not proof"
        )
    scopes = sorted({s.scope for s in policy.settings if s.scope})
    for scope in scopes:
        scoped = _apply(state, [s for s in policy.settings if s.scope == scope])
        if not _enabled(scoped, p.accepted):
            off = [s for s in scoped.values() if s.negated and s.scope == scope]
            shown = "; ".join(_describe(s) for s in off)
            return failed(f"sudo logging is turned off for Defaults{scope} by {shown}")
    return passed("sudo use is logged: " + "; ".join(_describe(s) for s in enabled))


@dataclass(frozen=True)
class _Command:
    user: str
    command: str
    tags: frozenset[str]
    line: _Line


def _aliases(lines: list[_Line]) -> dict[str, tuple[list[str], _Line]]:
    """Cmnd_Alias definitions: name -> (items, line)."""
    aliases: dict[str, tuple[list[str], _Line]] = {}
    for line in lines:
        alias = _ALIAS_RE.match(line.text)
        if alias is not None and alias.group(1) in ("Cmnd_Alias", "Cmd_Alias"):
            for definition in _split(alias.group(2), ":"):
                name, _, items = definition.partition("=")
                aliases[name.strip()] = (_split(items), line)
    return aliases


def _commands(lines: list[_Line]) -> list[_Command]:
    """Commands of every user specification, with the tags they inherit (NOPASSWD...)."""
    commands: list[_Command] = []
    for line in lines:
        if line.text.startswith("Defaults") or _ALIAS_RE.match(line.text):
            continue
        users, sep, rest = line.text.partition("=")
        if not sep:
            continue
        user = users.split()[0] if users.split() else users
        for section in _HOST_SECTION_RE.split(rest)[::2]:
            tags: set[str] = set()
            for item in _split(section):
                item = re.sub(r"^\([^)]*\)\s*", "", item)
                while True:
                    tag = _TAG_RE.match(item) or _OPTION_RE.match(item)
                    if tag is None:
                        break
                    word = tag.group(1)
                    if word.endswith("PASSWD"):
                        tags.discard("PASSWD" if word == "NOPASSWD" else "NOPASSWD")
                        tags.add(word)
                    item = item[tag.end() :]
                if item:
                    commands.append(_Command(user, item, frozenset(tags), line))
    return commands


@check("sudo.no_negated_commands", facts=lambda p: [SUDOERS, DROPINS])
def sudo_no_negated_commands(p: NoParams, ctx: Context) -> Outcome:
    """No sudoers rule grants commands by negation ("ALL, !/bin/sh"), which is always bypassable."""
    policy = _policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    commands = _commands(policy.lines)
    found = [f"'{c.command}' for {c.user} ({c.line.where})" for c in commands if c.command.startswith("!")]
    for name, (items, line) in _aliases(policy.lines).items():
        found += [f"'{item}' in Cmnd_Alias {name} ({line.where})" for item in items if item.startswith("!")]
    if found:
        return failed("negated commands in sudoers: " + "; ".join(found))
    return passed(f"no negated command in the {len(commands)} sudo command grants of {policy.note}")


def _grants_all(command: str, aliases: dict[str, tuple[list[str], _Line]], depth: int = 0) -> bool:
    if command == "ALL":
        return True
    if depth < 8 and command in aliases:
        return any(_grants_all(item, aliases, depth + 1) for item in aliases[command][0])
    return False


@check("sudo.no_nopasswd_all", facts=lambda p: [SUDOERS, DROPINS])
def sudo_no_nopasswd_all(p: NoParams, ctx: Context) -> Outcome:
    """No user gets every command as root without re-typing a password (NOPASSWD: ALL, !authenticate)."""
    policy = _policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    commands, aliases = _commands(policy.lines), _aliases(policy.lines)
    found = [
        f"NOPASSWD: {c.command} for {c.user} ({c.line.where})"
        for c in commands
        if "NOPASSWD" in c.tags and _grants_all(c.command, aliases)
    ]
    found += [_describe(s) for s in policy.settings if s.name == "authenticate" and s.negated]
    if found:
        return failed("sudo grants everything without a password: " + "; ".join(found))
    return passed(f"no NOPASSWD grant of ALL and no !authenticate in {policy.note}")
