"""Packages: what is installed, where packages come from, what updates the cached metadata knows of.

Every snippet here reads only. apt is told not to build its binary cache on disk
(``Dir::Cache::pkgcache=``), not to write its planner log (``Dir::Log::Planner=``, which ``apt-get -s``
otherwise rewrites in /var/log/apt) and not to lock; no ``apt-get update`` ever runs. dnf always writes its
logs, a metadata lock file and its cache state, even with ``-C``: it runs in a private mount namespace where
those paths are throw-away overlays, or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.facts.framed import FRAMES_SH, framed_output, parts
from hds_compliance.model import Capture

# Options that keep apt from writing anything: its binary caches, the solver/planner logs, its locks.
APT_READ_ONLY = (
    "-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Dir::Log::Planner= -o Dir::Log::Solver= "
    "-o Debug::NoLocking=true"
)
_TRUE = {"yes", "true", "with", "on", "enable"}
_FALSE = {"no", "false", "without", "off", "disable"}


def apt_bool(value: str) -> bool | None:
    """A value as apt's StringToBool reads it (``yes``, ``true``, ``on``, a non-zero number...)."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if re.fullmatch(r"-?\d+", text):
        return int(text) != 0
    return None


# ------------------------------------------------------------------------------------------- apt config


@dataclass(frozen=True)
class AptConfig:
    """apt's configuration as ``apt-config dump`` resolves it (apt.conf, apt.conf.d in order, last wins)."""

    values: dict[str, str]
    lists: dict[str, list[str]]

    def get(self, key: str) -> str | None:
        """Value of an option (case-insensitive, as apt reads its keys), ``None`` if unset."""
        return self.values.get(key.lower())

    def flag(self, key: str) -> bool | None:
        """An option read as a boolean, ``None`` when unset or not a boolean."""
        value = self.get(key)
        return None if value is None else apt_bool(value)

    def items(self, key: str) -> list[str]:
        """Entries of a list option (``Unattended-Upgrade::Origins-Pattern``)."""
        return self.lists.get(key.lower(), [])


_DUMP_RE = re.compile(r'^(\S+?)(::)? "(.*)";$')


@dataclass(frozen=True)
class AptConfigDump(Fact[AptConfig | None]):
    """apt's effective configuration (``apt-config dump``); ``None`` where apt is not installed."""

    kind: ClassVar[str] = "apt-config"
    arg: str = ""

    def script(self) -> str:
        return f"command -v apt-config >/dev/null 2>&1 || exit {ABSENT}; apt-config dump"

    def parse(self, capture: Capture) -> AptConfig | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        values: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        for line in capture.stdout_text().splitlines():
            match = _DUMP_RE.match(line.strip())
            if match is None:
                continue
            key, is_item, value = match.group(1).lower(), match.group(2), match.group(3)
            if is_item:
                lists.setdefault(key, []).append(value)
            else:
                values[key] = value
        if not values:
            raise FactError(f"{self.describe()}: apt-config dump printed no option")
        return AptConfig(values=values, lists=lists)

    def describe(self) -> str:
        return "apt configuration (apt-config dump)"


# ------------------------------------------------------------------------------------------ apt sources


@dataclass(frozen=True)
class AptEntry:
    """One source entry apt reads: ``file:line`` (one-line format) or ``file:stanza`` (deb822)."""

    ref: str
    type: str
    uri: str
    suite: str

    @property
    def file(self) -> str:
        """The file holding the entry."""
        return self.ref.rsplit(":", 1)[0]

    @property
    def index(self) -> int:
        """Line number (one-line format) or stanza number (deb822) in the file."""
        return int(self.ref.rsplit(":", 1)[1])


@dataclass(frozen=True)
class AptSourceFiles:
    """The source entries apt itself reads (``apt-get indextargets``) and the files that hold them."""

    entries: list[AptEntry]
    files: dict[str, bytes | None]


