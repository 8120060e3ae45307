"""Pooled reads: in a probe, every section's files are read together at the end, by ONE ``stat`` and ONE
``head`` for the whole probe instead of one pair per reading section, and each section's output is put
back together here byte for byte as its own ``rd`` or ``rdw`` prints it (:mod:`hds_compliance.facts.reads`).

Why: on a host each program started costs a fork, an exec and the C library's start-up (1 to 2 ms of CPU
on the VM this was measured on, most of a probe's cost), and a full probe has dozens of sections that read
files. A fact's own snippet is unchanged (its capture, its fixtures and the one-command-per-fact mode run
it as it is): only the probe swaps the library ``rd`` and ``rdw`` for deferring ones
(:data:`POOLED_READS_SH`).

The deferring ``rd FORMAT PATH...`` prints the section's ``N`` records as ``rd`` does, then
``Q <length> <FORMAT>`` in place of the reading; the deferring ``rdw PATH`` (a snippet whose last output
is one file's bytes, ``head -c $C``: /etc/fstab, /proc/cmdline...) prints ``\n<nonce> W PATH\n``, whose
place the file's bytes take. Both hand their paths, shell-quoted, to the probe's main shell at the end of
the section's stderr, after ``\n<nonce> P``; the main shell takes that request off (the capture's stderr
is what the section itself said) and, after the last section, runs the pool (:data:`POOL_SH`) as section
``n``, which prints::

    H <length> <C> <marker>\n
    S <length> <stat -L -c '%s %a %u %g %n' over the marked names: one line each, ending in \n>\n
    <head -v -c C over the marked names>

Every file is named with the random marker before its last component, as ``rd`` names it; so each stat
line and each head header is found by the file's own name, which no file content and no other name can
imitate. The rebuilt sections carry the run's marker (:func:`run_marker`) instead of the host's: the
host's one is drawn on the host and shows on its command lines, the run's is not, and it is the same on
every host, so the same files give the same bytes.

A file with no stat line or no header (it vanished, or head could not open it) costs only the sections
that asked for it: their exit code becomes 1, as ``rd ... || rc=1`` makes it, and the parser names the
file. A pool that did not come back leaves every deferring section without its files: an
error, never a verdict from half a listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from hds_compliance.facts.base import FactError
from hds_compliance.facts.reads import MARK_NAMES_SH, MARKER_SH, READS_SH, REC_SH, WHOLE_SH, record
from hds_compliance.model import Recent

# The directives a section's stat format may use, and their place in the pool's stat line.
POOL_FIELDS = {"%s": 0, "%a": 1, "%u": 2, "%g": 3}
_GIVES = " ".join(POOL_FIELDS).encode()
_POOL_FORMAT = f"{_GIVES.decode()} %n"
_TAGS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# The deferring rd: N records, the Q record, and the request (_rq: '...' quoting, ' as '\''); the deferring
# rdw: a record "\n<nonce> W <path>\n" where the file's bytes go. A section run in a subshell hands its
# request to the main shell on stderr; one run in the main shell ($I set: hds_compliance.facts.base,
# Fact.in_shell) adds it to $P itself. Their variables start with "_": names no snippet uses, so calling
# them leaves a snippet's own variables as they were.
POOLED_READS_SH = REC_SH + (
    '_rq() { _q=; _a="\'"; for _f do _o=; _s=$_f; '
    'while :; do case $_s in *"$_a"*) _o="$_o${_s%%"$_a"*}$_a\\\\$_a$_a"; _s=${_s#*"$_a"};; '
    "*) break;; esac; done; "
    '_q="$_q $_a$_o$_s$_a"; done; '
    'if [ -n "$I" ]; then P="$P$_q"; else printf \'\\n%s P%s\' "$M" "$_q" >&2; fi; }; '
    'rd() { _m=$1; shift; [ $# -gt 0 ] || return 0; for _f do printf \'N %s %s\\n\' "${#_f}" "$_f"; done; '
    'printf \'Q %s %s\\n\' "${#_m}" "$_m"; _rq "$@"; }; '
    'rdw() { printf \'\\n%s W %s\\n\' "$M" "$1"; _rq "$1"; }'
)
# The main shell's side: take a section's request off its stderr ($e), adding the paths to $P.
TAKE_REQUEST_SH = (
    'case $e in *"$nl$M P"*) P="$P${e##*"$nl$M P"}"; e=${e%"$nl$M P"*}; '
    'while case $e in *"$nl") true;; *) false;; esac; do e=${e%"$nl"}; done;; esac; '
)
# The pool: every requested file, by one stat and one head.
POOL_SH = (
    'pool() { eval "set -- $P"; [ $# -gt 0 ] || return 0; '
    + MARKER_SH
    + 'h="$C $r"; printf \'H %s %s\\n\' "${#h}" "$h"; '
    + MARK_NAMES_SH
    + f"s=$(stat -L -c '{_POOL_FORMAT}' -- \"$@\"; echo .); s=${{s%.}}; "
    'printf \'S %s %s\\n\' "${#s}" "$s"; '
    'head -v -c "$C" -- "$@"; }'
)


def defers(script: str) -> bool:
    """Whether a section's snippet reads files with the library ``rd`` or ``rdw`` (the probe then pools its
    reads)."""
    return READS_SH in script or WHOLE_SH in script


def deferring(script: str) -> str:
    """The snippet as the probe runs it: the library's functions come from the probe's prelude (READS_SH
    ends without a separator, so a no-op takes its place; WHOLE_SH ends with one)."""
    return script.replace(READS_SH, ":").replace(WHOLE_SH, "")


Raw = dict[str, bytes | int]  # a framed section's parts: "out", "err", "rc"


@dataclass(frozen=True)
class _Request:
    """A deferring section's output split where its reads go: what it printed before, and what it asks."""

    index: int
    head: bytes  # its output before the reads (for rd, up to and including the N records)
    paths: tuple[bytes, ...]
    fields: tuple[int, ...] | None  # rd: places in the pool's stat line; None: a format the pool cannot give
    whole: bool = False  # rdw: the file's bytes alone, in place of the W record


