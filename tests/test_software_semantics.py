"""Verdicts that are true, for the software area: each test builds a host state that a text match judges
wrong, collects the check's facts from it through a real probe, and holds the verdict to what the real
program does (apt, dnf, postconf, OpenSSL handshakes, run-parts, the kernel's sockets).

Host states live in private mount namespaces (files shown over the real ones), PID namespaces and network
namespaces this module creates: nothing on the machine changes. The probes' own read-only promise is
tested here too (strace for apt, before/after listings for dnf).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from software_env import (
    Scene,
    Where,
    candidate,
    collect,
    dnf_scene,
    dpkg_status,
    journal_scene,
    netns,
    run_in,
    status_scene,
)
from test_checks import run_case

from hds_compliance.check import registry
from hds_compliance.facts.packages import AptConfigDump, AptSecurityIndexes, AptSources, InstalledPackages
from hds_compliance.facts.services import master_services
from hds_compliance.model import Status

REGISTRY = registry()
# This run's scenes (under /var/tmp: they must survive a tmpfs mounted on /tmp); two pytest runs at once
# no longer remove each other's (they shared tests/software_env.py's recording folder).
WORK = Path(tempfile.mkdtemp(prefix="hds-software-sem-", dir="/var/tmp"))


@pytest.fixture(scope="module", autouse=True)
def _work() -> Iterator[None]:
    yield
    shutil.rmtree(WORK, ignore_errors=True)


DEB = [("apt", "2.6.1", "installed"), ("unattended-upgrades", "2.9.1+nmu3", "installed")]


@pytest.fixture(scope="module", autouse=True)
def _needs_tools() -> None:
    missing = [
        t for t in ("unshare", "apt-get", "ip", "strace", "postconf", "openssl") if shutil.which(t) is None
    ]
    if os.geteuid() != 0 or missing:
        pytest.skip(
            f"needs root and {', '.join(missing) or 'these tools'} (see the software area's package list)"
        )


def judge(check: str, params: dict[str, Any], where: Where, now: str | None = None) -> tuple[Status, str]:
    """Collect ``check``'s facts behind ``where`` with a real probe, and evaluate it."""
    status, message, _captures = judged(check, params, where, now)
    return status, message


def judged(
    check: str, params: dict[str, Any], where: Where, now: str | None = None
) -> tuple[Status, str, dict[str, dict[str, Any]]]:
    """:func:`judge`, with the captures the verdict was computed from."""
    spec = REGISTRY[check]
    captures = collect(list(spec.facts(spec.validate(params))), where.prefix())
    status, message = run_case({"check": check, "params": params, "captures": captures, "now": now})
    return status, message, captures


# ------------------------------------------------------------------------------------------ apt sources

DEBIAN_SOURCES = (
    Path("/etc/apt/sources.list.d/debian.sources").read_text() if Path("/etc/apt").exists() else ""
)
ENTRY = "deb{opts} http://mirror.example.org/debian bookworm main\n"
STANZA = "Types: deb\nURIs: http://mirror.example.org/debian\nSuites: bookworm\nComponents: main\n{extra}"


HARMLESS = {
    "old.list": "#" + ENTRY.format(opts=" [trusted=yes]") + ENTRY.format(opts=" [trusted=no]"),
    "mirror.sources": "# a mirror\n"
    + STANZA.format(extra="Trusted: yes\nEnabled: no\n").replace("mirror.", "m2."),
    "spare.sources": STANZA.format(extra="# Trusted: yes\n").replace("mirror.", "m3."),
    "vendor.list.disabled": ENTRY.format(opts=" [trusted=yes]").replace("mirror.", "vendor."),
}


@pytest.mark.parametrize(
    ("files", "expect", "read"),
    [
        (HARMLESS, Status.PASS, {"mirror.example.org", "m3.example.org"}),
        ({"hds.sources": STANZA.format(extra="Trusted: yes\n")}, Status.FAIL, {"mirror.example.org"}),
        ({"hds.list": ENTRY.format(opts=" [ arch=amd64 trusted=yes ]")}, Status.FAIL, {"mirror.example.org"}),
    ],
    ids=["commented, disabled, ignored, trusted=no", "deb822 Trusted: yes", "trusted=yes among options"],
)
def test_apt_trust_counts_only_where_apt_reads_it(
    files: dict[str, str], expect: Status, read: set[str]
) -> None:
    """A commented ``[trusted=yes]``, a stanza with ``Enabled: no``, a commented ``# Trusted: yes`` or a
    ``.list.disabled`` file changes nothing for apt; a deb822 ``Trusted: yes`` (which a grep for
    ``trusted=yes`` misses) does. apt's own list of entries (``apt-get indextargets``) decides what counts
    (tests/test_apt_semantics.py holds the model of apt's sources to it on trickier files)."""
    etc = {f"/etc/apt/sources.list.d/{name}": text for name, text in files.items()}
    scene = status_scene("sem-apt-" + str(abs(hash(tuple(files)))), dpkg_status(*DEB), dict(etc))
    status, message = judge("packages.apt_sources_authenticated", {}, Where(scene))
    assert status is expect, message
    listed = run_in(scene, "apt-get indextargets --no-release-info --format '$(REPO_URI)'").stdout
    assert {host for host in ("mirror", "m2", "m3", "vendor") if f"//{host}.example" in listed} == {
        h.split(".")[0] for h in read
    }


