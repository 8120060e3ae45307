"""TLS endpoints a host serves (its inventory ``tls_endpoints``), judged as the scanning machine saw them.

Every check judges every endpoint of the host and names each one in its message. What an endpoint accepts
comes from handshakes that offer one protocol version, or one family of suites, at a time (see
:mod:`hds_compliance.collect.tls`): a server that negotiates TLS 1.3 with a modern client may still accept
TLS 1.0 or RSA key exchange from a client that offers only those, and that is what an attacker offers.
Certificate expiry is judged against the time of collection (``ctx.clock()``), so evaluating the same
captures later gives the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urljoin

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    HostInfo,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.facts import Fact
from hds_compliance.facts.tls import (
    VERSIONS,
    Certificate,
    Endpoint,
    Handshake,
    Hop,
    TlsEndpoint,
    TlsReport,
    TlsTrust,
    WebResponse,
    parse_endpoint,
)

P = TypeVar("P", bound=Params)

# A judgement of one endpoint: (holds, what was found, naming the endpoint).
Judgement = tuple[bool, str]


def _listed(host: HostInfo) -> list[Endpoint]:
    """The host's endpoints, malformed entries left out (the inventory refuses them)."""
    out: list[Endpoint] = []
    for value in host.tls_endpoints:
        try:
            out.append(parse_endpoint(value))
        except ValueError:
            continue
    return out


def endpoints(host: HostInfo) -> list[Endpoint]:
    """The endpoints to judge; a control of TLS endpoints on a host that lists none cannot be judged."""
    found = _listed(host)
    if len(found) != len(host.tls_endpoints):
        bad = [v for v in host.tls_endpoints if v not in {e.url or e.address for e in found}]
        raise FactUnavailable(f"tls_endpoints of {host.name} has malformed entries: {bad}")
    if not found:
        raise FactUnavailable(
            f"the inventory lists no tls_endpoints for {host.name}: nothing to connect to "
            "(list its TLS services as 'host:port' or 'https://host/path' in its host data)"
        )
    return found


def addresses(host: HostInfo) -> list[str]:
    """Distinct ``host:port`` of the host's endpoints, in inventory order."""
    return list(dict.fromkeys(e.address for e in _listed(host)))


def web_urls(host: HostInfo) -> list[Endpoint]:
    """The endpoints given as https URLs (web interfaces), one per URL."""
    return list({e.url: e for e in _listed(host) if e.url is not None}.values())


def judge_each(items: list[str], judge: Callable[[str], Judgement]) -> Outcome:
    """Pass when every item holds; fail naming those that do not (and those that could not be judged)."""
    holds: list[str] = []
    fails: list[str] = []
    unknown: list[str] = []
    for item in items:
        try:
            ok, found = judge(item)
        except FactUnavailable as exc:
            unknown.append(str(exc))
            continue
        (holds if ok else fails).append(found)
    if fails:
        tail = f" (not judged: {'; '.join(unknown)})" if unknown else ""
        return failed("; ".join(fails) + tail)
    if unknown:
        raise FactUnavailable("; ".join(unknown))
    return passed("; ".join(holds))


def _tls(host: HostInfo) -> list[Fact[Any]]:
    return [TlsEndpoint(a) for a in addresses(host)]


def _name(version: str) -> str:
    """``TLSv1`` -> ``TLS 1.0``, ``TLSv1.2`` -> ``TLS 1.2``."""
    return "TLS 1.0" if version == "TLSv1" else version.replace("TLSv", "TLS ")


def _report(ctx: Context, address: str) -> TlsReport:
    return ctx.get(TlsEndpoint(address))


# ----------------------------------------------------------------------------------------- protocols


class MinVersionParams(Params):
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        description="oldest protocol version an endpoint may accept (older ones are tried one by one)"
    )


@check("tls.no_legacy_protocols", params=MinVersionParams, host_facts=lambda p, h: _tls(h))
def tls_no_legacy_protocols(p: MinVersionParams, ctx: Context) -> Outcome:
    """No endpoint accepts a protocol version older than the minimum (TLS 1.0 and 1.1 are refused)."""
    endpoints(ctx.host)
    older = VERSIONS[: VERSIONS.index(p.min_version)]
    newer = VERSIONS[VERSIONS.index(p.min_version) :]

    def judge(address: str) -> Judgement:
        report = _report(ctx, address)
        accepted = [v for v in older if report.versions[v].accepted]
        if accepted:
            how = ", ".join(f"{_name(v)} ({report.versions[v].cipher})" for v in accepted)
            usual = f"; a default client negotiates {_name(report.negotiated_version or '?')}"
            return False, f"{address} accepts {how} when a client offers only that{usual}"
        _known(address, older, report)
        good = [v for v in newer if report.versions[v].accepted]
        if not good:
            _known(address, newer, report)
            return False, f"{address} accepts none of {', '.join(map(_name, newer))}"
        refused = ", ".join(map(_name, older)) or "nothing older"
        return True, f"{address} refuses {refused} and accepts {', '.join(map(_name, good))}"

    return judge_each(addresses(ctx.host), judge)


