"""Example HDS fleet: a bastion, application and database servers, backups and log collection.

Scan it with ``hds-compliance scan -i inventories/example.py``. Every host is reached over SSH with a
dedicated scanning account that elevates with ``sudo -n`` (a NOPASSWD rule limited to that account),
and host keys are checked against a known_hosts file the team manages: an unknown key is refused.
"""

all: tuple[list[str], dict[str, object]] = (
    [],
    {
        "ssh_user": "hdsscan",
        "ssh_key": "~/.ssh/hds_scan_ed25519",
        "ssh_known_hosts_file": "/etc/hds-compliance/known_hosts",
        "ssh_strict_host_key_checking": "yes",
        "hds_sudo": True,
        "location_country": "FR",
    },
)

bastions = (
    [("bastion-par1", {"ssh_hostname": "10.10.0.10"})],
    {"roles": ["bastion"], "hds_activities": [5]},
)

web = (
    [
        ("app-par1", {"ssh_hostname": "10.10.1.11"}),
        ("app-par2", {"ssh_hostname": "10.10.1.12"}),
    ],
    {"roles": ["web"], "hds_activities": [3, 4, 5]},
)

databases = (
    [("pg-par1", {"ssh_hostname": "10.10.2.21", "roles": ["database"]})],
    {"hds_activities": [3, 4, 5]},
)

backup = (
    # The off-site copy lives in Germany: still inside the EEA (HDS EXI 28).
    [("backup-fra1", {"ssh_hostname": "10.20.0.31", "location_country": "DE"})],
    {"roles": ["backup"], "hds_activities": [6]},
)

logs = (
    [("logs-par1", {"ssh_hostname": "10.10.3.41"})],
    {"roles": ["log_collector"], "hds_activities": [5]},
)
