"""Re-record the captures of the logging, audit and time checks (tests/captures/{logs,auditd,timesync,
fleet_logging}.yaml): each scenario's files are placed over /etc (and /var/log) in a private mount
namespace and the facts' own snippets run there through a real probe (see logaudit_ns.py). Only the block
between the "recorded by" markers of each file is rewritten; the cases below it are written by hand.

    PYTHONPATH=$PWD python tests/record_logaudit.py [FILE...]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from logaudit_ns import collect

from hds_compliance.facts import KINDS

CAPTURES = Path(__file__).parent / "captures"
BEGIN = "  # --- recorded by tests/record_logaudit.py: begin"
END = "  # --- recorded by tests/record_logaudit.py: end"

# Every rsyslog scenario hides the drop-ins other packages put on this VM (ufw, postfix): Debian's default.
RSYSLOG_CLEAN = {"/etc/rsyslog.d/20-ufw.conf": None, "/etc/rsyslog.d/postfix.conf": None}
REMOTE = "/etc/rsyslog.d/60-hds-remote.conf"
# Likewise for logrotate.d: Debian 12 with rsyslog and chrony, without this VM's other packages.
LOGROTATE_CLEAN = {
    f"/etc/logrotate.d/{name}": None
    for name in (
        "clamav-daemon",
        "clamav-freshclam",
        "dnf",
        "postgresql-common",
        "ufw",
        "unattended-upgrades",
    )
}


@dataclass
class Scenario:
    """One recorded capture: the fact key, the files in place, and what it shows."""

    name: str
    key: str
    comment: str
    files: dict[str, str | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    written: bool = False  # files written from documentation, no real program here to accept them

    def capture(self) -> dict[str, Any]:
        """Exit code and output of the fact's snippet, recorded in the scenario."""
        [capture] = collect([_fact(self.key)], self.files, **self.options).values()
        fields: dict[str, Any] = {"exit_code": capture.exit_code}
        if capture.stdout:
            fields["stdout"] = capture.stdout
        if capture.stderr:
            fields["stderr"] = capture.stderr
        return fields


def again(*names: str) -> list[Scenario]:
    """Scenarios defined for another capture file, recorded again for this one (anchors are per file)."""
    known = {sc.name: sc for group in ("LOGS", "AUDIT", "TIME") for sc in globals().get(group, [])}
    return [known[name] for name in names]


def rsyslog(name: str, comment: str, files: dict[str, str | None]) -> Scenario:
    return Scenario(
        name, "rsyslog-config", comment + "; accepted by rsyslogd -N1", {**RSYSLOG_CLEAN, **files}
    )


def tls_action(extra: str, protocol: str = ' protocol="tcp"') -> str:
    return (
        'global(DefaultNetstreamDriverCAFile="/etc/ssl/certs/ca-certificates.crt")\n'
        f'action(type="omfwd" target="logs.hds.example" port="6514"{protocol}\n'
        f"       {extra}\n"
        '       queue.type="LinkedList" queue.filename="fwd_hds" action.resumeRetryCount="-1")\n'
    )


def in_ruleset(config: str) -> str:
    """The action of ``config`` moved into ruleset hds-remote (global() must stay outside)."""
    return config.replace("action(", 'ruleset(name="hds-remote") {\naction(', 1) + "}\n"


VERIFIED = (
    'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" '
    'StreamDriverPermittedPeers="logs.hds.example"'
)
DEBIAN_RSYSLOG = Path("/etc/rsyslog.conf").read_text()
NO_INCLUDE = DEBIAN_RSYSLOG.replace(
    "$IncludeConfig /etc/rsyslog.d/*.conf", "#$IncludeConfig /etc/rsyslog.d/*.conf"
)

SYSLOG_NG_BASE = """@version: 3.38
@include "scl.conf"

options { chain_hostnames(off); flush_lines(0); use_dns(no); use_fqdn(no); keep_hostname(yes); };

source s_src { system(); internal(); };

destination d_syslog { file("/var/log/syslog"); };
destination d_hds {
    network("logs.hds.example" port(6514) transport("tls")
        tls(ca-dir("/etc/syslog-ng/ca.d")VERIFY));
};

log { source(s_src); destination(d_syslog); };
"""
NG_USED = "log { source(s_src); destination(d_hds); };\n"
NG = "/etc/syslog-ng/syslog-ng.conf"

