"""Where a probe spends its time on this machine: each section's wall time and the programs it starts.

    python bench/probe_sections.py                       # the full profile without walks, this machine
    python bench/probe_sections.py --skip-tag fs-walk --top 20
    python bench/probe_sections.py --profile minimal --no-strace

Renders the probe the scan would send to this host (plan, de-duplication, batching), then runs each section
on its own, in a fresh ``sh`` with the probe's environment, ``--repeat`` times, and prints the median wall
time per section, its output size and, with ``strace``, how many programs it executes (each costs a fork and
an exec, about a millisecond of CPU here: most of a probe's cost). A section alone reads its files itself
(one ``stat`` and one ``head``); in the probe, those reads are pooled into one pair for all sections. The
whole probe is also run once, as the scan runs it, and its programs counted. Read only, like the probe.
Nothing is asserted: this is a map for making the probe cheaper.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hds_compliance.catalog import load_catalog
from hds_compliance.check import HostInfo, registry
from hds_compliance.collect.probe import Probe, new_nonce, render
from hds_compliance.evaluate.engine import plan_facts


def prelude(probe: Probe) -> str:
    """The probe's environment lines (locale, PATH, nonce, cap), without its transport and framing."""
    lines = probe.script.split("\n")
    return "\n".join(line for line in lines[:3]) + "\n"


def run_section(
    env: str, script: str, work: Path, trace: bool
) -> tuple[float, int, collections.Counter[str]]:
    """Wall time of one section run alone, its output size, and the programs it executed (with strace)."""
    path = work / "section.sh"
    path.write_text(f"{env}f() {{\n{script}\n}}\n( f ) 2>/dev/null\n")
    started = time.perf_counter()
    done = subprocess.run(["sh", str(path)], capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, len(done.stdout), count_programs(path, work) if trace else collections.Counter()


def count_programs(path: Path, work: Path) -> collections.Counter[str]:
    """The programs ``sh PATH`` executes, by name (strace), sh itself left out."""
    programs: collections.Counter[str] = collections.Counter()
    log = work / "trace"
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log), "sh", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    for line in log.read_text().splitlines()[1:]:  # the first execve is sh itself
        if 'execve("' in line and "= -1" not in line:
            programs[line.split('execve("', 1)[1].split('"', 1)[0].rsplit("/", 1)[-1]] += 1
    return programs


def main() -> None:
    """Command line."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--profile", default="full")
    cli.add_argument("--skip-tag", action="append", default=[], help="leave out checks so tagged")
    cli.add_argument("--repeat", type=int, default=3)
    cli.add_argument("--top", type=int, default=30, help="sections listed, most expensive first")
    cli.add_argument("--no-strace", action="store_true", help="do not count programs")
    args = cli.parse_args()
    checks = registry()
    catalog = load_catalog(checks=checks, profile=args.profile, skip_tags=["fs-walk", *args.skip_tag])
    facts = plan_facts(catalog, checks, HostInfo(name="local", connector="@local"))
    probe = render(facts, new_nonce())
    trace = not args.no_strace and shutil.which("strace") is not None
    env = prelude(probe)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hds-sections-") as tmp:
        for section in probe.sections:
            times, programs, size = [], collections.Counter[str](), 0
            for i in range(args.repeat):
                elapsed, size, seen = run_section(env, section.script, Path(tmp), trace and i == 0)
                times.append(elapsed)
                programs += seen
            label = ",".join(f.key for f in section.facts)
            rows.append((statistics.median(times), sum(programs.values()), size, label, programs))
        started = time.perf_counter()
        done = subprocess.run(["sh", "-s"], input=probe.script.encode(), capture_output=True, check=False)
        whole = time.perf_counter() - started
        script = Path(tmp) / "probe.sh"
        script.write_text(probe.script)
        run = count_programs(script, Path(tmp)) if trace else collections.Counter()
    rows.sort(key=lambda r: r[0], reverse=True)
    print(f"{len(facts)} planned facts, {len(probe.facts)} distinct, {len(probe.sections)} sections")
    pooled = f", {len(probe.deferred)} sections' file reads pooled" if probe.deferred else ""
    print(
        f"whole probe: {whole * 1000:.0f} ms wall, {len(done.stdout)} bytes of output, "
        f"{sum(run.values())} programs{pooled}"
    )
    if run:
        print("  its programs: " + ", ".join(f"{name}×{n}" for name, n in run.most_common()))
    print(f"sections alone: {sum(r[0] for r in rows) * 1000:.0f} ms, {sum(r[1] for r in rows)} programs")
    print(f"{'ms':>8} {'progs':>5} {'bytes':>7}  section")
    for elapsed, count, size, label, programs in rows[: args.top]:
        top = ", ".join(f"{name}×{n}" for name, n in programs.most_common(4))
        print(f"{elapsed * 1000:8.1f} {count:5d} {size:7d}  {label[:60]}  {top}")
    by_size = sorted(rows, key=lambda r: r[2], reverse=True)[:8]
    print("largest outputs: " + ", ".join(f"{r[3][:30]} {r[2]}" for r in by_size))


if __name__ == "__main__":
    main()
