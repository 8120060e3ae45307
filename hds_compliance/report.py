"""Reports for people and scripts: the console summary and the JSON results, and writing outputs.

Outputs are deterministic: the same scan result gives the same bytes (timestamps come from the run
record, order from the inventory and the catalogue). Text a host or an inventory provides (names,
messages, probe errors) is printed with its control characters escaped, so it cannot forge a line or
drive the terminal.
"""

from __future__ import annotations

import os
import sys
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

from pydantic import TypeAdapter

from hds_compliance.catalog import Catalog, Control
from hds_compliance.gate import GateResult
from hds_compliance.model import (
    Capture,
    HostRecord,
    PerCapture,
    Recent,
    ScanResult,
    Status,
    Verdict,
    capture_json,
    control_status,
)

_ORDER = (Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE, Status.NOT_REVIEWED)
_LABEL = {Status.FAIL: "FAIL ", Status.ERROR: "ERROR"}
STDOUT = Path("-")  # an output flag's value meaning standard output


class OutputError(Exception):
    """An output could not be written (exit 3): the message names it and why, on one line."""


def printable(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\n``, ``\\u202e``)."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def _counts(counter: Counter[Status]) -> str:
    return ", ".join(f"{counter.get(s, 0)} {s.value}" for s in _ORDER)


def _by_control(verdicts: list[Verdict]) -> tuple[dict[str, list[Verdict]], dict[str, Status]]:
    """A host's verdicts by control, in catalogue order, and each control's status."""
    by_control: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_control.setdefault(v.control, []).append(v)
    return by_control, {cid: control_status(vs) for cid, vs in by_control.items()}


def _host_lines(
    host: HostRecord,
    verdicts: list[Verdict],
    grouped: tuple[dict[str, list[Verdict]], dict[str, Status]],
    controls: dict[str, Control],
    outcome: GateResult,
    blocking: set[int],
) -> list[str]:
    name = printable(host.name)
    if not host.probe.connected:
        # One line for a host that could not be probed: its checks all say the same thing.
        why = printable(host.probe.error or "could not connect")
        return [f"{name}: NOT PROBED: {why} ({len(verdicts)} checks in error)"]
    by_control, status = grouped
    cost = f"; probe {host.probe.cpu_s * 1000:.0f} ms CPU on the host" if host.probe.cpu_s is not None else ""
    lines = [
        f"{name}: controls {_counts(Counter(status.values()))}; "
        f"checks {_counts(Counter(v.status for v in verdicts))}{cost}"
    ]
    if host.probe.error:
        lines.append(f"  ! probe: {printable(host.probe.error)}")
    failing = [cid for cid, s in status.items() if s in (Status.FAIL, Status.ERROR)]
    failing.sort(key=lambda cid: (-by_control[cid][0].severity.rank, cid))
    for cid in failing:
        control = controls.get(cid)
        first = by_control[cid][0]
        bad = [v for v in by_control[cid] if v.status in (Status.FAIL, Status.ERROR)]
        if any(id(v) in blocking for v in bad):
            gate_note = "counts for the gate"
        elif all(v.waived for v in bad):
            gate_note = "waived: " + ", ".join(sorted({_waiver_note(v) for v in bad}))
        else:
            gate_note = f"below --fail-on {outcome.fail_on.value}"
        title = control.title if control else ""
        lines.append(f"  {_LABEL[status[cid]]} {cid} [{first.severity.value}] {title} ({gate_note})")
        for v in by_control[cid]:
            if v.status in (Status.FAIL, Status.ERROR):
                note = f" [{_waiver_note(v)}]" if v.waiver is not None else ""
                lines.append(f"        {v.check}: {printable(v.message)}{note}")
        if control is not None and control.remediation.strip():
            lines.append(f"        fix: {_first_paragraph(control.remediation)}")
    unreviewed = sorted(cid for cid, s in status.items() if s is Status.NOT_REVIEWED)
    if unreviewed:
        lines.append(f"  not reviewed ({len(unreviewed)}): {', '.join(unreviewed)}")
    return lines


def _waiver_note(v: Verdict) -> str:
    w = v.waiver
    assert w is not None
    state = f"until {w.expires}" if w.holds else f"EXPIRED on {w.expires}"
    return printable(f"{w.id} by {w.approver}, {state}")


