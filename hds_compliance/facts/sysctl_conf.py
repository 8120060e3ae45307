"""Kernel parameters as the next boot sets them (sysctl.d, in systemd-sysctl's order) and per interface.

``SysctlConf`` reads every ``*.conf`` of the sysctl.d directories and models what ``systemd-sysctl``
(sysctl.d(5)) writes at boot: files sorted by name across directories, a file in a higher directory
replacing the same name in a lower one (``/etc`` over ``/run`` over ``/usr/local/lib`` over ``/usr/lib``
and ``/lib``), a symbolic link to ``/dev/null`` or an empty file masking that name, later assignments
winning, glob keys writing every matching key that no explicit key names, ``-key`` excluding a key from
globs. Debian and RHEL link ``/etc/sysctl.conf`` in as ``/etc/sysctl.d/99-sysctl.conf``: it is read through
that link, never on its own (systemd-sysctl does not read it either).

``NetConf`` reads the per-interface parameters of one address family for every interface at once
(``/proc/sys/net/ipv4/conf/<if>/<key>``), with ``all`` and ``default``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, Part, in_shell_sh
from hds_compliance.facts.kernel import PROC_SYS_SH
from hds_compliance.facts.reads import READS_SH, Listing, parse_listing
from hds_compliance.model import Capture

# systemd's CONF_PATHS("sysctl.d"), highest precedence first; /lib/sysctl.d only matters on hosts whose
# /lib is not a link to /usr/lib (there it lists the same files again, never winning over them).
SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
_GLOB_CHARS = frozenset("*?[")


def sysctl_path(key: str) -> str:
    """The key as a path below /proc/sys, the way systemd-sysctl normalises it.

    "If the first separator is a slash, remaining slashes and dots are left intact. If the first separator
    is a dot, dots and slashes are interchanged" (sysctl.d(5)): ``net.ipv4.conf.eth0/100.rp_filter`` and
    ``net/ipv4/conf/eth0.100/rp_filter`` both name ``net/ipv4/conf/eth0.100/rp_filter``.
    """
    key = key.strip().strip("/")
    first = re.search(r"[./]", key)
    if first is None or first.group() == "/":
        return key
    return key.translate(str.maketrans("./", "/."))


def dotted_name(path: str) -> str:
    """A slash path in the dotted form (a dot inside a component becomes a slash, as sysctl.d(5) says)."""
    return path.replace(".", "\0").replace("/", ".").replace("\0", "/")


def _matches(pattern: str, path: str) -> bool:
    """Whether a glob key matches a path: each component on its own, as glob(3) on /proc/sys does."""
    parts, names = pattern.split("/"), path.split("/")
    return len(parts) == len(names) and all(fnmatchcase(n, p) for p, n in zip(parts, names, strict=True))


@dataclass(frozen=True)
class SysctlEntry:
    """One assignment (or ``-key`` exclusion, ``value`` None) of a sysctl.d file."""

    file: str
    line: int
    path: str  # normalised key, slash form; may hold glob characters
    value: str | None
    ignore_failure: bool = False

    @property
    def where(self) -> str:
        """``file:line``, for messages."""
        return f"{self.file}:{self.line}"

    @property
    def name(self) -> str:
        """The key in dotted form, as an administrator writes it."""
        return dotted_name(self.path)

    @cached_property
    def is_glob(self) -> bool:
        """Whether the key is a pattern (``net.ipv4.conf.*.rp_filter``)."""
        return not _GLOB_CHARS.isdisjoint(self.path)


@dataclass(frozen=True)
class SysctlConfig:
    """What systemd-sysctl applies at boot: the files it reads in order, those masked, the assignments."""

    files: tuple[str, ...]
    masked: tuple[str, ...]
    entries: tuple[SysctlEntry, ...]  # in force, in the order systemd-sysctl applies them

    def assignment(self, path: str) -> SysctlEntry | None:
        """The entry that decides what the boot writes to ``path`` (slash form), or None if none does.

        An explicit key always beats glob keys ("Keys for which an explicit pattern exists will be excluded
        from any glob matching"); among globs the last one applied writes last. A returned entry whose
        ``value`` is None is a ``-key`` exclusion: nothing is written.
        """
        explicit = self._explicit.get(path)
        if explicit is not None:
            return explicit
        globs = [e for e in self._globs if _matches(e.path, path)]
        return globs[-1] if globs else None

    @cached_property
    def _explicit(self) -> dict[str, SysctlEntry]:
        """The last explicit entry of each key (checks ask for many keys of one config)."""
        return {e.path: e for e in self.entries if not e.is_glob}

    @cached_property
    def _globs(self) -> list[SysctlEntry]:
        return [e for e in self.entries if e.is_glob and e.value is not None]

    def value(self, path: str) -> str | None:
        """The value the boot writes to ``path``, None if nothing writes it."""
        entry = self.assignment(path)
        return None if entry is None or entry.value is None else " ".join(entry.value.split())


def _parse_file(name: str, text: str) -> list[SysctlEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        ignore = key.startswith("-")
        key = key[1:] if ignore else key
        if not eq:
            if ignore and key.strip():  # "-key": excluded from globs, set by nothing
                entries.append(SysctlEntry(name, number, sysctl_path(key), None, True))
            continue  # systemd-sysctl warns "Line is not an assignment" and goes on
        path = sysctl_path(key)
        if path:
            entries.append(SysctlEntry(name, number, path, value.strip(), ignore))
    return entries


def _in_force(entries: list[SysctlEntry]) -> tuple[SysctlEntry, ...]:
    """systemd-sysctl's ordered map: re-assigning a key with another value moves it to the end (the same
    value keeps the first place and line), which decides which of two matching globs writes last."""
    table: dict[str, SysctlEntry] = {}
    for entry in entries:
        old = table.get(entry.path)
        if old is not None and old.value == entry.value:
            continue
        table.pop(entry.path, None)
        table[entry.path] = entry
    return tuple(table.values())


# sh, in a loop over folders $d: skip a /lib folder that is its /usr/lib twin (merged-/usr hosts), so that
# the same files are listed once, not twice.
USR_TWIN_SH = 'case $d in /lib/*) [ "$d" -ef "/usr$d" ] && continue;; esac; '


def conf_files_sh(dirs: tuple[str, ...], pattern: str) -> str:
    """sh adding ``dir/pattern`` of each directory to "$@" for :data:`READS_SH`'s ``rd`` (the caller starts
    with ``rc=0; set --``), with shell
    builtins only: ``M <length> <name>`` for a name masked by a symbolic link to /dev/null, ``U <length>
    <name>`` (and rc=101) for a file the probe may not read; other non-regular entries are skipped."""
    return (
        f'for d in {" ".join(dirs)}; do [ -d "$d" ] || continue; '
        + USR_TWIN_SH
        + f'for f in "$d"/{pattern}; do [ -L "$f" ] && [ "$f" -ef /dev/null ] && '
        '{ rec M "$f"; continue; }; [ -f "$f" ] || continue; '
        f'[ -r "$f" ] || {{ rc={UNREADABLE}; rec U "$f"; continue; }}; '
        'set -- "$@" "$f"; done; done'
    )


def config_order(
    records: list[tuple[str, str, bytes]], dirs: tuple[str, ...]
) -> list[tuple[str, str, bytes]]:
    """systemd's conf-files order: by file name across directories, the highest directory's copy only."""
    chosen: dict[str, tuple[int, tuple[str, str, bytes]]] = {}
    for record in records:
        directory, _, base = record[1].rpartition("/")
        rank = dirs.index(directory) if directory in dirs else len(dirs)
        if base not in chosen or rank < chosen[base][0]:
            chosen[base] = (rank, record)
    return [chosen[base][1] for base in sorted(chosen)]


@dataclass(frozen=True)
class SysctlConf(Fact[SysctlConfig]):
    """The sysctl.d configuration systemd-sysctl applies at the next boot (see the module docstring)."""

    kind: ClassVar[str] = "sysctl-conf"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        files = conf_files_sh(SYSCTL_DIRS, "*.conf")
        return f"{READS_SH}; " + in_shell_sh(
            "rc d f", f'rc=0; set --; {files}; rd %s "$@" || rc=1; return "$rc"'
        )

    def parse(self, capture: Capture) -> SysctlConfig:
        return self.config(capture, parse_listing(capture, self.describe(), "MUV"))

    def config(self, capture: Capture, listing: Listing) -> SysctlConfig:
        """The configuration from the records of :func:`conf_files_sh` and the files read."""
        if capture.exit_code not in (0, UNREADABLE):
            raise self._fail(capture)
        for name in listing.named("U"):
            raise FactError(f"{self.describe()}: {name} is not readable with the probe's privileges")
        for read in listing.files:
            if not read.complete:
                raise FactError(f"{self.describe()}: {read.path} is larger than the probe reads")
        if capture.exit_code != 0:
            raise self._fail(capture)
        records = [("M", name, b"") for name in listing.named("M")]
        records += [("F", read.path, read.data) for read in listing.files]
        files, masked, entries = [], [], []
        for kind, name, body in config_order(records, SYSCTL_DIRS):
            if kind == "M" or not body.strip():
                masked.append(name)
                continue
            files.append(name)
            entries.extend(_parse_file(name, body.decode("utf-8", "replace")))
        return SysctlConfig(tuple(files), tuple(masked), _in_force(entries))

    def describe(self) -> str:
        return "sysctl.d configuration"


# Per-interface keys read for every interface: those the checks can judge (see checks/sysctl.py).
NET_KEYS: dict[str, tuple[str, ...]] = {
    "ipv4": (
        "accept_local",
        "accept_redirects",
        "accept_source_route",
        "arp_accept",
        "arp_announce",
        "arp_filter",
        "arp_ignore",
        "arp_notify",
        "bc_forwarding",
        "bootp_relay",
        "drop_gratuitous_arp",
        "drop_unicast_in_l2_multicast",
        "forwarding",
        "log_martians",
        "mc_forwarding",
        "proxy_arp",
        "route_localnet",
        "rp_filter",
        "secure_redirects",
        "send_redirects",
        "shared_media",
    ),
    "ipv6": (
        "accept_ra",
        "accept_ra_defrtr",
        "accept_ra_pinfo",
        "accept_ra_rtr_pref",
        "accept_redirects",
        "accept_source_route",
        "autoconf",
        "dad_transmits",
        "disable_ipv6",
        "forwarding",
        "max_addresses",
        "router_solicitations",
        "use_tempaddr",
    ),
}


# sh: one grep over the paths the globs $1... name. A glob that matched nothing (a key this kernel lacks)
# stays as it is written, naming no file: it is left out. The globs are handed to grep, not the paths one
# by one (``set -- "$@" "$p"`` copies the list at each path: quadratic, 4.5 ms for 204 paths).
_GREP_EXISTING_SH = (
    'g=; for q in %s; do for p in $q; do [ -e "$p" ] && g="$g $q"; break; done; done; '
    '[ -n "$g" ] || return 1; grep -H "" -- $g'
)


@dataclass(frozen=True)
class NetConf(Fact[dict[str, dict[str, int]] | None]):
    """Per-interface parameters of ``ipv4`` or ``ipv6``: {interface: {key: value}}, with ``all`` and
    ``default``; None when the kernel has no such family (IPv6 off with ``ipv6.disable=1``).

    One grep reads every key of every interface (of both families, when the probe asks both);
    interface names hold no ``/``, ``:`` or blank (the kernel refuses them), so ``<path>:<value>`` splits
    at the first colon. A key the kernel lacks is simply missing from the interface's mapping.
    """

    kind: ClassVar[str] = "sysctl-net"
    in_shell: ClassVar[bool] = True
    batchable: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.arg not in NET_KEYS:
            raise ValueError(f"not an address family with per-interface parameters: {self.arg!r}")

    @property
    def root(self) -> str:
        """Where the kernel lists the family's interfaces."""
        return f"/proc/sys/net/{self.arg}/conf"

    @property
    def globs(self) -> str:
        """sh globs naming every key of every interface (a key this kernel lacks stays unexpanded)."""
        return " ".join(f"'{self.root}/*/{key}'" for key in NET_KEYS[self.arg])

    def script(self) -> str:
        return in_shell_sh(
            "g p q", f"{PROC_SYS_SH}; [ -d {self.root} ] || return {ABSENT}; {_GREP_EXISTING_SH % self.globs}"
        )

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # "-<root>" for a family the kernel lacks (no path starts with "-"), then one grep for the others
        nets = [f for f in facts if isinstance(f, NetConf)]
        roots = " ".join(f.root for f in nets)
        globs = " ".join(f.globs for f in nets)
        return in_shell_sh(
            "g p q",
            f'{PROC_SYS_SH}; for p in {roots}; do [ -d "$p" ] || echo "-$p"; done; '
            + _GREP_EXISTING_SH % globs,
        )

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        if "/proc/sys is not mounted" in stderr:
            return [Part(1, b"", stderr.strip()) for _ in facts]
        lines = stdout.splitlines(keepends=True)
        parts = []
        for fact in facts:
            assert isinstance(fact, NetConf)
            if f"-{fact.root}\n".encode() in lines:
                parts.append(Part(ABSENT, b"", ""))
                continue
            mine = b"".join(line for line in lines if line.startswith(f"{fact.root}/".encode()))
            errors = "\n".join(line for line in stderr.splitlines() if f"{fact.root}/" in line)
            # grep's exit code over this family's files alone: 2 on an error, 1 when no line was read
            parts.append(Part(2 if errors else 0 if mine else 1, mine, errors))
        return parts

    def parse(self, capture: Capture) -> dict[str, dict[str, int]] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        table: dict[str, dict[str, int]] = {}
        for line in capture.stdout_text().splitlines():
            path, _, value = line.partition(":")
            interface, _, key = path.removeprefix(f"{self.root}/").rpartition("/")
            try:
                if not path.startswith(f"{self.root}/") or "/" in interface:
                    raise ValueError(path)
                table.setdefault(interface, {})[key] = int(value.strip())
            except ValueError as exc:
                raise FactError(f"{self.describe()}: unexpected line {line!r}") from exc
        if "all" not in table or "default" not in table:
            raise FactError(f"{self.describe()}: no 'all' or 'default' entry under {self.root}")
        return table

    def describe(self) -> str:
        return f"per-interface {self.arg} parameters"


