"""System-wide cryptography (ISO 27001 A.8.24, ANSSI TLS guide R4): RHEL's crypto policy is not LEGACY,
and OpenSSL's default configuration refuses TLS older than a minimum version.

OpenSSL is read as it reads itself: ``openssl_conf`` names the init section, its ``ssl_conf`` the SSL
section, whose ``system_default`` names the section whose commands apply to every application that uses the
default context. A ``MinProtocol`` anywhere else is ignored by OpenSSL, and so here. OpenSSL 3 also refuses
TLS 1.0 and 1.1 at security level 1 and above (they need SHA-1 or MD5 signatures), so a host with no
``MinProtocol`` but no ``@SECLEVEL=0`` already refuses them.
"""

from __future__ import annotations

import re

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    Outcome,
    Params,
    check,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.facts import FileContent
from hds_compliance.facts.crypto import OpenSSLConfig, OpenSSLSetup

POLICY_CONFIG = FileContent("/etc/crypto-policies/config")
POLICY_APPLIED = FileContent("/etc/crypto-policies/state/current")
OPENSSL = OpenSSLConfig()

_VERSIONS = ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class PolicyParams(Params):
    allowed: list[str] = Field(
        default_factory=lambda: ["DEFAULT", "FUTURE", "FIPS"], description="accepted base policies"
    )
    forbidden_modules: list[str] = Field(
        default_factory=lambda: ["SHA1", "LEGACY"],
        description="sub-policies that weaken the base policy (DEFAULT:SHA1 re-enables SHA-1 signatures)",
    )


def _policy(data: bytes | None) -> str | None:
    lines = [ln.strip() for ln in (data or b"").decode("utf-8", "replace").splitlines()]
    values = [ln for ln in lines if ln and not ln.startswith("#")]
    return values[-1] if values else None


def _policy_problems(name: str, where: str, p: PolicyParams) -> list[str]:
    base, *modules = name.split(":")
    problems = []
    if base.upper() not in p.allowed:
        problems.append(f"{where} is {name} (base policy {base} not in {', '.join(p.allowed)})")
    weak = [m for m in modules if m.upper() in p.forbidden_modules]
    if weak:
        problems.append(f"{where} is {name} (weakening sub-policy {', '.join(weak)})")
    return problems


@check("crypto.policy_not_legacy", params=PolicyParams, facts=lambda p: [POLICY_CONFIG, POLICY_APPLIED])
def policy_not_legacy(p: PolicyParams, ctx: Context) -> Outcome:
    """The RHEL system-wide crypto policy, as configured and as last applied, is DEFAULT, FUTURE or FIPS
    without weakening sub-policies."""
    configured = _policy(ctx.get(POLICY_CONFIG))
    applied_data = ctx.get(POLICY_APPLIED)
    if configured is None and applied_data is None:
        return not_applicable("no system-wide crypto policy (/etc/crypto-policies): not a RHEL-family host")
    applied = _policy(applied_data)
    problems = []
    if configured is None:
        problems.append(f"{POLICY_CONFIG.arg} names no policy")
    else:
        problems += _policy_problems(configured, f"configured policy ({POLICY_CONFIG.arg})", p)
    if applied is None:
        problems.append(f"{POLICY_APPLIED.arg} is missing: update-crypto-policies never applied a policy")
    else:
        problems += _policy_problems(applied, f"applied policy ({POLICY_APPLIED.arg})", p)
        if configured is not None and applied != configured:
            problems.append(
                f"configured {configured} but {applied} still applied: run update-crypto-policies --set"
            )
    if problems:
        return failed("; ".join(problems))
    return passed(f"crypto policy {configured}, applied")


# ---------------------------------------------------------------------------------------------- OpenSSL


