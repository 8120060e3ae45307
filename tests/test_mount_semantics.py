"""Mount options as mount(8) applies them: the fstab model of facts/fstab.py against the real mount.

An fstab of tmpfs lines is mounted with ``mount -a -T <file>`` in a private mount namespace; the flags the
kernel then shows in /proc/self/mounts must be those :func:`mount_flags` derives from each line's options,
where a text match on "noexec" gets "noexec,exec" and "user" wrong.
"""

from __future__ import annotations

import subprocess

import pytest
from kernel_lab import needs_root, staging_dir

from hds_compliance.facts import MountTable
from hds_compliance.facts.fstab import Fstab, mount_flags
from hds_compliance.model import Capture

OPTION_LISTS = [
    "defaults",
    "nosuid,nodev,noexec",
    "noexec,exec",  # the last of a pair wins: exec
    "exec,noexec",
    "user",  # implies noexec, nosuid, nodev
    "user,exec",  # ... unless a later option says otherwise
    "users,suid",
    "owner",  # implies nosuid, nodev
    "group,dev",
    "defaults,ro,noexec",
    "noauto,nodev",
]


@pytest.fixture(autouse=True)
def _root() -> None:
    needs_root()


def test_fstab_options_resolve_as_mount_applies_them() -> None:
    """Each line's options, mounted by the real mount(8): nodev, nosuid, noexec and ro as the kernel shows
    them are what mount_flags() computes (noauto lines are mounted explicitly, noauto only matters to -a)."""
    with staging_dir() as staging:
        lines = []
        for number, options in enumerate(OPTION_LISTS):
            (staging / f"m{number}").mkdir()
            lines.append(f"hds-kernel-{number} {staging}/m{number} tmpfs {options} 0 0")
        fstab = staging / "fstab"
        fstab.write_text("# test fstab\n" + "\n".join(lines) + "\n")
        mounts = " && ".join(f"mount -T {fstab} {staging}/m{n}" for n in range(len(OPTION_LISTS)))
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"{mounts} && cat /proc/self/mounts",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    table = MountTable().parse(Capture(fact="mounts", command="", exit_code=0, stdout=done.stdout))
    entries = Fstab().parse(Capture(fact="fstab", command="", exit_code=0, stdout=fstab_text(lines)))
    for entry in entries:
        [live] = [m for m in table if m.mountpoint == entry.mountpoint]
        flags = mount_flags(entry.options)
        for flag in ("nodev", "nosuid", "noexec", "ro"):
            assert (flag in live.options) == flags[flag], (entry.options, flag, sorted(live.options))


def fstab_text(lines: list[str]) -> str:
    """The fstab file as the Fstab fact reads it."""
    return "# test fstab\n" + "\n".join(lines) + "\n"
