"""Permissions and ownership of sensitive files and directories (ANSSI BP-028 R50), read with ``stat``.

``stat`` does not follow symbolic links here: a link is reported as such and fails, so a check can never
pass on the permissions of a link while its target is world-writable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from hds_compliance.check import Context, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts import FileStat

_BITS = [
    (0o4000, "setuid"),
    (0o2000, "setgid"),
    (0o1000, "sticky"),
    (0o0400, "owner read"),
    (0o0200, "owner write"),
    (0o0100, "owner execute"),
    (0o0040, "group read"),
    (0o0020, "group write"),
    (0o0010, "group execute"),
    (0o0004, "others read"),
    (0o0002, "others write"),
    (0o0001, "others execute"),
]


class PermissionsParams(Params):
    path: str = Field(description="absolute path, e.g. /etc/shadow")
    max_mode: Annotated[str, Field(pattern=r"^0?[0-7]{3,4}$")] = Field(
        description="most permissive mode accepted, in octal, e.g. '0640'"
    )
    owner: int | None = Field(default=None, ge=0, description="required owner uid (e.g. 0), if any")
    group: int | None = Field(default=None, ge=0, description="required group gid, if any")
    allow_absent: bool = Field(default=False, description="a missing path is not_applicable, not a fail")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        FileStat(value)  # raises ValueError on anything but a plain absolute path
        return value


@check("files.permissions_at_most", params=PermissionsParams, facts=lambda p: [FileStat(p.path)])
def files_permissions_at_most(p: PermissionsParams, ctx: Context) -> Outcome:
    """A file or directory is no more permissive than a mode (e.g. /etc/shadow 0640), with the right owner."""
    st = ctx.get(FileStat(p.path))
    if st is None:
        if p.allow_absent:
            return not_applicable(f"{p.path} does not exist")
        return failed(f"{p.path} does not exist")
    if st.file_type == "symbolic link":
        return failed(f"{p.path} is a symbolic link: check its target instead")
    limit = int(p.max_mode, 8)
    excess = st.mode & ~limit & 0o7777
    problems = []
    if excess:
        extra = ", ".join(name for bit, name in _BITS if excess & bit)
        problems.append(f"mode {st.mode:04o} allows {extra} (at most {limit:04o})")
    if p.owner is not None and st.uid != p.owner:
        problems.append(f"owned by uid {st.uid} (expected {p.owner})")
    if p.group is not None and st.gid != p.group:
        problems.append(f"group gid {st.gid} (expected {p.group})")
    if problems:
        return failed(f"{p.path} ({st.file_type}): {'; '.join(problems)}")
    return passed(f"{p.path} ({st.file_type}) is {st.mode:04o}, owner uid {st.uid}, gid {st.gid}")
