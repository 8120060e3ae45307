"""Framed parts (hds_compliance/facts/framed.py) run for real: the marker comes from the kernel's UUID
generator through a shell builtin (no program started), or from od where /proc is missing, and either way
a part's content cannot forge the next header."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hds_compliance.facts import FactError
from hds_compliance.facts.framed import FRAMES_SH, parse_frames

# A part whose content imitates headers with markers of both forms.
FORGED = "@0123456789abcdef x\n@01234567-89ab-cdef-0123-456789abcdef y\n"
SCRIPT = f'C=4096; {FRAMES_SH}; part first "$1"; file "$2"; file /nonexistent'


def _run(tmp_path: Path, wrap: list[str]) -> bytes:
    path = tmp_path / "conf"
    path.write_text("setting = 1\n")
    done = subprocess.run(
        [*wrap, "sh", "-c", SCRIPT, "sh", FORGED, str(path)], capture_output=True, check=True
    )
    return done.stdout


def _check(data: bytes, tmp_path: Path) -> None:
    frames = parse_frames(data, "test")
    assert [(f.name, f.data) for f in frames] == [
        ("first", FORGED.encode()),
        (str(tmp_path / "conf"), b"setting = 1\n"),
    ]


def test_the_marker_is_a_kernel_uuid_read_without_a_program(tmp_path: Path) -> None:
    data = _run(tmp_path, [])
    marker = data.split(b"\n", 1)[0].removeprefix(b"# frames ")
    assert len(marker) == 36 and marker.count(b"-") == 4
    _check(data, tmp_path)
    if shutil.which("strace") is None:
        pytest.skip("needs strace to count programs")
    log = tmp_path / "strace.log"
    strace = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log)]
    subprocess.run([*strace, "sh", "-c", f"C=1; {FRAMES_SH}"], capture_output=True, check=True)
    started = [line for line in log.read_text().splitlines() if 'execve("' in line and "= -1" not in line]
    assert len(started) == 1, started  # the shell itself


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_without_proc_the_marker_comes_from_od(tmp_path: Path) -> None:
    """A chroot or container without /proc: the fallback still draws an unpredictable marker."""
    hide = 'mount -t tmpfs none /proc && exec "$0" "$@"'
    data = _run(tmp_path, ["unshare", "-m", "sh", "-c", hide])
    marker = data.split(b"\n", 1)[0].removeprefix(b"# frames ")
    assert len(marker) == 16 and marker.isalnum()
    _check(data, tmp_path)


def test_a_marker_of_neither_form_is_refused() -> None:
    with pytest.raises(FactError, match="frame marker"):
        parse_frames(b"# frames 0123-4567\n@0123-4567 a\nx\n", "test")


@pytest.mark.parametrize(
    "tail",
    [b"@0123456789abcdef! gone\n@0123456789abcdef ", b"@0123456789abcdef a\nx\n@0123456789abcdef?y\n"],
    ids=["header cut at the end", "marker line that is no header"],
)
def test_a_broken_header_is_an_error_not_content(tail: bytes) -> None:
    """Only the snippet prints the marker: a line holding it that is not a whole header is a broken output."""
    with pytest.raises(FactError, match="malformed part header"):
        parse_frames(b"# frames 0123456789abcdef\n" + tail, "test")


def test_parts_and_unreadable_files_in_any_order() -> None:
    data = (
        b"# frames 0123456789abcdef\n@0123456789abcdef! /etc/a\n@0123456789abcdef b\n\n@0123456789abcdef! c\n"
    )
    assert [(f.name, f.data) for f in parse_frames(data, "test")] == [
        ("/etc/a", None),
        ("b", b""),
        ("c", None),
    ]