@dataclass(frozen=True)
class AptSources(Fact[AptSourceFiles | None]):
    """apt's sources: which entries apt reads, with the text of every sources file in its directories.

    apt decides which files count (``.list`` and ``.sources`` with plain names), which entries are live
    (not commented out, no ``Enabled: no``) and where the files are (``Dir::Etc::sourcelist`` and
    ``sourceparts``); the entries come from apt itself, the options of each are read from its file.
    """

    kind: ClassVar[str] = "apt-sources"
    arg: str = ""

    def script(self) -> str:
        fmt = "$(SOURCESENTRY)\t$(TARGET_OF)\t$(REPO_URI)\t$(RELEASE)"
        unquote = "sed -n \"s/^[A-Z]='\\([^']*\\)'\\$/\\1/p\""
        return (
            f"command -v apt-get >/dev/null 2>&1 || exit {ABSENT}; {FRAMES_SH}; "
            f"L=$(apt-config shell L Dir::Etc::sourcelist/f | {unquote}) || exit 1; "
            f"P=$(apt-config shell P Dir::Etc::sourceparts/d | {unquote}) || exit 1; "
            f"t=$(apt-get indextargets --no-release-info --format '{fmt}') || exit 1; "
            'part entries "$(printf \'%s\\n\' "$t" | sort -u)"; '
            'file "$L"; for f in "${P%/}"/*; do file "$f"; done'
        )

    def parse(self, capture: Capture) -> AptSourceFiles | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        [listing] = parts(self, frames, "entries")
        entries = []
        for line in listing.text().splitlines():
            fields = line.split("\t")
            if len(fields) == 4 and re.search(r":\d+$", fields[0]):
                entries.append(AptEntry(*fields))
            elif line.strip():
                raise FactError(f"{self.describe()}: unexpected indextargets line {line!r}")
        files = {f.name: f.data for f in frames if f.name != "entries"}
        return AptSourceFiles(entries=entries, files=files)

    def describe(self) -> str:
        return "apt sources"


# ----------------------------------------------------------------------------------- apt pending updates


@dataclass(frozen=True)
class AptOrigin:
    """A package index apt uses (``apt-cache policy``): its priority and release fields (o, a, n, l...)."""

    priority: int
    index: str
    release: dict[str, str]

    @property
    def security(self) -> bool:
        """Whether the index is a security archive (label, suite or codename says so)."""
        return any("security" in self.release.get(k, "").lower() for k in ("l", "a", "n"))


@dataclass(frozen=True)
class AptUpgrade:
    """An installed package whose candidate version (pins applied) is newer, with the suites it comes from."""

    package: str
    installed: str | None
    version: str
    origins: list[str]

    @property
    def security(self) -> bool:
        """Whether one of its suites is a security archive (``bookworm-security``, ``jammy-security``)."""
        return any("security" in origin.lower() for origin in self.origins)


@dataclass(frozen=True)
class AptPending:
    """What apt's cached metadata offers: the indexes in use, installed packages with a newer candidate."""

    origins: list[AptOrigin]
    upgrades: list[AptUpgrade]
    summary: str


# "name/suite1,suite2 version arch [upgradable from: old]" (apt list --upgradable)
_UPGRADABLE_RE = re.compile(r"^([^/\s]+)/(\S+) (\S+) (\S+) \[upgradable from: ([^\]]+)\]$")
_POLICY_INDEX_RE = re.compile(r"^\s*(-?\d+) (\S.*)$")


@dataclass(frozen=True)
class AptPendingUpdates(Fact[AptPending | None]):
    """Installed packages with a newer candidate in the metadata already on the host (``apt list
    --upgradable``), and the indexes in use (``apt-cache policy``).

    Nothing is downloaded and nothing is written (see the module notes). The candidate is apt's own, pins
    applied; held packages and phased updates are listed: a held package that has a security fix is still
    exposed. A dist-upgrade simulation would say the same for installed packages at four times the cost
    (its resolver), which a scan of every host pays.
    """

    kind: ClassVar[str] = "apt-upgrade"
    arg: str = ""

    def script(self) -> str:
        return (
            f"command -v apt-get >/dev/null 2>&1 || exit {ABSENT}; {FRAMES_SH}; "
            f"p=$(apt-cache {APT_READ_ONLY} policy) || exit 1; "
            f"u=$(apt {APT_READ_ONLY} -o Apt::Cmd::Disable-Script-Warning=true list --upgradable) || exit 1; "
            'part policy "$p"; part upgradable "$u"'
        )

    def parse(self, capture: Capture) -> AptPending | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        policy, listing = parts(self, frames, "policy", "upgradable")
        origins: list[AptOrigin] = []
        current: tuple[int, str] | None = None
        for line in policy.text().splitlines():
            if line.startswith("Pinned packages:"):
                break
            index = _POLICY_INDEX_RE.match(line)
            if index and not line.strip().startswith(("release", "origin")):
                current = (int(index.group(1)), index.group(2).strip())
            elif line.strip().startswith("release ") and current is not None:
                fields = dict(
                    item.split("=", 1) for item in line.strip()[len("release ") :].split(",") if "=" in item
                )
                origins.append(AptOrigin(priority=current[0], index=current[1], release=fields))
        lines = listing.text().splitlines()
        if not lines or not lines[0].startswith("Listing"):
            raise FactError(f"{self.describe()}: apt list printed no 'Listing...' line")
        upgrades = []
        for line in lines[1:]:
            match = _UPGRADABLE_RE.match(line.strip())
            if match is None:
                raise FactError(f"{self.describe()}: unexpected line {line!r}")
            package, suites, version, _arch, installed = match.groups()
            upgrades.append(AptUpgrade(package, installed, version, suites.split(",")))
        summary = f"{len(upgrades)} installed package(s) with a newer candidate"
        return AptPending(origins=origins, upgrades=upgrades, summary=summary)

    def describe(self) -> str:
        return "pending apt upgrades (apt list --upgradable)"


