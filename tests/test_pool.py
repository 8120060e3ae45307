"""Pooled reads (hds_compliance/collect/pool.py): a probe reads the files of all its sections with ONE stat
and ONE head, and each section gets back, byte for byte, what its own snippet prints when it runs alone
(the marker aside, which is random). The judge is each fact's own snippet, run by the same shell: dash
(/bin/sh here), bash in POSIX mode and busybox sh.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from hds_compliance.catalog import load_catalog
from hds_compliance.check import HostInfo, _fingerprint, fingerprint, registry
from hds_compliance.collect.pool import POOL_FIELDS, run_marker
from hds_compliance.collect.probe import DEFAULT_SECTION_CAP, Probe, Section, new_nonce, parse, render
from hds_compliance.evaluate.engine import plan_facts
from hds_compliance.evidence.redact import _redact, redact
from hds_compliance.facts import FactError, FilesMatching, Part
from hds_compliance.facts.reads import READS_SH, WHOLE_SH
from hds_compliance.model import Capture

BUSYBOX = shutil.which("busybox")
SHELLS = [["dash"], ["bash", "--posix"], *([[BUSYBOX, "sh"]] if BUSYBOX else [])]
ENV = (
    "LC_ALL=C; LANG=C; export LC_ALL LANG; "
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; "
    f"C={DEFAULT_SECTION_CAP + 1}; "
)
HARD_NAMES = ["it's.conf", 'say "hi".conf', "$(touch PWNED).conf", "back\\slash.conf", "new\nline.conf"]
HARD_NAMES += ["-dash.conf", "sp ace.conf", "'''.conf", "tail'", "x <==\n\n==> y.conf"]


def run_probe(probe: Probe, shell: list[str]) -> dict[str, Capture]:
    done = subprocess.run([*shell, "-c", probe.script], capture_output=True, timeout=60, check=True)
    parsed = parse(probe, done.stdout)
    assert parsed.complete and parsed.problem is None, parsed.problem
    return {c.fact: c for c in parsed.captures}


def run_alone(section: Section, shell: list[str], cwd: Path | None = None) -> list[Capture]:
    """The section's own snippet, run by itself (as the one-command-per-fact mode runs it); for a joint
    section, each fact's own snippet."""
    if section.joint:
        return [c for f in section.facts for c in run_alone(Section(f.script(), (f,)), shell, cwd)]
    done = subprocess.run(
        [*shell, "-c", f"{ENV}f() {{\n{section.script}\n}}; f </dev/null"], capture_output=True, cwd=cwd
    )
    stderr = done.stderr.decode("utf-8", "replace").rstrip("\n")
    if section.batched:
        kind = type(section.facts[0])
        parts = kind.split_batch(section.facts, done.stdout, stderr, DEFAULT_SECTION_CAP + 1)
    else:
        parts = [Part(done.returncode, done.stdout, stderr)]
    return [
        Capture.from_bytes(f.key, section.script, p.stdout, exit_code=p.exit_code, stderr=p.stderr)
        for f, p in zip(section.facts, parts, strict=True)
    ]


def unmarked(data: bytes) -> bytes:
    """rd's output with its random marker (and the H record's length, which varies with it) blanked."""
    found = re.search(rb"(?:^|\n)H [0-9]+ [0-9]+ ([./]{64,})\n", data)
    if found is None:
        return data
    return re.sub(rb"(^|\n)H [0-9]+ ", rb"\1H ", data.replace(found.group(1), b"MARK"))


def assert_same_as_alone(probe: Probe, pooled: dict[str, Capture], shell: list[str]) -> int:
    compared = 0
    for i in probe.deferred:
        section = probe.sections[i]
        for alone in run_alone(section, shell):
            mine = pooled[alone.fact]
            assert unmarked(mine.stdout_bytes()) == unmarked(alone.stdout_bytes()), alone.fact
            assert (mine.exit_code, mine.stderr) == (alone.exit_code, alone.stderr), alone.fact
            compared += 1
    return compared


def full_probe() -> Probe:
    checks = registry()
    catalog = load_catalog(checks=checks, profile="full", skip_tags=["fs-walk"])
    return render(plan_facts(catalog, checks, HostInfo(name="local", connector="@local")), new_nonce())


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_every_reading_section_of_the_full_probe_gets_what_its_own_snippet_prints(shell: list[str]) -> None:
    probe = full_probe()
    assert len(probe.deferred) >= 10
    assert assert_same_as_alone(probe, run_probe(probe, shell), shell) >= len(probe.deferred)


