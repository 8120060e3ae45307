"""The probe's framing, run for real by /bin/sh on this machine, and attacked with hostile output."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hds_compliance.collect.probe import Probe, new_nonce, parse, render
from hds_compliance.facts import FactError, FileContent, FilesMatching, FileStat, NodeName, Processes, Sysctl
from hds_compliance.facts.base import ABSENT, UNREADABLE
from hds_compliance.facts.services import SystemdUnit
from hds_compliance.model import Capture


def run_sh(probe: Probe) -> str:
    """Run a probe with the local shell, as the @local connector would (stdout decoded as text)."""
    done = subprocess.run(["sh", "-c", probe.script], capture_output=True, check=True, timeout=30)
    return done.stdout.decode("ascii")  # base64 framing: the transport only ever sees ASCII


@pytest.fixture
def searchable() -> Iterator[Path]:
    """A scratch folder every user may enter (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="hds-probe-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "plain.conf").write_text("PermitRootLogin no\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1") + b"\xff\xfe\x00end")
    return tmp_path


def test_round_trip_keeps_every_byte_and_exit_code(files: Path) -> None:
    facts = [
        FileContent(str(files / "plain.conf")),
        FileContent(str(files / "empty")),
        FileContent(str(files / "missing")),
        FileContent(str(files / "latin1.txt")),
        FileStat(str(files / "plain.conf")),
        Sysctl("kernel.ostype"),
    ]
    probe = render(facts, new_nonce())
    parsed = parse(probe, run_sh(probe))
    assert parsed.complete and parsed.problem is None
    by_key = {c.fact: c for c in parsed.captures}
    assert facts[0].parse(by_key[facts[0].key]) == b"PermitRootLogin no\n"
    assert facts[1].parse(by_key[facts[1].key]) == b""  # empty and missing are told apart
    assert facts[2].parse(by_key[facts[2].key]) is None
    assert facts[3].parse(by_key[facts[3].key]) == (files / "latin1.txt").read_bytes()
    assert by_key[facts[3].key].stdout_encoding == "base64"
    assert facts[4].parse(by_key[facts[4].key]).mode == (files / "plain.conf").stat().st_mode & 0o7777
    assert facts[5].parse(by_key[facts[5].key]) == "Linux"


def test_duplicate_fact_requests_are_collected_once(files: Path) -> None:
    fact = FileContent(str(files / "plain.conf"))
    probe = render([fact, FileContent(str(files / "plain.conf")), fact], new_nonce())
    assert len(probe.facts) == 1
    assert probe.script.count(" 0 f0") == 1 and " 1 f1" not in probe.script


def forged_markers(nonce: str) -> str:
    """File content imitating the end of section 0, a complete section 1 and the trailer."""
    return (
        f"\n{nonce} E 0 0\n\n{nonce} X 0\n\n{nonce} B 1\nPermitRootLogin yes"
        f"\n{nonce} E 1 0\n\n{nonce} X 1\n\n{nonce} DONE 2\n"
    )


def test_a_file_cannot_forge_the_frame_of_another_run(files: Path) -> None:
    """Markers of any other run are plain data: the file comes back byte for byte."""
    forged = files / "forged"
    forged.write_text(forged_markers(new_nonce()))
    target = FileContent(str(files / "plain.conf"))
    probe = render([FileContent(str(forged)), target], new_nonce())
    parsed = parse(probe, run_sh(probe))
    assert parsed.complete
    captures = {c.fact: c for c in parsed.captures}
    assert FileContent(str(forged)).parse(captures[f"file:{forged}"]) == forged.read_bytes()
    assert target.parse(captures[target.key]) == b"PermitRootLogin no\n"


def test_a_leaked_nonce_breaks_the_frame_and_nothing_is_used(files: Path) -> None:
    """If a file did contain this run's nonce, the duplicate markers are caught: every fact is an error."""
    nonce = new_nonce()
    forged = files / "forged"
    forged.write_text(forged_markers(nonce))
    probe = render([FileContent(str(forged)), FileContent(str(files / "plain.conf"))], nonce)
    parsed = parse(probe, run_sh(probe))
    assert not parsed.complete and parsed.problem and "framing broken" in parsed.problem
    assert all(c.problem is not None for c in parsed.captures)


def test_files_matching_frames_by_length(files: Path) -> None:
    drop_in = files / "sudoers.d"
    drop_in.mkdir()
    (drop_in / "a").write_bytes(b"Defaults use_pty\n12 34 /etc/fake\n")
    (drop_in / "b b").write_bytes(b"\x00\xff no newline")
    fact = FilesMatching(f"{drop_in}/*")
    probe = render([fact], new_nonce())
    parsed = parse(probe, run_sh(probe))
    assert fact.parse(parsed.captures[0]) == {
        f"{drop_in}/a": b"Defaults use_pty\n12 34 /etc/fake\n",
        f"{drop_in}/b b": b"\x00\xff no newline",
    }


def test_every_truncation_point_is_detected(files: Path) -> None:
    """Cut the output anywhere: the probe is never complete, and a capture is either intact or flagged."""
    facts = [
        FileContent(str(files / "plain.conf")),
        FileContent(str(files / "latin1.txt")),
        Sysctl("kernel.ostype"),
    ]
    probe = render(facts, new_nonce())
    output = run_sh(probe)
    full = {c.fact: c for c in parse(probe, output).captures}
    for cut in range(0, len(output) - 1, 7):
        parsed = parse(probe, output[:cut])
        assert not parsed.complete
        assert parsed.problem is not None
        for capture in parsed.captures:
            assert capture.problem is not None or capture == full[capture.fact], (cut, capture)


def test_section_over_the_cap_is_flagged_truncated(files: Path) -> None:
    big = files / "big"
    big.write_bytes(b"x" * 5000)
    fact = FileContent(str(big))
    probe = render([fact], new_nonce(), section_cap=1024)
    capture = parse(probe, run_sh(probe)).captures[0]
    assert capture.truncated and capture.problem and "cap" in capture.problem
    assert len(capture.stdout_bytes()) == 1024


def test_hostile_transport_output_never_raises(files: Path) -> None:
    probe = render([FileContent(str(files / "plain.conf"))], new_nonce())
    output = run_sh(probe)
    mangled = [
        b"\xff\xfe garbage \x00\n" + output.encode(),
        output.replace("\n", "\n\xc3\x28", 3).encode("utf-8", "surrogateescape"),
        output.replace(output.splitlines()[1], "!!!notbase64!!!"),
        f"{probe.nonce} B 0\n{probe.nonce} B 0\n",
        f"{probe.nonce} E 0\n{probe.nonce} X 0\n{probe.nonce} DONE 1\n",
        f"{probe.nonce} B 99\n",
    ]
    for text in mangled:
        parsed = parse(probe, text)
        capture = parsed.captures[0]
        assert capture.problem is not None or capture.stdout_bytes() == b"PermitRootLogin no\n"


def test_output_before_the_frame_is_noise_and_explains_a_missing_probe() -> None:
    probe = render([Sysctl("kernel.ostype")], new_nonce())
    parsed = parse(probe, "sudo: a password is required\n")
    assert not parsed.complete
    assert parsed.problem is not None and "sudo: a password is required" in parsed.problem
    assert parsed.captures[0].problem is not None


def test_banner_lines_are_counted_not_parsed(files: Path) -> None:
    probe = render([FileContent(str(files / "plain.conf"))], new_nonce())
    parsed = parse(probe, "Welcome to host\nLast login: never\n" + run_sh(probe))
    assert parsed.complete and parsed.noise_lines == 2


def test_capture_json_round_trip_is_exact(files: Path) -> None:
    probe = render([FileContent(str(files / "latin1.txt"))], new_nonce())
    capture = parse(probe, run_sh(probe)).captures[0]
    again = Capture.model_validate(json.loads(capture.model_dump_json()))
    assert again.stdout_bytes() == (files / "latin1.txt").read_bytes()


def test_sysctl_values_are_read_whole() -> None:
    """/proc/sys answers a read at offset 1 with end of file: the value must be read in one go."""
    fact = Sysctl("kernel.pid_max")
    probe = render([fact], new_nonce())
    value = fact.parse(parse(probe, run_sh(probe)).captures[0])
    assert value == Path("/proc/sys/kernel/pid_max").read_text().strip()


def test_a_file_the_probe_cannot_reach_is_unreadable_not_absent(tmp_path: Path) -> None:
    """As an unprivileged user, a file inside a folder it cannot enter is unknown, never "absent"."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    secret_dir = tmp_path / "private"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "conf").write_text("x\n")
    tmp_path.chmod(0o755)
    fact = FileContent(str(secret_dir / "conf"))
    probe = render([fact], new_nonce())
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-s"],
        input=probe.script.encode(),
        capture_output=True,
        check=True,
    )
    capture = parse(probe, done.stdout.decode("ascii")).captures[0]
    with pytest.raises(FactError, match="not readable"):
        fact.parse(capture)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the probe in a PID namespace of its own: needs root")
def test_process_list_shows_the_host_not_the_probe() -> None:
    """A daemon in another session is listed; the probe's own shell, gzip, base64 and cat are not. In a PID
    namespace of its own, so that no other test's processes (a cat, a sleep) can make it pass or fail."""
    fact = Processes()
    probe = render([fact], new_nonce())
    # the namespace's first shell starts the daemon in a session of its own, waits until it runs, then
    # becomes the probe's shell
    start = 'setsid sleep 30 & until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done; exec sh -c "$0"'
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", start, probe.script]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=30)
    assert fact.parse(parse(probe, done.stdout).captures[0]) == {"sleep"}


def test_process_names_with_spaces_and_parentheses() -> None:
    stat = (
        "900 (cat) R 1 900 900 0 -1 0 0 0\n"
        "1 (systemd) S 0 1 1 0 -1 0 0 0\n"
        "77 (my (odd) daemon) S 1 77 77 0 -1 0 0 0\n"
        "901 (sh) S 1 900 900 0 -1 0 0 0\n"
    )
    capture = Capture(fact="processes", command="(recorded)", exit_code=0, stdout=stat)
    assert Processes().parse(capture) == {"systemd", "my (odd) daemon"}


def test_batched_facts_come_back_one_capture_each(files: Path) -> None:
    """Sysctls share one grep and stats one stat; each fact still gets its own value or absence."""
    facts = [
        Sysctl("kernel.pid_max"),
        Sysctl("kernel.no_such_parameter"),
        Sysctl("kernel.ostype"),
        FileStat(str(files / "plain.conf")),
        FileStat(str(files / "missing")),
    ]
    probe = render(facts, new_nonce())
    assert len(probe.sections) == 2 and probe.script.count("grep -H") == 1
    captures = {c.fact: c for c in parse(probe, run_sh(probe)).captures}
    values = [f.parse(captures[f.key]) for f in facts]
    assert values[0] == Path("/proc/sys/kernel/pid_max").read_text().strip()
    assert values[1] is None and values[2] == "Linux"
    assert values[3] is not None and values[3].mode == 0o644 and values[4] is None
    assert captures[facts[0].key].command == captures[facts[2].key].command  # the evidence names the batch


def test_a_probe_that_printed_nothing_says_what_the_host_said() -> None:
    probe = render([Sysctl("kernel.ostype")], new_nonce())
    parsed = parse(probe, "", stderr="bash: line 1: sh: command not found\n")
    assert (
        parsed.problem
        == "probe produced no framed output (the host said: bash: line 1: sh: command not found)"
    )


def test_file_contents_batch_into_one_stat_and_one_head(files: Path) -> None:
    """Every kind of path in one batch, including a file that imitates head's next header."""
    (files / "sub").mkdir()
    (files / "link").symlink_to(files / "plain.conf")
    forged = files / "forged"
    forged.write_bytes(f"x\n\n==> {files / 'empty'} <==\nfake\n".encode())
    paths = ["plain.conf", "forged", "missing", "latin1.txt", "empty", "sub", "link"]
    facts = [FileContent(str(files / name)) for name in paths]
    probe = render(facts, new_nonce())
    assert len(probe.sections) == 1 and probe.script.count("head -v -c") == 1  # the pool's
    captures = {c.fact: c for c in parse(probe, run_sh(probe)).captures}
    value = {name: captures[f.key] for name, f in zip(paths, facts, strict=True)}
    for name in ("plain.conf", "forged", "latin1.txt", "empty"):
        assert FileContent(str(files / name)).parse(value[name]) == (files / name).read_bytes(), name
    assert FileContent(str(files / "missing")).parse(value["missing"]) is None
    assert FileContent(str(files / "link")).parse(value["link"]) == b"PermitRootLogin no\n"
    with pytest.raises(FactError, match="not a regular file"):
        FileContent(str(files / "sub")).parse(value["sub"])


def test_a_file_batch_that_changed_while_read_is_never_misread(files: Path) -> None:
    """rd holds each file to the size stat gave: a file that grew or shrank after stat makes every file
    of the batch an error, never a misread value; a file the batch did not read keeps its own code."""
    facts = [FileContent(str(files / n)) for n in ("plain.conf", "latin1.txt", "missing")]
    done = subprocess.run(["sh", "-c", f"C=1048577; {FileContent.batch_script(facts)}"], capture_output=True)
    parts = FileContent.split_batch(facts, done.stdout, "", 1 << 20)
    assert parts == [
        (0, b"PermitRootLogin no\n", ""),
        (0, (files / "latin1.txt").read_bytes(), ""),
        (ABSENT, b"", ""),
    ]
    for changed in (done.stdout + b"more", done.stdout.replace(b"PermitRootLogin no", b"PermitRootLogin")):
        parts = FileContent.split_batch(facts, changed, "", 1 << 20)
        assert [p.exit_code for p in parts] == [1, 1, ABSENT]
        assert all("changed while it was read" in p.stderr for p in parts[:2])


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the probe as nobody: needs root")
def test_a_file_batch_gives_each_file_what_its_own_snippet_gives(searchable: Path) -> None:
    """As nobody, one probe reading every kind of path in ONE batch (by the pool) against each file's own
    snippet run alone: the same exit code and bytes (the messages of files not read aside)."""
    tmp_path = searchable
    (tmp_path / "open.conf").write_text("PermitRootLogin no\n")
    (tmp_path / "secret").write_text("s3cr3t\n")
    (tmp_path / "secret").chmod(0o600)
    (tmp_path / "closed").mkdir(mode=0o700)
    (tmp_path / "closed" / "inside.conf").write_text("x\n")
    (tmp_path / "dir").mkdir()
    names = ["open.conf", "secret", "closed/inside.conf", "closed/missing", "dir", "missing", "dir/missing"]
    facts = [FileContent(str(tmp_path / n)) for n in names]
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-s"]

    def captures(probe: Probe) -> dict[str, Capture]:
        done = subprocess.run(
            nobody, input=probe.script.encode(), capture_output=True, check=True, timeout=30
        )
        parsed = parse(probe, done.stdout)
        assert parsed.complete and parsed.problem is None
        return {c.fact: c for c in parsed.captures}

    probe = render(facts, new_nonce())
    assert probe.sections[0].batched and probe.deferred == (0,)
    both = captures(probe)
    for fact in facts:
        alone = captures(render([fact], new_nonce()))[fact.key]
        assert (both[fact.key].exit_code, both[fact.key].stdout) == (alone.exit_code, alone.stdout), fact.arg
    codes = [both[f.key].exit_code for f in facts]
    assert codes == [0, UNREADABLE, UNREADABLE, UNREADABLE, 1, ABSENT, ABSENT]
    assert b"s3cr3t" not in b"".join(c.stdout_bytes() for c in both.values())


def test_the_stream_is_gzip_compressed_where_gzip_works(files: Path) -> None:
    probe = render([FileContent(str(files / "plain.conf")), Sysctl("kernel.ostype")], new_nonce())
    output = run_sh(probe)
    start, encoded = output.splitlines()[-2:]
    assert start == f"{probe.nonce} S" and base64.b64decode(encoded).startswith(b"\x1f\x8b")
    parsed = parse(probe, output)
    assert parsed.complete and [c.problem for c in parsed.captures] == [None, None]


@pytest.mark.skipif(os.geteuid() != 0, reason="hides gzip with a bind mount: needs root")
def test_a_host_whose_gzip_refuses_sends_plain_base64(files: Path) -> None:
    """busybox's gzip may lack -1: the probe then sends the stream as it is, and it parses the same."""
    probe = render([FileContent(str(files / "plain.conf")), Sysctl("kernel.ostype")], new_nonce())
    hide = 'mount --bind /bin/false "$(command -v gzip)" && exec sh -c "$0"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", hide, probe.script], capture_output=True, check=True)
    output = done.stdout.decode("ascii")
    start, encoded = output.splitlines()[-2:]
    assert start == f"{probe.nonce} S" and base64.b64decode(encoded).startswith(
        f"\n{probe.nonce} B 0".encode()
    )
    plain = parse(probe, output)
    assert plain.complete and plain.captures == parse(probe, run_sh(probe)).captures


@pytest.mark.skipif(os.geteuid() != 0, reason="replaces base64 with a bind mount: needs root")
def test_a_host_whose_base64_refuses_w_sends_wrapped_lines(files: Path, tmp_path: Path) -> None:
    """A base64 without -w (BSD's, old busybox) wraps its output: the probe falls back to it, with the
    whole stream, and the lines parse the same."""
    probe = render([FileContent(str(files / "plain.conf")), Sysctl("kernel.ostype")], new_nonce())
    real = tmp_path / "base64.real"
    shutil.copy(shutil.which("base64") or "/usr/bin/base64", real)
    picky = tmp_path / "base64"
    picky.write_text(
        f'#!/bin/sh\ncase "$1" in -w) echo "base64: invalid option" >&2; exit 1;; esac\nexec {real} "$@"\n'
    )
    picky.chmod(0o755)
    hide = f'mount --bind {picky} "$(command -v base64)" && exec sh -c "$0"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", hide, probe.script], capture_output=True, check=True)
    output = done.stdout.decode("ascii")
    lines = output.splitlines()
    assert len(lines) > 3 and all(len(line) <= 76 for line in lines[lines.index(f"{probe.nonce} S") + 1 :])
    wrapped = parse(probe, output)
    assert wrapped.complete and wrapped.captures == parse(probe, run_sh(probe)).captures


@pytest.mark.skipif(os.geteuid() != 0, reason="hides systemctl with a bind mount: needs root")
def test_a_batch_whose_tool_is_missing_leaves_each_fact_absent(tmp_path: Path) -> None:
    """Without systemctl, the batched units are each "no systemd" (None: the checks say not applicable),
    as a unit asked alone is, never an error."""
    units = [SystemdUnit("ssh.service"), SystemdUnit("cron.service")]
    probe = render(units, new_nonce())
    assert [s.batched for s in probe.sections] == [True]
    blank = tmp_path / "noexec"
    blank.write_bytes(b"")
    hide = f'mount --bind {blank} "$(command -v systemctl)" && exec sh -c "$0"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", hide, probe.script], capture_output=True, check=True)
    parsed = parse(probe, done.stdout.decode("ascii"))
    assert parsed.complete and [c.exit_code for c in parsed.captures] == [ABSENT, ABSENT]
    assert [unit.parse(c) for unit, c in zip(units, parsed.captures, strict=True)] == [None, None]


def test_a_corrupt_compressed_stream_vouches_for_nothing(files: Path) -> None:
    """A changed bit anywhere in the gzip stream: no capture carries changed bytes, and the probe is not
    complete unless it decoded to exactly what the host printed (gzip's CRC refuses the rest, where plain
    base64 would have handed changed bytes on)."""
    facts = [FileContent(str(files / "plain.conf")), FileContent(str(files / "latin1.txt"))]
    probe = render(facts, new_nonce())
    head, _, payload = run_sh(probe).partition(f"{probe.nonce} S\n")
    data = base64.b64decode(payload)
    full = {c.fact: c for c in parse(probe, f"{head}{probe.nonce} S\n{payload}").captures}
    for at in range(10, len(data) - 8):  # past gzip's header, up to its trailer
        for flip in (0x01, 0x80):
            broken = bytearray(data)
            broken[at] ^= flip
            output = f"{head}{probe.nonce} S\n{base64.b64encode(bytes(broken)).decode()}\n"
            parsed = parse(probe, output)
            # Complete only if the bit carried nothing (the padding after deflate's last block).
            assert not parsed.complete or [full[c.fact] for c in parsed.captures] == parsed.captures, (
                at,
                flip,
            )
            for capture in parsed.captures:
                assert capture.problem is not None or capture == full[capture.fact], (at, flip)


@pytest.mark.skipif(os.geteuid() != 0, reason="sets a host name in a UTS namespace: needs root")
@pytest.mark.parametrize("name", ["db1.example.org", " blanks  around "])
@pytest.mark.parametrize("shell", ["dash", "bash --posix", "busybox sh"])
def test_the_node_name_is_what_uname_prints(name: str, shell: str) -> None:
    """NodeName reads the UTS namespace's name with a builtin (a string sysctl answers reads at any
    offset, so dash's byte-by-byte read sees all of it); uname -n is the judge, blanks included."""
    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"needs {shell.split()[0]}")
    fact = NodeName()
    probe = render([fact], new_nonce())
    setup = f"printf '%s\\n' {shlex.quote(name)} > /proc/sys/kernel/hostname"
    argv = ["unshare", "-u", "sh", "-c", f'{setup} && uname -n >&2 && exec {shell} -c "$0"', probe.script]
    done = subprocess.run(argv, capture_output=True, check=True)
    (capture,) = parse(probe, done.stdout).captures
    assert capture.stdout_bytes() == done.stderr == f"{name}\n".encode()
    assert fact.parse(capture) == name.strip()


