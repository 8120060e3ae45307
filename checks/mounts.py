"""Partitioning and mount options, judged on the live mount table (``/proc/self/mounts``), not on fstab.

The mount that holds a path is the one with the longest mount point that is a prefix of it; when several
mounts share a mount point, the last one listed is on top and is the one in use.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from hds_compliance.check import Context, Outcome, Params, check, failed, passed
from hds_compliance.facts import Mount, MountTable

MOUNTS = MountTable()


def _clean(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    return path.rstrip("/") or "/"


def _holder(mounts: list[Mount], path: str) -> Mount | None:
    best: Mount | None = None
    for mount in mounts:
        point = mount.mountpoint.rstrip("/") or "/"
        inside = path == point or point == "/" or path.startswith(point + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
            best = mount
    return best


def _show(mount: Mount) -> str:
    return f"{mount.mountpoint} ({mount.device}, {mount.fstype})"


class PathParams(Params):
    path: str = Field(description="mount point, e.g. /tmp or /var/log/audit")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _clean(value)


def _own_mount(p: PathParams, ctx: Context) -> Mount | Outcome:
    """The mount whose mount point is exactly ``p.path``, or the failing outcome saying why not."""
    holder = _holder(ctx.get(MOUNTS), p.path)
    if holder is None:
        return failed(f"no mount holds {p.path} in the live mount table")
    if (holder.mountpoint.rstrip("/") or "/") != p.path:
        return failed(f"{p.path} is not a separate mount: it lives on {_show(holder)}")
    return holder


class OptionsParams(PathParams):
    options: list[str] = Field(min_length=1, description="options that must all be in effect, e.g. [nodev]")


@check("mounts.options_present", params=OptionsParams, facts=lambda p: [MOUNTS])
def mounts_options_present(p: OptionsParams, ctx: Context) -> Outcome:
    """A path is a separate mount and is mounted with every listed option (e.g. /tmp nodev,nosuid,noexec)."""
    holder = _own_mount(p, ctx)
    if isinstance(holder, Outcome):
        return holder
    missing = [o for o in p.options if o not in holder.options]
    if missing:
        return failed(f"{_show(holder)} is mounted without {', '.join(missing)}")
    return passed(f"{_show(holder)} is mounted with {', '.join(p.options)}")


class SeparateParams(PathParams):
    exclude_fstypes: list[str] = Field(
        default_factory=list, description="file-system types that do not count, e.g. [tmpfs] for logs"
    )


@check("mounts.separate_partition", params=SeparateParams, facts=lambda p: [MOUNTS])
def mounts_separate_partition(p: SeparateParams, ctx: Context) -> Outcome:
    """A path is its own mounted file system, so filling it cannot fill / (and the reverse)."""
    holder = _own_mount(p, ctx)
    if isinstance(holder, Outcome):
        return holder
    if holder.fstype in p.exclude_fstypes:
        return failed(f"{_show(holder)} is a {holder.fstype} file system, which does not count here")
    return passed(f"{p.path} is a separate mount: {holder.device} ({holder.fstype})")