@pytest.mark.parametrize(
    ("files", "expect"),
    [
        (
            {
                "10hds": 'APT::Get::AllowUnauthenticated "true";\n',
                "99hds": 'APT::Get::AllowUnauthenticated "0";\n// Acquire::AllowInsecureRepositories "1";\n',
            },
            Status.PASS,
        ),
        (
            {
                "10hds": 'APT::Get::AllowUnauthenticated "0";\n',
                "99hds": 'APT::Get::AllowUnauthenticated "yes";\n',
            },
            Status.FAIL,
        ),
        ({"99hds": 'Acquire { AllowInsecureRepositories "on"; };\n'}, Status.FAIL),
    ],
    ids=["turned off later, the rest commented with //", "turned on by a later file", "nested block syntax"],
)
def test_apt_configuration_as_apt_config_resolves_it(files: dict[str, str], expect: Status) -> None:
    """apt.conf.d files are read in order and the last value wins; ``//`` comments and nested ``{ }`` blocks
    are apt's syntax. A grep for ``AllowUnauthenticated "true"`` gets the first two and the last wrong."""
    etc = {f"/etc/apt/apt.conf.d/{name}": text for name, text in files.items()}
    scene = status_scene("sem-aptconf-" + "-".join(files), dpkg_status(*DEB), dict(etc))
    status, message = judge("packages.apt_sources_authenticated", {}, Where(scene))
    assert status is expect, message


# ---------------------------------------------------------------------------------------- dnf gpgcheck


@pytest.fixture(scope="module")
def rpm_host() -> Scene:
    """An rpm database and a dnf repository for Debian's dnf (built once; variants change /etc only)."""
    if (
        shutil.which("dnf") is None
        or shutil.which("rpmbuild") is None
        or shutil.which("createrepo_c") is None
    ):
        pytest.skip("needs dnf, rpm and createrepo-c")
    return dnf_scene(
        WORK / "sem-rpm", installed=[("hds-demo", "1.0")], available=[("hds-demo", "1.1")], cached=False
    )


REPO = "[hdstest]\nname=t\nbaseurl=file:///srv/repo\n"


DNF_VARIANTS = {
    "both on": ("gpgcheck=1", {"a": REPO + "gpgcheck=1\n"}),
    "main unset (off by default)": ("best=True", {"a": REPO + "gpgcheck=1\n"}),
    "repo inherits main": ("gpgcheck=1", {"a": REPO}),
    "indented line continues baseurl": ("gpgcheck=0", {"a": REPO + "  gpgcheck=1\n"}),
    "comment after the value voids it": ("gpgcheck=1", {"a": REPO + "gpgcheck=0 # TODO\n"}),
    "comment after 1 voids it, main 0 applies": ("gpgcheck=0", {"a": REPO + "gpgcheck=1 # yes\n"}),
    "repeated section overrides": ("gpgcheck=1", {"a": REPO + "gpgcheck=1\n[hdstest]\ngpgcheck=0\n"}),
    "first file defining a repository wins": (
        "gpgcheck=1",
        {"a": REPO + "gpgcheck=1\n", "b": REPO + "gpgcheck=0\n"},
    ),
    "keys are case-sensitive": ("gpgcheck=1", {"a": REPO + "GPGCheck=0\n"}),
    "repository defined in dnf.conf": ("gpgcheck=1\n[other]\nbaseurl=file:///x\ngpgcheck=0", {"a": REPO}),
}


