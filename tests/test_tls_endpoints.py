"""TLS and web checks judged against real servers on loopback (tests/tlslab.py: 127.0.16.x, ports 443/80).

Every case of ``tlslab.CASES`` is collected through the real scanner-side collectors (the ones a scan
uses) and evaluated the way the engine does; then an inventory host is scanned end to end. The named
tests below are the behaviours where a verdict read from a default handshake, a header text or a page
text would be wrong.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tlslab

from hds_compliance.catalog import load_catalog
from hds_compliance.check import Context, FactUnavailable, registry
from hds_compliance.checks.tls import parse_hsts
from hds_compliance.checks.web import no_transfer_statement
from hds_compliance.collect import CollectOptions
from hds_compliance.evaluate import evaluate
from hds_compliance.facts.tls import TlsEndpoint, TlsReport, TlsTrust, WebResponse, parse_endpoint
from hds_compliance.inventory import load_inventory
from hds_compliance.model import Capture, Status
from hds_compliance.scan import scan

REGISTRY = registry()
TIMEOUT = 5.0


@dataclass
class Collected:
    """The lab's PKI, every capture the cases need (by fact key), and when collection started."""

    pki: tlslab.Pki
    captures: dict[str, Capture]
    clock: datetime


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    """Every scenario's servers, up for the module, and the captures of every case."""
    why = tlslab.can_run()
    if why:
        pytest.skip(why)
    pki = tlslab.Pki(tmp_path_factory.mktemp("pki"))
    with tlslab.Lab(pki):
        clock = datetime.now(UTC)
        yield Collected(pki, tlslab.collect_cases(tlslab.CASES, str(pki.ca_file)), clock)


def judge(case: tlslab.Case, lab: Collected, clock: datetime | None = None) -> tuple[Status, str]:
    """The verdict of a case on the lab's captures, as the evaluator computes it."""
    spec, params, host = tlslab.planned(case, str(lab.pki.ca_file))
    declared = spec.facts_for(params, host)
    captures = {f.key: lab.captures[f.key] for f in declared}
    ctx = Context(host, captures, frozenset(captures), now=clock or lab.clock)
    try:
        outcome = spec.func(params, ctx)
    except FactUnavailable as exc:
        return Status.ERROR, str(exc)
    return outcome.status, outcome.message


def case(name: str, check: str | None = None) -> tlslab.Case:
    """The case of that name (and check)."""
    return next(c for c in tlslab.CASES if c.name == name and (check is None or c.check == check))


def report(lab: Collected, scenario: str) -> TlsReport:
    """The parsed TLS fact of a scenario's endpoint."""
    fact = TlsEndpoint(f"{tlslab.addr(scenario)}:443")
    return fact.parse(lab.captures[fact.key])


@pytest.mark.parametrize("item", tlslab.CASES, ids=[f"{c.check}: {c.name}" for c in tlslab.CASES])
def test_case_against_real_servers(item: tlslab.Case, lab: Collected) -> None:
    status, message = judge(item, lab)
    assert status.value == item.expect, message
    assert item.message.lower() in message.lower(), message


def test_every_tls_and_web_check_passes_and_fails_against_real_servers() -> None:
    ids = {k for k in REGISTRY if k.startswith(("tls.", "web."))}
    for check_id in ids:
        outcomes = {c.expect for c in tlslab.CASES if c.check == check_id}
        assert {"pass", "fail"} <= outcomes, check_id


# ------------------------------------------------------------------------------ verdicts that are true


def test_tls10_found_although_a_default_client_negotiates_tls13(lab: Collected) -> None:
    """Case "negotiates TLS 1.3 but accepts TLS 1.0 alone": one default handshake says TLS 1.3 and would
    pass; offering TLS 1.0 alone shows the server accepts it."""
    seen = report(lab, "legacy")
    assert seen.negotiated_version == "TLSv1.3"
    assert seen.versions["TLSv1"].accepted is True
    status, message = judge(case("negotiates TLS 1.3 but accepts TLS 1.0 alone"), lab)
    assert status is Status.FAIL and "a default client negotiates TLS 1.3" in message