# Keys named by the sysctl.d files, each once, as /proc/sys paths (sysctl.d(5) normalisation; globs kept for
# the shell to expand). Over-reading is harmless: the parser decides which assignment is in force.
_KEYS_AWK = (
    '/^[ \\t]*[#;]/ { next } /=/ { k = $0; sub(/=.*/, "", k); gsub(/[ \\t]/, "", k); sub(/^-/, "", k); '
    'if (match(k, /[.\\/]/) && substr(k, RSTART, 1) == ".") { gsub(/\\./, "\\001", k); gsub(/\\//, ".", k); '
    'gsub(/\\001/, "/", k) } if (k != "" && !(k in seen)) { seen[k]; print "/proc/sys/" k } }'
)


@dataclass(frozen=True)
class SysctlApplied(Fact[tuple[SysctlConfig, dict[str, str]]]):
    """The sysctl.d configuration and the live value of every key it names: (config, {path: live value}).

    One snippet: the files as :class:`SysctlConf` reads them, and before them a record ``V`` holding the
    output of one grep over every /proc/sys path the files name (globs expanded by the shell, each path
    once). A key this kernel lacks has no value.
    """

    kind: ClassVar[str] = "sysctl-applied"
    arg: str = ""

    def script(self) -> str:
        return (
            f"{READS_SH}; rc=0; set --; {conf_files_sh(SYSCTL_DIRS, '*.conf')}; v=; "
            f"if [ $# -gt 0 ]; then l=' '; for p in $(awk '{_KEYS_AWK}' \"$@\"); do "
            # A path named twice (conf/all and conf/* both match it) is read once.
            '[ -f "$p" ] || continue; case $l in *" $p "*) continue;; esac; l="$l$p "; done; '
            '[ "$l" = " " ] || { set -f; v=$(grep -H "" -- $l); set +f; }; fi; '
            'rec V "$v"; rd %s "$@" || rc=1; exit "$rc"'
        )

    def parse(self, capture: Capture) -> tuple[SysctlConfig, dict[str, str]]:
        listing = parse_listing(capture, self.describe(), "MUV")
        values = listing.named("V")
        if len(values) != 1:
            raise FactError(f"{self.describe()}: no live values in the output")
        config = SysctlConf().config(capture, listing)
        live: dict[str, list[str]] = {}
        for line in values[0].splitlines():
            path, colon, value = line.partition(":")
            if colon and path.startswith("/proc/sys/"):
                live.setdefault(path.removeprefix("/proc/sys/"), []).append(value)
        return config, {path: " ".join(" ".join(v).split()) for path, v in live.items()}

    def describe(self) -> str:
        return "sysctl.d configuration and the live values it names"
