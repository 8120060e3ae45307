"""Local accounts: passwords and their hashes, uid 0, umask, session timeout, system and admin accounts.

Password facts come from :class:`~hds_compliance.facts.ShadowSummary`, derived on the host: no hash ever
leaves it. PAM is read as services run it (:mod:`hds_compliance.checks.pam`): the passwd, chpasswd and sshd
password stacks, the login and sshd session stacks, whatever files (common-*, system-auth, password-auth)
they include.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    not_reviewed,
    passed,
)
from hds_compliance.checks.pam import LOGIN_SERVICES, PAM_FILES, PASSWORD_SERVICES, skipped_before, stacks
from hds_compliance.checks.sudo import GROUP, POLICY_FACTS, granted_principals, read_policy
from hds_compliance.facts import FileContent, FilesMatching, ShadowSummary
from hds_compliance.facts.nss import NssSources

SHADOW = ShadowSummary()
PASSWD = FileContent("/etc/passwd")
LOGIN_DEFS = FileContent("/etc/login.defs")
LIBUSER = FileContent("/etc/libuser.conf")
SECURETTY = FileContent("/etc/securetty")
NSS = NssSources()
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


_LIBUSER_METHODS = {
    "des": "DES",
    "md5": "MD5",
    "blowfish": "BCRYPT",
    "sha256": "SHA256",
    "sha512": "SHA512",
    "yescrypt": "YESCRYPT",
}


def _ini_first(data: bytes) -> dict[tuple[str, str], tuple[str, int]]:
    """(section, key) -> (value, line) of an ini file; the FIRST value is kept (libuser ignores the rest)."""
    values: dict[tuple[str, str], tuple[str, int]] = {}
    section = ""
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("[") and text.endswith("]"):
            section = text[1:-1].strip()
            continue
        key, sep, value = text.partition("=")
        if sep:
            values.setdefault((section, key.strip()), (value.strip(), number))
    return values


def _libuser_method(data: bytes, encrypt_method: str | None) -> tuple[str, str]:
    """The hash libuser (luseradd, lpasswd) uses, and what decides it (libuser.conf(5))."""
    values = _ini_first(data)
    style = values.get(("defaults", "crypt_style"))
    if style is not None:
        method = _LIBUSER_METHODS.get(style[0].lower(), "DES")
        return method, f"crypt_style {style[0]} in {LIBUSER.arg} line {style[1]}"
    imported = values.get(("import", "login_defs"))
    if imported is not None and imported[0] == LOGIN_DEFS.arg:
        return encrypt_method or "DES", (
            f"ENCRYPT_METHOD of {LOGIN_DEFS.arg} imported by {LIBUSER.arg} line {imported[1]}"
            if encrypt_method
            else f"{LOGIN_DEFS.arg} imported by {LIBUSER.arg} line {imported[1]} has no ENCRYPT_METHOD: DES"
        )
    if imported is not None:
        raise FactUnavailable(
            f"{LIBUSER.arg} line {imported[1]} imports {imported[0]}, which is not collected"
        )
    return "DES", f"no crypt_style in {LIBUSER.arg}: libuser's default DES"


class HashingParams(Params):
    allowed: list[str] = Field(
        default_factory=lambda: ["YESCRYPT", "SHA512"],
        min_length=1,
        description="accepted ENCRYPT_METHOD values (login.defs names)",
    )


@check(
    "accounts.password_hashing_configured",
    params=HashingParams,
    facts=lambda p: [LOGIN_DEFS, PAM_FILES, LIBUSER],
)
def accounts_password_hashing_configured(p: HashingParams, ctx: Context) -> Outcome:
    """New passwords get a strong hash: login.defs ENCRYPT_METHOD, pam_unix as passwd runs it, and libuser.

    pam_unix without a hash option hashes with login.defs ENCRYPT_METHOD (Linux-PAM 1.4 and later), DES when
    that is unset; the last hash option of a pam_unix line wins. RHEL's libuser (luseradd, lpasswd) uses
    the first crypt_style of /etc/libuser.conf, else ENCRYPT_METHOD if it imports login.defs, else DES.
    """
    allowed = [a.upper() for a in p.allowed]
    problems: list[str] = []
    found: list[str] = []
    defs = ctx.get(LOGIN_DEFS)
    encrypt: str | None = None
    if defs is None:
        problems.append("/etc/login.defs does not exist")
    else:
        method, number = _login_defs(defs).get("ENCRYPT_METHOD", ("", 0))
        encrypt = method.upper() or None
        if not method:
            problems.append("ENCRYPT_METHOD is not set in /etc/login.defs (shadow falls back to DES or MD5)")
        elif method.upper() not in allowed:
            problems.append(f"ENCRYPT_METHOD is {method} in /etc/login.defs line {number}")
        else:
            found.append(f"ENCRYPT_METHOD {method} in /etc/login.defs")
    seen: set[str] = set()
    for service, lines in stacks(ctx, PASSWORD_SERVICES, "password").items():
        unix = [line for line in lines if line.module == "pam_unix.so"]
        if not unix:
            problems.append(f"no pam_unix password line in the {service} stack")
        for line in unix:
            if line.where in seen:
                continue
            seen.add(line.where)
            options = [a for a in line.args if a in _PAM_METHODS]
            if options:
                chosen, how = _PAM_METHODS[options[-1]], f"pam_unix uses {options[-1]} in {line.where}"
            else:
                chosen = encrypt or "DES"
                how = f"pam_unix in {line.where} has no hash option: it uses ENCRYPT_METHOD " + (
                    encrypt or "(unset: DES)"
                )
            if chosen not in allowed:
                problems.append(how)
            else:
                found.append(how if not options else f"pam_unix {options[-1]} in {line.file}")
    if not seen:
        problems.append(f"no PAM password stack found ({', '.join(PASSWORD_SERVICES)})")
    libuser = ctx.get(LIBUSER)
    if libuser is not None:
        method, how = _libuser_method(libuser, encrypt)
        (found if method in allowed else problems).append(f"libuser hashes with {method}: {how}")
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
    facts=lambda p: [LOGIN_DEFS, PAM_FILES, *SHELL_INIT, PROFILE_D],
)
def accounts_umask_restrictive(p: UmaskParams, ctx: Context) -> Outcome:
    """Sessions get a restrictive umask: login.defs UMASK through pam_umask, or umask in shell start-up files.

    login.defs UMASK only reaches sessions through pam_umask in the session stack of login or sshd (not in
    Debian 12's default stacks), whose umask= argument comes first; otherwise the kernel default 022
    applies unless a system shell start-up file sets a umask. Every umask found must be at least as
    restrictive as ``at_least``, and at least one must apply.
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
    seen: set[str] = set()
    for lines in stacks(ctx, LOGIN_SERVICES, "session").values():
        for line in lines:
            if line.module != "pam_umask.so" or line.where in seen:
                continue
            seen.add(line.where)
            own = line.arg("umask")
            if not own:
                applied.append(f"UMASK {value or '022'} of /etc/login.defs through pam_umask ({line.where})")
            elif not re.fullmatch(r"0?[0-7]{3,4}", own) or int(own, 8) & required != required:
                problems.append(f"umask={own} of pam_umask ({line.where})")
            else:
                applied.append(f"umask={own} of pam_umask ({line.where})")
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


# ------------------------------------------------------------------------------------ session timeout

_TMOUT_RE = re.compile(
    r"(?:^|[\s;&|({])(export|readonly|declare|typeset|local)?((?:\s+-[A-Za-z]+)*)"
    r"\s*\bTMOUT\b(=([^\s;&|)]*))?"
)
_SOURCE_RE = re.compile(r"(?:^|[\s;&|({])(?:\.|source)\s+(/etc/(?:bash\.bashrc|bashrc))\b")


def _profile_order(ctx: Context) -> list[tuple[str, bytes]]:
    """System shell start-up files in the order a login shell reads them.

    /etc/profile, with /etc/bash.bashrc or /etc/bashrc read where it sources them and /etc/profile.d/*.sh
    where its loop over that directory stands (a drop-in is read only if /etc/profile loops over them);
    then /etc/bashrc if /etc/profile did not read it (RHEL: ~/.bashrc reads it).
    """
    texts = {fact.arg: ctx.get(fact) for fact in SHELL_INIT}
    dropins = list(ctx.get(PROFILE_D).items())
    order: list[tuple[str, bytes]] = []
    profile = texts.get("/etc/profile")
    read: set[str] = set()
    if profile is not None:
        order.append(("/etc/profile", profile))
        for raw in profile.decode("utf-8", "replace").splitlines():
            code = raw.split("#", 1)[0]
            sourced = _SOURCE_RE.search(code)
            if sourced and texts.get(sourced.group(1)) is not None and sourced.group(1) not in read:
                read.add(sourced.group(1))
                order.append((sourced.group(1), texts[sourced.group(1)] or b""))
            if "/etc/profile.d/" in code and "profile.d" not in read:
                read.add("profile.d")
                order += dropins
    bashrc = texts.get("/etc/bashrc")
    if bashrc is not None and "/etc/bashrc" not in read:
        order.append(("/etc/bashrc", bashrc))
    return order


@dataclass
class _Tmout:
    value: str | None = None
    where: str = ""
    readonly: str = ""
    exported: str = ""


def session_timeout(ctx: Context) -> _Tmout:
    """TMOUT as bash has it after the system start-up files: once read-only, later assignments fail."""
    state = _Tmout()
    for name, data in _profile_order(ctx):
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            for match in _TMOUT_RE.finditer(raw.split("#", 1)[0]):
                word, flags, assign, value = match.groups()
                where = f"{name} line {number}"
                letters = "".join(flags.split()).replace("-", "")
                if assign and not (state.readonly and state.value is not None):
                    state.value, state.where = value.strip("\"'"), where
                if word == "readonly" or (word in ("declare", "typeset") and "r" in letters):
                    state.readonly = state.readonly or where
                if word == "export" or (word in ("declare", "typeset") and "x" in letters):
                    state.exported = state.exported or where
    return state


class TimeoutParams(Params):
    max_seconds: int = Field(ge=1, description="longest idle time of an interactive shell, in seconds")


@check("accounts.session_timeout", params=TimeoutParams, facts=lambda p: [*SHELL_INIT, PROFILE_D])
def accounts_session_timeout(p: TimeoutParams, ctx: Context) -> Outcome:
    """Idle shells are closed: TMOUT is set, read-only and exported by the system start-up files (bash).

    Read in the order bash reads them (/etc/profile, the files it sources, /etc/profile.d/*.sh where its
    loop stands); a TMOUT made read-only keeps its value, 0 means no timeout.
    """
    state = session_timeout(ctx)
    if state.value is None:
        return failed(
            "TMOUT is not set by /etc/profile, the files it reads, or /etc/bashrc: shells never time out"
        )
    if not state.value.isdigit():
        return failed(f"TMOUT={state.value} ({state.where}) cannot be evaluated")
    seconds = int(state.value)
    problems = []
    if seconds == 0 or seconds > p.max_seconds:
        problems.append(f"TMOUT={seconds} ({state.where}){' disables the timeout' if seconds == 0 else ''}")
    if not state.readonly:
        problems.append("TMOUT is not read-only: a user can unset it")
    if not state.exported:
        problems.append("TMOUT is not exported")
    if problems:
        return failed(f"idle shells are not closed within {p.max_seconds}s: " + "; ".join(problems))
    return passed(
        f"TMOUT={seconds} ({state.where}), read-only ({state.readonly}), exported ({state.exported})"
    )


# ------------------------------------------------------------------------------------ system accounts


def _login_range(ctx: Context) -> tuple[int, int]:
    defs = _login_defs(ctx.get(LOGIN_DEFS) or b"")
    low, high = defs.get("UID_MIN", ("1000", 0))[0], defs.get("UID_MAX", ("60000", 0))[0]
    return (int(low) if low.isdigit() else 1000), (int(high) if high.isdigit() else 60000)


def _no_login(shell: str) -> bool:
    return shell.rsplit("/", 1)[-1] in ("nologin", "false")


class SystemAccountParams(Params):
    exempt: list[str] = Field(
        default_factory=lambda: ["root", "sync", "shutdown", "halt"],
        description="system accounts allowed a shell (sync, shutdown and halt run one command)",
    )


@check(
    "accounts.system_accounts_no_login",
    params=SystemAccountParams,
    facts=lambda p: [PASSWD, LOGIN_DEFS, SHADOW],
)
def accounts_system_accounts_no_login(p: SystemAccountParams, ctx: Context) -> Outcome:
    """Service (system) accounts cannot log in: a nologin or false shell and no usable password (R34).

    System accounts are those outside UID_MIN..UID_MAX of /etc/login.defs (1000..60000 by default); an empty
    shell field is /bin/sh.
    """
    low, high = _login_range(ctx)
    hashed = {e.user for e in ctx.get(SHADOW) if e.state not in ("locked", "empty")}
    problems: list[str] = []
    judged = 0
    for row in _passwd(ctx):
        if len(row) < 7 or not row[2].strip().isdigit() or row[0] in p.exempt:
            continue
        uid = int(row[2])
        if low <= uid <= high:
            continue
        judged += 1
        shell = row[6].strip() or "/bin/sh (empty field)"
        if not _no_login(row[6].strip() or "/bin/sh"):
            problems.append(f"{row[0]} (uid {uid}) has the shell {shell}")
        if row[0] in hashed:
            problems.append(f"{row[0]} (uid {uid}) has a usable password")
    if problems:
        return failed(f"system accounts that can log in: {_users(problems)}")
    return passed(
        f"the {judged} system accounts (uid outside {low}..{high}) have no login shell and no password"
    )


# ------------------------------------------------------------------------------------------ duplicates


def _duplicates(rows: list[list[str]], column: int, what: str, where: str) -> list[str]:
    seen: dict[str, list[str]] = {}
    for row in rows:
        if len(row) > column:
            seen.setdefault(row[column].strip(), []).append(row[0])
    return [f"{what} {key} ({', '.join(names)}) in {where}" for key, names in seen.items() if len(names) > 1]


def _rows(data: bytes | None) -> list[list[str]]:
    text = (data or b"").decode("utf-8", "replace")
    return [
        line.split(":") for line in text.splitlines() if line.strip() and not line.startswith(("#", "+", "-"))
    ]


@check("accounts.no_duplicate_accounts", facts=lambda p: [PASSWD, GROUP, SHADOW])
def accounts_no_duplicate_accounts(p: NoParams, ctx: Context) -> Outcome:
    """Every account and group has its own name and number: no duplicate user name, uid, group name or gid."""
    users, groups = _passwd(ctx), _rows(ctx.get(GROUP))
    if ctx.get(GROUP) is None:
        raise FactUnavailable("/etc/group does not exist")
    shadow = [[e.user] for e in ctx.get(SHADOW)]
    found = (
        _duplicates(users, 0, "user name", "/etc/passwd")
        + _duplicates(users, 2, "uid", "/etc/passwd")
        + _duplicates(shadow, 0, "user name", "/etc/shadow")
        + _duplicates(groups, 0, "group name", "/etc/group")
        + _duplicates(groups, 2, "gid", "/etc/group")
    )
    if found:
        return failed("shared identities: " + "; ".join(found))
    return passed(f"the {len(users)} accounts and {len(groups)} groups have unique names and numbers")


# ------------------------------------------------------------------------------------ admin accounts


def _admins(ctx: Context, admin_groups: list[str]) -> dict[str, str]:
    """Accounts that can administer, and why: members of the admin groups, and whoever sudo grants to."""
    groups = _rows(ctx.get(GROUP))
    by_name = {row[0]: row for row in groups if len(row) >= 4}
    by_gid = {row[2]: row[0] for row in groups if len(row) >= 3}
    primary: dict[str, list[str]] = {}
    for row in _passwd(ctx):
        if len(row) > 3:
            primary.setdefault(by_gid.get(row[3].strip(), ""), []).append(row[0])

    def members(group: str) -> list[str]:
        row = by_name.get(group)
        listed = [m for m in row[3].strip().split(",") if m] if row else []
        return listed + primary.get(group, [])

    admins: dict[str, str] = {}
    for group in admin_groups:
        for name in members(group):
            admins.setdefault(name, f"member of {group}")
    policy = read_policy(ctx)
    for principal, grant in granted_principals(policy) if policy is not None else []:
        why = f"sudo rule {grant.line.where}"
        if principal.startswith("%:"):
            continue  # a non-Unix group (group plugin): its members are not in /etc/group
        if principal.startswith("%"):
            for name in members(principal[1:]):
                admins.setdefault(name, f"{why} for %{principal[1:]}")
        elif principal not in ("ALL",) and not principal.startswith(("#", "+")):
            admins.setdefault(principal, why)
    return admins


class NominativeParams(Params):
    generic_names: list[str] = Field(
        min_length=1, description="account names that designate a function, not a person (admin, ops...)"
    )
    admin_groups: list[str] = Field(
        default_factory=lambda: ["sudo", "wheel", "admin"],
        description="groups whose members administer the host",
    )


@check(
    "accounts.admin_accounts_nominative",
    params=NominativeParams,
    facts=lambda p: [PASSWD, GROUP, *POLICY_FACTS],
)
def accounts_admin_accounts_nominative(p: NominativeParams, ctx: Context) -> Outcome:
    """Accounts that can administer are personal: none has a generic name (admin, ops, deploy...).

    Administrators are the members of the admin groups (listed, or by primary group) and whoever a sudo
    rule names, directly, through User_Alias or a %group. root is judged by the root-login controls.
    """
    admins = _admins(ctx, p.admin_groups)
    admins.pop("root", None)
    generic = re.compile(r"^(?:" + "|".join(re.escape(n) for n in p.generic_names) + r")[0-9_-]*$", re.I)
    shared = [f"{name} ({why})" for name, why in sorted(admins.items()) if generic.match(name)]
    nss = ctx.get(NSS) or {}
    remote = [
        f"{db}: {' '.join(nss[db].sources)}"
        for db in ("passwd", "group")
        if db in nss and any(s not in ("files", "systemd") for s in nss[db].sources)
    ]
    if shared:
        return failed(f"accounts with a generic name can administer: {', '.join(shared)}")
    policy = read_policy(ctx)
    directory = list(policy.directory_sources) if policy is not None else []
    summary = (
        f"the {len(admins)} admin account(s) are nominative: {_users(sorted(admins))}"
        if admins
        else "no account other than root can administer (admin groups, sudo rules)"
    )
    if remote or directory:
        where = "; ".join(remote + [f"sudoers: {' '.join(directory)}"] * bool(directory))
        return not_reviewed(
            f"{summary}; but accounts, groups or sudo rules also come from a directory ({where})"
        )
    return passed(summary)


# ------------------------------------------------------------------------------------------- root login

_CONSOLE_RE = re.compile(r"^(console|tty[0-9]+|ttyS[0-9]+|hvc[0-9]+|xvc[0-9]+|ttysclp[0-9]+|3270/tty[0-9]+)$")


@check("accounts.root_login_console_only", facts=lambda p: [SHADOW, PAM_FILES, SECURETTY])
def accounts_root_login_console_only(p: NoParams, ctx: Context) -> Outcome:
    """root cannot log in directly except on the console: its password is locked, or pam_securetty limits
    the login service to console terminals listed in /etc/securetty (no pseudo-terminal)."""
    root = next((e for e in ctx.get(SHADOW) if e.user == "root"), None)
    if root is not None and root.state == "locked":
        return passed("root's password is locked: root cannot log in with a password anywhere")
    login = stacks(ctx, ["login"], "auth").get("login")
    if login is None:
        raise FactUnavailable("the login service has no PAM file: how root logs in on terminals is unknown")
    index = next((i for i, line in enumerate(login) if line.module == "pam_securetty.so"), None)
    state = "has an empty password" if root is not None and root.state == "empty" else "has a password"
    if index is None:
        return failed(
            f"root {state} and the login service has no pam_securetty: root logs in on any terminal"
        )
    line = login[index]
    skip = skipped_before(login, index)
    if not line.fails_hard() or skip is not None:
        why = skip or f"it is '{line.control}'"
        return failed(f"pam_securetty ({line.where}) does not bind: {why}")
    data = ctx.get(SECURETTY)
    if data is None:
        return failed(f"pam_securetty ({line.where}) finds no /etc/securetty and lets root in everywhere")
    ttys = [
        t.strip() for t in data.decode("utf-8", "replace").splitlines() if t.strip() and not t.startswith("#")
    ]
    others = [t for t in ttys if not _CONSOLE_RE.match(t)]
    if others:
        return failed(f"/etc/securetty lets root log in on terminals other than consoles: {_users(others)}")
    return passed(f"root logs in only on console terminals ({_users(ttys)}), enforced by {line.where}")
