"""File integrity (AIDE) and anti-malware signatures (ClamAV), read from what their last runs left.

Nothing here runs AIDE or a scanner, or hashes anything: the facts read AIDE's configuration, the stat of
its database, the summary lines of its last report and the headers of ClamAV's signature databases.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, check_path, in_shell_sh, quote
from hds_compliance.facts.framed import FRAMES_SH, framed_output
from hds_compliance.model import Capture

DEBIAN_REPORT = "/var/log/aide/aide.log"  # written by Debian's dailyaidecheck whatever report_url says

# ----------------------------------------------------------------------------------------------- AIDE


@dataclass(frozen=True)
class AideFileState:
    """A file AIDE uses: when it was last written, its size, and for a report its summary lines."""

    path: str
    mtime: int
    size: int
    lines: list[str]


@dataclass(frozen=True)
class AideState:
    """AIDE's configuration file, its database and its reports (``None`` where a file is missing)."""

    config: str
    database: str
    database_file: AideFileState | None
    reports: dict[str, AideFileState | None]


_DEFINE_RE = re.compile(r"^@@define\s+(\S+)\s*(.*)$")
_SETTING_RE = re.compile(r"^(database_in|database|report_url)\s*=\s*(\S+)")


def aide_settings(text: str) -> tuple[str | None, list[str]]:
    """(database read by ``--check``, report files) from aide.conf, with ``@@define`` macros expanded."""
    defines: dict[str, str] = {}
    database: str | None = None
    reports: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        define = _DEFINE_RE.match(line)
        if define:
            defines[define.group(1)] = define.group(2).strip()
            continue
        setting = _SETTING_RE.match(line)
        if setting is None:
            continue
        value = re.sub(r"@@\{([^}]+)\}", lambda m: defines.get(m.group(1), m.group(0)), setting.group(2))
        if not value.startswith("file:"):
            continue  # stdout, stderr, syslog:..., fd:...
        path = value[len("file:") :]
        if setting.group(1) == "report_url":
            reports.append(path)
        elif setting.group(1) == "database_in" or database is None:
            database = path
    return database, reports


@dataclass(frozen=True)
class AideFile(Fact[AideFileState | None]):
    """Stat of a file AIDE writes (its database), ``None`` if missing. Never hashed, never opened."""

    kind: ClassVar[str] = "aide-db"

    def __post_init__(self) -> None:
        check_path(self.arg)

    def script(self) -> str:
        p = quote(self.arg)
        return f"[ -e {p} ] || exit {ABSENT}; stat -L -c '%Y %s' -- {p}"

    def parse(self, capture: Capture) -> AideFileState | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        return _stat_line(self, capture.stdout_text().splitlines(), [])


def _stat_line(fact: Fact[Any], lines: list[str], rest: list[str]) -> AideFileState:
    fields = lines[0].split() if lines else []
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        raise FactError(f"{fact.describe()}: unexpected stat output")
    return AideFileState(fact.arg, int(fields[0]), int(fields[1]), rest)


_REPORT_LINES = (
    r"^(Start|End) timestamp:|^AIDE (found|,)|^AIDE [0-9.]+ found|^### |"
    r"^ *(Total number of entries|Added entries|Removed entries|Changed entries):"
)


@dataclass(frozen=True)
class AideReport(Fact[AideFileState | None]):
    """An AIDE report: stat, and only its timestamp and summary lines (hashes never leave the host)."""

    kind: ClassVar[str] = "aide-report"

    def __post_init__(self) -> None:
        check_path(self.arg)

    def script(self) -> str:
        p = quote(self.arg)
        return (
            f"[ -e {p} ] || exit {ABSENT}; [ -r {p} ] || exit {UNREADABLE}; "
            f"stat -L -c '%Y %s' -- {p} || exit 1; "
            f"grep -a -E '{_REPORT_LINES}' -- {p} | tail -n 40; exit 0"
        )

    def parse(self, capture: Capture) -> AideFileState | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = capture.stdout_text().splitlines()
        return _stat_line(self, lines, [line.strip() for line in lines[1:]])


# Where Debian and RHEL keep AIDE's database: read in the first round, so that only a configuration naming
# other files costs a second one.
DEFAULT_DATABASES = ("/var/lib/aide/aide.db", "/var/lib/aide/aide.db.gz")


def _embedded(fact: Fact[Any]) -> str:
    """sh running ``fact``'s snippet in a subshell and framing its output as ``<kind>|<exit code>|<arg>``."""
    return f'o=$( ( {fact.script()} ) ); r=$?; part "{fact.kind}|$r|{fact.arg}" "$o"'