def _known(address: str, versions: tuple[str, ...], report: TlsReport) -> None:
    unknown = [v for v in versions if report.versions[v].accepted is None]
    if unknown:
        why = "; ".join(f"{_name(v)}: {report.versions[v].detail}" for v in unknown)
        raise FactUnavailable(f"{address}: cannot tell whether it accepts {why}")


@check("tls.tls13_accepted", host_facts=lambda p, h: _tls(h))
def tls_tls13_accepted(p: NoParams, ctx: Context) -> Outcome:
    """Every endpoint accepts TLS 1.3, the version ANSSI prefers."""
    endpoints(ctx.host)

    def judge(address: str) -> Judgement:
        report = _report(ctx, address)
        _known(address, ("TLSv1.3",), report)
        probe = report.versions["TLSv1.3"]
        if not probe.accepted:
            return False, f"{address} refuses TLS 1.3 ({probe.detail or 'no ServerHello'})"
        return True, f"{address} accepts TLS 1.3 ({probe.cipher})"

    return judge_each(addresses(ctx.host), judge)


def _refuses_restricted_offer(ctx: Context, probe_of: Callable[[TlsReport], Handshake], what: str) -> Outcome:
    """Every endpoint refused the handshake that offered only ``what`` (``probe_of`` picks it)."""
    endpoints(ctx.host)

    def judge(address: str) -> Judgement:
        report = _report(ctx, address)
        probe = probe_of(report)
        if not probe.offered or probe.accepted is None:
            raise FactUnavailable(f"{address}: cannot tell whether it accepts {what}: {probe.detail}")
        if probe.accepted:
            version = _name(probe.version or "?")
            return False, f"{address} accepts {probe.cipher} over {version} when a client offers only {what}"
        return True, f"{address} refuses {what}; negotiates {report.negotiated_cipher}"

    return judge_each(addresses(ctx.host), judge)


@check("tls.forward_secrecy_required", host_facts=lambda p, h: _tls(h))
def tls_forward_secrecy_required(p: NoParams, ctx: Context) -> Outcome:
    """No endpoint accepts a key exchange without forward secrecy (RSA key transport, TLS 1.0 to 1.2)."""
    return _refuses_restricted_offer(
        ctx, lambda r: r.rsa_key_exchange, "RSA key exchange suites (no forward secrecy)"
    )


@check("tls.aead_ciphers_only", host_facts=lambda p, h: _tls(h))
def tls_aead_ciphers_only(p: NoParams, ctx: Context) -> Outcome:
    """No endpoint accepts a suite without authenticated encryption (CBC, RC4, NULL, CCM_8)."""
    return _refuses_restricted_offer(ctx, lambda r: r.non_aead, "suites without AEAD (CBC, RC4, NULL, CCM_8)")


# -------------------------------------------------------------------------------------- certificates


def _chain(ctx: Context, address: str) -> tuple[Certificate, ...]:
    report = _report(ctx, address)
    if not report.chain:
        raise FactUnavailable(f"{address}: no certificate recorded ({report.chain_error})")
    return report.chain


def _role(index: int, cert: Certificate) -> str:
    if index == 0:
        return "leaf"
    return "root (served)" if cert.self_issued else f"CA #{index}"


class KeyParams(Params):
    rsa_min_bits: int = Field(ge=1024, description="smallest RSA (or DSA) modulus, in bits")
    ec_min_bits: int = Field(default=256, ge=160, description="smallest elliptic-curve key, in bits")


