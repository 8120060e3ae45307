"""Where a host's logs go: the forwarding targets of rsyslog, syslog-ng and systemd-journal-upload, and of
the audit dispatcher, each with its transport and whether the peer's certificate is checked.

Read with each program's own rules, as rsyslog 8.2302 was seen to behave on this project's test machine:

* rsyslog: ``omfwd`` sends over UDP unless ``protocol="tcp"``; TLS happens only with a TLS stream driver
  (``gtls``, ``ossl``; the action's ``StreamDriver``, else the global ``DefaultNetstreamDriver``, else
  ``ptcp``) AND ``StreamDriverMode="1"``; ``ptcp`` in mode 1 makes rsyslog refuse to send at all. The peer
  is checked unless ``StreamDriverAuthMode="anon"`` (unset means ``x509/name``). Legacy ``$ActionSend...``
  directives apply to the legacy ``@@`` actions that FOLLOW them, never to ``action()`` objects; includes
  are read where they appear; an action inside a ``ruleset`` no input or ``call`` uses receives nothing.
* syslog-ng: ``tls()`` checks the peer unless ``peer-verify`` says ``*-untrusted`` or ``no``.
* systemd-journal-upload: ``https://`` (also for a URL without scheme) checks the server against
  ``TrustedCertificateFile`` (default /etc/ssl/ca/trusted.pem) unless it is ``all`` or ``-``.

This module is public: :func:`forwarding_targets` (with :data:`FORWARDING_FACTS`) and
:func:`audit_forwarding` (with :data:`AUDIT_FORWARDING_FACTS`) serve the fleet checks and other areas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from hds_compliance.check import Context
from hds_compliance.facts.audit import AuditdConfig
from hds_compliance.facts.base import Fact
from hds_compliance.facts.conftree import ConfigTree
from hds_compliance.facts.logging import (
    SYSTEMD_CONF_DIRS,
    JournalUploadConfig,
    LogDaemons,
    RsyslogConfig,
    SyslogNgConfig,
)

RSYSLOG = RsyslogConfig()
SYSLOG_NG = SyslogNgConfig()
JOURNAL_UPLOAD = JournalUploadConfig()
LOG_DAEMONS = LogDaemons()
AUDITD_CONFIG = AuditdConfig()
FORWARDING_FACTS: list[Fact[Any]] = [RSYSLOG, SYSLOG_NG, JOURNAL_UPLOAD, LOG_DAEMONS]
AUDIT_FORWARDING_FACTS: list[Fact[Any]] = [AUDITD_CONFIG, *FORWARDING_FACTS]

TLS_DRIVERS = frozenset({"gtls", "ossl", "mbedtls"})
PEER_CHECKING = frozenset({"x509/name", "x509/fingerprint", "x509/certvalid"})
_DEFAULT_RULESET = "rsyslog_defaultruleset"
# Daemon (program name, see LogDaemons) that must run for a tool's forwarding to happen.
DAEMON_OF = {
    "rsyslog": "rsyslogd",
    "syslog-ng": "syslog-ng",
    "systemd-journal-upload": "systemd-journal-upload",
    "audisp-remote": "auditd",
}


@dataclass(frozen=True)
class ForwardTarget:
    """One place logs are sent to, as the sending program would do it."""

    tool: str  # rsyslog, syslog-ng, systemd-journal-upload, audisp-remote
    host: str
    port: int | None
    transport: str  # udp, tcp, relp, tls, krb5
    verified: bool  # the peer's certificate (or Kerberos identity) is checked
    where: str  # file and line
    how: str = ""  # driver, mode and authentication, as configured
    scope: str = ""  # "" for every message of the main flow, else the filter or ruleset
    problem: str = ""  # why nothing is sent at all, though the action is configured
    running: bool | None = None  # whether the daemon that would send runs (None: not known)

    @property
    def protected(self) -> bool:
        """Encrypted and the peer authenticated: what "forwarded over TLS" means here."""
        return self.transport in ("tls", "krb5") and self.verified and not self.problem

    def describe(self) -> str:
        """One phrase for messages: ``rsyslog to logs:6514 over tls (gtls, x509/name) (file line 3)``."""
        port = f":{self.port}" if self.port else ""
        how = f" ({self.how})" if self.how else ""
        scope = f", only {self.scope}" if self.scope else ""
        trust = "" if self.transport not in ("tls", "krb5") or self.verified else ", peer NOT checked"
        extra = f": {self.problem}" if self.problem else ""
        return (
            f"{self.tool} to {self.host}{port} over {self.transport}{how}{trust}{scope} ({self.where}){extra}"
        )


# ------------------------------------------------------------------------------------------ text helpers


def line_of(text: str, pos: int) -> int:
    """1-based line number of a character position."""
    return text.count("\n", 0, pos) + 1


def strip_comments(text: str, block: bool = True) -> str:
    """``text`` with ``#`` comments (and ``/* */`` ones if ``block``) blanked out, quotes respected;
    positions and line numbers are kept."""
    out = list(text)
    i, n, quote, legacy = 0, len(text), "", False
    while i < n:
        c = text[i]
        if c == "\n":
            legacy = False
        elif c == "$" and not quote and not text[text.rfind("\n", 0, i) + 1 : i].strip():
            legacy = True  # a legacy "$Directive" line: "/etc/rsyslog.d/*.conf" holds no comment
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote or (quote == "'" and c == "\n"):
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif block and not legacy and c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = ["\n" if ch == "\n" else " " for ch in text[i:end]]
            i = end
            continue
        i += 1
    return "".join(out)


def balanced(text: str, start: int, opening: str = "(", closing: str = ")") -> int:
    """Position just after the bracket closing the one at ``start`` (quotes respected); len(text) if none."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