@pytest.mark.parametrize("variant", sorted(DNF_VARIANTS))
def test_dnf_gpgcheck_as_dnf_resolves_it(rpm_host: Scene, variant: str) -> None:
    """The verdict agrees with ``dnf config-manager --dump``, run on the same files: gpgcheck of [main] and
    of every enabled repository, as libdnf parses them (continuations, comments, repeats, inheritance)."""
    main, repos_files = DNF_VARIANTS[variant]
    files = {"/etc/dnf/dnf.conf": f"[main]\n{main}\n"}
    files |= {f"/etc/yum.repos.d/{name}.repo": text for name, text in repos_files.items()}
    root = WORK / "sem-dnf" / "".join(c if c.isalnum() else "_" for c in variant)
    scene = Scene(root=root, etc=files, binds=rpm_host.binds, tmpfs=["/var/lib/dpkg", "/var/log"])
    status, message = judge("packages.dnf_gpgcheck_enforced", {}, Where(scene))
    dump = run_in(scene, "dnf -q config-manager --dump; dnf -q config-manager --dump '*'").stdout
    repos: dict[str, dict[str, str]] = {}
    current = "main"
    for line in dump.splitlines():
        if line.startswith("="):
            current = line.strip("= ").removeprefix("repo: ").strip()
            continue
        key, _, value = line.partition(" = ")
        repos.setdefault(current, {})[key] = value
    enabled = [r for name, r in repos.items() if name != "main" and r.get("enabled") == "1"]
    dnf_says = repos["main"]["gpgcheck"] == "1" and all(r.get("gpgcheck") == "1" for r in enabled)
    assert enabled, dump
    assert (status is Status.PASS) == dnf_says, f"{message}\n{dump}"


# ---------------------------------------------------------------------------------------- apt updates

BEHIND = [("linux-libc-dev", "6.1.0-1", "installed")]
HELD = [("linux-libc-dev", "6.1.0-1", "hold")]


def _security_fix() -> str:
    """The version of linux-libc-dev a security archive offers here (kernel fixes go through it)."""
    found = candidate("linux-libc-dev")
    if found is None or not found[1]:
        pytest.skip("apt's lists here hold no linux-libc-dev from a security archive")
    return found[0]


def test_a_held_package_with_a_security_fix_is_pending() -> None:
    """``apt-mark hold`` keeps a package out of ``apt-get upgrade``'s list, not out of danger: a plain
    simulation shows nothing for it, the check (which ignores holds) still reports the fix."""
    fix = _security_fix()
    scene = status_scene("sem-held", dpkg_status(*HELD))
    status, message = judge("packages.security_updates_applied", {}, Where(scene))
    assert status is Status.FAIL and f"linux-libc-dev 6.1.0-1 -> {fix}" in message, message
    plain = run_in(scene, "apt-get -s -o Dir::Log::Planner= -o Dir::Cache::pkgcache= dist-upgrade").stdout
    assert (
        "Inst linux-libc-dev" not in plain and "linux-libc-dev" in plain
    )  # listed as kept back, not as an Inst


def test_without_a_security_archive_nothing_pending_means_nothing() -> None:
    """With bookworm-security removed from the sources, apt's own upgradable list shows no security update
    at all: a check counting "security" lines would pass a host that never receives fixes. The probe read
    no security index (its Release is in the lists, but no entry names it)."""
    _security_fix()
    sources = "\n".join(s for s in DEBIAN_SOURCES.split("\n\n") if "security" not in s) + "\n"
    scene = status_scene(
        "sem-nosec", dpkg_status(*BEHIND), {"/etc/apt/sources.list.d/debian.sources": sources}
    )
    status, message, _captures = judged("packages.security_updates_applied", {}, Where(scene))
    upgradable = run_in(scene, "apt -o Dir::Cache::pkgcache= list --upgradable").stdout
    assert "security" not in upgradable
    assert status is Status.FAIL and "no security archive" in message, message


def test_a_removed_package_with_configuration_left_is_not_installed() -> None:
    """``dpkg -l | grep telnetd`` matches a package removed without purge (state ``rc``); its programs are
    gone. ``telnetd`` in state rc passes, installed it fails."""
    left = ("telnetd", "0.17+2.4-2+deb12u1", "config-files")
    scene = status_scene("sem-rc", dpkg_status(*DEB, left))
    assert "rc  telnetd" in run_in(scene, "dpkg -l telnetd").stdout
    params = {"packages": ["telnetd"]}
    assert judge("packages.forbidden_absent", params, Where(scene))[0] is Status.PASS
    scene = status_scene("sem-ii", dpkg_status(*DEB, (left[0], left[1], "installed")))
    assert judge("packages.forbidden_absent", params, Where(scene))[0] is Status.FAIL


# ------------------------------------------------------------------------------------- listening sockets

LISTENERS = [
    ("tcp", "127.0.0.1", 7001, None, "loopback4"),
    ("tcp", "0.0.0.0", 7002, None, "wildcard4"),
    ("tcp", "::", 7003, None, "dualstack6"),
    ("tcp", "::1", 7004, None, "loopback6"),
    ("tcp", "192.0.2.10", 7005, None, "public4"),
]