@check("tls.certificate_key_strong", params=KeyParams, host_facts=lambda p, h: _tls(h))
def tls_certificate_key_strong(p: KeyParams, ctx: Context) -> Outcome:
    """Every certificate an endpoint serves has an RSA key of the minimum size or more, or an EC/EdDSA key."""
    endpoints(ctx.host)

    def weak(cert: Certificate) -> bool:
        if cert.key_type in ("RSA", "DSA"):
            return cert.key_bits < p.rsa_min_bits
        if cert.key_type == "EC":
            return cert.key_bits < p.ec_min_bits
        return cert.key_type not in ("Ed25519", "Ed448")

    def describe(index: int, cert: Certificate) -> str:
        curve = f" {cert.curve}" if cert.curve else ""
        return f"{_role(index, cert)} {cert.key_type}{curve} {cert.key_bits} bits"

    def judge(address: str) -> Judgement:
        chain = _chain(ctx, address)
        bad = [describe(i, c) for i, c in enumerate(chain) if weak(c)]
        if bad:
            floor = f"RSA at least {p.rsa_min_bits} bits, EC at least {p.ec_min_bits}"
            return False, f"{address} serves {', '.join(bad)} ({floor})"
        return True, f"{address} serves {', '.join(describe(i, c) for i, c in enumerate(chain))}"

    return judge_each(addresses(ctx.host), judge)


_SHA2 = ("sha256", "sha384", "sha512", "sha512-256", "sha3-256", "sha3-384", "sha3-512")


@check("tls.certificate_signed_with_sha2", host_facts=lambda p, h: _tls(h))
def tls_certificate_signed_with_sha2(p: NoParams, ctx: Context) -> Outcome:
    """Every certificate a client verifies is signed with SHA-2 (256 bits or more) or EdDSA.

    A self-issued certificate served after the leaf is a trust anchor: clients take it from their own
    store and never check its signature, so a SHA-1 self-signature there is not a weakness.
    """
    endpoints(ctx.host)

    def judge(address: str) -> Judgement:
        chain = _chain(ctx, address)
        checked = [(i, c) for i, c in enumerate(chain) if i == 0 or not c.self_issued]
        bad = [
            f"{_role(i, c)} {c.subject} signed with {c.signature_algorithm}"
            for i, c in checked
            if c.signature_hash is not None and c.signature_hash not in _SHA2
        ]
        if bad:
            return False, f"{address}: {'; '.join(bad)}"
        signed = ", ".join(f"{_role(i, c)} {c.signature_algorithm}" for i, c in checked)
        anchors = len(chain) - len(checked)
        note = f" ({anchors} served root not judged: clients do not check its signature)" if anchors else ""
        return True, f"{address}: {signed}{note}"

    return judge_each(addresses(ctx.host), judge)


class ExpiryParams(Params):
    days: int = Field(ge=0, description="fewest days the certificate must still be valid after the scan")


@check("tls.certificate_not_expiring", params=ExpiryParams, host_facts=lambda p, h: _tls(h))
def tls_certificate_not_expiring(p: ExpiryParams, ctx: Context) -> Outcome:
    """Every endpoint's certificate is valid when scanned and for at least the given number of days after."""
    endpoints(ctx.host)
    now = ctx.clock()

    def judge(address: str) -> Judgement:
        leaf = _chain(ctx, address)[0]
        expires, starts = leaf.expires(), leaf.starts()
        if starts > now:
            return False, f"{address}: certificate {leaf.subject} is not valid before {leaf.not_before}"
        left = expires - now
        if left < timedelta(0):
            return (
                False,
                f"{address}: certificate {leaf.subject} expired on {leaf.not_after}, before the scan",
            )
        if left < timedelta(days=p.days):
            return False, (
                f"{address}: certificate {leaf.subject} expires on {leaf.not_after}, {left.days} days after "
                f"the scan (fewer than {p.days})"
            )
        return True, f"{address}: certificate valid until {leaf.not_after}, {left.days} days after the scan"

    return judge_each(addresses(ctx.host), judge)


class TrustParams(Params):
    ca_file: str = Field(
        default="",
        description="CA file on the scanning machine trusted instead of its system store ('': system store)",
    )


@check(
    "tls.certificate_trusted",
    params=TrustParams,
    host_facts=lambda p, h: [TlsTrust.of(a, p.ca_file) for a in addresses(h)],
)
def tls_certificate_trusted(p: TrustParams, ctx: Context) -> Outcome:
    """Every endpoint's chain verifies, for the endpoint's name, against the trust store clients use."""
    endpoints(ctx.host)

    def judge(address: str) -> Judgement:
        trust = ctx.get(TlsTrust.of(address, p.ca_file))
        if trust.verified:
            return True, f"{address}: {trust.detail} against the {trust.trust_store}"
        code = f" (verify code {trust.verify_code})" if trust.verify_code is not None else ""
        return False, f"{address}: {trust.detail}{code} against the {trust.trust_store}"

    return judge_each(addresses(ctx.host), judge)


