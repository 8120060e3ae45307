"""Backups across the fleet: every data host backed up recently, encrypted, out of its own reach, in the EEA.

Definitions (issue 5, so that two implementations agree): data hosts have a role in ``data_roles``; backup
hosts have the role ``backup`` and declare their repositories in the inventory (``backup_repositories``),
which the probe lists read-only with the backup tool itself. A host is matched by its inventory name, its
``ssh_hostname``, or the node name and addresses its own probe reports, never by DNS: the host a snapshot
was taken on, the host a repository URL names. Ages are judged against the backup host's collection time,
so a re-evaluation of the same captures later gives the same verdict. Hosts a check needs that are outside
the scan make its verdict ``not_reviewed``; facts it needs that cannot be read make it ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from hds_compliance.check import (
    FactUnavailable,
    Fleet,
    HostInfo,
    Outcome,
    Params,
    errored,
    failed,
    fleet_check,
    not_applicable,
    not_reviewed,
    passed,
)
from hds_compliance.checks.identity import Identities, identity_facts
from hds_compliance.checks.inventory import ALLOWED
from hds_compliance.facts import Fact
from hds_compliance.facts.backup import (
    BORG_ENCRYPTED,
    BORG_UNENCRYPTED,
    AuthorizedKey,
    BackupClient,
    BackupClientConfig,
    ClientRepository,
    RepositoryListing,
    Snapshot,
    SshAuthorizedKeys,
    repository_fact,
)
from hds_compliance.facts.process_table import Process, ProcessTable

BACKUP_ROLE = "backup"
CLIENT = BackupClientConfig()
SSH_ACCESS = SshAuthorizedKeys()
REST_SERVER = ProcessTable("rest-server")
# A snapshot dated after the backup host was probed proves nothing about the past (restic backup --time
# can set any date); a client clock a little ahead of the backup host's is tolerated.
CLOCK_SKEW = timedelta(minutes=15)


class DataParams(Params):
    data_roles: list[str] = Field(
        min_length=1, description="inventory roles that make a host hold health data"
    )


class RecentParams(DataParams):
    max_age_hours: int = Field(gt=0, description="oldest acceptable last successful backup, in hours")


def is_data_host(host: HostInfo, data_roles: list[str]) -> bool:
    """Whether a host holds health data (one of its roles is a data role)."""
    return bool(set(host.roles) & set(data_roles))


def is_backup_host(host: HostInfo) -> bool:
    """Whether a host keeps backups (its inventory roles include ``backup``)."""
    return BACKUP_ROLE in host.roles


def _not_data(p: DataParams, host: HostInfo) -> Outcome:
    roles = ", ".join(host.roles) or "none"
    return not_applicable(
        f"{host.name} holds no health data (roles: {roles}; data roles: {', '.join(p.data_roles)})"
    )


def data_hosts(p: DataParams, fleet: Fleet, out: dict[str, Outcome], backup_hosts: str | None) -> list[str]:
    """The judged data hosts to judge; the others get their not-applicable outcome in ``out``.

    ``backup_hosts`` says why backup hosts are not judged either (``None``: they are).
    """
    todo = []
    for name in fleet.judged:
        host = fleet.hosts[name].host
        if not is_data_host(host, p.data_roles):
            out[name] = _not_data(p, host)
        elif backup_hosts is not None and is_backup_host(host):
            out[name] = not_applicable(f"{name} is a backup host: {backup_hosts}")
        else:
            todo.append(name)
    return todo


def repository_facts(host: HostInfo) -> list[Fact[Any]]:
    """The listings of the repositories a backup host declares."""
    return [repository_fact(r) for r in host.backup_repositories] if is_backup_host(host) else []


# ------------------------------------------------------------------------------------- repositories


@dataclass(frozen=True)
class Held:
    """A backup found in a repository of a backup host."""

    backup_host: str
    listing: RepositoryListing
    snapshot: Snapshot

    @property
    def place(self) -> str:
        """Where the backup is, for messages."""
        return f"{self.listing.tool} repository {self.listing.repository} on {self.backup_host}"


@dataclass
class Backups:
    """What the scanned backup hosts hold, what could not be read, and the backup hosts outside the scan."""

    listings: list[tuple[str, RepositoryListing]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (backup host, what could not be read)
    outside: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # backup hosts declaring no repository

    @classmethod
    def of(cls, fleet: Fleet) -> Backups:
        """Every repository of every backup host, read through its listing fact."""
        out = cls(outside=fleet.outside_with_role(BACKUP_ROLE), hosts=fleet.with_role(BACKUP_ROLE))
        for name in out.hosts:
            if name in fleet.broken:
                out.problems.append((name, fleet.broken[name]))
                continue
            ctx = fleet.hosts[name]
            if not ctx.host.backup_repositories:
                out.empty.append(name)
            for repo in ctx.host.backup_repositories:
                try:
                    out.listings.append((name, ctx.get(repository_fact(repo))))
                except FactUnavailable as exc:
                    out.problems.append((name, str(exc)))
        return out

    def held(self, host: str, ids: Identities) -> tuple[list[Held], list[str]]:
        """Backups of ``host`` (by the host name the tool recorded), and notes on ambiguous host names."""
        found, notes = [], []
        for backup_host, listing in self.listings:
            for snapshot in listing.snapshots:
                owners = ids.hosts(snapshot.hostname)
                if host not in owners:
                    continue
                if len(owners) > 1:
                    notes.append(
                        f"backups recorded as host {snapshot.hostname!r} in {listing.repository} on "
                        f"{backup_host} could be of any of {', '.join(owners)}: they count for none"
                    )
                    continue
                found.append(Held(backup_host, listing, snapshot))
        return found, sorted(set(notes))

    def why_unknown(self) -> str | None:
        """Why the scan may miss backups: repositories not read, backup hosts outside the scan."""
        if self.problems:
            return "could not read " + "; ".join(f"{host}: {what}" for host, what in self.problems)
        return None


def _missing(host: str, backups: Backups, ids: Identities, what: str) -> Outcome:
    """The outcome when no backup of ``host`` shows ``what``: error, not reviewed, or a failure."""
    unknown = backups.why_unknown()
    if unknown:
        return errored(f"{what}; {unknown}")
    if backups.outside:
        return not_reviewed(f"{what}; outside this scan: the backup hosts {', '.join(backups.outside)}")
    if host in ids.unknown:
        return errored(f"{what}; the host's own name is unknown: {'; '.join(ids.unknown[host])}")
    return failed(what)


def _searched(backups: Backups) -> str:
    if not backups.hosts:
        return "any repository: no host of the inventory has the role backup"
    count = len(backups.listings)
    where = f"{count} repositor{'y' if count == 1 else 'ies'} of {', '.join(backups.hosts)}"
    if backups.empty:
        where += f" (no backup_repositories declared on {', '.join(backups.empty)})"
    return where


def _recent_facts(p: RecentParams, host: HostInfo) -> list[Fact[Any]]:
    return identity_facts(host) + repository_facts(host)


@fleet_check("fleet.backups_recent", params=RecentParams, facts=_recent_facts)
def fleet_backups_recent(p: RecentParams, fleet: Fleet) -> dict[str, Outcome]:
    """Every data host has a successful backup on a backup host, younger than a limit when it was probed."""
    backups, ids = Backups.of(fleet), Identities.of(fleet)
    limit = timedelta(hours=p.max_age_hours)
    out: dict[str, Outcome] = {}
    for name in data_hosts(p, fleet, out, "it keeps the backups, its own are not judged here"):
        held, notes = backups.held(name, ids)
        ages, problems = [], []
        for item in held:
            try:
                clock = fleet.hosts[item.backup_host].clock()
            except FactUnavailable as exc:
                problems.append(f"{item.backup_host}: {exc}")
                continue
            if item.snapshot.at <= clock + CLOCK_SKEW:
                ages.append((clock - item.snapshot.at, item))
            else:
                notes.append(f"{item.snapshot.name} in {item.place} is dated after that host was probed")
        out[name] = _recent(name, p, limit, sorted(ages, key=lambda a: a[0]), problems, notes, backups, ids)
    return out


def _hours(delta: timedelta) -> str:
    return f"{max(delta.total_seconds(), 0) / 3600:.1f} h"


def _recent(
    name: str,
    p: RecentParams,
    limit: timedelta,
    ages: list[tuple[timedelta, Held]],
    problems: list[str],
    notes: list[str],
    backups: Backups,
    ids: Identities,
) -> Outcome:
    extra = "".join(f"; {n}" for n in notes)
    if ages and ages[0][0] <= limit:
        age, item = ages[0]
        return passed(
            f"newest backup of {name}: {item.snapshot.name} ({item.snapshot.time}) in {item.place}, "
            f"{_hours(age)} old when {item.backup_host} was probed (at most {p.max_age_hours} h){extra}"
        )
    if problems:
        return errored(f"cannot date the backups of {name}: {'; '.join(problems)}")
    if ages:
        age, item = ages[0]
        what = (
            f"newest backup of {name} is {_hours(age)} old when {item.backup_host} was probed "
            f"({item.snapshot.name}, {item.snapshot.time}, in {item.place}); "
            f"at most {p.max_age_hours} h{extra}"
        )
    else:
        what = f"no backup of {name} (known as {ids.describe(name)}) in {_searched(backups)}{extra}"
    return _missing(name, backups, ids, what)


# --------------------------------------------------------------------------------------- encryption


def encryption_of(listing: RepositoryListing) -> bool | None:
    """Whether a repository encrypts its data: True, False, or None when the mode is unknown."""
    if listing.tool == "restic":
        return True  # restic has no unencrypted repository format: every one is AES-256 with its key
    if listing.encryption in BORG_ENCRYPTED:
        return True
    if listing.encryption in BORG_UNENCRYPTED:
        return False
    return None


def describe_encryption(listing: RepositoryListing) -> str:
    """How a repository is encrypted, for messages."""
    if listing.tool == "restic":
        return "restic encrypts every repository with AES-256 and the probe opened it with its key"
    return f"borg encryption mode {listing.encryption}"


def judge_encryption(listings: list[tuple[str, RepositoryListing]]) -> tuple[list[str], list[str], list[str]]:
    """(unencrypted, unknown, encrypted) descriptions of repositories."""
    bad, unknown, good = [], [], []
    for backup_host, listing in listings:
        where = f"{listing.tool} repository {listing.repository} on {backup_host}"
        verdict = encryption_of(listing)
        if verdict is False:
            bad.append(f"{where} is not encrypted (borg mode {listing.encryption})")
        elif verdict is None:
            unknown.append(f"{where} has an unknown borg encryption mode {listing.encryption!r}")
        else:
            good.append(f"{where} ({describe_encryption(listing)})")
    return bad, unknown, good


def _data_facts(p: DataParams, host: HostInfo) -> list[Fact[Any]]:
    return identity_facts(host) + repository_facts(host)


@fleet_check("fleet.backups_encrypted", params=DataParams, facts=_data_facts)
def fleet_backups_encrypted(p: DataParams, fleet: Fleet) -> dict[str, Outcome]:
    """The repositories holding a data host's backups encrypt them (borg none/authenticated do not)."""
    backups, ids = Backups.of(fleet), Identities.of(fleet)
    out: dict[str, Outcome] = {}
    for name in data_hosts(p, fleet, out, None):
        host = fleet.hosts[name].host
        pending: list[str] = []
        if is_backup_host(host):
            problems = [f"{b}: {what}" for b, what in backups.problems if b == name]
            mine = [(b, listing) for b, listing in backups.listings if b == name]
            if problems:
                out[name] = errored("; ".join(problems))
                continue
            if not mine:
                out[name] = failed(f"{name} declares no backup_repositories in the inventory")
                continue
        else:
            held, _ = backups.held(name, ids)
            mine = list(
                {(h.backup_host, h.listing.repository): (h.backup_host, h.listing) for h in held}.values()
            )
            if not mine:
                out[name] = _missing(name, backups, ids, f"no backup of {name} in {_searched(backups)}")
                continue
            # A repository that could not be read may hold more of its backups, unencrypted.
            pending = [backups.why_unknown() or ""] if backups.problems else []
        bad, unknown, good = judge_encryption(mine)
        if bad:
            out[name] = failed(f"backups of {name}: " + "; ".join(bad))
        elif unknown or pending:
            out[name] = errored(f"backups of {name}: " + "; ".join(unknown + pending))
        else:
            out[name] = passed(f"backups of {name} are encrypted: " + "; ".join(good))
    return out