def test_exposure_is_what_the_kernel_accepts_from_a_non_loopback_address() -> None:
    """127.0.0.1 and ::1 are local; 0.0.0.0, 192.0.2.10 and :: (dual stack: it takes IPv4 too, ss shows it
    as ``*``) accept a connection to the host's non-loopback address. The check's exposed set is exactly the
    set of ports a client reaches through 192.0.2.10."""
    with netns("hds-software-sem", LISTENERS) as ns:
        status, message = judge("services.listening_only_allowed", {"allowed": ["tcp/22"]}, Where(netns=ns))
        probe = (
            "import socket\nfor p in range(7001, 7006):\n    s = socket.socket(); s.settimeout(1)\n"
            "    print(p, s.connect_ex(('192.0.2.10', p)) == 0); s.close()\n"
        )
        reached = subprocess.run(
            ["ip", "netns", "exec", ns, "python3", "-c", probe], capture_output=True, text=True
        )
    reachable = {int(p) for p, ok in (line.split() for line in reached.stdout.splitlines()) if ok == "True"}
    assert reachable == {7002, 7003, 7005}, reached.stdout
    assert status is Status.FAIL
    exposed = {port for port in range(7001, 7006) if f":{port} (" in message}
    assert exposed == reachable, message


def test_postfix_listening_is_what_postconf_resolves() -> None:
    """main.cf is read as postfix reads it: a later ``inet_interfaces`` line replaces an earlier one, and a
    master.cf service with its own address ignores inet_interfaces altogether."""
    main = Path("/etc/postfix/main.cf").read_text().replace("inet_interfaces = all\n", "")
    cases = [
        (main + "inet_interfaces = loopback-only\ninet_interfaces = all\n", "", Status.FAIL),
        (main + "inet_interfaces = all\ninet_interfaces = loopback-only\n", "", Status.PASS),
        (main + "#inet_interfaces = all\ninet_interfaces = localhost\n", "", Status.PASS),
        (main + "inet_interfaces = loopback-only\n", "192.0.2.10:smtp inet n - y - - smtpd\n", Status.FAIL),
    ]
    master = Path("/etc/postfix/master.cf").read_text()
    with netns("hds-software-sem", [("tcp", "127.0.0.1", 25, None, "master")]) as ns:
        for number, (main_cf, extra, expect) in enumerate(cases):
            etc = {"/etc/postfix/main.cf": main_cf, "/etc/postfix/master.cf": master + extra}
            where = Where(Scene(root=WORK / f"sem-postfix-{number}", etc=etc), netns=ns)
            status, message = judge("mail.local_only", {}, where)
            assert status is expect, (number, message)


def _random_master_cf(rng: random.Random) -> str:
    """A master.cf postfix accepts: entries of 8+ fields, some spread over continuation lines (a space or
    a tab first), comments in column 1 and indented ones between an entry and its continuations, blank and
    whitespace-only lines, braced arguments, and services that look inet but are commented or continued."""
    names = ["smtp", "submission", "127.0.0.1:2525", "[::1]:smtp", "0.0.0.0:587", "relay", "pickup", "x-y"]
    lines = []
    for _ in range(rng.randint(1, 9)):
        name, kind = rng.choice(names), rng.choice(["inet", "inet", "unix", "pass", "fifo", "unix-dgram"])
        fields = [name, kind, "n", "-", rng.choice(["y", "n"]), "-", "-", "smtpd"]
        cut = rng.randint(1, 8)
        blank = rng.choice([" ", "\t", "  \t"])
        lines.append(rng.choice([" ", "\t", "   "]).join(fields[:cut]))
        if cut < 8:
            lines.append(blank + " ".join(fields[cut:]))
        for _ in range(rng.randint(0, 2)):
            lines.append(
                rng.choice(
                    [
                        blank + "-o smtpd_tls_security_level=encrypt",
                        blank + "-o { smtpd_client_restrictions = permit_sasl_authenticated, reject }",
                        "#" + rng.choice(names) + " inet n - y - - smtpd",
                        blank + "# an indented comment: inet n - y - - smtpd",
                        "",
                        blank,
                    ]
                )
            )
    return "\n".join(lines) + rng.choice(["\n", ""])


