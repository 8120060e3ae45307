"""Services: systemd unit states, listening sockets, the local mail agent's listening configuration."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, Part, in_shell_sh, quote
from hds_compliance.facts.framed import framed_output, parts
from hds_compliance.facts.reads import WHOLE_SH
from hds_compliance.model import Capture

_UNIT_RE = re.compile(r"^[A-Za-z0-9@._:-]+\.(service|timer|socket|target|path|mount)$")

# ------------------------------------------------------------------------------------------ systemd units


@dataclass(frozen=True)
class UnitState:
    """What systemd says of a unit: enabled state (survives a reboot) and, when systemd runs, active state.

    ``enabled`` is ``systemctl is-enabled``'s answer (enabled, disabled, static, masked, alias,
    enabled-runtime, indirect...) or ``not-found``. ``booted`` is False where systemd is not the running
    init (a container, a sysvinit host): nothing is active then, and timers never fire.
    """

    unit: str
    booted: bool
    enabled: str
    active: str | None

    @property
    def will_start(self) -> bool:
        """Whether the unit is started at boot (enabled), as systemd reads its unit files."""
        return self.enabled in ("enabled", "enabled-runtime", "alias", "linked")


# One line per unit: "UNIT<TAB>booted|offline<TAB>is-enabled's answer<TAB>is-active's answer or -", each
# answer systemctl's first line about that unit. systemctl answers many units in one run but stops at
# the first one it cannot answer (systemd 252: is-enabled on an unknown unit, "Failed to get unit file
# state for X: No such file or directory"), stdout holding the answers before it and stderr why: that unit
# gets the message and the units after it are asked again. A service with a SysV script and no unit file
# of that name in the usual directories is asked alone: is-enabled answers such services first,
# whatever their place, and a unit file elsewhere (a generator's) may still make it native; its answer is
# its word on stdout, not the "redirecting to systemd-sysv-install" lines on stderr. A unit with
# nothing of its name (nor, for an instance, its template) in any directory systemd 252 looks in
# (``systemd-analyze unit-paths``, /lib too for split-usr systems) is one is-enabled cannot find: it gets
# "not-found" without a systemctl run, since each unknown unit would cost one more run of the batch.
UNIT_PATHS = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
_UNITS_SH = r"""nl='
'
b=offline; [ -d /run/systemd/system ] && b=booted
_hal() { case $1 in *.service) [ -e "/etc/init.d/${1%.service}" ] || return 1;; *) return 1;; esac
  for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    { [ -e "$d/$1" ] || [ -L "$d/$1" ]; } && return 1; done; return 0; }
