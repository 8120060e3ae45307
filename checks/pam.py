"""PAM, read as Linux-PAM reads it: the stack a service really runs, and the modules' own configuration files.

A service's stack is its file in /etc/pam.d with every ``@include`` (all types), ``<type> include`` and
``<type> substack`` expanded in place; a line in a file no judged service includes never runs, and a line
after ``#`` is a comment. A module counts only where it runs: before ``pam_unix`` when it must judge the
new password, not jumped over (``sufficient``, ``[success=N]``) and with a control that makes its failure
final. Module arguments override the module's configuration file (pwquality.conf, faillock.conf), and
libpwquality reads /etc/security/pwquality.conf.d/*.conf FIRST and pwquality.conf last, so the main file
wins over a drop-in.

Debian/Ubuntu stacks include common-auth and common-password; RHEL-family stacks (authselect) include
system-auth and password-auth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.facts import FileContent, FilesMatching

PAM_DIR = "/etc/pam.d"
PAM_FILES = FilesMatching(f"{PAM_DIR}/*")
PWQUALITY = FileContent("/etc/security/pwquality.conf")
PWQUALITY_D = FilesMatching("/etc/security/pwquality.conf.d/*.conf")
FAILLOCK = FileContent("/etc/security/faillock.conf")
GROUP = FileContent("/etc/group")

PASSWORD_SERVICES = ["passwd", "chpasswd", "sshd"]
LOGIN_SERVICES = ["login", "sshd"]
_ENFORCING = ("required", "requisite")


@dataclass(frozen=True)
class PamLine:
    """One module line of a stack, where it was written."""

    file: str
    lineno: int
    type: str
    control: str
    module: str  # base name: pam_unix.so
    args: tuple[str, ...]

    @property
    def where(self) -> str:
        """``file line n``, for messages."""
        return f"{self.file} line {self.lineno}"

    def arg(self, name: str) -> str | None:
        """Value of the last ``name=value`` argument, ``""`` for a bare ``name``, ``None`` if absent."""
        found: str | None = None
        for arg in self.args:
            key, sep, value = arg.partition("=")
            if key == name:
                found = value if sep else ""
        return found

    def actions(self) -> dict[str, str]:
        """``[value=action ...]`` of a bracketed control; ``{}`` for a keyword."""
        if not self.control.startswith("["):
            return {}
        pairs = (item.partition("=") for item in self.control.strip("[]").split())
        return {key: value for key, _, value in pairs}

    def fails_hard(self) -> bool:
        """Whether a failure of this module makes the stack fail (its verdict is not ignored)."""
        if self.control in _ENFORCING:
            return True
        default = self.actions().get("default", "")
        return default in ("die", "bad")


def _tokens(text: str) -> list[str]:
    """Words of a PAM line, a ``[...]`` group (control or argument) kept as one word."""
    words: list[str] = []
    current, depth = "", 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if char in " \t" and depth == 0:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


@functools.lru_cache(maxsize=256)
def _file_lines(name: str, data: bytes) -> tuple[tuple[int, list[str]], ...]:
    """(line number, words) of each non-empty line: continuations joined, ``#`` to the end removed.

    Cached: every PAM check of a host reads the same files, through stacks that include each other.
    Callers must not change the words."""
    out: list[tuple[int, list[str]]] = []
    lines = data.decode("utf-8", "replace").splitlines()
    number = 0
    while number < len(lines):
        start, text = number + 1, lines[number]
        while text.endswith("\\") and number + 1 < len(lines):
            number += 1
            text = text[:-1] + " " + lines[number]
        number += 1
        words = _tokens(text.split("#", 1)[0])
        if words:
            out.append((start, words))
    return tuple(out)


def stack(files: dict[str, bytes], service: str, type_: str, depth: int = 0) -> list[PamLine] | None:
    """The ``type_`` lines the service runs, includes expanded; ``None`` if the service has no file."""
    path = service if service.startswith("/") else f"{PAM_DIR}/{service}"
    if path not in files:
        return None
    if depth > 16:
        raise FactUnavailable(f"{path}: PAM includes nest too deep (a loop?)")
    out: list[PamLine] = []
    for number, words in _file_lines(path, files[path]):
        where = f"{path} line {number}"
        if words[0] == "@include":
            included = stack(files, words[1], type_, depth + 1) if len(words) > 1 else None
            if included is None:
                raise FactUnavailable(
                    f"{where} includes {words[1:2]}, which does not exist: PAM fails the stack"
                )
            out += included
            continue
        if len(words) < 3:
            raise FactUnavailable(f"{where}: not a PAM line ({' '.join(words)[:60]!r})")
        kind = words[0].lstrip("-").lower()
        if kind != type_:
            continue
        if words[1] in ("include", "substack"):
            included = stack(files, words[2], type_, depth + 1)
            if included is None:
                raise FactUnavailable(
                    f"{where} includes {words[2]}, which does not exist: PAM fails the stack"
                )
            out += included
            continue
        module = words[2].rsplit("/", 1)[-1]
        out.append(PamLine(path, number, kind, words[1], module, tuple(words[3:])))
    return out


def skipped_before(lines: list[PamLine], target: int) -> str | None:
    """How an earlier line can end the stack or jump over line ``target`` (``None``: it always runs).

    ``pam_rootok`` is left out: it only succeeds for root, who may bypass what follows.
    """
    for j, line in enumerate(lines[:target]):
        if line.module == "pam_rootok.so":
            continue
        success = line.actions().get("success", "")
        if line.control == "sufficient" or success == "done":
            return f"{line.module} ({line.where}) ends the stack before it when it succeeds"
        if success.isdigit() and j + int(success) >= target:
            return f"{line.module} ({line.where}) jumps over it when it succeeds"
    return None


def _first(lines: list[PamLine], module: str, start: int = 0) -> int | None:
    return next((i for i in range(start, len(lines)) if lines[i].module == module), None)


def pam_files(ctx: Context) -> dict[str, bytes]:
    """Files of /etc/pam.d (``FactUnavailable`` when there are none: pam.conf is not read)."""
    files = ctx.get(PAM_FILES)
    if not files:
        raise FactUnavailable(
            f"no file in {PAM_DIR}: PAM configuration not found (/etc/pam.conf is not read)"
        )
    return files


def stacks(ctx: Context, services: list[str], type_: str) -> dict[str, list[PamLine]]:
    """The ``type_`` stacks of the services that exist on the host."""
    files = pam_files(ctx)
    found = {s: stack(files, s, type_) for s in services}
    return {s: lines for s, lines in found.items() if lines is not None}


def enforced_before_unix(lines: list[PamLine], module: str) -> tuple[PamLine | None, str | None]:
    """The line of ``module`` that judges a password before pam_unix, or why there is none that works."""
    index = _first(lines, module)
    if index is None:
        return None, f"no {module}"
    line = lines[index]
    unix = _first(lines, "pam_unix.so")
    if unix is not None and unix < index:
        return line, f"{module} ({line.where}) runs after pam_unix ({lines[unix].where}): too late"
    if not line.fails_hard():
        return line, f"{module} ({line.where}) is '{line.control}': its refusal is ignored"
    skip = skipped_before(lines, index)
    if skip is not None:
        return line, f"{module} ({line.where}) can be skipped: {skip}"
    return line, None


def verdict(problems: list[str], found: list[str], ok: str = "") -> Outcome:
    """Fail with every problem found, else pass with what holds (``ok`` introduces it)."""
    return failed("; ".join(problems)) if problems else passed(ok + "; ".join(found))


def key_values(data: bytes | None) -> dict[str, tuple[str, int]]:
    """``name = value`` settings of a module configuration file (pwquality.conf, faillock.conf); a bare
    ``name`` is a flag (``""``). The last line naming a setting wins."""
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate((data or b"").decode("utf-8", "replace").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        name, sep, value = text.partition("=")
        values[name.strip()] = (value.strip() if sep else "", number)
    return values


# ---------------------------------------------------------------------------------------- pwquality


@dataclass(frozen=True)
class Quality:
    """pam_pwquality's effective settings, each with the place that sets it."""

    values: dict[str, tuple[str, str]]  # name -> (value, where)

    def number(self, name: str, default: int) -> int:
        """An integer setting (a malformed value is an error, as libpwquality refuses it)."""
        value = self.values.get(name)
        if value is None:
            return default
        try:
            return int(value[0])
        except ValueError as exc:
            raise FactUnavailable(f"{name}={value[0]} ({value[1]}) is not a number") from exc

    def where(self, name: str) -> str:
        """Where a setting comes from."""
        value = self.values.get(name)
        return f"{name}={value[0]} ({value[1]})" if value else f"{name} default"

    def flag(self, name: str) -> bool:
        """A flag set (present, or a non-zero number)."""
        value = self.values.get(name)
        return value is not None and value[0] not in ("0",)

    def shortest(self) -> int:
        """Fewest characters accepted: minlen less the positive credits of the classes (each counts once)."""
        credits = sum(max(0, self.number(c, 0)) for c in ("dcredit", "ucredit", "lcredit", "ocredit"))
        return max(self.number("minlen", 8), 6) - credits

    def classes(self) -> int:
        """Character classes a password must mix: minclass, or the classes with a negative credit."""
        required = sum(1 for c in ("dcredit", "ucredit", "lcredit", "ocredit") if self.number(c, 0) < 0)
        return max(self.number("minclass", 0), required)


