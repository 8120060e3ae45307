"""The scanning machine's CPU per host in probe mode, stage by stage (a map for making the client cheaper).

    python bench/client_cpu.py record --hosts 20 --dump /var/tmp/hds-client.json [--skip-tag TAG]
    python bench/client_cpu.py replay /var/tmp/hds-client.json [--copies 5] [--repeat 3] [--cprofile F]

``record`` starts an SSH lab (the lab of ``bench/probe_vs_naive.py``, on 127.0.33.2..), runs the stages of
``hds_compliance.scan.scan`` one after another and prints the CPU each costs per host: planning, the
collector worker (its own process: imports, SSH, the probe's output), the scanning process's side of the
collection, host records (probe parsing, redaction, models), evaluation, and the outputs (JSON, JUnit). It
writes what the worker returned to ``--dump``, so the stages after collection can be replayed offline.

``replay`` re-runs those stages on the dump without any host (``--copies k``: every host k times under
new names, to see the cost at k times the hosts), optionally under cProfile, and prints the JSON and JUnit
digests: the same dump must give the same bytes before and after a change of the client.

CPU is ``time.process_time`` of this process, plus ``getrusage(RUSAGE_CHILDREN)`` for the worker. Nothing is
asserted on times.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import ipaddress
import json
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hds_compliance.catalog import Catalog, load_catalog  # noqa: E402
from hds_compliance.check import Check, registry  # noqa: E402
from hds_compliance.collect import CollectOptions, RawProbe, RawRound, collect  # noqa: E402
from hds_compliance.collect.network import collect_network  # noqa: E402
from hds_compliance.collect.probe import DEFAULT_SECTION_CAP, new_nonce  # noqa: E402
from hds_compliance.evaluate import evaluate, plan_facts  # noqa: E402
from hds_compliance.facts import Fact  # noqa: E402
from hds_compliance.inventory import Host, Inventory, load_inventory  # noqa: E402
from hds_compliance.junit import to_junit  # noqa: E402
from hds_compliance.model import RunRecord, ScanResult, Scope  # noqa: E402
from hds_compliance.report import to_json  # noqa: E402
from hds_compliance.scan import _job, host_record, host_view  # noqa: E402

LAB_FIRST = "127.0.33.2"  # this bench's own lab addresses (the perf-client area's)
LAB_NET = "10.202.0.0"  # and, hosts on networks of their own, their /31s


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _catalog(skip: list[str]) -> tuple[Catalog, dict[str, Check[Any]]]:
    checks = registry()
    return load_catalog(checks=checks, profile="full", skip_tags=["fs-walk", *skip]), checks


class Stages:
    """CPU seconds per named stage, accumulated."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def run(self, name: str, func: Callable[[], Any]) -> Any:
        t0 = time.process_time()
        value = func()
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - t0
        return value

    def print(self, hosts: int, title: str) -> None:
        total = sum(self.cpu.values())
        print(f"{title}: {hosts} hosts, client CPU {total:.3f} s = {1000 * total / hosts:.1f} ms/host")
        for name, cpu in self.cpu.items():
            print(f"  {name:34s} {cpu:7.3f} s  {1000 * cpu / hosts:7.2f} ms/host  {100 * cpu / total:5.1f} %")


def post_collection(
    stages: Stages,
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    inventory: Inventory,
    raws: dict[str, RawProbe],
    started: str,
) -> tuple[str, str]:
    """The scan's stages after collection, then the outputs; returns the JSON and JUnit texts."""
    from_scanner: dict[str, list[Fact[Any]]] = {h.name: [] for h in inventory.hosts}  # lab: no TLS endpoint
    network = stages.run("network (scanner facts)", lambda: collect_network(from_scanner, 10.0, 50))
    records = stages.run(
        "host records (parse, redact, models)",
        lambda: [host_record(h, raws[h.name], scanner=network.get(h.name)) for h in inventory.hosts],
    )
    scope = Scope(inventory_hosts=len(inventory.hosts))
    verdicts = stages.run("evaluate", lambda: evaluate(catalog, checks, records, scope, started))
    run = RunRecord(
        tool_version="bench",
        started_at=started,
        finished_at=started,
        inventory=inventory.path,
        catalog_digest=catalog.digest,
        profile=catalog.profile,
        scope=scope,
    )
    result = ScanResult(run=run, hosts=records, verdicts=verdicts)
    text = stages.run("output: JSON", lambda: to_json(result))
    junit = stages.run("output: JUnit", lambda: to_junit(result, catalog))
    return text, junit


