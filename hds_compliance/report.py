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
from collections.abc import Iterable
from pathlib import Path

from hds_compliance.catalog import Catalog, Control
from hds_compliance.gate import GateResult
from hds_compliance.model import HostRecord, ScanResult, Status, Verdict

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


def _counts(counter: Counter[Status]) -> str:
    return ", ".join(f"{counter.get(s, 0)} {s.value}" for s in _ORDER)


def _host_lines(
    host: HostRecord, verdicts: list[Verdict], controls: dict[str, Control], outcome: GateResult
) -> list[str]:
    name = printable(host.name)
    if not host.probe.connected:
        # One line for a host that could not be probed: its checks all say the same thing.
        why = printable(host.probe.error or "could not connect")
        return [f"{name}: NOT PROBED: {why} ({len(verdicts)} checks in error)"]
    by_control: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_control.setdefault(v.control, []).append(v)
    status = {cid: control_status(vs) for cid, vs in by_control.items()}
    lines = [
        f"{name}: controls {_counts(Counter(status.values()))}; "
        f"checks {_counts(Counter(v.status for v in verdicts))}"
    ]
    if host.probe.error:
        lines.append(f"  ! probe: {printable(host.probe.error)}")
    blocking = {id(v) for v in outcome.blocking}
    failing = [cid for cid, s in status.items() if s in (Status.FAIL, Status.ERROR)]
    failing.sort(key=lambda cid: (-by_control[cid][0].severity.rank, cid))
    for cid in failing:
        control = controls.get(cid)
        first = by_control[cid][0]
        gate_note = (
            "counts for the gate"
            if any(id(v) in blocking for v in by_control[cid])
            else f"below --fail-on {outcome.fail_on.value}"
        )
        title = control.title if control else ""
        lines.append(f"  {_LABEL[status[cid]]} {cid} [{first.severity.value}] {title} ({gate_note})")
        for v in by_control[cid]:
            if v.status in (Status.FAIL, Status.ERROR):
                lines.append(f"        {v.check}: {printable(v.message)}")
        if control is not None and control.remediation.strip():
            lines.append(f"        fix: {_first_paragraph(control.remediation)}")
    unreviewed = sorted(cid for cid, s in status.items() if s is Status.NOT_REVIEWED)
    if unreviewed:
        lines.append(f"  not reviewed ({len(unreviewed)}): {', '.join(unreviewed)}")
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
    if not outcome.blocking:
        return f"gate FAILED (fail-on {fail_on}): nothing was judged (no verdict is pass, fail or error)"
    fails = sum(1 for v in outcome.blocking if v.status is Status.FAIL)
    errors = len(outcome.blocking) - fails
    return (
        f"gate FAILED (fail-on {fail_on}): {fails} failing check(s) at or above {fail_on}, {errors} error(s)"
    )


def console_summary(result: ScanResult, catalog: Catalog, outcome: GateResult) -> str:
    """Per host: controls and checks counted apart, failing controls by severity with their fix, the
    controls nobody reviewed; then the totals and the gate's line."""
    controls = {c.id: c for c in catalog.controls}
    lines: list[str] = []
    by_host = result.verdicts_by_host()
    control_totals: Counter[Status] = Counter()
    for host in result.hosts:
        verdicts = by_host[host.name]
        lines += _host_lines(host, verdicts, controls, outcome)
        grouped: dict[str, list[Verdict]] = {}
        for v in verdicts:
            grouped.setdefault(v.control, []).append(v)
        control_totals.update(control_status(vs) for vs in grouped.values())
    unprobed = sum(1 for h in result.hosts if not h.probe.connected)
    lines.append("")
    lines.append(
        f"{len(result.hosts)} host(s)"
        + (f" ({unprobed} not probed)" if unprobed else "")
        + f", {len(catalog.controls)} control(s) in the catalogue"
    )
    lines.append(f"controls (per host): {_counts(control_totals)}")
    lines.append(f"checks: {_counts(Counter(v.status for v in result.verdicts))}")
    lines.append(gate_line(outcome))
    return "\n".join(lines) + "\n"


def to_json(result: ScanResult) -> str:
    """The JSON results (``schema_version`` inside), stable byte for byte."""
    return result.model_dump_json(indent=2) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write an output whole or not at all: ``-`` is standard output; a file is written under a temporary
    name beside it and renamed, so an interrupted or failed write never leaves a file that looks complete.

    Raises :class:`OutputError` naming the path and the reason.
    """
    try:
        if path == STDOUT:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        if path.exists() and not path.is_file():  # a device or a FIFO (/dev/stderr): written, never replaced
            with path.open("w", encoding="utf-8") as handle:
                handle.write(text)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        where = "standard output" if path == STDOUT else str(path)
        raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from exc
