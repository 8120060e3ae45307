"""The CI examples: valid for GitLab and GitHub (check-jsonschema's own copies of their schemas), and their
commands, run here as the CI jobs would run them (matrix shards, then the merge job) on this machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BIN = Path(sys.executable).parent
INVENTORY = "local = [('@local', {'hds_activities': [1, 2, 3, 4, 5, 6], 'location_country': 'FR'})]\n"


@pytest.mark.parametrize(
    ("example", "schema"),
    [("gitlab-ci.yml", "vendor.gitlab-ci"), ("github-actions.yml", "vendor.github-workflows")],
)
def test_the_examples_are_valid_for_their_ci(example: str, schema: str) -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    unresolved = re.findall(r"\$\{\{[^}]*\}\}", line)
    assert not unresolved, f"an expression this test does not resolve: {unresolved}"
    return subprocess.run(["sh", "-ec", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _env(tmp_path: Path, variables: dict[str, Any]) -> dict[str, str]:
    (tmp_path / "inventories").mkdir(exist_ok=True)
    (tmp_path / "inventories" / "production.py").write_text(INVENTORY)
    return {**os.environ, **{k: str(v) for k, v in variables.items()}, "PATH": f"{BIN}:{os.environ['PATH']}"}


def _check_run(tmp_path: Path, gate: subprocess.CompletedProcess[str]) -> None:
    assert gate.returncode in (0, 1), gate.stderr  # the gate's verdict on this machine, whichever it is
    results = json.loads((tmp_path / "results.json").read_text())
    assert [h["name"] for h in results["hosts"]] == ["@local"] and results["run"]["scope"]["outside"] == {}
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")  # validated against the XSD by conftest


def test_the_gitlab_jobs_run_as_written(tmp_path: Path) -> None:
    pipeline = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    variables = pipeline["variables"]
    scan = pipeline["hds-scan"]
    for entry in scan["parallel"]["matrix"]:
        for shard in entry["SHARD"]:
            env = _env(tmp_path, {**variables, "SHARD": shard})
            for line in scan["script"]:
                done = _run(line, tmp_path, env)
                assert done.returncode == 0, (shard, done.stdout, done.stderr)
    assert sorted(p.name for p in tmp_path.glob("shard-*.json")) == [f"shard-{k}.json" for k in range(1, 5)]
    *setup, gate_line = pipeline["hds-gate"]["script"]
    assert not setup
    gate = _run(gate_line, tmp_path, _env(tmp_path, variables))
    _check_run(tmp_path, gate)
    assert (tmp_path / "summary.md").read_text().startswith("## ")


def test_the_github_jobs_run_as_written(tmp_path: Path) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    variables = workflow["env"]
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    env = _env(tmp_path, {**variables, "GITHUB_STEP_SUMMARY": summary})

    def runs(job: str) -> list[str]:
        steps = workflow["jobs"][job]["steps"]
        return [s["run"] for s in steps if "run" in s and s.get("id") != "install"]

    for shard in workflow["jobs"]["scan"]["strategy"]["matrix"]["shard"]:
        for line in runs("scan"):
            done = _run(line.replace("${{ matrix.shard }}", str(shard)), tmp_path, env)
            assert done.returncode == 0, (shard, done.stdout, done.stderr)
    (gate_line,) = runs("gate")
    _check_run(tmp_path, _run(gate_line, tmp_path, env))
    assert summary.read_text().startswith("## ")
