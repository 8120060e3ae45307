"""Reading many files with a constant number of programs: ONE ``stat`` and ONE ``head`` for any number.

A snippet that reads files filters them first with shell builtins (regular, readable, not seen before),
printing its own records for the others (``rec TAG PAYLOAD``), then calls ``rd FORMAT PATH...``
(:data:`READS_SH` defines both) LAST. Every record is ``<tag> <length> <payload>\\n`` (the length in
bytes, so no payload can forge the next record); ``rd`` prints::

    N <length> <path>\\n          one per file, in order
    S <length> <stat output>\\n   ONE ``stat -L -c FORMAT`` over all files: one line each, the size first
    H <length> <C> <marker>\\n    the cap on bytes read per file, and a random marker
    <output of ONE head -v -c $C -- PATH...>   to the end of the output

and nothing at all when it has no file to read.

GNU coreutils and busybox ``head`` print ``==> NAME <==`` before each file (the 2nd and later ones
after a newline of their own), NAME exactly as given, newlines and blanks included; a file it cannot
open gets no header, only a message on stderr. Each NAME given to head is the path with a random run of
no-op segments (``./`` and ``/``, drawn on the host for this output) before its last component, so no
file content can imitate the header of the next file. The parser cuts head's output at those headers
and checks each file's length against the size ``stat`` gave: a file that changed between the two
programs is an error naming it, never a shifted or misread content. A part that a redaction shortened
(it holds a redaction mark) is not held to its size: the headers still delimit it, so the other files
stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from hds_compliance.facts.base import FactError
from hds_compliance.model import REDACTION_MARK, Capture

# rec TAG PAYLOAD: one length-prefixed record.
REC_SH = 'rec() { printf \'%s %s %s\\n\' "$1" "${#2}" "$2"; }; '
# sh setting $r to the random marker: a run of the no-op segments "/" and "./", two per hex digit of the
# kernel's UUID generator (a builtin read; od when /proc is missing; in a probe, where neither works (an
# image without /proc, /dev or od), the probe's secret nonce, which no file can hold either); the function
# it is in returns 1 when there is none.
MARKER_SH = (
    "{ read -r k < /proc/sys/kernel/random/uuid; } 2>/dev/null "
    "|| k=$(od -An -N16 -tx1 /dev/urandom 2>/dev/null) || k=${M#@@HDS-}; "
    'r=; while [ -n "$k" ]; do c=${k%"${k#?}"}; k=${k#?}; case $c in '
    '[048c]) r="$r//";; [159d]) r="$r/./";; [26ae]) r="$r.//";; [37bf]) r="$r././";; esac; done; '
    "[ ${#r} -ge 64 ] || return 1; "
)
# sh: "$@" renamed as head is given them, the marker $r before each name's last component, by ONE eval
# of references to them ("${1%/*}/$r${1##*/}" ...): `set -- "$@" NAME` per name copies the whole list
# each time (quadratic: dash spends 30 ms on 250 names).
MARK_NAMES_SH = r'i=0; x=; for f do i=$((i+1)); x="$x \"\${$i%/*}/\$r\${$i##*/}\""; done; eval "set -- $x"; '
# rd FORMAT PATH...
READS_SH = (
    REC_SH
    + 'rd() { m=$1; shift; [ $# -gt 0 ] || return 0; for f do printf \'N %s %s\\n\' "${#f}" "$f"; done; '
    's=$(stat -L -c "$m" -- "$@"); printf \'S %s %s\\n\' "${#s}" "$s"; '
    + MARKER_SH
    + 'h="$C $r"; printf \'H %s %s\\n\' "${#h}" "$h"; '
    + MARK_NAMES_SH
    + 'head -v -c "$C" -- "$@"; }'
)

# rdw PATH: the whole file (up to the probe's cap ``$C``), as a snippet's last output; in a probe the read
# is pooled with rd's (hds_compliance.collect.pool).
WHOLE_SH = 'rdw() { head -c "$C" -- "$1"; }; '

# Tags rd prints; a snippet's own records use other capital letters.
_READ_TAGS = frozenset("NSH")


@dataclass(frozen=True)
class FileRead:
    """One file ``rd`` read: its path, size (``stat -L``), first bytes, and the rest of its stat line."""

    path: str
    size: int
    data: bytes
    stat: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether ``data`` is the whole file (not cut at the probe's per-file cap)."""
        return len(self.data) >= self.size


