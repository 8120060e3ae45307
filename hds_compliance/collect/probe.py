"""The probe: all facts a host needs, rendered into ONE POSIX sh script, and its output parsed back.

What the host prints::

    [anything a login shell prints first: banners, rc files, a sudo refusal]
    M S                      plain line: the framed stream starts
    <base64 of the stream>   one base64 (one line where base64 -w 0 works): any byte survives transport

and the decoded stream, where ``M`` is a per-run random nonce::

    \nM B <i>\n <stdout of section i> \nM E <i> <exit code>\n <stderr of section i> \nM X <i>\n
    ...
    \nM DONE <n>\n          trailer: all n sections were written
    <times>                 the shell's ``times``: the CPU the sections took on the host

A section whose fact keeps the in-shell contract (:attr:`~hds_compliance.facts.base.Fact.in_shell`)
runs without a subshell of its own: it ends with ``\nM Y <i>\n`` instead of the stderr part and X. The
probe puts such sections last; from the first of them on, the sections and the pool run in ONE subshell
whose fd 5 the main shell gathers, and after them the stream carries each in-shell section's stderr,
then Z naming the last in-shell section::

    \nM R <i>\n <stderr of in-shell section i>  ...   \nM Z <last>\n

Z is printed by that subshell after all its sections have returned: a section that ended that shell
leaves no Z, and none of its in-shell sections is used. A section's bytes can only end at a marker carrying
the nonce, which no file content can predict; the trailer proves the output was not cut. Where the
host's gzip works, the stream is compressed before base64 (about six times smaller: less for the host
to encrypt and for the scanning machine to receive, decode and pass between processes; it then starts
with gzip's magic bytes, which a plain stream, starting with a newline, cannot), and gzip's CRC vouches
for it as well. Each section that is not in-shell costs one subshell on the host (its stdout
goes straight to the stream, its stderr and exit code come back through ``$( )``);
facts that read data of unbounded size cap it on the host (``$C``), and every section is capped again
here. Sections that read files with the library ``rd`` or ``rdw`` hand their paths to one pool section
run last (``M B n``): ONE stat and ONE head for the whole probe, each section's output rebuilt here as
its own ``rd`` or ``rdw`` prints it (:mod:`hds_compliance.collect.pool`). A section that is missing,
unterminated or over the cap becomes a capture with a ``problem``, which evaluates to ``error``, never
``pass``.

This module is pure: no host access, no pyinfra. The collector worker runs the script; redaction of what
comes back is applied by the scan (:mod:`hds_compliance.evidence.redact`), not here.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import zlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from hds_compliance.collect.pool import (
    POOL_SH,
    POOLED_READS_SH,
    TAKE_REQUEST_SH,
    Raw,
    deferring,
    defers,
    unpool,
)
from hds_compliance.facts import Fact, Part
from hds_compliance.facts.base import ABSENT
from hds_compliance.model import Capture, Recent

DEFAULT_SECTION_CAP = 1 << 20  # bytes of stdout kept per section
STDERR_TAIL = 2048
_BASE64_PREFIX = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def new_nonce() -> str:
    """A fresh random marker; file contents cannot forge what they cannot predict."""
    return "@@HDS-" + secrets.token_hex(12)


@dataclass(frozen=True)
class Section:
    """One framed part of the probe: a fact's snippet, or one snippet for a batch of facts of a kind."""

    script: str
    facts: tuple[Fact[object], ...]

    @property
    def batched(self) -> bool:
        """Whether several facts share this section's snippet."""
        return len(self.facts) > 1

    @property
    def joint(self) -> bool:
        """Whether facts of several kinds share it (a fact and its companions)."""
        return len({type(f) for f in self.facts}) > 1

    @property
    def in_shell(self) -> bool:
        """Whether the probe runs it in its main shell, without a subshell of its own: its facts are of one
        kind (alone or batched) that keeps the contract of
        :attr:`Fact.in_shell <hds_compliance.facts.base.Fact.in_shell>`."""
        return not self.joint and type(self.facts[0]).in_shell


