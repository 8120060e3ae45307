"""Outputs: JUnit a consumer can parse, deterministic JSON, offline re-evaluation, the local scan command."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junit_xml
import pytest
from conftest import junit_schema_errors
from junitparser import Error, Failure, JUnitXml, Skipped
from pydantic import ValidationError

from hds_compliance import junit
from hds_compliance.catalog import Catalog, load_catalog
from hds_compliance.check import registry
from hds_compliance.evaluate import evaluate
from hds_compliance.gate import gate
from hds_compliance.inventory import default_inventory, load_inventory
from hds_compliance.model import (
    SCHEMA_VERSION,
    Capture,
    HostRecord,
    ProbeRun,
    RunRecord,
    ScanResult,
    Scope,
    Severity,
    Status,
)
from hds_compliance.report import to_json
from hds_compliance.scan import scan

LAB_CONTROLS = Path(__file__).parent / "data" / "lab_controls"
EXE = Path(sys.executable).with_name("hds-compliance")


def _record(name: str, sshd_stdout: str, connected: bool = True, sshd_s: float | None = None) -> HostRecord:
    capture = Capture.from_bytes(
        "sshd", "(recorded)", sshd_stdout.encode("utf-8", "surrogateescape"), exit_code=0
    )
    return HostRecord(
        name=name,
        connector="ssh",
        hds_activities=[3, 4, 5],
        location_country="FR",
        probe=ProbeRun(
            connected=connected,
            complete=connected,
            commands=1,
            error=None if connected else "refused",
            fact_s={"sshd": sshd_s} if sshd_s is not None else {},
        ),
        captures=[capture] if connected else [],
    )


@pytest.fixture
def result() -> ScanResult:
    """A scan result built from recorded captures, including bytes no XML file may carry."""
    catalog = load_catalog(LAB_CONTROLS)
    hosts = [
        _record("good", "permitrootlogin no\npasswordauthentication no\nmaxauthtries 3\n", sshd_s=0.0123),
        _record(
            "evil", "permitrootlogin \x01\x1b[31myes\udcff\x7f\npasswordauthentication yes\nmaxauthtries 9\n"
        ),
        _record("gone", "", connected=False),
    ]
    return _result(catalog, hosts)


def _result(catalog: Catalog, hosts: list[HostRecord]) -> ScanResult:
    run = RunRecord(
        tool_version="test",
        started_at="2026-11-29T00:00:00Z",
        finished_at="2026-11-29T00:00:05Z",
        inventory="recorded",
        catalog_digest=catalog.digest,
    )
    return ScanResult(run=run, hosts=hosts, verdicts=evaluate(catalog, registry(), hosts))


def test_junit_parses_and_keeps_host_and_control_ids(result: ScanResult, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(junit.to_junit(result, load_catalog(LAB_CONTROLS)), encoding="utf-8")
    ET.parse(path)  # well-formed XML whatever the host printed
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"good", "evil", "gone"}
    cases = {(case.classname, case.name): case for case in suites["evil"]}
    root = cases[("LAB-01", "sshd.root_login_disabled")]
    assert isinstance(root.result[0], Failure) and "PermitRootLogin is" in root.result[0].message
    assert isinstance(cases[("LAB-02", "sshd.option_at_most name=maxauthtries max=4")].result[0], Failure)
    assert isinstance(cases[("LAB-03", "attestation")].result[0], Skipped)
    assert all(isinstance(case.result[0], Error) for case in suites["gone"] if case.classname != "LAB-03")
    assert suites["good"].tests == 5 and suites["good"].failures == 0
    # junit-10.xsd has no <properties> in a test case: severity and references are in its body
    body = root.result[0].text or ""
    assert "hds: EXI 05" in body and "severity: high" in body and "host: evil" in body, body
    good = {(case.classname, case.name): case for case in suites["good"]}
    out = good[("LAB-01", "sshd.root_login_disabled")].system_out or ""
    assert "status: pass" in out and "hds: EXI 05" in out, out
    # a case's time is the host time of the facts its check read; a control without check read none
    assert good[("LAB-01", "sshd.root_login_disabled")].time == pytest.approx(0.012)
    assert good[("LAB-03", "attestation")].time == 0 and root.time == 0  # "evil" has no clock


def test_outputs_are_byte_identical_for_the_same_captures(result: ScanResult) -> None:
    catalog = load_catalog(LAB_CONTROLS)
    first_json, first_junit = to_json(result), junit.to_junit(result, catalog)
    reloaded = ScanResult.model_validate_json(first_json)
    again = reloaded.model_copy(update={"verdicts": evaluate(catalog, registry(), reloaded.hosts)})
    assert to_json(again) == first_json
    assert junit.to_junit(again, catalog) == first_junit


def test_gate_thresholds(result: ScanResult) -> None:
    without_errors = [v for v in result.verdicts if v.host != "gone"]
    assert gate(without_errors, Severity.LOW).exit_code == 1  # evil fails high and medium checks
    assert gate([v for v in without_errors if v.host == "good"], Severity.LOW).exit_code == 0
    medium_only = [v for v in without_errors if v.control == "LAB-02"]
    assert gate(medium_only, Severity.HIGH).exit_code == 0
    assert gate(medium_only, Severity.MEDIUM).exit_code == 1
    assert gate(result.verdicts, Severity.CRITICAL).exit_code == 1  # errors always fail the gate


def test_catalog_json_shape() -> None:
    done = subprocess.run(
        [str(EXE), "catalog", "--format", "json"], capture_output=True, text=True, check=True
    )
    data = json.loads(done.stdout)
    assert data["controls"]
    for control in data["controls"]:
        assert {"id", "title", "severity", "activities", "references", "checks"} <= set(control)
        assert all("id" in c and "params" in c for c in control["checks"])
        assert all(isinstance(v, list) for v in control["references"].values())


def test_committed_schema_is_current() -> None:
    done = subprocess.run([str(EXE), "schema"], capture_output=True, text=True, check=True)
    committed = Path(__file__).parents[1] / "controls" / "control.schema.json"
    assert committed.read_text() == done.stdout, "run: hds-compliance schema > controls/control.schema.json"


def test_local_scan_from_another_folder(tmp_path: Path) -> None:
    """The default job: scan this machine with the shipped catalogue; exit code matches the verdicts."""
    done = subprocess.run(
        [str(EXE), "scan", "--json", "out/r.json", "--junit", "out/j.xml", "--fail-on", "high"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    data = ScanResult.model_validate_json((tmp_path / "out" / "r.json").read_text())
    assert data.schema_version == SCHEMA_VERSION and [h.name for h in data.hosts] == ["@local"]
    assert data.hosts[0].probe.connected and data.hosts[0].probe.commands == 1
    catalog = load_catalog()
    checks = sum(max(len(c.checks), 1) for c in catalog.controls)
    assert len(data.verdicts) == checks  # one verdict per control × check, nothing dropped
    expected = gate(data.verdicts, Severity.HIGH).exit_code
    assert done.returncode == expected, done.stdout
    assert "@local:" in done.stdout and ("gate PASSED" in done.stdout or "gate FAILED" in done.stdout)
    JUnitXml.fromfile(str(tmp_path / "out" / "j.xml"))


def test_reevaluating_a_local_scan_gives_the_same_verdicts() -> None:
    catalog, checks = load_catalog(), registry()
    result = scan(catalog, checks, load_inventory(default_inventory()))
    again = ScanResult.model_validate_json(to_json(result))
    assert evaluate(catalog, checks, again.hosts) == result.verdicts
    # A pass rests on facts read, or on the inventory alone (inventory checks, the roles of the fleet).
    assert all(
        v.status is not Status.PASS or v.facts or v.check.startswith(("inventory.", "fleet.role_present"))
        for v in result.verdicts
        if v.check
    )


def test_evaluate_reproduces_a_scan_offline(tmp_path: Path) -> None:
    """A certifier re-running the evaluation on a scan's JSON gets the same bytes, without any host."""
    scanned = subprocess.run(
        [str(EXE), "scan", "--json", "scan.json", "--junit", "scan.xml"], cwd=tmp_path, capture_output=True
    )
    again = subprocess.run(
        [str(EXE), "evaluate", "scan.json", "--json", "again.json", "--junit", "again.xml"],
        cwd=tmp_path,
        capture_output=True,
    )
    assert again.returncode == scanned.returncode
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "scan.json").read_bytes()
    assert (tmp_path / "again.xml").read_bytes() == (tmp_path / "scan.xml").read_bytes()


