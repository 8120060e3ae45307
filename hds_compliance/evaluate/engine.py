"""Plan and evaluate: which controls apply to a host, which facts that needs, and the verdicts.

Pure functions of the catalogue, the inventory data and the captures: no host access. A certifier
re-running :func:`evaluate` on the captures of a scan gets the same verdicts. Fleet checks see every
scanned host at once; their verdicts take the place of the host's, in inventory then catalogue order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hds_compliance.catalog import Catalog, CheckRef, Control
from hds_compliance.check import Check, Context, FactUnavailable, Fleet, HostInfo, Outcome
from hds_compliance.facts import Fact, fact_from_key
from hds_compliance.model import HostRecord, Scope, Status, Verdict


def applies(control: Control, host: HostInfo) -> str | None:
    """``None`` if the control applies to the host, else the reason it does not."""
    if host.hds_activities is not None and not set(control.activities) & set(host.hds_activities):
        return (
            f"control covers HDS activities {control.activities}, "
            f"host serves {sorted(host.hds_activities) or 'none'}"
        )
    if control.roles and not set(control.roles) & set(host.roles):
        return f"control applies to roles {control.roles}, host has {sorted(host.roles) or 'none'}"
    return None


def left_out(catalog: Catalog, spec: Check[Any]) -> str | None:
    """Why the profile leaves a check out (one of its tags is excluded), else ``None``."""
    tags = sorted(set(spec.tags) & set(catalog.exclude_tags))
    if not tags:
        return None
    return f"left out by profile {catalog.profile} (check tagged {', '.join(tags)})"


def plan_facts(catalog: Catalog, checks: dict[str, Check[Any]], host: HostInfo) -> list[Fact[Any]]:
    """Facts needed on a host by the checks of its applicable controls (the probe de-duplicates them).

    A fleet check may need facts of a host its control does not apply to (the bastions' addresses when
    judging data hosts), so fleet checks are planned on every host.
    """
    facts: list[Fact[Any]] = []
    for control in catalog.controls:
        applicable = applies(control, host) is None
        for ref in control.checks:
            spec = checks[ref.id]
            if left_out(catalog, spec) is None and (applicable or spec.fleet is not None):
                facts.extend(spec.facts_for(spec.validate(ref.params), host))
    return facts


def host_info(record: HostRecord) -> HostInfo:
    """The inventory view of a host record."""
    return HostInfo.of(record.name, record.connector, record)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class _Host:
    """A host as the evaluator holds it: its view, captures, parsed facts, and why it is unusable if so."""

    info: HostInfo
    captures: dict[str, Any]
    error: str | None
    now: datetime | None
    parsed: dict[str, Any]

    def context(self, declared: list[Fact[Any]]) -> Context:
        keys = frozenset(f.key for f in declared)
        return Context(self.info, self.captures, declared=keys, now=self.now, parsed=self.parsed)


def _host_error(record: HostRecord) -> str | None:
    """Why nothing can be said of a host at all: unreachable, or a probe that returned nothing usable.

    Captures the scanning machine made (a TLS endpoint it could not reach) do not count: they say
    nothing of the probe.
    """
    if not record.probe.connected:
        return f"host unreachable: {record.probe.error}"
    probed = [c for c in record.captures if fact_from_key(c.fact).origin == "host"]
    if probed and all(c.problem is not None for c in probed):
        return f"probe failed: {record.probe.error}"
    return None


def evaluate(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    hosts: list[HostRecord],
    scope: Scope | None = None,
    collected_at: str | None = None,
) -> list[Verdict]:
    """Verdicts for every host × control × check, in inventory then catalogue order. Nothing is dropped.

    ``scope`` says which inventory hosts the scan left out (fleet checks that need them are
    ``not_reviewed``); ``collected_at`` is the run's start, the clock of hosts whose probe time is unknown.
    """
    state = {
        r.name: _Host(
            host_info(r), r.capture_map(), _host_error(r), _time(r.probe.started_at or collected_at), {}
        )
        for r in hosts
    }
    fleet_outcomes: dict[tuple[str, int], tuple[dict[str, Outcome], dict[str, list[str]]]] = {}
    for control in catalog.controls:
        for index, ref in enumerate(control.checks):
            spec = checks[ref.id]
            if spec.fleet is not None and left_out(catalog, spec) is None:
                fleet_outcomes[(control.id, index)] = _run_fleet(control, spec, ref, state, scope)
    verdicts: list[Verdict] = []
    for record in hosts:
        for control in catalog.controls:
            verdicts.extend(_control_verdicts(control, catalog, checks, state[record.name], fleet_outcomes))
    return verdicts


_PARAMS: dict[tuple[type[Any], str], Any] = {}


def _validated(spec: Check[Any], ref: CheckRef) -> Any:
    """The check's parameters model for a reference, validated once (they are the same for every host)."""
    key = (spec.params, repr(sorted(ref.params.items())))
    if key not in _PARAMS:
        _PARAMS[key] = spec.validate(ref.params)
    return _PARAMS[key]


