"""Backups: what the backup tools say about their repositories, and who could rewrite them.

On a backup host, the repositories its inventory entry declares (``backup_repositories``) are listed with the
tool itself, read-only: ``restic snapshots --no-lock --no-cache`` and ``borg list --bypass-lock``. On a data
host, what a backup configuration names (repositories, whether a password is configured) and the fingerprints
of the SSH keys it holds are derived ON the host: no password, passphrase or private key leaves it. On a
backup host, the SSH keys its daemon accepts (with their options) tell whether a data host's key can only
append (``borg serve --append-only``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from hds_compliance.facts.base import Fact, FactError, check_path, quote
from hds_compliance.model import REDACTION_MARK, BackupRepository, Capture

# ------------------------------------------------------------------------------------- repository listings


@dataclass(frozen=True)
class Snapshot:
    """One successful backup in a repository: a restic snapshot, or a borg archive that is no checkpoint."""

    hostname: str  # the host the tool recorded (restic --host, borg {hostname}), as written
    time: str  # ISO 8601 in UTC
    name: str  # restic short id, borg archive name

    @property
    def at(self) -> datetime:
        """When the backup was taken."""
        return datetime.fromisoformat(self.time)


@dataclass(frozen=True)
class RepositoryListing:
    """What the backup tool read from one repository: its encryption, its append-only flag, its backups."""

    tool: str
    repository: str
    encryption: str  # restic: "restic" (always encrypted); borg: the mode borg reports ("repokey-blake2"...)
    snapshots: tuple[Snapshot, ...]
    # borg: the repository's own ``append_only`` setting (``None`` when the repository is not a local
    # directory of the host); restic: always ``None`` (only rest-server can make it append-only).
    append_only: bool | None = None


# borg modes by what they protect. Unknown modes are neither: a check cannot tell and says so.
BORG_ENCRYPTED = frozenset(
    {
        "repokey",
        "keyfile",
        "repokey-blake2",
        "keyfile-blake2",
        "repokey-aes-ocb",
        "keyfile-aes-ocb",
        "repokey-chacha20-poly1305",
        "keyfile-chacha20-poly1305",
        "repokey-blake2-aes-ocb",
        "keyfile-blake2-aes-ocb",
        "repokey-blake2-chacha20-poly1305",
        "keyfile-blake2-chacha20-poly1305",
    }
)
BORG_UNENCRYPTED = frozenset({"none", "authenticated", "authenticated-blake2"})


def _utc(text: str, *, naive_is_utc: bool) -> str:
    """A tool's timestamp as ISO 8601 UTC; restic prints nanoseconds, which Python does not read."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    base, fraction, zone = match.groups()
    if zone is None and not naive_is_utc:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    zone = "+00:00" if zone in (None, "Z") else zone
    moment = datetime.fromisoformat(f"{base}.{(fraction or '0')[:6].ljust(6, '0')}{zone}")
    return moment.astimezone(UTC).isoformat()


def _split_arg(arg: str) -> tuple[str, str | None]:
    repository, sep, password_file = arg.rpartition("|")
    if not sep or not repository or "\n" in repository:
        raise ValueError(f"expected 'REPOSITORY|PASSWORD_FILE': {arg!r}")
    if password_file:
        check_path(password_file)
    return repository, password_file or None


@dataclass(frozen=True)
class _RepositoryFact(Fact[RepositoryListing]):
    """A repository of the backup host: ``arg`` is ``REPOSITORY|PASSWORD_FILE`` (the file may be empty)."""

    tool: ClassVar[str]

    def __post_init__(self) -> None:
        _split_arg(self.arg)

    @property
    def repository(self) -> str:
        """Path or URL of the repository, as the tool takes it."""
        return _split_arg(self.arg)[0]

    @property
    def password_file(self) -> str | None:
        """File the tool reads the repository password from (its content never enters a capture)."""
        return _split_arg(self.arg)[1]

    def describe(self) -> str:
        return f"{self.tool} repository {self.repository}"

    def _json(self, capture: Capture, text: str) -> Any:
        if capture.exit_code != 0:
            raise self._fail(capture)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FactError(f"{self.describe()}: output is not JSON ({exc})") from exc


