"""TLS endpoints and web pages a host serves, seen from the scanning machine as a client would see them.

These facts have ``origin = "scanner"``: :mod:`hds_compliance.collect.tls` connects to the endpoint and
records what the server answered as JSON (the served certificates in DER, no private material); the parsers
here turn that into values, so a certifier re-evaluates a bundle without reaching the endpoint.

Endpoints come from the host's inventory data (``tls_endpoints``): ``host:port``, or ``https://host[:port]/path``
(port 443 by default), whose plain-HTTP counterpart is ``http://host/path`` on port 80.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from hds_compliance.facts.base import Fact, FactError
from hds_compliance.model import Capture

V = TypeVar("V")

# Protocol versions the scanner tries one by one, oldest first, as OpenSSL names them in a session.
VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# What the probes that offer a restricted set of cipher suites are called in a capture.
RSA_KEY_EXCHANGE = "rsa_key_exchange"
NON_AEAD = "non_aead"
# The languages a web request asks for: EXI 07 asks whether a French-speaking user gets French.
ACCEPT_LANGUAGE = "fr-FR, fr;q=0.9"


# ------------------------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    """One ``tls_endpoints`` entry: where to connect, and the https URL when it names a web page."""

    host: str
    port: int
    url: str | None = None

    @property
    def address(self) -> str:
        """``host:port``: the key of the endpoint's TLS facts."""
        return f"{self.host}:{self.port}"

    @property
    def http_url(self) -> str | None:
        """The plain-HTTP URL a browser tries for this https URL (port 80, same path), if it is one."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        return urlunsplit(("http", self.host, parts.path or "/", parts.query, ""))


def parse_endpoint(value: str) -> Endpoint:
    """An inventory endpoint (``host:port`` or ``https://host[:port][/path]``); ValueError if malformed."""
    if value.startswith("https://"):
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError(f"no host in {value!r}")
        return Endpoint(parts.hostname, parts.port or 443, urlunsplit(parts._replace(fragment="")))
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not 'host:port' or an https:// URL")
    return Endpoint(host, int(port))


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); ValueError if malformed."""
    endpoint = parse_endpoint(address)
    return endpoint.host, endpoint.port


# ------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Certificate:
    """A certificate as the server sent it, with what the checks judge of it."""

    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    curve: str | None  # EC keys: secp256r1...
    signature_algorithm: str  # e.g. sha256WithRSAEncryption, or the OID when unknown
    signature_hash: str | None  # sha1, sha256...; None when the algorithm has no separate hash (EdDSA)
    not_before: str  # ISO 8601, UTC
    not_after: str
    self_issued: bool  # subject == issuer: a trust anchor when served as the last of the chain

    def expires(self) -> datetime:
        """``not_after`` as a datetime."""
        return datetime.fromisoformat(self.not_after)

    def starts(self) -> datetime:
        """``not_before`` as a datetime."""
        return datetime.fromisoformat(self.not_before)


@dataclass(frozen=True)
class Handshake:
    """One connection attempt offering a restricted protocol version or set of suites.

    ``offered``: the scanner could put it in its ClientHello (its OpenSSL may lack old versions).
    ``accepted``: the server answered with a ServerHello choosing it, even if the handshake then failed
    for another reason (a client certificate required); ``None`` when it cannot be told (a timeout).
    """

    offered: bool
    accepted: bool | None
    version: str | None = None
    cipher: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class TlsReport:
    """What the TLS endpoint accepted, and the certificate chain it served (leaf first)."""

    endpoint: str
    versions: dict[str, Handshake]
    rsa_key_exchange: Handshake
    non_aead: Handshake
    negotiated_version: str | None
    negotiated_cipher: str | None
    chain: tuple[Certificate, ...]
    chain_error: str  # why no certificate was recorded, when chain is empty


@dataclass(frozen=True)
class TrustReport:
    """Whether a client trusting ``trust_store`` accepts the endpoint's certificate for its name."""

    endpoint: str
    trust_store: str
    verified: bool
    verify_code: int | None
    detail: str