def quality(ctx: Context, line: PamLine) -> Quality:
    """Settings as libpwquality reads them: pwquality.conf.d/*.conf, then pwquality.conf, then arguments."""
    values: dict[str, tuple[str, str]] = {}
    sources = [*ctx.get(PWQUALITY_D).items(), (PWQUALITY.arg, ctx.get(PWQUALITY) or b"")]
    for name, data in sources:
        for key, (value, number) in key_values(data).items():
            values[key] = (value, f"{name} line {number}")
    for arg in line.args:
        key, _, value = arg.partition("=")
        values[key] = (value, line.where)
    return Quality(values)


class QualityParams(Params):
    min_length: int = Field(ge=1, description="fewest characters a new password may have")
    min_classes: int = Field(ge=0, le=4, description="fewest character classes a new password must mix")


def _password_stacks(ctx: Context) -> dict[str, list[PamLine]]:
    found = stacks(ctx, PASSWORD_SERVICES, "password")
    if not found:
        raise FactUnavailable(f"none of the services {', '.join(PASSWORD_SERVICES)} has a file in {PAM_DIR}")
    return found


@check(
    "pam.password_quality",
    params=QualityParams,
    facts=lambda p: [PAM_FILES, PWQUALITY, PWQUALITY_D],
)
def pam_password_quality(p: QualityParams, ctx: Context) -> Outcome:
    """New passwords are refused below a length and a mix of character classes (pam_pwquality, as it runs).

    Judged in the password stacks of passwd, chpasswd and sshd: pam_pwquality must run before pam_unix
    with a control that makes its refusal final; its minimum is minlen less the credits a password earns
    for its classes; enforcing=0 only warns. Without pam_pwquality, pam_unix's own minlen gives a length and
    no classes.
    """
    problems: list[str] = []
    found: list[str] = []
    for service, lines in _password_stacks(ctx).items():
        line, why = enforced_before_unix(lines, "pam_pwquality.so")
        if line is None:
            unix = _first(lines, "pam_unix.so")
            length = int(lines[unix].arg("minlen") or 6) if unix is not None else 0
            problems.append(f"{service}: no pam_pwquality (pam_unix alone: {length} characters, no classes)")
            continue
        if why is not None:
            problems.append(f"{service}: {why}")
            continue
        settings = quality(ctx, line)
        shortest, classes = settings.shortest(), settings.classes()
        if settings.number("enforcing", 1) == 0:
            problems.append(f"{service}: {settings.where('enforcing')}: weak passwords only get a warning")
        if shortest < p.min_length:
            credits = ", ".join(
                settings.where(c)
                for c in ("dcredit", "ucredit", "lcredit", "ocredit")
                if c in settings.values
            )
            more = f" with {credits}" if credits else ""
            problems.append(
                f"{service}: passwords of {shortest} characters are accepted "
                f"({settings.where('minlen')}{more})"
            )
        if classes < p.min_classes:
            problems.append(
                f"{service}: {classes} character class(es) required ({settings.where('minclass')}), "
                f"{p.min_classes} wanted"
            )
        found.append(f"{service}: at least {shortest} characters from {classes} classes ({line.where})")
    return verdict(problems, found)


