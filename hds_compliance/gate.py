"""Gate: turn verdicts into the exit code CI trusts.

0: gate passed. 1: gate failed: a ``fail`` on a control at or above the ``--fail-on`` severity, or any
``error`` (an unverified control is never a silent pass). 2 is reserved for invalid input (CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

from hds_compliance.model import Severity, Status, Verdict

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2


@dataclass(frozen=True)
class GateResult:
    """Whether the gate passed, and the verdicts that failed it."""

    passed: bool
    blocking: list[Verdict]
    fail_on: Severity

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 otherwise."""
        return EXIT_PASSED if self.passed else EXIT_FAILED


def gate(verdicts: list[Verdict], fail_on: Severity = Severity.LOW) -> GateResult:
    """Apply the threshold: fails at or above ``fail_on``, and every error, block the gate."""
    blocking = [
        v
        for v in verdicts
        if v.status is Status.ERROR or (v.status is Status.FAIL and v.severity.rank >= fail_on.rank)
    ]
    return GateResult(passed=not blocking, blocking=blocking, fail_on=fail_on)
