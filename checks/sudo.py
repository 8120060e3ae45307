"""sudo policy, read as sudo reads it: includes in sudo's order, Defaults scopes, and rules from a directory.

:func:`read_policy` turns what the probe collected (:class:`~hds_compliance.facts.sudo.SudoPolicySources`)
into the policy sudo applies: the sudoers file its plugin names, and at each ``@include``/``#include`` the
named file, at each ``@includedir``/``#includedir`` the directory's files in lexical order (names holding a
``.`` or ending in ``~`` skipped), each where its directive stands. An included file that is not owned by
root, is world-writable, or group-writable with a group other than root is skipped, as sudo skips it with a
warning; a missing include is skipped too. Logical lines are joined across ``\\`` continuations and
stripped of comments (``#`` not starting an include and not a ``#uid``).

``Defaults`` are applied as sudo applies them: global, host (``@``), user (``:``) and runas (``>``) entries
in the order of the files, the last matching entry winning, then command (``!``) entries. A check that
needs a setting for every session finds the value every session starts from and the scoped entries that
change it for some (:func:`effective`).

When the ``sudoers:`` line of /etc/nsswitch.conf names a source other than ``files`` (``sss``, ``ldap``),
rules and Defaults also come from a directory the probe cannot see: a check may then fail on what the
local files say, but never pass (``not_reviewed``, with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

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
    not_reviewed,
    passed,
)
from hds_compliance.facts import AuditRules, Fact, FileContent, FileStat
from hds_compliance.facts.nss import NSSWITCH, NssLine, NssSources
from hds_compliance.facts.sudo import SudoPolicySources, SudoSources, include_target

POLICY = SudoPolicySources()
NSS = NssSources()
POLICY_FACTS: list[Fact[Any]] = [POLICY, NSS]
"""What :func:`read_policy` reads: declare these in a check (fleet checks too) that calls it."""

SUDO_BINARY = FileStat("/usr/bin/sudo")
GROUP = FileContent("/etc/group")
AUDIT_RULES = AuditRules()
_NOT_INSTALLED = "sudo is not installed (its sudoers file does not exist)"
_MAX_DEPTH = 128  # sudo's own limit of nested includes

# sudo's compiled-in defaults that are on in every build (sudoers(5)); anything else must be set.
_COMPILED_ON = frozenset({"env_reset"})
_DEFAULT_IOLOG_DIR = "/var/log/sudo-io"


@dataclass(frozen=True)
class Line:
    """A logical line of a sudoers file."""

    file: str
    lineno: int
    text: str

    @property
    def where(self) -> str:
        """``file line n``, for messages."""
        return f"{self.file} line {self.lineno}"


Kind = Literal["", "@", ":", ">", "!"]


@dataclass(frozen=True)
class Setting:
    """One parameter of a Defaults line: ``use_pty``, ``!syslog``, ``logfile="/var/log/sudo.log"``."""

    kind: Kind  # "" global, "@" host, ":" user, ">" runas, "!" command
    binding: tuple[str, ...]
    name: str
    negated: bool
    value: str | None
    line: Line

    def describe(self) -> str:
        """The entry as written, with where it is."""
        scope = f"{self.kind}{','.join(self.binding)}" if self.kind else ""
        value = "" if self.value is None else f"={self.value}"
        return f"Defaults{scope} {'!' if self.negated else ''}{self.name}{value} ({self.line.where})"


@dataclass(frozen=True)
class Grant:
    """One command of a user specification, with the runas lists and tags it inherits."""

    users: tuple[str, ...]
    hosts: tuple[str, ...]
    runas_users: tuple[str, ...]  # () when the spec names none: sudo's runas_default (root)
    runas_groups: tuple[str, ...]
    command: str  # as written: ALL, an alias, "/usr/bin/x arg", "!/bin/sh", "sudoedit /etc/x"
    tags: frozenset[str]
    line: Line

    def who(self) -> str:
        """The users of the rule, for messages."""
        return ",".join(self.users)


@dataclass(frozen=True)
class Policy:
    """The sudo policy of a host, in the order sudo applies it."""

    start: str
    host: str
    lines: list[Line]
    settings: list[Setting]
    grants: list[Grant]
    aliases: dict[str, dict[str, tuple[list[str], Line]]]  # User/Runas/Host/Cmnd -> name -> members
    read: list[str]  # files sudo reads, in order
    skipped: list[str]  # files sudo does not read, and why
    sources: tuple[str, ...]  # sources of the sudoers database (nsswitch.conf)
    sources_where: str

    @property
    def directory_sources(self) -> tuple[str, ...]:
        """Sources other than the local files (sss, ldap): rules the probe cannot see."""
        return tuple(s for s in self.sources if s != "files")

    @property
    def note(self) -> str:
        """What was read, for messages."""
        more = f" and {len(self.read) - 1} included file(s)" if len(self.read) > 1 else ""
        return f"{self.start}{more}"

    def alias(self, kind: str, name: str) -> list[str] | None:
        """Members of an alias (``kind`` is User, Runas, Host or Cmnd), ``None`` if there is none."""
        found = self.aliases.get(kind, {}).get(name)
        return None if found is None else found[0]

    def expand(self, kind: str, items: Iterable[str], depth: int = 0) -> list[str]:
        """Items with aliases of ``kind`` replaced by their members (a negated alias negates them)."""
        out: list[str] = []
        for item in items:
            bang, name = ("!", item[1:].lstrip()) if item.startswith("!") else ("", item)
            members = self.alias(kind, name)
            if members is None or depth > 16:
                out.append(item)
                continue
            for member in self.expand(kind, members, depth + 1):
                negated = member.startswith("!") != (bang == "!")
                out.append(("!" if negated else "") + member.lstrip("!").lstrip())
        return out


# ------------------------------------------------------------------------------------------ reading


_DEFAULTS_RE = re.compile(r"^Defaults(?:([:@!>])\s*((?:[^\s,]+)(?:\s*,\s*[^\s,]+)*))?(?:\s+(.*))?$", re.S)
_SETTING_RE = re.compile(r"^(!*)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(\+=|-=|=)\s*(.*))?$", re.S)
_ALIAS_RE = re.compile(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s+(.*)$", re.S)
_TAG_RE = re.compile(
    r"^(NOPASSWD|PASSWD|NOEXEC|EXEC|SETENV|NOSETENV|LOG_INPUT|NOLOG_INPUT|LOG_OUTPUT|NOLOG_OUTPUT|MAIL|NOMAIL"
    r"|FOLLOW|NOFOLLOW|INTERCEPT|NOINTERCEPT)\s*:\s*"
)
_OPTION_RE = re.compile(
    r'^(CWD|CHROOT|ROLE|TYPE|APPARMOR_PROFILE|NOTBEFORE|NOTAFTER|TIMEOUT)\s*=\s*("[^"]*"|\S+)\s*'
)
_RUNAS_RE = re.compile(r"^\(([^)]*)\)\s*")
# "cmd : otherhost = cmd": a new host section of the same user specification.
_HOST_SECTION_RE = re.compile(r"\s:\s*([A-Za-z0-9_.+%*!-]+(?:\s*,\s*[A-Za-z0-9_.+%*!-]+)*)\s*=\s*")
_DIGEST_RE = re.compile(r"^(sha224|sha256|sha384|sha512)\s*:\s*\S+\s+", re.I)
_PLAIN_HOST_RE = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


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


def _logical_lines(name: str, data: bytes, host: str) -> list[Line]:
    """Lines joined across continuations; include directives kept whole, comments removed."""
    lines: list[Line] = []
    buffer, start = "", 0
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not buffer:
            start = number
            if include_target(raw, name, host) is not None:
                lines.append(Line(name, number, raw.strip()))
                continue
        if raw.endswith("\\"):
            buffer += raw[:-1] + " "
            continue
        text = _strip_comment(buffer + raw).strip()
        if text:
            lines.append(Line(name, start, text))
        buffer = ""
    return lines


@dataclass
class _Reader:
    sources: SudoSources
    read: list[str]
    skipped: list[str]

    def file(self, path: str, depth: int, via: Line | None) -> list[Line]:
        where = f" ({via.where})" if via else ""
        if path in self.sources.absent:
            self.skipped.append(f"{path}{where}: does not exist")
            return []
        if path in self.sources.not_regular:
            self.skipped.append(f"{path}{where}: not a regular file")
            return []
        found = self.sources.files.get(path)
        if found is None:
            raise FactUnavailable(
                f"{path}{where} is included but was not collected: the policy cannot be judged"
            )
        refused = found.refused_because()
        if refused is not None:
            if via is None:  # sudo refuses to run at all when its own sudoers file is insecure
                raise FactUnavailable(f"sudo refuses to run: {path} is {refused}")
            self.skipped.append(f"{path}{where}: {refused}")
            return []
        if found.truncated:
            raise FactUnavailable(f"{path} is larger than the probe reads from one file: not judged")
        if depth > _MAX_DEPTH:
            raise FactUnavailable(f"{path}: includes nest deeper than sudo allows (a loop?)")
        self.read.append(path)
        out: list[Line] = []
        for line in _logical_lines(path, found.content, self.sources.host):
            target = include_target(line.text, path, self.sources.host)
            if target is None:
                out.append(line)
            elif target[0] == "f":
                out.extend(self.file(target[1], depth + 1, line))
            elif target[1] in self.sources.dirs:
                for entry in sorted(self.sources.dirs[target[1]]):
                    out.extend(self.file(entry, depth + 1, line))
            elif target[1] in self.sources.absent:
                self.skipped.append(f"directory {target[1]} ({line.where}): does not exist")
            else:
                raise FactUnavailable(
                    f"{target[1]} ({line.where}) was not collected: the policy cannot be judged"
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


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _settings(line: Line) -> list[Setting]:
    match = _DEFAULTS_RE.match(line.text)
    if match is None:
        raise FactUnavailable(f"{line.where}: cannot read the Defaults line {line.text[:60]!r}")
    kind, binding, rest = match.groups()
    out = []
    for item in _split(rest or ""):
        parsed = _SETTING_RE.match(item)
        if parsed is None:
            raise FactUnavailable(f"{line.where}: cannot read the Defaults parameter {item[:40]!r}")
        bangs, name, _op, value = parsed.groups()
        if value is not None:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
        out.append(Setting(kind or "", _list(binding or ""), name, len(bangs) % 2 == 1, value, line))  # type: ignore[arg-type]
    return out


def _runas(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    users, _, groups = spec.partition(":")
    return _list(users), _list(groups)


def _grants(line: Line) -> list[Grant]:
    """The commands of a user specification: ``users hosts = spec, ... : hosts = spec, ...``."""
    head, sep, rest = line.text.partition("=")
    words = re.sub(r"\s*,\s*", ",", head.strip()).split()
    if not sep or len(words) != 2:
        raise FactUnavailable(
            f"{line.where}: cannot read {line.text[:60]!r} (sudo refuses a policy it cannot parse)"
        )
    users = _list(words[0])
    grants: list[Grant] = []
    sections = _HOST_SECTION_RE.split(rest)
    hosts_of_section = [_list(words[1])] + [_list(h) for h in sections[1::2]]
    for hosts, section in zip(hosts_of_section, sections[::2], strict=True):
        runas: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        tags: set[str] = set()
        for item in _split(section):
            found = _RUNAS_RE.match(item)
            if found is not None:
                runas = _runas(found.group(1))
                item = item[found.end() :]
            while True:
                tag = _TAG_RE.match(item) or _OPTION_RE.match(item)
                if tag is None:
                    break
                word = tag.group(1)
                if tag.re is _TAG_RE:
                    opposite = word[2:] if word.startswith("NO") else "NO" + word
                    tags.discard(opposite)
                    tags.add(word)
                item = item[tag.end() :]
            item = _DIGEST_RE.sub("", item)
            if item.startswith("!"):
                item = "!" + item[1:].lstrip()
            if item:
                grants.append(Grant(users, hosts, runas[0], runas[1], item, frozenset(tags), line))
    return grants


def _aliases(lines: list[Line]) -> dict[str, dict[str, tuple[list[str], Line]]]:
    aliases: dict[str, dict[str, tuple[list[str], Line]]] = {}
    for line in lines:
        alias = _ALIAS_RE.match(line.text)
        if alias is None:
            continue
        kind = "Cmnd" if alias.group(1) == "Cmd" else alias.group(1)
        for definition in _split(alias.group(2), ":"):
            name, sep, items = definition.partition("=")
            if not sep:
                raise FactUnavailable(f"{line.where}: cannot read the alias {definition[:40]!r}")
            aliases.setdefault(kind, {})[name.strip()] = (_split(items), line)
    return aliases


def parse_policy(sources: SudoSources, nss: dict[str, NssLine] | None = None) -> Policy:
    """The policy sudo applies from the collected files (``nss``: parsed nsswitch.conf, if any)."""
    reader = _Reader(sources, [], [])
    lines = reader.file(sources.start, 0, None)
    settings: list[Setting] = []
    grants: list[Grant] = []
    for line in lines:
        if line.text.startswith("Defaults") and not line.text[8:9].isalnum() and line.text[8:9] != "_":
            settings.extend(_settings(line))
        elif _ALIAS_RE.match(line.text) is None:
            grants.extend(_grants(line))
    entry = (nss or {}).get("sudoers")
    if entry is None:
        found_sources: tuple[str, ...] = ("files",)
        where = f"no sudoers line in {NSSWITCH}: sudo reads its files only"
    else:
        found_sources = tuple(entry.sources)
        where = f"sudoers: {' '.join(found_sources)} ({NSSWITCH} line {entry.line})"
    return Policy(
        start=sources.start,
        host=sources.host,
        lines=lines,
        settings=settings,
        grants=grants,
        aliases=_aliases(lines),
        read=reader.read,
        skipped=reader.skipped,
        sources=found_sources,
        sources_where=where,
    )


def read_policy(ctx: Context) -> Policy | None:
    """The sudo policy of the host, ``None`` when sudo is not installed.

    The calling check must declare :data:`POLICY_FACTS`. Raises :class:`FactUnavailable` (an ``error``
    verdict) when the policy cannot be known: an include the probe did not collect, a file too large, a
    line sudo itself would refuse to parse, or a sudoers file so insecure that sudo refuses to run.
    """

    def parse() -> Policy | None:
        sources = ctx.get(POLICY)
        return None if sources is None else parse_policy(sources, ctx.get(NSS))

    return ctx.derived("sudo-policy", parse)  # every sudo check of a host reads the same policy


def judge(policy: Policy, problems: list[str], ok: str) -> Outcome:
    """The outcome of a check over the sudo policy: rules from a directory make a local pass no pass."""
    if "files" not in policy.sources:
        return not_reviewed(
            f"sudo does not read its local policy ({policy.sources_where}): the rules it applies are "
            "in a directory the probe cannot see"
        )
    others = policy.directory_sources
    if policy.skipped:
        ok += f" (sudo skips {'; '.join(policy.skipped)})"
    if problems:
        more = f" (sudo also takes rules from {', '.join(others)}, not seen)" if others else ""
        return failed("; ".join(problems) + more)
    if others:
        return not_reviewed(
            f"{ok}; but sudo also takes rules and Defaults from {', '.join(others)} "
            f"({policy.sources_where}), which the probe cannot see: the local files alone cannot prove it"
        )
    return passed(ok)


# ------------------------------------------------------------------------------------ Defaults semantics


def _host_scope(policy: Policy, items: Iterable[str]) -> Literal["all", "some", "none"]:
    names = policy.expand("Host", items)
    if any(n.startswith("!") for n in names):
        return "some"
    if "ALL" in names or any(n == policy.host or n.startswith(policy.host + ".") for n in names):
        return "all"
    if policy.host and all(_PLAIN_HOST_RE.match(n) and not n.replace(".", "").isdigit() for n in names):
        return "none"
    return "some"


def _scope(policy: Policy, setting: Setting) -> Literal["all", "some", "none"]:
    if setting.kind == "":
        return "all"
    if setting.kind == "@":
        return _host_scope(policy, setting.binding)
    kind = {":": "User", ">": "Runas", "!": "Cmnd"}[setting.kind]
    members = policy.expand(kind, setting.binding)
    return "all" if members == ["ALL"] else "some"


@dataclass(frozen=True)
class Effective:
    """A Defaults parameter as sudo applies it: the entry every session starts from (``None``: sudo's
    compiled-in default) and the later scoped entries that change it for some users, runas or commands."""

    base: Setting | None
    exceptions: tuple[Setting, ...]


def effective(policy: Policy, name: str) -> Effective:
    """How sudo sets ``name``: global/host/user/runas entries in file order, then command entries."""
    base: Setting | None = None
    pending: list[Setting] = []
    commands: list[Setting] = []
    for setting in policy.settings:
        if setting.name != name:
            continue
        scope = _scope(policy, setting)
        if scope == "none":
            continue
        same = (setting.kind, setting.binding)
        if setting.kind == "!":
            commands = [s for s in commands if (s.kind, s.binding) != same] + [setting]
        elif scope == "all":
            base, pending = setting, []
        else:  # a later entry with the very same binding replaces an earlier one
            pending = [s for s in pending if (s.kind, s.binding) != same] + [setting]
    return Effective(base, tuple(pending + commands))


def _flag_on(setting: Setting | None, name: str) -> bool:
    if setting is None:
        return name in _COMPILED_ON
    return not setting.negated


def _where(setting: Setting | None, name: str) -> str:
    if setting is None:
        return f"{name} is sudo's compiled-in default" if name in _COMPILED_ON else f"{name} is not set"
    return setting.describe()


def _problems(
    policy: Policy, name: str, holds: Callable[[Setting | None], bool], exempt: Iterable[str] = ()
) -> tuple[list[str], str]:
    """What keeps ``holds`` from being true for every session, and the entry that makes it true."""
    found = effective(policy, name)
    problems: list[str] = []
    if not holds(found.base):
        problems.append(
            f"{found.base.describe()}" if found.base is not None else f"{name} is not set in {policy.note}"
        )
    exempt_set = set(exempt)
    for setting in found.exceptions:
        if holds(setting) or (setting.kind == ":" and exempt_set and set(setting.binding) <= exempt_set):
            continue
        problems.append(f"turned off for some sessions by {setting.describe()}")
    return problems, _where(found.base, name)


# ------------------------------------------------------------------------------------------ checks


@check("sudo.use_pty_enabled", facts=lambda p: POLICY_FACTS)
def sudo_use_pty_enabled(p: NoParams, ctx: Context) -> Outcome:
    """sudo runs commands in their own pseudo-terminal (Defaults use_pty), for every user and command.

    sudo before 1.9.14 does not use a pty by default (Debian 12 ships 1.9.13, RHEL 9 1.9.5), and the
    probe does not read sudo's version: the setting must be explicit.
    """
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    problems, where = _problems(policy, "use_pty", lambda s: _flag_on(s, "use_pty"))
    return judge(
        policy, [f"use_pty: {'; '.join(problems)}"] if problems else [], f"use_pty is set by {where}"
    )


def _required(item: str) -> tuple[str, Callable[[Setting | None], bool]]:
    """A required Defaults item (``name``, ``!name``, ``name=value``) as a name and a test."""
    name, sep, wanted = item.partition("=")
    if name.startswith("!"):
        bare = name[1:]
        return bare, lambda s: not _flag_on(s, bare)
    if not sep:
        return name, lambda s: _flag_on(s, name)
    if name == "umask":
        bits = int(wanted, 8)
        # sudo ORs its umask with the user's: the configured mask must hold at least the wanted bits.
        return (
            name,
            lambda s: (
                s is not None and not s.negated and s.value is not None and _octal(s.value) & bits == bits
            ),
        )
    return name, lambda s: s is not None and not s.negated and s.value == wanted


def _octal(text: str) -> int:
    return int(text, 8) if re.fullmatch(r"0?[0-7]{1,4}", text) else 0


class DefaultsParams(Params):
    required: list[str] = Field(
        min_length=1,
        description="Defaults every sudo session must have: 'name' (on), '!name' (off) or 'name=value' "
        "(umask=0077: the umask masks at least these bits)",
    )
    exempt_users: list[str] = Field(
        default_factory=list,
        description="accounts whose own 'Defaults:<user>' entries are not held against the host (a "
        "compliance scanner that needs !requiretty)",
    )


@check("sudo.defaults_set", params=DefaultsParams, facts=lambda p: POLICY_FACTS)
def sudo_defaults_set(p: DefaultsParams, ctx: Context) -> Outcome:
    """sudo's Defaults hold the hardening options (noexec, requiretty, use_pty, umask...) in every session."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    problems: list[str] = []
    found: list[str] = []
    for item in p.required:
        name, holds = _required(item)
        missing, where = _problems(policy, name, holds, p.exempt_users)
        problems += [f"{item}: {m}" for m in missing]
        found.append(where)
    return judge(policy, problems, "sudo Defaults hold " + ", ".join(p.required) + ": " + "; ".join(found))