LOGS = [
    rsyslog("rs_debian", "Debian 12 default rsyslog.conf, no forwarding", {}),
    rsyslog(
        "rs_tls_verified",
        "omfwd, gtls, StreamDriverMode 1, x509/name with a permitted peer",
        {
            REMOTE: "# Forward everything to the HDS log collector over TLS (RFC 5425)\n"
            + tls_action(VERIFIED)
        },
    ),
    rsyslog(
        "rs_tls_anon",
        "omfwd, gtls, StreamDriverMode 1, StreamDriverAuthMode anon",
        {REMOTE: tls_action('StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="anon"')},
    ),
    rsyslog(
        "rs_mode_only",
        "omfwd over TCP with StreamDriverMode 1 but no TLS driver anywhere (ptcp)",
        {REMOTE: tls_action('StreamDriverMode="1" StreamDriverAuthMode="x509/name"')},
    ),
    rsyslog(
        "rs_tls_udp",
        "omfwd, gtls, StreamDriverMode 1, but no protocol (omfwd's default: UDP)",
        {REMOTE: tls_action(VERIFIED, protocol="")},
    ),
    rsyslog(
        "rs_global_driver",
        "global DefaultNetstreamDriver gtls, the action sets only the mode (no authmode)",
        {
            REMOTE: 'global(DefaultNetstreamDriver="gtls"\n'
            '       DefaultNetstreamDriverCAFile="/etc/ssl/certs/ca-certificates.crt")\n'
            'action(type="omfwd" target="10.20.0.5" port="6514" protocol="tcp" StreamDriverMode="1")\n'
        },
    ),
    rsyslog(
        "rs_legacy_tls",
        "legacy directives before a legacy @@ action: gtls, mode 1, x509/name",
        {
            REMOTE: "$DefaultNetstreamDriver gtls\n"
            "$DefaultNetstreamDriverCAFile /etc/ssl/certs/ca-certificates.crt\n"
            "$ActionSendStreamDriverMode 1\n$ActionSendStreamDriverAuthMode x509/name\n"
            "$ActionSendStreamDriverPermittedPeer logs.hds.example\n*.* @@logs.hds.example:6514\n"
        },
    ),
    rsyslog(
        "rs_legacy_late",
        "legacy $ActionSendStreamDriverMode 1 placed AFTER the @@ action it was meant for",
        {
            REMOTE: "$DefaultNetstreamDriver gtls\n*.* @@logs.hds.example:6514\n"
            "$ActionSendStreamDriverMode 1\n"
        },
    ),
    rsyslog(
        "rs_legacy_udp",
        "legacy UDP forwarding",
        {REMOTE: "# legacy syntax, UDP\n*.* @logs.hds.example:514\n"},
    ),
    rsyslog(
        "rs_legacy_tcp",
        "legacy plain TCP forwarding",
        {REMOTE: "# legacy syntax, TCP\n*.*  @@logs.hds.example:514\n"},
    ),
    rsyslog(
        "rs_not_included",
        "the TLS drop-in exists but rsyslog.conf's $IncludeConfig is commented out",
        {"/etc/rsyslog.conf": NO_INCLUDE, REMOTE: tls_action(VERIFIED)},
    ),
    rsyslog(
        "rs_unbound_ruleset",
        "a verified TLS action inside a ruleset that no input or call uses",
        {REMOTE: in_ruleset(tls_action(VERIFIED))},
    ),
    rsyslog(
        "rs_bound_ruleset",
        "the same ruleset, called from the main flow",
        {REMOTE: in_ruleset(tls_action(VERIFIED)) + "call hds-remote\n"},
    ),
    Scenario(
        "ng_tls",
        "log-syslog-ng-config",
        "from the syslog-ng 3.38 documentation: network() over TLS, peer-verify(required-trusted)",
        {NG: SYSLOG_NG_BASE.replace("VERIFY", " peer-verify(required-trusted)") + NG_USED},
        written=True,
    ),
    Scenario(
        "ng_untrusted",
        "log-syslog-ng-config",
        "the same with peer-verify(optional-untrusted)",
        {NG: SYSLOG_NG_BASE.replace("VERIFY", " peer-verify(optional-untrusted)") + NG_USED},
        written=True,
    ),
    Scenario(
        "ng_unused",
        "log-syslog-ng-config",
        "the TLS destination defined but used by no log path",
        {NG: SYSLOG_NG_BASE.replace("VERIFY", "")},
        written=True,
    ),
    Scenario(
        "ng_conf_d",
        "log-syslog-ng-config",
        "destination in conf.d, log path in the main file; tls() without peer-verify (default "
        "required-trusted)",
        {
            NG: SYSLOG_NG_BASE.split("destination d_hds")[0]
            + '@include "/etc/syslog-ng/conf.d/*.conf"\n'
            + "log { source(s_src); destination(d_syslog); };\n"
            + NG_USED,
            "/etc/syslog-ng/conf.d/hds.conf": 'destination d_hds { syslog("10.20.0.5" transport("tls") '
            'port(6514) tls(ca-dir("/etc/syslog-ng/ca.d"))); };\n',
        },
        written=True,
    ),
    Scenario("ng_absent", "log-syslog-ng-config", "syslog-ng not installed", {NG: None}),
    Scenario(
        "upload_https",
        "journal-upload-config",
        "https URL and TrustedCertificateFile in a drop-in",
        {
            "/etc/systemd/journal-upload.conf.d/hds.conf": "[Upload]\nURL=https://logs.hds.example:19532\n"
            "ServerKeyFile=/etc/ssl/private/journal-upload.pem\nServerCertificateFile=/etc/ssl/certs/journal-upload.pem\n"
            "TrustedCertificateFile=/etc/ssl/certs/hds-logs-ca.pem\n"
        },
    ),
    Scenario(
        "upload_trust_all",
        "journal-upload-config",
        "https URL, server certificate not checked (TrustedCertificateFile=all)",
        {
            "/etc/systemd/journal-upload.conf.d/hds.conf": "[Upload]\nURL=https://logs.hds.example:19532\nTrustedCertificateFile=all\n"
        },
    ),
    Scenario(
        "upload_no_scheme",
        "journal-upload-config",
        "URL without scheme (journal-upload then uses https), default CA file",
        {"/etc/systemd/journal-upload.conf.d/hds.conf": "[Upload]\nURL=logs.hds.example\n"},
    ),
    Scenario(
        "upload_override",
        "journal-upload-config",
        "an https drop-in, then a later drop-in switching to http",
        {
            "/etc/systemd/journal-upload.conf.d/10-hds.conf": "[Upload]\nURL=https://logs.hds.example:19532\n",
            "/etc/systemd/journal-upload.conf.d/90-debug.conf": "[Upload]\nURL=http://10.9.9.9:19532\n",
        },
    ),
    Scenario(
        "upload_debian",
        "journal-upload-config",
        "Debian 12 default (systemd-journal-remote 252): URL commented out",
    ),
    Scenario(
        "daemons_rsyslog",
        "log-daemons",
        "rsyslogd and journald running",
        {},
        {"processes": ("rsyslogd", "systemd-journald")},
    ),
    Scenario(
        "daemons_upload",
        "log-daemons",
        "journald and systemd-journal-upload (same 15-byte comm)",
        {},
        {"processes": ("systemd-journald", "systemd-journal-upload")},
    ),
    Scenario("daemons_none", "log-daemons", "no logging daemon at all", {}, {"processes": ("sleep",)}),
    Scenario("journald_debian", "journal-journald-config", "Debian 12 default journald.conf, no drop-in"),
    Scenario(
        "journald_volatile",
        "journal-journald-config",
        "Storage=volatile in a drop-in",
        {"/etc/systemd/journald.conf.d/50-volatile.conf": "[Journal]\nStorage=volatile\n"},
    ),
    Scenario(
        "journald_hds",
        "journal-journald-config",
        "persistent, kept 7 months, deleted after",
        {
            "/etc/systemd/journald.conf.d/hds.conf": "[Journal]\nStorage=persistent\n"
            "SystemMaxUse=8G\nMaxRetentionSec=7month\n"
        },
    ),
    Scenario(
        "journald_vendor",
        "journal-journald-config",
        "a vendor drop-in in /usr/lib keeps 1 week; a same-named drop-in in /etc hides it (7 months)",
        {
            "/usr/lib/systemd/journald.conf.d/60-vendor.conf": "[Journal]\nMaxRetentionSec=1week\n",
            "/usr/lib/systemd/journald.conf.d/70-storage.conf": "[Journal]\nStorage=persistent\n",
            "/etc/systemd/journald.conf.d/60-vendor.conf": "[Journal]\nMaxRetentionSec=7month\n",
        },
        {"overlays": ("/etc", "/usr/lib/systemd")},
    ),
    Scenario(
        "journald_short",
        "journal-journald-config",
        "MaxRetentionSec=1month in one drop-in; a later one sets Storage",
        {
            "/etc/systemd/journald.conf.d/10-retention.conf": "[Journal]\nMaxRetentionSec=1month\n",
            "/etc/systemd/journald.conf.d/20-storage.conf": "[Journal]\nStorage=persistent\n",
        },
    ),
    Scenario(
        "logrotate_duplicate",
        "log-logrotate-config",
        "00-hds names /var/log/syslog (daily, rotate 200) before logrotate.d/rsyslog does: the later "
        "duplicate is an error logrotate skips",
        {**LOGROTATE_CLEAN, "/etc/logrotate.d/00-hds": "/var/log/syslog {\n\tdaily\n\trotate 200\n}\n"},
    ),
    Scenario(
        "logrotate_debian",
        "log-logrotate-config",
        "Debian 12 logrotate.conf and the rsyslog package's logrotate.d/rsyslog",
        LOGROTATE_CLEAN,
    ),
    Scenario(
        "logrotate_hds",
        "log-logrotate-config",
        "logrotate.d/rsyslog keeping 26 weeks",
        {
            **LOGROTATE_CLEAN,
            "/etc/logrotate.d/rsyslog": Path("/etc/logrotate.d/rsyslog")
            .read_text()
            .replace("rotate 4", "rotate 26"),
        },
    ),
    Scenario(
        "logrotate_late_global",
        "log-logrotate-config",
        "rotate 52 set globally in logrotate.conf AFTER the include line: it does not reach logrotate.d",
        {**LOGROTATE_CLEAN, "/etc/logrotate.conf": Path("/etc/logrotate.conf").read_text() + "\nrotate 52\n"},
    ),
    Scenario(
        "logrotate_size_last",
        "log-logrotate-config",
        "weekly then size 100M in the same block: size wins",
        {
            **LOGROTATE_CLEAN,
            "/etc/logrotate.d/rsyslog": Path("/etc/logrotate.d/rsyslog")
            .read_text()
            .replace("weekly", "weekly\n\tsize 100M"),
        },
    ),
    Scenario(
        "logrotate_maxage",
        "log-logrotate-config",
        "rotate 52 daily but maxage 90",
        {
            **LOGROTATE_CLEAN,
            "/etc/logrotate.d/rsyslog": Path("/etc/logrotate.d/rsyslog")
            .read_text()
            .replace("rotate 4", "rotate 52\n\tmaxage 90")
            .replace("weekly", "daily"),
        },
    ),
    Scenario(
        "exposed_clean",
        "log-exposed-files:/var/log:/var/log/wtmp",
        "root:adm 0640 logs, wtmp skipped",
        {"/var/log/syslog": "x\n", "/var/log/auth.log": "x\n", "/var/log/wtmp": ""},
        {
            "overlays": ("/etc", "/var/log"),
            "clear": ("/var/log",),
            "modes": {"/var/log/syslog": 0o640, "/var/log/auth.log": 0o640, "/var/log/wtmp": 0o664},
        },
    ),
    Scenario(
        "exposed_open",
        "log-exposed-files:/var/log:/var/log/wtmp",
        "auth.log world-readable, a world-writable directory",
        {"/var/log/syslog": "x\n", "/var/log/auth.log": "x\n", "/var/log/app/app.log": "x\n"},
        {
            "overlays": ("/etc", "/var/log"),
            "clear": ("/var/log",),
            "modes": {
                "/var/log/syslog": 0o640,
                "/var/log/auth.log": 0o644,
                "/var/log/app": 0o777,
                "/var/log/app/app.log": 0o600,
            },
        },
    ),
]

