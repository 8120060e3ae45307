"""Packages: what is installed, where packages come from, what updates the cached metadata knows of.

Every snippet here reads only. apt's own programs are not run over the lists (each run would build apt's
whole cache): the apt facts read the sources, the Release files, the security Packages indexes and the
preferences, and :mod:`hds_compliance.facts.aptlists` does what apt does with them; only ``apt-config``
(the configuration) and ``apt-helper cat-file`` (decompression) run. No ``apt-get update`` ever runs. dnf
always writes its logs, a metadata lock file and its cache state, even with ``-C``: it runs in a private
mount namespace where those paths are throw-away overlays, or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hds_compliance.facts.aptlists import (
    AptEntry,
    Pin,
    check_conflicts,
    files_read,
    parse_preferences,
    parse_sources,
    string_to_bool,
)
from hds_compliance.facts.base import ABSENT, JOINT_ABSENT_SH, JOINT_SH, Fact, FactError, in_shell_sh
from hds_compliance.facts.framed import FRAMES_SH, Frame, framed_output, parts
from hds_compliance.model import Capture

_TRUE = {"yes", "true", "with", "on", "enable"}
_FALSE = {"no", "false", "without", "off", "disable"}


def apt_bool(value: str) -> bool | None:
    """A loose boolean, as apt's periodic job reads ``APT::Periodic`` values (a number of days: any
    non-zero number is on) or a word (``yes``, ``true``, ``on``...). apt's own options are read with
    :func:`~hds_compliance.facts.aptlists.string_to_bool`."""
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
        """An option read as apt's FindB reads it, ``None`` when unset or not a boolean."""
        value = self.get(key)
        return None if value is None else string_to_bool(value)

    def items(self, key: str) -> list[str]:
        """Entries of a list option (``Unattended-Upgrade::Origins-Pattern``)."""
        return self.lists.get(key.lower(), [])


_DUMP_RE = re.compile(r'^(\S+?)(::)? "(.*)";$')


@dataclass(frozen=True)
class AptConfigDump(Fact[AptConfig | None]):
    """apt's effective configuration (``apt-config dump``); ``None`` where apt is not installed."""

    kind: ClassVar[str] = "apt-config"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh("", f"command -v apt-config >/dev/null 2>&1 || return {ABSENT}; apt-config dump")

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

# sh: ``files PATH...`` prints every regular file among the paths as a framed part (FRAMES_SH's format, the
# first $C bytes of whole lines), all of them with ONE awk; an unreadable file gets its "cannot read" header,
# an empty one an empty part (awk never sees an empty file).
_FILES_SH = (
    'files() { n=$#; while [ "$n" -gt 0 ]; do p=$1; shift; n=$((n - 1)); [ -f "$p" ] || continue; '
    'if [ ! -r "$p" ]; then printf \'@%s! %s\\n\' "$F" "$p"; '
    'elif [ -s "$p" ]; then set -- "$@" "$p"; '
    'else printf \'@%s %s\\n\\n\' "$F" "$p"; fi; done; '
    '[ "$#" -eq 0 ] || awk -v F="$F" -v C="$C" '
    '\'FNR == 1 { if (NR > 1) print ""; printf "@%s %s\\n", F, FILENAME; n = 0 } '
    '{ n += length($0) + 1; if (n <= C) print } END { print "" }\' "$@"; }'
)


def _apt_dirs(options: dict[str, str], shared: bool = False) -> str:
    """sh: ONE ``apt-config shell`` for the options apt's facts need (``L=Dir::Etc::sourcelist/f``...),
    evaluated (apt quotes the values for the shell) and printed as the ``dirs`` part.

    apt-config starts ``dpkg --print-foreign-architectures`` to fill ``APT::Architectures`` unless that list
    is set; none of these options reads it (``APT::Architecture``, the native one, is apart), so it is set
    to spare the host a program (``apt-config dump``, which prints the list, does not do this).

    ``shared``: in a joint section, the lines are picked from ``$J``, the section's ONE run for both facts'
    options (apt prints a line per set option, in the order asked, so each fact's lines come out as its
    own run prints them); where that run failed (``$Jok`` empty), the fact's own run, as alone.
    """
    names = " ".join(f"{name}=" for name in options)
    own = f"d=$({_apt_shell(options)}) || exit 1"
    if shared:
        pick = "|".join(f"{name}=*" for name in options)
        own = (
            'if [ -n "$Jok" ]; then d=; o=$IFS; IFS=$nl; set -f; '
            f'for l in $J; do case $l in {pick}) d="$d$l$nl";; esac; done; IFS=$o; set +f; d=${{d%"$nl"}}; '
            f"else {own}; fi"
        )
    return f'{names}; {own}; eval "$d"; part dirs "$d"; '


