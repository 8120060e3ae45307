"""Clock synchronisation: timestamps in logs and audit trails are only evidence if the clock is right, and
only comparable across hosts if every host follows the same sources.

The sources are those of the daemon that RUNS, read from its configuration as it reads it: chrony
(Debian ``/etc/chrony/chrony.conf``, RHEL ``/etc/chrony.conf``, plus ``confdir``, ``sourcedir`` and
``include``), ntpd/ntpsec (``includefile``), OpenNTPD, and systemd-timesyncd (``NTP=`` in the main file
and drop-ins, an empty ``NTP=`` resetting the list; without any, ``FallbackNTP=``). :func:`time_sources` is
public: the fleet check compares hosts with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, passed
from hds_compliance.checks.log_forwarding import glob_paths, systemd_assignments
from hds_compliance.facts import Fact, Processes, TimeSyncStatus
from hds_compliance.facts.conftree import ConfigTree
from hds_compliance.facts.timesync import TimeConfig

STATUS = TimeSyncStatus()
PROCESSES = Processes()
CONFIG = TimeConfig()
SOURCE_FACTS: list[Fact[Any]] = [PROCESSES, CONFIG]

# Process names as /proc/<pid>/comm shows them: the kernel keeps the first 15 bytes ("systemd-timesyn").
_DAEMONS = ["chronyd", "ntpd", "systemd-timesyncd", "openntpd"]
_CHRONY = ("/etc/chrony/chrony.conf", "/etc/chrony.conf")
_NTP = ("/etc/ntpsec/ntp.conf", "/etc/ntp.conf")
_OPENNTPD = ("/etc/openntpd/ntpd.conf", "/etc/ntpd.conf")
_SOURCE_WORDS = ("server", "pool", "peer", "refclock")


def _comm(name: str) -> str:
    return name[:15]


@dataclass(frozen=True)
class TimeSource:
    """A time source as configured: its directive, the name or address given, and where."""

    directive: str  # server, pool, peer, refclock, servers, NTP, FallbackNTP
    name: str
    where: str

    def __str__(self) -> str:
        return f"{self.directive} {self.name}"


@dataclass(frozen=True)
class DaemonSources:
    """The running time daemon, its configuration file, its sources and what could not be counted."""

    daemon: str
    config: str
    sources: tuple[TimeSource, ...]
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """The source names in lower case, without a trailing dot (what hosts are compared on)."""
        return frozenset(s.name.lower().rstrip(".") for s in self.sources)


@check("time.synchronized", facts=lambda p: [STATUS])
def time_synchronized(p: NoParams, ctx: Context) -> Outcome:
    """The system clock is synchronised now, as reported by timedatectl, chronyc or ntpq."""
    status = ctx.get(STATUS)
    if status is None:
        return failed("none of timedatectl, chronyc or ntpq is installed: no clock synchronisation to report")
    if not status.synchronized:
        return failed(f"the clock is not synchronised ({status.tool}: {status.detail})")
    return passed(f"the clock is synchronised ({status.tool}: {status.detail})")


class DaemonParams(Params):
    daemons: list[str] = Field(
        default_factory=lambda: list(_DAEMONS), min_length=1, description="process names that count"
    )


@check("time.sync_service_running", params=DaemonParams, facts=lambda p: [PROCESSES])
def time_sync_service_running(p: DaemonParams, ctx: Context) -> Outcome:
    """A time synchronisation daemon (chronyd, ntpd, systemd-timesyncd, openntpd) is running."""
    processes = ctx.get(PROCESSES)
    running = sorted({d for d in p.daemons if _comm(d) in processes})
    if not running:
        return failed(f"none of {', '.join(p.daemons)} is running ({len(processes)} processes seen)")
    return passed(f"{', '.join(running)} running")


@check("time.single_sync_daemon", facts=lambda p: [PROCESSES])
def time_single_sync_daemon(p: NoParams, ctx: Context) -> Outcome:
    """At most one time daemon runs: two daemons steering the same clock fight and make it jump."""
    processes = ctx.get(PROCESSES)
    running = sorted({d for d in _DAEMONS if _comm(d) in processes})
    if len(running) > 1:
        return failed(f"{' and '.join(running)} run together and both adjust the system clock")
    return passed(f"{running[0] if running else 'no time daemon'} alone adjusts the clock")


def _directives(data: bytes, path: str) -> list[tuple[list[str], str]]:
    out = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if line[:1] in ("#", ";", "!", "%"):  # chrony accepts all four as comment leaders
            continue
        words = line.split("#", 1)[0].split()
        if words:
            out.append((words, f"{path} line {number}"))
    return out


def _from_lines(data: bytes, path: str, words: tuple[str, ...]) -> list[TimeSource]:
    return [
        TimeSource(w[0], w[1], where) for w, where in _directives(data, path) if w[0] in words and len(w) > 1
    ]


def _chrony(tree: ConfigTree) -> DaemonSources | None:
    main = next((path for path in _CHRONY if path in tree.files), None)
    if main is None:
        return None
    files = [main]
    notes: list[str] = []
    confdirs: dict[str, str] = {}
    for words, _ in _directives(tree.files[main], main):
        if words[0] == "include" and len(words) > 1:
            files += glob_paths(words[1], list(tree.files))
        elif words[0] == "confdir":
            for directory in words[1:]:  # a name in an earlier directory hides the same name in a later one
                for path in tree.under(directory, ".conf"):
                    confdirs.setdefault(path.rsplit("/", 1)[1], path)
        elif words[0] == "sourcedir":
            for directory in words[1:]:
                files += list(tree.under(directory, ".sources"))
            if any(d.startswith("/run/") for d in words[1:]):
                notes.append(f"sources given by DHCP come from {', '.join(words[1:])} at run time")
    files += [confdirs[name] for name in sorted(confdirs)]
    sources = [s for path in files for s in _from_lines(tree.files[path], path, _SOURCE_WORDS)]
    return DaemonSources("chronyd", main, tuple(sources), tuple(notes))


def _ntp(tree: ConfigTree) -> DaemonSources | None:
    main = next((path for path in _NTP if path in tree.files), None)
    if main is None:
        return None
    files = [main] + [
        w[1]
        for w, _ in _directives(tree.files[main], main)
        if w[0] == "includefile" and len(w) > 1 and w[1] in tree.files
    ]
    sources = [s for path in files for s in _from_lines(tree.files[path], path, _SOURCE_WORDS)]
    # 127.127.1.x is ntpd's local clock driver: the host's own clock, not a source.
    return DaemonSources("ntpd", main, tuple(s for s in sources if not s.name.startswith("127.127.1.")))


def _openntpd(tree: ConfigTree) -> DaemonSources | None:
    main = next((path for path in _OPENNTPD if path in tree.files), None)
    if main is None:
        return None
    return DaemonSources("openntpd", main, tuple(_from_lines(tree.files[main], main, ("server", "servers"))))


def _timesyncd(tree: ConfigTree) -> DaemonSources:
    ntp: list[TimeSource] = []
    fallback: list[TimeSource] | None = None
    for key, value, where in systemd_assignments(tree, "timesyncd.conf", "Time"):
        names = [TimeSource(key, name, where) for name in value.split()]
        if key == "NTP":
            ntp = ntp + names if names else []
        elif key == "FallbackNTP":
            fallback = (fallback or []) + names if names else []
    notes = ["servers learnt from DHCP through systemd-networkd are not counted"]
    if ntp:
        return DaemonSources("systemd-timesyncd", "timesyncd.conf", tuple(ntp), tuple(notes))
    if fallback is not None:
        notes.append("no NTP=: the FallbackNTP= servers are used")
        return DaemonSources("systemd-timesyncd", "timesyncd.conf", tuple(fallback), tuple(notes))
    notes.append("no NTP= and no FallbackNTP=: the servers compiled into systemd-timesyncd are used")
    return DaemonSources("systemd-timesyncd", "timesyncd.conf", (), tuple(notes))


def time_sources(ctx: Context) -> DaemonSources | str:
    """Sources of the running time daemon, or why there are none (the caller declares SOURCE_FACTS)."""
    processes = ctx.get(PROCESSES)
    tree = ctx.get(CONFIG)
    readers: dict[str, list[Callable[[ConfigTree], DaemonSources | None]]] = {
        "chronyd": [_chrony],
        "ntpd": [_ntp, _openntpd],  # ntpd (ntp, ntpsec) and OpenNTPD both show up as "ntpd"
        "openntpd": [_openntpd],
        "systemd-timesyn": [_timesyncd],
    }
    running = [name for name in readers if name in processes]
    if not running:
        return "no time daemon (chronyd, ntpd, systemd-timesyncd, openntpd) runs: no source is in use"
    for name in running:
        for reader in readers[name]:
            found = reader(tree)
            if found is not None:
                return found
    return f"{', '.join(running)} running but no configuration file of it was found"


class ServersParams(Params):
    min_sources: int = Field(
        default=1, ge=1, description="fewest server/pool/peer/refclock lines (a pool line counts once)"
    )


@check("time.servers_configured", params=ServersParams, facts=lambda p: SOURCE_FACTS)
def time_servers_configured(p: ServersParams, ctx: Context) -> Outcome:
    """The configuration of the running time daemon names at least min_sources time sources."""
    found = time_sources(ctx)
    if isinstance(found, str):
        return failed(found)
    extra = f"; {'; '.join(found.notes)}" if found.notes else ""
    listed = ", ".join(str(s) for s in found.sources)
    if len(found.sources) < p.min_sources:
        return failed(
            f"{found.daemon} uses {len(found.sources)} time source(s) from {found.config}, "
            f"fewer than {p.min_sources}{': ' + listed if listed else ''}{extra}"
        )
    return passed(
        f"{found.daemon} uses {len(found.sources)} time source(s) from {found.config}: {listed}{extra}"
    )
