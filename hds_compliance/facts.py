"""Facts: the pieces of host state checks read, each a POSIX sh snippet and a pure parser.

A fact is declared by a check (never fetched by it). The probe runs every fact's snippet once per host
inside one script; the snippet's stdout and exit code come back as a :class:`~hds_compliance.model.Capture`
and :meth:`Fact.parse` turns that into a value. Parsers run on the evaluating side, so they are unit-tested
with recorded captures and re-run offline by certifiers.

Conventions for snippets: exit ``ABSENT`` (100) when the thing does not exist (file, directory, daemon),
``UNREADABLE`` (101) when it exists but cannot be read with the probe's privileges. ``command not found``
is the shell's own 127. Any other non-zero exit code is a collection error, never a silent value.
Where a raw read would carry a secret (``/etc/shadow``), the snippet derives the fact on the host.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from hds_compliance.model import Capture

ABSENT = 100
UNREADABLE = 101
NOT_FOUND = 127

T = TypeVar("T")


class Part(NamedTuple):
    """What one fact of a batch printed: the same fields a section of its own would have."""

    exit_code: int
    stdout: bytes
    stderr: str


def _error_lines(stderr: str, path: str) -> str:
    """Error lines a tool printed about ``path`` (quoted 'path' or followed by a colon)."""
    return "\n".join(line for line in stderr.splitlines() if f"'{path}'" in line or f"{path}:" in line)


def _part_from_error(message: str) -> Part:
    if "No such file" in message:
        return Part(ABSENT, b"", message)
    if "Permission denied" in message:
        return Part(UNREADABLE, b"", message)
    return Part(1, b"", message or "no output for this item")


_HEAD_MARK = "# head"


def _void_last_read(parts: list[Part], why: str) -> None:
    """Turn the last file whose content was taken into an error."""
    last = max((i for i, part in enumerate(parts) if part.exit_code == 0), default=None)
    if last is not None:
        parts[last] = Part(1, b"", why)


class FactError(Exception):
    """A fact could not be established from its capture; the check gets an ``error`` verdict."""


def _q(value: str) -> str:
    return shlex.quote(value)


_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@/-]*$")
_GLOB_RE = re.compile(r"^[A-Za-z0-9._*?+@-]+$")
_SYSCTL_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")


def _check_path(path: str) -> str:
    if not _PATH_RE.match(path) or "/../" in f"{path}/":
        raise ValueError(f"not a plain absolute path: {path!r}")
    return path


def _exists_or_exit(path: str) -> str:
    """sh that exits ABSENT if ``path`` does not exist, UNREADABLE if a folder on the way cannot be searched.

    ``[ -e ]`` is also false for a file below a folder the probe may not enter: that is "cannot know",
    not "absent". The deepest folder on the way that the probe sees tells which.
    """
    p = _q(path)
    parts = path.rstrip("/").split("/")[1:-1]
    ancestors = " ".join(_q("/" + "/".join(parts[:i])) for i in range(len(parts), -1, -1))
    return (
        f'[ -e {p} ] || [ -L {p} ] || {{ for d in {ancestors}; do [ -d "$d" ] || continue; '
        f'[ -x "$d" ] && exit {ABSENT}; exit {UNREADABLE}; done; exit {ABSENT}; }}'
    )


@dataclass(frozen=True)
class Fact(ABC, Generic[T]):
    """A fact request. Equal requests (same kind and argument) are collected once per host."""

    kind: ClassVar[str]
    arg: str

    @property
    def key(self) -> str:
        """Stable identifier of the fact in captures and evidence, e.g. ``file:/etc/login.defs``."""
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    @abstractmethod
    def script(self) -> str:
        """POSIX sh snippet printing the fact's raw data on stdout."""

    @abstractmethod
    def parse(self, capture: Capture) -> T:
        """Value of the fact from its capture; raise :class:`FactError` when it cannot be known."""

    def describe(self) -> str:
        """Short human name used in messages."""
        return self.key

    # Facts of one kind whose snippets would each start the same program (cat, stat) can be batched:
    # the probe runs ONE snippet for all of them and splits its output back into one capture per fact.
    batchable: ClassVar[bool] = False

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        """One snippet collecting every fact of ``facts`` (only for ``batchable`` kinds)."""
        raise NotImplementedError(cls.kind)

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        """Per-fact (exit code, stdout, stderr) recovered from the batch snippet's output.

        ``limit`` is the probe's ``$C``: the most bytes a snippet reads from one file.
        """
        raise NotImplementedError(cls.kind)

    def _fail(self, capture: Capture) -> FactError:
        # Some tools report errors on stdout (chronyc: "506 Cannot talk to daemon").
        detail = (capture.stderr.strip() or capture.stdout_text().strip()).splitlines()
        reason = detail[-1] if detail else "no error output"
        if capture.exit_code == UNREADABLE:
            return FactError(f"{self.describe()}: not readable with the probe's privileges ({reason})")
        return FactError(f"{self.describe()}: exit code {capture.exit_code} ({reason})")