RULES_D = "/etc/audit/rules.d"
HDS_RULES = """## HDS audit rules (ANSSI BP-028 R73)
-w /etc/passwd -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d/ -p wa -k scope
-w /var/log/sudo.log -p wa -k actions
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k session
-w /var/log/btmp -p wa -k session
-a always,exit -F arch=b64 -S adjtimex -S settimeofday -S clock_settime -k time-change
-a always,exit -F arch=b32 -S adjtimex -S settimeofday -S clock_settime -S stime -k time-change
-a always,exit -F arch=b64 -S init_module -S finit_module -S delete_module -k modules
-a always,exit -F arch=b32 -S init_module -S finit_module -S delete_module -k modules
-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b32 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k rootcmd
-a always,exit -F arch=b32 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k rootcmd
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
"""
BASE_RULES = "## First rule - delete all\n-D\n\n-b 8192\n--backlog_wait_time 60000\n-f 1\n"
DEBIAN_AUDIT_RULES = Path("/etc/audit/audit.rules").read_text()
UNIT_D = "/etc/systemd/system/auditd.service.d/override.conf"
AUDITD_CONF = Path("/etc/audit/auditd.conf").read_text()
HARDENED_AUDITD_CONF = (
    AUDITD_CONF.replace("max_log_file_action = ROTATE", "max_log_file_action = KEEP_LOGS")
    .replace("space_left_action = SYSLOG", "space_left_action = EMAIL")
    .replace("admin_space_left_action = SUSPEND", "admin_space_left_action = SINGLE")
    .replace("disk_full_action = SUSPEND", "disk_full_action = HALT")
    .replace("disk_error_action = SUSPEND", "disk_error_action = SYSLOG")
    .replace("log_group = adm", "log_group = root")
)
AU_REMOTE = "/etc/audit/plugins.d/au-remote.conf"
AUDISP_REMOTE = "/etc/audit/audisp-remote.conf"
LOGDIR = {"overlays": ("/etc", "/var/log"), "clear": ("/var/log/audit",)}

