"""Gate: turn verdicts into the exit code CI trusts.

The exit codes every command shares (``--help`` and the README print the same table):

0 gate passed; 1 gate failed: a ``fail`` on a control at or above the ``--fail-on`` severity, any ``error``
(an unverified control is never a silent pass), or a run that judged nothing; 2 invalid input; 3 an output
could not be written; 130 / 143 interrupted (SIGINT / SIGTERM).

A pipeline can tighten or loosen what blocks with a thresholds file (maximum failures per severity, a
minimum compliance percentage, controls that must pass) and judge only regressions against a baseline
(an earlier run's results). Whatever the policy, an ``error`` always blocks, a run that judged nothing
never passes, and a host of the baseline missing from this run blocks.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from hds_compliance.errors import InputError, Problem
from hds_compliance.model import ScanResult, Severity, Status, Verdict, control_status
from hds_compliance.yamlsrc import load_yaml, validation_problems

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_OUTPUT = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES = """exit codes (every command):
  0    gate passed
  1    gate failed: a 'fail' on a control at or above --fail-on (default: low), any 'error' (unreachable
       host, timeout, truncated or unreadable probe output, missing fact), or nothing judged at all
  2    invalid input: arguments, catalogue or inventory (file:line: field: problem)
  3    an output could not be written (a directory, no permission, a full disk, a closed pipe)
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM: no output is written
"""

# A verdict that judged something: the gate passes only if at least one did.
_JUDGED = (Status.PASS, Status.FAIL, Status.ERROR)


class Thresholds(BaseModel):
    """A thresholds file (YAML): what a pipeline tolerates beyond ``--fail-on``."""

    model_config = ConfigDict(extra="forbid")

    max_failures: dict[Severity, NonNegativeInt] = Field(
        default_factory=dict,
        description="failing checks tolerated per severity (severities not listed follow --fail-on)",
    )
    min_compliance: float | None = Field(
        default=None, ge=0, le=100, description="percent of judged controls (per host) that must pass"
    )
    must_pass: list[str] = Field(
        default_factory=list, description="controls that must pass on every host they apply to"
    )


def load_thresholds(path: Path) -> Thresholds:
    """Read a thresholds file; :class:`InputError` with file, line and field if it is wrong."""
    data = load_yaml(path)
    try:
        return Thresholds.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), data, exc)) from exc


def result_key(v: Verdict) -> tuple[str, str, str, str]:
    """What identifies a result across runs: host, control, check and its parameters."""
    return (v.host, v.control, v.check or "", json.dumps(v.params, sort_keys=True))


@dataclass(frozen=True)
class Baseline:
    """An earlier run's verdicts, to judge regressions only."""

    failing: frozenset[tuple[str, str, str, str]]
    hosts: tuple[str, ...]

    @classmethod
    def of(cls, result: ScanResult) -> Baseline:
        """The failing results and hosts of an earlier run."""
        failing = frozenset(result_key(v) for v in result.verdicts if v.status in (Status.FAIL, Status.ERROR))
        return cls(failing=failing, hosts=tuple(h.name for h in result.hosts))


