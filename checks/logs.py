"""System logs: forwarded off the host over a protected channel (a compromised host cannot erase what
already left it), kept long enough and not longer, and out of reach of other users.

Forwarding is judged with :mod:`checks.log_forwarding` (rsyslog, syslog-ng, systemd-journal-upload, each
read with its own rules); retention with logrotate's and journald's own rules: logrotate applies the
global directives that come before a definition (an include reads the included file at that point),
and of ``daily``/``weekly``/``size`` the last one given wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import Field, model_validator

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.checks.log_forwarding import (
    FORWARDING_FACTS,
    LOG_DAEMONS,
    ForwardTarget,
    forwarding_targets,
    systemd_assignments,
)
from hds_compliance.facts.conftree import ConfigTree
from hds_compliance.facts.files import FileStat
from hds_compliance.facts.logging import ExposedLogFiles, JournaldConfig, LogrotateConfig

JOURNALD = JournaldConfig()
LOGROTATE = LogrotateConfig()
JOURNAL_DIR = FileStat("/var/log/journal")

_RANK = {"udp": 0, "tcp": 1, "relp": 1}
_NEED = {"any": 0, "reliable": 1, "tls": 2}


def _rank(target: ForwardTarget) -> int:
    if target.protected:
        return 2
    return 1 if target.transport in ("tls", "krb5") else _RANK.get(target.transport, 0)


class ForwardingParams(Params):
    transport: Literal["any", "reliable", "tls"] = Field(
        default="any",
        description="weakest accepted transport: any (UDP too), reliable (TCP/RELP), "
        "tls (a TLS driver AND the collector's certificate checked)",
    )


@check("logging.remote_forwarding_configured", params=ForwardingParams, facts=lambda p: FORWARDING_FACTS)
def logging_remote_forwarding_configured(p: ForwardingParams, ctx: Context) -> Outcome:
    """Logs are forwarded to a remote collector (rsyslog, syslog-ng or systemd-journal-upload config).

    With ``transport: tls`` only an encrypted channel whose peer certificate is checked counts: rsyslog's
    gtls/ossl driver in StreamDriverMode 1 with an x509 authentication mode, syslog-ng tls() with a
    trusted peer-verify, journal-upload over https without ``TrustedCertificateFile=all``.
    """
    targets, notes = forwarding_targets(ctx)
    tail = f" ({'; '.join(notes)})" if notes else ""
    if not targets:
        return failed(f"no remote log forwarding in rsyslog, syslog-ng or journal-upload configuration{tail}")
    good = [t for t in targets if not t.problem and _rank(t) >= _NEED[p.transport]]
    if not good:
        shown = "; ".join(t.describe() for t in targets)
        weaker = "a channel whose collector certificate is checked" if p.transport == "tls" else p.transport
        return failed(f"logs are forwarded only over a transport weaker than {weaker}: {shown}{tail}")
    return passed("logs forwarded: " + "; ".join(t.describe() for t in good) + tail)


@check("logging.forwarder_running", facts=lambda p: FORWARDING_FACTS)
def logging_forwarder_running(p: NoParams, ctx: Context) -> Outcome:
    """The daemon of every configured log forwarding runs (configured but stopped forwards nothing)."""
    targets, _ = forwarding_targets(ctx)
    if not targets:
        return not_applicable("no log forwarding is configured on this host")
    stopped = sorted({f"{t.tool} ({t.host})" for t in targets if not t.running})
    if stopped:
        return failed(f"forwarding configured but its daemon is not running: {', '.join(stopped)}")
    return passed("running: " + ", ".join(sorted({f"{t.tool} to {t.host}" for t in targets})))


# ---------------------------------------------------------------------------------------------- journald

_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
    "month": 2629800, "months": 2629800, "M": 2629800, "y": 31557600, "year": 31557600, "years": 31557600,
}  # fmt: skip


def timespan_days(value: str) -> float | None:
    """A systemd time span (``180d``, ``6month``, ``1y 2w``, bare seconds) in days; None if unreadable."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", value)
    if not parts or re.sub(r"[\d.\sA-Za-z]", "", value):
        return None
    total = 0.0
    for number, unit in parts:
        factor = _SPAN_UNITS.get(unit, _SPAN_UNITS.get(unit.lower()) if unit != "M" else None)
        if factor is None:
            return None
        total += float(number) * factor
    return total / 86400


