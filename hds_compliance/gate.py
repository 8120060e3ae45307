"""Gate: turn verdicts into the exit code CI trusts.

The exit codes every command shares (``--help`` and the README print the same table):

0 gate passed; 1 gate failed: a ``fail`` on a control at or above the ``--fail-on`` severity, any ``error``
(an unverified control is never a silent pass), or a run that judged nothing; 2 invalid input; 3 an output
could not be written; 130 / 143 interrupted (SIGINT / SIGTERM).
"""

from __future__ import annotations

from dataclasses import dataclass

from hds_compliance.model import Severity, Status, Verdict

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


@dataclass(frozen=True)
class GateResult:
    """Whether the gate passed, the verdicts that failed it, and how many verdicts judged anything."""

    blocking: list[Verdict]
    fail_on: Severity
    judged: int

    @property
    def passed(self) -> bool:
        """Nothing blocks, and something was judged: a run that judged nothing is never a pass."""
        return not self.blocking and self.judged > 0

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
    judged = sum(1 for v in verdicts if v.status in _JUDGED)
    return GateResult(blocking=blocking, fail_on=fail_on, judged=judged)
