"""The process list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, in_shell_sh
from hds_compliance.model import Capture


@dataclass(frozen=True)
class Processes(Fact[frozenset[str]]):
    """Names (``comm``) of the processes running on the host, from ``/proc/<pid>/stat``.

    The probe's own session (its shell, base64, and on @local the scanner itself) is left out: a fact
    describes the host, not the tool looking at it. One ``cat`` reads every stat line (a shell loop
    with ``read`` costs one system call per byte); the first line is cat's own, which gives the
    probe's session.
    """

    kind: ClassVar[str] = "processes"
    in_shell: ClassVar[bool] = True
    traced_by_value: ClassVar[bool] = True  # PIDs differ on every host, the names running seldom do
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "",
            "[ -r /proc/self/stat ] || { echo '/proc is not mounted' >&2; return 1; }; "
            "cat /proc/self/stat /proc/[0-9]*/stat 2>/dev/null; return 0",  # processes may end meanwhile
        )

    def parse(self, capture: Capture) -> frozenset[str]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        rows = []
        for line in capture.stdout_text().splitlines():
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
            head, sep, tail = line.rpartition(") ")
            fields = tail.split()
            if sep and "(" in head and len(fields) >= 4:
                rows.append((head.split("(", 1)[1], fields[3]))
        if not rows:
            raise FactError("process list: no /proc/<pid>/stat line could be read")
        own_session = rows[0][1]
        return frozenset(name for name, session in rows[1:] if session != own_session)