def test_evaluate_rejects_a_broken_result_file(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"schema_version": 1, "hosts": []}')
    done = subprocess.run([str(EXE), "evaluate", "r.json"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert "r.json: run: Field required" in done.stderr


def test_fleet_verdicts_take_each_hosts_place_and_name_who_is_missing(tmp_path: Path) -> None:
    """A fleet check judges hosts together; with --limit leaving the bastion out, it cannot pass."""
    controls = tmp_path / "controls"
    controls.mkdir()
    (controls / "fleet.yaml").write_text(
        "- id: ADM-90\n  title: The fleet has a bastion\n  severity: high\n"
        "  checks:\n    - fleet.role_present: {role: bastion}\n"
    )
    catalog = load_catalog(controls)

    def record(name: str, roles: list[str]) -> HostRecord:
        return HostRecord(
            name=name, connector="ssh", roles=roles, probe=ProbeRun(connected=True, complete=True)
        )

    hosts = [record("db1", ["database"]), record("bastion1", ["bastion"])]
    verdicts = evaluate(catalog, registry(), hosts)
    assert [(v.host, v.status) for v in verdicts] == [("db1", Status.PASS), ("bastion1", Status.PASS)]
    limited = evaluate(
        catalog, registry(), hosts[:1], Scope(inventory_hosts=2, outside={"bastion1": ["bastion"]})
    )
    [verdict] = limited
    assert verdict.status is Status.NOT_REVIEWED and "bastion1" in verdict.message


def _disk_form(result: ScanResult) -> ScanResult:
    """The result as a results file holds it, built here on its own: each capture names its command by the
    SHA-256 of its text, and its host's ``commands`` table gives each text once."""

    def named(capture: Capture) -> str:
        return "sha256:" + hashlib.sha256(capture.command.encode()).hexdigest()

    hosts = [
        host.model_copy(
            update={
                "captures": [c.model_copy(update={"command": named(c)}) for c in host.captures],
                "commands": dict(sorted({named(c): c.command for c in host.captures}.items())),
            }
        )
        for host in result.hosts
    ]
    return result.model_copy(update={"hosts": hosts})


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_streamed_json_is_the_whole_dump_byte_for_byte(result: ScanResult, batch: int) -> None:
    """Outputs are written host by host (never the whole text in memory): the pieces make exactly what
    pydantic dumps of the whole result in its on-disk form, and what is read back is the result."""
    from hds_compliance.report import json_chunks

    for variant in (result, result.model_copy(update={"hosts": [], "verdicts": []})):
        streamed = "".join(json_chunks(variant, batch=batch))
        assert streamed == _disk_form(variant).model_dump_json(indent=2) + "\n"
        assert ScanResult.model_validate_json(streamed) == variant


def _batch_host() -> HostRecord:
    """A host whose captures share commands, as a probe's batched sections do (one script, many files)."""
    batch = "for f in /etc/a /etc/b; do\n  cat \"$f\" # \u00e9 \\ 'quoted'\ndone"
    captures = [
        Capture.from_bytes("file:/etc/a", batch, b"A\n", exit_code=0),
        Capture.from_bytes("file:/etc/b", batch, b"B\n", exit_code=0),
        Capture.from_bytes("sshd", "sshd -T", b"permitrootlogin no\n", exit_code=0),
    ]
    return HostRecord(name="h1", connector="ssh", probe=ProbeRun(connected=True), captures=captures)


def test_a_host_record_on_disk_names_each_command_once() -> None:
    """Captures of one batch ran the same command: the record holds its text once, in its table, and the
    captures name it by its SHA-256; read back, each capture has its text again and the table is gone."""
    host = _batch_host()
    on_disk = json.loads(host.on_disk())
    names = [c["command"] for c in on_disk["captures"]]
    assert names[0] == names[1] != names[2]
    assert on_disk["commands"] == {
        names[0]: host.captures[0].command,
        names[2]: "sshd -T",
    }
    assert list(on_disk["commands"]) == sorted(on_disk["commands"])  # same captures, same bytes
    for name, text in on_disk["commands"].items():
        assert name == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    again = HostRecord.model_validate_json(host.on_disk())
    assert again == host and again.commands == {}
    assert [c.command for c in again.captures] == [c.command for c in host.captures]
    # the captures shared with other hosts are not changed by writing one host
    assert host.captures[2].command == "sshd -T" and host.commands == {}


def test_captures_shared_by_hosts_are_encoded_once_and_write_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hosts built alike share capture objects: each is encoded once per run, and every host's record is
    still, byte for byte, pydantic's dump of the whole record in its on-disk form (built in the test)."""
    import hds_compliance.model as model

    encoded: list[str] = []
    real = model._CAPTURE_JSON.compute

    def counting(capture: Capture) -> bytes:
        encoded.append(capture.fact)
        return real(capture)

    monkeypatch.setattr(model, "_CAPTURE_JSON", model.PerCapture(counting))
    first = _batch_host()
    own = Capture.from_bytes("file:/etc/hostname", "cat /etc/hostname", b"h2\n", exit_code=0)
    second = first.model_copy(update={"name": "h2", "captures": [*first.captures, own]})
    bare = HostRecord(name="h3", connector="ssh", probe=ProbeRun(connected=False, error="refused"))
    result = ScanResult(
        run=RunRecord(tool_version="t", started_at="s", finished_at="f", inventory="i", catalog_digest="d"),
        hosts=[first, second, bare],
        verdicts=[],
    )
    written = [host.on_disk() for host in result.hosts]
    expected = [host.model_dump_json(indent=2).encode() for host in _disk_form(result).hosts]
    assert written == expected
    assert sorted(encoded) == sorted(c.fact for c in second.captures)  # the shared three once, h2's own once
    assert [host.on_disk() for host in result.hosts] == written and len(encoded) == 4


def test_a_record_whose_captures_list_is_not_where_expected_is_never_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The captures are spliced in where pydantic writes an empty list: if that place is not found (another
    pydantic formatting), writing stops with an error instead of a record without its captures."""
    import hds_compliance.model as model

    monkeypatch.setattr(model, "_NO_CAPTURES", b'\n  "captures":[],')
    with pytest.raises(RuntimeError, match="captures list"):
        _batch_host().on_disk()


def test_a_record_written_before_the_table_still_reads() -> None:
    """Results of schema 2 (a baseline from last month) hold each command's text in its capture."""
    host = _batch_host()
    plain = json.loads(host.model_dump_json())  # without a context: every capture with its text
    assert plain.pop("commands") == {} and "sha256:" not in json.dumps(plain)
    assert HostRecord.model_validate_json(json.dumps(plain)) == host


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["commands"].popitem(), "is not in the host's commands"),
        (lambda d: d["commands"].update({k: "rm -rf /" for k in d["commands"]}), "is not the SHA-256"),
        (lambda d: d.update(commands={}), "is not in the host's commands"),
    ],
)
def test_a_broken_commands_table_is_refused(change: Any, message: str) -> None:
    """A table that lacks a name its captures use, or that gives a name another command's text, is refused:
    a capture never gets a command it did not run."""
    data = json.loads(_batch_host().on_disk())
    change(data)
    with pytest.raises(ValidationError, match=message):
        HostRecord.model_validate(data)