@check("pam.password_quality_applies_to_root", facts=lambda p: [PAM_FILES, PWQUALITY, PWQUALITY_D])
def pam_password_quality_applies_to_root(p: NoParams, ctx: Context) -> Outcome:
    """Password quality also binds root: pam_pwquality has enforce_for_root (else root only gets a warning).

    Covers the root account's own password and every password an administrator sets as root.
    """
    problems: list[str] = []
    found: list[str] = []
    for service, lines in _password_stacks(ctx).items():
        line, why = enforced_before_unix(lines, "pam_pwquality.so")
        if line is None or why is not None:
            problems.append(f"{service}: {why}")
            continue
        settings = quality(ctx, line)
        if "enforce_for_root" not in settings.values:
            problems.append(
                f"{service}: pam_pwquality ({line.where}) lets root set any password (no enforce_for_root)"
            )
        else:
            found.append(f"{service}: {settings.where('enforce_for_root').replace('=', '', 1)}")
    return verdict(problems, found, "password quality binds root: ")


# ------------------------------------------------------------------------------------------ history


class HistoryParams(Params):
    remember: int = Field(ge=1, description="previous passwords a new one may not repeat")


@check("pam.password_history", params=HistoryParams, facts=lambda p: [PAM_FILES])
def pam_password_history(p: HistoryParams, ctx: Context) -> Outcome:
    """New passwords may not repeat the last ones: pam_pwhistory (remember, default 10) before pam_unix, or
    pam_unix remember=N, in the password stacks of passwd, chpasswd and sshd."""
    problems: list[str] = []
    found: list[str] = []
    for service, lines in _password_stacks(ctx).items():
        unix = _first(lines, "pam_unix.so")
        unix_remember = lines[unix].arg("remember") if unix is not None else None
        line, why = enforced_before_unix(lines, "pam_pwhistory.so")
        if line is not None and why is None:
            remember, where = int(line.arg("remember") or 10), f"pam_pwhistory ({line.where})"
        elif unix is not None and unix_remember:
            remember, where = int(unix_remember), f"pam_unix remember ({lines[unix].where})"
        else:
            problems.append(
                f"{service}: {why if line is not None else 'no pam_pwhistory and no pam_unix remember'}"
            )
            continue
        if remember < p.remember:
            problems.append(f"{service}: {where} remembers {remember} password(s), {p.remember} wanted")
        else:
            found.append(f"{service}: {where} remembers {remember}")
    return verdict(problems, found)