@dataclass(frozen=True)
class ResticSnapshots(_RepositoryFact):
    """The newest snapshot of each host in a restic repository, read without a lock or a cache.

    ``--no-lock`` takes no lock in the repository and ``--no-cache`` writes no cache directory: the
    repository and the host are left byte-identical (tests/test_backup_tools.py proves it on real
    repositories). restic only has encrypted repositories; opening one with its key is the proof.
    """

    kind: ClassVar[str] = "restic"
    tool: ClassVar[str] = "restic"

    def script(self) -> str:
        password = f"RESTIC_PASSWORD_FILE={quote(self.password_file)} " if self.password_file else ""
        return (
            "command -v restic >/dev/null 2>&1 || exit 127; "
            f"{password}restic -r {quote(self.repository)} snapshots --json --no-lock --no-cache "
            "--group-by host --latest 1"
        )

    def parse(self, capture: Capture) -> RepositoryListing:
        groups = self._json(capture, capture.stdout_text())
        snapshots = []
        try:
            for group in groups:
                for item in group["snapshots"]:
                    time = _utc(item["time"], naive_is_utc=False)
                    snapshots.append(Snapshot(item["hostname"], time, item.get("short_id") or item["id"][:8]))
        except (TypeError, KeyError, ValueError) as exc:
            raise FactError(f"{self.describe()}: unexpected snapshot listing ({exc!r})") from exc
        return RepositoryListing("restic", self.repository, "restic", tuple(sorted(snapshots, key=_order)))


def _order(snapshot: Snapshot) -> tuple[str, str, str]:
    return (snapshot.hostname, snapshot.time, snapshot.name)


_CHECKPOINT = re.compile(r"\.checkpoint(\.\d+)?$")


@dataclass(frozen=True)
class BorgArchives(_RepositoryFact):
    """The archives of a borg repository with their host, its encryption mode, and its append-only flag.

    ``--bypass-lock`` takes no lock in the repository. borg also writes to its own cache and security
    directories on every access (lock files, the last manifest seen): the probe points them at a
    private temporary directory it removes, so nothing of the host's changes; the keys directory is the
    user's own (read only) for keyfile repositories. ``TZ=UTC`` makes borg print archive times in UTC
    (it prints local times without a zone). Checkpoint archives (an interrupted backup) are not backups.
    """

    kind: ClassVar[str] = "borg"
    tool: ClassVar[str] = "borg"

    def script(self) -> str:
        repo = quote(self.repository)
        password = (
            f'BORG_PASSCOMMAND="cat {quote(self.password_file)}"; export BORG_PASSCOMMAND; '
            if self.password_file
            else ""
        )
        local = self.repository if self.repository.startswith("/") else None
        append = (
            f"a=$(sed -n 's/^append_only *= *//p' {quote(local + '/config')} 2>/dev/null); "
            if local
            else "a=; "
        )
        return (
            "command -v borg >/dev/null 2>&1 || exit 127; "
            f"{append}"
            'k="${BORG_KEYS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/borg/keys}"; '
            "t=$(mktemp -d) || exit 1; "
            '[ -d "$k" ] || k="$t/keys"; '
            'BORG_KEYS_DIR="$k"; BORG_BASE_DIR="$t"; BORG_CONFIG_DIR="$t/config"; BORG_CACHE_DIR="$t/cache"; '
            'BORG_SECURITY_DIR="$t/security"; BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes; TZ=UTC; '
            "export BORG_KEYS_DIR BORG_BASE_DIR BORG_CONFIG_DIR BORG_CACHE_DIR BORG_SECURITY_DIR "
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK TZ; "
            f"{password}"
            "printf 'append_only %s\\n' \"${a:--}\"; "
            f"borg list --json --bypass-lock --format '{{hostname}}' {repo}; "
            'r=$?; rm -rf "$t"; exit "$r"'
        )

    def parse(self, capture: Capture) -> RepositoryListing:
        head, _, body = capture.stdout_text().partition("\n")
        data = self._json(capture, body)
        flag = head.removeprefix("append_only ").strip() if head.startswith("append_only ") else None
        if flag is None:
            raise FactError(f"{self.describe()}: unexpected output {head[:80]!r}")
        try:
            mode = data["encryption"]["mode"]
            snapshots = [
                Snapshot(item["hostname"], _utc(item["time"], naive_is_utc=True), item["name"])
                for item in data["archives"]
                if not _CHECKPOINT.search(item["name"])
            ]
        except (TypeError, KeyError, ValueError) as exc:
            raise FactError(f"{self.describe()}: unexpected archive listing ({exc!r})") from exc
        append_only = None if flag == "-" else flag.lower() in ("1", "true", "yes")
        return RepositoryListing(
            "borg", self.repository, mode, tuple(sorted(snapshots, key=_order)), append_only
        )