@dataclass(frozen=True)
class Probe:
    """A rendered probe for one host: its sections in order, and the script they make."""

    nonce: str
    sections: tuple[Section, ...]
    section_cap: int

    @cached_property
    def facts(self) -> tuple[Fact[object], ...]:
        """Every de-duplicated fact of the probe."""
        return tuple(f for section in self.sections for f in section.facts)

    @cached_property
    def deferred(self) -> tuple[int, ...]:
        """The sections whose file reads the probe pools (they read with the library ``rd`` or ``rdw``)."""
        return tuple(i for i, section in enumerate(self.sections) if defers(section.script))

    @cached_property
    def in_shell(self) -> tuple[int, ...]:
        """The sections the probe runs in its main shell (each saves the fork of a subshell)."""
        return tuple(i for i, section in enumerate(self.sections) if section.in_shell)

    @cached_property
    def script(self) -> str:
        """The POSIX sh script the host runs (built when asked: parsing an output needs only the sections)."""
        lines = [
            "LC_ALL=C; LANG=C; export LC_ALL LANG",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH",
            f"M='{self.nonce}'; C={self.section_cap + 1}",
            "command -v base64 >/dev/null 2>&1 || { printf '%s FATAL no base64 command\\n' \"$M\"; exit 0; }",
            # The clock each section start is read from, without starting a program: bash and busybox
            # ash ignore an assignment to EPOCHREALTIME (microseconds); where it sticks (dash), the
            # kernel's /proc/uptime (centiseconds) is read instead.
            'EPOCHREALTIME=; s() { t=$EPOCHREALTIME; [ -n "$t" ] || '
            "{ read t _ </proc/uptime; } 2>/dev/null || t=; case $t in *[!0-9.,]*) t=;; esac; }",
            # stdout -> the stream (fd 4); stderr -> $e; exit code of the $( ) -> $r. One fork per section.
            'run() { s; printf \'\\n%s B %s%s\\n\' "$M" "$1" "${t:+ T$t}"; '
            'e=$("$2" </dev/null 2>&1 >&4); r=$?; '
            + (TAKE_REQUEST_SH if self.deferred else "")
            + 'printf \'\\n%s E %s %s\\n%s\\n%s X %s\\n\' "$M" "$1" "$r" "$e" "$M" "$1"; }',
        ]
        if self.in_shell:
            # A section that keeps the in-shell contract runs as a plain call: its stdout goes to the
            # stream, its stderr to fd 5 after an R header, and it ends with Y instead of X. Where the
            # shell has no ``local`` (the contract needs it), it runs in a subshell like the others.
            lines += [
                "I=; L=; _hl() { local _x; }; _hl 2>/dev/null && L=1",
                'ri() { [ -n "$L" ] || { run "$1" "$2"; return; }; s; '
                'printf \'\\n%s B %s%s\\n\' "$M" "$1" "${t:+ T$t}"; printf \'\\n%s R %s\\n\' "$M" "$1" >&5; '
                'I=1; "$2" </dev/null 2>&5 >&4; r=$?; I=; '
                'printf \'\\n%s E %s %s\\n\\n%s Y %s\\n\' "$M" "$1" "$r" "$M" "$1"; }',
            ]
        if self.deferred:  # the sections' file reads, pooled (hds_compliance.collect.pool)
            lines += ["nl='\n'; P=", POOLED_READS_SH, POOL_SH]
        for i, section in enumerate(self.sections):
            script = deferring(section.script) if i in self.deferred else section.script
            lines.append(f"f{i}() {{\n{script}\n}}")
        lines.append("printf '%s S\\n' \"$M\"")
        count = len(self.sections)
        first = self.in_shell[0] if self.in_shell else count
        runs = [f"run {i} f{i}" for i in range(first)]
        tail = [f"{'ri' if i in self.in_shell else 'run'} {i} f{i}" for i in range(first, count)]
        if self.deferred:
            tail.append(f"run {count} pool")
        if self.in_shell:
            # From the first in-shell section on, the sections (and the pool) run in ONE subshell whose
            # fd 5 the main shell gathers: the in-shell sections' stderr, then Z naming the last of them,
            # printed when all have returned (a section that ended the subshell leaves no Z: none of its
            # in-shell sections is used). The probe puts them last: a probe cut short loses their stderr.
            tail.append(f"printf '\\n%s Z %s\\n' \"$M\" {self.in_shell[-1]} >&5")
            tail = ["x=$( { " + "; ".join(tail) + "; } 5>&1 >&4 )", "printf '%s\\n' \"$x\""]
        runs += tail
        body = "; ".join(runs)
        lines.append(
            f"{{ {body + '; ' if body else ''}"
            f's; printf \'\\n%s DONE %s%s\\n\' "$M" {count} "${{t:+ T$t}}"; times; }} 4>&1 | '
            # gzip where it takes -1, one unwrapped base64 line where base64 takes -w 0 (GNU: the transport
            # then reads one line, not thousands). A tool refuses an option before it reads its input, so
            # the fallback gets the whole stream; trying each on an empty input first cost two programs.
            "{ gzip -1 -c 2>/dev/null || cat; } | { base64 -w 0 2>/dev/null || base64; }"
        )
        lines.append("exit 0")
        return "\n".join(lines) + "\n"