# ------------------------------------------------------------------------------------------ lockout


def _reaches_on_failure(lines: list[PamLine], unix: int, target: int) -> str | None:
    """Why a pam_unix failure does not lead to line ``target`` (``None``: it does)."""
    first = lines[unix]
    default = first.actions().get("default", "")
    if first.control == "requisite" or default in ("die", "done"):
        return f"pam_unix ({first.where}) ends the stack when it fails"
    if default.isdigit() and unix + int(default) >= target:
        return f"pam_unix ({first.where}) jumps over it when it fails"
    for line in lines[unix + 1 : target]:
        if line.module == "pam_deny.so" and (
            line.control == "requisite" or line.actions().get("default") == "die"
        ):
            return f"pam_deny ({line.where}) ends the stack before it"
    return None


@dataclass(frozen=True)
class Lockout:
    """pam_faillock as a login stack runs it."""

    deny: int
    unlock_time: int  # 0: until an administrator unlocks
    where: str


def _faillock_setting(
    line: PamLine, conf: dict[str, tuple[str, int]], name: str, default: int
) -> tuple[int, str]:
    value = line.arg(name)
    where = line.where
    if value is None and name in conf:
        value, where = conf[name][0], f"{FAILLOCK.arg} line {conf[name][1]}"
    if value is None:
        return default, f"default {default}"
    if value == "never":
        return 0, where
    try:
        return int(value), where
    except ValueError as exc:
        raise FactUnavailable(f"{name}={value} ({where}) is not a number") from exc


