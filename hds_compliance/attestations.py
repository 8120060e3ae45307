"""Attestations: what a person states, with documents, for controls no check can prove.

An attestations file (YAML)::

    attestations:
      - id: A-2026-003
        control: GOV-01                # a control without checks (a document, a contract, a record)
        statement: the French SoA v4 was approved by the ISMS committee
        status: satisfied              # or not_satisfied
        attested_by: Jean Martin (RSSI)
        date: 2026-03-02               # UTC dates; it holds from date to valid_until, both included
        valid_until: 2027-03-01        # default: date + the control's validity_days
        hosts: ["*"]                   # host names or groups, globs (default: every host)
        documents: [docs/soa-fr-v4.pdf]   # paths relative to the file; their SHA-256 is recorded

On the collection day, the ``not_reviewed`` verdict of such a control becomes ``pass`` (satisfied) or
``fail`` (not satisfied), saying who attested what and when, and carries the attestation. One that does
not hold that day (expired, or dated later) leaves the control ``not_reviewed`` and says so. Documents
are hashed when the file is read: a missing document is invalid input; bundles keep the documents (or,
with ``--no-documents``, their digests only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from hds_compliance.catalog import Catalog
from hds_compliance.errors import InputError, Problem
from hds_compliance.model import Attestation, AttestationMark, HostRecord, Status, Verdict
from hds_compliance.waivers import collection_day
from hds_compliance.yamlsrc import line_of, load_yaml, validation_problems

_DATE = TypeAdapter(date)


class _Entry(BaseModel):
    """An attestation as the file states it: documents by path, validity optional."""

    model_config = ConfigDict(extra="forbid")

    id: str
    control: str
    statement: str
    status: str
    attested_by: str
    date: Any
    valid_until: Any = None
    hosts: list[str] = Field(default_factory=lambda: ["*"])
    documents: list[str] = Field(default_factory=list)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attestations: list[_Entry] = Field(default_factory=list)


def load_attestations(path: Path, catalog: Catalog) -> list[Attestation]:
    """An attestations file, validated (fields, dates, unique ids, controls without checks) and its
    documents hashed; exit 2 with file, line and field otherwise."""
    data = load_yaml(path)
    try:
        entries = _File.model_validate(data if data is not None else {}).attestations
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), data, exc)) from exc
    controls = {c.id: c for c in catalog.controls}
    problems: list[Problem] = []
    out: list[Attestation] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):

        def problem(name: str, message: str, i: int = i) -> Problem:
            return Problem(
                str(path), line_of(data, ("attestations", i, name)), f"attestations.{i}.{name}", message
            )

        control = controls.get(entry.control)
        if control is None:
            problems.append(problem("control", f"unknown control {entry.control!r}"))
            continue
        if control.checks:
            problems.append(problem("control", f"{control.id} is judged by its checks, not attested"))
            continue
        if entry.id in seen:
            problems.append(problem("id", "used twice"))
        seen.add(entry.id)
        documents, missing = _documents(path.parent, entry.documents)
        problems += [problem("documents", f"cannot read {name}") for name in missing]
        fields = entry.model_dump() | {"documents": documents}
        if entry.valid_until is None and control.attestation is not None:
            try:  # the control's validity from the attestation's date (a wrong date is reported below)
                start = _DATE.validate_python(entry.date)
                fields["valid_until"] = start + timedelta(days=control.attestation.validity_days)
            except ValidationError:
                pass
        try:
            attestation = Attestation.model_validate(fields)
        except ValidationError as exc:
            for err in exc.errors():
                where = ("attestations", i, *err["loc"])
                field = ".".join(str(part) for part in where)
                problems.append(Problem(str(path), line_of(data, where), field, err["msg"]))
            continue
        if attestation.valid_until < attestation.date:
            problems.append(problem("valid_until", "is before date"))
        out.append(attestation)
    if problems:
        raise InputError(problems)
    return out


def _documents(base: Path, names: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each document's path, SHA-256 and size; the ones that cannot be read."""
    found, missing = [], []
    for name in names:
        try:
            data = (base / name).read_bytes()
        except OSError:
            missing.append(name)
            continue
        found.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    return found, missing


def apply_attestations(
    verdicts: list[Verdict], attestations: list[Attestation], hosts: list[HostRecord], started_at: str | None
) -> list[Verdict]:
    """The verdicts, each ``not_reviewed`` one of a control without checks that an attestation covers judged
    from it (the first in the file's order that holds on the collection day, else the first that covers it,
    which then says why it does not hold)."""
    if not attestations:
        return verdicts
    day = collection_day(started_at)
    groups = {host.name: host.groups for host in hosts}
    out = []
    for verdict in verdicts:
        if verdict.check is None and verdict.status in (Status.NOT_REVIEWED, Status.PASS, Status.FAIL):
            covering = [a for a in attestations if a.covers(verdict, groups.get(verdict.host, ()))]
            if covering:
                holding = [a for a in covering if day is not None and a.holds_on(day)]
                verdict = _judged(verdict, (holding or covering)[0], day)
        out.append(verdict)
    return out


def _judged(verdict: Verdict, a: Attestation, day: date | None) -> Verdict:
    holds = day is not None and a.holds_on(day)
    mark = AttestationMark(
        id=a.id, attested_by=a.attested_by, valid_until=a.valid_until.isoformat(), holds=holds
    )
    documents = "; documents: " + ", ".join(f"{d.path} (sha256 {d.sha256[:12]})" for d in a.documents)
    said = f"{a.statement}{documents if a.documents else ''}"
    if holds:
        status = Status.PASS if a.status == "satisfied" else Status.FAIL
        state = a.status.replace("_", " ")
        message = f"attested {state} by {a.attested_by} on {a.date}, valid until {a.valid_until}: {said}"
    else:
        status = Status.NOT_REVIEWED
        expired = day is not None and day > a.valid_until
        when = f"it expired on {a.valid_until}" if expired else f"it is dated {a.date}"
        message = f"attestation {a.id} by {a.attested_by} does not hold on the run's day ({when}): {said}"
    return verdict.model_copy(update={"status": status, "message": message, "attestation": mark})