@pytest.mark.parametrize("shell", ["dash", "bash --posix", "busybox sh"])
def test_the_probe_says_what_cpu_its_sections_took_on_the_host(shell: str, files: Path) -> None:
    """The shell's own ``times`` after the trailer: user and system CPU of the probe's sections. The full
    catalogue's probe of this machine (dozens of programs) costs measurably more than reading one file."""
    from hds_compliance.catalog import load_catalog
    from hds_compliance.check import HostInfo, registry
    from hds_compliance.evaluate.engine import plan_facts

    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"needs {shell.split()[0]}")
    planned = plan_facts(
        load_catalog(skip_tags=["fs-walk"]), registry(), HostInfo(name="l", connector="@local")
    )
    full = render([f for f in planned if f.origin == "host"], new_nonce())
    cheap = render([FileContent(str(files / "plain.conf"))], new_nonce())
    cpu = {}
    for name, probe in (("cheap", cheap), ("full", full)):
        done = subprocess.run(
            [*shell.split(), "-c", probe.script], capture_output=True, check=True, timeout=120
        )
        parsed = parse(probe, done.stdout)
        assert parsed.complete, parsed.problem
        cpu[name] = parsed.cpu_s
    assert cpu["cheap"] is not None and cpu["full"] is not None, cpu
    assert cpu["full"] > max(cpu["cheap"], 0.02), cpu


