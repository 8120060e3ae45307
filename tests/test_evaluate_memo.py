"""The client's shared work (hosts judged once when they answer alike, captures parsed once, the collection's
parse reused) gives exactly what the plain way gives.

Hosts are built from the recorded cases of every check (``tests/captures/*.yaml``), each twice under
another name, and evaluated together against controls using those checks: verdicts shared between
hosts (``engine._Memo``) and values shared between checks of a host must be exactly what running the
check alone, on a fresh context, gives; and the order the hosts come in changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
from test_checks import CASES, REGISTRY, _host

from hds_compliance import scan as scan_module
from hds_compliance.catalog import Catalog, CheckRef, Control, load_catalog
from hds_compliance.check import (
    Check,
    Context,
    FactUnavailable,
    HostInfo,
    NoParams,
    Outcome,
    failed,
    passed,
)
from hds_compliance.collect import CollectOptions, HostJob, collect
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.evaluate import engine, evaluate, plan_facts
from hds_compliance.evaluate.engine import (
    Evaluator,
    _Host,
    _Memo,
    applies,
    few_collections,
    host_info,
    left_out,
)
from hds_compliance.facts import FileContent
from hds_compliance.facts.processes import Processes
from hds_compliance.facts.sshd import _first_round
from hds_compliance.inventory import default_inventory, load_inventory
from hds_compliance.model import Capture, HostRecord, PerCapture, ProbeRun, Severity, Status, Verdict
from hds_compliance.scan import host_record, host_view

_FILES = sorted({c["file"] for c in CASES if "hosts" not in c})


def _record(name: str, case: dict[str, Any]) -> HostRecord:
    captures = [
        Capture(fact=key, command="(recorded)", **fields)
        for key, fields in (case.get("captures") or {}).items()
    ]
    host = dict(case.get("host") or {})
    probe = ProbeRun(connected=True, complete=True, commands=1, started_at=case.get("now"))
    return HostRecord(name=name, connector="ssh", probe=probe, captures=captures, **host)


def _scene(file: str) -> tuple[Catalog, list[HostRecord]]:
    """A control per check of the file, holding every parameter set its cases use; a host per case, twice."""
    cases = [c for c in CASES if c["file"] == file and "hosts" not in c]
    params: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for case in cases:
        params[case["check"]][repr(sorted((case.get("params") or {}).items()))] = case.get("params") or {}
    controls = [
        Control(
            id=f"MEM-{n:03d}",
            title=f"cases of {check}",
            severity=Severity.LOW,
            checks=[CheckRef(id=check, params=p) for p in variants.values()],
        )
        for n, (check, variants) in enumerate(sorted(params.items()), 1)
    ]
    hosts = [_record(f"{copy}{n:03d}", case) for copy in ("a", "b") for n, case in enumerate(cases)]
    return Catalog(controls=controls, digest="memo-test"), hosts


def _alone(
    verdict: Verdict, catalog: Catalog, control: Control, record: HostRecord, collected_at: str | None
) -> tuple[Status, str, list[str]]:
    """The verdict of one check reference run on its own, the way a first evaluator would."""
    skip = applies(control, host_info(record))
    if skip is not None:
        return Status.NOT_APPLICABLE, skip, []
    spec = REGISTRY[verdict.check or ""]
    excluded = left_out(catalog, spec)
    if excluded is not None:
        return Status.NOT_REVIEWED, excluded, []
    params = spec.validate(verdict.params)
    host = _host(
        record.name,
        {
            **record.model_dump(
                include={"hds_activities", "roles", "location_country", "ssh_hostname", "tls_endpoints"}
            ),
            "backup_repositories": [r.model_dump() for r in record.backup_repositories],
        },
    )
    when = record.probe.started_at or collected_at
    ctx = Context(
        host,
        record.capture_map(),
        declared=frozenset(f.key for f in spec.facts_for(params, host)),
        now=datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None,
    )
    try:
        outcome = spec.func(params, ctx)
        status, message = outcome.status, outcome.message
    except FactUnavailable as exc:
        status, message = Status.ERROR, str(exc)
    except Exception as exc:
        status, message = Status.ERROR, f"check {verdict.check} crashed: {type(exc).__name__}: {exc}"
    return status, message, sorted(set(ctx.read))


def _judged_as_alone(catalog: Catalog, hosts: list[HostRecord]) -> list[Verdict]:
    """Evaluate the hosts together; assert every per-host verdict is the one its check gives alone, and
    that evaluating the hosts in the reverse order gives the same verdicts."""
    collected_at = "2026-01-01T00:00:00Z"
    verdicts = evaluate(catalog, REGISTRY, hosts, collected_at=collected_at)
    records = {h.name: h for h in hosts}
    controls = {c.id: c for c in catalog.controls}
    judged = [v for v in verdicts if v.check is not None and REGISTRY[v.check].fleet is None]
    assert judged
    for v in judged:
        alone = _alone(v, catalog, controls[v.control], records[v.host], collected_at)
        assert (v.status, v.message, v.facts) == alone, f"{v.host} {v.check} {v.params}"
    backwards = evaluate(catalog, REGISTRY, hosts[::-1], collected_at=collected_at)
    assert sorted(backwards, key=_order) == sorted(verdicts, key=_order)
    assert _streamed(catalog, hosts, collected_at) == verdicts
    return verdicts


def _streamed(catalog: Catalog, hosts: list[HostRecord], collected_at: str | None = None) -> list[Verdict]:
    """What a scan gets: hosts judged as they come (here in reverse order, as a slow first host would
    make them), put back in inventory order at the end."""
    evaluator = Evaluator(catalog, REGISTRY, collected_at=collected_at)
    for record in hosts[::-1]:
        evaluator.add(record)
    return evaluator.finish([h.name for h in hosts])


def _fleet_scene() -> tuple[Catalog, list[HostRecord]]:
    """Every recorded fleet case as one scene: a control per case, its hosts under the case's number."""
    cases = [c for c in CASES if "hosts" in c and not c.get("broken") and not c.get("outside")]
    controls, hosts = [], []
    for n, case in enumerate(cases):
        controls.append(
            Control(
                id=f"FLT-{n:03d}",
                title=f"case {n} of {case['check']}",
                severity=Severity.LOW,
                checks=[CheckRef(id=case["check"], params=case.get("params") or {})],
            )
        )
        for name, h in case["hosts"].items():
            record = _record(f"{name}", {**h, "now": case.get("now")})
            hosts.append(record)
    return Catalog(controls=controls, digest="fleet-test"), hosts