# --------------------------------------------------------------------------------------- out of reach

_OBJECT_STORES = ("s3:", "b2:", "azure:", "gs:", "swift:", "rclone:")


@dataclass(frozen=True)
class Target:
    """Where a repository location points: how it is reached, on which host, as which user."""

    kind: str  # local | rest | sftp | ssh | object | unknown
    host: str | None = None
    user: str | None = None
    port: int | None = None
    path: str = ""


def parse_location(tool: str, location: str) -> Target:
    """How restic or borg would reach a repository location (their own URL grammars)."""
    if "$" in location or "{" in location or not location:
        return Target("unknown", path=location)
    if tool == "restic":
        if location.startswith("rest:"):
            url = urlsplit(location[5:])
            port = url.port or (443 if url.scheme == "https" else 80)
            return Target("rest", url.hostname, url.username, port, url.path)
        if location.startswith("sftp:"):
            rest = location[5:]
            if rest.startswith("//"):
                url = urlsplit("sftp:" + rest)
                return Target("sftp", url.hostname, url.username, url.port, url.path)
            userhost, _, path = rest.partition(":")
            user, _, hostname = userhost.rpartition("@")
            return Target("sftp", hostname, user or None, None, path)
        if location.startswith(_OBJECT_STORES):
            scheme, _, rest = location.partition(":")
            endpoint = urlsplit(rest if "//" in rest else "//" + rest).hostname
            return Target("object", endpoint, None, None, f"{scheme}:{rest}")
        if location.startswith(("/", "local:")):
            return Target("local", path=location.removeprefix("local:"))
        return Target("unknown", path=location)
    if location.startswith("ssh://"):
        url = urlsplit(location)
        return Target("ssh", url.hostname, url.username, url.port, url.path)
    head, sep, path = location.partition(":")
    if sep and "/" not in head:  # borg's scp-like "user@host:path"
        user, _, hostname = head.rpartition("@")
        return Target("ssh", hostname, user or None, None, path)
    if location.startswith(("/", "file://")) or not sep:
        return Target("local", path=location.removeprefix("file://"))
    return Target("unknown", path=location)