Mechanism = Literal["logfile", "syslog", "log_output", "log_input"]
_MECHANISMS: tuple[Mechanism, ...] = ("logfile", "syslog", "log_output", "log_input")


class LoggingParams(Params):
    accepted: list[Mechanism] = Field(
        default_factory=lambda: list(_MECHANISMS),
        min_length=1,
        description="explicit Defaults that count as logging sudo use",
    )


def _set(setting: Setting | None) -> bool:
    return setting is not None and not setting.negated


@check("sudo.logging_enabled", params=LoggingParams, facts=lambda p: POLICY_FACTS)
def sudo_logging_enabled(p: LoggingParams, ctx: Context) -> Outcome:
    """sudoers explicitly logs sudo use (logfile, syslog facility or I/O logs), for every user and command.

    sudo's compiled-in default (syslog to authpriv on Debian and RHEL builds) is not accepted as proof: it
    depends on the build and leaves nothing in the configuration to audit. A session is logged if one
    accepted mechanism is on for it: a scoped entry fails only if it turns off every mechanism on.
    """
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    on = {name: effective(policy, name) for name in p.accepted}
    on = {name: found for name, found in on.items() if _set(found.base)}
    if not on:
        bases = [effective(policy, name).base for name in p.accepted]
        shown = "; ".join(s.describe() for s in bases if s is not None)
        why = f"turned off by {shown}" if shown else f"no explicit sudo logging ({', '.join(p.accepted)})"
        return judge(policy, [f"sudo logging: {why} in the Defaults of {policy.note}"], "")
    scopes_off: set[tuple[str, tuple[str, ...]]] | None = None
    offending: dict[tuple[str, tuple[str, ...]], list[Setting]] = {}
    for found in on.values():
        offs = [s for s in found.exceptions if not _set(s)]
        keys: set[tuple[str, tuple[str, ...]]] = {(s.kind, s.binding) for s in offs}
        for s in offs:
            offending.setdefault((s.kind, s.binding), []).append(s)
        scopes_off = keys if scopes_off is None else scopes_off & keys
    problems = [
        "sudo logging is turned off by " + "; ".join(s.describe() for s in offending[key])
        for key in sorted(scopes_off or set())
    ]
    shown = "; ".join(found.base.describe() for found in on.values() if found.base is not None)
    return judge(policy, problems, f"sudo use is logged: {shown}")


