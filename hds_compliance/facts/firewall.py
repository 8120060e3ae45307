"""Live packet-filter rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact
from hds_compliance.model import Capture


@dataclass(frozen=True)
class Firewall:
    """The host packet filter as dumped by nft, or by iptables-save and ip6tables-save."""

    tool: str
    rules: str
    rules6: str | None = None  # ip6tables-save output; None when not collected (nft carries both)


_IP6_MARK = "# hds ip6tables-save"


@dataclass(frozen=True)
class FirewallRules(Fact[Firewall | None]):
    """Live packet-filter rules; ``None`` if neither nft nor iptables is installed.

    nft first; when its ruleset is empty, iptables-save and ip6tables-save, which see the rules of the
    legacy (non-nftables) backend that nft does not show.
    """

    kind: ClassVar[str] = "firewall"
    arg: str = ""

    def script(self) -> str:
        return (
            "r=; if command -v nft >/dev/null 2>&1; then r=$(nft list ruleset) || exit 1; fi; "
            'if [ -n "$r" ]; then echo nft; printf \'%s\\n\' "$r"; exit 0; fi; '
            "if command -v iptables-save >/dev/null 2>&1; then echo iptables; iptables-save || exit 1; "
            "if command -v ip6tables-save >/dev/null 2>&1; then "
            f"echo '{_IP6_MARK}'; ip6tables-save || exit 1; fi; "
            "exit 0; fi; "
            f"command -v nft >/dev/null 2>&1 && {{ echo nft; exit 0; }}; exit {ABSENT}"
        )

    def parse(self, capture: Capture) -> Firewall | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        tool, _, rules = capture.stdout_text().partition("\n")
        rules, marked, rules6 = rules.partition(f"{_IP6_MARK}\n")
        return Firewall(tool=tool.strip(), rules=rules, rules6=rules6 if marked else None)

    def describe(self) -> str:
        return "host firewall rules"
