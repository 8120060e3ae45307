"""Gate policies for CI: a thresholds file, a baseline (regressions only), and the Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hds_compliance.cli import main
from hds_compliance.errors import InputError
from hds_compliance.gate import Baseline, Thresholds, gate, load_thresholds
from hds_compliance.model import (
    HostRecord,
    ProbeRun,
    RunRecord,
    ScanResult,
    Severity,
    Status,
    Verdict,
)

LAB_CONTROLS = Path(__file__).parent / "data" / "lab_controls"


def v(host: str, control: str, status: Status, severity: Severity = Severity.HIGH, **params: Any) -> Verdict:
    return Verdict(
        host=host,
        control=control,
        check="sshd.option_at_most",
        index=0,
        params=params,
        status=status,
        severity=severity,
        message=f"{control} on {host}",
    )


def result(verdicts: list[Verdict], hosts: tuple[str, ...] = ("a", "b")) -> ScanResult:
    run = RunRecord(
        tool_version="t",
        started_at="2026-12-01T00:00:00Z",
        finished_at="2026-12-01T00:00:01Z",
        inventory="x",
        catalog_digest="d",
    )
    records = [
        HostRecord(name=h, connector="ssh", probe=ProbeRun(connected=True, complete=True)) for h in hosts
    ]
    return ScanResult(run=run, hosts=records, verdicts=verdicts)


def test_max_failures_tolerates_a_number_per_severity() -> None:
    verdicts = [v("a", "X-01", Status.FAIL, Severity.MEDIUM), v("b", "X-01", Status.FAIL, Severity.MEDIUM)]
    assert gate(verdicts, thresholds=Thresholds(max_failures={Severity.MEDIUM: 2})).passed
    over = gate(verdicts, thresholds=Thresholds(max_failures={Severity.MEDIUM: 1}))
    assert not over.passed and over.breaches == ["2 medium failure(s), at most 1 allowed"]
    # a severity the file does not list follows --fail-on
    assert not gate(verdicts, Severity.LOW, Thresholds(max_failures={Severity.HIGH: 5})).passed
    assert gate(verdicts, Severity.HIGH, Thresholds(max_failures={Severity.HIGH: 5})).passed
    # an error is never tolerated
    errors = [*verdicts, v("a", "X-02", Status.ERROR, Severity.LOW)]
    assert not gate(errors, thresholds=Thresholds(max_failures={s: 99 for s in Severity})).passed


def test_min_compliance_counts_controls_per_host() -> None:
    verdicts = [
        v("a", "X-01", Status.PASS),
        v("a", "X-02", Status.PASS),
        v("a", "X-03", Status.FAIL, Severity.LOW),
        v("b", "X-01", Status.NOT_APPLICABLE),  # not judged: not in the percentage
    ]
    loose = Thresholds(max_failures={Severity.LOW: 1}, min_compliance=66)
    assert gate(verdicts, thresholds=loose).passed
    strict = gate(verdicts, thresholds=loose.model_copy(update={"min_compliance": 67}))
    assert strict.breaches == ["compliance 66.7% (2 of 3 judged controls pass), under the 67% required"]


def test_must_pass_controls_fail_the_gate_unless_they_pass_where_they_apply() -> None:
    verdicts = [
        v("a", "X-01", Status.PASS),
        v("b", "X-01", Status.NOT_APPLICABLE),
        v("a", "X-09", Status.PASS),
    ]
    assert gate(verdicts, thresholds=Thresholds(must_pass=["X-01"])).passed
    unreviewed = [*verdicts, v("b", "X-02", Status.NOT_REVIEWED)]
    out = gate(unreviewed, thresholds=Thresholds(must_pass=["X-02", "X-03"]))
    assert out.breaches == [
        "X-02 must pass on b: it is not_reviewed",
        "X-03 must pass, but no host was judged on it",
    ]


def test_a_baseline_fails_only_regressions() -> None:
    before = result(
        [v("a", "X-01", Status.FAIL, max=4), v("a", "X-02", Status.FAIL), v("b", "X-01", Status.PASS)]
    )
    baseline = Baseline.of(before)
    now = [
        v("a", "X-01", Status.FAIL, max=4),  # still failing: tolerated
        v("a", "X-02", Status.PASS),  # fixed
        v("b", "X-01", Status.PASS),
    ]
    out = gate(now, baseline=baseline)
    assert out.passed and out.delta is not None
    assert [x.control for x in out.delta.still] == ["X-01"] and out.delta.fixed[0][1] == "X-02"
    # the same check with other parameters is another result: new, so it blocks
    changed = [v("a", "X-01", Status.FAIL, max=3), v("a", "X-02", Status.PASS), v("b", "X-01", Status.PASS)]
    out = gate(changed, baseline=baseline)
    assert not out.passed and out.delta is not None and [x.params for x in out.delta.new] == [{"max": 3}]
    # a result absent from the baseline is new
    assert not gate([*now, v("b", "X-05", Status.FAIL)], baseline=baseline).passed


def test_with_a_baseline_errors_and_missing_hosts_still_fail() -> None:
    before = result([v("a", "X-01", Status.ERROR), v("b", "X-01", Status.PASS)])
    out = gate([v("a", "X-01", Status.ERROR), v("b", "X-01", Status.PASS)], baseline=Baseline.of(before))
    assert not out.passed and [x.status for x in out.blocking] == [Status.ERROR]
    gone = gate([v("a", "X-01", Status.PASS)], baseline=Baseline.of(before))
    assert not gone.passed and gone.breaches == ["host b of the baseline is missing from this run"]


def test_a_broken_thresholds_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("max_failures:\n  hihg: 1\nmin_compliance: 120\nmust_pas: [X-01]\n")
    with pytest.raises(InputError) as exc:
        load_thresholds(path)
    text = str(exc.value)
    assert "t.yaml:2: max_failures.hihg.[key]: Input should be" in text
    assert "t.yaml:3: min_compliance: Input should be less than or equal to 100" in text
    assert "must_pas: Extra inputs are not permitted" in text


def _write(tmp_path: Path, name: str, res: ScanResult) -> Path:
    path = tmp_path / name
    path.write_text(res.model_dump_json())
    return path


def test_the_commands_print_the_delta_and_write_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _write(
        tmp_path, "before.json", result([v("a", "LAB-01", Status.FAIL), v("b", "LAB-02", Status.PASS)])
    )
    after = _write(
        tmp_path,
        "after.json",
        result([v("a", "LAB-01", Status.FAIL), v("b", "LAB-02", Status.FAIL, Severity.MEDIUM)]),
    )
    common = ["--controls", str(LAB_CONTROLS), "--baseline", str(before)]
    assert main(["report", str(before), *common]) == 0
    capsys.readouterr()
    assert main(["report", str(after), *common, "--markdown", str(tmp_path / "summary.md")]) == 1
    out = capsys.readouterr().out
    assert "baseline: 1 new failure(s) or error(s), 0 fixed, 1 still failing" in out
    assert "  new    fail  b LAB-02 sshd.option_at_most: LAB-02 on b" in out
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## ❌ gate FAILED") and "| medium | LAB-02" in summary
    assert "| high | LAB-01" in summary and "| tolerated |" in summary  # in the baseline: does not block
    # a missing baseline is invalid input, before anything is judged
    assert main(["report", str(after), "--baseline", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot read" in capsys.readouterr().err


def test_report_writes_json_that_reports_the_same(tmp_path: Path) -> None:
    before = _write(
        tmp_path, "r.json", result([v("a", "LAB-01", Status.PASS), v("b", "LAB-01", Status.PASS)])
    )
    assert (
        main(["report", str(before), "--controls", str(LAB_CONTROLS), "--json", str(tmp_path / "again.json")])
        == 0
    )
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(before.read_text())
