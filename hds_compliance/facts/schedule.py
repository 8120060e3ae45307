"""Scheduled jobs: cron's tables and run-parts directories, with their permissions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, in_shell_sh
from hds_compliance.facts.reads import READS_SH, parse_listing
from hds_compliance.model import Capture

RUN_PARTS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly")
TABLE_DIRS = ("/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron")
TABLES = ("/etc/crontab", "/etc/anacrontab")
ACCESS = ("/etc/cron.allow", "/etc/cron.deny")


@dataclass(frozen=True)
class CronEntry:
    """A cron path: mode, owner, type (``regular file``, ``directory``...), and content for files."""

    path: str
    mode: int
    uid: int
    gid: int
    file_type: str
    content: bytes | None  # None for directories and files the probe could not read

    @property
    def executable(self) -> bool:
        """Whether run-parts would run it (it runs only files with an execute bit)."""
        return bool(self.mode & 0o111)


@dataclass(frozen=True)
class CronFiles(Fact[dict[str, CronEntry]]):
    """Every cron table and run-parts script, with stat and content: ``/etc/crontab``, ``/etc/cron.d``,
    ``/etc/cron.{hourly,daily,weekly,monthly}``, ``/etc/anacrontab``, the user crontab spools (Debian
    ``/var/spool/cron/crontabs``, RHEL ``/var/spool/cron``), ``cron.allow``, ``cron.deny``. One stat for
    the metadata; the contents by one more stat and one head (a redaction inside one file leaves the
    others readable: see :mod:`hds_compliance.facts.reads`)."""

    kind: ClassVar[str] = "cron-files"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        dirs = " ".join([*TABLE_DIRS, *RUN_PARTS])
        files = " ".join([*TABLES, *ACCESS])
        globs = " ".join(f"{d}/*" for d in [*TABLE_DIRS, *RUN_PARTS])
        return f"{READS_SH}; " + in_shell_sh(
            "p s n",
            f"set --; for p in {files} {dirs} {globs}; do "
            '[ -e "$p" ] && set -- "$@" "$p"; done; '
            "s=; [ $# -gt 0 ] && { s=$(stat -c '%a %u %g %F|%n' -- \"$@\") || return 1; }; "
            'rec L "$s"; '
            # The contents of the regular files the probe may read, by ONE stat and ONE head.
            'n=$#; for p do [ -f "$p" ] && [ -r "$p" ] && set -- "$@" "$p"; done; shift "$n"; rd %s "$@"',
        )

    def parse(self, capture: Capture) -> dict[str, CronEntry]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        listing = parse_listing(capture, self.describe(), "L")
        stats = listing.named("L")
        if len(stats) != 1:
            raise FactError(f"{self.describe()}: no stat output")
        contents = {f.path: f.data for f in listing.files}
        entries: dict[str, CronEntry] = {}
        for line in stats[0].splitlines():
            meta, sep, path = line.partition("|")
            fields = meta.split(" ", 3)
            if not sep or len(fields) != 4:
                raise FactError(f"{self.describe()}: unexpected stat line {line!r}")
            entries[path] = CronEntry(
                path=path,
                mode=int(fields[0], 8),
                uid=int(fields[1]),
                gid=int(fields[2]),
                file_type=fields[3],
                content=contents.get(path),
            )
        return entries

    def describe(self) -> str:
        return "cron tables and scripts"
