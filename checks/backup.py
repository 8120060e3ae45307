"""Backup hosts, each on its own: its repositories open and hold backups, its passwords stay private, and
what it serves to data hosts (rest-server, ``borg serve`` keys) can only append.

Checks that read a backup host's declared repositories (host data ``backup_repositories``) are written as
fleet checks that judge each host on its own facts: only a fleet check's facts may depend on host data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hds_compliance.check import (
    Context,
    FactUnavailable,
    Fleet,
    HostInfo,
    NoParams,
    Outcome,
    check,
    errored,
    failed,
    fleet_check,
    not_applicable,
    passed,
)
from hds_compliance.checks.fleet_backup import (
    REST_SERVER,
    SSH_ACCESS,
    borg_key_append_only,
    is_backup_host,
    repository_facts,
    rest_server_append_only,
)
from hds_compliance.facts import Fact, FileStat
from hds_compliance.facts.backup import repository_fact


def _each_backup_host(fleet: Fleet, judge: Callable[[Context], Outcome]) -> dict[str, Outcome]:
    """``judge`` on every judged backup host; the others are not applicable."""
    out: dict[str, Outcome] = {}
    for name in fleet.judged:
        ctx = fleet.hosts[name]
        if not is_backup_host(ctx.host):
            out[name] = not_applicable(
                f"{name} is not a backup host (roles: {', '.join(ctx.host.roles) or 'none'})"
            )
            continue
        try:
            out[name] = judge(ctx)
        except FactUnavailable as exc:
            out[name] = errored(str(exc))
    return out


@fleet_check("backup.repositories_readable", facts=lambda p, host: repository_facts(host))
def backup_repositories_readable(p: NoParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every repository a backup host declares opens with its tool, read-only, and holds backups."""
    return _each_backup_host(fleet, _readable)


def _readable(ctx: Context) -> Outcome:
    repos = ctx.host.backup_repositories
    if not repos:
        return failed(
            f"{ctx.host.name} declares no backup_repositories in the inventory: nothing can be verified"
        )
    empty, counts = [], []
    for repo in repos:
        listing = ctx.get(repository_fact(repo))
        hosts = {s.hostname for s in listing.snapshots}
        if not listing.snapshots:
            empty.append(f"{repo.tool} repository {repo.repository}")
        counts.append(
            f"{repo.tool} {repo.repository}: backups of {len(hosts)} host{'s' if len(hosts) != 1 else ''}"
        )
    if empty:
        return failed(f"no backup in {', '.join(empty)}")
    return passed("; ".join(counts))


def _password_facts(host: HostInfo) -> list[Fact[Any]]:
    if not is_backup_host(host):
        return []
    return [FileStat(r.password_file) for r in host.backup_repositories if r.password_file]


@fleet_check("backup.password_files_private", facts=lambda p, host: _password_facts(host))
def backup_password_files_private(p: NoParams, fleet: Fleet) -> dict[str, Outcome]:
    """The password files of a backup host's repositories are readable by their owner only."""
    return _each_backup_host(fleet, _private)


def _private(ctx: Context) -> Outcome:
    files = sorted({r.password_file for r in ctx.host.backup_repositories if r.password_file})
    if not files:
        return not_applicable(f"{ctx.host.name} declares no repository password_file")
    problems, fine = [], []
    for path in files:
        st = ctx.get(FileStat(path))
        if st is None:
            problems.append(f"{path} does not exist")
        elif st.file_type != "regular file":
            problems.append(f"{path} is a {st.file_type}")
        elif st.mode & 0o077:
            problems.append(f"{path} is mode {st.mode:04o}: group or others may read the repository password")
        else:
            fine.append(f"{path} ({st.mode:04o}, uid {st.uid})")
    if problems:
        return failed("; ".join(problems))
    return passed("readable by their owner only: " + ", ".join(fine))


@check("backup.rest_server_append_only", facts=lambda p: [REST_SERVER])
def backup_rest_server_append_only(p: NoParams, ctx: Context) -> Outcome:
    """Every running rest-server is append-only, as its own flag parser reads its arguments."""
    processes = ctx.get(REST_SERVER)
    if not processes:
        return not_applicable("no rest-server process runs on this host")
    bad: list[str] = []
    good: list[str] = []
    for process in processes:
        mode = rest_server_append_only(process)
        args = " ".join(process.argv)
        if mode is None:
            raise FactUnavailable(
                f"rest-server (pid {process.pid}) has an --append-only value it refuses: {args}"
            )
        (good if mode else bad).append(f"pid {process.pid}: {args}")
    if bad:
        return failed("rest-server without --append-only (clients can delete snapshots): " + "; ".join(bad))
    return passed("rest-server runs with --append-only: " + "; ".join(good))


@fleet_check(
    "backup.borg_serve_append_only",
    facts=lambda p, host: [SSH_ACCESS, *repository_facts(host)] if is_backup_host(host) else [],
)
def backup_borg_serve_append_only(p: NoParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every SSH key a backup host forces to ``borg serve`` can only append to the repositories it reaches."""
    return _each_backup_host(fleet, _borg_serve)


def _borg_serve(ctx: Context) -> Outcome:
    access = ctx.get(SSH_ACCESS, redacted_ok=True)
    listings = [ctx.get(repository_fact(r)) for r in ctx.host.backup_repositories]
    serving = [k for k in access.keys if k.borg_serve() is not None]
    if not access.sshd:
        return not_applicable(f"no SSH daemon is installed on {ctx.host.name}")
    bad = [f"{k.where} ({k.user}): {k.command}" for k in serving if not borg_key_append_only(k, listings)]
    if bad:
        return failed("borg serve without --append-only (a client can delete archives): " + "; ".join(bad))
    if access.unenumerable or access.unreadable:
        unknown = "; ".join([*access.unenumerable, *access.unreadable])
        return errored(f"keys also come from what the scan cannot list or read: {unknown}")
    if not serving:
        return not_applicable(f"no authorized key on {ctx.host.name} is forced to borg serve")
    return passed(
        f"{len(serving)} key(s) forced to borg serve, all append-only: {', '.join(k.where for k in serving)}"
    )