def repository_fact(repo: BackupRepository) -> ResticSnapshots | BorgArchives:
    """The fact listing a repository an inventory entry declares."""
    arg = f"{repo.repository}|{repo.password_file or ''}"
    return ResticSnapshots(arg) if repo.tool == "restic" else BorgArchives(arg)


# ---------------------------------------------------------------------------------- data hosts: clients

# Where backup jobs are configured (borgmatic, restic env files and wrappers, systemd units, cron), and
# which names carry a repository or a credential. Every value is judged on the host by the awk program
# below; only repository locations (with any URL password removed) and the names of credentials leave it.
_CLIENT_FILES = (
    "/etc/borgmatic/config.yaml /etc/borgmatic/*.yaml /etc/borgmatic.d/*.yaml /etc/borgmatic.d/*.yml "
    "/root/.config/borgmatic/config.yaml /root/.config/borgmatic.d/*.yaml "
    "/etc/restic/* /etc/default/restic* /etc/default/borg* "
    "/etc/resticprofile/* /root/.config/resticprofile/* "
    "/etc/systemd/system/*.service /etc/systemd/system/*.service.d/*.conf "
    "/etc/crontab /etc/cron.d/* /etc/cron.hourly/* /etc/cron.daily/* /etc/cron.weekly/* "
    "/var/spool/cron/crontabs/* /var/spool/cron/*"
)

