"""Collectors of the TLS and web facts: the scanning machine connects to the endpoint as a client would.

Each handshake offers a restricted protocol version or set of suites; what the server accepted is read
from its ServerHello (through the ssl module's message callback), not from whether the whole handshake
succeeded: an endpoint that requires a client certificate still *accepts* TLS 1.0 if it answers a TLS 1.0
ClientHello with a TLS 1.0 ServerHello, then aborts for want of a certificate. The certificates are those
of the server's Certificate message, in the order it sent them.

A collector never raises for a network failure: an endpoint that refuses the connection or times out is
a capture with a ``problem`` (an ``error`` verdict). Only a refused HTTP connection is a value (see
:class:`~hds_compliance.facts.tls.WebResponse`): on port 80 it says that nothing answers in clear text.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from hds_compliance.collect.network import COLLECTORS
from hds_compliance.facts import Fact
from hds_compliance.facts.tls import (
    ACCEPT_LANGUAGE,
    NON_AEAD,
    RSA_KEY_EXCHANGE,
    VERSIONS,
    TlsEndpoint,
    TlsTrust,
    WebPage,
    WebResponse,
    split_address,
)
from hds_compliance.model import Capture

_TLS_VERSION = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_WIRE_VERSION = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
# Everything this OpenSSL knows, at security level 0 (Debian's default level 2 would not even offer
# TLS 1.0, SHA-1 signatures or small keys, and would then report the server as refusing them).
_EVERY_SUITE = "ALL:@SECLEVEL=0"
_RSA_KEY_EXCHANGE_SUITES = "kRSA:@SECLEVEL=0"
# Not AEAD (CBC, RC4, NULL...) or AEAD with a truncated tag (CCM_8): what ANSSI TLS R10 excludes.
_NON_AEAD_SUITES = "ALL:eNULL:-AESGCM:-AESCCM:-CHACHA20:-ARIAGCM:AESCCM8:@SECLEVEL=0"

_HANDSHAKE = 22
_SERVER_HELLO = 2
_CERTIFICATE = 11
_SUPPORTED_VERSIONS = 43

_MAX_REDIRECTS = 5
_LANG_BYTES = 256 * 1024  # of a page read to find its <html lang>
_PAGE_BYTES = 1024 * 1024  # of a public page kept whole


class _Unreachable(Exception):
    """The TCP connection to the endpoint could not be made."""


@dataclass
class _Seen:
    """What one handshake attempt showed: the messages exchanged and how it ended."""

    hello_sent: bool = False
    server_version: str | None = None
    server_cipher: int | None = None
    certificates: list[bytes] = field(default_factory=list)
    completed: bool = False
    timed_out: bool = False
    verify_code: int | None = None
    error: str = ""

    def callback(
        self, _conn: Any, direction: str, _version: Any, content_type: Any, msg_type: Any, data: bytes
    ) -> None:
        """ssl message callback: note our ClientHello, the ServerHello and the server's Certificate."""
        if int(content_type) != _HANDSHAKE or not data:
            return
        try:
            if direction == "write" and data[0] == 1:
                self.hello_sent = True
            elif direction == "read" and data[0] == _SERVER_HELLO:
                self.server_version, self.server_cipher = _server_hello(data)
            elif direction == "read" and data[0] == _CERTIFICATE:
                self.certificates = _certificate_list(data, tls13=self.server_version == "TLSv1.3")
        except (IndexError, ValueError):  # a malformed message: OpenSSL itself will reject it
            pass


