"""Who a host is on the network: the addresses it holds and its node name, as its own probe reports them.

Fleet checks match hosts by inventory name, ``ssh_hostname``, or one of these (never by DNS): a log
collector's address in another host's rsyslog configuration, a bastion's address in an sshd ``AllowUsers``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, in_shell_sh
from hds_compliance.model import Capture


@dataclass(frozen=True)
class Address:
    """An address configured on an interface of the host."""

    interface: str
    address: str  # without prefix length, e.g. "10.10.0.10" or "fd00::2"
    prefix: int


@dataclass(frozen=True)
class Addresses(Fact[list[Address]]):
    """Addresses configured on the host (``ip -o addr``; without iproute2, the kernel tables in /proc)."""

    kind: ClassVar[str] = "addresses"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "",
            "if command -v ip >/dev/null 2>&1; then echo ip; ip -o addr show; "
            "else echo proc; cat /proc/net/if_inet6; echo '# fib_trie'; cat /proc/net/fib_trie; fi",
        )

    def parse(self, capture: Capture) -> list[Address]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        tool, _, rest = capture.stdout_text().partition("\n")
        addresses = _from_ip(rest) if tool == "ip" else _from_proc(rest) if tool == "proc" else None
        if addresses is None:
            raise FactError(f"{self.describe()}: unexpected output {capture.stdout_text()[:80]!r}")
        return sorted(set(addresses), key=lambda a: (a.interface, a.address))

    def describe(self) -> str:
        return "addresses of the host"


def _from_ip(text: str) -> list[Address]:
    # "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\       valid_lft ..."
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] in ("inet", "inet6") and "/" in words[3]:
            address, _, prefix = words[3].partition("/")
            out.append(Address(words[1].rstrip(":").split("@")[0], address, int(prefix)))
    return out


def _from_proc(text: str) -> list[Address]:
    inet6, _, trie = text.partition("# fib_trie\n")
    out = []
    for line in inet6.splitlines():  # "fd00...02 04 40 00 82     eth0": hex address, index, prefix (hex)...
        words = line.split()
        if len(words) == 6 and len(words[0]) == 32:
            address = str(ipaddress.IPv6Address(bytes.fromhex(words[0])))
            out.append(Address(words[5], address, int(words[2], 16)))
    lines = trie.splitlines()
    for i, line in enumerate(lines[1:], 1):  # "|-- 192.0.2.2" then "/32 host LOCAL": an address of the host
        if line.strip() == "/32 host LOCAL" and "|-- " in lines[i - 1]:
            out.append(Address("", lines[i - 1].split("|-- ")[1].strip(), 32))
    return out


@dataclass(frozen=True)
class NodeName(Fact[str]):
    """The host's node name (``uname -n``): what backup tools record as the host of a snapshot."""

    kind: ClassVar[str] = "nodename"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        # the UTS node name, read by a builtin (a string sysctl answers reads at any offset, unlike the
        # numeric ones dash would read one byte of); uname where /proc is not mounted (a chroot tree)
        read = "{ IFS= read -r n < /proc/sys/kernel/hostname; } 2>/dev/null"
        return in_shell_sh("n", f"{read} && printf '%s\\n' \"$n\" || uname -n")

    def parse(self, capture: Capture) -> str:
        if capture.exit_code != 0:
            raise self._fail(capture)
        name = capture.stdout_text().strip()
        if not name:
            raise FactError(f"{self.describe()}: uname -n printed nothing")
        return name

    def describe(self) -> str:
        return "node name of the host"