def _apt_shell(options: dict[str, str]) -> str:
    """sh: the ``apt-config shell`` command asking ``options`` (name -> apt option), in their order."""
    pairs = " ".join(f"{name} {option}" for name, option in options.items())
    return f"apt-config -o APT::Architectures=all shell {pairs}"


_SHELL_LINE = re.compile(r"^([A-Z])='(.*)'$")


def _dirs(frames: list[Frame], fact: Fact[Any]) -> dict[str, str]:
    """The values ``apt-config shell`` printed (``X='value'``, ``'`` written ``'\\''``); unset ones absent."""
    [listing] = parts(fact, frames, "dirs")
    values = {}
    for line in listing.text().replace("'\\''", "\0").splitlines():
        match = _SHELL_LINE.match(line)
        if match is None:
            raise FactError(f"{fact.describe()}: unexpected apt-config line {line!r}")
        values[match.group(1)] = match.group(2).replace("\0", "'")
    return values


def _latin1(data: bytes) -> str:
    """A file as apt reads it: bytes, one character each (apt quotes and compares bytes)."""
    return data.decode("latin-1")


@dataclass(frozen=True)
class AptSourceList:
    """The source entries apt reads, in its order, the files holding them and the files apt ignores."""

    entries: list[AptEntry]
    files: list[str]
    ignored: list[str]


_HAS_APT = f"command -v apt-config >/dev/null 2>&1 || exit {ABSENT}; "
_SOURCES_DIRS = {"L": "Dir::Etc::sourcelist/f", "P": "Dir::Etc::sourceparts/d", "A": "APT::Architecture"}
_INDEXES_DIRS = {
    "S": "Dir::State::lists/d",
    "T": "Dir::State::status/f",
    "E": "Dir::Etc::preferences/f",
    "Q": "Dir::Etc::preferencesparts/d",
}


@dataclass(frozen=True)
class AptSources(Fact[AptSourceList | None]):
    """apt's sources as apt reads them, from the sources files alone (no cache built).

    Which files count (``Dir::Etc::sourcelist``, and the ``.list``/``.sources`` files of
    ``Dir::Etc::sourceparts`` with names apt accepts), which entries are live (not commented out, no
    ``Enabled: no``), their URIs, suites, components and options: :mod:`hds_compliance.facts.aptlists`.
    ``None`` where apt is not installed.
    """

    kind: ClassVar[str] = "apt-sources"
    arg: str = ""

    def script(self) -> str:
        return _HAS_APT + self.body(_apt_dirs(_SOURCES_DIRS))

    @staticmethod
    def body(dirs: str) -> str:
        """sh: the snippet after its check for apt, ``dirs`` printing the dirs part and setting them."""
        return (
            f"{FRAMES_SH}; {_FILES_SH}; "
            + dirs
            + 'set --; [ -z "$L" ] || set -- "$L"; [ -z "$P" ] || set -- "$@" "${P%/}"/*; files "$@"'
        )

    def parse(self, capture: Capture) -> AptSourceList | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        dirs = _dirs(frames, self)
        contents = {f.name: f.data for f in frames if f.name != "dirs"}
        read, ignored = files_read(dirs.get("L"), dirs.get("P"), contents, ("list", "sources"))
        entries: list[AptEntry] = []
        for path in read:
            data = contents[path]
            if data is None:
                raise FactError(f"{self.describe()}: apt reads {path}, which the probe cannot read")
            entries += parse_sources(path, _latin1(data), dirs.get("A", ""))
        check_conflicts(entries)
        return AptSourceList(entries=entries, files=read, ignored=ignored)

    def describe(self) -> str:
        return "apt sources"


