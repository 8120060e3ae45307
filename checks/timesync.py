"""Clock synchronisation: timestamps in logs and audit trails are only evidence if the clock is right.

Works with chrony (Debian ``/etc/chrony/chrony.conf``, RHEL ``/etc/chrony.conf``), ntpd/ntpsec
(``/etc/ntp.conf``, ``/etc/ntpsec/ntp.conf``), OpenNTPD and systemd-timesyncd.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, passed
from hds_compliance.facts import Fact, FileContent, FilesMatching, Processes, TimeSyncStatus

STATUS = TimeSyncStatus()
PROCESSES = Processes()

CHRONY_DEBIAN = FileContent("/etc/chrony/chrony.conf")
CHRONY_RHEL = FileContent("/etc/chrony.conf")
CHRONY_CONFD = FilesMatching("/etc/chrony/conf.d/*.conf")
CHRONY_SOURCESD = FilesMatching("/etc/chrony/sources.d/*.sources")
NTP = FileContent("/etc/ntp.conf")
NTPSEC = FileContent("/etc/ntpsec/ntp.conf")
OPENNTPD_DEBIAN = FileContent("/etc/openntpd/ntpd.conf")
OPENNTPD = FileContent("/etc/ntpd.conf")
TIMESYNCD = FileContent("/etc/systemd/timesyncd.conf")
TIMESYNCD_D = FilesMatching("/etc/systemd/timesyncd.conf.d/*.conf")
CONFIGS: list[Fact[Any]] = [
    CHRONY_DEBIAN,
    CHRONY_RHEL,
    CHRONY_CONFD,
    CHRONY_SOURCESD,
    NTP,
    NTPSEC,
    OPENNTPD_DEBIAN,
    OPENNTPD,
    TIMESYNCD,
    TIMESYNCD_D,
]

# Process names as /proc/<pid>/comm shows them: the kernel keeps the first 15 bytes ("systemd-timesyn").
_DAEMONS = ["chronyd", "ntpd", "systemd-timesyncd", "openntpd"]


def _comm(name: str) -> str:
    return name[:15]


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


def _directives(data: bytes) -> list[list[str]]:
    out = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line[:1] in ("#", ";", "!", "%"):  # chrony accepts all four as comment leaders
            continue
        words = line.split("#", 1)[0].split()
        if words:
            out.append(words)
    return out


def _sources(data: bytes, keywords: tuple[str, ...]) -> list[str]:
    return [f"{w[0]} {w[1]}" for w in _directives(data) if w[0] in keywords and len(w) > 1]


def _chrony(ctx: Context) -> tuple[str, list[str], list[str]] | None:
    """(config path, sources, notes) of chrony, ``None`` if no chrony.conf exists."""
    for fact in (CHRONY_DEBIAN, CHRONY_RHEL):
        data = ctx.get(fact)
        if data is None:
            continue
        sources: list[str] = []
        notes: list[str] = []
        files = [(fact.arg, data)]
        for words in _directives(data):
            if words[0] in ("confdir", "include", "sourcedir"):
                for target in words[1:]:
                    if target.rstrip("/") == "/etc/chrony/conf.d" and words[0] == "confdir":
                        files += list(ctx.get(CHRONY_CONFD).items())
                    elif target.rstrip("/") == "/etc/chrony/sources.d" and words[0] == "sourcedir":
                        files += list(ctx.get(CHRONY_SOURCESD).items())
                    else:
                        notes.append(f"sources from {words[0]} {target} are not counted")
        for _name, content in files:
            sources += _sources(content, ("server", "pool", "peer", "refclock"))
        return fact.arg, sources, notes
    return None


def _ntp(ctx: Context) -> tuple[str, list[str], list[str]] | None:
    for fact in (NTPSEC, NTP):
        data = ctx.get(fact)
        if data is None:
            continue
        # 127.127.x.x are ntpd's reference-clock pseudo addresses (127.127.1.0 = the local clock).
        sources = [s for s in _sources(data, ("server", "pool", "peer", "refclock")) if " 127.127." not in s]
        return fact.arg, sources, []
    return None


def _openntpd(ctx: Context) -> tuple[str, list[str], list[str]] | None:
    for fact in (OPENNTPD_DEBIAN, OPENNTPD):
        data = ctx.get(fact)
        if data is not None:
            return fact.arg, _sources(data, ("server", "servers")), []
    return None


def _timesyncd(ctx: Context) -> tuple[str, list[str], list[str]] | None:
    main = ctx.get(TIMESYNCD)
    dropins = ctx.get(TIMESYNCD_D)
    if main is None and not dropins:
        return None
    servers: list[str] = []
    for _name, content in [("", main or b""), *dropins.items()]:
        section = ""
        for raw in content.decode("utf-8", "replace").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            key, sep, value = line.partition("=")
            if sep and section == "Time" and key.strip() == "NTP":
                servers = [] if not value.strip() else servers + value.split()
    note = ["FallbackNTP and servers learnt from DHCP/networkd are not counted"]
    where = TIMESYNCD.arg + (f" (+{len(dropins)} drop-ins)" if dropins else "")
    return where, [f"NTP={s}" for s in servers], note


class ServersParams(Params):
    min_sources: int = Field(
        default=1, ge=1, description="fewest server/pool/peer/refclock lines (a pool line counts once)"
    )


@check("time.servers_configured", params=ServersParams, facts=lambda p: [PROCESSES, *CONFIGS])
def time_servers_configured(p: ServersParams, ctx: Context) -> Outcome:
    """The configuration of the running time daemon names at least min_sources time sources."""
    processes = ctx.get(PROCESSES)
    readers = {
        "chronyd": [_chrony],
        "ntpd": [_ntp, _openntpd],  # ntpd (ntp, ntpsec) and OpenNTPD both show up as "ntpd"
        "openntpd": [_openntpd],
        "systemd-timesyn": [_timesyncd],
    }
    running = [name for name in readers if name in processes]
    if not running:
        return failed("no time daemon (chronyd, ntpd, systemd-timesyncd, openntpd) runs: no source is in use")
    found: list[str] = []
    for name in running:
        for reader in readers[name]:
            config = reader(ctx)
            if config is None:
                continue
            path, sources, notes = config
            extra = f"; {'; '.join(notes)}" if notes else ""
            if len(sources) >= p.min_sources:
                listed = ", ".join(sources)
                return passed(f"{name} uses {len(sources)} time source(s) from {path}: {listed}{extra}")
            found.append(f"{name}: {len(sources)} source(s) in {path}{extra}")
    if not found:
        return failed(f"{', '.join(running)} running but no configuration file of it was found")
    return failed(f"fewer than {p.min_sources} time source(s) configured: {'; '.join(found)}")
