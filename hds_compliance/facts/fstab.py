"""What the next boot mounts: /etc/fstab, and the systemd mount units that can replace or add to it.

``Fstab`` parses /etc/fstab (fstab(5): blank-separated fields, ``\\040``-style escapes, ``#`` comments).
``MountUnits`` reads the systemd units of one mount point (``tmp.mount`` for /tmp), their drop-ins and
the ``.wants``/``.requires`` links that start them at boot. systemd's unit search path decides which
wins: a unit in /etc/systemd/system or /run/systemd/system replaces the unit systemd-fstab-generator makes
from an fstab line, which itself replaces a unit shipped in /usr/lib/systemd/system (``tmp.mount`` on RHEL
and Debian 13); drop-ins apply to whichever unit wins, generated ones included.

:func:`mount_flags` resolves an option list the way mount(8) does: left to right, the last of a pair
(``exec``/``noexec``) winning, ``defaults`` meaning rw,suid,dev,exec,auto, ``user``/``users`` implying
noexec,nosuid,nodev and ``owner``/``group`` nosuid,nodev (unless overridden by later options).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, UNREADABLE, Fact, FactError, check_path, in_shell_sh, quote
from hds_compliance.facts.reads import READS_SH, WHOLE_SH, parse_listing
from hds_compliance.facts.sysctl_conf import USR_TWIN_SH, conf_files_sh, config_order
from hds_compliance.model import Capture

# Flags a mount option list can turn on or off, by the option that turns them on.
_PAIRS = {
    "nodev": "dev",
    "nosuid": "suid",
    "noexec": "exec",
    "ro": "rw",
    "noauto": "auto",
}
_IMPLIES = {
    "defaults": {"nodev": False, "nosuid": False, "noexec": False, "ro": False, "noauto": False},
    "user": {"nodev": True, "nosuid": True, "noexec": True},
    "users": {"nodev": True, "nosuid": True, "noexec": True},
    "owner": {"nodev": True, "nosuid": True},
    "group": {"nodev": True, "nosuid": True},
}


def mount_flags(options: Iterable[str]) -> dict[str, bool]:
    """nodev, nosuid, noexec, ro, noauto after resolving ``options`` left to right (mount(8))."""
    flags = {flag: False for flag in _PAIRS}
    for option in options:
        if option in _PAIRS:
            flags[option] = True
        elif option in _PAIRS.values():
            flags[next(k for k, v in _PAIRS.items() if v == option)] = False
        elif option in _IMPLIES:
            flags.update(_IMPLIES[option])
    return flags


def option_value(options: Iterable[str], name: str) -> str | None:
    """The last ``name=value`` of an option list (``hidepid=2``), None if absent."""
    found = None
    for option in options:
        key, eq, value = option.partition("=")
        if eq and key == name:
            found = value
    return found


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class FstabEntry:
    """One line of /etc/fstab."""

    line: int
    spec: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]

    @property
    def where(self) -> str:
        """``/etc/fstab:line``, for messages."""
        return f"/etc/fstab:{self.line}"


@dataclass(frozen=True)
class Fstab(Fact[list[FstabEntry] | None]):
    """Entries of /etc/fstab, in order; None when the host has no /etc/fstab."""

    kind: ClassVar[str] = "fstab"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return WHOLE_SH + in_shell_sh(
            "",
            f"[ -e /etc/fstab ] || return {ABSENT}; [ -r /etc/fstab ] || return {UNREADABLE}; rdw /etc/fstab",
        )

    def parse(self, capture: Capture) -> list[FstabEntry] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        entries = []
        for number, line in enumerate(capture.stdout_text().splitlines(), start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2:
                raise FactError(f"/etc/fstab:{number}: a line needs at least a device and a mount point")
            fstype = fields[2] if len(fields) > 2 else "auto"
            options = tuple(_unescape(fields[3]).split(",")) if len(fields) > 3 else ("defaults",)
            mountpoint = _unescape(fields[1])
            mountpoint = mountpoint.rstrip("/") or "/" if mountpoint.startswith("/") else mountpoint
            entries.append(FstabEntry(number, _unescape(fields[0]), mountpoint, fstype, options))
        return entries

    def describe(self) -> str:
        return "/etc/fstab"


def unit_name(path: str) -> str:
    """The mount unit of a mount point, as ``systemd-escape --path --suffix=mount`` names it."""
    trimmed = path.strip("/")
    if not trimmed:
        return "-.mount"
    out = []
    for i, char in enumerate(trimmed):
        if char == "/":
            out.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_")) or (char == "." and i > 0):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
    return "".join(out) + ".mount"


# systemd's unit search path for the system manager, highest precedence first; the fstab generator's
# output (/run/systemd/generator) sits between /run/systemd/system and /usr/local/lib/systemd/system.
UNIT_DIRS_OVER_FSTAB = ("/etc/systemd/system", "/run/systemd/system")
UNIT_DIRS_UNDER_FSTAB = ("/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
UNIT_DIRS = UNIT_DIRS_OVER_FSTAB + UNIT_DIRS_UNDER_FSTAB


@dataclass(frozen=True)
class MountUnit:
    """The systemd mount unit of one mount point, as systemd would load it."""

    name: str
    file: str | None  # the unit file that wins, None if there is none
    masked: bool
    over_fstab: bool  # the winning file replaces a unit generated from /etc/fstab
    file_options: tuple[str, ...] | None  # [Mount] Options= of the winning file
    fstype: str | None  # [Mount] Type= of the winning file
    dropins: tuple[str, ...]
    dropin_options: tuple[str, ...] | None  # the last Options= of the drop-ins: it replaces any other
    dropin_options_from: str | None
    enabled_by: tuple[str, ...]  # .wants/.requires links that start it at boot


def _mount_settings(text: str, name: str) -> list[str | None]:
    """Every ``name=`` of a unit file's [Mount] section in order (None for an empty assignment)."""
    found: list[str | None] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if eq and section == "Mount" and key.strip() == name:
            found.append(value.strip() or None)
    return found