# ---------------------------------------------------------------------------------------------- HTTPS


def _https(host: HostInfo) -> list[Fact[Any]]:
    return [WebResponse(e.url) for e in web_urls(host) if e.url]


def _web_endpoints(ctx: Context) -> list[Endpoint] | Outcome:
    """The host's https URLs, or the not-applicable outcome when it lists only ``host:port`` endpoints."""
    endpoints(ctx.host)
    urls = web_urls(ctx.host)
    if not urls:
        return not_applicable(f"no https:// URL among the tls_endpoints of {ctx.host.name}: no web interface")
    return urls


class HstsParams(Params):
    min_max_age: int = Field(ge=1, description="smallest HSTS max-age, in seconds")
    include_subdomains: bool = Field(default=False, description="also require includeSubDomains")


def parse_hsts(value: str) -> dict[str, str | None]:
    """Directives of one Strict-Transport-Security field (RFC 6797 6.1); ValueError if browsers ignore it.

    Names are case-insensitive, values tokens or quoted strings; a directive given twice, or a missing
    or non-numeric max-age, makes the whole field invalid.
    """
    directives: dict[str, str | None] = {}
    for part in value.split(";"):
        name, sep, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in directives:
            raise ValueError(f"directive {name} appears twice")
        text = raw.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        directives[name] = text if sep else None
    age = directives.get("max-age")
    if age is None or not age.isdigit():
        raise ValueError("no numeric max-age directive")
    return directives


@check("tls.hsts_enabled", params=HstsParams, host_facts=lambda p, h: _https(h))
def tls_hsts_enabled(p: HstsParams, ctx: Context) -> Outcome:
    """Every https URL answers with a valid Strict-Transport-Security header of a long enough max-age."""
    urls = _web_endpoints(ctx)
    if isinstance(urls, Outcome):
        return urls

    def judge(url: str) -> Judgement:
        first = _first_hop(ctx, url)
        if not first.hsts:
            return False, f"GET {url} answers {first.status} without a Strict-Transport-Security header"
        extra = f" ({len(first.hsts)} fields: browsers read only the first)" if len(first.hsts) > 1 else ""
        try:
            directives = parse_hsts(first.hsts[0])
        except ValueError as exc:
            return False, f"{url}: Strict-Transport-Security {first.hsts[0]!r} is ignored by browsers: {exc}"
        age = int(directives["max-age"] or 0)
        if age < p.min_max_age:
            return False, f"{url}: HSTS max-age={age}, below {p.min_max_age} seconds{extra}"
        if p.include_subdomains and "includesubdomains" not in directives:
            return False, f"{url}: HSTS max-age={age} without includeSubDomains{extra}"
        return True, f"{url}: HSTS {first.hsts[0]!r}{extra}"

    return judge_each([e.url for e in urls if e.url], judge)


def _first_hop(ctx: Context, url: str) -> Hop:
    first = ctx.get(WebResponse(url)).hops[0]
    if first.status is None:
        raise FactUnavailable(f"GET {url}: {first.error}")
    return first


_REDIRECTS = (301, 302, 303, 307, 308)


@check(
    "tls.http_redirects_to_https",
    host_facts=lambda p, h: [WebResponse(e.http_url) for e in web_urls(h) if e.http_url],
)
def tls_http_redirects_to_https(p: NoParams, ctx: Context) -> Outcome:
    """A browser asking for an https URL in plain HTTP (port 80) is redirected to https, never served."""
    urls = _web_endpoints(ctx)
    if isinstance(urls, Outcome):
        return urls

    def judge(url: str) -> Judgement:
        first = ctx.get(WebResponse(url)).hops[0]
        if first.refused:
            return True, f"{url}: connection refused, nothing is served in plain HTTP there"
        if first.status is None:
            raise FactUnavailable(f"GET {url}: {first.error}")
        if first.status not in _REDIRECTS or not first.location:
            return False, f"{url} answers {first.status} in plain HTTP instead of redirecting to https"
        target = urljoin(url, first.location)
        if not target.startswith("https://"):
            return False, f"{url} redirects ({first.status}) to {target}, not to https"
        return True, f"{url} redirects ({first.status}) to {target}"

    return judge_each([e.http_url for e in urls if e.http_url], judge)