# ------------------------------------------------------------------------------------ apt security indexes

# awk over every Release/InRelease of the lists: "R<tab>file" for each, "F<tab>file<tab>field<tab>value" for
# the fields pins read (hash lists are indented: never taken for fields); then the frame marker and the
# files whose label, suite or codename says "security", one a line.
_RELEASES_AWK = (
    'BEGIN { split("origin label suite codename version notautomatic butautomaticupgrades", w, " "); '
    "for (i in w) want[w[i]] = 1 } "
    'FNR == 1 { printf "R\\t%s\\n", FILENAME } '
    '/^[A-Za-z][A-Za-z0-9-]*:/ { i = index($0, ":"); k = tolower(substr($0, 1, i - 1)); '
    'if (!(k in want)) next; v = substr($0, i + 1); gsub(/^[ \\t]+|[ \\t\\r]+$/, "", v); '
    'printf "F\\t%s\\t%s\\t%s\\n", FILENAME, k, v; '
    'if ((k == "label" || k == "suite" || k == "codename") && tolower(v) ~ /security/) sec[FILENAME] = 1 } '
    "END { print F; for (f in sec) print f }"
)
# awk functions for deb822 stanzas read whole (RS = a line of blanks): trim(s), and last(r, name), the value
# of the last line of "\n"-led record r that starts with name ("\nVersion:"), "" if none.
_STANZA_AWK = (
    'function trim(s) { sub(/^[ \\t]+/, "", s); sub(/[ \\t\\r]+$/, "", s); return s } '
    'function last(r, name,   i, j, s) { if (!(i = index(r, name))) return ""; '
    "s = substr(r, i + length(name)); while ((j = index(s, name)) > 0) s = substr(s, j + length(name)); "
    'if ((j = index(s, "\\n")) > 0) s = substr(s, 1, j - 1); return trim(s) } '
)
# awk joining the installed packages of dpkg's status ($T, read first) with the Packages indexes: plain files
# by name, compressed ones from stdin between "<marker> <file>" and "<marker> ." lines. Prints
# "N<tab>installed packages", per index "I<tab>number<tab>file<tab>stanzas<tab>stanzas of installed
# packages", and for each stanza of an installed package (and architecture) in another version than the
# installed one "P<tab>index number<tab>package<tab>arch<tab>version<tab>installed version": few lines on an
# up-to-date host. A stanza ends at a line of blanks; of a field given twice, the last line counts.
# Whole stanzas are the records (RS), their fields found with index(): a line-by-line join took 2.4 times
# the instructions (147 -> 62 million by callgrind on this machine's status and 2.5 MB security index); most
# stanzas are of packages not installed, so only their Package line is read; a stanza that holds a frame
# marker goes line by line.
_JOIN_AWK = (
    _STANZA_AWK + 'function stanza() { if (pk != "" && cur != "") { n[cur]++; k = pk SUBSEP ar; '
    "if (k in inst) { m[cur]++; "
    'if (inst[k] != ve) printf "P\\t%d\\t%s\\t%s\\t%s\\t%s\\n", ids, pk, ar, ve, inst[k] } } '
    'pk = ar = ve = "" } '
    'function finish() { stanza(); if (cur != "") '
    'printf "I\\t%d\\t%s\\t%d\\t%d\\n", ids, cur, n[cur], m[cur]; cur = "" } '
    # one line of a stanza that holds a frame marker (a record has no line of blanks but at its edges)
    "function line(l,   w) { if (split(l, w) && w[1] == F) { "
    'if (w[2] == ".") { stanza(); if (cur == "") bad = 1; finish(); open = 0 } '
    "else { if (open) bad = 1; finish(); cur = substr(l, length(F) + 2); ids++; open = 1 } } "
    "else if (l ~ /^Package:/) pk = trim(substr(l, 9)); "
    "else if (l ~ /^Architecture:/) ar = trim(substr(l, 14)); "
    "else if (l ~ /^Version:/) ve = trim(substr(l, 9)) } "
    'BEGIN { RS = "\\n[ \\t\\r]*\\n"; while ((got = (getline l < T)) > 0) { r = "\\n" l; '
    'p = last(r, "\\nPackage:"); '
    'if (p == "" || last(r, "\\nStatus:") ~ /(not-installed|config-files)$/) continue; '
    'inst[p, last(r, "\\nArchitecture:")] = last(r, "\\nVersion:"); nm[p] = 1; ni++ } '
    'if (got < 0) { print "cannot read " T > "/dev/stderr"; bad = 1; exit 1 } '
    'printf "N\\t%d\\n", ni } '
    'FILENAME == "-" && index($0, F) { c = split($0, L, "\\n"); for (i = 1; i <= c; i++) line(L[i]); '
    "stanza(); next } "
    'FILENAME != "-" && FNR == 1 { if (open) bad = 1; finish(); cur = FILENAME; ids++ } '
    # Package comes first in an index: then one search says it is not given twice
    '{ if (substr($0, 1, 8) == "Package:" && !index($0, "\\nPackage:")) '
    'pk = trim((j = index($0, "\\n")) ? substr($0, 9, j - 9) : substr($0, 9)); '
    'else pk = last("\\n" $0, "\\nPackage:"); '
    'if (pk == "" || cur == "") { pk = ""; next } '
    'if (!(pk in nm)) { n[cur]++; pk = ""; next } '
    'r = "\\n" $0; ar = last(r, "\\nArchitecture:"); ve = last(r, "\\nVersion:"); stanza() } '
    'END { if (bad || open) { print "an index was cut short" > "/dev/stderr"; exit 1 } finish() }'
)
_COMPRESSED = "*.gz|*.xz|*.bz2|*.lzma|*.lz4|*.zst"


