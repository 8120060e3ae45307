"""Record the ``fstab-unit:/tmp`` fixtures and captures from real unit directories in mount namespaces.

    python tests/record_mount_units.py     # rewrites tests/facts/fstab-unit/*.yaml and mounts.yaml's scenes

Each scene is this machine's /etc/systemd/system and /usr/lib/systemd/system, copied and changed, then
bind-mounted over the real directories in a private mount namespace (``unshare -m``): Debian's own
/usr/share/systemd/tmp.mount is the unit, as systemd ships it. The probe runs the fact's own snippet there;
nothing on the machine changes. The capture of a scene goes both into its fixture and into the anchor of
the same name in tests/captures/mounts.yaml (only that anchor's block is rewritten).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402
from fact_fixtures import dump_capture, load_capture, plain, replace_block  # noqa: E402
from facts.record import run  # noqa: E402

from hds_compliance.facts.fstab import MountUnits  # noqa: E402

UNIT = Path("/usr/share/systemd/tmp.mount")
ETC, USR = "/etc/systemd/system", "/usr/lib/systemd/system"
NOEXEC = "[Mount]\nOptions=mode=1777,strictatime,nosuid,nodev,noexec\n"
CAPTURES = HERE / "captures" / "mounts.yaml"
DATE = date.today().isoformat()  # the day the fixtures are recorded, in their sources


def _enabled(etc: Path, usr: Path) -> None:
    shutil.copy(UNIT, etc / "tmp.mount")
    (etc / "local-fs.target.wants").mkdir(exist_ok=True)
    (etc / "local-fs.target.wants" / "tmp.mount").symlink_to("../tmp.mount")
    (etc / "tmp.mount.d").mkdir()
    (etc / "tmp.mount.d" / "hds.conf").write_text(NOEXEC)


def _in_usr(etc: Path, usr: Path) -> None:
    shutil.copy(UNIT, usr / "tmp.mount")


def _masked(etc: Path, usr: Path) -> None:
    _in_usr(etc, usr)
    (etc / "tmp.mount").symlink_to("/dev/null")


# fixture name -> (anchor in mounts.yaml or None, how the scene differs from this machine, source)
SCENES: dict[str, tuple[str | None, Callable[[Path, Path], None] | None, str]] = {
    "debian12_none": (
        None,
        None,
        f"this machine (Debian 12.11, as root), {DATE}: no tmp.mount in any unit directory",
    ),
    "debian_tmp_mount_enabled": (
        "tmp_mount_enabled",
        _enabled,
        "this machine (Debian 12.11), private mount namespace with /etc overlaid: Debian's "
        "/usr/share/systemd/tmp.mount copied to /etc/systemd/system, enabled (local-fs.target.wants link) "
        f"and a drop-in adding noexec, as SYS-03's remediation says; {DATE}",
    ),
    "usr_lib_unit_not_enabled": (
        "tmp_mount_not_enabled",
        _in_usr,
        "this machine (Debian 12.11), private mount namespace with /usr/lib/systemd/system overlaid: "
        f"systemd's tmp.mount installed there as RHEL 9 and Debian 13 ship it, not enabled; {DATE}",
    ),
    "masked": (
        "tmp_mount_masked",
        _masked,
        "this machine (Debian 12.11), private mount namespace: tmp.mount in /usr/lib/systemd/system masked "
        f"by a link to /dev/null in /etc/systemd/system; {DATE}",
    ),
}


def record(change: Callable[[Path, Path], None] | None) -> dict[str, object]:
    """The fact's capture in a scene where ``change`` altered copies of both unit directories."""
    fact = MountUnits("/tmp")
    if change is None:
        [capture] = run([fact], "")
        return dump_capture(capture)
    with tempfile.TemporaryDirectory(prefix="hds-units-") as tmp:
        etc, usr = Path(tmp, "etc"), Path(tmp, "usr")
        shutil.copytree(ETC, etc, symlinks=True)
        shutil.copytree(USR, usr, symlinks=True)
        change(etc, usr)
        mounts = f"mount --bind {shlex.quote(str(etc))} {ETC} && mount --bind {shlex.quote(str(usr))} {USR}"
        script = mounts + ' && exec "$0" "$@"'
        [capture] = run([fact], f"unshare -m sh -c {shlex.quote(script)}")
        return dump_capture(capture)


def main() -> None:
    """Command line."""
    if os.geteuid() != 0:
        raise SystemExit("needs root (mount namespaces)")
    fact = MountUnits("/tmp")
    captures = CAPTURES.read_text()
    for name, (anchor, change, source) in SCENES.items():
        fields = record(change)
        data = {"arg": fact.arg, "source": source, "command": fact.script(), "capture": fields}
        data["value"] = plain(fact.parse(load_capture(fact.key, dict(fields))))
        out = HERE / "facts" / "fstab-unit" / f"{name}.yaml"
        out.write_text(yaml.dump(data, sort_keys=False, allow_unicode=True, width=110))
        print(out)
        if anchor is not None:
            captures = replace_block(captures, [f"  {anchor}: &{anchor}"], fields)
    CAPTURES.write_text(captures)
    print(CAPTURES)


if __name__ == "__main__":
    main()