def test_hosts_alike_get_the_same_bytes_under_the_run_marker_not_their_own() -> None:
    """Two runs of one probe draw two host markers (on the host, seen on the pool's command lines); the
    rebuilt sections carry the run's marker instead, made from the nonce: the same bytes for the same
    files, which the scanning side can then judge once."""
    probe = full_probe()
    first, second = (run_probe(probe, ["dash"]) for _ in range(2))
    mark = run_marker(probe.nonce)
    assert len(mark) >= 64 and not mark.strip(b"./") and run_marker(new_nonce()) != mark
    reading = [f.key for i in probe.deferred for f in probe.sections[i].facts]
    marked = [key for key in reading if mark in first[key].stdout_bytes()]
    assert len(marked) >= 10, "the rebuilt reads carry the run's marker"
    for key in marked:  # the host's own marker is gone: the H record names the run's
        record = re.search(rb"(?:^|\n)H [0-9]+ [0-9]+ ([./]{64,})\n", first[key].stdout_bytes())
        assert record is not None and record.group(1) == mark, key
    steady = [key for key in reading if key not in ("processes", "listen")]
    assert [first[k].stdout for k in steady] == [second[k].stdout for k in steady]
    # ...and the parser gives them the same capture objects, whose redaction and digest are made once:
    # what a fresh computation gives
    assert all(first[k] is second[k] for k in steady)
    for key in steady:
        assert redact(second[key]) is redact(first[key]) and redact(first[key]) == _redact(first[key])
        assert fingerprint(second[key]) == _fingerprint(first[key])


def test_hosts_alike_have_their_sections_requests_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A section's request (its N and Q records) holds no host marker: a second host printing the same
    requests has none of them read again, and gets the same captures as when each is read afresh."""
    import hds_compliance.collect.pool as pool

    read: list[int] = []
    real = pool._read_request

    def counting(index: int, out: bytes, nonce: bytes) -> Any:
        read.append(index)
        return real(index, out, nonce)

    monkeypatch.setattr(pool, "_read_request", counting)
    probe = full_probe()
    first = run_probe(probe, ["dash"])
    once = len(read)
    assert once >= len(probe.deferred) - 2  # a section may end before its read
    second = run_probe(probe, ["dash"])
    assert len(read) == once
    monkeypatch.setattr(pool, "_REQUESTS", pool.Recent(256))  # afresh: the same captures
    third = run_probe(probe, ["dash"])
    assert len(read) == 2 * once
    steady = [f.key for i in probe.deferred for f in probe.sections[i].facts]
    steady = [key for key in steady if key not in ("processes", "listen")]
    assert [first[k] for k in steady] == [second[k] for k in steady] == [third[k] for k in steady]


def test_every_stat_format_a_reading_fact_uses_is_one_the_pool_gives() -> None:
    probe = full_probe()
    formats = {
        fmt.strip("'")
        for i in probe.deferred
        for fmt in re.findall(r"\brd ('[^']*'|%\S+) ", probe.sections[i].script)
    }
    assert formats and all(d in POOL_FIELDS for fmt in formats for d in fmt.split(" ")), formats


def _hard_tree(tmp_path: Path) -> tuple[Path, Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        for i, name in enumerate(HARD_NAMES):
            (folder / name).write_bytes(f"{name} {i}\n==> {folder}/x <==\n".encode() * (i + 1))
    return one, two


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_hostile_names_come_back_to_the_section_that_asked(tmp_path: Path, shell: list[str]) -> None:
    """Quotes, $( ), backslashes, newlines, a leading dash, a name holding head's headers: the request
    passes through the main shell's eval as data, never as code."""
    one, two = _hard_tree(tmp_path)
    facts = [FilesMatching(f"{one}/*"), FilesMatching(f"{two}/*.conf"), FilesMatching(f"{one}/it*")]
    probe = render(facts, new_nonce())
    assert len(probe.deferred) == 3
    pooled = run_probe(probe, shell)
    assert assert_same_as_alone(probe, pooled, shell) == 3
    assert not list(Path.cwd().glob("PWNED")) and not (tmp_path / "PWNED").exists()
    read = facts[0].parse(pooled[facts[0].key])
    assert read is not None and len(read) == len(HARD_NAMES)
    assert read[f"{one}/new\nline.conf"] == (one / "new\nline.conf").read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="binds a wrapper over stat: needs root")
