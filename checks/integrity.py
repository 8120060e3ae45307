"""File integrity with AIDE (ANSSI-BP-028 R76, ISO 27001 A.8.9): a database exists, a schedule runs the
check, and the last report is recent. Judged from the schedule and the last report, never by running AIDE.

A schedule counts only if it fires: an enabled timer where systemd is the running init, or a cron job with a
cron daemon running. Cron jobs are read as cron and run-parts read them: comments and non-executable or
badly named run-parts scripts do not run, and Debian's ``/etc/cron.daily/aide`` steps aside when systemd runs
(its ``dailyaidecheck.timer`` takes over).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    passed,
)
from hds_compliance.checks.scheduling import CRON, PROCESSES, schedules
from hds_compliance.facts.integrity import AideConfig, AideFileState
from hds_compliance.facts.services import SystemdUnit

AIDE = AideConfig()
_NOT_INSTALLED = "AIDE is not installed"
_AIDE_RUN = re.compile(r"(\baide\b[^\n]*(\s--check\b|\s-C\b|\s--update\b|\s-u\b))|dailyaidecheck")


class ScheduleParams(Params):
    timers: list[str] = Field(
        default_factory=lambda: ["dailyaidecheck.timer", "aidecheck.timer"],
        description="systemd timers that run an AIDE check (Debian ships dailyaidecheck.timer)",
    )


def _timers(p: ScheduleParams) -> list[SystemdUnit]:
    return [SystemdUnit(name) for name in p.timers]


@check(
    "integrity.aide_check_scheduled",
    params=ScheduleParams,
    facts=lambda p: [AIDE, CRON, PROCESSES, *_timers(p)],
)
def aide_check_scheduled(p: ScheduleParams, ctx: Context) -> Outcome:
    """A schedule that actually fires runs AIDE's check: an enabled timer under systemd, or a cron job
    with a cron daemon running."""
    if ctx.get(AIDE) is None:
        return failed(_NOT_INSTALLED)
    firing, idle, _systemd = schedules(ctx, _timers(p), _AIDE_RUN)
    if firing:
        return passed(f"AIDE check scheduled: {'; '.join(firing)}")
    why = f" ({'; '.join(idle)})" if idle else ""
    return failed(f"nothing schedules an AIDE check that would run{why}")


@check("integrity.aide_database_present", facts=lambda p: [AIDE])
def aide_database_present(p: NoParams, ctx: Context) -> Outcome:
    """AIDE's reference database (database_in of aide.conf) exists and is not empty."""
    state = ctx.get(AIDE)
    if state is None:
        return failed(_NOT_INSTALLED)
    db = state.database_file
    if db is None:
        return failed(
            f"{state.database} (database_in of {state.config}) does not exist: run aideinit / aide --init"
        )
    if db.size == 0:
        return failed(f"{state.database} is empty")
    when = datetime.fromtimestamp(db.mtime, UTC).strftime("%Y-%m-%d")
    return passed(f"{state.database} exists ({db.size} bytes, written {when}), named by {state.config}")


_END_RE = re.compile(r"^End timestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})")


def _last_run(report: AideFileState) -> datetime | None:
    stamps = [m for m in (_END_RE.match(line) for line in report.lines) if m]
    if not stamps:
        return None
    return datetime.strptime(f"{stamps[-1].group(1)} {stamps[-1].group(2)}", "%Y-%m-%d %H:%M:%S %z")


class ReportParams(Params):
    max_age_hours: int = Field(ge=1, description="oldest acceptable completed AIDE run, in hours")


@check("integrity.aide_report_recent", params=ReportParams, facts=lambda p: [AIDE])
def aide_report_recent(p: ReportParams, ctx: Context) -> Outcome:
    """AIDE's last report records a completed check (End timestamp) at most max_age_hours before the scan."""
    state = ctx.get(AIDE)
    if state is None:
        return failed(_NOT_INSTALLED)
    runs = []
    for path, report in state.reports.items():
        if report is None:
            continue
        finished = _last_run(report)
        if finished is not None:
            findings = next(
                (line for line in report.lines if line.startswith("AIDE") and "found" in line), ""
            )
            runs.append((finished, path, findings))
    if not runs:
        present = [path for path, report in state.reports.items() if report is not None]
        if present:
            return failed(f"no completed AIDE run in {', '.join(present)} (no End timestamp)")
        return failed(f"no AIDE report found ({', '.join(state.reports)})")
    finished, path, findings = max(runs)
    hours = (ctx.clock() - finished).total_seconds() / 3600
    if hours < -1:
        raise FactUnavailable(
            f"{path} records a run in the future ({finished.isoformat()}): the clocks disagree"
        )
    stamp = finished.isoformat(sep=" ")
    result = f" ({findings.rstrip('!')})" if findings else ""
    if hours > p.max_age_hours:
        return failed(
            f"last completed AIDE run {stamp}, {hours:.0f} h before the scan, in {path}{result}; "
            f"at most {p.max_age_hours} h"
        )
    return passed(f"last completed AIDE run {stamp}, {hours:.0f} h before the scan, in {path}{result}")