def _commands(policy: Policy, grant: Grant) -> list[str]:
    """The commands a grant names, through Cmnd_Alias (negation carried)."""
    return policy.expand("Cmnd", [grant.command])


@check("sudo.no_negated_commands", facts=lambda p: POLICY_FACTS)
def sudo_no_negated_commands(p: NoParams, ctx: Context) -> Outcome:
    """No sudoers rule grants commands by negation ("ALL, !/bin/sh"), which is always bypassable."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    found = [
        f"'{command}' for {g.who()} ({g.line.where})"
        for g in policy.grants
        for command in _commands(policy, g)
        if command.startswith("!")
    ]
    return judge(
        policy,
        ["negated commands in sudoers: " + "; ".join(found)] if found else [],
        f"no negated command in the {len(policy.grants)} sudo command grants of {policy.note}",
    )


def _grants_all(policy: Policy, grant: Grant) -> bool:
    return not grant.command.startswith("!") and "ALL" in _commands(policy, grant)


@check("sudo.no_nopasswd_all", facts=lambda p: POLICY_FACTS)
def sudo_no_nopasswd_all(p: NoParams, ctx: Context) -> Outcome:
    """No user gets every command as root without re-typing a password (NOPASSWD: ALL, !authenticate)."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    found = [
        f"NOPASSWD: {g.command} for {g.who()} ({g.line.where})"
        for g in policy.grants
        if "NOPASSWD" in g.tags and _grants_all(policy, g)
    ]
    problems, _ = _problems(policy, "authenticate", lambda s: s is None or not s.negated)
    found += problems
    return judge(
        policy,
        ["sudo grants everything without a password: " + "; ".join(found)] if found else [],
        f"no NOPASSWD grant of ALL and no !authenticate in {policy.note}",
    )


