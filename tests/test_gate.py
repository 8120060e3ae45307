"""The gate a pipeline trusts: it never passes on nothing, every command exits with a documented code, an
output that cannot be written is exit 3 in one line, and signals stop the scan without leaving a process
or a file that looks complete."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LAB_HOST_DATA, junit_schema_errors
from lab.netfail import HangingServer
from lab.sshlab import SSHLab

from hds_compliance.cli import main
from hds_compliance.gate import EXIT_CODES, gate
from hds_compliance.model import Severity, Status, Verdict

EXE = Path(sys.executable).with_name("hds-compliance")
LAB_CONTROLS = Path(__file__).parent / "data" / "lab_controls"
README = Path(__file__).resolve().parents[1] / "README.md"
_OUTPUTS = ("--junit", "j.xml", "--json", "r.json", "--connect-timeout", "60")


def _verdict(status: Status, severity: Severity = Severity.HIGH) -> Verdict:
    return Verdict(
        host="h", control="LAB-01", check="c", index=0, status=status, severity=severity, message="m"
    )


def test_a_run_that_judged_nothing_never_passes() -> None:
    assert gate([]).exit_code == 1
    nothing = [_verdict(Status.NOT_APPLICABLE), _verdict(Status.NOT_REVIEWED)]
    assert gate(nothing).exit_code == 1 and not gate(nothing).blocking
    assert gate([*nothing, _verdict(Status.PASS)]).exit_code == 0
    # a fail below the threshold still counts as judged: the gate passes on it
    assert gate([_verdict(Status.FAIL, Severity.LOW)], Severity.HIGH).exit_code == 0


def _controls(tmp_path: Path, text: str) -> Path:
    """A controls folder of one file holding ``text``."""
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "c.yaml").write_text(text)
    return folder


def _run(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize("content", ["", "# only a comment\n", "[]\n"])
def test_a_controls_folder_of_empty_files_is_invalid_input(tmp_path: Path, content: str) -> None:
    _controls(tmp_path, content)
    for command in (["lint"], ["scan", "-q"], ["coverage"]):
        done = _run(*command, "--controls", "controls", cwd=tmp_path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "controls/c.yaml:1: holds no controls (empty, or only comments)" in done.stderr
        assert "PASSED" not in done.stdout


def test_a_scan_of_controls_all_out_of_scope_judges_nothing_and_fails(tmp_path: Path) -> None:
    """Every control is for activity 6 only; the host serves activity 1: nothing is judged, never a pass."""
    _controls(
        tmp_path,
        "- id: LAB-01\n  title: Root login is refused\n  severity: high\n  activities: [6]\n"
        "  checks:\n    - sshd.root_login_disabled: {}\n",
    )
    (tmp_path / "inv.py").write_text("h = [('@local', {'hds_activities': [1]})]\n")
    done = _run("scan", "--controls", "controls", "-i", "inv.py", "--junit", "j.xml", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gate FAILED (fail-on low): nothing was judged" in done.stdout
    assert "not_applicable" in (tmp_path / "j.xml").read_text()


def test_evaluate_of_a_results_file_without_hosts_is_invalid_input(tmp_path: Path) -> None:
    run = {
        "tool_version": "t",
        "started_at": "2026-12-01T00:00:00Z",
        "finished_at": "2026-12-01T00:00:01Z",
        "inventory": "x",
        "catalog_digest": "d",
    }
    (tmp_path / "r.json").write_text(
        json.dumps({"schema_version": 1, "run": run, "hosts": [], "verdicts": []})
    )
    done = _run("evaluate", "r.json", "--controls", str(LAB_CONTROLS), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "r.json: hosts: no hosts: nothing to evaluate" in done.stderr


def test_catalogue_and_inventory_problems_are_reported_together(tmp_path: Path) -> None:
    _controls(
        tmp_path,
        "- id: LAB-01\n  title: Root login is refused\n  severity: high\n"
        "  checks:\n    - no.such_check: {}\n",
    )
    (tmp_path / "inv.py").write_text("h = [('db1', {'ssh_port': 'abc'})]\n")
    done = _run("scan", "--controls", "controls", "-i", "inv.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "no.such_check" in done.stderr and "db1.ssh_port: Input should be a valid integer" in done.stderr
    assert "collector" not in done.stderr  # before any connection


def test_the_exit_code_table_is_in_help_and_readme() -> None:
    done = subprocess.run([str(EXE), "--help"], capture_output=True, text=True)
    assert EXIT_CODES.strip() in done.stdout.replace("\r", "")
    readme = README.read_text()
    for code in ("0", "1", "2", "3", "130"):
        assert f"| {code} |" in readme or f"| `{code}` |" in readme, code


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A recorded local scan's results (the lab catalogue), for the output tests."""
    done = _run("scan", "--controls", str(LAB_CONTROLS), "--json", "r.json", "-q", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    return tmp_path / "r.json"


def test_an_output_on_stdout_moves_the_console_to_stderr(results: Path) -> None:
    done = _run("evaluate", str(results), "--controls", str(LAB_CONTROLS), "--junit", "-", cwd=results.parent)
    assert done.returncode in (0, 1)
    assert done.stdout.startswith("<?xml") and not junit_schema_errors(done.stdout)
    assert "gate " in done.stderr and "gate " not in done.stdout
    both = _run("evaluate", str(results), "--junit", "-", "--json", "-", cwd=results.parent)
    assert both.returncode == 2 and "only one output can be '-'" in both.stderr


@pytest.mark.parametrize("target", ["folder", "full", "proc"])
def test_an_output_that_cannot_be_written_is_exit_3_in_one_line(results: Path, target: str) -> None:
    """A directory, a full disk (/dev/full answers ENOSPC), a place no file can be created (/proc)."""
    where = {"folder": str(results.parent), "full": "/dev/full", "proc": "/proc/version"}[target]
    done = _run(
        "evaluate", str(results), "--controls", str(LAB_CONTROLS), "--junit", where, cwd=results.parent
    )
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hds-compliance: cannot write {where}"), lines
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("fails", ["opening", "writing"])
def test_a_scan_whose_captures_cannot_be_spooled_is_exit_3_for_its_json(
    tmp_path: Path, fails: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scan writes each host's captures out as it is judged (for --json). When the temporary file cannot be
    made, or a write to it fails (a full disk), the scan still judges and writes its JUnit; the JSON is exit
    3 in one line, and no file of it is left."""
    import errno
    import tempfile

    from hds_compliance import cli, report

    def full(*_args: object, **_kwargs: object) -> object:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if fails == "opening":
        monkeypatch.setattr(report.tempfile, "TemporaryFile", full)
    else:
        real = tempfile.TemporaryFile  # the module is patched for everyone: keep the real one

        class Full:
            def __init__(self) -> None:
                self.inner = real()

            def __getattr__(self, name: str) -> object:
                return full if name == "write" else getattr(self.inner, name)

        monkeypatch.setattr(report.tempfile, "TemporaryFile", Full)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["scan", "--controls", str(LAB_CONTROLS), "--junit", "j.xml", "--json", "r.json", "-q"])
    err = capsys.readouterr().err
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the spool of captures failed" in lines[0], lines
    assert "No space left on device" in lines[0]
    assert (tmp_path / "j.xml").exists() and not (tmp_path / "r.json").exists()
    assert not list(tmp_path.glob(".r.json.*")), "no partial file left behind"


def test_a_closed_pipe_is_exit_3_without_a_traceback(results: Path) -> None:
    """``hds-compliance evaluate ... | head``: the reader is gone; the writer says so and exits 3."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader already left: every write gets EPIPE
    try:
        done = subprocess.run(
            [str(EXE), "evaluate", str(results), "--controls", str(LAB_CONTROLS), "--json", "-"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=results.parent,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "cannot write standard output" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (by /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_scan_its_worker_and_writes_nothing(
    tmp_path: Path, signum: int, code: int
) -> None:
    """A scan of a host that accepts TCP and never answers (the worker waits for its banner): interrupted
    then, it leaves no process behind and no output file, says so in one line, and exits 130 or 143."""
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        port = hanging.getsockname()[1]
        (tmp_path / "inv.py").write_text(
            f"h = [('stuck', {{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, 'hds_activities': [1]}})]\n"
        )
        scan = subprocess.Popen(
            [str(EXE), "scan", "-i", "inv.py", "--controls", str(LAB_CONTROLS), *_OUTPUTS],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        hanging.settimeout(60)
        connection, _ = hanging.accept()  # the worker is connecting: the scan is under way
        seen = _descendants(scan.pid)
        assert seen, "the scan started no worker"
        scan.send_signal(signum)
        out, err = scan.communicate(timeout=30)
        connection.close()
    assert scan.returncode == code, err
    assert err.strip().splitlines() == [
        f"hds-compliance: interrupted ({signal.Signals(signum).name}): stopped, no output written"
    ], err
    assert "gate" not in out
    deadline = time.monotonic() + 10
    while _alive(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(seen), [_cmdline(p) for p in _alive(seen)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv.py"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_main_maps_an_internal_error_to_a_failed_gate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug of ours never exits 0 (nor an undocumented code): it is a failed gate, with the traceback."""
    import hds_compliance.cli as cli

    def broken(_args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setitem(cli._COMMANDS, "checks", broken)
    assert main(["checks"]) == 1
    assert "internal error" in capsys.readouterr().err


def _listener_sessions(lab: SSHLab) -> set[int]:
    """Processes below the lab's sshd listeners: the hosts' own, and the sessions, shells and probes of a
    scan under way."""
    configs = [str(lab.sshd_config_path(name)) for name in lab.hosts]
    listeners = {
        p for p in _descendants(1) if any(c in _cmdline(p) for c in configs) and "sshd" in _cmdline(p)
    }
    return {p for listener in listeners for p in _descendants(listener)}


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_an_ssh_lab_scan_leaves_no_process(
    ssh_lab: SSHLab, tmp_path: Path, signum: int, code: int
) -> None:
    """The SSH lab's hosts are probed over real SSH while one more host hangs: interrupted once the lab's
    sessions have begun, nothing of the scan survives, here or on the lab hosts, and nothing is written."""
    with HangingServer() as hanging:
        inventory = ssh_lab.write_inventory(tmp_path / "inv.py", LAB_HOST_DATA)
        inventory.write_text(
            inventory.read_text()
            + f"stuck = [('stuck', {{'ssh_hostname': '127.0.0.1', 'ssh_port': {hanging.port}}})]\n"
        )
        before = _listener_sessions(ssh_lab)  # the lab hosts' own processes (auditd, chronyd...)
        hardened_log = ssh_lab.log_path("hardened")
        hardened_log.write_text("")
        scan = subprocess.Popen(
            [str(EXE), "scan", "-i", str(inventory), "--controls", str(LAB_CONTROLS), *_OUTPUTS],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while "Starting session" not in hardened_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Starting session" in hardened_log.read_text(), "the scan never reached the lab"
        seen = _descendants(scan.pid)
        scan.send_signal(signum)
        out, err = scan.communicate(timeout=30)
    assert "gate" not in out
    assert scan.returncode == code, err
    assert "Traceback" not in err and f"interrupted ({signal.Signals(signum).name})" in err
    deadline = time.monotonic() + 10
    while (_alive(seen) or _listener_sessions(ssh_lab) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(seen), [_cmdline(p) for p in _alive(seen)]
    left = _listener_sessions(ssh_lab) - before
    assert not left, [_cmdline(p) for p in left]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv.py"]
