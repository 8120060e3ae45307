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
from hds_compliance.facts.reads import READS_SH, parse_listing
from hds_compliance.model import Capture

_HEAD_MARK = "# head"


def _void_last_read(parts: list[Part], why: str) -> None:
    """Turn the last file whose content was taken into an error."""
    last = max((i for i, part in enumerate(parts) if part.exit_code == 0), default=None)
    if last is not None:
        parts[last] = Part(1, b"", why)


@dataclass(frozen=True)
class FileContent(Fact[bytes | None]):
    """Content of a file, ``None`` if it does not exist."""

    kind: ClassVar[str] = "file"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_path(self.arg)

    def script(self) -> str:
        p = quote(self.arg)
        return in_shell_sh(
            "d", f'{exists_or_return(self.arg)}; [ -r {p} ] || return {UNREADABLE}; head -c "$C" -- {p}'
        )

    batchable: ClassVar[bool] = True

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        # Two programs for any number of files: stat gives each size, then ONE head prints them all,
        # each after a "==> path <==" header. Paths are validated (no blank, no newline).
        paths = " ".join(quote(f.arg) for f in facts)
        return in_shell_sh(
            "", f"stat -L -c '%s %n' -- {paths}; echo '{_HEAD_MARK}'; head -c \"$C\" -- {paths}"
        )

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
            errors = error_lines(stderr, fact.arg)
            if broken:
                parts.append(Part(1, b"", broken))
                continue
            if fact.arg not in sizes or "cannot open" in errors:
                parts.append(part_from_error(errors))
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
