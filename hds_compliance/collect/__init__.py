"""Collect: the only stage that touches hosts. Probes run on hosts through pyinfra, in a worker process.

The scanning process never imports pyinfra: :func:`collect` starts a worker process
(``python -m hds_compliance.collect``, see :mod:`hds_compliance.collect.worker`) that patches gevent
first, connects to every host through pyinfra and runs the rendered probe, ONE command per host, plus a
second one only for facts that depend on the first's output (:meth:`Fact.follow_ups`). It answers with
the raw outputs as JSON on stdout. Probe rendering and parsing are pure (:mod:`.probe`); the worker does
no interpretation beyond finding those follow-ups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any


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


@dataclass
class RawRound:
    """One probe command on a host: the facts it rendered (keys) and what came back."""

    nonce: str
    facts: list[str]
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    command_ok: bool | None = None  # pyinfra's verdict on the command (the probe itself always exits 0)


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


def collect(jobs: list[HostJob], options: CollectOptions) -> dict[str, RawProbe]:
    """Probe every host through the worker; a worker failure turns every host into an error, never a pass."""
    if not jobs:
        return {}
    request = {"jobs": [asdict(j) for j in jobs], "options": asdict(options)}
    waves = 1 + (len(jobs) - 1) // max(options.parallel, 1)
    budget = 30 + waves * options.host_budget()
    env = {**os.environ, "PYINFRA_PROGRESS": "off"}
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-m", "hds_compliance.collect"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=budget,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {
            j.name: RawProbe(j.name, False, f"collector exceeded its {budget:.0f} s budget") for j in jobs
        }
    try:
        answer = json.loads(proc.stdout)
        results = {
            r["name"]: RawProbe(**{**r, "rounds": [RawRound(**x) for x in r["rounds"]]})
            for r in answer["results"]
        }
    except (ValueError, KeyError, TypeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        error = f"collector failed (exit {proc.returncode}): {tail}"
        return {j.name: RawProbe(j.name, False, error) for j in jobs}
    # A host the worker forgot is an error, never silently dropped.
    return {
        j.name: results.get(j.name) or RawProbe(j.name, False, "no result from the collector") for j in jobs
    }