@dataclass(frozen=True)
class IndexRead:
    """A Packages index the probe read: its stanzas, and how many are of installed packages."""

    stanzas: int
    installed: int


@dataclass(frozen=True)
class InstalledVersion:
    """An installed package (name and architecture) that an index offers in another version."""

    index: str
    package: str
    architecture: str
    version: str
    installed: str


@dataclass(frozen=True)
class AptIndexes:
    """What apt's lists hold for judging pending security updates, read without apt's cache.

    ``releases``: every Release/InRelease of the lists directory (path -> the fields pins read, lower-case
    names); ``indexes``: the Packages files of the security releases; ``offered``: their stanzas of
    installed packages in another version than the installed one; ``installed``: how many packages dpkg's
    status says installed; ``pins``: the generic pins of the preferences files apt reads, in its order.
    """

    lists: str
    releases: dict[str, dict[str, str]]
    indexes: dict[str, IndexRead]
    offered: list[InstalledVersion]
    installed: int
    pins: list[Pin]
    preferences: list[str]


_ROW = re.compile(r"^[A-Za-z0-9.+:~_-]+$")


@dataclass(frozen=True)
class AptSecurityIndexes(Fact[AptIndexes | None]):
    """The security indexes in apt's lists joined ON THE HOST with dpkg's installed packages, the header
    of every Release file, and apt's preferences: what pending security updates are judged from.

    One awk reads the Release headers (Origin, Label, Suite, Codename, Version, NotAutomatic,
    ButAutomaticUpgrades) and names the security releases ("security" in label, suite or codename); their
    Packages files are read (compressed ones through ``apt-helper cat-file``) by a second awk that keeps
    only stanzas of installed packages of dpkg's status (``Dir::State::status``). Nothing is written and
    apt's cache is never built. ``None`` where apt is not installed.
    """

    kind: ClassVar[str] = "apt-indexes"
    arg: str = ""
    companions: ClassVar[tuple[str, ...]] = ("apt-sources",)

    def script(self) -> str:
        return _HAS_APT + self.body(_apt_dirs(_INDEXES_DIRS))

    @classmethod
    def joint_script(cls, facts: Sequence[Fact[Any]]) -> str:
        """The security indexes and apt's sources with ONE apt-config run for both (an apt-config start
        loads libapt-pkg: several ms of a host's CPU); each part in a subshell of its own, as alone."""
        if [f.kind for f in facts] != [cls.kind, AptSources.kind]:
            raise ValueError(f"no joint snippet for {[f.kind for f in facts]}")
        both = {**_INDEXES_DIRS, **_SOURCES_DIRS}
        return (
            f"command -v apt-config >/dev/null 2>&1 || {JOINT_ABSENT_SH}; {JOINT_SH}nl='\n'; "
            f"Jok=; J=$({_apt_shell(both)}) && Jok=1; "
            f"S=$( ({cls.body(_apt_dirs(_INDEXES_DIRS, shared=True))}); printf '.%s' \"$?\"); "
            'r=${S##*.}; S=${S%.*}; jf "$r" "$S"; '
            f"({AptSources.body(_apt_dirs(_SOURCES_DIRS, shared=True))})"
        )

    @staticmethod
    def body(dirs: str) -> str:
        """sh: the snippet after its check for apt, ``dirs`` printing the dirs part and setting them."""
        stream = (
            # compressed (or empty) Packages files, each between its marker lines; apt-helper decompresses
            'for g in $z; do printf \'\\n%s %s\\n\' "$F" "$g"; '
            f'case $g in {_COMPRESSED}) /usr/lib/apt/apt-helper cat-file "$g" || exit 1;; esac; '
            "printf '\\n%s .\\n' \"$F\"; done"
        )
        return (
            f"{FRAMES_SH}; {_FILES_SH}; "
            + dirs
            + '[ -n "$S" ] && [ -n "$T" ] || { echo "apt names no lists or status" >&2; exit 1; }; '
            'set -- "$S"*Release; [ -f "$1" ] || set --; '
            f'r=$([ "$#" -eq 0 ] || awk -v F="$F" \'{_RELEASES_AWK}\' "$@") || exit 1; '
            'h=${r%%"$F"*}; s=${r#*"$F"}; part releases "$h"; '
            # the Packages files of each security release: plain ones for awk, the others through stdin
            "N='\n'; o=$IFS; IFS=$N; set -f; set --; z=; "
            'for r in $s; do q=${r%InRelease}; q=${q%Release}; set +f; for g in "$q"*Packages*; do '
            '[ -f "$g" ] || continue; case $g in '
            f'{_COMPRESSED}) z=$z$g$N;; *) if [ -s "$g" ]; then set -- "$@" "$g"; else z=$z$g$N; fi;; esac; '
            "done; set -f; done; "
            f'x=$({{ {stream}; }} | awk -v F="$F" -v T="$T" \'{_JOIN_AWK}\' - "$@") || exit 1; '
            'IFS=$o; set +f; part packages "$x"; '
            'set --; [ -z "$E" ] || set -- "$E"; [ -z "$Q" ] || set -- "$@" "${Q%/}"/*; files "$@"'
        )

    def parse(self, capture: Capture) -> AptIndexes | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        dirs = _dirs(frames, self)
        releases_part, packages_part = parts(self, frames, "releases", "packages")
        releases: dict[str, dict[str, str]] = {}
        for line in releases_part.text().splitlines():
            fields = line.split("\t")
            if fields[0] == "R" and len(fields) == 2:
                releases.setdefault(fields[1], {})
            elif fields[0] == "F" and len(fields) == 4 and fields[1] in releases:
                releases[fields[1]][fields[2]] = fields[3]  # the last of a repeated field wins, as in apt
            else:
                raise FactError(f"{self.describe()}: unexpected release line {line!r}")
        indexes: dict[str, IndexRead] = {}
        numbers: dict[str, str] = {}
        rows: list[list[str]] = []
        installed = None
        for line in packages_part.text().splitlines():
            fields = line.split("\t")
            if fields[0] == "N" and len(fields) == 2 and fields[1].isdigit():
                installed = int(fields[1])
            elif fields[0] == "I" and len(fields) == 5 and all(f.isdigit() for f in fields[3:]):
                numbers[fields[1]] = fields[2]
                indexes[fields[2]] = IndexRead(int(fields[3]), int(fields[4]))
            elif fields[0] == "P" and len(fields) == 6 and all(_ROW.match(f) for f in fields[1:]):
                rows.append(fields[1:])
            else:
                raise FactError(f"{self.describe()}: unexpected index line {line!r}")
        if any(row[0] not in numbers for row in rows):
            raise FactError(f"{self.describe()}: a package line names no index")
        offered = [InstalledVersion(numbers[row[0]], *row[1:]) for row in rows]
        if installed is None:
            raise FactError(f"{self.describe()}: dpkg's status was not read")
        contents = {f.name: f.data for f in frames if f.name not in ("dirs", "releases", "packages")}
        read, _ignored = files_read(
            dirs.get("E"), dirs.get("Q"), contents, ("pref",), allow_no_extension=True
        )
        pins: list[Pin] = []
        for path in read:
            data = contents[path]
            if data is None:
                raise FactError(f"{self.describe()}: apt reads {path}, which the probe cannot read")
            pins += parse_preferences(path, _latin1(data))
        return AptIndexes(
            lists=dirs["S"],
            releases=releases,
            indexes=indexes,
            offered=offered,
            installed=installed,
            pins=pins,
            preferences=read,
        )

    def describe(self) -> str:
        return "apt's security indexes"


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
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "n p",
            "set -- /var/lib/apt/lists/*Release /var/lib/apt/periodic/update-success-stamp "
            "/var/cache/dnf/*/repodata/repomd.xml /var/cache/yum/*/*/*/repomd.xml "
            "/var/cache/yum/*/*/*/repodata/repomd.xml; "
            # ONE stat for all of them (a host has a Release file per repository and suite)
            'n=$#; for p do [ -f "$p" ] && set -- "$@" "$p"; done; shift "$n"; '
            "[ $# -eq 0 ] || stat -c '%Y %n' -- \"$@\" || return 1; return 0",
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


