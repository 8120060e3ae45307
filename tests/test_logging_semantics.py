"""Verdicts that are true: the logging, audit and time readings held against the real programs.

Every recorded configuration of tests/captures/*.yaml is rebuilt from its capture in a private mount
namespace (tests/logaudit_ns.py) and given to the program it configures:

* rsyslog: ``rsyslogd -N1`` accepts every recorded configuration, and a real rsyslogd, in a network
  namespace of its own, forwards a message to a TLS server presenting a certificate no CA signed: it sends
  over TLS and refuses that peer exactly when the parser says "TLS, peer checked"; it sends in clear,
  over UDP or not at all exactly when the parser says so; with a certificate it trusts, it delivers.
* augenrules (never with --load; auditctl is shadowed by /bin/true in the namespace) merges rules.d as
  :mod:`checks.audit_rules` does, and ``ls -v`` orders file names as it does.
* ``logrotate -d`` rotates /var/log/syslog with the frequency and count the parser found.
* ``systemd-analyze cat-config`` reads journald, journal-upload and timesyncd files in the parser's order.
* ``chronyd -p`` lists the sources the parser counts (plus those of ``sourcedir`` files, read at run time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from logaudit_ns import execute, usable

from hds_compliance.checks.audit_rules import _augenrules_merge, version_sorted
from hds_compliance.checks.log_forwarding import rsyslog_targets, systemd_files
from hds_compliance.checks.logs import logrotate_rotations, rotation_of
from hds_compliance.checks.timesync import _chrony
from hds_compliance.facts.audit import AUDIT_RULES_D
from hds_compliance.facts.conftree import ConfigTree, parse_tree
from hds_compliance.model import Capture

CAPTURES = Path(__file__).parent / "captures"
SERVER = Path(__file__).parent / "logaudit_tls_server.py"


def _recorded(kind: str) -> list[tuple[str, ConfigTree]]:
    """(name, tree) of every recorded capture of a tree fact kind, from the capture files' comments."""
    out = []
    for path in sorted(CAPTURES.glob("*.yaml")):
        text = path.read_text()
        recorded = yaml.safe_load(text).get("recorded") or {}
        for match in re.finditer(rf"^  # {re.escape(kind)} -- .*\n  (\w+): &", text, re.M):
            name = match.group(1)
            capture = Capture(fact=kind, command="(recorded)", **recorded[name])
            out.append((f"{path.stem}:{name}", parse_tree(capture, kind)))
    return out


def _files(tree: ConfigTree) -> dict[str, str | bytes | None]:
    return dict(tree.files)


def needs(*programs: str) -> None:
    """Skip unless root, unshare and the programs are here (Debian packages in the report)."""
    if not usable():
        pytest.skip("needs root and unshare")
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


RSYSLOG = _recorded("rsyslog-config")
AUDIT_RULES = [(n, t) for n, t in _recorded("audit-rules-config") if AUDIT_RULES_D in t.dirs]
LOGROTATE = _recorded("log-logrotate-config")
SYSTEMD = [
    *((n, t, "systemd/journald.conf") for n, t in _recorded("journal-journald-config")),
    *((n, t, "systemd/journal-upload.conf") for n, t in _recorded("journal-upload-config")),
]
CHRONY = [(n, t) for n, t in _recorded("time-config") if _chrony(t) is not None]


def _rsyslog_scene(tree: ConfigTree) -> dict[str, str | bytes | None]:
    """The recorded files, /etc/rsyslog.d holding only the recorded drop-ins."""
    return {"/etc/rsyslog.d": None, **_files(tree)}


@pytest.mark.parametrize(("name", "tree"), RSYSLOG, ids=[n for n, _ in RSYSLOG])
def test_every_recorded_rsyslog_configuration_is_one_rsyslog_accepts(name: str, tree: ConfigTree) -> None:
    needs("rsyslogd")
    done = execute("rsyslogd -N1 -f /etc/rsyslog.conf", _rsyslog_scene(tree))
    assert done.returncode == 0, done.stderr[-800:]
    assert "error" not in done.stderr.lower(), done.stderr[-800:]


