"""What sudo reads: the sudoers file its policy plugin names, and every file and directory it includes.

The probe follows ``@include``/``#include`` and ``@includedir``/``#includedir`` on the host (one round trip),
the way sudo resolves them: a relative path is taken in the directory of the file that includes it, ``%h``
is the short host name, and an included directory contributes its entries whose names hold no ``.`` and do
not end in ``~``. It reports each file's mode and owner too: sudo skips an included file that is not owned
by root, is world-writable, or group-writable with a group other than root. The ORDER in which sudo applies
the files is decided by the checks (:mod:`checks.sudo`), from the include lines themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, in_shell_sh
from hds_compliance.facts.reads import READS_SH, parse_listing
from hds_compliance.model import Capture

SUDO_CONF = "/etc/sudo.conf"
DEFAULT_SUDOERS = "/etc/sudoers"

# Lines sudo treats as includes: "@include path", "#include path" (and the -dir forms), after blanks. One
# awk over all files of an include round (those after the first s): each file's targets, by its place
# in the argument list ("@<place>" then "f PATH" / "d PATH" lines).
_INCLUDES_AWK = r"""
BEGIN { for (i = 1; i < ARGC; i++) at[ARGV[i]] = i; for (i = 1; i <= s; i++) ARGV[i] = "" }
{ sub(/^[ \t]+/, "") }
/^[#@]include[ \t]/ || /^[#@]includedir[ \t]/ {
  k = ($0 ~ /^.includedir/) ? "d" : "f"
  v = $0; sub(/^[#@]include(dir)?[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v)
  if (v ~ /^".*"$/) v = substr(v, 2, length(v) - 2); else gsub(/\\ /, " ", v)
  gsub(/%h/, host, v)
  if (v !~ /^\//) { dir = FILENAME; sub(/\/[^\/]*$/, "", dir); v = dir "/" v }
  out[at[FILENAME]] = out[at[FILENAME]] k " " v "\n"
}
END { for (i = s + 1; i < ARGC; i++) printf "@%d\n%s", i, out[i] }
"""

# Breadth first, as sudo's own order of discovery: each round's files are searched for includes by ONE
# awk, and the next round lists, in the order the round met them, the entries of its directories and the
# targets of its files (a file's place "@N" in the round's list is replaced by its targets). All files
# are read at the end by ONE stat and ONE head (rd). Records: P the sudoers file, O the short host name,
# D an included directory (E its entries sudo reads, I those it skips), A absent, X not a regular file,
# U unreadable.
_SCRIPT = r"""nl='
'
start=/etc/sudoers
if [ -r /etc/sudo.conf ]; then
  s=$(awk '$1 == "Plugin" && $2 == "sudoers_policy" {
    for (i = 4; i <= NF; i++) if (sub(/^sudoers_file=/, "", $i)) { print $i; exit } }' /etc/sudo.conf)
  [ -n "$s" ] && start=$s
fi
[ -e "$start" ] || return 100
[ -r "$start" ] || return 101
{ read -r h < /proc/sys/kernel/hostname; } 2>/dev/null || h=$(uname -n); h=${h%%.*}
rec P "$start"; rec O "$h"
q="f $start"; seen=$nl; rc=0; set --
while [ -n "$q" ]; do
  nx=; b=$#
  while [ -n "$q" ]; do
    item=${q%%"$nl"*}
    if [ "$item" = "$q" ]; then q=; else q=${q#*"$nl"}; fi
    case $seen in *"$nl$item$nl"*) continue ;; esac
    seen=$seen$item$nl
    p=${item#? }
    if [ "${item%% *}" = d ]; then
      [ -d "$p" ] || { rec A "$p"; continue; }
      [ -r "$p" ] && [ -x "$p" ] || { rec U "$p"; rc=101; continue; }
      rec D "$p"
      for e in "$p"/*; do
        [ -e "$e" ] || [ -L "$e" ] || continue
        case ${e##*/} in *.*|*~) rec I "$e"; continue ;; esac
        rec E "$e"; nx=$nx$nl"f $e"
      done
      continue
    fi
    [ -e "$p" ] || { rec A "$p"; continue; }
    [ -f "$p" ] || { rec X "$p"; continue; }
    [ -r "$p" ] || { rec U "$p"; rc=101; continue; }
    set -- "$@" "$p"; nx=$nx$nl@$#
  done
  inc=
  [ $# -gt "$b" ] && inc=$nl$(awk -v s="$b" -v host="$h" 'INCLUDES' "$@")$nl
  nx=${nx#"$nl"}
  while [ -n "$nx" ]; do
    l=${nx%%"$nl"*}
    if [ "$l" = "$nx" ]; then nx=; else nx=${nx#*"$nl"}; fi
    case $l in
      @*) t=$nl${inc#*"$nl$l$nl"}; t=${t%%"$nl@"*}; t=${t#"$nl"}; t=${t%"$nl"} ;;
      *) t=$l ;;
    esac
    [ -n "$t" ] && q=${q:+$q$nl}$t
  done
done
rd '%s %a %u %g' "$@" || rc=1
return "$rc"
""".replace("INCLUDES", _INCLUDES_AWK.strip())


@dataclass(frozen=True)
class SudoersFile:
    """One file sudo may read, with what sudo checks before reading it."""

    path: str
    mode: int
    uid: int
    gid: int
    content: bytes
    truncated: bool  # larger than the probe reads from one file

    def refused_because(self) -> str | None:
        """Why sudo skips this file when it is included (``None``: sudo reads it)."""
        if self.uid != 0:
            return f"owned by uid {self.uid}, not root"
        if self.mode & 0o002:
            return "world-writable"
        if self.mode & 0o020 and self.gid != 0:
            return f"group-writable with group {self.gid}, not root"
        return None


@dataclass(frozen=True)
class SudoSources:
    """Everything sudo's sudoers policy reads, as found on the host (unordered: see the module doc)."""

    start: str  # the sudoers file (sudo.conf may name another one than /etc/sudoers)
    host: str  # short host name, what "%h" in an include stands for
    files: dict[str, SudoersFile] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=dict)  # included directory -> entries sudo reads
    ignored: list[str] = field(default_factory=list)  # entries of included directories sudo skips
    absent: list[str] = field(default_factory=list)  # included paths that do not exist
    not_regular: list[str] = field(default_factory=list)


def include_target(line: str, including: str, host: str) -> tuple[str, str] | None:
    """``("f"|"d", path)`` when ``line`` is an include directive, resolved as sudo (and the probe) do."""
    text = line.lstrip(" \t")
    for word, kind in (("includedir", "d"), ("include", "f")):
        for lead in "@#":
            prefix = lead + word
            if text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in (" ", "\t"):
                value = text[len(prefix) :].strip(" \t").rstrip("\r \t")
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                else:
                    value = value.replace("\\ ", " ")
                value = value.replace("%h", host)
                if not value.startswith("/"):
                    value = including.rsplit("/", 1)[0] + "/" + value
                return kind, value
    return None


@dataclass(frozen=True)
class SudoPolicySources(Fact[SudoSources | None]):
    """The sudoers policy files as sudo would read them; ``None`` when sudo's sudoers file does not exist."""

    kind: ClassVar[str] = "sudo-policy"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return f"{READS_SH}\n" + in_shell_sh("nl start s h q seen rc nx b item p e inc l t", _SCRIPT)

    def parse(self, capture: Capture) -> SudoSources | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        if capture.redactions:  # the records are framed by byte counts: altered text cannot be read back
            raise FactError(
                f"{self.describe()}: {', '.join(capture.redactions)} redacted from what the probe read; "
                "the sudo policy is not judged on altered text"
            )
        listing = parse_listing(capture, self.describe(), "PODEIAXU")
        dirs: dict[str, list[str]] = {}
        for tag, path in listing.records:
            if tag == "D":
                dirs[path] = []
            elif tag == "E":
                dirs[path.rsplit("/", 1)[0]].append(path)
        files: dict[str, SudoersFile] = {}
        for read in listing.files:
            try:
                mode, uid, gid = int(read.stat[0], 8), int(read.stat[1]), int(read.stat[2])
            except (IndexError, ValueError) as exc:
                raise FactError(f"{self.describe()}: unexpected stat of {read.path}: {read.stat}") from exc
            files[read.path] = SudoersFile(read.path, mode, uid, gid, read.data, truncated=not read.complete)
        start, host = listing.named("P"), listing.named("O")
        if not start or start[0] not in files:
            raise FactError(f"{self.describe()}: the sudoers file itself was not read")
        return SudoSources(
            start=start[0],
            host=host[0] if host else "",
            files=files,
            dirs=dirs,
            ignored=listing.named("I"),
            absent=listing.named("A"),
            not_regular=listing.named("X"),
        )

    def describe(self) -> str:
        return "sudoers policy files"