AUDIT = [
    *again("rs_tls_verified", "rs_debian", "ng_absent", "upload_debian"),
    Scenario(
        "ar_debian", "audit-rules-config", "Debian 12 default: rules.d/audit.rules with -D, -b, -f only"
    ),
    Scenario(
        "ar_hds",
        "audit-rules-config",
        "rules.d: Debian's base file, HDS rules, and 99-finalize.rules with -e 2",
        {f"{RULES_D}/30-hds.rules": HDS_RULES, f"{RULES_D}/99-finalize.rules": "-e 2\n"},
    ),
    Scenario(
        "ar_version_order",
        "audit-rules-config",
        "rules.d: 9-debug.rules says -e 1, 10-lock.rules says -e 2: augenrules reads 9 before 10 (ls -v)",
        {
            f"{RULES_D}/30-hds.rules": HDS_RULES,
            f"{RULES_D}/9-debug.rules": "-e 1\n",
            f"{RULES_D}/10-lock.rules": "-e 2\n",
        },
    ),
    Scenario(
        "ar_version_unlock",
        "audit-rules-config",
        "rules.d: 9-lock.rules says -e 2, 10-debug.rules says -e 1: read in ls -v order, -e 1 comes last",
        {
            f"{RULES_D}/30-hds.rules": HDS_RULES,
            f"{RULES_D}/9-lock.rules": "-e 2\n",
            f"{RULES_D}/10-debug.rules": "-e 1\n",
        },
    ),
    Scenario(
        "ar_stale",
        "audit-rules-config",
        "audit.rules still holds -e 2 from an older generation; rules.d no longer has it (augenrules "
        "rewrites it at boot)",
        {
            f"{RULES_D}/30-hds.rules": HDS_RULES,
            "/etc/audit/audit.rules": DEBIAN_AUDIT_RULES + HDS_RULES + "-e 2\n",
        },
    ),
    Scenario(
        "ar_no_rulesd",
        "audit-rules-config",
        "no rules.d: augenrules loads audit.rules as it is",
        {RULES_D: None, "/etc/audit/audit.rules": BASE_RULES + HDS_RULES + "-e 2\n"},
    ),
    Scenario(
        "ar_auditctl",
        "audit-rules-config",
        "auditd.service override: ExecStartPost reset, then auditctl -R /etc/audit/audit.rules (rules.d "
        "ignored)",
        {
            UNIT_D: "[Service]\nExecStartPost=\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n",
            "/etc/audit/audit.rules": BASE_RULES + HDS_RULES + "-e 2\n",
        },
    ),
    Scenario(
        "ar_no_loader",
        "audit-rules-config",
        "auditd.service override resets ExecStartPost: nothing loads rules at boot",
        {
            f"{RULES_D}/30-hds.rules": HDS_RULES,
            f"{RULES_D}/99-finalize.rules": "-e 2\n",
            UNIT_D: "[Service]\nExecStartPost=\n",
        },
    ),
    Scenario(
        "ar_e2_middle",
        "audit-rules-config",
        "no rules.d; audit.rules locks with -e 2 before its syscall rules",
        {
            RULES_D: None,
            "/etc/audit/audit.rules": BASE_RULES
            + HDS_RULES.split("-a always")[0]
            + "-e 2\n-a always"
            + "-a always".join(HDS_RULES.split("-a always")[1:]),
        },
    ),
    Scenario(
        "ar_task_never",
        "audit-rules-config",
        "rules.d with the RHEL 7 default '-a task,never' first",
        {f"{RULES_D}/10-no-audit.rules": "-a task,never\n", f"{RULES_D}/30-hds.rules": HDS_RULES},
    ),
    Scenario("ad_debian", "audit-daemon-config", "Debian 12 default auditd.conf and plugins (none active)"),
    Scenario(
        "ad_hds",
        "audit-daemon-config",
        "auditd.conf hardened (email, single, halt, keep_logs, log_group root); au-remote active over "
        "Kerberos 5",
        {
            "/etc/audit/auditd.conf": HARDENED_AUDITD_CONF,
            AU_REMOTE: Path(AU_REMOTE).read_text().replace("active = no", "active = yes"),
            AUDISP_REMOTE: Path(AUDISP_REMOTE)
            .read_text()
            .replace("remote_server = ", "remote_server = logs.hds.example")
            .replace("transport = tcp", "transport = KRB5"),
        },
    ),
    Scenario(
        "ad_remote_tcp",
        "audit-daemon-config",
        "au-remote active over plain TCP",
        {
            AU_REMOTE: Path(AU_REMOTE).read_text().replace("active = no", "active = yes"),
            AUDISP_REMOTE: Path(AUDISP_REMOTE)
            .read_text()
            .replace("remote_server = ", "remote_server = 10.20.0.5"),
        },
    ),
    Scenario(
        "ad_syslog_plugin",
        "audit-daemon-config",
        "the syslog plugin active: audit records go to syslog",
        {
            "/etc/audit/plugins.d/syslog.conf": Path("/etc/audit/plugins.d/syslog.conf")
            .read_text()
            .replace("active = no", "active = yes")
        },
    ),
    Scenario(
        "ad_case_default",
        "audit-daemon-config",
        "auditd.conf with keys in upper case (auditd ignores case) and no space_left_action line "
        "(default: ignore)",
        {
            "/etc/audit/auditd.conf": "\n".join(
                line.upper() if "action" in line else line
                for line in HARDENED_AUDITD_CONF.splitlines()
                if not line.startswith("space_left_action")
            )
            + "\n"
        },
    ),
    Scenario(
        "ad_absent", "audit-daemon-config", "auditd not installed (no /etc/audit)", {"/etc/audit": None}
    ),
    Scenario(
        "alf_debian",
        "audit-log-files",
        "Debian 12 default: /var/log/audit 0750 root:adm, auditd never started",
    ),
    Scenario(
        "alf_hds",
        "audit-log-files",
        "log_group root: directory 0700, logs 0600 and 0400",
        {
            "/etc/audit/auditd.conf": HARDENED_AUDITD_CONF,
            "/var/log/audit/audit.log": "",
            "/var/log/audit/audit.log.1": "",
        },
        {
            **LOGDIR,
            "modes": {
                "/var/log/audit": 0o700,
                "/var/log/audit/audit.log": 0o600,
                "/var/log/audit/audit.log.1": 0o400,
            },
        },
    ),
    Scenario(
        "alf_open",
        "audit-log-files",
        "Debian's log_group adm, but audit.log readable by everybody",
        {"/var/log/audit/audit.log": ""},
        {**LOGDIR, "modes": {"/var/log/audit/audit.log": 0o644}},
    ),
    Scenario(
        "alf_group_mismatch",
        "audit-log-files",
        "log_group root, but the directory and log are group adm readable",
        {"/etc/audit/auditd.conf": HARDENED_AUDITD_CONF, "/var/log/audit/audit.log": ""},
        {
            **LOGDIR,
            "modes": {"/var/log/audit/audit.log": 0o640},
            "chown": {"/var/log/audit/audit.log": "root:adm"},
        },
    ),
    Scenario("groups_debian", "file:/etc/group", "this VM's /etc/group (adm is gid 4)"),
    Scenario(
        "daemons_audit",
        "log-daemons",
        "auditd and rsyslogd running",
        {},
        {"processes": ("auditd", "rsyslogd")},
    ),
]

