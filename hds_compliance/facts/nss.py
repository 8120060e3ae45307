"""Name-service switch: where each database (passwd, group, sudoers...) comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, in_shell_sh
from hds_compliance.facts.reads import WHOLE_SH
from hds_compliance.model import Capture

NSSWITCH = "/etc/nsswitch.conf"
_ACTION_RE = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class NssLine:
    """The sources of one database, in lookup order (action items such as ``[NOTFOUND=return]`` left out)."""

    sources: list[str]
    line: int


@dataclass(frozen=True)
class NssSources(Fact[dict[str, NssLine] | None]):
    """Databases of /etc/nsswitch.conf and their sources; ``None`` if the file does not exist.

    The first line naming a database is the one kept (sudo reads only its first ``sudoers:`` line).
    """

    kind: ClassVar[str] = "nss-sources"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        path = NSSWITCH
        return WHOLE_SH + in_shell_sh(
            "", f"[ -e {path} ] || return {ABSENT}; [ -r {path} ] || return {UNREADABLE}; rdw {path}"
        )

    def parse(self, capture: Capture) -> dict[str, NssLine] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        databases: dict[str, NssLine] = {}
        for number, raw in enumerate(capture.stdout_text().splitlines(), 1):
            text = raw.split("#", 1)[0].strip()
            if not text:
                continue
            name, sep, rest = text.partition(":")
            if not sep or not name.strip() or " " in name.strip():
                raise FactError(f"{NSSWITCH} line {number}: not a 'database: sources' line")
            sources = _ACTION_RE.sub(" ", rest).split()
            databases.setdefault(name.strip().lower(), NssLine(sources=sources, line=number))
        return databases

    def describe(self) -> str:
        return NSSWITCH
