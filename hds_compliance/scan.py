"""A scan, end to end: plan the facts per host, collect them (one probe per host), evaluate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hds_compliance import __version__
from hds_compliance.catalog import Catalog
from hds_compliance.check import Check, HostInfo
from hds_compliance.collect import CollectOptions, HostJob, RawProbe, collect
from hds_compliance.evaluate import evaluate, plan_facts
from hds_compliance.inventory import Host, Inventory
from hds_compliance.model import HostRecord, ProbeRun, RunRecord, ScanResult
from hds_compliance.probe import DEFAULT_SECTION_CAP, Probe, new_nonce, parse, render

# Host data handed to pyinfra: connection settings only (our own keys and pyinfra's global
# arguments such as _sudo stay out of pyinfra's hands).
_CONNECTION_PREFIXES = ("ssh_", "chroot_")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def host_view(host: Host) -> HostInfo:
    """What checks see of an inventory host."""
    data = host.info
    return HostInfo.of(host.name, host.connector, data.hds_activities, data.roles, data.location_country)


def _job(host: Host, probe: Probe) -> HostJob:
    data = {k: v for k, v in host.data.items() if k.startswith(_CONNECTION_PREFIXES)}
    sudo = bool(host.data.get("hds_sudo") or host.data.get("_sudo"))
    return HostJob(name=host.name, data=data, script=probe.script, sudo=sudo)


def host_record(host: Host, probe: Probe, raw: RawProbe) -> HostRecord:
    """Turn the worker's raw answer for one host into a record with parsed, redacted captures."""
    data = host.info
    base: dict[str, Any] = {
        "name": host.name,
        "connector": host.connector,
        "groups": host.groups,
        "hds_activities": data.hds_activities,
        "roles": data.roles,
        "location_country": data.location_country,
    }
    if not raw.connected:
        return HostRecord(**base, probe=ProbeRun(connected=False, error=raw.error or "could not connect"))
    parsed = parse(probe, raw.stdout, transport_error=raw.error, stderr=raw.stderr)
    run = ProbeRun(
        connected=True,
        complete=parsed.complete,
        error=parsed.problem,
        commands=raw.commands,
        started_at=raw.started_at,
        duration_s=raw.duration_s,
        bytes_received=len(raw.stdout.encode("utf-8", "replace")),
        noise_lines=parsed.noise_lines,
    )
    return HostRecord(**base, probe=run, captures=parsed.captures)


def scan(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    inventory: Inventory,
    options: CollectOptions | None = None,
    section_cap: int = DEFAULT_SECTION_CAP,
) -> ScanResult:
    """Plan, collect and evaluate every host of the inventory against the catalogue."""
    options = options or CollectOptions()
    started = _now()
    nonce = new_nonce()
    probes: dict[str, Probe] = {}
    for host in inventory.hosts:
        probes[host.name] = render(plan_facts(catalog, checks, host_view(host)), nonce, section_cap)
    raws = collect([_job(h, probes[h.name]) for h in inventory.hosts], options)
    records = [host_record(h, probes[h.name], raws[h.name]) for h in inventory.hosts]
    verdicts = evaluate(catalog, checks, records)
    run = RunRecord(
        tool_version=__version__,
        started_at=started,
        finished_at=_now(),
        inventory=inventory.path,
        catalog_digest=catalog.digest,
    )
    return ScanResult(run=run, hosts=records, verdicts=verdicts)
