"""Data that flows between the stages: captures (collect → evaluate), verdicts and results (→ report).

Everything here is a pydantic model so results and evidence can be written and read back exactly.
"""

from __future__ import annotations

import base64
import datetime as _dt
import fnmatch
import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import date
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, field_serializer, model_validator

# 3: a host record names its captures' commands by SHA-256, in a table of its own (``HostRecord.commands``)
SCHEMA_VERSION = 3

K = TypeVar("K")
T = TypeVar("T")

# Every redaction leaves "[REDACTED-<kind>...]" where the secret was: one word, no blank, comma or quote, so
# the text around it keeps its grammar, and a check can tell when what it parses was altered.
REDACTION_MARK = "[REDACTED-"


def _none(value: object) -> bool:
    return value is None


def _empty(value: object) -> bool:
    return not value


class Status(StrEnum):
    """Outcome of one check on one host."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    NOT_REVIEWED = "not_reviewed"


class Severity(StrEnum):
    """Severity of a control; order matters for the gate."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return list(Severity).index(self)


class Capture(BaseModel):
    """Raw result of one probe section: the snippet, what it printed and its exit code.

    ``stdout`` holds text when the output is valid UTF-8, base64 otherwise (``stdout_encoding``), so
    any bytes a host returns survive the round trip to JSON and back.
    """

    model_config = ConfigDict(extra="forbid")

    fact: str
    command: str
    exit_code: int | None = None
    stdout: str = ""
    stdout_encoding: Literal["text", "base64"] = "text"
    stderr: str = ""
    truncated: bool = False
    complete: bool = True
    problem: str | None = Field(default=None, description="why the section is unusable, if it is")
    redactions: list[str] = Field(default_factory=list, description="kinds of secrets removed")

    @classmethod
    def from_bytes(cls, fact: str, command: str, stdout: bytes, **kwargs: Any) -> Capture:
        """Build a capture from raw bytes, choosing the text or base64 form.

        Built without validation (the probe's parser and the redaction, its callers, hand it values of the
        types it holds, which mypy checks): a scan makes one per fact and host, and a validated model holds
        a set of its own beside every instance, a fleet's worth of memory.
        """
        try:
            text, encoding = stdout.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(stdout).decode("ascii"), "base64"
        fields = {"fact": fact, "command": command, "stdout": text, "stdout_encoding": encoding, **kwargs}
        unknown = set(fields) - _CAPTURE_FIELDS
        if unknown:
            raise TypeError(f"not fields of a capture: {sorted(unknown)}")
        return cls.model_construct(
            _fields_set=_CAPTURE_FIELDS, **{**_CAPTURE_DEFAULTS, "redactions": [], **fields}
        )

    @field_serializer("command")
    def _command_on_disk(self, text: str, info: SerializationInfo) -> str:
        # Written in a host record (see HostRecord.commands): its name, the text going to the record's table.
        table = info.context.get(COMMANDS) if isinstance(info.context, dict) else None
        if table is None:
            return text
        ref = command_ref(text)
        table[ref] = text
        return ref

    def stdout_bytes(self) -> bytes:
        """The section's stdout exactly as the host printed it (after redaction)."""
        if self.stdout_encoding == "base64":
            return base64.b64decode(self.stdout)
        return self.stdout.encode("utf-8")

    def stdout_text(self) -> str:
        """The stdout as text; bytes that are not UTF-8 become U+FFFD."""
        return self.stdout_bytes().decode("utf-8", "replace")


class BackupRepository(BaseModel):
    """A backup repository a ``backup`` host holds, as the inventory declares it (host data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: Literal["restic", "borg"]
    repository: str = Field(min_length=1, description="path or URL of the repository, as the tool takes it")
    password_file: str | None = Field(
        default=None, description="file on the backup host holding the repository password (read by the tool)"
    )


class Recent(OrderedDict[K, T]):
    """A mapping that keeps its ``size`` most recently used entries only (read with ``[]`` or written):
    the caches shared by hosts built alike, bounded so that a fleet of hosts that differ holds no more."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __getitem__(self, key: K) -> T:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: T) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class PerCapture(Generic[T]):
    """A value computed from a capture, remembered for that capture object (the ``size`` to ``2 * size``
    most recently used).

    Captures are never changed once built, and hosts built alike share capture objects (the probe's parser
    gives the same object for the same output): their redaction or digest is then computed once per run.
    Called for every capture a check reads (hundreds per host), it keeps two plain dicts, the current one
    and the one before, instead of an ordered LRU: a look-up is then a dict's own, with nothing to reorder.
    """

    def __init__(self, compute: Callable[[Capture], T], size: int = 512) -> None:
        self.compute = compute
        self.size = size
        self._now: dict[int, tuple[Capture, T]] = {}
        self._before: dict[int, tuple[Capture, T]] = {}

    def __call__(self, capture: Capture) -> T:
        key = id(capture)
        # an entry holds its capture: the id is not reused while the entry is there
        entry = self._now.get(key)
        if entry is not None and entry[0] is capture:
            return entry[1]
        entry = self._before.get(key)
        if entry is None or entry[0] is not capture:
            entry = (capture, self.compute(capture))
        if len(self._now) >= self.size:  # the older half goes: what was used since is in the newer one
            self._before, self._now = self._now, {}
        self._now[key] = entry
        return entry[1]