@check("sudo.runas_targets_restricted", facts=lambda p: POLICY_FACTS)
def sudo_runas_targets_restricted(p: NoParams, ctx: Context) -> Outcome:
    """Limited sudo grants name their target users: no "(ALL)" runas for a command list, no rule for ALL.

    A rule that lets specific commands run as ANY account gives more than the task needs (BP-028 R40);
    full administration (a grant of ALL commands) is judged by the admin-account controls instead.
    """
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    found: list[str] = []
    for g in policy.grants:
        if g.command.startswith("!"):
            continue
        if "ALL" in policy.expand("User", g.users):
            found.append(f"every user may run {g.command} ({g.line.where})")
        elif not _grants_all(policy, g) and (
            "ALL" in policy.expand("Runas", g.runas_users) or "ALL" in policy.expand("Runas", g.runas_groups)
        ):
            found.append(f"{g.who()} may run {g.command} as any target ({g.line.where})")
    limited = sum(1 for g in policy.grants if not _grants_all(policy, g))
    return judge(
        policy,
        ["sudo rules with unrestricted targets: " + "; ".join(found)] if found else [],
        f"the {limited} limited sudo grant(s) of {policy.note} name their target users",
    )


def _args_problem(command: str) -> str | None:
    """Why a granted command leaves its arguments open, ``None`` if they are explicit."""
    path, _, args = command.partition(" ")
    args = args.strip()
    if path.endswith("/"):
        return "a whole directory"
    if not args:
        return "any arguments"
    if args.startswith("^") or any(char in args.replace('""', "") for char in "*?["):
        return f"wildcard arguments '{args}'"
    return None


