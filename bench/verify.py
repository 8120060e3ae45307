"""Benchmark: ``verify`` of a fleet-sized bundle, beside the tools that do each of its parts alone.

    python bench/verify.py                   # 500 hosts from a 4-host lab's captures, median of 3
    python bench/verify.py --hosts 500 --lab 4 --repeat 3

Starts an SSH lab (``bench/probe_vs_naive.start_lab``: real sshd hosts, each in its namespaces), scans it
with the full catalogue (file-system walks left out) and copies its hosts' records under new names until
there are ``--hosts`` of them; ``hds-compliance evaluate`` judges that fleet, and ``report --bundle``
makes its signed bundle. Then, in the same run, ``--repeat`` times, alternated:

* integrity: verify's first pass (read the bundle folder, check the signature, every file's SHA-256 and
  size against the manifest) against ``sha256sum -c`` of the same files;
* re-evaluation: verify's second pass (load the catalogue snapshot, judge every host again, compare every
  verdict and the JUnit) against the same judging done by ``evaluate`` (read the results file, judge);
* the commands whole: ``hds-compliance verify`` of the bundle against ``hds-compliance evaluate`` of the
  results file (which does no integrity pass: verify's whole cost is shown against a re-judging alone).

Both sides run in this process where they are ours (CPU: ``time.process_time``) and as a child where they
are not (``sha256sum``: its CPU from ``getrusage``); the ratios are printed. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

EXE = Path(sys.executable).with_name("hds-compliance")
SCAN = ["--profile", "full", "--skip-tag", "fs-walk"]


def _cli(*args: str, cwd: Path) -> None:
    done = subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"hds-compliance {' '.join(args)}: exit {done.returncode}\n{done.stderr}")


def make_bundle(work: Path, hosts: int, lab_hosts: int) -> Path:
    """A signed bundle of ``hosts`` hosts made from a lab scan's records; its folder."""
    import probe_vs_naive

    lab = probe_vs_naive.start_lab(lab_hosts)
    try:
        lab.write_inventory(work / "inv.py")
        _cli("scan", "-i", "inv.py", *SCAN, "--json", "lab.json", "-q", cwd=work)
    finally:
        lab.stop()
    data = json.loads((work / "lab.json").read_text())
    names = [f"host{i:04d}" for i in range(hosts)]
    copies = [dict(data["hosts"][i % len(data["hosts"])], name=name) for i, name in enumerate(names)]
    data.update(hosts=copies, verdicts=[])
    data["run"]["scope"] = dict(data["run"]["scope"], inventory_hosts=hosts, order=names)
    (work / "raw.json").write_text(json.dumps(data))
    _cli("evaluate", "raw.json", *SCAN, "--json", "fleet.json", "-q", cwd=work)
    _cli("keygen", "keys", cwd=work)
    _cli(
        "report", "fleet.json", *SCAN, "--bundle", "bundle", "--sign-key", "keys/signing.key", "-q", cwd=work
    )
    return work / "bundle"


def _cpu(func: object) -> tuple[float, float]:
    """(wall, CPU) seconds of ``func()`` run here."""
    wall, cpu = time.perf_counter(), time.process_time()
    func()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def _child_cpu(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of a command; it must succeed or fail its gate (0 or 1), nothing else."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in (0, 1) or (argv[1:2] == ["verify"] and done.returncode != 0):
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}")
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--hosts", type=int, default=500)
    cli.add_argument("--lab", type=int, default=4, help="lab hosts scanned, whose records are copied")
    cli.add_argument("--repeat", type=int, default=3)
    cli.add_argument("--keep", type=Path, help="make (or reuse) the work folder here, and keep it")
    args = cli.parse_args(argv)

    from hds_compliance.catalog import load_catalog
    from hds_compliance.check import registry
    from hds_compliance.evaluate import evaluate
    from hds_compliance.evidence.bundle import read_bundle
    from hds_compliance.evidence.signing import load_public
    from hds_compliance.evidence.verify import Verification, _integrity, _manifest, _reevaluate
    from hds_compliance.gate import read_results

    work = args.keep or Path(tempfile.mkdtemp(prefix="hds-bench-verify-", dir="/var/tmp"))
    try:
        started = time.perf_counter()
        if args.keep is not None and (work / "bundle").is_dir():
            folder = work / "bundle"
        else:
            work.mkdir(parents=True, exist_ok=True)
            folder = make_bundle(work, args.hosts, args.lab)
        key = load_public(work / "keys/signing.pub")
        files = read_bundle(folder).files
        size = sum(len(d) for d in files.values())
        listed = _manifest(files, key, Verification())
        assert listed is not None
        (work / "SHA256SUMS").write_text(
            "".join(f"{d}  {n}\n" for n, d in sorted(listed["subjects"].items()))
        )
        catalog = load_catalog(profile="full", skip_tags=["fs-walk"])
        print(
            f"bundle: {args.hosts} hosts (copies of {args.lab} lab hosts), {len(files)} files, "
            f"{size / 1e6:.1f} MB; made in {time.perf_counter() - started:.0f} s"
        )

        def integrity() -> None:
            found = Verification()
            got = read_bundle(folder).files
            _integrity(got, _manifest(got, key, found) or {}, found)
            assert not found.problems, found.problems

        def reevaluation() -> None:
            found = Verification()
            _reevaluate(files, found, force=False, reports=False)
            assert not found.problems, found.problems[:3]

        def judging() -> None:
            recorded = read_results(work / "fleet.json")
            evaluate(catalog, registry(), recorded.hosts, recorded.run.scope, recorded.run.started_at)

        names = ("ours-i", "sha256sum", "ours-r", "evaluate", "verify-cmd", "evaluate-cmd")
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        sums = ["sha256sum", "--quiet", "-c", str(work / "SHA256SUMS")]
        for _ in range(args.repeat):
            rows["ours-i"].append(_cpu(integrity))
            rows["sha256sum"].append(_child_cpu(sums, folder))
            rows["ours-r"].append(_cpu(reevaluation))
            rows["evaluate"].append(_cpu(judging))
            rows["verify-cmd"].append(
                _child_cpu([str(EXE), "verify", "bundle", "--key", "keys/signing.pub"], work)
            )
            rows["evaluate-cmd"].append(_child_cpu([str(EXE), "evaluate", "fleet.json", *SCAN, "-q"], work))
        med = {
            k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in rows.items()
        }
        print(f"medians of {args.repeat}, wall s / CPU s:")
        for ours, theirs, what in (
            ("ours-i", "sha256sum", "integrity"),
            ("ours-r", "evaluate", "re-evaluation"),
            ("verify-cmd", "evaluate-cmd", "commands"),
        ):
            (w1, c1), (w2, c2) = med[ours], med[theirs]
            print(
                f"  {what:14s} verify {w1:6.2f} / {c1:6.2f}   {theirs:9s} {w2:6.2f} / {c2:6.2f}   "
                f"verify / {theirs}: wall {w1 / w2:.2f}x, CPU {c1 / c2:.2f}x"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
