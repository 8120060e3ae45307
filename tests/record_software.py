"""Record the software area's check captures from real programs, into tests/captures/<file>.yaml.

    python tests/record_software.py [FILE...]            # rewrites recorded cases, then re-evaluates them
    python tests/record_software.py fixtures [KIND...]   # rewrites this area's fact fixtures

Each case runs the facts its check declares through a real probe (the facts' own snippets, framed and
base64'd like a scan) inside a scene of tests/software_env.py: a private mount namespace where chosen files
are shown over the real ones, a PID namespace with chosen process names, or a network namespace with chosen
listeners. apt, dpkg-query, dnf, rpm, ss, postconf, systemctl, openssl, stat, df are the machine's own
(Debian 12). Cases no program here can produce (an AppArmor or SELinux kernel, dm-crypt devices, RHEL's
grub.cfg) are written by hand in WRITTEN below, from the named documentation, and marked so in the file.
"""

from __future__ import annotations

import calendar
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from fact_fixtures import dump_capture  # noqa: E402
from software_env import (  # noqa: E402
    DEBIAN_MAIN,
    DEBIAN_SECURITY,
    WORK,
    Advisory,
    Scene,
    Where,
    _run,
    aide_files,
    candidate,
    clam_databases,
    collect,
    dnf_scene,
    dpkg_status,
    journal_scene,
    netns,
    plain_lists,
    status_scene,
)
from test_checks import run_case  # noqa: E402

from hds_compliance.check import registry  # noqa: E402
from hds_compliance.collect.probe import follow_ups, render  # noqa: E402
from hds_compliance.facts import Fact  # noqa: E402

NOW = "2026-12-02T03:00:00Z"
REGISTRY = registry()


# ----------------------------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One recorded case: a check, its parameters, where its facts are collected, and what it must say."""

    file: str
    check: str
    name: str
    where: Callable[[], Where] | Where
    expect: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    now: str | None = NOW
    netns: list[tuple[str, str, int, str | None, str]] | None = None
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # captures no program here produces
    host: dict[str, Any] = field(default_factory=dict)  # inventory data of the case


def facts_of(case: Case) -> list[Fact[Any]]:
    spec = REGISTRY[case.check]
    return list(spec.facts(spec.validate(case.params)))


# linux-libc-dev's candidate comes from the security archive (kernel fixes do); distro-info-data's not.
FIX = (candidate("linux-libc-dev") or ("(unknown)", False))[0]
DATA = (candidate("distro-info-data") or ("(unknown)", False))[0]
CURRENT = [("linux-libc-dev", FIX, "installed"), ("distro-info-data", DATA, "installed")]
BEHIND = [("linux-libc-dev", "6.1.0-1", "installed"), ("distro-info-data", "0.58", "installed")]
HELD = [("linux-libc-dev", "6.1.0-1", "hold"), ("distro-info-data", DATA, "installed")]
DEB_BASE = [
    ("apt", "2.6.1", "installed"),
    ("openssh-server", "1:9.2p1-2+deb12u7", "installed"),
    ("unattended-upgrades", "2.9.1+nmu3", "installed"),
]
NO_SECURITY_SOURCES = DEBIAN_MAIN
TRUSTED_SOURCES = DEBIAN_MAIN + "\n" + DEBIAN_SECURITY.format(option="Trusted: yes")
MIRROR = "Types: deb\nURIs: http://mirror.example.org/debian\nSuites: bookworm\nComponents: main\n{extra}"
HARMLESS_TRUST = {
    # apt ignores all three: a comment, a stanza with Enabled: no, a file name it does not read.
    "/etc/apt/sources.list.d/old.list": "# deb [trusted=yes] http://mirror.example.org/debian stable main\n",
    "/etc/apt/sources.list.d/mirror.sources": "# A mirror kept for emergencies.\n"
    + MIRROR.format(extra="Trusted: yes\nEnabled: no\n"),
    "/etc/apt/sources.list.d/vendor.list.disabled": "deb [trusted=yes] http://vendor.example stable main\n",
}
# Spelled in ways apt does not read: its option names are lower-case, and apt 2.6 maps no deb822 field to
# allow-insecure (tests/test_apt_semantics.py holds this to apt's own TRUSTED and ALLOW_INSECURE).
NOT_APT_OPTIONS = {
    "/etc/apt/sources.list.d/vendor.list": "deb [Trusted=yes] http://vendor.example/debian stable main\n",
    "/etc/apt/sources.list.d/mirror.sources": MIRROR.format(extra="Allow-Insecure: yes\n"),
}
NEVER_FETCHED = "deb http://security.example.org/debian-security bookworm-security main\n"
PINNED_DOWN = "Package: *\nPin: release l=Debian-Security\nPin-Priority: 50\n"
PLAIN_LISTS = WORK / "plain-lists"


def _uncompressed(name: str, status: str) -> Where:
    """A dpkg status scene reading this machine's lists kept uncompressed (as Ubuntu keeps them)."""
    return Where(status_scene(name, status, None, **{"/var/lib/apt/lists": plain_lists(PLAIN_LISTS)}))


def _rpm_host(name: str, **kwargs: Any) -> Scene:
    scene = dnf_scene(WORK / name, **kwargs)
    scene.tmpfs.append("/var/lib/dpkg")  # no dpkg database: the host is read as an rpm host
    return scene


def _dnf_conf(main: str, repo: str) -> Callable[[], Where]:
    def build() -> Where:
        scene = _rpm_host(
            "dnf-gpg", installed=[("hds-demo", "1.1")], available=[("hds-demo", "1.1")], cached=False
        )
        scene.etc = {"/etc/dnf/dnf.conf": main, "/etc/yum.repos.d/hdstest.repo": repo}
        return Where(scene=scene)

    return build


DATA_ROLES = ["database", "storage", "app", "backup"]
# Captures of the processes fact come from a PID namespace holding these names only (plus sh, the probe).
DEBIAN_PROCS = ("cron", "sshd", "rsyslogd", "clamd", "freshclam", "zabbix_agentd")