@dataclass
class _Found:
    """What the pool printed for one requested file."""

    stat: tuple[bytes, ...] | None = None
    header: bytes | None = None
    body: bytes = b""


def unpool(sections: dict[int, Raw], deferred: list[int], pool: Raw | None, nonce: str) -> None:
    """Rebuild, in place, the output of each section of ``deferred`` that ends in a request (rd's Q record,
    rdw's W record) from the pool's output, as its own ``rd`` or ``rdw`` would have printed it."""
    requests = [r for i in deferred if (r := _request(i, sections.get(i), nonce.encode())) is not None]
    if not requests:
        return
    marker, limit, found, said = _read_pool(pool, [path for r in requests for path in r.paths])
    if marker is not None:  # each section's read is written with the run's marker, not the host's
        mark = run_marker(nonce)
        for f in found:
            if f.header is not None:
                f.header = f.header.replace(b"/" + marker, b"/" + mark, 1)
        marker = mark
    at = 0
    for request in requests:
        raw = sections[request.index]
        mine = found[at : at + len(request.paths)]
        at += len(request.paths)
        out, notes = request.head, []
        if marker is None:
            raw["rc"] = 1
            notes.append(b"the probe's pooled read did not come back whole")
        else:
            if request.whole:
                out += mine[0].body
                missing = [p for p, f in zip(request.paths, mine, strict=True) if f.header is None]
            else:
                out += _as_rd(mine, request.fields, limit + b" " + marker)
                missing = [p for p, f in zip(request.paths, mine, strict=True) if None in (f.header, f.stat)]
            if request.fields is None and not request.whole:
                notes.append(b"pooled read: a stat format the pool does not give (it gives %s)" % _GIVES)
            if missing:
                notes.extend(_said_about(said, missing))
            if any(f.header is None for f in mine):  # rd's and rdw's exit: head's, 1 if it could not read
                raw["rc"] = 1
        raw["out"] = out
        if notes:
            err = raw["err"]
            assert isinstance(err, bytes)
            raw["err"] = b"\n".join([err, *notes] if err else notes)


def run_marker(nonce: str) -> bytes:
    """The marker a rebuilt section's read carries: made from the run's secret nonce as ``rd`` makes one
    from the kernel's UUID (two no-op segments per hex digit). The host's own marker framed the pool;
    this one is the same on every host of the run, so hosts built alike get the same bytes for the same
    files (and the scanning side judges them once), and no file read can hold it (the nonce was never on
    a command line)."""
    segments = {"048c": b"//", "159d": b"/./", "26ae": b".//", "37bf": b"././"}
    digits = nonce.removeprefix("@@HDS-") * 2
    return b"".join(next(v for k, v in segments.items() if c in k) for c in digits if c in "0123456789abcdef")


def _as_rd(found: list[_Found], fields: tuple[int, ...] | None, h: bytes) -> bytes:
    """The S and H records and head's output, as rd prints them for these files."""
    stats = b"\n".join(
        b" ".join(f.stat[k] for k in fields) for f in found if f.stat is not None and fields is not None
    )
    read = [f for f in found if f.header is not None]
    return b"S %d %s\nH %d %s\n" % (len(stats), stats, len(h), h) + b"".join(
        (b"\n" if i else b"") + (f.header or b"") + f.body for i, f in enumerate(read)
    )


