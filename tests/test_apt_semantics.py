"""Verdicts that are true, for the apt facts read without apt's cache: each test builds a host state in a
private mount namespace (sources, lists, preferences, dpkg status shown over the real ones), collects the
apt facts through a real probe, and holds the pure model (hds_compliance/facts/aptlists.py) and the checks
to what apt itself says in the same scene: ``apt-get indextargets`` (entries, list-file names, trust),
``apt-cache policy`` (priorities) and ``apt list --upgradable`` (pending security updates).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fact_fixtures import load_capture
from software_env import (
    WORK,
    FakeRelease,
    Scene,
    Where,
    apt_scene,
    apt_targets,
    collect,
    dedent,
    dpkg_status,
    fill_lists,
    plain_lists,
    policy_priorities,
    run_in,
    status_scene,
)
from test_checks import run_case

from hds_compliance.check import registry
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.facts import Fact
from hds_compliance.facts.aptlists import (
    Release,
    default_release_pin,
    index_priority,
    packages_indexes,
    release_files,
    site,
)
from hds_compliance.facts.packages import AptConfigDump, AptSecurityIndexes, AptSources
from hds_compliance.model import Status

REGISTRY = registry()
LISTS = Path("/var/lib/apt/lists")


@pytest.fixture(scope="module", autouse=True)
def _needs_tools() -> None:
    missing = [t for t in ("unshare", "apt-get", "apt-cache", "dpkg") if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(
            f"needs root and {', '.join(missing) or 'these tools'} (the software area's package list)"
        )


def values(scene: Scene, *facts: Fact[Any]) -> list[Any]:
    """The parsed values of ``facts`` collected by a real probe inside ``scene``."""
    captures = collect(list(facts), Where(scene).prefix())
    return [fact.parse(load_capture(fact.key, captures[fact.key])) for fact in facts]


def judged(check: str, scene: Scene) -> tuple[Status, str]:
    """``check`` collected through a real probe in ``scene`` and evaluated."""
    spec = REGISTRY[check]
    captures = collect(list(spec.facts(spec.validate({}))), Where(scene).prefix())
    return run_case({"check": check, "params": {}, "captures": captures})


# ------------------------------------------------------------------------------------ entries and files

TRICKY = {
    "/etc/apt/sources.list": dedent(
        """
        # a comment, then an entry with options, a '#' inside them and a comment after it
        deb [ arch=amd64 signed-by=/k#1.gpg ] http://one.example/debian bookworm main contrib # tail
        deb-src [ signed-by=/k#1.gpg ] http://one.example/debian bookworm main
        \t deb\thttp://two.example/debian/ bookworm-updates main\t
        #deb http://commented.example/debian bookworm main
        deb [trusted=yes] http://flat.example/repo ./
        deb http://arch.example/$(ARCH)/ sub/
        """
    ),
    "/etc/apt/sources.list.d/deb822.sources": dedent(
        """
        # a paragraph of comments only

        Types: deb deb-src
        URIs: http://three.example/debian
         http://four.example/debian
        Suites: bookworm
        # a comment line inside the stanza
          bookworm-backports
        Components: main

        Types: deb
        URIs: http://disabled.example/debian
        Suites: bookworm
        Components: main
        Enabled: no

        Types: deb
        URIs: http://enabled.example/debian
        Suites: bookworm
        Components: main
        Enabled: maybe
        """
    ),
    "/etc/apt/sources.list.d/under_score:colon-1.list": "deb http://five.example/debian bookworm main\n",
    "/etc/apt/sources.list.d/z.list.save": "deb http://save.example/debian bookworm main\n",
    "/etc/apt/sources.list.d/plus+sign.list": "deb http://plus.example/debian bookworm main\n",
    "/etc/apt/sources.list.d/UPPER.LIST": "deb http://upper.example/debian bookworm main\n",
    "/etc/apt/sources.list.d/trailing.": "deb http://dot.example/debian bookworm main\n",
    "/etc/apt/sources.list.d/noextension": "deb http://noext.example/debian bookworm main\n",
}


def test_entries_are_the_ones_apt_reads() -> None:
    """Tricky sources (options with a '#', tabs, a commented entry, deb-src, a flat repository, $(ARCH),
    deb822 stanzas with two URIs, a continuation line after a comment, ``Enabled: no`` and ``Enabled:
    maybe``, file names apt accepts or ignores): the entries the model reads equal ``apt-get
    indextargets``' (SOURCESENTRY, TARGET_OF, REPO_URI, RELEASE) in the same scene; a grep for ``^deb``
    gets the commented, disabled and ignored ones wrong."""
    scene = apt_scene("apt-entries", TRICKY)
    [sources] = values(scene, AptSources())
    apt = {(t["SOURCESENTRY"], t["TARGET_OF"], t["REPO_URI"], t["RELEASE"]) for t in apt_targets(scene)}
    ours = {(e.ref, e.type, e.uri, "" if e.suite == "/" else e.suite) for e in sources.entries}
    assert ours == apt
    hosts = {e.uri.split("/")[2] for e in sources.entries}
    assert {"disabled.example", "commented.example", "save.example", "plus.example"}.isdisjoint(hosts)
    assert {"upper.example", "dot.example", "noext.example"}.isdisjoint(hosts)
    assert {"enabled.example", "flat.example", "five.example", "four.example"} <= hosts


NAMES = {
    "/etc/apt/sources.list": dedent(
        """
        deb http://mirror.example:8080/debian bookworm main
        deb http://user:pa%20ss@auth.example/debian bookworm-security main
        deb https://under.example/de_bian/ bookworm main non-free-firmware
        deb http://tilde.example/~user/repo//  bookworm~beta+1 main
        deb [ arch=amd64,i386 ] http://arch.example/debian bookworm main
        deb [ arch+=arm64 arch-=all ] http://plus.example/debian bookworm main
        deb http://flat.example/repo ./
        deb http://flat.example/sub dir/
        deb file:/srv/repo bookworm main
        deb http://[::1]:3142/debian bookworm main
        deb http://arch.example/$(ARCH) stable main
        """
    ),
}


def test_list_file_names_are_the_ones_apt_gives() -> None:
    """apt's name for each Packages index and Release file (URItoFileName: scheme, user and password
    dropped, ``_ ~ = @`` %-quoted, ``/`` to ``_``; the suite's ``+ ~`` quoted; flat repositories; ports,
    IPv6, trailing slashes, arch options) equals indextargets' FILENAME in the same scene."""
    scene = apt_scene("apt-names", NAMES)
    sources, config = values(scene, AptSources(), AptConfigDump())
    archs = config.items("APT::Architectures")
    ours = {(e.ref, str(LISTS / i.filename)) for e in sources.entries for i in packages_indexes(e, archs)}
    apt = {(t["SOURCESENTRY"], t["FILENAME"]) for t in apt_targets(scene) if t["CREATED_BY"] == "Packages"}
    assert ours == apt
    for target in apt_targets(scene):
        if target["CREATED_BY"] != "Packages":
            continue
        entry = next(e for e in sources.entries if e.ref == target["SOURCESENTRY"])
        meta = (
            f"{target['COMPONENT']}_binary-{target['ARCHITECTURE']}_Packages"
            if target["COMPONENT"]
            else "Packages"
        )
        base = target["FILENAME"].removesuffix(meta).removeprefix(f"{LISTS}/")
        assert release_files(entry) == (base + "InRelease", base + "Release")


TRUST = {
    "/etc/apt/sources.list": dedent(
        """
        deb [trusted=yes] http://lower.example/debian bookworm main
        deb [Trusted=yes] http://upper.example/debian bookworm main
        deb [allow-insecure=yes] http://insecure.example/debian bookworm main
        deb [trusted=no] http://no.example/debian bookworm main
        """
    ),
    "/etc/apt/sources.list.d/trust.sources": dedent(
        """
        Types: deb
        URIs: http://field.example/debian
        Suites: bookworm
        Components: main
        Trusted: yes

        Types: deb
        URIs: http://field-insecure.example/debian
        Suites: bookworm
        Components: main
        Allow-Insecure: yes
        """
    ),
}


def test_trust_options_count_as_apt_reads_them() -> None:
    """A one-line ``[Trusted=yes]`` (apt's option names are lower-case) and a deb822 ``Allow-Insecure``
    field (apt 2.6 maps no such field) change nothing for apt; ``[trusted=yes]``, deb822 ``Trusted: yes``
    and ``[allow-insecure=yes]`` do. apt's TRUSTED and ALLOW_INSECURE (indextargets, unsigned Release
    files in the lists) decide; the check fails exactly those entries."""
    lists = WORK / "apt-trust-lists"
    shutil.rmtree(lists, ignore_errors=True)
    lists.mkdir(parents=True)
    scene = apt_scene("apt-trust", TRUST, status=dpkg_status(("apt", "2.6.1", "installed")), lists=lists)
    [sources] = values(scene, AptSources())
    fake = FakeRelease({"Origin": "HDS", "Suite": "bookworm"}, release="Release")
    fill_lists(scene, lists, {e.ref: fake for e in sources.entries})
    unsigned = {
        t["REPO_URI"].split("/")[2]
        for t in apt_targets(scene, release_info=True)
        if t["TRUSTED"] == "yes" or t["ALLOW_INSECURE"] == "true"
    }
    assert unsigned == {"lower.example", "insecure.example", "field.example"}
    status, message = judged("packages.apt_sources_authenticated", scene)
    assert status is Status.FAIL
    flagged = {host for host in re.findall(r"\(http://([^/]+)/", message)}
    assert flagged == unsigned, message


# ------------------------------------------------------------------------------------------ priorities

PIN_SOURCES = {
    "/etc/apt/sources.list": "".join(
        f"deb http://{host}/debian {suite} main\n"
        for host, suite in (
            ("sec.example", "stable-security"),
            ("na.example", "experimental"),
            ("bau.example", "backports"),
            ("bauonly.example", "odd"),
            ("other.example", "stable-security"),
            ("label.example", "lts"),
            ("code.example", "next"),
            ("never.example", "nope"),
            ("version.example", "v2"),
            ("stable.example", "stable"),
        )
    )
}
PIN_RELEASES = {
    "sec.example": {"Origin": "HDS", "Label": "HDS-Security", "Suite": "stable-security", "Codename": "s1"},
    "na.example": {"Origin": "HDS", "Label": "HDS", "Suite": "experimental", "NotAutomatic": "yes"},
    "bau.example": {
        "Origin": "HDS",
        "Suite": "backports",
        "NotAutomatic": "yes",
        "ButAutomaticUpgrades": "yes",
    },
    "bauonly.example": {"Origin": "HDS", "Suite": "odd", "ButAutomaticUpgrades": "yes"},
    "other.example": {"Origin": "Other", "Label": "Other-Security", "Suite": "stable-security"},
    "label.example": {"Origin": "HDS", "Label": "HDS-LTS", "Suite": "lts", "Codename": "l1"},
    "code.example": {"Origin": "HDS", "Label": "HDS", "Suite": "next", "Codename": "trixie-security"},
    "never.example": {"Origin": "HDS", "Suite": "nope"},
    "version.example": {"Origin": "HDS", "Suite": "v2", "Version": "12.5"},
    "stable.example": {"Origin": "HDS", "Suite": "stable", "Codename": "bookworm"},
}
PREFERENCES = {
    "/etc/apt/preferences": dedent(
        """
        # generic pins, first match wins
        Package: *
        Pin: origin other.example
        Pin-Priority: 50

        Package: *
        Pin: release l=HDS-L*, c=main
        Pin-Priority: 700

        Package: hds-demo
        Pin: release a=experimental
        Pin-Priority: 1001
        """
    ),
    "/etc/apt/preferences.d/10codename": dedent(
        """
        Package: *
        Pin: release n=/-security$/
        Pin-Priority: -5

        Package: *
        Pin: release v=12.*
        Pin-Priority: 650
        """
    ),
    "/etc/apt/preferences.d/20never": "Package: *\nPin: origin never.example\nPin-Priority: never\n",
    "/etc/apt/preferences.d/30ignored.conf": "Package: *\nPin: release a=backports\nPin-Priority: 999\n",
    "/etc/apt/preferences.d/40later": "Package: *\nPin: release l=HDS-Security\nPin-Priority: 200\n",
    "/etc/apt/apt.conf.d/99release": 'APT::Default-Release "stable";\n',
}


def test_index_priorities_are_apt_cache_policy() -> None:
    """NotAutomatic (1), NotAutomatic with ButAutomaticUpgrades (100), ButAutomaticUpgrades alone,
    APT::Default-Release (990), generic pins by origin, label glob with component, codename regex,
    version prefix, ``never``, a package pin (no effect on an index), a preferences.d file apt ignores
    (``.conf``) and a later pin that loses to an earlier one: each index's priority equals apt-cache
    policy's in the same scene."""
    lists = WORK / "apt-pins-lists"
    shutil.rmtree(lists, ignore_errors=True)
    lists.mkdir(parents=True)
    scene = apt_scene("apt-pins", PIN_SOURCES, etc=dict(PREFERENCES), lists=lists)
    [sources] = values(scene, AptSources())
    packed = {"sec.example": "xz", "other.example": "gz"}  # the probe decompresses them with apt-helper
    by_host = {
        e.ref: FakeRelease(PIN_RELEASES[host], [("hds-demo", "1.1")], packed.get(host))
        for e in sources.entries
        for host in [e.uri.split("/")[2]]
    }
    fill_lists(scene, lists, by_host)
    indexes, config = values(scene, AptSecurityIndexes(), AptConfigDump())
    read = {path.removeprefix(indexes.lists).split("_")[0]: index for path, index in indexes.indexes.items()}
    assert set(read) == {"sec.example", "other.example", "code.example"}  # "security" in label/suite/codename
    assert all(index.stanzas == 1 for index in read.values())
    releases = {
        path.removeprefix(indexes.lists): Release.from_fields(f) for path, f in indexes.releases.items()
    }
    pin = default_release_pin(config.get("APT::Default-Release"), releases.values())
    pins = [pin, *indexes.pins] if pin else indexes.pins
    ours = {}
    for entry in sources.entries:
        release = releases[release_files(entry)[0]]
        for index in packages_indexes(entry, ["amd64"]):
            if index.architecture == "amd64":
                key = (entry.uri.rstrip("/"), f"{entry.suite}/main", "amd64")
                ours[key] = index_priority(release, "main", "amd64", site(entry.uri), pins)[0]
    assert ours == policy_priorities(scene)
    assert sorted(set(ours.values())) == [-32768, -5, 1, 50, 100, 200, 650, 700, 990]


# ---------------------------------------------------------------------------------- pending updates

# Older versions of packages the security archive fixes here, one it does not (bookworm-updates only)
# and one up to date; held or not, the check reports the same.
BEHIND = [
    ("linux-libc-dev", "6.1.0-1", "installed"),
    ("zlib1g", "1:1.2.13.dfsg-1", "hold"),
    ("libssl3", "3.0.9-1", "installed"),
    ("distro-info-data", "0.58", "installed"),
    ("tzdata", "2024a-0+deb12u1", "installed"),
]


def _needs_security_lists() -> None:
    if not any("security" in p.name and p.name.endswith("Release") for p in LISTS.iterdir()):
        pytest.skip("this machine's apt lists hold no security archive (run apt-get update)")


def _upgradable_from_security(scene: Scene) -> set[str]:
    """Packages ``apt list --upgradable`` shows with a security suite for their candidate."""
    done = run_in(scene, "apt -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= list --upgradable")
    found = set()
    for line in done.stdout.splitlines():
        match = re.match(r"^([^/\s]+)/(\S+) ", line)
        if match and "security" in match.group(2):
            found.add(match.group(1))
    return found


def _reported(message: str) -> set[str]:
    return set(re.findall(r"(?:: |, )([a-z0-9][a-z0-9+.-]*) \S+ -> ", message))


def test_pending_security_updates_are_what_apt_upgrades_from_security() -> None:
    """With older versions in dpkg's status (one of them held), the packages the check reports are
    exactly those ``apt list --upgradable`` shows from a security suite (no pins here): found from the
    security index alone, without apt's cache."""
    _needs_security_lists()
    scene = status_scene("apt-judge-behind", dpkg_status(*BEHIND, relations=False))
    apt = _upgradable_from_security(scene)
    if not apt:
        pytest.skip("apt's lists here hold no security update for these packages")
    status, message = judged("packages.security_updates_applied", scene)
    assert status is Status.FAIL
    assert _reported(message) == apt, message


def test_uncompressed_lists_give_the_same_answer() -> None:
    """Lists kept uncompressed (Ubuntu's default), made here from this machine's lz4 lists: read as plain
    files by the probe, the same fixes are reported, and apt agrees."""
    _needs_security_lists()
    plain = plain_lists(WORK / "apt-plain-lists")
    status_text = dpkg_status(*BEHIND, relations=False)
    scene = status_scene("apt-judge-plain", status_text, None, **{"/var/lib/apt/lists": plain})
    compressed = judged("packages.security_updates_applied", status_scene("apt-judge-lz4", status_text))
    uncompressed = judged("packages.security_updates_applied", scene)
    assert uncompressed == compressed
    assert _reported(uncompressed[1]) == _upgradable_from_security(scene)


def test_a_security_archive_never_fetched_is_named() -> None:
    """Sources naming a security archive whose index was never fetched (no list file): apt reads nothing
    from it (indextargets with release info lists no target), and the check fails naming the entry
    instead of saying the sources have none."""
    sources = dedent(
        """
        deb http://deb.debian.org/debian bookworm main
        deb http://security.example.org/debian-security bookworm-security main
        """
    )
    scene = status_scene(
        "apt-never", dpkg_status(*BEHIND, relations=False), {"/etc/apt/sources.list.d/debian.sources": ""}
    )
    scene.etc["/etc/apt/sources.list"] = sources
    assert not [t for t in apt_targets(scene, release_info=True) if "security.example" in t["REPO_URI"]]
    status, message = judged("packages.security_updates_applied", scene)
    assert status is Status.FAIL
    assert "security.example.org/debian-security/ bookworm-security (/etc/apt/sources.list:2)" in message


def test_security_pinned_below_installed_packages_fails() -> None:
    """A generic pin at 50 on the security archive (apt-cache policy shows 50: apt never upgrades from
    it) fails the check, naming the pin; the same host without the pin reports its fixes."""
    _needs_security_lists()
    pin = "Package: *\nPin: release l=Debian-Security\nPin-Priority: 50\n"
    scene = status_scene(
        "apt-pinned", dpkg_status(*BEHIND, relations=False), {"/etc/apt/preferences.d/security": pin}
    )
    assert 50 in {p for (uri, _, _), p in policy_priorities(scene).items() if "security" in uri}
    status, message = judged("packages.security_updates_applied", scene)
    assert status is Status.FAIL
    assert "pinned below installed packages" in message and "preferences.d/security record 1" in message


def _random_index(rng: random.Random, frame: str, packages: list[str]) -> str:
    """Lines of a Packages index as the join reads them, with what a record-wise reading could get wrong:
    every field, fields given twice, continuation lines, blank lines of blanks and CRs, several blank lines
    in a row, and lines that start like a frame marker."""
    lines = rng.choice([[], [""], [" "], ["", ""]])
    for _ in range(rng.randint(0, 12)):
        lines += [
            rng.choice(
                [f"Package: {rng.choice(packages)}", f"Package:{rng.choice(packages)}\r", "Priority: x"]
            ),
            rng.choice(
                ["Architecture: amd64", "Architecture: all", "Architecture:\tamd64 ", "Pre-Depends: a"]
            ),
            rng.choice(["Version: 1.0", "Version: 2.0-1", "Version:3", "Vendor: z"]),
            *rng.sample(
                [
                    "Description: d",
                    " continued",
                    "\tmore",
                    "Filename: p",
                    "SHA256: 00",
                    f"Package: {rng.choice(packages)}",
                    "Version: 2.0-1",
                    "Architecture: i386",
                    f"{frame[:5]} half a marker",
                    f" {frame} a marker after a blank",
                    "@x",
                    "\x0bx",
                ],
                rng.randint(0, 5),
            ),
            *rng.choice([[""], [" "], ["\t"], ["\r"], [" \t\r"], ["", ""], ["", " ", ""]]),
        ]
    return "\n".join(lines) + rng.choice(["\n", "", "\n\n"])


def _random_status(rng: random.Random, packages: list[str]) -> str:
    """A dpkg status as the join reads it: installed, removed and purged packages, two architectures, a
    field given twice, stanzas ended by lines of blanks."""
    stanzas = []
    for name in rng.sample(packages, rng.randint(1, len(packages))):
        lines = [
            f"Package: {name}",
            "Status: install ok " + rng.choice(["installed", "installed", "config-files", "not-installed"]),
            *rng.sample(["Priority: optional", "Description: d", " long text", " ."], rng.randint(0, 4)),
            "Architecture: " + rng.choice(["amd64", "amd64", "i386"]),
            "Version: " + rng.choice(["1.0", "2.0-1", "3"]),
        ]
        if rng.random() < 0.2:
            lines.append("Version: 2.0-1")
        stanzas.append("\n".join(lines) + "\n" + rng.choice(["\n", " \n", "\r\n", "\n\n"]))
    return "".join(stanzas)


def _awk_fields(line: str) -> list[str]:
    """awk's default field splitting (blanks, tabs and newlines only)."""
    return [f for f in re.split(r"[ \t\n]+", line) if f]


def _join_model(frame: str, status: str, stream: str, plain: list[tuple[str, str]]) -> tuple[int, str]:
    """The join's rules, line by line, as its comment states them: a stanza ends at a line of blanks, the
    last line of a field counts, frame markers open and close the indexes read from stdin, each plain file
    is an index. Exit code and output."""

    def val(line: str) -> str:
        return re.sub(r"[ \t\r]+\Z", "", re.sub(r"\A[^:]*:[ \t]*", "", line))

    def blank(line: str) -> bool:
        return re.fullmatch(r"[ \t\r]*", line) is not None

    out: list[str] = []
    inst: dict[tuple[str, str], str] = {}
    installed = 0
    fields: dict[str, str] = {}
    for line in [*status.split("\n")[: -1 if status.endswith("\n") else None], ""]:
        if blank(line):
            if fields.get("Package") and not re.search(
                r"(not-installed|config-files)\Z", fields.get("Status", "")
            ):
                inst[fields["Package"], fields.get("Architecture", "")] = fields.get("Version", "")
                installed += 1
            fields = {}
        elif (name := line.split(":", 1)[0]) in ("Package", "Status", "Architecture", "Version"):
            fields[name] = val(line)
    out.append(f"N\t{installed}")
    state: dict[str, Any] = {"cur": "", "ids": 0, "open": False, "bad": False, "n": {}, "m": {}}
    stanza: dict[str, str] = {}

    def close() -> None:
        package, cur = stanza.get("Package", ""), state["cur"]
        if package and cur:
            state["n"][cur] = state["n"].get(cur, 0) + 1
            key = (package, stanza.get("Architecture", ""))
            if key in inst:
                state["m"][cur] = state["m"].get(cur, 0) + 1
                if inst[key] != stanza.get("Version", ""):
                    row = (state["ids"], package, key[1], stanza.get("Version", ""), inst[key])
                    out.append("P\t" + "\t".join(map(str, row)))
        stanza.clear()

    def finish() -> None:
        close()
        if state["cur"]:
            cur = state["cur"]
            out.append(f"I\t{state['ids']}\t{cur}\t{state['n'].get(cur, 0)}\t{state['m'].get(cur, 0)}")
        state["cur"] = ""

    def lines_of(text: str) -> list[str]:
        return text.split("\n")[: -1 if text.endswith("\n") else None] if text else []

    sources = [("-", lines_of(stream))] + [(name, lines_of(text)) for name, text in plain]
    for name, lines in sources:
        for number, line in enumerate(lines, 1):
            words = _awk_fields(line)
            if name == "-" and words and words[0] == frame:
                if len(words) > 1 and words[1] == ".":
                    close()
                    state["bad"] |= not state["cur"]
                    finish()
                    state["open"] = False
                else:
                    state["bad"] |= state["open"]
                    finish()
                    state["cur"], state["open"] = line[len(frame) + 1 :], True
                    state["ids"] += 1
                continue
            if name != "-" and number == 1:
                state["bad"] |= state["open"]
                finish()
                state["cur"] = name
                state["ids"] += 1
            field = line.split(":", 1)[0]
            if field in ("Package", "Architecture", "Version") and ":" in line:
                stanza[field] = val(line)
            elif blank(line):
                close()
    if state["bad"] or state["open"]:
        return 1, "".join(f"{line}\n" for line in out)
    finish()
    return 0, "".join(f"{line}\n" for line in out)


def _join(frame: str, status: Path, stream: str, plain: list[Path]) -> tuple[int, str, str]:
    import subprocess

    from hds_compliance.facts.packages import _JOIN_AWK

    argv = ["awk", "-v", f"F={frame}", "-v", f"T={status}", _JOIN_AWK, "-", *map(str, plain)]
    done = subprocess.run(argv, input=stream.encode("latin-1"), capture_output=True, check=False)
    return done.returncode, done.stdout.decode("latin-1"), done.stderr.decode("latin-1")


def test_the_join_follows_its_line_rules_on_random_indexes() -> None:
    """The apt-indexes join reads whole stanzas as records and finds fields in them: on random indexes
    (stdin between frame markers, plain files) and random dpkg statuses, it prints exactly what the line
    rules it states give, computed here line by line; a cut stream fails with its message."""
    rng = random.Random(7)
    frame, packages = "499b07f3310907796c52a02f", ["a", "b", "c", "d e"]
    for case in range(300):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            status = _random_status(rng, packages)
            (root / "status").write_text(status)
            plain = [root / f"plain{i}" for i in range(rng.randint(0, 2))]
            for path in plain:
                path.write_text(rng.choice(["X-First: line\n", ""]) + _random_index(rng, frame, packages))
            stream = "".join(
                f"\n{frame} /lists/idx{i}\n{_random_index(rng, frame, packages)}\n{frame} .\n"
                for i in range(rng.randint(0, 2))
            )
            if rng.random() < 0.1:  # cut short: a marker never closed
                stream += f"\n{frame} /lists/cut\nPackage: a\n"
            code, out, err = _join(frame, root / "status", stream, plain)
            texts = [(str(path), path.read_text()) for path in plain if path.stat().st_size]
            expected = _join_model(frame, status, stream, texts)
            # on a cut stream the snippet drops the output (exit 1): only the code and message count
            assert (code, out if code == 0 else "") == (expected[0], expected[1] if code == 0 else ""), (
                case,
                status,
                stream,
                texts,
            )
            assert ("an index was cut short" in err) == (code == 1)


def test_the_join_of_this_machines_lists_follows_its_line_rules() -> None:
    """This machine's dpkg status and security indexes (as the probe streams them, decompressed by
    apt-helper): the same output as the line rules give."""
    import subprocess

    indexes = sorted(LISTS.glob("*security*Packages*"))
    status = Path("/var/lib/dpkg/status")
    if not indexes or not status.is_file():
        pytest.skip("no security index in apt's lists here")
    frame = "0f3c9a5e77d1b2c4a6e8f0a1"
    stream = ""
    for index in indexes:
        data = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", str(index)], capture_output=True, check=True
        ).stdout.decode("latin-1")
        stream += f"\n{frame} {index}\n{data}\n{frame} .\n"
    code, out, _ = _join(frame, status, stream, [])
    assert code == 0 and out.count("\nI\t") == len(indexes)
    assert (code, out) == _join_model(frame, status.read_text(encoding="latin-1"), stream, [])


