"""Local accounts: no empty password, strong password hashes, a single uid 0, a restrictive default umask.

Password facts come from :class:`~hds_compliance.facts.ShadowSummary`, derived on the host: no hash ever
leaves it. PAM is read for both families: Debian/Ubuntu ``/etc/pam.d/common-password``, RHEL-family
``/etc/pam.d/system-auth`` and ``/etc/pam.d/password-auth`` (authselect).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from hds_compliance.check import Context, FactUnavailable, NoParams, Outcome, Params, check, failed, passed
from hds_compliance.facts import FileContent, FilesMatching, ShadowSummary

SHADOW = ShadowSummary()
PASSWD = FileContent("/etc/passwd")
LOGIN_DEFS = FileContent("/etc/login.defs")
PAM_PASSWORD = [
    FileContent("/etc/pam.d/common-password"),  # Debian, Ubuntu
    FileContent("/etc/pam.d/system-auth"),  # RHEL family
    FileContent("/etc/pam.d/password-auth"),  # RHEL family (remote services: sshd...)
]
PAM_SESSION = [
    FileContent("/etc/pam.d/common-session"),  # Debian, Ubuntu
    FileContent("/etc/pam.d/system-auth"),  # RHEL family
    FileContent("/etc/pam.d/password-auth"),
]
SHELL_INIT = [FileContent("/etc/profile"), FileContent("/etc/bash.bashrc"), FileContent("/etc/bashrc")]
PROFILE_D = FilesMatching("/etc/profile.d/*.sh")

# crypt(3) prefixes (libxcrypt): y yescrypt, gy gost-yescrypt, 7 scrypt, 6 SHA-512, 2b/2y bcrypt;
# 5 SHA-256, 1 MD5, 2a (buggy bcrypt), des and "unknown" are not accepted by default.
_STRONG = ["y", "gy", "7", "6", "2b", "2y"]
_HASH_NAMES = {
    "y": "yescrypt",
    "gy": "gost-yescrypt",
    "7": "scrypt",
    "6": "SHA-512",
    "5": "SHA-256",
    "2b": "bcrypt",
    "2y": "bcrypt",
    "2a": "bcrypt (2a)",
    "1": "MD5",
}
# pam_unix hashing options -> login.defs ENCRYPT_METHOD names.
_PAM_METHODS = {
    "yescrypt": "YESCRYPT",
    "gost_yescrypt": "GOST_YESCRYPT",
    "sha512": "SHA512",
    "sha256": "SHA256",
    "blowfish": "BCRYPT",
    "md5": "MD5",
    "bigcrypt": "DES",
}


def _users(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _passwd(ctx: Context) -> list[list[str]]:
    data = ctx.get(PASSWD)
    if data is None:
        raise FactUnavailable("/etc/passwd does not exist")
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip() and not line.startswith(("#", "+", "-")):
            rows.append(line.split(":"))
    return rows


@check("accounts.no_empty_password", facts=lambda p: [SHADOW, PASSWD])
def accounts_no_empty_password(p: NoParams, ctx: Context) -> Outcome:
    """No account can log in without a password (empty field in /etc/shadow or /etc/passwd)."""
    entries = ctx.get(SHADOW)
    empty = [e.user for e in entries if e.state == "empty"]
    empty += [f"{row[0]} (in /etc/passwd)" for row in _passwd(ctx) if len(row) > 1 and row[1] == ""]
    if empty:
        return failed(f"{len(empty)} account(s) with an empty password: {_users(empty)}")
    return passed(f"none of the {len(entries)} accounts in /etc/shadow has an empty password")


class HashParams(Params):
    allowed: list[str] = Field(
        default_factory=lambda: list(_STRONG), min_length=1, description="accepted crypt(3) ids, e.g. y, 6"
    )


@check("accounts.strong_password_hashes", params=HashParams, facts=lambda p: [SHADOW])
def accounts_strong_password_hashes(p: HashParams, ctx: Context) -> Outcome:
    """Every stored password hash uses a strong scheme (yescrypt, SHA-512, bcrypt, scrypt): no MD5, no DES."""
    entries = ctx.get(SHADOW)
    weak: list[str] = []
    hashed = 0
    for entry in entries:
        if entry.state in ("empty", "locked"):
            continue
        scheme = entry.state.removeprefix("hash:") if entry.state.startswith("hash:") else None
        hashed += 1
        if scheme is None:
            weak.append(f"{entry.user} ({entry.state})")
        elif scheme not in p.allowed:
            weak.append(f"{entry.user} (${scheme}$ {_HASH_NAMES.get(scheme, 'unknown scheme')})")
    if weak:
        return failed(f"{len(weak)} password hash(es) in /etc/shadow use a weak scheme: {_users(weak)}")
    accepted = ", ".join(p.allowed)
    return passed(f"the {hashed} password hash(es) in /etc/shadow use accepted schemes ({accepted})")


def _login_defs(data: bytes) -> dict[str, tuple[str, int]]:
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2:
            values[words[0]] = (words[1], number)
    return values


def _pam_unix_password_lines(data: bytes) -> list[tuple[int, list[str]]]:
    """(line number, module arguments) of every ``password ... pam_unix.so`` line."""
    out = []
    lines = data.decode("utf-8", "replace").splitlines()
    number = 0
    while number < len(lines):
        start, text = number + 1, lines[number]
        while text.endswith("\\") and number + 1 < len(lines):
            number += 1
            text = text[:-1] + " " + lines[number]
        number += 1
        tokens = text.split("#", 1)[0].split()
        if not tokens or tokens[0].lstrip("-") != "password":
            continue
        rest = tokens[1:]
        if rest and rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
        rest = rest[1:]  # the control field (or its closing bracket)
        if rest and rest[0].rsplit("/", 1)[-1] == "pam_unix.so":
            out.append((start, rest[1:]))
    return out


class HashingParams(Params):
    allowed: list[str] = Field(
        default_factory=lambda: ["YESCRYPT", "SHA512"],
        min_length=1,
        description="accepted ENCRYPT_METHOD values (login.defs names)",
    )


@check(
    "accounts.password_hashing_configured",
    params=HashingParams,
    facts=lambda p: [LOGIN_DEFS, *PAM_PASSWORD],
)
def accounts_password_hashing_configured(p: HashingParams, ctx: Context) -> Outcome:
    """New passwords get a strong hash: login.defs ENCRYPT_METHOD and every pam_unix password line say so."""
    allowed = [a.upper() for a in p.allowed]
    problems: list[str] = []
    found: list[str] = []
    defs = ctx.get(LOGIN_DEFS)
    if defs is None:
        problems.append("/etc/login.defs does not exist")
    else:
        method, number = _login_defs(defs).get("ENCRYPT_METHOD", ("", 0))
        if not method:
            problems.append("ENCRYPT_METHOD is not set in /etc/login.defs (shadow falls back to DES or MD5)")
        elif method.upper() not in allowed:
            problems.append(f"ENCRYPT_METHOD is {method} in /etc/login.defs line {number}")
        else:
            found.append(f"ENCRYPT_METHOD {method} in /etc/login.defs")
    pam_files = 0
    for fact in PAM_PASSWORD:
        data = ctx.get(fact)
        if data is None:
            continue
        pam_files += 1
        lines = _pam_unix_password_lines(data)
        if not lines:
            problems.append(f"no 'password ... pam_unix.so' line in {fact.arg}")
        for number, args in lines:
            chosen = [_PAM_METHODS[a] for a in args if a in _PAM_METHODS]
            if not chosen:
                problems.append(f"pam_unix selects no hashing method in {fact.arg} line {number}")
            elif chosen[-1] not in allowed:
                option = next(a for a in reversed(args) if a in _PAM_METHODS)
                problems.append(f"pam_unix uses {option} in {fact.arg} line {number}")
            else:
                found.append(f"pam_unix {chosen[-1].lower()} in {fact.arg}")
    if not pam_files:
        problems.append("no PAM password stack found (common-password, system-auth, password-auth)")
    if problems:
        return failed("; ".join(problems))
    return passed("; ".join(found))


@check("accounts.only_root_has_uid_0", facts=lambda p: [PASSWD])
def accounts_only_root_has_uid_0(p: NoParams, ctx: Context) -> Outcome:
    """root is the only account with uid 0, so every superuser action is made by name through sudo."""
    rows = _passwd(ctx)
    uid0 = [r[0] for r in rows if len(r) > 2 and r[2].strip().isdigit() and int(r[2]) == 0]
    others = [name for name in uid0 if name != "root"]
    if others:
        return failed(f"accounts other than root have uid 0 in /etc/passwd: {_users(others)}")
    return passed(f"only root has uid 0 among the {len(rows)} accounts of /etc/passwd")


_UMASK_RE = re.compile(r"(?:^|[\s;&|({])umask\s+(?:--\s+)?(\S+)")


class UmaskParams(Params):
    at_least: Annotated[str, Field(pattern=r"^0?[0-7]{3}$")] = Field(
        default="027", description="every umask must mask at least these bits, e.g. 027 or 077"
    )


@check(
    "accounts.umask_restrictive",
    params=UmaskParams,
    facts=lambda p: [LOGIN_DEFS, *PAM_SESSION, *SHELL_INIT, PROFILE_D],
)
def accounts_umask_restrictive(p: UmaskParams, ctx: Context) -> Outcome:
    """Sessions get a restrictive umask: login.defs UMASK through pam_umask, or umask in shell start-up files.

    login.defs UMASK only reaches sessions through pam_umask (not in Debian 12's default PAM stack);
    otherwise the kernel default 022 applies unless a system shell start-up file sets a umask.
    Every umask found must be at least as restrictive as ``at_least``, and at least one must apply.
    """
    required = int(p.at_least, 8)
    problems: list[str] = []
    applied: list[str] = []
    defs = ctx.get(LOGIN_DEFS)
    value, number = _login_defs(defs).get("UMASK", ("", 0)) if defs is not None else ("", 0)
    if defs is None:
        problems.append("/etc/login.defs does not exist")
    elif not value:
        problems.append("UMASK is not set in /etc/login.defs (the default is 022)")
    elif not re.fullmatch(r"0?[0-7]{3}", value) or int(value, 8) & required != required:
        problems.append(f"UMASK is {value} in /etc/login.defs line {number}")
    for fact in PAM_SESSION:
        data = ctx.get(fact)
        if data is not None and _pam_session_umask(data):
            applied.append(f"UMASK {value or '022'} of /etc/login.defs through pam_umask in {fact.arg}")
    files: list[tuple[str, bytes]] = []
    for fact in SHELL_INIT:
        data = ctx.get(fact)
        if data is not None:
            files.append((fact.arg, data))
    files += list(ctx.get(PROFILE_D).items())
    for name, data in files:
        for line_no, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            for match in _UMASK_RE.finditer(raw.split("#", 1)[0]):
                mask = match.group(1)
                if not re.fullmatch(r"0?[0-7]{3,4}", mask):
                    problems.append(f"umask {mask} in {name} line {line_no} cannot be evaluated")
                elif int(mask, 8) & required != required:
                    problems.append(f"umask {mask} in {name} line {line_no}")
                else:
                    applied.append(f"umask {mask} in {name} line {line_no}")
    if problems:
        return failed(f"less restrictive than {p.at_least}: " + "; ".join(problems))
    if not applied:
        return failed(
            f"UMASK {value} in /etc/login.defs is not applied to sessions: no pam_umask in a PAM session "
            "stack, no umask in /etc/profile, /etc/bash.bashrc, /etc/bashrc or /etc/profile.d (022 applies)"
        )
    return passed("; ".join(applied))


def _pam_session_umask(data: bytes) -> bool:
    for raw in data.decode("utf-8", "replace").splitlines():
        tokens = raw.split("#", 1)[0].split()
        if (
            tokens
            and tokens[0].lstrip("-") == "session"
            and any(t.rsplit("/", 1)[-1] == "pam_umask.so" for t in tokens[1:])
        ):
            return True
    return False
