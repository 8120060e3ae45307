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

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.model import Capture

SUDO_CONF = "/etc/sudo.conf"
DEFAULT_SUDOERS = "/etc/sudoers"

# Lines sudo treats as includes: "@include path", "#include path" (and the -dir forms), after blanks.
_INCLUDES_AWK = r"""
{ sub(/^[ \t]+/, "") }
/^[#@]include[ \t]/ || /^[#@]includedir[ \t]/ {
  k = ($0 ~ /^.includedir/) ? "d" : "f"
  v = $0; sub(/^[#@]include(dir)?[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v)
  if (v ~ /^".*"$/) v = substr(v, 2, length(v) - 2); else gsub(/\\ /, " ", v)
  gsub(/%h/, host, v)
  if (v !~ /^\//) v = dir "/" v
  print k " " v
}
"""

_SCRIPT = r"""nl='
'
start=/etc/sudoers
if [ -r /etc/sudo.conf ]; then
  s=$(awk '$1 == "Plugin" && $2 == "sudoers_policy" {
    for (i = 4; i <= NF; i++) if (sub(/^sudoers_file=/, "", $i)) { print $i; exit } }' /etc/sudo.conf)
  [ -n "$s" ] && start=$s
fi
[ -e "$start" ] || exit 100
[ -r "$start" ] || exit 101
h=$(uname -n); h=${h%%.*}
printf 'start %s\nhost %s\n' "$start" "$h"
todo="f $start"; seen=$nl; rc=0
while [ -n "$todo" ]; do
  item=${todo%%"$nl"*}
  if [ "$item" = "$todo" ]; then todo=; else todo=${todo#*"$nl"}; fi
  case $seen in *"$nl$item$nl"*) continue ;; esac
  seen=$seen$item$nl
  p=${item#? }
  if [ "${item%% *}" = d ]; then
    [ -d "$p" ] || { printf 'absent %s\n' "$p"; continue; }
    [ -r "$p" ] && [ -x "$p" ] || { printf 'unreadable %s\n' "$p"; rc=101; continue; }
    printf 'dir %s\n' "$p"
    for e in "$p"/*; do
      [ -e "$e" ] || [ -L "$e" ] || continue
      case ${e##*/} in *.*|*~) printf 'ignored %s\n' "$e"; continue ;; esac
      printf 'entry %s\n' "$e"
      todo=${todo:+$todo$nl}"f $e"
    done
    continue
  fi
  [ -e "$p" ] || { printf 'absent %s\n' "$p"; continue; }
  [ -f "$p" ] || { printf 'notfile %s\n' "$p"; continue; }
  [ -r "$p" ] || { printf 'unreadable %s\n' "$p"; rc=101; continue; }
  m=$(stat -L -c '%a %u %g' -- "$p") || { rc=1; continue; }
  n=$(wc -c < "$p") || { rc=1; continue; }
  k=$n; [ "$k" -le "$C" ] || k=$C
  printf 'file %s %s %s %s\n' "$k" "$n" "$m" "$p"
  head -c "$k" -- "$p"; printf '\n'
  inc=$(awk -v dir="${p%/*}" -v host="$h" 'INCLUDES' "$p")
  [ -n "$inc" ] && todo=${todo:+$todo$nl}$inc
done
exit "$rc"
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
    arg: str = ""

    def script(self) -> str:
        return _SCRIPT

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
        data = capture.stdout_bytes()
        values: dict[str, str] = {}
        files: dict[str, SudoersFile] = {}
        dirs: dict[str, list[str]] = {}
        lists: dict[str, list[str]] = {"ignored": [], "absent": [], "notfile": []}
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                raise FactError(f"{self.describe()}: unterminated record at byte {pos}")
            record = data[pos:end].decode("utf-8", "replace")
            pos = end + 1
            word, _, rest = record.partition(" ")
            if word in ("start", "host"):
                values[word] = rest
            elif word == "dir":
                dirs[rest] = []
            elif word == "entry" and rest.rsplit("/", 1)[0] in dirs:
                dirs[rest.rsplit("/", 1)[0]].append(rest)
            elif word in lists:
                lists[word].append(rest)
            elif word == "file":
                sudoers, pos = self._file(rest, data, pos)
                files[sudoers.path] = sudoers
            else:
                raise FactError(f"{self.describe()}: unexpected record {record[:60]!r}")
        if values.get("start") not in files:
            raise FactError(f"{self.describe()}: the sudoers file itself was not read")
        return SudoSources(
            start=values["start"],
            host=values.get("host", ""),
            files=files,
            dirs=dirs,
            ignored=lists["ignored"],
            absent=lists["absent"],
            not_regular=lists["notfile"],
        )

    def _file(self, header: str, data: bytes, pos: int) -> tuple[SudoersFile, int]:
        try:
            kept_s, size_s, mode_s, uid_s, gid_s, path = header.split(" ", 5)
            kept, size, mode, uid, gid = int(kept_s), int(size_s), int(mode_s, 8), int(uid_s), int(gid_s)
        except ValueError as exc:
            raise FactError(f"{self.describe()}: malformed file record {header[:80]!r}") from exc
        body = data[pos : pos + kept]
        if len(body) != kept or data[pos + kept : pos + kept + 1] != b"\n":
            raise FactError(f"{self.describe()}: {path} changed while it was read")
        return SudoersFile(path, mode, uid, gid, body, truncated=kept < size), pos + kept + 1

    def describe(self) -> str:
        return "sudoers policy files"
