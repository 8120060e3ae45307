"""Every check, evaluated from recorded captures without any host (the pyinfra way: data in, verdict out).

Cases live in ``tests/captures/<area>.yaml``::

    cases:
      - check: sshd.option
        name: what the case shows
        params: {name: x11forwarding, expect: "no"}   # optional
        host: {location_country: FR}                 # optional inventory data
        captures: {<fact key>: {exit_code: 0, stdout: "..."}}
        expect: fail                                  # pass | fail | error | not_applicable
        message: X11Forwarding is yes                 # optional substring of the verdict message
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hds_compliance.check import Context, FactUnavailable, HostInfo, registry
from hds_compliance.model import Capture, Status

CAPTURES = Path(__file__).parent / "captures"
REGISTRY = registry()


def _cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(CAPTURES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            case["file"] = path.name
            cases.append(case)
    return cases


CASES = _cases()


def run_case(case: dict[str, Any]) -> tuple[Status, str]:
    """Evaluate one recorded case the way the evaluator does."""
    spec = REGISTRY[case["check"]]
    params = spec.validate(case.get("params") or {})
    captures = {
        key: Capture(fact=key, command="(recorded)", **fields)
        for key, fields in (case.get("captures") or {}).items()
    }
    host = HostInfo(name="recorded", connector="ssh", **_host(case.get("host") or {}))
    declared = frozenset(f.key for f in spec.facts_for(params, host))
    try:
        outcome = spec.func(params, Context(host=host, captures=captures, declared=declared))
    except FactUnavailable as exc:
        return Status.ERROR, str(exc)
    return outcome.status, outcome.message


def _host(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in ("hds_activities", "roles"):
        if key in out and out[key] is not None:
            out[key] = tuple(out[key])
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c['check']}: {c['name']}" for c in CASES])
def test_recorded_case(case: dict[str, Any]) -> None:
    status, message = run_case(case)
    assert status.value == case["expect"], message
    if "message" in case:
        assert case["message"].lower() in message.lower()


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_every_check_has_a_passing_and_a_failing_capture(check_id: str) -> None:
    outcomes = {case["expect"] for case in CASES if case["check"] == check_id}
    assert {"pass", "fail"} <= outcomes, f"{check_id} has cases for {sorted(outcomes)} only"


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_a_check_without_its_facts_is_an_error_never_a_pass(check_id: str) -> None:
    """No capture at all (host sent nothing): the check must not pass."""
    case = next(c for c in CASES if c["check"] == check_id and c["expect"] == "pass")
    status, _ = run_case({**case, "captures": {}, "host": {}})
    assert status in (Status.ERROR, Status.FAIL), status


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_a_truncated_capture_is_an_error(check_id: str) -> None:
    case = next(c for c in CASES if c["check"] == check_id and c["expect"] == "pass")
    if not case.get("captures"):
        pytest.skip("reads inventory data only")
    broken = {
        key: {**fields, "truncated": True, "problem": "output exceeded the cap"}
        for key, fields in case["captures"].items()
    }
    status, message = run_case({**case, "captures": broken})
    assert status is Status.ERROR, message
