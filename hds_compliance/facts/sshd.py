"""The SSH daemon as it runs: its effective configuration (``sshd -T``) for every kind of connection.

sshd decides per connection: ``Match`` blocks change keywords for the connections they select, ``Include``
drop-ins are read where they are included, and the first value obtained for a keyword wins. The probe asks
sshd itself rather than reading its files: the first round runs ``sshd -T`` for each of the host's own
daemons and collects the ``Match`` criteria sshd parsed (its ``-ddd`` syntax pass, included files too);
the second round runs ``sshd -T -C <connection>`` for a connection that satisfies each block and for one
that satisfies none (see :mod:`hds_compliance.facts.sshd_match`), and reads the public host keys the
daemons use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hds_compliance.facts.base import ABSENT, JOINT_ABSENT_SH, JOINT_SH, Fact, FactError, check_path, quote
from hds_compliance.facts.reads import READS_SH, FileRead, parse_listing
from hds_compliance.facts.sshd_match import (
    Block,
    Spec,
    local_reachable,
    parse_block,
    parse_listeners,
    specs,
)
from hds_compliance.facts.sshkeys import PublicKeyError, public_key_size
from hds_compliance.model import Capture, PerCapture

DEFAULT_CONFIG = "/etc/ssh/sshd_config"
# sshd -T refuses to evaluate "Match LocalPort" without a port; the retry gives it one no listener uses.
_LPORT_FATAL = "'lport' not in connection test specification"
_RETRY_PORT = "65535"


def _run_sshd(args: str) -> str:
    """sh: ``sshd -T <args>``, its configuration on stdout; ``$e`` what it said on stderr, ``$r`` its exit."""
    return f"{{ e=$(sshd -T {args} 2>&1 >&3); r=$?; }} 3>&1; "


# sshd's error or warnings, kept as "# said <line>".
_SAID = "[ -z \"$e\" ] || printf '%s\\n' \"$e\" | sed 's/^/# said /'; "


# sh setting $cfgs to the config files of the host's own listening daemons. A listener's title is "sshd:
# /usr/sbin/sshd -D -f FILE [listener] ..." (OpenSSH >= 8.2) or its plain command line; session processes are
# "sshd: user@...". A process in another mount namespace is a container's: skipped by a builtin test, before
# anything forks. Configs are de-duplicated.
_OWN_DAEMONS = (
    'cfgs=; for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && [ "$c" = sshd ] || continue; '
    '[ "$p/ns/mnt" -ef /proc/self/ns/mnt ] || continue; '
    # a retitled process ("sshd: ...", OpenSSH >= 8.2) reads whole with a builtin; a plain command line has
    # NULs between its words, which only tr turns into spaces
    't=; read -r t < "$p/cmdline" 2>/dev/null; '
    "case $t in \"sshd: \"*) ;; *) t=$(tr '\\000' ' ' < \"$p/cmdline\" 2>/dev/null) || continue;; esac; "
    'case "$t" in "sshd: "*"[listener]"*|/*sshd|/*sshd" "*|sshd|sshd" "*) ;; *) continue;; esac; '
    # the word after the last " -f " (as sed 's/.* -f \([^ ]*\).*/\1/' takes it), by builtins
    'u="$t "; case $u in *" -f "*) f=${u##* -f }; f=${f%% *};; *) f=;; esac; '
    f'f=${{f:-{DEFAULT_CONFIG}}}; case " $cfgs " in *" $f "*) ;; *) cfgs="$cfgs $f";; esac; done; '
)


# The host keys' snippet, per daemon config $f: HostKey is global, so any connection gives it; lport lets
# sshd -T evaluate "Match LocalPort" blocks. Records: C config file, E what a failed sshd -T said, then per
# listed key K (public half read), M (no such key), P (no public half), U (public half not a readable file).
_KEYS_RUN = f'o=$(sshd -T -C lport={_RETRY_PORT} -f "$f" 2>&1) || {{ rec E "$o"; continue; }}\n'
_KEYS_READ = (
    'while read -r k v; do [ "$k" = hostkey ] || continue\n'
    'if [ ! -e "$v" ]; then rec M "$v"; elif [ ! -e "$v.pub" ]; then rec P "$v"\n'
    'elif [ -f "$v.pub" ] && [ -r "$v.pub" ]; then rec K "$v"; set -- "$@" "$v.pub"\n'
    'else rec U "$v"; fi\n'
    "done <<EOF\n$o\nEOF\n"
)


def _kept_sshd(args: str) -> str:
    """sh: what :func:`_run_sshd` does and prints, keeping the dump's ``hostkey`` lines in ``$k`` (for the
    host keys of the joint section). What sshd says (with -ddd, a kilobyte and more) is the ``$( )`` that
    comes back; the dump is printed from inside it, and its exit code and hostkey lines follow what sshd
    said, as ``\\n<nonce> <code>\\n<nonce> <hostkey lines>``, taken apart from the end (no message can hold
    the nonce). dash matches a pattern that starts with ``*`` at every place of a string: only the short
    tails are cut that way, so nothing searches a long string from its start (a version that brought the
    dump and the debug lines back in one string cost 15 ms more). The lines are picked by field splitting
    on newlines, not ``read``, which costs dash a system call per byte."""
    return (
        f"{{ e=$({{ x=$(sshd -T {args} 2>&4; printf '.%s' \"$?\"); r=${{x##*.}}; x=${{x%.*}}; "
        "printf '%s' \"$x\" >&3; "
        'k=; o=$IFS; IFS=$nl; set -f; for l in $x; do case $l in "hostkey "*) k="$k$l$nl";; esac; done; '
        'IFS=$o; set +f; printf \'\\n%s %s\\n%s %s\' "$M" "$r" "$M" "$k"; } 4>&1); } 3>&1; '
        'k=${e##*"$nl$M "}; e=${e%"$nl$M "*}; r=${e##*"$nl$M "}; e=${e%"$nl$M "*}; '
        # as $( ) gives it alone: without its trailing newlines
        'while case $e in *"$nl") true;; *) false;; esac; do e=${e%"$nl"}; done; '
    )


# sed: "# match <criteria>" for each Match block sshd -ddd says it parsed (its lines end with a carriage
# return, matched as trailing space); a line it rewrote goes no further.
_MATCHES_SED = "-e \"s/^debug3: checking syntax for 'Match \\(.*\\)'[[:space:]]*\\$/# match \\1/p\" -e t"


# sed: the keyword LogLevel, as sshd's debug lines print it (as written: any case), and the blank after it
_LOGLEVEL_WORD = "[Ll][Oo][Gg][Ll][Ee][Vv][Ee][Ll][[:space:]]"
# sed: "# check <criteria>" for each Match block sshd -ddd evaluates for a -C connection, "# not found" after
# one that did not apply
_CHECKS_SED = (
    "-e \"s/^debug3: checking match for '\\(.*\\)' user .*/# check \\1/p\" -e t "
    "-e 's/^debug3: match not found[[:space:]]*$/# not found/p' -e t"
)


def _ddd_lines(picks: str) -> str:
    """sh: what ``sshd -T -ddd`` said (``$dbg``) as lines the parsers read: ``picks`` (sed expressions, each
    followed by ``-e t``), then ``# match-loglevel X`` and ``# loglevel X`` for the LogLevel settings it
    printed (see :func:`_daemons`), and ``# said <line>`` for each line that is not a debug line (its
    warnings and errors: the lines sshd -T says without -ddd)."""
    return (
        f'[ -z "$dbg" ] || printf \'%s\\n\' "$dbg" | sed -n {picks}'
        f" -e 's/^debug3: reprocess config:[0-9]* setting {_LOGLEVEL_WORD}/# match-loglevel /p' -e t"
        f" -e 's/^debug3: .* setting {_LOGLEVEL_WORD}/# loglevel /p' -e t"
        " -e '/^debug[0-9]: /d' -e 's/^/# said /p'; "
    )


def _daemons(run: Callable[[str], str], after: str = "") -> str:
    """sh: the sshd fact's loop over the host's own daemons, running sshd -T with ``run``; ``after`` ends
    each turn.

    ONE ``sshd -T -ddd`` per daemon gives the dump and the debug lines that name the Match blocks. -ddd
    makes the dump say ``loglevel DEBUG3``: the LogLevel sshd -T prints without it is the first one its
    debug lines say it set ("setting LogLevel X", printed for the lines it applies, in the order it reads
    them; the first value wins, as for most keywords), unless a Match block that sshd -T's blank connection
    satisfies (``Match all``) sets one when sshd reprocesses the config ("reprocess config:N setting"):
    that one overrides; INFO when none. The parser puts it back (``# ddd`` marks such a dump). Its other
    lines (warnings, errors) are the ones sshd -T says without -ddd. A config with ``Match LocalPort``
    cannot be dumped without a port: it is dumped again with one, without -ddd."""
    return (
        f'for f in ${{cfgs:-{DEFAULT_CONFIG}}}; do echo "# config $f"; '
        + run('-ddd -f "$f"')
        + f'dbg=$e; case "$dbg" in *"{_LPORT_FATAL}"*) echo "# lport {_RETRY_PORT}"; '
        + run(f'-C lport={_RETRY_PORT} -f "$f"')
        + f"printf '%s\\n' \"$dbg\" | sed -n {_MATCHES_SED}; {_SAID};; "
        + '*) echo "# ddd"; '
        + _ddd_lines(_MATCHES_SED)
        + ";; esac; "
        + f'echo "# exit $r"; {after}done'
    )


@dataclass(frozen=True)
class HostKey:
    """A host key sshd -T lists, measured from its public half (``<path>.pub``) as ``ssh-keygen -l`` does."""

    path: str
    algorithm: str | None = None  # RSA, ECDSA, ED25519, DSA...
    bits: int | None = None
    problem: str | None = None  # why it could not be read (no public half, not a key ssh-keygen reads)


@dataclass(frozen=True)
class MatchVariant:
    """What sshd enforces for the connections one ``Match`` block selects."""

    criteria: str  # as sshd parsed it: "User alice,bob Address 10.0.0.0/8"
    spec: str = ""  # the connection sshd was asked about (-C), user resolved
    applied: tuple[str, ...] = ()  # every Match block sshd applied to that connection, in order
    options: dict[str, list[str]] = field(default_factory=dict)
    unreachable: str | None = None  # why no connection can reach this block on this host

    def get(self, name: str) -> str | None:
        """First value of a keyword, ``None`` if sshd did not print it."""
        values = self.options.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class SshdConfig:
    """Effective configuration of one SSH daemon (``sshd -T``): lower-case keyword -> values.

    ``options`` is what a connection that matches no ``Match`` block gets; ``variants`` what the connections
    each block selects get.
    """

    source: str
    options: dict[str, list[str]]
    matches: tuple[str, ...] = ()
    variants: tuple[MatchVariant, ...] = ()
    base_spec: str = ""  # the connection the base options were asked for ("" = sshd -T without -C)

    def get(self, name: str) -> str | None:
        """First value of a keyword, ``None`` if sshd did not print it."""
        values = self.options.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class SshdView:
    """One configuration a check judges: a daemon's base configuration or one of its Match variants."""

    where: str  # "/etc/ssh/sshd_config" or "/etc/ssh/sshd_config for connections matching 'Match ...'"
    options: dict[str, list[str]]
    config: SshdConfig
    criteria: str | None = None  # the Match block whose connections get it; None: those matching no block

    def get(self, name: str) -> str | None:
        """First value of a keyword, ``None`` if sshd did not print it."""
        values = self.options.get(name.lower())
        return values[0] if values else None

    def values(self, name: str) -> list[str]:
        """Every value sshd printed for a keyword (``allowusers`` prints one line per entry)."""
        return list(self.options.get(name.lower(), []))


def views(config: SshdConfig) -> Iterator[SshdView]:
    """The base configuration, then each reachable Match variant, each with where it applies."""
    base = f"{config.source} for connections matching no Match block" if config.matches else config.source
    yield SshdView(base, config.options, config)
    for variant in config.variants:
        if variant.unreachable is None:
            match = f"connections matching 'Match {variant.criteria}'"
            where = f"{config.source} for {match} (sshd -T -C {variant.spec})"
            yield SshdView(where, variant.options, config, variant.criteria)


# ----------------------------------------------------------------------------------------- first round


# sshd's log level names, as sshd -T prints them (OpenSSH 9.2, checked against it): QUIET is printed
# SILENT; DEBUG and DEBUG1 are one level, printed DEBUG.
_LOG_LEVELS = {
    "quiet": "SILENT",
    "debug1": "DEBUG",
    **{n.lower(): n for n in "SILENT FATAL ERROR INFO VERBOSE DEBUG DEBUG2 DEBUG3".split()},
}


@dataclass
class _DumpLogLevel:
    """What the lines of :func:`_ddd_lines` say about a dump's LogLevel: ``# ddd`` (the dump came from sshd
    -T -ddd, so it shows -ddd's level), ``# loglevel X`` (values set by the lines sshd read) and ``# match-
    loglevel X`` (values set by the Match blocks it then applied to the connection)."""

    ddd: bool = False
    read: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def take(self, line: str) -> bool:
        """Note ``line`` if it is one of those; whether it was."""
        if line == "# ddd":
            self.ddd = True
        elif line.startswith("# loglevel "):
            self.read.append(line[len("# loglevel ") :].strip())
        elif line.startswith("# match-loglevel "):
            self.applied.append(line[len("# match-loglevel ") :].strip())
        else:
            return False
        return True

    def put_back(self, options: dict[str, list[str]]) -> None:
        """In a -ddd dump's options, the LogLevel sshd -T prints without -ddd: the applied Match blocks'
        first value overrides the first one read; INFO when none. The values are the rest of the line, a
        comment included."""
        if not self.ddd or "loglevel" not in options:
            return
        chosen = (self.applied or self.read or ["INFO"])[0].split()
        word = chosen[0].strip('"') if chosen else ""
        options["loglevel"] = [_LOG_LEVELS.get(word.lower(), word.upper())]


@dataclass
class _Daemon:
    source: str
    options: dict[str, list[str]] = field(default_factory=dict)
    matches: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    exit_code: int | None = None
    loglevel: _DumpLogLevel = field(default_factory=_DumpLogLevel)


def _options(lines: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key:
            options.setdefault(key.lower(), []).append(value.strip())
    return options


def _first_round(text: str, what: str) -> list[_Daemon]:
    daemons: list[_Daemon] = []
    current: _Daemon | None = None
    lines: list[str] = []

    def close() -> None:
        assert current is not None
        current.options = _options(lines)
        current.loglevel.put_back(current.options)
        daemons.append(current)

    for line in text.splitlines():
        if line.startswith("# config "):
            if current is not None and current.exit_code is None:
                close()  # recordings made before "# exit" lines existed
            current, lines = _Daemon(line[len("# config ") :].strip()), []
            continue
        if current is None:  # plain `sshd -T` output without a header: the default configuration
            current, lines = _Daemon(DEFAULT_CONFIG), []
        if line.startswith("# exit "):
            word = line.split()[-1]
            current.exit_code = int(word) if word.lstrip("-").isdigit() else 1
            close()
        elif line.startswith("# match "):
            current.matches.append(line[len("# match ") :].strip())
        elif line.startswith("# said "):
            current.said.append(line[len("# said ") :].strip())
        elif current.loglevel.take(line):
            continue
        elif line.startswith("# "):
            continue  # "# lport 65535": sshd needed a port to evaluate Match LocalPort
        elif line.strip():
            lines.append(line)
    if current is not None and current.exit_code is None:
        close()
    if not daemons:
        raise FactError(f"{what}: sshd -T printed no configuration")
    for daemon in daemons:
        if daemon.exit_code not in (None, 0):
            said = daemon.said[-1] if daemon.said else "no output"
            raise FactError(
                f"{what}: sshd -T -f {daemon.source} failed with exit code {daemon.exit_code} ({said})"
            )
        if not daemon.options:
            raise FactError(f"{what}: sshd -T -f {daemon.source} printed no configuration")
    return daemons


# ---------------------------------------------------------------------------------------- second round


@dataclass(frozen=True)
class MatchResult:
    """sshd -T -C for one connection: its configuration and which Match blocks sshd applied."""

    user: str | None  # the group member the probe found, when the user was resolved on the host
    no_member: bool  # no account of the requested groups exists on the host
    options: dict[str, list[str]]
    checked: tuple[tuple[str, bool], ...]  # every Match block sshd evaluated, and whether it applied


_ARG_RE = re.compile(r"^(\S+) (\S+)(?: groups=(\S+))?$")


@dataclass(frozen=True)
class SshdMatchConfig(Fact[MatchResult]):
    """sshd's effective configuration for one connection: ``sshd -T -C <spec> -f <config>``.

    ``arg`` is ``"<config> <spec>"``, optionally followed by ``" groups=g1,g2"``: the connection's user is
    then a member of one of those groups, found on the host (``getent``), since sshd matches ``Group`` only
    for an account that exists.
    """

    kind: ClassVar[str] = "sshd-match"
    arg: str = ""

    def _parts(self) -> tuple[str, str, list[str]]:
        found = _ARG_RE.match(self.arg)
        if not found or not re.fullmatch(r"[A-Za-z0-9._@%+:=,-]+", found.group(2)):
            raise ValueError(f"not '<config> <spec> [groups=...]': {self.arg!r}")
        groups = found.group(3).split(",") if found.group(3) else []
        if any(not re.fullmatch(r"[A-Za-z0-9._-]+", g) for g in groups):
            raise ValueError(f"bad group names in {self.arg!r}")
        return check_path(found.group(1)), found.group(2), groups

    def script(self) -> str:
        config, spec, groups = self._parts()
        user = ""
        if groups:
            user = (
                f"u=; for g in {' '.join(quote(g) for g in groups)}; do "
                'e=$(getent group "$g") || continue; u=$(printf \'%s\\n\' "$e" | cut -d: -f4 | cut -d, -f1); '
                '[ -n "$u" ] && break; i=$(printf \'%s\\n\' "$e" | cut -d: -f3); '
                "u=$(getent passwd | awk -F: -v g=\"$i\" '$4 == g { print $1; exit }'); "
                '[ -n "$u" ] && break; done; [ -n "$u" ] || { echo "# nomember"; exit 0; }; '
                'echo "# user $u"; s="user=$u,$s"; '
            )
        args = f'-C "$s" -f {quote(config)}'
        # ONE sshd -T -ddd: the dump, and the debug lines naming the Match blocks it applied (see _daemons)
        return (
            f"command -v sshd >/dev/null 2>&1 || exit {ABSENT}; s={quote(spec)}; {user}"
            + _run_sshd(f"-ddd {args}")
            + "dbg=$e; echo '# ddd'; "
            + _ddd_lines(_CHECKS_SED)
            + 'echo "# exit $r"'
        )

    def parse(self, capture: Capture) -> MatchResult:
        if capture.exit_code != 0:
            raise self._fail(capture)
        user, lines, checked, said = None, [], list[list[Any]](), list[str]()
        code: int | None = None
        loglevel = _DumpLogLevel()
        for line in capture.stdout_text().splitlines():
            if line == "# nomember":
                return MatchResult(None, True, {}, ())
            if line.startswith("# user "):
                user = line[len("# user ") :].strip()
            elif loglevel.take(line):
                continue
            elif line.startswith("# check "):
                checked.append([line[len("# check ") :].strip(), True])
            elif line == "# not found" and checked:
                checked[-1][1] = False
            elif line.startswith("# said "):
                said.append(line[len("# said ") :])
            elif line.startswith("# exit "):
                word = line.split()[-1]
                code = int(word) if word.lstrip("-").isdigit() else 1
            elif line.strip() and not line.startswith("# "):
                lines.append(line)
        if code is None:
            raise FactError(f"{self.describe()}: the output ended before sshd's exit code")
        if code != 0 or not lines:
            why = said[-1] if said else "no configuration printed"
            raise FactError(f"{self.describe()}: sshd -T failed with exit code {code} ({why})")
        options = _options(lines)
        loglevel.put_back(options)
        return MatchResult(user, False, options, tuple((c, bool(m)) for c, m in checked))

    def describe(self) -> str:
        config, spec, groups = self._parts()
        member = f" (user: a member of {', '.join(groups)})" if groups else ""
        return f"sshd -T -C {spec} -f {config}{member}"


@dataclass(frozen=True)
class DaemonHostKeys:
    """The host keys one daemon loads (``hostkey`` of its sshd -T), read from their public halves."""

    source: str
    keys: tuple[HostKey, ...]


@dataclass(frozen=True)
class SshdHostKeys(Fact[list[DaemonHostKeys] | None]):
    """Type and size of the host keys of each of the host's own daemons, read from ``<key>.pub``.

    The keys are those ``sshd -T`` lists (``hostkey``); a private key is never opened. The public halves
    are read with one ``stat`` and one ``head`` (:data:`READS_SH`) and measured here as ``ssh-keygen -l``
    measures them (:func:`public_key_size`), so no program runs per key. A listed key that does not exist
    is left out, as sshd skips it. ``None`` means sshd is not installed.
    """

    kind: ClassVar[str] = "sshd-hostkeys"
    arg: str = ""

    def script(self) -> str:
        return (
            f"command -v sshd >/dev/null 2>&1 || exit {ABSENT}; {READS_SH}\n"
            f"{_OWN_DAEMONS}set --\n"
            f'for f in ${{cfgs:-{DEFAULT_CONFIG}}}; do rec C "$f"\n{_KEYS_RUN}{_KEYS_READ}done\n'
            'rd %s "$@"'
        )

    def parse(self, capture: Capture) -> list[DaemonHostKeys] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        listing = parse_listing(capture, self.describe(), "CEKMPU")
        public = {f.path: f for f in listing.files}
        daemons: list[tuple[str, list[HostKey]]] = []
        for tag, payload in listing.records:
            if tag == "C":
                daemons.append((payload, []))
                continue
            if not daemons:
                raise FactError(f"{self.describe()}: a key was listed before any configuration")
            source, keys = daemons[-1]
            if tag == "E":
                said = [line for line in payload.splitlines() if line.strip()]
                raise FactError(
                    f"{self.describe()}: sshd -T -f {source} failed ({said[-1] if said else 'no output'})"
                )
            if tag == "K":
                keys.append(_host_key(payload, public.get(payload + ".pub")))
            elif tag == "P":
                keys.append(HostKey(payload, problem="no public key file next to it"))
            elif tag == "U":
                keys.append(HostKey(payload, problem="its public key file is not a readable regular file"))
        if not daemons:
            raise FactError(f"{self.describe()}: no daemon configuration was read")
        return [DaemonHostKeys(source, tuple(keys)) for source, keys in daemons]

    def describe(self) -> str:
        return "public host keys of sshd"


def _host_key(path: str, public: FileRead | None) -> HostKey:
    """A host key measured from its public half as read on the host."""
    if public is None or not public.complete:
        return HostKey(path, problem="its public key file was not read whole")
    try:
        algorithm, bits = public_key_size(public.data.decode("utf-8", "replace"))
    except PublicKeyError as exc:
        return HostKey(path, problem=f"ssh-keygen would not read its public key: {exc}")
    return HostKey(path, algorithm, bits)


# ------------------------------------------------------------------------------------------ the fact


@dataclass(frozen=True)
class SshdEffectiveConfig(Fact[list[SshdConfig] | None]):
    """What the host's running SSH daemons enforce, for every kind of connection their Match blocks select.

    ``sshd -T`` runs on the config file each listener was started with (``-f``), so defaults, ``Include``
    files and a second daemon for SFTP all count; with no daemon running, the default configuration is
    what the next start would enforce. Only the host's own daemons count: a process named sshd in another
    mount namespace is a container's (``[ /proc/$p/ns/mnt -ef /proc/self/ns/mnt ]``, a shell builtin, so
    containers cost nothing). ``None`` means sshd is not installed.
    """

    kind: ClassVar[str] = "sshd"
    arg: str = ""
    companions: ClassVar[tuple[str, ...]] = ("sshd-hostkeys",)

    def script(self) -> str:
        return f"command -v sshd >/dev/null 2>&1 || exit {ABSENT}; {_OWN_DAEMONS}" + _daemons(_run_sshd)

    @classmethod
    def joint_script(cls, facts: Sequence[Fact[Any]]) -> str:
        """The sshd fact and the host keys' in one snippet, each ``sshd -T`` run once: the host keys are
        read from the dumps the sshd fact's loop kept (a daemon whose dump failed is asked again as the
        host keys' own snippet asks it). The sshd fact's own snippet always exits 0."""
        if [f.kind for f in facts] != [cls.kind, SshdHostKeys.kind]:
            raise ValueError(f"no joint snippet for {[f.kind for f in facts]}")
        return (
            f"command -v sshd >/dev/null 2>&1 || {JOINT_ABSENT_SH}; {READS_SH}\nnl='\n'; {JOINT_SH}"
            f"{_OWN_DAEMONS}"
            + "S=$(H=; "
            + _daemons(_kept_sshd, 'H="$H$r$nl$k$M;"; ')
            + '; printf \'%s\' "$M J$H"); H=${S##*"$M J"}; S=${S%"$M J"*}; '
            + 'jf 0 "$S"\nset --\n'
            + f'for f in ${{cfgs:-{DEFAULT_CONFIG}}}; do rec C "$f"\n'
            + 'y=${H%%"$M;"*}; H=${H#*"$M;"}; o=${y#*"$nl"}\n'
            + f'[ "${{y%%"$nl"*}}" = 0 ] || {_KEYS_RUN}{_KEYS_READ}done\n'
            + 'rd %s "$@"'
        )

    def parse(self, capture: Capture) -> list[SshdConfig] | None:
        return self.parse_with(capture, lambda _key: None)

    def follow_ups(self, capture: Capture) -> list[Fact[Any]]:
        if capture.exit_code != 0:
            return []
        daemons = _FIRST_ROUNDS(capture)
        if isinstance(daemons, FactError):
            return []
        out: list[Fact[Any]] = []
        for daemon in daemons:
            out += [f for f in _match_facts(daemon)[1] if f is not None]
        return out

    def parse_with(
        self, capture: Capture, lookup: Callable[[str], Capture | None]
    ) -> list[SshdConfig] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        daemons = _FIRST_ROUNDS(capture)
        if isinstance(daemons, FactError):
            raise FactError(str(daemons))
        configs = []
        for daemon in daemons:
            base, base_spec, variants = _variants(daemon, lookup)
            configs.append(
                SshdConfig(
                    source=daemon.source,
                    options=base,
                    matches=tuple(daemon.matches),
                    variants=tuple(variants),
                    base_spec=base_spec,
                )
            )
        return configs

    def describe(self) -> str:
        return "effective sshd configuration"


def _read_first_round(capture: Capture) -> list[_Daemon] | FactError:
    try:
        return _first_round(capture.stdout_text(), SshdEffectiveConfig().describe())
    except FactError as exc:
        return exc


# The first round is read once per capture: to find the second round (the collection), then to parse the
# fact (the evaluation), which get the same capture object. Its daemons are read, never changed. Between
# the two, the other hosts under way (50 by default) read theirs: 128 to 256 kept cover them.
_FIRST_ROUNDS = PerCapture(_read_first_round, size=128)


def _listeners(daemon: _Daemon) -> list[Any]:
    return parse_listeners(daemon.options.get("listenaddress", []))


def _match_facts(daemon: _Daemon) -> tuple[list[Block], list[SshdMatchConfig | None], Spec | None]:
    """The daemon's blocks, one follow-up per block (``None``: no connection found), then the no-match one."""
    if not daemon.matches:
        return [], [], None
    blocks = [parse_block(text) for text in daemon.matches]
    none, per_block = specs(blocks, _listeners(daemon))
    facts: list[SshdMatchConfig | None] = [_match_fact(daemon.source, s) if s else None for s in per_block]
    if none is not None:
        facts.append(_match_fact(daemon.source, none))
    return blocks, facts, none


def _match_fact(source: str, spec: Spec) -> SshdMatchConfig:
    groups = f" groups={','.join(spec.groups)}" if spec.groups else ""
    return SshdMatchConfig(f"{source} {spec.render()}{groups}")


def _usable(fact: Fact[Any], lookup: Callable[[str], Capture | None]) -> Capture:
    capture = lookup(fact.key)
    if capture is None:
        raise FactError(f"{fact.describe()} was not collected (second probe round)")
    if capture.problem is not None or not capture.complete:
        raise FactError(f"{fact.describe()}: {capture.problem or 'incomplete capture'}")
    if capture.redactions:
        raise FactError(f"{fact.describe()}: {', '.join(capture.redactions)} redacted from what sshd printed")
    return capture


def _variants(
    daemon: _Daemon, lookup: Callable[[str], Capture | None]
) -> tuple[dict[str, list[str]], str, list[MatchVariant]]:
    """Base options, the connection they were asked for, and one variant per non-``all`` Match block."""
    try:
        blocks, facts, none = _match_facts(daemon)
    except ValueError as exc:
        raise FactError(f"effective sshd configuration of {daemon.source}: {exc}") from exc
    if not blocks:
        return daemon.options, "", []
    listeners = _listeners(daemon)
    variants: list[MatchVariant] = []
    for index, (block, fact) in enumerate(zip(blocks, facts, strict=False)):
        if block.is_all:
            continue  # applies to every connection: part of every configuration sshd prints
        if fact is None:
            if not local_reachable(block, listeners):
                why = "the daemon listens on no address and port that its LocalAddress/LocalPort select"
                variants.append(MatchVariant(block.text, unreachable=why))
                continue
            raise FactError(
                f"effective sshd configuration of {daemon.source}: no connection satisfying "
                f"'Match {block.text}' could be built to ask sshd about it"
            )
        result = SshdMatchConfig(fact.arg).parse(_usable(fact, lookup))
        if result.no_member:
            groups = ", ".join(block.values("group"))
            variants.append(MatchVariant(block.text, unreachable=f"no account of group {groups} on the host"))
            continue
        applied = tuple(c for c, hit in result.checked if hit)
        if index >= len(result.checked) or not result.checked[index][1]:
            raise FactError(
                f"effective sshd configuration of {daemon.source}: sshd did not apply 'Match {block.text}' "
                f"to the connection built for it ({fact.describe()})"
            )
        spec = fact.arg.split()[1] if result.user is None else f"user={result.user},{fact.arg.split()[1]}"
        variants.append(MatchVariant(block.text, spec, applied, result.options))
    if none is None:
        return daemon.options, "", variants  # every connection matches a block, or none could be built
    last = facts[-1]
    assert last is not None
    result = SshdMatchConfig(last.arg).parse(_usable(last, lookup))
    stray = [c for c, hit in result.checked if hit and c.lower() != "all"]
    if stray:
        raise FactError(
            f"effective sshd configuration of {daemon.source}: sshd applied 'Match {stray[0]}' to the "
            f"connection built to match no block ({last.describe()})"
        )
    return result.options, none.render(), variants
