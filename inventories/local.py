"""Default inventory: this machine, through pyinfra's @local connector.

Set the host data to what this machine is in your HDS scope; checks read it.
"""

local = [
    (
        "@local",
        {
            "hds_activities": [1, 2, 3, 4, 5, 6],
            "roles": [],
            "location_country": "FR",
        },
    )
]
