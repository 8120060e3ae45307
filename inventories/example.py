"""Example HDS fleet: a bastion, application and database servers, backups and log collection.

Scan it with ``hds-compliance scan -i inventories/example.py``. Every host is reached over SSH with a
dedicated scanning account that elevates with ``sudo -n`` (a NOPASSWD rule limited to that account),
and host keys are checked against a known_hosts file the team manages: an unknown key is refused.

Roles tell the fleet checks who is who: ``bastion`` (the only way in for administrators, sessions
recorded), ``log_collector`` (receives every host's logs), ``backup`` (holds the backups), and the data
roles (parameter ``data_roles``: database, storage, app, backup) for hosts that hold health data.
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

app = (
    [
        ("app-par1", {"ssh_hostname": "10.10.1.11"}),
        ("app-par2", {"ssh_hostname": "10.10.1.12"}),
    ],
    # The patient portal: its TLS endpoint is checked from the scanning machine.
    {"roles": ["app"], "hds_activities": [3, 4, 5], "tls_endpoints": ["https://portail.example.fr/"]},
)

databases = (
    [("pg-par1", {"ssh_hostname": "10.10.2.21", "roles": ["database"]})],
    {"hds_activities": [3, 4, 5]},
)

backup = (
    # The off-site copy lives in Germany: still inside the EEA (HDS EXI 28). It pulls the data hosts'
    # backups into restic repositories whose passwords it keeps in root-only files.
    [
        (
            "backup-fra1",
            {
                "ssh_hostname": "10.20.0.31",
                "location_country": "DE",
                "backup_repositories": [
                    {
                        "tool": "restic",
                        "repository": "/srv/restic/pg-par1",
                        "password_file": "/etc/restic/pg-par1.pass",
                    },
                    {
                        "tool": "restic",
                        "repository": "/srv/restic/app",
                        "password_file": "/etc/restic/app.pass",
                    },
                ],
            },
        )
    ],
    {"roles": ["backup"], "hds_activities": [6]},
)

logs = (
    [("logs-par1", {"ssh_hostname": "10.10.3.41"})],
    {"roles": ["log_collector"], "hds_activities": [5]},
)
