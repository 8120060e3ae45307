"""Partitioning and mount options, judged on the live mount table AND on what the next boot mounts.

Live: ``/proc/self/mounts``. The mount that holds a path is the one with the longest mount point that is a
prefix of it; when several mounts share a mount point, the last one listed is on top and is the one in use.

Next boot: /etc/fstab and the systemd mount unit of the mount point (see :mod:`hds_compliance.facts.fstab`
for which one wins), options resolved as mount(8) does (``noexec,exec`` is exec; ``user`` implies noexec,
nosuid, nodev). Every finding says which one it is about: the live table or the file that the boot reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts import Fact, FileStat, Mount, MountTable
from hds_compliance.facts.fstab import Fstab, FstabEntry, MountUnit, MountUnits, mount_flags, option_value

MOUNTS = MountTable()
FSTAB = Fstab()
_FLAGS = ("nodev", "nosuid", "noexec", "ro", "noauto")


def _clean(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    return path.rstrip("/") or "/"


def _point(mount: Mount) -> str:
    return mount.mountpoint.rstrip("/") or "/"


def _holder(mounts: list[Mount], path: str) -> Mount | None:
    best: Mount | None = None
    for mount in mounts:
        point = _point(mount)
        inside = path == point or point == "/" or path.startswith(point + "/")
        if inside and (best is None or len(point) >= len(_point(best))):
            best = mount
    return best


def _show(mount: Mount) -> str:
    return f"{mount.mountpoint} ({mount.device}, {mount.fstype})"


@dataclass(frozen=True)
class BootMount:
    """How the next boot mounts a path: what decides it, with which options, and whether it mounts it."""

    source: str  # "/etc/fstab:4", "/etc/systemd/system/tmp.mount", ...
    options: tuple[str, ...]
    fstype: str | None
    active: bool  # mounted at boot (not noauto, unit started by something)
    why_inactive: str = ""


# File systems systemd mounts itself at boot (mount-setup.c) when /etc/fstab has no line for them; a line
# there changes their options (systemd-remount-fs).
API_MOUNTS = {
    "/dev/shm": ("tmpfs", ("nosuid", "nodev", "strictatime", "mode=1777")),
    "/proc": ("proc", ("nosuid", "nodev", "noexec")),
    "/run": ("tmpfs", ("nosuid", "nodev", "strictatime", "mode=755")),
}


def boot_mount(path: str, fstab: list[FstabEntry] | None, unit: MountUnit) -> BootMount | None:
    """What the next boot does with ``path``; None when nothing mounts it there."""
    entry = next((e for e in fstab or [] if e.mountpoint == path), None)  # the generator keeps the first
    if unit.masked:
        return BootMount(f"{unit.file} (masked)", (), None, False, f"{unit.file} masks {unit.name}")
    dropin = f" with Options= from {unit.dropin_options_from}" if unit.dropin_options is not None else ""
    if unit.file is not None and (unit.over_fstab or entry is None):
        options = unit.dropin_options or unit.file_options or ("defaults",)
        # An fstab line without noauto makes the generator pull the unit in, whichever file defines it.
        pulled = entry is not None and not mount_flags(entry.options)["noauto"]
        active = bool(unit.enabled_by) or pulled
        why = "" if active else f"{unit.name} is not enabled (no .wants/.requires link) and fstab has no line"
        return BootMount(f"{unit.file}{dropin}", options, unit.fstype, active, why)
    if entry is not None:
        options = unit.dropin_options or entry.options
        noauto = mount_flags(entry.options)["noauto"] and not unit.enabled_by
        why = f"{entry.where} marks it noauto" if noauto else ""
        return BootMount(f"{entry.where}{dropin}", options, entry.fstype, not noauto, why)
    if path in API_MOUNTS:
        fstype, options = API_MOUNTS[path]
        return BootMount("systemd's own mount (no /etc/fstab line)", options, fstype, True)
    return None


def _facts(p: PathParams) -> list[Fact[Any]]:
    return [MOUNTS, FSTAB, MountUnits(p.path)]


class PathParams(Params):
    path: str = Field(description="mount point, e.g. /tmp or /var/log/audit")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _clean(value)


def _live_own(p: PathParams, ctx: Context) -> tuple[Mount | None, str]:
    """The live mount whose mount point is exactly ``p.path`` (or None), and why not."""
    holder = _holder(ctx.get(MOUNTS), p.path)
    if holder is None:
        return None, f"live mount table: no mount holds {p.path}"
    if _point(holder) != p.path:
        return None, f"live mount table: {p.path} is not a separate mount: it lives on {_show(holder)}"
    return holder, ""


def _boot(p: PathParams, ctx: Context) -> tuple[BootMount | None, str]:
    boot = boot_mount(p.path, ctx.get(FSTAB), ctx.get(MountUnits(p.path)))
    if boot is None:
        return None, (
            f"next boot: neither /etc/fstab nor a systemd mount unit mounts {p.path}, "
            f"so it stays on the file system below"
        )
    if not boot.active:
        return None, f"next boot: {p.path} is not mounted at boot ({boot.why_inactive})"
    return boot, ""


def _live_and_boot(p: PathParams, ctx: Context) -> tuple[Mount | None, BootMount | None, list[str]]:
    """The path's own live mount and what the next boot mounts there, with why either is missing."""
    live, live_why = _live_own(p, ctx)
    boot, boot_why = _boot(p, ctx)
    return live, boot, [why for why in (live_why, boot_why) if why]