def rest_server_append_only(process: Process) -> bool | None:
    """Whether a rest-server runs append-only, read as its flag parser reads the arguments.

    cobra/pflag: ``--append-only`` or ``--append-only=<bool>`` (the last one wins); a value flag given
    without ``=`` takes the next argument whatever it is (``--path --append-only`` sets the path); ``--``
    ends the flags. ``None``: an ``--append-only=`` value the daemon would refuse.
    """
    value: bool | None = False
    args = list(process.argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        name, eq, given = arg.partition("=")
        if name == "--append-only":
            value = _go_bool(given) if eq else True
        elif arg.startswith("--") and not eq and name not in _REST_SERVER_BOOLS:
            i += 1  # the flag's value
        i += 1
    return value


_REST_SERVER_BOOLS = frozenset(
    {
        "--append-only",
        "--debug",
        "--no-auth",
        "--no-verify-upload",
        "--private-repos",
        "--prometheus",
        "--prometheus-no-auth",
        "--tls",
        "--version",
        "--help",
        "--group-accessible-repos",
    }
)


def _go_bool(text: str) -> bool | None:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def rest_server_port(process: Process) -> int:
    """The TCP port a rest-server listens on (``--listen``, default ``:8000``)."""
    listen = ":8000"
    args = list(process.argv[1:])
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--listen" and i + 1 < len(args):
            listen = args[i + 1]
        elif arg.startswith("--listen="):
            listen = arg.split("=", 1)[1]
    port = listen.rpartition(":")[2]
    return int(port) if port.isdigit() else 8000


def borg_key_append_only(key: AuthorizedKey, listings: list[RepositoryListing]) -> bool:
    """Whether a key can only append: its forced command is ``borg serve --append-only``, or ``borg serve``
    restricted to repositories that are all append-only by their own configuration."""
    serve = key.borg_serve()
    if serve is None:
        return False
    if "--append-only" in serve:
        return True
    roots = [
        word.split("=", 1)[1] if "=" in word else (serve[i + 1] if i + 1 < len(serve) else "")
        for i, word in enumerate(serve)
        if word.split("=", 1)[0] in ("--restrict-to-path", "--restrict-to-repository")
    ]
    if not roots or not all(roots):
        return False
    covered = [
        listing
        for listing in listings
        if listing.tool == "borg" and any(_under(listing.repository, root) for root in roots)
    ]
    return bool(covered) and all(listing.append_only for listing in covered) and len(covered) >= len(roots)


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def _out_of_reach_facts(p: DataParams, host: HostInfo) -> list[Fact[Any]]:
    facts = identity_facts(host)
    if is_data_host(host, p.data_roles) and not is_backup_host(host):
        facts.append(CLIENT)
    if is_backup_host(host):
        facts += [SSH_ACCESS, REST_SERVER, *repository_facts(host)]
    return facts


@dataclass
class Findings:
    """What a fleet check found about one host: failures, reasons it cannot judge, hosts outside the scan."""

    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    fine: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What was found in order, once each."""
        return "; ".join(dict.fromkeys(self.fine))

    def outcome(self, summary: Callable[[], str]) -> Outcome:
        """fail beats error beats not reviewed beats pass."""
        if self.failures:
            return failed("; ".join(self.failures))
        if self.errors:
            return errored("; ".join(self.errors))
        if self.outside:
            return not_reviewed("; ".join(self.outside))
        return passed(summary())


def _resolve(label: str | None, fleet: Fleet, ids: Identities, found: Findings, why: str) -> str | None:
    """The scanned backup host a repository location names, or None with the reason recorded."""
    if not label:
        found.failures.append(f"{why}: the location names no host")
        return None
    hosts = ids.hosts(label)
    if len(hosts) == 1 and is_backup_host(fleet.hosts[hosts[0]].host):
        if hosts[0] in fleet.broken:
            found.errors.append(f"{why}: {hosts[0]} could not be probed ({fleet.broken[hosts[0]]})")
            return None
        return hosts[0]
    if len(hosts) == 1:
        found.failures.append(f"{why}: {hosts[0]} is not a backup host of the inventory")
    elif hosts:
        found.errors.append(f"{why}: {label} designates several hosts ({', '.join(hosts)})")
    elif fleet.outside:
        found.outside.append(
            f"{why}: {label} is no scanned host (outside this scan: {', '.join(fleet.outside)})"
        )
    else:
        found.failures.append(
            f"{why}: {label} is not a host of the inventory, whose backups cannot be judged"
        )
    return None


def _judge_repository(
    name: str, client: BackupClient, repo: ClientRepository, fleet: Fleet, ids: Identities, found: Findings
) -> None:
    target = parse_location(repo.tool, repo.location)
    why = f"{name} writes to {repo.tool} repository {repo.location} ({repo.where})"
    if target.kind == "local":
        found.failures.append(f"{why}: a repository the host itself can rewrite")
        return
    if target.kind == "object":
        found.failures.append(f"{why}: object storage with the host's own credentials, not shown append-only")
        return
    if target.kind == "unknown":
        found.failures.append(f"{why}: a location the scan cannot resolve")
        return
    if target.kind == "sftp":
        found.failures.append(
            f"{why}: an SFTP login can delete snapshots (restic has no append-only SFTP mode)"
        )
        return
    backup_host = _resolve(target.host, fleet, ids, found, why)
    if backup_host is None:
        return
    ctx = fleet.hosts[backup_host]
    try:
        if target.kind == "rest":
            _judge_rest(why, backup_host, ctx.get(REST_SERVER), target, found)
        else:
            listings = [ctx.get(repository_fact(r)) for r in ctx.host.backup_repositories]
            _judge_borg_ssh(
                why, name, client, backup_host, ctx.get(SSH_ACCESS, redacted_ok=True), listings, target, found
            )
    except FactUnavailable as exc:
        found.errors.append(f"{why}: {exc}")


def _judge_rest(
    why: str, backup_host: str, processes: tuple[Process, ...], target: Target, found: Findings
) -> None:
    if not processes:
        found.failures.append(f"{why}: no rest-server runs on {backup_host}")
        return
    serving = [p for p in processes if rest_server_port(p) == target.port] or list(processes)
    for process in serving:
        mode = rest_server_append_only(process)
        args = " ".join(process.argv)
        if mode is None:
            found.errors.append(
                f"{why}: rest-server (pid {process.pid}) has an invalid --append-only value: {args}"
            )
        elif not mode:
            found.failures.append(
                f"{why}: rest-server on {backup_host} (pid {process.pid}) is not append-only: {args}"
            )
        else:
            found.fine.append(
                f"{repr_short(why)} append-only (rest-server pid {process.pid} on {backup_host})"
            )


def repr_short(why: str) -> str:
    """The first clause of a finding (the host and the repository)."""
    return why.split(" (", 1)[0]


def _judge_borg_ssh(
    why: str,
    name: str,
    client: BackupClient,
    backup_host: str,
    access: Any,
    listings: list[RepositoryListing],
    target: Target,
    found: Findings,
) -> None:
    prints = {k.fingerprint for k in client.keys if k.fingerprint}
    if access.unenumerable or access.unreadable:
        return  # the SSH paths judgement says the backup host's keys cannot all be listed
    mine = [
        k for k in access.keys if k.fingerprint in prints and (target.user is None or k.user == target.user)
    ]
    if not mine:
        account = target.user or "any account"
        found.failures.append(
            f"{why}: none of {name}'s {len(prints)} SSH keys is authorized for {account} on {backup_host}, "
            "so its access cannot be shown append-only"
        )
    # Keys that are not append-only are reported once, with every other login (_judge_ssh_paths).
    found.fine += [
        f"{repr_short(why)} append-only ({k.where} on {backup_host})"
        for k in mine
        if borg_key_append_only(k, listings)
    ]


def _key_power(key: AuthorizedKey) -> str:
    if key.command is None:
        return "with no forced command (a full login)"
    if key.borg_serve() is None:
        return f"forced to {key.command!r}, which is not borg serve"
    return f"forced to {key.command!r}, without --append-only"


@fleet_check("fleet.backups_out_of_reach", params=DataParams, facts=_out_of_reach_facts)
def fleet_backups_out_of_reach(p: DataParams, fleet: Fleet) -> dict[str, Outcome]:
    """No data host holds a credential or an SSH path that can rewrite its own backups (ransomware).

    Out of reach: the backup host pulls (the data host names no repository and holds no repository
    password), or what the data host holds can only append (a key forced to ``borg serve --append-only``
    on the backup host, a rest-server started with ``--append-only``). Any key of the data host that
    logs in to a backup host otherwise is a path to rewrite them.
    """
    ids = Identities.of(fleet)
    out: dict[str, Outcome] = {}
    for name in data_hosts(p, fleet, out, "it holds the repositories themselves"):
        try:
            client = fleet.hosts[name].get(CLIENT)
        except FactUnavailable as exc:
            out[name] = errored(str(exc))
            continue
        out[name] = _out_of_reach(name, client, fleet, ids)
    return out


def _out_of_reach(name: str, client: BackupClient, fleet: Fleet, ids: Identities) -> Outcome:
    found = Findings()
    if client.unreadable:
        found.errors.append(f"could not read {', '.join(client.unreadable)} on {name}")
    for repo in client.repositories:
        _judge_repository(name, client, repo, fleet, ids, found)
    if client.secrets and not client.repositories:
        names = ", ".join(f"{n} ({w})" for w, n in client.secrets)
        found.failures.append(
            f"{name} holds backup credentials ({names}) for repositories the scan cannot find"
        )
    _judge_ssh_paths(name, client, fleet, found)

    def summary() -> str:
        count = len(client.keys)
        keys = f"none of its {count} SSH key{'s' if count != 1 else ''} logs in to a backup host"
        if not count:
            keys = "it holds no SSH key"
        if not client.repositories:
            return (
                f"{name} is pulled: none of the {len(client.files)} backup job files read names a "
                f"repository or a password, and {keys}"
            )
        return f"{found.summary()}; {keys} otherwise" if count else f"{found.summary()}; {keys}"

    return found.outcome(summary)


def _judge_ssh_paths(name: str, client: BackupClient, fleet: Fleet, found: Findings) -> None:
    """Every key the data host holds, against the keys every backup host accepts."""
    if not client.keys:
        return
    unknown = [k.path for k in client.keys if k.fingerprint is None]
    if unknown:
        found.errors.append(f"cannot fingerprint the SSH keys {', '.join(unknown)} of {name}")
    prints = {k.fingerprint: k.path for k in client.keys if k.fingerprint}
    for backup_host in fleet.with_role(BACKUP_ROLE):
        if backup_host in fleet.broken:
            found.errors.append(f"{backup_host} could not be probed ({fleet.broken[backup_host]})")
            continue
        ctx = fleet.hosts[backup_host]
        try:
            access = ctx.get(SSH_ACCESS, redacted_ok=True)
            listings = [ctx.get(repository_fact(r)) for r in ctx.host.backup_repositories]
        except FactUnavailable as exc:
            found.errors.append(f"{backup_host}: {exc}")
            continue
        if access.unenumerable or access.unreadable:
            hidden = "; ".join([*access.unenumerable, *access.unreadable])
            found.errors.append(f"{backup_host} accepts keys the scan cannot list or read ({hidden})")
        for key in access.keys:
            if key.fingerprint in prints and not borg_key_append_only(key, listings):
                found.failures.append(
                    f"{name}'s key {prints[key.fingerprint]} logs in to {backup_host} as {key.user} "
                    f"({key.where}) {_key_power(key)}"
                )
    for backup_host in fleet.outside_with_role(BACKUP_ROLE):
        found.outside.append(
            f"the backup host {backup_host} is outside this scan: {name}'s SSH keys not checked there"
        )


# ---------------------------------------------------------------------------------------- sovereignty


def _eea_facts(p: DataParams, host: HostInfo) -> list[Fact[Any]]:
    facts = identity_facts(host)
    if is_data_host(host, p.data_roles):
        facts.append(CLIENT)
    return facts


def located(host: HostInfo) -> tuple[bool | None, str]:
    """Whether the inventory places a host in the EEA (None: it does not say), and the country."""
    country = (host.location_country or "").strip().upper()
    if not country:
        return None, ""
    return country in ALLOWED, country


@fleet_check("fleet.storage_in_eea", params=DataParams, facts=_eea_facts)
def fleet_storage_in_eea(p: DataParams, fleet: Fleet) -> dict[str, Outcome]:
    """Data hosts, backup hosts and every backup target they write to are inventory hosts inside the EEA."""
    ids = Identities.of(fleet)
    out: dict[str, Outcome] = {}
    for name in fleet.judged:
        ctx = fleet.hosts[name]
        if not is_data_host(ctx.host, p.data_roles) and not is_backup_host(ctx.host):
            out[name] = _not_data(p, ctx.host)
            continue
        found = Findings()
        _place(name, ctx.host, found, f"{name} itself")
        targets: list[tuple[str, Target]] = []
        for repo in ctx.host.backup_repositories if is_backup_host(ctx.host) else ():
            targets.append(
                (f"repository {repo.repository} (inventory)", parse_location(repo.tool, repo.repository))
            )
        if is_data_host(ctx.host, p.data_roles):
            try:
                client = ctx.get(CLIENT)
            except FactUnavailable as exc:
                found.errors.append(str(exc))
            else:
                targets += [
                    (f"{r.location} ({r.where})", parse_location(r.tool, r.location))
                    for r in client.repositories
                ]
        for what, target in targets:
            _place_target(name, what, target, fleet, ids, found)
        out[name] = found.outcome(found.summary)
    return out


def _place(name: str, host: HostInfo, found: Findings, what: str) -> None:
    inside, country = located(host)
    if inside is None:
        found.errors.append(f"{what}: location_country is not set in the inventory for {name}")
    elif not inside:
        found.failures.append(f"{what}: {name} is located in {country}, outside the EEA")
    else:
        found.fine.append(f"{what}: {name} in {country}")


def _place_target(
    name: str, what: str, target: Target, fleet: Fleet, ids: Identities, found: Findings
) -> None:
    if target.kind == "local":
        return  # on the host itself, judged above
    if target.kind in ("unknown", "object") or not target.host:
        found.failures.append(
            f"{name} stores backups at {what}, which is no inventory host: its location is unknown"
        )
        return
    hosts = ids.hosts(target.host)
    if len(hosts) == 1:
        _place(hosts[0], fleet.hosts[hosts[0]].host, found, f"backup target {what}")
    elif hosts:
        found.errors.append(
            f"backup target {what}: {target.host} designates several hosts ({', '.join(hosts)})"
        )
    elif fleet.outside:
        found.outside.append(
            f"backup target {what}: {target.host} is no scanned host "
            f"(outside this scan: {', '.join(fleet.outside)})"
        )
    else:
        found.failures.append(
            f"{name} stores backups at {what}: {target.host} is no inventory host, its location is unknown"
        )
