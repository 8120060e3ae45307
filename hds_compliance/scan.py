"""A scan, end to end: plan the facts per host, collect them (one probe per host), redact, evaluate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hds_compliance import __version__
from hds_compliance.catalog import Catalog
from hds_compliance.check import Check, HostInfo
from hds_compliance.collect import CollectOptions, HostJob, RawProbe, RawRound, collect
from hds_compliance.collect.network import collect_network
from hds_compliance.collect.probe import DEFAULT_SECTION_CAP, Probe, follow_ups, new_nonce, parse, render
from hds_compliance.evaluate import plan_facts
from hds_compliance.evaluate.engine import Evaluator, few_collections
from hds_compliance.evidence.redact import redact, scrub_text
from hds_compliance.evidence.snapshot import code_digest
from hds_compliance.facts import Fact, fact_from_key
from hds_compliance.inventory import Host, Inventory
from hds_compliance.model import Capture, HostRecord, ProbeRun, RunRecord, ScanResult, Scope

# Host data handed to pyinfra: connection settings only (our own keys and pyinfra's global
# arguments such as _sudo stay out of pyinfra's hands).
_CONNECTION_PREFIXES = ("ssh_", "chroot_")


_JUDGE_EVERY = 16  # hosts judged together as they come back (see scan)


def file_sha256(path: str) -> str | None:
    """SHA-256 of a file's bytes (``None`` if it cannot be read: an inventory given as an object)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def utc_now() -> str:
    """Now, as the run record writes times (UTC, seconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def host_view(host: Host) -> HostInfo:
    """What checks see of an inventory host."""
    return HostInfo.of(host.name, host.connector, host.info)


def _job(host: Host, facts: list[Fact[Any]], nonce: str, section_cap: int) -> HostJob:
    data = {k: v for k, v in host.data.items() if k.startswith(_CONNECTION_PREFIXES)}
    sudo = bool(host.data.get("hds_sudo") or host.data.get("_sudo"))
    keys = [f.key for f in render(facts, nonce, section_cap).facts]
    return HostJob(
        name=host.name, data=data, facts=keys, nonce=nonce, section_cap=section_cap, sudo=sudo, jump=host.jump
    )


def record_base(host: Host) -> dict[str, Any]:
    """The inventory fields of a host's record (what checks may read of the inventory)."""
    data = host.info
    return {
        "name": host.name,
        "connector": host.connector,
        "groups": host.groups,
        "hds_activities": data.hds_activities,
        "roles": data.roles,
        "location_country": data.location_country,
        "ssh_hostname": data.ssh_hostname,
        "tls_endpoints": data.tls_endpoints,
        "backup_repositories": data.backup_repositories,
    }


def _ran(probe: Probe, round_: RawRound, section_cap: int) -> bool:
    """Whether ``probe`` (the collection's, which it sent) is the probe of ``round_``: the same nonce, cap
    and facts in order, as rendering the round's facts again would give, without rendering it again."""
    return (
        probe.nonce == round_.nonce
        and probe.section_cap == section_cap
        and [f.key for f in probe.facts] == round_.facts
    )


def host_record(
    host: Host, raw: RawProbe, section_cap: int = DEFAULT_SECTION_CAP, scanner: list[Capture] | None = None
) -> HostRecord:
    """Turn the worker's raw answer for one host into a record with parsed, redacted captures."""
    base = record_base(host)
    if not raw.connected:
        why = scrub_text(raw.error or "could not connect")
        return HostRecord(**base, probe=ProbeRun(connected=False, error=why))
    captures: list[Capture] = []
    problems: list[str] = []
    complete, noise, received = True, 0, 0
    cpu: float | None = None
    fact_s: dict[str, float] = {}
    clock: float | None = None
    expected: list[str] | None = None
    stream = hashlib.sha256()  # what the host printed, as received: its digest for the record
    for number, round_ in enumerate(raw.rounds, 1):
        asks: list[str] | None = None
        if round_.parsed is not None and round_.error is None and _ran(round_.parsed[0], round_, section_cap):
            probe, parsed, asks = round_.parsed  # parsed by the collection already, to find the second round
        else:
            probe = render([fact_from_key(k) for k in round_.facts], round_.nonce, section_cap)
            parsed = parse(probe, round_.stdout, transport_error=round_.error, stderr=round_.stderr)
        if expected is not None and [f.key for f in probe.facts] != expected:
            parsed.problem, parsed.complete = (
                "second probe round does not match the first one's output",
                False,
            )
        expected = asks if asks is not None else [f.key for f in follow_ups(probe, parsed.captures)]
        captures += parsed.captures
        complete = complete and parsed.complete
        noise += parsed.noise_lines
        if parsed.cpu_s is not None:
            cpu = round((cpu or 0.0) + parsed.cpu_s, 3)
        fact_s.update(parsed.fact_s)
        clock = max(clock or 0.0, parsed.clock_s or 0.0) or None  # the coarser clock, if rounds differ
        printed = round_.stdout.encode("utf-8", "replace")
        stream.update(printed)
        received += len(printed)
        if parsed.problem:
            problems.append(parsed.problem if number == 1 else f"round {number}: {parsed.problem}")
    if fact_s and raw.duration_s is not None and sum(fact_s.values()) > raw.duration_s + (clock or 0.0):
        fact_s, clock = {}, None  # longer on the host than the whole exchange: its clock jumped (NTP step)
    if expected:  # the first round asked for a second one that never came back
        complete = False
        problems.append("second probe round missing")
    run = ProbeRun(
        connected=True,
        complete=complete,
        error=scrub_text("; ".join(problems)) if problems else None,
        commands=len(raw.rounds),
        started_at=raw.started_at,
        duration_s=raw.duration_s,
        bytes_received=received,
        noise_lines=noise,
        cpu_s=cpu,
        fact_s=fact_s,
        clock_s=clock,
        stream_sha256=stream.hexdigest(),
    )
    return HostRecord(**base, probe=run, captures=[redact(c) for c in [*captures, *(scanner or [])]])