def test_a_file_gone_before_the_pool_read_it_fails_only_the_section_that_asked(tmp_path: Path) -> None:
    """A file removed between the pool's stat and its head (a real race, made by a stat that removes it
    after it ran): head has no header for it, the section that asked for it is an error naming it, and
    the other section's files are unchanged."""
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        for name in ("a.conf", "b.conf"):
            (folder / name).write_text(f"{folder.name}/{name}\n")
    real = shutil.which("stat")
    assert real is not None
    copy, wrapper = tmp_path / "real-stat", tmp_path / "stat"
    shutil.copy(real, copy)  # the wrapper is bound over the real one: it calls a copy
    wrapper.write_text(f'#!/bin/sh\n{copy} "$@"; rc=$?\nrm -f {one}/b.conf\nexit $rc\n')
    wrapper.chmod(0o755)
    facts = [FilesMatching(f"{one}/*"), FilesMatching(f"{two}/*")]
    probe = render(facts, new_nonce())
    inner = f'mount --bind {wrapper} {real} && exec sh -c "$0"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", inner, probe.script], capture_output=True, check=True)
    captures = {c.fact: c for c in parse(probe, done.stdout).captures}
    broken = captures[facts[0].key]
    assert broken.exit_code == 1
    with pytest.raises(FactError, match=r"head: cannot open '[^']*/b\.conf' for reading: No such file"):
        facts[0].parse(broken)
    assert facts[1].parse(captures[facts[1].key]) == {
        f"{two}/a.conf": b"two/a.conf\n",
        f"{two}/b.conf": b"two/b.conf\n",
    }


def _stream(probe: Probe, output: bytes) -> tuple[bytes, bytes]:
    head, _, payload = output.partition(f"{probe.nonce} S\n".encode())
    return head, zlib.decompress(base64.b64decode(payload), wbits=31)


def _restream(probe: Probe, head: bytes, stream: bytes) -> bytes:
    packer = zlib.compressobj(wbits=31)
    data = packer.compress(stream) + packer.flush()
    return head + f"{probe.nonce} S\n".encode() + base64.b64encode(data) + b"\n"


def _pool_part(probe: Probe, stream: bytes) -> tuple[int, int]:
    """Where the pool section's stdout lies in the decoded stream."""
    n = len(probe.sections)
    begin = re.search(rb"\n" + re.escape(f"{probe.nonce} B {n}".encode()) + rb"( T[0-9.]+)?\n", stream)
    assert begin is not None
    return begin.end(), stream.index(f"\n{probe.nonce} E {n} ".encode())


@pytest.fixture
def two_sections(tmp_path: Path) -> tuple[Probe, list[FilesMatching], bytes]:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        for name in ("a.conf", "b.conf"):
            (tmp_path / folder / name).write_text(f"{folder}/{name}\n")
    facts = [FilesMatching(f"{tmp_path}/one/*"), FilesMatching(f"{tmp_path}/two/*")]
    probe = render(facts, new_nonce())
    done = subprocess.run(["sh", "-c", probe.script], capture_output=True, check=True)
    return probe, facts, done.stdout


def test_a_stat_line_missing_from_the_pool_fails_only_its_section(
    two_sections: tuple[Probe, list[FilesMatching], bytes],
) -> None:
    probe, facts, output = two_sections
    head, stream = _stream(probe, output)
    start, end = _pool_part(probe, stream)
    pool = stream[start:end]
    line = re.search(rb"\n[0-9]+ [0-7]+ [0-9]+ [0-9]+ [^\n]*one/[./]+b\.conf\n", pool)
    assert line is not None
    cut = pool[: line.start() + 1] + pool[line.end() :]
    cut = re.sub(rb"\nS ([0-9]+) ", lambda m: b"\nS %d " % (int(m.group(1)) - len(line.group(0)) + 1), cut)
    output_cut = _restream(probe, head, stream[:start] + cut + stream[end:])
    captures = {c.fact: c for c in parse(probe, output_cut).captures}
    with pytest.raises(FactError, match="stat did not describe every file"):
        facts[0].parse(captures[facts[0].key])
    assert facts[1].parse(captures[facts[1].key]) == facts[1].parse(
        {c.fact: c for c in parse(probe, output).captures}[facts[1].key]
    )