COMMANDS = "commands"  # the serialization context's key for the table a host record's captures fill
_COMMAND_REF = re.compile(r"sha256:[0-9a-f]{64}")
# command text -> its name, for the texts named last (each hashed once; hosts whose commands differ, with
# their own paths in them, do not grow it)
_REFS: Recent[str, str] = Recent(1024)


def command_ref(text: str) -> str:
    """The name of a command in a host record's table: ``sha256:`` and the hex SHA-256 of its text."""
    ref = _REFS.get(text)
    if ref is None:
        ref = _REFS[text] = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return ref


def _capture_json(capture: Capture) -> bytes:
    """A capture's JSON as an item of its host record's ``captures`` (indented two levels), its command
    named (see :meth:`HostRecord.on_disk`)."""
    data: bytes = capture.__pydantic_serializer__.to_json(capture, indent=2, context={COMMANDS: {}})
    return b"    " + data.replace(b"\n", b"\n    ")  # a newline inside a JSON string is escaped: not one


_CAPTURE_JSON = PerCapture(_capture_json)


def capture_json(capture: Capture) -> bytes:
    """A capture's JSON as an item of its host record's ``captures``, computed once per capture object
    while it is among those used last (hosts built alike share them)."""
    return _CAPTURE_JSON(capture)


_NO_CAPTURES = b'\n  "captures": [],'  # where a record without its captures holds them


_CAPTURE_FIELDS = set(Capture.model_fields)  # one set shared by every capture built from bytes
_CAPTURE_DEFAULTS = {"exit_code": None, "stderr": "", "truncated": False, "complete": True, "problem": None}


class ProbeRun(BaseModel):
    """How the probe went on one host: connection, round trips, timing."""

    model_config = ConfigDict(extra="forbid")

    connected: bool
    complete: bool = False
    error: str | None = None
    commands: int = 0
    started_at: str | None = None
    duration_s: float | None = None
    bytes_received: int = 0
    noise_lines: int = Field(default=0, description="lines outside the probe frame (login banners, rc files)")
    cpu_s: float | None = Field(
        default=None, description="CPU seconds the probe's sections took on the host (the shell's times)"
    )
    fact_s: dict[str, float] = Field(
        default_factory=dict,
        description="each fact's share of the host time its probe section took, by the host's clock (a "
        "section of several facts is split evenly among them, the pooled file reads among the sections "
        "that asked for them)",
    )
    clock_s: float | None = Field(
        default=None, description="the resolution of the clock fact_s was read from (seconds)"
    )
    stream_sha256: str | None = Field(
        default=None,
        exclude_if=_none,
        description="SHA-256 of what the host printed, every round in order, before parsing and redaction",
    )