def _server_hello(message: bytes) -> tuple[str, int]:
    body = message[4:]
    version = int.from_bytes(body[0:2], "big")
    at = 34
    at += 1 + body[at]  # session id
    cipher = int.from_bytes(body[at : at + 2], "big")
    at += 3  # cipher suite, compression method
    if at + 2 <= len(body):
        end = at + 2 + int.from_bytes(body[at : at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(body[at : at + 2], "big")
            size = int.from_bytes(body[at + 2 : at + 4], "big")
            if kind == _SUPPORTED_VERSIONS and size == 2:
                version = int.from_bytes(body[at + 4 : at + 6], "big")
            at += 4 + size
    return _WIRE_VERSION.get(version, f"0x{version:04x}"), cipher


def _certificate_list(message: bytes, *, tls13: bool) -> list[bytes]:
    body = message[4:]
    at = 1 + body[0] if tls13 else 0  # TLS 1.3: certificate_request_context first
    end = at + 3 + int.from_bytes(body[at : at + 3], "big")
    at += 3
    out = []
    while at + 3 <= end:
        size = int.from_bytes(body[at : at + 3], "big")
        out.append(bytes(body[at + 3 : at + 3 + size]))
        at += 3 + size
        if tls13:
            at += 2 + int.from_bytes(body[at : at + 2], "big")  # per-certificate extensions
    return out


# catch_warnings() swaps the process's filter list: collectors run in threads, so one at a time.
_WARNINGS = threading.Lock()


@contextmanager
def _quiet_legacy_versions() -> Iterator[None]:
    # Offering TLS 1.0/1.1 is the point of these probes; the ssl module warns about it.
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _client(low: str, high: str, suites: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _limit(context, low, high, suites)
    return context


def _limit(context: ssl.SSLContext, low: str, high: str, suites: str) -> None:
    context.set_ciphers(suites)
    with _quiet_legacy_versions():
        context.minimum_version = _TLS_VERSION[low]
        context.maximum_version = _TLS_VERSION[high]


def _attempt(host: str, port: int, timeout: float, context: ssl.SSLContext) -> _Seen:
    """One handshake; raises :class:`_Unreachable` if the TCP connection fails."""
    seen = _Seen()
    context._msg_callback = seen.callback  # type: ignore[attr-defined]
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise _Unreachable(f"cannot connect to {host}:{port}: {_reason(exc)}") from exc
    with sock:
        try:
            with context.wrap_socket(sock, server_hostname=host):
                seen.completed = True
        except TimeoutError:
            seen.timed_out, seen.error = True, "timed out during the handshake"
        except ssl.SSLCertVerificationError as exc:
            seen.verify_code, seen.error = exc.verify_code, exc.verify_message or _reason(exc)
        except OSError as exc:  # ssl.SSLError, a reset or a closed connection: the server said no
            seen.error = _reason(exc)
    return seen


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _cipher_names(context: ssl.SSLContext) -> dict[int, str]:
    return {c["id"] & 0xFFFF: c["name"] for c in context.get_ciphers()}


def _probe(host: str, port: int, timeout: float, low: str, high: str, suites: str) -> dict[str, Any]:
    """Whether the server accepts a ClientHello offering only ``low``..``high`` and ``suites``."""
    try:
        context = _client(low, high, suites)
    except (ssl.SSLError, ValueError) as exc:
        return {"offered": False, "accepted": None, "detail": f"this scanner cannot offer it: {_reason(exc)}"}
    try:
        seen = _attempt(host, port, timeout, context)
    except _Unreachable as exc:
        return {"offered": True, "accepted": None, "detail": str(exc)}
    if not seen.hello_sent:
        return {"offered": False, "accepted": None, "detail": f"this scanner cannot offer it: {seen.error}"}
    if seen.server_version is not None and seen.server_cipher is not None:
        span = VERSIONS[VERSIONS.index(low) : VERSIONS.index(high) + 1]
        accepted = seen.server_version in span
        out: dict[str, Any] = {"offered": True, "accepted": accepted, "version": seen.server_version}
        if accepted:
            out["cipher"] = _cipher_names(context).get(seen.server_cipher, f"0x{seen.server_cipher:04x}")
        else:
            out["detail"] = f"the server answered with {seen.server_version}"
        if seen.error and accepted:
            out["detail"] = f"accepted, then the handshake failed: {seen.error}"
        return out
    if seen.timed_out:
        return {"offered": True, "accepted": None, "detail": seen.error}
    return {"offered": True, "accepted": False, "detail": seen.error or "no ServerHello"}


def collect_tls(fact: Fact[Any], timeout: float) -> Capture:
    """Versions, key exchange, suites and certificate chain of a ``host:port`` TLS endpoint."""
    host, port = split_address(fact.arg)
    lowest, highest = VERSIONS[0], VERSIONS[-1]
    context = _client(lowest, highest, _EVERY_SUITE)
    try:
        seen = _attempt(host, port, timeout, context)
    except _Unreachable as exc:
        return _problem(fact, str(exc))
    if seen.timed_out and seen.server_version is None:
        return _problem(fact, f"{fact.arg}: {seen.error}")
    default: dict[str, Any] = {
        "version": seen.server_version,
        "cipher": _cipher_names(context).get(seen.server_cipher or -1),
        "chain": [base64.b64encode(der).decode("ascii") for der in seen.certificates],
    }
    if not seen.certificates:
        default["error"] = seen.error or "the server sent no certificate"
    report = {
        "endpoint": fact.arg,
        "scanner": ssl.OPENSSL_VERSION,
        "default": default,
        "versions": {v: _probe(host, port, timeout, v, v, _EVERY_SUITE) for v in VERSIONS},
        RSA_KEY_EXCHANGE: _probe(host, port, timeout, lowest, "TLSv1.2", _RSA_KEY_EXCHANGE_SUITES),
        NON_AEAD: _probe(host, port, timeout, lowest, "TLSv1.2", _NON_AEAD_SUITES),
    }
    return _capture(fact, report)


def collect_tls_trust(fact: Fact[Any], timeout: float) -> Capture:
    """Whether the endpoint's chain and name verify against the system store or a CA file."""
    assert isinstance(fact, TlsTrust)
    host, port = split_address(fact.address)
    if fact.ca_file:
        try:
            context = ssl.create_default_context(cafile=fact.ca_file)
        except (OSError, ssl.SSLError) as exc:
            return _problem(fact, f"CA file {fact.ca_file} on the scanning machine: {_reason(exc)}")
        store = f"CA file {fact.ca_file}"
    else:
        context = ssl.create_default_context()
        paths = ssl.get_default_verify_paths()
        store = f"system store of the scanning machine ({paths.cafile or paths.capath})"
    # Level 0 so that old versions and weak keys still reach verification: those are judged elsewhere.
    _limit(context, VERSIONS[0], VERSIONS[-1], _EVERY_SUITE)
    try:
        seen = _attempt(host, port, timeout, context)
    except _Unreachable as exc:
        return _problem(fact, str(exc))
    report: dict[str, Any] = {"endpoint": fact.address, "trust_store": store, "verify_code": seen.verify_code}
    if seen.completed:
        report |= {"verified": True, "detail": f"verified for {host}"}
    elif seen.verify_code is not None:
        report |= {"verified": False, "detail": seen.error}
    elif seen.certificates and not seen.timed_out:
        # The client verifies the chain as soon as it reads it: a later failure (a client certificate
        # required) comes after a successful verification.
        report |= {
            "verified": True,
            "detail": f"verified for {host}; the handshake then failed: {seen.error}",
        }
    else:
        return _problem(fact, f"{fact.address}: no certificate to verify ({seen.error})")
    return _capture(fact, report)


class _LangFinder(HTMLParser):
    """The lang (or xml:lang) attribute of the root <html> element, if the page starts with one."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        self.done = True
        if tag == "html":
            values = dict(attrs)
            self.lang = values.get("lang", values.get("xml:lang"))


def html_lang(page: str) -> str | None:
    """The language the root element of ``page`` declares (None when it declares none)."""
    finder = _LangFinder()
    finder.feed(page)
    return finder.lang


def _charset(content_type: str | None, head: bytes) -> str:
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    found = re.search(rb"charset=[\"']?([A-Za-z0-9_.:-]+)", head[:1024])
    return found.group(1).decode("ascii") if found else "utf-8"


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _get(url: str, timeout: float, cap: int) -> tuple[dict[str, Any], bytes | None]:
    """One GET without following redirects: the hop as recorded, and the page when it is HTML.

    http.client rather than requests: every Strict-Transport-Security field stays separate, no proxy or
    .netrc from the environment applies, and certificates go unverified without process-wide warning
    filters (trust is the TLS facts' business).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = _client(VERSIONS[0], VERSIONS[-1], _EVERY_SUITE)
        connection = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout, context=context)
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    else:
        return {"url": url, "status": None, "error": f"not an http(s) URL: {url}"}, None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": "hds-compliance", "Accept-Language": ACCEPT_LANGUAGE, "Accept": "text/html, */*"}
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        hop: dict[str, Any] = {
            "url": url,
            "status": response.status,
            "location": response.getheader("Location"),
            "hsts": response.msg.get_all("Strict-Transport-Security") or [],
            "content_language": response.getheader("Content-Language"),
            "content_type": response.getheader("Content-Type"),
        }
        kind = (hop["content_type"] or "").lower()
        page = None
        if not 300 <= response.status < 400 and ("html" in kind or not kind):
            page = response.read(cap + 1)
        return hop, page
    except ConnectionRefusedError:
        return {"url": url, "status": None, "refused": True, "error": "connection refused"}, None
    except (OSError, http.client.HTTPException) as exc:
        return {"url": url, "status": None, "error": f"{type(exc).__name__}: {_reason(exc)}"}, None
    finally:
        connection.close()


def _collect_web(fact: Fact[Any], timeout: float) -> Capture:
    """A GET of the fact's URL, following redirects; the page kept only for web-page facts."""
    keep = isinstance(fact, WebPage)
    cap = _PAGE_BYTES if keep else _LANG_BYTES
    hops: list[dict[str, Any]] = []
    page: bytes | None = None
    url = fact.arg
    for _ in range(_MAX_REDIRECTS + 1):
        hop, page = _get(url, timeout, cap)
        hops.append(hop)
        if hop["status"] is None or not 300 <= hop["status"] < 400 or not hop["location"]:
            break
        url = urljoin(url, hop["location"])
    first = hops[0]
    if first["status"] is None and not first.get("refused"):
        return _problem(fact, f"GET {fact.arg}: {first['error']}")
    report: dict[str, Any] = {"url": fact.arg, "hops": hops, "html_lang": None}
    if page is not None:
        text = _decode(page[:cap], _charset(hops[-1]["content_type"], page))
        report["html_lang"] = html_lang(text)
        if keep:
            report |= {"body": text, "body_truncated": len(page) > cap}
    return _capture(fact, report)


def _capture(fact: Fact[Any], report: dict[str, Any]) -> Capture:
    return Capture(
        fact=fact.key, command=fact.script(), exit_code=0, stdout=json.dumps(report, indent=1, sort_keys=True)
    )


def _problem(fact: Fact[Any], why: str) -> Capture:
    return Capture(fact=fact.key, command=fact.script(), complete=False, problem=why)


COLLECTORS.update(
    {
        TlsEndpoint.kind: collect_tls,
        TlsTrust.kind: collect_tls_trust,
        WebResponse.kind: _collect_web,
        WebPage.kind: _collect_web,
    }
)