# Records (tab-separated): "repo WHERE TOOL LOCATION", "secret WHERE NAME", "identity WHERE PATH",
# "ref WHERE PATH" (an env file or sourced file to read next), "exec WHERE PATH" (a program a job runs).
_CLIENT_AWK = r"""
function out(kind, a, b) { printf "%s\t%s:%d\t%s%s\n", kind, FILENAME, FNR, a, (b == "" ? "" : "\t" b) }
function clean(v) { sub(/^[^A-Za-z0-9_\/$.~-]+/, "", v); sub(/["\047;)`|&].*$/, "", v); return v }
function base(v) { sub(/.*\//, "", v); return v }
function strip(v,   a, p) {
  if (match(v, /\/\/[^\/@]*@/)) {
    a = substr(v, RSTART + 2, RLENGTH - 3); p = index(a, ":")
    if (p) {
      out("secret", "url-password")
      v = substr(v, 1, RSTART + 1) substr(a, 1, p - 1) "@" substr(v, RSTART + RLENGTH)
    }
  }
  return v
}
function repo(tool, v) { v = clean(v); if (v != "") out("repo", tool, strip(v)) }
function assigned(line, name,   v) {
  if (!match(line, "(^|[^A-Za-z0-9_])" name "[ \t]*[=:][ \t]*")) return ""
  v = substr(line, RSTART + RLENGTH); sub(/^["\047]/, "", v); sub(/[ \t].*$/, "", v); return clean(v)
}
function secrets(list,   a, i, n) { n = split(list, a, " "); for (i = 1; i <= n; i++) names[++ns] = a[i] }
BEGIN {
  secrets("RESTIC_PASSWORD RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_REST_PASSWORD")
  secrets("BORG_PASSPHRASE BORG_PASSCOMMAND BORG_PASSPHRASE_FD BORG_KEY_FILE")
  secrets("AWS_SECRET_ACCESS_KEY B2_ACCOUNT_KEY AZURE_ACCOUNT_KEY GOOGLE_APPLICATION_CREDENTIALS")
  secrets("encryption_passphrase encryption_passcommand")
  secrets("password-file password_file password-command password_command")
}
FNR == 1 { inrep = 0; borgmatic = (FILENAME ~ /borgmatic/) }
/^[ \t]*[#;]/ { next }
{
  line = $0
  if (borgmatic) {
    ind = match(line, /[^ \t]/) - 1
    if (inrep && ind >= 0 && (ind < repind || (ind == repind && line !~ /^[ \t]*-/))) inrep = 0
    if (inrep) {
      v = line; sub(/^[ \t]*(-[ \t]+)?/, "", v)
      if (v ~ /^path:/) { sub(/^path:[ \t]*/, "", v); repo("borg", v) }
      else if (line ~ /^[ \t]*-[ \t]/ && v !~ /^[A-Za-z_]+:([ \t]|$)/) repo("borg", v)
    }
    if (line ~ /^[ \t]*repositories:[ \t]*$/) { inrep = 1; repind = ind }
    else if (line ~ /^[ \t]*repositories:[ \t]*\[/) {
      v = line; sub(/^[^\[]*\[/, "", v); sub(/\].*$/, "", v); n = split(v, items, ",")
      for (i = 1; i <= n; i++) repo("borg", items[i])
    }
  } else if (line ~ /^[ \t]*repository[ \t]*[=:]/) repo("restic", assigned(line, "repository"))
  if ((v = assigned(line, "RESTIC_REPOSITORY")) != "") repo("restic", v)
  if ((v = assigned(line, "BORG_REPO")) != "") repo("borg", v)
  if ((v = assigned(line, "RESTIC_REPOSITORY_FILE")) != "") {
    if ((getline r < v) > 0) repo("restic", r); else out("secret", "unreadable-repository-file")
    close(v)
  }
  for (i = 1; i <= ns; i++) if (assigned(line, names[i]) != "") out("secret", names[i])
  if ((v = assigned(line, "EnvironmentFile")) != "") { sub(/^-/, "", v); out("ref", v) }
  n = split(line, tok, /[ \t]+/); tool = ""
  for (i = 1; i <= n; i++) {
    t = tok[i]; sub(/^[A-Za-z]+=/, "", t); t = clean(t)
    if ((t == "." || t == "source") && i < n) out("ref", clean(tok[i + 1]))
    if (t ~ /^\//) out("exec", t)
    b = base(t)
    if (b == "restic" || b == "borg") { tool = b; continue }
    if ((t == "-i" || tolower(t) == "identityfile") && i < n) out("identity", clean(tok[i + 1]))
    else if (t ~ /^-i\//) out("identity", substr(t, 3))
    if (tool == "restic") {
      if ((t == "-r" || t == "--repo") && i < n) repo("restic", tok[i + 1])
      else if (t ~ /^--repo=/) repo("restic", substr(t, 8))
      else if (t == "-p" || t == "--password-file" || t == "--password-command") out("secret", t)
      else if (t == "--repository-file") out("secret", t)
    } else if (tool == "borg") {
      if (index(t, "::") > 1) repo("borg", substr(t, 1, index(t, "::") - 1))
      else if (t ~ /^ssh:\/\//) repo("borg", t)
    }
  }
}
"""


