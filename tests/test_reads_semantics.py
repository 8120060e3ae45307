"""Verdicts that are true, now that many files are read at once: the facts that batch their reads and their
include lookups give what the real programs read, where a per-line text match or a per-unit guess differs.

* rsyslog: the files ``rsyslogd -N1`` reads (its debug output names each one) are the files the check's
  parser reads from the tree the fact collected, with an ``include()`` object spread over several lines and
  spelled in capitals, a glob, a lower-case ``$includeconfig``, and a commented include the fact follows
  (one extra read) but neither rsyslog nor the parser uses.
* sudo: the files ``visudo -c`` parses, in its order, are the ones the policy reads, through includes four
  rounds deep (an includedir, an absolute include, a second includedir, a relative include).
* cron: a job carrying a password is redacted by the scan; the other files keep their contents and modes,
  so the permissions check still judges the world-writable job next to it (a framing by lengths alone
  would make the whole fact unreadable: an error instead of the failure).
* systemctl: each unit's state from the batched svc-unit snippet is the first line ``systemctl is-enabled``
  prints for that unit alone, for unknown units among known ones (systemd 252 stops at the first unknown
  unit), masked, alias, template instances, a broken link and a SysV-only service.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from authn_ns import EtcTree, needs_root_and
from kernel_lab import evaluate
from logaudit_ns import collect, execute, usable
from record import run

from hds_compliance.checks.log_forwarding import _Rsyslog
from hds_compliance.checks.sudo import parse_policy
from hds_compliance.evidence.redact import redact
from hds_compliance.facts.logging import RsyslogConfig
from hds_compliance.facts.schedule import CronFiles
from hds_compliance.facts.services import _UNIT_RE, UNIT_PATHS, SystemdUnit
from hds_compliance.facts.sudo import SudoPolicySources
from hds_compliance.model import Status

RSYSLOG = RsyslogConfig()
MAIN = "/etc/rsyslog.conf"


def test_rsyslog_reads_the_files_the_parser_reads() -> None:
    """A per-line match misses ``INCLUDE(`` / ``File="..."`` on separate lines: rsyslog reads that file."""
    if not usable() or shutil.which("rsyslogd") is None:
        pytest.skip("needs root, unshare and rsyslogd (Debian package rsyslog)")
    main = Path(MAIN).read_text() + (
        'INCLUDE(\n   File="/etc/hds/multi.conf"\n   mode="optional")\n'
        'include(file="/etc/hds/glob/*.conf")\n'
        "$includeconfig /etc/hds/legacy.conf\n"
        '# include(file="/etc/hds/commented.conf")\n'
    )
    files: dict[str, str | bytes | None] = {
        "/etc/rsyslog.d": None,
        MAIN: main,
        "/etc/rsyslog.d/50-local.conf": "# a drop-in the main file includes\n",
        "/etc/hds/multi.conf": "# spread include\n",
        "/etc/hds/glob/a.conf": "# glob a\n",
        "/etc/hds/glob/b.conf": "# glob b\n",
        "/etc/hds/legacy.conf": "# legacy include\n",
        "/etc/hds/commented.conf": "# only named in a comment\n",
    }
    done = execute(f"rsyslogd -N1 -d -f {MAIN} 2>&1", files)
    assert done.returncode == 0, done.stdout[-800:]
    real = set(re.findall(r"config parser: reached end of file (\S+)", done.stdout))
    tree = RSYSLOG.parse(collect([RSYSLOG], files)[RSYSLOG.key])
    parser = _Rsyslog(tree)
    parser.feed(MAIN, tree.files[MAIN].decode())
    assert real == parser.read
    assert "/etc/hds/multi.conf" in real and set(tree.files) == real | {"/etc/hds/commented.conf"}


def test_sudo_reads_the_files_the_policy_reads_through_four_include_rounds() -> None:
    needs_root_and("visudo")
    tree = EtcTree(
        {
            "/etc/sudoers.d/50-hds": ("@include /etc/hds/sudoers.main\n", 0o440),
            "/etc/hds/sudoers.main": ("Defaults use_pty\n@includedir /etc/hds/more.d\n", 0o440),
            "/etc/hds/more.d/10-a": ("Defaults log_output\n@include ../sudoers.last\n", 0o440),
            "/etc/hds/more.d/20.skipped": ("Defaults !use_pty\n", 0o440),
            "/etc/hds/sudoers.last": ("Defaults log_input\n", 0o440),
        }
    )
    with tree:
        done = tree.run("visudo -c")
        assert done.returncode == 0, done.stdout + done.stderr
        real = re.findall(r"^(\S+): parsed OK$", done.stdout, re.M)
        sources = SudoPolicySources().parse(tree.collect([SudoPolicySources()])[SudoPolicySources().key])
    assert sources is not None
    policy = parse_policy(sources)
    assert policy.read == real
    assert real.index("/etc/hds/more.d/10-a") < real.index("/etc/hds/more.d/../sudoers.last")
    assert "/etc/hds/more.d/20.skipped" in sources.ignored


def test_a_redacted_cron_job_leaves_the_other_cron_files_judged() -> None:
    if not usable():
        pytest.skip("needs root and unshare")
    files: dict[str, str | bytes | None] = {
        "/etc/cron.d/backup": "0 3 * * * root backup --password=hunter2hunter2 /srv\n",
        "/etc/cron.d/zz-open": "*/5 * * * * root /usr/local/bin/poll\n",
    }
    cron = CronFiles()
    capture = redact(collect([cron], files, modes={"/etc/cron.d/zz-open": 0o666})[cron.key])
    assert capture.redactions and "hunter2" not in capture.stdout_text()
    entries = cron.parse(capture)
    assert entries["/etc/cron.d/zz-open"].content == b"*/5 * * * * root /usr/local/bin/poll\n"
    assert b"[REDACTED-" in (entries["/etc/cron.d/backup"].content or b"")
    params = {"max_file_mode": "0644", "max_dir_mode": "0755"}
    outcome = evaluate("cron.permissions_restricted", params, {cron.key: capture})
    assert not isinstance(outcome, str) and outcome.status is Status.FAIL, outcome
    assert "/etc/cron.d/zz-open mode 0666" in outcome.message


def _is_enabled_alone(unit: str) -> str:
    """What systemctl says of one unit asked alone: its word on stdout, or else its first message (a SysV
    service's stderr says first that it is redirected to systemd-sysv-install)."""
    script = (
        'o=$(systemctl is-enabled -- "$1" 2>/dev/null | head -n 1); '
        '[ -n "$o" ] && echo "$o" || systemctl is-enabled -- "$1" 2>&1 | head -n 1'
    )
    return subprocess.run(["sh", "-c", script, "sh", unit], capture_output=True, text=True).stdout.strip("\n")


def _units() -> list[str]:
    """Units of this machine in every state systemctl knows, unknown ones between them, a template instance
    and a SysV-only service if there is one."""
    listed = subprocess.run(
        ["systemctl", "list-unit-files", "--no-legend", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_state: dict[str, str] = {}
    for fields in (line.split() for line in listed.splitlines()):
        if len(fields) >= 2 and "@" not in fields[0] and _UNIT_RE.match(fields[0]):
            by_state.setdefault(fields[1], fields[0])
    native = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
    sysv = [
        f"{p.name}.service"
        for p in sorted(Path("/etc/init.d").glob("*"))
        if not any(Path(d, f"{p.name}.service").exists() for d in native)
    ]
    known = list(by_state.values())
    return ["hds-unknown-first.service", *known[:3], "hds-unknown.timer", *known[3:], "getty@tty1.service",
            *sysv[:1], "hds-unknown-last.socket"]  # fmt: skip


def test_systemctl_answers_each_unit_of_a_batch_as_it_answers_it_alone() -> None:
    if shutil.which("systemctl") is None:
        pytest.skip("needs systemctl (Debian package systemd)")
    units = _units()
    known = units[1]
    said = subprocess.run(
        ["systemctl", "is-enabled", "--", known, "hds-unknown.service", known], capture_output=True, text=True
    ).stdout.split()
    # systemd 252 stops at the first unknown unit; later versions print "not-found" and go on.
    assert said in ([said[0]], [said[0], "not-found", said[0]]), said
    facts = [SystemdUnit(unit) for unit in units]
    captures = {c.fact: c for c in run(list(facts), "")}
    for fact in facts:
        state = fact.parse(captures[fact.key])
        assert state is not None and state.enabled == _enabled(_is_enabled_alone(fact.arg)), (fact, state)
    assert len({f.parse(captures[f.key]).enabled for f in facts}) >= 4  # type: ignore[union-attr]


def _enabled(said: str) -> str:
    """is-enabled's answer for one unit as a state: its word, or not-found for systemd 252's message."""
    return "not-found" if said.startswith("Failed to get unit file state") else said


# Units systemd finds only in the directories of ``systemd-analyze unit-paths`` a first look skips: the
# control, transient, attached and generator ones, /usr/local, and an instance of a template found there.
_ELSEWHERE = {
    "/etc/systemd/system.control/hds-control.service": "",
    "/run/systemd/transient/hds-transient.service": "",
    "/run/systemd/generator/hds-generated.service": "",
    "/run/systemd/generator.late/hds-late.timer": "",
    "/etc/systemd/system.attached/hds-attached.service": "",
    "/usr/local/lib/systemd/system/hds-local@.service": "[Install]\nWantedBy=multi-user.target\n",
    "/usr/local/lib/systemd/system/hds-local-enabled.service": "[Install]\nWantedBy=multi-user.target\n",
}


def test_a_unit_in_any_directory_systemd_reads_is_asked() -> None:
    """The batch answers a unit without asking systemctl only where systemctl itself would not find it:
    units placed in each other directory systemd reads are answered as is-enabled answers them alone."""
    if not usable() or shutil.which("systemctl") is None or shutil.which("systemd-analyze") is None:
        pytest.skip("needs root, unshare and systemctl (Debian package systemd)")
    paths = subprocess.run(["systemd-analyze", "unit-paths"], capture_output=True, text=True, check=True)
    assert set(paths.stdout.split()) <= set(UNIT_PATHS)
    units = [*(p.rsplit("/", 1)[1].replace("@.", "@x.") for p in _ELSEWHERE), "hds-nowhere.service"]
    units.insert(1, "hds-nowhere@y.service")
    facts = [SystemdUnit(unit) for unit in units]
    options = {"overlays": ("/etc", "/run", "/usr/local")}
    captures = collect(list(facts), _ELSEWHERE, **options)
    said = execute(
        f'for u in {" ".join(units)}; do systemctl is-enabled -- "$u" 2>&1 | head -n 1; done',
        _ELSEWHERE,
        **options,
    )
    alone = said.stdout.splitlines()
    assert len(alone) == len(units), said
    states = {f.arg: f.parse(captures[f.key]).enabled for f in facts}  # type: ignore[union-attr]
    assert states == {u: _enabled(a) for u, a in zip(units, alone, strict=True)}
    assert states["hds-nowhere.service"] == "not-found" and states["hds-local@x.service"] != "not-found"