class HostRecord(BaseModel):
    """One host of the scan: its inventory facts and everything its probe captured."""

    model_config = ConfigDict(extra="forbid")

    name: str
    connector: str
    groups: list[str] = Field(default_factory=list)
    hds_activities: list[int] | None = None
    roles: list[str] = Field(default_factory=list)
    location_country: str | None = None
    ssh_hostname: str | None = None
    tls_endpoints: list[str] = Field(default_factory=list)
    backup_repositories: list[BackupRepository] = Field(default_factory=list)
    probe: ProbeRun
    captures: list[Capture] = Field(default_factory=list)
    # After the captures: serialized once they have filled it (see on_disk).
    commands: dict[str, str] = Field(
        default_factory=dict,
        description="on disk, each command its captures ran, by the SHA-256 that names it in their 'command' "
        "(a batch of facts shares one command); empty in memory, where captures hold their command's text",
    )

    @field_serializer("commands")
    def _commands_on_disk(self, value: dict[str, str], info: SerializationInfo) -> dict[str, str]:
        table = info.context.get(COMMANDS) if isinstance(info.context, dict) else None
        return value if table is None else dict(sorted(table.items()))

    @model_validator(mode="after")
    def _commands_named(self) -> HostRecord:
        """Captures read from disk get their command's text back from the table, which must hold every
        name they use, each the SHA-256 of its text (a table cannot swap one command for another)."""
        table = self.commands
        for ref, text in table.items():
            if command_ref(text) != ref:
                raise ValueError(f"commands: {ref} is not the SHA-256 of the text it names")
        for number, capture in enumerate(self.captures):
            named = table.get(capture.command)
            if named is not None:  # a copy: a capture object may be shared with other records
                self.captures[number] = capture.model_copy(update={"command": named})
            elif _COMMAND_REF.fullmatch(capture.command):
                raise ValueError(
                    f"capture {capture.fact}: its command {capture.command} is not in the host's commands"
                )
        self.commands = {}
        return self

    def on_disk(self) -> bytes:
        """The record's JSON as results files and bundles hold it: captures name their command, and the
        record's ``commands`` table gives each text once (a host's captures ran 74 distinct commands for
        134 captures in a lab scan: the record is a third smaller, and quicker to write).

        The same bytes as pydantic's dump of the whole record, made of each capture's own JSON, which is
        kept per capture object: hosts built alike share most of their captures (nine tenths of a lab
        host's bytes), and each is encoded once per run instead of once per host.
        """
        head, captures, tail = self.on_disk_parts()
        return head + b",\n".join(map(capture_json, captures)) + tail

    def on_disk_parts(self) -> tuple[bytes, list[Capture], bytes]:
        """:meth:`on_disk` in three parts: the JSON up to the first capture, the captures (each written as
        :func:`capture_json` gives it, joined by ``,`` and a newline), and the JSON after the last one. A
        writer can then write a capture that several hosts share once (see ``report.HostSpool``)."""
        table = {command_ref(c.command): c.command for c in self.captures}
        shell = self.model_copy(update={"captures": []})
        data: bytes = self.__pydantic_serializer__.to_json(shell, indent=2, context={COMMANDS: table})
        if not self.captures:
            return data, [], b""
        before, empty, after = data.partition(_NO_CAPTURES)
        if not empty:  # checked under python -O too: a record is never written without its captures
            raise RuntimeError("a host record's JSON does not hold its captures list where it is expected")
        return before + b'\n  "captures": [\n', self.captures, b"\n  ]," + after

    def capture_map(self) -> dict[str, Capture]:
        """Captures keyed by fact key."""
        return {c.fact: c for c in self.captures}


class WaiverMark(BaseModel):
    """The waiver a failing result carries (see :mod:`hds_compliance.waivers`): its real verdict stays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    approver: str
    expires: str = Field(description="the last day the waiver holds (UTC date)")
    holds: bool = Field(
        description="whether it held on the collection day: if not, the result fails as before"
    )


class AttestationMark(BaseModel):
    """The attestation a control's verdict follows from (see :mod:`hds_compliance.attestations`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    attested_by: str
    valid_until: str = Field(description="the last day the attestation holds (UTC date)")
    holds: bool = Field(description="whether it held on the collection day (if not: not_reviewed)")


class Verdict(BaseModel):
    """Outcome of one check of one control on one host."""

    model_config = ConfigDict(extra="forbid")

    host: str
    control: str
    check: str | None = Field(description="check id; None for a control without checks")
    index: int = Field(description="position of the check in the control's list")
    params: dict[str, Any] = Field(default_factory=dict)
    status: Status
    severity: Severity
    message: str
    facts: list[str] = Field(
        default_factory=list,
        description="keys of the facts the check read; fleet:KEY: a fact a fleet check read on other hosts",
    )
    # written only where a waiver covers the result: results of runs without waivers keep their bytes
    waiver: WaiverMark | None = Field(default=None, exclude_if=_none)
    attestation: AttestationMark | None = Field(default=None, exclude_if=_none)

    @property
    def waived(self) -> bool:
        """A failure a waiver covered on the collection day: it does not count for the gate."""
        return self.waiver is not None and self.waiver.holds