_PARAM = re.compile(r"""([A-Za-z0-9_.\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|[^\s)]+)""")


def object_params(body: str) -> dict[str, str]:
    """``name="value"`` pairs of a RainerScript object, names in lower case (rsyslog ignores their case)."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(body):
        value = match.group(2)
        if value[:1] in "\"'":
            value = value[1:-1]
        params[match.group(1).lower()] = value
    return params


def glob_paths(pattern: str, paths: list[str]) -> list[str]:
    """``paths`` a shell glob matches (``*`` does not cross ``/``), sorted like glob(3); a directory
    stands for every file in it."""
    pattern = pattern.rstrip("/") if pattern != "/" else pattern
    if not any(c in pattern for c in "*?["):
        inside = [p for p in paths if p.startswith(pattern + "/") and "/" not in p[len(pattern) + 1 :]]
        return [pattern] if pattern in paths else sorted(inside)
    parts = pattern.split("/")
    return sorted(
        p
        for p in paths
        if len(p.split("/")) == len(parts)
        and all(fnmatchcase(a, b) for a, b in zip(p.split("/"), parts, strict=True))
    )


def _port(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


# ---------------------------------------------------------------------------------------------- rsyslog


@dataclass
class _Action:
    module: str
    params: dict[str, str]
    where: str
    ruleset: str
    scope: str
    legacy: dict[str, str] | None = None  # $ActionSend... in force, for legacy "@@" actions
    legacy_target: tuple[str, str, str | None] | None = None  # (protocol, host, port)


_OBJECTS = frozenset(
    {
        "action",
        "global",
        "module",
        "input",
        "template",
        "ruleset",
        "main_queue",
        "include",
        "parser",
        "lookup_table",
        "timezone",
        "dyn_stats",
        "percentile_stats",
        "ratelimit",
        "property",
        "constant",
        "list",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_LEGACY_FWD = re.compile(r"^(@@?)(\([^)]*\))?(\[[^\]]+\]|[^\s:;\[]+)(?::(\d+))?")
_PROPERTY_FILTER = re.compile(r"""^:\s*[\w!$.-]+\s*,\s*!?\s*[\w-]+\s*,\s*"(?:[^"\\]|\\.)*"\s*""")