@dataclass(frozen=True)
class Listing:
    """What a reading snippet printed: its own records (tag, payload) in order, and the files read."""

    records: tuple[tuple[str, str], ...]
    files: tuple[FileRead, ...]

    def named(self, tag: str) -> list[str]:
        """Payloads of the records tagged ``tag``, in order."""
        return [payload for t, payload in self.records if t == tag]


def parse_listing(capture: Capture, what: str, tags: str) -> Listing:
    """The records (``tags``: the snippet's own) and the files ``rd`` read; raise :class:`FactError` on
    anything else, naming the file that could not be read or changed while it was read."""
    data = capture.stdout_bytes()
    records: list[tuple[str, str]] = []
    names: list[bytes] = []
    stats: list[list[str]] | None = None
    pos, read = 0, b""
    while pos < len(data):
        tag, payload, pos = record(data, pos, what, _READ_TAGS | frozenset(tags))
        if tag == "N":
            names.append(payload)
        elif tag == "S":
            stats = [line.split(" ") for line in payload.decode("ascii", "replace").split("\n")]
        elif tag == "H":
            read = payload
            break
        else:
            records.append((tag, payload.decode("utf-8", "replace")))
    if not names:  # rd prints nothing when it has no file to read
        return Listing(tuple(records), ())
    if not read:
        raise FactError(f"{what}: output ends before the files were read ({_detail(capture)})")
    limit_s, _, marker = read.decode("ascii", "replace").partition(" ")
    if stats is None or len(stats) != len(names) or not all(s[0].isdigit() for s in stats):
        raise FactError(f"{what}: stat did not describe every file it was given ({_detail(capture)})")
    if not limit_s.isdigit() or len(marker) < 64 or marker.strip("./"):
        raise FactError(f"{what}: malformed output at byte {pos}")
    limit = int(limit_s)
    headers = [_header(name, marker.encode(), first=i == 0) for i, name in enumerate(names)]
    files: list[FileRead] = []
    for i, (name, stat) in enumerate(zip(names, stats, strict=True)):
        path = name.decode("utf-8", "replace")
        if not data.startswith(headers[i], pos):
            raise FactError(f"{what}: {path} could not be read ({_detail(capture, path)})")
        start = pos + len(headers[i])
        end = data.find(headers[i + 1], start) if i + 1 < len(names) else len(data)
        if end < 0:  # the next file got no header: head could not open it
            following = names[i + 1].decode("utf-8", "replace")
            raise FactError(f"{what}: {following} could not be read ({_detail(capture, following)})")
        body, size = data[start:end], int(stat[0])
        if len(body) != min(size, limit) and REDACTION_MARK.encode() not in body:
            raise FactError(f"{what}: {path} changed while it was read")
        files.append(FileRead(path, size, body, tuple(stat[1:])))
        pos = end
    return Listing(tuple(records), tuple(files))


def record(data: bytes, pos: int, what: str, tags: frozenset[str]) -> tuple[str, bytes, int]:
    """(tag, payload, position after it) of the record at ``pos``."""
    head = data[pos : pos + 24].split(b" ", 2)
    if len(head) < 3 or len(head[0]) != 1 or head[0].decode("ascii", "replace") not in tags:
        raise FactError(f"{what}: malformed output at byte {pos}")
    if not head[1].isdigit():
        raise FactError(f"{what}: malformed output at byte {pos}")
    start = pos + len(head[0]) + len(head[1]) + 2
    end = start + int(head[1])
    if data[end : end + 1] != b"\n":
        raise FactError(f"{what}: malformed output at byte {pos}")
    return head[0].decode("ascii"), data[start:end], end + 1


def _header(name: bytes, marker: bytes, first: bool) -> bytes:
    """The header head prints before ``name`` given with the marker before its last component."""
    directory, _, base = name.rpartition(b"/")
    return (b"" if first else b"\n") + b"==> " + directory + b"/" + marker + base + b" <==\n"


def _detail(capture: Capture, path: str = "") -> str:
    """What the programs said about ``path`` (head names it with the marker inside: found by its last
    component), or at all, on stderr."""
    base = path.rpartition("/")[2]
    said = [line for line in capture.stderr.splitlines() if line.strip() and (not path or base in line)]
    return said[-1].strip() if said else "no error message"
