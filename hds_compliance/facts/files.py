"""File contents, metadata and drop-in directories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hds_compliance.facts.base import (
    ABSENT,
    GLOB_RE,
    UNREADABLE,
    Fact,
    FactError,
    Part,
    check_path,
    error_lines,
    exists_or_return,
    in_shell_sh,
    part_from_error,
    quote,
)
from hds_compliance.facts.reads import READS_SH, parse_listing, record
from hds_compliance.model import Capture

_IRREGULAR = ": not a regular file"  # what FileContent says of a path it does not read (a folder, a FIFO)


@dataclass(frozen=True)
class FileContent(Fact[bytes | None]):
    """Content of a file, ``None`` if it does not exist."""

    kind: ClassVar[str] = "file"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_path(self.arg)

    @property
    def tests(self) -> str:
        """sh: returns ABSENT or UNREADABLE (as :func:`exists_or_return` and ``[ -r ]`` say), else the status
        of ``[ -f ]``: only a regular file is read (a FIFO's bytes belong to its reader, and would hold
        the probe)."""
        p = quote(self.arg)
        return f"{exists_or_return(self.arg)}; [ -r {p} ] || return {UNREADABLE}; [ -f {p} ]"

    def script(self) -> str:
        p = quote(self.arg)
        return in_shell_sh(
            "d",
            f'{self.tests} || {{ echo {quote(self.arg + _IRREGULAR)} >&2; return 1; }}; head -c "$C" -- {p}',
        )

    batchable: ClassVar[bool] = True

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # Every file with ONE rd (in a probe: read by the pool, with every other section's files): each
        # path first goes through its own snippet's tests, and one that would not be read whole (absent,
        # unreadable, not a regular file) is a record "X <code> <path>" instead.
        checks = "".join(
            f"_hk() {{ {f.tests} || return 1; }}; "
            f'if _hk; then set -- "$@" {quote(f.arg)}; else rec X "$? "{quote(f.arg)}; fi; '
            for f in facts
            if isinstance(f, FileContent)
        )
        return f"{READS_SH}; " + in_shell_sh("d", f'set --; {checks}rd %s "$@"')

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        """Each file's bytes from rd's output (:func:`~hds_compliance.facts.reads.parse_listing`, which
        holds every file to the size stat gave: one that changed while it was read makes every file of
        the batch an error, never a misread value); a file not read gets its own snippet's exit code."""
        codes: dict[str, int] = {}  # the X records come first, before rd's: kept whatever follows them
        read: dict[str, bytes] = {}
        broken, pos = "", 0
        try:
            while pos < len(stdout):
                tag, payload, end = record(stdout, pos, "file batch", frozenset("XN"))
                if tag != "X":
                    break
                number, _, path = payload.decode("utf-8", "replace").partition(" ")
                codes[path] = int(number) if number.isdigit() else 1
                pos = end
            listing = parse_listing(Capture.from_bytes("", "", stdout, stderr=stderr), "file batch", "X")
            read = {f.path: f.data for f in listing.files}
        except FactError as exc:
            broken = str(exc)
        parts = []
        for fact in facts:
            if fact.arg in codes:
                code = codes[fact.arg]
                parts.append(Part(code, b"", "" if code in (ABSENT, UNREADABLE) else fact.arg + _IRREGULAR))
            elif fact.arg in read:
                parts.append(Part(0, read[fact.arg][:limit], ""))
            else:
                parts.append(Part(1, b"", broken or stderr or f"{fact.arg} was not read"))
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
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_path(self.arg)

    def script(self) -> str:
        p = quote(self.arg)
        return in_shell_sh("d", f"{exists_or_return(self.arg)}; stat -c '%a %u %g %F' -- {p}")

    batchable: ClassVar[bool] = True

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # One stat for every path: "%n<TAB>..." names each line (paths are validated: no tab, no newline).
        return in_shell_sh("", "stat -c '%n\t%a %u %g %F' -- " + " ".join(quote(f.arg) for f in facts))

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        text = stdout.decode("utf-8", "replace")
        lines = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
        return [
            Part(0, lines[f.arg].encode() + b"\n", "")
            if f.arg in lines
            else part_from_error(error_lines(stderr, f.arg))
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

    The glob is expanded on the host, so drop-in directories cost no second round trip, and the files are
    read by one ``stat`` and one ``head`` whatever their number (:mod:`hds_compliance.facts.reads`).
    """

    kind: ClassVar[str] = "files"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        directory, _, pattern = self.arg.rpartition("/")
        check_path(directory)
        if not GLOB_RE.match(pattern):
            raise ValueError(f"unsupported glob: {pattern!r}")

    def script(self) -> str:
        directory, _, pattern = self.arg.rpartition("/")
        return f"{READS_SH}; " + in_shell_sh(
            "rc f",
            f"rc=0; set --; for f in {quote(directory)}/{pattern}; do "
            f'[ -f "$f" ] || continue; [ -r "$f" ] || {{ rc={UNREADABLE}; continue; }}; '
            'set -- "$@" "$f"; done; rd %s "$@" || rc=1; return "$rc"',
        )

    def parse(self, capture: Capture) -> dict[str, bytes]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        return dict(sorted((f.path, f.data) for f in parse_listing(capture, self.describe(), "").files))
