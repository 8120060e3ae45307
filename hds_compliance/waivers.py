"""Waivers: a risk a person accepted, for a time, on failing results.

A waivers file (YAML)::

    waivers:
      - id: W-2026-014
        control: SSH-04               # the control, and optionally one of its checks
        check: sshd.max_auth_tries
        hosts: ["db-*", "legacy"]    # host names or groups, globs (default: every host)
        justification: the legacy client retries; replaced in Q1
        risk: medium                 # low, medium, high, critical
        approver: Jane Doe (RSSI)
        created: 2026-11-02          # UTC dates; the waiver holds from created to expires, both included
        expires: 2027-01-31
        ticket: SEC-481              # optional

A waived result keeps its real verdict (``fail``) and carries the waiver (:class:`WaiverMark`); while the
waiver holds it does not count for the gate, and JUnit shows it as skipped with the reason. An expired
waiver still marks the result, as expired: it fails the gate as before and says why. Only ``fail`` is
waived: an ``error`` (nothing was verified) always blocks. Dates are judged against the run's collection
time, never today's: re-evaluating next year gives the same verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hds_compliance.errors import InputError, Problem
from hds_compliance.model import HostRecord, Status, Verdict, Waiver, WaiverMark
from hds_compliance.yamlsrc import line_of, load_yaml, validation_problems

EXPIRING_DAYS = 30  # waivers that end within this many days of the run are listed in the summary


class WaiverFile(BaseModel):
    """The file's one key."""

    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(path: Path, controls: Iterable[str]) -> list[Waiver]:
    """A waivers file, validated: fields, dates, unique ids, controls of the catalogue (exit 2 with file,
    line and field otherwise)."""
    data = load_yaml(path)
    try:
        waivers = WaiverFile.model_validate(data if data is not None else {}).waivers
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), data, exc)) from exc
    known = set(controls)
    problems, seen = [], set()
    for i, waiver in enumerate(waivers):
        where = ("waivers", i)
        if waiver.id in seen:
            problems.append(
                Problem(str(path), line_of(data, (*where, "id")), f"waivers.{i}.id", "used twice")
            )
        seen.add(waiver.id)
        if waiver.control not in known:
            line = line_of(data, (*where, "control"))
            problems.append(
                Problem(str(path), line, f"waivers.{i}.control", f"unknown control {waiver.control!r}")
            )
    if problems:
        raise InputError(problems)
    return waivers


def collection_day(started_at: str | None) -> date | None:
    """The UTC date of the run's collection time (``None`` if the run does not say)."""
    if not started_at:
        return None
    return datetime.fromisoformat(started_at.replace("Z", "+00:00")).date()


def apply_waivers(
    verdicts: list[Verdict], waivers: list[Waiver], hosts: list[HostRecord], started_at: str | None
) -> list[Verdict]:
    """The verdicts, each failing one a waiver covers marked with it (the first in the file's order that
    holds on the collection day, else the first that covers it, as expired); any earlier mark is replaced."""
    day = collection_day(started_at)
    groups = {host.name: host.groups for host in hosts}
    out = []
    for verdict in verdicts:
        mark = None
        if verdict.status is Status.FAIL and waivers:
            covering = [w for w in waivers if w.covers(verdict, groups.get(verdict.host, ()))]
            holding = [w for w in covering if day is not None and w.holds_on(day)]
            if covering:
                chosen = (holding or covering)[0]
                mark = WaiverMark(
                    id=chosen.id,
                    approver=chosen.approver,
                    expires=chosen.expires.isoformat(),
                    holds=bool(holding),
                )
        if mark != verdict.waiver:
            verdict = verdict.model_copy(update={"waiver": mark})
        out.append(verdict)
    return out


def expiring(waivers: list[Waiver], started_at: str | None, days: int = EXPIRING_DAYS) -> list[Waiver]:
    """Waivers that hold on the collection day and end within ``days`` of it."""
    day = collection_day(started_at)
    if day is None:
        return []
    return [w for w in waivers if w.holds_on(day) and (w.expires - day).days <= days]
