"""Throw-away kernel environments for the kernel area's tests: network namespaces and private file trees.

Every sysctl these helpers write lands in a network namespace they created (``hds-kernel-*``), removed on
exit; configuration trees are mounted over /etc/sysctl.d and friends in a private mount namespace that
dies with the command. Nothing changes on the machine itself.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hds_compliance.check import Context, FactUnavailable, HostInfo, Outcome, registry
from hds_compliance.collect.probe import new_nonce, parse, render
from hds_compliance.facts import Fact
from hds_compliance.model import Capture

PREFIX = "hds-kernel-"
_COUNTER = itertools.count()
# Directories systemd-sysctl reads; each gets an empty tmpfs in the private tree, then the test's files.
SYSCTL_TREE_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")


def needs_root() -> None:
    """Skip unless namespaces can be made here (root, iproute2, unshare)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.skip("needs root, iproute2 and util-linux (network and mount namespaces)")


@contextmanager
def namespaces(count: int) -> Iterator[list[str]]:
    """``count`` fresh network namespaces, deleted afterwards."""
    made: list[str] = []
    try:
        for _ in range(count):
            name = f"{PREFIX}{os.getpid()}-{next(_COUNTER)}"
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
        yield made
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def ip(ns: str, *args: str) -> str:
    """``ip -n ns ...``: configure links and routes inside a namespace of ours."""
    assert ns.startswith(PREFIX)
    return subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True).stdout


def in_ns(ns: str, command: str, stdin: str | None = None) -> str:
    """Run ``command`` with sh inside one of our namespaces."""
    assert ns.startswith(PREFIX)
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def write_sysctl(ns: str, path: str, value: int | str) -> None:
    """Write a network sysctl (``net/ipv4/conf/all/rp_filter``) inside one of OUR namespaces only."""
    assert ns.startswith(PREFIX) and path.startswith("net/") and ".." not in path
    in_ns(ns, f"echo {shlex.quote(str(value))} > /proc/sys/{path}")


def counter(ns: str, table: str, name: str) -> int:
    """A counter of /proc/net/netstat or /proc/net/snmp (``TcpExt``, ``IPReversePathFilter``) in ``ns``."""
    source = "/proc/net/snmp" if table in ("Ip", "Icmp", "Tcp", "Udp") else "/proc/net/netstat"
    lines = [line.split() for line in in_ns(ns, f"cat {source}").splitlines() if line.startswith(table + ":")]
    header, values = lines[0], lines[1]
    return int(values[header.index(name)])


def tree_command(files: dict[str, str], command: str, staging: Path) -> list[str]:
    """argv running ``command`` (sh) in a private mount namespace whose sysctl.d directories hold only
    ``files`` (path -> content; content "->TARGET" makes a symbolic link). /etc/sysctl.conf may be given."""
    lines = ["set -e", "mount -t tmpfs hds-kernel /run", "mount -t tmpfs hds-kernel /usr/local/lib"]
    for directory in SYSCTL_TREE_DIRS:
        lines += [f"mkdir -p {directory}", f"mount -t tmpfs hds-kernel {directory}"]
    for number, (path, content) in enumerate(sorted(files.items())):
        if content.startswith("->"):
            lines.append(f"ln -s {shlex.quote(content[2:])} {shlex.quote(path)}")
            continue
        source = staging / f"f{number}"
        source.write_text(content)
        if path == "/etc/sysctl.conf":
            lines.append(f"mount --bind {shlex.quote(str(source))} /etc/sysctl.conf")
        else:
            lines.append(f"cp {shlex.quote(str(source))} {shlex.quote(path)}")
    lines.append(command)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)]


@contextmanager
def staging_dir() -> Iterator[Path]:
    """A scratch directory outside /tmp and /run (which the private trees hide)."""
    path = Path(tempfile.mkdtemp(prefix="hds-kernel-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def collect(facts: Sequence[Fact[Any]], argv: Sequence[str]) -> dict[str, Capture]:
    """Captures of ``facts``: their probe run by ``argv`` (which must run ``sh -s`` on its stdin)."""
    probe = render(list(facts), new_nonce())
    done = subprocess.run(
        list(argv), input=probe.script.encode(), capture_output=True, timeout=60, check=False
    )
    parsed = parse(
        probe, done.stdout.decode("ascii", "replace"), stderr=done.stderr.decode("utf-8", "replace")
    )
    assert parsed.problem is None, (parsed.problem, done.stderr)
    return {c.fact: c for c in parsed.captures}


def evaluate(check_id: str, params: dict[str, Any], captures: dict[str, Capture]) -> Outcome | str:
    """Outcome of a registered check on captures (its declared facts only); the error text if it errors."""
    spec = registry()[check_id]
    validated = spec.validate(params)
    declared = frozenset(f.key for f in spec.facts(validated))
    ctx = Context(HostInfo("lab", "local"), captures, declared=declared)
    try:
        return spec.func(validated, ctx)
    except FactUnavailable as exc:
        return str(exc)
