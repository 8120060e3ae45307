"""JUnit XML for CI: one ``<testsuite>`` per host, one ``<testcase>`` per control × check.

Built with junit-xml; per-testcase ``<properties>`` (severity, framework references), which junit-xml
does not model, are added to its element tree before serialising. Every string is stripped of the
characters XML 1.0 forbids first, so the file is valid whatever bytes a host returned.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from junit_xml import TestCase, TestSuite

from hds_compliance.catalog import Catalog, Control
from hds_compliance.model import HostRecord, ScanResult, Status, Verdict

_ILLEGAL_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufddf\ufffe\uffff]"
)


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


def _case(v: Verdict, control: Control | None) -> TestCase:
    case = TestCase(name=xml_safe(_case_name(v, control)), classname=v.control, elapsed_sec=0.0)
    message = xml_safe(v.message)
    if v.status is Status.FAIL:
        case.add_failure_info(message=message, failure_type=f"fail.{v.severity.value}")
    elif v.status is Status.ERROR:
        case.add_error_info(message=message, error_type="error")
    elif v.status in (Status.NOT_APPLICABLE, Status.NOT_REVIEWED):
        case.add_skipped_info(message=f"{v.status.value}: {message}")
    else:
        case.stdout = message
    return case


def _suite(
    host: HostRecord, verdicts: list[Verdict], controls: dict[str, Control], result: ScanResult
) -> TestSuite:
    properties = {
        "host": host.name,
        "connector": host.connector,
        "reachable": str(host.probe.connected).lower(),
        "hds_activities": ",".join(str(a) for a in host.hds_activities or []) or "unspecified",
        "roles": ",".join(host.roles),
        "location_country": host.location_country or "",
        "catalog_digest": result.run.catalog_digest,
    }
    if host.probe.error:
        properties["probe_error"] = xml_safe(host.probe.error)
    return TestSuite(
        name=xml_safe(host.name),
        test_cases=[_case(v, controls.get(v.control)) for v in verdicts],
        hostname=xml_safe(host.name),
        timestamp=result.run.started_at,
        properties=properties,
    )


def _add_case_properties(suite_el: ET.Element, verdicts: list[Verdict], controls: dict[str, Control]) -> None:
    for case_el, v in zip(suite_el.findall("testcase"), verdicts, strict=True):
        props = ET.Element("properties")
        entries = [("host", v.host), ("severity", v.severity.value), ("status", v.status.value)]
        control = controls.get(v.control)
        if control is not None:
            for framework, ids in control.references.items():
                entries.extend((framework, ref) for ref in ids)
        for name, value in entries:
            ET.SubElement(props, "property", name=name, value=xml_safe(value))
        case_el.insert(0, props)


def to_junit(result: ScanResult, catalog: Catalog) -> str:
    """The JUnit XML document (UTF-8 text), deterministic for a given result."""
    controls = {c.id: c for c in catalog.controls}
    root = ET.Element("testsuites", name="hds-compliance")
    by_host = result.verdicts_by_host()
    for host in result.hosts:
        verdicts = by_host[host.name]
        suite_el = _suite(host, verdicts, controls, result).build_xml_doc()
        _add_case_properties(suite_el, verdicts, controls)
        root.append(suite_el)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite_el in root:
        for key in totals:
            totals[key] += int(suite_el.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
