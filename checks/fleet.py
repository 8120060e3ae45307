"""Fleet checks that read only the inventory: the roles an HDS fleet cannot do without.

The checks that read hosts' facts across the fleet live with their area (``fleet_ssh``, ``fleet_logging``...).
"""

from __future__ import annotations

from pydantic import Field

from hds_compliance.check import Fleet, Outcome, Params, failed, fleet_check, not_reviewed, passed


class RoleParams(Params):
    role: str = Field(description="inventory role the fleet must have, e.g. bastion or log_collector")


@fleet_check("fleet.role_present", params=RoleParams, facts=lambda p, host: [])
def fleet_role_present(p: RoleParams, fleet: Fleet) -> dict[str, Outcome]:
    """The fleet has a host of a role (a bastion, a log collector, a backup host) that the others rely on."""
    scanned = fleet.with_role(p.role)
    if scanned:
        outcome = passed(f"{p.role}: {', '.join(scanned)}")
    elif fleet.outside_with_role(p.role):
        outcome = not_reviewed(
            f"the {p.role} hosts ({', '.join(fleet.outside_with_role(p.role))}) are outside this scan"
        )
    else:
        outcome = failed(f"no host of the inventory has the role {p.role}")
    return dict.fromkeys(fleet.judged, outcome)