def test_without_the_pool_no_reading_section_is_judged(
    two_sections: tuple[Probe, list[FilesMatching], bytes],
) -> None:
    """The pool's frame taken out of an otherwise whole stream: the probe is not complete, and every
    section that deferred its reads is an error, never a value from its names alone."""
    probe, facts, output = two_sections
    head, stream = _stream(probe, output)
    n = len(probe.sections)
    start = stream.index(f"\n{probe.nonce} B {n}".encode())
    end = stream.index(f"{probe.nonce} X {n}\n".encode()) + len(f"{probe.nonce} X {n}\n")
    parsed = parse(probe, _restream(probe, head, stream[:start] + stream[end - 1 :]))
    assert not parsed.complete and parsed.problem is not None and "pool" in parsed.problem
    for fact, capture in zip(facts, parsed.captures, strict=True):
        assert capture.exit_code == 1
        with pytest.raises(FactError, match="pooled read did not come back"):
            fact.parse(capture)


def test_a_section_stderr_is_its_own(tmp_path: Path) -> None:
    """What a section says on stderr (blank lines and trailing newlines included) is its capture's stderr,
    with the request the main shell took off it gone."""
    (tmp_path / "a").write_text("a\n")
    fact = FilesMatching(f"{tmp_path}/*")
    script = f"{READS_SH}; printf 'warn\\n\\nagain\\n\\n' >&2; set -- {tmp_path}/a; rd %s \"$@\""
    probe = Probe(new_nonce(), (Section(script, (fact,)),), DEFAULT_SECTION_CAP)
    assert probe.deferred == (0,)
    pooled = run_probe(probe, ["sh"])[fact.key]
    (alone,) = run_alone(probe.sections[0], ["sh"])
    assert pooled.stderr == alone.stderr == "warn\n\nagain"
    assert unmarked(pooled.stdout_bytes()) == unmarked(alone.stdout_bytes())


def test_whole_file_reads_are_pooled_and_read_what_cat_reads(tmp_path: Path) -> None:
    """rdw (a snippet's last output is one file's bytes: /etc/fstab, /proc/cmdline...) is pooled too; what
    comes back is what cat prints, for a regular file and for /proc files whose size stat calls 0."""
    (tmp_path / "plain").write_bytes(b"no newline at the end")
    paths = [str(tmp_path / "plain"), "/proc/cmdline", "/proc/self/mounts"]
    facts = [FilesMatching(f"{tmp_path}/{i}") for i in range(len(paths))]  # keys only
    sections = tuple(
        Section(f"{WHOLE_SH}printf 'before\\n'; rdw {path}", (fact,))
        for path, fact in zip(paths, facts, strict=True)
    )
    probe = Probe(new_nonce(), sections, DEFAULT_SECTION_CAP)
    assert probe.deferred == (0, 1, 2) and probe.script.count("head -v") == 1
    pooled = run_probe(probe, ["sh"])
    for path, fact in zip(paths, facts, strict=True):
        cat = subprocess.run(["cat", path], capture_output=True, check=True).stdout
        assert pooled[fact.key].stdout_bytes() == b"before\n" + cat, path
        assert pooled[fact.key].exit_code == 0


def test_a_whole_file_gone_before_the_pool_read_it_is_heads_error(tmp_path: Path) -> None:
    """The W record's file has no header in the pool: the section's exit is head's (1) and its stderr says
    why, as rdw alone would; the output before the read is kept."""
    fact = FilesMatching(f"{tmp_path}/*")
    probe = Probe(
        new_nonce(), (Section(f"{WHOLE_SH}echo x; rdw {tmp_path}/gone", (fact,)),), DEFAULT_SECTION_CAP
    )
    (capture,) = parse(probe, subprocess.run(["sh", "-c", probe.script], capture_output=True).stdout).captures
    (alone,) = run_alone(probe.sections[0], ["sh"])
    assert (
        (capture.exit_code, capture.stdout_bytes()) == (alone.exit_code, alone.stdout_bytes()) == (1, b"x\n")
    )
    assert "gone" in capture.stderr and "No such file" in capture.stderr
