"""The console under a pseudo-terminal and without one, with a host name that tries to drive the terminal.

Without a terminal (CI logs) the output holds no escape code at all; on one, the summary is coloured and a
progress bar counts the hosts; in both, a host-provided name is printed escaped, never as the control
sequence it carries.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("hds-compliance")
LAB_CONTROLS = Path(__file__).parent / "data" / "lab_controls"
FORGED = "web\x1b]0;pwned\x07\ngate PASSED"  # sets the terminal's title, then forges a line


@pytest.fixture
def forged(tmp_path: Path) -> Path:
    """A recorded local scan whose host is renamed to the forged name (results as a scan writes them)."""
    done = subprocess.run(
        [str(EXE), "scan", "--controls", str(LAB_CONTROLS), "--json", "r.json", "-q"],
        cwd=tmp_path,
        capture_output=True,
    )
    assert done.returncode in (0, 1), done.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    data["hosts"][0]["name"] = FORGED
    for verdict in data["verdicts"]:
        verdict["host"] = FORGED
    (tmp_path / "forged.json").write_text(json.dumps(data))
    return tmp_path / "forged.json"


def _in_pty(argv: list[str], env: dict[str, str] | None = None) -> bytes:
    """Run ``argv`` with its stdout and stderr on a pseudo-terminal; everything it wrote there."""
    master, slave = pty.openpty()
    child = subprocess.Popen(argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        out += chunk
    child.wait(timeout=60)
    os.close(master)
    return out


def _escaped(output: str) -> None:
    assert "\x1b]0;pwned" not in output  # the title sequence never reaches the terminal
    # the name, escaped, on the host's own line
    assert "web\\x1b]0;pwned\\x07\\x0agate PASSED: controls" in output


def test_without_a_terminal_there_is_no_escape_code(forged: Path) -> None:
    done = subprocess.run(
        [str(EXE), "evaluate", str(forged), "--controls", str(LAB_CONTROLS)], capture_output=True, text=True
    )
    assert done.returncode in (0, 1)
    assert "\x1b" not in done.stdout + done.stderr
    _escaped(done.stdout)
    assert [line for line in done.stdout.splitlines() if line.startswith("gate ")] == [
        done.stdout.splitlines()[-1]
    ]


def test_on_a_terminal_the_summary_is_coloured_and_names_stay_escaped(forged: Path) -> None:
    out = _in_pty([str(EXE), "evaluate", str(forged), "--controls", str(LAB_CONTROLS)]).decode(
        "utf-8", "replace"
    )
    assert "\x1b[" in out  # colours (SGR)
    assert "\x1b[1;31mgate FAILED" in out or "\x1b[1;32mgate PASSED" in out
    _escaped(out)


def test_no_color_turns_the_colours_off_on_a_terminal(forged: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    out = _in_pty([str(EXE), "evaluate", str(forged), "--controls", str(LAB_CONTROLS)], env).decode()
    assert "\x1b" not in out
    _escaped(out)


def test_on_a_terminal_a_progress_bar_counts_the_hosts(tmp_path: Path) -> None:
    out = _in_pty([str(EXE), "scan", "--controls", str(LAB_CONTROLS), "--json", str(tmp_path / "r.json")])
    text = out.decode("utf-8", "replace")
    assert "probing" in text and "1/1" in text, text[-500:]
    assert "@local" in text and "gate " in text