@lru_cache(maxsize=32)
def _sections(facts: tuple[Fact[object], ...]) -> tuple[Section, ...]:
    """The sections of a fact list; kept for the next host asking the same facts (each fact's snippet is a
    pure function of the fact)."""
    unique: dict[str, Fact[object]] = {}
    for fact in facts:
        unique.setdefault(fact.key, fact)
    by_kind: dict[type[Fact[object]], list[Fact[object]]] = {}
    for fact in unique.values():
        by_kind.setdefault(type(fact), []).append(fact)
    # a single fact of a kind with companions, and the single facts of those kinds the probe also has
    alone = {kind.kind: members[0] for kind, members in by_kind.items() if len(members) == 1}
    joins = {
        kind.kind: [alone[k] for k in kind.companions if k in alone]
        for kind in by_kind
        if kind.kind in alone and kind.companions
    }
    joined = {c.kind for companions in joins.values() for c in companions}
    sections: list[Section] = []
    for kind, members in by_kind.items():
        if kind.kind in joined:
            continue
        if joins.get(kind.kind):  # one section for the fact and its companions
            facts_of = (members[0], *joins[kind.kind])
            sections.append(Section(kind.joint_script(facts_of), facts_of))
        elif kind.batchable and len(members) > 1:
            sections.append(Section(kind.batch_script(members), tuple(members)))
        else:
            sections.extend(Section(f.script(), (f,)) for f in members)
    # In-shell sections last, together: they run in one subshell whose stderr comes back when its last
    # section has returned (Probe.script).
    return tuple(sorted(sections, key=lambda section: section.in_shell))


def render(facts: list[Fact[object]], nonce: str, section_cap: int = DEFAULT_SECTION_CAP) -> Probe:
    """Render de-duplicated facts into one sh script; facts of a batchable kind share one section."""
    return Probe(nonce=nonce, sections=_sections(tuple(facts)), section_cap=section_cap)


@dataclass
class ParsedProbe:
    """Captures recovered from a probe's output, whether the output was complete, the CPU its sections
    took on the host (seconds, from the shell's ``times``; ``None`` if it did not say), and each fact's
    share of the host time (``fact_s``, read with a clock of resolution ``clock_s``)."""

    captures: list[Capture]
    complete: bool
    problem: str | None
    noise_lines: int = 0
    cpu_s: float | None = None
    fact_s: dict[str, float] = field(default_factory=dict)
    clock_s: float | None = None


def _stream(lines: list[str]) -> tuple[bytes, bool]:
    """Decode the stream (base64, then gzip when it starts with gzip's magic bytes); ``False`` if it stops
    being valid (cut or mangled), with what decoded before that point, so the sections that came back
    whole stay usable."""
    data, clean = _base64(lines)
    if not data.startswith(b"\x1f\x8b"):  # a plain stream starts with a newline
        return data, clean
    inflate = zlib.decompressobj(wbits=31)  # gzip framing: its CRC and length are checked at the end
    try:
        out = inflate.decompress(data) + inflate.flush()
    except zlib.error:  # corrupt (or a CRC that does not match): no byte of it can be vouched for
        return b"", False
    # A stream cut short inflates to an exact prefix of what the host printed: its whole sections count.
    return out, clean and inflate.eof and not inflate.unused_data


def _base64(lines: list[str]) -> tuple[bytes, bool]:
    """Decode the base64 text (one line, or lines of any width), as far as it is valid."""
    text = "".join(line.strip() for line in lines)
    try:  # the whole stream at once when it is intact: checked in C (b64decode validates with a pattern)
        return binascii.a2b_base64(text, strict_mode=True), True
    except (binascii.Error, ValueError):
        pass
    try:  # whatever strict decoding refuses is judged as before
        return base64.b64decode(text, validate=True), True
    except (binascii.Error, ValueError):
        pass
    valid = _BASE64_PREFIX.match(text)  # up to the first character base64 never writes
    prefix = valid.group(0) if valid else ""
    try:
        return base64.b64decode(prefix[: len(prefix) - len(prefix) % 4], validate=True), False
    except (binascii.Error, ValueError):
        return b"", False


