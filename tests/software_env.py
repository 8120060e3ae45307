"""Host states for the software area's tests, built from real programs without touching the machine.

Each builder prepares files under a work directory and returns the path of an *enter* script: run as
``unshare -m <script> sh -s``, it mounts the prepared files over the real paths inside a private mount
namespace (an overlay on /etc, binds elsewhere) and then runs its arguments. The probe's snippets then
run the real apt, dnf, rpm, postconf... against that state, and nothing outside the namespace changes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fact_fixtures import dump_capture

from hds_compliance.collect.probe import follow_ups, new_nonce, parse, render
from hds_compliance.facts import Fact
from hds_compliance.model import Capture


@dataclass
class Scene:
    """What a scene changes: files shown under /etc (overlay), and directories bound over real ones."""

    root: Path
    etc: dict[str, str | bytes] = field(default_factory=dict)
    etc_absent: list[str] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)  # mode of an /etc file of the scene (default 0644)
    binds: dict[str, Path] = field(default_factory=dict)  # real path -> prepared path (files or dirs)
    tmpfs: list[str] = field(default_factory=list)  # real directories hidden behind an empty tmpfs

    def enter_script(self) -> Path:
        """Write the enter script (see the module notes) and return its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        upper, work = self.root / "etc-upper", self.root / "etc-work"
        for d in (upper, work):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        for rel, content in self.etc.items():
            dest = upper / rel.lstrip("/").removeprefix("etc/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
            dest.chmod(self.modes.get(rel, 0o644))
            # A minute old: postfix's tools wait up to two seconds before reading a file modified just now.
            os.utime(dest, (time.time() - 60, time.time() - 60))
        q = shlex.quote
        lines = ["#!/bin/sh", "set -e", "mount --make-rprivate /"]
        for path in self.tmpfs:
            lines.append(f"mount -t tmpfs hds-test {q(path)}")
        if self.etc or self.etc_absent:
            options = q(f"lowerdir=/etc,upperdir={upper},workdir={work}")
            lines.append(f"mount -t overlay hds-test -o {options} /etc")
        lines += [f"rm -rf -- {q(p)}" for p in self.etc_absent]
        for real, prepared in self.binds.items():
            # A path missing on this machine is made inside a tmpfs over its parent (private to the scene).
            make = "mkdir -p" if prepared.is_dir() else "touch"
            parent = os.path.dirname(real)
            lines.append(f"[ -e {q(real)} ] || {{ mount -t tmpfs hds-test {q(parent)}; {make} {q(real)}; }}")
            lines.append(f"mount --bind {q(str(prepared))} {q(real)}")
        lines.append('exec "$@"')
        script = self.root / "enter.sh"
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o755)
        return script

    def enter(self) -> str:
        """The ``--enter`` prefix (tests/facts/record.py) for this scene."""
        return f"unshare -m {self.enter_script()}"


