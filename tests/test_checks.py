"""Every check, evaluated from recorded captures without any host (the pyinfra way: data in, verdict out).

Cases live in ``tests/captures/<area>.yaml``::

    cases:
      - check: sshd.option
        name: what the case shows
        params: {name: x11forwarding, expect: "no"}   # optional
        host: {location_country: FR}                 # optional inventory data
        now: "2026-12-02T10:00:00Z"                   # optional: when the host was probed (ctx.clock())
        captures: {<fact key>: {exit_code: 0, stdout: "..."}}
        expect: fail                                  # pass | fail | error | not_applicable | not_reviewed
        message: X11Forwarding is yes                 # optional substring of the verdict message

A fleet check's case names several hosts and expects an outcome for each host it judges::

      - check: fleet.ssh_admin_only_from_bastions
        name: a database open to the world
        hosts:
          bastion1: {host: {roles: [bastion], ssh_hostname: 10.0.0.1}, captures: {...}}
          db1: {host: {roles: [database]}, captures: {...}}
        outside: {bastion2: [bastion]}               # optional: inventory hosts left out of the scan
        broken: {db2: "host unreachable: timed out"}  # optional: hosts whose probe failed
        expect: {db1: fail}                           # the judged hosts and their outcome
        message: {db1: "port 22"}                     # optional substrings
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hds_compliance.check import Context, FactUnavailable, Fleet, HostInfo, registry
from hds_compliance.model import BackupRepository, Capture, Status

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


def _host(name: str, data: dict[str, Any]) -> HostInfo:
    out = dict(data)
    for key in ("hds_activities", "roles", "tls_endpoints"):
        if key in out and out[key] is not None:
            out[key] = tuple(out[key])
    if "backup_repositories" in out:
        out["backup_repositories"] = tuple(BackupRepository(**r) for r in out["backup_repositories"])
    return HostInfo(name=name, connector="ssh", **out)


def _context(spec: Any, params: Any, host: HostInfo, raw: dict[str, Any], now: str | None) -> Context:
    captures = {key: Capture(fact=key, command="(recorded)", **fields) for key, fields in (raw or {}).items()}
    declared = frozenset(f.key for f in spec.facts_for(params, host))
    clock = datetime.fromisoformat(now.replace("Z", "+00:00")) if now else None
    return Context(host=host, captures=captures, declared=declared, now=clock)


def run_case(case: dict[str, Any]) -> tuple[Status, str]:
    """Evaluate one recorded single-host case the way the evaluator does."""
    spec = REGISTRY[case["check"]]
    params = spec.validate(case.get("params") or {})
    ctx = _context(
        spec, params, _host("recorded", case.get("host") or {}), case.get("captures"), case.get("now")
    )
    try:
        outcome = spec.func(params, ctx)
    except FactUnavailable as exc:
        return Status.ERROR, str(exc)
    return outcome.status, outcome.message


def run_fleet_case(case: dict[str, Any]) -> dict[str, tuple[Status, str]]:
    """Evaluate one recorded fleet case: the outcome of every judged host."""
    spec = REGISTRY[case["check"]]
    params = spec.validate(case.get("params") or {})
    hosts = {
        name: _context(spec, params, _host(name, h.get("host") or {}), h.get("captures"), case.get("now"))
        for name, h in case["hosts"].items()
    }
    fleet = Fleet(
        hosts=hosts,
        judged=list(case["expect"]),
        broken=dict(case.get("broken") or {}),
        outside={name: tuple(roles) for name, roles in (case.get("outside") or {}).items()},
    )
    assert spec.fleet is not None
    outcomes = spec.fleet(params, fleet)
    return {name: (o.status, o.message) for name, o in outcomes.items()}


def _is_fleet(case: dict[str, Any]) -> bool:
    return "hosts" in case


def _expected(case: dict[str, Any]) -> set[str]:
    return set(case["expect"].values()) if _is_fleet(case) else {case["expect"]}


@pytest.mark.parametrize("case", CASES, ids=[f"{c['check']}: {c['name']}" for c in CASES])
def test_recorded_case(case: dict[str, Any]) -> None:
    if not _is_fleet(case):
        status, message = run_case(case)
        assert status.value == case["expect"], message
        if "message" in case:
            assert case["message"].lower() in message.lower()
        return
    outcomes = run_fleet_case(case)
    assert set(outcomes) == set(case["expect"]), "a fleet check gives an outcome for every judged host"
    for name, expected in case["expect"].items():
        status, message = outcomes[name]
        assert status.value == expected, f"{name}: {message}"
        wanted = (case.get("message") or {}).get(name)
        if wanted:
            assert wanted.lower() in message.lower(), f"{name}: {message}"


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_every_check_has_a_passing_and_a_failing_capture(check_id: str) -> None:
    outcomes = set().union(*[_expected(c) for c in CASES if c["check"] == check_id])
    assert {"pass", "fail"} <= outcomes, f"{check_id} has cases for {sorted(outcomes)} only"


def _passing(check_id: str) -> dict[str, Any]:
    return next(c for c in CASES if c["check"] == check_id and "pass" in _expected(c))


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_a_check_without_its_facts_is_an_error_never_a_pass(check_id: str) -> None:
    """No capture and no inventory data at all: the check must not pass."""
    case = _passing(check_id)
    if _is_fleet(case):
        hosts = {name: {"host": {}, "captures": {}} for name in case["hosts"]}
        outcomes = run_fleet_case({**case, "hosts": hosts})
        assert all(status is not Status.PASS for status, _ in outcomes.values()), outcomes
        return
    status, _ = run_case({**case, "captures": {}, "host": {}})
    assert status in (Status.ERROR, Status.FAIL), status


def _truncate(captures: dict[str, Any] | None) -> dict[str, Any]:
    return {
        k: {**v, "truncated": True, "problem": "output exceeded the cap"} for k, v in (captures or {}).items()
    }


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_a_truncated_capture_is_an_error(check_id: str) -> None:
    case = _passing(check_id)
    if _is_fleet(case):
        hosts = {n: {**h, "captures": _truncate(h.get("captures"))} for n, h in case["hosts"].items()}
        if not any(h["captures"] for h in hosts.values()):
            pytest.skip("reads inventory data only")
        outcomes = run_fleet_case({**case, "hosts": hosts})
        assert all(status is not Status.PASS for status, _ in outcomes.values()), outcomes
        return
    if not case.get("captures"):
        pytest.skip("reads inventory data only")
    status, message = run_case({**case, "captures": _truncate(case["captures"])})
    assert status is Status.ERROR, message
