"""Boot loader and scheduled jobs protection (ANSSI-BP-028 R5, R50): a GRUB password, and cron files only
root can change.

GRUB asks for a password only if ``superusers`` is set and a password is defined for one of them. RHEL's
grub.cfg always holds ``set superusers="root"`` and ``password_pbkdf2 root ${GRUB2_PASSWORD}``, but inside
``if [ -n "${GRUB2_PASSWORD}" ]`` after sourcing ``user.cfg``: the password exists only if user.cfg sets
GRUB2_PASSWORD. Debian writes the hash into grub.cfg from an /etc/grub.d script; a hash put in grub.cfg by
hand is lost at the next ``update-grub``.
"""

from __future__ import annotations

import re

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts.grub import GrubFile, GrubPasswords
from hds_compliance.facts.schedule import ACCESS, RUN_PARTS, TABLE_DIRS, TABLES, CronFiles

GRUB = GrubPasswords()
CRON = CronFiles()


def _active(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _grub_password(main: GrubFile, user_cfg: GrubFile | None) -> tuple[bool, str]:
    """(protected, explanation) for one grub.cfg."""
    lines = _active([line.text for line in main.lines])
    superusers = [ln for ln in lines if re.match(r"^set\s+superusers\s*=", ln)]
    if not superusers:
        return False, f"{main.path} sets no superusers"
    pbkdf2 = [ln for ln in lines if ln.startswith("password_pbkdf2 ")]
    clear = [ln for ln in lines if re.match(r"^password\s", ln)]
    if any("<hash>" in ln for ln in pbkdf2):
        return True, f"{main.path} sets superusers and a PBKDF2 password"
    if any("${GRUB2_PASSWORD}" in ln for ln in pbkdf2):
        user = _active([line.text for line in user_cfg.lines]) if user_cfg is not None else []
        if user_cfg is None:
            return False, f"{main.path} takes the password from user.cfg, which does not exist"
        if any(ln.startswith("GRUB2_PASSWORD=<hash>") for ln in user):
            return True, f"{main.path} takes a PBKDF2 password from {user_cfg.path}"
        return (
            False,
            f"{main.path} takes the password from {user_cfg.path}, which sets no PBKDF2 GRUB2_PASSWORD",
        )
    if clear:
        return False, f"{main.path} holds a clear-text password (use password_pbkdf2)"
    return False, f"{main.path} sets superusers but defines no password for them"


@check("boot.grub_password_set", facts=lambda p: [GRUB])
def grub_password_set(p: NoParams, ctx: Context) -> Outcome:
    """GRUB requires a PBKDF2 password for its superusers (editing entries, the shell), in a grub.cfg not
    readable by others and generated so that the next update keeps it."""
    state = ctx.get(GRUB)
    mains = [f for path, f in state.files.items() if path.endswith("/grub.cfg")]
    if not mains:
        return not_applicable(
            "no GRUB configuration (/boot/grub/grub.cfg, /boot/grub2/grub.cfg): another boot loader"
        )
    user_cfg = state.files.get("/boot/grub2/user.cfg")
    problems: list[str] = []
    notes: list[str] = []
    for main in mains:
        if not main.readable:
            problems.append(f"{main.path} is not readable by the probe")
            continue
        ok, why = _grub_password(main, user_cfg if "/grub2/" in main.path else None)
        (notes if ok else problems).append(why)
        if ok and "<hash>" in " ".join(ln.text for ln in main.lines) and not state.generators:
            problems.append(
                f"the password is written in {main.path} only: no /etc/grub.d script emits it, "
                "the next update-grub removes it"
            )
        for file in (main, user_cfg):
            if file is not None and file.mode & 0o004:
                problems.append(f"{file.path} is readable by others (mode {file.mode:04o})")
    if problems:
        return failed("; ".join(problems))
    return passed("; ".join(notes))


# ------------------------------------------------------------------------------------------------ cron


class CronParams(Params):
    max_file_mode: str = Field(
        pattern=r"^0?[0-7]{3}$", description="most permissive mode of a cron table or script"
    )
    max_dir_mode: str = Field(pattern=r"^0?[0-7]{3}$", description="most permissive mode of a cron directory")


_SYSTEM = {*TABLES, *ACCESS, *RUN_PARTS, "/etc/cron.d"}


def _system_path(path: str) -> bool:
    folder = path.rpartition("/")[0]
    return path in _SYSTEM or folder in ("/etc/cron.d", *RUN_PARTS)


@check("cron.permissions_restricted", params=CronParams, facts=lambda p: [CRON])
def cron_permissions_restricted(p: CronParams, ctx: Context) -> Outcome:
    """Cron's system tables, scripts and directories belong to root and no one else may change them."""
    entries = ctx.get(CRON, redacted_ok=True)  # modes and owners only: a redacted job line does not matter
    judged = [e for path, e in sorted(entries.items()) if _system_path(path)]
    if not judged:
        return not_applicable(f"no cron files ({', '.join(TABLES)}, /etc/cron.d...): cron is not installed")
    problems = []
    for entry in judged:
        if entry.file_type == "symbolic link":
            continue  # stat follows nothing here: the target is judged where it lives
        limit = int(p.max_dir_mode if entry.file_type == "directory" else p.max_file_mode, 8)
        excess = entry.mode & ~limit & 0o7777
        if entry.uid != 0:
            problems.append(f"{entry.path} owned by uid {entry.uid}")
        if excess:
            problems.append(f"{entry.path} mode {entry.mode:04o} (at most {limit:04o})")
    spools = [d for d in TABLE_DIRS if d != "/etc/cron.d" and d in entries]
    note = f"; user spools ({', '.join(spools)}) are left to crontab(1)" if spools else ""
    if problems:
        return failed("; ".join(problems) + note)
    return passed(
        f"{len(judged)} cron paths owned by root, none more open than "
        f"{p.max_file_mode}/{p.max_dir_mode}{note}"
    )
