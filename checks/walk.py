"""Findings of the one walk of local file systems (ANSSI-BP-028 R53, R54, R56): tagged ``fs-walk``.

Every check of this module reads the same :class:`~hds_compliance.facts.walk.FileWalk` when they share
their ``skip_paths``, so a scan walks the disks once. The host reports counts and at most 50 paths per
class: a message gives the count and the paths it knows.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from hds_compliance.check import Context, FactUnavailable, Outcome, Params, check, failed, passed
from hds_compliance.facts.base import check_path
from hds_compliance.facts.walk import WALK_LIMIT, FileWalk, WalkResult

TAGS = ("fs-walk",)


class WalkParams(Params):
    skip_paths: list[str] = Field(
        default_factory=list, description="paths the walk does not enter (container storage, backups...)"
    )

    @field_validator("skip_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            check_path(path)
        return value


def _walk(p: WalkParams) -> FileWalk:
    return FileWalk(",".join(sorted(set(p.skip_paths))))


def _found(result: WalkResult, cls: str, label: str) -> str | None:
    """ "3 <label>: /a, /b, /c" (the paths the host sent), or None when the class is empty."""
    count = result.counts[cls]
    if not count:
        return None
    shown = ", ".join(result.paths[cls])
    more = f" (first {WALK_LIMIT} shown)" if count > len(result.paths[cls]) else ""
    return f"{count} {label}{more}: {shown}"


def _scope(result: WalkResult) -> str:
    skipped = (
        f"; not walked (escaped names): {', '.join(result.skipped_mounts)}" if result.skipped_mounts else ""
    )
    return f"walked {', '.join(result.roots)}{skipped}"


def _judge(p: WalkParams, ctx: Context, found: list[tuple[str, str]], clean: str) -> Outcome:
    """Fail with every non-empty class of ``found`` ((class, label) pairs), else pass with ``clean``."""
    result = ctx.get(_walk(p))
    problems = [f for cls, label in found if (f := _found(result, cls, label))]
    if problems:
        return failed(f"{'; '.join(problems)} ({_scope(result)})")
    return passed(f"{clean} ({_scope(result)})")


@check("walk.no_unowned_files", params=WalkParams, facts=lambda p: [_walk(p)], tags=TAGS)
def walk_no_unowned_files(p: WalkParams, ctx: Context) -> Outcome:
    """No file or directory belongs to a user or group the host does not know (a later account with that
    id would own them)."""
    classes = [("nouser", "without a known owner"), ("nogroup", "without a known group")]
    return _judge(p, ctx, classes, "every file has a known owner and group")


@check("walk.world_writable_dirs_sticky", params=WalkParams, facts=lambda p: [_walk(p)], tags=TAGS)
def walk_world_writable_dirs_sticky(p: WalkParams, ctx: Context) -> Outcome:
    """Every world-writable directory has the sticky bit, so users cannot delete or replace others' files."""
    classes = [("ww_dir_no_sticky", "world-writable directories without the sticky bit")]
    return _judge(p, ctx, classes, "every world-writable directory has the sticky bit")


@check("walk.no_world_writable_files", params=WalkParams, facts=lambda p: [_walk(p)], tags=TAGS)
def walk_no_world_writable_files(p: WalkParams, ctx: Context) -> Outcome:
    """No regular file is writable by every user (symbolic links, always 0777, are not files here)."""
    return _judge(p, ctx, [("ww_file", "world-writable regular files")], "no world-writable regular file")


class SetuidParams(WalkParams):
    allowed: list[str] = Field(description="setuid/setgid executables accepted, by absolute path")


@check("walk.setuid_setgid_allowlisted", params=SetuidParams, facts=lambda p: [_walk(p)], tags=TAGS)
def walk_setuid_setgid_allowlisted(p: SetuidParams, ctx: Context) -> Outcome:
    """Only allow-listed executables carry the setuid or setgid bit."""
    result = ctx.get(_walk(p))
    allowed = set(p.allowed)
    problems = []
    for cls, bit in (("setuid", "setuid"), ("setgid", "setgid")):
        extra = sorted(path for path in result.paths[cls] if path not in allowed)
        count, known = result.counts[cls], len(result.paths[cls])
        if extra:
            problems.append(
                f"{len(extra)}{'+' if count > known else ''} {bit} files not allowed: {', '.join(extra)}"
            )
        elif count > known:
            # Only the first paths came back: the rest are unknown, but more files than the allowlist
            # holds cannot all be allowed.
            if count > len(allowed):
                problems.append(f"{count} {bit} files, more than the {len(allowed)} allowed")
            else:
                raise FactUnavailable(f"{count} {bit} files and only {known} paths reported: cannot judge")
    if problems:
        return failed(f"{'; '.join(problems)} ({_scope(result)})")
    total = result.counts["setuid"] + result.counts["setgid"]
    return passed(f"all {total} setuid/setgid files are allow-listed ({_scope(result)})")