def run_in(scene: Scene, command: str) -> subprocess.CompletedProcess[str]:
    """Run a shell command inside the scene."""
    return subprocess.run(
        ["unshare", "-m", str(scene.enter_script()), "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------------------------- rpm, dnf

_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: hds_compliance test package
License: MIT
BuildArch: noarch
%description
A package built by the hds_compliance tests.
%files
"""


def build_rpm(work: Path, name: str, version: str, release: str = "1") -> Path:
    """Build an empty noarch rpm with rpmbuild; return its path."""
    top = work / "rpmbuild"
    spec = work / f"{name}-{version}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(_SPEC.format(name=name, version=version, release=release))
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--quiet",
            "--define",
            f"_topdir {top}",
            "--define",
            "_rpmdir %{_topdir}/RPMS",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    return top / "RPMS" / "noarch" / f"{name}-{version}-{release}.noarch.rpm"


_UPDATEINFO = """\
<?xml version="1.0" encoding="UTF-8"?>
<updates>
{updates}
</updates>
"""
_UPDATE = """\
  <update from="security@example.org" status="final" type="security" version="2.0">
    <id>{id}</id>
    <title>{name} security update</title>
    <severity>{severity}</severity>
    <issued date="2026-11-20 00:00:00"/>
    <description>A test advisory.</description>
    <pkglist>
      <collection short="test">
        <name>test</name>
        <package name="{name}" version="{version}" release="{release}" epoch="0" arch="noarch">
          <filename>{name}-{version}-{release}.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>"""


@dataclass(frozen=True)
class Advisory:
    """A security advisory for one package version of the test repository."""

    id: str
    name: str
    version: str
    severity: str = "Important"


def dnf_scene(
    work: Path,
    *,
    installed: Iterable[tuple[str, str]],
    available: Iterable[tuple[str, str]],
    advisories: Iterable[Advisory] = (),
    repo_options: str = "gpgcheck=0",
    cached: bool = True,
) -> Scene:
    """A RHEL-like package state for Debian's own dnf: an rpm database, a local repository, dnf's cache.

    ``installed`` go into the rpm database (``--justdb``), ``available`` into a repository built with
    createrepo_c (plus ``advisories`` as updateinfo, added with modifyrepo_c). With ``cached`` the cache
    is filled by a real ``dnf makecache`` run inside the scene, so ``dnf -C`` can read it afterwards.
    """
    shutil.rmtree(work, ignore_errors=True)
    rpms = {(n, v): build_rpm(work / "build", n, v) for n, v in {*installed, *available}}
    repo = work / "repo"
    repo.mkdir(parents=True)
    for key in available:
        shutil.copy(rpms[key], repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True, capture_output=True)
    advisories = list(advisories)
    if advisories:
        updates = "\n".join(_UPDATE.format(**a.__dict__, release="1") for a in advisories)
        info = work / "updateinfo.xml"
        info.write_text(_UPDATEINFO.format(updates=updates))
        subprocess.run(["modifyrepo_c", str(info), str(repo / "repodata")], check=True, capture_output=True)
    rpmdb = work / "rpmdb"
    rpmdb.mkdir()
    subprocess.run(["rpm", "--dbpath", str(rpmdb), "--initdb"], check=True, capture_output=True)
    paths = [str(rpms[key]) for key in installed]
    if paths:
        subprocess.run(
            ["rpm", "--dbpath", str(rpmdb), "-i", "--justdb", "--nodeps", "--nosignature", *paths],
            check=True,
            capture_output=True,
        )
    cache = work / "cache"
    cache.mkdir()
    logs = work / "logs"
    logs.mkdir()
    repo_file = (
        f"[hdstest]\nname=hds_compliance test repository\nbaseurl=file://{repo}\nenabled=1\n{repo_options}\n"
    )
    scene = Scene(
        root=work / "scene",
        etc={"/etc/yum.repos.d/hdstest.repo": repo_file},
        binds={"/var/cache/dnf": cache, os.path.expanduser("~root/.rpmdb"): rpmdb},
    )
    if cached:
        filler = Scene(root=work / "filler", etc=scene.etc, binds={**scene.binds, "/var/log": logs})
        done = run_in(filler, "dnf -q makecache")
        if done.returncode != 0:
            raise RuntimeError(f"dnf makecache failed: {done.stderr}")
    return scene


def dedent(text: str) -> str:
    """Text of a file written inline in a test."""
    return textwrap.dedent(text).lstrip("\n")


# Debian 12's deb822 sources, without and with the security archive (its lists are on this machine).
DEBIAN_MAIN = dedent(
    """
    Types: deb
    URIs: http://deb.debian.org/debian
    Suites: bookworm bookworm-updates
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
    """
)
DEBIAN_SECURITY = dedent(
    """
    Types: deb
    URIs: http://deb.debian.org/debian-security
    Suites: bookworm-security
    Components: main
    {option}
    """
)


# ------------------------------------------------------------------------- probes, processes, networks

WORK = Path("/var/tmp/hds-software-record")


def _run(facts: list[Fact[Any]], argv: list[str]) -> list[Capture]:
    probe = render(facts, new_nonce())
    done = subprocess.run([*argv, "sh", "-s"], input=probe.script.encode(), capture_output=True, timeout=180)
    parsed = parse(
        probe, done.stdout.decode("ascii", "replace"), stderr=done.stderr.decode("utf-8", "replace")
    )
    if parsed.problem:
        raise RuntimeError(f"probe failed: {parsed.problem}\n{done.stderr.decode()[-2000:]}")
    return parsed.captures


def collect(facts: list[Fact[Any]], argv: list[str]) -> dict[str, dict[str, Any]]:
    """Captures of ``facts`` (and their follow-ups) run behind ``argv``, as a case's ``captures``."""
    first = _run(facts, argv)
    more = follow_ups(render(facts, "x"), first)
    second = _run(more, argv) if more else []
    return {c.fact: dump_capture(c) for c in [*first, *second]}


# ----------------------------------------------------------------------------------------------- scenes


@dataclass
class Where:
    """How to enter a host state: a mount scene, process names (PID namespace), a network namespace."""

    scene: Scene | None = None
    processes: tuple[str, ...] = ()
    netns: str | None = None
    argv: list[str] = field(default_factory=list)

    def prefix(self) -> list[str]:
        argv = list(self.argv)
        if self.netns:
            argv += ["ip", "netns", "exec", self.netns]
        unshare = ["unshare", "-m"]
        if self.processes:
            unshare += ["-p", "-f", "--mount-proc"]
        script = self.scene.enter_script() if self.scene else None
        fakes = ""
        if self.processes:
            bindir = WORK / "fakebin"
            bindir.mkdir(parents=True, exist_ok=True)
            for name in self.processes:
                target = bindir / name
                if not target.exists():
                    target.write_bytes(Path("/bin/sleep").read_bytes())
                    target.chmod(0o755)
            # setsid: each fake gets its own session, so the Processes fact does not take it for the probe's.
            fakes = "; ".join(
                f"PATH={bindir} /usr/bin/setsid -f {shlex.quote(n)} infinity" for n in self.processes
            )
        inner = f'{fakes + "; sleep 0.3; " if fakes else ""}exec "$@"'
        if script is not None:
            return [*argv, *unshare, str(script), "sh", "-c", inner, "sh"]
        return [*argv, *unshare, "sh", "-c", inner, "sh"]


_STATUS = {
    "installed": "install ok installed",
    "hold": "hold ok installed",
    "config-files": "deinstall ok config-files",
}


def _stanza(name: str, version: str) -> str:
    """The package's real stanza: dpkg's own when that version is installed here, else the archive's for
    that version, else the archive's candidate with the version replaced (an older install of it)."""
    own = subprocess.run(["dpkg-query", "-s", name], capture_output=True, text=True, check=False).stdout
    if f"\nVersion: {version}\n" in own:
        return own
    for wanted in (f"{name}={version}", name):
        shown = subprocess.run(["apt-cache", "show", wanted], capture_output=True, text=True, check=False)
        if shown.returncode == 0 and shown.stdout.strip():
            stanza = shown.stdout.split("\n\n")[0] + "\n"
            return re.sub(r"(?m)^Version: .*$", f"Version: {version}", stanza)
    return (
        f"Package: {name}\nPriority: optional\nArchitecture: all\nVersion: {version}\nDescription: {name}\n"
    )


def candidate(name: str) -> tuple[str, bool] | None:
    """apt's candidate version of ``name`` and whether a security archive provides it; None if unknown."""
    policy = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True, check=False).stdout
    match = re.search(r"Candidate: (\S+)", policy)
    if match is None or match.group(1) == "(none)":
        return None
    version = match.group(1)
    table = policy.split("Version table:", 1)[-1]
    block = re.search(
        rf"(?ms)^ (?:\*\*\*| {{3}}) {re.escape(version)} .*?(?=^ (?:\*\*\*| {{3}}) \S|\Z)", table
    )
    return version, bool(block and "security" in block.group(0))


_RELATIONS = ("Depends:", "Pre-Depends:", "Recommends:", "Suggests:", "Breaks:", "Conflicts:", "Replaces:")


def dpkg_status(*packages: tuple[str, str, str], relations: bool = True) -> str:
    """A dpkg status file: (name, version, state) with state 'installed', 'config-files' or 'hold'; real
    stanzas (from this machine's dpkg or apt's index), so apt takes equal versions for the same. Without
    ``relations`` the dependencies are dropped, so a few packages make a status apt finds consistent."""
    out = []
    for name, version, state in packages:
        archive_only = ("Status:", "Filename:", "Size:", "MD5sum:", "SHA256:", "Description-md5:")
        dropped = archive_only if relations else (*archive_only, *_RELATIONS)
        lines = [ln for ln in _stanza(name, version).splitlines() if not ln.startswith(dropped)]
        lines.insert(1, f"Status: {_STATUS[state]}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def status_scene(name: str, status: str, etc: dict[str, str | bytes] | None = None, **more: Any) -> Scene:
    root = WORK / name
    root.mkdir(parents=True, exist_ok=True)
    path = root / "status"
    path.write_text(status)
    return Scene(root=root / "scene", etc=etc or {}, binds={"/var/lib/dpkg/status": path, **more})


def journal_scene(name: str, status: str) -> Scene:
    """A dpkg whose last run stopped before merging its journal: ``status`` as the status file, and
    updates/0000 saying telnetd was removed (configuration files left)."""
    updates = WORK / f"{name}-updates"
    updates.mkdir(parents=True, exist_ok=True)
    (updates / "0000").write_text(
        "Package: telnetd\nStatus: deinstall ok config-files\nArchitecture: amd64\n"
        "Version: 0.17+2.4-2+deb12u1\nMaintainer: M <m@example.org>\nDescription: telnet server\n"
    )
    return status_scene(name, status, **{"/var/lib/dpkg/updates": updates})


# --------------------------------------------------------------------------------------------- apt lists

# What `apt-get indextargets` prints for each index target, as tab-separated fields (apt's own names).
TARGET_FIELDS = (
    "CREATED_BY",
    "SOURCESENTRY",
    "TARGET_OF",
    "REPO_URI",
    "RELEASE",
    "COMPONENT",
    "ARCHITECTURE",
    "FILENAME",
)


def apt_targets(scene: Scene, release_info: bool = False) -> list[dict[str, str]]:
    """apt's own index targets in the scene (``apt-get indextargets``; with ``release_info``, only those
    whose list file exists, with the release's TRUSTED and ALLOW_INSECURE too). A field a target does not
    have is empty (apt leaves its ``$(NAME)`` in place)."""
    fields = (*TARGET_FIELDS, "TRUSTED", "ALLOW_INSECURE") if release_info else TARGET_FIELDS
    fmt = "\t".join(f"$({name})" for name in fields)
    flag = "" if release_info else "--no-release-info "
    done = run_in(scene, f"apt-get -o Dir::Cache::pkgcache= indextargets {flag}--format {shlex.quote(fmt)}")
    if done.returncode != 0:
        raise RuntimeError(f"apt-get indextargets failed: {done.stderr}")
    rows = []
    for line in done.stdout.splitlines():
        values = line.split("\t")
        rows.append({k: ("" if v == f"$({k})" else v) for k, v in zip(fields, values, strict=True)})
    return rows


@dataclass
class FakeRelease:
    """A repository as apt's lists hold it after an update: its Release fields and Packages stanzas
    (name, version; architecture amd64), optionally compressed (``gz``, ``xz``)."""

    fields: dict[str, str]
    packages: list[tuple[str, str]] = field(default_factory=list)
    compress: str | None = None
    release: str = "InRelease"


def fill_lists(scene: Scene, lists: Path, repos: dict[str, FakeRelease]) -> None:
    """Write into ``lists`` (bound over the scene's /var/lib/apt/lists) the list files of each sources
    entry (key: its ``file:line``), at the names apt itself gives them (indextargets' FILENAME): the
    Release file beside the first Packages index, one Packages file per index."""
    import gzip
    import lzma

    for target in apt_targets(scene):
        repo = repos.get(target["SOURCESENTRY"])
        if repo is None or target["CREATED_BY"] != "Packages" or target["ARCHITECTURE"] == "all":
            continue
        path = Path(target["FILENAME"].replace("/var/lib/apt/lists/", str(lists) + "/", 1))
        component = target["COMPONENT"].replace("/", "_")
        meta = f"{component}_binary-amd64_Packages" if component else "Packages"
        release = path.with_name(path.name.removesuffix(meta) + repo.release)
        release.write_text("".join(f"{k}: {v}\n" for k, v in repo.fields.items()))
        stanzas = "".join(
            f"Package: {n}\nVersion: {v}\nArchitecture: amd64\nDescription: {n}\n\n" for n, v in repo.packages
        ).encode()
        if repo.compress == "gz":
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(stanzas))
        elif repo.compress == "xz":
            path.with_name(path.name + ".xz").write_bytes(lzma.compress(stanzas))
        else:
            path.write_bytes(stanzas)


def apt_scene(
    name: str,
    sources: dict[str, str],
    *,
    status: str = "",
    etc: dict[str, str | bytes] | None = None,
    lists: Path | None = None,
) -> Scene:
    """A scene whose apt reads only ``sources`` (path -> text; this machine's sources hidden), the given
    dpkg status and other /etc files, and the lists folder ``lists`` (empty by default)."""
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if lists is None:
        lists = root / "lists"
        lists.mkdir()
    (root / "status").write_text(status)
    own = [str(f) for f in Path("/etc/apt/sources.list.d").glob("*")] + ["/etc/apt/sources.list"]
    return Scene(
        root=root / "scene",
        etc={**sources, **(etc or {})},
        etc_absent=[p for p in own if p not in sources],
        binds={"/var/lib/dpkg/status": root / "status", "/var/lib/apt/lists": lists},
    )


def plain_lists(folder: Path, lists: Path = Path("/var/lib/apt/lists")) -> Path:
    """A copy of this machine's lists kept uncompressed, as Ubuntu keeps them: every Release file, and the
    security indexes decompressed by apt's own apt-helper. Returns ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in lists.iterdir():
        if path.is_file() and path.name.endswith("Release"):
            shutil.copy(path, folder / path.name)
        elif path.is_file() and "security" in path.name and "_Packages." in path.name:
            with open(folder / path.name.rsplit(".", 1)[0], "wb") as out:
                subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(path)], stdout=out, check=True)
    return folder


def policy_priorities(scene: Scene) -> dict[tuple[str, str, str], int]:
    """``apt-cache policy``'s priority of each Packages index in the scene, by (URI, suite/component,
    architecture) as apt prints them."""
    done = run_in(scene, "apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= policy")
    if done.returncode != 0:
        raise RuntimeError(f"apt-cache policy failed: {done.stderr}")
    found = {}
    for line in done.stdout.split("Pinned packages:")[0].splitlines():
        match = re.match(r"^ *(-?\d+) (\S+) (\S+) (\S+) Packages$", line)
        if match:
            found[(match.group(2), match.group(3), match.group(4))] = int(match.group(1))
    return found


@contextmanager
def netns(name: str, listeners: list[tuple[str, str, int, str | None, str]]) -> Iterator[str]:
    """A network namespace with lo up and python listeners: (proto, address, port, device, comm)."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs = []
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        # No dummy interface module here: the "public" address sits on lo (sockets not bound to the device).
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "addr", "add", "192.0.2.10/32", "dev", "lo"], check=True
        )
        for proto, address, port, device, comm in listeners:
            family = "socket.AF_INET6" if ":" in address else "socket.AF_INET"
            kind = "socket.SOCK_STREAM" if proto == "tcp" else "socket.SOCK_DGRAM"
            code = (
                f"import socket,time; open('/proc/self/comm','w').write({comm!r}); "
                f"s=socket.socket({family},{kind}); "
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                + (
                    f"s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b{device!r}); "
                    if device
                    else ""
                )
                + ("s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); " if address == "::" else "")
                + f"s.bind(({address!r}, {port})); "
                + ("s.listen(); " if proto == "tcp" else "")
                + "time.sleep(600)"
            )
            procs.append(subprocess.Popen(["ip", "netns", "exec", name, "python3", "-c", code]))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every listener bound (python takes a while to start)
            shown = subprocess.run(
                ["ip", "netns", "exec", name, "ss", "-Htuln"], capture_output=True, text=True
            )
            if len(shown.stdout.splitlines()) >= len(listeners):
                break
            time.sleep(0.1)
        yield name
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


