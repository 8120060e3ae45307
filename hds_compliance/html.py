"""The HTML report: one self-contained file a certifier reads offline.

Rendered with Jinja2, autoescaping on: every text a host, an inventory or a person provides is escaped.
The page loads nothing (its Content-Security-Policy allows no source at all: no network request can be
made) and runs one script, its own, allowed by its SHA-256: a ``<script>`` that reaches the page through
a capture is text, and would not run even if it were markup. Deterministic: the same result gives the same
bytes. Sections: the gate and the run record (with the bundle's provenance when read from one), a summary
per HDS requirement and per host, every verdict (filters by status, severity, host and framework; each
linked to the captures of the facts it read and to the check that judged it), waivers and attestations
with their approvers and dates, and each host's captures (their first 2000 characters: the rest is in
the bundle's ``hosts/<folder>/captures.json``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from functools import cache

import jinja2

from hds_compliance.catalog import Catalog
from hds_compliance.check import registry
from hds_compliance.evidence.bundle import host_folder
from hds_compliance.model import Capture, ScanResult, Severity, Status

_STATUSES = [s.value for s in Status]
# Characters of a capture the page shows: the whole of it is in the bundle's (or results') JSON; a page
# holding every capture of a fleet whole would be hundreds of MB, too much for a browser.
_SHOWN = 2000
_ANCHOR = re.compile(r"[^A-Za-z0-9_-]+")

# Filters the verdicts' rows by the four selects; counts what is shown.
_SCRIPT = """
(function () {
  var names = ["status", "severity", "host", "framework"];
  var rows = document.querySelectorAll("#verdicts tr[data-status]");
  function apply() {
    var want = {};
    names.forEach(function (n) { want[n] = document.getElementById("f-" + n).value; });
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!want.status || row.dataset.status === want.status) &&
        (!want.severity || row.dataset.severity === want.severity) &&
        (!want.host || row.dataset.host === want.host) &&
        (!want.framework || (" " + row.dataset.frameworks + " ").indexOf(" " + want.framework + " ") >= 0);
      row.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = String(shown);
  }
  names.forEach(function (n) { document.getElementById("f-" + n).addEventListener("change", apply); });
})();
"""


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hds_compliance", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def _anchor(*parts: object) -> str:
    return "-".join(_ANCHOR.sub("_", str(p)) for p in parts)


def _text(capture: Capture) -> str:
    return capture.stdout_text() if capture.stdout_encoding == "base64" else capture.stdout


def to_html(
    result: ScanResult, catalog: Catalog, gate: tuple[bool, str], provenance: Sequence[tuple[str, str]] = ()
) -> str:
    """The report page (UTF-8 text); ``gate``: whether it passed and its line; ``provenance``: lines of
    where the result comes from (a bundle's signer)."""
    controls = {c.id: c for c in catalog.controls}
    numbers = {host.name: number for number, host in enumerate(result.hosts, 1)}
    hosts, anchors = [], {}
    by_host = result.verdicts_by_host()
    for host in result.hosts:
        number = numbers[host.name]
        captures = []
        for i, capture in enumerate(host.captures):
            anchor = anchors[(host.name, capture.fact)] = _anchor("cap", number, i)
            text = _text(capture)
            captures.append(
                {
                    **capture.model_dump(),
                    "stdout": text[:_SHOWN],
                    "more": max(0, len(text) - _SHOWN),
                    "anchor": anchor,
                    "folder": host_folder(number, host.name),
                }
            )
        hosts.append(
            {
                "number": number,
                "name": host.name,
                "probe": "probed"
                if host.probe.connected and not host.probe.error
                else host.probe.error or "not probed",
                "error": host.probe.error,
                "counts": Counter(v.status.value for v in by_host.get(host.name, [])),
                "captures": captures,
            }
        )
    verdicts = []
    for v in result.verdicts:
        control = controls.get(v.control)
        refs = control.references.items() if control else []
        w, a = v.waiver, v.attestation
        verdicts.append(
            {
                "host": v.host,
                "host_number": numbers.get(v.host, 0),
                "control": v.control,
                "title": control.title if control else "",
                "check": v.check,
                "status": v.status.value,
                "severity": v.severity.value,
                "message": v.message,
                "frameworks": " ".join(sorted(name for name, ids in refs if ids)),
                "facts": [
                    {"key": key, "anchor": anchors.get((v.host, key), "")}
                    for key in v.facts
                    if (v.host, key) in anchors
                ],
                "waiver": (
                    f"waived by {w.id}, {w.approver}, until {w.expires}"
                    if w.holds
                    else f"waiver {w.id} expired {w.expires}"
                )
                if w
                else "",
                "attestation": f"attestation {a.id} by {a.attested_by}, until {a.valid_until}" if a else "",
            }
        )
    requirements = []
    for ident in sorted({i for c in catalog.controls for i in c.references.hds}):
        ids = [c.id for c in catalog.controls if ident in c.references.hds]
        counts = Counter(v.status.value for v in result.verdicts if v.control in ids)
        requirements.append({"id": ident, "controls": ids, "counts": counts})
    checks = registry()
    used = sorted({v.check for v in result.verdicts if v.check})
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return _template().render(
        run=result.run,
        gate={"passed": gate[0], "line": gate[1]},
        provenance=list(provenance),
        statuses=_STATUSES,
        severities=[s.value for s in Severity],
        frameworks=sorted({name for c in catalog.controls for name, ids in c.references.items() if ids}),
        requirements=requirements,
        hosts=hosts,
        verdicts=verdicts,
        waivers=result.waivers,
        attestations=result.attestations,
        checks=[{"id": c, "summary": checks[c].summary if c in checks else ""} for c in used],
        script=_SCRIPT,
        script_hash=f"sha256-{digest}",
    )