def test_spooled_json_is_the_same_bytes(result: ScanResult, tmp_path: Path) -> None:
    """A scan writes each host's JSON to its spool as the host is judged and copies those bytes into the
    results at the end: the file is the same as the JSON of the whole result."""
    from hds_compliance.report import HostSpool, json_chunks, to_json, write_text

    spool = HostSpool()
    try:
        for host in reversed(result.hosts):  # judged in any order, written in the result's
            spool.add(host)
        write_text(tmp_path / "r.json", json_chunks(result, spool=spool))
    finally:
        spool.close()
    assert (tmp_path / "r.json").read_bytes() == to_json(result).encode("utf-8")
    assert to_json(result) == _disk_form(result).model_dump_json(indent=2) + "\n"


def test_a_spool_writes_a_shared_capture_once_and_gives_each_host_its_bytes(tmp_path: Path) -> None:
    """Hosts built alike share capture objects: the spool writes such a capture once and each host's JSON
    points to it. Whatever the sharing (a shared capture first, last, in the middle or twice in one host, a
    host without captures, hosts given in any order), the results are the bytes of the whole result's
    JSON, and the spool is smaller than the hosts' JSON put end to end."""
    from hds_compliance.report import HostSpool, host_json, json_chunks, to_json, write_text

    first = _batch_host()
    a, b, sshd = first.captures
    own = Capture.from_bytes("file:/etc/hostname", "cat /etc/hostname", b"h2\n", exit_code=0)
    big = Capture.from_bytes("file:/etc/big", "cat /etc/big", b"x" * 70_000, exit_code=0)  # read, not kept
    hosts = [
        first,
        first.model_copy(update={"name": "h2", "captures": [sshd, own, a, big]}),  # shared last, then first
        first.model_copy(update={"name": "h3", "captures": [own, b, own]}),  # one capture twice
        HostRecord(name="h4", connector="ssh", probe=ProbeRun(connected=False, error="refused")),
        first.model_copy(update={"name": "h\u00e9\x1b5", "captures": [a, big, b, sshd, own]}),
    ]
    result = ScanResult(
        run=RunRecord(tool_version="t", started_at="s", finished_at="f", inventory="i", catalog_digest="d"),
        hosts=hosts,
        verdicts=[],
    )
    spool = HostSpool()
    try:
        for host in [hosts[3], hosts[1], hosts[4], hosts[0], hosts[2]]:
            spool.add(host)
        for host in hosts:
            assert spool.text(host.name) == host_json(host)
            assert spool.text(host.name) == host_json(host)  # read again: the shared pieces from memory
        write_text(tmp_path / "r.json", json_chunks(result, spool=spool))
        whole = sum(len(host_json(host).encode()) for host in hosts)
        assert spool.size < whole * 0.8, (spool.size, whole)
    finally:
        spool.close()
    assert (tmp_path / "r.json").read_bytes() == to_json(result).encode("utf-8")
    assert json.loads((tmp_path / "r.json").read_bytes())["hosts"][1]["captures"][2]["fact"] == "file:/etc/a"


