"""One walk of the local file systems for every file-system finding (ANSSI-BP-028 R53, R54, R56).

ONE ``find`` collects every class of finding: files without a known owner or group, world-writable
directories without the sticky bit, world-writable regular files (symbolic links, always 0777, are not),
setuid and setgid regular files. It walks every local, disk- or memory-backed file system once (from
/proc/self/mountinfo: ext2/3/4, xfs, btrfs, zfs, f2fs, jfs, reiserfs, vfat, exfat, ntfs, tmpfs, ramfs;
bind mounts of an already-walked file system skipped), never network or pseudo file systems, staying on
each one (``-xdev``), pruning the skipped paths, under ``nice -n 19`` and ``ionice -c 3`` when present.
The host sends back, per class, the count and at most 50 paths.

A file that vanishes during the walk (find: "No such file or directory") is expected on a live system;
any other error makes the walk unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, check_path, quote
from hds_compliance.model import Capture

WALK_LIMIT = 50
LOCAL_FSTYPES = "ext2 ext3 ext4 xfs btrfs zfs f2fs jfs reiserfs vfat exfat ntfs ntfs3 tmpfs ramfs".split()
# find tests, by class. The comma operator evaluates each for every file.
CLASSES = {
    "nouser": "-nouser",
    "nogroup": "-nogroup",
    "ww_dir_no_sticky": "-type d -perm -0002 ! -perm -1000",
    "ww_file": "-type f -perm -0002",
    "setuid": "-type f -perm -4000",
    "setgid": "-type f -perm -2000",
}

# mountinfo: id parent major:minor root mountpoint options [optional...] - fstype source superoptions.
# A mount whose root lies inside a root already kept for the same device is a bind mount: skipped; so is
# a mount point seen before (a mount stacked on another one hides it).
_ROOTS_AWK = (
    '{ for (i = 7; i <= NF && $i != "-"; i++); if ($(i+1) !~ re) next; '
    'if ($5 ~ /\\\\/) { print "skip " $5; next } if (seen[$5]++) next; '
    'dup = 0; n = split(kept[$3], ks, " "); '
    'for (j = 1; j <= n; j++) if (ks[j] == "/" || $4 == ks[j] || index($4, ks[j] "/") == 1) dup = 1; '
    'if (dup) next; kept[$3] = kept[$3] " " $4; print "root " $5 }'
)
# Count every class, keep the first WALK_LIMIT paths of each. A path may hold newlines: each record is
# printed as "<lines it spans><TAB><class><TAB><path>" (no escaping: awks disagree on backslashes).
_COUNT_AWK = (
    'BEGIN { RS = "\\0" } { c = $0; sub(/\\t.*/, "", c); n[c]++; '
    f'if (c == "@rc" || n[c] <= {WALK_LIMIT}) '
    '{ k = split($0, lines, "\\n"); print k "\\t" $0 } } '
    'END { for (c in n) if (c != "@rc") print "1\\t@count\\t" c "\\t" n[c] }'
)


@dataclass(frozen=True)
class WalkResult:
    """What the walk found: per class, how many files and the first paths."""

    roots: tuple[str, ...]  # file systems walked
    skipped_mounts: tuple[str, ...]  # local mount points not walked (names the probe cannot pass to find)
    counts: dict[str, int]
    paths: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class FileWalk(Fact[WalkResult]):
    """The walk of local file systems (arg: comma-separated paths to prune, e.g. ``/var/lib/docker``)."""

    kind: ClassVar[str] = "walk"
    arg: str = ""

    def __post_init__(self) -> None:
        for path in self.skip:
            check_path(path)

    @property
    def skip(self) -> list[str]:
        """Paths the walk does not enter."""
        return [p for p in self.arg.split(",") if p]

    def script(self) -> str:
        prune = " -o ".join(f"-path {quote(p)}" for p in self.skip)
        prune_expr = f"\\( {prune} \\) -prune -o " if prune else ""
        tests = " , ".join(f"\\( {test} -printf '{name}\\t%p\\0' \\)" for name, test in CLASSES.items())
        local = "|".join(LOCAL_FSTYPES)
        return (
            f"roots=$(awk -v re='^({local})$' '{_ROOTS_AWK}' /proc/self/mountinfo) || exit 1; set --; "
            'while read -r k m; do case $k in root) set -- "$@" "$m";; skip) echo "@skipped $m";; esac; done '
            "<<EOF\n$roots\nEOF\n"
            '[ $# -gt 0 ] || { echo "no local file system found in /proc/self/mountinfo" >&2; exit 1; }; '
            'for m in "$@"; do echo "@root $m"; done; '
            'N=; command -v nice >/dev/null 2>&1 && N="nice -n 19"; '
            'I=; ionice -c 3 true 2>/dev/null && I="ionice -c 3"; '
            f'{{ $N $I find "$@" -xdev {prune_expr}\\( {tests} \\); printf "@rc\\t%s\\0" "$?"; }} '
            f"| awk '{_COUNT_AWK}'"
        )

    def parse(self, capture: Capture) -> WalkResult:
        if capture.exit_code != 0:
            raise self._fail(capture)
        roots, skipped = [], []
        counts = dict.fromkeys(CLASSES, 0)
        paths: dict[str, list[str]] = {name: [] for name in CLASSES}
        status = None
        lines = capture.stdout_bytes().decode("utf-8", "surrogateescape").split("\n")
        pos = 0
        while pos < len(lines):
            line = lines[pos]
            span, _, record = line.partition("\t")
            if line.startswith("@root "):
                roots.append(line[6:])
            elif line.startswith("@skipped "):
                skipped.append(line[9:])
            elif span.isdigit() and int(span) >= 1 and pos + int(span) <= len(lines):
                record = "\n".join([record, *lines[pos + 1 : pos + int(span)]])
                pos += int(span) - 1
                head, _, rest = record.partition("\t")
                if head == "@rc":
                    status = rest
                elif head == "@count" and rest.partition("\t")[0] in counts:
                    name, _, number = rest.partition("\t")
                    counts[name] = int(number)
                elif head in paths:
                    paths[head].append(rest)
                else:
                    raise FactError(f"{self.describe()}: unexpected output {line[:80]!r}")
            elif line:
                raise FactError(f"{self.describe()}: unexpected output {line[:80]!r}")
            pos += 1
        if status is None:
            raise FactError(f"{self.describe()}: the walk did not finish")
        errors = [e for e in capture.stderr.splitlines() if e.strip()]
        fatal = [e for e in errors if not e.endswith("No such file or directory")]
        if status not in ("0", "1") or fatal or (status == "1" and not errors):
            reason = fatal[0] if fatal else f"find exited with {status}"
            raise FactError(f"{self.describe()}: {reason}")
        return WalkResult(tuple(roots), tuple(skipped), counts, {k: tuple(v) for k, v in paths.items()})

    def describe(self) -> str:
        return "file-system walk"
