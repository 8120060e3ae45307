"""Web pages HDS asks for, read from the scanning machine: the public transparency page (EXI 31) and
client-facing interfaces in French (EXI 07).

Both are partial: a check can see that the page is there and what it declares, not that it is accurate
(EXI 31) nor that first-level support speaks French (EXI 07): their controls also need an attestation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.checks.tls import Judgement, endpoints, judge_each, web_urls
from hds_compliance.facts.tls import WebPage, WebReport, WebResponse
from hds_compliance.model import Status

# ---------------------------------------------------------------------------------------- language


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 language tag, lower-cased (``fr-FR`` -> ``fr``; ``frr`` stays)."""
    return tag.strip().split("-")[0].split("_")[0].lower()


def _declared(report: WebReport) -> tuple[list[str], str]:
    """The languages a page declares, and where: its <html lang> wins over Content-Language (HTML)."""
    if report.html_lang is not None:
        return [report.html_lang], f'<html lang="{report.html_lang}">'
    header = report.final.content_language
    if header:
        return [t for t in (v.strip() for v in header.split(",")) if t], f"Content-Language: {header}"
    return [], "no lang attribute on <html> and no Content-Language header"


def _is_html(report: WebReport) -> bool:
    kind = (report.final.content_type or "").lower()
    return report.html_lang is not None or "html" in kind


@check(
    "web.interface_in_french",
    host_facts=lambda p, h: [WebResponse(e.url) for e in web_urls(h) if e.url],
)
def web_interface_in_french(p: NoParams, ctx: Context) -> Outcome:
    """The web interfaces a host lists declare French to a French-speaking browser (<html lang> first)."""
    endpoints(ctx.host)
    urls = [e.url for e in web_urls(ctx.host) if e.url]
    if not urls:
        return not_applicable(f"no https:// URL among the tls_endpoints of {ctx.host.name}: no web interface")
    pages: list[str] = []

    def judge(url: str) -> Judgement:
        report = ctx.get(WebResponse(url))
        final = report.final
        if final.status is None:
            raise FactUnavailable(f"GET {final.url}: {final.error}")
        if not _is_html(report):
            return True, f"{url}: not an HTML page ({final.content_type}), not judged"
        pages.append(url)
        tags, where = _declared(report)
        page = final.url if final.url == url else f"{url} (page {final.url})"
        if any(primary_language(t) == "fr" for t in tags):
            return True, f"{page} declares French: {where}"
        return False, f"{page} does not declare French: {where}"

    outcome = judge_each(urls, judge)
    if outcome.status is Status.PASS and not pages:
        return not_applicable(f"{outcome.message}: no HTML interface among the https URLs of {ctx.host.name}")
    return outcome


# ------------------------------------------------------------------------------------- transparency

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_INVISIBLE = frozenset(("script", "style", "template", "head", "title"))
_BREAKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption footer form h1 h2 h3 h4 h5 h6 header "
    "hr li main nav ol p pre section table td th tr ul caption".split()
)


@dataclass
class Table:
    """An HTML table's rows of cell texts."""

    rows: list[list[str]] = field(default_factory=list)