# The job's shell, kept readable: @AWK@ and @FILES@ are filled in by BackupClientConfig.script().
_CLIENT_SH = r"""A='@AWK@'
nl='
'; t=$(printf '\t'); IFS=$nl; todo=; seen=$nl; ids=
for f in @FILES@; do
  case "${f##*/}" in *pass*|*secret*|*token*|*.key|*.pem) continue;; esac  # the secrets themselves
  [ -f "$f" ] && todo="$todo$f$nl"
done
set -f
for pass in 1 2 3; do
  files=
  for f in $todo; do
    case "$seen" in *"$nl$f$nl"*) continue;; esac; seen="$seen$f$nl"
    if [ -r "$f" ]; then files="$files$f$nl"; printf 'file\t%s\n' "$f"
    else printf 'unreadable\t%s\n' "$f"; fi
  done
  [ -n "$files" ] || break
  out=$(awk "$A" $files) || exit 1; todo=
  for r in $out; do
    k=${r%%"$t"*}; p=${r##*"$t"}
    case "$k" in
      ref) [ -f "$p" ] && todo="$todo$p$nl";;
      exec) [ -f "$p" ] && [ -x "$p" ] && grep -Iq . "$p" 2>/dev/null && todo="$todo$p$nl";;
      identity) ids="$ids$p$nl";;
      *) printf '%s\n' "$r";;
    esac
  done
done
for h in $(awk -F: '$6 ~ /^\// {print $6}' /etc/passwd | sort -u); do
  [ -d "$h/.ssh" ] || continue
  [ -x "$h/.ssh" ] || { printf 'unreadable\t%s\n' "$h/.ssh"; continue; }
  set +f; for f in "$h"/.ssh/*; do [ -f "$f" ] && ids="$ids$f$nl"; done; set -f
done
for k in $(printf '%s' "$ids" | sort -u); do
  [ -f "$k" ] || continue
  [ -r "$k" ] || { printf 'unreadable\t%s\n' "$k"; continue; }
  grep -q -e '-----BEGIN .*PRIVATE KEY-----' "$k" || continue
  if l=$(ssh-keygen -l -f "$k" </dev/null 2>/dev/null); then l=${l#* }; l=${l%% *}; else l=-; fi
  printf 'sshkey\t%s\t%s\n' "$k" "$l"
done
exit 0"""


@dataclass(frozen=True)
class ClientRepository:
    """A repository a backup job of the host writes to, and where it is configured (file:line)."""

    tool: str
    location: str
    where: str


@dataclass(frozen=True)
class HeldKey:
    """An SSH private key the host holds: its file and public fingerprint (``None``: cannot be computed)."""

    path: str
    fingerprint: str | None


@dataclass(frozen=True)
class BackupClient:
    """What a host could use to write backups: repositories, credential names, SSH keys.

    ``secrets`` are (where, name) of configured passwords or keys, never their values; ``files`` are the
    configuration files read, ``unreadable`` those the probe could not read.
    """

    repositories: tuple[ClientRepository, ...]
    secrets: tuple[tuple[str, str], ...]
    keys: tuple[HeldKey, ...]
    files: tuple[str, ...]
    unreadable: tuple[str, ...]


@dataclass(frozen=True)
class BackupClientConfig(Fact[BackupClient]):
    """Backup jobs configured on a host and the SSH keys it holds, derived on the host.

    Read: borgmatic and resticprofile configurations, restic/borg environment files, systemd units and
    cron tables, then (up to three levels) the environment files they load and the scripts they run.
    Each SSH private key under an account's ``~/.ssh`` or named with ``-i``/``IdentityFile`` is reduced
    to its fingerprint by ``ssh-keygen -l`` (which reads the public half only). Files whose name says
    they hold a secret (``*pass*``, ``*secret*``, ``*token*``, ``*.key``, ``*.pem``) are never read.
    """

    kind: ClassVar[str] = "backup-client"
    arg: str = ""

    def script(self) -> str:
        return _CLIENT_SH.replace("@AWK@", _CLIENT_AWK.strip()).replace("@FILES@", _CLIENT_FILES)

    def parse(self, capture: Capture) -> BackupClient:
        if capture.exit_code != 0:
            raise self._fail(capture)
        repos: list[ClientRepository] = []
        secrets: list[tuple[str, str]] = []
        keys: dict[str, HeldKey] = {}
        files: list[str] = []
        unreadable: list[str] = []
        for line in capture.stdout_text().splitlines():
            fields = line.split("\t")
            kind = fields[0]
            if kind == "repo" and len(fields) == 4:
                repos.append(ClientRepository(fields[2], fields[3], fields[1]))
            elif kind == "secret" and len(fields) == 3:
                secrets.append((fields[1], fields[2]))
            elif kind == "sshkey" and len(fields) == 3:
                keys[fields[1]] = HeldKey(fields[1], None if fields[2] == "-" else fields[2])
            elif kind == "file" and len(fields) == 2:
                files.append(fields[1])
            elif kind == "unreadable" and len(fields) == 2:
                unreadable.append(fields[1])
            else:
                raise FactError(f"{self.describe()}: unexpected line {line[:80]!r}")
        return BackupClient(
            repositories=tuple(dict.fromkeys(repos)),
            secrets=tuple(dict.fromkeys(secrets)),
            keys=tuple(keys[k] for k in sorted(keys)),
            files=tuple(files),
            unreadable=tuple(unreadable),
        )

    def describe(self) -> str:
        return "backup configuration and SSH keys of the host"