@pytest.mark.skipif(shutil.which("postconf") is None, reason="needs postconf (Debian package postfix)")
def test_master_cf_services_are_the_ones_postconf_lists(tmp_path: Path) -> None:
    """The inet services read from master.cf are those ``postconf -F '*/inet/service'`` lists, for 200
    random files; a text match of lines containing " inet " would also take commented and continued ones."""
    rng = random.Random(20261203)
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")
    agreed = with_inet = 0
    for _ in range(200):
        text = _random_master_cf(rng)
        (tmp_path / "master.cf").write_text(text)
        done = subprocess.run(
            ["postconf", "-c", str(tmp_path), "-F", "*/inet/service"], capture_output=True, text=True
        )
        assert done.returncode == 0, (text, done.stderr)
        listed = [line.split(" = ", 1)[1] for line in done.stdout.splitlines()]
        assert master_services(text) == listed, text
        agreed += 1
        with_inet += bool(listed) and any(
            line.lstrip().startswith("#") and " inet " in line for line in text.splitlines()
        )
    assert agreed == 200 and with_inet > 20  # commented inet lines were among them


# --------------------------------------------------------------------------------------------- OpenSSL

OPENSSL_CNF = Path("/etc/ssl/openssl.cnf").read_text()
SYSTEM_DEFAULT = (
    "[openssl_init]\nssl_conf = ssl_sect\n\n[ssl_sect]\nsystem_default = system_default_sect\n\n"
    "[system_default_sect]\n{commands}\n"
)
CONFIGS = {
    "Debian 12 default (no MinProtocol)": OPENSSL_CNF,
    "SECLEVEL=0 in system_default": OPENSSL_CNF.replace(
        "[openssl_init]\n", SYSTEM_DEFAULT.format(commands="CipherString = DEFAULT@SECLEVEL=0"), 1
    ),
    "MinProtocol TLSv1.1 (OpenSSL 3 still refuses it)": OPENSSL_CNF.replace(
        "[openssl_init]\n", SYSTEM_DEFAULT.format(commands="MinProtocol = TLSv1.1"), 1
    ),
    "SECLEVEL=0 and MinProtocol TLSv1 in a section never referenced": OPENSSL_CNF
    + "\n[system_default_sect]\nMinProtocol = TLSv1\nCipherString = DEFAULT@SECLEVEL=0\n",
    "MinProtocol TLSv1.2 with SECLEVEL=0": OPENSSL_CNF.replace(
        "[openssl_init]\n",
        SYSTEM_DEFAULT.format(commands="MinProtocol = TLSv1.2\nCipherString = DEFAULT@SECLEVEL=0"),
        1,
    ),
}
# Files the configurations below include (outside /etc, so that the real OpenSSL and the probe in its
# scene read the same ones): an .include continues the section it sits in.
INCLUDED = {
    WORK / "ossl-include" / "lvl0.cnf": "CipherString = DEFAULT@SECLEVEL=0\n",
    WORK / "ossl-include" / "folder" / "50-lvl0.cnf": "CipherString = DEFAULT@SECLEVEL=0\n",
    WORK / "ossl-include" / "min12.cnf": "MinProtocol = TLSv1.2\n",
}
CONFIGS |= {
    "SECLEVEL=0 in an included file (.include = path)": OPENSSL_CNF.replace(
        "[openssl_init]\n", SYSTEM_DEFAULT.format(commands=f".include = {WORK}/ossl-include/lvl0.cnf"), 1
    ),
    "SECLEVEL=0 in a file of an included folder (.include path)": OPENSSL_CNF.replace(
        "[openssl_init]\n", SYSTEM_DEFAULT.format(commands=f"  .include {WORK}/ossl-include/folder"), 1
    ),
    "MinProtocol TLSv1.2 in an included file (.include=path)": OPENSSL_CNF.replace(
        "[openssl_init]\n", SYSTEM_DEFAULT.format(commands=f".include={WORK}/ossl-include/min12.cnf"), 1
    ),
}


@pytest.fixture(scope="module")
def certificate() -> Iterator[Path]:
    folder = WORK / "sem-openssl"
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in INCLUDED.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(folder / "k.pem"),
            "-out",
            str(folder / "c.pem"),
            "-subj",
            "/CN=hds-test",
            "-days",
            "2",
        ],
        check=True,
        capture_output=True,
    )
    yield folder


