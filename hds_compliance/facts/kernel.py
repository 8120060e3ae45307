"""Kernel state: live parameters (/proc/sys) and the mount table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, Fact, Part, error_lines, in_shell_sh, part_from_error, quote
from hds_compliance.facts.reads import WHOLE_SH
from hds_compliance.model import Capture

_SYSCTL_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")
# sh, in an in-shell snippet: its guard where /proc/sys is missing (a container without it)
PROC_SYS_SH = "[ -d /proc/sys ] || { echo '/proc/sys is not mounted' >&2; return 1; }"


@dataclass(frozen=True)
class Sysctl(Fact[str | None]):
    """Live value of a kernel parameter read from ``/proc/sys``; ``None`` if the kernel has no such key."""

    kind: ClassVar[str] = "sysctl"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not _SYSCTL_RE.match(self.arg):
            raise ValueError(f"not a sysctl name: {self.arg!r}")

    def script(self) -> str:
        path = self.path
        return in_shell_sh(
            "",
            f"{PROC_SYS_SH}; "
            # cat, not the shell's read: dash reads one byte at a time and /proc/sys answers a read at
            # offset 1 with end of file, so `read` would see "3" for a pid_max of 32768.
            f"[ -e {path} ] || return {ABSENT}; cat {path}",
        )

    batchable: ClassVar[bool] = True

    @property
    def path(self) -> str:
        """Where the kernel exposes the parameter."""
        return "/proc/sys/" + self.arg.replace(".", "/")

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # One grep for every key: each line comes back as "<path>:<line>" (procfs paths hold no colon).
        paths = " ".join(quote(f.path) for f in facts if isinstance(f, Sysctl))
        return in_shell_sh("", f"{PROC_SYS_SH}; grep -H '' -- {paths}")

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        if "/proc/sys is not mounted" in stderr:
            return [Part(1, b"", stderr.strip()) for _ in facts]
        values: dict[str, list[str]] = {}
        for line in stdout.decode("utf-8", "replace").splitlines():
            path, sep, value = line.partition(":")
            if sep:
                values.setdefault(path, []).append(value)
        parts = []
        for fact in facts:
            assert isinstance(fact, Sysctl)
            errors = error_lines(stderr, fact.path)
            if errors:
                parts.append(part_from_error(errors))
            else:  # an empty file gives no line and no error: its value is empty
                parts.append(Part(0, "".join(v + "\n" for v in values.get(fact.path, [])).encode(), ""))
        return parts

    def parse(self, capture: Capture) -> str | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        return " ".join(capture.stdout_text().split())


@dataclass(frozen=True)
class Mount:
    """One line of the live mount table."""

    device: str
    mountpoint: str
    fstype: str
    options: frozenset[str]


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class MountTable(Fact[list[Mount]]):
    """The live mount table (``/proc/self/mounts``): what is mounted now, not what fstab says."""

    kind: ClassVar[str] = "mounts"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        missing = "{ echo '/proc is not mounted' >&2; return 1; }"
        return WHOLE_SH + in_shell_sh("", f"[ -r /proc/self/mounts ] || {missing}; rdw /proc/self/mounts")

    def parse(self, capture: Capture) -> list[Mount]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        mounts = []
        for line in capture.stdout_text().splitlines():
            fields = line.split()
            if len(fields) >= 4:
                mounts.append(
                    Mount(
                        device=_unescape_mount(fields[0]),
                        mountpoint=_unescape_mount(fields[1]),
                        fstype=fields[2],
                        options=frozenset(fields[3].split(",")),
                    )
                )
        return mounts