@check("sudo.commands_have_explicit_arguments", facts=lambda p: POLICY_FACTS)
def sudo_commands_have_explicit_arguments(p: NoParams, ctx: Context) -> Outcome:
    """Every command granted through sudo names its arguments ('""' for none), without wildcards (R43)."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    found: list[str] = []
    judged = 0
    for g in policy.grants:
        for command in _commands(policy, g):
            if command.startswith("!") or command == "ALL" or command.split()[0] == "sudoedit":
                continue
            judged += 1
            problem = _args_problem(command)
            if problem is not None:
                found.append(f"{command} for {g.who()} allows {problem} ({g.line.where})")
    return judge(
        policy,
        ["sudo commands without explicit arguments: " + "; ".join(found)] if found else [],
        f"the {judged} command(s) granted in {policy.note} name their arguments",
    )


_EDITORS = [
    "vi", "vim", "nvim", "view", "rvim", "rview", "vimdiff", "ex", "ed", "red", "nano", "rnano", "pico",
    "emacs", "emacs-nox", "jed", "joe", "mcedit", "ne", "micro", "less", "more", "most", "pg", "vipw", "vigr",
]  # fmt: skip


class EditorParams(Params):
    editors: list[str] = Field(
        default_factory=lambda: list(_EDITORS),
        min_length=1,
        description="programs (by base name) that open a shell escape and must be reached through sudoedit",
    )


@check("sudo.editors_through_sudoedit", params=EditorParams, facts=lambda p: POLICY_FACTS)
def sudo_editors_through_sudoedit(p: EditorParams, ctx: Context) -> Outcome:
    """No sudo rule runs an editor or pager (vi, nano, less...): files are edited through sudoedit (R44)."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    editors = set(p.editors)
    found = [
        f"{command} for {g.who()} ({g.line.where})"
        for g in policy.grants
        for command in _commands(policy, g)
        if not command.startswith("!") and command.split()[0].rsplit("/", 1)[-1] in editors
    ]
    return judge(
        policy,
        ["editors granted through sudo instead of sudoedit: " + "; ".join(found)] if found else [],
        f"no editor or pager is granted in {policy.note}",
    )


