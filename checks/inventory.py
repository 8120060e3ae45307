"""Inventory data about a host: where it is, which HDS activities it serves. No host fact is read.

Not knowing is not failing: a host whose inventory entry lacks ``location_country`` gets an ``error``
verdict (the data must be completed), never a pass and never a fail that would look like a finding.
"""

from __future__ import annotations

from hds_compliance.check import Context, FactUnavailable, NoParams, Outcome, check, failed, passed

# The European Economic Area: the 27 EU member states (ISO 3166-1 alpha-2; Greece is GR, not the EU's "EL")
# plus Iceland, Liechtenstein and Norway (HDS v2 EXI 28 requires storage inside the EEA).
EU27 = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA = EU27 | {"IS", "LI", "NO"}
# EU outermost regions that have their own ISO 3166-1 code (TFEU art. 349): French Guiana, Guadeloupe,
# Martinique, Réunion, Mayotte, Saint-Martin: they are EU territory. Deliberately NOT listed: the overseas
# countries and territories (PF, NC, PM, WF, BL, TF...), outside the EU; Svalbard (SJ), outside the EEA
# Agreement; the Åland Islands (AX), left out until their status is confirmed against a source.
EU_OUTERMOST_REGIONS = frozenset({"GF", "GP", "MQ", "RE", "YT", "MF"})
ALLOWED = EEA | EU_OUTERMOST_REGIONS


@check("inventory.location_in_eea")
def inventory_location_in_eea(p: NoParams, ctx: Context) -> Outcome:
    """The host is located in the European Economic Area, as its inventory entry declares (HDS EXI 28)."""
    country = ctx.host.location_country
    if country is None or not country.strip():
        raise FactUnavailable(f"location_country is not set in the inventory for {ctx.host.name}")
    code = country.strip().upper()
    if code not in ALLOWED:
        return failed(f"{ctx.host.name} is located in {code} (inventory location_country), outside the EEA")
    return passed(f"{ctx.host.name} is located in {code}, inside the EEA")


@check("inventory.hds_activities_declared")
def inventory_hds_activities_declared(p: NoParams, ctx: Context) -> Outcome:
    """The inventory says which HDS activities (1-6) the host serves, so the right controls apply to it."""
    activities = ctx.host.hds_activities
    if activities is None:
        return failed(f"hds_activities is not set in the inventory for {ctx.host.name}: all controls apply")
    if not activities:
        return failed(
            f"hds_activities is empty for {ctx.host.name}: a host of the HDS inventory serves at least one "
            "activity (remove it from the inventory if it is out of scope)"
        )
    bad = sorted(a for a in activities if a not in range(1, 7))
    if bad:
        return failed(f"hds_activities of {ctx.host.name} has values outside 1-6: {bad}")
    listed = ", ".join(str(a) for a in sorted(set(activities)))
    return passed(f"{ctx.host.name} serves HDS activities {listed}")