def _tls11_accepted(config: Path, folder: Path, port: int) -> bool:
    """Whether ``openssl s_server`` run with ``config`` completes a TLS 1.1 handshake (with a client that
    allows it)."""
    client_conf = folder / "client.cnf"
    client_conf.write_text(
        OPENSSL_CNF.replace(
            "[openssl_init]\n", SYSTEM_DEFAULT.format(commands="CipherString = DEFAULT@SECLEVEL=0"), 1
        )
    )
    server = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(folder / "c.pem"),
            "-key",
            str(folder / "k.pem"),
            "-www",
            "-quiet",
        ],
        env={**os.environ, "OPENSSL_CONF": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.4)
        done = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_1"],
            input="",
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "OPENSSL_CONF": str(client_conf)},
        )
    finally:
        server.kill()
        server.wait()
    return "Cipher is (NONE)" not in done.stdout and "Cipher is" in done.stdout


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_openssl_verdict_matches_a_real_handshake(certificate: Path, name: str) -> None:
    """The check passes exactly when an OpenSSL server using that configuration refuses TLS 1.1: a
    MinProtocol outside the section openssl_conf leads to is ignored, OpenSSL 3 refuses TLS 1.0/1.1 at
    security level 1 and above whatever MinProtocol says, and @SECLEVEL=0 reopens them."""
    config = certificate / f"{abs(hash(name))}.cnf"
    config.write_text(CONFIGS[name])
    port = 24000 + abs(hash(name)) % 1000
    accepted = _tls11_accepted(config, certificate, port)
    scene = Scene(root=WORK / f"sem-ossl-{abs(hash(name))}", etc={"/etc/ssl/openssl.cnf": CONFIGS[name]})
    status, message = judge("crypto.openssl_min_protocol", {"min_version": "TLSv1.2"}, Where(scene))
    assert status is not Status.ERROR, message  # an include the probe did not read would be one
    assert (status is Status.FAIL) == accepted, (
        f"{name}: handshake {'accepted' if accepted else 'refused'}; {message}"
    )


# ----------------------------------------------------------------------------------------- cron, AIDE

CRON_DAILY_AIDE = Path("/etc/cron.daily/aide")


@pytest.mark.parametrize(
    ("name", "mode"), [("aide", 0o755), ("aide", 0o644), ("aide.dpkg-old", 0o755), ("aide-check", 0o700)]
)
def test_cron_scripts_count_as_run_parts_runs_them(name: str, mode: int) -> None:
    """A script in /etc/cron.daily runs only if run-parts would run it: execute bit set, a name without a
    dot. The check counts a cron.daily AIDE job exactly when ``run-parts --test`` lists it."""
    if not CRON_DAILY_AIDE.exists():
        pytest.skip("needs Debian's aide-common")
    path = f"/etc/cron.daily/{name}"
    scene = Scene(
        root=WORK / f"sem-cron-{name}-{mode:o}",
        etc={path: CRON_DAILY_AIDE.read_text()},
        modes={path: mode},
        etc_absent=[] if name == "aide" else [str(CRON_DAILY_AIDE)],
    )
    runs = path in run_in(scene, "run-parts --test /etc/cron.daily").stdout.split()
    status, message = judge("integrity.aide_check_scheduled", {}, Where(scene, processes=("cron",)))
    assert (status is Status.PASS) == runs, message


def test_debian_cron_aide_steps_aside_when_systemd_runs() -> None:
    """Debian's /etc/cron.daily/aide exits at once when /run/systemd/system exists (the timer's job then):
    run for real with a stub in place of dailyaidecheck, it calls the stub only without systemd. The
    check counts the script only where systemd does not run."""
    if not CRON_DAILY_AIDE.exists():
        pytest.skip("needs Debian's aide-common")
    stub = WORK / "sem-stub-dailyaidecheck"
    stub.write_text("#!/bin/sh\necho DAILYAIDECHECK-RAN\n")
    stub.chmod(0o755)
    scene = Scene(root=WORK / "sem-cron-systemd", binds={"/usr/share/aide/bin/dailyaidecheck": stub})
    without = run_in(scene, f"sh {CRON_DAILY_AIDE}").stdout
    booted = run_in(
        scene, f"mount -t tmpfs hds-test /run && mkdir -p /run/systemd/system && sh {CRON_DAILY_AIDE}"
    )
    assert "DAILYAIDECHECK-RAN" in without and "DAILYAIDECHECK-RAN" not in booted.stdout
    status, _ = judge(
        "integrity.aide_check_scheduled", {}, Where(Scene(root=WORK / "sem-cron-plain"), processes=("cron",))
    )
    assert status is Status.PASS


# ---------------------------------------------------------------------------- dpkg's status, read by awk

_DPKG_FORMAT = "${db:Status-Abbrev}\t${Package}\t${Version}\n"
_STATES = [
    ("install", "ok", "installed"),
    ("hold", "ok", "installed"),
    ("deinstall", "ok", "config-files"),
    ("purge", "ok", "not-installed"),
    ("install", "ok", "not-installed"),
    ("install", "reinstreq", "half-installed"),
    ("install", "ok", "unpacked"),
    ("install", "ok", "half-configured"),
    ("unknown", "ok", "not-installed"),
]