CASES: list[Case] = [
    # ---------------------------------------------------------------------------------------- packages
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "Debian 12 stock sources (deb822, Signed-By)",
        lambda: Where(status_scene("apt-stock", dpkg_status(*DEB_BASE))),
        "pass",
        "none accepts unsigned packages",
    ),
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "a deb822 stanza with Trusted: yes",
        lambda: Where(
            status_scene(
                "apt-trusted",
                dpkg_status(*DEB_BASE),
                {"/etc/apt/sources.list.d/debian.sources": TRUSTED_SOURCES},
            )
        ),
        "fail",
        "debian.sources stanza 2 (http://deb.debian.org/debian-security/ bookworm-security): trusted",
    ),
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "trusted=yes only where apt does not read it (comment, Enabled: no, .disabled file)",
        lambda: Where(status_scene("apt-harmless", dpkg_status(*DEB_BASE), dict(HARMLESS_TRUST))),
        "pass",
        "2 source entries read by apt",
    ),
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "[Trusted=yes] and deb822 Allow-Insecure are not apt's spellings: apt checks signatures",
        lambda: Where(status_scene("apt-notopts", dpkg_status(*DEB_BASE), dict(NOT_APT_OPTIONS))),
        "pass",
        "4 source entries read by apt, none accepts unsigned packages",
    ),
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "AllowUnauthenticated set in apt.conf.d (a later file overrides an earlier false)",
        lambda: Where(
            status_scene(
                "apt-unauth",
                dpkg_status(*DEB_BASE),
                {
                    "/etc/apt/apt.conf.d/10hds": 'APT::Get::AllowUnauthenticated "false";\n',
                    "/etc/apt/apt.conf.d/99local": 'APT::Get::AllowUnauthenticated "true";\n',
                },
            )
        ),
        "fail",
        "APT::Get::AllowUnauthenticated true",
    ),
    Case(
        "packages.yaml",
        "packages.apt_sources_authenticated",
        "an rpm host",
        lambda: Where(
            _rpm_host(
                "apt-na", installed=[("hds-demo", "1.0")], available=[("hds-demo", "1.0")], cached=False
            )
        ),
        "not_applicable",
        "dnf/rpm",
    ),
    Case(
        "packages.yaml",
        "packages.dnf_gpgcheck_enforced",
        "gpgcheck=1 in [main] and in the repository",
        _dnf_conf(
            "[main]\ngpgcheck=1\ninstallonly_limit=3\n",
            "[hdstest]\nname=t\nbaseurl=file:///srv/repo\ngpgcheck=1\n",
        ),
        "pass",
        "gpgcheck on in /etc/dnf/dnf.conf line 2 and for all 1 enabled repositories",
    ),
    Case(
        "packages.yaml",
        "packages.dnf_gpgcheck_enforced",
        "a repository with gpgcheck=0",
        _dnf_conf("[main]\ngpgcheck=1\n", "[hdstest]\nname=t\nbaseurl=file:///srv/repo\ngpgcheck=0\n"),
        "fail",
        "repository hdstest sets gpgcheck=0",
    ),
    Case(
        "packages.yaml",
        "packages.dnf_gpgcheck_enforced",
        "gpgcheck=1 indented under baseurl is a continuation, [main] leaves it off",
        _dnf_conf("[main]\nbest=True\n", "[hdstest]\nname=t\nbaseurl=file:///srv/repo\n  gpgcheck=1\n"),
        "fail",
        "repository hdstest (/etc/yum.repos.d/hdstest.repo) inherits gpgcheck off",
    ),
    Case(
        "packages.yaml",
        "packages.dnf_gpgcheck_enforced",
        "a Debian host",
        lambda: Where(status_scene("dnf-na", dpkg_status(*DEB_BASE))),
        "not_applicable",
        "apt/dpkg",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "installed versions are the candidates",
        lambda: Where(status_scene("apt-current", dpkg_status(*CURRENT))),
        "pass",
        "no security update pending",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "linux-libc-dev behind a Debian-Security update",
        lambda: Where(status_scene("apt-behind", dpkg_status(*BEHIND))),
        "fail",
        f"linux-libc-dev 6.1.0-1 -> {FIX}",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "a held package with a security update is still pending",
        lambda: Where(status_scene("apt-held", dpkg_status(*HELD))),
        "fail",
        "1 security update(s) pending: linux-libc-dev",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "no security archive among the sources: nothing pending, nothing known",
        lambda: Where(
            status_scene(
                "apt-nosec",
                dpkg_status(*BEHIND),
                {"/etc/apt/sources.list.d/debian.sources": NO_SECURITY_SOURCES},
            )
        ),
        "fail",
        "no security archive among apt's sources",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "a security archive named in the sources but never fetched",
        lambda: Where(
            status_scene(
                "apt-never",
                dpkg_status(*BEHIND),
                {
                    "/etc/apt/sources.list.d/debian.sources": NO_SECURITY_SOURCES,
                    "/etc/apt/sources.list": NEVER_FETCHED,
                },
            )
        ),
        "fail",
        "http://security.example.org/debian-security/ bookworm-security (/etc/apt/sources.list:1) named, "
        "but its index is not in apt's lists",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "the security archive pinned at 50 (below installed packages)",
        lambda: Where(
            status_scene("apt-pinned", dpkg_status(*BEHIND), {"/etc/apt/preferences.d/security": PINNED_DOWN})
        ),
        "fail",
        "every security archive is pinned below installed packages: http://deb.debian.org/debian-security "
        "bookworm-security/main amd64 at 50 (/etc/apt/preferences.d/security record 1)",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "uncompressed lists (as Ubuntu keeps them), installed versions are the candidates",
        lambda: _uncompressed("apt-plain-current", dpkg_status(*CURRENT)),
        "pass",
        "no security update pending",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "uncompressed lists (as Ubuntu keeps them), linux-libc-dev behind",
        lambda: _uncompressed("apt-plain-behind", dpkg_status(*BEHIND)),
        "fail",
        f"linux-libc-dev 6.1.0-1 -> {FIX}",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "dnf: an advisory for an installed package",
        lambda: Where(
            _rpm_host(
                "dnf-adv",
                installed=[("hds-demo", "1.0"), ("hds-other", "2.0")],
                available=[("hds-demo", "1.1"), ("hds-other", "2.0")],
                advisories=[Advisory("HDS-2026:0001", "hds-demo", "1.1")],
            )
        ),
        "fail",
        "HDS-2026:0001 Important/Sec. hds-demo-1.1-1.noarch",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "dnf: the advised version is installed",
        lambda: Where(
            _rpm_host(
                "dnf-ok",
                installed=[("hds-demo", "1.1")],
                available=[("hds-demo", "1.1")],
                advisories=[Advisory("HDS-2026:0001", "hds-demo", "1.1")],
            )
        ),
        "pass",
        "no security advisory pending",
    ),
    Case(
        "packages.yaml",
        "packages.security_updates_applied",
        "dnf: repositories without updateinfo cannot tell",
        lambda: Where(
            _rpm_host("dnf-noinfo", installed=[("hds-demo", "1.0")], available=[("hds-demo", "1.1")])
        ),
        "fail",
        "publishes advisories (updateinfo)",
    ),
    Case(
        "packages.yaml",
        "packages.metadata_fresh",
        "apt lists refreshed 1 hour before the scan",
        lambda: Where(status_scene("meta-fresh", dpkg_status(*DEB_BASE))),
        "pass",
        "days old",
        params={"max_age_days": 7},
    ),
    Case(
        "packages.yaml",
        "packages.metadata_fresh",
        "the same lists judged 45 days later",
        lambda: Where(status_scene("meta-old", dpkg_status(*DEB_BASE))),
        "fail",
        "at most 7",
        params={"max_age_days": 7},
        now="2027-01-16T03:00:00Z",
    ),
    Case(
        "packages.yaml",
        "packages.automatic_security_updates",
        "unattended-upgrades, APT::Periodic on, cron runs apt-compat (no systemd here)",
        lambda: Where(status_scene("auto-ok", dpkg_status(*DEB_BASE)), processes=DEBIAN_PROCS),
        "pass",
        "/etc/cron.daily/apt-compat",
    ),
    Case(
        "packages.yaml",
        "packages.automatic_security_updates",
        "APT::Periodic::Enable 0 switches every periodic job off",
        lambda: Where(
            status_scene(
                "auto-off",
                dpkg_status(*DEB_BASE),
                {"/etc/apt/apt.conf.d/99hds": 'APT::Periodic::Enable "0";\n'},
            ),
            processes=DEBIAN_PROCS,
        ),
        "fail",
        "APT::Periodic::Enable is 0",
    ),
    Case(
        "packages.yaml",
        "packages.automatic_security_updates",
        "no cron daemon and no systemd: nothing runs apt's daily job",
        lambda: Where(status_scene("auto-nocron", dpkg_status(*DEB_BASE)), processes=("sshd",)),
        "fail",
        "no cron daemon runs",
    ),
    Case(
        "packages.yaml",
        "packages.forbidden_absent",
        "telnetd removed, only its configuration files left (dpkg state rc)",
        lambda: Where(
            status_scene(
                "forbid-rc", dpkg_status(*DEB_BASE, ("telnetd", "0.17+2.4-2+deb12u1", "config-files"))
            )
        ),
        "pass",
        "telnetd removed, only configuration files left",
        params={"packages": ["telnetd", "rsh-server", "nis"]},
    ),
    Case(
        "packages.yaml",
        "packages.forbidden_absent",
        "telnetd installed",
        lambda: Where(
            status_scene("forbid-ii", dpkg_status(*DEB_BASE, ("telnetd", "0.17+2.4-2+deb12u1", "installed")))
        ),
        "fail",
        "telnetd 0.17+2.4-2+deb12u1",
        params={"packages": ["telnetd", "rsh-server", "nis"]},
    ),
]


# ------------------------------------------------------------------------------- services, mail, MAC...

SSHD, PG = ("tcp", "0.0.0.0", 22, None, "sshd"), ("tcp", "127.0.0.1", 5432, None, "postgres")
RESOLVER = ("udp", "0.0.0.0", 53, "lo", "dnsmasq")  # bound to lo with SO_BINDTODEVICE: local only
MAIN_CF = Path("/etc/postfix/main.cf").read_text() if Path("/etc/postfix/main.cf").exists() else ""