class _Reader(HTMLParser):
    """The text a visitor sees (no comments, scripts, styles, head, hidden elements) and the tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []  # (tag, hidden)
        self.parts: list[str] = []
        self.tables: list[Table] = []
        self.current: list[Table] = []

    @property
    def hidden(self) -> bool:
        return any(h for _, h in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BREAKS:
            self.parts.append("\n")
        if tag in _VOID:
            return
        names = {k for k, _ in attrs}
        self.open.append((tag, tag in _INVISIBLE or "hidden" in names))
        if self.hidden:
            return
        if tag == "table":
            self.current.append(Table())
            self.tables.append(self.current[-1])
        elif tag == "tr" and self.current:
            self.current[-1].rows.append([])
        elif tag in ("td", "th") and self.current and self.current[-1].rows:
            self.current[-1].rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKS:
            self.parts.append("\n")
        for depth in range(len(self.open) - 1, -1, -1):
            if self.open[depth][0] == tag:
                if tag == "table" and not self.hidden and self.current:
                    self.current.pop()
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.parts.append(data)
        if self.current and self.current[-1].rows and self.current[-1].rows[-1]:
            row = self.current[-1].rows[-1]
            row[-1] += data


def normalise(text: str) -> str:
    """Lower case, no accents, plain apostrophes and single spaces: what the patterns below match."""
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'").replace("\u00a0", " "))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[ \t\r\f\v]+", " ", text)


_NEGATION = r"(?:\b(?:aucune?|pas|ni|sans|jamais|ne|no|not|never|none|without)\b|\bn')"
_MOVE = r"\b(?:transfer\w*|transmi\w*|acces|access\w*|quitt\w*|sort\w*|leav\w*|export\w*)"
_OUTSIDE = (
    r"(?:\beee\b|espace economique europeen|\beea\b|european economic area|pays tiers?|third[- ]countr\w*"
    r"|extra-?europ\w*|hors (?:de )?(?:l')?(?:union europeenne|ue|europe))"
)
_STATEMENT = re.compile(rf"{_NEGATION}[^.;:!?]{{0,120}}?{_MOVE}")
_COUNTRY_CELL = re.compile(r"\b(?:pays|country|countries|destination)\b")
_TRANSFER_CELL = re.compile(
    r"\b(?:transf\w*|acces|access\w*|garanties?|safeguards?|destinataires?|recipients?|sous-traitants?"
    r"|subprocessors?|finalites?|purposes?)\b"
)


def no_transfer_statement(text: str) -> str | None:
    """A sentence of ``text`` saying that nothing goes outside the EEA (French or English), if any.

    The negation must come before the verb of transfer or access, and the sentence must name the EEA or
    third countries: "aucune donnée de santé n'est transférée hors de l'EEE" is one.
    """
    for sentence in re.split(r"[.!?;\n]+", normalise(text)):
        if _STATEMENT.search(sentence) and re.search(_OUTSIDE, sentence):
            return sentence.strip()
    return None


def transfer_table(tables: list[Table]) -> Table | None:
    """A table naming destination countries and what goes there (the chapter 8 information), if any."""
    for table in tables:
        cells = [normalise(c) for row in table.rows for c in row]
        if (
            len(table.rows) >= 2
            and any(map(_COUNTRY_CELL.search, cells))
            and any(map(_TRANSFER_CELL.search, cells))
        ):
            return table
    return None


def read_page(body: str) -> tuple[str, list[Table]]:
    """The visible text and the tables of an HTML page."""
    reader = _Reader()
    reader.feed(body)
    reader.close()
    return "".join(reader.parts), reader.tables


class TransparencyParams(Params):
    url: str = Field(
        pattern=r"^(https?://\S+)?$",
        description="URL of the public transparency page given to the certification body ('' = not set)",
    )


@check(
    "web.transparency_page_published",
    params=TransparencyParams,
    host_facts=lambda p, h: [WebPage(p.url)] if p.url else [],
)
def web_transparency_page_published(p: TransparencyParams, ctx: Context) -> Outcome:
    """The public transparency page answers and says that no health data leaves the EEA, or maps transfers."""
    if not p.url:
        raise FactUnavailable(
            "no transparency page URL: set the catalogue parameter transparency_page_url (--set or a "
            "parameters file) to the URL given to the certification body"
        )
    report = ctx.get(WebPage(p.url))
    final = report.final
    if final.status is None:
        raise FactUnavailable(f"GET {final.url}: {final.error}")
    where = p.url if final.url == p.url else f"{p.url} (page {final.url})"
    if final.status != 200:
        return failed(f"{where} answers {final.status}: the transparency page is not published there")
    if report.body is None:
        return failed(f"{where} is not an HTML page ({final.content_type})")
    text, tables = read_page(report.body)
    statement = no_transfer_statement(text)
    if statement is not None:
        return passed(f'{where} states that nothing leaves the EEA: "{statement[:160]}"')
    table = transfer_table(tables)
    if table is not None:
        header = " | ".join(c.strip() for c in table.rows[0])
        return passed(f"{where} publishes a transfer table of {len(table.rows) - 1} rows ({header})")
    if report.body_truncated:
        raise FactUnavailable(
            f"{where}: neither statement nor table in the first part of a page too long to read"
        )
    return failed(
        f"{where} answers 200 but states neither that no health data leaves the EEA nor a table of transfers "
        "(countries and what is transferred)"
    )