# ---------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class FileContent(Fact[bytes | None]):
    """Content of a file, ``None`` if it does not exist."""

    kind: ClassVar[str] = "file"

    def __post_init__(self) -> None:
        _check_path(self.arg)

    def script(self) -> str:
        p = _q(self.arg)
        return f'{_exists_or_exit(self.arg)}; [ -r {p} ] || exit {UNREADABLE}; head -c "$C" -- {p}'

    batchable: ClassVar[bool] = True

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # Two programs for any number of files: stat gives each size, then ONE head prints them all,
        # each after a "==> path <==" header. Paths are validated (no blank, no newline).
        paths = " ".join(_q(f.arg) for f in facts)
        return f"stat -L -c '%s %n' -- {paths}; echo '{_HEAD_MARK}'; head -c \"$C\" -- {paths}"

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        """Cut head's output by the sizes stat gave: a header must sit exactly where the previous file
        ends, so file contents cannot fake a boundary, and a file that changed size between stat and
        head breaks the chain; it and every file after it are then errors, never misread values."""
        meta, sep, body = stdout.partition(f"\n{_HEAD_MARK}\n".encode())
        if not sep:
            meta, sep, body = stdout.partition(f"{_HEAD_MARK}\n".encode())  # stat printed nothing
        sizes: dict[str, int] = {}
        for line in meta.decode("utf-8", "replace").splitlines():
            size, _, name = line.partition(" ")
            if size.isdigit():
                sizes[name] = int(size)
        parts: list[Part] = []
        pos, first, broken = 0, True, "" if sep else "batch output has no file part"
        for fact in facts:
            errors = _error_lines(stderr, fact.arg)
            if broken:
                parts.append(Part(1, b"", broken))
                continue
            if fact.arg not in sizes or "cannot open" in errors:
                parts.append(_part_from_error(errors))
                continue
            header = (b"" if first else b"\n") + f"==> {fact.arg} <==\n".encode()
            if body[pos : pos + len(header)] != header:
                # The file before ended elsewhere than stat said: it is not known either.
                broken = "files changed while they were read (sizes and contents disagree)"
                _void_last_read(parts, broken)
                parts.append(Part(1, b"", broken))
                continue
            pos, first = pos + len(header), False
            if errors:  # opened but not read: a directory
                parts.append(Part(1, b"", errors))
                continue
            end = pos + min(sizes[fact.arg], limit)
            parts.append(Part(0, body[pos:end], ""))
            pos = end
        if not broken and pos != len(body):  # the last file grew after stat: its content is not known
            _void_last_read(parts, "file changed while it was read")
        return parts

    def parse(self, capture: Capture) -> bytes | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        return capture.stdout_bytes()


@dataclass(frozen=True)
class Stat:
    """File metadata as reported by ``stat``."""

    mode: int
    uid: int
    gid: int
    file_type: str


@dataclass(frozen=True)
class FileStat(Fact[Stat | None]):
    """Permissions and ownership of a path, ``None`` if it does not exist."""

    kind: ClassVar[str] = "stat"

    def __post_init__(self) -> None:
        _check_path(self.arg)

    def script(self) -> str:
        p = _q(self.arg)
        return f"{_exists_or_exit(self.arg)}; stat -c '%a %u %g %F' -- {p}"

    batchable: ClassVar[bool] = True

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # One stat for every path: "%n<TAB>..." names each line (paths are validated: no tab, no newline).
        return "stat -c '%n\t%a %u %g %F' -- " + " ".join(_q(f.arg) for f in facts)

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        text = stdout.decode("utf-8", "replace")
        lines = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
        return [
            Part(0, lines[f.arg].encode() + b"\n", "")
            if f.arg in lines
            else _part_from_error(_error_lines(stderr, f.arg))
            for f in facts
        ]

    def parse(self, capture: Capture) -> Stat | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        parts = capture.stdout_text().strip().split(" ", 3)
        try:
            return Stat(mode=int(parts[0], 8), uid=int(parts[1]), gid=int(parts[2]), file_type=parts[3])
        except (IndexError, ValueError) as exc:
            raise FactError(f"{self.describe()}: unexpected stat output {capture.stdout_text()!r}") from exc


