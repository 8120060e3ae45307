"""Redaction: no secret read by a probe enters a result, a report or a bundle.

Probes already derive facts on the host where a raw read would carry a secret (``/etc/shadow``). This pass
is the second line: it replaces anything that looks like key material, a password hash, a token or a
credential with ``[REDACTED-<kind>.<mac>]`` and records the kinds it removed in the capture. ``<mac>`` is
a keyed hash (HMAC-SHA256, 12 hex digits) of what was removed, under a random key drawn when the scan
starts and never written anywhere: equal secrets show as equal markers across a run's hosts (a password
reused on two hosts shows), yet no marker can be matched against a dictionary of guesses, and two runs
mark the same secret differently. The marker is one word (no blank, comma, colon or quote), so the text
around it keeps its grammar; a check that would interpret redacted text gets an ``error`` verdict instead
(see :meth:`hds_compliance.check.Context.get`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator

from hds_compliance.model import REDACTION_MARK, Capture, PerCapture

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

# key = value where the key names a secret. sudo's NOPASSWD:/PASSWD: tags are not keys: their "value" is a
# command list, and eating it would change what a sudoers check reads. Keys are found from the secret words'
# occurrences (bytes.find), in the lower-cased data (same length, ASCII case folded as (?i) folds it): a
# pattern starting with an alternation would be tried at every byte.
_SECRET_KEY = re.compile(rb"(?:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d)\s*[=:]\s*")
_SECRET_WORDS = (b"key", b"secret", b"token", b"passw")
_WORD_LEAD = len(b"access_")  # a key's name starts at most this many bytes before its secret word
_KEY_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_VALUE = re.compile(rb"(?!\[REDACTED)[^\s\"']{6,}")
_SUDO_TAG = re.compile(rb"(?:NO)?PASSWD\s*:")


def _secret_keys(lowered: bytes) -> Iterator[re.Match[bytes]]:
    """What ``_SECRET_KEY.finditer(lowered)`` gives, trying the pattern only near the secret words.

    A match starting at ``s`` holds its secret word at ``s`` to ``s + _WORD_LEAD``, and no other before it:
    so the leftmost match from ``pos`` on starts within ``_WORD_LEAD`` bytes before the first word from
    ``pos`` on, or after that word.
    """
    found = [lowered.find(word) for word in _SECRET_WORDS]
    pos = 0
    while True:
        for i, at in enumerate(found):
            if 0 <= at < pos:
                found[i] = lowered.find(_SECRET_WORDS[i], pos)
        first = min((at for at in found if at >= 0), default=-1)
        if first < 0:
            return
        for start in range(max(pos, first - _WORD_LEAD), first + 1):
            key = _SECRET_KEY.match(lowered, start)
            if key is not None:
                yield key
                pos = key.end()
                break
        else:
            pos = first + 1


def _tokens(data: bytes, lowered: bytes) -> tuple[bytes, int]:
    """``data`` with the values of secret-named keys replaced, and how many (``lowered``: its lower case)."""
    out, last, count = [], 0, 0
    for key in _secret_keys(lowered):
        start = key.start()
        while start > 0 and data[start - 1] in _KEY_BYTES:  # back to the start of the key's name
            start -= 1
        if _SUDO_TAG.fullmatch(data, start, key.end() - (len(key.group(0)) - len(key.group(0).rstrip()))):
            continue
        value = _VALUE.match(data, key.end())
        if value is None or key.end() < last:
            continue
        out += [data[last : key.end()], marker("token", value.group(0))]
        last, count = value.end(), count + 1
    return b"".join([*out, data[last:]]), count


_Replacement = Callable[[re.Match[bytes]], bytes]


def _subn_lines(
    pattern: re.Pattern[bytes], replacement: _Replacement, data: bytes, hints: tuple[bytes, ...]
) -> tuple[bytes, int]:
    """``pattern.subn(replacement, data)`` for a pattern whose matches never span a newline nor look past
    one, and always hold one of ``hints`` (lower-cased): only the lines holding a hint are searched."""
    lowered = data.lower()
    starts: set[int] = set()
    for hint in hints:
        at = lowered.find(hint)
        while at >= 0:
            starts.add(lowered.rfind(b"\n", 0, at) + 1)
            end = lowered.find(b"\n", at)
            at = -1 if end < 0 else lowered.find(hint, end)
    out: list[bytes] = []
    last, count = 0, 0
    for start in sorted(starts):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line, found = pattern.subn(replacement, data[start:end])
        if found:
            out += [data[last:start], line]
            last, count = end, count + found
    return b"".join([*out, data[last:]]), count


# A pattern can only match where one of its hints (lower-cased) occurs: a cheap test first.
_HINTS: dict[str, tuple[bytes, ...]] = {
    "private-key": (b"private key",),
    "password-hash": (b"$",),
    "url-credentials": (b"://",),
    "jwt": (b"eyj",),
    "cloud-key": (b"akia", b"asia"),
    "bearer-token": (b"bearer",),
    "token": _SECRET_WORDS,
}
# Patterns that keep their first group (the key name, the user, the scheme) and drop the rest.
_KEEP_PREFIX = {"url-credentials", "bearer-token"}
# Patterns whose matches stay inside one line (no newline in them, no look past one): searched line by line.
_ONE_LINE = {"url-credentials", "jwt", "cloud-key"}


# This run's key for the markers' hashes: drawn once per process (one scan), never stored.
_KEY = secrets.token_bytes(32)


def marker(kind: str, secret: bytes) -> bytes:
    """What replaces ``secret``, a secret of ``kind``: its kind and a keyed hash of it."""
    mac = hmac.new(_KEY, secret, hashlib.sha256).hexdigest()[:12]
    return f"{REDACTION_MARK}{kind}.{mac}]".encode()


def _replacement(kind: str) -> _Replacement:
    """The replacement of a pattern's match: its kept prefix (the key name, the user), then the marker of
    the rest."""
    keep = kind in _KEEP_PREFIX

    def replace(match: re.Match[bytes]) -> bytes:
        prefix = match.group(1) if keep else b""
        return prefix + marker(kind, match.group(0)[len(prefix) :])

    return replace


_ALL_HINTS = frozenset(hint for hints in _HINTS.values() for hint in hints)
# (kind, pattern, hints, replacement, one line) in the order scrub applies them.
_PASSES = tuple(
    (kind, pattern, _HINTS[kind], _replacement(kind), kind in _ONE_LINE) for kind, pattern in _SECRET_PATTERNS
)


def scrub(data: bytes) -> tuple[bytes, list[str]]:
    """``data`` with anything that looks like a secret replaced, and the kinds replaced.

    The patterns apply one after another, each on what the previous ones left; a pattern runs only where
    the original text holds one of its hints.
    """
    if not data:
        return data, []
    out, kinds = _scrub_shared(data) if len(data) <= _SHARED_MAX else _scrub_once(data)
    return out, list(kinds)


# Hosts built alike print the same outputs: one host's outputs (~130) fit many times in the cache, so each
# is scrubbed once per run; only small outputs are kept (at most 512 x 64 KiB, about 1 MiB in practice).
_SHARED_MAX = 1 << 16


@functools.lru_cache(maxsize=512)
def _scrub_shared(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    return _scrub_once(data)


def _scrub_once(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    lowered = data.lower()
    present = {hint for hint in _ALL_HINTS if hint in lowered}
    if not present:
        return data, ()
    kinds: list[str] = []
    for kind, pattern, hints, replacement, one_line in _PASSES:
        if present.isdisjoint(hints):
            continue
        if one_line:
            data, count = _subn_lines(pattern, replacement, data, hints)
        else:
            data, count = pattern.subn(replacement, data)
        if count:
            kinds.append(kind)
    if not present.isdisjoint(_SECRET_WORDS):
        data, count = _tokens(data, data.lower() if kinds else lowered)
        if count:
            kinds.append("token")
    return data, tuple(sorted(kinds))


def scrub_text(text: str) -> str:
    """A message (a probe error, what a host printed) with secrets replaced."""
    return scrub(text.encode("utf-8", "replace"))[0].decode("utf-8", "replace")


def redact(capture: Capture) -> Capture:
    """The capture with secrets removed from stdout and stderr; ``redactions`` records what went."""
    return _REDACTED(capture)


def _redact(capture: Capture) -> Capture:
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


_REDACTED = PerCapture(_redact)  # a capture shared by hosts built alike is redacted once