@dataclass
class _Rsyslog:
    """rsyslog's configuration read in load order: includes in place, legacy state carried along."""

    tree: ConfigTree
    actions: list[_Action] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)
    legacy: dict[str, str] = field(default_factory=dict)
    legacy_ruleset: str = _DEFAULT_RULESET
    bound: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    _active: list[str] = field(default_factory=list)

    def include(self, pattern: str, where: str) -> None:
        names = glob_paths(pattern, list(self.tree.files))
        if not names and not any(c in pattern for c in "*?["):
            self.notes.append(f"{where} includes {pattern}, which was not found")
        for name in names:
            if name in self._active or len(self._active) > 8:
                self.notes.append(f"{where}: include loop on {name} ignored")
                continue
            self.feed(name, self.tree.files[name].decode("utf-8", "replace"))

    def feed(self, name: str, text: str) -> None:
        """Read one file (or an ``include(text=...)``) statement by statement."""
        self._active.append(name)
        self.read.add(name)
        clean = strip_comments(text)
        blocks: list[tuple[str, str]] = []  # ("ruleset", name) or ("if", condition) or ("block", "")
        pending, selector, pos = "", "", 0
        while True:
            pos = len(clean) - len(clean[pos:].lstrip())
            if pos >= len(clean):
                break
            where = f"{name} line {line_of(text, pos)}"
            eol = clean.find("\n", pos)
            eol = len(clean) if eol < 0 else eol
            char = clean[pos]
            word_match = _WORD.match(clean, pos)
            word = word_match.group(0).lower() if word_match else ""
            after = clean[word_match.end() :].lstrip()[:1] if word_match else ""
            scope = self._scope(blocks, pending, "")
            if char == "$":
                self._directive(clean[pos + 1 : eol].strip(), where)
                pos = eol
            elif char == "}":
                if blocks:
                    blocks.pop()
                pos += 1
            elif char == "{":
                blocks.append(("if", pending) if pending else ("block", ""))
                pending, pos = "", pos + 1
            elif char == "&":
                pos = self._selector_action(clean, text, pos + 1, eol, name, blocks, selector)
            elif word in _OBJECTS and after == "(":
                start = clean.index("(", pos)
                end = balanced(clean, start)
                params = object_params(clean[start + 1 : end - 1])
                pos = end
                if word == "ruleset":
                    rest = clean[pos:].lstrip()
                    if rest.startswith("{"):
                        blocks.append(("ruleset", params.get("name", "").lower()))
                        pos = len(clean) - len(rest) + 1
                else:
                    self._object(word, params, where, self._ruleset(blocks), scope)
                pending = ""
            elif word in ("if", "else"):
                pos, pending = self._condition(clean, pos, word, pending)
            elif word == "call" and word_match:
                target = _WORD.match(clean, len(clean) - len(clean[word_match.end() :].lstrip()))
                if target:
                    self.bound.add(target.group(0).lower())
                    pos = target.end()
                else:
                    pos = word_match.end()
                pending = ""
            elif word in ("stop", "continue") and word_match:
                pos, pending = word_match.end(), ""
            elif word in ("set", "unset", "reset"):
                semicolon = clean.find(";", pos)
                pos, pending = (len(clean) if semicolon < 0 else semicolon + 1), ""
            else:
                selector, start = self._selector(clean, pos, eol)
                pos = self._selector_action(
                    clean, text, start, eol, name, [*blocks, ("if", pending)], selector
                )
                pending = ""
        self._active.pop()

    @staticmethod
    def _condition(clean: str, pos: int, word: str, pending: str) -> tuple[int, str]:
        if word == "else":
            return pos + 4, "else"
        # the expression runs to the word "then" outside quotes
        i, quote = pos + 2, ""
        while i < len(clean):
            c = clean[i]
            if quote:
                quote = "" if c == quote else quote
            elif c in "\"'":
                quote = c
            elif (
                clean[i : i + 4].lower() == "then"
                and not clean[i - 1].isalnum()
                and (i + 4 >= len(clean) or not clean[i + 4].isalnum())
            ):
                return i + 4, " ".join(clean[pos + 2 : i].split())
            i += 1
        return len(clean), " ".join(clean[pos + 2 :].split())

    @staticmethod
    def _selector(clean: str, pos: int, eol: int) -> tuple[str, int]:
        """The legacy filter (``*.*``, ``:msg, contains, "x"``) at ``pos`` and where its action starts."""
        line = clean[pos:eol]
        prop = _PROPERTY_FILTER.match(line)
        if prop:
            return prop.group(0).strip(), pos + prop.end()
        head = line.split(None, 1)[0] if line.split() else ""
        return head, pos + len(head)

    def _selector_action(
        self,
        clean: str,
        text: str,
        start: int,
        eol: int,
        name: str,
        blocks: list[tuple[str, str]],
        selector: str,
    ) -> int:
        rest = clean[start:eol].lstrip()
        begin = eol - len(clean[start:eol].lstrip()) if rest else eol
        where = f"{name} line {line_of(text, begin)}"
        scope = self._scope(blocks, "", "" if selector in ("*.*", "") else f"selector {selector}")
        if re.match(r"action\s*\(", rest, re.I):
            open_at = clean.index("(", begin)
            end = balanced(clean, open_at)
            self._object(
                "action", object_params(clean[open_at + 1 : end - 1]), where, self._ruleset(blocks), scope
            )
            return end
        forward = _LEGACY_FWD.match(rest)
        if forward:
            protocol = "tcp" if forward.group(1) == "@@" else "udp"
            host = forward.group(3).strip("[]")
            self.actions.append(
                _Action(
                    "omfwd",
                    {},
                    where,
                    self._ruleset(blocks),
                    scope,
                    dict(self.legacy),
                    (protocol, host, forward.group(4)),
                )
            )
        elif rest.lower().startswith(":omrelp:"):
            host, _, port = rest[len(":omrelp:") :].split(";", 1)[0].partition(":")
            params = {"target": host, "port": port}
            self.actions.append(_Action("omrelp", params, where, self._ruleset(blocks), scope))
        return eol

    def _ruleset(self, blocks: list[tuple[str, str]]) -> str:
        names = [value for kind, value in blocks if kind == "ruleset"]
        return names[-1] if names else self.legacy_ruleset

    @staticmethod
    def _scope(blocks: list[tuple[str, str]], pending: str, selector: str) -> str:
        conditions = [f"if {value}" for kind, value in blocks if kind == "if" and value]
        conditions += [f"if {pending}"] if pending else []
        conditions += [selector] if selector else []
        return ", ".join(conditions)

    def _directive(self, line: str, where: str) -> None:
        directive, _, value = line.partition(" ")
        key, value = directive.lower(), value.strip()
        if key == "includeconfig":
            self.include(value, where)
        elif key == "defaultnetstreamdriver":
            self.globals["defaultnetstreamdriver"] = value
        elif key.startswith("actionsendstreamdriver"):
            self.legacy[key] = value
        elif key == "resetconfigvariables":
            self.legacy.clear()
        elif key == "ruleset":
            self.legacy_ruleset = value.lower()
        elif key.endswith("ruleset"):
            self.bound.add(value.lower())

    def _object(self, word: str, params: dict[str, str], where: str, ruleset: str, scope: str) -> None:
        self.bound.update(v.lower() for k, v in params.items() if k.endswith("ruleset"))
        if word == "global":
            self.globals.update(params)
        elif word == "include":
            if "file" in params:
                self.include(params["file"], where)
            if "text" in params:
                self.feed(f"{where} (include text)", params["text"])
        elif word == "action":
            self.actions.append(_Action(params.get("type", "").lower(), params, where, ruleset, scope))


