"""SSSD's session recording settings, read on the host without the rest of sssd.conf (which may hold the
directory's bind password)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError
from hds_compliance.model import Capture


@dataclass(frozen=True)
class SessionRecordingSetting:
    """One ``key = value`` of a ``[session_recording]`` section, where it was written."""

    file: str
    line: int
    key: str
    value: str


@dataclass(frozen=True)
class SssdSessionRecording(Fact[list[SessionRecordingSetting] | None]):
    """The ``[session_recording]`` settings of sssd.conf and its conf.d files (sssd reads conf.d after
    sssd.conf, in name order, later values winning); ``None`` when SSSD is not configured.

    Only that section leaves the host: awk prints nothing else of files that can hold secrets.
    """

    kind: ClassVar[str] = "sssd-session-recording"
    arg: str = ""

    def script(self) -> str:
        return (
            f"[ -e /etc/sssd/sssd.conf ] || exit {ABSENT}; [ -r /etc/sssd/sssd.conf ] || exit {UNREADABLE}; "
            'for f in /etc/sssd/conf.d/*.conf; do [ -e "$f" ] || continue; '
            f'[ -r "$f" ] || exit {UNREADABLE}; done; '
            'awk \'FNR == 1 { s = "" } /^[ \\t]*\\[/ { s = $0; gsub(/[ \\t\\[\\]]/, "", s); next } '
            's == "session_recording" && /=/ && !/^[ \\t]*[#;]/ { '
            'print FILENAME "\\t" FNR "\\t" $0 }\' /etc/sssd/sssd.conf /etc/sssd/conf.d/*.conf 2>/dev/null; '
            "exit 0"
        )

    def parse(self, capture: Capture) -> list[SessionRecordingSetting] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        out = []
        for row in capture.stdout_text().splitlines():
            parts = row.split("\t", 2)
            if len(parts) != 3 or not parts[1].isdigit():
                raise FactError(f"{self.describe()}: unexpected line {row!r}")
            key, _, value = parts[2].partition("=")
            out.append(SessionRecordingSetting(parts[0], int(parts[1]), key.strip().lower(), value.strip()))
        return out

    def describe(self) -> str:
        return "SSSD session recording settings"