def _last(values: list[str | None]) -> str | None:
    return values[-1] if values else None


@dataclass(frozen=True)
class MountUnits(Fact[MountUnit]):
    """systemd's mount unit for a mount point (arg: the mount point, e.g. ``/tmp``): see the module."""

    kind: ClassVar[str] = "fstab-unit"
    in_shell: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_path(self.arg)

    def script(self) -> str:
        unit = unit_name(self.arg)
        dirs = tuple(UNIT_DIRS)
        dropin_dirs = tuple(quote(f"{d}/{unit}.d") for d in dirs)
        return f"{READS_SH}; " + in_shell_sh(
            "rc d f l",
            f"rc=0; set --; {conf_files_sh(dirs, quote(unit))}; "
            f"{conf_files_sh(dropin_dirs, '*.conf')}; "
            # the links that pull the unit in, each folder once (/lib is /usr/lib on merged-/usr hosts:
            # its globs, over the largest folder, would list the same links again)
            f"for d in {' '.join(dirs)}; do {USR_TWIN_SH}"
            f'for l in "$d"/*.wants/{quote(unit)} "$d"/*.requires/{quote(unit)}; do '
            '[ -L "$l" ] || [ -e "$l" ] || continue; rec W "$l"; done; done; '
            'rd %s "$@" || rc=1; return "$rc"',
        )

    def parse(self, capture: Capture) -> MountUnit:
        if capture.exit_code not in (0, UNREADABLE):
            raise self._fail(capture)
        unit = unit_name(self.arg)
        listing = parse_listing(capture, self.describe(), "MUW")
        for name in listing.named("U"):
            raise FactError(f"{self.describe()}: {name} cannot be read whole")
        for read in listing.files:
            if not read.complete:
                raise FactError(f"{self.describe()}: {read.path} cannot be read whole")
        if capture.exit_code != 0:
            raise self._fail(capture)
        # (kind, path, content): F a file read, M a name masked by a link to /dev/null
        records = [("M", name, b"") for name in listing.named("M")]
        records += [("F", read.path, read.data) for read in listing.files]
        units = [r for r in records if r[1].rpartition("/")[2] == unit]
        winner = min(units, key=lambda r: UNIT_DIRS.index(r[1].rpartition("/")[0]), default=None)
        dropin_dirs = tuple(f"{d}/{unit}.d" for d in UNIT_DIRS)
        dropins = config_order([r for r in records if r[1].rpartition("/")[0] in dropin_dirs], dropin_dirs)
        text = winner[2].decode("utf-8", "replace") if winner is not None and winner[0] == "F" else ""
        file_options = _last(_mount_settings(text, "Options"))
        fstype = _last(_mount_settings(text, "Type"))
        dropin_options: str | None = None
        dropin_from = None
        for kind, name, body in dropins:
            for value in _mount_settings(body.decode("utf-8", "replace"), "Options") if kind == "F" else []:
                dropin_options, dropin_from = value, name
        return MountUnit(
            name=unit,
            file=winner[1] if winner else None,
            masked=winner is not None and (winner[0] == "M" or not winner[2].strip()),
            over_fstab=winner is not None and winner[1].rpartition("/")[0] in UNIT_DIRS_OVER_FSTAB,
            file_options=tuple(file_options.split(",")) if file_options else None,
            fstype=fstype,
            dropins=tuple(r[1] for r in dropins if r[0] == "F"),
            dropin_options=tuple(dropin_options.split(",")) if dropin_options else None,
            dropin_options_from=dropin_from,
            enabled_by=tuple(listing.named("W")),
        )

    def describe(self) -> str:
        return f"systemd mount unit {unit_name(self.arg)}"
