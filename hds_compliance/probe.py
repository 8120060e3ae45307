"""The probe: all facts a host needs, rendered into ONE POSIX sh script, and its output parsed back.

Output format (every line that is not payload starts with the per-run nonce ``M``)::

    M B <i>            section i starts; base64 of the snippet's stdout follows (capped)
    M E <i>            base64 of "<stderr tail>\\n<exit code>" follows
    M X <i>            section i is complete
    ...
    M DONE <n>         trailer: all n sections were written

Base64 keeps any byte a host returns (invalid UTF-8, NUL, forged markers inside files) away from the
transport and from the framing; the random nonce means no file content can predict a marker; the trailer
proves the output was not cut. A section that is missing, unterminated or undecodable becomes a capture
with a ``problem``, which evaluates to ``error``, never ``pass``.

This module is pure: no host access, no pyinfra. ``hds_compliance.collect`` runs the script.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from hds_compliance.facts import Fact
from hds_compliance.model import Capture

DEFAULT_SECTION_CAP = 1 << 20  # bytes of stdout kept per section
STDERR_TAIL = 2048


def new_nonce() -> str:
    """A fresh random marker; file contents cannot forge what they cannot predict."""
    return "@@HDS-" + secrets.token_hex(12)


@dataclass(frozen=True)
class Probe:
    """A rendered probe for one host: the script and the facts of its sections, in order."""

    nonce: str
    facts: tuple[Fact[object], ...]
    script: str
    section_cap: int


def render(facts: list[Fact[object]], nonce: str, section_cap: int = DEFAULT_SECTION_CAP) -> Probe:
    """Render de-duplicated facts (first occurrence wins, order kept) into one sh script."""
    unique: dict[str, Fact[object]] = {}
    for fact in facts:
        unique.setdefault(fact.key, fact)
    ordered = tuple(unique.values())
    lines = [
        "LC_ALL=C; LANG=C; export LC_ALL LANG",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH",
        f"M='{nonce}'",
        "command -v base64 >/dev/null 2>&1 || { printf '%s FATAL no base64 command\\n' \"$M\"; exit 0; }",
        "exec 4>&1",
        # stdout -> capped base64 on the real stdout (fd 4); stderr and exit code -> the $( ) capture.
        'run() { printf \'%s B %s\\n\' "$M" "$1"; '
        f'r=$( {{ {{ ( "$2" ) </dev/null 2>&3; printf \'\\n%s\\n\' "$?" >&3; }} '
        f"| head -c {section_cap + 1} | base64 >&4; }} 3>&1 ); "
        'printf \'%s E %s\\n\' "$M" "$1"; '
        f"printf '%s' \"$r\" | tail -c {STDERR_TAIL} | base64; "
        'printf \'%s X %s\\n\' "$M" "$1"; }',
    ]
    for i, fact in enumerate(ordered):
        lines.append(f"f{i}() {{\n{fact.script()}\n}}")
    lines.extend(f"run {i} f{i}" for i in range(len(ordered)))
    lines.append(f"printf '%s DONE %s\\n' \"$M\" {len(ordered)}")
    lines.append("exit 0")
    return Probe(nonce=nonce, facts=ordered, script="\n".join(lines) + "\n", section_cap=section_cap)


@dataclass
class ParsedProbe:
    """Captures recovered from a probe's output, and whether the output was complete."""

    captures: list[Capture]
    complete: bool
    problem: str | None
    noise_lines: int = 0
    fatal: str | None = None


def _decode(lines: list[str]) -> bytes:
    return base64.b64decode("".join(lines), validate=True)


