"""Mandatory access control (AppArmor, SELinux) as the kernel runs it, and the kernel command line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, in_shell_sh
from hds_compliance.model import Capture

# ------------------------------------------------------------------------------------------ AppArmor


@dataclass(frozen=True)
class AppArmorState:
    """AppArmor in the running kernel: enabled (``/sys/module/apparmor/parameters/enabled``), profiles.

    ``profiles`` maps a loaded profile to its mode (enforce, complain, kill, unconfined...); ``None``
    when securityfs is not mounted, so the loaded profiles cannot be listed.
    """

    enabled: bool
    profiles: dict[str, str] | None


_PROFILES = "/sys/kernel/security/apparmor/profiles"


@dataclass(frozen=True)
class AppArmorStatus(Fact[AppArmorState | None]):
    """AppArmor status from the kernel's own files (what ``aa-status`` reads); ``None`` if the kernel has
    no AppArmor module."""

    kind: ClassVar[str] = "mac-apparmor"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "e",
            f"[ -d /sys/module/apparmor ] || return {ABSENT}; "
            'e=$(cat /sys/module/apparmor/parameters/enabled) || return 1; echo "enabled $e"; '
            f"if [ -e {_PROFILES} ]; then [ -r {_PROFILES} ] || return {UNREADABLE}; echo '# profiles'; "
            f"cat {_PROFILES} || return 1; fi",
        )

    def parse(self, capture: Capture) -> AppArmorState | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = capture.stdout_text().splitlines()
        if not lines or not lines[0].startswith("enabled "):
            raise FactError(f"{self.describe()}: unexpected output")
        enabled = lines[0].split()[-1] == "Y"
        if "# profiles" not in lines:
            return AppArmorState(enabled, None)
        profiles = {}
        for line in lines[lines.index("# profiles") + 1 :]:
            match = re.match(r"^(.*) \(([a-z_]+)\)$", line.strip())
            if match is None:
                raise FactError(f"{self.describe()}: unexpected profile line {line!r}")
            profiles[match.group(1)] = match.group(2)
        return AppArmorState(enabled, profiles)

    def describe(self) -> str:
        return "AppArmor status"


# ------------------------------------------------------------------------------------------- SELinux


@dataclass(frozen=True)
class SELinuxState:
    """SELinux in the running kernel: ``enforce`` from selinuxfs (1, 0, or None when it is not mounted,
    i.e. SELinux is disabled), and what ``sestatus`` prints (loaded policy name...) where it is installed."""

    enforce: int | None
    sestatus: dict[str, str]

    @property
    def policy(self) -> str | None:
        """Name of the loaded policy (``targeted``, ``mls``), when sestatus reports it."""
        return self.sestatus.get("loaded policy name")


@dataclass(frozen=True)
class SELinuxStatus(Fact[SELinuxState]):
    """SELinux status: ``/sys/fs/selinux/enforce`` and ``sestatus``."""

    kind: ClassVar[str] = "mac-selinux"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "e",
            "if [ -e /sys/fs/selinux/enforce ]; then e=$(cat /sys/fs/selinux/enforce) || return 1; "
            'echo "enforce $e"; else echo "enforce -"; fi; '
            "if command -v sestatus >/dev/null 2>&1; then echo '# sestatus'; sestatus || return 1; fi",
        )

    def parse(self, capture: Capture) -> SELinuxState:
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = capture.stdout_text().splitlines()
        if not lines or not lines[0].startswith("enforce "):
            raise FactError(f"{self.describe()}: unexpected output")
        value = lines[0].split()[-1]
        if value not in ("0", "1", "-"):
            raise FactError(f"{self.describe()}: enforce is {value!r}")
        status = {}
        for line in lines[1:]:
            key, sep, rest = line.partition(":")
            if sep and rest.strip():
                status[key.strip().lower()] = rest.strip()
        return SELinuxState(None if value == "-" else int(value), status)

    def describe(self) -> str:
        return "SELinux status"
