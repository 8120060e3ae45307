"""Plan and evaluate: which controls apply to a host, which facts that needs, and the verdicts.

Pure functions of the catalogue, the inventory data and the captures: no host access. A certifier
re-running :func:`evaluate` on the captures of a scan gets the same verdicts.
"""

from __future__ import annotations

from typing import Any

from hds_compliance.catalog import Catalog, Control
from hds_compliance.check import Check, Context, FactUnavailable, HostInfo
from hds_compliance.facts import Fact
from hds_compliance.model import HostRecord, Status, Verdict


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


def plan_facts(catalog: Catalog, checks: dict[str, Check[Any]], host: HostInfo) -> list[Fact[Any]]:
    """Facts needed on a host by the checks of its applicable controls (the probe de-duplicates them)."""
    facts: list[Fact[Any]] = []
    for control in catalog.controls:
        if applies(control, host) is None:
            for ref in control.checks:
                spec = checks[ref.id]
                facts.extend(spec.facts(spec.validate(ref.params)))
    return facts


def host_info(record: HostRecord) -> HostInfo:
    """The inventory view of a host record."""
    return HostInfo.of(
        record.name, record.connector, record.hds_activities, record.roles, record.location_country
    )


def evaluate(catalog: Catalog, checks: dict[str, Check[Any]], hosts: list[HostRecord]) -> list[Verdict]:
    """Verdicts for every host × control × check, in inventory then catalogue order. Nothing is dropped."""
    verdicts: list[Verdict] = []
    for record in hosts:
        info = host_info(record)
        captures = record.capture_map()
        host_error = _host_error(record)
        parsed: dict[str, Any] = {}  # each fact parsed once per host, whatever the number of checks
        for control in catalog.controls:
            verdicts.extend(_control_verdicts(control, checks, info, captures, host_error, parsed))
    return verdicts


def _host_error(record: HostRecord) -> str | None:
    """Why nothing can be said of a host at all: unreachable, or a probe that returned nothing usable."""
    if not record.probe.connected:
        return f"host unreachable: {record.probe.error}"
    if record.captures and all(c.problem is not None for c in record.captures):
        return f"probe failed: {record.probe.error}"
    return None


def _control_verdicts(
    control: Control,
    checks: dict[str, Check[Any]],
    info: HostInfo,
    captures: dict[str, Any],
    host_error: str | None,
    parsed: dict[str, Any],
) -> list[Verdict]:
    base = {"host": info.name, "control": control.id, "severity": control.severity}
    skip = applies(control, info)
    if not control.checks:
        if skip is not None:
            return [Verdict(**base, check=None, index=0, status=Status.NOT_APPLICABLE, message=skip)]
        need = (
            f"needs an attestation ({control.attestation.evidence}, "
            f"valid {control.attestation.validity_days} days)"
            if control.attestation
            else "no automated check: needs a manual review"
        )
        return [Verdict(**base, check=None, index=0, status=Status.NOT_REVIEWED, message=need)]
    verdicts = []
    for index, ref in enumerate(control.checks):
        common = {**base, "check": ref.id, "index": index, "params": ref.params}
        if skip is not None:
            verdicts.append(Verdict(**common, status=Status.NOT_APPLICABLE, message=skip))
            continue
        if host_error is not None:
            # Inventory-only checks too: a host we could not reach or probe is never reported as passing.
            verdicts.append(Verdict(**common, status=Status.ERROR, message=host_error))
            continue
        spec = checks[ref.id]
        ctx = Context(host=info, captures=captures, parsed=parsed)
        try:
            outcome = spec.func(spec.validate(ref.params), ctx)
            status, message = outcome.status, outcome.message
        except FactUnavailable as exc:
            status, message = Status.ERROR, str(exc)
        except Exception as exc:  # a crashing check must surface as an error, never vanish
            status, message = Status.ERROR, f"check {ref.id} crashed: {type(exc).__name__}: {exc}"
        verdicts.append(Verdict(**common, status=status, message=message, facts=sorted(set(ctx.read))))
    return verdicts