def lockout(lines: list[PamLine], conf: dict[str, tuple[str, int]]) -> tuple[Lockout | None, str | None]:
    """How the stack locks accounts after failures, or why it does not.

    The lock is enforced by the ``preauth`` call before pam_unix (its deny and unlock_time decide), and
    failures are counted by the ``authfail`` call that a pam_unix failure reaches, which stops counting at
    its own deny: below preauth's, the account is never locked.
    """
    unix = _first(lines, "pam_unix.so")
    faillock = [(i, line) for i, line in enumerate(lines) if line.module == "pam_faillock.so"]
    if unix is None:
        return None, "no pam_unix auth line"
    if not faillock:
        return None, "no pam_faillock"
    if any(line.arg("conf") is not None for _, line in faillock):
        raise FactUnavailable(f"pam_faillock reads another configuration file (conf=) than {FAILLOCK.arg}")
    pre = next(((i, line) for i, line in faillock if line.arg("preauth") is not None and i < unix), None)
    fail = next(((i, line) for i, line in faillock if line.arg("authfail") is not None and i > unix), None)
    if pre is None:
        return None, "no pam_faillock preauth before pam_unix: a locked account still logs in"
    if not pre[1].fails_hard():
        return None, f"pam_faillock preauth ({pre[1].where}) is '{pre[1].control}': the lock is not enforced"
    skip = skipped_before(lines, pre[0])
    if skip is not None:
        return None, f"pam_faillock preauth ({pre[1].where}) can be skipped: {skip}"
    if fail is None:
        return None, "no pam_faillock authfail after pam_unix: failures are not counted"
    blocked = _reaches_on_failure(lines, unix, fail[0])
    if blocked is not None:
        return None, f"pam_faillock authfail ({fail[1].where}) never runs: {blocked}"
    deny, deny_where = _faillock_setting(pre[1], conf, "deny", 3)
    counted, counted_where = _faillock_setting(fail[1], conf, "deny", 3)
    if deny and counted and counted < deny:
        # authfail stops recording once ITS deny is reached: the tally never gets to preauth's.
        return None, (
            f"never locks: authfail stops counting at deny={counted} ({counted_where}), "
            f"below preauth's deny={deny} ({deny_where})"
        )
    unlock, unlock_where = _faillock_setting(pre[1], conf, "unlock_time", 600)
    return Lockout(deny, unlock, f"deny={deny} ({deny_where}), unlock_time={unlock} ({unlock_where})"), None


class LockoutParams(Params):
    attempts: int = Field(ge=1, description="most failed logons before the account is locked")
    seconds: int = Field(
        ge=0, description="fewest seconds a lock lasts (0 accepts only locks until unlocked)"
    )