# ------------------------------------------------------------------------------- a real rsyslogd, live

# UDP input on 127.0.0.1:5514, and a local copy that tells when rsyslogd has processed a message.
LIVE_INPUT = (
    'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="5514")\n'
    'action(type="omfile" file="/tmp/local.log")\n'
)


def _live_files(tree: ConfigTree, ca: Path) -> dict[str, str | bytes | None]:
    """The recorded configuration sending to 127.0.0.1:6514, trusting the test CA, with no local input
    but UDP on 127.0.0.1:5514 (imuxsock and imklog would touch /dev/log and the kernel log)."""
    out: dict[str, str | bytes | None] = {"/etc/rsyslog.d": None}
    for path, data in tree.files.items():
        text = data.decode()
        text = re.sub(r'module\(load="im(uxsock|klog)"\)', "", text)
        text = re.sub(r'target="[^"]+"', 'target="127.0.0.1"', text)
        text = re.sub(r'port="\d+"', 'port="6514"', text)
        text = re.sub(r"(@@?)([\w.-]+):\d+", r"\g<1>127.0.0.1:6514", text)
        text = text.replace("/etc/ssl/certs/ca-certificates.crt", str(ca))
        out[path] = (LIVE_INPUT + text) if path == "/etc/rsyslog.conf" else text
    return out


def _expected(tree: ConfigTree, trusted: bool) -> str:
    """What the TLS test server should see, from the parser's reading of the configuration."""
    targets, _ = rsyslog_targets(tree)
    if not targets:
        return "nothing"
    [target] = targets
    if target.problem:
        return "nothing"
    if target.transport == "udp":
        return "udp"
    if target.transport == "tcp":
        return "plain"
    return "tls-data" if trusted or not target.verified else "tls-refused"


def _observe(tree: ConfigTree, certs: Path, cert: str, grace: int) -> str:
    """Run rsyslogd on the configuration against the test server presenting ``cert``; what it saw.

    Once rsyslogd has processed a message locally, a forward has ``grace`` tenths of a second to reach the
    server: short where the parser predicts nothing, long where it predicts something (a loaded machine
    makes TLS handshakes slow; a prediction of "something" fails only if nothing ever comes).
    """
    command = (
        f"python3 {SERVER} {certs / cert}.pem {certs / cert}.key /tmp/ready > /tmp/seen 2>&1 & server=$!; "
        "while [ ! -e /tmp/ready ]; do sleep 0.05; done; "
        "rsyslogd -n -f /etc/rsyslog.conf -i /tmp/rsyslogd.pid >/dev/null 2>&1 & daemon=$!; "
        "n=0; for i in $(seq 300); do logger -n 127.0.0.1 -P 5514 -d hds-probe-message; "
        "[ -s /tmp/seen ] && break; grep -q hds-probe /tmp/local.log 2>/dev/null && n=$((n+1)); "
        f"[ $n -ge {grace} ] && break; sleep 0.1; done; sleep 0.3; kill $daemon $server 2>/dev/null; "
        "cat /tmp/seen"
    )
    done = execute(
        command,
        _live_files(tree, certs / "ca.pem"),
        overlays=("/etc", "/var/log", "/var/spool", "/tmp"),
        addresses=("10.254.0.1/30",),
        own_pids=True,  # rsyslogd and the server die with the scenario, whatever happens
    )
    lines = done.stdout.split()
    return lines[0] if lines else "nothing"


