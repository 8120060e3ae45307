"""The console for a person or a CI log: plain lines without a terminal, colours and a progress bar on one.

Without a terminal (CI), or with ``NO_COLOR`` set or ``TERM=dumb``, nothing but the summary's plain text is
written: no escape code. On a terminal, the summary's lines are coloured by what they say (a failing
control red, an error magenta, the gate's line green or red) and, while hosts are probed, a progress bar on
standard error counts them and names the last one done. Host-provided text has already been escaped by
:func:`hds_compliance.report.printable`, so colouring never lets a host drive the terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from hds_compliance.model import HostRecord
from hds_compliance.report import printable

# The first pattern a line matches gives its style.
_STYLES = (
    (re.compile(r"^  FAIL "), "red"),
    (re.compile(r"^  ERROR "), "magenta"),
    (re.compile(r"^\S.*: NOT PROBED: "), "bold yellow"),
    (re.compile(r"^gate PASSED"), "bold green"),
    (re.compile(r"^gate FAILED"), "bold red"),
    (re.compile(r"^policy: "), "yellow"),
    (re.compile(r"^  not reviewed "), "cyan"),
    (re.compile(r"^        fix: "), "dim"),
)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that takes colours (``NO_COLOR`` and ``TERM=dumb`` say no)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def write(stream: TextIO, text: str) -> None:
    """The summary on ``stream``: as is without a terminal, coloured line by line on one."""
    if not is_terminal(stream):
        stream.write(text)
        stream.flush()
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    for line in text.splitlines():
        style = next((s for pattern, s in _STYLES if pattern.search(line)), "")
        console.print(Text(line, style=style), soft_wrap=True)
    stream.flush()


@contextmanager
def progress(stream: TextIO, hosts: int) -> Iterator[Callable[[HostRecord], None] | None]:
    """A live bar on ``stream`` counting hosts as they are done (``None`` without a terminal: CI logs get
    no bar and no escape code). It disappears when the scan ends, leaving the summary alone."""
    if hosts == 0 or not is_terminal(stream):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    columns = (
        TextColumn("probing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", markup=False),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("hosts", total=hosts, last="")

        def done(record: HostRecord) -> None:
            state = "" if record.probe.connected and record.probe.complete else " (error)"
            bar.update(task, advance=1, last=printable(record.name)[:40] + state)

        yield done