@pytest.mark.parametrize("evict", [False, True])
def test_hosts_judged_as_they_come_get_the_verdicts_of_a_whole_evaluation(
    evict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan judges each host as soon as its probe is back (in whatever order hosts finish) and the fleet
    checks at the end, keeping of a judged host only the captures fleet checks declare on it. Same
    verdicts, in the same order, as judging all hosts at once; also when the caches shared between
    hosts keep almost nothing (a fleet of hosts that all differ)."""
    if evict:
        monkeypatch.setattr(_Memo, "NODES", 0)
        monkeypatch.setattr(engine, "_SHARED_SIZE", 1)
    for catalog, hosts in [_fleet_scene(), *(_scene(file) for file in _FILES[:6])]:
        names = [h.name for h in hosts]
        unique = [h for n, h in enumerate(hosts) if h.name not in names[:n]]
        whole = evaluate(catalog, REGISTRY, unique)
        assert any(v.status is Status.FAIL for v in whole) and any(v.status is Status.PASS for v in whole)
        assert _streamed(catalog, unique) == whole


def test_a_judged_host_keeps_only_the_captures_fleet_checks_declare() -> None:
    catalog, hosts = _fleet_scene()
    evaluator = Evaluator(catalog, REGISTRY)
    noise = Capture(fact="file:/etc/motd", command="(recorded)", stdout="hello")
    record = hosts[0].model_copy(update={"captures": [*hosts[0].captures, noise]})
    evaluator.add(record)
    kept = evaluator.hosts[record.name].captures
    assert "file:/etc/motd" not in kept and kept, "only what a fleet check reads stays"
    assert set(evaluator.hosts[record.name].parsed) <= {*kept, *(f"lookups:{k}" for k in kept)}


@pytest.mark.parametrize("file", _FILES)
def test_shared_verdicts_are_the_ones_each_host_gets_alone(file: str) -> None:
    _judged_as_alone(*_scene(file))


def test_hosts_differing_only_in_what_a_parser_looks_up_are_judged_apart() -> None:
    """sshd's effective configuration reads a second round (the sshd -T of a Match block) by lookup: two
    hosts with the same first round but a Match block that permits root login get different verdicts."""
    catalog, hosts = _scene("sshd.yaml")
    variants = []
    for host in hosts:
        if any(c.fact.startswith("sshd-match:") for c in host.captures):
            captures = [
                c.model_copy(update={"stdout": c.stdout.replace("permitrootlogin no", "permitrootlogin yes")})
                if c.fact.startswith("sshd-match:")
                else c
                for c in host.captures
            ]
            variants.append(host.model_copy(update={"name": f"v{host.name}", "captures": captures}))
    assert variants
    verdicts = _judged_as_alone(catalog, hosts + variants)
    by_host: dict[str, list[tuple[str, int, Status]]] = defaultdict(list)
    for v in verdicts:
        by_host[v.host].append((v.control, v.index, v.status))
    assert any(by_host[v.name] != by_host[v.name[1:]] for v in variants), "the lookups changed no verdict"


def _order(v: Verdict) -> tuple[str, str, int]:
    return v.host, v.control, v.index


PASSWD = FileContent("/etc/passwd")


def _twins(count: int) -> list[HostRecord]:
    capture = Capture(fact=PASSWD.key, command="(test)", exit_code=0, stdout="root:x:0:0::/root:/bin/sh\n")
    probe = ProbeRun(connected=True, complete=True, commands=1, started_at="2026-01-01T00:00:00Z")
    return [HostRecord(name=f"h{i}", connector="ssh", probe=probe, captures=[capture]) for i in range(count)]


def _run_with(func: Any, hosts: list[HostRecord]) -> list[Verdict]:
    spec = Check("memo.probe", func, NoParams, lambda _p: [PASSWD], "a check of these tests")
    catalog = Catalog(
        controls=[
            Control(id="MEM-001", title="one check", severity=Severity.LOW, checks=[CheckRef(id=spec.id)])
        ],
        digest="memo-test",
    )
    return evaluate(catalog, {spec.id: spec}, hosts)


def test_a_check_runs_once_for_hosts_that_answer_alike() -> None:
    calls: list[str] = []

    def users(_p: NoParams, ctx: Context) -> Outcome:
        calls.append("run")
        return passed(f"{len(ctx.get(PASSWD) or b'')} bytes of passwd")

    verdicts = _run_with(users, _twins(5))
    assert calls == ["run"] and {v.message for v in verdicts} == {"26 bytes of passwd"}
    assert all(v.facts == [PASSWD.key] for v in verdicts)


def test_a_check_reading_captures_directly_or_its_host_runs_on_every_host() -> None:
    calls: list[str] = []

    def raw(_p: NoParams, ctx: Context) -> Outcome:
        calls.append("run")
        return passed(f"{len(ctx.captures)} captures")

    def named(_p: NoParams, ctx: Context) -> Outcome:
        calls.append("run")
        ctx.get(PASSWD)
        return passed(f"judged {ctx.host.name}")

    assert {v.message for v in _run_with(raw, _twins(3))} == {"1 captures"} and len(calls) == 3
    calls.clear()
    assert [v.message for v in _run_with(named, _twins(3))] == ["judged h0", "judged h1", "judged h2"]
    assert len(calls) == 3


PROCESSES = Processes()


def _process_table(*names: str, first_pid: int = 100, exit_code: int = 0) -> Capture:
    """/proc/<pid>/stat lines as the probe reads them: cat's own first (the probe's session, 7), then the
    host's processes in session 1, numbered from ``first_pid``."""
    lines = [f"{first_pid - 1} (cat) R 1 7 7 0"]
    lines += [f"{first_pid + n} ({name}) S 1 {first_pid + n} 1 0" for n, name in enumerate(names)]
    return Capture(fact=PROCESSES.key, command="(test)", exit_code=exit_code, stdout="\n".join(lines) + "\n")


