"""The file-reading primitive (hds_compliance/facts/reads.py) run for real: ONE stat and ONE head read any
number of files, head's output is cut at headers no content can forge, a file that changes between the two
programs is an error naming it, and a redaction inside one file leaves the others readable.

The shells are dash (/bin/sh here), busybox sh and bash in POSIX mode; the programs GNU coreutils' and
busybox's (Debian package ``busybox``; those cases are skipped without it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fact_fixtures import plain
from kernel_lab import collect

from hds_compliance.evidence.redact import redact
from hds_compliance.facts import KINDS, FactError, FilesMatching
from hds_compliance.facts.reads import READS_SH, FileRead, parse_listing
from hds_compliance.model import REDACTION_MARK, Capture

CAP = 1 << 20
BUSYBOX = shutil.which("busybox")
SHELLS = [["dash"], ["bash", "--posix"], *([[BUSYBOX, "sh"]] if BUSYBOX else [])]
NAMES = ["plain.conf", "with space.conf", "new\nline", "-dash", "empty", "café.conf", "binary"]


def rd_output(files: dict[str, bytes], marker: str, limit: int = CAP + 1, stat: str = "") -> bytes:
    """What ``rd`` prints for ``files`` (path -> content) with ``marker``: the format the parser reads,
    for unit tests that need a listing without running a shell (it is checked against the real rd below).
    ``stat`` is what the stat format adds after the size (" 440 0 0")."""
    names = b"".join(b"N %d %s\n" % (len(p.encode()), p.encode()) for p in files)
    sizes = "\n".join(f"{len(data)}{stat}" for data in files.values()).encode()
    head = f"{limit} {marker}".encode()
    out = names + b"S %d %s\n" % (len(sizes), sizes) + b"H %d %s\n" % (len(head), head)
    for i, (path, data) in enumerate(files.items()):
        directory, _, base = path.rpartition("/")
        out += (b"\n" if i else b"") + f"==> {directory}/{marker}{base} <==\n".encode() + data[:limit]
    return out


def _tree(tmp_path: Path) -> list[str]:
    contents = {
        "plain.conf": b"PermitRootLogin no\n",
        "with space.conf": b"no newline at the end",
        "new\nline": b"n\nl",
        "-dash": b"starts like an option\n",
        "empty": b"",
        "café.conf": "é\n".encode(),
        "binary": b"\x00\xff\xfe\n==> fake <==\n",
    }
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    return [str(tmp_path / name) for name in NAMES]


def rd(paths: list[str], shell: list[str] | None = None, path_env: str = "", fmt: str = "%s") -> Capture:
    """``rd FORMAT PATH...`` run by ``shell`` as the probe runs it (C, LC_ALL=C), as a capture."""
    script = f"C={CAP + 1}; {READS_SH}; rd '{fmt}' \"$@\""
    env = {
        **os.environ,
        "LC_ALL": "C",
        "PATH": f"{path_env}:{os.environ['PATH']}" if path_env else os.environ["PATH"],
    }
    done = subprocess.run([*(shell or ["sh"]), "-c", script, "sh", *paths], capture_output=True, env=env)
    return Capture.from_bytes(
        "t", "(test)", done.stdout, exit_code=done.returncode, stderr=done.stderr.decode()
    )


def _programs(paths: list[str]) -> list[str]:
    """The programs ``rd`` starts (strace), the shell itself left out."""
    log = Path(paths[0]).parent / "strace.log"
    script = f'C={CAP + 1}; {READS_SH}; rd %s "$@"'
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log), "sh", "-c", script, "sh", *paths],
        capture_output=True,
        check=True,
    )
    lines = [line for line in log.read_text().splitlines()[1:] if 'execve("' in line and "= -1" not in line]
    return [line.split('execve("', 1)[1].split('"', 1)[0].rsplit("/", 1)[-1] for line in lines]


@pytest.mark.parametrize("shell", SHELLS, ids=[" ".join(Path(s).name for s in shell) for shell in SHELLS])
def test_every_file_comes_back_byte_for_byte(tmp_path: Path, shell: list[str]) -> None:
    """Blanks, newlines, a leading dash, UTF-8 and binary bytes in names or contents, an empty file."""
    paths = _tree(tmp_path)
    capture = rd(paths, shell, fmt="%s %a")
    files = parse_listing(capture, "test", "").files
    assert [f.path for f in files] == paths
    assert [f.data for f in files] == [Path(p).read_bytes() for p in paths]
    assert [f.size for f in files] == [Path(p).stat().st_size for p in paths]
    assert all(f.stat == ("644",) for f in files)


def test_busybox_head_and_stat_print_what_the_parser_reads(tmp_path: Path) -> None:
    """busybox's head prints the same headers as GNU's (names as given, a newline before the second and
    later ones) and its stat -L -c the same sizes: a host without coreutils reads the same files."""
    if BUSYBOX is None:
        pytest.skip("needs busybox (Debian package busybox)")
    applets = tmp_path / "applets"
    applets.mkdir()
    for name in ("head", "stat", "od"):
        (applets / name).symlink_to(BUSYBOX)
    paths = _tree(tmp_path)
    files = parse_listing(rd(paths, [BUSYBOX, "sh"], path_env=str(applets)), "test", "").files
    assert [f.data for f in files] == [Path(p).read_bytes() for p in paths]


def test_gnu_head_prints_headers_as_the_parser_expects(tmp_path: Path) -> None:
    """The format rd relies on: with -v, '==> NAME <==' before each file, NAME exactly as given, the second
    and later headers after a newline of head's own; a file head cannot open gets no header at all."""
    paths = _tree(tmp_path)[:3]
    done = subprocess.run(["head", "-v", "-c", "100", "--", paths[0], str(tmp_path / "missing"), *paths[1:]],
                          capture_output=True, check=False)  # fmt: skip
    expected = b"".join(
        (b"\n" if i else b"") + b"==> " + p.encode() + b" <==\n" + Path(p).read_bytes()
        for i, p in enumerate(paths)
    )
    assert done.stdout == expected
    assert done.returncode == 1 and b"missing" in done.stderr