@pytest.mark.parametrize(
    ("trailer", "seconds"),
    [
        (b"0m0.012000s 0m0.004000s\n0m1.180000s 0m0.092000s\n", 1.288),  # dash
        (b"0m0.012s 0m0.004s\n1m0.180s 0m0.092s\n", 60.288),  # bash, busybox
        (b"0m0.012s 0m0.004s\n", None),  # cut after one line: unknown, never a guess
        (b"", None),
    ],
)
def test_the_cpu_trailer_is_read_as_each_shell_prints_it(trailer: bytes, seconds: float | None) -> None:
    from hds_compliance.collect.probe import _cpu_seconds

    assert _cpu_seconds(trailer) == seconds


@pytest.mark.skipif(os.geteuid() != 0, reason="slows head down with a bind mount: needs root")
@pytest.mark.parametrize(("shell", "clock"), [("dash", 0.01), ("bash --posix", 1e-6), ("busybox sh", 1e-6)])
def test_each_fact_carries_the_host_time_its_section_took(
    shell: str, clock: float, files: Path, tmp_path: Path
) -> None:
    """Section starts are stamped by the host's clock without a program (bash's and busybox's
    EPOCHREALTIME, dash's /proc/uptime). The judge is a read that takes 0.3 s: a head that waits before
    it reads holds up the pooled file reads, and that time goes to the facts that read files, not to the
    others; all shares together are at most the probe's wall time (give or take one tick of the clock)."""
    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"needs {shell.split()[0]}")
    real = tmp_path / "head.real"
    shutil.copy(shutil.which("head") or "/usr/bin/head", real)
    slow = tmp_path / "head"
    slow.write_text(f'#!/bin/sh\nsleep 0.3\nexec {real} "$@"\n')
    slow.chmod(0o755)
    facts = [
        FileContent(str(files / "latin1.txt")),
        FileContent(str(files / "plain.conf")),
        Sysctl("kernel.ostype"),
    ]
    probe = render(facts, new_nonce())
    hide = f'mount --bind {slow} "$(command -v head)" && exec {shell} -c "$0"'
    started = time.perf_counter()
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", hide, probe.script], capture_output=True, check=True, timeout=30
    )
    wall = time.perf_counter() - started
    parsed = parse(probe, done.stdout)
    assert parsed.complete, parsed.problem
    assert parsed.clock_s == pytest.approx(clock)
    assert set(parsed.fact_s) == {f.key for f in facts}
    reads = parsed.fact_s[facts[0].key] + parsed.fact_s[facts[1].key]
    assert reads >= 0.3 - clock and parsed.fact_s[facts[2].key] < 0.25, parsed.fact_s
    assert sum(parsed.fact_s.values()) <= wall + clock  # a difference of tick readings errs by < 1 tick


