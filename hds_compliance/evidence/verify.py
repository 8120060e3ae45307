"""``verify``: check a bundle without trusting its maker, offline.

In order: the signature of the manifest by the public key given (the envelope must name that key and
carry exactly ``manifest.json``), every file against the manifest (none altered, missing or added), the
shards' signatures of a merged bundle, then the verdicts: the catalogue snapshot is loaded, its digest
must be the run's, the check code and schema must be this tool's (``--force`` goes on anyway and says
so), and every verdict (with the attestations and waivers the bundle holds, applied on its collection
day) must be what judging the stored captures again gives; attested documents the bundle holds must be
the ones attested. With ``reports``, the JUnit, HTML and OSCAL files must also be what the verdicts judged
again give, byte for byte. Every problem is named; none stops the others from being looked for, except
where the files they need are missing or do not parse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hds_compliance.attestations import apply_attestations
from hds_compliance.catalog import Catalog
from hds_compliance.evidence.bundle import (
    ENVELOPE,
    HTML,
    INCOMPLETE,
    JUNIT,
    MANIFEST,
    OSCAL,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Bundle,
    document_path,
    result_of,
)
from hds_compliance.evidence.signing import SignatureProblem, open_envelope
from hds_compliance.evidence.snapshot import CODE, code_digest, load_snapshot
from hds_compliance.model import SCHEMA_VERSION, ScanResult
from hds_compliance.waivers import apply_waivers

_SHOWN = 20  # verdicts that do not follow, named one by one; the rest are counted


@dataclass
class Verification:
    """What ``verify`` found: problems (none: the bundle holds), notes, and what was checked."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    verdicts: int = 0


def verify(bundle: Bundle, key: Ed25519PublicKey, force: bool = False, reports: bool = False) -> Verification:
    """Check ``bundle`` against ``key``; see the module's documentation."""
    out = Verification(problems=list(bundle.problems))
    files = bundle.files
    listed = _manifest(files, key, out)
    if listed is not None:
        _integrity(files, listed, out)
    if INCOMPLETE in files:
        out.problems.append(f"{INCOMPLETE}: the scan was interrupted: the bundle holds only some hosts")
    _shards(files, key, out)
    _reevaluate(files, out, force, reports)
    return out


def _manifest(files: dict[str, bytes], key: Ed25519PublicKey, out: Verification) -> dict[str, Any] | None:
    """The manifest's subjects (name -> sha256) and sizes, once its signature holds."""
    if ENVELOPE not in files or MANIFEST not in files:
        missing = [name for name in (MANIFEST, ENVELOPE) if name not in files]
        out.problems.append(f"{', '.join(missing)}: missing: the bundle is not signed")
        return None
    try:
        opened = open_envelope(files[ENVELOPE], key)
    except SignatureProblem as exc:
        out.problems.append(f"{ENVELOPE}: {exc}")
        return None
    if opened.payload != files[MANIFEST]:
        out.problems.append(f"{MANIFEST}: altered: not the manifest the envelope signs")
        return None
    try:
        doc = json.loads(opened.payload)
        if doc["_type"] != STATEMENT_TYPE or doc["predicateType"] != PREDICATE_TYPE:
            raise ValueError("not an evidence manifest")
        subjects = {s["name"]: s["digest"]["sha256"] for s in doc["subject"]}
        sizes = {name: int(size) for name, size in doc["predicate"]["sizes"].items()}
    except (ValueError, KeyError, TypeError) as exc:  # signed, yet not ours: a key that signs anything
        out.problems.append(f"{MANIFEST}: signed, but not an evidence manifest ({exc})")
        return None
    return {"subjects": subjects, "sizes": sizes}


def _shards(files: dict[str, bytes], key: Ed25519PublicKey, out: Verification) -> None:
    """A bundle merged from signed shard bundles keeps each shard's manifest and envelope: each must be
    signed by the key, and the hosts' captures of the shards must be exactly the merged bundle's."""
    envelopes = sorted(n for n in files if n.startswith("shards/") and n.endswith("/" + ENVELOPE))
    if not envelopes:
        return
    here = {
        hashlib.sha256(data).hexdigest(): name for name, data in files.items() if name.endswith(_CAPTURES)
    }
    signed: set[str] = set()
    for name in envelopes:
        base = name[: -len(ENVELOPE)]
        try:
            opened = open_envelope(files[name], key)
        except SignatureProblem as exc:
            out.problems.append(f"{name}: {exc}")
            continue
        if opened.payload != files.get(base + MANIFEST):
            out.problems.append(f"{base}{MANIFEST}: not the manifest the shard's envelope signs")
            continue
        for subject in json.loads(opened.payload)["subject"]:
            if subject["name"].endswith(_CAPTURES):
                digest = subject["digest"]["sha256"]
                signed.add(digest)
                if digest not in here:
                    out.problems.append(f"{base}: the captures it signed as {subject['name']} are not here")
    for digest, name in sorted(here.items(), key=lambda item: item[1]):
        if digest not in signed:
            out.problems.append(f"{name}: captures no shard signed")


_CAPTURES = "/captures.json"


def _integrity(files: dict[str, bytes], listed: dict[str, Any], out: Verification) -> None:
    subjects: dict[str, str] = listed["subjects"]
    for name in sorted(subjects):
        data = files.get(name)
        if data is None:
            out.problems.append(f"{name}: missing (the manifest lists it)")
        elif hashlib.sha256(data).hexdigest() != subjects[name] or len(data) != listed["sizes"].get(name):
            out.problems.append(f"{name}: altered (its SHA-256 is not the manifest's)")
        out.files += 1
    for name in sorted(set(files) - set(subjects) - {MANIFEST, ENVELOPE}):
        out.problems.append(f"{name}: not in the manifest (added after signing)")