def _request(index: int, raw: Raw | None, nonce: bytes) -> _Request | None:
    """The request a section's output ends in; None when it has none (the snippet exited before its read).
    Hosts built alike print the same requests: each is read once (a request holds no host's marker)."""
    if raw is None or "err" not in raw:
        return None
    out = raw["out"]
    assert isinstance(out, bytes)
    key = (index, out, nonce)
    if key in _REQUESTS:
        return _REQUESTS[key]
    request = _REQUESTS[key] = _read_request(index, out, nonce)
    return request


_REQUESTS: Recent[tuple[int, bytes, bytes], _Request | None] = Recent(256)


def _read_request(index: int, out: bytes, nonce: bytes) -> _Request | None:
    whole = out.rfind(b"\n" + nonce + b" W ")
    if whole >= 0 and out.endswith(b"\n"):  # rdw's record: no file content can hold the nonce
        path = out[whole + len(nonce) + 4 : -1]
        return _Request(index, out[:whole], (path,), None, whole=True) if b"\n" not in path else None
    pos, paths = 0, list[bytes]()
    try:
        while pos < len(out):
            tag, payload, end = record(out, pos, "section", _TAGS)
            if tag == "Q":  # rd's last record: the end of the section's output
                if end != len(out):
                    return None
                fields = tuple(POOL_FIELDS.get(d, -1) for d in payload.decode("ascii", "replace").split(" "))
                return _Request(index, out[:pos], tuple(paths), None if -1 in fields else fields)
            if tag == "N":
                paths.append(payload)
            pos = end
    except FactError:  # not records: a snippet that never reached rd
        return None
    return None


def _read_pool(
    pool: Raw | None, wanted: list[bytes]
) -> tuple[bytes | None, bytes, list[_Found], list[bytes]]:
    """(marker, per-file cap, what the pool printed for each wanted path in order, its stderr lines);
    marker None when the pool did not come back whole."""
    found = [_Found() for _ in wanted]
    if pool is None or "err" not in pool:
        return None, b"", found, []
    out, err = pool["out"], pool["err"]
    assert isinstance(out, bytes) and isinstance(err, bytes)
    said = err.splitlines()
    try:
        _, h, pos = record(out, 0, "pool", frozenset("H"))
        _, stats, pos = record(out, pos, "pool", frozenset("S"))
    except FactError:
        return None, b"", found, said
    limit, _, marker = h.partition(b" ")
    if not limit.isdigit() or len(marker) < 64 or marker.strip(b"./"):
        return None, b"", found, said
    names = [_marked(path, marker) for path in wanted]
    _match_stats(stats, names, found)
    _match_headers(out[pos:], marker, wanted, found)
    return marker, limit, found, said


def _marked(path: bytes, marker: bytes) -> bytes:
    directory, _, base = path.rpartition(b"/")
    return directory + b"/" + marker + base


def _match_stats(stats: bytes, names: list[bytes], found: list[_Found]) -> None:
    """Each file's stat fields, from its own line (a file stat could not describe has none)."""
    pos = 0
    for name, f in zip(names, found, strict=True):
        fields = stats[pos : pos + 128].split(b" ", len(POOL_FIELDS))[: len(POOL_FIELDS)]
        start = pos + sum(map(len, fields)) + len(fields)  # each field and the space after it
        if len(fields) == len(POOL_FIELDS) and stats.startswith(name + b"\n", start):
            f.stat = tuple(fields)
            pos = start + len(name) + 1


def _match_headers(data: bytes, marker: bytes, paths: list[bytes], found: list[_Found]) -> None:
    """Each file's header and body in head's output, the headers found by the marker each one holds."""
    places: list[tuple[int, int, int]] = []  # (file, header start, body start)
    j, occ = 0, data.find(b"/" + marker)
    while occ >= 0 and j < len(paths):
        while j < len(paths):
            directory, _, base = paths[j].rpartition(b"/")
            start = occ - len(b"==> ") - len(directory)
            header = b"==> " + directory + b"/" + marker + base + b" <==\n"
            # head prints a newline of its own before every header but the first
            after = start == 0 if not places else start > 0 and data[start - 1] == ord("\n")
            j += 1  # a file whose header is not the one here could not be opened: it has none
            if after and data.startswith(header, start):
                places.append((j - 1, start, start + len(header)))
                break
        occ = data.find(b"/" + marker, occ + 1)  # each header holds the marker once, no body holds it
    for k, (file, start, body) in enumerate(places):
        end = places[k + 1][1] - 1 if k + 1 < len(places) else len(data)
        found[file].header = data[start:body]
        found[file].body = data[body:end]


def _said_about(said: list[bytes], paths: list[bytes]) -> list[bytes]:
    """The pool's stderr lines about ``paths`` (by their last component, which stat and head both name)."""
    bases = [p.rpartition(b"/")[2] for p in paths]
    return [line for line in said if any(b and b in line for b in bases)] or [
        b"pooled read: no stat line or header for " + b", ".join(paths)
    ]
