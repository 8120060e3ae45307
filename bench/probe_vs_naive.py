"""Benchmark: the product's one-probe-per-host scan against naive per-fact collection, same facts.

Starts an SSH lab (``tests/lab/sshlab.py``) of N real sshd hosts on 127.0.0.2.., then, for each repeat:

* **probe** (the product): ``hds_compliance.scan.scan`` end to end: plan, render one script per host,
  worker process (gevent + pyinfra), connect, ONE command per host, parse, evaluate.
* **naive** (baseline): a worker process of its own (this file with ``--naive-worker``; gevent patched
  first, the same pyinfra Inventory/State/Config and TCP_NODELAY callback as the collector) connects to
  the same hosts and runs ONE command PER FACT per host (facts one after another per host, hosts in a
  gevent pool, as pyinfra does); the outputs become ``Capture`` objects and go through the same
  ``hds_compliance.evaluate.evaluate``.

Both modes are timed end to end (``time.perf_counter``) with client CPU from ``getrusage`` (this
process + its reaped children, i.e. the worker) and target CPU from the lab sshd listeners'
``/proc/<pid>/stat`` (their own + reaped sessions' CPU). Verdicts and parsed fact values of both modes are
compared; mismatches are printed, never hidden. Nothing is asserted on times.

Run as root from the repository root: ``/tmp/venv/bin/python bench/probe_vs_naive.py --hosts 10``.

Module-level imports are standard library only: the naive worker must patch gevent before anything else.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import ipaddress
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hds_compliance.catalog import Catalog
    from hds_compliance.check import Check
    from hds_compliance.collect import CollectOptions
    from hds_compliance.facts import Fact
    from hds_compliance.inventory import Host, Inventory
    from hds_compliance.model import Capture, HostRecord, Verdict
    from tests.lab.sshlab import SSHLab

REPO = Path(__file__).resolve().parents[1]
FIRST_ADDRESS = ipaddress.IPv4Address("127.0.0.2")  # hosts sharing this network namespace
NET_BASE = ipaddress.IPv4Address("10.201.0.0")  # hosts with a network of their own: a /31 each from here
STDERR_TAIL = 2048  # same as hds_compliance.probe.STDERR_TAIL
RC_PREFIX = "rc="  # last stderr line of a naive command: the snippet's exit code

# The reference workload (docs §4 of the pyinfra reference): 10 files, 8 sysctls, 6 stats, plus the
# other fact kinds. Added as bench-only controls on top of the shipped catalogue by ``--workload extended``.
EXTENDED_FACTS: tuple[tuple[str, str], ...] = (
    *(
        ("file", p)
        for p in (
            "/etc/hostname",
            "/etc/os-release",
            "/etc/passwd",
            "/etc/group",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/fstab",
            "/etc/ssh/sshd_config",
            "/etc/login.defs",
            "/etc/shells",
        )
    ),
    *(
        ("sysctl", k)
        for k in (
            "kernel.randomize_va_space",
            "kernel.kptr_restrict",
            "kernel.dmesg_restrict",
            "fs.suid_dumpable",
            "net.ipv4.ip_forward",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.conf.all.accept_redirects",
            "net.ipv4.conf.all.send_redirects",
        )
    ),
    *(
        ("stat", p)
        for p in (
            "/etc/passwd",
            "/etc/shadow",
            "/etc/group",
            "/etc/gshadow",
            "/etc/ssh/sshd_config",
            "/etc/sudoers",
        )
    ),
    ("files", "/etc/sudoers.d/*"),
    ("mounts", ""),
    ("shadow", ""),
    ("timesync", ""),
    ("firewall", ""),
    ("auditctl", ""),
)


# ------------------------------------------------------------------------------------------ workload


def _fact(kind: str, arg: str) -> Fact[Any]:
    from hds_compliance.facts import KINDS

    return KINDS[kind](arg)


def canonical(value: Any) -> Any:
    """A comparable, order-independent form of a parsed fact value (sets sorted, dataclasses as tuples)."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *((f.name, canonical(getattr(value, f.name))) for f in fields(value)))
    if isinstance(value, set | frozenset):
        return ("set", sorted(repr(canonical(v)) for v in value))
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(canonical(value)).encode()).hexdigest()[:16]


