"""Collect: the only stage that touches hosts. Probes run on hosts through pyinfra, in a worker process.

The scanning process never imports pyinfra: :func:`collect` starts a worker process
(``python -m hds_compliance.collect``, see :mod:`hds_compliance.collect.worker`) that patches gevent
first, connects to every host through pyinfra and runs the rendered probe, ONE command per host, plus a
second one only for facts that depend on the first's output (:meth:`Fact.follow_ups`), which the
scanning process finds and renders when the first round's output reaches it. It answers with the raw
outputs on stdout, one JSON line per host as each is done. Probe rendering and parsing are pure
(:mod:`.probe`) and done here; the worker interprets nothing (and never imports the facts).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hds_compliance.collect.probe import ParsedProbe, Probe


@dataclass
class HostJob:
    """One host to probe: its inventory name, pyinfra host data, and the facts to collect."""

    name: str
    data: dict[str, Any]
    facts: list[str] = field(default_factory=list)  # fact keys, in the order the probe renders them
    nonce: str = ""
    section_cap: int = 0
    sudo: bool = False
    script: str | None = None  # a raw script run as is, instead of the facts' probe (transport tests)
    jump: dict[str, Any] | None = None  # the jump host's connection data (ProxyJump), if reached through one


@dataclass
class RawRound:
    """One probe command on a host: the facts it rendered (keys) and what came back."""

    nonce: str
    facts: list[str]
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    command_ok: bool | None = None  # pyinfra's verdict on the command (the probe itself always exits 0)
    # The scanning process's parse of this round, made to find the second round (never sent by the worker):
    # the probe, its parse, and the keys of the facts it asked for next.
    parsed: tuple[Probe, ParsedProbe, list[str]] | None = field(default=None, repr=False, compare=False)


@dataclass
class RawProbe:
    """What the worker got back from one host."""

    name: str
    connected: bool
    error: str | None = None  # why the host could not be reached
    rounds: list[RawRound] = field(default_factory=list)
    started_at: str | None = None
    duration_s: float | None = None
    tcp_nodelay: bool | None = None  # SSH only: Nagle disabled on the connection


@dataclass
class CollectOptions:
    """Timeouts and parallelism of one collection."""

    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    parallel: int = 50  # hosts connected and probed at once

    def host_budget(self) -> float:
        """Longest one host may take: connect (TCP, banner, auth) plus two probe rounds."""
        return self.connect_timeout * 3 + 2 + 2 * self.command_timeout


def collect(
    jobs: list[HostJob], options: CollectOptions, on_host: Callable[[RawProbe], None] | None = None
) -> dict[str, RawProbe]:
    """Probe every host through the worker; a host the worker does not answer for is an error, never a pass.

    The worker runs each host's first round and sends its output here as soon as it comes back; this
    process parses it, finds the facts it asks for next (:meth:`Fact.follow_ups`) and answers with the
    second round's script (or none). So the worker never imports the facts nor parses a probe, and the
    parse done here is kept for :func:`hds_compliance.scan.host_record`. Each host's answer comes as soon
    as the host is done: ``on_host`` gets it then (and it is not kept here: memory stays that of the hosts
    under way), else it is returned with the others. If the worker fails, the hosts it had not answered
    for get its failure as their error.
    """
    if not jobs:
        return {}
    # Imported here: the worker imports this package and must not load the facts.
    from hds_compliance.collect.probe import render
    from hds_compliance.facts import fact_from_key

    probes = {
        j.name: render([fact_from_key(k) for k in j.facts], j.nonce, j.section_cap)
        for j in jobs
        if j.script is None
    }
    # Hosts asking the same facts run the same script (one nonce per run): each text goes to the worker
    # once, and no host keeps a copy of its own here (a fleet's worth of memory, on both sides).
    texts: dict[str, int] = {}
    wire = [
        {
            **vars(j),  # as asdict() would give, without copying every fact key
            "script": None,
            "script_id": texts.setdefault(
                probes[j.name].script if j.name in probes else j.script or "", len(texts)
            ),
            "follow": j.name in probes,
        }
        for j in jobs
    ]
    for probe in probes.values():
        probe.__dict__.pop("script", None)  # the cached text: parsing needs the sections only
    waves = 1 + (len(jobs) - 1) // max(options.parallel, 1)
    budget = 30 + waves * options.host_budget()
    kept: dict[str, RawProbe] = {}
    answered: set[str] = set()

    def deliver(raw: RawProbe) -> None:
        answered.add(raw.name)
        probes.pop(raw.name, None)  # parsed already: a host done holds nothing here
        if on_host is None:
            kept[raw.name] = raw
        else:
            on_host(raw)

    worker = _Worker(
        {"jobs": wire, "scripts": list(texts), "options": asdict(options)}, time.monotonic() + budget
    )
    del wire, texts  # sent
    error: str | None = None
    try:
        _converse(worker, {j.name: j for j in jobs}, probes, deliver)
    except TimeoutError:
        error = f"collector exceeded its {budget:.0f} s budget"
    except _WorkerFailed as exc:
        error = str(exc)
    except (ValueError, KeyError, TypeError):  # a line that is not the protocol
        error = worker.failure()
    except Exception as exc:  # finding a second round failed: no host is judged on half a probe
        error = f"collector failed: {type(exc).__name__}: {exc}"
    finally:
        worker.stop(kill=error is not None or sys.exc_info()[0] is not None)
    # A host the worker forgot is an error, never silently dropped.
    for job in jobs:
        if job.name not in answered:
            deliver(RawProbe(job.name, False, error or "no result from the collector"))
    return kept


def _converse(
    worker: _Worker, jobs: dict[str, HostJob], probes: dict[str, Probe], deliver: Callable[[RawProbe], None]
) -> None:
    """Answer every first round the worker sends with its second; hand on each host's result, its first
    round put back, as the worker sends it."""
    from hds_compliance.collect.probe import follow_ups, new_nonce, parse, render

    firsts: dict[str, RawRound] = {}
    for message in worker.messages():
        if "end" in message:
            return
        if "done" in message:
            done = message["done"]
            raw = RawProbe(**{**done, "rounds": [RawRound(**x) for x in done["rounds"]]})
            first = firsts.pop(raw.name, None)  # its output came once, with the first round's message
            if first is not None and raw.rounds and raw.rounds[0].stdout is None:
                raw.rounds[0].stdout, raw.rounds[0].parsed = first.stdout, first.parsed
            deliver(raw)
            continue
        name = message["first"]
        job, probe = jobs[name], probes[name]
        first = RawRound(job.nonce, job.facts, message["stdout"], message["stderr"])
        parsed = parse(probe, first.stdout, stderr=first.stderr)
        more = follow_ups(probe, parsed.captures)
        first.parsed, firsts[name] = (probe, parsed, [f.key for f in more]), first
        if not more:
            worker.send({"name": name})
            continue
        second = render(more, new_nonce(), job.section_cap)
        worker.send(
            {"name": name, "nonce": second.nonce, "facts": [f.key for f in more], "script": second.script}
        )
    raise _WorkerFailed(worker.failure())


class _WorkerFailed(Exception):
    """The worker died or answered something that is not its protocol."""


class _Worker:
    """The worker process: the request on its stdin's first line, then answers; its messages on stdout,
    one JSON line each, read by a thread (so the worker never waits on a full pipe); stderr kept."""

    def __init__(self, request: dict[str, Any], deadline: float) -> None:
        env = {**os.environ, "PYINFRA_PROGRESS": "off"}
        self.deadline = deadline
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "hds_compliance.collect"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # its own process group: a kill reaches the probes it started (@local's sh) too
            process_group=0,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.errors = threading.Thread(target=self._drain, daemon=True)
        self.errors.start()
        self.send(request)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line)
        self.lines.put(b"")  # end of the worker's output

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.append(self.proc.stderr.read())

    def send(self, message: dict[str, Any]) -> None:
        """One line on the worker's stdin."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # a worker that died: its exit says why
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()

    def messages(self) -> Iterator[dict[str, Any]]:
        """The worker's messages until its output ends; TimeoutError past the deadline."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError from None
            if not line:
                return
            yield json.loads(line)

    def failure(self) -> str:
        """Why the worker gave no results: its exit code and the last line it wrote on stderr."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.errors.join(timeout=10)
        text = b"".join(self.stderr).decode("utf-8", "replace")
        tail = (text.strip().splitlines() or ["no output"])[-1][:300]
        return f"collector failed (exit {self.proc.returncode}): {tail}"

    def stop(self, kill: bool = False) -> None:
        """Close its stdin (it has answered) and reap it; kill it and what it started first if it is past
        its budget or the scan is interrupted."""
        if kill:
            self._kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            self.proc.wait()

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
