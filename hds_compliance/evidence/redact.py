"""Redaction: no secret read by a probe enters a result, a report or a bundle.

Probes already derive facts on the host where a raw read would carry a secret (``/etc/shadow``). This pass
is the second line: it replaces anything that looks like key material, a password hash, a token or a
credential with ``[REDACTED-<kind>]`` and records the kinds it removed in the capture. The marker is one
word (no blank, comma or quote), so the text around it keeps its grammar; a check that would interpret
redacted text gets an ``error`` verdict instead (see :meth:`hds_compliance.check.Context.get`).
"""

from __future__ import annotations

import re

from hds_compliance.model import REDACTION_MARK, Capture

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
        "url-credentials",  # scheme://user:password@host: the user name stays, the password goes
        re.compile(rb"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"']+:)[^\s@/\"']+(?=@)"),
    ),
    ("jwt", re.compile(rb"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("cloud-key", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("bearer-token", re.compile(rb"(?i)(\bbearer\s+)[A-Za-z0-9._~+/-]{16,}=*")),
)

# key = value where the key names a secret: the secret word is found first (a literal search), then the key
# is extended to its start, which a pattern starting with [\w.-]* would try at every byte. sudo's
# NOPASSWD:/PASSWD: tags are not keys: their "value" is a command list, and eating it would change what a
# sudoers check reads.
_SECRET_KEY = re.compile(rb"(?i)(?:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d)\s*[=:]\s*")
_KEY_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_VALUE = re.compile(rb"(?!\[REDACTED)[^\s\"']{6,}")
_SUDO_TAG = re.compile(rb"(?:NO)?PASSWD\s*:")


def _tokens(data: bytes) -> tuple[bytes, int]:
    """``data`` with the values of secret-named keys replaced, and how many."""
    out, last, count = [], 0, 0
    for key in _SECRET_KEY.finditer(data):
        start = key.start()
        while start > 0 and data[start - 1] in _KEY_BYTES:  # back to the start of the key's name
            start -= 1
        if _SUDO_TAG.fullmatch(data, start, key.end() - (len(key.group(0)) - len(key.group(0).rstrip()))):
            continue
        value = _VALUE.match(data, key.end())
        if value is None or key.end() < last:
            continue
        out += [data[last : key.end()], marker("token")]
        last, count = value.end(), count + 1
    return b"".join([*out, data[last:]]), count


# A pattern can only match where one of its hints (lower-cased) occurs: a cheap test first.
_HINTS: dict[str, tuple[bytes, ...]] = {
    "private-key": (b"private key",),
    "password-hash": (b"$",),
    "url-credentials": (b"://",),
    "jwt": (b"eyj",),
    "cloud-key": (b"akia", b"asia"),
    "bearer-token": (b"bearer",),
    "token": (b"key", b"secret", b"token", b"passw"),
}
# Patterns that keep their first group (the key name, the user, the scheme) and drop the rest.
_KEEP_PREFIX = {"url-credentials", "bearer-token"}


def marker(kind: str) -> bytes:
    """What replaces a secret of ``kind``."""
    return f"{REDACTION_MARK}{kind}]".encode()


def scrub(data: bytes) -> tuple[bytes, list[str]]:
    """``data`` with anything that looks like a secret replaced, and the kinds replaced."""
    kinds: list[str] = []
    lowered = data.lower()
    for kind, pattern in _SECRET_PATTERNS:
        if not any(hint in lowered for hint in _HINTS[kind]):
            continue
        replacement = (rb"\1" if kind in _KEEP_PREFIX else b"") + marker(kind)
        data, count = pattern.subn(replacement, data)
        if count:
            kinds.append(kind)
    if any(hint in lowered for hint in _HINTS["token"]):
        data, count = _tokens(data)
        if count:
            kinds.append("token")
    return data, sorted(kinds)


def scrub_text(text: str) -> str:
    """A message (a probe error, what a host printed) with secrets replaced."""
    return scrub(text.encode("utf-8", "replace"))[0].decode("utf-8", "replace")


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
