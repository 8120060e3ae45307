"""Coverage: for every requirement of a framework, which controls answer it, how, and in which HDS activity.

A requirement is ``automated`` only where every control answering it is decided by checks, ``partial``
where checks decide some of it and documents (or nobody yet) the rest, ``attestation`` where only documents
answer it, ``manual`` where a control names it but nothing answers it yet, and ``not covered`` where no
control of the catalogue references it. Tagging a requirement on a control does not make it automated: a
check must decide it. Nothing is left out: every identifier of the framework is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hds_compliance.catalog.frameworks import frameworks
from hds_compliance.catalog.models import ALL_ACTIVITIES, Catalog, Control

STATUSES = ("automated", "partial", "attestation", "manual", "not covered")
_SHORT = {"automated": "A", "partial": "P", "attestation": "D", "manual": "M", "not covered": "-"}


def _combine(controls: list[Control]) -> str:
    """How a requirement is answered, given the controls that reference it."""
    kinds = {c.automation for c in controls}
    if not kinds:
        return "not covered"
    if kinds & {"automated", "partial"}:
        return "automated" if kinds == {"automated"} else "partial"
    return "attestation" if kinds == {"attestation"} else "manual"


@dataclass
class Row:
    """One requirement of a framework and what answers it."""

    id: str
    title: str
    status: str
    activities: dict[int, str]
    controls: list[Control] = field(default_factory=list)
    attested: list[str] = field(default_factory=list)  # its document controls an attestation answers

    @property
    def documented(self) -> list[Control]:
        """Its controls only a document answers (those an attestation can)."""
        return [c for c in self.controls if c.automation == "attestation"]

    def export(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "activities": {str(a): s for a, s in self.activities.items()},
            "controls": [
                {"id": c.id, "automation": c.automation, "activities": c.activities, "checks": len(c.checks)}
                for c in self.controls
            ],
            "attested": self.attested,
        }


def coverage(catalog: Catalog, attested: frozenset[str] = frozenset()) -> dict[str, list[Row]]:
    """Rows for every identifier of every framework, in document order; ``attested``: the controls a
    satisfied attestation answers today."""
    out: dict[str, list[Row]] = {}
    for name, framework in frameworks().items():
        rows = []
        for ident in framework.ids:
            controls = [c for c in catalog.controls if ident in getattr(c.references, name)]
            per_activity = {a: _combine([c for c in controls if a in c.activities]) for a in ALL_ACTIVITIES}
            row = Row(ident, framework.title_of(ident), _combine(controls), per_activity, controls)
            row.attested = [c.id for c in row.documented if c.id in attested]
            rows.append(row)
        out[name] = rows
    return out


def summary(rows: list[Row]) -> dict[str, int]:
    """How many identifiers have each status."""
    return {s: sum(1 for r in rows if r.status == s) for s in STATUSES}


def to_json(catalog: Catalog, attested: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``coverage --format json``: every framework, every identifier."""
    table = coverage(catalog, attested)
    return {
        "schema_version": 1,
        "catalog_digest": catalog.digest,
        "profile": catalog.profile,
        "statuses": list(STATUSES),
        "frameworks": {
            name: {
                "title": frameworks()[name].title,
                "summary": summary(rows),
                "requirements": [r.export() for r in rows],
            }
            for name, rows in table.items()
        },
    }


def _hds_lines(rows: list[Row], markdown: bool) -> list[str]:
    head = ["EXI", "status", *[f"A{a}" for a in ALL_ACTIVITIES], "attested", "controls", "requirement"]
    body = [
        [
            r.id,
            r.status,
            *[_SHORT[r.activities[a]] for a in ALL_ACTIVITIES],
            f"{len(r.attested)}/{len(r.documented)}" if r.documented else "-",
            ", ".join(c.id for c in r.controls) or "-",
            r.title,
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in [head, *body]
    ]


def render(catalog: Catalog, markdown: bool = False, attested: frozenset[str] = frozenset()) -> str:
    """The HDS table (one line per EXI, one column per HDS activity) and a summary of every framework."""
    table = coverage(catalog, attested)
    legend = (
        "A automated (a check decides it) · P partial (checks and a document) · D document (attestation) · "
        "M named, not answered yet · - not covered. Columns A1..A6: HDS activities. attested: of its "
        "document controls, how many a satisfied attestation answers today (--attestations)."
    )
    lines = [
        "## HDS v2 requirements" if markdown else "HDS v2 requirements",
        "",
        *_hds_lines(table["hds"], markdown),
    ]
    lines += ["", legend, "", "## Frameworks" if markdown else "Frameworks", ""]
    if markdown:
        lines += ["| framework | " + " | ".join(STATUSES) + " |", "|---|" + "---|" * len(STATUSES)]
    for name, rows in table.items():
        counts = summary(rows)
        if markdown:
            lines.append(
                f"| {frameworks()[name].title} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |"
            )
        else:
            shown = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
            lines.append(f"{frameworks()[name].title}: {len(rows)} identifiers: {shown}")
    return "\n".join(lines) + "\n"