# awk printing dpkg's status as ``dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n'`` does, in
# the file's order (dpkg writes it sorted as dpkg-query lists it): every package but the not-installed ones,
# its three state letters (wanted, current, error flag), the version with an epoch of 0 left out as dpkg
# prints it. A Status word dpkg would refuse prints a "!" line, which the parser refuses. About half of
# dpkg-query's CPU (this machine's 827 packages: 24 against 38 million instructions, callgrind).
_DPKG_ROWS_AWK = (
    _STANZA_AWK
    + 'BEGIN { RS = "\\n[ \\t\\r]*\\n"; n = split("unknown u install i hold h deinstall r purge p '
    "ok . reinstreq R not-installed n config-files c half-installed H unpacked U half-configured F "
    'triggers-awaited W triggers-pending t installed i", w, " "); '
    'for (i = 1; i < n; i += 2) c[i < 10 ? "w" : i < 14 ? "e" : "s", w[i]] = w[i + 1]; c["e", "ok"] = " " } '
    '{ r = "\\n" $0; p = last(r, "\\nPackage:"); if (p == "") next; '
    'if (split(last(r, "\\nStatus:"), s, " ") != 3 || !(("w", s[1]) in c) || !(("e", s[2]) in c) '
    '|| !(("s", s[3]) in c)) { print "!\\t" p "\\tStatus"; next } '
    'if (s[3] == "not-installed") next; v = last(r, "\\nVersion:"); '
    'if (v ~ /^[0-9]+:/) { e = substr(v, 1, index(v, ":") - 1) + 0; u = substr(v, index(v, ":") + 1); '
    'v = e == 0 && !index(u, ":") ? u : e ":" u } '
    'printf "%s%s%s\\t%s\\t%s\\n", c["w", s[1]], c["s", s[3]], c["e", s[2]], p, v }'
)


@dataclass(frozen=True)
class InstalledPackages(Fact[PackageDatabase | None]):
    """The package database: dpkg's status (read by awk, as ``dpkg-query -W`` lists it; by dpkg-query
    itself while dpkg's journal holds changes not yet written to the status), else ``rpm -qa`` through a
    private overlay (a reader of rpm's sqlite database writes its -shm file); ``None`` if the host has
    neither."""

    kind: ClassVar[str] = "pkg-installed"
    arg: str = ""

    def script(self) -> str:
        return (
            "if command -v dpkg-query >/dev/null 2>&1 && [ -f /var/lib/dpkg/status ]; then echo dpkg; "
            # dpkg's journal: files named by digits, merged into the status by the next dpkg run
            'set -- /var/lib/dpkg/updates/[0-9]*; if [ -e "$1" ]; then '
            "dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'; "
            f"else awk '{_DPKG_ROWS_AWK}' /var/lib/dpkg/status; fi; "
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
