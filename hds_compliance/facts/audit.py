"""Linux audit: the rules loaded in the kernel and those loaded at boot, the kernel's audit status, the audit
daemon's configuration and its log directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, in_shell_sh
from hds_compliance.facts.conftree import TreeFact
from hds_compliance.facts.files import Stat
from hds_compliance.model import Capture


@dataclass(frozen=True)
class AuditRules(Fact[list[str] | None]):
    """Audit rules loaded in the kernel (``auditctl -l``); ``None`` if auditctl is not installed."""

    kind: ClassVar[str] = "auditctl"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh("", f"command -v auditctl >/dev/null 2>&1 || return {ABSENT}; auditctl -l")

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
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh("", f"command -v auditctl >/dev/null 2>&1 || return {ABSENT}; auditctl -s")

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


# auditd.service and its overrides say how rules reach the kernel at boot (augenrules --load, or
# auditctl -R FILE); audit 3.1 moved that step to audit-rules.service.
_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system")
AUDIT_RULES_D = "/etc/audit/rules.d"


@dataclass(frozen=True)
class AuditRulesConfig(TreeFact):
    """Rules that survive a reboot: /etc/audit/audit.rules, /etc/audit/rules.d/*.rules, and the units
    (auditd.service, audit-rules.service, their drop-ins) that say which of them is loaded at boot."""

    kind: ClassVar[str] = "audit-rules-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = (
        "/etc/audit/audit.rules",
        f"{AUDIT_RULES_D}/*.rules",
        *(f"{d}/{unit}" for unit in ("auditd.service", "audit-rules.service") for d in _UNIT_DIRS),
        *(f"{d}/{unit}.d/*.conf" for unit in ("auditd.service", "audit-rules.service") for d in _UNIT_DIRS),
    )
    dirs: ClassVar[tuple[str, ...]] = (AUDIT_RULES_D,)
    what: ClassVar[str] = "persisted audit rules"


@dataclass(frozen=True)
class AuditdConfig(TreeFact):
    """auditd.conf, the audit dispatcher plugins (plugin_dir, default /etc/audit/plugins.d) and
    audisp-remote.conf; audit 2 kept the plugins in /etc/audisp."""

    kind: ClassVar[str] = "audit-daemon-config"
    arg: str = ""
    roots: ClassVar[tuple[str, ...]] = (
        "/etc/audit/auditd.conf",
        "/etc/audit/plugins.d/*.conf",
        "/etc/audit/audisp-remote.conf",
        "/etc/audisp/plugins.d/*.conf",
        "/etc/audisp/audisp-remote.conf",
    )
    include: ClassVar[str] = (
        'BEGIN { FS = "=" } tolower($1) ~ /^[ \\t]*plugin_dir[ \\t]*$/ '
        '{ v = $2; gsub(/[ \\t]/, "", v); print v "/*.conf" }'
    )
    what: ClassVar[str] = "audit daemon configuration"


@dataclass(frozen=True)
class AuditLogFiles:
    """The audit log file auditd writes (``log_file``) and the metadata of its directory and files."""

    log_file: str
    entries: dict[str, Stat]  # path -> stat; the directory first


@dataclass(frozen=True)
class AuditLogDir(Fact[AuditLogFiles | None]):
    """Permissions of the directory of auditd's ``log_file`` and of every file in it; ``None`` if absent.

    The path is read from /etc/audit/auditd.conf on the host (last ``log_file`` line, default
    /var/log/audit/audit.log), so one round trip is enough.
    """

    kind: ClassVar[str] = "audit-log-files"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "f l d",
            "f=/etc/audit/auditd.conf; l=''; "
            f"[ -d /etc/audit ] && ! {{ [ -x /etc/audit ] && [ -r /etc/audit ]; }} && return {UNREADABLE}; "
            f'if [ -e "$f" ]; then [ -r "$f" ] || return {UNREADABLE}; '
            "l=$(awk -F= 'tolower($1) ~ /^[ \\t]*log_file[ \\t]*$/ { v = $2 } "
            'END { gsub(/[ \\t]/, "", v); print v }\' '
            '"$f"); fi; l=${l:-/var/log/audit/audit.log}; d=${l%/*}; '
            f'[ -d "$d" ] || return {ABSENT}; [ -r "$d" ] && [ -x "$d" ] || return {UNREADABLE}; '
            "printf 'log_file %s\\n' \"$l\"; "
            'set -- "$d"/*; [ -e "$1" ] || set --; stat -c \'%a %u %g %F\t%n\' -- "$d" "$@"',
        )

    def parse(self, capture: Capture) -> AuditLogFiles | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        head, _, rest = capture.stdout_text().partition("\n")
        if not head.startswith("log_file "):
            raise FactError(f"{self.describe()}: unexpected output {head[:80]!r}")
        entries: dict[str, Stat] = {}
        for line in rest.splitlines():
            meta, _, path = line.partition("\t")
            parts = meta.split(" ", 3)
            try:
                entries[path] = Stat(int(parts[0], 8), int(parts[1]), int(parts[2]), parts[3])
            except (IndexError, ValueError) as exc:
                raise FactError(f"{self.describe()}: unexpected stat line {line[:80]!r}") from exc
        if not entries:
            raise FactError(f"{self.describe()}: stat printed nothing")
        return AuditLogFiles(head[len("log_file ") :], entries)

    def describe(self) -> str:
        return "audit log directory"
