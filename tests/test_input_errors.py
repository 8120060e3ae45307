"""Bad input: exit code 2 and a message that names the file, the line and the field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hds_compliance.cli import main

GOOD_CONTROL = """\
- id: TST-01
  title: Root login refused
  severity: high
  references: {hds: ["EXI 05"]}
  checks:
    - sshd.option: {name: permitrootlogin, expect: "no"}
"""


def lint(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], name: str = "controls.yaml"
) -> tuple[int, str]:
    folder = tmp_path / "controls"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    code = main(["lint", "--controls", str(folder)])
    return code, capsys.readouterr().err


def test_good_catalogue_lints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = lint(tmp_path, GOOD_CONTROL, capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("- id: TST-01\n  title: [unclosed\n", 3, "flow sequence started on line 2"),
        (
            GOOD_CONTROL.replace("sshd.option", "sshd.no_such_check"),
            6,
            "TST-01.checks[0]: unknown check id 'sshd.no_such_check'",
        ),
        (
            GOOD_CONTROL.replace('expect: "no"', "expect: 3"),
            6,
            "TST-01.checks[0].sshd.option.expect: Input should be a valid string",
        ),
        (
            GOOD_CONTROL.replace('expect: "no"', 'expect: "no", colour: red'),
            6,
            "TST-01.checks[0].sshd.option.colour: Extra inputs",
        ),
        (GOOD_CONTROL.replace("severity: high", "severity: urgent"), 3, "TST-01.severity: Input should be"),
        (
            GOOD_CONTROL.replace("  severity: high\n", "  severity: high\n  owner: me\n"),
            4,
            "TST-01.owner: Extra inputs",
        ),
        (GOOD_CONTROL.replace('"EXI 05"', '"EXI 32"'), 4, "TST-01.references.hds"),
        (
            GOOD_CONTROL.replace("  severity: high\n", "  severity: high\n  activities: [2, 7]\n"),
            4,
            "HDS activities are 1 to 6",
        ),
        (
            GOOD_CONTROL.replace("  severity: high\n", "  severity: high\n  severity: low\n"),
            4,
            "duplicate key 'severity'",
        ),
        (GOOD_CONTROL + GOOD_CONTROL.replace("Root login", "Again"), 7, "TST-01.id: duplicate control id"),
        ("id: TST-01\n", 1, "a control file is a YAML list of controls"),
    ],
)
def test_catalogue_errors_name_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, expected: str
) -> None:
    code, err = lint(tmp_path, text, capsys)
    assert code == 2
    assert f"controls.yaml:{line}: " in err, err
    assert expected in err, err


def test_all_problems_are_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = GOOD_CONTROL.replace("sshd.option", "nope.one") + GOOD_CONTROL.replace("TST-01", "TST-02").replace(
        "severity: high", "severity: huge"
    )
    code, err = lint(tmp_path, bad, capsys)
    assert code == 2
    assert "nope.one" in err and "TST-02.severity" in err


INVENTORY_CASES = [
    ("web = [('web1', {'ssh_hostname': '10.0.0.1'),]\n", 1, "invalid Python"),
    ("web = [('web1', {'hds_activities': [3, 9]})]\n", 1, "web1.hds_activities"),
    ("web = [\n    ('web1', {'location_country': 'UK'}),\n]\n", 2, "not an ISO 3166-1 alpha-2"),
    ("web = ['@docker/debian:12']\n", 1, "connector @docker is refused"),
    ("web = ['@dockerssh/h:img']\n", 1, "connector @dockerssh is refused"),
    ("web = [('w', {'ssh_strict_host_key_checking': 'accept-new'})]\n", 1, "must be 'yes'"),
    ("import os\nweb = [os.environ['NO_SUCH_VARIABLE_HDS']]\n", 2, "KeyError"),
    ("x = 1\n", None, "no hosts"),
    # an inventory decides hosts, never the exit code (it is run in our process)
    ("import sys\nsys.exit(0)\n", 2, "the inventory exits (sys.exit(0))"),
    ("import sys\nweb = ['w']\nsys.exit(3)\n", 3, "the inventory exits (sys.exit(3))"),
    # a host in scope of nothing would be judged on nothing
    (
        "web = [('w', {'hds_activities': []})]\n",
        1,
        "w.hds_activities: a host serves at least one HDS activity",
    ),
    # strict types: "no" is not False, "abc" not a port; typos in our namespaces are named
    ("web = [('w', {'hds_sudo': 'no'})]\n", 1, "w.hds_sudo: Input should be a valid boolean"),
    ("web = [('w', {'ssh_port': 'abc'})]\n", 1, "w.ssh_port: Input should be a valid integer"),
    ("web = [('w', {'ssh_port': 70000})]\n", 1, "w.ssh_port: Input should be less than or equal to 65535"),
    ("web = [('w', {'hds_activites': [1]})]\n", 1, "w.hds_activites: unknown host data key (a typo?)"),
    ("web = [('w', {'ssh_usr': 'admin'})]\n", 1, "w.ssh_usr: unknown host data key"),
    ("web = [('w', {'_sudo': 'yes'})]\n", 1, "w._sudo: must be True or False"),
    ("web = [('w', {'roles': 'bastion'})]\n", 1, "w.roles: Input should be a valid list"),
]


@pytest.mark.parametrize(("text", "line", "expected"), INVENTORY_CASES)
def test_broken_inventory_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int | None, expected: str
) -> None:
    inventory = tmp_path / "inventory.py"
    inventory.write_text(text)
    code = main(["scan", "-i", str(inventory)])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"inventory.py:{line}: " if line else "inventory.py: ") in err, err
    assert expected in err, err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--fail-on", "sometimes"])
    assert exc.value.code == 2


def test_installed_command_reports_errors_from_any_folder(tmp_path: Path) -> None:
    """The console script, run from an unrelated folder, on a broken catalogue."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bad.yaml").write_text(GOOD_CONTROL.replace("sshd.option", "sshd.optoin"))
    exe = Path(sys.executable).with_name("hds-compliance")
    done = subprocess.run(
        [str(exe), "lint", "--controls", "mine"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "mine/bad.yaml:6: TST-01.checks[0]: unknown check id 'sshd.optoin'" in done.stderr