def _missing(options: list[str], present: frozenset[str] | tuple[str, ...], resolve: bool) -> list[str]:
    """Options of ``options`` not in effect in ``present`` (resolved as mount(8) does when ``resolve``)."""
    flags = mount_flags(present) if resolve else {}
    out = []
    for option in options:
        if option in _FLAGS and resolve:
            ok = flags[option]
        elif "=" in option and resolve:
            name, _, value = option.partition("=")
            ok = option_value(present, name) == value
        else:
            ok = option in present
        if not ok:
            out.append(option)
    return out


class OptionsParams(PathParams):
    options: list[str] = Field(min_length=1, description="options that must all be in effect, e.g. [nodev]")
    if_mounted: bool = Field(
        default=False,
        description="a path that is no separate mount, now or at boot, is not_applicable (e.g. /srv, /opt: "
        "their options matter only when they are partitions)",
    )


@check("mounts.options_present", params=OptionsParams, facts=_facts)
def mounts_options_present(p: OptionsParams, ctx: Context) -> Outcome:
    """A path is a separate mount with every listed option (e.g. /tmp nodev,nosuid,noexec), now and at the
    next boot."""
    live, boot, problems = _live_and_boot(p, ctx)
    if p.if_mounted and live is None and boot is None:
        return not_applicable(f"{p.path} is not a separate mount now nor at boot: its options do not apply")
    if live is not None:
        missing = _missing(p.options, live.options, resolve=False)
        if missing:
            problems.append(f"live mount table: {_show(live)} is mounted without {', '.join(missing)}")
    if boot is not None:
        missing = _missing(p.options, boot.options, resolve=True)
        if missing:
            problems.append(
                f"next boot: {boot.source} mounts {p.path} with {','.join(boot.options)}, "
                f"that is without {', '.join(missing)}"
            )
    if problems:
        return failed("; ".join(problems))
    assert live is not None and boot is not None
    return passed(
        f"{_show(live)} is mounted with {', '.join(p.options)}, and {boot.source} keeps them at boot"
    )


class SeparateParams(PathParams):
    exclude_fstypes: list[str] = Field(
        default_factory=list, description="file-system types that do not count, e.g. [tmpfs] for logs"
    )


