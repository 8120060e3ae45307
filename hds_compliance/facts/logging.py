"""System logging: the configuration trees of rsyslog, syslog-ng, journald, systemd-journal-upload and
logrotate, the logging daemons that run, and log files others may read or write.

The trees are read whole (main file, drop-ins, included files) so that checks can apply each program's
own rules: include order, the last value winning, a drop-in of /etc overriding one of /usr/lib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, check_path, in_shell_sh, quote
from hds_compliance.facts.conftree import TreeFact
from hds_compliance.model import Capture

# Where systemd looks for a daemon's configuration and drop-ins, most important first.
SYSTEMD_CONF_DIRS = ("/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd")


def systemd_conf_roots(name: str) -> tuple[str, ...]:
    """Main files and drop-in globs of a systemd daemon configuration, e.g. ``journald.conf``."""
    return tuple(f"{d}/{name}" for d in SYSTEMD_CONF_DIRS) + tuple(
        f"{d}/{name}.d/*.conf" for d in SYSTEMD_CONF_DIRS
    )


# What rsyslog includes: the value of each "$IncludeConfig PATH" line, then the file="..." of each
# include(...) object, which may span lines (case-insensitive, in the order they come, file by file).
_RSYSLOG_INCLUDES = r"""
function flush(  t, l, o, m, v) {
  t = buf; l = tolower(buf); buf = ""
  while (match(l, /include[[:space:]]*\([^)]*\)/)) {
    o = substr(t, RSTART, RLENGTH); m = substr(l, RSTART, RLENGTH)
    t = substr(t, RSTART + RLENGTH); l = substr(l, RSTART + RLENGTH)
    while (match(m, /file[[:space:]]*=[[:space:]]*"[^"]*"/)) {
      v = substr(o, RSTART, RLENGTH); sub(/^[^"]*"/, "", v); print substr(v, 1, length(v) - 1)
      o = substr(o, RSTART + RLENGTH); m = substr(m, RSTART + RLENGTH)
    }
  }
}
FNR == 1 { flush() }
tolower($0) ~ /^[[:space:]]*\$includeconfig[[:space:]]/ {
  v = $0; sub(/^[[:space:]]*[^[:space:]]+[[:space:]]+/, "", v); sub(/[[:space:]].*/, "", v)
  if (v != "") print v
}
{ buf = buf $0 " " }
END { flush() }
""".strip()


@dataclass(frozen=True)
class RsyslogConfig(TreeFact):
    """/etc/rsyslog.conf, every file its ``$IncludeConfig`` or ``include(file=...)`` directives name, and
    /etc/rsyslog.d/*.conf even when nothing includes it (a drop-in rsyslog never reads is worth naming)."""

    kind: ClassVar[str] = "rsyslog-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = ("/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf")
    include: ClassVar[str] = _RSYSLOG_INCLUDES
    what: ClassVar[str] = "rsyslog configuration"


@dataclass(frozen=True)
class SyslogNgConfig(TreeFact):
    """syslog-ng.conf and the files its ``@include`` lines name (relative ones from /etc/syslog-ng)."""

    kind: ClassVar[str] = "log-syslog-ng-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = ("/etc/syslog-ng/syslog-ng.conf",)
    include: ClassVar[str] = (
        'BEGIN { FS = "\\"" } '
        '/^[[:space:]]*@include/ { p = $2; if (p !~ /^\\//) p = "/etc/syslog-ng/" p; print p }'
    )
    what: ClassVar[str] = "syslog-ng configuration"


@dataclass(frozen=True)
class JournaldConfig(TreeFact):
    """journald.conf and its drop-ins in /etc, /run, /usr/local/lib and /usr/lib."""

    kind: ClassVar[str] = "journal-journald-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = systemd_conf_roots("journald.conf")
    what: ClassVar[str] = "journald configuration"


@dataclass(frozen=True)
class JournalUploadConfig(TreeFact):
    """journal-upload.conf (systemd-journal-upload) and its drop-ins."""

    kind: ClassVar[str] = "journal-upload-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = systemd_conf_roots("journal-upload.conf")
    what: ClassVar[str] = "systemd-journal-upload configuration"


@dataclass(frozen=True)
class LogrotateConfig(TreeFact):
    """/etc/logrotate.conf and what its ``include`` lines name (a directory: every file in it)."""

    kind: ClassVar[str] = "log-logrotate-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = ("/etc/logrotate.conf",)
    include: ClassVar[str] = '$1 == "include" { print $2 }'
    what: ClassVar[str] = "logrotate configuration"


# Daemons whose presence decides whether a configured forwarding happens. journald and
# systemd-journal-upload share the comm "systemd-journal" (15 bytes): argv[0] tells them apart.
_LOG_DAEMONS = ("rsyslogd", "syslog-ng", "systemd-journal", "auditd")


@dataclass(frozen=True)
class LogDaemons(Fact[frozenset[str]]):
    """Logging daemons that run, by program name (argv[0] without its directory)."""

    kind: ClassVar[str] = "log-daemons"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        names = "|".join(_LOG_DAEMONS)
        return in_shell_sh(
            "f c a",
            "[ -r /proc/self/stat ] || { echo '/proc is not mounted' >&2; return 1; }; "
            f"for f in $(grep -l -x -E '{names}' /proc/[0-9]*/comm 2>/dev/null); do "
            'read -r c 2>/dev/null < "$f" || continue; '
            "a=$(tr '\\0' '\\n' 2>/dev/null < \"${f%/comm}/cmdline\" | head -n 1); "
            'printf \'%s %s\\n\' "$c" "$a"; done; return 0',
        )

    def parse(self, capture: Capture) -> frozenset[str]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        names = set()
        for line in capture.stdout_text().splitlines():
            comm, _, argv0 = line.partition(" ")
            program = argv0.strip().split()[0].rsplit("/", 1)[-1] if argv0.strip() else ""
            # A daemon may rewrite its argv[0] ("rsyslogd: main Q"); then its comm names it.
            names.add(program if program.startswith(comm) else comm)
        return frozenset(names)

    def describe(self) -> str:
        return "running logging daemons"


