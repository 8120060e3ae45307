"""Benchmark: the whole ``hds-compliance scan`` command over a fleet of real sshd hosts, as CI runs it.

    .venv/bin/python bench/fleet.py --hosts 100 --naive        # beside one pyinfra command per fact
    .venv/bin/python bench/fleet.py --hosts 500
    .venv/bin/python bench/fleet.py --hosts 500 --dead 10 --hanging 5
    .venv/bin/python bench/fleet.py --hosts 100,500 --repeat 3  # per extra host from median runs
    .venv/bin/python bench/fleet.py --hosts 100,500 --repeat 3 --exe old=/tmp/old/hds-compliance --exe new

Starts the SSH lab of ``bench/probe_vs_naive.py`` (live hosts h001.., each sshd in its own mount, PID and
network namespace, host-specific files; ``--shared-net``: all on 127.0.0.2.. in one network), adds dead hosts
(a closed port: the connection is refused) and hanging hosts (a server that accepts TCP and never answers),
and runs ``hds-compliance scan`` over them in a child process with the shipped catalogue, file-system walks
left out (lab hosts share one root). It prints, for the command's whole process tree (the scan and its
collector worker):

* wall time; client CPU in all and per host (``getrusage`` of the reaped tree), and per extra host when two
  fleet sizes are given (``--hosts 100,500``: (CPU at 500 - CPU at 100) / 400);
* the lab's CPU (the sshd listeners and every session, command and probe below them) per live host, and the
  probe's own CPU per host as the probes reported it (``probe.cpu_s``);
* the CPU floor (client + lab CPU divided by the cores: the lab shares this machine's cores, so wall time
  cannot be less) and wall time against it;
* peak RSS: of the whole tree (sampled every 20 ms) and of its largest process (its ``VmHWM``, sampled);
* how every host ended: live hosts judged, dead and hanging ones in ``error`` with their reason. Any live
  host not judged, or dead or hanging host not in error, is printed and the exit status is 1.

``--exe LABEL=PATH`` (given twice or more) compares installs of the command, an A/B: each repeat runs every
one of them on the same lab, one after the other, the order turning at each repeat, so that a change of a
few ms per host is not lost in the machine's drift between runs (20 to 40% within an hour here). A bare
``--exe LABEL`` is the command next to this Python (this checkout's install). Each install gets its own
figures, and the differences of the later ones against the first are printed, run by run and in medians.
Each pair is also given as client CPU per lab CPU of the same run, new over old: the lab's work is the
same for every install, so its CPU is a clock of the machine's speed at that moment.

``--naive`` also runs the baseline of ``bench/probe_vs_naive.py`` (one command per fact, same live hosts)
in the same run. Nothing is asserted on times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import probe_vs_naive as pvn  # the lab and the naive baseline

EXE = Path(sys.executable).with_name("hds-compliance")


@dataclass
class Run:
    """One ``hds-compliance scan`` of the fleet."""

    hosts: int
    live: int
    wall_s: float
    client_cpu_s: float
    lab_cpu_s: float
    peak_tree_rss_mb: float
    max_process_rss_mb: float
    exit_code: int
    probe_cpu_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def floor_s(self) -> float:
        """Client and lab CPU divided by the cores: no wall time can be shorter here."""
        return (self.client_cpu_s + self.lab_cpu_s) / (os.cpu_count() or 1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss_mb(root: int) -> tuple[float, float]:
    """Resident memory of ``root`` and every process below it, now; and the highest peak (VmHWM) any of
    them has reached so far. (``getrusage``'s ``ru_maxrss`` of the children is no measure of the scan:
    a child forked from this process counts this process's memory until it execs, and this process holds
    the previous run's results.)"""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
        except (OSError, ValueError):
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, highest, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
        highest = max(highest, int(peak) * 1024)
    return total / 2**20, highest / 2**20


def write_inventory(lab: pvn.SSHLab, folder: Path, dead: int, hanging_port: int | None, hanging: int) -> Path:
    """The lab's live hosts, then dead hosts (a closed port) and hanging ones (the hanging server)."""
    from tests.lab.netfail import closed_port

    path = lab.write_inventory(folder / "fleet.py")
    common = {
        "ssh_user": "root",
        "ssh_key": str(lab.client_key),
        "ssh_known_hosts_file": str(lab.known_hosts),
        "ssh_strict_host_key_checking": "yes",
    }
    rows = [("d", i, {"ssh_hostname": "127.0.0.1", "ssh_port": closed_port()}) for i in range(dead)]
    rows += [("x", i, {"ssh_hostname": "127.0.0.1", "ssh_port": hanging_port}) for i in range(hanging)]
    extra = "".join(f"    ({f'{kind}{i + 1:03d}'!r}, { ({**common, **data})!r}),\n" for kind, i, data in rows)
    path.write_text(path.read_text() + (f"unreachable = [\n{extra}]\n" if extra else ""))
    return path


def scan(
    inventory: Path, listeners: list[int], out: Path, timeout: float, exe: Path = EXE
) -> tuple[Run, dict[str, object]]:
    """Run the command, sample its tree's memory, and measure what it and the lab spent."""
    out.unlink(missing_ok=True)  # a run that writes nothing must not be judged on the previous one's file
    # the outputs a CI job asks for: JSON results and a JUnit report
    argv = [str(exe), "scan", "-i", str(inventory), "--skip-tag", "fs-walk", "--json", str(out), "-q"]
    argv += ["--junit", str(out.with_suffix(".xml"))]
    argv += ["--connect-timeout", "5", "--timeout", str(timeout)]
    lab0, cpu0 = pvn.target_cpu(listeners), _children_cpu()
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, largest = 0.0, 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, largest
        while not done.is_set():
            tree, highest = _tree_rss_mb(child.pid)
            peak, largest = max(peak, tree), max(largest, highest)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    cpu1 = _children_cpu()
    pvn.wait_sessions_gone(listeners)
    results = json.loads(out.read_text()) if out.exists() else {"hosts": []}
    run = Run(
        hosts=0,
        live=0,
        wall_s=wall,
        client_cpu_s=cpu1 - cpu0,
        lab_cpu_s=pvn.target_cpu(listeners) - lab0,
        peak_tree_rss_mb=peak,
        max_process_rss_mb=largest,
        exit_code=child.returncode,
    )
    if child.returncode not in (0, 1):
        run.problems.append(f"scan exited {child.returncode}: {(stderr or stdout).strip()[-300:]}")
    return run, results


def _median(runs: list[Run]) -> Run:
    """The run of median client CPU (a whole run, so its figures belong together)."""
    return sorted(runs, key=lambda run: run.client_cpu_s)[len(runs) // 2]


def judge(run: Run, results: dict[str, object], live: set[str]) -> None:
    """Every live host judged; every dead or hanging host in error with its reason."""
    hosts = results.get("hosts", [])
    assert isinstance(hosts, list)
    run.hosts, run.live = len(hosts), len(live)
    for host in hosts:
        probe = host["probe"]
        if host["name"] in live:
            if not (probe["connected"] and probe["complete"]):
                run.problems.append(f"live host {host['name']} not judged: {probe.get('error')}")
            elif probe.get("cpu_s") is not None:
                run.probe_cpu_s.append(probe["cpu_s"])
        elif probe["connected"] or not probe.get("error"):
            run.problems.append(f"unreachable host {host['name']} not in error with a reason")


def report(run: Run, label: str) -> None:
    """The figures of one run."""
    per_host = run.client_cpu_s / max(run.hosts, 1) * 1000
    lab_per_host = run.lab_cpu_s / max(run.live, 1) * 1000
    probe = sum(run.probe_cpu_s) / len(run.probe_cpu_s) * 1000 if run.probe_cpu_s else float("nan")
    print(
        f"{label}: {run.hosts} hosts ({run.live} live), exit {run.exit_code}\n"
        f"  wall {run.wall_s:.2f} s; CPU floor {run.floor_s:.2f} s (client + lab / {os.cpu_count()} cores); "
        f"wall / floor {run.wall_s / run.floor_s:.2f}\n"
        f"  client CPU {run.client_cpu_s:.2f} s ({per_host:.1f} ms/host); lab CPU {run.lab_cpu_s:.2f} s "
        f"({lab_per_host:.1f} ms/live host); probe CPU reported by the hosts {probe:.0f} ms/host\n"
        f"  peak RSS: process tree {run.peak_tree_rss_mb:.0f} MB, "
        f"largest process {run.max_process_rss_mb:.0f} MB"
    )
    for problem in run.problems[:10]:
        print(f"  PROBLEM {problem}")


def main(argv: list[str] | None = None) -> int:
    """Run the fleet benchmark; exit 1 if a host ended wrong, 2 if it cannot run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", default="100", help="fleet sizes, comma-separated (e.g. 100,500)")
    parser.add_argument("--dead", type=float, default=0.0, help="percent of hosts with a closed port")
    parser.add_argument("--hanging", type=float, default=0.0, help="percent of hosts that never answer")
    parser.add_argument("--naive", action="store_true", help="also the one-command-per-fact baseline")
    parser.add_argument("--timeout", type=float, default=120.0, help="probe timeout per host (s)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="scans per fleet size on the same lab; medians are compared"
    )
    parser.add_argument(
        "--shared-net",
        action="store_true",
        help="lab hosts share this network namespace (each then lists every lab listener as its own)",
    )
    parser.add_argument(
        "--exe",
        action="append",
        default=[],
        metavar="LABEL[=PATH]",
        help="an install of hds-compliance to run (twice or more: an interleaved A/B; bare LABEL: this one)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (the SSH lab uses mount and PID namespaces)", file=sys.stderr)
        return 2
    exes = _exes(args.exe)
    if exes is None:
        return 2
    sizes = [int(x) for x in args.hosts.split(",")]
    from tests.lab.netfail import HangingServer

    failed = False
    every: dict[str, list[list[Run]]] = {label: [] for label in exes}  # per install, per size: its runs
    for size in sizes:
        dead, hanging = round(size * args.dead / 100), round(size * args.hanging / 100)
        lab = None
        with tempfile.TemporaryDirectory(prefix="hds-fleet-") as tmp, HangingServer() as server:
            try:
                t0 = time.perf_counter()
                lab = pvn.start_lab(size - dead - hanging, own_network=not args.shared_net)
                print(
                    f"lab: {len(lab.hosts)} live sshd hosts started in {time.perf_counter() - t0:.1f} s, "
                    + ("sharing one network namespace" if args.shared_net else "each in its own network")
                )
                listeners = pvn._listener_pids(lab)
                inventory = write_inventory(lab, Path(tmp), dead, server.port, hanging)
                runs: dict[str, list[Run]] = {label: [] for label in exes}
                labels = list(exes)
                for number in range(max(args.repeat, 1)):
                    turn = number % len(labels)
                    for label in labels[turn:] + labels[:turn]:
                        out = Path(tmp) / "results.json"
                        run, results = scan(inventory, listeners, out, args.timeout, exes[label])
                        judge(run, results, set(lab.hosts))
                        title = f"hds-compliance scan, {size} hosts ({dead} dead, {hanging} hanging)"
                        title += f" [{label}]" if len(exes) > 1 else ""
                        report(run, title + (f", run {number + 1}/{args.repeat}" if args.repeat > 1 else ""))
                        runs[label].append(run)
                        failed = failed or bool(run.problems)
                for label in exes:
                    every[label].append(runs[label])
                if args.naive:
                    naive(lab, listeners, Path(tmp), _median(runs[labels[0]]))
            finally:
                if lab is not None:
                    lab.stop()
                    shutil.rmtree(lab.root, ignore_errors=True)
    of = f" (medians of {args.repeat} runs)" if args.repeat > 1 else ""
    for label, per_size in every.items():
        sized = [_median(runs) for runs in per_size]
        name = f" [{label}]" if len(exes) > 1 else ""
        if len(sized) >= 2:
            print(
                f"client CPU per extra host{name}, {sized[0].hosts} -> {sized[-1].hosts} hosts{of}: "
                f"{_per_extra(sized[0], sized[-1]):.1f} ms"
            )
    if len(exes) > 1:
        compare(every, sizes)
    return 1 if failed else 0


def _exes(given: list[str]) -> dict[str, Path] | None:
    """The installs to run, by label (none given: this one)."""
    exes: dict[str, Path] = {}
    for item in given or ["this"]:
        label, _, path = item.partition("=")
        exe = Path(path) if path else EXE
        if not os.access(exe, os.X_OK) or label in exes:
            print(f"--exe {item}: not an executable, or a label given twice", file=sys.stderr)
            return None
        exes[label] = exe
    return exes


def _per_extra(small: Run, large: Run) -> float:
    """Client CPU per extra host, in ms: (CPU at the larger size - CPU at the smaller) / extra hosts."""
    return (large.client_cpu_s - small.client_cpu_s) / max(large.hosts - small.hosts, 1) * 1000


def compare(every: dict[str, list[list[Run]]], sizes: list[int]) -> None:
    """Each install against the first: client CPU per host run by run (runs of one repeat were made
    back to back, so they share the machine's state), and their medians."""
    first, *others = every
    for label in others:
        for index, size in enumerate(sizes):
            pairs = list(zip(every[first][index], every[label][index], strict=True))
            deltas = [(b.client_cpu_s - a.client_cpu_s) / max(a.hosts, 1) * 1000 for a, b in pairs]
            shown = ", ".join(f"{d:+.1f}" for d in deltas)
            print(
                f"[{label}] - [{first}] at {size} hosts, client CPU per host: {shown} ms "
                f"(median {statistics.median(deltas):+.1f})"
            )
            # The lab does the same work for every install: its CPU in the same run is a clock of the
            # machine's speed at that moment, which on a shared VM drifts by a third within an hour.
            scaled = [
                (b.client_cpu_s / b.lab_cpu_s) / (a.client_cpu_s / a.lab_cpu_s) - 1
                for a, b in pairs
                if a.lab_cpu_s > 0 and b.lab_cpu_s > 0 and a.client_cpu_s > 0
            ]
            if scaled:
                print(
                    f"[{label}] / [{first}] at {size} hosts, client CPU per lab CPU of the same run: "
                    + ", ".join(f"{r:+.1%}" for r in scaled)
                    + f" (median {statistics.median(scaled):+.1%})"
                )
        if len(sizes) >= 2:
            before = _per_extra(_median(every[first][0]), _median(every[first][-1]))
            after = _per_extra(_median(every[label][0]), _median(every[label][-1]))
            print(
                f"[{label}] - [{first}] per extra host: {after - before:+.1f} ms "
                f"({before:.1f} -> {after:.1f})"
            )


def naive(lab: pvn.SSHLab, listeners: list[int], folder: Path, probe: Run) -> None:
    """The baseline on the same live hosts, in the same run, and the ratios."""
    from hds_compliance.collect import CollectOptions
    from hds_compliance.inventory import load_inventory

    catalog, checks = pvn.load_workload("full", [])
    inventory = load_inventory(lab.write_inventory(folder / "naive.py"))
    measure = pvn.run_naive(catalog, checks, inventory, CollectOptions(), listeners)
    print(
        f"naive (one command per fact): wall {measure.wall_s:.2f} s, "
        f"client CPU {measure.client_cpu_s:.2f} s, lab CPU {measure.target_cpu_s:.2f} s\n"
        f"  naive / scan: wall {measure.wall_s / probe.wall_s:.1f}x, "
        f"client CPU {measure.client_cpu_s / probe.client_cpu_s:.1f}x, "
        f"lab CPU {measure.target_cpu_s / probe.lab_cpu_s:.1f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
