"""Running processes of one name with their exact arguments (a daemon's flags: rest-server --append-only)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, in_shell_sh, quote
from hds_compliance.model import Capture


@dataclass(frozen=True)
class Process:
    """A running process and its arguments (``argv[0]`` first)."""

    pid: int
    argv: tuple[str, ...]


@dataclass(frozen=True)
class ProcessTable(Fact[tuple[Process, ...]]):
    """Processes whose name (``/proc/<pid>/comm``) is ``arg``, with their exact arguments.

    The arguments come back NUL-separated in base64, so an argument holding blanks stays one argument
    (``--path "/srv/a --append-only"`` is not the flag). A process that rewrote its title into one
    string (setproctitle) shows it as one argument: it is then split at blanks, as ps shows it.
    """

    kind: ClassVar[str] = "process-table"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._+-]{1,15}", self.arg):
            raise ValueError(f"not a process name (comm, at most 15 characters): {self.arg!r}")

    def script(self) -> str:
        return in_shell_sh(
            "f p c",
            f"for f in $(grep -Flx -- {quote(self.arg)} /proc/[0-9]*/comm 2>/dev/null); do p=${{f%/comm}}; "
            "c=$(base64 < \"$p/cmdline\" 2>/dev/null | tr -d '\\n') || continue; "
            'printf \'%s %s\\n\' "${p#/proc/}" "$c"; done; return 0',
        )

    def parse(self, capture: Capture) -> tuple[Process, ...]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        processes = []
        for line in capture.stdout_text().splitlines():
            pid, _, encoded = line.partition(" ")
            try:
                raw = base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
                number = int(pid)
            except ValueError as exc:
                raise FactError(f"{self.describe()}: unexpected line {line[:80]!r}") from exc
            argv = raw.rstrip("\0").split("\0") if raw else []
            if len(argv) == 1 and " " in argv[0]:
                argv = argv[0].split()
            if argv:  # a process that ended meanwhile, or a kernel thread, has no arguments
                processes.append(Process(number, tuple(argv)))
        return tuple(sorted(processes, key=lambda p: p.pid))

    def describe(self) -> str:
        return f"{self.arg} processes"
