"""JUnit XML for CI: one ``<testsuite>`` per host, one ``<testcase>`` per control × check.

Written for the schema Jenkins (xunit plugin, ``junit-10.xsd``) and GitLab consume: a test case has no
``<properties>`` there, so its severity, status and framework references go in its ``<system-out>``, and a
failure or error carries the same details in its body. A suite's ``time`` is the host's probe duration
from the run record; a test case's is the host time of the probe sections that collected the facts its
check read (each fact's share, as the run record keeps it: ``ProbeRun.fact_s``), not the time judging
took on the scanning machine, so re-evaluating the same captures gives the same bytes. Every string is
stripped of the characters XML 1.0 forbids, so the file is valid whatever bytes a host or an inventory
provided.
"""

from __future__ import annotations

import itertools
import re
import secrets
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from junit_xml import TestCase, TestSuite

from hds_compliance.catalog import Catalog, Control
from hds_compliance.model import HostRecord, ScanResult, Status, Verdict

_ILLEGAL_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufddf\ufffe\uffff]"
)
# The attributes junit-10.xsd allows on <testsuites>: junit-xml's totals are recomputed for these only.
_TOTALS = ("tests", "failures", "errors")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return _ILLEGAL_XML.sub("\ufffd", text)


def _case_name(v: Verdict, control: Control | None) -> str:
    if v.check is None:
        return "attestation" if control is not None and control.attestation else "manual review"
    params = " ".join(f"{k}={_param(val)}" for k, val in v.params.items())
    return f"{v.check} {params}".strip()


def _param(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(x) for x in value)
    return str(value)


def _bound(cache: dict[Any, Any]) -> None:
    """Empty a per-document cache past 20,000 texts: messages that name hosts are as many as hosts."""
    if len(cache) >= 20_000:
        cache.clear()


class _Writer:
    """Test cases for a result's verdicts. What does not change from host to host (a case's name, a
    control's lines, a message shared by hosts judged alike) is made XML-safe once."""

    def __init__(self, catalog: Catalog) -> None:
        self.controls = {c.id: c for c in catalog.controls}
        self.about: dict[str, tuple[list[str], str | None]] = {}  # control id -> its lines, remediation
        self.names: dict[tuple[str, str | None, int], str] = {}
        self.safe: dict[str, str] = {}
        self.cases: dict[tuple[Any, ...], tuple[str, tuple[str, ...], tuple[int, ...]]] = {}
        self.messages: dict[str, tuple[str, str]] = {}
        # marks no host text can hold, where a case's host name and message go
        self.host_mark = f"\ue000{secrets.token_hex(8)}\ue000"
        self.message_mark = f"\ue001{secrets.token_hex(8)}\ue001"
        self.slot = re.compile(f"({re.escape(self.host_mark)}|{re.escape(self.message_mark)})")

    def xml_safe(self, text: str) -> str:
        if text not in self.safe:
            _bound(self.safe)
            self.safe[text] = xml_safe(text)
        return self.safe[text]

    def _about(self, control_id: str) -> tuple[list[str], str | None]:
        if control_id not in self.about:
            control = self.controls.get(control_id)
            if control is None:
                self.about[control_id] = ([], None)
            else:
                lines = [f"control: {control.id} {control.title}"]
                lines += [f"{fw}: {', '.join(ids)}" for fw, ids in control.references.items() if ids]
                fix = control.remediation.strip()
                self.about[control_id] = (lines, f"remediation: {fix}" if fix else None)
        return self.about[control_id]

    def details(self, v: Verdict, host: str) -> str:
        """What a CI reader needs beside the verdict: host, status, severity, references, the facts read."""
        lines, fix = self._about(v.control)
        text = [f"host: {host}", f"status: {v.status.value}", f"severity: {v.severity.value}", *lines]
        if v.facts:
            text.append(f"facts: {', '.join(v.facts)}")
        if fix is not None and v.status in (Status.FAIL, Status.ERROR):
            text.append(fix)
        if v.waiver is not None:
            text.append(_waiver_line(v))
        return xml_safe("\n".join(text))

    def case(self, v: Verdict, host: str, message: str | None = None) -> TestCase:
        """The test case of a verdict (``host``: the name its text gives; ``message``: the message it gives,
        by default the verdict's own, made XML-safe)."""
        key = (v.control, v.check, v.index)
        if key not in self.names:
            self.names[key] = xml_safe(_case_name(v, self.controls.get(v.control)))
        case = TestCase(name=self.names[key], classname=self.xml_safe(v.control), elapsed_sec=0.0)
        message = self.xml_safe(v.message) if message is None else message
        details = self.details(v, host)
        if v.waived:
            case.add_skipped_info(message=f"{_waiver_line(v)}: {message}")
            case.stdout = details
        elif v.status is Status.FAIL:
            case.add_failure_info(
                message=message, output=f"{message}\n\n{details}", failure_type=f"fail.{v.severity.value}"
            )
        elif v.status is Status.ERROR:
            case.add_error_info(message=message, output=f"{message}\n\n{details}", error_type="error")
        elif v.status in (Status.NOT_APPLICABLE, Status.NOT_REVIEWED):
            case.add_skipped_info(message=f"{v.status.value}: {message}")
            case.stdout = details
        else:
            case.stdout = f"{message}\n\n{details}"
        return case

    def case_xml(self, v: Verdict) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
        """A verdict's test case as XML, indented for its suite, in pieces: what comes before its ``time``
        attribute; then what comes after, cut at the slots where the host's name and the verdict's message
        go, and what each slot takes (:data:`_HOST`, :data:`_IN_ATTRIBUTE`, :data:`_IN_TEXT`). Made once for
        verdicts alike but for their host and message (a message often names a host's own file or
        address): both stand as random marks, and the time, host and message are put in per verdict. The
        name and class before the time are escaped: they hold no bare quote."""
        key = (v.control, v.check, v.index, v.status, v.severity, bool(v.message), tuple(v.facts), v.waiver)
        if key in self.cases:
            return self.cases[key]
        _bound(self.cases)
        message = self.message_mark if v.message else ""
        element = TestSuite("one", [self.case(v, self.host_mark, message)]).build_xml_doc().find("testcase")
        assert element is not None
        element.set("time", "0")
        ET.indent(element, space="  ", level=2)
        before, _, after = ET.tostring(element, encoding="unicode").partition(_NO_TIME)
        parts = self.slot.split(after)
        kinds = []
        for index in range(1, len(parts), 2):
            if parts[index] == self.host_mark:
                kinds.append(_HOST)
            else:  # a message inside a start tag is an attribute's value; outside one, an element's text
                written = "".join(parts[:index])
                kinds.append(_IN_ATTRIBUTE if written.rfind("<") > written.rfind(">") else _IN_TEXT)
        pieces = self.cases[key] = (before, tuple(parts[0::2]), tuple(kinds))
        return pieces

    def message(self, text: str) -> tuple[str, str]:
        """A message as an attribute's value and as an element's text carry it (ElementTree's escaping)."""
        if text not in self.messages:
            _bound(self.messages)
            safe = xml_safe(text)
            self.messages[text] = (escape(safe, _ATTRIBUTE_ENTITIES), escape(safe))
        return self.messages[text]

    def suite_xml(self, host: HostRecord, verdicts: list[Verdict], result: ScanResult, last: bool) -> str:
        """A host's test suite as XML: junit-xml's suite element with its properties, its counts and time,
        and the test cases of its verdicts."""
        properties = {
            "host": xml_safe(host.name),
            "connector": host.connector,
            "reachable": str(host.probe.connected).lower(),
            "hds_activities": ",".join(str(a) for a in host.hds_activities or []) or "unspecified",
            "roles": xml_safe(",".join(host.roles)),
            "location_country": host.location_country or "",
            "catalog_digest": result.run.catalog_digest,
        }
        if host.probe.error:
            properties["probe_error"] = xml_safe(host.probe.error)
        suite = TestSuite(
            name=xml_safe(host.name),
            test_cases=[],
            hostname=xml_safe(host.name),
            timestamp=result.run.started_at,
            properties=properties,
        ).build_xml_doc()
        counts = _counts(verdicts)
        suite.set("errors", str(counts[Status.ERROR]))
        suite.set("failures", str(counts[Status.FAIL]))
        suite.set(
            "skipped", str(counts[Status.NOT_APPLICABLE] + counts[Status.NOT_REVIEWED] + counts[_WAIVED])
        )
        suite.set("tests", str(len(verdicts)))
        suite.set("time", f"{host.probe.duration_s or 0:.3f}")
        ET.indent(suite, space="  ", level=1)
        suite.tail = "\n" if last else "\n  "
        text = ET.tostring(suite, encoding="unicode")
        named = escape(xml_safe(host.name))  # as ElementTree escapes a text
        took = host.probe.fact_s
        cases = []
        for v in verdicts:
            before, parts, kinds = self.case_xml(v)
            seconds = sum(map(took.get, v.facts, _ZEROS)) if took else 0.0
            cases += ["\n    ", before, f' time="{seconds:.3f}"' if seconds >= 0.0005 else _NO_TIME, parts[0]]
            if kinds:
                fills = (named, *self.message(v.message))
                for kind, part in zip(kinds, parts[1:], strict=True):
                    cases += [fills[kind], part]
        end = text.index("</properties>") + len("</properties>")  # the cases follow the properties
        return text[:end] + "".join(cases) + text[end:]


