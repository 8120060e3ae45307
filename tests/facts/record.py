"""Record a fact fixture: run the fact's own snippet through a real probe, then pin command, output and value.

    python tests/facts/record.py KIND ARG NAME --source "this machine (Debian 12), 2026-12-02"
    python tests/facts/record.py file /etc/login.defs debian12 --source ...
    python tests/facts/record.py sysctl kernel.kptr_restrict this_vm --netns hdsrec  # inside a netns
    python tests/facts/record.py sshd "" lab --enter "unshare -m sh -c '...; exec sh'"  # any wrapper

The snippet runs exactly as the probe would run it (framed, base64, ``LC_ALL=C``), locally with ``sh``, or
under ``--enter`` (a command prefix: ``chroot DIR``, ``ip netns exec NS``, ``ssh host``...). Follow-up facts
(the second round) are collected the same way. The parsed value written into the fixture is what the
parser says today: read it before committing, it is what the test will hold the parser to.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from fact_fixtures import dump_capture, plain  # noqa: E402

from hds_compliance.collect.probe import follow_ups, new_nonce, parse, render  # noqa: E402
from hds_compliance.facts import KINDS, Fact, FactError  # noqa: E402
from hds_compliance.model import Capture  # noqa: E402


def run(facts: list[Fact[Any]], enter: str) -> list[Capture]:
    """The probe for ``facts``, run by sh (behind ``enter``), parsed into captures."""
    probe = render(facts, new_nonce())
    argv = [*shlex.split(enter), "sh", "-s"] if enter else ["sh", "-s"]
    done = subprocess.run(argv, input=probe.script.encode(), capture_output=True, timeout=120, check=False)
    parsed = parse(
        probe, done.stdout.decode("ascii", "replace"), stderr=done.stderr.decode("utf-8", "replace")
    )
    if parsed.problem:
        raise SystemExit(f"probe failed: {parsed.problem}")
    return parsed.captures


def main() -> None:
    """Command line."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("kind", choices=sorted(KINDS))
    cli.add_argument("arg")
    cli.add_argument("name", help="fixture name: tests/facts/<kind>/<name>.yaml")
    cli.add_argument("--source", required=True, help="where and when the output was recorded")
    cli.add_argument("--enter", default="", help="command prefix that enters the target (chroot, netns, ssh)")
    cli.add_argument("--netns", help="shortcut for --enter 'ip netns exec NS'")
    args = cli.parse_args()
    enter = f"ip netns exec {shlex.quote(args.netns)}" if args.netns else args.enter
    fact = KINDS[args.kind](args.arg)
    [capture] = run([fact], enter)
    more = follow_ups(render([fact], "x"), [capture])
    extra = run(more, enter) if more else []
    data: dict[str, Any] = {"arg": args.arg, "source": args.source, "command": fact.script()}
    data["capture"] = dump_capture(capture)
    if extra:
        data["follow_ups"] = {c.fact: dump_capture(c) for c in extra}
    lookup = {c.fact: c for c in extra}
    try:
        data["value"] = plain(fact.parse_with(capture, lookup.get))
    except FactError as exc:
        data["error"] = str(exc)
    out = HERE / args.kind / f"{args.name}.yaml"
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.dump(data, sort_keys=False, allow_unicode=True, width=110))
    print(out)


if __name__ == "__main__":
    main()