@pytest.mark.parametrize("stdout", [b"PermitRootLogin no\n", b"\xff\xfe binary \x00", b""])
def test_a_capture_built_from_bytes_is_the_validated_model(stdout: bytes) -> None:
    """from_bytes builds without validation (a scan makes one per fact and host): it must be what the
    validated model would hold, field for field, and refuse a field captures do not have."""
    built = Capture.from_bytes("sshd", "sshd -T", stdout, exit_code=0, stderr="warn", problem=None)
    encoding = "text" if stdout.startswith(b"P") or not stdout else "base64"
    text = stdout.decode() if encoding == "text" else base64.b64encode(stdout).decode()
    validated = Capture(
        fact="sshd", command="sshd -T", stdout=text, stdout_encoding=encoding, exit_code=0, stderr="warn"
    )
    assert built == validated and built.model_dump() == validated.model_dump()
    assert built.stdout_bytes() == stdout
    assert built.redactions is not Capture.from_bytes("x", "y", b"").redactions  # a list of its own
    with pytest.raises(TypeError, match="not fields of a capture"):
        Capture.from_bytes("sshd", "sshd -T", stdout, exit_cod=0)


def _whole_suite(writer: junit._Writer, result: ScanResult, host: HostRecord, last: bool) -> str:
    """A host's suite as junit-xml builds it whole, each case from its own verdict (the reference)."""
    verdicts = result.verdicts_by_host()[host.name]
    whole = junit_xml.TestSuite(
        name=junit.xml_safe(host.name),
        test_cases=[writer.case(v, v.host) for v in verdicts],
        hostname=junit.xml_safe(host.name),
        timestamp=result.run.started_at,
        properties={
            "host": junit.xml_safe(host.name),
            "connector": host.connector,
            "reachable": "true",
            "hds_activities": "3,4,5",
            "roles": "",
            "location_country": "FR",
            "catalog_digest": result.run.catalog_digest,
        },
    ).build_xml_doc()
    whole.set("time", "0.000")
    for case, v in zip(whole.iter("testcase"), verdicts, strict=True):
        seconds = sum(host.probe.fact_s.get(f, 0.0) for f in v.facts)
        case.set("time", f"{seconds:.3f}" if seconds >= 0.0005 else "0")
    ET.indent(whole, space="  ", level=1)
    whole.tail = "\n" if last else "\n  "
    return ET.tostring(whole, encoding="unicode")