def _sections(text: str, includes: dict[str, bytes | None]) -> dict[str, dict[str, str]]:
    """Sections of an OpenSSL configuration: ``[ name ]`` -> key -> value (last wins), with ``.include``
    files read in place (their lines continue the current section, as OpenSSL does)."""
    sections: dict[str, dict[str, str]] = {"default": {}}
    current = "default"

    def feed(body: str, depth: int) -> None:
        nonlocal current
        for raw in body.splitlines():
            line = re.sub(r"(?<!\\)#.*$", "", raw).strip()
            if not line:
                continue
            include = re.match(r"^\.include\s*=?\s*(\S+)", line)
            if include:
                target = include.group(1)
                files = {
                    k: v for k, v in includes.items() if k == target or k.startswith(target.rstrip("/") + "/")
                }
                if not files or depth > 0:
                    raise FactUnavailable(f"OpenSSL includes {target}, which the probe did not read")
                for name in sorted(files):
                    data = files[name]
                    if data is None:
                        raise FactUnavailable(f"{name} (included by OpenSSL) is not readable")
                    feed(data.decode("utf-8", "replace"), depth + 1)
                continue
            header = re.match(r"^\[\s*([^\]]+?)\s*\]$", line)
            if header:
                current = header.group(1)
                sections.setdefault(current, {})
                continue
            key, sep, value = line.partition("=")
            if sep:
                sections.setdefault(current, {})[key.strip()] = value.strip().strip("\"'")

    feed(text, 0)
    return sections


def _system_default(setup: OpenSSLSetup) -> tuple[dict[str, str], str]:
    """The commands OpenSSL applies to every default SSL context, and how they were reached."""
    main = setup.files.get(setup.config)
    if main is None:
        raise FactUnavailable(f"{setup.config} is missing or not readable")
    includes = {k: v for k, v in setup.files.items() if k != setup.config}
    sections = _sections(main.decode("utf-8", "replace"), includes)
    init = sections["default"].get("openssl_conf")
    if init is None:
        return {}, "no openssl_conf"
    ssl = sections.get(init, {}).get("ssl_conf")
    if ssl is None:
        return {}, f"[{init}] has no ssl_conf"
    default = sections.get(ssl, {}).get("system_default")
    if default is None:
        return {}, f"[{ssl}] has no system_default"
    return sections.get(default, {}), f"[{default}] via openssl_conf -> [{init}] -> ssl_conf -> [{ssl}]"


class MinProtocolParams(Params):
    min_version: str = Field(
        pattern=r"^TLSv1\.[23]$", description="oldest TLS version accepted (TLSv1.2, TLSv1.3)"
    )


@check("crypto.openssl_min_protocol", params=MinProtocolParams, facts=lambda p: [OPENSSL])
def openssl_min_protocol(p: MinProtocolParams, ctx: Context) -> Outcome:
    """OpenSSL's system-wide default refuses TLS versions older than min_version (MinProtocol in the
    system_default section, or OpenSSL 3's security level)."""
    setup = ctx.get(OPENSSL)
    if setup is None:
        return not_applicable("the openssl tool is not installed")
    commands, path = _system_default(setup)
    minimum = commands.get("MinProtocol") or commands.get("TLS.MinProtocol")
    cipher = commands.get("CipherString", "")
    level = re.search(r"@SECLEVEL=(\d)", cipher)
    seclevel = int(level.group(1)) if level else None
    effective = minimum if minimum in _VERSIONS else "TLSv1"
    why = f"MinProtocol = {minimum} in {path}" if minimum else f"no MinProtocol ({path})"
    if (setup.major or 0) >= 3 and (seclevel is None or seclevel >= 1) and _VERSIONS.index(effective) < 3:
        effective = "TLSv1.2"
        level_text = seclevel if seclevel is not None else "default"
        why += f"; {setup.version.split(' (')[0]} at security level {level_text} refuses TLS 1.0/1.1"
    elif seclevel == 0:
        why += f"; CipherString sets @SECLEVEL=0 ({setup.config})"
    if _VERSIONS.index(effective) < _VERSIONS.index(p.min_version):
        return failed(f"OpenSSL accepts {effective} by default: {why}")
    return passed(f"OpenSSL refuses anything older than {effective} by default: {why}")
