"""Backup facts against the real tools: restic and borg repositories made here, read through the probe.

Each test builds real repositories (Debian packages restic, borgbackup), runs the facts' own snippets the way
the probe runs them, and judges with the real checks. Read-only is proven, not assumed: the repository tree
and the probe's home and temporary directories are byte-identical after the probe, and no password appears
in any capture. Each "verdict that is true" names, in its docstring, the host state a text match gets wrong.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lab.sshlab import UNSHARE_ARGV

from hds_compliance.check import Context, Fleet, HostInfo, Outcome, registry
from hds_compliance.collect.probe import new_nonce, parse, render
from hds_compliance.evidence.redact import redact
from hds_compliance.facts import Fact
from hds_compliance.facts.backup import BackupClientConfig, SshAuthorizedKeys, repository_fact
from hds_compliance.facts.process_table import ProcessTable
from hds_compliance.model import BackupRepository, Capture, Status

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWORD = "Tr0ub4dor-and-3-horses"  # must never appear in a capture
REGISTRY = registry()
DATA_ROLES = ["database", "storage", "app", "backup"]


def needs(*tools: str) -> None:
    """Skip unless the tools are installed (apt-get install restic borgbackup)."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages restic, borgbackup)")


def utc(text: str) -> datetime:
    """A fixed instant (tests never read the wall clock)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ----------------------------------------------------------------------------------------- repositories


@dataclass
class Repos:
    """Real restic and borg repositories under one directory, with the tools' own state kept apart."""

    root: Path

    def __post_init__(self) -> None:
        for sub in ("data", "home-tool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "data" / "record.txt").write_text("patient 42: blood pressure 12/8\n")
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)

    @property
    def password_file(self) -> Path:
        """The repositories' password file."""
        return self.root / "repo.pw"

    def _env(self, **extra: str) -> dict[str, str]:
        home = str(self.root / "home-tool")
        base = {"PATH": PATH, "HOME": home, "TZ": "UTC", "LC_ALL": "C"}
        return {**base, **extra}

    def run(self, argv: list[str], hostname: str | None = None, **env: str) -> None:
        """A tool command with this set's password; ``hostname`` runs it in a UTS namespace of its own."""
        if hostname is not None:
            argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]
        done = subprocess.run(argv, env=self._env(**env), capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    def restic(self, name: str = "restic") -> Path:
        """A new restic repository."""
        repo = self.root / name
        self.run(["restic", "-r", str(repo), "init", "-q"], RESTIC_PASSWORD_FILE=str(self.password_file))
        return repo

    def restic_backup(self, repo: Path, host: str, time: str | None = None) -> None:
        """A snapshot of the data directory recorded for ``host`` (at ``time``, UTC, if given)."""
        argv = ["restic", "-r", str(repo), "backup", "-q", "--host", host, str(self.root / "data")]
        self.run([*argv, *(["--time", time] if time else [])], RESTIC_PASSWORD_FILE=str(self.password_file))

    def borg(self, mode: str, name: str = "borg") -> Path:
        """A new borg repository with encryption ``mode``."""
        repo = self.root / name
        self.run(["borg", "init", "-e", mode, str(repo)], **self._borg_env())
        return repo

    def borg_backup(self, repo: Path, archive: str, hostname: str, timestamp: str) -> None:
        """An archive created on a host named ``hostname``, dated ``timestamp`` (UTC)."""
        argv = ["borg", "create", "--timestamp", timestamp, f"{repo}::{archive}", str(self.root / "data")]
        self.run(argv, hostname=hostname, **self._borg_env())

    def _borg_env(self) -> dict[str, str]:
        return {
            "BORG_PASSCOMMAND": f"cat {self.password_file}",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        }

    def declared(self, tool: str, repo: Path) -> BackupRepository:
        """How an inventory declares the repository."""
        return BackupRepository(tool=tool, repository=str(repo), password_file=str(self.password_file))


def digest(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root``: type, mode, size, mtime and content hash (what a write would change)."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


# ------------------------------------------------------------------------------------------ the probe


def probe(
    facts: list[Fact[Any]], enter: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> dict[str, Capture]:
    """The facts' own snippets run as the probe runs them (through ``enter``), redacted as a scan does."""
    rendered = render(facts, new_nonce())
    done = subprocess.run(
        [*enter, "sh", "-s"],
        input=rendered.script.encode(),
        capture_output=True,
        timeout=120,
        env=env or {"PATH": PATH, "HOME": "/nonexistent"},
        check=False,
    )
    parsed = parse(rendered, done.stdout, stderr=done.stderr.decode("utf-8", "replace"))
    assert parsed.problem is None, parsed.problem
    return {c.fact: redact(c) for c in parsed.captures}


def nodename(name: str) -> dict[str, Capture]:
    """Identity captures of a host whose node name is ``name`` and that reports no plain address."""
    return {
        "nodename": Capture(fact="nodename", command="uname -n", exit_code=0, stdout=f"{name}\n"),
        "addresses": Capture(fact="addresses", command="ip -o addr show", exit_code=0, stdout="ip\n"),
    }


@dataclass
class Host:
    """A host of a test fleet: inventory data and captures."""

    info: HostInfo
    captures: dict[str, Capture]


def host(name: str, roles: list[str], captures: dict[str, Capture], **data: Any) -> Host:
    """A host with its identity captures (node name = inventory name) and more."""
    info = HostInfo(name=name, connector="ssh", roles=tuple(roles), **data)
    return Host(info, {**nodename(name), **captures})


def judge(check_id: str, params: dict[str, Any], hosts: list[Host], now: str) -> dict[str, Outcome]:
    """A check's outcome for every host, evaluated as the engine does (declared facts only)."""
    spec = REGISTRY[check_id]
    p = spec.validate(params)
    contexts = {
        h.info.name: Context(
            h.info, h.captures, declared=frozenset(f.key for f in spec.facts_for(p, h.info)), now=utc(now)
        )
        for h in hosts
    }
    fleet = Fleet(hosts=contexts, judged=list(contexts))
    if spec.fleet is not None:
        return spec.fleet(p, fleet)
    return {name: spec.func(p, ctx) for name, ctx in contexts.items()}


def no_secret_in(captures: dict[str, Capture]) -> None:
    """The password appears in no command, output or error of any capture."""
    for capture in captures.values():
        assert PASSWORD not in capture.command + capture.stdout_text() + capture.stderr


# --------------------------------------------------------------------------------------- read-only


# ------------------------------------------------------------------------------------ verdicts that are true


def backup_host(declared: list[BackupRepository], env: dict[str, str] | None = None) -> Host:
    """A backup host holding ``declared`` repositories, its facts collected from them by the probe."""
    facts = [repository_fact(r) for r in declared]
    return host("bk1", ["backup"], probe(list(facts), env=env), backup_repositories=tuple(declared))


@dataclass
class Shelf:
    """Repositories made once for the verdict tests, and the backup host's probe of them."""

    repos: Repos
    declared: dict[str, BackupRepository]
    backup_host: Host


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory) -> Shelf:
    """One restic repository and three borg ones (the three kinds of borg protection), probed on a backup
    host whose local time zone is Asia/Tokyo."""
    needs("restic", "borg")
    repos = Repos(tmp_path_factory.mktemp("shelf"))
    restic = repos.restic()
    for hostname, time in (
        ("db1", "2026-01-10 08:00:00"),
        ("db2", "2026-01-08 08:00:00"),
        ("db1.staging", "2026-01-10 09:00:00"),
        ("db10", "2026-01-10 09:00:00"),
        ("pg-primary", "2026-01-10 09:00:00"),
    ):
        repos.restic_backup(restic, hostname, time)
    borg = {mode: repos.borg(mode, f"borg-{mode}") for mode in ("authenticated-blake2", "none", "repokey")}
    repos.borg_backup(borg["authenticated-blake2"], "enc-auth-1", "enc-auth", "2026-01-10T09:00:00")
    repos.borg_backup(borg["none"], "enc-none-1", "enc-none", "2026-01-10T09:00:00")
    repos.borg_backup(borg["repokey"], "web1-2026-01-10", "web2", "2026-01-10T09:00:00")
    declared = {"restic": repos.declared("restic", restic)}
    declared |= {mode: repos.declared("borg", repo) for mode, repo in borg.items()}
    env = {"PATH": PATH, "HOME": "/nonexistent", "TZ": "Asia/Tokyo"}
    return Shelf(repos, declared, backup_host(list(declared.values()), env=env))


# ----------------------------------------------------------------------------------------- read-only


def test_restic_listing_changes_nothing(shelf: Shelf, tmp_path: Path) -> None:
    """restic snapshots --no-lock --no-cache: repository, probe home and TMPDIR stay byte-identical."""
    repo = Path(shelf.declared["restic"].repository)
    home, tmp = tmp_path / "probe-home", tmp_path / "probe-tmp"
    home.mkdir()
    tmp.mkdir()
    before = (digest(repo), digest(home), digest(tmp))
    fact = repository_fact(shelf.declared["restic"])
    captures = probe([fact], env={"PATH": PATH, "HOME": str(home), "TMPDIR": str(tmp)})
    assert (digest(repo), digest(home), digest(tmp)) == before
    no_secret_in(captures)
    listing = fact.parse(captures[fact.key])
    assert "db1" in [s.hostname for s in listing.snapshots]


def test_borg_listing_changes_nothing(shelf: Shelf, tmp_path: Path) -> None:
    """borg list --bypass-lock with a private cache/security dir: the repository, the user's borg
    directories are byte-identical afterwards (borg alone would write its cache and lock files there), and
    the private directory the probe gives borg instead is gone."""
    repo = Path(shelf.declared["repokey"].repository)
    home, tmp = tmp_path / "probe-home", tmp_path / "probe-tmp"
    (home / ".config" / "borg" / "keys").mkdir(parents=True)
    tmp.mkdir()
    before = (digest(repo), digest(home))
    fact = repository_fact(shelf.declared["repokey"])
    captures = probe([fact], env={"PATH": PATH, "HOME": str(home), "TMPDIR": str(tmp)})
    assert (digest(repo), digest(home)) == before
    assert not list(tmp.iterdir()), "the probe's private borg directory is removed"
    no_secret_in(captures)
    listing = fact.parse(captures[fact.key])
    assert (listing.encryption, [s.hostname for s in listing.snapshots]) == ("repokey", ["web2"])


# ----------------------------------------------------------------------------------------- verdicts


RECENT = {"max_age_hours": 26, "data_roles": DATA_ROLES}


def test_recent_is_judged_at_collection_time_not_now(shelf: Shelf) -> None:
    """A snapshot taken 2 h before the backup host was probed passes, one 50 h old fails; the same snapshot
    probed 28 h later fails. Ages count from the backup host's collection time (``ctx.clock()``), never from
    the evaluation's clock, so a certifier re-evaluating the captures later gets the same verdicts."""
    hosts = [shelf.backup_host, host("db1", ["database"], {}), host("db2", ["app"], {})]
    outcomes = judge("fleet.backups_recent", RECENT, hosts, "2026-01-10T10:00:00Z")
    assert outcomes["db1"].status is Status.PASS, outcomes["db1"].message
    assert "2.0 h old" in outcomes["db1"].message
    assert outcomes["db2"].status is Status.FAIL and "50.0 h old" in outcomes["db2"].message
    assert outcomes["bk1"].status is Status.NOT_APPLICABLE
    probed_next_day = judge("fleet.backups_recent", RECENT, hosts, "2026-01-11T12:00:00Z")
    assert probed_next_day["db1"].status is Status.FAIL and "28.0 h old" in probed_next_day["db1"].message


def test_snapshot_host_names_are_matched_whole(shelf: Shelf) -> None:
    """Snapshots of db1.staging and db10 do not cover a db1 whose own backups are stale: a substring search
    for "db1" in the listing passes it. A host whose node name is pg-primary is covered under that name."""
    stale = judge(
        "fleet.backups_recent",
        {**RECENT, "max_age_hours": 1},
        [shelf.backup_host, host("db1", ["database"], {})],
        "2026-01-10T10:00:00Z",
    )
    assert stale["db1"].status is Status.FAIL, stale["db1"].message
    assert "db1 is 2.0 h old" in stale["db1"].message
    db3 = Host(HostInfo(name="db3", connector="ssh", roles=("database",)), nodename("pg-primary"))
    outcomes = judge("fleet.backups_recent", RECENT, [shelf.backup_host, db3], "2026-01-10T10:00:00Z")
    assert outcomes["db3"].status is Status.PASS, outcomes["db3"].message


def test_borg_archive_name_is_not_its_host(shelf: Shelf) -> None:
    """An archive named "web1-..." created on web2 is a backup of web2: borg's own {hostname} decides, not
    the naming convention a match on archive names relies on."""
    hosts = [shelf.backup_host, host("web1", ["app"], {}), host("web2", ["app"], {})]
    outcomes = judge("fleet.backups_recent", RECENT, hosts, "2026-01-10T10:00:00Z")
    assert outcomes["web1"].status is Status.FAIL, outcomes["web1"].message
    assert outcomes["web2"].status is Status.PASS and "web1-2026-01-10" in outcomes["web2"].message


def test_borg_times_are_read_in_utc_whatever_the_zone(shelf: Shelf) -> None:
    """borg prints archive times in local time without a zone: on this backup host (Asia/Tokyo) a naive
    reading dates a backup taken at 09:00 UTC nine hours later. The probe has borg print UTC."""
    fact = repository_fact(shelf.declared["repokey"])
    listing = fact.parse(shelf.backup_host.captures[fact.key])
    assert [s.time for s in listing.snapshots] == ["2026-01-10T09:00:00+00:00"]


def test_borg_without_encryption_fails_whatever_the_word(shelf: Shelf) -> None:
    """borg "authenticated-blake2" signs but does not encrypt: a check looking for a mode other than "none"
    passes it. repokey passes; restic always encrypts."""
    hosts = [shelf.backup_host] + [host(n, ["database"], {}) for n in ("enc-auth", "enc-none", "web2", "db1")]
    outcomes = judge("fleet.backups_encrypted", {"data_roles": DATA_ROLES}, hosts, "2026-01-10T10:00:00Z")
    assert (
        outcomes["enc-auth"].status is Status.FAIL and "authenticated-blake2" in outcomes["enc-auth"].message
    )
    assert outcomes["enc-none"].status is Status.FAIL and "mode none" in outcomes["enc-none"].message
    assert outcomes["web2"].status is Status.PASS and "repokey" in outcomes["web2"].message
    assert outcomes["db1"].status is Status.PASS and "AES-256" in outcomes["db1"].message
    assert outcomes["bk1"].status is Status.FAIL  # the backup host holds clear repositories


def test_a_wrong_password_is_an_error_not_an_empty_repository(shelf: Shelf) -> None:
    """A repository the probe cannot open says nothing about backups: error, never "no backup" (fail) and
    never a pass; the password file's content is not in the error either."""
    wrong = shelf.repos.root / "wrong.pw"
    wrong.write_text("not-the-password\n")
    declared = shelf.declared["restic"].model_copy(update={"password_file": str(wrong)})
    bk = backup_host([declared])
    no_secret_in(bk.captures)
    params = {"max_age_hours": 26, "data_roles": DATA_ROLES}
    outcomes = judge(
        "fleet.backups_recent", params, [bk, host("db1", ["database"], {})], "2026-01-10T10:00:00Z"
    )
    assert outcomes["db1"].status is Status.ERROR and "wrong password" in outcomes["db1"].message


# ------------------------------------------------------------------------------ rest-server arguments


def in_namespace(tmp_path: Path, setup: str, overlays: dict[str, Path] | None = None) -> tuple[str, ...]:
    """A probe prefix entering a private mount and PID namespace: ``overlays`` (real dir -> upper dir)
    are laid over the real directories, then ``setup`` runs (start processes); nothing outside changes."""
    lines = []
    for number, (lower, upper) in enumerate((overlays or {}).items()):
        work = tmp_path / f"overlay-work-{number}"
        work.mkdir(exist_ok=True)
        lines.append(f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {lower}")
    script = " && ".join([*lines, "true"]) + f'\n{setup}\nexec "$@"'
    return (*UNSHARE_ARGV, "sh", "-c", script, "sh")


def rest_servers(tmp_path: Path, *arg_lists: list[str]) -> str:
    """sh starting processes named rest-server with real argument vectors (a copy of python3 that sleeps),
    then waiting until they run."""
    binary = tmp_path / "rest-server"
    shutil.copy("/usr/bin/python3", binary)  # the system one: it finds its library from any path
    starts = [
        " ".join(
            [
                str(binary),
                "-c",
                "'import time; time.sleep(600)'",
                *(f"'{a}'" for a in args),
                ">/dev/null 2>&1 &",
            ]
        )
        for args in arg_lists
    ]
    wait = (
        f"n=0; until [ $(grep -lx rest-server /proc/[0-9]*/comm 2>/dev/null | wc -l) -ge {len(arg_lists)} ] "
        '|| [ "$n" -gt 100 ]; do sleep 0.05; n=$((n + 1)); done'
    )
    return "\n".join([*starts, wait])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--path", "/srv/restic", "--append-only", "--listen", ":8000"], Status.PASS),
        (["--path", "--append-only"], Status.FAIL),
        (["--append-only", "--private-repos", "--append-only=false"], Status.FAIL),
        (["--path", "/srv/restic/--append-only"], Status.FAIL),
    ],
    ids=["append-only", "flag-eaten-as-path-value", "last-flag-wins", "flag-inside-a-path"],
)
def test_rest_server_flags_read_as_its_parser_reads_them(
    tmp_path: Path, args: list[str], expected: Status
) -> None:
    """rest-server's flags as cobra/pflag reads them: "--path --append-only" makes "--append-only" the path,
    "--append-only=false" after "--append-only" turns it off, a path holding the text is no flag. A search
    for "--append-only" in the command line passes all four."""
    fact = ProcessTable("rest-server")
    captures = probe([fact], enter=in_namespace(tmp_path, rest_servers(tmp_path, args)))
    [process] = fact.parse(captures[fact.key])
    assert list(process.argv[-len(args) :]) == args
    outcome = judge(
        "backup.rest_server_append_only", {}, [host("bk1", ["backup"], captures)], "2026-01-10T10:00:00Z"
    )
    assert outcome["bk1"].status is expected, outcome["bk1"].message


# ---------------------------------------------------------------------- who can rewrite a data host's backups


def keypair(directory: Path, name: str) -> tuple[Path, str]:
    """A new ed25519 key pair: the private key file and the public key line."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    key.with_suffix(".pub").unlink()  # the data host keeps only its private key: its fingerprint is derived
    return key, public


def write(path: Path, text: str, mode: int = 0o644) -> None:
    """A file of an overlay's upper directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@dataclass
class PushFleet:
    """A data host that pushes to a borg repository over SSH, and the backup host that accepts its key."""

    tmp: Path
    data_etc: Path
    data_root: Path
    backup_etc: Path
    backup_root: Path
    public: str

    @classmethod
    def make(cls, tmp: Path) -> PushFleet:
        data_etc, data_root, backup_etc, backup_root = (
            tmp / n for n in ("d-etc", "d-root", "b-etc", "b-root")
        )
        for d in (data_etc, data_root, backup_etc, backup_root):
            d.mkdir(parents=True)
        _, public = keypair(data_root / ".ssh", "id_ed25519")
        write(
            data_etc / "borgmatic" / "config.yaml",
            "repositories:\n  - path: ssh://borg@bk1/./db1\n    label: bk1\n"
            f'encryption_passphrase: "{PASSWORD}"\n',
            0o600,
        )
        passwd = Path("/etc/passwd").read_text() + "borg:x:2990:2990:borg:/nonexistent:/bin/sh\n"
        write(backup_etc / "passwd", passwd)
        write(
            backup_etc / "ssh" / "sshd_config.d" / "zz-hds.conf",
            "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n",
        )
        restricted = (
            f'command="borg serve --append-only --restrict-to-repository /srv/borg/db1",restrict {public}\n'
        )
        write(
            backup_etc / "ssh" / "authorized_keys" / "borg", "# db1 pushes here, append-only\n" + restricted
        )
        write(backup_root / ".ssh" / "authorized_keys", f"# disabled: {public}\n#{public}\n")
        return cls(tmp, data_etc, data_root, backup_etc, backup_root, public)

    def hosts(self) -> list[Host]:
        """The data host and the backup host, each probed in its own namespace."""
        client, access = BackupClientConfig(), SshAuthorizedKeys()
        data = probe(
            [client], enter=in_namespace(self.tmp, "", {"/etc": self.data_etc, "/root": self.data_root})
        )
        no_secret_in(data)
        backup = probe(
            [access], enter=in_namespace(self.tmp, "", {"/etc": self.backup_etc, "/root": self.backup_root})
        )
        return [host("db1", ["database"], data), host("bk1", ["backup"], backup)]


def test_a_key_forced_to_borg_serve_append_only_is_out_of_reach(tmp_path: Path) -> None:
    """db1 pushes with a key the backup host forces to "borg serve --append-only"; root's authorized_keys on
    the backup host only holds the key in comments: a search for the key's text there would fail db1."""
    fleet = PushFleet.make(tmp_path)
    hosts = fleet.hosts()
    outcomes = judge("fleet.backups_out_of_reach", {"data_roles": DATA_ROLES}, hosts, "2026-01-10T10:00:00Z")
    assert outcomes["db1"].status is Status.PASS, outcomes["db1"].message
    assert "append-only (/etc/ssh/authorized_keys/borg:2 on bk1)" in outcomes["db1"].message
    serve = judge("backup.borg_serve_append_only", {}, hosts, "2026-01-10T10:00:00Z")
    assert serve["bk1"].status is Status.PASS, serve["bk1"].message


def test_the_same_key_unrestricted_elsewhere_is_a_path_to_rewrite(tmp_path: Path) -> None:
    """The append-only line is there, but sshd also reads root's ~/.ssh/authorized_keys, where the same key
    has no forced command: db1 can log in to the backup host as root. A check that finds "--append-only"
    next to db1's key passes it."""
    fleet = PushFleet.make(tmp_path)
    write(fleet.backup_root / ".ssh" / "authorized_keys", fleet.public + "\n")
    outcomes = judge(
        "fleet.backups_out_of_reach", {"data_roles": DATA_ROLES}, fleet.hosts(), "2026-01-10T10:00:00Z"
    )
    assert outcomes["db1"].status is Status.FAIL, outcomes["db1"].message
    assert (
        "logs in to bk1 as root (/root/.ssh/authorized_keys:1) with no forced command"
        in outcomes["db1"].message
    )


def test_backup_client_reads_what_the_job_loads(tmp_path: Path) -> None:
    """The repository is in an environment file a systemd unit loads (EnvironmentFile=-...), beside a
    commented-out local repository: the fact finds the loaded one, never the comment, removes the URL's
    password, and names the credentials without their values."""
    etc = tmp_path / "etc"
    write(
        etc / "systemd" / "system" / "restic-backup.service",
        "[Service]\nEnvironmentFile=-/etc/default/db-backup\n"
        "ExecStart=/usr/bin/restic backup /var/lib/postgresql\n",
    )
    write(
        etc / "default" / "db-backup",
        f"#RESTIC_REPOSITORY=/mnt/local-copy\nRESTIC_REPOSITORY=rest:https://db1:{PASSWORD}@bk1:8000/db1/\n"
        f"RESTIC_PASSWORD='{PASSWORD}'\n",
        0o600,
    )
    fact = BackupClientConfig()
    captures = probe([fact], enter=in_namespace(tmp_path, "", {"/etc": etc}))
    no_secret_in(captures)
    client = fact.parse(captures[fact.key])
    assert [(r.tool, r.location, r.where) for r in client.repositories] == [
        ("restic", "rest:https://db1@bk1:8000/db1/", "/etc/default/db-backup:2")
    ]
    assert {name for _, name in client.secrets} == {"url-password", "RESTIC_PASSWORD"}
    data = host("db1", ["database"], captures)
    for args, expected in (
        (["--append-only", "--private-repos"], Status.PASS),
        (["--private-repos"], Status.FAIL),
    ):
        bk = host(
            "bk1",
            ["backup"],
            probe([ProcessTable("rest-server")], enter=in_namespace(tmp_path, rest_servers(tmp_path, args))),
        )
        outcome = judge(
            "fleet.backups_out_of_reach", {"data_roles": DATA_ROLES}, [data, bk], "2026-01-10T10:00:00Z"
        )
        assert outcome["db1"].status is expected, outcome["db1"].message


def test_a_redacted_key_line_is_an_error_never_a_pass(tmp_path: Path) -> None:
    """The append-only line also carries environment="RESTIC_PASSWORD=...": the scan redacts the secret, and
    with it the line's grammar cannot be trusted. Judging the altered text would pass db1 (the command is
    still there); the verdict is error, never pass, and the secret is not in the capture."""
    fleet = PushFleet.make(tmp_path)
    line = (
        f'environment="RESTIC_PASSWORD={PASSWORD}",command="borg serve --append-only '
        f'--restrict-to-repository /srv/borg/db1",restrict {fleet.public}\n'
    )
    write(fleet.backup_etc / "ssh" / "authorized_keys" / "borg", line)
    hosts = fleet.hosts()
    [access] = [c for k, c in hosts[1].captures.items() if k == "ssh-authorized"]
    assert access.redactions and PASSWORD not in access.stdout_text()
    outcomes = judge("fleet.backups_out_of_reach", {"data_roles": DATA_ROLES}, hosts, "2026-01-10T10:00:00Z")
    assert outcomes["db1"].status is Status.ERROR, outcomes["db1"].message
    assert "redacted" in outcomes["db1"].message
    serve = judge("backup.borg_serve_append_only", {}, hosts, "2026-01-10T10:00:00Z")
    assert serve["bk1"].status is Status.ERROR, serve["bk1"].message