@check("mounts.separate_partition", params=SeparateParams, facts=_facts)
def mounts_separate_partition(p: SeparateParams, ctx: Context) -> Outcome:
    """A path is its own mounted file system, so filling it cannot fill / (and the reverse), now and at
    the next boot."""
    live, boot, problems = _live_and_boot(p, ctx)
    if live is not None and live.fstype in p.exclude_fstypes:
        problems.append(
            f"live mount table: {_show(live)} is a {live.fstype} file system, which does not count"
        )
    if boot is not None and boot.fstype in p.exclude_fstypes:
        problems.append(f"next boot: {boot.source} mounts a {boot.fstype} file system, which does not count")
    if problems:
        return failed("; ".join(problems))
    assert live is not None and boot is not None
    return passed(
        f"{p.path} is a separate mount: {live.device} ({live.fstype}), kept at boot by {boot.source}"
    )


class HidepidParams(Params):
    accept: list[str] = Field(
        default_factory=lambda: ["2", "invisible"],
        description="hidepid values accepted (the kernel shows hidepid=2 as 'invisible' since 5.8)",
    )


@check("mounts.proc_hidepid", params=HidepidParams, facts=lambda p: [MOUNTS, FSTAB])
def mounts_proc_hidepid(p: HidepidParams, ctx: Context) -> Outcome:
    """/proc hides other users' processes (hidepid), now and after the next boot (an fstab line for /proc,
    applied by systemd-remount-fs)."""
    problems = []
    live = _holder(ctx.get(MOUNTS), "/proc")
    live_value = option_value(sorted(live.options), "hidepid") if live and _point(live) == "/proc" else None
    if live is None or _point(live) != "/proc":
        problems.append("live mount table: /proc is not mounted")
    elif live_value not in p.accept:
        problems.append(f"live mount table: /proc is mounted with hidepid={live_value or '0 (not set)'}")
    entry = next((e for e in ctx.get(FSTAB) or [] if e.mountpoint == "/proc"), None)
    if entry is None:
        problems.append("next boot: /etc/fstab has no /proc line, so /proc is mounted without hidepid")
    elif option_value(entry.options, "hidepid") not in p.accept:
        problems.append(f"next boot: {entry.where} mounts /proc with {','.join(entry.options)}")
    if problems:
        return failed(f"{'; '.join(problems)} (accepted: hidepid={' or '.join(p.accept)})")
    assert entry is not None
    return passed(f"/proc is mounted with hidepid={live_value}, and {entry.where} keeps it at boot")


BOOT_DIR = "/boot"


@check(
    "mounts.boot_protected",
    facts=lambda p: [MOUNTS, FSTAB, MountUnits(BOOT_DIR), FileStat(BOOT_DIR)],
)
def mounts_boot_protected(p: NoParams, ctx: Context) -> Outcome:
    """/boot is out of reach of unprivileged users: not mounted (noauto at boot), or closed to others."""
    st = ctx.get(FileStat(BOOT_DIR))
    if st is None:
        return failed(f"{BOOT_DIR} does not exist")
    if st.file_type == "symbolic link":
        return failed(f"{BOOT_DIR} is a symbolic link: judge its target instead")
    closed = not st.mode & 0o007
    if closed:
        return passed(f"{BOOT_DIR} is {st.mode:04o}: others can neither list nor read kernels and boot files")
    holder = _holder(ctx.get(MOUNTS), BOOT_DIR)
    mounted = holder is not None and _point(holder) == BOOT_DIR
    boot = boot_mount(BOOT_DIR, ctx.get(FSTAB), ctx.get(MountUnits(BOOT_DIR)))
    mode = f"{BOOT_DIR} is {st.mode:04o} (others may read it)"
    if boot is None:
        return failed(f"{mode} and no /etc/fstab line or mount unit mounts it noauto")
    if boot.active:
        return failed(f"{mode} and {boot.source} mounts it at every boot (no noauto)")
    if mounted:
        assert holder is not None
        return failed(
            f"{mode}: {boot.why_inactive}, but the live mount table shows it mounted: {_show(holder)}"
        )
    return passed(f"{BOOT_DIR} is not mounted and stays so at boot ({boot.why_inactive})")