def register_bench_checks() -> None:
    """Register the bench-only checks (``bench.*``) in the check registry, once per process."""
    from hds_compliance.check import Context, Outcome, Params, check, failed, not_applicable, passed, registry

    if "bench.fact_known" in registry():
        return

    class FactParams(Params):
        kind: str
        arg: str = ""

    class MaxDaysParams(Params):
        max: int

    @check("bench.fact_known", params=FactParams, facts=lambda p: [_fact(p.kind, p.arg)])
    def fact_known(p: FactParams, ctx: Context) -> Outcome:
        """A fact can be established; the message carries a digest of its value."""
        fact = _fact(p.kind, p.arg)
        value = ctx.get(fact)
        if value is None:
            return not_applicable(f"{fact.key} does not exist on this host")
        return passed(f"{fact.key} = sha256:{_digest(value)}")

    login_defs = _fact("file", "/etc/login.defs")

    @check("bench.login_defs_max_days", params=MaxDaysParams, facts=lambda p: [login_defs])
    def login_defs_max_days(p: MaxDaysParams, ctx: Context) -> Outcome:
        """PASS_MAX_DAYS in /etc/login.defs is at most a bound."""
        content = ctx.get(login_defs)
        if content is None:
            return failed("/etc/login.defs does not exist")
        for line in content.decode("utf-8", "replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "PASS_MAX_DAYS":
                if words[1].isdigit() and int(words[1]) <= p.max:
                    return passed(f"PASS_MAX_DAYS is {words[1]} (at most {p.max})")
                return failed(f"PASS_MAX_DAYS is {words[1]} (expected at most {p.max})")
        return failed("PASS_MAX_DAYS is not set in /etc/login.defs")


def load_workload(workload: str, skip: list[str]) -> tuple[Catalog, dict[str, Check[Any]]]:
    """The full catalogue without file-system walks (lab hosts share one root: a walk would measure the
    same disk N times) and the checks tagged ``skip``; ``extended`` adds bench controls covering the
    pyinfra reference workload."""
    from hds_compliance.catalog import CheckRef, Control, load_catalog
    from hds_compliance.check import registry
    from hds_compliance.model import Severity

    if workload == "full":
        checks = registry()
        return load_catalog(checks=checks, profile="full", skip_tags=["fs-walk", *skip]), checks
    register_bench_checks()
    checks = registry()
    shipped = load_catalog(checks=checks, profile="full", skip_tags=["fs-walk", *skip])
    # YAML form ``{check_id: params}``: CheckRef(id=..., params=...) is refused by its before-validator.
    refs = [CheckRef.model_validate({"bench.fact_known": {"kind": k, "arg": a}}) for k, a in EXTENDED_FACTS]
    extra = [
        Control(id="BENCH-01", title="Bench: reference workload facts", severity=Severity.LOW, checks=refs),
        Control(
            id="BENCH-02",
            title="Bench: password expiry",
            severity=Severity.LOW,
            checks=[CheckRef.model_validate({"bench.login_defs_max_days": {"max": 90}})],
        ),
    ]
    digest = hashlib.sha256((shipped.digest + "+bench-extended").encode()).hexdigest()
    return shipped.model_copy(update={"controls": [*shipped.controls, *extra], "digest": digest}), checks


# ----------------------------------------------------------------------------------------------- lab


def _login_defs(i: int) -> str:
    days = (60, 90, 99999)[i % 3]
    return f"# bench lab host {i}\nPASS_MAX_DAYS {days}\nPASS_MIN_DAYS {i % 5}\nUMASK 027\n"


def start_lab(n_hosts: int, own_network: bool = True) -> SSHLab:
    """Start N lab hosts named h001.., differing in login.defs, hostname, sudoers.d, sshd.

    With ``own_network`` (the default) each host has a network namespace of its own, linked to this one by
    a veth pair, and listens on ``NET_BASE + 2i + 1``: as on a real fleet, a host's sockets, addresses and
    routes are its own. Without it, every host listens on ``FIRST_ADDRESS + i`` in this namespace, and so
    lists every other host's listener among its own sockets: a host's ``listen`` capture then grows with
    the lab, and the scanning side's cost per host with it.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.lab.sshlab import SSHLab, make_lab_root

    class Lab(SSHLab):
        """The lab, and the network namespaces it runs in (deleted when it stops)."""

        namespaces: tuple[str, ...] = ()

        def stop(self) -> None:
            super().stop()
            namespaces, self.namespaces = self.namespaces, ()
            _ip_batch([f"netns delete {ns}" for ns in namespaces])

    lab = Lab(make_lab_root())
    addresses = [str(FIRST_ADDRESS + i) for i in range(n_hosts)]
    if own_network:
        lab.namespaces, addresses = _own_networks(n_hosts)
    for i in range(n_hosts):
        name = f"h{i + 1:03d}"
        files: dict[str, str | bytes] = {
            "/etc/login.defs": _login_defs(i),
            "/etc/hostname": f"bench-{name}\n",
        }
        modes = {"/etc/login.defs": 0o600} if i % 4 == 1 else {}
        sudoers: dict[str, str | bytes] = {"ops": f"%ops ALL=(ALL) ALL\n# host {name}\n"}
        dirs = {"/etc/sudoers.d": sudoers} if i % 2 else {}
        sshd = {"X11Forwarding": "yes"} if i % 5 == 0 else {"MaxAuthTries": str(3 + i % 4)}
        # A Match block on every third host: sshd itself is asked about it in a second round trip.
        extra = "Match Address 10.0.0.0/8\n    MaxAuthTries 2\n" if i % 3 == 0 else ""
        lab.add_host(
            name,
            addresses[i],
            files=files,
            dirs=dirs,
            file_modes=modes,
            sshd_options=sshd,
            sshd_config_extra=extra,
            netns=lab.namespaces[i] if own_network else None,
            routed=own_network,
        )
    try:
        lab.start()
    except BaseException:
        lab.stop()  # the namespaces too
        raise
    return lab


def _ip_batch(commands: list[str], namespace: str | None = None) -> None:
    """Run ``ip`` commands in one process (in ``namespace`` if given); raise if any fails."""
    if commands:
        argv = ["ip", *(["-n", namespace] if namespace else []), "-batch", "-"]
        subprocess.run(argv, input="\n".join(commands) + "\n", text=True, check=True, capture_output=True)


_LABS = itertools.count()  # labs started by this process


def _own_networks(n_hosts: int) -> tuple[tuple[str, ...], list[str]]:
    """N network namespaces, each linked to this one by a veth pair on a /31 of NET_BASE: their names and
    the hosts' addresses. Names carry this process's PID and the lab's number in it, so two benches never
    share one, and neither do two labs of one bench: the kernel removes a deleted namespace's veth some
    time after ``netns delete`` returns, and a name reused at once was refused ("File exists")."""
    tag = f"hb{os.getpid() % 100000}{chr(ord('a') + next(_LABS) % 26)}"
    names = [f"{tag}{i}" for i in range(n_hosts)]
    near = [NET_BASE + 2 * i for i in range(n_hosts)]
    root = []
    for i, ns in enumerate(names):
        root += [
            f"netns add {ns}",
            f"link add {ns} type veth peer name eth0 netns {ns}",
            f"addr add {near[i]}/31 dev {ns}",
            f"link set {ns} up",
        ]
    try:
        _ip_batch(root)
        for i, ns in enumerate(names):
            _ip_batch([f"addr add {near[i] + 1}/31 dev eth0", "link set eth0 up", "link set lo up"], ns)
    except subprocess.CalledProcessError as exc:
        _ip_batch([f"netns delete {ns}" for ns in names if Path(f"/run/netns/{ns}").exists()])
        raise RuntimeError(f"could not set up the lab's networks: {exc.stderr.strip()}") from exc
    return tuple(names), [str(a + 1) for a in near]


def _listener_pids(lab: SSHLab) -> list[int]:
    """Host PIDs of the lab's sshd listeners (found by the config path on their command line)."""
    configs = {str(lab.sshd_config_path(name)).encode() for name in lab.hosts}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_bytes().strip() != b"sshd":
                continue
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if any(b"-f " + cfg in args for cfg in configs):
            pids.append(int(entry.name))
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def target_cpu(pids: list[int]) -> float:
    """CPU seconds of the listeners plus their reaped children (sessions, shells, commands)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        stat = _stat_fields(pid)
        if stat is not None:
            total += sum(int(x) for x in stat[11:15])  # utime stime cutime cstime
    return total / ticks


def wait_sessions_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait until no sshd session is left under the listeners, so their CPU has been reaped."""
    listeners = {str(p) for p in pids}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _stat_fields(int(entry.name))
                if stat is not None and stat[1] in listeners:
                    busy = True
                    break
        if not busy:
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------------------- measuring


@dataclass
class Measure:
    """One timed run of one mode."""

    mode: str
    wall_s: float
    client_cpu_s: float
    target_cpu_s: float
    commands_per_host: list[int]
    records: list[HostRecord] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    evaluate_cpu_s: float = 0.0  # of client_cpu_s: the evaluation, the same work in both modes


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def planned_facts(catalog: Catalog, checks: dict[str, Check[Any]], host: Host) -> list[Fact[Any]]:
    """The host's de-duplicated probe facts in plan order (what ``probe.render`` puts in the script)."""
    from hds_compliance.evaluate import plan_facts
    from hds_compliance.scan import host_view

    unique: dict[str, Fact[Any]] = {}
    for fact in plan_facts(catalog, checks, host_view(host)):
        if fact.origin == "host":
            unique.setdefault(fact.key, fact)
    return list(unique.values())


def run_probe(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    inventory: Inventory,
    options: CollectOptions,
    listeners: list[int],
) -> Measure:
    """Time the product: ``scan()`` end to end."""
    from hds_compliance.evaluate import evaluate
    from hds_compliance.scan import scan

    target0, cpu0, t0 = target_cpu(listeners), _cpu(), time.perf_counter()
    result = scan(catalog, checks, inventory, options)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    wait_sessions_gone(listeners)
    evaluation = _cpu()
    evaluate(
        catalog, checks, result.hosts, result.run.scope, result.run.started_at
    )  # what scan() spent on it
    evaluation = _cpu() - evaluation
    return Measure(
        mode="probe",
        wall_s=wall,
        client_cpu_s=cpu,
        target_cpu_s=target_cpu(listeners) - target0,
        commands_per_host=[h.probe.commands for h in result.hosts],
        records=result.hosts,
        verdicts=result.verdicts,
        evaluate_cpu_s=evaluation,
    )


def naive_command(snippet: str, in_shell: bool = False) -> str:
    """One fact as its own remote command, wrapped as lightly as binary safety allows.

    stdout goes through base64 (pyinfra decodes output as strict UTF-8); the snippet's exit code is
    appended to stderr as a last ``rc=N`` line; the command itself always exits 0, so pyinfra never
    marks the host failed. Same environment (``LC_ALL=C``, ``PATH``, cap ``C``) as a probe section. A
    snippet that may ``exit`` runs in a subshell so that its code is still printed; an in-shell one
    (``Fact.in_shell``: it returns) runs without, as the probe runs it.
    """
    from hds_compliance.collect.probe import DEFAULT_SECTION_CAP

    call = "f" if in_shell else "( f )"
    return "\n".join(
        [
            "LC_ALL=C; LANG=C; export LC_ALL LANG",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH",
            f"C={DEFAULT_SECTION_CAP + 1}",  # the probe's on-host cap for file bodies
            f"f() {{\n{snippet}\n}}",
            f"{{ {call} </dev/null; printf '\\n{RC_PREFIX}%s\\n' \"$?\" >&2; }} | base64",
            "exit 0",
        ]
    )


def naive_capture(fact: Fact[Any], stdout: str, stderr: str, error: str | None, section_cap: int) -> Capture:
    """Build the fact's capture from one naive command's output, with the probe's semantics.

    Like a probe section: stdout cut at ``section_cap`` bytes, stderr reduced to its last
    ``STDERR_TAIL`` bytes (exit code line included, as the probe does), then redacted.
    """
    from hds_compliance.evidence.redact import redact
    from hds_compliance.model import Capture

    command = fact.script()
    err_lines = stderr.split("\n")
    rc_at = max((i for i, line in enumerate(err_lines) if line.startswith(RC_PREFIX)), default=None)
    if error is not None or rc_at is None:
        why = error or "naive command output has no exit code"
        return Capture(fact=fact.key, command=command, complete=False, problem=why)
    code = err_lines[rc_at][len(RC_PREFIX) :].strip()
    try:
        out = base64.b64decode("".join(line.strip() for line in stdout.splitlines()), validate=True)
    except (binascii.Error, ValueError):
        return Capture(fact=fact.key, command=command, complete=False, problem="naive output is not base64")
    if not code.lstrip("-").isdigit():
        return Capture(fact=fact.key, command=command, complete=False, problem="naive exit code unreadable")
    # The probe keeps the tail of "<stderr>\n<code>" (trailing newlines stripped by $( )).
    status = ("\n".join(err_lines[:rc_at]).rstrip("\n") + "\n" + code).encode()
    status_text = status[-STDERR_TAIL:].decode("utf-8", "replace")
    err_text, _, _ = status_text.rpartition("\n")
    truncated = len(out) > section_cap
    capture = Capture.from_bytes(
        fact.key,
        command,
        out[:section_cap],
        exit_code=int(code),
        stderr=err_text.strip("\n"),
        truncated=truncated,
        problem=f"output exceeded the {section_cap}-byte cap" if truncated else None,
    )
    return redact(capture)


def run_naive(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    inventory: Inventory,
    options: CollectOptions,
    listeners: list[int],
) -> Measure:
    """Time the baseline: plan, a worker running one command per fact per host, captures, evaluate."""
    from dataclasses import asdict

    from hds_compliance.collect.probe import DEFAULT_SECTION_CAP
    from hds_compliance.evaluate import evaluate
    from hds_compliance.facts import fact_from_key
    from hds_compliance.model import HostRecord, ProbeRun
    from hds_compliance.scan import record_base

    target0, cpu0, t0 = target_cpu(listeners), _cpu(), time.perf_counter()
    plans = {h.name: planned_facts(catalog, checks, h) for h in inventory.hosts}
    request = {
        "options": asdict(options),
        "hosts": [
            {
                "name": h.name,
                "data": {k: v for k, v in h.data.items() if k.startswith(("ssh_", "chroot_"))},
                "facts": [f.key for f in plans[h.name]],
            }
            for h in inventory.hosts
        ],
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--naive-worker"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**os.environ, "PYINFRA_PROGRESS": "off"},
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"naive worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
    answers = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    records = []
    for host in inventory.hosts:
        answer, base = answers[host.name], record_base(host)
        if not answer["connected"]:
            records.append(HostRecord(**base, probe=ProbeRun(connected=False, error=answer["error"])))
            continue
        captures = [
            naive_capture(fact_from_key(key), out["stdout"], out["stderr"], out["error"], DEFAULT_SECTION_CAP)
            for key, out in answer["outputs"].items()
        ]
        run = ProbeRun(
            connected=True,
            complete=all(c.complete for c in captures),
            commands=answer["commands"],
            started_at=answer["started_at"],  # the clock of time-relative checks, as in the probe's records
            duration_s=answer["duration_s"],
        )
        records.append(HostRecord(**base, probe=run, captures=captures))
    evaluation = _cpu()
    verdicts = evaluate(catalog, checks, records)
    evaluation = _cpu() - evaluation
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    wait_sessions_gone(listeners)
    return Measure(
        mode="naive",
        wall_s=wall,
        client_cpu_s=cpu,
        target_cpu_s=target_cpu(listeners) - target0,
        commands_per_host=[r.probe.commands for r in records],
        records=records,
        verdicts=verdicts,
        evaluate_cpu_s=evaluation,
    )


# ----------------------------------------------------------------------------------- naive worker


def naive_worker(request: dict[str, Any]) -> dict[str, Any]:
    """Worker body: connect like the collector, then one pyinfra command per fact per host."""
    from gevent import monkey

    monkey.patch_all()

    import logging
    import socket

    import gevent
    import gevent.pool
    from pyinfra.api.command import StringCommand
    from pyinfra.api.config import Config
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.inventory import Inventory
    from pyinfra.api.state import BaseStateCallback, State, StateStage

    logging.getLogger("pyinfra").setLevel(logging.CRITICAL + 1)
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
    options = request["options"]
    connect_timeout = float(options["connect_timeout"])
    command_timeout = float(options["command_timeout"])
    parallel = int(options["parallel"])
    hosts = {h["name"]: h for h in request["hosts"]}

    entries = []
    for name, job in hosts.items():  # same host data handling as hds_compliance.collect
        data = dict(job["data"])
        data["ssh_strict_host_key_checking"] = "yes"
        connect_kwargs = dict(data.get("ssh_paramiko_connect_kwargs") or {})
        for key in ("banner_timeout", "auth_timeout", "channel_timeout"):
            connect_kwargs.setdefault(key, connect_timeout)
        data["ssh_paramiko_connect_kwargs"] = connect_kwargs
        entries.append((name, data))
    inventory = Inventory((entries, {}))  # type: ignore[no-untyped-call]
    config = Config(  # type: ignore[no-untyped-call]
        CONNECT_TIMEOUT=connect_timeout, PARALLEL=parallel, FAIL_PERCENT=None
    )
    state = State(inventory=inventory, config=config)
    errors: dict[str, str] = {}

    class Events(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: Any, host: Any, error: Any) -> None:
            errors[host.name] = str(error) or type(error).__name__

        @staticmethod
        def host_connect(state: Any, host: Any) -> None:
            client = getattr(host.connector, "client", None)
            transport = client.get_transport() if client is not None else None
            if transport is not None:
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    state.add_callback_handler(Events())  # type: ignore[no-untyped-call]
    state.set_stage(StateStage.Connect)
    # PyinfraError: every host failed (reasons are in `errors`).
    with gevent.Timeout(connect_timeout * 3 + 5, False), contextlib.suppress(PyinfraError):
        connect_all(state)
    state.set_stage(StateStage.Prepare)
    active = {h.name for h in state.active_hosts}
    results: dict[str, dict[str, Any]] = {}

    from hds_compliance.collect.probe import DEFAULT_SECTION_CAP
    from hds_compliance.facts import fact_from_key

    def run_one(host: Any, fact: Any) -> dict[str, Any]:
        try:
            command = StringCommand(naive_command(fact.script(), type(fact).in_shell))
            _ok, output = host.run_shell_command(command, _timeout=command_timeout)
            stdout, stderr = "\n".join(output.stdout_lines), "\n".join(output.stderr_lines)
            return {"stdout": stdout, "stderr": stderr, "error": None}
        except Exception as exc:  # reported as an unusable capture, never dropped
            return {"stdout": "", "stderr": "", "error": f"{type(exc).__name__}: {exc}"}

    def fetch(host: Any) -> None:
        t0 = time.monotonic()
        started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        outputs: dict[str, dict[str, Any]] = {}
        pending = [fact_from_key(key) for key in hosts[host.name]["facts"]]
        while pending:  # one command per fact, sequential per host like pyinfra's facts; then follow-ups
            more = []
            for fact in pending:
                out = outputs[fact.key] = run_one(host, fact)
                capture = naive_capture(fact, out["stdout"], out["stderr"], out["error"], DEFAULT_SECTION_CAP)
                if capture.problem is None:
                    more += [f for f in fact.follow_ups(capture) if f.key not in outputs]
            pending = list({f.key: f for f in more}.values())
        results[host.name] = {
            "name": host.name,
            "connected": True,
            "outputs": outputs,
            "commands": len(outputs),
            "started_at": started,
            "duration_s": round(time.monotonic() - t0, 3),
        }

    pool = gevent.pool.Pool(parallel)  # the collector's pool size
    for host in inventory:
        if host.name in active:
            pool.spawn(fetch, host)
        else:
            reason = errors.get(host.name, "could not connect")
            results[host.name] = {"name": host.name, "connected": False, "error": reason, "commands": 0}
    pool.join()
    try:
        disconnect_all(state)
    finally:
        for host in inventory:
            client = getattr(host.connector, "client", None)
            if client is not None:
                client.close()
    return {"results": [results[name] for name in hosts]}


def _naive_worker_main() -> None:
    request = json.load(sys.stdin)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library prints go to stderr, stdout is for the JSON answer
    sys.stdout = sys.stderr
    json.dump(naive_worker(request), out)
    out.flush()


# ------------------------------------------------------------------------------------- correctness


def _fact_value(fact: Fact[Any], captures: dict[str, Capture]) -> Any:
    from hds_compliance.facts import FactError

    capture = captures.get(fact.key)
    if capture is None:
        return ("missing",)
    if capture.problem is not None or not capture.complete:
        return ("unusable", capture.problem)
    try:
        return ("ok", canonical(fact.parse_with(capture, captures.get)))
    except FactError as exc:
        return ("fact-error", str(exc))


@dataclass
class Comparison:
    """Differences between the probe and naive runs."""

    verdicts: int = 0
    status_mismatches: list[str] = field(default_factory=list)
    message_mismatches: list[str] = field(default_factory=list)
    facts: int = 0
    fact_mismatches: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def compare(
    probe: Measure, naive: Measure, catalog: Catalog, checks: dict[str, Check[Any]], inventory: Inventory
) -> Comparison:
    """Compare verdict statuses (and messages) per host×control×check, and parsed fact values per host."""
    cmp = Comparison()

    def key(v: Verdict) -> tuple[str, str, str | None, int]:
        return (v.host, v.control, v.check, v.index)

    probe_v = {key(v): v for v in probe.verdicts}
    naive_v = {key(v): v for v in naive.verdicts}
    cmp.verdicts = len(probe_v)
    for k in sorted(set(probe_v) | set(naive_v), key=repr):
        a, b = probe_v.get(k), naive_v.get(k)
        if a is None or b is None:
            cmp.status_mismatches.append(f"{k}: only in {'naive' if a is None else 'probe'}")
            continue
        cmp.statuses[a.status.value] = cmp.statuses.get(a.status.value, 0) + 1
        if a.status != b.status:
            cmp.status_mismatches.append(
                f"{k}: probe {a.status.value} ({a.message}) / naive {b.status.value} ({b.message})"
            )
        elif a.message != b.message:
            cmp.message_mismatches.append(f"{k}: probe {a.message!r} / naive {b.message!r}")
    probe_r = {r.name: r.capture_map() for r in probe.records}
    naive_r = {r.name: r.capture_map() for r in naive.records}
    from hds_compliance.facts import fact_from_key

    for host in inventory.hosts:
        keys = set(probe_r.get(host.name, {})) | set(naive_r.get(host.name, {}))
        planned = [f.key for f in planned_facts(catalog, checks, host)]
        for fact in [fact_from_key(k) for k in [*planned, *sorted(keys - set(planned))]]:
            cmp.facts += 1
            a = _fact_value(fact, probe_r.get(host.name, {}))
            b = _fact_value(fact, naive_r.get(host.name, {}))
            if a != b:
                cmp.fact_mismatches.append(
                    f"{host.name} {fact.key}: probe {repr(a)[:200]} / naive {repr(b)[:200]}"
                )
    return cmp


# -------------------------------------------------------------------------------------------- report


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b > 0 else "n/a"


def report(
    runs: list[tuple[Measure, Measure, Comparison]], args: argparse.Namespace, facts: list[int]
) -> int:
    """Print per-run lines, the median table and the correctness summary; return the mismatch count."""
    print("\nper run (wall s / client CPU s / target CPU s):")
    for i, (p, n, _) in enumerate(runs, 1):
        print(
            f"  run {i}: probe {p.wall_s:.2f} / {p.client_cpu_s:.2f} / {p.target_cpu_s:.2f}   "
            f"naive {n.wall_s:.2f} / {n.client_cpu_s:.2f} / {n.target_cpu_s:.2f}"
        )

    by_mode: list[list[Measure]] = [[r[0] for r in runs], [r[1] for r in runs]]

    def med(mode: int, attr: str) -> float:
        return float(statistics.median(float(getattr(m, attr)) for m in by_mode[mode]))

    def cmds(mode: int) -> str:
        values = sorted({c for m in by_mode[mode] for c in m.commands_per_host})
        return "/".join(str(v) for v in values)

    label = f"median of {len(runs)}" if len(runs) > 1 else "1 run"
    print(
        f"\nN={args.hosts} hosts, facts/host={min(facts)}..{max(facts)}, workload={args.workload}"
        f"{' without ' + ', '.join(args.skip_tag) if args.skip_tag else ''}, "
        f"parallel={args.parallel}, {label}"
    )
    print(f"{'mode':<8}{'wall s':>9}{'client CPU s':>14}{'target CPU s':>14}{'commands/host':>15}")
    for index, mode in enumerate(("probe", "naive")):
        print(
            f"{mode:<8}{med(index, 'wall_s'):>9.2f}{med(index, 'client_cpu_s'):>14.2f}"
            f"{med(index, 'target_cpu_s'):>14.2f}{cmds(index):>15}"
        )
    print(
        f"{'naive÷probe':<8} wall {_ratio(med(1, 'wall_s'), med(0, 'wall_s'))}, "
        f"client CPU {_ratio(med(1, 'client_cpu_s'), med(0, 'client_cpu_s'))}, "
        f"target CPU {_ratio(med(1, 'target_cpu_s'), med(0, 'target_cpu_s'))}"
    )
    if len(runs) > 1:  # each run pairs the two modes back to back: its ratio is untouched by the VM's drift
        ratios = [n.wall_s / p.wall_s for p, n, _ in runs if p.wall_s > 0]
        listed = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"wall ratio of each run: {listed} (median {statistics.median(ratios):.2f})")
    collect = [med(i, "client_cpu_s") - med(i, "evaluate_cpu_s") for i in (0, 1)]
    print(
        f"client CPU without the evaluation both modes share (probe {med(0, 'evaluate_cpu_s'):.2f} s, "
        f"naive {med(1, 'evaluate_cpu_s'):.2f} s): probe {collect[0]:.2f} s, naive {collect[1]:.2f} s, "
        f"naive÷probe {_ratio(collect[1], collect[0])}"
    )

    total = 0
    for i, (probe, naive, cmp) in enumerate(runs, 1):
        problems = [
            f"{r.name}: {m} {r.probe.error or 'incomplete'}"
            for m, records in (("probe", probe.records), ("naive", naive.records))
            for r in records
            if not (r.probe.connected and r.probe.complete)
        ]
        mismatches = len(cmp.status_mismatches) + len(cmp.fact_mismatches)
        total += mismatches
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(cmp.statuses.items()))
        print(
            f"\ncorrectness run {i}: {len(cmp.status_mismatches)} verdict status mismatches "
            f"of {cmp.verdicts} "
            f"({statuses}); {len(cmp.fact_mismatches)} fact value mismatches of {cmp.facts}; "
            f"{len(cmp.message_mismatches)} verdict message differences; {len(problems)} incomplete hosts"
        )
        for line in (cmp.status_mismatches + cmp.fact_mismatches + cmp.message_mismatches + problems)[:8]:
            print(f"  ! {line}")
    print(f"\nMISMATCHES: {total}" + ("" if total == 0 else "  <-- the two modes DISAGREE (see above)"))
    return total


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=50, help="lab hosts (default 50)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each mode; medians reported (default 1)"
    )
    parser.add_argument(
        "--parallel", type=int, default=50, help="hosts handled at once, in both modes (default: 50)"
    )
    parser.add_argument(
        "--workload",
        choices=("full", "extended"),
        default="full",
        help="full (default): the full profile without file-system walks; "
        "extended: plus bench controls for the 30 facts of the pyinfra reference workload",
    )
    parser.add_argument(
        "--skip-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="also leave out checks with this tag (fs-walk is always left out: lab hosts share one root)",
    )
    parser.add_argument(
        "--shared-net",
        action="store_true",
        help="lab hosts share this network namespace (each then lists every lab listener as its own)",
    )
    parser.add_argument("--naive-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if the two modes disagree."""
    args = parse_args(argv)
    if args.naive_worker:
        _naive_worker_main()
        return 0
    if os.geteuid() != 0:
        print("needs root (the SSH lab uses mount and PID namespaces)", file=sys.stderr)
        return 2
    if not 1 <= args.hosts <= 250 or args.repeat < 1 or args.parallel < 1:
        print("--hosts must be 1..250, --repeat and --parallel at least 1", file=sys.stderr)
        return 2
    from hds_compliance.collect import CollectOptions
    from hds_compliance.inventory import load_inventory

    catalog, checks = load_workload(args.workload, args.skip_tag)
    lab = None
    try:
        t0 = time.perf_counter()
        lab = start_lab(args.hosts, own_network=not args.shared_net)
        first = next(iter(lab.hosts.values())).address
        print(
            f"lab: {args.hosts} sshd hosts on {first}.. port {lab.port}, "
            f"started in {time.perf_counter() - t0:.1f} s ({lab.root})"
        )
        listeners = _listener_pids(lab)
        if len(listeners) != args.hosts:
            print(
                f"warning: found {len(listeners)} sshd listeners for {args.hosts} hosts (target CPU partial)"
            )
        with tempfile.TemporaryDirectory(prefix="hds-bench-") as tmp:
            inventory = load_inventory(lab.write_inventory(Path(tmp) / "bench_inventory.py"))
        options = CollectOptions(connect_timeout=10.0, command_timeout=120.0, parallel=args.parallel)
        facts = [len(planned_facts(catalog, checks, h)) for h in inventory.hosts]
        print(
            f"catalogue: {len(catalog.controls)} controls, {len(checks)} checks; "
            f"facts/host {min(facts)}..{max(facts)}"
        )
        runs = []
        for i in range(args.repeat):
            # Alternate the order so neither mode always runs on a cold or warm machine.
            if i % 2 == 0:
                probe = run_probe(catalog, checks, inventory, options, listeners)
                naive = run_naive(catalog, checks, inventory, options, listeners)
            else:
                naive = run_naive(catalog, checks, inventory, options, listeners)
                probe = run_probe(catalog, checks, inventory, options, listeners)
            runs.append((probe, naive, compare(probe, naive, catalog, checks, inventory)))
            print(
                f"run {i + 1}/{args.repeat}: probe {probe.wall_s:.2f} s, naive {naive.wall_s:.2f} s",
                flush=True,
            )
        mismatches = report(runs, args, facts)
    finally:
        if lab is not None:
            lab.stop()  # kills the namespaces (and their mounts) first, then the files can go
            shutil.rmtree(lab.root, ignore_errors=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