def _rsyslog_target(action: _Action, default_driver: str, bound: set[str]) -> ForwardTarget | None:
    if action.module not in ("omfwd", "omrelp"):
        return None
    p = action.params
    scope = action.scope
    problem = ""
    if action.ruleset != _DEFAULT_RULESET:
        scope = ", ".join(s for s in (f"ruleset {action.ruleset}", scope) if s)
        if action.ruleset not in bound:
            problem = f"no input and no call uses ruleset {action.ruleset}: nothing reaches this action"
    if action.module == "omrelp":
        tls = p.get("tls", "off").lower() == "on"
        auth = p.get("tls.authmode", "").lower()
        how = f"RELP TLS, tls.authMode {auth or 'unset: anonymous'}" if tls else "RELP"
        return ForwardTarget(
            "rsyslog",
            p.get("target", ""),
            _port(p.get("port", "514")),
            "tls" if tls else "relp",
            tls and auth in ("name", "fingerprint", "certvalid"),
            action.where,
            how,
            scope,
            problem,
        )
    if action.legacy is not None and action.legacy_target is not None:
        protocol, host, port = action.legacy_target
        driver = action.legacy.get("actionsendstreamdriver", "")
        mode = action.legacy.get("actionsendstreamdrivermode", "0")
        auth = action.legacy.get("actionsendstreamdriverauthmode", "")
        names = ("$ActionSendStreamDriver", "$ActionSendStreamDriverMode", "$ActionSendStreamDriverAuthMode")
    else:
        protocol, host, port = p.get("protocol", "udp").lower(), p.get("target", ""), p.get("port")
        driver = p.get("streamdriver", "")
        mode = p.get("streamdrivermode", "0")
        auth = p.get("streamdriverauthmode", "")
        names = ("StreamDriver", "StreamDriverMode", "StreamDriverAuthMode")
    if not driver:
        driver, names = default_driver, ("DefaultNetstreamDriver", *names[1:])
    port_number = _port(port) if port else 514
    if protocol != "tcp":
        return ForwardTarget("rsyslog", host, port_number, "udp", False, action.where, "", scope, problem)
    driver = driver.lower()
    if mode.strip() != "1":
        how = f"{names[0]} {driver}, {names[1]} {mode.strip() or '0'}: no TLS" if driver != "ptcp" else ""
        return ForwardTarget("rsyslog", host, port_number, "tcp", False, action.where, how, scope, problem)
    if driver not in TLS_DRIVERS:
        problem = problem or f"the {driver} driver has no TLS: rsyslog refuses mode 1 and sends nothing"
        how = f"{names[0]} {driver}, {names[1]} 1"
        return ForwardTarget("rsyslog", host, port_number, "tcp", False, action.where, how, scope, problem)
    auth_mode = auth.lower() or "x509/name"
    how = f"{driver}, {names[1]} 1, {names[2]} {auth or 'unset: x509/name'}"
    return ForwardTarget(
        "rsyslog", host, port_number, "tls", auth_mode in PEER_CHECKING, action.where, how, scope, problem
    )