def _journald_settings(tree: ConfigTree) -> dict[str, tuple[str, str]]:
    settings: dict[str, tuple[str, str]] = {}
    for key, value, where in systemd_assignments(tree, "journald.conf", "Journal"):
        settings[key] = (value, where)
    return settings


def _journald_running(ctx: Context) -> bool:
    return "systemd-journald" in ctx.get(LOG_DAEMONS)


@check("logging.journal_persistent", facts=lambda p: [LOG_DAEMONS, JOURNALD, JOURNAL_DIR])
def logging_journal_persistent(p: NoParams, ctx: Context) -> Outcome:
    """The systemd journal is kept on disk (Storage=persistent, or auto with /var/log/journal present)."""
    if not _journald_running(ctx):
        return not_applicable("systemd-journald is not running on this host")
    value, where = _journald_settings(ctx.get(JOURNALD)).get("Storage", ("auto", "systemd's default"))
    value = value or "auto"
    if value == "persistent":
        return passed(f"journald Storage=persistent ({where})")
    if value == "auto":
        directory = ctx.get(JOURNAL_DIR)
        if directory is not None and directory.file_type == "directory":
            return passed(f"journald Storage=auto ({where}) and /var/log/journal exists: journal on disk")
        return failed(f"journald Storage=auto ({where}) and no /var/log/journal: the journal stays in RAM")
    return failed(f"journald Storage={value} ({where}): the journal is lost at reboot")


class RetentionParams(Params):
    min_days: int | None = Field(default=None, ge=1, description="logs must be kept at least this many days")
    max_days: int | None = Field(default=None, ge=1, description="logs must be deleted after this many days")

    @model_validator(mode="after")
    def _one_bound(self) -> RetentionParams:
        if self.min_days is None and self.max_days is None:
            raise ValueError("give min_days, max_days or both")
        if self.min_days is not None and self.max_days is not None and self.min_days > self.max_days:
            raise ValueError("min_days is larger than max_days")
        return self


@check("logging.journal_retention", params=RetentionParams, facts=lambda p: [LOG_DAEMONS, JOURNALD])
def logging_journal_retention(p: RetentionParams, ctx: Context) -> Outcome:
    """journald keeps entries at least min_days (MaxRetentionSec not shorter) and deletes them by max_days."""
    if not _journald_running(ctx):
        return not_applicable("systemd-journald is not running on this host")
    settings = _journald_settings(ctx.get(JOURNALD))
    storage = settings.get("Storage", ("auto", ""))[0]
    if storage in ("volatile", "none"):
        return failed(
            f"journald Storage={storage} ({settings['Storage'][1]}): nothing is kept across reboots"
        )
    raw, where = settings.get("MaxRetentionSec", ("", "systemd's default"))
    days = timespan_days(raw) if raw else 0.0
    if days is None:
        return failed(f"MaxRetentionSec={raw} ({where}) is not a time span journald accepts")
    size, size_where = settings.get("SystemMaxUse", ("", ""))
    bound = (
        f"; SystemMaxUse={size} ({size_where}) deletes the oldest entries earlier if the journal fills it"
        if size
        else "; the journal's size cap (10% of the file system by default) deletes the oldest entries "
        "earlier if reached"
    )
    shown = f"MaxRetentionSec={raw} ({where})" if raw else f"no MaxRetentionSec ({where}): no age limit"
    if p.min_days is not None and days and days < p.min_days:
        return failed(f"{shown} deletes entries after {days:.0f} days, before {p.min_days} days")
    if p.max_days is not None and (not days or days > p.max_days):
        return failed(f"{shown}: entries are not deleted by {p.max_days} days")
    return passed(f"{shown}{bound if p.min_days is not None else ''}")


# --------------------------------------------------------------------------------------------- logrotate

_PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1.0, "weekly": 7.0, "monthly": 30.0, "yearly": 365.0}
_TABOO_EXT = (
    ",v", ".cfsaved", ".disabled", ".dpkg-bak", ".dpkg-del", ".dpkg-dist", ".dpkg-new", ".dpkg-old",
    ".rpmnew", ".rpmorig", ".rpmsave", ".swp", ".ucf-dist", ".ucf-new", ".ucf-old", "~",
)  # fmt: skip
_SCRIPTS = ("postrotate", "prerotate", "firstaction", "lastaction", "preremove")