def parse(probe: Probe, output: str | bytes, transport_error: str | None = None) -> ParsedProbe:
    """Recover one capture per fact from the probe's stdout. Never raises on hostile output.

    ``transport_error`` (a timeout, a dropped connection) explains why sections are missing.
    """
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    marker = probe.nonce + " "
    sections: dict[int, dict[str, list[str]]] = {}
    done: int | None = None
    fatal: str | None = None
    anomalies: list[str] = []
    noise: list[str] = []
    current: tuple[int, str] | None = None  # (section index, "out" | "status")
    for line in output.splitlines():
        if not line.startswith(marker):
            if current is None:
                noise.append(line)  # login banners, rc files, sudo refusals: outside every frame
            else:
                sections[current[0]][current[1]].append(line.strip())
            continue
        tag, _, rest = line[len(marker) :].partition(" ")
        if tag == "FATAL":
            fatal = rest.strip()
            continue
        if tag == "DONE":
            done = int(rest) if rest.strip().isdigit() else -1
            current = None
            continue
        if not rest.strip().isdigit() or int(rest) >= len(probe.facts):
            anomalies.append(f"unexpected marker {tag} {rest!r}")
            current = None
            continue
        index = int(rest)
        if tag == "B":
            if index in sections:
                anomalies.append(f"section {index} started twice")
            sections[index] = {"out": [], "status": [], "closed": []}
            current = (index, "out")
        elif tag == "E" and current == (index, "out"):
            current = (index, "status")
        elif tag == "X" and current == (index, "status"):
            sections[index]["closed"].append("yes")
            current = None
        else:
            anomalies.append(f"marker {tag} {index} out of order")
            current = None

    complete = done == len(probe.facts) and not anomalies and fatal is None and transport_error is None
    if fatal is not None:
        problem: str | None = f"probe could not run: {fatal}"
    elif transport_error is not None:
        problem = transport_error
    elif done is None and not sections:
        said = next((line.strip() for line in noise if line.strip()), "nothing")
        said = scrub(said[:200].encode("utf-8", "replace"))[0].decode("utf-8", "replace")
        problem = f"probe produced no framed output (the host said: {said})"
    elif done is None:
        problem = "probe output ended before its trailer (truncated or killed)"
    elif done != len(probe.facts):
        problem = f"probe trailer announces {done} sections, expected {len(probe.facts)}"
    elif anomalies:
        problem = "probe framing broken: " + "; ".join(anomalies[:3])
    else:
        problem = None

    captures = [_capture(probe, i, fact, sections.get(i), problem) for i, fact in enumerate(probe.facts)]
    return ParsedProbe(
        captures=captures, complete=complete, problem=problem, noise_lines=len(noise), fatal=fatal
    )


def _capture(
    probe: Probe, index: int, fact: Fact[object], section: dict[str, list[str]] | None, problem: str | None
) -> Capture:
    command = fact.script()
    if section is None or not section["closed"]:
        why = "section missing from the probe output" if section is None else "section not terminated"
        return Capture(fact=fact.key, command=command, complete=False, problem=problem or why)
    try:
        stdout = _decode(section["out"])
        status = _decode(section["status"]).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return Capture(
            fact=fact.key, command=command, complete=False, problem="section payload is not valid base64"
        )
    stderr, _, code = status.rstrip("\n").rpartition("\n")
    if not code.strip().lstrip("-").isdigit():
        return Capture(fact=fact.key, command=command, complete=False, problem="section has no exit code")
    truncated = len(stdout) > probe.section_cap
    if truncated:
        stdout = stdout[: probe.section_cap]
    capture = Capture.from_bytes(
        fact.key,
        command,
        stdout,
        exit_code=int(code),
        stderr=stderr.strip("\n"),
        truncated=truncated,
        problem=f"output exceeded the {probe.section_cap}-byte cap" if truncated else None,
    )
    return redact(capture)


# ------------------------------------------------------------------------------------------ redaction

_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    (
        "private-key",
        re.compile(
            rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S
        ),
    ),
    (
        "password-hash",
        re.compile(rb"\$(?:1|2[abxy]?|5|6|y|gy|7|sha1|md5|argon2(?:id|i|d))\$[A-Za-z0-9./$=,+-]{8,}"),
    ),
    (
        "token",
        re.compile(
            rb"(?i)\b([\w.-]*(?:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d)\s*[=:]\s*)"
            rb"(?!\[REDACTED)[^\s\"']{6,}"
        ),
    ),
)


def scrub(data: bytes) -> tuple[bytes, list[str]]:
    """``data`` with anything that looks like key material, a password hash or a token replaced."""
    kinds: list[str] = []
    for kind, pattern in _SECRET_PATTERNS:
        replacement = f"[REDACTED {kind}]".encode()
        if kind == "token":  # keep the key name, drop the value
            replacement = rb"\1" + replacement
        data, count = pattern.subn(replacement, data)
        if count:
            kinds.append(kind)
    return data, kinds


def redact(capture: Capture) -> Capture:
    """The capture with secrets removed from stdout and stderr; ``redactions`` records what went."""
    stdout, kinds = scrub(capture.stdout_bytes())
    stderr, stderr_kinds = scrub(capture.stderr.encode("utf-8", "replace"))
    kinds = sorted(set(kinds + stderr_kinds))
    if not kinds:
        return capture
    fields = capture.model_dump(
        exclude={"fact", "command", "stdout", "stdout_encoding", "stderr", "redactions"}
    )
    rebuilt = Capture.from_bytes(
        capture.fact, capture.command, stdout, stderr=stderr.decode("utf-8", "replace"), **fields
    )
    rebuilt.redactions = kinds
    return rebuilt