def rsyslog_targets(tree: ConfigTree) -> tuple[list[ForwardTarget], list[str]]:
    """Forwarding actions of rsyslog's configuration (``/etc/rsyslog.conf`` and what it includes)."""
    main = tree.get(RSYSLOG.roots[0])
    if main is None:
        return [], []
    parser = _Rsyslog(tree)
    parser.feed(RSYSLOG.roots[0], main.decode("utf-8", "replace"))
    default_driver = parser.globals.get("defaultnetstreamdriver", "ptcp") or "ptcp"
    targets = [t for a in parser.actions if (t := _rsyslog_target(a, default_driver, parser.bound))]
    unread = sorted(set(tree.files) - parser.read)
    notes = list(parser.notes)
    if unread:
        notes.append(f"not included by {RSYSLOG.roots[0]}, so not read by rsyslog: {', '.join(unread)}")
    return targets, notes


# -------------------------------------------------------------------------------------------- syslog-ng

_NG_DRIVER = re.compile(r"\b(network|syslog|tcp6?|udp6?)\s*\(\s*\"?([^\"\s)]+)")
_NG_TRUSTED = frozenset({"required-trusted", "optional-trusted", "yes"})


def _ng_option(body: str, name: str) -> str | None:
    match = re.search(rf"\b{name.replace('-', '[-_]')}\s*\(\s*\"?([\w.-]+)", body)
    return match.group(1).lower().replace("_", "-") if match else None