def test_version_accepted_by_a_server_that_then_wants_a_client_certificate(lab: Collected) -> None:
    """Case "client certificate required, TLS 1.0 accepted": every TLS 1.0-1.2 handshake fails for want of a
    client certificate, so "did the handshake succeed" says TLS 1.0 is refused; the ServerHello says
    it was accepted."""
    seen = report(lab, "mtls_legacy")
    assert seen.versions["TLSv1"].accepted is True
    assert "then the handshake failed" in seen.versions["TLSv1"].detail
    assert judge(case("client certificate required, TLS 1.0 accepted"), lab)[0] is Status.FAIL
    assert judge(case("client certificate required"), lab)[0] is Status.PASS  # its chain did verify


def test_rsa_key_exchange_found_although_ecdhe_is_negotiated(lab: Collected) -> None:
    """Case "prefers ECDHE but accepts RSA key exchange": the negotiated suite is forward-secret, the
    server still accepts RSA key transport from a client offering only that."""
    seen = report(lab, "rsa_kx")
    assert seen.negotiated_cipher is not None and seen.negotiated_cipher.startswith("TLS_")
    assert seen.versions["TLSv1.2"].cipher is not None and "ECDHE" in seen.versions["TLSv1.2"].cipher
    assert judge(case("prefers ECDHE but accepts RSA key exchange"), lab)[0] is Status.FAIL


def test_ecdsa_p256_key_is_strong_though_shorter_than_2048_bits(lab: Collected) -> None:
    """Case "ECDSA P-256 leaf": a bare "key bits >= 2048" fails a 256-bit EC key that ANSSI accepts."""
    leaf = report(lab, "ecdsa").chain[0]
    assert (leaf.key_type, leaf.key_bits) == ("EC", 256)
    assert judge(case("ECDSA P-256 leaf"), lab)[0] is Status.PASS


def test_sha1_self_signature_of_a_served_root_is_not_judged(lab: Collected) -> None:
    """Case "SHA-1 self-signed root served": "sha1" appears in the chain, but only in the root's
    self-signature, which clients never verify; a SHA-1 signed leaf fails."""
    chain = report(lab, "sha1_root").chain
    assert chain[-1].self_issued and chain[-1].signature_hash == "sha1"
    assert judge(case("SHA-1 self-signed root served"), lab)[0] is Status.PASS
    assert judge(case("SHA-1 signed leaf"), lab)[0] is Status.FAIL


def test_expiry_is_judged_at_the_collection_time(lab: Collected) -> None:
    """Case "valid for a year": the same captures judged with a clock a year later fail; the verdict
    follows the recorded collection time, never the wall clock of the evaluation."""
    valid = case("valid for a year")
    assert judge(valid, lab)[0] is Status.PASS
    status, message = judge(valid, lab, lab.clock + timedelta(days=400))
    assert status is Status.FAIL and "before the scan" in message


def test_hsts_sent_only_in_plain_http_does_not_count(lab: Collected) -> None:
    """Case "HSTS only in plain HTTP": the header is there, on port 80, where browsers ignore it."""
    plain = WebResponse(f"http://{tlslab.addr('web_plain')}/")
    [plain_case] = [c for c in tlslab.CASES if c.name == "page served in plain HTTP"]
    assert plain.key in {
        f.key
        for f in REGISTRY[plain_case.check].facts_for(
            REGISTRY[plain_case.check].validate({}), tlslab.host_of(plain_case)
        )
    }
    assert plain.parse(lab.captures[plain.key]).hops[0].hsts == (tlslab.HSTS[1],)
    assert judge(case("HSTS only in plain HTTP"), lab)[0] is Status.FAIL


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("max-age given twice", Status.FAIL),  # "max-age=31536000" is in the text, the field is invalid
        ("short first field, long second one", Status.FAIL),  # the long value is in the text, unread
        ("quoted value, directive in capitals", Status.PASS),  # no "max-age=6..." in the text
        ("max-age=0", Status.FAIL),
    ],
)
def test_hsts_is_read_as_browsers_read_it(name: str, expect: Status, lab: Collected) -> None:
    """Cases of tls.hsts_enabled where a search for max-age=<long> in the header text is wrong."""
    assert judge(case(name, "tls.hsts_enabled"), lab)[0] is expect


