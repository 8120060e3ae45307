"""The collector on real targets: a @chroot tree (read-only proof), @local through stdin, a quiet worker."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab.chroot_tree import build_chroot, tree_digest

from hds_compliance import scan as scan_module
from hds_compliance.catalog import load_catalog
from hds_compliance.check import registry
from hds_compliance.collect import CollectOptions, HostJob, RawProbe, RawRound, collect
from hds_compliance.collect import probe as probe_module
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.evaluate import evaluate, plan_facts
from hds_compliance.facts import FileContent, Sysctl
from hds_compliance.inventory import default_inventory, load_inventory
from hds_compliance.model import ProbeRun, Status
from hds_compliance.scan import scan

TREE_FILES = {
    "/etc/os-release": 'ID=debian\nVERSION_ID="12"\n',
    "/etc/login.defs": "ENCRYPT_METHOD SHA512\nUMASK 027\n",
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0:second root:/root:/bin/sh\n",
    "/etc/shadow": "root:*:19000:0:99999:7:::\ntoor::19000:0:99999:7:::\n",
    "/etc/sudoers": "Defaults use_pty\nroot ALL=(ALL:ALL) ALL\n",
}


@pytest.fixture
def chroot_tree(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return build_chroot(tmp_path / "rootfs", TREE_FILES)


def test_chroot_scan_reads_the_tree_and_leaves_it_unchanged(chroot_tree: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"images = [('@chroot/{chroot_tree}', {{'location_country': 'FR'}})]\n")
    before = tree_digest(chroot_tree)
    result = scan(load_catalog(), registry(), load_inventory(inventory))
    assert tree_digest(chroot_tree) == before  # byte for byte, modes, owners, mtimes
    [host] = result.hosts
    assert host.probe.connected and host.probe.complete and host.probe.commands == 1
    by_check = {(v.check, v.params.get("name") or v.params.get("path")): v for v in result.verdicts}
    # No sshd in the image: nothing to harden, said so.
    assert by_check[("sshd.root_login_disabled", None)].status is Status.NOT_APPLICABLE
    # /proc is not mounted in the tree: live kernel and process facts cannot be known there.
    live = [
        v
        for v in result.verdicts
        if any(f in ("mounts", "processes") or f.startswith("sysctl:") for f in v.facts)
    ]
    assert live and all(v.status is Status.ERROR for v in live), [(v.check, v.status) for v in live]
    # What the tree's files say is judged from the tree, not from the machine running the scan.
    empty = [v for v in result.verdicts if v.check == "accounts.no_empty_password"]
    assert empty and all(v.status is Status.FAIL and "toor" in v.message for v in empty)


def test_probe_script_travels_on_stdin_whatever_its_size() -> None:
    """200 KiB of script (a `sh -c` argument stops at 128 KiB), and its text in no process's argv."""
    padding = "# padding\n" * 20_000
    script = f"{padding}X=nonce-abc123; for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < $f; echo; done"
    [raw] = collect([HostJob(name="@local", data={}, script=script)], CollectOptions()).values()
    [first] = raw.rounds
    assert raw.connected and first.command_ok, first.error
    assert "sh -s" in first.stdout  # the probe's own shell is listed...
    assert "nonce-abc123" not in first.stdout  # ...without the script in its arguments


def test_worker_never_prints_host_output() -> None:
    """pyinfra logs a failing command's output at ERROR; the worker keeps it (file contents) quiet."""
    job = HostJob(name="@local", data={}, script="echo TOPSECRET-CONTENT; echo TOPSECRET-ERR >&2; exit 3")
    wire = {**job.__dict__, "script": None, "script_id": 0}
    request = json.dumps({"jobs": [wire], "scripts": [job.script], "options": CollectOptions().__dict__})
    done = subprocess.run(
        [sys.executable, "-P", "-m", "hds_compliance.collect"],
        input=request,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "TOPSECRET" not in done.stderr
    *hosts, end = [json.loads(line) for line in done.stdout.splitlines()]
    assert end == {"end": 1}
    [raw] = [message["done"] for message in hosts]
    [first] = raw["rounds"]
    assert first["stdout"] == "TOPSECRET-CONTENT" and first["command_ok"] is False


def test_worker_crash_is_an_error_for_every_host() -> None:
    jobs = [
        HostJob(name="@local", data={}, script="echo hi"),
        HostJob(name="other", data={"ssh_port": "x"}, script=""),
    ]
    results = collect(jobs, CollectOptions(connect_timeout=1))
    assert set(results) == {"@local", "other"}
    assert not results["other"].connected and results["other"].error


def test_probe_killed_by_the_timeout_gives_errors_only(tmp_path: Path) -> None:
    """A host that stops answering in the middle of the probe: every verdict is an error, none passes."""
    catalog, checks = load_catalog(), registry()
    inventory = load_inventory(default_inventory())
    [host] = inventory.hosts
    facts = plan_facts(catalog, checks, scan_module.host_view(host))
    probe = render(facts, new_nonce())
    stalled = probe.script.replace("printf '\\n%s DONE", "sleep 8; printf '\\n%s DONE")
    assert stalled != probe.script
    job = HostJob(
        name=host.name, data={}, facts=[f.key for f in probe.facts], nonce=probe.nonce, script=stalled
    )
    job.section_cap = probe.section_cap
    raw = collect([job], CollectOptions(command_timeout=2))[host.name]
    [first] = raw.rounds
    assert raw.connected and first.error and "timed out" in first.error
    record = scan_module.host_record(host, raw, probe.section_cap)
    verdicts = evaluate(catalog, checks, [record])
    # what the host printed before it stalled, as received: its digest is the record's
    assert record.probe.stream_sha256 == hashlib.sha256(first.stdout.encode("utf-8", "replace")).hexdigest()
    assert not record.probe.complete
    assert all(v.status is not Status.PASS for v in verdicts)
    assert any("timed out" in v.message for v in verdicts if v.status is Status.ERROR)


def _fake_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Run ``body`` (sh) in the worker's place: collect() starts ``sys.executable -P -m ...``."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nread request\n{body}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        # Dies after sending a first round: the answer it asked for goes nowhere.
        ("""echo '{"first": "h1", "stdout": "", "stderr": ""}'; echo 'worker: lost' >&2; exit 3""", "exit 3"),
        ("echo 'not json'; echo 'worker: garbled' >&2; exit 0", "worker: garbled"),
        ("""echo '{"done": {"name": "h1"}}'""", "collector failed"),  # a result it cannot be
    ],
)
def test_a_worker_that_breaks_its_protocol_is_an_error_for_every_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, said: str
) -> None:
    _fake_worker(tmp_path, monkeypatch, body)
    jobs = [HostJob(name=name, data={}, facts=["processes"], nonce=new_nonce()) for name in ("h1", "h2")]
    results = collect(jobs, CollectOptions())
    assert set(results) == {"h1", "h2"}
    for raw in results.values():
        assert not raw.connected and raw.error and said in raw.error, raw.error