class ExecParams(Params):
    allowed: list[str] = Field(
        default_factory=list, description="commands (full paths) that may run with the EXEC tag"
    )


@check("sudo.exec_commands_limited", params=ExecParams, facts=lambda p: POLICY_FACTS)
def sudo_exec_commands_limited(p: ExecParams, ctx: Context) -> Outcome:
    """Only listed commands escape noexec with an EXEC tag: each may start any program as its target (R41)."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    allowed = set(p.allowed)
    found = [
        f"{command} for {g.who()} ({g.line.where})"
        for g in policy.grants
        if "EXEC" in g.tags
        for command in _commands(policy, g)
        if not command.startswith("!") and command.split()[0] not in allowed
    ]
    return judge(
        policy,
        ["commands tagged EXEC (they may run other programs despite noexec): " + "; ".join(found)]
        if found
        else [],
        f"no command outside the allowed list is tagged EXEC in {policy.note}",
    )


# ------------------------------------------------------------------------------ session recording

_IO_STREAMS = ("log_output", "log_input", "log_ttyout", "log_ttyin", "log_stdout", "log_stdin", "log_stderr")


@dataclass(frozen=True)
class SessionRecording:
    """Whether sudo records the input/output of every session it runs, and where the recordings go."""

    recorded: bool
    streams: tuple[str, ...]  # I/O log options on for every session
    directory: str  # iolog_dir (sudo's default when unset)
    servers: tuple[str, ...]  # log_servers: recordings sent to sudo_logsrvd, off this host
    gaps: tuple[str, ...]  # sessions left unrecorded, and where that is decided

    def where(self) -> str:
        """Where recordings are written, for messages."""
        if self.servers:
            return "sent to the log server(s) " + ", ".join(self.servers)
        return f"written under {self.directory}"


def session_recording(policy: Policy) -> SessionRecording:
    """sudo I/O logging for every session: a stream on in the Defaults of every session, no grant turning
    every stream off (``NOLOG_OUTPUT``...), and the directory or log servers that receive the recordings."""
    streams: list[str] = []
    gaps: list[str] = []
    for name in _IO_STREAMS:
        found = effective(policy, name)
        if _set(found.base):
            offs = [s for s in found.exceptions if not _set(s)]
            if offs:
                gaps += [f"{name} turned off by {s.describe()}" for s in offs]
            else:
                streams.append(name)
    if streams:
        gaps = []  # another stream still records those sessions
    tagged = [g for g in policy.grants if any(_tag(s) in g.tags for s in _IO_STREAMS)]
    if not streams and not tagged:
        gaps = gaps or [f"no log_input or log_output in the Defaults of {policy.note}"]
    else:
        for g in policy.grants:
            if g.command.startswith("!"):
                continue
            on = {s for s in streams if f"NO{_tag(s)}" not in g.tags}
            on |= {s for s in _IO_STREAMS if _tag(s) in g.tags}
            if not on:
                why = ", ".join(sorted({"NO" + _tag(s) for s in streams})) or "no I/O log option is on"
                gaps.append(f"{g.command} for {g.who()} ({g.line.where}): {why}")
    directory = effective(policy, "iolog_dir").base
    servers = effective(policy, "log_servers").base
    return SessionRecording(
        recorded=not gaps and (bool(streams) or bool(policy.grants)),
        streams=tuple(streams),
        directory=directory.value
        if _set(directory) and directory and directory.value
        else _DEFAULT_IOLOG_DIR,
        servers=tuple(servers.value.split()) if _set(servers) and servers and servers.value else (),
        gaps=tuple(gaps),
    )


def _tag(stream: str) -> str:
    return "LOG_OUTPUT" if stream.endswith(("output", "ttyout", "stdout", "stderr")) else "LOG_INPUT"


@check("sudo.io_logging_enabled", facts=lambda p: POLICY_FACTS)
def sudo_io_logging_enabled(p: NoParams, ctx: Context) -> Outcome:
    """sudo records the input and output of every session it runs (log_input/log_output, iolog_dir or
    log_servers), so each administrator's actions can be replayed."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    recording = session_recording(policy)
    if not recording.recorded:
        gaps = "; ".join(recording.gaps) or f"no log_input or log_output in the Defaults of {policy.note}"
        return judge(policy, [f"sudo sessions are not all recorded: {gaps}"], "")
    return judge(
        policy, [], f"sudo sessions are recorded ({', '.join(recording.streams)}), {recording.where()}"
    )


