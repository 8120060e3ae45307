"""Bastion scenarios: a private /etc (tests/authn_ns.py) where sudo, tlog, SSSD and rsyslog are configured
as a bastion's would be. The live test (tests/test_bastion.py) judges them through the real probe, and
tests/captures/record_bastion.py records their captures for tests/captures/bastion.yaml."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authn_ns import EtcTree

from hds_compliance.collect.probe import follow_ups, new_nonce, parse, render
from hds_compliance.evidence.redact import redact
from hds_compliance.facts import Fact
from hds_compliance.model import Capture

ETC = Path("/etc")
ADMINS = "alice:x:1001:1001:Alice Admin:/home/alice:{shell}\nbob:x:1002:1002:Bob Admin:/home/bob:{shell}\n"
SUDOERS = (
    "Defaults env_reset\nDefaults use_pty\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n"
    "@includedir /etc/sudoers.d\n"
)
# What rsyslog sends off the host: every message, over TLS with the collector's name checked.
RSYSLOG_TLS = (
    'global(DefaultNetstreamDriverCAFile="/etc/ssl/certs/hds-logs-ca.pem")\n'
    'module(load="imuxsock")\n'
    '*.* action(type="omfwd" target="logs.example.fr" port="6514" protocol="tcp" StreamDriver="gtls" '
    'StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="logs.example.fr")\n'
)
SSSD_CONF = (
    "[sssd]\nservices = nss, pam\ndomains = example\n\n"
    "[domain/example]\nid_provider = ldap\nldap_default_bind_dn = cn=sssd,dc=example,dc=fr\n"
    # A bind password in the same file: the fact must never carry it off the host.
    "ldap_default_authtok = NotASecretButCouldBe42\n\n"
    "[session_recording]\nscope = all\n"
)


def _passwd(shell: str) -> str:
    return (ETC / "passwd").read_text() + ADMINS.format(shell=shell)


def _group() -> str:
    text = (ETC / "group").read_text()
    return "".join(
        f"{line.rstrip(':')}:alice,bob\n" if line.startswith("sudo:") else f"{line}\n"
        for line in text.splitlines()
    )


@dataclass
class Scenario:
    """Files of one bastion, and what bastion.sessions_recorded must say of it."""

    name: str
    files: dict[str, str | None]
    expect: str
    message: str
    processes: list[str] = field(default_factory=list)  # log daemons running meanwhile (fake, by name)


def scenarios() -> list[Scenario]:
    """Every scenario: recorded and forwarded, recorded and kept, not recorded."""
    base: dict[str, str | None] = {
        "/etc/passwd": _passwd("/bin/bash"),
        "/etc/group": _group(),
        "/etc/sudoers": SUDOERS,
        "/etc/rsyslog.conf": None,
        "/etc/sssd/sssd.conf": None,
    }
    return [
        Scenario(
            "sudo I/O logs sent to a log server",
            {
                **base,
                "/etc/sudoers.d/hds": "Defaults log_output\nDefaults log_servers=logs.example.fr:30344\n",
            },
            "pass",
            "sent to the log server(s) logs.example.fr:30344",
        ),
        Scenario(
            "SSSD records every session into the journal, forwarded by rsyslog over TLS",
            {**base, "/etc/sssd/sssd.conf": SSSD_CONF, "/etc/rsyslog.conf": RSYSLOG_TLS},
            "pass",
            "rsyslog to logs.example.fr:6514 over tls",
            processes=["rsyslogd"],
        ),
        Scenario(
            "tlog is every admin's shell, and writes to a file on the bastion",
            {
                **base,
                "/etc/passwd": _passwd("/usr/bin/tlog-rec-session"),
                "/etc/tlog/tlog-rec-session.conf": '{\n  // a file writer\n  "writer": "file",\n'
                '  "file": {"path": "/var/log/tlog.log"}\n}\n',
            },
            "fail",
            "stay on the bastion",
        ),
        Scenario(
            "sudo I/O logs kept in /var/log/sudo-io, nothing forwarded",
            {**base, "/etc/sudoers.d/hds": "Defaults log_output\n"},
            "fail",
            "written under /var/log/sudo-io",
        ),
        Scenario(
            "SSSD records every session, but rsyslog is configured and not running",
            {**base, "/etc/sssd/sssd.conf": SSSD_CONF, "/etc/rsyslog.conf": RSYSLOG_TLS},
            "fail",
            "stay on the bastion",
        ),
        Scenario("nothing records sessions", base, "fail", "no session recording"),
    ]


# The kernel refuses audit requests from a PID namespace other than the first: auditctl stands in, and says
# what the real one says on this machine, where no rule is loaded ("No rules", "enabled 0").
AUDITCTL = (
    '#!/bin/sh\ncase "$1" in -l) echo "No rules";; -s) printf "enabled 0\\nfailure 1\\npid 0\\n";; esac\n'
)


def collect(tree: EtcTree, facts: list[Fact[Any]], processes: list[str]) -> dict[str, Capture]:
    """The facts' snippets run through a real probe in the scenario, in a PID namespace of its own where
    only ``processes`` (copies of sleep, by name) run beside the probe: the machine's daemons are not seen."""
    bindir = tree.root / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "auditctl").write_text(AUDITCTL)
    (bindir / "auditctl").chmod(0o755)
    starts = [f"mount --bind {shlex.quote(str(bindir / 'auditctl'))} /usr/sbin/auditctl;"]
    for name in processes:
        shutil.copy2("/bin/sleep", bindir / name)
        starts.append(
            f"(PATH={shlex.quote(str(bindir))}; exec {shlex.quote(name)} infinity) >/dev/null 2>&1 &"
        )
    captures: dict[str, Capture] = {}
    todo = list(facts)
    while todo:
        probe = render(todo, new_nonce())
        inner = f"{tree.mounts()} && {{ {' '.join(starts)} exec sh -s; }}"
        argv = ["unshare", "-m", "-p", "-f", "--mount-proc", "--propagation", "private", "sh", "-c", inner]
        done = subprocess.run(argv, input=probe.script.encode(), capture_output=True, timeout=60, check=False)
        parsed = parse(
            probe, done.stdout.decode("ascii", "replace"), stderr=done.stderr.decode("utf-8", "replace")
        )
        assert parsed.problem is None, parsed.problem
        captures.update({c.fact: redact(c) for c in parsed.captures})
        todo = follow_ups(probe, parsed.captures)
    return captures
