"""When a job really runs: enabled timers under a running systemd, or cron jobs with a cron daemon.

Cron is read as cron and run-parts read it: comment lines do not run, run-parts skips scripts without an
execute bit or with a dot in their name, and Debian's cron.daily scripts for jobs that systemd timers also
run (``aide``, ``apt-compat``) exit at once when ``/run/systemd/system`` exists.
"""

from __future__ import annotations

import re

from hds_compliance.check import Context, FactUnavailable, contains_redaction
from hds_compliance.facts import Processes
from hds_compliance.facts.schedule import RUN_PARTS, CronEntry, CronFiles
from hds_compliance.facts.services import SystemdUnit

CRON = CronFiles()
PROCESSES = Processes()
_CRON_DAEMONS = ("cron", "crond")
# run-parts runs only names made of letters, digits, '_' and '-' (Debian; RHEL's skips backup suffixes).
_RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _active_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _voided_under_systemd(text: str) -> bool:
    """Debian's cron.daily/aide (and apt-compat) exit at once when /run/systemd/system exists."""
    return "/run/systemd/system" in text and re.search(r"\bexit\b", text) is not None


def cron_jobs(entries: dict[str, CronEntry], pattern: re.Pattern[str], systemd: bool) -> list[str]:
    """Where cron runs something matching ``pattern``: table lines and run-parts scripts that would run."""
    found = []
    for path, entry in sorted(entries.items()):
        text = (entry.content or b"").decode("utf-8", "replace")
        if entry.file_type != "regular file" or not text:
            continue
        folder, _, name = path.rpartition("/")
        if folder in RUN_PARTS:
            runs = entry.executable and _RUN_PARTS_NAME.match(name) is not None
            matched = runs and any(pattern.search(line) for line in _active_lines(text))
            if matched and contains_redaction(text):
                raise FactUnavailable(f"{path} runs the job but part of it was redacted: it cannot be judged")
            if matched and not (systemd and _voided_under_systemd(text)):
                found.append(path)
            continue
        if folder in ("/etc/cron.d",) and _RUN_PARTS_NAME.match(name) is None:
            continue  # cron skips /etc/cron.d files with dots in their names (Debian) or backup names
        for line in _active_lines(text):
            if pattern.search(line):
                if contains_redaction(line):
                    raise FactUnavailable(
                        f"{path}: the line that runs the job was redacted: it cannot be judged"
                    )
                found.append(f"{path}: {line.strip()}")
    return found


def schedules(
    ctx: Context, timers: list[SystemdUnit], pattern: re.Pattern[str]
) -> tuple[list[str], list[str], bool]:
    """(what fires, what would not fire and why, whether systemd runs) for a job matching ``pattern``."""
    states = [(fact.arg, ctx.get(fact)) for fact in timers]
    systemd = any(state is not None and state.booted for _name, state in states)
    firing, idle = [], []
    for name, state in states:
        if state is None or state.enabled == "not-found":
            continue
        if state.will_start and systemd:
            firing.append(f"{name} ({state.enabled}, {state.active})")
        elif state.will_start:
            idle.append(f"{name} is enabled but systemd is not running here")
        else:
            idle.append(f"{name} is {state.enabled}")
    # Other jobs may hold secrets the scan redacted: only the lines read here must be intact.
    jobs = cron_jobs(ctx.get(CRON, redacted_ok=True), pattern, systemd)
    daemons = ctx.get(PROCESSES) & set(_CRON_DAEMONS)
    if jobs and daemons:
        firing += jobs
    elif jobs:
        idle.append(f"cron jobs ({'; '.join(jobs)}) but no cron daemon runs")
    return firing, idle, systemd