_ZEROS = itertools.repeat(0.0)  # a fact without a time counts for none
_HOST, _IN_ATTRIBUTE, _IN_TEXT = 0, 1, 2  # what a slot of a test case's XML takes
# what ElementTree escapes in an attribute's value beyond & < > (its text escapes only those three)
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"}
_WAIVED = "waived"


def _counts(verdicts: list[Verdict]) -> Counter[Status | str]:
    """Verdicts by status, a waived failure counted apart (JUnit skips it)."""
    return Counter(_WAIVED if v.waived else v.status for v in verdicts)


def _waiver_line(v: Verdict) -> str:
    w = v.waiver
    assert w is not None
    if w.holds:
        return f"waived by {w.id} (approved by {w.approver}, until {w.expires})"
    return f"waiver {w.id} (approved by {w.approver}) expired on {w.expires}: it no longer applies"


_NO_TIME = ' time="0"'


def to_junit(result: ScanResult, catalog: Catalog) -> str:
    """The JUnit XML document (UTF-8 text), deterministic for a given result."""
    return "".join(junit_chunks(result, catalog))


def junit_chunks(result: ScanResult, catalog: Catalog) -> Iterator[str]:
    """The JUnit XML document in pieces, one host's suite at a time (never the whole tree in memory)."""
    writer = _Writer(catalog)
    root = ET.Element("testsuites", name="hds-compliance")
    counts = _counts(result.verdicts)
    for key, value in zip(
        _TOTALS, (len(result.verdicts), counts[Status.FAIL], counts[Status.ERROR]), strict=True
    ):
        root.set(key, str(value))
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    if not result.hosts:
        yield head + ET.tostring(root, encoding="unicode") + "\n"
        return
    opening = ET.tostring(root, encoding="unicode").removesuffix(" />")
    yield head + opening + ">\n  "
    by_host = result.verdicts_by_host()
    for number, host in enumerate(result.hosts):
        yield writer.suite_xml(host, by_host[host.name], result, number == len(result.hosts) - 1)
    yield "</testsuites>\n"