@check("pam.lockout_after_failures", params=LockoutParams, facts=lambda p: [PAM_FILES, FAILLOCK])
def pam_lockout_after_failures(p: LockoutParams, ctx: Context) -> Outcome:
    """Accounts are locked after a few failed logons, for at least a minimum time (pam_faillock in the login
    and sshd auth stacks: preauth before pam_unix, authfail on its failure; arguments over faillock.conf)."""
    conf = key_values(ctx.get(FAILLOCK))
    found_stacks = stacks(ctx, LOGIN_SERVICES, "auth")
    if not found_stacks:
        raise FactUnavailable(f"none of the services {', '.join(LOGIN_SERVICES)} has a file in {PAM_DIR}")
    problems: list[str] = []
    found: list[str] = []
    for service, lines in found_stacks.items():
        lock, why = lockout(lines, conf)
        if lock is None:
            problems.append(f"{service}: {why}")
            continue
        if lock.deny == 0 or lock.deny > p.attempts:
            never = " (0: never locks)" if lock.deny == 0 else ""
            problems.append(f"{service}: {lock.where}{never}, at most {p.attempts} failures wanted")
        elif lock.unlock_time != 0 and lock.unlock_time < p.seconds:
            problems.append(f"{service}: {lock.where}, locks shorter than {p.seconds}s")
        else:
            found.append(f"{service}: {lock.where}")
    return verdict(problems, found, "accounts are locked after failed logons: ")


# ------------------------------------------------------------------------------------- empty passwords


class ServicesParams(Params):
    services: list[str] = Field(
        default_factory=lambda: ["login", "sshd", "su", "sudo", "other"],
        min_length=1,
        description="PAM services whose auth stacks are judged (those without a file are skipped)",
    )


@check("pam.empty_passwords_refused", params=ServicesParams, facts=lambda p: [PAM_FILES])
def pam_empty_passwords_refused(p: ServicesParams, ctx: Context) -> Outcome:
    """No login stack accepts an empty password: pam_unix runs without nullok in the judged services."""
    found_stacks = stacks(ctx, p.services, "auth")
    if not found_stacks:
        raise FactUnavailable(f"none of the services {', '.join(p.services)} has a file in {PAM_DIR}")
    lax = sorted(
        {
            f"{line.where} (pam_unix {' '.join(a for a in line.args if a.startswith('nullok'))})"
            for lines in found_stacks.values()
            for line in lines
            if line.module == "pam_unix.so" and any(a.startswith("nullok") for a in line.args)
        }
    )
    if lax:
        return failed(f"empty passwords are accepted by {', '.join(lax)}, run by {', '.join(found_stacks)}")
    return passed(f"pam_unix refuses empty passwords in the auth stacks of {', '.join(found_stacks)}")


# ------------------------------------------------------------------------------------------------ su


def _members(data: bytes | None, group: str) -> list[str] | None:
    for raw in (data or b"").decode("utf-8", "replace").splitlines():
        fields = raw.split(":")
        if len(fields) >= 4 and fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    return None


@check("pam.su_restricted_to_group", facts=lambda p: [PAM_FILES, GROUP])
def pam_su_restricted_to_group(p: NoParams, ctx: Context) -> Outcome:
    """Only members of an administrators' group may use su (pam_wheel required in the su auth stack)."""
    found = stacks(ctx, ["su"], "auth")
    if not found:
        return not_applicable(f"su has no PAM service file in {PAM_DIR}")
    lines = found["su"]
    wheel = [i for i, line in enumerate(lines) if line.module == "pam_wheel.so"]
    restricting = [i for i in wheel if lines[i].arg("deny") is None and lines[i].arg("trust") is None]
    if not restricting:
        how = "only to trust or deny some" if wheel else "no pam_wheel"
        return failed(f"every account that knows a password may use su: {how} in the su auth stack")
    line = lines[restricting[0]]
    if not line.fails_hard():
        return failed(f"pam_wheel ({line.where}) is '{line.control}': its refusal is ignored")
    skip = skipped_before(lines, restricting[0])
    if skip is not None:
        return failed(f"pam_wheel ({line.where}) can be skipped: {skip}")
    group = line.arg("group") or "wheel"
    members = _members(ctx.get(GROUP), group)
    if members is None:
        return passed(
            f"pam_wheel ({line.where}) allows group {group}, which does not exist: nobody but root uses su"
        )
    return passed(
        f"su is restricted to group {group} by pam_wheel ({line.where}): {', '.join(members) or 'no member'}"
    )