CHRONY = "/etc/chrony/chrony.conf"
DEBIAN_CHRONY = Path(CHRONY).read_text()
ISOLATED_CHRONY = DEBIAN_CHRONY.replace(
    "pool 2.debian.pool.ntp.org iburst", "#pool 2.debian.pool.ntp.org iburst"
)
RHEL_CHRONY = """# Use public servers from the pool.ntp.org project.
# Please consider joining the pool (https://www.pool.ntp.org/join.html).
pool 2.rhel.pool.ntp.org iburst

# Use NTP servers from DHCP.
sourcedir /run/chrony-dhcp

# Record the rate at which the system clock gains/losses time.
driftfile /var/lib/chrony/drift

# Allow the system clock to be stepped in the first three updates
# if its offset is larger than 1 second.
makestep 1.0 3

# Enable kernel synchronization of the real-time clock (RTC).
rtcsync

# Specify directory for log files.
logdir /var/log/chrony
"""
OTHER_SOURCES = "server ntp1.hds.example iburst\nserver ntp.other.example iburst\n"
HDS_SOURCES = "server ntp1.hds.example iburst\nserver ntp2.hds.example iburst\n"
NTPSEC_LOCAL = """# /etc/ntpsec/ntp.conf, configuration for ntpd; see ntp.conf(5) for help

driftfile /var/lib/ntpsec/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list

# Undisciplined local clock (legacy fallback): not a time source
server 127.127.1.0

restrict default kod nomodify nopeer noquery limited
restrict 127.0.0.1
restrict ::1
"""

