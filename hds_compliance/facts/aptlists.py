"""How apt reads its sources, names its list files and prioritises its indexes: a pure model of apt 2.x.

The apt facts (:mod:`hds_compliance.facts.packages`) only read files on the host; this module does what apt
itself would do with them, without building apt's cache:

- which sources files count (``Dir::Etc::sourcelist`` always, files of ``Dir::Etc::sourceparts`` only with
  a ``.list`` or ``.sources`` name made of letters, digits, ``_ - : .``), and the entries in them: one-line
  entries (``deb [ options ] uri suite component...``, ``#`` comments outside the brackets) and deb822
  stanzas (``Types``, several ``URIs``/``Suites``/``Components``, ``Enabled: no``, ``#`` comment lines,
  continuation lines; only the fields apt maps to options count);
- the name of the list file apt keeps for an index (``URItoFileName``: scheme, user and password dropped,
  some characters %-quoted, ``/`` turned into ``_``), for dists and flat repositories;
- the priority of an index (``apt-cache policy``): 500, 100 or 1 from the Release file's NotAutomatic and
  ButAutomaticUpgrades, then ``APT::Default-Release`` (990) and the generic pins of the preferences files
  (``Package: *`` with ``Pin: release ...`` or ``Pin: origin ...``), the first matching pin winning.

Each rule follows apt 2.6's source (apt-pkg/sourcelist.cc, contrib/strutl.cc, contrib/fileutl.cc,
deb/debmetaindex.cc, tagfile.cc, policy.cc, versionmatch.cc) and is held to apt's own output in
tests/test_software_semantics.py (``apt-get indextargets``, ``apt-cache policy``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hds_compliance.facts.base import FactError

# ------------------------------------------------------------------------------------------- booleans

_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_NO = ("no", "false", "without", "off", "disable")
_YES = ("yes", "true", "with", "on", "enable")


def string_to_bool(text: str, default: bool | None = None) -> bool | None:
    """A value as apt's ``StringToBool`` reads it: a whole number 0 or 1 (C syntax: ``0x1``, ``01``), or
    one of the words yes/true/with/on/enable and no/false/without/off/disable (any case); else
    ``default``."""
    number = _STRTOL.fullmatch(text)
    if number:
        digits = number.group(2)
        value = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8 if digits[0] == "0" else 10)
        value = -value if number.group(1) == "-" else value
        if value in (0, 1):
            return bool(value)
    if text.lower() in _NO:
        return False
    if text.lower() in _YES:
        return True
    return default


# ------------------------------------------------------------------------------------------------ URIs

_URI_BAD = '\\|{}[]<>"^~_=!@#$%^&*'
_USERINFO_BAD = ":/?#[]@"
_URI_ENCODE_BAD = "+~ "


def quote_string(text: str, bad: str) -> str:
    """apt's ``QuoteString``: every byte of ``bad``, ``%``, a control byte, a blank or a byte above 0x7e
    becomes ``%xx`` (lower-case hex). Text here is bytes read as latin-1, one character per byte."""
    return "".join(
        f"%{ord(c):02x}" if c in bad or c == "%" or ord(c) <= 0x20 or ord(c) >= 0x7F else c for c in text
    )


_HEX = frozenset("0123456789abcdefABCDEF")
_SPACE = " \t\n\v\f\r"


def _dequote(text: str, drop_quotes: bool = False) -> str:
    """``%xx`` sequences decoded (apt's ``DeQuoteString``); with ``drop_quotes``, double quotes removed
    as ``ParseQuoteWord`` does (a decoded ``%22`` stays)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
            continue
        if not (drop_quotes and text[i] == '"'):
            out.append(text[i])
        i += 1
    return "".join(out)


@dataclass
class Uri:
    """A URI split as apt's ``URI`` class splits it (scheme, user, password, host, port, path)."""

    access: str = ""
    user: str = ""
    password: str = ""
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Uri:
        """Split ``text`` (apt's ``URI::CopyFrom``)."""
        uri = cls()
        colon = text.find(":")
        colon = len(text) if colon < 0 else colon
        slash = colon
        if colon + 3 < len(text) and text[colon + 1] == "/" and text[colon + 2] == "/":
            slash += 3
        in_bracket = False
        while slash < len(text) and (text[slash] != "/" or in_bracket):
            if text[slash] == "[":
                in_bracket = True
            if in_bracket and text[slash] == "]":
                in_bracket = False
            slash += 1
        slash = min(slash, len(text))
        uri.access = text[:colon]
        uri.path = text[slash:] or "/"
        start = colon + 3 if colon + 2 < len(text) and text[colon + 1 : colon + 3] == "//" else colon + 1
        if start >= len(text):
            return uri
        start = min(start, slash)
        search = min(start + 1, slash)
        at = text.rfind("@", search, slash)
        if at < 0:
            if start < slash:
                uri.host = text[start:slash]
        else:
            second_colon = text.find(":", search, at)
            second_colon = at if second_colon < 0 else second_colon
            uri.host = text[at + 1 : slash]
            uri.user = _dequote(text[start:second_colon])
            if second_colon < at:
                uri.password = _dequote(text[second_colon + 1 : at])
        host, port_end, in_bracket, i = uri.host, 0, False, 0
        while i < len(host):
            if host[i] == "[":
                in_bracket, host = True, host[:i] + host[i + 1 :]
                continue
            if in_bracket and host[i] == "]":
                in_bracket, host, port_end = False, host[:i] + host[i + 1 :], i
                continue
            i += 1
        if in_bracket:
            uri.host = ""
            return uri
        uri.host = host
        pos = host.rfind(":")
        if pos < 0 or pos < port_end:
            return uri
        port = re.match(r"[ \t]*[+-]?[0-9]+", host[pos + 1 :])  # atoi
        uri.port = int(port.group(0)) if port else 0
        uri.host = host[:pos]
        return uri

    def __str__(self) -> str:
        """The URI written back (apt's ``URI::operator string``)."""
        out = f"{self.access}:" if self.access else ""
        if self.host:
            if self.access:
                out += "//"
            if self.user:
                out += quote_string(self.user, _USERINFO_BAD)
                if self.password:
                    out += ":" + quote_string(self.password, _USERINFO_BAD)
                out += "@"
            bracket = bool(self.access) and any(c in self.host for c in "/:")
            out += f"[{self.host}]" if bracket else self.host
            if self.port:
                out += f":{self.port}"
        if self.path:
            out += self.path if self.path.startswith("/") else "/" + self.path
        return out


def uri_to_filename(uri: str) -> str:
    """The name apt gives the local copy of ``uri`` in its lists directory (``URItoFileName``)."""
    parsed = Uri.parse(uri)
    parsed.user = parsed.password = parsed.access = ""
    return quote_string(str(parsed), _URI_BAD).replace("/", "_")


def fixup_uri(text: str, arch: str) -> str | None:
    """A source entry's URI as apt keeps it: ``$(ARCH)`` replaced, normalised, ending with ``/``; ``None``
    when apt refuses it (empty, no colon)."""
    if not text or ":" not in text:
        return None
    uri = str(Uri.parse(text.replace("$(ARCH)", arch)))
    return uri if uri.endswith("/") else uri + "/"


def site(uri: str) -> str:
    """The host an ``origin`` pin matches (empty for ``file:`` and ``copy:`` URIs)."""
    return Uri.parse(uri).host


# --------------------------------------------------------------------------------------- sources files

_PART_NAME = re.compile(r"[A-Za-z0-9_:.-]*[A-Za-z0-9_:-]")


def part_file_read(name: str, extensions: tuple[str, ...], allow_no_extension: bool = False) -> bool:
    """Whether apt reads a file called ``name`` in a ``.d`` directory (``GetListOfFilesInDir``): not hidden,
    an accepted extension (the text after the last dot), only letters, digits, ``_ - : .``, and no final
    dot."""
    if name.startswith("."):
        return False
    extension = name.rpartition(".")[2] if "." in name else None
    if extension is None:
        if not allow_no_extension:
            return False
    elif extension not in extensions:
        return False
    return _PART_NAME.fullmatch(name) is not None


def files_read(
    main: str | None,
    parts: str | None,
    present: Iterable[str],
    extensions: tuple[str, ...],
    allow_no_extension: bool = False,
) -> tuple[list[str], list[str]]:
    """(files apt reads in order, files of the ``parts`` directory it ignores), among the regular files
    ``present``: ``main`` first when it exists, then the directory's files sorted by name."""
    names = set(present)
    directory = (parts or "").rstrip("/")
    in_dir = sorted(p for p in names if directory and p.rpartition("/")[0] == directory and p != main)
    read = [main] if main and main in names else []
    read += [p for p in in_dir if part_file_read(p.rpartition("/")[2], extensions, allow_no_extension)]
    return read, [p for p in in_dir if p not in read]


@dataclass(frozen=True)
class AptEntry:
    """One source entry apt reads: ``file:line`` (one-line format) or ``file:stanza`` (deb822), one suite
    of one URI, with its components and the options apt took from it (its own option names)."""

    ref: str
    type: str
    uri: str
    suite: str
    components: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> str:
        """The file holding the entry."""
        return self.ref.rsplit(":", 1)[0]

    @property
    def index(self) -> int:
        """Line number (one-line format) or stanza number (deb822) in the file."""
        return int(self.ref.rsplit(":", 1)[1])

    @property
    def deb822(self) -> bool:
        """Whether the entry is a deb822 stanza (``.sources`` file)."""
        return self.file.endswith(".sources")

    @property
    def where(self) -> str:
        """``stanza N`` or ``line N``."""
        return f"{'stanza' if self.deb822 else 'line'} {self.index}"


def _malformed(path: str, number: int, what: str) -> FactError:
    return FactError(f"apt refuses {path}: malformed entry {number} ({what})")


def _quote_word(text: str, pos: int) -> tuple[str, int] | None:
    """apt's ``ParseQuoteWord``: the next word from ``pos`` (``"..."`` and ``[...]`` keep blanks, ``%xx``
    decoded, double quotes dropped) and the position after the blanks that follow it."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return None
    end = pos
    while end < len(text) and text[end] not in _SPACE:
        if text[end] == '"':
            end = text.find('"', end + 1)
            if end < 0:
                return None
        if text[end] == "[":
            end = text.find("]", end + 1)
            if end < 0:
                return None
        end += 1
    word = _dequote(text[pos:end], drop_quotes=True)
    while end < len(text) and text[end] in _SPACE:
        end += 1
    return word, end


def _items(
    entry_type: str,
    uri: str,
    suite: str,
    components: list[str],
    options: dict[str, str],
    ref: str,
    path: str,
    number: int,
) -> list[AptEntry]:
    if suite.endswith("/"):
        if components:
            raise _malformed(path, number, "absolute Suite Component")
        components = []
    elif not components:
        raise _malformed(path, number, "Component")
    return [AptEntry(ref, entry_type, uri, suite, tuple(components), dict(options))]


def parse_one_line(path: str, text: str, arch: str) -> list[AptEntry]:
    """Entries of a one-line sources file (``pkgSourceList::ParseFileOldStyle``); raise FactError where apt
    refuses the file."""
    entries: list[AptEntry] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw
        pos = line.find("#")
        while pos >= 0:  # a '#' inside [ options ] does not start a comment
            if line.count("[", 0, pos) > line.count("]", 0, pos):
                pos = line.find("#", pos + 1)
                continue
            line = line[:pos]
            break
        line = line.strip(" \t\r")
        if not line:
            continue
        kind_end = min((i for i in (line.find(c) for c in " \t\v") if i >= 0), default=-1)
        if kind_end <= 0:
            raise FactError(f"apt refuses {path}: malformed line {number} (type)")
        entry_type = line[:kind_end]
        if entry_type not in ("deb", "deb-src"):
            raise FactError(f"apt refuses {path}: type '{entry_type}' is not known on line {number}")
        rest = line[kind_end:].lstrip(_SPACE)
        options: dict[str, str] = {}
        pos = 0
        if rest.startswith("["):
            pos = 1
            while pos < len(rest) and rest[pos] in _SPACE:
                pos += 1
            while pos < len(rest) and rest[pos] != "]":
                word = _quote_word(rest, pos)
                if word is None:
                    raise _malformed(path, number, "[option] unparsable")
                option, pos = word
                if len(option) < 3:
                    raise _malformed(path, number, "[option] too short")
                if option.endswith("]"):  # the last option may touch the closing bracket
                    pos = rest.rfind("]", 0, pos)
                    option = option[:-1]
                key, equal, value = option.partition("=")
                if not equal:
                    raise _malformed(path, number, "[option] not assignment")
                if not key or not value:
                    raise _malformed(path, number, "[option] no key" if not key else "[option] no value")
                options[key] = value
            if pos >= len(rest):
                raise _malformed(path, number, "[option] unparsable")
            pos += 1
            while pos < len(rest) and rest[pos] in _SPACE:
                pos += 1
        words = []
        while (word := _quote_word(rest, pos)) is not None:
            words.append(word[0])
            pos = word[1]
        if len(words) < 2:
            raise _malformed(path, number, "URI" if not words else "Suite")
        uri = fixup_uri(words[0], arch)
        if uri is None:
            raise _malformed(path, number, "URI parse")
        suite = words[1]
        if suite.endswith("/"):
            suite = suite.replace("$(ARCH)", arch)
        ref = f"{path}:{number}"
        entries += _items(entry_type, uri, suite, words[2:], options, ref, path, number)
    return entries


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """Stanzas of a deb822 file read with comments (apt's ``pkgTagFile`` with ``SUPPORT_COMMENTS``): lines
    starting with ``#`` are dropped, stanzas are separated by empty lines (a line of blanks continues the
    field above), a stanza of only comments is none. Keys lower-cased, the last of a repeated key wins,
    values with their continuation lines (trailing blanks trimmed)."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if not line.startswith("#")]
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in [*lines, ""]:
        if line == "":
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if line[0] in _SPACE:
            if key:
                current[key] += "\n" + line
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise FactError(f"a deb822 line without a field name: {line[:60]!r}")
        key = name.rstrip(_SPACE).lower()
        current[key] = value
    return [{k: v.strip(_SPACE) for k, v in stanza.items()} for stanza in stanzas]


def _multi(value: str | None) -> list[str]:
    return [word for word in "".join(" " if c in _SPACE else c for c in value or "").split(" ") if word]


# deb822 fields apt maps to the options of an entry (pkgSourceList::Type::ParseStanza); others are ignored.
_PLUS_MINUS = {"architectures": "arch", "languages": "lang", "targets": "target"}
_SINGLE = (
    "trusted",
    "check-valid-until",
    "valid-until-min",
    "valid-until-max",
    "check-date",
    "date-max-future",
    "signed-by",
    "pdiffs",
    "by-hash",
)


def parse_deb822(path: str, text: str, arch: str) -> list[AptEntry]:
    """Entries of a ``.sources`` file (``pkgSourceList::ParseFileDeb822``); raise FactError where apt
    refuses the file."""
    entries: list[AptEntry] = []
    for number, stanza in enumerate(deb822_stanzas(text), 1):
        if "types" not in stanza:
            raise FactError(f"apt refuses {path}: malformed stanza {number} (type)")
        for entry_type in _multi(stanza["types"]):
            if entry_type not in ("deb", "deb-src"):
                raise FactError(f"apt refuses {path}: type '{entry_type}' is not known on stanza {number}")
            enabled = stanza.get("enabled")
            if enabled and string_to_bool(enabled) is False:
                continue
            options: dict[str, str] = {}
            for name, option in _PLUS_MINUS.items():
                for suffix, sign in (("", ""), ("-add", "+"), ("-remove", "-")):
                    if name + suffix in stanza:
                        options[option + sign] = ",".join(_multi(stanza[name + suffix]))
            options |= {name: stanza[name] for name in _SINGLE if name in stanza}
            uris = _multi(stanza.get("uris"))
            suites = [s.replace("$(ARCH)", arch) for s in _multi(stanza.get("suites"))]
            components = _multi(stanza.get("components"))
            if not uris:
                raise _malformed(path, number, "URI")
            if not suites:
                raise _malformed(path, number, "Suite")
            for raw in uris:
                uri = fixup_uri(raw, arch)
                if uri is None:
                    raise _malformed(path, number, "URI parse")
                for suite in suites:
                    entries += _items(
                        entry_type, uri, suite, components, options, f"{path}:{number}", path, number
                    )
    return entries


def parse_sources(path: str, text: str, arch: str) -> list[AptEntry]:
    """Entries of one sources file, in the format its extension says (``.sources``: deb822)."""
    if path.rpartition(".")[2] == "sources":  # apt's flExtension of the whole path
        return parse_deb822(path, text, arch)
    return parse_one_line(path, text, arch)


def _signed_by(value: str) -> str:
    """A Signed-By value as apt compares two of them (``NormalizeSignedBy``): key files and fingerprints
    (upper-cased), in order; an embedded key block with its lines stripped."""
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" in value:
        return "\n".join("" if line.strip() == "." else line.strip() for line in value.split("\n"))
    items = [i for i in "".join("," if c in _SPACE else c for c in value).split(",") if i]
    return ",".join(i if i.startswith("/") else i.upper() for i in items)


def check_conflicts(entries: Iterable[AptEntry]) -> None:
    """Raise FactError where apt refuses the sources because entries of one release (same URI and suite,
    deb and deb-src alike) disagree on ``trusted`` (set on one, unset or different on another) or on
    ``signed-by`` (an entry without it after one with it, or two different keys)."""
    trusted: dict[str, bool | None] = {}
    signed: dict[str, str] = {}
    for entry in entries:
        release = release_files(entry)[1]
        value = entry.options.get("trusted")
        state = None if value is None else bool(string_to_bool(value, False))
        if trusted.setdefault(release, state) != state:
            raise FactError(
                f"apt refuses the sources: conflicting trusted for {entry.uri} {entry.suite} ({entry.ref})"
            )
        key = _signed_by(entry.options.get("signed-by", ""))
        if not signed.get(release) and key:
            signed[release] = key
        elif key != signed.get(release, ""):
            raise FactError(
                f"apt refuses the sources: conflicting signed-by for {entry.uri} {entry.suite} ({entry.ref})"
            )


# ------------------------------------------------------------------------------------------ list files

COMPRESSIONS = (".xz", ".bz2", ".lzma", ".gz", ".lz4", ".zst")


def base_uri(entry: AptEntry) -> str:
    """Where the entry's release lives (``constructMetaIndexURI`` without a file name)."""
    if entry.suite == "/":
        return entry.uri
    if entry.suite.endswith("/"):
        return entry.uri + quote_string(entry.suite, _URI_ENCODE_BAD)
    return f"{entry.uri}dists/{quote_string(entry.suite, _URI_ENCODE_BAD)}/"


def release_files(entry: AptEntry) -> tuple[str, str]:
    """List-file names of the entry's InRelease and Release (apt reads InRelease when both exist)."""
    base = base_uri(entry)
    return uri_to_filename(base + "InRelease"), uri_to_filename(base + "Release")


def _arch_option(entry: AptEntry, architectures: list[str]) -> list[str]:
    """The architectures whose Packages indexes apt fetches for an entry (``arch=``, ``arch+=``,
    ``arch-=``, else APT::Architectures), with ``all`` unless removed."""
    chosen = entry.options["arch"].split(",") if "arch" in entry.options else list(architectures)
    chosen += [a for a in entry.options.get("arch+", "").split(",") if a and a not in chosen]
    removed = [a for a in entry.options.get("arch-", "").split(",") if a]
    chosen = [a for a in chosen if a and a not in removed]
    if "all" not in chosen and "all" not in removed:
        chosen.append("all")
    return chosen


@dataclass(frozen=True)
class PackagesIndex:
    """A Packages index an entry makes apt read: its component and architecture, and its list-file name
    (without compression extension)."""

    entry: AptEntry
    component: str
    architecture: str
    filename: str

    def describe(self) -> str:
        """As ``apt-cache policy`` names it (``http://host/debian bookworm-security/main amd64``)."""
        where = self.entry.suite if self.entry.suite.endswith("/") else f"{self.entry.suite}/{self.component}"
        return f"{self.entry.uri.rstrip('/')} {where} {self.architecture}".rstrip()


def packages_indexes(entry: AptEntry, architectures: list[str]) -> list[PackagesIndex]:
    """The Packages indexes of a ``deb`` entry (``Acquire::IndexTargets::deb::Packages``: MetaKey
    ``$(COMPONENT)/binary-$(ARCHITECTURE)/Packages``, flatMetaKey ``Packages``)."""
    if entry.type != "deb":
        return []
    base = base_uri(entry)
    if entry.suite.endswith("/"):
        return [PackagesIndex(entry, "", "", uri_to_filename(base + "Packages"))]
    return [
        PackagesIndex(entry, component, arch, uri_to_filename(f"{base}{component}/binary-{arch}/Packages"))
        for component in entry.components
        for arch in _arch_option(entry, architectures)
    ]


def existing(name: str, present: Iterable[str]) -> str | None:
    """The file apt reads for the list-file ``name``: itself if present, else the first compressed copy."""
    files = set(present)
    for candidate in (name, *(name + ext for ext in COMPRESSIONS)):
        if candidate in files:
            return candidate
    return None


# ------------------------------------------------------------------------------------------ priorities

NEVER = -32768


@dataclass(frozen=True)
class Release:
    """The fields of a Release/InRelease file pins and priorities read."""

    origin: str | None = None
    label: str | None = None
    suite: str | None = None
    codename: str | None = None
    version: str | None = None
    not_automatic: bool = False
    but_automatic_upgrades: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Release:
        """From the release file's fields (lower-case names)."""
        return cls(
            origin=fields.get("origin"),
            label=fields.get("label"),
            suite=fields.get("suite"),
            codename=fields.get("codename"),
            version=fields.get("version"),
            not_automatic=string_to_bool(fields.get("notautomatic", "")) is True,
            but_automatic_upgrades=string_to_bool(fields.get("butautomaticupgrades", "")) is True,
        )

    @property
    def security(self) -> bool:
        """Whether the release is a security archive ("security" in its label, suite or codename)."""
        return any("security" in (value or "").lower() for value in (self.label, self.suite, self.codename))


@dataclass(frozen=True)
class Pin:
    """A generic pin (``Package: *``) of a preferences file, or APT::Default-Release."""

    kind: str  # release | origin
    data: str
    priority: int
    where: str


def _glob_regex(pattern: str) -> str:
    """A glibc ``fnmatch`` pattern (no flags but case folding) as a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] in "!^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "[" and pattern[j + 1 : j + 2] == ":" else 1
            if j >= len(pattern):
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : j]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                out.append(f"[{'^' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
                i = j
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def expression_matches(pattern: str, value: str | None) -> bool:
    """apt's ``ExpressionMatches``: ``/regex/`` (extended, any case) searched in ``value``, else a glob
    matched against the whole value, any case. Nothing matches a field the release does not have."""
    if value is None:
        return False
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            return re.search(pattern[1:-1], value, re.IGNORECASE) is not None
        except re.error:
            return False
    try:
        return re.fullmatch(_glob_regex(pattern), value, re.IGNORECASE | re.DOTALL) is not None
    except re.error:
        return False


def _match_version(version: str | None, wanted: str, prefix: bool) -> bool:
    """apt's ``MatchVer``: equal (any case), or starting with ``wanted`` when ``prefix``."""
    if version is None:
        return False
    return version[: len(wanted)].lower() == wanted.lower() and (prefix or len(version) == len(wanted))


def release_pin_matches(data: str, release: Release, component: str, architecture: str) -> bool:
    """Whether ``Pin: release <data>`` matches an index (``pkgVersionMatch`` for a Packages file)."""
    if data == "*":
        return True
    wanted: dict[str, str] = {}
    if "=" not in data:
        wanted["v" if data[:1].isdigit() else "release"] = data
    else:
        fragments = [f.strip() for f in data.strip().split(",") if f.strip()]
        if len(fragments) >= 20:
            return False
        for fragment in fragments:
            if len(fragment) >= 3 and fragment[1] == "=" and fragment[0].lower() in "voanlcb":
                wanted[fragment[0].lower()] = fragment[2:]
    if not wanted:
        return False
    version = wanted.get("v")
    if version is not None:
        prefix = version.endswith("*")
        version = version[:-1] if prefix else version
        if not _match_version(release.version, version, prefix) and not expression_matches(
            version, release.version
        ):
            return False
    checks = (
        ("o", release.origin),
        ("a", release.suite),
        ("n", release.codename),
        ("l", release.label),
        ("c", component),
        ("b", architecture or None),  # a flat repository's index has no architecture
    )
    if any(key in wanted and not expression_matches(wanted[key], value) for key, value in checks):
        return False
    named = wanted.get("release")
    return (
        named is None
        or expression_matches(named, release.suite)
        or expression_matches(named, release.codename)
    )


def pin_matches(pin: Pin, release: Release, component: str, architecture: str, host: str) -> bool:
    """Whether a generic pin applies to an index of ``release`` served by ``host``."""
    if pin.kind == "origin":
        wanted = pin.data
        if len(wanted) >= 2 and wanted.startswith('"') and wanted.endswith('"'):
            wanted = wanted[1:-1]
        return expression_matches(wanted, host)
    return release_pin_matches(pin.data, release, component, architecture)


def index_priority(
    release: Release, component: str, architecture: str, host: str, pins: list[Pin]
) -> tuple[int, str]:
    """An index's priority as apt computes it (``pkgPolicy::InitDefaults``) and what set it."""
    if release.but_automatic_upgrades:
        priority, why = 100, "ButAutomaticUpgrades in its Release file"
    elif release.not_automatic:
        priority, why = 1, "NotAutomatic in its Release file"
    else:
        priority, why = 500, "default"
    fixed = False
    for pin in pins:
        if (
            (not fixed or pin.priority == NEVER)
            and priority != NEVER
            and pin_matches(pin, release, component, architecture, host)
        ):
            priority, why, fixed = pin.priority, pin.where, True
    return priority, why


def default_release_pin(value: str | None, releases: Iterable[Release]) -> Pin | None:
    """The 990 pin of APT::Default-Release; raise FactError when apt refuses the value (no such release)."""
    if not value:
        return None
    known = any(
        expression_matches(value, r.suite)
        or expression_matches(value, r.codename)
        or expression_matches(value, r.version)
        for r in releases
    )
    if not (known or (len(value) > 2 and value[1] == "=") or expression_matches(value, "now")):
        raise FactError(f"apt refuses APT::Default-Release {value!r}: no such release in the sources")
    return Pin("release", value, 990, f"APT::Default-Release {value}")


_PRIORITY = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def parse_preferences(path: str, text: str) -> list[Pin]:
    """The generic pins of a preferences file, in order (``ReadPinFile``); raise FactError where apt
    refuses the file. Pins of named packages are left out: they never change an index's priority."""
    pins = []
    for number, stanza in enumerate(deb822_stanzas(text), 1):
        name = stanza.get("package", "")
        if not name:
            raise FactError(f"apt refuses {path}: record {number} has no Package header")
        pin = stanza.get("pin")
        if pin is None:
            continue
        kind_match = re.match(r"([^ \t\n\v\f\r]*)[ \t\n\v\f\r]*(.*)", pin, re.S)
        kind, data = (kind_match.group(1).lower(), kind_match.group(2)) if kind_match else ("", "")
        if kind not in ("release", "origin", "version") or (kind == "version" and name == "*"):
            continue  # apt warns and ignores the record
        raw = stanza.get("pin-priority", "")
        if raw == "never":
            if name != "*":
                raise FactError(f"apt refuses {path}: 'Pin-Priority: never' is only for 'Package: *'")
            priority = NEVER
        else:
            number_text = _PRIORITY.match(raw) if len(raw) < 300 else None
            priority = int(number_text.group(0)) if number_text else 0
            priority = NEVER + 1 if priority == NEVER else priority
            if not NEVER <= priority <= 32767:
                raise FactError(f"apt refuses {path}: pin priority {raw} out of range")
            if priority == 0:
                raise FactError(f"apt refuses {path}: no priority (or zero) for the pin of record {number}")
        if name == "*":
            pins.append(Pin(kind, data, priority, f"{path} record {number}"))
    return pins


# ---------------------------------------------------------------------------------- security indexes


@dataclass(frozen=True)
class SecurityIndex:
    """A Packages index apt reads from a security release: the list file, the release and its priority."""

    index: PackagesIndex
    path: str
    release: Release
    priority: int
    why: str


def security_indexes(
    entries: Iterable[AptEntry],
    lists: str,
    releases: dict[str, dict[str, str]],
    read: Iterable[str],
    architectures: list[str],
    pins: list[Pin],
    default_release: str | None,
) -> tuple[list[SecurityIndex], list[AptEntry]]:
    """The security indexes apt reads (each list file once, in the sources' order) and the entries that
    name a security archive (in their URI or suite) but whose release or index was never fetched.

    ``releases``: the Release/InRelease files of the lists directory ``lists`` with their fields;
    ``read``: the Packages files the probe read (those of security releases).
    """
    names = {path[len(lists) :]: path for path in releases if path.startswith(lists)}
    read_names = [path[len(lists) :] for path in read if path.startswith(lists)]
    found: list[tuple[PackagesIndex, str, Release]] = []
    missing: list[AptEntry] = []
    known: list[Release] = []
    for entry in entries:
        if entry.type != "deb":
            continue
        in_release, plain_release = release_files(entry)
        release_name = (
            in_release if in_release in names else plain_release if plain_release in names else None
        )
        named = "security" in f"{entry.uri} {entry.suite}".lower()
        if release_name is None:
            if named:
                missing.append(entry)
            continue
        release = Release.from_fields(releases[names[release_name]])
        known.append(release)
        if not release.security:
            continue
        indexes = [(i, existing(i.filename, read_names)) for i in packages_indexes(entry, architectures)]
        fetched = [(i, lists + name) for i, name in indexes if name is not None]
        if not fetched:
            missing.append(entry)
        found += [(i, path, release) for i, path in fetched]
    default = default_release_pin(default_release, known)
    all_pins = [default, *pins] if default else list(pins)
    out: list[SecurityIndex] = []
    for index, path, release in found:
        if any(s.path == path for s in out):
            continue
        priority, why = index_priority(
            release, index.component, index.architecture, site(index.entry.uri), all_pins
        )
        out.append(SecurityIndex(index, path, release, priority, why))
    return out, missing
