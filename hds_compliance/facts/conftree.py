"""Configuration trees: a daemon's main files, its drop-in directories and the files its include directives
name, read in ONE snippet (includes are expanded on the host, so no second round trip is needed).

The snippet walks the tree with shell builtins: each include round runs ONE awk over every file found in
the round before, and all files are read at the end by ONE ``stat`` and ONE ``head``
(:mod:`hds_compliance.facts.reads`), whatever their number. It prints, besides the files read::

    U <length> <path>\\n   a file the probe may not read (the fact is then an error)
    D <length> <path>\\n   a directory that exists (augenrules reads rules.d only then)

Which include directive a file holds, and what it means (order, globbing, last value wins), is the
parser's business on the evaluating side: the snippet only follows every path that looks included, so a
commented include costs an extra read, never a missing file. Relative include paths are not followed
(they name files relative to the daemon's working directory, which the probe does not share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hds_compliance.facts.base import UNREADABLE, Fact, FactError, in_shell_sh, quote
from hds_compliance.facts.reads import READS_SH, parse_listing
from hds_compliance.model import Capture

# _he PATH: whether PATH is a file to read (absolute, not seen yet, regular, readable); a path that is not a
# file is absent only if the deepest folder on its way that the probe sees may be listed and searched;
# otherwise it is unreadable (audit.rules below a 0750 /etc/audit, for nobody). Files to read pile up in
# "$@", in the order found. (The snippet runs in the probe's shell: its functions are named _h...)
_WALK = (
    "rc=0; nl='\n'; seen=$nl; set --; "
    f'_hu() {{ rec U "$1"; rc={UNREADABLE}; }}; '
    "_he() { case $1 in /*) ;; *) return 1;; esac; "
    'case $seen in *"$nl$1$nl"*) return 1;; esac; seen=$seen$1$nl; '
    'if ! [ -f "$1" ]; then p=${1%/*}; while [ -n "$p" ] && ! [ -d "$p" ]; do p=${p%/*}; done; '
    '[ -z "$p" ] || { [ -x "$p" ] && [ -r "$p" ]; } || _hu "$1"; return 1; fi; '
    '[ -r "$1" ] || { _hu "$1"; return 1; }; }; '
)
# Up to three include rounds: "_hi N FILE..." prints what the files after the first N include; a directory
# stands for every file in it.
_FOLLOW = (
    'n=0; a=0; while [ "$n" -lt 3 ] && [ "$a" -lt $# ]; do b=$#; '
    'for p in $(_hi "$a" "$@" 2>/dev/null); do [ -d "$p" ] && p="$p/*"; '
    'for g in $p; do _he "$g" && set -- "$@" "$g"; done; done; a=$b; n=$((n+1)); done; '
)


def tree_script(roots: Sequence[str], dirs: Sequence[str] = (), include: str = "") -> str:
    """sh reading ``roots`` (paths or globs, in order), marking existing ``dirs``, and following includes.

    ``include`` is an awk program printing, one per line, the paths or globs the files it reads include
    (``FILENAME`` tells which file a line comes from); a directory stands for every file in it.
    """
    marks = "".join(f"[ -d {quote(d)} ] && printf 'D %s %s\\n' {len(d)} {quote(d)}; " for d in dirs)
    script = f'{_WALK}{marks}for r in {" ".join(roots)}; do _he "$r" && set -- "$@" "$r"; done; '
    if include:
        skip = 'BEGIN { for (i = 1; i <= s; i++) ARGV[i] = "" }'  # awk skips files already searched
        script += f'_hi() {{ s=$1; shift; awk -v s="$s" \'{skip} {include}\' "$@"; }}; ' + _FOLLOW
    variables = "rc nl seen p r n a b g" if include else "rc nl seen p r"
    return f"{READS_SH}; " + in_shell_sh(variables, script + 'rd %s "$@" || rc=1; return "$rc"')


@dataclass(frozen=True)
class ConfigTree:
    """The files of a configuration tree in the order they were read, and the directories that exist."""

    files: dict[str, bytes] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()

    def get(self, path: str) -> bytes | None:
        """Content of ``path`` if it was read."""
        return self.files.get(path)

    def under(self, directory: str, suffix: str = "") -> dict[str, bytes]:
        """Files read directly inside ``directory`` (ending with ``suffix``), sorted by name."""
        prefix = directory.rstrip("/") + "/"
        return {
            path: data
            for path, data in sorted(self.files.items())
            if path.startswith(prefix) and "/" not in path[len(prefix) :] and path.endswith(suffix)
        }


def parse_tree(capture: Capture, what: str) -> ConfigTree:
    """The files and directories of a tree snippet; a file the probe could not read makes the tree unknown."""
    listing = parse_listing(capture, what, "DU")
    unreadable = listing.named("U")
    if capture.exit_code == UNREADABLE or unreadable:
        raise FactError(f"{what}: not readable with the probe's privileges ({', '.join(unreadable)})")
    return ConfigTree({f.path: f.data for f in listing.files}, tuple(listing.named("D")))


class TreeFact(Fact[ConfigTree]):
    """Base of configuration-tree facts: subclasses give ``roots``, ``dirs`` and the ``include`` program."""

    roots: ClassVar[tuple[str, ...]] = ()
    dirs: ClassVar[tuple[str, ...]] = ()
    include: ClassVar[str] = ""
    what: ClassVar[str] = "configuration"
    in_shell: ClassVar[bool] = True

    def script(self) -> str:
        return tree_script(self.roots, self.dirs, self.include)

    def parse(self, capture: Capture) -> ConfigTree:
        if capture.exit_code not in (0, UNREADABLE):
            raise self._fail(capture)
        return parse_tree(capture, self.describe())

    def describe(self) -> str:
        return self.what
