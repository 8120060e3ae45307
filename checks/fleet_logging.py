"""Fleet checks of logging and time: every host sends its logs to a log collector of the inventory over a
protected channel, and every host follows the same time sources.

Hosts are matched by inventory name, ``ssh_hostname`` or an address the collector's own probe reports
(loopback addresses excepted: 127.0.0.1 in a host's configuration is that host itself), never by DNS.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field

from hds_compliance.check import (
    FactUnavailable,
    Fleet,
    HostInfo,
    Outcome,
    Params,
    errored,
    failed,
    fleet_check,
    not_applicable,
    not_reviewed,
    passed,
)
from hds_compliance.checks.identity import ADDRESSES, Identities, normalised
from hds_compliance.checks.log_forwarding import FORWARDING_FACTS, ForwardTarget, forwarding_targets
from hds_compliance.checks.timesync import SOURCE_FACTS, DaemonSources, time_sources
from hds_compliance.facts import Fact


class CollectorParams(Params):
    role: str = Field(default="log_collector", description="inventory role of the hosts that collect logs")
    protected: bool = Field(
        default=True, description="require TLS (or Kerberos) with the collector's identity checked"
    )


def _collector_facts(p: CollectorParams, host: HostInfo) -> list[Fact[Any]]:
    return [ADDRESSES] if p.role in host.roles else list(FORWARDING_FACTS)


def _identities(fleet: Fleet, collectors: list[str]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Names each scanned collector answers to, and why some collectors' addresses are unknown."""
    ids = Identities.of(fleet, collectors)
    return ids.names, {name: "; ".join(why) for name, why in ids.unknown.items()}


def _judge_forwarding(
    p: CollectorParams, targets: list[ForwardTarget], known: dict[str, set[str]]
) -> tuple[list[tuple[ForwardTarget, str]], list[ForwardTarget]]:
    """(target, collector) pairs, and targets that reach no collector."""
    matched, elsewhere = [], []
    for target in targets:
        collector = next((c for c, names in known.items() if normalised(target.host) in names), None)
        if collector is None:
            elsewhere.append(target)
        else:
            matched.append((target, collector))
    return matched, elsewhere


@fleet_check("fleet.logs_forwarded_to_collector", params=CollectorParams, facts=_collector_facts)
def fleet_logs_forwarded_to_collector(p: CollectorParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every host forwards its logs over TLS, peer checked, to a log collector of the inventory."""
    collectors = fleet.with_role(p.role)
    outside = fleet.outside_with_role(p.role)
    known, unknown = _identities(fleet, collectors)
    out: dict[str, Outcome] = {}
    for name in fleet.judged:
        ctx = fleet.hosts[name]
        if p.role in ctx.host.roles:
            out[name] = not_applicable(f"{name} is a log collector (role {p.role})")
            continue
        if not collectors and not outside:
            out[name] = failed(f"no host of the inventory has the role {p.role}: logs have nowhere to go")
            continue
        try:
            targets, _ = forwarding_targets(ctx)
        except FactUnavailable as exc:
            out[name] = errored(str(exc))
            continue
        out[name] = _verdict(p, name, targets, known, unknown, outside)
    return out


def _verdict(
    p: CollectorParams,
    name: str,
    targets: list[ForwardTarget],
    known: dict[str, set[str]],
    unknown: dict[str, str],
    outside: list[str],
) -> Outcome:
    if not targets:
        return failed(
            f"{name} forwards its logs nowhere (no rsyslog, syslog-ng or journal-upload forwarding)"
        )
    matched, elsewhere = _judge_forwarding(p, targets, known)
    good = [(t, c) for t, c in matched if not t.problem and t.running and (t.protected or not p.protected)]
    others = f"; also to {', '.join(t.host for t in elsewhere)}, no {p.role}" if elsewhere else ""
    if good:
        shown = "; ".join(f"{c}: {t.describe()}" for t, c in good)
        return passed(f"forwards to {shown}{others}")
    if matched:
        reasons = []
        for target, collector in matched:
            if target.problem:
                reasons.append(f"{collector}: {target.describe()}")
            elif not target.running:
                reasons.append(f"{collector}: {target.describe()}, but {target.tool}'s daemon is not running")
            else:
                reasons.append(f"{collector}: {target.describe()}, not over TLS with the collector checked")
        return failed("; ".join(reasons) + others)
    shown = ", ".join(sorted({t.host for t in elsewhere}))
    if unknown:
        why = "; ".join(f"{c}: {reason}" for c, reason in unknown.items())
        return errored(f"cannot tell whether {shown} is a {p.role}: addresses unknown ({why})")
    if outside:
        return not_reviewed(
            f"{shown} matches no scanned {p.role}; {', '.join(outside)} are outside this scan"
        )
    return failed(
        f"{name} forwards only to {shown}, which is no {p.role} of the inventory ({', '.join(known)})"
    )


class TimeSourcesParams(Params):
    sources: list[str] = Field(
        default_factory=list,
        description="time sources every host must use; empty: the sources most hosts of the scan use",
    )


@fleet_check("fleet.time_sources_consistent", params=TimeSourcesParams, facts=lambda p, host: SOURCE_FACTS)
def fleet_time_sources_consistent(p: TimeSourcesParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every host synchronises its clock with the same sources (given, or those most hosts use)."""
    found: dict[str, DaemonSources | str] = {}
    errors: dict[str, str] = {}
    for name in fleet.judged:
        try:
            found[name] = time_sources(fleet.hosts[name])
        except FactUnavailable as exc:
            errors[name] = str(exc)
    out: dict[str, Outcome] = {name: errored(why) for name, why in errors.items()}
    if p.sources:
        reference, origin = frozenset(normalised(s) for s in p.sources), "parameter time_sources"
    else:
        missing = sorted(set(fleet.outside) | set(fleet.broken) | set(errors))
        if missing:
            why = (
                f"the sources most hosts use are unknown while {', '.join(missing)} "
                "cannot be read or are outside the scan"
            )
            return out | {n: not_reviewed(why) for n in found}
        counts = Counter(ds.names for ds in found.values() if isinstance(ds, DaemonSources) and ds.names)
        ranked = counts.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            users = {
                names: sorted(
                    n for n, ds in found.items() if isinstance(ds, DaemonSources) and ds.names == names
                )
                for names, _ in ranked
            }
            split = "; ".join(f"{', '.join(hosts)} use {', '.join(sorted(s))}" for s, hosts in users.items())
            return out | {n: failed(f"no set of time sources is used by most hosts: {split}") for n in found}
        reference = ranked[0][0] if ranked else frozenset()
        origin = f"used by {ranked[0][1]} of {len(found)} hosts" if ranked else "none"
    for name, ds in found.items():
        if isinstance(ds, str):
            out[name] = failed(ds)
        elif not ds.names:
            out[name] = failed(f"{ds.daemon} names no time source ({'; '.join(ds.notes) or ds.config})")
        elif ds.names - reference:
            extra = ", ".join(sorted(ds.names - reference))
            out[name] = failed(
                f"{ds.daemon} uses {extra}, not among the fleet's sources "
                f"{', '.join(sorted(reference))} ({origin})"
            )
        else:
            out[name] = passed(f"{ds.daemon} uses {', '.join(sorted(ds.names))} ({origin})")
    return out