TIME = [
    Scenario("tc_debian", "time-config", "Debian 12 default chrony 4.3 and timesyncd: one pool line"),
    Scenario(
        "tc_hds",
        "time-config",
        "pool commented out, two internal servers in /etc/chrony/sources.d",
        {CHRONY: ISOLATED_CHRONY, "/etc/chrony/sources.d/hds.sources": HDS_SOURCES},
    ),
    Scenario(
        "tc_hds_other",
        "time-config",
        "an internal server and a server of another organisation",
        {
            CHRONY: ISOLATED_CHRONY,
            "/etc/chrony/sources.d/hds.sources": OTHER_SOURCES,
        },
    ),
    Scenario(
        "tc_confdir",
        "time-config",
        "the internal servers in /etc/chrony/conf.d (confdir), pool commented out",
        {CHRONY: ISOLATED_CHRONY, "/etc/chrony/conf.d/hds.conf": HDS_SOURCES},
    ),
    Scenario(
        "tc_isolated",
        "time-config",
        "Debian default with the pool commented out: no source",
        {CHRONY: ISOLATED_CHRONY},
    ),
    Scenario(
        "tc_rhel",
        "time-config",
        "RHEL 9 layout: /etc/chrony.conf only (its text WRITTEN from the chrony RPM default)",
        {CHRONY: None, "/etc/chrony.conf": RHEL_CHRONY},
    ),
    Scenario(
        "tc_timesyncd",
        "time-config",
        "timesyncd with NTP= in a drop-in",
        {
            CHRONY: None,
            "/etc/systemd/timesyncd.conf.d/hds.conf": "[Time]\nNTP=ntp1.hds.example ntp2.hds.example\n",
        },
    ),
    Scenario(
        "tc_timesyncd_reset",
        "time-config",
        "a later timesyncd drop-in resets NTP= and names one server",
        {
            CHRONY: None,
            "/etc/systemd/timesyncd.conf.d/10-hds.conf": "[Time]\nNTP=ntp1.hds.example ntp2.hds.example\n",
            "/etc/systemd/timesyncd.conf.d/90-local.conf": "[Time]\nNTP=\nNTP=ntp.other.example\n",
        },
    ),
    Scenario(
        "tc_ntpsec_local",
        "time-config",
        "ntpsec with only the 127.127.1.0 local clock driver (ntp.conf(5) syntax)",
        {CHRONY: None, "/etc/ntpsec/ntp.conf": NTPSEC_LOCAL},
    ),
    Scenario(
        "tc_absent",
        "time-config",
        "no time daemon configuration at all",
        {"/etc/chrony": None, "/etc/systemd/timesyncd.conf": None},
    ),
    Scenario(
        "processes_two_daemons",
        "processes",
        "chronyd and systemd-timesyncd both running (copies of sleep)",
        {},
        {"processes": ("chronyd", "systemd-timesyncd")},
    ),
]