@dataclass
class _Frame:
    """What the framing of a probe's output says: each section's raw parts, and what went wrong."""

    sections: dict[int, Raw]
    complete: bool
    problem: str | None
    noise_lines: int
    cpu_s: float | None = None
    took: dict[int, float] = field(default_factory=dict)  # section -> seconds on the host
    clock: float | None = None  # the resolution of those seconds


def _frame(probe: Probe, output: str | bytes, transport_error: str | None, stderr: str) -> _Frame:
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    lines = output.splitlines()
    start = f"{probe.nonce} S"
    fatal = next((ln.split(" FATAL ", 1)[1] for ln in lines if ln.startswith(f"{probe.nonce} FATAL ")), None)
    if start in lines:
        noise = lines[: lines.index(start)]
        stream, clean = _stream(lines[lines.index(start) + 1 :])
    else:
        noise, stream, clean = lines, b"", False

    marker = re.compile(
        rb"\n"
        + re.escape(probe.nonce.encode())
        + rb" (B|E|X|Y|R|Z|DONE) ([0-9]+)(?: (-?[0-9]+))?(?: T([0-9]+[.,][0-9]+))?\n"
    )
    sections: dict[int, Raw] = {}
    anomalies: list[str] = []
    done: int | None = None
    cpu_s: float | None = None
    stamps: dict[int, bytes] = {}  # the clock when section i started; at the number of sections run, the end
    ran = len(probe.sections) + (1 if probe.deferred else 0)  # the sections, and the pool after them
    # (section, "out" | "err" | "fd5", payload start): "fd5" is an in-shell section's stderr, which comes
    # after the sections, each part after its R header, until Z
    open_at: tuple[int, str, int] | None = None
    waiting: set[int] = set()  # in-shell sections (ended by Y) whose stderr is still to come
    told: dict[int, bytes] = {}  # their stderr, kept once Z vouches for it
    ended: list[int] = []  # in-shell sections that never returned
    for match in marker.finditer(stream):
        tag, index = match.group(1).decode(), int(match.group(2))
        if open_at is not None and open_at[1] == "fd5":
            # a part of fd 5 ends at the next marker; like $( ) in ``run``, without its trailing newlines
            told[open_at[0]] = stream[open_at[2] : match.start()].rstrip(b"\n")
            open_at = None
        if match.group(4) is not None and tag in ("B", "DONE"):
            stamps[ran if tag == "DONE" else index] = match.group(4)
        if tag == "DONE":
            done = index
            open_at = None
            cpu_s = _cpu_seconds(stream[match.end() :])
            continue
        if tag == "Z":  # every in-shell section returned: their stderr stands
            if probe.in_shell[-1:] != (index,) or open_at is not None or waiting:
                anomalies.append(f"marker Z {index} out of order")
            for j, err in told.items():
                sections[j]["err"] = err
            told.clear()
            continue
        if index > len(probe.sections) or (index == len(probe.sections) and not probe.deferred):
            anomalies.append(f"marker for unknown section {index}")
            continue
        if tag == "B":
            if index in sections:
                anomalies.append(f"section {index} started twice")
            sections[index] = {}
            open_at = (index, "out", match.end())
        elif tag == "E" and open_at is not None and open_at[:2] == (index, "out") and match.group(3):
            sections[index]["out"] = stream[open_at[2] : match.start()]
            sections[index]["rc"] = int(match.group(3))
            open_at = (index, "err", match.end())
        elif tag == "X" and open_at is not None and open_at[:2] == (index, "err"):
            sections[index]["err"] = stream[open_at[2] : match.start()]
            open_at = None
        elif tag == "Y" and open_at == (index, "err", match.start()) and index in probe.in_shell:
            waiting.add(index)
            open_at = None
        elif tag == "R":
            if open_at is not None and open_at[1] == "out" and open_at[0] in probe.in_shell:
                ended.append(open_at[0])  # it never returned: it ended their shell (no Z follows)
                open_at = None
            if open_at is None and index in waiting:
                waiting.discard(index)
                open_at = (index, "fd5", match.end())
            elif index not in ended:
                anomalies.append(f"marker R {index} out of order")
        else:
            anomalies.append(f"marker {tag} {index} out of order")
            open_at = None

    pool_missing = bool(probe.deferred) and "err" not in sections.get(len(probe.sections), {})
    # in-shell sections never vouched for by Z (a section ended their shell): none is used
    unsure = sorted([*waiting, *told, *ended])
    cut_short = bool(unsure) and done is not None
    complete = (
        clean
        and done == len(probe.sections)
        and not anomalies
        and not pool_missing
        and not cut_short
        and fatal is None
        and transport_error is None
    )
    if fatal is not None:
        problem: str | None = f"probe could not run: {fatal}"
    elif transport_error is not None:
        problem = transport_error
    elif start not in lines:
        said = next(
            (line.strip() for line in [*noise, *reversed(stderr.splitlines())] if line.strip()), "nothing"
        )
        said = said[:200]
        problem = f"probe produced no framed output (the host said: {said})"
    elif done is None:
        problem = "probe output ended before its trailer (truncated or killed)"
        if not clean:
            problem += "; its encoding broke off"
    elif not clean:  # the trailer decoded, but the gzip stream around it did not end whole
        problem = "probe output was cut or corrupted after its last section (its encoding broke off)"
    elif done != len(probe.sections):
        problem = f"probe trailer announces {done} sections, expected {len(probe.sections)}"
    elif anomalies:
        problem = "probe framing broken: " + "; ".join(anomalies[:3])
    elif cut_short:
        problem = (
            f"probe sections {', '.join(map(str, unsure))} did not come back whole "
            f"(section {ended[0] if ended else unsure[-1]} ended the shell they ran in)"
        )
    elif pool_missing:
        problem = "probe output lacks its pooled file read (the sections that read files have no files)"
    else:
        problem = None

    if anomalies or fatal is not None:
        sections = {}  # a frame that broke once cannot vouch for any section: nothing is used
    took, clock = _durations(stamps, [i for i, raw in sections.items() if "err" in raw])
    if probe.deferred:
        unpool(sections, list(probe.deferred), sections.pop(len(probe.sections), None), probe.nonce)
    return _Frame(sections, complete, problem, len(noise), cpu_s, took, clock)


