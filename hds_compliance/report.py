"""Reports for people and scripts: the console summary and the JSON results.

Outputs are deterministic: the same scan result gives the same bytes (timestamps come from the run
record, order from the inventory and the catalogue).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hds_compliance.catalog import Catalog
from hds_compliance.gate import GateResult
from hds_compliance.model import ScanResult, Status

_ORDER = (Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE, Status.NOT_REVIEWED)


def console_summary(result: ScanResult, catalog: Catalog, outcome: GateResult) -> str:
    """Per host: counts by verdict, then failing and erroring controls with what was found."""
    titles = {c.id: c.title for c in catalog.controls}
    lines: list[str] = []
    by_host = result.verdicts_by_host()
    for host in result.hosts:
        verdicts = by_host[host.name]
        counts = Counter(v.status for v in verdicts)
        summary = "  ".join(f"{s.value} {counts.get(s, 0)}" for s in _ORDER)
        state = "" if host.probe.connected else "  (unreachable)"
        lines.append(f"{host.name}{state}: {summary}")
        if host.probe.error and host.probe.connected:
            lines.append(f"  ! probe: {host.probe.error}")
        for v in verdicts:
            if v.status in (Status.FAIL, Status.ERROR):
                label = "FAIL " if v.status is Status.FAIL else "ERROR"
                lines.append(f"  {label} {v.control} [{v.severity.value}] {titles.get(v.control, '')}")
                lines.append(f"        {v.check}: {v.message}")
    total = Counter(v.status for v in result.verdicts)
    lines.append("")
    lines.append(
        f"{len(result.hosts)} host(s), {len(catalog.controls)} control(s): "
        + ", ".join(f"{total.get(s, 0)} {s.value}" for s in _ORDER)
    )
    if outcome.passed:
        lines.append(f"gate PASSED (fail-on {outcome.fail_on.value})")
    else:
        fails = sum(1 for v in outcome.blocking if v.status is Status.FAIL)
        errors = len(outcome.blocking) - fails
        lines.append(
            f"gate FAILED (fail-on {outcome.fail_on.value}): {fails} failing check(s) at or above "
            f"{outcome.fail_on.value}, {errors} error(s)"
        )
    return "\n".join(lines) + "\n"


def to_json(result: ScanResult) -> str:
    """The JSON results (``schema_version`` inside), stable byte for byte."""
    return result.model_dump_json(indent=2) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write an output file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
