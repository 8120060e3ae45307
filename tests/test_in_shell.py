"""In-shell sections (Fact.in_shell): the probe runs them in its main shell, without a subshell's fork.

The contract such a snippet keeps is what makes that safe, and it is held here by running the snippets,
not by reading them: each in-shell section of the full probe runs in ONE shell after the other, every
name it mentions set beforehand to a value it must not read (dash's ``local`` keeps the outer value), and
after each section the shell's state (those names, the options, the working directory, the umask, the
traps, the caller's arguments) must be what it was, and what the section printed, said, returned and
asked the pool to read must be what the same snippet gives in a fresh shell. As root, and as nobody, for
the branches of files it may not read. The shells: dash (/bin/sh here), bash in POSIX mode, busybox sh.

Then the frame: an in-shell section's stderr and exit code come back to its own capture; one that breaks
the contract (``exit``) costs the probe its completeness, never a verdict; a shell without ``local`` runs
the same sections in subshells and gives the same captures; a stream cut before their stderr leaves them
unusable.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from hds_compliance.catalog import load_catalog
from hds_compliance.check import HostInfo, registry
from hds_compliance.collect.pool import POOLED_READS_SH, deferring
from hds_compliance.collect.probe import DEFAULT_SECTION_CAP, Probe, Section, new_nonce, parse, render
from hds_compliance.evaluate.engine import plan_facts
from hds_compliance.facts import KINDS, FilesMatching
from hds_compliance.facts.storage import DiskUsage
from hds_compliance.model import Capture

BUSYBOX = shutil.which("busybox")
SHELLS = [["dash"], ["bash", "--posix"], *([[BUSYBOX, "sh"]] if BUSYBOX else [])]
NONCE = "@@HDS-00112233445566778899aabb"
PRELUDE = (
    "LC_ALL=C; LANG=C; export LC_ALL LANG\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH\n"
    f"M='{NONCE}'; C={DEFAULT_SECTION_CAP + 1}; nl='\n'; P=; I=1\n{POOLED_READS_SH}\n"
)
# Names the probe's prelude gives every section (read on purpose), and those a shell keeps for itself.
FRAMEWORK = {"C", "M", "P", "I", "L", "nl"}
SHELL_OWN = {"IFS", "PATH", "HOME", "PWD", "OLDPWD", "CDPATH", "ENV", "OPTIND", "OPTARG", "LINENO", "PPID"}
SHELL_OWN |= {"PS1", "PS2", "PS4", "LC_ALL", "LANG", "SHELL", "MAIL", "MAILPATH", "HISTFILE", "FUNCNAME"}
KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in"}
JUNK = "@junk /etc/x *"
VOLATILE = {"processes"}  # the host's process list: what runs differs between two runs
ARGS = '{ printf \'args=%s:%s\\n\' "$#" "$*"; st; } >&6'  # the caller's arguments, then st's state


def full_probe() -> Probe:
    checks = registry()
    catalog = load_catalog(checks=checks, profile="full", skip_tags=["fs-walk"])
    return render(plan_facts(catalog, checks, HostInfo(name="local", connector="@local")), NONCE)


def names(script: str) -> list[str]:
    """Every word of the snippet that could be a variable it sets or reads."""
    words = set(re.findall(r"(?<![A-Za-z0-9_])[A-Za-z][A-Za-z0-9_]*", script))
    return sorted(w for w in words - FRAMEWORK - SHELL_OWN - KEYWORDS if not w.startswith("_"))


def state_sh(watched: list[str]) -> str:
    """sh printing the shell's state: the watched names (set or not), options, directory, umask, traps,
    and the caller's arguments."""
    show = "".join(f"printf '%s\\n' \"{n}=${{{n}-(unset)}}\"; " for n in watched)
    return f"st() {{ {show}printf '%s\\n' \"opts=$- pwd=$PWD umask=$(umask) ifs=[$IFS]\"; trap; }}"


def frame(i: int) -> str:
    """sh running section i as the probe runs it in its shell, then printing what it gave (framed)."""
    return (
        f"_p0=$P; printf '\\n@@S {i}\\n'; f{i} </dev/null >&4 2>&5; _r=$?; "
        f'printf \'\\n@@R {i} %s\\n%s\\n@@P {i}\\n\' "$_r" "${{P#"$_p0"}}"; '
        f"{ARGS}"
    )


