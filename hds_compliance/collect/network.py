"""Facts collected from the scanning machine rather than by the probe on the host (``origin = "scanner"``).

A TLS endpoint a host serves is judged as its clients see it: the scanning machine connects to it. Each
fact kind of that origin has a collector here, a function from the fact to a capture; like the probe,
a collector never raises: what went wrong is the capture's ``problem``, which evaluates to ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hds_compliance.facts import Fact
from hds_compliance.model import Capture

Collector = Callable[[Fact[Any], float], Capture]

# kind -> collector; filled by the modules that implement scanner-side facts.
COLLECTORS: dict[str, Collector] = {}


def collect_network(
    facts: dict[str, list[Fact[Any]]], timeout: float, parallel: int
) -> dict[str, list[Capture]]:
    """Captures of every scanner-side fact, by host; facts shared by several hosts are collected once."""
    unique = {f.key: f for fs in facts.values() for f in fs}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(unique) or 1))) as pool:
        done = dict(zip(unique, pool.map(lambda f: _one(f, timeout), unique.values()), strict=True))
    return {host: [done[f.key] for f in fs] for host, fs in facts.items()}


def _one(fact: Fact[Any], timeout: float) -> Capture:
    collector = COLLECTORS.get(fact.kind)
    if collector is None:
        return Capture(
            fact=fact.key, command=f"(scanner) {fact.kind}", complete=False, problem="no collector"
        )
    try:
        return collector(fact, timeout)
    except Exception as exc:  # a collector bug is an error verdict, never a crash of the scan
        return Capture(
            fact=fact.key,
            command=f"(scanner) {fact.kind}",
            complete=False,
            problem=f"{type(exc).__name__}: {exc}",
        )


# The scanner-side collectors register themselves in COLLECTORS on import.
from hds_compliance.collect import tls as _tls  # noqa: E402, F401