@dataclass(frozen=True)
class Delta:
    """This run against the baseline: failures that are new, fixed, still there; hosts that went missing."""

    new: list[Verdict] = field(default_factory=list)
    still: list[Verdict] = field(default_factory=list)
    fixed: list[tuple[str, str, str, str]] = field(default_factory=list)
    missing_hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GateResult:
    """Whether the gate passed, the verdicts that failed it, the policy breaches, how much was judged."""

    blocking: list[Verdict]
    fail_on: Severity
    judged: int
    breaches: list[str] = field(default_factory=list)  # thresholds and baseline rules broken
    delta: Delta | None = None

    @property
    def passed(self) -> bool:
        """Nothing blocks, and something was judged: a run that judged nothing is never a pass."""
        return not self.blocking and not self.breaches and self.judged > 0

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 otherwise."""
        return EXIT_PASSED if self.passed else EXIT_FAILED


def gate(
    verdicts: list[Verdict],
    fail_on: Severity = Severity.LOW,
    thresholds: Thresholds | None = None,
    baseline: Baseline | None = None,
) -> GateResult:
    """Apply the policy: every error blocks; fails at or above ``fail_on`` block unless the thresholds
    tolerate their number, or the baseline already had them."""
    thresholds = thresholds or Thresholds()
    judged = sum(1 for v in verdicts if v.status in _JUDGED)
    errors = [v for v in verdicts if v.status is Status.ERROR]
    fails = [v for v in verdicts if v.status is Status.FAIL and not v.waived]  # a risk accepted, for a time
    delta = None
    breaches: list[str] = []
    if baseline is not None:
        delta = _delta(verdicts, baseline)
        fails = [v for v in fails if result_key(v) not in baseline.failing]  # regressions only
        breaches += [f"host {h} of the baseline is missing from this run" for h in delta.missing_hosts]
    blocking = list(errors)
    by_severity = Counter(v.severity for v in fails)
    for severity in Severity:
        counted = [v for v in fails if v.severity is severity]
        tolerated = thresholds.max_failures.get(severity)
        if tolerated is None:
            if severity.rank >= fail_on.rank:
                blocking += counted
        elif by_severity[severity] > tolerated:
            blocking += counted
            breaches.append(
                f"{by_severity[severity]} {severity.value} failure(s), at most {tolerated} allowed"
            )
    breaches += _compliance_breaches(verdicts, thresholds)
    order = {id(v): i for i, v in enumerate(verdicts)}
    blocking.sort(key=lambda v: order[id(v)])
    return GateResult(blocking=blocking, fail_on=fail_on, judged=judged, breaches=breaches, delta=delta)


def _compliance_breaches(verdicts: list[Verdict], thresholds: Thresholds) -> list[str]:
    """``min_compliance`` over the controls judged per host, and ``must_pass`` controls."""
    if thresholds.min_compliance is None and not thresholds.must_pass:
        return []  # nothing to break: no need to group a fleet's verdicts by host and control
    grouped: dict[tuple[str, str], list[Verdict]] = {}
    for v in verdicts:
        grouped.setdefault((v.host, v.control), []).append(v)
    status = {key: control_status(vs) for key, vs in grouped.items()}
    breaches = []
    if thresholds.min_compliance is not None:
        judged = [s for s in status.values() if s in _JUDGED]
        passed = sum(1 for s in judged if s is Status.PASS)
        percent = 100.0 * passed / len(judged) if judged else 0.0
        if percent < thresholds.min_compliance:
            breaches.append(
                f"compliance {percent:.1f}% ({passed} of {len(judged)} judged controls pass), "
                f"under the {thresholds.min_compliance:g}% required"
            )
    for control in thresholds.must_pass:
        found = {host: s for (host, cid), s in status.items() if cid == control}
        if not found:
            breaches.append(f"{control} must pass, but no host was judged on it")
        for host, s in found.items():
            if s not in (Status.PASS, Status.NOT_APPLICABLE):
                breaches.append(f"{control} must pass on {host}: it is {s.value}")
    return breaches


def _delta(verdicts: list[Verdict], baseline: Baseline) -> Delta:
    current = {result_key(v): v for v in verdicts}
    failing_now = [v for v in verdicts if v.status in (Status.FAIL, Status.ERROR)]
    hosts_now = {v.host for v in verdicts}
    return Delta(
        new=[v for v in failing_now if result_key(v) not in baseline.failing],
        still=[v for v in failing_now if result_key(v) in baseline.failing],
        fixed=sorted(
            k
            for k in baseline.failing
            if k in current and current[k].status not in (Status.FAIL, Status.ERROR)
        ),
        missing_hosts=[h for h in baseline.hosts if h not in hosts_now],
    )


def policy_from(
    thresholds_file: Path | None, baseline_file: Path | None
) -> tuple[Thresholds | None, Baseline | None]:
    """The thresholds and baseline named on the command line, read and validated (both files' problems
    reported together)."""
    problems: list[Problem] = []
    thresholds = baseline = None
    try:
        thresholds = load_thresholds(thresholds_file) if thresholds_file else None
    except InputError as exc:
        problems += exc.problems
    try:
        if baseline_file is not None:
            baseline = Baseline.of(read_results(baseline_file))
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return thresholds, baseline


def read_results(path: Path) -> ScanResult:
    """A results file written by ``scan --json``; :class:`InputError` naming the field if it is not one."""
    try:
        return ScanResult.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError([Problem(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from exc
    except ValidationError as exc:
        problems = [
            Problem(str(path), None, ".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
        ]
        raise InputError(problems) from exc