@pytest.mark.parametrize("name", ["plain", "a&b<c>\"d'", "new\nline", "esc\x1b]0;title\x07", "mark\ue000x"])
def test_junit_suites_built_from_shared_cases_are_what_junit_xml_builds_whole(name: str) -> None:
    """Test cases are made once for verdicts alike and the host's name put in per suite: the same bytes as
    junit-xml building each suite with all its cases, whatever the host is called."""
    catalog = load_catalog(LAB_CONTROLS)
    hosts = [
        _record(name, "permitrootlogin yes\n", sshd_s=0.0216),
        _record("other", "permitrootlogin yes\n", sshd_s=0.0004),  # under a millisecond: time="0"
    ]
    result = _result(catalog, hosts)
    writer = junit._Writer(catalog)
    by_host = result.verdicts_by_host()
    assert any(v.facts for v in by_host[name])  # a case with a time of its own
    for number, host in enumerate(hosts):
        last = number == len(hosts) - 1
        assert writer.suite_xml(host, by_host[host.name], result, last) == _whole_suite(
            writer, result, host, last
        )
    assert not junit_schema_errors(junit.to_junit(result, catalog))


MESSAGES = [
    'a "quoted" <tag> & ampersand',
    "lines\nand\ttabs\r\nand a CR",
    "",
    "esc\x1b[31m bell\x07 and \ud800 half",
    "marks \ue000 \ue001 in a message",
    "host other's own file /etc/other.conf",
]


