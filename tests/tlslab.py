"""TLS and HTTP servers on loopback (127.0.16.x, ports 443 and 80) with certificates the tests make.

Every scenario is a real server: Python's ssl (OpenSSL 3) serving a certificate made with ``cryptography``
(SHA-1 signatures, which ``cryptography`` refuses to make, are re-signed with the ``openssl`` command),
limited to the protocol versions and suites the scenario names, and answering HTTP requests from a route
table. Each scenario has its own address, so it can listen on the standard ports.

``python tests/tlslab.py`` records tests/captures/tls.yaml and the fixtures of the tls, tls-trust, web and
web-page fact kinds from these servers, through the real collectors.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import platform
import re
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hds_compliance.check import Check, HostInfo, Params, registry
from hds_compliance.collect.network import collect_network
from hds_compliance.evidence.redact import redact
from hds_compliance.facts import KINDS, FactError
from hds_compliance.model import Capture

NET = "127.0.16"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# ---------------------------------------------------------------------------------------- certificates


def new_key(kind: str) -> PrivateKey:
    """``rsa1024``, ``rsa2048`` or ``p256``."""
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa")))


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Issued:
    """A certificate and its key, written to files."""

    cert: x509.Certificate
    key: PrivateKey
    cert_file: Path
    key_file: Path


class Pki:
    """A test CA (RSA 2048, SHA-256) and the certificates it issues, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.root = self.issue("root", "hds-test root CA", new_key("rsa2048"), ca=True, days=(-30, 3650))

    @property
    def ca_file(self) -> Path:
        """The root certificate, to trust."""
        return self.root.cert_file

    def issue(
        self,
        name: str,
        common_name: str,
        key: PrivateKey,
        *,
        issuer: Issued | None = None,
        ca: bool = False,
        days: tuple[int, int] = (-1, 365),
        names: tuple[str, ...] = (),
        sha1: bool = False,
    ) -> Issued:
        """A certificate for ``key`` signed by ``issuer`` (self-signed if None), valid ``days`` around now."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        # openssl re-signs (SHA-1) only a self-signed certificate: make it one first.
        signer = issuer.key if issuer and not sha1 else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer and not sha1 else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + dt.timedelta(days=days[0]))
            .not_valid_after(self.now + dt.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
        cert = builder.sign(signer, hashes.SHA256())
        cert_file, key_file = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)
        if sha1:
            cert = self._resign_sha1(cert_file, issuer, key_file)
        return Issued(cert, key, cert_file, key_file)

    def _resign_sha1(self, cert_file: Path, issuer: Issued | None, key_file: Path) -> x509.Certificate:
        # cryptography refuses to make SHA-1 signatures: the openssl command re-signs, keeping the rest.
        sign = (
            ["-CA", str(issuer.cert_file), "-CAkey", str(issuer.key_file), "-set_serial", "7"]
            if issuer
            else ["-key", str(key_file)]
        )
        done = subprocess.run(
            [
                "openssl",
                "x509",
                "-in",
                str(cert_file),
                *sign,
                "-sha1",
                "-preserve_dates",
                "-out",
                str(cert_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"openssl x509 could not re-sign {cert_file} with SHA-1: {done.stderr}")
        return x509.load_pem_x509_certificate(cert_file.read_bytes())

    def chain_file(self, name: str, *certs: Issued) -> Path:
        """The certificates as a server sends them, leaf first."""
        path = self.dir / f"{name}.chain.pem"
        path.write_bytes(b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in certs))
        return path


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


# --------------------------------------------------------------------------------------------- servers


@dataclass
class Page:
    """One HTTP answer."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""


Route = Page | Callable[[BaseHTTPRequestHandler], Page]


def html(lang: str | None, text: str, head: str = "") -> str:
    """A small page whose root element declares ``lang`` (none when None)."""
    attr = f' lang="{lang}"' if lang is not None else ""
    return (
        f'<!DOCTYPE html>\n<html{attr}><head><meta charset="utf-8">{head}</head><body>{text}</body></html>\n'
    )


