"""Benchmark: a local scan with the full catalogue against ``lynis audit system --quick``, in the same run.

Both tools audit this machine, one after the other, ``--repeat`` times; the figures are medians of wall time
and CPU time (the process and everything it started, from ``getrusage`` of the reaped children). Printed as
ratios lynis ÷ hds-compliance. Nothing is asserted.

    sh scripts/install.sh && apt-get install -y lynis
    .venv/bin/python bench/local.py --repeat 3

The scan runs the ``full`` profile twice: without the file-system walks (``--skip-tag fs-walk``, what a
deployment gate runs) and with them (what a certification run does). lynis writes its log and report to
/dev/null here (by default it writes /var/log/lynis.log and /var/log/lynis-report.dat: a scanner that writes).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """One timed command."""

    wall_s: float
    cpu_s: float
    exit_code: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> Run:
    """Run ``argv`` to completion, its output discarded; wall time and the CPU of it and its children."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return Run(time.perf_counter() - t0, _children_cpu() - cpu0, done.returncode)


def median(runs: list[Run], attr: str) -> float:
    """Median of one measure."""
    return statistics.median(getattr(r, attr) for r in runs)


def main(argv: list[str] | None = None) -> int:
    """Command line: run both tools ``--repeat`` times and print the ratios."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--repeat", type=int, default=3)
    cli.add_argument("--no-walks-only", action="store_true", help="skip the scan with file-system walks")
    args = cli.parse_args(argv)
    lynis = shutil.which("lynis", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if lynis is None:
        print("lynis is not installed: apt-get install -y lynis", file=sys.stderr)
        return 2
    exe = str(Path(sys.executable).with_name("hds-compliance"))
    modes = {
        "hds-compliance (full, no walks)": [exe, "scan", "-q", "--profile", "full", "--skip-tag", "fs-walk"],
        "lynis audit system --quick": [
            lynis,
            "audit",
            "system",
            "--quick",
            "--no-colors",
            "--logfile",
            "/dev/null",
            "--report-file",
            "/dev/null",
        ],
    }
    if not args.no_walks_only:
        modes["hds-compliance (full, with walks)"] = [exe, "scan", "-q", "--profile", "full"]
    runs: dict[str, list[Run]] = {name: [] for name in modes}
    for _ in range(args.repeat):
        for name, command in modes.items():  # interleaved, so both see the same machine state
            runs[name].append(timed(command))
    base = runs["lynis audit system --quick"]
    print(f"{'':36s} {'wall s':>8s} {'CPU s':>8s}   lynis ÷ this (wall, CPU)   (medians of {args.repeat})")
    for name, measured in runs.items():
        wall, cpu = median(measured, "wall_s"), median(measured, "cpu_s")
        ratio = f"{median(base, 'wall_s') / wall:6.1f}x {median(base, 'cpu_s') / cpu:6.1f}x"
        print(f"{name:36s} {wall:8.2f} {cpu:8.2f}   {ratio}")
    codes = {name: sorted({r.exit_code for r in measured}) for name, measured in runs.items()}
    print(f"exit codes: {codes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
