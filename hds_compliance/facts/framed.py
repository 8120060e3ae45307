"""Length-framed parts: one snippet printing several command outputs or files that content cannot forge.

A snippet prints each part as a header line ``@ <bytes> <name>`` followed by exactly that many bytes and a
newline. The parser reads the declared length, so a file or a command output holding a line that looks
like a header is never taken for one. Names hold no newline (paths are validated, labels are constants).

In sh (``LC_ALL=C``, so ``${#v}`` counts bytes), :data:`PART_SH` defines ``part LABEL VALUE`` (a command
output kept in a variable) and :data:`FILE_SH` defines ``file PATH`` (the first ``$C`` bytes of a regular
file; a file the probe cannot read is framed with length -1, which parses to ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.model import Capture

# part NAME VALUE: a command output already captured in a variable (trailing newlines were cut by $( )).
PART_SH = 'part() { printf \'@ %s %s\\n\' "${#2}" "$1"; printf \'%s\\n\' "$2"; }'
# file PATH: up to $C bytes of a readable regular file; an unreadable one is named with length -1.
FILE_SH = (
    'file() { [ -f "$1" ] || return 0; if [ ! -r "$1" ]; then printf \'@ -1 %s\\n\' "$1"; return 0; fi; '
    's=$(wc -c < "$1"); [ "$s" -le "$C" ] || s=$C; printf \'@ %s %s\\n\' "$s" "$1"; '
    'head -c "$s" -- "$1"; echo; }'
)


@dataclass(frozen=True)
class Frame:
    """One framed part: its name and bytes (``None`` when the probe could not read the file)."""

    name: str
    data: bytes | None

    def text(self) -> str:
        """The part as text (invalid UTF-8 replaced); empty for an unreadable part."""
        return (self.data or b"").decode("utf-8", "replace")


def parse_frames(data: bytes, what: str) -> list[Frame]:
    """Every framed part of ``data`` in order; raise :class:`FactError` on anything else."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        header = data[pos:end] if end >= 0 else data[pos:]
        fields = header.split(b" ", 2)
        if end < 0 or len(fields) != 3 or fields[0] != b"@" or not fields[1].lstrip(b"-").isdigit():
            raise FactError(f"{what}: malformed output at byte {pos}")
        size, name = int(fields[1]), fields[2].decode("utf-8", "replace")
        if size < 0:
            frames.append(Frame(name, None))
            pos = end + 1
            continue
        body = data[end + 1 : end + 1 + size]
        if len(body) != size or data[end + 1 + size : end + 2 + size] != b"\n":
            raise FactError(f"{what}: {name} changed while it was read or was cut")
        frames.append(Frame(name, body))
        pos = end + 2 + size
    return frames


def named(frames: list[Frame], name: str) -> Frame | None:
    """The first part called ``name``."""
    return next((f for f in frames if f.name == name), None)


def framed_output(fact: Fact[Any], capture: Capture) -> list[Frame] | None:
    """The parts a framed snippet printed; ``None`` when it exited ABSENT, an error for any other failure."""
    if capture.exit_code == ABSENT:
        return None
    if capture.exit_code != 0:
        raise fact._fail(capture)
    return parse_frames(capture.stdout_bytes(), fact.describe())


def parts(fact: Fact[Any], frames: list[Frame], *names: str) -> list[Frame]:
    """The parts called ``names``, in that order; an error names the fact if one is missing."""
    found = [named(frames, name) for name in names]
    if any(frame is None for frame in found):
        missing = ", ".join(n for n, f in zip(names, found, strict=True) if f is None)
        raise FactError(f"{fact.describe()}: incomplete output (no {missing})")
    return [f for f in found if f is not None]
