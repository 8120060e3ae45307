"""Storage: file-system usage (df) and which block devices carry each mount (device-mapper, dm-crypt)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from hds_compliance.facts.base import Fact, FactError
from hds_compliance.facts.framed import FRAMES_SH, Frame, framed_output, parts
from hds_compliance.model import Capture


def _frames(fact: Fact[Any], capture: Capture) -> list[Frame]:
    frames = framed_output(fact, capture)
    if frames is None:  # these snippets never exit ABSENT
        raise fact._fail(capture)
    return frames


# ---------------------------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class FsUsage:
    """One local file system as ``df -P`` reports it: blocks and inodes used, in percent."""

    mountpoint: str
    device: str
    fstype: str
    used_percent: int
    inodes_percent: int | None  # None where the file system has no inode count (btrfs, vfat: "-")


def _df_rows(text: str, what: str) -> dict[str, tuple[str, str, str]]:
    """mountpoint -> (device, type, capacity) from ``df -P -T`` output."""
    rows: dict[str, tuple[str, str, str]] = {}
    for line in text.splitlines()[1:]:
        # "Filesystem Type Size Used Avail Capacity Mounted on": the mount point may hold spaces.
        fields = line.split(None, 6)
        if len(fields) < 7:
            raise FactError(f"{what}: unexpected df line {line!r}")
        rows[fields[6]] = (fields[0], fields[1], fields[5])
    return rows


def _percent(text: str) -> int | None:
    return int(text[:-1]) if re.fullmatch(r"\d+%", text) else None


@dataclass(frozen=True)
class DiskUsage(Fact[list[FsUsage]]):
    """Usage of every local file system, blocks and inodes (``df -P -l -T``, ``df -P -l -T -i``)."""

    kind: ClassVar[str] = "df"
    arg: str = ""

    def script(self) -> str:
        return (
            f"{FRAMES_SH}; b=$(df -P -l -T -k) || exit 1; i=$(df -P -l -T -i) || exit 1; "
            'part blocks "$b"; part inodes "$i"'
        )

    def parse(self, capture: Capture) -> list[FsUsage]:
        blocks, inodes = parts(self, _frames(self, capture), "blocks", "inodes")
        block_rows = _df_rows(blocks.text(), self.describe())
        inode_rows = _df_rows(inodes.text(), self.describe())
        out = []
        for mountpoint, (device, fstype, capacity) in block_rows.items():
            used = _percent(capacity)
            if used is None:
                raise FactError(f"{self.describe()}: {mountpoint} has no usage figure ({capacity})")
            inode = inode_rows.get(mountpoint)
            out.append(FsUsage(mountpoint, device, fstype, used, _percent(inode[2]) if inode else None))
        if not out:
            raise FactError(f"{self.describe()}: df listed no file system")
        return out

    def describe(self) -> str:
        return "file-system usage (df)"


# ------------------------------------------------------------------------------------------ block layout


@dataclass(frozen=True)
class MountEntry:
    """A mount from ``/proc/self/mountinfo``: where, which device (major:minor), what it mounts."""

    mountpoint: str
    majmin: str
    source: str
    fstype: str


@dataclass(frozen=True)
class BlockDevice:
    """A block device from /sys/class/block: its number, device-mapper uuid and name, and slaves."""

    name: str
    majmin: str
    dm_uuid: str | None
    dm_name: str | None
    slaves: tuple[str, ...]


@dataclass(frozen=True)
class StorageLayout:
    """Mounts and block devices: enough to follow a mount down to the devices under it."""

    mounts: list[MountEntry]
    devices: dict[str, BlockDevice]

    def chain(self, name: str) -> list[BlockDevice]:
        """The device and every device under it (device-mapper slaves, recursively)."""
        out: list[BlockDevice] = []
        pending = [name]
        while pending:
            device = self.devices.get(pending.pop())
            if device is not None and device not in out:
                out.append(device)
                pending.extend(device.slaves)
        return out

    def by_number(self, majmin: str) -> BlockDevice | None:
        """The block device with this major:minor number."""
        return next((d for d in self.devices.values() if d.majmin == majmin), None)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class BlockLayout(Fact[StorageLayout]):
    """The mount table with device numbers (``/proc/self/mountinfo``) and the block devices with their
    device-mapper identity (``dm/uuid``: ``CRYPT-LUKS2-...`` for dm-crypt, ``LVM-...``) and slaves."""

    kind: ClassVar[str] = "storage-dm"
    arg: str = ""

    def script(self) -> str:
        return (
            f'{FRAMES_SH}; m=$(cat /proc/self/mountinfo) || exit 1; part mountinfo "$m"; '
            "d=$(grep -H '' /sys/class/block/*/dev /sys/class/block/*/dm/uuid /sys/class/block/*/dm/name "
            '2>/dev/null); part sys "$d"; '
            's=$(for f in /sys/class/block/*/slaves/*; do [ -e "$f" ] && echo "$f"; done); '
            'part slaves "$s"'
        )

    def parse(self, capture: Capture) -> StorageLayout:
        mountinfo, sysfs, slaves = parts(self, _frames(self, capture), "mountinfo", "sys", "slaves")
        mounts = []
        for line in mountinfo.text().splitlines():
            head, sep, tail = line.partition(" - ")
            fields, rest = head.split(), tail.split()
            if not sep or len(fields) < 5 or len(rest) < 2:
                raise FactError(f"{self.describe()}: unexpected mountinfo line {line!r}")
            mounts.append(MountEntry(_unescape(fields[4]), fields[2], _unescape(rest[1]), rest[0]))
        values: dict[str, dict[str, str]] = {}
        for line in sysfs.text().splitlines():
            match = re.match(r"^/sys/class/block/([^/]+)/(dev|dm/uuid|dm/name):(.*)$", line)
            if match:
                values.setdefault(match.group(1), {})[match.group(2)] = match.group(3).strip()
        under: dict[str, list[str]] = {}
        for line in slaves.text().splitlines():
            match = re.match(r"^/sys/class/block/([^/]+)/slaves/([^/]+)$", line)
            if match:
                under.setdefault(match.group(1), []).append(match.group(2))
        devices = {
            name: BlockDevice(
                name=name,
                majmin=v.get("dev", ""),
                dm_uuid=v.get("dm/uuid") or None,
                dm_name=v.get("dm/name") or None,
                slaves=tuple(sorted(under.get(name, []))),
            )
            for name, v in sorted(values.items())
        }
        if not mounts:
            raise FactError(f"{self.describe()}: empty mount table")
        return StorageLayout(mounts=mounts, devices=devices)

    def describe(self) -> str:
        return "block devices under the mounts"