FLEET = [
    *again("rs_tls_verified", "rs_legacy_tcp", "rs_debian", "ng_absent", "upload_debian"),
    *again("daemons_rsyslog", "daemons_none", "tc_debian", "tc_hds", "tc_hds_other"),
    rsyslog(
        "rs_tls_address",
        "omfwd to 10.20.0.5, gtls, StreamDriverMode 1, x509/fingerprint",
        {
            REMOTE: tls_action(
                VERIFIED.replace(
                    'x509/name" StreamDriverPermittedPeers="logs.hds.example"',
                    'x509/fingerprint" StreamDriverPermittedPeers="SHA256:10:C4:26:1D:CB:3C:AB:12:DB:1A:F0:47'
                    ':37:AE:6D:D2:DE:66:B5:71:B7:2E:5B:BB:AE:0C:7E:7F:5F:0D:E9:64"',
                )
            ).replace("logs.hds.example", "10.20.0.5")
        },
    ),
    rsyslog(
        "rs_tls_other",
        "omfwd over verified TLS to siem.other.example, a host of no inventory",
        {REMOTE: tls_action(VERIFIED).replace("logs.hds.example", "siem.other.example")},
    ),
    Scenario(
        "collector_addresses",
        "addresses",
        "the collector's addresses, in a network namespace with a veth pair",
        {},
        {"addresses": ("10.20.0.5/24", "fd00:20::5/64")},
    ),
    Scenario(
        "processes_chronyd", "processes", "chronyd running (a copy of sleep)", {}, {"processes": ("chronyd",)}
    ),
    Scenario("processes_none", "processes", "no time daemon", {}, {"processes": ("sleep",)}),
]


def _render(scenarios: list[Scenario]) -> str:
    lines = [BEGIN]
    for sc in scenarios:
        body = yaml.dump(sc.capture(), sort_keys=False, allow_unicode=True, width=110)
        lines.append(f"  # {sc.key} -- {'WRITTEN: ' if sc.written else ''}{sc.comment}")
        lines.append(f"  {sc.name}: &{sc.name}")
        lines += ["    " + line if line else line for line in body.splitlines() if line != "..."]
    lines.append(END)
    return "\n".join(lines)


def _fact(key: str) -> Any:
    kind, _, arg = key.partition(":")
    return KINDS[kind](arg)


def _literal(dumper: yaml.Dumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


yaml.add_representer(str, _literal)

FILES = {"logs.yaml": LOGS, "auditd.yaml": AUDIT, "timesync.yaml": TIME, "fleet_logging.yaml": FLEET}


def main() -> None:
    """Rewrite the recorded block of the named capture files (default: all of this area)."""
    for name in sys.argv[1:] or list(FILES):
        path = CAPTURES / name
        text = path.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        path.write_text(head + _render(FILES[name]) + tail)
        print(path)


if __name__ == "__main__":
    main()