def test_a_check_reading_the_process_table_is_remembered_by_the_names_running() -> None:
    """The process table differs on every host (its PIDs) where the names running seldom do: a check that
    reads it is remembered by what it sees (the names, or why they are unknown), not by the capture. Hosts
    whose PIDs differ are judged once; other names, a redacted table or a failed read are judged apart;
    every verdict is the one the check gives alone on a fresh context."""
    calls: list[str] = []

    def cron_runs(_p: NoParams, ctx: Context) -> Outcome:
        calls.append("run")
        if "cron" in ctx.get(PROCESSES):
            return passed("cron runs")
        return failed("no cron daemon")

    probe = ProbeRun(connected=True, complete=True, commands=1, started_at="2026-01-01T00:00:00Z")
    redacted = _process_table("cron", "sshd", first_pid=900).model_copy(update={"redactions": ["a token"]})
    tables = [
        *(_process_table("cron", "sshd", first_pid=100 + 37 * n) for n in range(4)),
        _process_table("sshd", "cron"),  # the same names, in another order
        _process_table("sshd", first_pid=555),
        _process_table("sshd", first_pid=777),
        _process_table("cron", exit_code=1),
        redacted,
    ]
    hosts = [
        HostRecord(name=f"h{n}", connector="ssh", probe=probe, captures=[table])
        for n, table in enumerate(tables)
    ]
    assert len({h.captures[0].stdout for h in hosts}) == len(hosts)  # no two captures alike
    spec = Check("memo.cron", cron_runs, NoParams, lambda _p: [PROCESSES], "a check of these tests")
    control = Control(id="MEM-001", title="cron", severity=Severity.LOW, checks=[CheckRef(id=spec.id)])
    catalog = Catalog(controls=[control], digest="memo-test")
    verdicts = evaluate(catalog, {spec.id: spec}, hosts)
    assert [v.status for v in verdicts] == [Status.PASS] * 5 + [Status.FAIL] * 2 + [Status.ERROR] * 2
    assert "a token" in verdicts[8].message and "exit code 1" in verdicts[7].message
    assert len(calls) == 4  # the names {cron, sshd}, {sshd}, the failed read, the redacted table
    for v, host in zip(verdicts, hosts, strict=True):
        ctx = Context(HostInfo(host.name, "ssh"), host.capture_map(), declared=frozenset({PROCESSES.key}))
        try:
            alone = cron_runs(NoParams(), ctx)
            seen = (alone.status, alone.message)
        except FactUnavailable as exc:
            seen = (Status.ERROR, str(exc))
        assert (v.status, v.message, v.facts) == (*seen, [PROCESSES.key]), host.name