# ----------------------------------------------------------------------------------- dnf pending updates


@dataclass(frozen=True)
class DnfAdvisory:
    """A security advisory dnf lists for an installed package (``updateinfo list --security``)."""

    advisory: str
    severity: str
    package: str


@dataclass(frozen=True)
class DnfPending:
    """Enabled repositories, which of them carry advisories in the cache, and pending security advisories."""

    repos: list[str]
    updateinfo: list[str]
    advisories: list[DnfAdvisory]


# Run rpm and dnf where they cannot leave a trace: a private mount namespace, a tmpfs on /var/log (dnf's
# logs), overlays on dnf's cache and state and on the rpm database (dnf's metadata lock and
# expired_repos.json; the -shm file every sqlite reader of the rpm database writes to).
_PRIVATE_RPM = (
    "mount --make-rprivate / && mount -t tmpfs -o size=64m,mode=0700 hds-probe /var/log || exit 1; "
    'for d in /var/cache/dnf /var/lib/dnf "$(rpm --eval %_dbpath 2>/dev/null)"; do '
    '[ -d "$d" ] || continue; n=$(printf %s "$d" | tr / _); mkdir -p "/var/log/$n.u" "/var/log/$n.w"; '
    'mount -t overlay hds-probe -o "lowerdir=$d,upperdir=/var/log/$n.u,workdir=/var/log/$n.w" "$d" '
    "|| exit 1; done; "
)
_NO_UNSHARE = (
    "command -v unshare >/dev/null 2>&1 || { echo 'unshare is missing: rpm and dnf would write to the host' "
    ">&2; exit 1; }"
)


def privately(body: str, tag: str) -> str:
    """``body`` run by sh in a private mount namespace set up by :data:`_PRIVATE_RPM` (a heredoc: the
    snippet may hold any quote)."""
    return f"{_NO_UNSHARE}\nunshare -m sh <<'{tag}'\n{_PRIVATE_RPM}{body}\n{tag}"


@dataclass(frozen=True)
class DnfPendingUpdates(Fact[DnfPending | None]):
    """Security advisories pending from dnf's cache only (``dnf -C``), run so that it writes nothing.

    ``None`` where dnf is not installed, or dpkg manages the host (Debian ships a dnf too). Without
    ``unshare`` (or the right to use it) dnf is not run at all: it would write its logs and lock files.
    """

    kind: ClassVar[str] = "dnf-security"
    arg: str = ""

    def script(self) -> str:
        body = (
            f"{FRAMES_SH}; r=$(dnf -q -C repolist --enabled) || exit 1; "
            "a=$(dnf -q -C updateinfo list --security) || exit 1; "
            'part repos "$r"; part advisories "$a"; '
            'part updateinfo "$(ls -1 /var/cache/dnf/*updateinfo* /var/cache/dnf/*/repodata/*updateinfo* '
            '2>/dev/null)"'
        )
        return (
            f"command -v dnf >/dev/null 2>&1 || exit {ABSENT}; "
            "[ -f /var/lib/dpkg/status ] && { echo 'dpkg manages this host: dnf is not run' >&2; "
            f"exit {ABSENT}; }}; {privately(body, 'HDS_DNF')}"
        )

    def parse(self, capture: Capture) -> DnfPending | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        repo_list, advisory_list, cached_list = parts(self, frames, "repos", "advisories", "updateinfo")
        repos = []
        for line in repo_list.text().splitlines():
            words = line.split()
            if words and words[0] != "repo":  # header "repo id  repo name"
                repos.append(words[0])
        advisories = []
        for line in advisory_list.text().splitlines():
            words = line.split()
            if len(words) == 3:
                advisories.append(DnfAdvisory(*words))
            elif line.strip():
                raise FactError(f"{self.describe()}: unexpected updateinfo line {line!r}")
        cached = [path for path in cached_list.text().splitlines() if path]
        return DnfPending(repos=repos, updateinfo=cached, advisories=advisories)

    def describe(self) -> str:
        return "pending dnf security advisories (dnf -C updateinfo)"


