"""Local accounts, derived on the host so that no password hash leaves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, in_shell_sh
from hds_compliance.model import Capture


@dataclass(frozen=True)
class ShadowEntry:
    """An account's password state, without its hash: ``empty``, ``locked`` or ``hash:<id>``."""

    user: str
    state: str


@dataclass(frozen=True)
class ShadowSummary(Fact[list[ShadowEntry]]):
    """Per-account password state derived ON the host, so no hash ever leaves it.

    ``hash:6`` is SHA-512 crypt, ``hash:y`` yescrypt, ``hash:1`` MD5 crypt, ``des`` the legacy
    13-character DES crypt.
    """

    kind: ClassVar[str] = "shadow"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "",
            f"[ -e /etc/shadow ] || return {ABSENT}; [ -r /etc/shadow ] || return {UNREADABLE}; "
            'awk -F: \'{ h=$2; if (h == "") s="empty"; else if (h ~ /^[!*]/) s="locked"; '
            'else if (substr(h,1,1) == "$") { split(h, a, "$"); s="hash:" a[2] } '
            'else if (length(h) == 13) s="des"; else s="unknown"; print $1 ":" s }\' /etc/shadow',
        )

    def parse(self, capture: Capture) -> list[ShadowEntry]:
        if capture.exit_code == ABSENT:
            raise FactError("/etc/shadow does not exist")
        if capture.exit_code != 0:
            raise self._fail(capture)
        entries = []
        for line in capture.stdout_text().splitlines():
            user, sep, state = line.partition(":")
            if sep:
                entries.append(ShadowEntry(user=user, state=state))
        return entries

    def describe(self) -> str:
        return "password states from /etc/shadow"
