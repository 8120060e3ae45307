"""Mandatory access control (AppArmor, SELinux) as the kernel runs it, and the kernel command line."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError
from hds_compliance.facts.framed import FRAMES_SH, Frame, named, parse_frames
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
    arg: str = ""

    def script(self) -> str:
        return (
            f"[ -d /sys/module/apparmor ] || exit {ABSENT}; "
            'e=$(cat /sys/module/apparmor/parameters/enabled) || exit 1; echo "enabled $e"; '
            f"if [ -e {_PROFILES} ]; then [ -r {_PROFILES} ] || exit {UNREADABLE}; echo '# profiles'; "
            f"cat {_PROFILES} || exit 1; fi"
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
    arg: str = ""

    def script(self) -> str:
        return (
            "if [ -e /sys/fs/selinux/enforce ]; then e=$(cat /sys/fs/selinux/enforce) || exit 1; "
            'echo "enforce $e"; else echo "enforce -"; fi; '
            "if command -v sestatus >/dev/null 2>&1; then echo '# sestatus'; sestatus || exit 1; fi"
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


# --------------------------------------------------------------------------------- kernel command line


@dataclass(frozen=True)
class BootArgs:
    """The kernel command line now (``/proc/cmdline``) and as each boot configuration would set it.

    ``persisted`` maps a source (``/etc/default/grub``, a BLS entry, ``/etc/kernel/cmdline``) to the
    arguments it gives the kernel; ``unreadable`` lists sources the probe could not read.
    """

    live: list[str]
    persisted: dict[str, list[str]]
    unreadable: list[str]


_ASSIGN_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), text)


def shell_assignments(text: str, env: dict[str, str]) -> dict[str, str]:
    """Variables a sourced sh file such as /etc/default/grub sets (plain assignments, quotes, $VAR)."""
    env = dict(env)
    for line in text.splitlines():
        match = _ASSIGN_RE.match(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        name, raw = match.groups()
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError:
            continue
        # Single-quoted text is literal; anything else expands $VAR against what was set before.
        value = " ".join(words) if raw.strip().startswith("'") else _expand(" ".join(words), env)
        env[name] = value
    return env


def _grub_defaults(frames: list[Frame]) -> tuple[str, list[str]] | None:
    files = [f for f in frames if f.name == "/etc/default/grub" or f.name.startswith("/etc/default/grub.d/")]
    if not files:
        return None
    env: dict[str, str] = {}
    for frame in files:
        env = shell_assignments(frame.text(), env)
    args = f"{env.get('GRUB_CMDLINE_LINUX', '')} {env.get('GRUB_CMDLINE_LINUX_DEFAULT', '')}".split()
    names = ", ".join(f.name for f in files)
    return names, args


@dataclass(frozen=True)
class KernelCommandLine(Fact[BootArgs]):
    """The live kernel command line and the persisted ones: GRUB defaults (with grub.d), BLS entries
    (``$kernelopts`` from grubenv), ``/etc/kernel/cmdline``."""

    kind: ClassVar[str] = "boot-cmdline"
    arg: str = ""

    def script(self) -> str:
        return (
            f'{FRAMES_SH}; c=$(cat /proc/cmdline) || exit 1; part /proc/cmdline "$c"; '
            "for f in /etc/default/grub /etc/default/grub.d/*.cfg /etc/kernel/cmdline /boot/grub2/grubenv "
            '/boot/loader/entries/*.conf; do file "$f"; done'
        )

    def parse(self, capture: Capture) -> BootArgs:
        if capture.exit_code != 0:
            raise self._fail(capture)
        frames = parse_frames(capture.stdout_bytes(), self.describe())
        live = named(frames, "/proc/cmdline")
        if live is None:
            raise FactError(f"{self.describe()}: /proc/cmdline was not read")
        persisted: dict[str, list[str]] = {}
        unreadable = [f.name for f in frames if f.data is None]
        grub = _grub_defaults(frames)
        if grub is not None:
            persisted[grub[0]] = grub[1]
        cmdline = named(frames, "/etc/kernel/cmdline")
        if cmdline is not None and cmdline.data is not None:
            persisted[cmdline.name] = cmdline.text().split()
        grubenv = named(frames, "/boot/grub2/grubenv")
        kernelopts = ""
        if grubenv is not None:
            for line in grubenv.text().splitlines():
                if line.startswith("kernelopts="):
                    kernelopts = line[len("kernelopts=") :]
        for frame in frames:
            if frame.name.startswith("/boot/loader/entries/") and frame.data is not None:
                for line in frame.text().splitlines():
                    if line.startswith("options "):
                        text = line[len("options ") :].replace("$kernelopts", kernelopts)
                        persisted[frame.name] = text.split()
        return BootArgs(live=live.text().split(), persisted=persisted, unreadable=unreadable)

    def describe(self) -> str:
        return "kernel command line (live and persisted)"