def _main_cf(value: str) -> str:
    return MAIN_CF.replace("inet_interfaces = all", f"inet_interfaces = {value}")


def _postfix(main: str, master_extra: str = "") -> Callable[[], Where]:
    def build() -> Where:
        etc: dict[str, str | bytes] = {"/etc/postfix/main.cf": main}
        if master_extra:
            etc["/etc/postfix/master.cf"] = Path("/etc/postfix/master.cf").read_text() + master_extra
        return Where(Scene(root=WORK / "postfix" / str(abs(hash((main, master_extra)))), etc=etc))

    return build


def _plain() -> Where:
    return Where(Scene(root=WORK / "plain"))


def _capture(stdout: str, exit_code: int = 0) -> dict[str, Any]:
    return {"exit_code": exit_code, "stdout": stdout}


# Written from aa-status(8) and apparmor(7): /sys/kernel/security/apparmor/profiles lists "name (mode)".
APPARMOR_ENFORCING = _capture(
    "enabled Y\n# profiles\n/usr/sbin/chronyd (enforce)\n/usr/bin/man (enforce)\nman_filter (enforce)\n"
    "man_groff (enforce)\nlsb_release (enforce)\nnvidia_modprobe (enforce)\nnvidia_modprobe//kmod (enforce)\n"
    "/usr/sbin/tcpdump (enforce)\n"
)
APPARMOR_COMPLAIN = _capture(
    "enabled Y\n# profiles\n/usr/sbin/chronyd (enforce)\n/usr/sbin/named (complain)\n/usr/bin/man (enforce)\n"
)
# Written from sestatus(8) as RHEL 9 prints it.
SESTATUS = (
    "SELinux status:                 enabled\nSELinuxfs mount:                /sys/fs/selinux\n"
    "SELinux root directory:         /etc/selinux\nLoaded policy name:             targeted\n"
    "Current mode:                   {mode}\nMode from config file:          {config}\n"
    "Policy MLS status:              enabled\nPolicy deny_unknown status:     allowed\n"
    "Memory protection checking:     actual (secure)\nMax kernel policy version:      33\n"
)
SELINUX_ENFORCING = _capture(
    "enforce 1\n# sestatus\n" + SESTATUS.format(mode="enforcing", config="enforcing")
)
SELINUX_PERMISSIVE = _capture(
    "enforce 0\n# sestatus\n" + SESTATUS.format(mode="permissive", config="permissive")
)
SELINUX_CONFIG = "SELINUX={mode}\nSELINUXTYPE=targeted\n"
RHEL_GRUB_DEFAULT = (
    "GRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=\"$(sed 's, release .*$,,g' "
    '/etc/system-release)"\nGRUB_DEFAULT=saved\n'
    'GRUB_DISABLE_SUBMENU=true\nGRUB_TERMINAL_OUTPUT="console"\n'
    'GRUB_CMDLINE_LINUX="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap '
    'rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap{extra}"\nGRUB_DISABLE_RECOVERY="true"\nGRUB_ENABLE_BLSCFG=true\n'
)


def _rpm_mac(config_mode: str, grub_extra: str = "") -> Callable[[], Where]:
    def build() -> Where:
        scene = _rpm_host(
            "mac-rpm", installed=[("hds-demo", "1.0")], available=[("hds-demo", "1.0")], cached=False
        )
        scene.etc = {
            "/etc/selinux/config": SELINUX_CONFIG.format(mode=config_mode),
            "/etc/default/grub": RHEL_GRUB_DEFAULT.format(extra=grub_extra),
        }
        return Where(scene=scene)

    return build


def _deb_mac(grub: str | None = None) -> Callable[[], Where]:
    def build() -> Where:
        etc = {"/etc/default/grub": grub} if grub is not None else {}
        return Where(status_scene("mac-deb", dpkg_status(*DEB_BASE), dict(etc)))

    return build


DEBIAN_GRUB = (
    "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n"
    'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="{extra}"\n'
)

# ------------------------------------------------------------------------------------------------ AIDE

AIDE_DIR = WORK / "aide"


def _aide_run(interrupted: bool = False) -> Path:
    _database, report, cut = aide_files(AIDE_DIR)
    return cut.parent if interrupted else report.parent


def _aide(
    db: bool = True, report: str = "full", cron_mode: int = 0o755, processes: tuple[str, ...] = DEBIAN_PROCS
) -> Callable[[], Where]:
    def build() -> Where:
        logs = _aide_run(interrupted=report == "cut")
        empty = AIDE_DIR / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        binds = {
            "/var/lib/aide": (AIDE_DIR / "lib") if db else empty,
            "/var/log/aide": logs if report else empty,
        }
        etc: dict[str, str | bytes] = {}
        modes: dict[str, int] = {}
        if cron_mode != 0o755:
            etc["/etc/cron.daily/aide"] = Path("/etc/cron.daily/aide").read_text()
            modes["/etc/cron.daily/aide"] = cron_mode
        scene = Scene(
            root=WORK / f"aide-scene-{db}-{report}-{cron_mode:o}", etc=etc, modes=modes, binds=binds
        )
        return Where(scene, processes=processes)

    return build


RHEL_AIDE_CONF = (
    "@@define DBDIR /var/lib/aide\n@@define LOGDIR /var/log/aide\n"
    "database_in=file:@@{DBDIR}/aide.db.gz\ndatabase_out=file:@@{DBDIR}/aide.db.new.gz\n"
    "gzip_dbout=yes\nreport_url=file:@@{LOGDIR}/aide-rhel.log\nreport_url=stdout\n"
)


def _aide_custom() -> Where:
    """RHEL's way of naming AIDE's files (written from RHEL 9's /etc/aide.conf), on Debian's aide."""
    where = _aide()()
    assert where.scene is not None
    where.scene.etc = {"/etc/aide/aide.conf": RHEL_AIDE_CONF}
    return where


def _booted(unit: str, enabled: str) -> dict[str, Any]:
    """svc-unit written from systemctl(1) as a booted systemd answers (no systemd runs here)."""
    active = "active" if enabled == "enabled" else "inactive"
    return _capture(f"{unit}\tbooted\t{enabled}\t{active}\n")


# ---------------------------------------------------------------------------------------------- ClamAV

CLAM_DIR = WORK / "clamav"


def _clam(built: tuple[int, int, int, int]) -> Callable[[], Where]:
    """daily.cld and main.cvd whose headers date the signatures ``built`` (see clam_databases)."""

    def build() -> Where:
        folder = clam_databases(CLAM_DIR / "-".join(map(str, built)), calendar.timegm((*built, 0, 0)))
        return Where(Scene(root=folder.parent / (folder.name + "-scene"), binds={"/var/lib/clamav": folder}))

    return build


# ------------------------------------------------------------------------------------------- capacity


class _ScriptWhere(Where):
    """A host state entered through a ready-made enter script."""

    def __init__(self, script: Path) -> None:
        super().__init__()
        self.script = script

    def prefix(self) -> list[str]:
        return ["unshare", "-m", str(self.script)]


def _full_log() -> Where:
    """A 1 MiB tmpfs on /var/log, filled: df reports it 100% used."""
    root = WORK / "full-log"
    script = Scene(root=root).enter_script()
    fill = (
        "mount -t tmpfs -o size=1m hds-test /var/log; "
        "head -c 2000000 /dev/zero > /var/log/fill 2>/dev/null || true; "
    )
    script.write_text(script.read_text().replace('exec "$@"', fill + 'exec "$@"'))
    return _ScriptWhere(script)


# --------------------------------------------------------------------------------------------- storage