# ------------------------------------------------------------------------------ audit of the log file


def _rule_watches(rule: str, path: str) -> bool:
    """Whether one ``auditctl -l`` rule watches writes to ``path`` (a -w watch or a path/dir filter)."""
    words = rule.split()
    target = kind = perms = None
    if words[:1] == ["-w"] and len(words) > 1:
        target, kind, perms = words[1], "tree", "rwxa"
        if "-p" in words[:-1]:
            perms = words[words.index("-p") + 1]
    elif words[:1] == ["-a"] and len(words) > 1 and words[1].split(",")[0] in ("always", "exit"):
        for i, word in enumerate(words[:-1]):
            if word != "-F":
                continue
            key, _, value = words[i + 1].partition("=")
            if key in ("path", "dir"):
                target, kind = value, "file" if key == "path" else "tree"
            elif key == "perm":
                perms = value
    if target is None or perms is None or "w" not in perms:
        return False
    target = target.rstrip("/") or "/"
    return path == target or (kind == "tree" and path.startswith(target.rstrip("/") + "/"))


class AuditedLogParams(Params):
    logfile_required: bool = Field(
        default=False, description="fail when sudo writes no log file of its own (else: not applicable)"
    )


@check("sudo.logfile_audited", params=AuditedLogParams, facts=lambda p: [*POLICY_FACTS, AUDIT_RULES])
def sudo_logfile_audited(p: AuditedLogParams, ctx: Context) -> Outcome:
    """The log file sudo writes (Defaults logfile) is watched for writes by a loaded audit rule."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    found = effective(policy, "logfile")
    paths: dict[str, Setting] = {}
    for setting in (found.base, *found.exceptions):
        if setting is not None and _set(setting) and setting.value:
            paths.setdefault(setting.value, setting)
    if not paths:
        none = f"sudo writes no log file of its own (no Defaults logfile in {policy.note})"
        return judge(policy, [none], "") if p.logfile_required else not_applicable(none)
    rules = ctx.get(AUDIT_RULES)
    if rules is None:
        return judge(
            policy, [f"auditctl is not installed: nothing watches the sudo log {', '.join(paths)}"], ""
        )
    unwatched = [
        f"{path} ({s.describe()})"
        for path, s in paths.items()
        if not any(_rule_watches(r, path) for r in rules)
    ]
    problems = (
        [f"no loaded audit rule watches writes to the sudo log: {'; '.join(unwatched)}"] if unwatched else []
    )
    watching = [r for r in rules if any(_rule_watches(r, path) for path in paths)]
    return judge(
        policy, problems, f"the sudo log {', '.join(paths)} is watched by: {'; '.join(watching[:3])}"
    )


# ------------------------------------------------------------------------------ the sudo binary


def group_names(data: bytes | None) -> dict[int, str]:
    """gid -> name from the content of /etc/group."""
    names: dict[int, str] = {}
    for raw in (data or b"").decode("utf-8", "replace").splitlines():
        fields = raw.split(":")
        if len(fields) >= 3 and fields[2].strip().isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names


@check("sudo.binary_restricted_to_group", facts=lambda p: [SUDO_BINARY, GROUP])
def sudo_binary_restricted_to_group(p: NoParams, ctx: Context) -> Outcome:
    """Only a group dedicated to sudo may execute /usr/bin/sudo (setuid root, no execute bit for others)."""
    stat = ctx.get(SUDO_BINARY)
    if stat is None:
        return not_applicable("/usr/bin/sudo does not exist")
    group = group_names(ctx.get(GROUP)).get(stat.gid, f"gid {stat.gid}")
    mode = f"{stat.mode:04o}"
    problems = []
    if stat.uid != 0 or not stat.mode & 0o4000:
        problems.append("it is not a setuid-root program")
    if stat.mode & 0o001:
        problems.append("every account may execute it")
    if stat.gid == 0:
        problems.append("its group is root, not a group dedicated to sudo")
    if problems:
        return failed(f"/usr/bin/sudo is mode {mode}, group {group}: {'; '.join(problems)}")
    return passed(f"/usr/bin/sudo is mode {mode}: only members of group {group} may execute it")


class GroupGrantParams(Params):
    exempt: list[str] = Field(
        default_factory=lambda: ["root"], description="accounts a rule may name directly (root's own rule)"
    )


@check("sudo.grants_through_groups", params=GroupGrantParams, facts=lambda p: POLICY_FACTS)
def sudo_grants_through_groups(p: GroupGrantParams, ctx: Context) -> Outcome:
    """sudo rights are granted to groups (%group), not to individual accounts: who may elevate is decided by
    group membership alone (User_Alias expanded; root's own rule exempted)."""
    policy = read_policy(ctx)
    if policy is None:
        return not_applicable(_NOT_INSTALLED)
    direct = sorted(
        {
            f"{name} ({grant.line.where})"
            for name, grant in granted_principals(policy)
            if not name.startswith("%") and name not in p.exempt
        }
    )
    groups = sorted({name for name, _ in granted_principals(policy) if name.startswith("%")})
    return judge(
        policy,
        ["sudo rules name individual accounts: " + "; ".join(direct)] if direct else [],
        f"sudo rights go to groups only: {', '.join(groups) or 'none granted'}",
    )


def granted_principals(policy: Policy) -> list[tuple[str, Grant]]:
    """Users and groups (``%group``) any sudo rule grants commands to, through User_Alias, with the rule."""
    out: list[tuple[str, Grant]] = []
    for g in policy.grants:
        if g.command.startswith("!"):
            continue
        out += [(name, g) for name in policy.expand("User", g.users) if not name.startswith("!")]
    return out