def syslog_ng_targets(tree: ConfigTree) -> list[ForwardTarget]:
    """Network destinations of syslog-ng that a ``log`` path uses."""
    files = list(tree.files.items())
    if not files:
        return []
    # destinations and the log paths using them may sit in different files: read them as one text
    text = strip_comments("\n".join(data.decode("utf-8", "replace") for _, data in files), block=False)
    used = {m.lower() for m in re.findall(r"\bdestination\s*\(\s*([\w-]+)\s*\)", text)}
    out = []
    for match in re.finditer(r"\bdestination\s+([\w-]+)\s*\{", text):
        end = balanced(text, match.end() - 1, "{", "}")
        body = text[match.end() : end - 1]
        driver = _NG_DRIVER.search(body)
        if not driver or match.group(1).lower() not in used:
            continue
        kind = driver.group(1)
        transport_opt = _ng_option(body, "transport")
        tls = (bool(re.search(r"\btls\s*\(", body)) and not kind.startswith("udp")) or transport_opt == "tls"
        if tls:
            verify = _ng_option(body, "peer-verify") or "required-trusted"
            how = f"tls(), peer-verify {verify}"
            target = ForwardTarget(
                "syslog-ng",
                driver.group(2),
                _port(_ng_option(body, "port")),
                "tls",
                verify in _NG_TRUSTED,
                f"destination {match.group(1)}",
                how,
            )
        else:
            transport = "udp" if kind.startswith("udp") or transport_opt == "udp" else "tcp"
            target = ForwardTarget(
                "syslog-ng",
                driver.group(2),
                _port(_ng_option(body, "port")),
                transport,
                False,
                f"destination {match.group(1)}",
            )
        out.append(target)
    return out


# ----------------------------------------------------------------------------------- systemd-style files


def systemd_files(tree: ConfigTree, name: str) -> list[str]:
    """Files of a systemd daemon configuration in the order systemd reads them: the main file (first of
    /etc, /run, /usr/local/lib, /usr/lib), then drop-ins sorted by name, one of /etc hiding a same-named
    one below it."""
    main = next((f"{d}/{name}" for d in SYSTEMD_CONF_DIRS if f"{d}/{name}" in tree.files), None)
    dropins: dict[str, str] = {}
    for directory in reversed(SYSTEMD_CONF_DIRS):
        for path in tree.under(f"{directory}/{name}.d", ".conf"):
            dropins[path.rsplit("/", 1)[1]] = path
    return ([main] if main else []) + [dropins[base] for base in sorted(dropins)]


