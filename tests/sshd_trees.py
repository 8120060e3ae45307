"""Real sshd on generated configuration trees: the probe's own sshd facts, in a private mount namespace.

A tree is a set of files that replaces ``/etc/ssh`` (and optionally ``/etc/passwd`` and ``/etc/group``) inside
an ``unshare -m`` namespace, so ``sshd -T`` judges it exactly as on a host, includes and all; nothing on the
machine changes. Both probe rounds run there, the way the collector runs them on a host.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from facts.record import run

from hds_compliance.check import Context, HostInfo, Outcome, registry
from hds_compliance.collect.probe import follow_ups, render
from hds_compliance.facts import Fact
from hds_compliance.facts.sshd import SshdEffectiveConfig, SshdHostKeys
from hds_compliance.model import Capture

SSHD = SshdEffectiveConfig()
HOST_KEYS = SshdHostKeys()
# Debian's pristine sshd_config, as the openssh-server package ships it (before any local edit).
DEBIAN_STOCK = Path("/usr/share/openssh/sshd_config")


def host_key(directory: Path, kind: str = "ed25519", bits: int | None = None, name: str = "") -> Path:
    """A fresh host key pair in ``directory``; returns the private key's path."""
    path = directory / (name or f"ssh_host_{kind}_key")
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "hds-test", "-f", str(path)]
    if bits:
        argv[4:4] = ["-b", str(bits)]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return path


def make_tree(root: Path, files: dict[str, str], keys: tuple[str, ...] = ("ed25519",)) -> Path:
    """An /etc/ssh replacement under ``root`` holding ``files`` (relative paths) and fresh host keys."""
    etc = root / "etc-ssh"
    etc.mkdir(parents=True, exist_ok=True)
    for kind in keys:
        host_key(etc, kind)
    for rel, text in files.items():
        (etc / rel).parent.mkdir(parents=True, exist_ok=True)
        (etc / rel).write_text(text)
    return etc


def enter(etc: Path, passwd: str | None = None, group: str | None = None, extra: str = "") -> str:
    """A command prefix running the probe in a mount namespace where ``etc`` is /etc/ssh."""
    mounts = [f"mount --bind {shlex.quote(str(etc))} /etc/ssh"]
    for name, text in (("passwd", passwd), ("group", group)):
        if text is not None:
            path = etc.parent / name
            path.write_text(Path(f"/etc/{name}").read_text() + text)
            mounts.append(f"mount --bind {shlex.quote(str(path))} /etc/{name}")
    script = " && ".join(mounts) + (f" && {extra}" if extra else "") + ' && exec "$0" "$@"'
    return f"unshare -m sh -c {shlex.quote(script)}"


def collect(prefix: str, facts: list[Fact[Any]] | None = None) -> dict[str, Capture]:
    """Both probe rounds for ``facts`` (the sshd facts by default) behind ``prefix``, by key."""
    facts = facts or [SSHD, HOST_KEYS]
    first = run(facts, prefix)
    more = follow_ups(render(facts, "x"), first)
    return {c.fact: c for c in [*first, *(run(more, prefix) if more else [])]}


def context(captures: dict[str, Capture], host: HostInfo | None = None) -> Context:
    """What a check sees of a host whose probe returned ``captures``."""
    return Context(host=host or HostInfo(name="tree", connector="local"), captures=captures)


def judge(
    check_id: str, captures: dict[str, Capture], host: HostInfo | None = None, **params: Any
) -> Outcome:
    """The verdict of one check on those captures (of ``host``, an anonymous one by default)."""
    spec = registry()[check_id]
    return spec.func(spec.validate(params), context(captures, host))


def have_sshd() -> bool:
    """Whether this machine can run these tests (openssh-server, unshare, root for mounts)."""
    return shutil.which("sshd") is not None and shutil.which("unshare") is not None