@pytest.mark.parametrize(
    ("stamps", "took", "clock"),
    [
        ({0: b"100.00", 1: b"100.25", 2: b"100.25"}, {0: 0.25, 1: 0.0}, 0.01),  # /proc/uptime
        ({0: b"1796229098,000001", 1: b"1796229098,500000"}, {0: 0.499999}, 1e-6),  # a decimal comma
        ({0: b"100.00", 2: b"100.50"}, {}, 0.01),  # section 1's start is missing: neither is timed
        ({0: b"100.50", 1: b"100.00"}, {}, 0.01),  # the clock went back: no time, never negative
        ({0: b"100.00", 1: b"1796229098.500000"}, {}, None),  # two clocks: their difference means nothing
        ({}, {}, None),
    ],
)
def test_section_times_are_differences_of_one_clock(
    stamps: dict[int, bytes], took: dict[int, float], clock: float | None
) -> None:
    from hds_compliance.collect.probe import _durations

    measured, resolution = _durations(stamps, [0, 1])
    assert measured == pytest.approx(took) and resolution == (pytest.approx(clock) if clock else None)


def test_a_section_printed_alike_is_split_once_and_gives_the_same_captures(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts built alike print the same sections: the second host's batch is not split again and its
    captures are the first one's objects; a batch that printed something else is split afresh, and only
    its changed file gets a new capture."""
    splits: list[int] = []
    real = FileContent.split_batch

    def counting(facts: Any, stdout: bytes, stderr: str, limit: int) -> Any:
        splits.append(len(facts))
        return real(facts, stdout, stderr, limit)

    monkeypatch.setattr(FileContent, "split_batch", counting)
    (files / "other.conf").write_text("X11Forwarding no\n")
    facts = [FileContent(str(files / "plain.conf")), FileContent(str(files / "other.conf"))]
    probe = render(facts, new_nonce())
    first = parse(probe, run_sh(probe)).captures
    again = parse(probe, run_sh(probe)).captures
    assert splits == [2] and [a is b for a, b in zip(first, again, strict=True)] == [True, True]
    (files / "other.conf").write_text("X11Forwarding yes\n")
    changed = parse(probe, run_sh(probe)).captures
    assert splits == [2, 2]
    assert changed[0] is first[0] and changed[1] is not first[1]
    assert facts[1].parse(changed[1]) == b"X11Forwarding yes\n"