def scan(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    inventory: Inventory,
    options: CollectOptions | None = None,
    section_cap: int = DEFAULT_SECTION_CAP,
    outside: list[Host] | None = None,
    shard: str | None = None,
    progress: Callable[[HostRecord], None] | None = None,
    captures: Callable[[HostRecord], None] | None = None,
) -> ScanResult:
    """Plan, collect and evaluate every host of the inventory against the catalogue.

    ``outside`` are inventory hosts left out of this scan (``--limit``, ``--shard``): fleet checks that need
    them say so. ``shard`` (``K/N``) is recorded, for ``merge``. ``progress`` is told of each host as soon
    as its record is made.

    Hosts are judged as their records are made (a few at a time), while the others are still being
    probed, and the fleet checks once all are in. By default the records keep their captures; given
    ``captures``, a host's record is handed to it as soon as it is made (to write them out) and kept
    without them once judged, so a fleet's captures are never all in memory at once.
    """
    options = options or CollectOptions()
    started = utc_now()
    nonce = new_nonce()
    jobs, from_scanner = [], {}
    for h in inventory.hosts:  # the facts planned for a host are not kept past its job
        planned = plan_facts(catalog, checks, host_view(h))
        jobs.append(_job(h, [f for f in planned if f.origin == "host"], nonce, section_cap))
        from_scanner[h.name] = [f for f in planned if f.origin == "scanner"]
    network = collect_network(from_scanner, options.connect_timeout, options.parallel)
    del from_scanner
    by_name = {h.name: h for h in inventory.hosts}
    order = [h.name for h in inventory.hosts] + [h.name for h in outside or []]
    scope = Scope(
        inventory_hosts=len(order),
        outside={h.name: list(h.info.roles) for h in outside or []},
        shard=shard,
        order=inventory.order or order,
    )
    evaluator = Evaluator(catalog, checks, scope, started)
    built: dict[str, HostRecord] = {}
    waiting: list[HostRecord] = []

    def judge() -> None:
        for record in waiting:
            evaluator.add(record)
            if captures is not None:
                record.captures = []
        waiting.clear()
        settle()  # what the judged hosts left stays: the collector need not walk it again

    def keep(raw: RawProbe) -> None:
        # a host's record as soon as it is done; its raw output and parse are dropped with ``raw``
        record = host_record(by_name[raw.name], raw, section_cap, network.get(raw.name))
        if captures is not None:  # handed over at once: an interrupted scan still has every host done
            captures(record)
        if progress is not None:
            progress(record)
        built[raw.name] = record
        waiting.append(record)
        # judged a few at a time: the checks' code and the shared caches stay warm in the CPU's caches
        if len(waiting) >= _JUDGE_EVERY:
            judge()

    with few_collections() as settle:
        collect(jobs, options, on_host=keep)  # every host, the unanswered ones as errors, goes through keep
        judge()
        verdicts = evaluator.finish([h.name for h in inventory.hosts])
    run = RunRecord(
        tool_version=__version__,
        started_at=started,
        finished_at=utc_now(),
        inventory=inventory.path,
        catalog_digest=catalog.digest,
        profile=catalog.profile,
        scope=scope,
        inventory_sha256=file_sha256(inventory.path),
        code_digest=code_digest(),
    )
    return ScanResult(run=run, hosts=[built[h.name] for h in inventory.hosts], verdicts=verdicts)