class Scope(BaseModel):
    """Which hosts of the inventory this scan covers; fleet checks need to know who is missing."""

    model_config = ConfigDict(extra="forbid")

    inventory_hosts: int = Field(description="hosts in the inventory")
    outside: dict[str, list[str]] = Field(
        default_factory=dict, description="inventory hosts left out of this scan, with their roles"
    )
    shard: str | None = Field(default=None, description="K/N: the part of the inventory this scan covers")
    order: list[str] = Field(
        default_factory=list,
        description="every inventory host, in inventory order (merge puts shards back so)",
    )


class RunRecord(BaseModel):
    """When and with what the scan ran; the only source of timestamps in every output."""

    model_config = ConfigDict(extra="forbid")

    tool_version: str
    started_at: str
    finished_at: str
    inventory: str
    catalog_digest: str
    profile: str | None = None
    scope: Scope | None = None
    # Provenance (written only when known: results of earlier versions keep their bytes).
    inventory_sha256: str | None = Field(default=None, exclude_if=_none, description="the inventory file's")
    code_digest: str | None = Field(
        default=None, exclude_if=_none, description="digest of the code that judged (evidence.snapshot)"
    )
    forced: list[str] = Field(
        default_factory=list, exclude_if=_empty, description="what evaluate --force judged despite"
    )


def _host_matches(patterns: list[str], host: str, groups: Iterable[str]) -> bool:
    """Whether a host, by its name or one of its groups, matches one of the glob patterns."""
    names = [host, *groups]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


class Waiver(BaseModel):
    """One accepted risk, as a waivers file states it (see :mod:`hds_compliance.waivers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^\S+$")
    control: str = Field(min_length=1)
    check: str | None = None
    hosts: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    justification: str = Field(min_length=1)
    risk: Literal["low", "medium", "high", "critical"]
    approver: str = Field(min_length=1)
    created: date
    expires: date
    ticket: str | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Waiver:
        if self.expires < self.created:
            raise ValueError(f"expires ({self.expires}) is before created ({self.created})")
        return self

    def covers(self, verdict: Verdict, groups: Iterable[str]) -> bool:
        """Whether this waiver is about that result (its control, check and host), valid or not."""
        if verdict.control != self.control or (self.check is not None and verdict.check != self.check):
            return False
        return _host_matches(self.hosts, verdict.host, groups)

    def holds_on(self, day: date) -> bool:
        """Whether it applies on ``day`` (from created to expires, both included)."""
        return self.created <= day <= self.expires


class Document(BaseModel):
    """A document an attestation rests on: its path as the attestations file names it, and its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Attestation(BaseModel):
    """What a person states for a control no check can prove (see :mod:`hds_compliance.attestations`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^\S+$")
    control: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    status: Literal["satisfied", "not_satisfied"]
    attested_by: str = Field(min_length=1)
    date: _dt.date
    valid_until: _dt.date
    hosts: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    documents: list[Document] = Field(default_factory=list)

    def covers(self, verdict: Verdict, groups: Iterable[str]) -> bool:
        """Whether it is about that verdict's control and host."""
        return verdict.control == self.control and _host_matches(self.hosts, verdict.host, groups)

    def holds_on(self, day: _dt.date) -> bool:
        """Whether it applies on ``day`` (from its date to valid_until, both included)."""
        return self.date <= day <= self.valid_until


class ScanResult(BaseModel):
    """Everything a scan produced: run record, hosts with captures, verdicts, the waivers and attestations
    applied."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run: RunRecord
    hosts: list[HostRecord]
    verdicts: list[Verdict]
    waivers: list[Waiver] = Field(default_factory=list, exclude_if=_empty)
    attestations: list[Attestation] = Field(default_factory=list, exclude_if=_empty)

    def verdicts_by_host(self) -> dict[str, list[Verdict]]:
        """Each host's verdicts in their order (one pass: reports list them host by host)."""
        by_host: dict[str, list[Verdict]] = {h.name: [] for h in self.hosts}
        for verdict in self.verdicts:
            by_host.setdefault(verdict.host, []).append(verdict)
        return by_host


def control_status(verdicts: Iterable[Verdict]) -> Status:
    """A control's status on one host from its checks' verdicts: the worst one decides.

    error > fail > not_reviewed > pass > not_applicable: a control whose checks all pass (some perhaps not
    applicable) passes; one a check could not judge is not reviewed, never passed.
    """
    statuses = {v.status for v in verdicts}
    for status in (Status.ERROR, Status.FAIL, Status.NOT_REVIEWED, Status.PASS):
        if status in statuses:
            return status
    return Status.NOT_APPLICABLE