def _durations(stamps: dict[int, bytes], whole: list[int]) -> tuple[dict[int, float], float | None]:
    """How long each whole section took on the host (seconds, from its start to the next one's), and the
    resolution of the clock read (the stamps' last decimal: 1 µs from EPOCHREALTIME, 10 ms from
    /proc/uptime). A section without both stamps, or whose clock went back, has no time."""
    decimals = {len(t) - max(t.rfind(b"."), t.rfind(b",")) - 1 for t in stamps.values()}
    if len(decimals) != 1:  # no stamps, or two clocks: no difference means anything
        return {}, None
    scale = 10 ** decimals.pop()
    ticks = {i: int(t.replace(b",", b"").replace(b".", b"")) for i, t in stamps.items()}
    took = {
        i: (ticks[i + 1] - ticks[i]) / scale
        for i in whole
        if i in ticks and i + 1 in ticks and ticks[i + 1] >= ticks[i]
    }
    return took, 1 / scale


_TIMES = re.compile(rb"([0-9]+)m\s*([0-9]+(?:\.[0-9]+)?)s")


def _cpu_seconds(trailer: bytes) -> float | None:
    """The user and system CPU of the probe's shell and its children, as ``times`` prints them after the
    trailer (``0m0.012000s 0m0.004000s`` twice: dash, bash and busybox alike)."""
    found = _TIMES.findall(trailer[:200])
    if len(found) != 4:
        return None
    return round(sum(int(m) * 60 + float(s) for m, s in found), 3)


def parse(
    probe: Probe, output: str | bytes, transport_error: str | None = None, stderr: str = ""
) -> ParsedProbe:
    """Recover one capture per fact from the probe's stdout. Never raises on hostile output.

    ``transport_error`` (a timeout, a dropped connection) explains why sections are missing; the
    command's ``stderr`` says why a probe printed nothing at all (``sh: base64: not found``...).
    """
    frame = _frame(probe, output, transport_error, stderr)
    captures = [
        capture
        for i, section in enumerate(probe.sections)
        for capture in _captures(probe, section, frame.sections.get(i), frame.problem)
    ]
    return ParsedProbe(
        captures,
        frame.complete,
        frame.problem,
        frame.noise_lines,
        frame.cpu_s,
        _fact_times(probe, frame.took),
        frame.clock,
    )


