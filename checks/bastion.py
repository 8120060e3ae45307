"""The bastion: administrators' sessions are recorded, and the recordings leave it.

A session counts as recorded by tlog (every administrator's login shell is ``tlog-rec-session``, or SSSD
records every user), by sudo I/O logs (``log_input``/``log_output`` for every session), or by the audit
system (``pam_tty_audit`` on the sshd or login session stack, or every ``execve`` audited, in the loaded
rules and at boot). Recordings are out of the administrators' reach only if they leave the bastion: sudo
logs sent to a log server (``log_servers``), tlog's journal or syslog records forwarded by the host's log
forwarding, audit records forwarded (audisp-remote, or the syslog plugin and then syslog forwarding). A
copy an administrator of the bastion can rewrite proves nothing. The forwarding itself (TLS, a checked
peer, a collector of the inventory) is judged by the logging controls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hds_compliance.check import Context, FactUnavailable, NoParams, Outcome, check, failed, passed
from hds_compliance.checks.auditd import WATCH_FACTS, syscall_gaps
from hds_compliance.checks.log_forwarding import AUDIT_FORWARDING_FACTS, audit_forwarding, forwarding_targets
from hds_compliance.checks.pam import PAM_FILES, stacks
from hds_compliance.checks.sudo import POLICY_FACTS, granted_principals, read_policy, session_recording
from hds_compliance.facts import Fact, FileContent
from hds_compliance.facts.sssd import SssdSessionRecording

PASSWD = FileContent("/etc/passwd")
GROUP = FileContent("/etc/group")
TLOG_DEFAULT = FileContent("/usr/share/tlog/tlog-rec-session.default.conf")
TLOG_CONF = FileContent("/etc/tlog/tlog-rec-session.conf")
SSSD = SssdSessionRecording()
FACTS: list[Fact[Any]] = [
    *POLICY_FACTS,
    *AUDIT_FORWARDING_FACTS,
    *WATCH_FACTS,
    PAM_FILES,
    PASSWD,
    GROUP,
    TLOG_DEFAULT,
    TLOG_CONF,
    SSSD,
]


@dataclass(frozen=True)
class Recorder:
    """One way sessions are recorded, and where its recordings go."""

    what: str
    destination: str
    leaves: bool


def _forwarded(ctx: Context, audit: bool = False) -> list[str]:
    targets, _ = audit_forwarding(ctx) if audit else forwarding_targets(ctx)
    return [t.describe() for t in targets if t.running is not False and not t.problem]


def _tlog_writer(ctx: Context) -> str:
    """tlog-rec-session's writer: its shipped defaults, then /etc's file (JSON with // comments and, as
    tlog's own parser accepts and its shipped /etc file has, trailing commas)."""
    writer = "journal"
    for fact in (TLOG_DEFAULT, TLOG_CONF):
        data = ctx.get(fact)
        if data is None:
            continue
        text = re.sub(r"^\s*//.*$", "", data.decode("utf-8", "replace"), flags=re.M)
        text = re.sub(r",(\s*[}\]])", r"\1", text)
        try:
            writer = str(json.loads(text).get("writer", writer)) if text.strip() else writer
        except ValueError:
            return "unreadable"
    return writer


def _admins(ctx: Context) -> set[str]:
    """Local accounts sudo lets administer: users named by a grant, and members of granted groups."""
    policy = read_policy(ctx)
    if policy is None:
        return set()
    names = {who for who, _ in granted_principals(policy)}
    groups = {n[1:] for n in names if n.startswith("%")}
    users = {n for n in names if not n.startswith("%") and n != "ALL"}
    for line in (ctx.get(GROUP) or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] in groups:
            users |= {u for u in fields[3].split(",") if u}
    return users - {"root"}


def _tlog(ctx: Context) -> Recorder | None:
    sssd = ctx.get(SSSD)
    scope = next((s.value for s in reversed(sssd or []) if s.key == "scope"), "none")
    shells = {}
    for line in (ctx.get(PASSWD) or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7:
            shells[fields[0]] = fields[6]
    admins = _admins(ctx)
    by_shell = bool(admins) and all(
        shells.get(a, "").endswith("/tlog-rec-session") for a in admins if a in shells
    )
    if scope.lower() != "all" and not by_shell:
        return None
    how = "SSSD session recording (scope = all)" if scope.lower() == "all" else "tlog as every admin's shell"
    writer = _tlog_writer(ctx)
    if writer in ("journal", "syslog"):
        out = _forwarded(ctx)
        return Recorder(
            f"{how}, writer {writer}", "; ".join(out) or f"the {writer} of the bastion only", bool(out)
        )
    return Recorder(f"{how}, writer {writer}", "a file on the bastion", False)


def _sudo(ctx: Context) -> Recorder | None:
    policy = read_policy(ctx)
    if policy is None:
        return None
    recording = session_recording(policy)
    if not recording.recorded:
        return None
    return Recorder(
        f"sudo I/O logs ({', '.join(recording.streams) or 'per-command tags'})",
        recording.where(),
        bool(recording.servers),
    )


def _audit(ctx: Context) -> Recorder | None:
    tty = [
        line.where
        for service, lines in stacks(ctx, ["sshd", "login"], "session").items()
        for line in lines
        if line.module == "pam_tty_audit.so" and line.arg("enable") is not None
    ]
    execve = not syscall_gaps(ctx, ["execve"])
    if not tty and not execve:
        return None
    what = f"pam_tty_audit ({', '.join(tty)})" if tty else "every execve audited (loaded and at boot)"
    out = _forwarded(ctx, audit=True)
    return Recorder(f"audit: {what}", "; ".join(out) or "/var/log/audit on the bastion only", bool(out))


@check("bastion.sessions_recorded", facts=lambda p: FACTS)
def bastion_sessions_recorded(p: NoParams, ctx: Context) -> Outcome:
    """Administrators' sessions on the bastion are recorded, and the recordings leave the bastion."""
    recorders: list[Recorder] = []
    unknown: list[str] = []
    for find in (_tlog, _sudo, _audit):
        try:
            found = find(ctx)
        except FactUnavailable as exc:  # one way unknown: the others may still prove the point
            unknown.append(str(exc))
            continue
        if found is not None:
            recorders.append(found)
    if unknown and not any(r.leaves for r in recorders):
        raise FactUnavailable("; ".join(unknown))
    if not recorders:
        return failed(
            "no session recording: no tlog shell or SSSD recording, no sudo I/O logs for every session, "
            "no pam_tty_audit and no execve audit rule"
        )
    kept = [r for r in recorders if r.leaves]
    shown = "; ".join(f"{r.what} -> {r.destination}" for r in recorders)
    if not kept:
        return failed(
            "sessions are recorded but the recordings stay on the bastion, where its admins can rewrite "
            f"them: {shown}"
        )
    return passed(f"sessions recorded and sent off the bastion: {shown}")