@dataclass(frozen=True)
class FilesMatching(Fact[dict[str, bytes]]):
    """Regular files of one directory matching a glob, e.g. ``/etc/sudoers.d/*``; empty if none.

    The glob is expanded on the host, so drop-in directories cost no second round trip. Each file is
    framed by its byte length, which file contents cannot forge.
    """

    kind: ClassVar[str] = "files"

    def __post_init__(self) -> None:
        directory, _, pattern = self.arg.rpartition("/")
        _check_path(directory)
        if not _GLOB_RE.match(pattern):
            raise ValueError(f"unsupported glob: {pattern!r}")

    def script(self) -> str:
        directory, _, pattern = self.arg.rpartition("/")
        return (
            f"[ -d {_q(directory)} ] || exit 0; rc=0; for f in {_q(directory)}/{pattern}; do "
            '[ -f "$f" ] || continue; [ -r "$f" ] || { rc=101; continue; }; '
            's=$(wc -c < "$f"); [ "$s" -le "$C" ] || s=$C; '
            'printf \'%s %s %s\\n\' "$s" "${#f}" "$f"; head -c "$s" -- "$f"; '
            'done; exit "$rc"'
        )

    def parse(self, capture: Capture) -> dict[str, bytes]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        data = capture.stdout_bytes()
        files: dict[str, bytes] = {}
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            try:
                size_s, name_len_s, rest = data[pos:end].split(b" ", 2)
                size, name_len = int(size_s), int(name_len_s)
            except ValueError as exc:
                raise FactError(f"{self.describe()}: malformed listing at byte {pos}") from exc
            name_end = pos + len(size_s) + len(name_len_s) + 2 + name_len
            if end < 0 or len(rest) < name_len or data[name_end : name_end + 1] != b"\n":
                raise FactError(f"{self.describe()}: malformed listing at byte {pos}")
            name = data[pos + len(size_s) + len(name_len_s) + 2 : name_end].decode("utf-8", "replace")
            body = data[name_end + 1 : name_end + 1 + size]
            if len(body) != size:
                raise FactError(f"{self.describe()}: {name} changed while it was read")
            files[name] = body
            pos = name_end + 1 + size
        return dict(sorted(files.items()))


# --------------------------------------------------------------------------------------------- kernel


@dataclass(frozen=True)
class Sysctl(Fact[str | None]):
    """Live value of a kernel parameter read from ``/proc/sys``; ``None`` if the kernel has no such key."""

    kind: ClassVar[str] = "sysctl"

    def __post_init__(self) -> None:
        if not _SYSCTL_RE.match(self.arg):
            raise ValueError(f"not a sysctl name: {self.arg!r}")

    def script(self) -> str:
        path = self.path
        return (
            f"[ -d /proc/sys ] || {{ echo '/proc/sys is not mounted' >&2; exit 1; }}; "
            # cat, not the shell's read: dash reads one byte at a time and /proc/sys answers a read at
            # offset 1 with end of file, so `read` would see "3" for a pid_max of 32768.
            f"[ -e {path} ] || exit {ABSENT}; cat {path}"
        )

    batchable: ClassVar[bool] = True

    @property
    def path(self) -> str:
        """Where the kernel exposes the parameter."""
        return "/proc/sys/" + self.arg.replace(".", "/")

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # One grep for every key: each line comes back as "<path>:<line>" (procfs paths hold no colon).
        paths = " ".join(_q(f.path) for f in facts if isinstance(f, Sysctl))
        return (
            f"[ -d /proc/sys ] || {{ echo '/proc/sys is not mounted' >&2; exit 1; }}; grep -H '' -- {paths}"
        )

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
            errors = _error_lines(stderr, fact.path)
            if errors:
                parts.append(_part_from_error(errors))
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
    arg: str = ""

    def script(self) -> str:
        return (
            "[ -r /proc/self/mounts ] || { echo '/proc is not mounted' >&2; exit 1; }; cat /proc/self/mounts"
        )

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


