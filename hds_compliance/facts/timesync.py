"""Clock synchronisation: the status the running daemon reports, and the configuration of each time daemon."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, in_shell_sh
from hds_compliance.facts.conftree import TreeFact
from hds_compliance.facts.logging import systemd_conf_roots
from hds_compliance.model import Capture


@dataclass(frozen=True)
class TimeSync:
    """Clock synchronisation status as reported by the first tool found on the host."""

    tool: str
    synchronized: bool
    detail: str


@dataclass(frozen=True)
class TimeSyncStatus(Fact[TimeSync | None]):
    """Whether the clock is synchronised (timedatectl, chronyc or ntpq); ``None`` if no tool is present."""

    kind: ClassVar[str] = "timesync"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "",
            "if [ -d /run/systemd/system ] && command -v timedatectl >/dev/null 2>&1; then "
            "echo timedatectl; timedatectl show -p NTPSynchronized --value; "
            "elif command -v chronyc >/dev/null 2>&1; then echo chronyc; chronyc -n tracking; "
            "elif command -v ntpq >/dev/null 2>&1; then echo ntpq; ntpq -pn; "
            f"else return {ABSENT}; fi",
        )

    def parse(self, capture: Capture) -> TimeSync | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        tool, _, rest = capture.stdout_text().partition("\n")
        rest = rest.strip()
        if tool == "timedatectl":
            return TimeSync(tool, rest == "yes", f"NTPSynchronized={rest}")
        if tool == "chronyc":
            leap = re.search(r"^Leap status\s*:\s*(.+)$", rest, re.M)
            status = leap.group(1).strip() if leap else "unknown"
            reference = re.search(r"^Reference ID\s*:\s*([0-9A-Fa-f]+)", rest, re.M)
            if reference and reference.group(1).upper() == "7F7F0101":
                # chronyd following its own clock ("local stratum N") also reports Normal.
                return TimeSync(tool, False, f"leap status {status}, but only from chronyd's local clock")
            return TimeSync(tool, status == "Normal", f"leap status {status}")
        if tool == "ntpq":
            # A selected peer is marked with '*' in the first column.
            peer = any(line.startswith("*") for line in rest.splitlines())
            return TimeSync(tool, peer, "a system peer is selected" if peer else "no system peer selected")
        raise FactError(f"time synchronisation: unexpected output {capture.stdout_text()[:80]!r}")

    def describe(self) -> str:
        return "time synchronisation status"


@dataclass(frozen=True)
class TimeConfig(TreeFact):
    """Configuration of every time daemon a host may run: chrony (Debian and RHEL paths, with the files its
    ``confdir``, ``sourcedir`` and ``include`` directives name), ntpd and ntpsec (``includefile``),
    OpenNTPD, and systemd-timesyncd with its drop-ins. Which daemon runs is another fact."""

    kind: ClassVar[str] = "time-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = (
        "/etc/chrony/chrony.conf",
        "/etc/chrony.conf",
        "/etc/ntpsec/ntp.conf",
        "/etc/ntp.conf",
        "/etc/openntpd/ntpd.conf",
        "/etc/ntpd.conf",
        *systemd_conf_roots("timesyncd.conf"),
    )
    include: ClassVar[str] = (
        '$1 == "confdir" { for (i = 2; i <= NF; i++) print $i "/*.conf" } '
        '$1 == "sourcedir" { for (i = 2; i <= NF; i++) print $i "/*.sources" } '
        '$1 == "include" || $1 == "includefile" { print $2 }'
    )
    what: ClassVar[str] = "time daemon configuration"
