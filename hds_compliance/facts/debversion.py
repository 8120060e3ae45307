"""Debian package versions compared as dpkg compares them (``dpkg --compare-versions``).

A version is ``[epoch:]upstream[-revision]``: the epoch is a number (0 when absent), the revision is what
follows the last hyphen (empty when there is none, which compares equal to ``0``). Epochs compare as
numbers; upstream parts, then revisions, compare left to right in runs: a run of non-digits byte by byte,
where ``~`` sorts before everything (even the end of the string) and letters before every other character;
then a run of digits as a number. Hence ``1.0~rc1 < 1.0 < 1.0a < 1.0+b1`` and ``1.0-1 < 1.0-1+deb12u1``.
"""

from __future__ import annotations

import functools
import re

_EPOCH = re.compile(r"[0-9]+")


class BadVersion(ValueError):
    """A string dpkg refuses as a version (empty, a non-numeric epoch, an empty revision, blanks inside)."""


def split_version(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision) of ``version``, as dpkg's parser splits it."""
    text = version.strip()
    if not text:
        raise BadVersion("empty version")
    if any(c.isspace() for c in text):
        raise BadVersion(f"blank inside version {version!r}")
    epoch_text, colon, rest = text.partition(":")
    if not colon:
        epoch_text, rest = "0", text
    elif not _EPOCH.fullmatch(epoch_text):
        raise BadVersion(f"epoch of {version!r} is not a number")
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise BadVersion(f"empty revision in {version!r}")
    if not upstream:
        raise BadVersion(f"empty upstream version in {version!r}")
    return int(epoch_text), upstream, revision


_DIGITS = frozenset(b"0123456789")


def _order(byte: int | None) -> int:
    """Weight of one byte in a non-digit run (dpkg's ``order``); ``None`` stands for the end of the string.

    Letters weigh their code, ``~`` weighs -1, the end 0, every other byte its code plus 256 (a byte above
    0x7f is a negative ``char`` in dpkg's C, which ends up weighing its unsigned code).
    """
    if byte is None or byte in _DIGITS:
        return 0
    if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
        return byte
    if byte == 0x7E:
        return -1
    return byte if byte >= 0x80 else byte + 256


def _compare_part(left: str, right: str) -> int:
    """dpkg's comparison of two upstream versions or two revisions: negative, zero or positive."""
    a, b = left.encode(), right.encode()
    i = j = 0
    while i < len(a) or j < len(b):
        # A run of non-digits, compared byte by byte.
        while (i < len(a) and a[i] not in _DIGITS) or (j < len(b) and b[j] not in _DIGITS):
            weight_a = _order(a[i] if i < len(a) else None)
            weight_b = _order(b[j] if j < len(b) else None)
            if weight_a != weight_b:
                return weight_a - weight_b
            i, j = i + 1, j + 1
        # A run of digits, compared as a number (leading zeros do not count).
        start_a, start_b = i, j
        while i < len(a) and a[i] in _DIGITS:
            i += 1
        while j < len(b) and b[j] in _DIGITS:
            j += 1
        number_a, number_b = int(a[start_a:i] or b"0"), int(b[start_b:j] or b"0")
        if number_a != number_b:
            return -1 if number_a < number_b else 1
    return 0


@functools.lru_cache(maxsize=8192)  # hosts of a fleet compare the same versions: once per run
def compare_versions(a: str, b: str) -> int:
    """Negative when ``a`` is older than ``b``, zero when dpkg takes them as equal, positive when newer."""
    epoch_a, upstream_a, revision_a = split_version(a)
    epoch_b, upstream_b, revision_b = split_version(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(upstream_a, upstream_b) or _compare_part(revision_a, revision_b)


def newer(a: str, b: str) -> bool:
    """Whether version ``a`` is strictly newer than ``b``."""
    return compare_versions(a, b) > 0


version_key = functools.cmp_to_key(compare_versions)
