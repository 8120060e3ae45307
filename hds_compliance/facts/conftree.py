"""Configuration trees: a daemon's main files, its drop-in directories and the files its include directives
name, read in ONE snippet (includes are expanded on the host, so no second round trip is needed).

A tree fact prints one record per file, framed by its byte length (file contents cannot forge a boundary)::

    F <size> <name length> <path>\\n<size bytes>   a file that was read (capped at $C bytes)
    U <name length> <path>\\n                     a file the probe may not read (the fact is then an error)
    D <name length> <path>\\n                     a directory that exists (augenrules reads rules.d only then)

Which include directive a file holds, and what it means (order, globbing, last value wins), is the
parser's business on the evaluating side: the snippet only follows every path that looks included, so a
commented include costs an extra read, never a missing file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hds_compliance.facts.base import UNREADABLE, Fact, FactError, quote
from hds_compliance.model import Capture

# Defines e() (emit one file once), then reads the roots and follows includes up to three levels deep.
# A path that is not a file is absent only if the deepest folder on its way that the probe sees may be
# listed and searched; otherwise it is unreadable (audit.rules below a 0750 /etc/audit, for nobody).
_EMIT = (
    "rc=0; seen=' '; todo=''; "
    f'u() {{ printf \'U %s %s\\n\' "${{#1}}" "$1"; rc={UNREADABLE}; }}; '
    'e() { case "$seen" in *" $1 "*) return 1;; esac; seen="$seen$1 "; '
    'if ! [ -f "$1" ]; then p=${1%/*}; while [ -n "$p" ] && ! [ -d "$p" ]; do p=${p%/*}; done; '
    '[ -z "$p" ] || { [ -x "$p" ] && [ -r "$p" ]; } || u "$1"; return 1; fi; '
    'if [ -r "$1" ]; then s=$(wc -c < "$1"); [ "$s" -le "$C" ] || s=$C; '
    'printf \'F %s %s %s\\n\' "$s" "${#1}" "$1"; head -c "$s" -- "$1"; '
    'else u "$1"; fi; return 0; }; '
)
_FOLLOW = (
    "n=0; while [ -n \"$todo\" ] && [ $n -lt 3 ]; do next=''; for f in $todo; do "
    'for p in $(inc "$f" 2>/dev/null); do [ -d "$p" ] && p="$p/*"; '
    'for g in $p; do e "$g" && next="$next $g"; done; done; done; todo=$next; n=$((n+1)); done; '
)


def any_case(word: str) -> str:
    """A basic regular expression matching ``word`` in any letter case, e.g. ``IncludeConfig``."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def tree_script(roots: Sequence[str], dirs: Sequence[str] = (), include: str = "") -> str:
    """sh reading ``roots`` (paths or globs, in order), marking existing ``dirs``, and following includes.

    ``include`` is the body of a shell function ``inc`` that prints, one per line, the paths or globs a
    file (``$1``) includes; a directory stands for every file in it.
    """
    marks = "".join(f"[ -d {quote(d)} ] && printf 'D %s %s\\n' {len(d)} {quote(d)}; " for d in dirs)
    script = _EMIT + marks + f'for r in {" ".join(roots)}; do e "$r" && todo="$todo $r"; done; '
    if include:
        script += f"inc() {{ {include}; }}; " + _FOLLOW
    return script + 'exit "$rc"'


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
    """The records of a tree snippet; a file the probe could not read makes the whole tree unknown."""
    data = capture.stdout_bytes()
    files: dict[str, bytes] = {}
    dirs: list[str] = []
    unreadable: list[str] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        head = data[pos : end if end >= 0 else len(data)]
        try:
            tag, rest = head.split(b" ", 1)
            if tag == b"F":
                size_s, length_s, rest = rest.split(b" ", 2)
                size, length = int(size_s), int(length_s)
            else:
                length_s, rest = rest.split(b" ", 1)
                size, length = 0, int(length_s)
        except ValueError as exc:
            raise FactError(f"{what}: malformed listing at byte {pos}") from exc
        name_start = pos + len(head) - len(rest)
        name_end = name_start + length
        if end < 0 or tag not in (b"F", b"U", b"D") or data[name_end : name_end + 1] != b"\n":
            raise FactError(f"{what}: malformed listing at byte {pos}")
        name = data[name_start:name_end].decode("utf-8", "replace")
        body = data[name_end + 1 : name_end + 1 + size]
        if len(body) != size:
            raise FactError(f"{what}: {name} changed while it was read")
        if tag == b"F":
            files[name] = body
        elif tag == b"D":
            dirs.append(name)
        else:
            unreadable.append(name)
        pos = name_end + 1 + size
    if capture.exit_code == UNREADABLE or unreadable:
        raise FactError(f"{what}: not readable with the probe's privileges ({', '.join(unreadable)})")
    return ConfigTree(files, tuple(dirs))


class TreeFact(Fact[ConfigTree]):
    """Base of configuration-tree facts: subclasses give ``roots``, ``dirs`` and the ``include`` function."""

    roots: ClassVar[tuple[str, ...]] = ()
    dirs: ClassVar[tuple[str, ...]] = ()
    include: ClassVar[str] = ""
    what: ClassVar[str] = "configuration"

    def script(self) -> str:
        return tree_script(self.roots, self.dirs, self.include)

    def parse(self, capture: Capture) -> ConfigTree:
        if capture.exit_code not in (0, UNREADABLE):
            raise self._fail(capture)
        return parse_tree(capture, self.describe())

    def describe(self) -> str:
        return self.what