def _random_dpkg_status(rng: random.Random) -> str:
    """A status file as dpkg writes one (sorted by name, then architecture): packages in every state, two
    architectures of a Multi-Arch: same library, epochs (0 and others), revisions, long descriptions."""
    stanzas = []
    names = sorted(rng.sample(["adduser", "libfoo1", "libbar2", "openssh-server", "telnetd", "zz"], 4))
    for name in names:
        archs = (
            ["amd64", "i386"]
            if name.startswith("lib") and rng.random() < 0.5
            else [rng.choice(["amd64", "all"])]
        )
        version = rng.choice(["1.0", "0:1.0", "2:3.4-1+deb12u1", "0.17+2.4-2", "1:2:3-4", "00:5", "7"])
        want, flag, state = rng.choice(_STATES)
        for arch in archs:
            lines = [f"Package: {name}", f"Status: {want} {flag} {state}"]
            if state != "not-installed":
                lines += ["Priority: optional", "Installed-Size: 10", "Maintainer: M <m@example.org>"]
                lines += [f"Architecture: {arch}"]
                lines += ["Multi-Arch: same"] if len(archs) > 1 else []
                lines += [f"Version: {version}", "Description: a package", " long text", " ."]
            stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def _awk_rows(status: Path) -> subprocess.CompletedProcess[bytes]:
    from hds_compliance.facts.packages import _DPKG_ROWS_AWK

    return subprocess.run(["awk", _DPKG_ROWS_AWK, str(status)], capture_output=True, check=False)


def test_dpkg_status_read_by_awk_is_what_dpkg_query_lists() -> None:
    """The awk that reads dpkg's status prints, byte for byte, what ``dpkg-query -W`` prints for the same
    database (``--admindir``): on random statuses as dpkg writes them (every state, two architectures of a
    library, epochs of 0 that dpkg leaves out), and on this machine's own status."""
    rng = random.Random(11)
    compared = 0
    for case in range(120):
        admin = WORK / f"dpkg-rows-{case}"
        (admin / "updates").mkdir(parents=True, exist_ok=True)
        (admin / "status").write_text(_random_dpkg_status(rng))
        real = subprocess.run(
            ["dpkg-query", f"--admindir={admin}", "-W", "-f", _DPKG_FORMAT], capture_output=True, check=False
        )
        if real.returncode != 0:  # a state dpkg refuses in this combination: no judge for it
            continue
        compared += 1
        mine = _awk_rows(admin / "status")
        assert (mine.returncode, mine.stdout) == (0, real.stdout), (admin / "status").read_text()
    assert compared >= 100
    here = subprocess.run(["dpkg-query", "-W", "-f", _DPKG_FORMAT], capture_output=True, check=True)
    assert _awk_rows(Path("/var/lib/dpkg/status")).stdout == here.stdout


def test_a_status_word_dpkg_refuses_is_an_error_not_a_package_list() -> None:
    """dpkg-query refuses a status whose Status field holds a word it does not know; the awk prints a line
    the parser refuses, so the fact is an error, never a list dpkg would not give."""
    scene = status_scene(
        "dpkg-bad-word",
        "Package: zz\nStatus: install ok nearly-installed\nArchitecture: all\nVersion: 1\n",
    )
    captures = collect([InstalledPackages()], Where(scene).prefix())
    status, message = run_case(
        {"check": "packages.forbidden_absent", "params": {"packages": ["telnetd"]}, "captures": captures}
    )
    assert status is Status.ERROR and "unexpected line" in message, message


def test_dpkgs_journal_not_yet_merged_is_read_through_dpkg_query() -> None:
    """After an interrupted dpkg run its journal (/var/lib/dpkg/updates/0000) holds a newer state than the
    status file, and dpkg-query merges it: so does the fact (it asks dpkg-query then); the status file alone
    would say the package is still installed."""
    status = dpkg_status(*DEB, ("telnetd", "0.17+2.4-2+deb12u1", "installed"), relations=False)
    journal = journal_scene("dpkg-journal", status)
    merged = InstalledPackages().parse(_capture(collect([InstalledPackages()], Where(journal).prefix())))
    assert merged is not None and "telnetd" not in merged.installed and "telnetd" in merged.config_only
    plain = status_scene("dpkg-no-journal", status)
    alone = InstalledPackages().parse(_capture(collect([InstalledPackages()], Where(plain).prefix())))
    assert alone is not None and "telnetd" in alone.installed