# ------------------------------------------------------------------------------ backup hosts: SSH access

_KEY_TYPE = re.compile(
    r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-\S+@openssh\.com|\S+-cert-v01@openssh\.com)$"
)


@dataclass(frozen=True)
class AuthorizedKey:
    """One key an account accepts (a line of an authorized_keys file), with its options."""

    user: str
    where: str  # file:line
    fingerprint: str  # SHA256:... as ssh-keygen -l prints it
    options: tuple[str, ...]
    command: str | None  # the forced command, if any

    def borg_serve(self) -> tuple[str, ...] | None:
        """Arguments given to ``borg serve`` when the forced command runs it, else ``None``."""
        if self.command is None:
            return None
        try:
            words = shlex.split(self.command)
        except ValueError:
            return None
        for i, word in enumerate(words[:-1]):
            if word.rsplit("/", 1)[-1] in ("borg", "borg1", "borgbackup") and words[i + 1] == "serve":
                rest = words[i + 2 :]
                stop = next((j for j, w in enumerate(rest) if w in ("&&", "||", ";", "|")), len(rest))
                return tuple(rest[:stop])
        return None


def fingerprint(blob: str) -> str:
    """SHA-256 fingerprint of a public key (the base64 field of a key line), as ssh-keygen prints it."""
    digest = hashlib.sha256(base64.b64decode(blob, validate=True)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _options(text: str) -> list[str]:
    """Split an authorized_keys options field at commas outside double quotes."""
    out, current, quoted, i = [], "", False, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            out.append(current)
            current = ""
        else:
            current += char
        i += 1
    if quoted:
        raise ValueError("unterminated quote")
    return [*out, current]


def parse_key_line(user: str, where: str, line: str) -> AuthorizedKey | None:
    """A key line as sshd reads it (options, type, base64, comment); ``None`` if sshd would skip it."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    options: list[str] = []
    words = text.split(None, 1)
    if not _KEY_TYPE.match(words[0]):
        # The options field ends at the first blank outside double quotes.
        quoted, end = False, len(text)
        for i, char in enumerate(text):
            if char == '"' and (i == 0 or text[i - 1] != "\\"):
                quoted = not quoted
            elif char in " \t" and not quoted:
                end = i
                break
        try:
            options = _options(text[:end])
        except ValueError:
            return None
        words = text[end:].split(None, 1)
        if not words:
            return None
    rest = " ".join(words).split()
    if len(rest) < 2 or not _KEY_TYPE.match(rest[0]):
        return None
    try:
        print_ = fingerprint(rest[1])
    except ValueError:
        return None
    command = None
    for option in options:
        name, _, value = option.partition("=")
        if name.lower() == "command" and value.startswith('"') and value.endswith('"') and len(value) >= 2:
            command = value[1:-1].replace('\\"', '"')
    return AuthorizedKey(user, where, print_, tuple(options), command)


@dataclass(frozen=True)
class SshAccess:
    """The keys the host's SSH daemons accept, per account, and what the scan cannot enumerate.

    ``sshd`` is False when no SSH daemon is installed (no SSH path at all). ``unenumerable`` lists the
    settings through which more keys could be accepted than the files show (``AuthorizedKeysCommand``,
    ``TrustedUserCAKeys``); ``unreadable`` are key files the probe could not read and key lines whose
    text the scan redacted (a secret in an ``environment=`` option): what they allow is unknown.
    """

    sshd: bool
    keys: tuple[AuthorizedKey, ...]
    unenumerable: tuple[str, ...]
    unreadable: tuple[str, ...]


# Listening daemons only: session processes are titled "sshd: user@tty" or "sshd: user [priv]".
_AUTHORIZED_SH = r"""command -v sshd >/dev/null 2>&1 || { echo nosshd; exit 0; }
nl='
'; cfgs=
for f in $(grep -alx sshd /proc/[0-9]*/comm 2>/dev/null); do
  p=${f%/comm}; c=$(tr '\000' ' ' < "$p/cmdline" 2>/dev/null) || continue
  case "$c" in "sshd: "*@*|"sshd: "*"[priv]"*|"sshd: "*"[net]"*|"") continue;; esac
  c=$(printf '%s\n' "$c" | sed -n 's/.* -f *\([^ ]*\).*/\1/p'); c=${c:-/etc/ssh/sshd_config}
  case "$cfgs" in *"$nl$c$nl"*) ;; *) cfgs="$cfgs$nl$c$nl";; esac