def _attestation_lines(result: ScanResult) -> list[str]:
    """How many verdicts attestations decided, and how many they could not (expired, or dated later)."""
    if not result.attestations:
        return []
    marks = [v.attestation for v in result.verdicts if v.attestation is not None]
    holding = sum(1 for m in marks if m.holds)
    return [
        f"attestations: {holding} verdict(s) decided by {len(result.attestations)} attestation(s)"
        + (
            f", {len(marks) - holding} left not_reviewed (expired or dated after the run)"
            if len(marks) > holding
            else ""
        )
    ]


def _waiver_lines(result: ScanResult) -> list[str]:
    """How many failures waivers covered, and the waivers about to end (within 30 days of the run)."""
    from hds_compliance.waivers import EXPIRING_DAYS, expiring

    if not result.waivers:
        return []
    waived = Counter(v.waiver.id for v in result.verdicts if v.waiver is not None and v.waived)
    lapsed = Counter(v.waiver.id for v in result.verdicts if v.waiver is not None and not v.waived)
    lines = [
        f"waivers: {sum(waived.values())} failing check(s) waived"
        + (f", {sum(lapsed.values())} whose waiver expired (they count again)" if lapsed else "")
        + f"; {sum(1 for w in result.waivers if w.id not in waived and w.id not in lapsed)} waiver(s) unused"
    ]
    for w in expiring(result.waivers, result.run.started_at):
        lines.append(
            printable(
                f"waiver {w.id} ends within {EXPIRING_DAYS} days: {w.expires} ({w.control}, {w.approver})"
            )
        )
    return lines


def _first_paragraph(text: str, width: int = 200) -> str:
    """The remediation's first paragraph on one line, cut at a word near ``width`` (the rest is in the
    catalogue and the JSON)."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    if len(paragraph) <= width:
        return paragraph
    return paragraph[:width].rsplit(" ", 1)[0] + " ..."


def gate_line(outcome: GateResult) -> str:
    """The final line: the gate's outcome and why."""
    fail_on = outcome.fail_on.value
    if outcome.passed:
        return f"gate PASSED (fail-on {fail_on})"
    if outcome.judged == 0:
        return f"gate FAILED (fail-on {fail_on}): nothing was judged (no verdict is pass, fail or error)"
    fails = sum(1 for v in outcome.blocking if v.status is Status.FAIL)
    errors = len(outcome.blocking) - fails
    why = f"{fails} blocking failure(s), {errors} error(s)"
    if outcome.breaches:
        why += f"; {len(outcome.breaches)} policy breach(es)"
    return f"gate FAILED (fail-on {fail_on}): {why}"


def _policy_lines(outcome: GateResult) -> list[str]:
    """What the thresholds and the baseline say: breaches, then the delta against the baseline."""
    lines = [f"policy: {printable(b)}" for b in outcome.breaches]
    delta = outcome.delta
    if delta is not None:
        lines.append(
            f"baseline: {len(delta.new)} new failure(s) or error(s), {len(delta.fixed)} fixed, "
            f"{len(delta.still)} still failing"
        )
        for v in delta.new:
            lines.append(
                f"  new    {v.status.value:5s} {printable(v.host)} {v.control} {v.check}: "
                + printable(v.message)
            )
        for host, control, check, _params in delta.fixed:
            lines.append(f"  fixed  {printable(host)} {control} {check}")
    return lines