@dataclass
class Rotation:
    """How logrotate rotates one set of log files."""

    patterns: tuple[str, ...]
    where: str
    criterion: str = "never"  # hourly, daily, weekly, monthly, yearly, or "size N"
    rotate: int = 0
    maxage: int | None = None
    maxsize: str = ""
    minsize: str = ""

    def kept_days(self) -> tuple[float | None, float | None, str]:
        """(at least, at most) days a line stays in rotated files, None when unbounded or unknown; and why."""
        period = _PERIOD_DAYS.get(self.criterion)
        if period is None:
            why = f"rotated by {self.criterion}: how long lines stay depends on the log volume"
            return None, None, why if self.criterion != "never" else "no rotation frequency"
        low: float | None = self.rotate * period if self.rotate >= 0 else None
        high: float | None = (self.rotate + 1) * period if self.rotate >= 0 else None
        if self.maxage is not None:
            low = self.maxage if low is None else min(low, self.maxage)
            high = self.maxage + period if high is None else min(high, self.maxage + period)
        return low, high, ""

    def describe(self) -> str:
        """e.g. ``weekly, rotate 4`` with maxage and size limits."""
        extra = [f"maxage {self.maxage}"] if self.maxage is not None else []
        extra += [f"maxsize {self.maxsize}"] if self.maxsize else []
        extra += [f"minsize {self.minsize}"] if self.minsize else []
        return ", ".join([self.criterion, f"rotate {self.rotate}", *extra]) + f" ({self.where})"


@dataclass
class _Logrotate:
    tree: ConfigTree
    defaults: dict[str, str] = field(default_factory=dict)
    rotations: list[Rotation] = field(default_factory=list)
    taboo: list[str] = field(default_factory=lambda: list(_TABOO_EXT))

    def feed(self, name: str, depth: int = 0) -> None:
        lines = self.tree.files[name].decode("utf-8", "replace").splitlines()
        patterns: list[str] = []
        block: dict[str, str] | None = None
        start, script = "", False
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if script:
                script = line != "endscript"
                continue
            if not line or line.startswith("#"):
                continue
            if block is None and (line[0] in "/\"'~" or "{" in line):
                head, brace, _ = line.partition("{")
                patterns += [w.strip("\"'") for w in head.split()]
                start = start or f"{name} line {number}"
                if brace:
                    block = dict(self.defaults)
                continue
            if line == "}":
                if block is not None:
                    self.rotations.append(self._rotation(tuple(patterns), start, block))
                patterns, block, start = [], None, ""
                continue
            words = line.split()
            key = words[0].lower()
            if key in _SCRIPTS:
                script = True
            elif key == "include" and block is None and len(words) > 1 and depth < 4:
                for included in self._included(words[1]):
                    self.feed(included, depth + 1)
            elif key == "tabooext" and len(words) > 1:
                items = [w.strip(",") for w in " ".join(words[1:]).lstrip("+").replace(",", " ").split()]
                self.taboo = self.taboo + items if words[1].startswith("+") else items
            else:
                self._directive(block if block is not None else self.defaults, key, words[1:])

    def _included(self, path: str) -> list[str]:
        inside = self.tree.under(path)
        if inside:  # a directory: its files in alphabetic order, without the taboo extensions
            return [p for p in inside if not p.endswith(tuple(self.taboo))]
        return [path] if path in self.tree.files else []

    @staticmethod
    def _directive(target: dict[str, str], key: str, args: list[str]) -> None:
        if key in _PERIOD_DAYS or key == "size":
            # daily/weekly/... and size exclude each other: the last one given wins
            target["criterion"] = key if key in _PERIOD_DAYS else f"size {args[0] if args else '?'}"
        elif key in ("rotate", "maxage", "maxsize", "minsize") and args:
            target[key] = args[0]

    @staticmethod
    def _rotation(patterns: tuple[str, ...], where: str, settings: dict[str, str]) -> Rotation:
        def number(key: str) -> int | None:
            value = settings.get(key)
            return int(value) if value is not None and re.fullmatch(r"-?\d+", value) else None

        return Rotation(
            patterns,
            where,
            settings.get("criterion", "never"),
            number("rotate") or 0,
            number("maxage"),
            settings.get("maxsize", ""),
            settings.get("minsize", ""),
        )