def test_the_output_model_is_what_rd_prints(tmp_path: Path) -> None:
    """rd_output (used by unit tests that build a listing) is byte for byte what the real rd prints."""
    paths = _tree(tmp_path)
    capture = rd(paths)
    data = capture.stdout_bytes()
    marker = data.split(b"\nH ", 1)[1].split(b"\n", 1)[0].split(b" ")[2].decode()
    assert data == rd_output({p: Path(p).read_bytes() for p in paths}, marker)


def test_two_programs_read_any_number_of_files(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    few = _tree(tmp_path)[:2]
    many = [str(tmp_path / f"f{i}") for i in range(60)]
    for path in many:
        Path(path).write_text(path)
    assert _programs(few) == _programs(many) == ["stat", "head"]


def test_no_file_no_program_and_no_output(tmp_path: Path) -> None:
    capture = rd([])
    assert capture.stdout == "" and capture.exit_code == 0
    assert parse_listing(capture, "test", "").files == ()


def test_contents_cannot_forge_a_boundary(tmp_path: Path) -> None:
    """A file holding another run's whole output, headers of the next file without the marker and a
    marker-like run of segments: its content comes back as it is, and so does the next file."""
    paths = _tree(tmp_path)[:2]
    earlier = rd(paths).stdout_bytes()
    forged = tmp_path / "forged"
    forged.write_bytes(earlier + f"\n==> {paths[1]} <==\nPermitRootLogin yes\n".encode())
    files = parse_listing(rd([str(forged), paths[1]]), "test", "").files
    assert [f.data for f in files] == [forged.read_bytes(), Path(paths[1]).read_bytes()]


def _wrapped_stat(tmp_path: Path, after: str) -> str:
    """A directory with a ``stat`` that runs the real one, then ``after`` (sh): a change between rd's two
    programs, made for real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "stat"
    wrapper.write_text(f'#!/bin/sh\n{shutil.which("stat")} "$@"; rc=$?\n{after}\nexit $rc\n')
    wrapper.chmod(0o755)
    return str(bin_dir)


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ("printf 'PermitRootLogin yes\\n' >> '{0}'", 0),  # the first file grew
        (": > '{0}'", 0),  # the first file was emptied
        ("printf 'more' >> '{1}'", 1),  # the last file grew: nothing after it to check against but the size
        ("rm -f '{1}'", 1),  # the last file vanished: head has no header for it, only a message
        ("rm -f '{0}'", 0),
    ],
)
def test_a_file_that_changed_between_stat_and_head_is_an_error_naming_it(
    tmp_path: Path, change: str, culprit: int
) -> None:
    paths = _tree(tmp_path)[:2]
    capture = rd(paths, path_env=_wrapped_stat(tmp_path, change.format(*paths)))
    with pytest.raises(FactError, match=re.escape(paths[culprit])) as raised:
        parse_listing(capture, "test", "")
    assert "changed while it was read" in str(raised.value) or "No such file" in str(raised.value)


def test_a_redaction_inside_one_file_leaves_the_others_readable(tmp_path: Path) -> None:
    """The scan replaces a secret by a shorter mark: that file is not held to its size, the headers still
    delimit it, and the files around it are intact (a cron job carrying a password, say)."""
    paths = _tree(tmp_path)[:3]
    Path(paths[1]).write_text("0 3 * * * root backup --password=hunter2hunter2 /srv\n")
    capture = redact(rd(paths))
    assert capture.redactions
    files = parse_listing(capture, "test", "").files
    assert files[0].data == Path(paths[0]).read_bytes() and files[2].data == Path(paths[2]).read_bytes()
    assert REDACTION_MARK.encode() in files[1].data and b"hunter2" not in files[1].data


def test_a_file_larger_than_the_cap_is_known_as_cut(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    script = f'C=1000; {READS_SH}; rd %s "$@"'
    done = subprocess.run(["sh", "-c", script, "sh", str(big)], capture_output=True, check=True)
    [read] = parse_listing(Capture.from_bytes("t", "(test)", done.stdout, exit_code=0), "test", "").files
    assert read == FileRead(str(big), 5000, b"x" * 1000) and not read.complete


@pytest.mark.parametrize(
    "output",
    [
        b"N 5 /a/b\nH 9 1 ////./.\n",  # a name shorter than its length
        b"X 3 abc\n",  # a record of a tag the snippet does not print
        b"N 4 /a/b\n",  # names, then nothing read
        b"N 4 /a/b\nS 1 3\nH 4 1000\n==> /a/b <==\nabc",  # no marker
    ],
)
def test_malformed_output_is_an_error(output: bytes) -> None:
    with pytest.raises(FactError):
        parse_listing(Capture.from_bytes("t", "(test)", output, exit_code=0), "test", "")


def test_every_file_reading_fact_reads_the_same_with_busybox() -> None:
    """The facts built on rd, run by busybox sh with busybox's head, stat, od, awk, grep and sort bound over
    the machine's (a private mount namespace): the same values as with dash, coreutils and mawk."""
    if BUSYBOX is None or os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root, unshare and busybox (Debian package busybox)")
    kinds = (
        "rsyslog-config",
        "log-logrotate-config",
        "audit-rules-config",
        "audit-daemon-config",
        "time-config",
    )
    facts = [
        KINDS[kind]("")
        for kind in (*kinds, "sysctl-conf", "sysctl-applied", "sudo-policy", "cron-files", "sshd-hostkeys")
    ]
    facts.append(FilesMatching("/etc/pam.d/*"))
    programs = [shutil.which(p) for p in ("head", "stat", "od", "awk", "grep", "sort")]
    binds = [f"mount --bind {BUSYBOX} {p}" for p in programs if p] + [f"mount --bind {BUSYBOX} /usr/bin/dash"]
    inner = " && ".join(binds) + ' && exec "$0" "$@"'
    ours = collect(facts, ["sh", "-s"])
    theirs = collect(facts, ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh", "-s"])
    assert [plain(f.parse(theirs[f.key])) for f in facts] == [plain(f.parse(ours[f.key])) for f in facts]