@dataclass(frozen=True)
class ExposedEntry:
    """A file or directory that others may read or write."""

    path: str
    mode: int
    uid: int
    gid: int
    file_type: str  # "f" or "d"


@dataclass(frozen=True)
class Exposed:
    """Entries of a walk that others may read (files) or write (files, directories): count and first 50."""

    count: int
    entries: tuple[ExposedEntry, ...]


LISTED = 50


@dataclass(frozen=True)
class ExposedLogFiles(Fact[Exposed | None]):
    """Files others may read or write, and directories others may write, below a directory.

    ``arg`` is the directory, optionally followed by ``:``-separated paths the walk skips. The walk stays
    on the directory's file system (``-xdev``), runs at the lowest CPU and I/O priority, and returns a
    count and at most 50 paths. ``None`` if the directory does not exist.
    """

    kind: ClassVar[str] = "log-exposed-files"

    def __post_init__(self) -> None:
        for path in self.arg.split(":"):
            check_path(path)

    def script(self) -> str:
        top, *skip = self.arg.split(":")
        prune = " -o ".join(f"-path {quote(p)}" for p in skip)
        pruning = f"\\( {prune} \\) -prune -o " if skip else ""
        return (
            f"[ -d {quote(top)} ] || exit {ABSENT}; "
            "io=''; command -v ionice >/dev/null 2>&1 && io='ionice -c3'; "
            f"{{ nice -n 19 $io find {quote(top)} -xdev {pruning}"
            "\\( \\( -type f \\( -perm -o+r -o -perm -o+w \\) \\) -o \\( -type d -perm -o+w \\) \\) "
            "-printf '%m %U %G %y %p\\n'; echo \"#rc $?\"; } | "
            f"awk '/^#rc / {{ rc = $2; next }} {{ n++; if (n <= {LISTED}) print }} "
            'END { print "#count " n + 0; print "#rc " rc }\''
        )

    def parse(self, capture: Capture) -> Exposed | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        entries: list[ExposedEntry] = []
        count = rc = None
        for line in capture.stdout_text().splitlines():
            if line.startswith("#count "):
                count = int(line.split()[1])
            elif line.startswith("#rc "):
                rc = line.split()[1] if len(line.split()) > 1 else ""
            else:
                try:
                    mode, uid, gid, kind, path = line.split(" ", 4)
                    entries.append(ExposedEntry(path, int(mode, 8), int(uid), int(gid), kind))
                except ValueError as exc:
                    raise FactError(f"{self.describe()}: unexpected line {line[:80]!r}") from exc
        if count is None or rc != "0":
            detail = capture.stderr.strip().splitlines()
            why = detail[-1] if detail else f"find exit status {rc}"
            raise FactError(f"{self.describe()}: the walk did not complete ({why})")
        return Exposed(count, tuple(entries))

    def describe(self) -> str:
        return f"files below {self.arg.split(':')[0]} open to others"