# Written from the kernel's sysfs layout and cryptsetup(8): a LUKS2 device (uuid CRYPT-LUKS2-<uuid>-<name>)
# under an LVM volume holding /srv, vda3 the partition under it.
LUKS_MOUNTINFO = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda2 rw\n"
    "23 22 253:1 / /srv rw,nodev,relatime shared:2 - ext4 /dev/mapper/data-srv rw\n"
    "24 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:3 - proc proc rw\n"
)
LUKS_SYS = (
    "/sys/class/block/dm-0/dev:253:0\n/sys/class/block/dm-0/dm/name:luks-data\n"
    "/sys/class/block/dm-0/dm/uuid:CRYPT-LUKS2-4b1e6c0b2b8a4f0e9d6a8a3c5e7f9a11-luks-data\n"
    "/sys/class/block/dm-1/dev:253:1\n/sys/class/block/dm-1/dm/name:data-srv\n"
    "/sys/class/block/dm-1/dm/uuid:LVM-Qx3kJ1vRw0e3Vj2vAqZ8xN6gL1mT4cH8e9F0aB7cD6eF5gH4iJ3kL2mN1oP0qR9s\n"
    "/sys/class/block/vda/dev:254:0\n/sys/class/block/vda2/dev:254:1\n/sys/class/block/vda3/dev:254:2\n"
)
LUKS_SLAVES = "/sys/class/block/dm-0/slaves/vda3\n/sys/class/block/dm-1/slaves/dm-0\n"


def _framed(**parts: str) -> str:
    """Output of a framed snippet (see hds_compliance/facts/framed.py), for written captures."""
    marker = "5d41402abc4b2a76"
    return f"# frames {marker}\n" + "".join(f"@{marker} {k}\n{v}\n" for k, v in parts.items())


# ---------------------------------------------------------------------------------------------- crypto

OPENSSL_CNF = Path("/etc/ssl/openssl.cnf").read_text()
SECLEVEL0 = OPENSSL_CNF.replace(
    "[openssl_init]\n",
    "[openssl_init]\nssl_conf = ssl_sect\n\n[ssl_sect]\nsystem_default = system_default_sect\n\n"
    "[system_default_sect]\nCipherString = DEFAULT@SECLEVEL=0\n",
    1,
)
UNREFERENCED = (
    OPENSSL_CNF + "\n[system_default_sect]\nMinProtocol = TLSv1\nCipherString = DEFAULT@SECLEVEL=0\n"
)
MIN13 = OPENSSL_CNF.replace(
    "[openssl_init]\n",
    "[openssl_init]\nssl_conf = ssl_sect\n\n[ssl_sect]\nsystem_default = system_default_sect\n\n"
    "[system_default_sect]\nMinProtocol = TLSv1.3\n",
    1,
)


def _etc(
    name: str, files: dict[str, str | bytes], modes: dict[str, int] | None = None
) -> Callable[[], Where]:
    return lambda: Where(Scene(root=WORK / name, etc=files, modes=modes or {}))


# ------------------------------------------------------------------------------------------------ GRUB

GRUB_HASH = "grub.pbkdf2.sha512.10000." + "A1" * 32 + "." + "B2" * 32  # the probe masks any hash anyway
DEBIAN_GRUB_CFG = (
    '### BEGIN /etc/grub.d/00_header ###\nset default="0"\n### END /etc/grub.d/00_header ###\n'
    "### BEGIN /etc/grub.d/10_linux ###\nmenuentry 'Debian GNU/Linux' --class debian {\n"
    "\tlinux /vmlinuz root=/dev/vda1 ro quiet\n}\n### END /etc/grub.d/10_linux ###\n"
)
DEBIAN_PASSWORD = f'set superusers="admin"\npassword_pbkdf2 admin {GRUB_HASH}\n'
CUSTOM_40 = "#!/bin/sh\nexec tail -n +3 $0\n" + DEBIAN_PASSWORD
# From RHEL 9's /etc/grub.d/01_users (grub2-tools): the password is only set when user.cfg defines it.
RHEL_USERS = (
    "### BEGIN /etc/grub.d/01_users ###\nif [ -f ${prefix}/user.cfg ]; then\n  source ${prefix}/user.cfg\n"
    '  if [ -n "${GRUB2_PASSWORD}" ]; then\n    set superusers="root"\n    export superusers\n'
    "    password_pbkdf2 root ${GRUB2_PASSWORD}\n  fi\nfi\n### END /etc/grub.d/01_users ###\n"
)