done
pats=; IFS=$nl
for c in ${cfgs:-/etc/ssh/sshd_config}; do
  o=$(sshd -T -f "$c" 2>&1) || { printf '%s\n' "$o" >&2; exit 1; }
  printf '%s\n' "$o" | awk -v c="$c" '($1 == "authorizedkeyscommand" || $1 == "trustedusercakeys") &&
    $2 != "none" { print "unenumerable\t" c "\t" $0 }'
  pats="$pats $(printf '%s\n' "$o" | awk '$1 == "authorizedkeysfile" { $1 = ""; print }')"
done
awk -F: -v pats="$pats" '{ n = split(pats, p, " "); for (i = 1; i <= n; i++) { f = p[i]
  gsub(/%%/, "\001", f); gsub(/%u/, $1, f); gsub(/%h/, $6, f); gsub(/%U/, $3, f); gsub(/\001/, "%", f)
  if (f !~ /^\//) f = $6 "/" f; print $1 "\t" f } }' /etc/passwd | sort -u |
while IFS=$(printf '\t') read -r u f; do
  [ -e "$f" ] || continue
  [ -r "$f" ] || { printf 'unreadable\t%s\t%s\n' "$u" "$f"; continue; }
  awk -v u="$u" 'NF && $1 !~ /^#/ { print "key\t" u "\t" FILENAME ":" FNR "\t" $0 }' "$f"
done"""


@dataclass(frozen=True)
class SshAuthorizedKeys(Fact[SshAccess]):
    """Every account's authorized keys, in the files the running SSH daemons read.

    The files come from ``sshd -T`` on the configuration of each listening daemon (its ``-f``, or
    /etc/ssh/sshd_config), with ``%h``, ``%u``, ``%U`` and ``%%`` expanded for each account of /etc/passwd.
    Public keys are not secrets; each line is kept whole so its options are read as sshd reads them.
    """

    kind: ClassVar[str] = "ssh-authorized"
    arg: str = ""

    def script(self) -> str:
        return _AUTHORIZED_SH

    def parse(self, capture: Capture) -> SshAccess:
        if capture.exit_code != 0:
            raise self._fail(capture)
        text = capture.stdout_text()
        if text.strip() == "nosshd":
            return SshAccess(False, (), (), ())
        keys, unenumerable, unreadable = [], [], []
        for line in text.splitlines():
            fields = line.split("\t", 3)
            if fields[0] == "key" and len(fields) == 4 and REDACTION_MARK in fields[3]:
                unreadable.append(f"{fields[2]} (redacted: its options cannot be read)")
            elif fields[0] == "key" and len(fields) == 4:
                key = parse_key_line(fields[1], fields[2], fields[3])
                if key is not None:
                    keys.append(key)
            elif fields[0] == "unenumerable" and len(fields) == 3:
                unenumerable.append(f"{fields[2]} ({fields[1]})")
            elif fields[0] == "unreadable" and len(fields) == 3:
                unreadable.append(fields[2])
            elif line.strip():
                raise FactError(f"{self.describe()}: unexpected line {line[:80]!r}")
        return SshAccess(True, tuple(keys), tuple(dict.fromkeys(unenumerable)), tuple(unreadable))

    def describe(self) -> str:
        return "SSH keys the host's daemons accept"
