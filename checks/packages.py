"""Packages and updates: signed repositories, security updates applied, fresh metadata, automatic
updates, no forbidden package. Debian/Ubuntu (apt, dpkg) and RHEL family (dnf, rpm).

Each check judges the package manager the host uses and is ``not_applicable`` on the other family's, saying
which one the host uses. Pending updates are judged from the metadata already cached on the host: the probe
never refreshes it, so a separate check says how old that metadata is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import Field

from hds_compliance.check import (
    Context,
    FactUnavailable,
    NoParams,
    Outcome,
    Params,
    check,
    contains_redaction,
    failed,
    not_applicable,
    passed,
)
from hds_compliance.checks.scheduling import CRON, PROCESSES, schedules
from hds_compliance.facts import FileContent, FilesMatching
from hds_compliance.facts.aptlists import AptEntry, security_indexes, string_to_bool
from hds_compliance.facts.debversion import BadVersion, newer
from hds_compliance.facts.packages import (
    AptConfig,
    AptConfigDump,
    AptSecurityIndexes,
    AptSources,
    DnfPendingUpdates,
    InstalledPackages,
    InstalledVersion,
    PackageIndexes,
    apt_bool,
)
from hds_compliance.facts.services import SystemdUnit

APT_CONFIG = AptConfigDump()
APT_SOURCES = AptSources()
APT_INDEXES = AptSecurityIndexes()
DNF_PENDING = DnfPendingUpdates()
INSTALLED = InstalledPackages()
INDEXES = PackageIndexes()
DNF_CONF = FileContent("/etc/dnf/dnf.conf")
YUM_CONF = FileContent("/etc/yum.conf")
# dnf's default reposdir, in the order dnf reads them.
REPO_DIRS = ("/etc/yum.repos.d", "/etc/yum/repos.d", "/etc/distro.repos.d")
REPO_FILES = [FilesMatching(f"{d}/*.repo") for d in REPO_DIRS]
DNF_AUTOMATIC = FileContent("/etc/dnf/automatic.conf")
APT_TIMERS = [SystemdUnit("apt-daily.timer"), SystemdUnit("apt-daily-upgrade.timer")]
DNF_TIMERS = [SystemdUnit("dnf-automatic.timer"), SystemdUnit("dnf-automatic-install.timer")]
_PERIODIC_KEYS = [
    "APT::Periodic::Enable",
    "APT::Periodic::Update-Package-Lists",
    "APT::Periodic::Unattended-Upgrade",
    "Unattended-Upgrade::Origins-Pattern",
    "Unattended-Upgrade::Allowed-Origins",
]
_APT_DAILY = re.compile(r"apt\.systemd\.daily")


def _family(ctx: Context) -> str:
    """``dpkg`` or ``rpm``: the package database the host is managed with."""
    database = ctx.get(INSTALLED)
    if database is None:
        raise FactUnavailable("neither dpkg nor rpm is installed: the host's packages cannot be known")
    return database.tool


def _other_family(tool: str) -> Outcome:
    name = "apt/dpkg (Debian family)" if tool == "dpkg" else "dnf/rpm (RHEL family)"
    return not_applicable(f"the host is managed with {name}")


# ------------------------------------------------------------------------------------ apt trusted sources

# Source options that make apt accept a repository without a valid signature, as apt names them (a one-line
# entry's [ option=value ], a deb822 field apt maps to it), with the global option each one overrides.
_ENTRY_OPTIONS = {
    "trusted": ("trusted (no signature check at all)", None),
    "allow-insecure": ("allow-insecure (unsigned repository accepted)", "Acquire::AllowInsecureRepositories"),
    "allow-weak": ("allow-weak (weak signature accepted)", "Acquire::AllowWeakRepositories"),
    "allow-downgrade-to-insecure": (
        "allow-downgrade-to-insecure",
        "Acquire::AllowDowngradeToInsecureRepositories",
    ),
}
_GLOBAL_OPTIONS = (
    "APT::Get::AllowUnauthenticated",
    "Acquire::AllowInsecureRepositories",
    "Acquire::AllowWeakRepositories",
    "Acquire::AllowDowngradeToInsecureRepositories",
)


def _unsigned_options(entry: AptEntry, config: AptConfig) -> list[str]:
    """What in an entry makes apt accept its repository unsigned (apt reads ``trusted`` as false and the
    others as the global option when the value is not a boolean)."""
    found = []
    for key, (why, global_option) in _ENTRY_OPTIONS.items():
        value = entry.options.get(key)
        if value is None:
            continue
        if contains_redaction(value):
            raise FactUnavailable(f"{entry.ref}: option {key} was redacted: it cannot be judged")
        default = bool(config.flag(global_option)) if global_option else False
        if string_to_bool(value, default):
            found.append(f"{entry.file} {entry.where} ({entry.uri} {entry.suite}): {why}")
    return found


def _apt_config(ctx: Context, keys: list[str]) -> AptConfig | None:
    """apt's configuration, refusing a redacted value among the ``keys`` the check reads (a proxy password
    elsewhere in it does not matter)."""
    config = ctx.get(APT_CONFIG, redacted_ok=True)
    if config is not None:
        for key in keys:
            if any(contains_redaction(v) for v in [config.get(key) or "", *config.items(key)]):
                raise FactUnavailable(f"apt option {key} was redacted: it cannot be judged")
    return config


@check("packages.apt_sources_authenticated", facts=lambda p: [INSTALLED, APT_SOURCES, APT_CONFIG])
def apt_sources_authenticated(p: NoParams, ctx: Context) -> Outcome:
    """apt installs only from signed repositories: no trusted=yes, allow-insecure or AllowUnauthenticated."""
    tool = _family(ctx)
    if tool != "dpkg":
        return _other_family(tool)
    sources, config = ctx.get(APT_SOURCES, redacted_ok=True), _apt_config(ctx, list(_GLOBAL_OPTIONS))
    if sources is None or config is None:
        return failed("dpkg is installed but apt is not: the origin of packages cannot be judged")
    if not sources.entries:
        read = ", ".join(sources.files) or "no sources file"
        return failed(f"apt reads no source entry ({read}): the host cannot receive updates")
    problems = list(dict.fromkeys(p for e in sources.entries for p in _unsigned_options(e, config)))
    problems += [f"apt configuration sets {key} true" for key in _GLOBAL_OPTIONS if config.flag(key)]
    if problems:
        return failed("; ".join(problems))
    refs = len({e.ref for e in sources.entries})
    return passed(f"{refs} source entries read by apt, none accepts unsigned packages; no global override")


# -------------------------------------------------------------------------------------- dnf gpgcheck

_DNF_TRUE = {"1", "yes", "true", "on"}
_DNF_FALSE = {"0", "no", "false", "off"}


@dataclass
class _Section:
    name: str
    file: str
    options: dict[str, tuple[str, int]]  # key -> (value, line)


def _ini_sections(name: str, text: str) -> list[_Section] | None:
    """Sections of a dnf configuration file as libdnf reads them; ``None`` when dnf would skip the file.

    Keys are case-sensitive, a later key replaces an earlier one, a repeated section continues the
    first, a line starting with blanks continues the previous value, ``#`` and ``;`` lines are comments
    (a ``#`` after a value is part of the value).
    """
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    key: str | None = None
    blank = False
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            blank, key = True, None
            continue
        if raw.lstrip()[:1] in ("#", ";"):
            continue
        if raw[0] in " \t":
            if key is None or current is None or blank:
                return None  # libdnf fails on a continuation that continues nothing: the file is skipped
            value, line = current.options[key]
            current.options[key] = (f"{value} {raw.strip()}", line)
            continue
        blank = False
        header = re.match(r"^\[(.+)\]\s*$", raw)
        if header:
            section = header.group(1).strip()
            current = sections.setdefault(section, _Section(section, name, {}))
            key = None
            continue
        option, sep, value = raw.partition("=")
        if not sep or current is None:
            return None
        key = option.strip()
        current.options[key] = (value.strip(), number)
    return list(sections.values())


def _dnf_bool(value: str) -> bool | None:
    text = value.strip().lower()
    return True if text in _DNF_TRUE else False if text in _DNF_FALSE else None


@check("packages.dnf_gpgcheck_enforced", facts=lambda p: [INSTALLED, DNF_CONF, YUM_CONF, *REPO_FILES])
def dnf_gpgcheck_enforced(p: NoParams, ctx: Context) -> Outcome:
    """dnf/yum check package signatures (gpgcheck) for every enabled repository, as dnf resolves it."""
    tool = _family(ctx)
    if tool != "rpm":
        return _other_family(tool)
    main_fact = DNF_CONF if ctx.get(DNF_CONF) is not None else YUM_CONF
    main_text = ctx.get(main_fact)
    if main_text is None:
        return failed("neither /etc/dnf/dnf.conf nor /etc/yum.conf exists: gpgcheck is off by default")
    main_sections = _ini_sections(main_fact.arg, main_text.decode("utf-8", "replace"))
    if main_sections is None:
        return failed(f"{main_fact.arg} cannot be parsed by dnf")
    main = next((s for s in main_sections if s.name == "main"), _Section("main", main_fact.arg, {}))
    if "reposdir" in main.options:
        raise FactUnavailable(f"{main_fact.arg} sets reposdir: the repository files were not collected")
    default, line = main.options.get("gpgcheck", ("0", 0))
    main_check = _dnf_bool(default) is True
    where_main = f"{main_fact.arg} line {line}" if line else f"{main_fact.arg} (not set: off by default)"
    repos: dict[str, _Section] = {}
    skipped = []
    for section in main_sections:
        if section.name != "main":
            repos.setdefault(section.name, section)
    for fact in REPO_FILES:
        for name, data in ctx.get(fact).items():
            parsed = _ini_sections(name, data.decode("utf-8", "replace"))
            if parsed is None:
                skipped.append(name)
                continue
            for section in parsed:
                repos.setdefault(section.name, section)  # the first file defining a repository wins
    problems = []
    enabled = 0
    for repo in repos.values():
        if _dnf_bool(repo.options.get("enabled", ("1", 0))[0]) is False:
            continue
        enabled += 1
        value, at = repo.options.get("gpgcheck", ("", 0))
        own = _dnf_bool(value)  # a value dnf cannot read as a boolean is ignored: main's applies
        if own is False:
            problems.append(f"repository {repo.name} sets gpgcheck={value} ({repo.file} line {at})")
        elif own is None and not main_check:
            problems.append(f"repository {repo.name} ({repo.file}) inherits gpgcheck off from {where_main}")
    if not main_check:
        problems.append(
            f"[main] gpgcheck is off in {where_main} (any repository that does not set it is unchecked)"
        )
    note = f"; files dnf skips as invalid: {', '.join(skipped)}" if skipped else ""
    if problems:
        return failed("; ".join(problems) + note)
    return passed(f"gpgcheck on in {where_main} and for all {enabled} enabled repositories{note}")


# --------------------------------------------------------------------------------- security updates


@check(
    "packages.security_updates_applied",
    facts=lambda p: [INSTALLED, APT_SOURCES, APT_INDEXES, APT_CONFIG, DNF_PENDING],
)
def security_updates_applied(p: NoParams, ctx: Context) -> Outcome:
    """No security update is pending according to the host's cached metadata (apt's lists, dnf -C)."""
    tool = _family(ctx)
    if tool == "dpkg":
        return _apt_security_updates(ctx)
    pending_dnf = ctx.get(DNF_PENDING)
    if pending_dnf is None:
        return failed("rpm is installed but dnf is not: pending updates cannot be known")
    if not pending_dnf.repos:
        return failed("dnf has no enabled repository: security updates never reach this host")
    if not pending_dnf.updateinfo:
        return failed(
            "no repository in dnf's cache publishes advisories (updateinfo): pending security updates "
            f"cannot be known (enabled: {', '.join(pending_dnf.repos)})"
        )
    if pending_dnf.advisories:
        listed = ", ".join(f"{a.advisory} {a.severity} {a.package}" for a in pending_dnf.advisories[:10])
        count = len({a.advisory for a in pending_dnf.advisories})
        return failed(f"{count} security advisory(ies) pending: {listed}")
    return passed(f"no security advisory pending in dnf's cache ({', '.join(pending_dnf.repos)})")


def _apt_security_updates(ctx: Context) -> Outcome:
    """Installed packages against the security indexes apt reads (holds and package pins do not hide a
    fix: the package stays exposed until it is upgraded)."""
    sources = ctx.get(APT_SOURCES, redacted_ok=True)
    lists = ctx.get(APT_INDEXES)
    config = _apt_config(ctx, ["APT::Default-Release", "APT::Architectures", "APT::Architecture"])
    if sources is None or lists is None or config is None:
        return failed("dpkg is installed but apt is not: pending updates cannot be known")
    for entry in sources.entries:
        if contains_redaction(" ".join([entry.uri, entry.suite, *entry.components, *entry.options.values()])):
            raise FactUnavailable(f"{entry.ref} was redacted: the indexes apt reads for it cannot be named")
    architectures = config.items("APT::Architectures") or [config.get("APT::Architecture") or ""]
    indexes, missing = security_indexes(
        sources.entries,
        lists.lists,
        lists.releases,
        lists.indexes,
        architectures,
        lists.pins,
        config.get("APT::Default-Release"),
    )
    if not indexes:
        if missing:
            named = ", ".join(f"{e.uri} {e.suite} ({e.ref})" for e in missing)
            return failed(
                f"no security archive among apt's sources has been fetched: {named} named, but its index "
                "is not in apt's lists (apt-get update never ran or failed)"
            )
        return failed("no security archive among apt's sources: security updates never reach this host")
    if all(i.priority < 100 for i in indexes):
        pins = "; ".join(f"{i.index.describe()} at {i.priority} ({i.why})" for i in indexes)
        return failed(f"every security archive is pinned below installed packages: {pins}")
    files = {i.path for i in indexes}
    best: dict[tuple[str, str], InstalledVersion] = {}
    try:
        for offer in lists.offered:
            if offer.index not in files or not newer(offer.version, offer.installed):
                continue
            key = (offer.package, offer.architecture)
            if key not in best or newer(offer.version, best[key].version):
                best[key] = offer
    except BadVersion as exc:
        raise FactUnavailable(f"a version in apt's lists or dpkg's status cannot be compared: {exc}") from exc
    compared = sum(lists.indexes[path].installed for path in files)
    fixes = sorted(best.values(), key=lambda o: o.package)
    if fixes:
        names = ", ".join(f"{o.package} {o.installed} -> {o.version}" for o in fixes[:10])
        more = f" and {len(fixes) - 10} more" if len(fixes) > 10 else ""
        return failed(f"{len(fixes)} security update(s) pending: {names}{more}")
    return passed(
        f"no security update pending: {lists.installed} installed packages compared with "
        f"{len(indexes)} security index(es) apt reads, which hold {compared} of them "
        f"({', '.join(i.index.describe() for i in indexes)})"
    )


# ------------------------------------------------------------------------------------- metadata age


class MetadataParams(Params):
    max_age_days: int = Field(ge=1, description="oldest acceptable package metadata, in days")


@check("packages.metadata_fresh", params=MetadataParams, facts=lambda p: [INSTALLED, INDEXES])
def metadata_fresh(p: MetadataParams, ctx: Context) -> Outcome:
    """The package metadata was refreshed within max_age_days: a host that never refreshes cannot know
    its security updates."""
    tool = _family(ctx)
    wanted = ("apt",) if tool == "dpkg" else ("dnf", "yum")
    files = [f for f in ctx.get(INDEXES) if f.tool in wanted]
    if not files:
        return failed(f"no cached repository metadata ({'/'.join(wanted)}): the host never refreshed it")
    newest = max(files, key=lambda f: f.mtime)
    when = datetime.fromtimestamp(newest.mtime, UTC)
    age = ctx.clock() - when
    days = age.total_seconds() / 86400
    stamp = when.strftime("%Y-%m-%d %H:%M UTC")
    if days > p.max_age_days:
        return failed(
            f"newest package metadata is {days:.1f} days old ({newest.path}, {stamp}); "
            f"at most {p.max_age_days}"
        )
    return passed(f"newest package metadata is {days:.1f} days old ({newest.path}, {stamp})")


# --------------------------------------------------------------------------------- automatic updates


@check(
    "packages.automatic_security_updates",
    facts=lambda p: [INSTALLED, APT_CONFIG, DNF_AUTOMATIC, CRON, PROCESSES, *APT_TIMERS, *DNF_TIMERS],
)
def automatic_security_updates(p: NoParams, ctx: Context) -> Outcome:
    """Security updates are installed automatically: unattended-upgrades (APT::Periodic and a security
    origin) or dnf-automatic applying updates, with their timers enabled."""
    database = ctx.get(INSTALLED)
    if database is None:
        raise FactUnavailable("neither dpkg nor rpm is installed")
    if database.tool == "dpkg":
        return _unattended_upgrades(ctx, database.installed)
    return _dnf_automatic(ctx, database.installed)


def _unattended_upgrades(ctx: Context, installed: dict[str, str]) -> Outcome:
    if "unattended-upgrades" not in installed:
        return failed("unattended-upgrades is not installed")
    config = _apt_config(ctx, _PERIODIC_KEYS)
    if config is None:
        return failed("apt is not installed")
    problems = []
    if config.flag("APT::Periodic::Enable") is False:
        problems.append("APT::Periodic::Enable is 0 (apt's periodic jobs are all off)")
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        value = config.get(key)
        if value is None or (value != "always" and not apt_bool(value)):
            problems.append(f"{key} is {value or 'unset'}")
    patterns = config.items("Unattended-Upgrade::Origins-Pattern") + config.items(
        "Unattended-Upgrade::Allowed-Origins"
    )
    if not any("security" in pattern.lower() for pattern in patterns):
        problems.append("no security origin in Unattended-Upgrade::Origins-Pattern or Allowed-Origins")
    firing, idle, systemd = schedules(ctx, APT_TIMERS, _APT_DAILY)
    if systemd:
        for fact in APT_TIMERS:
            state = ctx.get(fact)
            if state is None or not state.will_start:
                problems.append(f"{fact.arg} is {state.enabled if state else 'missing'}")
    elif not firing:
        problems.append(
            "nothing runs apt's daily job (apt.systemd.daily)" + (f": {'; '.join(idle)}" if idle else "")
        )
    if problems:
        return failed("; ".join(problems))
    note = f"; {'; '.join(firing)}" if firing else ""
    return passed(f"unattended-upgrades installs updates daily from a security origin{note}")


def _dnf_automatic(ctx: Context, installed: dict[str, str]) -> Outcome:
    if "dnf-automatic" not in installed:
        return failed("dnf-automatic is not installed")
    text = ctx.get(DNF_AUTOMATIC)
    sections = _ini_sections(DNF_AUTOMATIC.arg, (text or b"").decode("utf-8", "replace")) or []
    commands = next((s.options for s in sections if s.name == "commands"), {})
    apply = _dnf_bool(commands.get("apply_updates", ("no", 0))[0]) is True
    kind = commands.get("upgrade_type", ("default", 0))[0].strip()
    states = {fact.arg: ctx.get(fact) for fact in DNF_TIMERS}
    installing = states["dnf-automatic-install.timer"]
    plain = states["dnf-automatic.timer"]
    if installing is not None and installing.will_start:
        return passed(f"dnf-automatic-install.timer is enabled (installs {kind} updates)")
    if plain is not None and plain.will_start and apply:
        return passed(
            f"dnf-automatic.timer is enabled and {DNF_AUTOMATIC.arg} sets apply_updates (upgrade_type {kind})"
        )
    if plain is not None and plain.will_start:
        return failed(
            f"dnf-automatic.timer is enabled but {DNF_AUTOMATIC.arg} does not set apply_updates = yes: "
            "updates are only downloaded or reported"
        )
    return failed("neither dnf-automatic-install.timer nor dnf-automatic.timer is enabled")


# ---------------------------------------------------------------------------------- forbidden packages


class ForbiddenParams(Params):
    packages: list[str] = Field(
        min_length=1, description="package names that must not be installed (dpkg or rpm names)"
    )


@check("packages.forbidden_absent", params=ForbiddenParams, facts=lambda p: [INSTALLED])
def forbidden_absent(p: ForbiddenParams, ctx: Context) -> Outcome:
    """None of the forbidden packages (telnet server, rsh, tftp, NIS...) is installed."""
    database = ctx.get(INSTALLED)
    if database is None:
        raise FactUnavailable("neither dpkg nor rpm is installed: installed packages cannot be listed")
    found = [f"{name} {database.installed[name]}" for name in p.packages if name in database.installed]
    leftovers = [name for name in p.packages if name in database.config_only]
    note = f" ({', '.join(leftovers)} removed, only configuration files left)" if leftovers else ""
    if found:
        return failed(f"installed ({database.tool}): {', '.join(found)}{note}")
    return passed(f"none of {len(p.packages)} forbidden packages installed ({database.tool}){note}")