def systemd_assignments(tree: ConfigTree, name: str, section: str) -> list[tuple[str, str, str]]:
    """(key, value, where) of ``[section]`` of a systemd daemon configuration, in systemd's order."""
    out = []
    for path in systemd_files(tree, name):
        current = ""
        for number, raw in enumerate(tree.files[path].decode("utf-8", "replace").splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                current = line.strip("[]").strip()
            elif current == section and "=" in line:
                key, _, value = line.partition("=")
                out.append((key.strip(), value.strip(), f"{path} line {number}"))
    return out


def journal_upload_targets(tree: ConfigTree) -> list[ForwardTarget]:
    """Where systemd-journal-upload sends the journal (the last ``URL=`` wins)."""
    settings: dict[str, tuple[str, str]] = {}
    for key, value, where in systemd_assignments(tree, "journal-upload.conf", "Upload"):
        settings[key] = (value, where)
    url, where = settings.get("URL", ("", ""))
    if not url:
        return []
    parts = urlsplit(url if "://" in url else f"https://{url}")
    try:
        port = parts.port or 19532
    except ValueError:
        port = None
    if parts.scheme != "https":
        return [
            ForwardTarget("systemd-journal-upload", parts.hostname or url, port, "tcp", False, where, "http")
        ]
    trust = settings.get("TrustedCertificateFile", ("/etc/ssl/ca/trusted.pem (default)", ""))[0]
    how = f"https, TrustedCertificateFile={trust}"
    return [
        ForwardTarget(
            "systemd-journal-upload",
            parts.hostname or url,
            port,
            "tls",
            trust not in ("all", "-"),
            where,
            how,
        )
    ]


# ------------------------------------------------------------------------------------------- public API


def _with_running(targets: list[ForwardTarget], daemons: frozenset[str]) -> list[ForwardTarget]:
    return [replace(t, running=DAEMON_OF.get(t.tool, t.tool) in daemons) for t in targets]


def forwarding_targets(ctx: Context) -> tuple[list[ForwardTarget], list[str]]:
    """Every log forwarding configured on the host, with whether its daemon runs, and notes (files not
    included, includes not found). The caller declares :data:`FORWARDING_FACTS`."""
    rsyslog, notes = rsyslog_targets(ctx.get(RSYSLOG))
    targets = (
        rsyslog + syslog_ng_targets(ctx.get(SYSLOG_NG)) + journal_upload_targets(ctx.get(JOURNAL_UPLOAD))
    )
    return _with_running(targets, ctx.get(LOG_DAEMONS)), notes


def auditd_settings(data: bytes) -> dict[str, tuple[str, int]]:
    """``key = value`` lines of auditd.conf-style files: keys in lower case (auditd ignores their case),
    the last one wins; value with its line number."""
    out: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip().lower()] = (value.strip(), number)
    return out


def audit_plugins(tree: ConfigTree) -> dict[str, dict[str, tuple[str, int]]]:
    """Plugin files of the audit dispatcher (``plugin_dir`` of auditd.conf), by path."""
    conf = auditd_settings(tree.get("/etc/audit/auditd.conf") or b"")
    directory = conf.get("plugin_dir", ("/etc/audit/plugins.d", 0))[0]
    plugins = tree.under(directory, ".conf") or tree.under("/etc/audisp/plugins.d", ".conf")
    return {path: auditd_settings(data) for path, data in plugins.items()}


def audit_forwarding(ctx: Context) -> tuple[list[ForwardTarget], list[str]]:
    """Where audit records go off the host: audisp-remote, or the syslog plugin and then wherever syslog
    forwards. The caller declares :data:`AUDIT_FORWARDING_FACTS`."""
    tree = ctx.get(AUDITD_CONFIG)
    out: list[ForwardTarget] = []
    notes: list[str] = []
    for path, plugin in audit_plugins(tree).items():
        if plugin.get("active", ("no", 0))[0].lower() != "yes":
            continue
        program = plugin.get("path", ("", 0))[0]
        if program.endswith("audisp-remote"):
            remote_path = "/etc/audit/audisp-remote.conf"
            data = tree.get(remote_path) or tree.get("/etc/audisp/audisp-remote.conf") or b""
            remote = auditd_settings(data)
            server, number = remote.get("remote_server", ("", 0))
            if not server:
                notes.append(f"{path} is active but audisp-remote.conf names no remote_server")
                continue
            krb5 = remote.get("transport", ("tcp", 0))[0].lower() == "krb5" or (
                remote.get("enable_krb5", ("no", 0))[0].lower() == "yes"
            )
            out.append(
                ForwardTarget(
                    "audisp-remote",
                    server,
                    _port(remote.get("port", ("60", 0))[0]),
                    "krb5" if krb5 else "tcp",
                    krb5,
                    f"{remote_path} line {number}",
                    "Kerberos 5" if krb5 else "plain TCP",
                )
            )
        elif program.endswith("audisp-syslog") or program == "builtin_syslog":
            syslog, more = forwarding_targets(ctx)
            notes += more or (
                [] if syslog else [f"{path} sends audit records to syslog, which forwards nowhere"]
            )
            out += [replace(t, scope=f"audit records through {path}, {t.scope}".rstrip(", ")) for t in syslog]
    return _with_running(out, ctx.get(LOG_DAEMONS)), notes