# ------------------------------------------------------------------------------------ metadata freshness


@dataclass(frozen=True)
class IndexFile:
    """A cached repository index and when it was last written (seconds since the epoch)."""

    tool: str
    path: str
    mtime: int


@dataclass(frozen=True)
class PackageIndexes(Fact[list[IndexFile]]):
    """When the package metadata was last refreshed: apt's Release files and update stamp, dnf/yum's repomd.

    apt gives a downloaded Release file the server's modification time, and leaves it alone when the
    server answers "not modified"; ``/var/lib/apt/periodic/update-success-stamp`` is touched after each
    successful periodic update. dnf touches ``repomd.xml`` whenever it checks a repository.
    """

    kind: ClassVar[str] = "pkg-metadata"
    arg: str = ""

    def script(self) -> str:
        return (
            "set -- /var/lib/apt/lists/*Release /var/lib/apt/periodic/update-success-stamp "
            "/var/cache/dnf/*/repodata/repomd.xml /var/cache/yum/*/*/*/repomd.xml "
            "/var/cache/yum/*/*/*/repodata/repomd.xml; "
            'for p do [ -f "$p" ] && { stat -c \'%Y %n\' -- "$p" || exit 1; }; done; exit 0'
        )

    def parse(self, capture: Capture) -> list[IndexFile]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        out = []
        for line in capture.stdout_text().splitlines():
            stamp, _, path = line.partition(" ")
            if not stamp.isdigit():
                raise FactError(f"{self.describe()}: unexpected stat line {line!r}")
            tool = "apt" if path.startswith("/var/lib/apt/") else "dnf" if "/dnf/" in path else "yum"
            out.append(IndexFile(tool=tool, path=path, mtime=int(stamp)))
        return out

    def describe(self) -> str:
        return "package metadata timestamps"


# ------------------------------------------------------------------------------------ installed packages


@dataclass(frozen=True)
class PackageDatabase:
    """Packages whose files are on the host, from dpkg or rpm, by name -> version.

    ``config_only`` are dpkg packages removed but whose configuration files remain (state ``rc``): their
    programs are gone.
    """

    tool: str
    installed: dict[str, str]
    config_only: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InstalledPackages(Fact[PackageDatabase | None]):
    """The package database (``dpkg-query -W``, else ``rpm -qa`` through a private overlay: a reader of
    rpm's sqlite database writes its -shm file); ``None`` if the host has neither."""

    kind: ClassVar[str] = "pkg-installed"
    arg: str = ""

    def script(self) -> str:
        return (
            "if command -v dpkg-query >/dev/null 2>&1 && [ -f /var/lib/dpkg/status ]; then echo dpkg; "
            "dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'; "
            "elif command -v rpm >/dev/null 2>&1; then echo rpm; "
            + privately("rpm -qa --qf 'ii \\t%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'", "HDS_RPM")
            + f"\nelse exit {ABSENT}; fi"
        )

    def parse(self, capture: Capture) -> PackageDatabase | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        tool, _, rows = capture.stdout_text().partition("\n")
        installed: dict[str, str] = {}
        config_only: list[str] = []
        for line in rows.splitlines():
            fields = line.split("\t")
            if len(fields) != 3 or len(fields[0]) < 2:
                raise FactError(f"{self.describe()}: unexpected line {line!r}")
            status, name, version = fields
            # dpkg's second letter is the package state: n(ot-installed) and c(onfig-files) leave no program.
            if status[1] == "c":
                config_only.append(name)
            elif status[1] != "n":
                installed[name] = version
        if tool.strip() not in ("dpkg", "rpm") or not (installed or config_only):
            raise FactError(f"{self.describe()}: no package listed by {tool.strip() or 'the probe'}")
        return PackageDatabase(tool=tool.strip(), installed=installed, config_only=sorted(config_only))

    def describe(self) -> str:
        return "installed packages"