def record(args: argparse.Namespace) -> int:
    """Lab scan, stage by stage; dump the worker's answer."""
    import bench.probe_vs_naive as bench

    bench.FIRST_ADDRESS = ipaddress.IPv4Address(LAB_FIRST)
    bench.NET_BASE = ipaddress.IPv4Address(LAB_NET)
    catalog, checks = _catalog(args.skip_tag)
    lab = bench.start_lab(args.hosts, own_network=not args.shared_net)
    try:
        work = Path(tempfile.mkdtemp(prefix="hds-client-cpu-"))
        inventory = load_inventory(lab.write_inventory(work / "inventory.py"))
        options = CollectOptions(parallel=args.parallel)
        stages = Stages()
        started = "2025-01-01T00:00:00Z"
        planned = stages.run(
            "plan", lambda: {h.name: plan_facts(catalog, checks, host_view(h)) for h in inventory.hosts}
        )
        if any(f.origin != "host" for facts in planned.values() for f in facts):
            print("warning: scanner-side facts planned; this bench leaves them out")
        nonce = new_nonce()
        jobs = stages.run(
            "render jobs",
            lambda: [
                _job(h, [f for f in planned[h.name] if f.origin == "host"], nonce, DEFAULT_SECTION_CAP)
                for h in inventory.hosts
            ],
        )
        kids = _children_cpu()
        raws = stages.run("collect: scanning process (1st rounds parsed)", lambda: collect(jobs, options))
        stages.cpu["collect: worker process"] = _children_cpu() - kids  # process_time leaves children out
        post_collection(stages, catalog, checks, inventory, raws, started)
        stages.print(len(inventory.hosts), "record")
        bad = [name for name, raw in raws.items() if not raw.connected]
        if bad:
            print(f"warning: unreachable: {bad}")
        dump = {
            "skip_tag": args.skip_tag,
            "started": started,
            "inventory": [dataclasses.asdict(h) for h in inventory.hosts],
            "raws": {name: _plain(raw) for name, raw in raws.items()},
        }
        Path(args.dump).write_text(json.dumps(dump))
        print(f"dump: {args.dump}")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        lab.stop()
        shutil.rmtree(lab.root, ignore_errors=True)
    return 0


def _plain(raw: RawProbe) -> dict[str, Any]:
    """A host's raw answer as JSON data (without the collection's own parse of its first round)."""
    rounds = [
        {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "parsed"} for r in raw.rounds
    ]
    return {**{f.name: getattr(raw, f.name) for f in dataclasses.fields(raw)}, "rounds": rounds}


def _load_dump(path: Path, copies: int) -> tuple[list[str], str, Inventory, dict[str, RawProbe]]:
    dump = json.loads(path.read_text())
    hosts, raws = [], {}
    for k in range(copies):
        for entry in dump["inventory"]:
            name = entry["name"] if k == 0 else f"{entry['name']}-{k}"
            hosts.append(Host(**{**entry, "name": name}))
            raw = dump["raws"][entry["name"]]
            raws[name] = RawProbe(**{**raw, "name": name, "rounds": [RawRound(**r) for r in raw["rounds"]]})
    return dump["skip_tag"], dump["started"], Inventory(path="bench-inventory.py", hosts=hosts), raws


def replay(args: argparse.Namespace) -> int:
    """Offline: host records, evaluation, outputs, from a dump."""
    skip, started, inventory, raws = _load_dump(Path(args.dump), args.copies)
    catalog, checks = _catalog(skip)
    runs: list[Stages] = []
    digests = set()
    profiler = cProfile.Profile() if args.cprofile else None
    for _ in range(args.repeat):
        stages = Stages()
        if profiler is not None:
            profiler.enable()
        text, junit = post_collection(stages, catalog, checks, inventory, raws, started)
        if profiler is not None:
            profiler.disable()
        runs.append(stages)
        digests.add(
            (hashlib.sha256(text.encode()).hexdigest()[:16], hashlib.sha256(junit.encode()).hexdigest()[:16])
        )
    median = Stages()
    median.cpu = {name: statistics.median(s.cpu[name] for s in runs) for name in runs[0].cpu}
    median.print(len(inventory.hosts), f"replay (median of {args.repeat})")
    for json_digest, junit_digest in sorted(digests):
        print(f"JSON sha256:{json_digest}  JUnit sha256:{junit_digest}")
    if args.save_json:
        Path(args.save_json).write_text(text)
    if profiler is not None:
        profiler.dump_stats(args.cprofile)
        pstats.Stats(args.cprofile).sort_stats("cumulative").print_stats(40)
    return 0 if len(digests) == 1 else 1


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="scan an SSH lab stage by stage and dump the worker's answer")
    rec.add_argument("--hosts", type=int, default=20)
    rec.add_argument("--shared-net", action="store_true", help="lab hosts share one network namespace")
    rec.add_argument("--parallel", type=int, default=50)
    rec.add_argument("--skip-tag", action="append", default=[], metavar="TAG")
    rec.add_argument("--dump", required=True)
    rep = sub.add_parser("replay", help="re-run the stages after collection from a dump, offline")
    rep.add_argument("dump")
    rep.add_argument("--copies", type=int, default=1, help="every host this many times (default 1)")
    rep.add_argument("--repeat", type=int, default=3)
    rep.add_argument("--cprofile", help="write a cProfile of the replays here and print its top")
    rep.add_argument("--save-json", help="write the JSON results of the last replay here")
    args = parser.parse_args(argv)
    if args.command == "record" and os.geteuid() != 0:
        print("needs root (the SSH lab uses mount and PID namespaces)", file=sys.stderr)
        return 2
    return record(args) if args.command == "record" else replay(args)


if __name__ == "__main__":
    sys.exit(main())