def console_summary(result: ScanResult, catalog: Catalog, outcome: GateResult) -> str:
    """Per host: controls and checks counted apart, failing controls by severity with their fix, the
    controls nobody reviewed; then the totals and the gate's line."""
    controls = {c.id: c for c in catalog.controls}
    lines: list[str] = []
    by_host = result.verdicts_by_host()
    blocking = {id(v) for v in outcome.blocking}  # once for the run: per host, it would be quadratic
    control_totals: Counter[Status] = Counter()
    for host in result.hosts:
        verdicts = by_host[host.name]
        grouped = _by_control(verdicts)
        lines += _host_lines(host, verdicts, grouped, controls, outcome, blocking)
        control_totals.update(grouped[1].values())
    unprobed = sum(1 for h in result.hosts if not h.probe.connected)
    lines.append("")
    lines.append(
        f"{len(result.hosts)} host(s)"
        + (f" ({unprobed} not probed)" if unprobed else "")
        + f", {len(catalog.controls)} control(s) in the catalogue"
    )
    lines.append(f"controls (per host): {_counts(control_totals)}")
    costs = [(h.probe.cpu_s, h.name) for h in result.hosts if h.probe.cpu_s is not None]
    if costs:  # what the catalogue costs the hosts, so a larger one shows it
        top, where = max(costs)
        mean = sum(c for c, _ in costs) / len(costs)
        lines.append(
            f"probe CPU on the hosts: mean {mean * 1000:.0f} ms, max {top * 1000:.0f} ms ({printable(where)})"
        )
    slowest = _slowest_facts(result.hosts)
    if slowest:
        lines.append("slowest facts on the hosts (mean time per host): " + slowest)
    lines.append(f"checks: {_counts(Counter(v.status for v in result.verdicts))}")
    lines += _attestation_lines(result)
    lines += _waiver_lines(result)
    lines += _policy_lines(outcome)
    lines.append(gate_line(outcome))
    return "\n".join(lines) + "\n"


def _slowest_facts(hosts: list[HostRecord], shown: int = 3) -> str:
    """The facts whose probe sections took the hosts longest, by mean over the hosts that timed them (the
    first place to look when a catalogue grows costly for the hosts); empty when no host did."""
    timed = [h.probe.fact_s for h in hosts if h.probe.fact_s]
    if not timed:
        return ""
    totals: Counter[str] = Counter()
    for times in timed:
        totals.update(times)
    return ", ".join(
        f"{printable(key)} {1000 * total / len(timed):.0f} ms"
        for key, total in sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:shown]
    )


