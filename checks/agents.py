"""Agents that must run on every host: anti-malware (ISO 27001 A.8.7, PGSSI-S 4.5.3.x) with fresh
signatures, and monitoring (A.8.16). The agent names are parameters: each hosting team has its own EDR
and supervision stack.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from hds_compliance.check import Context, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts import Processes
from hds_compliance.facts.integrity import ClamDatabases, SignatureDatabase

PROCESSES = Processes()
CLAMAV = ClamDatabases()
_COMM = 15  # the kernel keeps the first 15 bytes of a process name (/proc/<pid>/comm)


class AgentParams(Params):
    agents: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:@+-]{1,64}$")]] = Field(
        min_length=1, description="process names (as /proc/<pid>/comm shows them) of which one must run"
    )


def _agent(kind: str, p: AgentParams, ctx: Context) -> Outcome:
    processes = ctx.get(PROCESSES)
    running = sorted({a for a in p.agents if a[:_COMM] in processes})
    if not running:
        return failed(f"none of {', '.join(p.agents)} is running")
    return passed(f"{kind} agent running: {', '.join(running)}")


@check("malware.agent_running", params=AgentParams, facts=lambda p: [PROCESSES])
def malware_agent_running(p: AgentParams, ctx: Context) -> Outcome:
    """An anti-malware agent runs (ClamAV's clamd or freshclam, or an EDR named in the parameters)."""
    return _agent("anti-malware", p, ctx)


@check("monitoring.agent_running", params=AgentParams, facts=lambda p: [PROCESSES])
def monitoring_agent_running(p: AgentParams, ctx: Context) -> Outcome:
    """A monitoring agent runs (Zabbix, Prometheus node exporter, Telegraf... named in the parameters)."""
    return _agent("monitoring", p, ctx)


def _built(db: SignatureDatabase) -> datetime | None:
    if db.built_epoch is not None:
        return datetime.fromtimestamp(db.built_epoch, UTC)
    try:  # "14 Nov 2024 09-29 +0000"
        return datetime.strptime(db.built, "%d %b %Y %H-%M %z")
    except ValueError:
        return None


class SignatureParams(Params):
    max_age_hours: int = Field(ge=1, description="oldest acceptable signature build, in hours")


@check("malware.signatures_fresh", params=SignatureParams, facts=lambda p: [CLAMAV])
def malware_signatures_fresh(p: SignatureParams, ctx: Context) -> Outcome:
    """ClamAV's daily signatures were built at most max_age_hours before the scan (the build date in the
    database header, not the file's date)."""
    databases = ctx.get(CLAMAV)
    if databases is None:
        return not_applicable("no ClamAV database directory: another agent's signatures are not judged here")
    daily = [db for db in databases if re.search(r"/daily\.c[vl]d$", db.path)]
    if not daily:
        return failed("no ClamAV daily signature database (daily.cvd or daily.cld): freshclam never ran")
    newest = max(daily, key=lambda db: _built(db) or datetime.min.replace(tzinfo=UTC))
    built = _built(newest)
    if built is None:
        return failed(f"{newest.path}: build time {newest.built!r} cannot be read")
    hours = (ctx.clock() - built).total_seconds() / 3600
    what = f"{newest.path} version {newest.version} built {built.strftime('%Y-%m-%d %H:%M UTC')}"
    if hours > p.max_age_hours:
        return failed(f"{what}, {hours:.0f} h before the scan; at most {p.max_age_hours} h")
    return passed(f"{what}, {hours:.0f} h before the scan")