_hask() { v=$1; shift; A=; while [ $# -gt 0 ]; do r=$(systemctl "$v" -- "$@" 2>&1); k=0; m=
    while [ -n "$r" ]; do l=${r%%"$nl"*}; if [ "$l" = "$r" ]; then r=; else r=${r#*"$nl"}; fi
      case $l in ''|*[!a-z-]*) m=${m:-$l} ;; *) A=$A$l$nl; k=$((k+1)) ;; esac; done
    [ "$k" -le $# ] || k=$#; shift "$k"; [ $# -gt 0 ] && { A=$A${m:-no answer}$nl; shift; }; done; }
D='@UNIT_PATHS@'
_hhas() { for d in $D; do { [ -e "$d/$1" ] || [ -L "$d/$1" ]; } && return 0; done; return 1; }
_hknown() { _hhas "$1" || case $1 in *@*.*) _hhas "${1%%@*}@.${1##*.}";; *) false;; esac; }
l=; for u do _hal "$u" || ! _hknown "$u" || l="$l $u"; done
_hask is-enabled $l; E=$A; a=
[ "$b" = booted ] && { _hask is-active "$@"; a=$A; }
for u do
  if _hal "$u"; then _hask is-enabled "$u"; e=${A%%"$nl"*}
  elif ! _hknown "$u"; then e=not-found
  else e=${E%%"$nl"*}; E=${E#*"$nl"}; fi
  x=-; [ "$b" = booted ] && { x=${a%%"$nl"*}; a=${a#*"$nl"}; }
  printf '%s	%s	%s	%s
' "$u" "$b" "$e" "$x"
done""".replace("@UNIT_PATHS@", " ".join(UNIT_PATHS))


@dataclass(frozen=True)
class SystemdUnit(Fact[UnitState | None]):
    """State of one systemd unit (``systemctl is-enabled``, ``is-active``); ``None`` without systemctl.

    systemctl resolves what a text search of unit directories would get wrong: masks, aliases, drop-in
    overrides, /etc over /usr/lib. It answers offline too (no running systemd needed for is-enabled).
    """

    kind: ClassVar[str] = "svc-unit"
    in_shell: ClassVar[bool] = True
    batchable: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not _UNIT_RE.match(self.arg):
            raise ValueError(f"not a systemd unit name: {self.arg!r}")

    def script(self) -> str:
        return self.batch_script([self])

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        units = " ".join(quote(f.arg) for f in facts)
        return in_shell_sh(
            "nl b d v A r k m l D u E a e x",
            f"command -v systemctl >/dev/null 2>&1 || return {ABSENT}; set -- {units}; {_UNITS_SH}",
        )

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        lines = {line.split("\t", 1)[0]: line for line in stdout.decode("utf-8", "replace").splitlines()}
        return [
            Part(0, (lines[f.arg] + "\n").encode(), "")
            if f.arg in lines
            else Part(1, b"", stderr or "no line")
            for f in facts
        ]

    def parse(self, capture: Capture) -> UnitState | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        for line in capture.stdout_text().splitlines():
            fields = line.split("\t")
            if len(fields) == 4 and fields[0] == self.arg:
                enabled = fields[2].strip()
                if enabled.startswith("Failed to get unit file state") or "No such file" in enabled:
                    enabled = "not-found"
                elif not re.fullmatch(r"[a-z-]+", enabled):
                    raise FactError(f"{self.describe()}: systemctl said {enabled!r}")
                active = None if fields[3] == "-" else fields[3].strip()
                return UnitState(self.arg, fields[1] == "booted", enabled, active)
        raise FactError(f"{self.describe()}: no state printed")

    def describe(self) -> str:
        return f"systemd unit {self.arg}"


# --------------------------------------------------------------------------------------- listening sockets


@lru_cache(maxsize=4096)
def _loopback(text: str) -> bool:
    """Whether an address is a loopback one (remembered: a fleet's hosts list the same few addresses)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True)
class Socket:
    """A listening socket (TCP LISTEN, or UDP bound): address, port, the interface it is bound to, owners."""

    proto: str  # tcp, udp
    address: str  # 0.0.0.0, ::, *, 127.0.0.1, ::1, 192.0.2.4...
    port: int
    interface: str | None
    processes: tuple[str, ...]

    @property
    def wildcard(self) -> bool:
        """Bound to every address of the host (``0.0.0.0``, ``::``, ``*``)."""
        return self.address in ("0.0.0.0", "::", "*")

    @property
    def loopback_only(self) -> bool:
        """Reachable from this host only: a loopback address, or any address of the ``lo`` interface."""
        return self.interface == "lo" or (not self.wildcard and _loopback(self.address))

    def describe(self) -> str:
        """``tcp 0.0.0.0:22 (sshd)``."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        where = f"{host}%{self.interface}" if self.interface else host
        owners = f" ({', '.join(self.processes)})" if self.processes else ""
        return f"{self.proto} {where}:{self.port}{owners}"


_USERS_RE = re.compile(r'\("([^"]*)",pid=')


def _ss_local(text: str) -> tuple[str, str | None, int]:
    host, _, port = text.rpartition(":")
    interface = None
    if "%" in host:
        host, _, interface = host.partition("%")
    return host.strip("[]"), interface, int(port) if port.isdigit() else -1


def _proc_address(hexed: str) -> tuple[str, int]:
    host, _, port = hexed.partition(":")
    raw = bytes.fromhex(host)
    # /proc/net prints each 32-bit word of the address in host (little-endian) order.
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(ordered)
    return str(address), int(port, 16)


@dataclass(frozen=True)
class ListeningSockets(Fact[list[Socket]]):
    """Listening TCP and bound UDP sockets: ``ss -tulnp`` (with owners), else /proc/net/{tcp,udp}[6].

    ss shows an interface binding (``127.0.0.53%lo``) and the owning processes; /proc/net does not,
    so without ss a socket bound with SO_BINDTODEVICE is judged by its address only.
    """

    kind: ClassVar[str] = "listen"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "f",
            "if command -v ss >/dev/null 2>&1; then echo '# ss'; ss -tulnp || return 1; return 0; fi; "
            "echo '# proc'; for f in tcp tcp6 udp udp6; do [ -r /proc/net/$f ] || continue; "
            'echo "# $f"; cat /proc/net/$f || return 1; done',
        )

    def parse(self, capture: Capture) -> list[Socket]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = capture.stdout_text().splitlines()
        if not lines or lines[0] not in ("# ss", "# proc"):
            raise FactError(f"{self.describe()}: unexpected output")
        return self._ss(lines[1:]) if lines[0] == "# ss" else self._proc(lines[1:])

    def _ss(self, lines: list[str]) -> list[Socket]:
        sockets = []
        for line in lines:
            fields = line.split()
            if not fields or fields[0] == "Netid":
                continue
            if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
                raise FactError(f"{self.describe()}: unexpected ss line {line!r}")
            address, interface, port = _ss_local(fields[4])
            if port < 0:
                raise FactError(f"{self.describe()}: unexpected local address {fields[4]!r}")
            owners = tuple(dict.fromkeys(_USERS_RE.findall(" ".join(fields[6:]))))
            sockets.append(Socket(fields[0], address, port, interface, owners))
        return sockets

    def _proc(self, lines: list[str]) -> list[Socket]:
        sockets = []
        table = ""
        for line in lines:
            if line.startswith("# "):
                table = line[2:]
                continue
            fields = line.split()
            if len(fields) < 4 or not fields[0].endswith(":") or not table:
                continue
            state, remote = fields[3], fields[2]
            listening = (
                state == "0A" if table.startswith("tcp") else state == "07" and set(remote) <= {"0", ":"}
            )
            if listening:
                address, port = _proc_address(fields[1])
                sockets.append(Socket(table[:3], address, port, None, ()))
        return sockets

    def describe(self) -> str:
        return "listening sockets"


# ------------------------------------------------------------------------------------------ postfix


@dataclass(frozen=True)
class PostfixListen:
    """Where postfix listens: ``inet_interfaces`` and the ``inet`` services of master.cf."""

    inet_interfaces: list[str]
    services: list[str]  # master.cf service names of type inet: "smtp", "127.0.0.1:smtp", "0.0.0.0:2525"


# The first line of the fact's output; then inet_interfaces and config_directory as postconf resolves them
# (one line each), then master.cf's bytes.
_POSTCONF_HEADER = "# postconf -hx inet_interfaces config_directory"


def _interfaces(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value) if v]


def master_services(text: str) -> list[str]:
    """The names of master.cf's ``inet`` services, read as master(5) says postfix reads the file: blank
    lines and lines whose first non-blank character is ``#`` are ignored, a line starting with whitespace
    continues the entry before it, and an entry's first two fields are its service name and type."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1] += fields
        else:
            entries.append(fields)
    return [fields[0] for fields in entries if len(fields) >= 2 and fields[1] == "inet"]


@dataclass(frozen=True)
class PostfixConfig(Fact[PostfixListen | None]):
    """postfix's listening configuration: ``inet_interfaces`` as postconf resolves it (defaults, last
    setting wins, ``$name`` expanded) and master.cf's ``inet`` services.

    postconf validates master.cf whenever it runs (a bad field count is fatal even for ``-h``), so once it
    has answered, the file's entries are the ones ``postconf -M`` would list: the file is read (in a probe,
    with the probe's pooled reads) and its services taken as master(5) reads them, instead of running
    ``postconf -M``, a second start of postconf (about 15 ms of a host's CPU).
    """

    kind: ClassVar[str] = "mail-postfix"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return WHOLE_SH + in_shell_sh(
            "nl i d",
            f"command -v postconf >/dev/null 2>&1 || return {ABSENT}; nl='\n'; "
            "i=$(postconf -hx inet_interfaces config_directory) || return 1; "
            # config_directory is postconf's second line: what follows the newline in $i
            f"printf '%s\\n%s\\n' '{_POSTCONF_HEADER}' \"$i\"; d=${{i#*\"$nl\"}}; "
            '[ -r "$d/master.cf" ] || { echo "cannot read $d/master.cf" >&2; return 1; }; rdw "$d/master.cf"',
        )

    def parse(self, capture: Capture) -> PostfixListen | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        text = capture.stdout_text()
        if text.startswith("# frames "):  # recorded before 2026-12-03: inet_interfaces and postconf -M
            old = parts(self, framed_output(self, capture) or [], "inet_interfaces", "master")
            return PostfixListen(_interfaces(old[0].text()), master_services(old[1].text()))
        header, interfaces, directory, master = [*text.split("\n", 3), "", "", ""][:4]
        if header != _POSTCONF_HEADER or not directory.startswith("/"):
            raise FactError(f"{self.describe()}: unexpected output {text[:80]!r}")
        return PostfixListen(_interfaces(interfaces), master_services(master))

    def describe(self) -> str:
        return "postfix listening configuration (postconf)"