@pytest.mark.parametrize("status", [Status.FAIL, Status.ERROR, Status.PASS, Status.NOT_APPLICABLE])
def test_junit_cases_shared_across_messages_are_what_junit_xml_builds_whole(status: Status) -> None:
    """A case's XML is shared by verdicts that differ only in their host and message (a message often
    names a host's own file or address): the message is put in per verdict, escaped as an attribute's
    value or as an element's text as the place it goes asks, and the suite is the same bytes as junit-xml
    building it whole, whatever the message holds."""
    catalog = load_catalog(LAB_CONTROLS)
    hosts = [_record(f"h{i}", "permitrootlogin yes\n", sshd_s=0.0216) for i in range(len(MESSAGES))]
    result = _result(catalog, hosts)
    verdicts = [
        v.model_copy(update={"status": status, "message": MESSAGES[hosts.index(h)]})
        for h in hosts
        for v in result.verdicts
        if v.host == h.name
    ]
    result = result.model_copy(update={"verdicts": verdicts})
    writer = junit._Writer(catalog)
    by_host = result.verdicts_by_host()
    for number, host in enumerate(hosts):
        last = number == len(hosts) - 1
        assert writer.suite_xml(host, by_host[host.name], result, last) == _whole_suite(
            writer, result, host, last
        )
    assert len(writer.cases) < len(verdicts)  # cases were shared across messages
    document = junit.to_junit(result, catalog)
    assert not junit_schema_errors(document)
    cases = ET.fromstring(document).iter("testcase")
    for v, case in zip(verdicts, cases, strict=True):  # what a CI server reads back is the message
        said = junit.xml_safe(v.message).replace("\r\n", "\n").replace("\r", "\n")
        if status in (Status.FAIL, Status.ERROR):
            tag = "failure" if status is Status.FAIL else "error"
            element = case.find(tag)
            assert element is not None and element.text is not None
            assert element.get("message", "") == junit.xml_safe(v.message)
            assert element.text.startswith(said + "\n\nhost: ")
        elif status is Status.NOT_APPLICABLE:
            skipped = case.find("skipped")
            assert (
                skipped is not None
                and skipped.get("message") == f"not_applicable: {junit.xml_safe(v.message)}"
            )
        else:
            out = case.find("system-out")
            assert out is not None and out.text is not None and out.text.startswith(said + "\n\nhost: ")


def test_the_summary_names_the_facts_that_took_the_hosts_longest(result: ScanResult) -> None:
    """Each fact's host time is in the run record: the summary names the slowest, by mean over the hosts
    that timed them, escaped like every host-provided text; without any timing there is no such line."""
    from hds_compliance.report import console_summary

    catalog = load_catalog(LAB_CONTROLS)
    evil = result.hosts[1]
    evil.probe.fact_s = {"sshd": 0.0277, "listen\x1b[2J": 0.004, "file:/etc/a": 0.001, "file:/etc/b": 0.0005}
    text = console_summary(result, catalog, gate(result.verdicts))
    line = next(ln for ln in text.splitlines() if ln.startswith("slowest facts"))
    # "good" timed sshd at 12.3 ms, "evil" at 27.7: 20 ms; the others only on "evil", over 2 timed hosts
    shown = line.removeprefix("slowest facts on the hosts (mean time per host): ")
    assert shown == "sshd 20 ms, listen\\x1b[2J 2 ms, file:/etc/a 0 ms"
    for host in result.hosts:
        host.probe.fact_s = {}
    assert "slowest facts" not in console_summary(result, catalog, gate(result.verdicts))