def _fact_times(probe: Probe, took: dict[int, float]) -> dict[str, float]:
    """Each fact's share of the host time its section took: a section shared by a batch is split evenly
    among its facts, and the pooled file reads among the sections that asked for them. The shares add up
    to the time of the sections measured."""
    pool = took.get(len(probe.sections)) if probe.deferred else None
    times: dict[str, float] = {}
    for i, section in enumerate(probe.sections):
        if i not in took:
            continue
        spent = took[i] + (pool / len(probe.deferred) if pool is not None and i in probe.deferred else 0.0)
        for fact in section.facts:
            times[fact.key] = round(spent / len(section.facts), 6)
    return times


def _captures(probe: Probe, section: Section, raw: Raw | None, problem: str | None) -> list[Capture]:
    """One capture per fact of a section; a section that did not come back whole fails all its facts."""
    if raw is None or "err" not in raw:
        why = problem or (
            "section missing from the probe output" if raw is None else "section not terminated"
        )
        return [
            Capture(fact=f.key, command=section.script, complete=False, problem=why) for f in section.facts
        ]
    stdout, stderr, code = raw["out"], raw["err"], raw["rc"]
    assert isinstance(stdout, bytes) and isinstance(stderr, bytes) and isinstance(code, int)
    # A host built like one parsed before printed the same section: its captures, already split and built.
    # (Sections are shared by the hosts asking the same facts: an entry holds its own, so the id is its.)
    key = (id(section), stdout, stderr, code, probe.section_cap)
    known = _SECTIONS_ALIKE.get(key)
    if known is not None and known[0] is section:
        return list(known[1])
    captures = _split(probe, section, stdout, stderr, code)
    _SECTIONS_ALIKE[key] = (section, tuple(captures))
    return captures


def _split(probe: Probe, section: Section, stdout: bytes, stderr: bytes, code: int) -> list[Capture]:
    """A whole section's captures, one per fact, from what it printed."""
    text = stderr.decode("utf-8", "replace")
    if section.joint:
        parts = type(section.facts[0]).split_joint(section.facts, stdout, text, code)
    elif section.batched and code == ABSENT and not stdout:  # the tool the batch runs is not installed
        parts = [Part(ABSENT, b"", text) for _ in section.facts]
    elif section.batched:  # each fact of a batch is capped on its own
        parts = type(section.facts[0]).split_batch(section.facts, stdout, text, probe.section_cap + 1)
    else:
        parts = [Part(code, stdout, text)]
    return [
        _capture(probe, fact, section.script, part) for fact, part in zip(section.facts, parts, strict=True)
    ]


def _capture(probe: Probe, fact: Fact[object], command: str, part: Part) -> Capture:
    truncated = len(part.stdout) > probe.section_cap
    stdout, stderr = part.stdout[: probe.section_cap], part.stderr[-STDERR_TAIL:]
    key = (fact.key, command, stdout, part.exit_code, stderr, truncated and probe.section_cap)
    if key in _ALIKE:  # a host built like one parsed before: the same (never changed) object
        return _ALIKE[key]
    capture = Capture.from_bytes(
        fact.key,
        command,
        stdout,
        exit_code=part.exit_code,
        stderr=stderr,
        truncated=truncated,
        problem=f"output exceeded the {probe.section_cap}-byte cap" if truncated else None,
    )
    _ALIKE[key] = capture
    return capture


# The captures parsed last, by what they were made from: hosts built alike print the same outputs.
_ALIKE: Recent[tuple[object, ...], Capture] = Recent(512)
# The same, a whole section at a time (a batch's split is not done again).
_SECTIONS_ALIKE: Recent[tuple[object, ...], tuple[Section, tuple[Capture, ...]]] = Recent(256)


def follow_ups(probe: Probe, captures: list[Capture]) -> list[Fact[object]]:
    """Facts of the second round: what the usable captures of the first one say must be collected next."""
    by_key = {c.fact: c for c in captures}
    seen = {f.key for f in probe.facts}
    out: list[Fact[object]] = []
    for fact in probe.facts:
        capture = by_key.get(fact.key)
        if capture is None or capture.problem is not None:
            continue
        for more in fact.follow_ups(capture):
            if more.key not in seen:
                seen.add(more.key)
                out.append(more)
    return out
