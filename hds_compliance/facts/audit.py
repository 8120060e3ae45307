"""Linux audit: rules loaded in the kernel and its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.model import Capture


@dataclass(frozen=True)
class AuditRules(Fact[list[str] | None]):
    """Audit rules loaded in the kernel (``auditctl -l``); ``None`` if auditctl is not installed."""

    kind: ClassVar[str] = "auditctl"
    arg: str = ""

    def script(self) -> str:
        return "command -v auditctl >/dev/null 2>&1 || exit 100; auditctl -l"

    def parse(self, capture: Capture) -> list[str] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = [line.strip() for line in capture.stdout_text().splitlines() if line.strip()]
        return [] if lines == ["No rules"] else lines

    def describe(self) -> str:
        return "loaded audit rules"


@dataclass(frozen=True)
class AuditStatus(Fact[dict[str, str] | None]):
    """Kernel audit status (``auditctl -s``): ``enabled`` 0 (off), 1 (on) or 2 (on and locked)."""

    kind: ClassVar[str] = "auditctl-status"
    arg: str = ""

    def script(self) -> str:
        return f"command -v auditctl >/dev/null 2>&1 || exit {ABSENT}; auditctl -s"

    def parse(self, capture: Capture) -> dict[str, str] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        status = dict(line.split(" ", 1) for line in capture.stdout_text().splitlines() if " " in line)
        if "enabled" not in status:
            raise FactError(f"{self.describe()}: auditctl -s printed no 'enabled' line")
        return status

    def describe(self) -> str:
        return "kernel audit status"