@dataclass(frozen=True)
class AideConfig(Fact[AideState | None]):
    """AIDE: its configuration (``/etc/aide/aide.conf`` on Debian, ``/etc/aide.conf`` on RHEL), the stat of
    its database and its reports' summary lines. The usual paths are read at once; files the configuration
    puts elsewhere are read in the second round. ``None`` where AIDE is not installed."""

    kind: ClassVar[str] = "aide-config"
    arg: str = ""

    def script(self) -> str:
        embedded = "; ".join(
            _embedded(fact) for fact in [*map(AideFile, DEFAULT_DATABASES), AideReport(DEBIAN_REPORT)]
        )
        return (
            f"command -v aide >/dev/null 2>&1 || exit {ABSENT}; {FRAMES_SH}; "
            f'for f in /etc/aide/aide.conf /etc/aide.conf; do file "$f"; done; {embedded}'
        )

    def _read(self, capture: Capture) -> tuple[str, str, list[str], dict[str, Capture]] | None:
        """(config file, database, reports, captures of the files read in the first round)."""
        frames = framed_output(self, capture)
        if frames is None:
            return None
        configs = [f for f in frames if f.name.startswith("/")]
        if not configs:
            raise FactError(f"{self.describe()}: aide is installed but has no configuration file")
        frame = configs[0]
        if frame.data is None:
            raise FactError(f"{self.describe()}: {frame.name} is not readable with the probe's privileges")
        database, reports = aide_settings(frame.text())
        if database is None:
            raise FactError(f"{self.describe()}: {frame.name} names no database_in file")
        read: dict[str, Capture] = {}
        for part in frames:
            kind, sep, rest = part.name.partition("|")
            code, _, arg = rest.partition("|")
            if sep and code.lstrip("-").isdigit():
                key = f"{kind}:{arg}"
                read[key] = Capture.from_bytes(
                    key, "(first round)", (part.data or b"") + b"\n", exit_code=int(code)
                )
        return frame.name, database, list(dict.fromkeys([*reports, DEBIAN_REPORT])), read

    @staticmethod
    def _files(database: str, reports: list[str]) -> list[Fact[Any]]:
        return [AideFile(database), *(AideReport(path) for path in reports)]

    def follow_ups(self, capture: Capture) -> list[Fact[Any]]:
        try:
            config = self._read(capture)
        except FactError:
            return []
        if config is None:
            return []
        _name, database, reports, read = config
        return [fact for fact in self._files(database, reports) if fact.key not in read]

    def parse(self, capture: Capture) -> AideState | None:
        return self.parse_with(capture, lambda _key: None)

    def parse_with(self, capture: Capture, lookup: Callable[[str], Capture | None]) -> AideState | None:
        config = self._read(capture)
        if config is None:
            return None
        name, database, reports, read = config
        values: dict[str, AideFileState | None] = {}
        for fact in self._files(database, reports):
            found = read.get(fact.key) or lookup(fact.key)
            if found is None:
                raise FactError(f"{self.describe()}: {fact.key} was not collected")
            if found.problem is not None or not found.complete:
                raise FactError(f"{fact.describe()}: {found.problem or 'incomplete capture'}")
            values[fact.arg] = fact.parse(found)
        return AideState(
            config=name,
            database=database,
            database_file=values[database],
            reports={path: values[path] for path in reports},
        )

    def describe(self) -> str:
        return "AIDE configuration"


# --------------------------------------------------------------------------------------------- ClamAV


@dataclass(frozen=True)
class SignatureDatabase:
    """A ClamAV database header (``ClamAV-VDB:<build time>:<version>:<signatures>:<level>:...``)."""

    path: str
    built: str
    version: int
    signatures: int
    built_epoch: int | None


@dataclass(frozen=True)
class ClamDatabases(Fact[list[SignatureDatabase] | None]):
    """Headers of ClamAV's signature databases (``*.cvd``, ``*.cld`` in ``DatabaseDirectory``); ``None``
    when the directory does not exist. Only the header fields that date the signatures are read."""

    kind: ClassVar[str] = "svc-clamav"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        # the last DatabaseDirectory line's first word (freshclam keeps the last value), by one program
        setting = (
            "/^[[:space:]]*DatabaseDirectory[[:space:]]/ { v = $0; "
            'sub(/^[[:space:]]*DatabaseDirectory[[:space:]]+/, "", v); sub(/[[:space:]].*/, "", v); d = v } '
            "END { print d }"
        )
        return in_shell_sh(
            "d c x f",
            'd=/var/lib/clamav; for c in /etc/clamav/freshclam.conf /etc/freshclam.conf; do [ -r "$c" ] || '
            f'continue; x=$(awk \'{setting}\' "$c"); [ -n "$x" ] && d=$x; break; done; '
            f'[ -d "$d" ] || return {ABSENT}; echo "dir $d"; for f in "$d"/*.cvd "$d"/*.cld; do '
            f'[ -f "$f" ] || continue; [ -r "$f" ] || return {UNREADABLE}; printf \'%s\\t\' "$f"; '
            'head -c 512 -- "$f" | tr -d \'\\000\\n\' | awk -F: \'{print $1":"$2":"$3":"$4":"$5":"$9}\'; '
            "done",
        )

    def parse(self, capture: Capture) -> list[SignatureDatabase] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = capture.stdout_text().splitlines()
        if not lines or not lines[0].startswith("dir "):
            raise FactError(f"{self.describe()}: unexpected output")
        out = []
        for line in lines[1:]:
            path, _, header = line.partition("\t")
            fields = header.split(":")
            if len(fields) < 6 or fields[0] != "ClamAV-VDB" or not fields[2].isdigit():
                raise FactError(f"{self.describe()}: {path} has no ClamAV-VDB header")
            stime = fields[5].strip()
            out.append(
                SignatureDatabase(
                    path=path,
                    built=fields[1],
                    version=int(fields[2]),
                    signatures=int(fields[3]) if fields[3].isdigit() else 0,
                    built_epoch=int(stime) if stime.isdigit() else None,
                )
            )
        return out

    def describe(self) -> str:
        return "ClamAV signature databases"
