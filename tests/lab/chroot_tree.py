"""A small real root filesystem tree for ``chroot ROOT sh -c '...'``, built from host binaries."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

BINARIES: tuple[str, ...] = (
    "sh",
    "bash",
    "cat",
    "base64",
    "head",
    "tail",
    "stat",
    "ls",
    "awk",
    "sed",
    "grep",
    "find",
    "sort",
    "uniq",
    "tr",
    "cut",
    "wc",
    "env",
    "id",
    "uname",
    "readlink",
    "basename",
    "dirname",
    "printf",
    "test",
    "timeout",
    "od",
    "tee",
    "sleep",
    "true",
    "false",
)
_SEARCH_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
_TOP_LEVEL_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_LDD_PATH_RE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")

# (type, mode, uid, gid, size, mtime_ns, sha256 | link target | rdev | None)
DigestEntry = tuple[str, int, int, int, int, int, str | int | None]


def _inside(root: Path, abs_path: str) -> Path:
    if not abs_path.startswith("/"):
        raise ValueError(f"path inside the tree must be absolute: {abs_path!r}")
    rel = os.path.normpath(abs_path).lstrip("/")
    if rel.startswith(".."):
        raise ValueError(f"path escapes the tree: {abs_path!r}")
    return root / rel


def _copy_file(root: Path, abs_path: str) -> None:
    dest = _inside(root, abs_path)
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(abs_path, dest)  # follows symlinks: the tree gets the real content


def _shared_libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    return [m.group(1) for line in out.splitlines() if (m := _LDD_PATH_RE.search(line))]


def _add_binary(root: Path, name: str) -> None:
    found = shutil.which(name, path=_SEARCH_PATH)
    if found is None:
        return
    real = os.path.realpath(found)
    _copy_file(root, real)
    for lib in _shared_libraries(real):
        _copy_file(root, lib)
    link = _inside(root, found)
    if found != real and not os.path.lexists(link):
        link.parent.mkdir(parents=True, exist_ok=True)
        # e.g. awk -> /etc/alternatives/awk -> mawk: point straight at the real binary.
        target = os.path.basename(real) if os.path.dirname(real) == os.path.dirname(found) else real
        os.symlink(target, link)


def build_chroot(
    root: Path,
    files: dict[str, str | bytes],
    *,
    binaries: Iterable[str] = BINARIES,
    dev_null: bool = True,
) -> Path:
    """Build a minimal chroot-able tree at ``root`` from host binaries and write ``files`` into it.

    ``dev_null`` adds a real /dev/null character device (root only), so ``2>/dev/null`` in a
    chrooted command neither fails nor creates a regular file in the tree.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # Mirror merged-/usr links (bin -> usr/bin, ...) so ldd's /lib/... paths resolve in the tree.
    for name in _TOP_LEVEL_LINKS:
        host_path = Path("/") / name
        if host_path.is_symlink():
            target = os.readlink(host_path).lstrip("/")
            (root / target).mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(root / name):
                os.symlink(target, root / name)
    for name in binaries:
        _add_binary(root, name)
    for name in ("etc", "proc", "root"):
        (root / name).mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    if dev_null:
        (root / "dev").mkdir(exist_ok=True)
        if not os.path.lexists(root / "dev" / "null"):
            os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.chmod(root / "dev" / "null", 0o666)
    for abs_path, content in files.items():
        dest = _inside(root, abs_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(dest, 0o644)
    return root


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "unknown"


def tree_digest(root: Path) -> dict[str, DigestEntry]:
    """Map every path in the tree ("/" = root, no links followed) to its metadata and content hash.

    Each value is ``(type, mode, uid, gid, size, mtime_ns, extra)`` where ``extra`` is the sha256
    of a regular file, the target of a symlink, the device number of a device, else None.
    """
    root = Path(root)
    result: dict[str, DigestEntry] = {}
    pending = [str(root)]
    while pending:
        current = pending.pop()
        st = os.lstat(current)
        kind = _kind(st.st_mode)
        extra: str | int | None = None
        if kind == "file":
            extra = _sha256(current)
        elif kind == "symlink":
            extra = os.readlink(current)
        elif kind in ("char", "block"):
            extra = st.st_rdev
        elif kind == "dir":
            pending.extend(os.path.join(current, entry) for entry in os.listdir(current))
        rel = "/" + os.path.relpath(current, root) if current != str(root) else "/"
        mode = stat.S_IMODE(st.st_mode)
        result[rel] = (kind, mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return result
