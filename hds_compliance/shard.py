"""Shards: a stable part of the inventory per CI job, and the merge of their results into one run.

``scan --shard K/N`` scans the hosts whose SHA-256 of the inventory name, as a number, is K-1 modulo N:
the same split on every run and every machine, whatever the order of the inventory. The other hosts are
outside the scan, as with ``--limit``, so fleet checks say ``not_reviewed`` in a shard. ``merge`` puts the
shards of one run back together (refusing shards of different catalogues or inventories, a shard given
twice, a missing one) and the scan's evaluation runs again over all hosts, fleet checks included.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hds_compliance.errors import InputError, Problem
from hds_compliance.model import HostRecord, ScanResult, Scope

_SPEC = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as CI matrices number jobs)."""

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``K/N`` with 1 <= K <= N; :class:`InputError` otherwise."""
        match = _SPEC.match(spec.strip())
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise InputError([Problem("--shard", None, "", f"expected K/N with 1 <= K <= N, got {spec!r}")])
        return cls(int(match[1]), int(match[2]))

    def holds(self, name: str) -> bool:
        """Whether the host named ``name`` belongs to this shard."""
        return (
            int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % self.count == self.index - 1
        )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class Merged:
    """The shards' hosts in inventory order, the scope of the whole run, and its time span."""

    hosts: list[HostRecord]
    scope: Scope
    started_at: str
    finished_at: str
    catalog_digest: str
    profile: str | None
    inventory: str


def merge(results: list[tuple[str, ScanResult]]) -> Merged:
    """Put the shards of one scan back together; :class:`InputError` naming every reason it cannot."""
    problems: list[Problem] = []
    first_name, first = results[0]
    shards: dict[int, str] = {}
    counts = set()
    owner: dict[str, str] = {}
    for name, result in results:
        scope = result.run.scope
        if scope is None or scope.shard is None:
            problems.append(Problem(name, None, "run.scope.shard", "not a shard (scanned without --shard)"))
            continue
        shard = Shard.parse(scope.shard)
        counts.add(shard.count)
        if shard.index in shards:
            problems.append(
                Problem(name, None, "run.scope.shard", f"shard {shard} is also {shards[shard.index]}")
            )
        shards[shard.index] = name
        for field, mine, theirs in (
            ("schema_version", result.schema_version, first.schema_version),
            ("run.catalog_digest", result.run.catalog_digest, first.run.catalog_digest),
            ("run.profile", result.run.profile, first.run.profile),
            ("run.inventory", result.run.inventory, first.run.inventory),
            ("run.scope.order", scope.order, first.run.scope.order if first.run.scope else None),
        ):
            if mine != theirs:
                problems.append(
                    Problem(name, None, field, f"differs from {first_name}: shards of one scan only")
                )
        for host in result.hosts:
            if host.name in owner:
                problems.append(
                    Problem(name, None, "hosts", f"host {host.name} is also in {owner[host.name]}")
                )
            owner.setdefault(host.name, name)
    if len(counts) > 1:
        problems.append(
            Problem(first_name, None, "run.scope.shard", f"shards of {sorted(counts)} parts mixed")
        )
    elif counts:
        (count,) = counts
        missing = [str(k) for k in range(1, count + 1) if k not in shards]
        if missing:
            problems.append(
                Problem(
                    first_name, None, "run.scope.shard", f"shard(s) {', '.join(missing)} of {count} missing"
                )
            )
    if problems:
        raise InputError(problems)
    assert first.run.scope is not None
    order = first.run.scope.order
    position = {n: i for i, n in enumerate(order)}
    hosts = sorted((h for _, r in results for h in r.hosts), key=lambda h: position.get(h.name, len(order)))
    scanned = {h.name for h in hosts}
    roles = {n: rs for _, r in results if r.run.scope for n, rs in r.run.scope.outside.items()}
    return Merged(
        hosts=hosts,
        scope=Scope(
            inventory_hosts=first.run.scope.inventory_hosts,
            outside={n: roles.get(n, []) for n in order if n not in scanned},
            order=order,
        ),
        started_at=min(r.run.started_at for _, r in results),
        finished_at=max(r.run.finished_at for _, r in results),
        catalog_digest=first.run.catalog_digest,
        profile=first.run.profile,
        inventory=first.run.inventory,
    )