# ---------------------------------------------------------------------------------- one apt-config run

_JOINT_CASES = {
    "this machine": {},
    "directories moved": {
        "/etc/apt/apt.conf.d/50moved": 'Dir::Etc::sourceparts "parts.d";\nDir::Etc::preferences "prefs";\n',
        "/etc/apt/parts.d/a.list": "deb http://moved.example/debian bookworm main\n",
    },
    "a configuration apt refuses": {"/etc/apt/apt.conf.d/99broken": 'APT::Broken "unterminated;\n'},
}


def _unframed(capture: dict[str, Any]) -> dict[str, Any]:
    """A capture with its frame marker (drawn from the probe's nonce) written as F."""
    stdout = capture["stdout"]
    first = stdout.split("\n", 1)[0]
    marker = first.removeprefix("# frames ") if first.startswith("# frames ") else None
    return {**capture, "stdout": stdout.replace(marker, "F") if marker else stdout}


@pytest.mark.parametrize("case", list(_JOINT_CASES))
def test_one_apt_config_run_gives_each_fact_what_its_own_snippet_gives(case: str) -> None:
    """In a probe, the security indexes and the sources share one section and ONE apt-config run: each
    fact gets the output its own snippet prints alone, also where apt's directories are moved, and where
    apt refuses its configuration (each fact then fails as alone)."""
    facts: list[Fact[Any]] = [AptSecurityIndexes(), AptSources()]
    assert [s.joint for s in render(facts, new_nonce()).sections] == [True]
    scene = Scene(root=WORK / f"apt-joint-{list(_JOINT_CASES).index(case)}", etc=dict(_JOINT_CASES[case]))
    joint = collect(facts, Where(scene).prefix())
    alone = {key: c for fact in facts for key, c in collect([fact], Where(scene).prefix()).items()}
    for fact in facts:  # the section's stderr goes to both facts: what each said alone is in it
        mine, own = _unframed(joint[fact.key]), _unframed(alone[fact.key])
        said, own_said = mine.pop("stderr", ""), own.pop("stderr", "")
        assert mine == own, fact.key
        assert set(own_said.splitlines()) <= set(said.splitlines()), (said, own_said)
    if case == "a configuration apt refuses":
        assert all(joint[f.key]["exit_code"] == 1 for f in facts)
    else:
        entries = AptSources().parse(load_capture("apt-sources", joint["apt-sources"]))
        assert entries is not None and entries.entries
        if case == "directories moved":
            assert "/etc/apt/parts.d/a.list" in entries.files