# ----------------------------------------------------------------------------------------- AIDE, ClamAV


def aide_files(work: Path) -> tuple[Path, Path, Path]:
    """A real AIDE database and check report over a tiny tree, made by running aide here (the probe never
    runs AIDE); also the head of that report, as an interrupted run leaves it (no End timestamp).

    Returns (database, report, interrupted report), each alone in its folder.
    """
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "f1").write_text("hello\n")
    conf = work / "aide.conf"
    db, log = work / "lib" / "aide.db", work / "log" / "aide.log"
    db.parent.mkdir(exist_ok=True)
    log.parent.mkdir(exist_ok=True)
    conf.write_text(
        f"database_in=file:{db}\ndatabase_out=file:{db}.new\nreport_url=file:{log}\n{data} p+u+g+s+sha256\n"
    )
    subprocess.run(["aide", "--config", str(conf), "--init"], capture_output=True, check=True)
    (db.parent / "aide.db.new").replace(db)
    (data / "f1").write_text("changed\n")
    subprocess.run(["aide", "--config", str(conf), "--check"], capture_output=True, check=False)
    cut = work / "log-cut" / "aide.log"
    cut.parent.mkdir(exist_ok=True)
    cut.write_text("".join(log.read_text().splitlines(keepends=True)[:6]))
    return db, log, cut


def clam_databases(folder: Path, built: int) -> Path:
    """A folder holding daily.cld and main.cvd whose headers say they were built at ``built`` (epoch).

    Headers are written in ClamAV's CVD format (ClamAV documentation, "CVD format"; sigtool --info reads
    them back): build time, version, signatures, functionality level, md5, signature, builder, stime.
    """
    folder.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%d %b %Y %H-%M +0000", time.gmtime(built))
    for name, version, sigs in (("daily.cld", 27840, 2074960), ("main.cvd", 62, 6647427)):
        header = f"ClamAV-VDB:{when}:{version}:{sigs}:90:{'0' * 32}:{'X' * 86}:raynman:{built}"
        (folder / name).write_bytes(header.encode().ljust(512, b" ") + b"\0" * 512)
    return folder