def _grub(files: dict[str, tuple[str, int]], generators: dict[str, str] | None = None) -> Callable[[], Where]:
    def build() -> Where:
        boot = WORK / "boot" / str(abs(hash(tuple(sorted(files)))) + len(generators or {}))
        subprocess.run(["rm", "-rf", str(boot)], check=False)
        for rel, (content, mode) in files.items():
            path = boot / rel.removeprefix("/boot/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            path.chmod(mode)
        boot.mkdir(parents=True, exist_ok=True)
        etc = {f"/etc/grub.d/{n}": c for n, c in (generators or {}).items()}
        return Where(Scene(root=boot.parent / (boot.name + "-scene"), etc=dict(etc), binds={"/boot": boot}))

    return build


def more_cases() -> list[Case]:
    """Cases of the services, MAC, integrity, agents, storage, crypto and boot checks."""
    allowed = {"allowed": ["tcp/22", "chronyd"]}
    forbidden = {
        "ports": ["tcp/21", "tcp/23", "udp/69", "tcp/512", "tcp/513", "tcp/514"],
        "processes": ["in.telnetd", "vsftpd"],
    }
    aide_now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5 * 86400))
    return [
        # services
        Case(
            "services.yaml",
            "services.listening_only_allowed",
            "sshd on 0.0.0.0:22, postgres on loopback, a resolver bound to lo",
            _plain,
            "pass",
            "1 exposed socket(s), all allowed",
            params=allowed,
            netns=[SSHD, PG, RESOLVER],
        ),
        Case(
            "services.yaml",
            "services.listening_only_allowed",
            "a web server on [::] (dual stack, ss shows *) and snmpd on udp 0.0.0.0",
            _plain,
            "fail",
            "tcp *:8080 (python3)",
            params=allowed,
            netns=[SSHD, PG, ("tcp", "::", 8080, None, "python3"), ("udp", "0.0.0.0", 161, None, "snmpd")],
        ),
        Case(
            "services.yaml",
            "services.listening_only_allowed",
            "postgres on the host's own address 192.0.2.10 is exposed",
            _plain,
            "fail",
            "tcp 192.0.2.10:5432 (postgres)",
            params=allowed,
            netns=[SSHD, ("tcp", "192.0.2.10", 5432, None, "postgres")],
        ),
        Case(
            "services.yaml",
            "services.forbidden_not_listening",
            "only sshd and postgres",
            _plain,
            "pass",
            "none of 6 forbidden ports",
            params=forbidden,
            netns=[SSHD, PG],
        ),
        Case(
            "services.yaml",
            "services.forbidden_not_listening",
            "a telnet server on loopback is still forbidden",
            _plain,
            "fail",
            "tcp 127.0.0.1:23 (in.telnetd)",
            params=forbidden,
            netns=[SSHD, ("tcp", "127.0.0.1", 23, None, "in.telnetd")],
        ),
        Case(
            "services.yaml",
            "mail.local_only",
            "postfix on 127.0.0.1:25 and [::1]:25, inet_interfaces = loopback-only",
            _postfix(_main_cf("loopback-only")),
            "pass",
            "2 mail socket(s), all on loopback",
            netns=[("tcp", "127.0.0.1", 25, None, "master"), ("tcp", "::1", 25, None, "master")],
        ),
        Case(
            "services.yaml",
            "mail.local_only",
            "main.cf already says loopback-only but postfix still listens on 0.0.0.0",
            _postfix(_main_cf("loopback-only")),
            "fail",
            "listening now: tcp 0.0.0.0:25 (master)",
            netns=[("tcp", "0.0.0.0", 25, None, "master")],
        ),
        Case(
            "services.yaml",
            "mail.local_only",
            "listening on loopback now, Debian's inet_interfaces = all at the next restart",
            _postfix(MAIN_CF),
            "fail",
            "follows inet_interfaces = all",
            netns=[("tcp", "127.0.0.1", 25, None, "master")],
        ),
        Case(
            "services.yaml",
            "mail.local_only",
            "inet_interfaces = loopback-only but a master.cf service on 0.0.0.0:2525",
            _postfix(_main_cf("loopback-only"), "0.0.0.0:2525 inet n - y - - smtpd\n"),
            "fail",
            "master.cf service 0.0.0.0:2525 listens on 0.0.0.0",
            netns=[("tcp", "127.0.0.1", 25, None, "master")],
        ),
        # MAC
        Case(
            "mac.yaml",
            "mac.apparmor_enforcing",
            "this VM's kernel has no AppArmor module",
            _deb_mac(),
            "fail",
            "the kernel has no AppArmor module",
        ),
        Case(
            "mac.yaml",
            "mac.apparmor_enforcing",
            "AppArmor enabled, every profile enforcing (status written from aa-status(8))",
            _deb_mac(),
            "pass",
            "8 profile(s) enforcing",
            written={"mac-apparmor": APPARMOR_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.apparmor_enforcing",
            "one profile in complain mode (status written from aa-status(8))",
            _deb_mac(),
            "fail",
            "1 profile(s) in complain mode: /usr/sbin/named",
            written={"mac-apparmor": APPARMOR_COMPLAIN},
        ),
        Case(
            "mac.yaml",
            "mac.apparmor_enforcing",
            "enforcing now, apparmor=0 in /etc/default/grub for the next boot (status written)",
            _deb_mac(DEBIAN_GRUB.format(extra="apparmor=0")),
            "fail",
            "next boot: apparmor=0 in /etc/default/grub",
            written={"mac-apparmor": APPARMOR_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.apparmor_enforcing",
            "an rpm host running SELinux (sestatus written from sestatus(8))",
            _rpm_mac("enforcing"),
            "not_applicable",
            "SELinux is",
            written={"mac-selinux": SELINUX_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.selinux_enforcing",
            "enforcing targeted now and in /etc/selinux/config (sestatus written)",
            _rpm_mac("enforcing"),
            "pass",
            "SELinux enforcing now and in /etc/selinux/config, policy targeted",
            written={"mac-selinux": SELINUX_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.selinux_enforcing",
            "enforcing now, SELINUX=permissive in the config (sestatus written)",
            _rpm_mac("permissive"),
            "fail",
            "next boot: SELINUX=permissive in /etc/selinux/config line 1",
            written={"mac-selinux": SELINUX_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.selinux_enforcing",
            "enforcing now and in the config, selinux=0 on the kernel line (sestatus written)",
            _rpm_mac("enforcing", " selinux=0"),
            "fail",
            "next boot: selinux=0 in /etc/default/grub",
            written={"mac-selinux": SELINUX_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.selinux_enforcing",
            "permissive now (sestatus written)",
            _rpm_mac("enforcing"),
            "fail",
            "SELinux is permissive now",
            written={"mac-selinux": SELINUX_PERMISSIVE},
        ),
        Case(
            "mac.yaml",
            "mac.selinux_enforcing",
            "a Debian host without SELinux",
            _deb_mac(),
            "not_applicable",
            "AppArmor is",
        ),
        Case(
            "mac.yaml",
            "mac.enforcing",
            "SELinux enforcing on an rpm host (sestatus written)",
            _rpm_mac("enforcing"),
            "pass",
            "SELinux:",
            written={"mac-selinux": SELINUX_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.enforcing",
            "AppArmor enforcing on a Debian host (status written)",
            _deb_mac(),
            "pass",
            "AppArmor:",
            written={"mac-apparmor": APPARMOR_ENFORCING},
        ),
        Case(
            "mac.yaml",
            "mac.enforcing",
            "this VM: no AppArmor module, SELinux disabled",
            _deb_mac(),
            "fail",
            "SELinux is disabled in the running kernel",
        ),
        # integrity
        Case(
            "integrity.yaml",
            "integrity.aide_check_scheduled",
            "cron runs /etc/cron.daily/aide, no systemd here",
            _aide(),
            "pass",
            "/etc/cron.daily/aide",
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_check_scheduled",
            "the cron.daily script without its execute bit: run-parts skips it",
            _aide(cron_mode=0o644),
            "fail",
            "nothing schedules an AIDE check",
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_check_scheduled",
            "no cron daemon runs",
            _aide(processes=("sshd",)),
            "fail",
            "no cron daemon runs",
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_check_scheduled",
            "systemd runs and dailyaidecheck.timer is disabled: Debian's cron.daily/aide exits at once "
            "(unit states written)",
            _aide(),
            "fail",
            "dailyaidecheck.timer is disabled",
            written={
                "svc-unit:dailyaidecheck.timer": _booted("dailyaidecheck.timer", "disabled"),
                "svc-unit:aidecheck.timer": _capture(
                    "aidecheck.timer\tbooted\tFailed to get unit file state for aidecheck.timer: No such "
                    "file or directory\tinactive\n"
                ),
            },
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_check_scheduled",
            "systemd runs dailyaidecheck.timer (unit states written)",
            _aide(),
            "pass",
            "dailyaidecheck.timer (enabled, active)",
            written={
                "svc-unit:dailyaidecheck.timer": _booted("dailyaidecheck.timer", "enabled"),
                "svc-unit:aidecheck.timer": _capture(
                    "aidecheck.timer\tbooted\tFailed to get unit file state for aidecheck.timer: No such "
                    "file or directory\tinactive\n"
                ),
            },
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_database_present",
            "the database aide.conf names exists",
            _aide(),
            "pass",
            "/var/lib/aide/aide.db exists",
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_database_present",
            "aideinit never ran",
            _aide(db=False),
            "fail",
            "/var/lib/aide/aide.db (database_in of /etc/aide/aide.conf) does not exist",
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_report_recent",
            "a check finished an hour before the scan",
            _aide(),
            "pass",
            "AIDE found differences between database and filesystem",
            params={"max_age_hours": 26},
            now=aide_now,
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_report_recent",
            "the same report five days later",
            _aide(),
            "fail",
            "at most 26 h",
            params={"max_age_hours": 26},
            now=later,
        ),
        Case(
            "integrity.yaml",
            "integrity.aide_report_recent",
            "a report written just now by a run that never finished",
            _aide(report="cut"),
            "fail",
            "no completed AIDE run",
            params={"max_age_hours": 26},
            now=aide_now,
        ),
        Case(
            "integrity.yaml",
            "malware.agent_running",
            "clamd and freshclam run",
            lambda: Where(processes=DEBIAN_PROCS),
            "pass",
            "clamd, freshclam",
            params={"agents": ["clamd", "freshclam", "falcon-sensor", "wdavdaemon"]},
        ),
        Case(
            "integrity.yaml",
            "malware.agent_running",
            "no anti-malware agent",
            lambda: Where(processes=("cron", "sshd")),
            "fail",
            "none of clamd",
            params={"agents": ["clamd", "freshclam", "falcon-sensor", "wdavdaemon"]},
        ),
        Case(
            "integrity.yaml",
            "monitoring.agent_running",
            "zabbix_agentd runs",
            lambda: Where(processes=DEBIAN_PROCS),
            "pass",
            "zabbix_agentd",
            params={"agents": ["zabbix_agentd", "zabbix_agent2", "node_exporter", "telegraf"]},
        ),
        Case(
            "integrity.yaml",
            "monitoring.agent_running",
            "no monitoring agent",
            lambda: Where(processes=("cron", "sshd")),
            "fail",
            "none of zabbix_agentd",
            params={"agents": ["zabbix_agentd", "zabbix_agent2", "node_exporter", "telegraf"]},
        ),
        Case(
            "integrity.yaml",
            "malware.signatures_fresh",
            "daily.cld built 19 hours before the scan (header written)",
            _clam((2026, 12, 1, 8)),
            "pass",
            "daily.cld version 27840 built 2026-12-01 08:00 UTC",
            params={"max_age_hours": 48},
        ),
        Case(
            "integrity.yaml",
            "malware.signatures_fresh",
            "daily.cld built 12 days before the scan (header written)",
            _clam((2026, 11, 20, 8)),
            "fail",
            "at most 48 h",
            params={"max_age_hours": 48},
        ),
        Case(
            "integrity.yaml",
            "malware.signatures_fresh",
            "ClamAV installed, freshclam never ran (this VM)",
            _plain,
            "fail",
            "no ClamAV daily signature database",
            params={"max_age_hours": 48},
        ),
        # storage
        Case(
            "storage.yaml",
            "capacity.filesystems_below_threshold",
            "this VM: / at about a fifth",
            _plain,
            "pass",
            "/var/log on /",
            params={"max_percent": 85, "max_inodes_percent": 90},
        ),
        Case(
            "storage.yaml",
            "capacity.filesystems_below_threshold",
            "a full /var/log (a 1 MiB tmpfs, judged here)",
            _full_log,
            "fail",
            "/var/log (hds-test) 100% of blocks used",
            params={"max_percent": 85, "max_inodes_percent": 90, "ignore_types": ["devtmpfs", "squashfs"]},
        ),
        Case(
            "storage.yaml",
            "storage.data_encrypted",
            "this VM: /var/lib/postgresql on /dev/vda",
            _plain,
            "fail",
            "no dm-crypt device underneath",
            params={"paths": ["/var/lib/postgresql"], "data_roles": DATA_ROLES},
            host={"roles": ["database"]},
        ),
        Case(
            "storage.yaml",
            "storage.data_encrypted",
            "/srv on LVM on LUKS2 (layout written from sysfs and cryptsetup(8))",
            _plain,
            "pass",
            "/srv on dm-1 (data-srv) -> dm-0 (luks-data) -> vda3: LUKS2",
            params={"paths": ["/srv/health"], "data_roles": DATA_ROLES},
            host={"roles": ["storage"]},
            written={
                "storage-dm": _capture(_framed(mountinfo=LUKS_MOUNTINFO, sys=LUKS_SYS, slaves=LUKS_SLAVES))
            },
        ),
        Case(
            "storage.yaml",
            "storage.data_encrypted",
            "/ on LVM without dm-crypt, /srv on LUKS (layout written)",
            _plain,
            "fail",
            "/var/lib/pgsql: / on vda2: no dm-crypt",
            params={"paths": ["/srv", "/var/lib/pgsql"], "data_roles": DATA_ROLES},
            host={"roles": ["database"]},
            written={
                "storage-dm": _capture(_framed(mountinfo=LUKS_MOUNTINFO, sys=LUKS_SYS, slaves=LUKS_SLAVES))
            },
        ),
        Case(
            "storage.yaml",
            "storage.data_encrypted",
            "a web front end holds no health data",
            _plain,
            "not_applicable",
            "not a data host: its roles (web)",
            params={"paths": ["/srv"], "data_roles": DATA_ROLES},
            host={"roles": ["web"]},
        ),
        # crypto
        Case(
            "crypto.yaml",
            "crypto.policy_not_legacy",
            "a Debian host has no crypto policy",
            _plain,
            "not_applicable",
            "no system-wide crypto policy",
        ),
        Case(
            "crypto.yaml",
            "crypto.policy_not_legacy",
            "DEFAULT configured and applied (files written as RHEL 9 ships them)",
            _etc(
                "cp-default",
                {
                    "/etc/crypto-policies/config": "# Policy\nDEFAULT\n",
                    "/etc/crypto-policies/state/current": "DEFAULT\n",
                },
            ),
            "pass",
            "crypto policy DEFAULT, applied",
        ),
        Case(
            "crypto.yaml",
            "crypto.policy_not_legacy",
            "LEGACY configured and applied",
            _etc(
                "cp-legacy",
                {"/etc/crypto-policies/config": "LEGACY\n", "/etc/crypto-policies/state/current": "LEGACY\n"},
            ),
            "fail",
            "base policy LEGACY not in",
        ),
        Case(
            "crypto.yaml",
            "crypto.policy_not_legacy",
            "DEFAULT configured, LEGACY still applied (update-crypto-policies not run)",
            _etc(
                "cp-stale",
                {
                    "/etc/crypto-policies/config": "DEFAULT\n",
                    "/etc/crypto-policies/state/current": "LEGACY\n",
                },
            ),
            "fail",
            "configured DEFAULT but LEGACY still applied",
        ),
        Case(
            "crypto.yaml",
            "crypto.policy_not_legacy",
            "DEFAULT:SHA1",
            _etc(
                "cp-sha1",
                {
                    "/etc/crypto-policies/config": "DEFAULT:SHA1\n",
                    "/etc/crypto-policies/state/current": "DEFAULT:SHA1\n",
                },
            ),
            "fail",
            "weakening sub-policy SHA1",
        ),
        Case(
            "crypto.yaml",
            "crypto.openssl_min_protocol",
            "Debian 12's openssl.cnf: no MinProtocol, OpenSSL 3 security level",
            _plain,
            "pass",
            "refuses anything older than TLSv1.2",
            params={"min_version": "TLSv1.2"},
        ),
        Case(
            "crypto.yaml",
            "crypto.openssl_min_protocol",
            "CipherString = DEFAULT@SECLEVEL=0 in the system default section",
            _etc("ossl-lvl0", {"/etc/ssl/openssl.cnf": SECLEVEL0}),
            "fail",
            "OpenSSL accepts TLSv1 by default",
            params={"min_version": "TLSv1.2"},
        ),
        Case(
            "crypto.yaml",
            "crypto.openssl_min_protocol",
            "MinProtocol = TLSv1 and SECLEVEL=0 in a section OpenSSL never reads",
            _etc("ossl-unref", {"/etc/ssl/openssl.cnf": UNREFERENCED}),
            "pass",
            "no MinProtocol ([openssl_init] has no ssl_conf)",
            params={"min_version": "TLSv1.2"},
        ),
        Case(
            "crypto.yaml",
            "crypto.openssl_min_protocol",
            "MinProtocol = TLSv1.3 required and set",
            _etc("ossl-13", {"/etc/ssl/openssl.cnf": MIN13}),
            "pass",
            "MinProtocol = TLSv1.3",
            params={"min_version": "TLSv1.3"},
        ),
        Case(
            "crypto.yaml",
            "crypto.openssl_min_protocol",
            "TLSv1.3 required, Debian 12's default accepts TLSv1.2",
            _plain,
            "fail",
            "OpenSSL accepts TLSv1.2 by default",
            params={"min_version": "TLSv1.3"},
        ),
        # boot, cron
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "this VM boots without GRUB",
            _plain,
            "not_applicable",
            "no GRUB configuration",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "Debian: superusers and a PBKDF2 hash from /etc/grub.d/40_custom, grub.cfg 0600",
            _grub(
                {"/boot/grub/grub.cfg": (DEBIAN_GRUB_CFG + DEBIAN_PASSWORD, 0o600)}, {"40_custom": CUSTOM_40}
            ),
            "pass",
            "sets superusers and a PBKDF2 password",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "Debian: the same grub.cfg readable by everyone",
            _grub(
                {"/boot/grub/grub.cfg": (DEBIAN_GRUB_CFG + DEBIAN_PASSWORD, 0o644)}, {"40_custom": CUSTOM_40}
            ),
            "fail",
            "readable by others (mode 0644)",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "Debian: password written in grub.cfg by hand, no /etc/grub.d script",
            _grub({"/boot/grub/grub.cfg": (DEBIAN_GRUB_CFG + DEBIAN_PASSWORD, 0o600)}),
            "fail",
            "the next update-grub removes it",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "Debian: no superusers",
            _grub({"/boot/grub/grub.cfg": (DEBIAN_GRUB_CFG, 0o600)}),
            "fail",
            "sets no superusers",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "RHEL: 01_users block in grub.cfg but no user.cfg (grub.cfg written from grub2-tools)",
            _grub({"/boot/grub2/grub.cfg": (RHEL_USERS + DEBIAN_GRUB_CFG, 0o600)}),
            "fail",
            "takes the password from user.cfg, which does not exist",
        ),
        Case(
            "boot.yaml",
            "boot.grub_password_set",
            "RHEL: user.cfg holds GRUB2_PASSWORD (as grub2-setpassword writes it)",
            _grub(
                {
                    "/boot/grub2/grub.cfg": (RHEL_USERS + DEBIAN_GRUB_CFG, 0o600),
                    "/boot/grub2/user.cfg": (f"GRUB2_PASSWORD={GRUB_HASH}\n", 0o600),
                }
            ),
            "pass",
            "takes a PBKDF2 password from /boot/grub2/user.cfg",
        ),
        Case(
            "boot.yaml",
            "cron.permissions_restricted",
            "this VM's cron files",
            _plain,
            "pass",
            "cron paths owned by root",
            params={"max_file_mode": "0755", "max_dir_mode": "0755"},
        ),
        Case(
            "boot.yaml",
            "cron.permissions_restricted",
            "a world-writable /etc/cron.d job",
            _etc(
                "cron-ww",
                {"/etc/cron.d/backup": "0 1 * * * root /usr/local/bin/backup\n"},
                {"/etc/cron.d/backup": 0o666},
            ),
            "fail",
            "/etc/cron.d/backup mode 0666",
            params={"max_file_mode": "0755", "max_dir_mode": "0755"},
        ),
    ]


CASES += more_cases()


def main() -> None:
    """Record every case, write the capture files, and check each verdict."""
    WORK.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict[str, Any]]] = {}
    bad = []
    only = set(sys.argv[1:])
    for case in CASES:
        if only and case.file not in only:
            continue
        where = case.where() if callable(case.where) else case.where
        print(f"{case.check} / {case.name}", file=sys.stderr)
        if case.netns:
            with netns("hds-software-rec", case.netns) as ns:
                where.netns = ns
                captures = collect(facts_of(case), where.prefix())
        else:
            captures = collect(facts_of(case), where.prefix())
        captures.update(case.written)
        out: dict[str, Any] = {"check": case.check, "name": case.name}
        if case.params:
            out["params"] = case.params
        if case.host:
            out["host"] = case.host
        if case.now:
            out["now"] = case.now
        out |= {"captures": captures, "expect": case.expect, "message": case.message}
        files.setdefault(case.file, []).append(out)
        status, message = run_case(out)
        if status.value != case.expect or case.message.lower() not in message.lower():
            bad.append(f"{case.check} / {case.name}: {status.value}: {message}")
    for name, cases in files.items():
        path = HERE / "captures" / name
        header = HEADERS[name]
        path.write_text(header + yaml.dump({"cases": cases}, sort_keys=False, allow_unicode=True, width=110))
        print(path)
    for line in bad:
        print("MISMATCH", line)


HEADERS = {
    "services.yaml": (
        "# Captures for the services and mail checks, RECORDED on this Debian 12 VM by "
        "tests/record_software.py:\n"
        "# listeners are python sockets (their process name set through /proc/self/comm) in a network "
        "namespace\n"
        "# created for the case (lo, which also holds the address 192.0.2.10); ss (iproute2 6.1) and "
        "postconf\n"
        "# (postfix 3.7) ran there, with main.cf / master.cf variants shown over /etc in a private mount "
        "namespace.\n"
    ),
    "mac.yaml": (
        "# Captures for the MAC checks. RECORDED on this Debian 12 VM (tests/record_software.py): the "
        "kernel command\n"
        "# lines, /etc/default/grub and /etc/selinux/config variants (private mount namespace), "
        "systemctl is-enabled,\n"
        "# the package database, and this kernel's own AppArmor/SELinux state (neither is active here). "
        "WRITTEN, and\n"
        "# named so in each case: AppArmor profile lists (aa-status(8), apparmor(7)) and sestatus output "
        "(sestatus(8)).\n"
    ),
    "integrity.yaml": (
        "# Captures for the AIDE, anti-malware and monitoring checks, RECORDED on this Debian 12 VM\n"
        "# (tests/record_software.py): aide 0.18.3 (its real database and report, made by the recorder "
        "over a tiny\n"
        "# tree and bound over /var/lib/aide and /var/log/aide), Debian's cron.daily/aide, systemctl "
        "is-enabled,\n"
        "# and process lists from a PID namespace holding processes of the named names. WRITTEN: unit "
        "states of a\n"
        "# booted systemd (systemctl(1)), and ClamAV database headers (CVD header format; sigtool --info "
        "reads them).\n"
    ),
    "storage.yaml": (
        "# Captures for the capacity and storage checks, RECORDED on this Debian 12 VM (df, "
        "/proc/self/mountinfo,\n"
        "# /sys/class/block) by tests/record_software.py; a full /var/log is a 1 MiB tmpfs in a private "
        "mount\n"
        "# namespace. WRITTEN: the LVM-on-LUKS2 layout (sysfs layout and cryptsetup(8) uuids), no "
        "dm-crypt here.\n"
    ),
    "crypto.yaml": (
        "# Captures for the crypto checks, RECORDED on this Debian 12 VM (OpenSSL 3.0.19) by "
        "tests/record_software.py,\n"
        "# with openssl.cnf variants and /etc/crypto-policies files (as RHEL 9 ships them) shown over "
        "/etc in a\n"
        "# private mount namespace. tests/test_software_semantics.py checks the OpenSSL verdicts with "
        "real handshakes.\n"
    ),
    "boot.yaml": (
        "# Captures for the GRUB and cron checks, RECORDED on this Debian 12 VM by "
        "tests/record_software.py: grub.cfg\n"
        "# and user.cfg files bound over /boot in a private mount namespace, /etc/grub.d and /etc/cron.d "
        "variants in\n"
        "# an overlay. The RHEL grub.cfg block is WRITTEN from grub2-tools' /etc/grub.d/01_users; the "
        "probe masks\n"
        "# every PBKDF2 hash on the host.\n"
    ),
    "packages.yaml": (
        "# Captures for the packages checks, RECORDED on this Debian 12 VM (apt 2.6.1, dnf 4.14, rpm "
        "4.18) by\n"
        "# tests/record_software.py: each case ran its facts' own snippets through a real probe inside a "
        "private\n"
        "# mount namespace showing the scenario's files (a small dpkg status, sources, apt.conf.d, "
        "preferences.d,\n"
        "# dnf.conf) over the real ones; this machine's apt lists (lz4), or a copy of them kept "
        "uncompressed (as\n"
        "# Ubuntu keeps them, decompressed with apt-helper); rpm-host cases use an rpm database and a "
        "createrepo_c\n"
        "# repository read by Debian's dnf.\n"
    ),
}


# ----------------------------------------------------------------------------------------- fact fixtures

TODAY = time.strftime("%Y-%m-%d")  # fixtures say when they were recorded
VM = f"this machine (Debian 12 VM, as root), {TODAY}"
SCENE = "this machine (Debian 12 VM), private mount namespace of tests/record_software.py ({what}), " + TODAY


def _no_ss() -> Where:
    hidden = WORK / "no-ss"
    hidden.write_bytes(b"")
    hidden.chmod(0o644)
    return Where(Scene(root=WORK / "no-ss-scene", binds={"/usr/bin/ss": hidden}))


def _fixture_cases() -> list[tuple[str, str, str, str, Callable[[], Where]]]:
    """(kind, arg, fixture name, source, where) of every fixture this area records."""
    rpm = {
        "installed": [("hds-demo", "1.0"), ("hds-other", "2.0")],
        "available": [("hds-demo", "1.1"), ("hds-other", "2.0")],
    }
    return [
        ("apt-config", "", "this_vm", VM, _plain),
        ("apt-sources", "", "this_vm", VM, _plain),
        (
            "apt-sources",
            "",
            "ignored_trust",
            SCENE.format(what="commented, disabled and ignored trusted=yes"),
            lambda: Where(status_scene("apt-harmless", dpkg_status(*DEB_BASE), dict(HARMLESS_TRUST))),
        ),
        (
            "apt-sources",
            "",
            "not_apt_options",
            SCENE.format(what="[Trusted=yes] and deb822 Allow-Insecure, which apt does not read"),
            lambda: Where(status_scene("apt-notopts", dpkg_status(*DEB_BASE), dict(NOT_APT_OPTIONS))),
        ),
        ("apt-indexes", "", "this_vm", VM, _plain),
        (
            "apt-indexes",
            "",
            "held_security_update",
            SCENE.format(what="a small dpkg status, linux-libc-dev held"),
            lambda: Where(status_scene("apt-held", dpkg_status(*HELD))),
        ),
        (
            "apt-indexes",
            "",
            "uncompressed_lists",
            SCENE.format(what="this machine's lists kept uncompressed, as Ubuntu keeps them"),
            lambda: _uncompressed("fx-plain", dpkg_status(*BEHIND)),
        ),
        (
            "apt-indexes",
            "",
            "security_pinned",
            SCENE.format(what="a generic pin at 50 on Debian-Security in preferences.d"),
            lambda: Where(
                status_scene(
                    "apt-pinned", dpkg_status(*BEHIND), {"/etc/apt/preferences.d/security": PINNED_DOWN}
                )
            ),
        ),
        (
            "dnf-security",
            "",
            "pending_advisory",
            SCENE.format(what="Debian's dnf 4.14, rpm database and createrepo_c repository"),
            lambda: Where(
                _rpm_host("fx-dnf", **rpm, advisories=[Advisory("HDS-2026:0001", "hds-demo", "1.1")])
            ),
        ),
        (
            "dnf-security",
            "",
            "no_updateinfo",
            SCENE.format(what="Debian's dnf 4.14, a repository without updateinfo"),
            lambda: Where(_rpm_host("fx-dnf2", **rpm)),
        ),
        ("pkg-metadata", "", "this_vm", VM, _plain),
        (
            "pkg-installed",
            "",
            "config_files_left",
            SCENE.format(what="a small dpkg status with telnetd in state rc"),
            lambda: Where(
                status_scene(
                    "forbid-rc", dpkg_status(*DEB_BASE, ("telnetd", "0.17+2.4-2+deb12u1", "config-files"))
                )
            ),
        ),
        (
            "pkg-installed",
            "",
            "journal_not_merged",
            SCENE.format(what="dpkg's journal in updates/ holds telnetd removed, the status file does not"),
            lambda: Where(
                journal_scene(
                    "fx-journal", dpkg_status(*DEB_BASE, ("telnetd", "0.17+2.4-2+deb12u1", "installed"))
                )
            ),
        ),
        (
            "pkg-installed",
            "",
            "rpm",
            SCENE.format(what="no dpkg database, an rpm database read by Debian's rpm 4.18"),
            lambda: Where(_rpm_host("fx-rpm", **rpm, cached=False)),
        ),
        (
            "svc-unit",
            "ssh.service",
            "enabled_offline",
            VM + ", systemd installed but not running",
            _plain,
        ),
        ("svc-unit", "aidecheck.timer", "not_found", VM + ", systemd installed but not running", _plain),
        (
            "listen",
            "",
            "netns",
            "this machine, a network namespace with python listeners (tests/record_software.py)",
            _plain,
        ),
        (
            "listen",
            "",
            "proc_fallback",
            "this machine, the same network namespace with ss hidden (a non-executable file bound over it)",
            _no_ss,
        ),
        ("mail-postfix", "", "debian_default", VM + ", postfix 3.7 as installed (Internet Site)", _plain),
        ("mac-apparmor", "", "no_module", VM + " (its kernel has no AppArmor)", _plain),
        ("mac-selinux", "", "disabled", VM + ", selinux-utils installed, SELinux not in the kernel", _plain),
        ("df", "", "this_vm", VM, _plain),
        ("storage-dm", "", "this_vm", VM, _plain),
        ("cron-files", "", "this_vm", VM, _plain),
        ("crypto-openssl", "", "this_vm", VM, _plain),
        ("boot-grub", "", "no_grub", VM, _plain),
        (
            "boot-grub",
            "",
            "rhel_user_cfg",
            SCENE.format(what="grub.cfg with RHEL's 01_users block and user.cfg"),
            _grub(
                {
                    "/boot/grub2/grub.cfg": (RHEL_USERS + DEBIAN_GRUB_CFG, 0o600),
                    "/boot/grub2/user.cfg": (f"GRUB2_PASSWORD={GRUB_HASH}\n", 0o600),
                }
            ),
        ),
        ("svc-clamav", "", "no_signatures", VM + ", clamav installed, freshclam never ran", _plain),
        (
            "svc-clamav",
            "",
            "daily_cld",
            SCENE.format(what="ClamAV headers written in the CVD format"),
            _clam((2026, 12, 1, 8)),
        ),
        (
            "aide-config",
            "",
            "debian",
            SCENE.format(what="a real AIDE database and report bound over /var/lib/aide, /var/log/aide"),
            _aide(),
        ),
        (
            "aide-config",
            "",
            "no_database",
            SCENE.format(what="aide installed, aideinit never ran"),
            _aide(db=False, report=""),
        ),
        (
            "aide-config",
            "",
            "rhel_style_paths",
            SCENE.format(
                what="an aide.conf with @@define DBDIR and other file names: a second round reads them"
            ),
            _aide_custom,
        ),
        ("aide-db", "/var/lib/aide/aide.db", "present", SCENE.format(what="a real AIDE database"), _aide()),
        (
            "aide-report",
            "/var/log/aide/aide.log",
            "complete",
            SCENE.format(what="a real AIDE report"),
            _aide(),
        ),
        (
            "aide-report",
            "/var/log/aide/aide.log",
            "interrupted",
            SCENE.format(what="the head of a real AIDE report"),
            _aide(report="cut"),
        ),
    ]


def record_fixtures(kinds: list[str]) -> None:
    """Write tests/facts/<kind>/<name>.yaml for this area's kinds (as tests/facts/record.py does)."""
    from fact_fixtures import plain

    from hds_compliance.facts import KINDS, FactError

    listeners = [
        SSHD,
        PG,
        RESOLVER,
        ("tcp", "::", 8080, None, "python3"),
        ("udp", "::1", 323, None, "chronyd"),
    ]
    for kind, arg, name, source, where_of in _fixture_cases():
        if kinds and kind not in kinds:
            continue
        fact = KINDS[kind](arg)
        where = where_of()
        if kind == "listen":
            with netns("hds-software-rec", listeners) as ns:
                where.netns = ns
                first = _run([fact], where.prefix())
        else:
            first = _run([fact], where.prefix())
        more = follow_ups(render([fact], "x"), first)
        extra = _run(more, where.prefix()) if more else []
        data: dict[str, Any] = {
            "arg": arg,
            "source": source,
            "command": fact.script(),
            "capture": dump_capture(first[0]),
        }
        if extra:
            data["follow_ups"] = {c.fact: dump_capture(c) for c in extra}
        lookup = {c.fact: c for c in extra}
        try:
            data["value"] = plain(fact.parse_with(first[0], lookup.get))
        except FactError as exc:
            data["error"] = str(exc)
        out = HERE / "facts" / kind / f"{name}.yaml"
        out.parent.mkdir(exist_ok=True)
        out.write_text(yaml.dump(data, sort_keys=False, allow_unicode=True, width=110))
        print(out)


def written_fixtures() -> None:
    """Fixtures of outputs no program here can produce, written from the named documentation."""
    from fact_fixtures import load_capture, plain

    from hds_compliance.facts import KINDS

    here = "no {what} here"
    cases = [
        ("mac-apparmor", "enforcing", "aa-status(8) and apparmor(7)", "AppArmor kernel", APPARMOR_ENFORCING),
        ("mac-apparmor", "complain", "aa-status(8) and apparmor(7)", "AppArmor kernel", APPARMOR_COMPLAIN),
        (
            "mac-selinux",
            "enforcing_targeted",
            "sestatus(8) as RHEL 9 prints it",
            "SELinux kernel",
            SELINUX_ENFORCING,
        ),
        (
            "storage-dm",
            "lvm_on_luks2",
            "the kernel's sysfs layout and cryptsetup(8) (dm uuid CRYPT-LUKS2-<uuid>-<name>)",
            "dm-crypt",
            _capture(_framed(mountinfo=LUKS_MOUNTINFO, sys=LUKS_SYS, slaves=LUKS_SLAVES)),
        ),
    ]
    for kind, name, doc, missing, capture in cases:
        fact = KINDS[kind]("")
        value = plain(fact.parse(load_capture(fact.key, capture)))
        source = f"written from {doc}; " + here.format(what=missing)
        data = {"arg": "", "source": source, "command": fact.script(), "capture": capture, "value": value}
        out = HERE / "facts" / kind / f"{name}.yaml"
        out.write_text(yaml.dump(data, sort_keys=False, allow_unicode=True, width=110))
        print(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["fixtures"]:
        record_fixtures(sys.argv[2:])
        written_fixtures()
    else:
        main()
