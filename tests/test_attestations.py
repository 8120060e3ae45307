"""Attestations: a person's statement, with hashed documents, decides a control no check can prove.

On real results (a local scan, minimal profile): the not_reviewed verdict of a control without checks
becomes pass or fail on the run's day, or stays not_reviewed and says why; bundles keep the documents (or
their digests) and verify applies the attestations again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hds_compliance.attestations import apply_attestations
from hds_compliance.model import Attestation, HostRecord, ProbeRun, Severity, Status, Verdict

EXE = Path(sys.executable).with_name("hds-compliance")
SCAN = ["--profile", "minimal", "--skip-tag", "fs-walk"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _entry(control: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "A-1",
        "control": control,
        "statement": "the committee approved it",
        "status": "satisfied",
        "attested_by": "Jean Martin (RSSI)",
        "date": "2026-03-02",
        "valid_until": "2099-03-01",
        "documents": ["docs/proof.txt"],
    }
    base.update(fields)
    return base


def test_the_run_day_decides_what_an_attestation_says() -> None:
    host = HostRecord(name="h", connector="ssh", probe=ProbeRun(connected=True))
    todo = Verdict(
        host="h",
        control="GOV-01",
        check=None,
        index=0,
        status=Status.NOT_REVIEWED,
        severity=Severity.MEDIUM,
        message="needs",
    )
    checked = todo.model_copy(update={"check": "x.y", "status": Status.FAIL})
    attestation = Attestation.model_validate(_entry("GOV-01", documents=[], valid_until="2026-12-31"))
    cases = [
        ("2026-12-02", "satisfied", Status.PASS, "attested satisfied by Jean Martin (RSSI) on 2026-03-02"),
        ("2026-12-31", "not_satisfied", Status.FAIL, "attested not satisfied"),
        ("2027-01-01", "satisfied", Status.NOT_REVIEWED, "(it expired on 2026-12-31)"),
        ("2026-03-01", "satisfied", Status.NOT_REVIEWED, "(it is dated 2026-03-02)"),
    ]
    for day, status, want, said in cases:
        given = attestation.model_copy(update={"status": status})
        judged, untouched = apply_attestations([todo, checked], [given], [host], f"{day}T12:00:00Z")
        assert judged.status is want and said in judged.message, (day, judged.message)
        assert judged.attestation is not None and judged.attestation.holds is (
            want is not Status.NOT_REVIEWED
        )
        assert untouched == checked  # a verdict a check gave is never an attestation's


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("attest")
    assert _run("scan", *SCAN, "--json", "r.json", cwd=root).returncode in (0, 1)
    assert _run("keygen", "k", cwd=root).returncode == 0
    (root / "docs").mkdir()
    (root / "docs/proof.txt").write_text("minutes of the ISMS committee, 2026-03-02\n")
    return root


def _attestable(work: Path) -> str:
    """A control of the run without checks, that nobody reviewed."""
    verdicts = json.loads((work / "r.json").read_text())["verdicts"]
    return next(v["control"] for v in verdicts if v["check"] is None and v["status"] == "not_reviewed")


def test_an_attestation_decides_its_control_and_records_its_documents(work: Path) -> None:
    control = _attestable(work)
    (work / "a.yaml").write_text(yaml.safe_dump({"attestations": [_entry(control)]}))
    done = _run("report", "r.json", "--attestations", "a.yaml", "--json", "out.json", cwd=work)
    assert done.returncode in (0, 1), done.stderr
    data = json.loads((work / "out.json").read_text())
    digest = hashlib.sha256((work / "docs/proof.txt").read_bytes()).hexdigest()
    [verdict] = [v for v in data["verdicts"] if v["control"] == control]
    assert verdict["status"] == "pass" and f"docs/proof.txt (sha256 {digest[:12]})" in verdict["message"]
    assert data["attestations"][0]["documents"] == [
        {"path": "docs/proof.txt", "sha256": digest, "size": (work / "docs/proof.txt").stat().st_size}
    ]
    # expired on the run's day: not reviewed again, and it says so
    (work / "old.yaml").write_text(
        yaml.safe_dump({"attestations": [_entry(control, valid_until="2026-03-03")]})
    )
    _run("report", "r.json", "--attestations", "old.yaml", "--json", "old.json", cwd=work)
    [verdict] = [
        v for v in json.loads((work / "old.json").read_text())["verdicts"] if v["control"] == control
    ]
    assert verdict["status"] == "not_reviewed" and "it expired on 2026-03-03" in verdict["message"]


def test_a_wrong_attestations_file_is_invalid_input(work: Path) -> None:
    verdicts = json.loads((work / "r.json").read_text())["verdicts"]
    checked = next(v["control"] for v in verdicts if v["check"] is not None)
    cases = [
        (_entry(checked), "is judged by its checks, not attested"),
        (_entry("NOPE-01"), "unknown control 'NOPE-01'"),
        (_entry(_attestable(work), documents=["docs/missing.pdf"]), "cannot read docs/missing.pdf"),
        (_entry(_attestable(work), status="maybe"), "attestations.0.status"),
    ]
    for entry, said in cases:
        (work / "bad.yaml").write_text(yaml.safe_dump({"attestations": [entry]}))
        done = _run("report", "r.json", "--attestations", "bad.yaml", cwd=work)
        assert done.returncode == 2 and said in done.stderr and "bad.yaml:" in done.stderr, done.stderr


def test_valid_until_defaults_to_the_controls_validity(work: Path) -> None:
    from hds_compliance.attestations import load_attestations
    from hds_compliance.catalog import load_catalog

    control = _attestable(work)
    entry = {k: v for k, v in _entry(control).items() if k != "valid_until"}
    (work / "d.yaml").write_text(yaml.safe_dump({"attestations": [entry]}))
    catalog = load_catalog(profile="minimal")
    days = next(c for c in catalog.controls if c.id == control).attestation.validity_days  # type: ignore[union-attr]
    [attestation] = load_attestations(work / "d.yaml", catalog)
    assert (attestation.valid_until - attestation.date).days == days


def test_bundles_keep_the_documents_or_their_digests_and_verify_them(work: Path) -> None:
    from hds_compliance.evidence.bundle import ENVELOPE, MANIFEST, read_bundle, result_of, signed
    from hds_compliance.evidence.signing import load_private, load_public
    from hds_compliance.evidence.verify import verify

    control = _attestable(work)
    (work / "a.yaml").write_text(yaml.safe_dump({"attestations": [_entry(control)]}))
    sign = ["--sign-key", "k/signing.key"]
    key = load_public(work / "k/signing.pub")
    digest = hashlib.sha256((work / "docs/proof.txt").read_bytes()).hexdigest()
    assert _run(
        "report", "r.json", *SCAN, "--attestations", "a.yaml", "--bundle", "b", *sign, cwd=work
    ).returncode in (0, 1)
    assert (work / f"b/documents/{digest}/proof.txt").read_bytes() == (work / "docs/proof.txt").read_bytes()
    assert verify(read_bundle(work / "b"), key).problems == []
    argv = ["--attestations", "a.yaml", "--no-documents", "--bundle", "nd", *sign]
    assert _run("report", "r.json", *SCAN, *argv, cwd=work).returncode in (0, 1)
    assert not (work / "nd/documents").exists()
    assert json.loads((work / "nd/run.json").read_text())["evaluation"]["documents"] == "omitted"
    assert verify(read_bundle(work / "nd"), key).problems == []
    # another document under the attested name, signed again: verify names it
    files = read_bundle(work / "b").files
    files[f"documents/{digest}/proof.txt"] = b"forged minutes\n"
    result, _ = result_of(files)
    rest = {k: v for k, v in files.items() if k not in (MANIFEST, ENVELOPE)}
    for name, data in signed(rest, load_private(work / "k/signing.key"), result.run).items():
        (work / "b" / name).write_bytes(data)
    problems = verify(read_bundle(work / "b"), key).problems
    assert problems == [f"documents/{digest}/proof.txt: not the attested document docs/proof.txt (sha256)"]


def test_coverage_counts_the_requirements_attested_today(tmp_path: Path) -> None:
    entries = [
        _entry("GOV-04", documents=[]),
        _entry("GOV-05", id="A-2", documents=[], valid_until="2026-03-03"),  # expired: not counted
    ]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"attestations": entries}))
    done = _run("coverage", "--format", "json", "--attestations", "a.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in json.loads(done.stdout)["frameworks"]["hds"]["requirements"]}
    assert rows["EXI 01"]["attested"] == ["GOV-04"] and rows["EXI 02"]["attested"] == []
    text = _run("coverage", "--attestations", "a.yaml", cwd=tmp_path).stdout
    [line] = [ln for ln in text.splitlines() if ln.startswith("EXI 01 ")]
    assert " 1/1 " in line