def logrotate_rotations(tree: ConfigTree) -> list[Rotation]:
    """Log file definitions of /etc/logrotate.conf and what it includes, in logrotate's reading order."""
    parser = _Logrotate(tree)
    if LOGROTATE.roots[0] in tree.files:
        parser.feed(LOGROTATE.roots[0])
    return parser.rotations


def rotation_of(rotations: list[Rotation], path: str) -> Rotation | None:
    """The definition logrotate applies to ``path`` (the first naming it: a later duplicate is an error)."""
    parts = path.split("/")
    for rotation in rotations:
        for pattern in rotation.patterns:
            other = pattern.split("/")
            if len(other) == len(parts) and all(fnmatchcase(a, b) for a, b in zip(parts, other, strict=True)):
                return rotation
    return None


SYSTEM_LOGS = ["/var/log/syslog", "/var/log/auth.log", "/var/log/messages", "/var/log/secure"]


class RotationParams(RetentionParams):
    files: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        default_factory=lambda: list(SYSTEM_LOGS),
        min_length=1,
        description="log files whose rotation is judged (those logrotate knows)",
    )


@check("logging.rotation_keeps_logs", params=RotationParams, facts=lambda p: [LOGROTATE])
def logging_rotation_keeps_logs(p: RotationParams, ctx: Context) -> Outcome:
    """logrotate keeps the system logs at least min_days (rotate x frequency, maxage), at most max_days."""
    rotations = logrotate_rotations(ctx.get(LOGROTATE))
    judged = [(path, r) for path in p.files if (r := rotation_of(rotations, path)) is not None]
    if not judged:
        return not_applicable(f"logrotate rotates none of {', '.join(p.files)}")
    problems, seen = [], []
    for path, rotation in judged:
        low, high, why = rotation.kept_days()
        seen.append(f"{path}: {rotation.describe()}")
        if p.min_days is not None:
            if low is None and why:
                problems.append(f"{path}: {why} ({rotation.where})")
            elif low is not None and low < p.min_days:
                problems.append(
                    f"{path} keeps about {low:.0f} days ({rotation.describe()}), less than {p.min_days}"
                )
            elif rotation.maxsize:
                problems.append(f"{path}: maxsize {rotation.maxsize} rotates earlier when the file grows")
        if p.max_days is not None:
            if high is None:
                problems.append(
                    f"{path}: {why or 'rotate -1 without maxage'}: lines are never deleted by age"
                )
            elif high > p.max_days:
                problems.append(
                    f"{path} keeps up to about {high:.0f} days ({rotation.describe()}), "
                    f"more than {p.max_days}"
                )
            elif rotation.minsize:
                problems.append(f"{path}: minsize {rotation.minsize} delays rotation of a small file")
    if problems:
        return failed("; ".join(problems))
    return passed("; ".join(seen))


# --------------------------------------------------------------------------------- files open to others


class ExposedParams(Params):
    directory: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._+@/-]*$")] = Field(
        default="/var/log", description="directory whose files are walked (its own file system only)"
    )
    exclude: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9._+@/-]*$")]] = Field(
        default_factory=list, description="paths skipped (files readable by design, e.g. /var/log/wtmp)"
    )


def _exposed_fact(p: ExposedParams) -> ExposedLogFiles:
    return ExposedLogFiles(":".join([p.directory, *p.exclude]))


@check(
    "logging.log_files_not_world_accessible",
    params=ExposedParams,
    facts=lambda p: [_exposed_fact(p)],
    tags=("fs-walk",),
)
def logging_log_files_not_world_accessible(p: ExposedParams, ctx: Context) -> Outcome:
    """No log file below the directory is readable or writable by others, no directory writable by them."""
    exposed = ctx.get(_exposed_fact(p))
    if exposed is None:
        return not_applicable(f"{p.directory} does not exist")
    if not exposed.count:
        skipped = f" (skipping {', '.join(p.exclude)})" if p.exclude else ""
        return passed(f"no file below {p.directory} is readable or writable by others{skipped}")
    shown = ", ".join(
        f"{e.path} ({e.mode:04o}{' directory' if e.file_type == 'd' else ''})" for e in exposed.entries
    )
    more = f" and {exposed.count - len(exposed.entries)} more" if exposed.count > len(exposed.entries) else ""
    return failed(f"{exposed.count} entries below {p.directory} open to others: {shown}{more}")