@pytest.fixture(scope="module")
def certs() -> Any:
    """A test CA, a server certificate it signs (logs.hds.example and 127.0.0.1), and a self-signed one."""
    needs("openssl")
    tmp = Path(tempfile.mkdtemp(prefix="hds-logaudit-certs-", dir="/var/tmp"))
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=hds test ca",
    )
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-days",
        "2",
        "-subj",
        "/CN=logs.hds.example",
        "-addext",
        "subjectAltName=DNS:logs.hds.example",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "good.key",
        "-out",
        "good.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (tmp / "ext.cnf").write_text(
        "subjectAltName=DNS:logs.hds.example,DNS:siem.other.example,DNS:127.0.0.1,IP:127.0.0.1\n"
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "good.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "good.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


# One run per distinct configuration that forwards (or means to: an unread drop-in, an unbound ruleset).
LIVE = list(
    {
        repr(sorted(t.files.items())): (n, t)
        for n, t in RSYSLOG
        if len(t.files) > 1 and len(rsyslog_targets(t)[0]) <= 1
    }.values()
)


def test_a_real_rsyslogd_forwards_as_the_parser_says(certs: Path) -> None:
    """Each recorded rsyslog configuration, run by rsyslogd: a server with an untrusted certificate sees
    TLS refused ("peer checked"), TLS data (anon), plain TCP (ptcp, mode set after the action, no mode),
    UDP (no protocol="tcp") or nothing (ptcp with mode 1, an unread drop-in, an unbound ruleset), as the
    parser predicts; the configurations it calls checked deliver to a server they trust."""
    needs("rsyslogd", "logger", "python3")
    runs = [(n, t, "rogue") for n, t in LIVE] + [
        (n, t, "good")
        for n, t in LIVE
        if _expected(t, trusted=False) == "tls-refused"
        and b"x509/fingerprint" not in b"".join(t.files.values())
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(
            pool.map(
                lambda run: _observe(
                    run[1], certs, run[2], 40 if _expected(run[1], False) == "nothing" else 200
                ),
                runs,
            )
        )
    results = {
        f"{n} ({cert})": (s, _expected(t, cert == "good")) for (n, t, cert), s in zip(runs, seen, strict=True)
    }
    wrong = {k: v for k, v in results.items() if v[0] != v[1]}
    assert not wrong, f"seen != predicted: {wrong}"
    kinds = {expected for _, expected in results.values()}
    assert kinds == {"nothing", "udp", "plain", "tls-data", "tls-refused"}, kinds


# ------------------------------------------------------------------------------------------------ audit


@pytest.mark.parametrize(("name", "tree"), AUDIT_RULES, ids=[n for n, _ in AUDIT_RULES])
def test_augenrules_merges_rules_d_as_the_parser_does(name: str, tree: ConfigTree) -> None:
    """The rules the boot loads: the real augenrules (no --load) on the recorded rules.d."""
    needs("augenrules", "auditctl")
    files = {
        AUDIT_RULES_D: None,
        **{p: d for p, d in tree.files.items() if p.startswith(AUDIT_RULES_D + "/")},
    }
    auditctl = shutil.which("auditctl")
    done = execute(
        f"mount --bind /bin/true {auditctl} && augenrules >/dev/null && cat /etc/audit/audit.rules",
        files,
        overlays=("/etc", "/tmp"),
    )
    assert done.returncode == 0, done.stderr
    real = [line.strip() for line in done.stdout.splitlines() if line.strip() and not line.startswith("#")]
    assert real == [line for line, _ in _augenrules_merge(tree)]


def test_ls_v_orders_names_as_the_parser_does(tmp_path: Path) -> None:
    names = [
        "9-lock.rules",
        "10-base.rules",
        "10a.rules",
        "010-x.rules",
        "99-finalize.rules",
        "30-stig.rules",
        "a.rules",
        "B.rules",
        "10-base.rules~",
        "1.2.rules",
        "1.10.rules",
        "x~.rules",
        ".hidden.rules",
        "50-a-1.rules",
        "50-a-01.rules",
        "50-a.rules",
    ]
    for name in names:
        (tmp_path / name).touch()
    done = subprocess.run(["ls", "-1v", "-A", str(tmp_path)], capture_output=True, text=True, check=True)
    assert version_sorted(names) == done.stdout.split()


# -------------------------------------------------------------------------------------------- logrotate

_PATTERN = re.compile(
    r"^rotating pattern: (.*?)\s+(weekly|monthly|yearly|hourly|after \d+ days|\d+ bytes)"
    r"(?: \((-?\d+) rotations\))?",
    re.M | re.S,
)


@pytest.mark.parametrize(("name", "tree"), LOGROTATE, ids=[n for n, _ in LOGROTATE])
def test_logrotate_rotates_syslog_as_the_parser_says(name: str, tree: ConfigTree) -> None:
    """``logrotate -d`` (no change made, a throw-away state file): the definition applied to
    /var/log/syslog, its frequency and rotation count."""
    needs("logrotate")
    done = execute(
        "logrotate -d -s /tmp/logrotate.state /etc/logrotate.conf 2>&1",
        {"/etc/logrotate.d": None, **_files(tree)},
        overlays=("/etc", "/tmp"),
    )
    real = None
    for match in _PATTERN.finditer(done.stdout):
        if "/var/log/syslog" in match.group(1).split():
            real = (match.group(2), int(match.group(3)) if match.group(3) else None)
            break
    rotation = rotation_of(logrotate_rotations(tree), "/var/log/syslog")
    assert rotation is not None and real is not None, done.stdout[-1500:]
    criterion = {"daily": "after 1 days"}.get(rotation.criterion, rotation.criterion)
    if criterion.startswith("size "):
        criterion = f"{int(criterion.split()[1].rstrip('M')) << 20} bytes"
    assert (criterion, rotation.rotate) == real


# ---------------------------------------------------------------------------------------------- systemd


@pytest.mark.parametrize(("name", "tree", "config"), SYSTEMD, ids=[n for n, _, _ in SYSTEMD])
def test_systemd_reads_drop_ins_in_the_parsers_order(name: str, tree: ConfigTree, config: str) -> None:
    needs("systemd-analyze")
    done = execute(
        f"systemd-analyze cat-config {config}",
        {f"/etc/{config}.d": None, **_files(tree)},
        overlays=("/etc", "/usr/lib/systemd"),
    )
    real = re.findall(r"^# (/\S+)$", done.stdout, re.M)
    assert real == systemd_files(tree, config.split("/")[1])


# ----------------------------------------------------------------------------------------------- chrony


@pytest.mark.parametrize(("name", "tree"), CHRONY, ids=[n for n, _ in CHRONY])
def test_chronyd_counts_the_sources_the_parser_counts(name: str, tree: ConfigTree) -> None:
    """``chronyd -p`` prints the configuration with confdir and include expanded; sourcedir files are
    read at run time, so their lines are added from the recorded files."""
    needs("chronyd")
    found = _chrony(tree)
    assert found is not None
    files = {"/etc/chrony/conf.d": None, "/etc/chrony/sources.d": None, **_files(tree)}
    done = execute(f"chronyd -p -f {found.config}", files)
    assert done.returncode == 0, done.stderr
    words = [line.split() for line in done.stdout.splitlines() if line.split()]
    real = [f"{w[0]} {w[1]}" for w in words if w[0] in ("server", "pool", "peer", "refclock")]
    for directory in (w[1] for w in words if w[0] == "sourcedir"):
        for data in tree.under(directory, ".sources").values():
            real += [" ".join(line.split()[:2]) for line in data.decode().splitlines() if line.split()]
    assert sorted(real) == sorted(str(s) for s in found.sources)


def test_scenarios_leave_the_machine_alone() -> None:
    """A scenario's files exist only inside it."""
    needs()
    done = execute("cat /etc/hds-logaudit-probe", {"/etc/hds-logaudit-probe": "inside"})
    assert done.stdout == "inside"
    assert not Path("/etc/hds-logaudit-probe").exists()
