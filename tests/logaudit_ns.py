"""Scenarios for the logging, audit and time facts: files placed over /etc (and /var/log) in a private
mount namespace, where a fact's own snippet runs through a real probe and real programs (rsyslogd -N1,
augenrules, logrotate -d, ls -v) judge the same files. Nothing on the machine changes: each run gets its
own namespace, overlay upper directories live in a temporary directory, and all of it dies with the run.

    python tests/logaudit_ns.py KIND [ARG] --file /etc/rsyslog.d/60.conf=@local.conf --absent /etc/x
prints the capture as YAML, to paste into tests/captures/*.yaml as a recorded output.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "facts"))

from fact_fixtures import dump_capture
from record import run

from hds_compliance.facts import KINDS, Fact
from hds_compliance.model import Capture

Files = Mapping[str, str | bytes | None]  # path -> content, None: the path is hidden


def usable() -> bool:
    """Whether scenarios can run here (root, unshare, overlayfs)."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@contextmanager
def scenario(
    files: Files,
    modes: Mapping[str, int] | None = None,
    overlays: tuple[str, ...] = ("/etc",),
    clear: tuple[str, ...] = (),
    processes: tuple[str, ...] = (),
    chown: Mapping[str, str] | None = None,
    addresses: tuple[str, ...] = (),
    own_pids: bool = False,
) -> Iterator[str]:
    """A command prefix entering a fresh private mount namespace where ``files`` are in place.

    ``clear`` are directories (below an overlay) emptied first; ``modes`` sets modes of files or creates
    directories with a mode; ``processes`` are program names started (copies of sleep) in a fresh PID
    namespace, so that /proc shows them and nothing else of the machine; ``chown`` gives owners
    (``root:adm``); ``addresses`` (``10.20.0.5/24``) are set on a veth interface of a network namespace of
    the scenario's own, which is deleted afterwards. With ``processes`` or ``own_pids`` the scenario has
    its own PID namespace: whatever it starts dies with it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="hds-logaudit-", dir="/var/tmp"))
    netns = f"hds-logaudit-{tmp.name.rsplit('-', 1)[-1]}" if addresses else ""
    try:
        if netns:
            commands = [["ip", "netns", "add", netns], ["ip", "-n", netns, "link", "set", "lo", "up"]]
            commands += [["ip", "-n", netns, "link", "add", "hds0", "type", "veth", "peer", "name", "hds1"]]
            commands += [["ip", "-n", netns, "addr", "add", a, "dev", "hds0"] for a in addresses]
            commands += [["ip", "-n", netns, "link", "set", dev, "up"] for dev in ("hds0", "hds1")]
            for argv in commands:
                subprocess.run(argv, check=True, capture_output=True)
        lines = ["set -e"]
        for number, root in enumerate(overlays):
            upper, work = tmp / f"upper{number}", tmp / f"work{number}"
            upper.mkdir()
            work.mkdir()
            lines.append(
                f"mount -t overlay hds-logaudit -o lowerdir={root},upperdir={upper},workdir={work} "
                f"{shlex.quote(root)}"
            )
        lines += [f"find {shlex.quote(d)} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +" for d in clear]
        for number, (path, content) in enumerate(files.items()):
            if not any(path.startswith(root.rstrip("/") + "/") for root in overlays):
                raise ValueError(f"{path} is outside the overlays {overlays}")
            q = shlex.quote(path)
            lines.append(f"rm -rf -- {q}")
            if content is None:
                continue
            blob = tmp / f"blob{number}"
            blob.write_bytes(content.encode() if isinstance(content, str) else content)
            mode = (modes or {}).get(path, 0o644)
            lines.append(
                f"mkdir -p -- {shlex.quote(os.path.dirname(path))} && cp {blob} {q} && chmod {mode:o} {q}"
            )
        for path, mode in (modes or {}).items():
            if path not in files:
                lines.append(f"mkdir -p -- {shlex.quote(path)} && chmod {mode:o} {shlex.quote(path)}")
        lines += [f"chown {shlex.quote(owner)} {shlex.quote(path)}" for path, owner in (chown or {}).items()]
        if processes:
            (tmp / "bin").mkdir()
            for name in processes:
                shutil.copy2("/bin/sleep", tmp / "bin" / name)
                lines.append(
                    f"(PATH={tmp}/bin:$PATH; exec setsid {shlex.quote(name)} 600) </dev/null >/dev/null "
                    f"2>&1 &"
                )
            names = "|".join(sorted({name[:15] for name in processes}))  # comm keeps 15 bytes
            lines.append(
                f"for i in $(seq 100); do [ $(grep -l -x -E {shlex.quote(names)} /proc/[0-9]*/comm "
                f"2>/dev/null "
                f"| wc -l) -ge {len(processes)} ] && break; sleep 0.02; done"
            )
        script = "\n".join([*lines, 'exec "$0" "$@"'])
        pid = "--pid --fork --mount-proc --kill-child " if processes or own_pids else ""
        enter = f"ip netns exec {netns} " if netns else ""
        yield f"{enter}unshare -m --propagation private {pid}sh -c {shlex.quote(script)}"
    finally:
        if netns:
            subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def collect(facts: list[Fact[Any]], files: Files, **options: Any) -> dict[str, Capture]:
    """Captures of ``facts`` (their own snippets, through a real probe) in a scenario, by key."""
    with scenario(files, **options) as enter:
        return {c.fact: c for c in run(facts, enter)}


def execute(command: str, files: Files, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a real program (``rsyslogd -N1 -f /etc/rsyslog.conf``) in a scenario."""
    with scenario(files, **options) as enter:
        argv = [*shlex.split(enter), "sh", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def main() -> None:
    """Print a fact's capture in a scenario, as YAML."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("kind", choices=sorted(KINDS))
    cli.add_argument("arg", nargs="?", default="")
    cli.add_argument("--file", action="append", default=[], help="PATH=TEXT or PATH=@LOCALFILE")
    cli.add_argument("--absent", action="append", default=[], help="PATH hidden in the scenario")
    cli.add_argument("--overlay", action="append", default=[], help="directory to overlay (default /etc)")
    args = cli.parse_args()
    files: dict[str, str | bytes | None] = {path: None for path in args.absent}
    for item in args.file:
        path, _, value = item.partition("=")
        files[path] = Path(value[1:]).read_bytes() if value.startswith("@") else value
    fact = KINDS[args.kind](args.arg)
    captures = collect([fact], files, overlays=tuple(args.overlay) or ("/etc",))
    print(yaml.dump(dump_capture(captures[fact.key]), sort_keys=False, allow_unicode=True, width=110))


if __name__ == "__main__":
    main()
