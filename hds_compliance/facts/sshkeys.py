"""OpenSSH public keys read as ``ssh-keygen -l`` reads them: the key type and its size in bits.

A public key line is ``<type> <base64 blob> [comment]``; the blob is the key in SSH wire format (RFC 4253
§6.6, RFC 5656 §3.1, RFC 8709): a length-prefixed type name, then the key's own fields. The size is what
``ssh-keygen -l`` prints: the modulus bits for RSA, the prime ``p`` bits for DSA, the curve size for ECDSA,
256 for Ed25519. Names are ssh-keygen's (``RSA``, ``ECDSA``, ``ED25519``, ``DSA``, ``ECDSA-SK``,
``ED25519-SK``). Reading the public half in Python saves one ssh-keygen per key on the host, and never
touches the private key.
"""

from __future__ import annotations

import base64
import binascii

_CURVES = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
_ED25519 = {"ssh-ed25519": "ED25519", "sk-ssh-ed25519@openssh.com": "ED25519-SK"}
_ECDSA_SK = "sk-ecdsa-sha2-nistp256@openssh.com"


class PublicKeyError(ValueError):
    """The text is not an OpenSSH public key ssh-keygen would read."""


def _strings(blob: bytes) -> list[bytes]:
    """The length-prefixed fields of a wire-format blob; every byte must belong to one."""
    fields, pos = [], 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise PublicKeyError("truncated key blob")
        size = int.from_bytes(blob[pos : pos + 4], "big")
        if pos + 4 + size > len(blob):
            raise PublicKeyError("truncated key blob")
        fields.append(blob[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return fields


def _mpint_bits(value: bytes) -> int:
    return int.from_bytes(value, "big").bit_length()


def public_key_size(text: str) -> tuple[str, int]:
    """``(type, bits)`` of the first key in a public key file, as ``ssh-keygen -l`` prints them."""
    lines = (ln.strip() for ln in text.splitlines())
    words = next((ln for ln in lines if ln and not ln.startswith("#")), "").split()
    if len(words) < 2:
        raise PublicKeyError("no public key line")
    try:
        blob = base64.b64decode(words[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PublicKeyError("the key is not valid base64") from exc
    fields = _strings(blob)
    name = fields[0].decode("ascii", "replace") if fields else ""
    if name != words[0]:
        raise PublicKeyError(f"the line says {words[0]!r}, the key inside is {name!r}")
    if name == "ssh-rsa" and len(fields) == 3:
        return "RSA", _mpint_bits(fields[2])
    if name == "ssh-dss" and len(fields) == 5:
        return "DSA", _mpint_bits(fields[1])
    if name.startswith("ecdsa-sha2-") and len(fields) == 3:
        curve = fields[1].decode("ascii", "replace")
        if curve in _CURVES and name == f"ecdsa-sha2-{curve}":
            return "ECDSA", _CURVES[curve]
    if name == _ECDSA_SK and len(fields) == 4 and fields[1] == b"nistp256":
        return "ECDSA-SK", 256
    if name in _ED25519 and len(fields) == (2 if name == "ssh-ed25519" else 3) and len(fields[1]) == 32:
        return _ED25519[name], 256
    raise PublicKeyError(f"unsupported or malformed {name or 'key'}")