def run(shell: list[str], script: str, as_nobody: bool) -> bytes:
    """The script's framed output (fd 4 stdout, fd 5 stderr, fd 6 state: all to stdout, in order)."""
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_nobody else []
    done = subprocess.run(
        [*user, *shell, "-c", f"{{ {script}\n}} 4>&1 5>&1 6>&1"], capture_output=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def split(output: bytes) -> dict[str, bytes]:
    """The framed output, by section (what it printed, said and asked between its markers)."""
    parts = re.split(rb"\n@@S ([0-9]+)\n", output)
    return {parts[k].decode(): parts[k + 1] for k in range(1, len(parts), 2)}


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the sections as nobody too: needs root")
@pytest.mark.parametrize("as_nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_in_shell_sections_leave_the_shell_as_they_found_it(shell: list[str], as_nobody: bool) -> None:
    probe = full_probe()
    assert len(probe.in_shell) >= 30
    scripts = {i: deferring(probe.sections[i].script) for i in probe.in_shell}
    watched = sorted({n for s in scripts.values() for n in names(s)})
    defs = "".join(f"f{i}() {{\n{s}\n}}\n" for i, s in scripts.items())
    junk = "".join(f"{n}='{JUNK}'; " for n in watched)
    runs = "\n".join(frame(i) for i in scripts)
    start = f"{junk}\nset -- a 'b c'\n{ARGS}"
    together = run(shell, f"{PRELUDE}{defs}{state_sh(watched)}\n{start}\n{runs}", as_nobody)
    before, _, rest = together.partition(b"\n@@S ")
    after = split(b"\n@@S " + rest)
    assert sorted(after, key=int) == [str(i) for i in scripts], "a section ended the shell (exit?)"
    for i, script in scripts.items():
        alone = split(run(shell, f"{PRELUDE}f{i}() {{\n{script}\n}}\n{state_sh([])}\n{frame(i)}", as_nobody))
        mine, _, state = after[str(i)].partition(b"\n@@P ")
        assert state.partition(b"\n")[2] == before, (
            f"section {i} ({probe.sections[i].facts[0].key}) left state"
        )
        theirs = alone[str(i)].partition(b"\n@@P ")[0]
        if probe.sections[i].facts[0].kind in VOLATILE:  # no two runs list the same processes
            assert b"@junk" not in mine
            continue
        assert mine == theirs, f"section {i} ({probe.sections[i].facts[0].key}) read a name it did not set"


def test_every_in_shell_kind_is_held_to_the_contract_above() -> None:
    """The contract test runs the full probe's sections: every kind that claims the contract is there."""
    probe = full_probe()
    held = {type(f) for i in probe.in_shell for f in probe.sections[i].facts}
    assert held == {kind for kind in KINDS.values() if kind.in_shell}


def test_in_shell_snippets_define_only_functions_named_h() -> None:
    """Functions are global in sh: an in-shell snippet's own are named _h..., which no other uses."""
    probe = full_probe()
    for i in probe.in_shell:
        script = deferring(probe.sections[i].script)
        defined = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{", script)
        assert defined and all(d.startswith("_h") for d in defined), (probe.sections[i].facts[0].key, defined)


def test_no_snippet_uses_the_names_of_the_probe_library() -> None:
    """The pooled-read library's variables start with "_" (they outlive an in-shell section): no snippet
    of the full probe sets or reads such a name (its _h functions aside)."""
    for section in full_probe().sections:
        script = deferring(section.script)
        used = re.findall(r"\$\{?(_[A-Za-z0-9_]*)|(?<![A-Za-z0-9_])(_[A-Za-z0-9_]*)=", script)
        assert not [u for pair in used for u in pair if u], section.facts[0].key


# ---------------------------------------------------------------------------------------------- the frame


def talking(tmp_path: Path) -> Probe:
    """Three sections: in the shell, in a subshell, in the shell; each prints, says and returns its own."""
    in_shell = FilesMatching(f"{tmp_path}/a*"), FilesMatching(f"{tmp_path}/b*")
    forked = DiskUsage()  # a kind run in a subshell
    sections = (
        Section("_h() { printf 'one\\n'; printf 'said one\\n\\n' >&2; return 3; }; _h", (in_shell[0],)),
        Section("printf 'two'; printf 'said two\\n' >&2; exit 4", (forked,)),
        Section("_h() { printf 'said three' >&2; }; _h", (in_shell[1],)),
    )
    probe = Probe(new_nonce(), sections, DEFAULT_SECTION_CAP)
    assert probe.in_shell == (0, 2)
    return probe


def captures(probe: Probe, script: str, shell: list[str]) -> dict[str, Capture]:
    done = subprocess.run([*shell, "-c", script], capture_output=True, timeout=60, check=True)
    parsed = parse(probe, done.stdout)
    assert parsed.complete and parsed.problem is None, parsed.problem
    return {c.fact: c for c in parsed.captures}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_each_section_gets_its_own_output_stderr_and_exit_code(tmp_path: Path, shell: list[str]) -> None:
    probe = talking(tmp_path)
    got = [(c.stdout_text(), c.stderr, c.exit_code) for c in captures(probe, probe.script, shell).values()]
    assert got == [("one\n", "said one", 3), ("two", "said two", 4), ("", "said three", 0)]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0].rsplit("/", 1)[-1])
def test_a_shell_without_local_runs_them_in_subshells_and_gets_the_same(shell: list[str]) -> None:
    probe = full_probe()
    with_local = captures(probe, probe.script, shell)
    assert probe.script.count("_hl() { local _x; }") == 1
    without = probe.script.replace("_hl() { local _x; }", "_hl() { false; }")
    done = subprocess.run([*shell, "-c", without], capture_output=True, timeout=60, check=True)
    stream = zlib.decompress(base64.b64decode(done.stdout.split(b"\n", 1)[1]), wbits=31)
    assert f"{probe.nonce} Y ".encode() not in stream and f"{probe.nonce} R ".encode() not in stream
    forked = {c.fact: c for c in parse(probe, done.stdout).captures}
    volatile = {"processes", "process-table", "df", "log-daemons"}  # they change between two runs
    for key, capture in with_local.items():
        if key.split(":")[0] not in volatile:
            other = forked[key]
            assert (capture.stdout, capture.stderr, capture.exit_code) == (
                other.stdout,
                other.stderr,
                other.exit_code,
            )


def test_a_section_that_ends_its_shell_costs_the_probe_its_completeness(tmp_path: Path) -> None:
    """``exit`` in an in-shell snippet (a broken contract) ends the subshell the in-shell sections run
    in: the probe is incomplete and names the section, which is unusable with those after it, never
    judged; the sections run before (in the main shell) still come back."""
    probe = talking(tmp_path)
    broken = Probe(
        probe.nonce,
        (probe.sections[1], Section("_h() { exit 0; }; _h", probe.sections[0].facts), probe.sections[2]),
        probe.section_cap,
    )
    assert broken.in_shell == (1, 2)
    done = subprocess.run(["sh", "-c", broken.script], capture_output=True, timeout=60, check=True)
    parsed = parse(broken, done.stdout)
    assert not parsed.complete
    assert (
        parsed.problem == "probe sections 1 did not come back whole (section 1 ended the shell they ran in)"
    )
    usable = [c.fact for c in parsed.captures if c.problem is None]
    assert usable == [probe.sections[1].facts[0].key]


def test_in_shell_sections_are_used_only_when_the_last_one_returned(tmp_path: Path) -> None:
    """Sections run before the one that ended their shell are not used either: Z never vouched for them."""
    probe = talking(tmp_path)
    first, second = (Section(f"_h() {{ echo {n}; }}; _h", (FilesMatching(f"{tmp_path}/{n}*"),)) for n in "xy")
    broken = Probe(
        probe.nonce, (first, second, Section("_h() { exit 0; }; _h", probe.sections[0].facts)), 1 << 20
    )
    assert broken.in_shell == (0, 1, 2)
    done = subprocess.run(["sh", "-c", broken.script], capture_output=True, timeout=60, check=True)
    parsed = parse(broken, done.stdout)
    assert (
        parsed.problem
        == "probe sections 0, 1, 2 did not come back whole (section 2 ended the shell they ran in)"
    )
    assert all(c.problem for c in parsed.captures)


def test_a_stream_cut_before_the_in_shell_stderr_leaves_those_sections_unusable(tmp_path: Path) -> None:
    probe = talking(tmp_path)
    done = subprocess.run(["sh", "-c", probe.script], capture_output=True, timeout=60, check=True)
    start, encoded = done.stdout.split(b"\n", 1)
    stream = zlib.decompress(base64.b64decode(encoded), wbits=31)
    cut = stream[: stream.rindex(f"\n{probe.nonce} R ".encode())]  # inside the in-shell stderr
    output = start + b"\n" + base64.b64encode(cut) + b"\n"
    parsed = parse(probe, output)
    assert not parsed.complete and parsed.problem is not None
    usable = [c.fact for c in parsed.captures if c.problem is None]
    assert usable == [probe.sections[1].facts[0].key]  # the section run in a subshell came back whole