def _done(name: str, connected: bool = True, error: str | None = None) -> str:
    message = {"done": {"name": name, "connected": connected, "error": error, "rounds": []}}
    return f"echo '{json.dumps(message)}'"


def test_each_host_is_handed_on_as_soon_as_it_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker sends h1, then waits until the scanning process has handled h1 (it creates a file
    when it gets it) before it sends h2: results come host by host, not in one piece at the end."""
    flag = tmp_path / "h1-handled"
    body = (
        f"{_done('h1')}; i=0; while [ ! -e {flag} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
        f"if [ -e {flag} ]; then {_done('h2')}; else {_done('h2', False, 'h1 was not handed on')}; fi; "
        "echo '{\"end\": 2}'"
    )
    _fake_worker(tmp_path, monkeypatch, body)
    order = []

    def handle(raw: RawProbe) -> None:
        order.append((raw.name, raw.connected, raw.error))
        if raw.name == "h1":
            flag.touch()

    jobs = [HostJob(name=name, data={}, script="true") for name in ("h1", "h2")]
    assert collect(jobs, CollectOptions(), on_host=handle) == {}  # nothing kept: all handed on
    assert order == [("h1", True, None), ("h2", True, None)]


def test_hosts_done_before_the_worker_died_keep_their_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_worker(tmp_path, monkeypatch, f"{_done('h1')}; echo 'worker: killed' >&2; exit 9")
    jobs = [HostJob(name=name, data={}, script="true") for name in ("h1", "h2")]
    results = collect(jobs, CollectOptions())
    assert results["h1"].connected and results["h1"].error is None
    assert not results["h2"].connected and "exit 9" in (results["h2"].error or "")


def test_a_second_round_that_cannot_be_found_is_an_error_for_every_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding the facts a first round asks for failed in the scanning process: no host is judged."""
    _fake_worker(tmp_path, monkeypatch, """echo '{"first": "h1", "stdout": "", "stderr": ""}'; read answer""")

    def broken(*_args: object) -> list[object]:
        raise RuntimeError("follow-ups exploded")

    monkeypatch.setattr(probe_module, "follow_ups", broken)
    jobs = [HostJob(name=name, data={}, facts=["processes"], nonce=new_nonce()) for name in ("h1", "h2")]
    results = collect(jobs, CollectOptions())
    assert {r.error for r in results.values()} == {"collector failed: RuntimeError: follow-ups exploded"}


def test_the_worker_loads_neither_the_facts_nor_pydantic() -> None:
    """Its start is part of every scan's CPU: the facts (and the models they need) stay in the scan."""
    code = "import sys, hds_compliance.collect.worker; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "hds_compliance.facts" not in loaded and "pydantic" not in loaded


def test_section_times_longer_than_the_whole_exchange_are_dropped(tmp_path: Path) -> None:
    """Host times come from the host's clock: if their sum exceeds what the scanning side measured for the
    whole exchange, the clock jumped (an NTP step during the probe) and no time of that host is kept."""
    (tmp_path / "a.conf").write_text("x\n")
    facts = [FileContent(str(tmp_path / "a.conf")), Sysctl("kernel.ostype")]
    probe = render(facts, new_nonce())
    started = time.perf_counter()
    done = subprocess.run(["bash", "--posix", "-c", probe.script], capture_output=True, check=True)
    wall = time.perf_counter() - started
    host = load_inventory(default_inventory()).hosts[0]

    def record(duration: float) -> ProbeRun:
        round_ = RawRound(probe.nonce, [f.key for f in probe.facts], done.stdout.decode())
        raw = RawProbe(host.name, True, rounds=[round_], duration_s=duration)
        return scan_module.host_record(host, raw, probe.section_cap).probe

    kept = record(wall)
    assert set(kept.fact_s) == {f.key for f in facts} and kept.clock_s == 1e-6
    assert sum(kept.fact_s.values()) > 0
    jumped = record(sum(kept.fact_s.values()) / 2)  # the host says it took twice the exchange
    assert jumped.fact_s == {} and jumped.clock_s is None and jumped.complete