def _cell(text: str, width: int = 160) -> str:
    """Text for a Markdown table cell: one line, escaped, cut."""
    flat = " ".join(printable(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def to_markdown(result: ScanResult, catalog: Catalog, outcome: GateResult) -> str:
    """A GitHub job summary / merge request note: the gate, per host counts, failing controls by severity,
    the policy and baseline, the controls nobody reviewed."""
    controls = {c.id: c for c in catalog.controls}
    mark = "✅" if outcome.passed else "❌"
    lines = [f"## {mark} {gate_line(outcome)}", ""]
    lines += ["| host | pass | fail | error | not applicable | not reviewed |", "|---|---|---|---|---|---|"]
    by_host = result.verdicts_by_host()
    failing: list[tuple[int, str, str, list[Verdict]]] = []
    unreviewed: set[str] = set()
    for host in result.hosts:
        grouped, status = _by_control(by_host[host.name])
        counts = Counter(status.values())
        name = _cell(host.name) + ("" if host.probe.connected else " (not probed)")
        lines.append(f"| {name} | " + " | ".join(str(counts.get(s, 0)) for s in _ORDER) + " |")
        for cid, s in status.items():
            if s in (Status.FAIL, Status.ERROR):
                failing.append((-grouped[cid][0].severity.rank, cid, host.name, grouped[cid]))
            elif s is Status.NOT_REVIEWED:
                unreviewed.add(cid)
    if failing:
        blocking = {id(v) for v in outcome.blocking}
        lines += ["", "| severity | control | host | finding | gate |", "|---|---|---|---|---|"]
        for _rank, cid, host_name, verdicts in sorted(failing):
            bad = [v for v in verdicts if v.status in (Status.FAIL, Status.ERROR)]
            title = controls[cid].title if cid in controls else ""
            verdict = "blocks" if any(id(v) in blocking for v in bad) else "tolerated"
            finding = "; ".join(f"{v.check}: {v.message}" for v in bad)
            lines.append(
                f"| {bad[0].severity.value} | {cid} {_cell(title, 80)} | {_cell(host_name, 60)} | "
                f"{_cell(finding)} | {verdict} |"
            )
    policy = _policy_lines(outcome)
    if policy:
        lines += ["", "```", *policy, "```"]
    if unreviewed:
        lines += ["", f"Not reviewed (a document must attest them): {', '.join(sorted(unreviewed))}"]
    return "\n".join(lines) + "\n"


def to_json(result: ScanResult) -> str:
    """The JSON results (``schema_version`` inside), stable byte for byte."""
    return "".join(p if isinstance(p, str) else p.decode("utf-8") for p in json_chunks(result))


VERDICTS = TypeAdapter(list[Verdict])


def json_chunks(
    result: ScanResult, batch: int = 1000, spool: HostSpool | None = None
) -> Iterator[str | bytes]:
    """The JSON results in pieces, host by host then verdicts by batch: the same bytes as pydantic's
    ``model_dump_json(indent=2)`` of the whole result, each host in its on-disk form
    (:meth:`HostRecord.on_disk`), without the whole text in memory at once. With a ``spool``, each host's
    JSON is the one the spool took when the host was judged (captures included), copied as the UTF-8
    bytes it holds."""
    head = result.model_copy(update={"hosts": [], "verdicts": []}).model_dump_json(indent=2)
    # '"hosts": [],' and '"verdicts": []' are opened and filled in here
    before, after_hosts = head.split('\n  "hosts": [],\n', 1)
    yield before + '\n  "hosts": ['
    for number, host in enumerate(result.hosts):
        yield ",\n" if number else "\n"
        if spool:
            yield from spool.pieces(host.name)
        else:
            yield host_json(host)
    yield ("\n  ]" if result.hosts else "]") + ",\n"
    between, tail = after_hosts.split('"verdicts": []', 1)
    yield between + '"verdicts": ['
    for start in range(0, len(result.verdicts), batch):
        chunk = VERDICTS.dump_json(result.verdicts[start : start + batch], indent=2).decode()
        yield ("," if start else "") + "\n" + _indent(chunk[2:-2], "  ")  # without "[\n" and "\n]"
    yield ("\n  ]" if result.verdicts else "]") + tail + "\n"


def host_json(host: HostRecord) -> str:
    """A host's JSON (captures included) as the results file holds it: indented to sit in its list."""
    return (b"    " + _nested(host.on_disk())).decode("utf-8")


class HostSpool:
    """Each host's JSON, written out as soon as the host is judged, for :func:`json_chunks` to copy in
    inventory order at the end: a scan then never holds a fleet's captures in memory at once.

    A capture object several hosts share (hosts built alike print the same outputs, and the probe then
    gives them one object) is written once, while it is among the captures written last: in a lab fleet,
    nine tenths of a host's bytes. Each host is kept as the places of its pieces in the file.

    The file is unnamed (unlinked as it is made, readable by its owner only): nothing is left behind, even
    when the scan is killed.
    """

    def __init__(self) -> None:
        try:
            self._file: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self.problem: str | None = None
        except OSError as exc:  # no temporary folder to write in: the scan goes on, the JSON cannot
            self._file, self.problem = None, f"{tempfile.gettempdir()}: {exc.strerror or exc}"
        self._end = 0
        self._at: dict[str, list[_Piece]] = {}
        # capture -> where its JSON is: (offset, size, size with the separator written after it)
        self._written = PerCapture(self._write_capture)
        # shared pieces read last, the small ones only: at most 256 x 64 KiB in memory, whatever the captures
        self._shared: Recent[tuple[int, int], bytes] = Recent(256)

    def add(self, host: HostRecord) -> None:
        """Write a host's JSON (captures included). A write that fails (a full disk) does not stop the
        scan: the JSON results cannot be written then, and say why (:meth:`text`)."""
        if self._file is None:
            return
        try:
            start = self._end
            head, captures, tail = host.on_disk_parts()
            pieces = [self._write(b"    " + _nested(head))]
            last = len(captures) - 1
            for number, capture in enumerate(captures):
                offset, size, with_separator = self._written(capture)
                pieces.append(_Piece(offset, size if number == last else with_separator, offset < start))
            pieces.append(self._write(_nested(tail)))
            self._at[host.name] = _joined(pieces)
        except OSError as exc:
            self.close()
            self.problem = f"{tempfile.gettempdir()}: {exc.strerror or exc}"

    def _write(self, data: bytes) -> _Piece:
        assert self._file is not None  # add() checked it
        offset = self._end
        self._file.write(data)
        self._end += len(data)
        return _Piece(offset, len(data), False)

    def _write_capture(self, capture: Capture) -> tuple[int, int, int]:
        data = self._write(_nested(capture_json(capture)))
        self._write(_NESTED_SEPARATOR)
        return data.offset, data.size, data.size + len(_NESTED_SEPARATOR)

    @property
    def size(self) -> int:
        """The bytes written to the file."""
        return self._end

    def holds(self, name: str) -> bool:
        """Whether a host's JSON was written here."""
        return name in self._at

    def text(self, name: str) -> str:
        """The JSON written for a host; :class:`OutputError` if the spool could not keep it."""
        return b"".join(self.pieces(name)).decode("utf-8")

    def pieces(self, name: str) -> list[bytes]:
        """The JSON written for a host, in pieces of the UTF-8 bytes written; :class:`OutputError` as
        :meth:`text`."""
        if self._file is None or self.problem is not None:
            raise OutputError(f"cannot write the JSON results: the spool of captures failed ({self.problem})")
        self._file.flush()
        fd = self._file.fileno()
        out = []
        for piece in self._at[name]:
            where = (piece.offset, piece.size)
            data = self._shared[where] if piece.shared and where in self._shared else None
            if data is None:
                data = os.pread(fd, piece.size, piece.offset)
                if len(data) != piece.size:  # the file is ours alone: never shorter than what was written
                    raise OutputError(
                        f"cannot read back the spool of captures: {len(data)} of {piece.size} bytes"
                    )
                if piece.shared and piece.size <= _SHARED_PIECE:
                    self._shared[where] = data
            out.append(data)
        return out

    def close(self) -> None:
        """Free the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class _Piece(NamedTuple):
    """A part of a host's JSON in the spool: where, how long, and whether other hosts' JSON holds it too."""

    offset: int
    size: int
    shared: bool


_SHARED_PIECE = 64 * 1024  # a larger piece is read again when needed: one read for many bytes
_NESTED_SEPARATOR = b",\n    "  # between two captures of a host in the results' list of hosts


def _nested(data: bytes) -> bytes:
    """A part of a host's JSON indented one level more, as it sits in the results' list of hosts (the
    first line's indent is the caller's: a part may begin mid-line)."""
    return data.replace(b"\n", b"\n    ")


def _joined(pieces: list[_Piece]) -> list[_Piece]:
    """Pieces that follow each other in the file, and are a host's own, made one (read in one call)."""
    out = [pieces[0]]
    for piece in pieces[1:]:
        before = out[-1]
        if not (piece.shared or before.shared) and before.offset + before.size == piece.offset:
            out[-1] = _Piece(before.offset, before.size + piece.size, False)
        else:
            out.append(piece)
    return out


def _indent(text: str, prefix: str) -> str:
    # pydantic's pretty JSON has no blank line (a newline in a string is escaped): every line gets it
    return prefix + text.replace("\n", "\n" + prefix)


def write_text(path: Path, text: str | Iterable[str | bytes]) -> None:
    """Write an output whole or not at all, from a text or its pieces: ``-`` is standard output; a file is
    written under a temporary name beside it and renamed, so an interrupted or failed write never leaves a
    file that looks complete.

    Raises :class:`OutputError` naming the path and the reason.
    """
    pieces = [text] if isinstance(text, str) else text
    try:
        if path == STDOUT:
            for piece in pieces:
                sys.stdout.write(piece if isinstance(piece, str) else piece.decode("utf-8"))
            sys.stdout.flush()
            return
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        if path.exists() and not path.is_file():  # a device or a FIFO (/dev/stderr): written, never replaced
            with path.open("wb") as handle:
                _write_pieces(handle, pieces)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                _write_pieces(handle, pieces)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        where = "standard output" if path == STDOUT else str(path)
        raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from exc


def _write_pieces(handle: IO[bytes], pieces: Iterable[str | bytes]) -> None:
    """Text pieces encoded as UTF-8; bytes (a host's JSON from the spool) as they are."""
    handle.writelines(piece.encode("utf-8") if isinstance(piece, str) else piece for piece in pieces)
