"""OSCAL assessment results, read by compliance-trestle (in a venv of its own: it pins a paramiko that
pyinfra refuses; ``scripts/install.sh dev`` makes ``.venv-oscal``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("hds-compliance")
TRESTLE_PYTHON = Path(__file__).resolve().parents[1] / ".venv-oscal" / "bin" / "python"
# Reads the file with trestle's own model of assessment results (pydantic, OSCAL's constraints), then
# prints what it understood: findings by state, observations, subjects.
_READ = """
import json, sys
from collections import Counter
from pathlib import Path
from trestle.oscal.assessment_results import AssessmentResults
ar = AssessmentResults.oscal_read(Path(sys.argv[1]))
[result] = ar.results
print(json.dumps({
    "findings": dict(Counter(f.target.status.state.value for f in result.findings)),
    "observations": len(result.observations),
    "subjects": sorted({s.title for o in result.observations for s in o.subjects}),
    "targets": sorted(f.target.target_id for f in result.findings),
}))
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_compliance_trestle_reads_the_assessment_results(tmp_path: Path) -> None:
    if not TRESTLE_PYTHON.is_file():
        pytest.fail(f"{TRESTLE_PYTHON} is missing: scripts/install.sh dev makes it")
    done = _run(
        "scan",
        "--profile",
        "minimal",
        "--skip-tag",
        "fs-walk",
        "--json",
        "r.json",
        "--oscal",
        "ar.json",
        cwd=tmp_path,
    )
    assert done.returncode in (0, 1), done.stderr
    read = subprocess.run(
        [str(TRESTLE_PYTHON), "-c", _READ, "ar.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr[-3000:]
    seen = json.loads(read.stdout)
    results = json.loads((tmp_path / "r.json").read_text())
    verdicts = results["verdicts"]
    assert seen["observations"] == len(verdicts)
    assert seen["subjects"] == [h["name"] for h in results["hosts"]]
    judged = {v["control"] for v in verdicts if v["status"] in ("pass", "fail", "error")}
    failing = {v["control"] for v in verdicts if v["status"] in ("fail", "error")}
    assert seen["targets"] == sorted(judged)
    assert seen["findings"] == {"not-satisfied": len(failing), "satisfied": len(judged - failing)}
    # the same result, the same bytes (UUIDs from content)
    again = _run("report", "r.json", "--oscal", "again.json", cwd=tmp_path)
    assert again.returncode in (0, 1)
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "ar.json").read_bytes()
