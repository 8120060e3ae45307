"""OSCAL assessment results (JSON) of a scan, for tools that read NIST's format (compliance-trestle...).

One result for the run: the hosts as inventory items, one observation per verdict (its host as subject,
its status and severity as properties, the captures it read as relevant evidence, by their path in an
evidence bundle) and one finding per control: satisfied when every verdict judged on every host passes,
not satisfied otherwise, naming the hosts (a waived failure too, with its waiver); a control judged
nowhere has no finding. UUIDs are derived from content (UUIDv5), never random: the same result gives the
same bytes.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

from hds_compliance import __version__
from hds_compliance.catalog import Catalog
from hds_compliance.evidence.bundle import host_folder
from hds_compliance.model import ScanResult, Status, Verdict

OSCAL_VERSION = "1.2.1"
NS = "urn:hds-compliance"  # the namespace of our properties
_ROOT = uuid.uuid5(uuid.NAMESPACE_URL, NS)
_JUDGED = (Status.PASS, Status.FAIL, Status.ERROR)


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_ROOT, "\0".join(str(p) for p in parts)))


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": value}


def _time(stamp: str | None) -> str:
    """An OSCAL date-time (with its time zone); the run record writes ``...Z``."""
    return stamp or "1970-01-01T00:00:00Z"


def assessment_results(result: ScanResult, catalog: Catalog) -> dict[str, Any]:
    """The OSCAL document, as a JSON-ready mapping."""
    run = result.run
    key = (run.inventory, run.started_at, run.catalog_digest)
    hosts = {host.name: _uuid("host", *key, host.name) for host in result.hosts}
    folders = {host.name: host_folder(n, host.name) for n, host in enumerate(result.hosts, 1)}
    resource = _uuid("catalogue", *key)
    observations, by_control = [], defaultdict(list)
    for v in result.verdicts:
        observation = _observation(v, key, hosts, folders)
        observations.append(observation)
        by_control[v.control].append((v, observation["uuid"]))
    titles = {c.id: c.title for c in catalog.controls}
    findings = [
        _finding(control, titles.get(control, control), judged, key)
        for control, judged in by_control.items()
        if any(v.status in _JUDGED for v, _ in judged)
    ]
    return {
        "assessment-results": {
            "uuid": _uuid("assessment-results", *key),
            "metadata": {
                "title": f"HDS compliance assessment of {run.inventory}",
                "last-modified": _time(run.finished_at),
                "version": __version__,
                "oscal-version": OSCAL_VERSION,
                "props": [_prop("catalog-digest", run.catalog_digest)],
            },
            "import-ap": {"href": f"#{resource}"},
            "results": [
                {
                    "uuid": _uuid("result", *key),
                    "title": "hds-compliance scan",
                    "description": f"One read-only probe per host, judged by catalogue {run.catalog_digest}",
                    "start": _time(run.started_at),
                    "end": _time(run.finished_at),
                    "local-definitions": {
                        "inventory-items": [
                            {
                                "uuid": hosts[h.name],
                                "description": h.name,
                                "props": [_prop("connector", h.connector)],
                            }
                            for h in result.hosts
                        ]
                    },
                    "reviewed-controls": {"control-selections": [{"include-all": {}}]},
                    "observations": observations,
                    "findings": findings,
                }
            ],
            "back-matter": {
                "resources": [
                    {
                        "uuid": resource,
                        "title": "The hds-compliance catalogue and profile the run was judged with",
                        "props": [_prop("catalog-digest", run.catalog_digest)],
                    }
                ]
            },
        }
    }


def _observation(
    v: Verdict, key: tuple[Any, ...], hosts: dict[str, str], folders: dict[str, str]
) -> dict[str, Any]:
    props = [
        _prop("status", v.status.value),
        _prop("severity", v.severity.value),
        _prop("control", v.control),
    ]
    if v.waiver is not None:
        props.append(_prop("waiver", v.waiver.id))
    observation: dict[str, Any] = {
        "uuid": _uuid("observation", *key, v.host, v.control, v.check, v.index),
        "title": f"{v.control} {v.check or '(no check)'}",
        "description": v.message or v.status.value,
        "props": props,
        "methods": ["EXAMINE"] if v.attestation is not None or v.check is None else ["TEST"],
        "types": ["finding"],
        "subjects": [{"subject-uuid": hosts[v.host], "type": "inventory-item", "title": v.host}],
        "collected": _time(key[1]),
    }
    if v.facts and v.host in folders:
        observation["relevant-evidence"] = [
            {"href": f"{folders[v.host]}/captures.json", "description": "captures of: " + ", ".join(v.facts)}
        ]
    return observation


def _finding(
    control: str, title: str, judged: list[tuple[Verdict, str]], key: tuple[Any, ...]
) -> dict[str, Any]:
    satisfied = all(v.status is Status.PASS for v, _ in judged if v.status in _JUDGED)
    failing = sorted(
        f"{v.host} (waived by {v.waiver.id})" if v.waived and v.waiver else v.host
        for v, _ in judged
        if v.status in (Status.FAIL, Status.ERROR)
    )
    status: dict[str, Any] = {"state": "satisfied" if satisfied else "not-satisfied"}
    if not satisfied:
        status["reason"] = "fail"
        status["remarks"] = "not satisfied on: " + ", ".join(failing)
    return {
        "uuid": _uuid("finding", *key, control),
        "title": f"{control} {title}",
        "description": f"{control} judged on {len({v.host for v, _ in judged})} host(s)",
        "target": {"type": "objective-id", "target-id": control, "status": status},
        "related-observations": [{"observation-uuid": u} for _, u in judged],
    }


def to_oscal(result: ScanResult, catalog: Catalog) -> str:
    """The OSCAL assessment results as JSON text: compact (a fleet's observations are many) and with sorted
    keys (deterministic)."""
    document = assessment_results(result, catalog)
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"