def _capture(captures: dict[str, dict[str, Any]]) -> Any:
    from fact_fixtures import load_capture

    return load_capture("pkg-installed", captures["pkg-installed"])


# ------------------------------------------------------------------------------------------ read-only


def _tree(*roots: Path) -> dict[str, tuple[float, int]]:
    out = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            st = path.lstat()
            out[str(path)] = (st.st_mtime, st.st_size)
    return out


def test_apt_probes_write_and_lock_nothing() -> None:
    """Under strace, the apt facts' snippets open no file for writing, take no lock, rename and remove
    nothing: apt-config, apt-helper (decompressing the security index), awk and dpkg-query only read."""
    facts = [AptSecurityIndexes(), AptSources(), AptConfigDump(), InstalledPackages()]
    trace = WORK / "sem-apt.trace"
    argv = [
        "strace",
        "-f",
        "-o",
        str(trace),
        "-e",
        "trace=openat,open,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,fcntl,flock,truncate,link,symlink",
    ]
    collect(facts, argv)
    bad = []
    for line in trace.read_text().splitlines():
        if "ENOENT" in line or "/dev/null" in line or "/dev/tty" in line:
            continue
        opening = any(f"{call}(" in line for call in ("openat", "open", "creat"))
        if (
            opening
            and any(flag in line for flag in ("O_WRONLY", "O_RDWR", "O_CREAT"))
            and "O_TMPFILE" not in line
        ):
            bad.append(line)  # O_TMPFILE: apt's unnamed scratch files in /tmp, gone when closed
        if any(
            f"{call}(" in line
            for call in ("rename", "unlink", "mkdir", "flock", "truncate", "link(", "symlink")
        ):
            bad.append(line)
        if "F_SETLK" in line or "F_OFD_SETLK" in line:
            bad.append(line)
    assert not bad, "\n".join(bad[:20])


def test_dnf_probe_leaves_no_trace(tmp_path: Path) -> None:
    """dnf writes its logs, a metadata lock and its cache state even with -C; the probe runs it in a
    private namespace, so the cache, the rpm database and /var/log are byte-for-byte as before."""
    if shutil.which("dnf") is None or shutil.which("createrepo_c") is None:
        pytest.skip("needs dnf and createrepo-c")
    scene = dnf_scene(WORK / "sem-dnf-ro", installed=[("hds-demo", "1.0")], available=[("hds-demo", "1.1")])
    scene.tmpfs.append("/var/lib/dpkg")
    roots = [*scene.binds.values(), Path("/var/log"), Path("/var/cache/dnf")]
    before = _tree(*roots)
    time.sleep(1.1)  # a write would change an mtime in the second after
    status, message = judge("packages.security_updates_applied", {}, Where(scene))
    assert status is Status.FAIL and "updateinfo" in message, message  # the run happened and judged
    after = _tree(*roots)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    changed = {p for p in changed if not p.startswith("/var/log/") or "dnf" in p or "hawkey" in p}
    assert not changed, sorted(changed)[:20]


def test_a_secret_in_another_cron_job_does_not_change_the_aide_verdict() -> None:
    """The scan redacts secrets from what probes read. A password in an unrelated cron job leaves the AIDE
    schedule judged (the framing survives the changed length); one in the line that runs AIDE makes the
    verdict an error, never a verdict on altered text."""
    from hds_compliance.evidence.redact import redact
    from hds_compliance.model import Capture

    def redacted_verdict(etc: dict[str, str | bytes]) -> tuple[Status, str, list[str]]:
        scene = Scene(root=WORK / f"sem-redact-{len(etc)}", etc=etc)
        spec = REGISTRY["integrity.aide_check_scheduled"]
        raw = collect(list(spec.facts(spec.validate({}))), Where(scene, processes=("cron",)).prefix())
        captures, kinds = {}, []
        for key, fields in raw.items():
            capture = redact(Capture(fact=key, command="(probe)", **fields))
            kinds += capture.redactions
            captures[key] = capture.model_dump(exclude={"fact", "command"})
        status, message = run_case({"check": spec.id, "captures": captures})
        return status, message, kinds

    backup = {"/etc/cron.d/backup": "0 1 * * * root PGPASSWORD=hunter2hunter2 pg_dumpall > /srv/dump.sql\n"}
    status, message, kinds = redacted_verdict(backup)
    assert kinds and status is Status.PASS, message
    aide = {**backup, "/etc/cron.d/aide": "0 5 * * * root AIDE_TOKEN=abcdefgh123 /usr/bin/aide --check\n"}
    status, message, _ = redacted_verdict(aide)
    assert status is Status.ERROR and "redacted" in message, message