@dataclass(frozen=True)
class Hop:
    """One HTTP response on the way to a page (redirects are followed, at most a few)."""

    url: str
    status: int | None  # None: the request failed (``error``), or the connection was refused
    location: str | None = None
    hsts: tuple[str, ...] = ()  # every Strict-Transport-Security field, in order
    content_language: str | None = None
    content_type: str | None = None
    error: str | None = None
    refused: bool = False  # the TCP connection was refused: nothing listens there


@dataclass(frozen=True)
class WebReport:
    """The responses to a GET of a URL, following redirects, and the language of the page reached."""

    url: str
    hops: tuple[Hop, ...]
    html_lang: str | None  # the root <html> element's lang (or xml:lang) attribute, if any
    body: str | None = None  # the page itself, for web-page facts only (public pages)
    body_truncated: bool = False

    @property
    def final(self) -> Hop:
        """The last response (the page, unless a redirect could not be followed)."""
        return self.hops[-1]


# -------------------------------------------------------------------------------------------------- facts


def _scanner_json(fact: Fact[Any], capture: Capture) -> dict[str, Any]:
    """The JSON object the scanner recorded for ``fact``; FactError if it is not one."""
    if capture.problem is not None:
        raise FactError(f"{fact.describe()}: {capture.problem}")
    if capture.exit_code != 0:
        raise fact._fail(capture)
    try:
        data = json.loads(capture.stdout_text())
    except json.JSONDecodeError as exc:
        raise FactError(f"{fact.describe()}: capture is not the scanner's JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FactError(f"{fact.describe()}: capture is not a JSON object")
    return data


def _from_json(fact: Fact[Any], capture: Capture, build: Callable[[dict[str, Any]], V]) -> V:
    """``build`` applied to the scanner's JSON; a missing or mistyped field is a FactError."""
    data = _scanner_json(fact, capture)
    try:
        return build(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise FactError(
            f"{fact.describe()}: unexpected scanner output ({type(exc).__name__}: {exc})"
        ) from exc


@dataclass(frozen=True)
class TlsEndpoint(Fact[TlsReport]):
    """Protocol versions, key exchange and suites a TLS endpoint accepts, and its certificate chain."""

    kind: ClassVar[str] = "tls"
    origin: ClassVar[Literal["host", "scanner"]] = "scanner"

    def script(self) -> str:
        return (
            f"(scanner) TLS handshakes with {self.arg}: one per version {', '.join(VERSIONS)} "
            "(OpenSSL security level 0), one offering only RSA key exchange suites (TLS 1.0-1.2), one "
            "offering only non-AEAD suites (TLS 1.0-1.2), one with every version and suite for the "
            "certificate chain as served"
        )

    def parse(self, capture: Capture) -> TlsReport:
        return _from_json(self, capture, _tls_report)

    def describe(self) -> str:
        return f"TLS endpoint {self.arg}"


@dataclass(frozen=True)
class TlsTrust(Fact[TrustReport]):
    """Whether the endpoint's chain verifies for its name against a trust store (``host:port[ ca=FILE]``).

    Without ``ca=``, the scanning machine's system store (what its OpenSSL trusts by default).
    """

    kind: ClassVar[str] = "tls-trust"
    origin: ClassVar[Literal["host", "scanner"]] = "scanner"

    @classmethod
    def of(cls, address: str, ca_file: str) -> TlsTrust:
        """The fact for ``address`` verified against ``ca_file`` ("" for the system store)."""
        return cls(f"{address} ca={ca_file}" if ca_file else address)

    @property
    def address(self) -> str:
        """``host:port``."""
        return self.arg.split(" ca=", 1)[0]

    @property
    def ca_file(self) -> str:
        """The CA file on the scanning machine, "" for the system store."""
        return self.arg.split(" ca=", 1)[1] if " ca=" in self.arg else ""

    def script(self) -> str:
        store = f"the CA file {self.ca_file}" if self.ca_file else "the system trust store"
        return (
            f"(scanner) TLS handshake with {self.address} verifying the chain and the name "
            f"{split_address(self.address)[0]} against {store} (OpenSSL security level 0)"
        )

    def parse(self, capture: Capture) -> TrustReport:
        return _from_json(self, capture, _trust_report)

    def describe(self) -> str:
        return f"trust in TLS endpoint {self.address}"


@dataclass(frozen=True)
class WebResponse(Fact[WebReport]):
    """A GET of a URL (redirects followed): status, HSTS and language headers, the page's <html lang>.

    The page itself is not kept (an application page may carry tokens): the scanner keeps the root
    element's language only. A refused connection is a value (nothing listens), not an error.
    """

    kind: ClassVar[str] = "web"
    origin: ClassVar[Literal["host", "scanner"]] = "scanner"
    keeps_body: ClassVar[bool] = False

    def script(self) -> str:
        kept = "the page" if self.keeps_body else "the root <html> lang of the page (not the page)"
        return (
            f"(scanner) HTTP GET {self.arg} with Accept-Language: {ACCEPT_LANGUAGE}, following up to 5 "
            f"redirects, certificates not verified; keeps status, Location, Strict-Transport-Security, "
            f"Content-Language, Content-Type and {kept}"
        )

    def parse(self, capture: Capture) -> WebReport:
        return _from_json(self, capture, _web_report)

    def describe(self) -> str:
        return f"web response of {self.arg}"


@dataclass(frozen=True)
class WebPage(WebResponse):
    """Like :class:`WebResponse`, keeping the page (capped): for public pages whose text is judged."""

    kind: ClassVar[str] = "web-page"
    keeps_body: ClassVar[bool] = True

    def describe(self) -> str:
        return f"web page {self.arg}"


def _tls_report(data: dict[str, Any]) -> TlsReport:
    default = data["default"]
    return TlsReport(
        endpoint=data["endpoint"],
        versions={v: _handshake(data["versions"][v]) for v in VERSIONS},
        rsa_key_exchange=_handshake(data[RSA_KEY_EXCHANGE]),
        non_aead=_handshake(data[NON_AEAD]),
        negotiated_version=default.get("version"),
        negotiated_cipher=default.get("cipher"),
        chain=tuple(_certificate(der) for der in default.get("chain", [])),
        chain_error=str(default.get("error") or ""),
    )


def _trust_report(data: dict[str, Any]) -> TrustReport:
    code = data.get("verify_code")
    return TrustReport(
        endpoint=data["endpoint"],
        trust_store=data["trust_store"],
        verified=bool(data["verified"]),
        verify_code=int(code) if code is not None else None,
        detail=str(data.get("detail") or ""),
    )


def _web_report(data: dict[str, Any]) -> WebReport:
    hops = tuple(_hop(h) for h in data["hops"])
    if not hops:
        raise ValueError("no response recorded")
    body = data.get("body")
    return WebReport(
        url=data["url"],
        hops=hops,
        html_lang=data.get("html_lang"),
        body=str(body) if body is not None else None,
        body_truncated=bool(data.get("body_truncated", False)),
    )


def _handshake(raw: dict[str, Any]) -> Handshake:
    accepted = raw["accepted"]
    if accepted not in (True, False, None):
        raise ValueError(f"accepted is {accepted!r}")
    return Handshake(
        offered=bool(raw["offered"]),
        accepted=accepted,
        version=raw.get("version"),
        cipher=raw.get("cipher"),
        detail=str(raw.get("detail") or ""),
    )


def _hop(raw: dict[str, Any]) -> Hop:
    status = raw.get("status")
    return Hop(
        url=str(raw["url"]),
        status=int(status) if status is not None else None,
        location=raw.get("location"),
        hsts=tuple(str(v) for v in raw.get("hsts", [])),
        content_language=raw.get("content_language"),
        content_type=raw.get("content_type"),
        error=raw.get("error"),
        refused=bool(raw.get("refused", False)),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _certificate(der_b64: str) -> Certificate:
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(der_b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a served certificate does not decode: {exc}") from exc
    key = cert.public_key()
    curve = None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    else:
        key_type, bits = type(key).__name__, 0
    try:
        digest = cert.signature_hash_algorithm
        signature_hash = digest.name if digest is not None else None
    except UnsupportedAlgorithm:
        signature_hash = "unknown"
    oid = cert.signature_algorithm_oid
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [
            *san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        ]
    except x509.ExtensionNotFound:
        pass
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=tuple(names),
        key_type=key_type,
        key_bits=bits,
        curve=curve,
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string,
        signature_hash=signature_hash,
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(cert.not_valid_after_utc),
        self_issued=cert.subject == cert.issuer,
    )
