"""Host states for the software area's tests, built from real programs without touching the machine.

Each builder prepares files under a work directory and returns the path of an *enter* script: run as
``unshare -m <script> sh -s``, it mounts the prepared files over the real paths inside a private mount
namespace (an overlay on /etc, binds elsewhere) and then runs its arguments. The probe's snippets then
run the real apt, dnf, rpm, postconf... against that state, and nothing outside the namespace changes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


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
        q = shlex.quote
        lines = ["#!/bin/sh", "set -e", "mount --make-rprivate /"]
        for path in self.tmpfs:
            lines.append(f"mount -t tmpfs hds-test {q(path)}")
        if self.etc or self.etc_absent:
            lines.append(f"mount -t overlay hds-test -o lowerdir=/etc,upperdir={upper},workdir={work} /etc")
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
