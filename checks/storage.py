"""Storage: free space on local file systems (ISO 27001 A.8.6, ANSSI logging guide R22) and data at rest
on dm-crypt (A.8.24, A.7.10, PGSSI-S 4.5.6.4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from hds_compliance.check import (
    Context,
    FactUnavailable,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.facts.base import check_path
from hds_compliance.facts.storage import BlockLayout, DiskUsage, FsUsage, MountEntry

USAGE = DiskUsage()
LAYOUT = BlockLayout()

Path = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._+@/-]*$")]


def _holder(path: str, mountpoints: list[str]) -> str | None:
    """The mount point whose file system holds ``path`` (the longest prefix)."""
    best = None
    for mountpoint in mountpoints:
        inside = path == mountpoint or mountpoint == "/" or path.startswith(mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(mountpoint) > len(best)):
            best = mountpoint
    return best


class CapacityParams(Params):
    max_percent: int = Field(
        ge=1, le=100, description="highest acceptable block usage of a file system, in %"
    )
    max_inodes_percent: int = Field(ge=1, le=100, description="highest acceptable inode usage, in %")
    paths: list[Path] = Field(
        default_factory=lambda: ["/", "/var/log", "/var/log/audit"],
        description="paths whose file system is named in the verdict (logs must never fill up unseen)",
    )
    ignore_types: list[str] = Field(
        default_factory=lambda: ["tmpfs", "devtmpfs", "squashfs", "iso9660", "overlay", "ramfs", "efivarfs"],
        description="file-system types not judged (memory-backed, read-only images)",
    )


@check("capacity.filesystems_below_threshold", params=CapacityParams, facts=lambda p: [USAGE])
def filesystems_below_threshold(p: CapacityParams, ctx: Context) -> Outcome:
    """Every local file system (those of / and the log directories included) is below max_percent of its
    blocks and max_inodes_percent of its inodes."""
    usage = [u for u in ctx.get(USAGE) if u.fstype not in p.ignore_types]
    if not usage:
        raise FactUnavailable("df listed no local file system of a judged type")
    by_mount: dict[str, FsUsage] = {u.mountpoint: u for u in usage}
    full = []
    for u in usage:
        if u.used_percent > p.max_percent:
            full.append(f"{u.mountpoint} ({u.device}) {u.used_percent}% of blocks used")
        if u.inodes_percent is not None and u.inodes_percent > p.max_inodes_percent:
            full.append(f"{u.mountpoint} ({u.device}) {u.inodes_percent}% of inodes used")
    held = []
    for path in p.paths:
        mount = _holder(path, list(by_mount))
        if mount is not None:
            held.append(f"{path} on {mount} ({by_mount[mount].used_percent}%)")
    where = f"; {', '.join(held)}" if held else ""
    if full:
        return failed(f"above {p.max_percent}% / {p.max_inodes_percent}% inodes: {'; '.join(full)}{where}")
    return passed(
        f"{len(usage)} local file system(s) below {p.max_percent}% (inodes {p.max_inodes_percent}%){where}"
    )


class EncryptedParams(Params):
    paths: list[Path] = Field(
        min_length=1, description="paths holding health data (their file systems are judged)"
    )
    data_roles: list[str] = Field(
        min_length=1, description="inventory roles of the hosts holding health data (others are not judged)"
    )

    @field_validator("paths")
    @classmethod
    def _plain(cls, values: list[str]) -> list[str]:
        for value in values:
            check_path(value)
        return values


def _encryption(layout_mount: MountEntry, ctx: Context) -> tuple[bool, str]:
    layout = ctx.get(LAYOUT)
    device = layout.by_number(layout_mount.majmin)
    if device is None:
        raise FactUnavailable(
            f"{layout_mount.mountpoint} ({layout_mount.fstype} from {layout_mount.source}) is on device "
            f"{layout_mount.majmin}, which is no block device: its encryption cannot be traced"
        )
    chain = layout.chain(device.name)
    crypt = next((d for d in chain if d.dm_uuid and d.dm_uuid.startswith("CRYPT-")), None)
    path = " -> ".join(f"{d.name}{' (' + d.dm_name + ')' if d.dm_name else ''}" for d in chain)
    if crypt is not None:
        kind = crypt.dm_uuid.split("-")[1] if crypt.dm_uuid and crypt.dm_uuid.count("-") >= 2 else "dm-crypt"
        return True, f"{layout_mount.mountpoint} on {path}: {kind} ({crypt.name})"
    return False, f"{layout_mount.mountpoint} on {path}: no dm-crypt device underneath"


@check("storage.data_encrypted", params=EncryptedParams, facts=lambda p: [LAYOUT])
def data_encrypted(p: EncryptedParams, ctx: Context) -> Outcome:
    """On data hosts, the file systems holding the data paths sit on dm-crypt (LUKS), directly or via LVM."""
    layout = ctx.get(LAYOUT)
    if not set(ctx.host.roles) & set(p.data_roles):
        roles = ", ".join(ctx.host.roles) or "none"
        return not_applicable(
            f"not a data host: its roles ({roles}) include none of {', '.join(p.data_roles)}"
        )
    mounts = {m.mountpoint: m for m in layout.mounts}  # a later mount on the same point hides the earlier
    clear: list[str] = []
    encrypted: list[str] = []
    for path in p.paths:
        mountpoint = _holder(path, list(mounts))
        if mountpoint is None:
            raise FactUnavailable(f"no mount holds {path}")
        ok, detail = _encryption(mounts[mountpoint], ctx)
        (encrypted if ok else clear).append(f"{path}: {detail}")
    if clear:
        return failed("; ".join(clear))
    return passed("; ".join(encrypted))