def _reevaluate(files: dict[str, bytes], out: Verification, force: bool, reports: bool) -> None:
    """Judge the stored captures again with the stored catalogue; name every verdict that differs (and,
    with ``reports``, every report that is not what the verdicts judged again give)."""
    from hds_compliance.check import registry
    from hds_compliance.errors import InputError
    from hds_compliance.evaluate import evaluate

    try:
        result, run = result_of(files, verdicts=False)
        bundled_code = json.loads(files[CODE])["digest"]
    except (ValueError, KeyError, TypeError) as exc:
        out.problems.append(f"cannot judge the verdicts again: {exc}")
        return
    if run.get("schema_version") != SCHEMA_VERSION:
        what = f"run.json: schema_version {run.get('schema_version')}, this tool reads {SCHEMA_VERSION}"
        if not force:
            out.problems.append(f"{what}: verdicts not judged again (--force judges them anyway)")
            return
        out.notes.append(f"{what}: judged again anyway (--force)")
    ours = code_digest()
    if bundled_code != ours or run["evaluation"]["code_digest"] != bundled_code:
        what = f"the check code differs from this tool's (bundle {str(bundled_code)[:12]}, tool {ours[:12]})"
        if not force:
            out.problems.append(f"{what}: verdicts not judged again (--force judges them anyway)")
            return
        out.notes.append(f"{what}: judged again anyway (--force)")
    try:
        catalog = load_snapshot(files)
    except (InputError, ValueError, KeyError, OSError) as exc:
        out.problems.append(f"catalog/: the catalogue snapshot does not load: {str(exc).splitlines()[0]}")
        return
    if catalog.digest != result.run.catalog_digest:
        out.problems.append(
            f"catalog/: the snapshot's digest {catalog.digest[:12]} is not the run's "
            f"{result.run.catalog_digest[:12]}: not the catalogue the verdicts were judged with"
        )
        return
    again = evaluate(catalog, registry(), result.hosts, result.run.scope, result.run.started_at)
    again = apply_attestations(again, result.attestations, result.hosts, result.run.started_at)
    again = apply_waivers(again, result.waivers, result.hosts, result.run.started_at)
    if run["evaluation"]["documents"] == "included":
        for doc in (d for a in result.attestations for d in a.documents):
            data = files.get(document_path(doc))
            if data is None or hashlib.sha256(data).hexdigest() != doc.sha256:
                out.problems.append(f"{document_path(doc)}: not the attested document {doc.path} (sha256)")
    out.verdicts = len(again)
    judged = result.model_copy(update={"verdicts": again})
    _compare_hosts(files, run, judged, out)
    if reports:
        _rebuilt(files, run, judged, catalog, out)


def _compare_hosts(
    files: dict[str, bytes], run: dict[str, Any], judged: ScanResult, out: Verification
) -> None:
    """Each host's verdicts judged again, written as the bundle writes them, against its stored file: the
    same bytes, or the verdicts that differ named (only then are the stored ones parsed)."""
    from hds_compliance.report import VERDICTS

    fresh = judged.verdicts_by_host()
    for entry in run["hosts"]:
        name = f"{entry['folder']}/verdicts.json"
        mine = fresh.get(entry["name"], [])
        if VERDICTS.dump_json(mine, indent=2) + b"\n" == files.get(name):
            continue
        try:
            stored = VERDICTS.validate_json(files[name])
        except (KeyError, ValueError) as exc:
            out.problems.append(f"{name}: cannot be read ({str(exc).splitlines()[0]})")
            continue
        _compare(stored, mine, out)


def _rebuilt(
    files: dict[str, bytes], run: dict[str, Any], judged: ScanResult, catalog: Catalog, out: Verification
) -> None:
    """The reports a bundle holds, made again from the verdicts judged again: the same bytes, or named."""
    from hds_compliance.html import to_html
    from hds_compliance.junit import to_junit
    from hds_compliance.oscal import to_oscal

    gate = run["evaluation"]["gate"]
    made: dict[str, Callable[[], str]] = {
        JUNIT: lambda: to_junit(judged, catalog),
        OSCAL: lambda: to_oscal(judged, catalog),
        HTML: lambda: to_html(
            judged, catalog, (gate["exit_code"] == 0, gate["line"]), [("signed by", run["signer"])]
        ),
    }
    for name, make in made.items():
        if name in files and make().encode("utf-8") != files[name]:
            out.problems.append(f"{name}: not the report the verdicts judged again give")


def _compare(stored: list[Any], again: list[Any], out: Verification) -> None:
    def key(v: Any) -> tuple[str, str, str, int]:
        return (v.host, v.control, v.check or "", v.index)

    fresh = {key(v): v for v in again}
    seen = set()
    differ = []
    for verdict in stored:
        k = key(verdict)
        seen.add(k)
        other = fresh.get(k)
        if other is None:
            differ.append(f"{_name(k)}: in the bundle, but judging again gives no such verdict")
        elif other.status != verdict.status:
            differ.append(
                f"{_name(k)}: bundle says {verdict.status.value}, judging again gives {other.status.value}"
            )
        elif other != verdict:
            differ.append(
                f"{_name(k)}: {verdict.status.value} both times; message, facts, severity or waiver differ"
            )
    differ += [f"{_name(k)}: judging again gives a verdict the bundle lacks" for k in fresh if k not in seen]
    for line in differ[:_SHOWN]:
        out.problems.append(f"verdict does not follow: {line}")
    if len(differ) > _SHOWN:
        out.problems.append(f"... and {len(differ) - _SHOWN} more verdicts that do not follow")


def _name(key: tuple[str, str, str, int]) -> str:
    host, control, check, index = key
    return f"host {host!r} control {control} check {check or '-'}#{index}"