def page(
    lang: str | None = "fr", text: str = "<p>Bonjour</p>", headers: list[tuple[str, str]] | None = None
) -> Page:
    """An HTML page (status 200)."""
    return Page(200, [("Content-Type", "text/html; charset=utf-8"), *(headers or [])], html(lang, text))


def redirect(location: str, status: int = 301) -> Page:
    """A redirect."""
    return Page(status, [("Location", location), ("Content-Type", "text/html")], "<p>moved</p>")


class _Handler(BaseHTTPRequestHandler):
    server: Site

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?")[0]) or self.server.routes.get("*")
        answer = route if isinstance(route, Page) or route is None else route(self)
        answer = answer or Page(404, [("Content-Type", "text/html")], html("fr", "<p>Introuvable</p>"))
        body = answer.body.encode("utf-8")
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Site(ThreadingHTTPServer):
    """An HTTP server, over TLS when given a context; the TLS handshake happens in the request's thread."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], routes: dict[str, Route], tls: ssl.SSLContext | None
    ) -> None:
        self.routes = routes
        self.tls = tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(5)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except OSError:  # the scanner's probes end most handshakes on purpose
                return
        with suppress(OSError):
            super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def server_context(
    chain: Path,
    key: Path,
    *,
    versions: tuple[str, str] = ("TLSv1.2", "TLSv1.3"),
    suites: str = "ECDHE+AESGCM:ECDHE+CHACHA20",
    client_ca: Path | None = None,
) -> ssl.SSLContext:
    """A server context serving ``chain`` limited to ``versions`` (inclusive) and TLS 1.2 ``suites``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(f"{suites}:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion[versions[0].replace(".", "_").replace("TLSv1_0", "TLSv1")]
        context.maximum_version = ssl.TLSVersion[versions[1].replace(".", "_").replace("TLSv1_0", "TLSv1")]
    context.load_cert_chain(chain, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


@contextmanager
def serving(
    address: str, port: int, routes: dict[str, Route], tls: ssl.SSLContext | None = None
) -> Iterator[Site]:
    """Run a site on ``address:port`` until the block ends."""
    site = Site((address, port), routes, tls)
    thread = threading.Thread(target=site.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()
        thread.join(5)


def port_free(address: str, port: int) -> bool:
    """Whether this process may listen on ``address:port`` (root for ports below 1024, nobody else there)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is fine
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


# ------------------------------------------------------------------------------------------- scenarios

# Scenario name -> last byte of its address (each listens on 127.0.16.<n>:443, some also on :80).
HOSTS = {
    "good": 1,
    "ecdsa": 2,
    "legacy": 3,
    "tls10_only": 4,
    "tls11_only": 5,
    "rsa_kx": 6,
    "cbc": 7,
    "sha1_root": 8,
    "expired": 9,
    "near_expiry": 10,
    "self_signed": 11,
    "wrong_name": 12,
    "mtls_legacy": 13,
    "web_plain": 14,
    "web_variants": 15,
    "web_no80": 16,
    "lang": 17,
    "transparency": 18,
}
UNUSED = f"{NET}.99"  # nothing listens there


def addr(scenario: str) -> str:
    """The address of a scenario's servers."""
    return f"{NET}.{HOSTS[scenario]}"


def url(scenario: str, path: str = "/") -> str:
    """The https URL of a scenario's site."""
    return f"https://{addr(scenario)}{path}"


HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
TRANSPARENCY_PAGES = {
    "/transparence": (
        "<h1>Transparence sur les transferts</h1><p>Conformément au référentiel HDS, aucune donnée de santé "
        "à caractère personnel n’est transférée hors de l’Espace\u00a0économique européen.</p>"
    ),
    "/english": "<p>No personal health data is transferred outside the European Economic Area.</p>",
    "/transferts": (
        "<h1>Transferts hors EEE</h1><table><tr><th>Pays</th><th>Données transférées ou accessibles</th>"
        "<th>Garanties</th></tr><tr><td>Suisse</td><td>Accès de support niveau 3</td>"
        "<td>Décision d’adéquation (art. 45)</td></tr></table>"
    ),
    "/commentaire": (
        "<!-- Aucune donnée de santé n'est transférée hors de l'EEE. --><p>Page en construction.</p>"
        "<script>var s = \"aucune donnée n'est transférée hors de l'EEE\";</script>"
    ),
    "/mention-seule": "<p>Nos données sont hébergées en France. Transferts hors EEE : voir le contrat.</p>",
}


def _negotiated(handler: BaseHTTPRequestHandler) -> Page:
    wanted = handler.headers.get("Accept-Language", "")
    french = any(part.strip().lower().startswith("fr") for part in wanted.split(","))
    return page("fr" if french else "en", "<p>Bonjour</p>" if french else "<p>Hello</p>", [HSTS])


def _hsts(value: str, *more: str) -> Page:
    return page("fr", headers=[("Strict-Transport-Security", v) for v in (value, *more)])


class Lab:
    """Every scenario's servers, started on entry, stopped on exit."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.stack = ExitStack()

    def __enter__(self) -> Lab:
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _tls(
        self,
        scenario: str,
        routes: dict[str, Route],
        context: ssl.SSLContext,
        http: dict[str, Route] | None = None,
    ) -> None:
        self.stack.enter_context(serving(addr(scenario), 443, routes, context))
        if http is not None:
            self.stack.enter_context(serving(addr(scenario), 80, http))

    def _leaf(self, scenario: str, key: str = "rsa2048", **kw: Any) -> Issued:
        names = kw.pop("names", (addr(scenario),))
        return self.pki.issue(
            scenario, f"{scenario}.hds.test", new_key(key), issuer=self.inter, names=names, **kw
        )

    def _context(self, leaf: Issued, *, chain: tuple[Issued, ...] | None = None, **kw: Any) -> ssl.SSLContext:
        certs = chain if chain is not None else (leaf, self.inter)
        return server_context(self.pki.chain_file(leaf.cert_file.stem, *certs), leaf.key_file, **kw)

    def _start(self) -> None:
        pki = self.pki
        self.inter = pki.issue(
            "intermediate",
            "hds-test intermediate CA",
            new_key("rsa2048"),
            issuer=pki.root,
            ca=True,
            days=(-30, 1825),
        )
        site = {"*": page("fr", headers=[HSTS])}
        good = self._leaf("good")
        to_https: Route = lambda h: redirect(f"https://{addr('good')}{h.path}")  # noqa: E731
        self._tls("good", site, self._context(good), http={"*": to_https})
        self._tls("ecdsa", site, self._context(self._leaf("ecdsa", "p256"), versions=("TLSv1.3", "TLSv1.3")))
        legacy = "ECDHE+AESGCM:ECDHE+AES"
        self._tls(
            "legacy",
            site,
            self._context(self._leaf("legacy"), versions=("TLSv1.0", "TLSv1.3"), suites=legacy),
        )
        weak = self._leaf("tls10_only", "rsa1024", sha1=True)
        self._tls("tls10_only", site, self._context(weak, versions=("TLSv1.0", "TLSv1.0"), suites=legacy))
        self._tls(
            "tls11_only",
            site,
            self._context(self._leaf("tls11_only"), versions=("TLSv1.1", "TLSv1.1"), suites=legacy),
        )
        self._tls(
            "rsa_kx", site, self._context(self._leaf("rsa_kx"), suites="ECDHE+AESGCM:AES256-GCM-SHA384")
        )
        self._tls("cbc", site, self._context(self._leaf("cbc"), suites="ECDHE+AESGCM:ECDHE-RSA-AES128-SHA"))
        old_root = pki.issue(
            "sha1_root_ca", "hds-test SHA-1 root", new_key("rsa2048"), ca=True, days=(-30, 3650), sha1=True
        )
        under_old = pki.issue(
            "sha1_root", "sha1-root.hds.test", new_key("rsa2048"), issuer=old_root, names=(addr("sha1_root"),)
        )
        self._tls("sha1_root", site, self._context(under_old, chain=(under_old, old_root)))
        self._tls("expired", site, self._context(self._leaf("expired", days=(-60, -2))))
        self._tls("near_expiry", site, self._context(self._leaf("near_expiry", days=(-60, 10))))
        alone = pki.issue(
            "self_signed", "self-signed.hds.test", new_key("rsa2048"), names=(addr("self_signed"),)
        )
        self._tls("self_signed", site, self._context(alone, chain=(alone,)))
        self._tls("wrong_name", site, self._context(self._leaf("wrong_name", names=("other.hds.test",))))
        self._tls(
            "mtls_legacy",
            site,
            self._context(
                self._leaf("mtls_legacy"),
                versions=("TLSv1.0", "TLSv1.2"),
                suites=legacy,
                client_ca=pki.ca_file,
            ),
        )
        # (mtls_legacy stops at TLS 1.2: handshakes fail after the server's certificate, as in TLS 1.2 mTLS.)
        # HSTS sent only in plain HTTP, where browsers ignore it; port 80 serves the page itself.
        plain_hsts = {"*": page("fr", headers=[HSTS])}
        self._tls("web_plain", {"*": page("fr")}, self._context(self._leaf("web_plain")), http=plain_hsts)
        variants: dict[str, Route] = {
            "/short": _hsts("max-age=300"),
            "/zero": _hsts("max-age=0"),
            "/dup": _hsts("max-age=31536000; max-age=31536000"),
            "/quoted": _hsts('Max-Age="63072000"; includeSubDomains'),
            "/second": _hsts("max-age=300", "max-age=63072000"),
            "/nosub": _hsts("max-age=63072000"),
        }
        back_to_http = f"http://{addr('web_variants')}/?next=https://{addr('web_variants')}/"
        self._tls(
            "web_variants",
            variants,
            self._context(self._leaf("web_variants")),
            http={"*": redirect(back_to_http)},
        )
        self._tls("web_no80", site, self._context(self._leaf("web_no80")))
        langs: dict[str, Route] = {
            "/en": page("en", "<p>Hello</p>", [HSTS]),
            "/frr": page("frr", "<p>Moin</p>", [HSTS]),
            "/fr-FR": page("fr-FR", headers=[HSTS]),
            "/negotiated": _negotiated,
            "/header": Page(
                200,
                [("Content-Type", "text/html"), ("Content-Language", "fr"), HSTS],
                html(None, "<p>Bonjour</p>"),
            ),
            "/english-header": Page(
                200,
                [("Content-Type", "text/html"), ("Content-Language", "en"), HSTS],
                html(None, "<p>Hi</p>"),
            ),
            "/api": Page(200, [("Content-Type", "application/json"), HSTS], '{"status": "ok"}'),
            "/login-redirect": redirect("/fr-FR", 302),
        }
        self._tls("lang", langs, self._context(self._leaf("lang")))
        pages: dict[str, Route] = {
            path: page("fr", text, [HSTS]) for path, text in TRANSPARENCY_PAGES.items()
        }
        self._tls("transparency", pages, self._context(self._leaf("transparency")))


def can_run() -> str | None:
    """Why the lab cannot run here (None when it can): it listens on ports 443 and 80 of 127.0.16.x."""
    for scenario in HOSTS:
        for port in (443, 80):
            if not port_free(addr(scenario), port):
                return f"cannot listen on {addr(scenario)}:{port} (needs root, and nothing else there)"
    return None


# ----------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """A check judged against the lab: the host's tls_endpoints, parameters ("{ca}": the lab's CA file)."""

    check: str
    name: str
    endpoints: tuple[str, ...]
    expect: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def resolved(self, ca_file: str) -> dict[str, Any]:
        """The parameters with the lab's CA file put in."""
        return {k: ca_file if v == "{ca}" else v for k, v in self.params.items()}


MIN12 = {"min_version": "TLSv1.2"}
KEYS = {"rsa_min_bits": 2048, "ec_min_bits": 256}
YEAR = {"min_max_age": 31536000}
GOOD = (url("good"),)

CASES = [
    Case("tls.no_legacy_protocols", "TLS 1.2 and 1.3 only", GOOD, "pass", "refuses TLS 1.0, TLS 1.1", MIN12),
    Case(
        "tls.no_legacy_protocols",
        "TLS 1.3 only, minimum TLS 1.3",
        (f"{addr('ecdsa')}:443",),
        "pass",
        "accepts TLS 1.3",
        {"min_version": "TLSv1.3"},
    ),
    Case(
        "tls.no_legacy_protocols",
        "negotiates TLS 1.3 but accepts TLS 1.0 alone",
        (url("legacy"),),
        "fail",
        "accepts TLS 1.0",
        MIN12,
    ),
    Case(
        "tls.no_legacy_protocols",
        "TLS 1.0 only",
        (f"{addr('tls10_only')}:443",),
        "fail",
        "accepts TLS 1.0",
        MIN12,
    ),
    Case(
        "tls.no_legacy_protocols",
        "TLS 1.1 only",
        (f"{addr('tls11_only')}:443",),
        "fail",
        "accepts TLS 1.1",
        MIN12,
    ),
    Case(
        "tls.no_legacy_protocols",
        "client certificate required, TLS 1.0 accepted",
        (url("mtls_legacy"),),
        "fail",
        "accepts TLS 1.0",
        MIN12,
    ),
    Case(
        "tls.no_legacy_protocols",
        "TLS 1.2 accepted under a TLS 1.3 minimum",
        GOOD,
        "fail",
        "accepts TLS 1.2",
        {"min_version": "TLSv1.3"},
    ),
    Case(
        "tls.no_legacy_protocols",
        "one good endpoint and one legacy",
        (*GOOD, url("legacy")),
        "fail",
        f"{addr('legacy')}:443 accepts TLS 1.0",
        MIN12,
    ),
    Case("tls.tls13_accepted", "TLS 1.3 accepted", GOOD, "pass", "accepts TLS 1.3"),
    Case("tls.tls13_accepted", "TLS 1.1 only", (f"{addr('tls11_only')}:443",), "fail", "refuses TLS 1.3"),
    Case("tls.forward_secrecy_required", "ECDHE only", GOOD, "pass", "refuses RSA key exchange suites"),
    Case(
        "tls.forward_secrecy_required",
        "prefers ECDHE but accepts RSA key exchange",
        (url("rsa_kx"),),
        "fail",
        "accepts AES256-GCM-SHA384 over TLS 1.2",
    ),
    Case("tls.aead_ciphers_only", "AES-GCM and ChaCha20 only", GOOD, "pass", "refuses suites without AEAD"),
    Case(
        "tls.aead_ciphers_only",
        "CBC suite accepted besides GCM",
        (url("cbc"),),
        "fail",
        "accepts ECDHE-RSA-AES128-SHA",
    ),
    Case("tls.certificate_key_strong", "RSA 2048 leaf and CA", GOOD, "pass", "leaf RSA 2048 bits", KEYS),
    Case(
        "tls.certificate_key_strong",
        "ECDSA P-256 leaf",
        (f"{addr('ecdsa')}:443",),
        "pass",
        "leaf EC secp256r1 256 bits",
        KEYS,
    ),
    Case(
        "tls.certificate_key_strong",
        "RSA 1024 leaf",
        (f"{addr('tls10_only')}:443",),
        "fail",
        "leaf RSA 1024 bits",
        KEYS,
    ),
    Case(
        "tls.certificate_key_strong",
        "RSA 2048 under a 3072 minimum",
        GOOD,
        "fail",
        "leaf RSA 2048 bits",
        {"rsa_min_bits": 3072},
    ),
    Case("tls.certificate_signed_with_sha2", "SHA-256 chain", GOOD, "pass", "leaf sha256WithRSAEncryption"),
    Case(
        "tls.certificate_signed_with_sha2",
        "SHA-1 signed leaf",
        (f"{addr('tls10_only')}:443",),
        "fail",
        "signed with sha1WithRSAEncryption",
    ),
    Case(
        "tls.certificate_signed_with_sha2",
        "SHA-1 self-signed root served",
        (url("sha1_root"),),
        "pass",
        "1 served root not judged",
    ),
    Case(
        "tls.certificate_not_expiring", "valid for a year", GOOD, "pass", "days after the scan", {"days": 30}
    ),
    Case(
        "tls.certificate_not_expiring",
        "expires in 10 days",
        (url("near_expiry"),),
        "fail",
        "days after the scan (fewer than 30)",
        {"days": 30},
    ),
    Case(
        "tls.certificate_not_expiring",
        "expires in 10 days, 5 days asked",
        (url("near_expiry"),),
        "pass",
        "days after the scan",
        {"days": 5},
    ),
    Case(
        "tls.certificate_not_expiring", "expired", (url("expired"),), "fail", "before the scan", {"days": 30}
    ),
    Case(
        "tls.certificate_trusted",
        "chain to the lab CA",
        GOOD,
        "pass",
        "verified for 127.0.16.1",
        {"ca_file": "{ca}"},
    ),
    Case(
        "tls.certificate_trusted",
        "lab CA unknown to the system store",
        GOOD,
        "fail",
        "unable to get local issuer certificate",
        {"ca_file": ""},
    ),
    Case(
        "tls.certificate_trusted",
        "self-signed",
        (url("self_signed"),),
        "fail",
        "self-signed certificate",
        {"ca_file": "{ca}"},
    ),
    Case(
        "tls.certificate_trusted",
        "trusted CA, other name",
        (url("wrong_name"),),
        "fail",
        "mismatch",
        {"ca_file": "{ca}"},
    ),
    Case(
        "tls.certificate_trusted",
        "expired",
        (url("expired"),),
        "fail",
        "certificate has expired",
        {"ca_file": "{ca}"},
    ),
    Case(
        "tls.certificate_trusted",
        "client certificate required",
        (url("mtls_legacy"),),
        "pass",
        "the handshake then failed",
        {"ca_file": "{ca}"},
    ),
    Case("tls.hsts_enabled", "two years with includeSubDomains", GOOD, "pass", "max-age=63072000", YEAR),
    Case(
        "tls.hsts_enabled",
        "HSTS only in plain HTTP",
        (url("web_plain"),),
        "fail",
        "without a Strict-Transport-Security header",
        YEAR,
    ),
    Case(
        "tls.hsts_enabled",
        "five minutes",
        (url("web_variants", "/short"),),
        "fail",
        "max-age=300, below 31536000",
        YEAR,
    ),
    Case("tls.hsts_enabled", "max-age=0", (url("web_variants", "/zero"),), "fail", "max-age=0, below", YEAR),
    Case(
        "tls.hsts_enabled",
        "max-age given twice",
        (url("web_variants", "/dup"),),
        "fail",
        "appears twice",
        YEAR,
    ),
    Case(
        "tls.hsts_enabled",
        "quoted value, directive in capitals",
        (url("web_variants", "/quoted"),),
        "pass",
        "63072000",
        YEAR,
    ),
    Case(
        "tls.hsts_enabled",
        "short first field, long second one",
        (url("web_variants", "/second"),),
        "fail",
        "browsers read only the first",
        YEAR,
    ),
    Case(
        "tls.hsts_enabled",
        "includeSubDomains required",
        (url("web_variants", "/nosub"),),
        "fail",
        "without includeSubDomains",
        {**YEAR, "include_subdomains": True},
    ),
    Case(
        "tls.hsts_enabled",
        "host:port endpoints only",
        (f"{addr('ecdsa')}:443",),
        "not_applicable",
        "no https:// URL",
        YEAR,
    ),
    Case(
        "tls.http_redirects_to_https", "301 to https", GOOD, "pass", "redirects (301) to https://127.0.16.1/"
    ),
    Case(
        "tls.http_redirects_to_https",
        "page served in plain HTTP",
        (url("web_plain"),),
        "fail",
        "answers 200 in plain HTTP",
    ),
    Case(
        "tls.http_redirects_to_https",
        "redirect to http with https in the query",
        (url("web_variants", "/short"),),
        "fail",
        "not to https",
    ),
    Case(
        "tls.http_redirects_to_https", "nothing on port 80", (url("web_no80"),), "pass", "connection refused"
    ),
    Case(
        "web.interface_in_french",
        "lang fr-FR",
        (url("lang", "/fr-FR"),),
        "pass",
        'declares French: <html lang="fr-FR">',
    ),
    Case("web.interface_in_french", "lang en", (url("lang", "/en"),), "fail", '<html lang="en">'),
    Case(
        "web.interface_in_french",
        "lang frr (North Frisian)",
        (url("lang", "/frr"),),
        "fail",
        '<html lang="frr">',
    ),
    Case(
        "web.interface_in_french",
        "French to a French browser, English otherwise",
        (url("lang", "/negotiated"),),
        "pass",
        'lang="fr"',
    ),
    Case(
        "web.interface_in_french",
        "Content-Language only",
        (url("lang", "/header"),),
        "pass",
        "Content-Language: fr",
    ),
    Case(
        "web.interface_in_french",
        "Content-Language en only",
        (url("lang", "/english-header"),),
        "fail",
        "Content-Language: en",
    ),
    Case(
        "web.interface_in_french",
        "redirect to the login page",
        (url("lang", "/login-redirect"),),
        "pass",
        "(page https://127.0.16.17/fr-FR)",
    ),
    Case(
        "web.interface_in_french",
        "JSON API only",
        (url("lang", "/api"),),
        "not_applicable",
        "no HTML interface",
    ),
    Case(
        "web.transparency_page_published",
        "French statement",
        GOOD,
        "pass",
        "states that nothing leaves the EEA",
        {"url": url("transparency", "/transparence")},
    ),
    Case(
        "web.transparency_page_published",
        "English statement",
        GOOD,
        "pass",
        "no personal health data is transferred",
        {"url": url("transparency", "/english")},
    ),
    Case(
        "web.transparency_page_published",
        "transfer table",
        GOOD,
        "pass",
        "transfer table of 1 rows",
        {"url": url("transparency", "/transferts")},
    ),
    Case(
        "web.transparency_page_published",
        "statement only in a comment and a script",
        GOOD,
        "fail",
        "states neither",
        {"url": url("transparency", "/commentaire")},
    ),
    Case(
        "web.transparency_page_published",
        "mentions transfers, states nothing",
        GOOD,
        "fail",
        "states neither",
        {"url": url("transparency", "/mention-seule")},
    ),
    Case(
        "web.transparency_page_published",
        "page missing",
        GOOD,
        "fail",
        "answers 404",
        {"url": url("transparency", "/absente")},
    ),
]


# ------------------------------------------------------------------------------- collection, recording

TIMEOUT = 5.0


def host_of(case: Case) -> HostInfo:
    """An inventory host (role web) serving the case's endpoints."""
    return HostInfo(name="web1", connector="ssh", roles=("web",), tls_endpoints=case.endpoints)


def planned(case: Case, ca_file: str) -> tuple[Check[Any], Params, HostInfo]:
    """The check, its validated parameters and the host of a case."""
    spec = registry()[case.check]
    return spec, spec.validate(case.resolved(ca_file)), host_of(case)


def collect_cases(cases: list[Case], ca_file: str, timeout: float = TIMEOUT) -> dict[str, Capture]:
    """Captures of every fact the cases plan, each collected once, through the scan's collectors (redacted
    as a scan stores them)."""
    facts = {}
    for number, item in enumerate(cases):
        spec, params, host = planned(item, ca_file)
        facts[str(number)] = spec.facts_for(params, host)
    return {c.fact: redact(c) for found in collect_network(facts, timeout, 20).values() for c in found}


RECORD_DIR = Path("/tmp/hds-tls-lab")  # the CA file path recorded in captures and fixtures
HERE = Path(__file__).parent
# Fixtures of the fact kinds: (kind, argument, fixture name).
FIXTURES = [
    ("tls", f"{NET}.1:443", "tls12_tls13_rsa2048"),
    ("tls", f"{NET}.4:443", "tls10_only_rsa1024_sha1"),
    ("tls", f"{NET}.13:443", "client_certificate_required"),
    ("tls", f"{NET}.99:443", "nothing_listening"),
    ("tls-trust", f"{NET}.1:443 ca={RECORD_DIR}/root.pem", "verified"),
    ("tls-trust", f"{NET}.11:443 ca={RECORD_DIR}/root.pem", "self_signed"),
    ("tls-trust", f"{NET}.1:443", "system_store"),
    ("web", f"http://{NET}.1/", "redirect_to_https"),
    ("web", f"http://{NET}.16/", "refused"),
    ("web", f"https://{NET}.17/negotiated", "negotiated_language"),
    ("web-page", f"https://{NET}.18/transparence", "statement"),
]


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "|\n" + "".join(f"{pad}{line}\n" for line in text.splitlines())


def _anchor(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key).strip("_")


def record() -> None:
    """Record tests/captures/tls.yaml and the fixtures of the tls, tls-trust, web and web-page kinds."""
    import shutil

    import yaml
    from fact_fixtures import dump_capture, plain

    shutil.rmtree(RECORD_DIR, ignore_errors=True)
    pki = Pki(RECORD_DIR)
    with Lab(pki):
        clock = dt.datetime.now(dt.UTC).replace(microsecond=0)
        captures = collect_cases(CASES, str(pki.ca_file))
        extra = {f"{k}:{a}": KINDS[k](a) for k, a, _ in FIXTURES}
        found = collect_network({"fixtures": list(extra.values())}, TIMEOUT, 20)["fixtures"]
    when = clock.isoformat().replace("+00:00", "Z")
    versions = f"{ssl.OPENSSL_VERSION}, Python {platform.python_version()}"
    source = f"this Debian 12 VM ({versions}), servers of tests/tlslab.py, {when}"
    used: dict[str, None] = {}
    cases = []
    for item in CASES:
        spec, params, host = planned(item, str(pki.ca_file))
        keys = [f.key for f in spec.facts_for(params, host)]
        used.update(dict.fromkeys(keys))
        cases.append((item, params, keys))
    out = [
        "# Captures for the tls.* and web.* checks, RECORDED on this Debian 12 VM (python tests/tlslab.py):",
        f"# {source}.",
        "# The scanner-side collectors (hds_compliance/collect/tls.py) ran against real TLS/HTTP servers on",
        "# 127.0.16.x:443/80 (Python ssl with certificates made by cryptography, SHA-1 ones re-signed by the",
        "# openssl command), exactly as a scan runs them; `now` is the time of that collection.",
        "recorded:",
    ]
    for key in used:
        fields = dump_capture(captures[key])
        out.append(f"  {_anchor(key)}: &{_anchor(key)}")
        out.append(f"    exit_code: {fields['exit_code']}")
        out.append(f"    stdout: {_block(fields['stdout'], 6).rstrip()}")
    out.append("cases:")
    for item, params, keys in cases:
        out.append(f"  - check: {item.check}")
        out.append(f"    name: {json.dumps(item.name)}")
        if item.params:
            out.append(f"    params: {json.dumps(params.model_dump(), ensure_ascii=False)}")
        out.append(f"    host: {json.dumps({'roles': ['web'], 'tls_endpoints': list(item.endpoints)})}")
        out.append(f'    now: "{when}"')
        out.append("    captures:")
        out += [f"      {json.dumps(k)}: *{_anchor(k)}" for k in keys]
        out.append(f"    expect: {item.expect}")
        out.append(f"    message: {json.dumps(item.message)}")
    (HERE / "captures" / "tls.yaml").write_text("\n".join(out) + "\n")
    for (kind, arg, name), capture in zip(FIXTURES, found, strict=True):
        fact = KINDS[kind](arg)
        data: dict[str, Any] = {"arg": arg, "source": source, "command": fact.script()}
        data["capture"] = dump_capture(capture) | ({"problem": capture.problem} if capture.problem else {})
        try:
            data["value"] = plain(fact.parse(capture))
        except FactError as exc:  # the fixture holds a regex: the message up to its first special character
            data["error"] = re.split(r"[][(){}*+?^$|\\]", str(exc))[0]
        path = HERE / "facts" / kind / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.dump(data, sort_keys=False, allow_unicode=True, width=110))
        print(path)


if __name__ == "__main__":
    record()