def test_a_fact_traced_by_value_is_parsed_from_its_own_capture_alone() -> None:
    """Its value must say all a check sees: a parser that looks up other captures cannot be traced so."""
    with pytest.raises(TypeError, match="parsed from its own capture alone"):

        class _Looking(Processes):
            def parse_with(self, capture: Capture, lookup: Any) -> frozenset[str]:
                return self.parse(capture)


def test_a_check_seen_asking_two_things_after_the_same_answers_is_no_longer_shared() -> None:
    """Checks are pure functions (the evaluator relies on it); one seen breaking that is run on every host."""
    memo = _Memo()
    host = _Host(HostInfo("h", "ssh"), {}, None, None, {})
    memo.learn([(("get", "a", False), None)], (Status.PASS, "a", ["a"]))
    assert memo.recall(host) == (Status.PASS, "a", ["a"])
    memo.learn([(("get", "b", False), None)], (Status.FAIL, "b", ["b"]))
    assert memo.recall(host) is None


def test_the_client_fast_paths_give_what_the_plain_ones_give_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real probe of this machine with the full catalogue (walks left out): the host record built from
    the parse the collection made to find the second round (neither parsed nor rendered again) is the one
    a fresh parse gives, byte for byte; judged next to a twin, every verdict is the one its check gives
    alone."""
    catalog = load_catalog(profile="full", skip_tags=["fs-walk"])
    [host] = load_inventory(default_inventory()).hosts
    facts = [f for f in plan_facts(catalog, REGISTRY, host_view(host)) if f.origin == "host"]
    probe = render(facts, new_nonce())
    job = HostJob(name=host.name, data={}, facts=[f.key for f in probe.facts], nonce=probe.nonce)
    job.section_cap = probe.section_cap
    raw = collect([job], CollectOptions())[host.name]
    assert raw.connected and raw.rounds[0].parsed is not None
    rendered: list[int] = []
    with monkeypatch.context() as patch:
        patch.setattr(scan_module, "render", lambda *a: rendered.append(1) or render(*a))
        fast = host_record(host, raw)
    assert len(rendered) == len(raw.rounds) - 1  # the first round's probe is the collection's
    for round_ in raw.rounds:
        round_.parsed = None
    assert fast.model_dump_json() == host_record(host, raw).model_dump_json()
    _judged_as_alone(catalog, [fast, fast.model_copy(update={"name": "twin"})])


def test_finish_drops_no_host_its_order_leaves_out() -> None:
    catalog, hosts = _scene(_FILES[0])
    evaluator = Evaluator(catalog, REGISTRY)
    for record in hosts[:3]:
        evaluator.add(record)
    verdicts = evaluator.finish([hosts[2].name, "not-added"])
    names = list(dict.fromkeys(v.host for v in verdicts))
    assert names == [hosts[2].name, hosts[0].name, hosts[1].name]


@pytest.mark.parametrize("check", ["sshd.option", None])
def test_a_verdict_built_without_validation_is_the_validated_model(check: str | None) -> None:
    """The evaluator builds verdicts by hand (hundreds per host): each must be what pydantic validates from
    the same values, for equality, repr, dumps, copies and the fields it says were set."""
    params = {"name": "maxauthtries", "max": 4}
    refs = [CheckRef(id=check, params=params)] if check is not None else []
    control = Control(id="SSH-01", title="root login", severity=Severity.HIGH, checks=refs)
    r = engine._Ref(control, 2, refs[0], REGISTRY[check], None, None, None, None) if check else None
    facts = ["sshd"] if check is not None else []
    built = engine._verdict("db1", control, r, Status.FAIL, "PermitRootLogin is yes", facts)
    values: dict[str, Any] = {
        "host": "db1",
        "control": "SSH-01",
        "severity": Severity.HIGH,
        "check": check,
        "index": 2 if check is not None else 0,
        "status": Status.FAIL,
        "message": "PermitRootLogin is yes",
    }
    if check is not None:
        values |= {"params": params, "facts": facts}
    validated = Verdict(**values)
    assert built == validated and repr(built) == repr(validated)
    assert list(vars(built)) == list(vars(validated))  # the fields in their order
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == set(Verdict.model_fields)
    assert built.model_copy(update={"status": Status.PASS}).status is Status.PASS
    assert built.status is Status.FAIL  # the copy left it alone


def test_a_value_per_capture_is_computed_once_per_object_and_memory_stays_bounded() -> None:
    """Digests and redactions are remembered per capture object: the same object is computed once, an
    equal but distinct one again, and however many captures pass, at most twice the size are held (the
    most recently used stay)."""
    computed: list[int] = []

    def compute(capture: Capture) -> str:
        computed.append(id(capture))
        return capture.stdout

    remember = PerCapture(compute, size=4)
    first = Capture(fact="f:a", command="c", stdout="a")
    twin = Capture(fact="f:a", command="c", stdout="a")
    assert remember(first) == remember(first) == "a" and len(computed) == 1
    assert remember(twin) == "a" and len(computed) == 2
    others = [Capture(fact=f"f:{i}", command="c", stdout=str(i)) for i in range(20)]
    for number, capture in enumerate(others):
        assert remember(capture) == str(number)
        remember(first)  # in use all along: never computed again
        assert len(remember._now) + len(remember._before) <= 8
    assert computed.count(id(first)) == 1
    remember(others[0])  # long unused: gone, computed again
    assert computed.count(id(others[0])) == 2


def test_sshd_first_round_is_read_once_for_its_follow_ups_and_its_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collection reads sshd's first round to find the Match blocks to ask about, the evaluation reads
    it again to parse the fact: for the same capture object it is read once, and the parse is the one a
    fresh capture gives; an equal capture that is another object is read on its own."""
    from hds_compliance.facts import sshd

    text = "# config /etc/ssh/sshd_config\nport 22\nlistenaddress 0.0.0.0:22\npermitrootlogin no\n# exit 0\n"
    reads: list[str] = []
    monkeypatch.setattr(sshd, "_first_round", lambda t, what: reads.append(t) or _first_round(t, what))
    fact = sshd.SshdEffectiveConfig()
    capture = Capture(fact="sshd", command="sshd -T", exit_code=0, stdout=text)
    assert fact.follow_ups(capture) == []
    parsed = fact.parse_with(capture, lambda _key: None)
    assert len(reads) == 1
    again = fact.parse_with(capture.model_copy(), lambda _key: None)
    assert len(reads) == 2 and again == parsed
    assert parsed is not None and parsed[0].options["permitrootlogin"] == ["no"]


def test_what_judged_hosts_leave_is_kept_from_the_collector_until_the_end() -> None:
    """A scan calls the function few_collections gives once hosts are judged: what exists then is left out
    of the collector's walks (a cycle among it too), and once the evaluation ends everything is walked
    again, so such a cycle is collected then: nothing is kept for good."""
    import gc
    import weakref

    class Node:
        other: Node | None = None

    with few_collections() as settle:
        cycle = Node()
        cycle.other = cycle
        lost = weakref.ref(cycle)
        del cycle
        frozen = gc.get_freeze_count()
        settle()
        assert gc.get_freeze_count() > frozen
        gc.collect()
        assert lost() is not None  # left out of the walk
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert lost() is None