@dataclass(frozen=True)
class Processes(Fact[frozenset[str]]):
    """Names (``comm``) of the processes running on the host, from ``/proc/<pid>/stat``.

    The probe's own session (its shell, base64, and on @local the scanner itself) is left out: a fact
    describes the host, not the tool looking at it. One ``cat`` reads every stat line (a shell loop
    with ``read`` costs one system call per byte); the first line is cat's own, which gives the
    probe's session.
    """

    kind: ClassVar[str] = "processes"
    arg: str = ""

    def script(self) -> str:
        return (
            "[ -r /proc/self/stat ] || { echo '/proc is not mounted' >&2; exit 1; }; "
            "cat /proc/self/stat /proc/[0-9]*/stat 2>/dev/null; exit 0"  # processes may end meanwhile
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


# ------------------------------------------------------------------------------------------- services


@dataclass(frozen=True)
class SshdConfig:
    """Effective configuration of the SSH daemon (``sshd -T``): lower-case keyword → values."""

    source: str
    options: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        """First value of a keyword, ``None`` if sshd did not print it."""
        values = self.options.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class SshdEffectiveConfig(Fact[list[SshdConfig] | None]):
    """What the running SSH daemons enforce: ``sshd -T`` on the config file each listener was started with.

    Reading ``sshd_config`` alone misses defaults, ``Include`` files and a daemon started with ``-f``;
    ``sshd -T`` resolves all of them. Every listening daemon counts (a host may run a second sshd for
    SFTP); with none running, the default configuration is what the next start would enforce.
    ``None`` means sshd is not installed.
    """

    kind: ClassVar[str] = "sshd"
    arg: str = ""

    def script(self) -> str:
        # A listener's title is "sshd: /usr/sbin/sshd -D -f FILE [listener] ..." (OpenSSH >= 8.2) or its
        # plain command line; session processes are "sshd: user@...". Configs are de-duplicated.
        return (
            "command -v sshd >/dev/null 2>&1 || exit 100; cfgs=; "
            'for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && [ "$c" = sshd ] || continue; '
            "t=$(tr '\\000' ' ' < \"$p/cmdline\" 2>/dev/null) || continue; "
            'case "$t" in "sshd: "*"[listener]"*|/*sshd|/*sshd" "*|sshd|sshd" "*) ;; *) continue;; esac; '
            "f=$(printf '%s\\n' \"$t\" | sed -n 's/.* -f \\([^ ]*\\).*/\\1/p'); "
            'f=${f:-/etc/ssh/sshd_config}; case " $cfgs " in *" $f "*) ;; *) cfgs="$cfgs $f";; esac; done; '
            "for f in ${cfgs:-/etc/ssh/sshd_config}; do "
            'echo "# config $f"; sshd -T -f "$f" 2>&1; echo "# exit $?"; done'
        )

    def parse(self, capture: Capture) -> list[SshdConfig] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        configs: list[SshdConfig] = []
        source, options, lines = "/etc/ssh/sshd_config", dict[str, list[str]](), list[str]()

        def close(code: int) -> None:
            if code != 0:
                said = lines[-1] if lines else "no output"
                raise FactError(
                    f"{self.describe()}: sshd -T -f {source} failed with exit code {code} ({said})"
                )
            if not options:
                raise FactError(f"{self.describe()}: sshd -T -f {source} printed no configuration")
            configs.append(SshdConfig(source=source, options=dict(options)))

        started = False
        for line in capture.stdout_text().splitlines():
            if line.startswith("# config "):
                if started and lines:
                    close(0)  # recordings made before "# exit" lines existed
                source, options, lines, started = line[len("# config ") :].strip(), {}, [], True
            elif line.startswith("# exit "):
                close(int(line.split()[-1]) if line.split()[-1].lstrip("-").isdigit() else 1)
                started = False
            else:
                started = True  # plain `sshd -T` output without a header: the default configuration
                lines.append(line.strip())
                key, _, value = line.strip().partition(" ")
                if key:
                    options.setdefault(key.lower(), []).append(value.strip())
        if started:
            close(0)
        if not configs:
            raise FactError(f"{self.describe()}: sshd -T printed no configuration")
        return configs

    def describe(self) -> str:
        return "effective sshd configuration"


@dataclass(frozen=True)
class AuditRules(Fact[list[str] | None]):
    """Audit rules loaded in the kernel (``auditctl -l``); ``None`` if auditctl is not installed."""

    kind: ClassVar[str] = "auditctl"
    arg: str = ""

    def script(self) -> str:
        return "command -v auditctl >/dev/null 2>&1 || exit 100; auditctl -l"

    def parse(self, capture: Capture) -> list[str] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        lines = [line.strip() for line in capture.stdout_text().splitlines() if line.strip()]
        return [] if lines == ["No rules"] else lines

    def describe(self) -> str:
        return "loaded audit rules"


@dataclass(frozen=True)
class AuditStatus(Fact[dict[str, str] | None]):
    """Kernel audit status (``auditctl -s``): ``enabled`` 0 (off), 1 (on) or 2 (on and locked)."""

    kind: ClassVar[str] = "auditctl-status"
    arg: str = ""

    def script(self) -> str:
        return f"command -v auditctl >/dev/null 2>&1 || exit {ABSENT}; auditctl -s"

    def parse(self, capture: Capture) -> dict[str, str] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        status = dict(line.split(" ", 1) for line in capture.stdout_text().splitlines() if " " in line)
        if "enabled" not in status:
            raise FactError(f"{self.describe()}: auditctl -s printed no 'enabled' line")
        return status

    def describe(self) -> str:
        return "kernel audit status"


@dataclass(frozen=True)
class TimeSync:
    """Clock synchronisation status as reported by the first tool found on the host."""

    tool: str
    synchronized: bool
    detail: str


@dataclass(frozen=True)
class TimeSyncStatus(Fact[TimeSync | None]):
    """Whether the clock is synchronised (timedatectl, chronyc or ntpq); ``None`` if no tool is present."""

    kind: ClassVar[str] = "timesync"
    arg: str = ""

    def script(self) -> str:
        return (
            "if [ -d /run/systemd/system ] && command -v timedatectl >/dev/null 2>&1; then "
            "echo timedatectl; timedatectl show -p NTPSynchronized --value; "
            "elif command -v chronyc >/dev/null 2>&1; then echo chronyc; chronyc -n tracking; "
            "elif command -v ntpq >/dev/null 2>&1; then echo ntpq; ntpq -pn; "
            f"else exit {ABSENT}; fi"
        )

    def parse(self, capture: Capture) -> TimeSync | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        tool, _, rest = capture.stdout_text().partition("\n")
        rest = rest.strip()
        if tool == "timedatectl":
            return TimeSync(tool, rest == "yes", f"NTPSynchronized={rest}")
        if tool == "chronyc":
            leap = re.search(r"^Leap status\s*:\s*(.+)$", rest, re.M)
            status = leap.group(1).strip() if leap else "unknown"
            reference = re.search(r"^Reference ID\s*:\s*([0-9A-Fa-f]+)", rest, re.M)
            if reference and reference.group(1).upper() == "7F7F0101":
                # chronyd following its own clock ("local stratum N") also reports Normal.
                return TimeSync(tool, False, f"leap status {status}, but only from chronyd's local clock")
            return TimeSync(tool, status == "Normal", f"leap status {status}")
        if tool == "ntpq":
            # A selected peer is marked with '*' in the first column.
            peer = any(line.startswith("*") for line in rest.splitlines())
            return TimeSync(tool, peer, "a system peer is selected" if peer else "no system peer selected")
        raise FactError(f"time synchronisation: unexpected output {capture.stdout_text()[:80]!r}")

    def describe(self) -> str:
        return "time synchronisation status"


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


# ------------------------------------------------------------------------------------------- accounts


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
    arg: str = ""

    def script(self) -> str:
        return (
            f"[ -e /etc/shadow ] || exit {ABSENT}; [ -r /etc/shadow ] || exit {UNREADABLE}; "
            'awk -F: \'{ h=$2; if (h == "") s="empty"; else if (h ~ /^[!*]/) s="locked"; '
            'else if (substr(h,1,1) == "$") { split(h, a, "$"); s="hash:" a[2] } '
            'else if (length(h) == 13) s="des"; else s="unknown"; print $1 ":" s }\' /etc/shadow'
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


ALL_FACT_KINDS: tuple[type[Fact[Any]], ...] = (
    FileContent,
    FileStat,
    FilesMatching,
    Sysctl,
    MountTable,
    Processes,
    SshdEffectiveConfig,
    AuditRules,
    AuditStatus,
    TimeSyncStatus,
    FirewallRules,
    ShadowSummary,
)