def test_redirect_to_http_with_https_in_the_query_fails(lab: Collected) -> None:
    """Case "redirect to http with https in the query": "https://" is in the Location, the target is http."""
    status, message = judge(case("redirect to http with https in the query"), lab)
    assert status is Status.FAIL and "?next=https://" in message


def test_language_is_the_primary_subtag_of_the_root_element(lab: Collected) -> None:
    """Cases "lang frr (North Frisian)" (starts with "fr", is not French), "lang fr-FR" (French),
    "French to a French browser, English otherwise" (negotiated with Accept-Language)."""
    assert judge(case("lang frr (North Frisian)"), lab)[0] is Status.FAIL
    assert judge(case("lang fr-FR"), lab)[0] is Status.PASS
    assert judge(case("French to a French browser, English otherwise"), lab)[0] is Status.PASS


def test_transparency_statement_must_be_visible(lab: Collected) -> None:
    """Cases "statement only in a comment and a script" (the words are in the HTML, no visitor sees them)
    and "mentions transfers, states nothing" ("hors EEE" is in the text, no statement is)."""
    assert judge(case("statement only in a comment and a script"), lab)[0] is Status.FAIL
    assert judge(case("mentions transfers, states nothing"), lab)[0] is Status.FAIL


# ------------------------------------------------------------------------------------ never a silent pass


def test_unreachable_and_silent_endpoints_are_errors(lab: Collected) -> None:
    """Nothing listening (connection refused), then a listener that never answers (timeout)."""
    endpoint = f"{tlslab.UNUSED}:443"
    unreachable = tlslab.Case(
        "tls.no_legacy_protocols", "x", (endpoint,), "error", "", {"min_version": "TLSv1.2"}
    )
    captures = tlslab.collect_cases([unreachable], "", timeout=1.0)
    assert "cannot connect" in (captures[f"tls:{endpoint}"].problem or "")
    with socket.socket() as silent:
        silent.bind((tlslab.UNUSED, 443))
        silent.listen(8)  # the kernel completes TCP connections; nobody ever answers the ClientHello
        timed = tlslab.collect_cases([unreachable], "", timeout=1.0)
    assert "timed out" in (timed[f"tls:{endpoint}"].problem or "")
    for got in (captures, timed):
        spec, params, host = tlslab.planned(unreachable, "")
        ctx = Context(host, got, frozenset(got), now=lab.clock)
        with pytest.raises(FactUnavailable):
            spec.func(params, ctx)


def test_trust_store_is_named_in_the_capture(lab: Collected) -> None:
    """The system store or the CA file the chain was verified against is part of the evidence."""
    with_ca = TlsTrust.of(f"{tlslab.addr('good')}:443", str(lab.pki.ca_file))
    system = TlsTrust.of(f"{tlslab.addr('good')}:443", "")
    assert with_ca.parse(lab.captures[with_ca.key]).trust_store == f"CA file {lab.pki.ca_file}"
    assert system.parse(lab.captures[system.key]).trust_store.startswith(
        "system store of the scanning machine"
    )


# --------------------------------------------------------------------------------------- the scan path

EXPECTED_SCAN = {
    ("TLS-01", "tls.no_legacy_protocols"): (Status.FAIL, f"{tlslab.addr('legacy')}:443 accepts TLS 1.0"),
    ("TLS-02", "tls.tls13_accepted"): (Status.PASS, "accepts TLS 1.3"),
    ("TLS-03", "tls.forward_secrecy_required"): (Status.PASS, "refuses RSA key exchange suites"),
    ("TLS-03", "tls.aead_ciphers_only"): (Status.FAIL, f"{tlslab.addr('legacy')}:443 accepts"),
    ("TLS-04", "tls.certificate_key_strong"): (Status.PASS, "EC secp256r1 256 bits"),
    ("TLS-04", "tls.certificate_signed_with_sha2"): (Status.PASS, "sha256WithRSAEncryption"),
    ("TLS-05", "tls.certificate_not_expiring"): (Status.PASS, "days after the scan"),
    ("TLS-05", "tls.certificate_trusted"): (Status.PASS, "verified for 127.0.16.3"),
    ("TLS-06", "tls.http_redirects_to_https"): (Status.PASS, "connection refused"),
    ("TLS-06", "tls.hsts_enabled"): (Status.PASS, "max-age=63072000"),
    ("WEB-01", "web.transparency_page_published"): (Status.PASS, "states that nothing leaves the EEA"),
    ("WEB-02", "web.interface_in_french"): (Status.PASS, 'declares French: <html lang="fr">'),
}


