"""Ed25519 keys and the signed envelope of a bundle's manifest: an in-toto Statement in a DSSE envelope.

The envelope follows the DSSE protocol (https://github.com/secure-systems-lab/dsse): the signature covers
the pre-authentication encoding ``DSSEv1 <len(type)> <type> <len(body)> <body>`` of the payload type and
the payload bytes, so any DSSE verifier checks it without knowing our formats. Ed25519 signatures are
deterministic (RFC 8032): the same manifest and key give the same envelope bytes.

A key is named by its fingerprint: the SHA-256 of its public key in DER (SubjectPublicKeyInfo), the same
value ``openssl pkey -pubin -in signing.pub -outform DER | sha256sum`` prints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"


class KeyFileError(Exception):
    """A key file that cannot be used: missing, unreadable, or not an Ed25519 key (exit 2)."""


class SignatureProblem(Exception):
    """An envelope that does not verify; the message says why, on one line."""


def fingerprint(public: Ed25519PublicKey) -> str:
    """The key's id: hex SHA-256 of its DER SubjectPublicKeyInfo."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def keygen(directory: Path) -> tuple[Path, Path]:
    """Write a new key pair (``signing.key``, PKCS#8 PEM, owner-only; ``signing.pub``, PEM) in
    ``directory``; an existing key is never overwritten (:class:`FileExistsError`)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private, public):
        if path.exists():
            raise FileExistsError(f"{path} exists: a key is never overwritten")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_private(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8, as :func:`keygen` writes it)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the signing key: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the public key: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """The DSSE envelope (JSON bytes) of an in-toto Statement, signed with ``key``."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    doc = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": fingerprint(key.public_key()), "sig": base64.b64encode(signature).decode()}],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Opened:
    """What a verified envelope carries."""

    payload: bytes
    keyid: str


def open_envelope(data: bytes, key: Ed25519PublicKey) -> Opened:
    """The payload of an envelope whose signature by ``key`` verifies; :class:`SignatureProblem` otherwise.

    The signature must name ``key`` (its fingerprint) and verify over the envelope's own payload type,
    which must be an in-toto Statement's."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureProblem(f"the envelope is not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("signatures"), list):
        raise SignatureProblem("the envelope is not a DSSE envelope (no list of signatures)")
    kind, encoded = doc.get("payloadType"), doc.get("payload")
    if kind != PAYLOAD_TYPE or not isinstance(encoded, str):
        raise SignatureProblem(f"the envelope's payload type is {kind!r}, not {PAYLOAD_TYPE!r}")
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureProblem("the envelope's payload is not base64") from exc
    wanted = fingerprint(key)
    signatures = [s for s in doc["signatures"] if isinstance(s, dict) and s.get("keyid") == wanted]
    if not signatures:
        named = sorted(str(s.get("keyid")) for s in doc["signatures"] if isinstance(s, dict))
        raise SignatureProblem(
            f"not signed by the key given ({wanted[:16]}...); signed by: {', '.join(named) or 'nobody'}"
        )
    for signature in signatures:
        try:
            key.verify(base64.b64decode(str(signature.get("sig")), validate=True), pae(kind, payload))
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return Opened(payload, wanted)
    raise SignatureProblem(f"the signature by {wanted[:16]}... does not verify: the manifest was altered")
