"""Waivers: a failing result keeps its verdict, marked; the gate, JUnit, the console and bundles follow.

Judged on real results (a local scan, minimal profile) and on verdicts built by hand for the date rules.
Every date is judged against the run's collection time, never today's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from hds_compliance.gate import gate
from hds_compliance.model import HostRecord, ProbeRun, Severity, Status, Verdict, Waiver
from hds_compliance.waivers import apply_waivers, expiring

EXE = Path(sys.executable).with_name("hds-compliance")
SCAN = ["--profile", "minimal", "--skip-tag", "fs-walk"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _waiver(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "W-1",
        "control": "SSH-01",
        "justification": "accepted until the migration",
        "risk": "medium",
        "approver": "Jane Doe (RSSI)",
        "created": "2026-11-01",
        "expires": "2027-06-30",
    }
    base.update(fields)
    return base


def _verdict(host: str = "db1", control: str = "SSH-01", status: Status = Status.FAIL) -> Verdict:
    return Verdict(
        host=host, control=control, check="c.x", index=0, status=status, severity=Severity.HIGH, message="m"
    )


def _host(name: str, groups: list[str]) -> HostRecord:
    return HostRecord(name=name, connector="ssh", groups=groups, probe=ProbeRun(connected=True))


def test_dates_hosts_and_checks_decide_which_failures_a_waiver_covers() -> None:
    hosts = [_host("db1", ["databases"]), _host("web1", ["web"])]
    verdicts = [
        _verdict("db1"),
        _verdict("web1"),
        _verdict("db1", "SSH-02"),
        _verdict("db1", status=Status.ERROR),
    ]
    by_group = Waiver.model_validate(_waiver(hosts=["databases"]))
    marked = apply_waivers(verdicts, [by_group], hosts, "2026-12-02T10:00:00Z")
    assert [v.waived for v in marked] == [True, False, False, False]  # an error is never waived
    assert [v.status for v in marked] == [v.status for v in verdicts]  # the real verdict stays
    # the first and last days are included; the day after, the result fails again and says why
    for day, holds in (
        ("2026-11-01", True),
        ("2027-06-30", True),
        ("2027-07-01", False),
        ("2026-10-31", False),
    ):
        [v] = apply_waivers([_verdict()], [by_group], hosts, f"{day}T23:59:59Z")
        assert v.waiver is not None and v.waiver.holds is holds, day
    # another check of the control is not covered by a waiver naming one check
    one_check = Waiver.model_validate(_waiver(check="c.other"))
    assert not apply_waivers([_verdict()], [one_check], hosts, "2026-12-02T00:00:00Z")[0].waiver
    # the gate: a waived failure does not block, an expired one does
    assert gate(marked[:1]).passed
    [lapsed] = apply_waivers([_verdict()], [by_group], hosts, "2027-07-01T00:00:00Z")
    assert not gate([lapsed]).passed
    soon = Waiver.model_validate(_waiver(id="W-2", expires="2026-12-20"))
    assert expiring([by_group, soon], "2026-12-02T08:00:00Z") == [soon]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("waivers")
    done = _run("scan", *SCAN, "--json", "r.json", cwd=root)
    assert done.returncode == 1, done.stderr  # this machine fails some controls: what waivers are about
    return root


def _failing_controls(results: Path) -> list[str]:
    verdicts = json.loads((results / "r.json").read_text())["verdicts"]
    return sorted({v["control"] for v in verdicts if v["status"] == "fail"})


def test_waiving_every_failure_passes_the_gate_until_the_waivers_expire(
    results: Path, tmp_path: Path
) -> None:
    failing = _failing_controls(results)
    assert failing
    run_day = json.loads((results / "r.json").read_text())["run"]["started_at"][:10]
    valid = [
        _waiver(id=f"W-{i}", control=c, created=run_day, expires="2099-01-01") for i, c in enumerate(failing)
    ]
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({"waivers": valid}))
    junit = tmp_path / "j.xml"
    done = _run("report", str(results / "r.json"), "--waivers", "w.yaml", "--junit", str(junit), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "gate PASSED" in done.stdout and "failing check(s) waived" in done.stdout
    xml = junit.read_text()
    assert 'failures="0"' in xml and "waived by W-0 (approved by Jane Doe (RSSI), until 2099-01-01)" in xml
    # the JSON keeps the real verdicts, marked, and the waivers applied
    out = tmp_path / "w.json"
    _run("report", str(results / "r.json"), "--waivers", "w.yaml", "--json", str(out), cwd=tmp_path)
    data = json.loads(out.read_text())
    fails = [v for v in data["verdicts"] if v["status"] == "fail"]
    assert fails and all(v["waiver"]["holds"] for v in fails)
    assert [w["id"] for w in data["waivers"]] == [w["id"] for w in valid]
    # evaluate of those results applies them again, without --waivers
    again = _run("evaluate", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stdout
    # expired the day before the run: they no longer apply, and the console says so
    lapsed = [dict(w, created="2020-01-01", expires="2020-12-31") for w in valid]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"waivers": lapsed}))
    done = _run("report", str(results / "r.json"), "--waivers", "old.yaml", cwd=tmp_path)
    assert (
        done.returncode == 1
        and "EXPIRED on 2020-12-31" in done.stdout
        and "whose waiver expired" in done.stdout
    )
    # ending within 30 days of the run: listed
    ending = [dict(valid[0], expires=(date.fromisoformat(run_day) + timedelta(days=20)).isoformat())]
    (tmp_path / "soon.yaml").write_text(yaml.safe_dump({"waivers": ending}))
    done = _run("report", str(results / "r.json"), "--waivers", "soon.yaml", cwd=tmp_path)
    assert f"waiver {valid[0]['id']} ends within 30 days" in done.stdout


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"approver": None}, "waivers.0.approver"),
        ({"expires": "2026-10-01"}, "expires (2026-10-01) is before created (2026-11-01)"),
        ({"control": "NOPE-99"}, "waivers.0.control: unknown control 'NOPE-99'"),
        ({"risk": "whatever"}, "waivers.0.risk"),
        ({"colour": "red"}, "waivers.0.colour"),
    ],
)
def test_a_wrong_waivers_file_is_invalid_input_with_file_and_line(
    results: Path, tmp_path: Path, change: dict[str, object], said: str
) -> None:
    waiver = {k: v for k, v in {**_waiver(), **change}.items() if v is not None}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({"waivers": [waiver]}, sort_keys=False))
    done = _run("report", str(results / "r.json"), "--waivers", "w.yaml", cwd=tmp_path)
    assert done.returncode == 2 and said in done.stderr and "w.yaml:" in done.stderr, done.stderr
    # a scan stops before any host is contacted
    done = _run("scan", *SCAN, "--waivers", "w.yaml", "--json", "x.json", cwd=tmp_path)
    assert done.returncode == 2 and not (tmp_path / "x.json").exists()


def test_a_bundle_carries_its_waivers_and_verify_applies_them_again(results: Path, tmp_path: Path) -> None:
    from hds_compliance.evidence.bundle import ENVELOPE, MANIFEST, WAIVERS, read_bundle, result_of, signed
    from hds_compliance.evidence.signing import load_private, load_public
    from hds_compliance.evidence.verify import verify

    failing = _failing_controls(results)
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({"waivers": [_waiver(control=failing[0])]}))
    assert _run("keygen", "k", cwd=tmp_path).returncode == 0
    argv = ["--waivers", "w.yaml", "--bundle", "b", "--sign-key", "k/signing.key"]
    done = _run("report", str(results / "r.json"), *SCAN, *argv, cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    key = load_public(tmp_path / "k/signing.pub")
    assert verify(read_bundle(tmp_path / "b"), key).problems == []
    # the waiver's dates changed, signed again: the marks no longer follow
    files = read_bundle(tmp_path / "b").files
    waivers = json.loads(files[WAIVERS])
    waivers[0]["expires"] = "2026-11-02"
    files[WAIVERS] = json.dumps(waivers).encode()
    result, _ = result_of(files)
    rest = {k: v for k, v in files.items() if k not in (MANIFEST, ENVELOPE)}
    for name, data in signed(rest, load_private(tmp_path / "k/signing.key"), result.run).items():
        (tmp_path / "b" / name).write_bytes(data)
    problems = verify(read_bundle(tmp_path / "b"), key).problems
    assert problems and "fail both times; message, facts, severity or waiver differ" in problems[0]