def test_scan_of_an_inventory_host_gets_the_tls_verdicts(lab: Collected, tmp_path: Path) -> None:
    """An @local inventory host listing endpoints, scanned with hds_compliance.scan.scan and the shipped
    catalogue (parameters set as a team would with --set); evaluating the result again later gives the
    same verdicts (expiry is judged at the recorded collection time)."""
    endpoints = [tlslab.url("good"), tlslab.url("legacy"), f"{tlslab.addr('ecdsa')}:443"]
    inventory = tmp_path / "inventory.py"
    data = {"roles": ["web"], "hds_activities": [4], "tls_endpoints": endpoints}
    inventory.write_text(f"web = ([('@local', {data!r})], {{}})\n")
    overrides = {
        "tls_ca_file": str(lab.pki.ca_file),
        "transparency_page_url": tlslab.url("transparency", "/transparence"),
    }
    full = load_catalog(overrides=overrides)
    catalog = full.model_copy(
        update={"controls": [c for c in full.controls if c.id.startswith(("TLS-", "WEB-"))]}
    )
    result = scan(catalog, REGISTRY, load_inventory(inventory), CollectOptions(connect_timeout=TIMEOUT))
    got = {(v.control, v.check): (v.status, v.message) for v in result.verdicts}
    assert set(got) == set(EXPECTED_SCAN)
    for key, (status, text) in EXPECTED_SCAN.items():
        assert got[key][0] is status, (key, got[key][1])
        assert text in got[key][1], (key, got[key][1])
    later = evaluate(catalog, REGISTRY, result.hosts, result.run.scope, "2036-01-01T00:00:00Z")
    assert later == result.verdicts


# ------------------------------------------------------------------------------------ pure helpers


def test_endpoints_and_their_plain_http_counterpart() -> None:
    """An https URL with a port is judged on that port; browsers try its plain-HTTP form on port 80."""
    endpoint = parse_endpoint("https://app.example.fr:8443/portail?x=1")
    assert (endpoint.address, endpoint.http_url) == (
        "app.example.fr:8443",
        "http://app.example.fr/portail?x=1",
    )
    assert parse_endpoint("logs.example.fr:6514").http_url is None
    with pytest.raises(ValueError):
        parse_endpoint("logs.example.fr")


@pytest.mark.parametrize(
    ("field", "valid"),
    [
        ("max-age=31536000; includeSubDomains; preload", True),
        ('MAX-AGE="31536000"', True),
        ("includeSubDomains", False),  # no max-age: browsers ignore the field
        ("max-age=31536000; max-age=1", False),  # a directive twice: the field is invalid
        ("max-age=one-year", False),
    ],
)
def test_hsts_field_validity(field: str, valid: bool) -> None:
    """RFC 6797 6.1: case-insensitive directives, quoted values, each at most once, max-age required."""
    if valid:
        assert parse_hsts(field)["max-age"] == "31536000"
    else:
        with pytest.raises(ValueError):
            parse_hsts(field)


@pytest.mark.parametrize(
    ("text", "states"),
    [
        ("Nous ne transférons aucune donnée de santé hors de l’EEE.", True),
        ("Les données de santé ne quittent jamais l'Espace économique européen.", True),
        ("We do not transfer health data to third countries.", True),
        ("Nous transférons des données hors EEE vers nos sous-traitants.", False),  # a transfer, not a denial
        ("Aucune donnée n'est perdue. Transferts hors EEE : voir le contrat.", False),  # two sentences
    ],
)
def test_no_transfer_statement(text: str, states: bool) -> None:
    """The denial must precede the transfer verb in one sentence that names the EEA or third countries."""
    assert (no_transfer_statement(text) is not None) is states
