"""SSH daemon hardening, judged on the effective configuration (``sshd -T``) of every running daemon."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts import SshdConfig, SshdEffectiveConfig

SSHD = SshdEffectiveConfig()

# A judgement of one daemon's configuration: (holds, what was found, naming the config file).
Judgement = tuple[bool, str]


def _every_daemon(ctx: Context, judge: Callable[[SshdConfig], Judgement]) -> Outcome:
    """Pass when every running daemon's configuration holds; otherwise say which do not and why."""
    configs = ctx.get(SSHD)
    if configs is None:
        return not_applicable("sshd is not installed: no SSH service to harden")
    results = [judge(config) for config in configs]
    failing = [found for holds, found in results if not holds]
    if failing:
        return failed("; ".join(failing))
    return passed("; ".join(found for _, found in results))


class OptionParams(Params):
    name: str = Field(description="sshd keyword, case-insensitive (as printed by sshd -T)")
    expect: str = Field(description="required value, compared case-insensitively")


@check("sshd.option", params=OptionParams, facts=lambda p: [SSHD])
def sshd_option(p: OptionParams, ctx: Context) -> Outcome:
    """An sshd keyword has exactly the expected effective value."""

    def judge(config: SshdConfig) -> Judgement:
        value = config.get(p.name)
        if value is None:
            return False, f"{p.name} is not reported by sshd -T for {config.source} (expected {p.expect})"
        if value.lower() != p.expect.lower():
            found = f"{p.name} is {value} in the effective configuration of {config.source}"
            return False, f"{found} (expected {p.expect})"
        return True, f"{p.name} is {value} in the effective configuration of {config.source}"

    return _every_daemon(ctx, judge)


class MaxParams(Params):
    name: str = Field(description="numeric sshd keyword, e.g. maxauthtries")
    max: int = Field(ge=0, description="highest accepted value")


@check("sshd.option_at_most", params=MaxParams, facts=lambda p: [SSHD])
def sshd_option_at_most(p: MaxParams, ctx: Context) -> Outcome:
    """A numeric sshd keyword is at most a bound (e.g. MaxAuthTries, LoginGraceTime)."""

    def judge(config: SshdConfig) -> Judgement:
        value = config.get(p.name)
        if value is None or not value.isdigit():
            return False, f"{p.name} is {value!r} in {config.source}, not a number (expected at most {p.max})"
        if int(value) > p.max:
            return False, f"{p.name} is {value} in {config.source} (expected at most {p.max})"
        return True, f"{p.name} is {value} in {config.source} (at most {p.max})"

    return _every_daemon(ctx, judge)


@check("sshd.root_login_disabled", facts=lambda p: [SSHD])
def sshd_root_login_disabled(p: NoParams, ctx: Context) -> Outcome:
    """root cannot log in over SSH: administrators log in by name and elevate, so actions are attributable."""

    def judge(config: SshdConfig) -> Judgement:
        value = config.get("permitrootlogin") or "unset"
        if value != "no":
            return False, f"PermitRootLogin is {value} in the effective configuration of {config.source}"
        return True, f"PermitRootLogin is no in {config.source}"

    return _every_daemon(ctx, judge)


@check("sshd.password_authentication_disabled", facts=lambda p: [SSHD])
def sshd_password_authentication_disabled(p: NoParams, ctx: Context) -> Outcome:
    """Passwords are not accepted over SSH (keys or certificates only), keyboard-interactive included."""

    def judge(config: SshdConfig) -> Judgement:
        enabled = [
            name
            for name in ("passwordauthentication", "kbdinteractiveauthentication", "permitemptypasswords")
            if config.get(name) == "yes"
        ]
        if enabled:
            return False, f"{', '.join(enabled)} yes in the effective configuration of {config.source}"
        return True, f"password and keyboard-interactive authentication are off in {config.source}"

    return _every_daemon(ctx, judge)


class AlgorithmParams(Params):
    forbidden: list[str] = Field(
        default_factory=lambda: [
            "cbc",
            "3des",
            "arcfour",
            "blowfish",
            "cast128",
            "hmac-md5",
            "hmac-sha1",
            "umac-64",
            "diffie-hellman-group1",
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1",
            "ssh-dss",
        ],
        description="substrings that disqualify an algorithm",
    )


_ALGORITHM_KEYWORDS = ("ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms")


@check("sshd.weak_algorithms_disabled", params=AlgorithmParams, facts=lambda p: [SSHD])
def sshd_weak_algorithms_disabled(p: AlgorithmParams, ctx: Context) -> Outcome:
    """No weak cipher, MAC, key exchange or host-key algorithm is offered (ANSSI crypto guide)."""

    def judge(config: SshdConfig) -> Judgement:
        weak = [
            f"{keyword}: {algorithm}"
            for keyword in _ALGORITHM_KEYWORDS
            for algorithm in (config.get(keyword) or "").split(",")
            if algorithm and any(bad in algorithm for bad in p.forbidden)
        ]
        if weak:
            shown = "; ".join(weak[:6]) + (f" (+{len(weak) - 6} more)" if len(weak) > 6 else "")
            return False, f"weak algorithms offered by {config.source}: {shown}"
        return True, f"no weak cipher, MAC, key exchange or host-key algorithm offered by {config.source}"

    return _every_daemon(ctx, judge)


@check("sshd.forwarding_disabled", facts=lambda p: [SSHD])
def sshd_forwarding_disabled(p: NoParams, ctx: Context) -> Outcome:
    """TCP, X11 and agent forwarding are off, so the server cannot be used as a pivot around the bastion."""

    def judge(config: SshdConfig) -> Judgement:
        enabled = [
            f"{name} {config.get(name)}"
            for name in ("allowtcpforwarding", "x11forwarding", "allowagentforwarding")
            if (config.get(name) or "no") != "no"
        ]
        if enabled:
            return False, f"forwarding enabled in {config.source}: {', '.join(enabled)}"
        return True, f"TCP, X11 and agent forwarding are off in {config.source}"

    return _every_daemon(ctx, judge)
