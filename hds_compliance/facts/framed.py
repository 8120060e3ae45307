"""Framed parts: one snippet printing several command outputs or files that their content cannot forge.

In a probe the marker is the run's secret nonce (``$M``, sent on the probe's stdin, never on a command
line): hosts built alike then print the same bytes for the same files, and the scanning side judges them
once. Run alone, the snippet draws it on the host (a UUID from the kernel, read by a shell builtin; 16 hex
digits from ``od`` where /proc is missing). It prints it first (``# frames <marker>``), then each part as a
header line ``@<marker> <name>`` followed by the part and a newline (``@<marker>! <name>``: a file the probe
cannot read). No file or command output can predict the marker, so none can fake a header; and a
redaction of a secret inside a part (which changes its length) leaves the framing intact, so the other
parts still parse and the check that reads the redacted one says so. Names hold no newline.

In sh, :data:`FRAMES_SH` prints the marker line and defines ``part LABEL VALUE`` (a command output kept in
a variable) and ``file PATH`` (the first ``$C`` bytes of a regular file, nothing when it does not exist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.model import Capture

FRAMES_SH = (
    'case ${M-} in @@HDS-?*) F=${M#@@HDS-};; *) F=;; esac; [ -n "$F" ] || '
    "{ read -r F < /proc/sys/kernel/random/uuid; } 2>/dev/null "
    "|| F=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'); "
    '[ -n "$F" ] || exit 1; '
    "printf '# frames %s\\n' \"$F\"; "
    'part() { printf \'@%s %s\\n%s\\n\' "$F" "$1" "$2"; }; '
    'file() { [ -f "$1" ] || return 0; if [ ! -r "$1" ]; then printf \'@%s! %s\\n\' "$F" "$1"; return 0; fi; '
    'printf \'@%s %s\\n\' "$F" "$1"; head -c "$C" -- "$1"; echo; }'
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
    first, _, rest = data.partition(b"\n")
    marker = first.removeprefix(b"# frames ").strip()
    if not first.startswith(b"# frames ") or not re.fullmatch(
        rb"[0-9a-f]{16}|[0-9a-f]{24}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", marker
    ):
        raise FactError(f"{what}: output does not start with its frame marker")
    # Headers start lines: split at "\n@<marker>" (the marker is drawn per output, so a str.split costs
    # nothing to prepare where a regex would be compiled anew for every capture).
    chunks = (b"\n" + rest).split(b"\n@" + marker) if rest else [b""]
    if chunks[0]:
        raise FactError(f"{what}: output before the first part")
    frames: list[Frame] = []
    for i, chunk in enumerate(chunks[1:], start=1):
        if i < len(chunks) - 1:
            chunk += b"\n"  # the newline before the next header ends this chunk
        header, newline, body = chunk.partition(b"\n")
        unreadable = header.startswith(b"!")
        if not newline or not header.startswith(b"! " if unreadable else b" "):
            raise FactError(f"{what}: malformed part header")
        name = header[2 if unreadable else 1 :].decode("utf-8", "replace")
        if unreadable:
            frames.append(Frame(name, None))
            continue
        if not body.endswith(b"\n"):
            raise FactError(f"{what}: {name} was cut")
        frames.append(Frame(name, body[:-1]))
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