def _run_fleet(
    control: Control, spec: Check[Any], ref: CheckRef, state: dict[str, _Host], scope: Scope | None
) -> tuple[dict[str, Outcome], dict[str, list[str]]]:
    """Outcomes of a fleet check per judged host, and the facts it read, by host (``other:key`` for the
    facts of other hosts)."""
    params = _validated(spec, ref)
    judged = [name for name, h in state.items() if applies(control, h.info) is None and h.error is None]
    fleet = Fleet(
        hosts={name: h.context(spec.facts_for(params, h.info)) for name, h in state.items()},
        judged=judged,
        broken={name: h.error for name, h in state.items() if h.error is not None},
        outside={name: tuple(roles) for name, roles in (scope.outside if scope else {}).items()},
    )
    assert spec.fleet is not None
    try:
        outcomes = spec.fleet(params, fleet)
    except Exception as exc:  # a crashing fleet check is an error on every host it judges, never a pass
        why = f"fleet check {ref.id} crashed: {type(exc).__name__}: {exc}"
        outcomes = {name: Outcome(Status.ERROR, why) for name in judged}
    read = {
        name: sorted(
            {key for key in fleet.hosts[name].read}
            | {f"{other}:{key}" for other, ctx in fleet.hosts.items() if other != name for key in ctx.read}
        )
        for name in judged
    }
    return outcomes, read


def _control_verdicts(
    control: Control,
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    host: _Host,
    fleet_outcomes: dict[tuple[str, int], tuple[dict[str, Outcome], dict[str, list[str]]]],
) -> list[Verdict]:
    info = host.info
    base = {"host": info.name, "control": control.id, "severity": control.severity}
    skip = applies(control, info)
    if not control.checks:
        if skip is not None:
            return [Verdict(**base, check=None, index=0, status=Status.NOT_APPLICABLE, message=skip)]
        need = (
            control.attestation.describe()
            if control.attestation
            else "no automated check: needs a manual review"
        )
        return [Verdict(**base, check=None, index=0, status=Status.NOT_REVIEWED, message=need)]
    verdicts = []
    for index, ref in enumerate(control.checks):
        common = {**base, "check": ref.id, "index": index, "params": ref.params}
        spec = checks[ref.id]
        excluded = left_out(catalog, spec)
        if skip is not None:
            verdicts.append(Verdict(**common, status=Status.NOT_APPLICABLE, message=skip))
        elif excluded is not None:
            verdicts.append(Verdict(**common, status=Status.NOT_REVIEWED, message=excluded))
        elif host.error is not None:
            # Inventory-only checks too: a host we could not reach or probe is never reported as passing.
            verdicts.append(Verdict(**common, status=Status.ERROR, message=host.error))
        elif spec.fleet is not None:
            outcomes, read = fleet_outcomes[(control.id, index)]
            outcome = outcomes.get(info.name)
            if outcome is None:
                outcome = Outcome(Status.ERROR, f"fleet check {ref.id} gave no verdict for {info.name}")
            facts = read.get(info.name, [])
            verdicts.append(Verdict(**common, status=outcome.status, message=outcome.message, facts=facts))
        else:
            verdicts.append(_host_verdict(spec, ref, host, common))
    return verdicts


def _host_verdict(spec: Check[Any], ref: CheckRef, host: _Host, common: dict[str, Any]) -> Verdict:
    params = _validated(spec, ref)
    ctx = host.context(spec.facts_for(params, host.info))
    try:
        outcome = spec.func(params, ctx)
        status, message = outcome.status, outcome.message
    except FactUnavailable as exc:
        status, message = Status.ERROR, str(exc)
    except Exception as exc:  # a crashing check must surface as an error, never vanish
        status, message = Status.ERROR, f"check {ref.id} crashed: {type(exc).__name__}: {exc}"
    return Verdict(**common, status=status, message=message, facts=sorted(set(ctx.read)))
