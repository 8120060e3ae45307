"""The catalogue as a hosting team uses it: coverage of the referential, references that exist, named
parameters set in one place, profiles."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pytest

from hds_compliance.catalog import load_catalog
from hds_compliance.catalog.coverage import coverage
from hds_compliance.catalog.frameworks import frameworks
from hds_compliance.check import registry
from hds_compliance.cli import main
from hds_compliance.errors import InputError
from hds_compliance.evaluate import evaluate
from hds_compliance.model import HostRecord, ProbeRun, Status


def test_coverage_json_lists_every_exi_and_the_other_frameworks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    hds = data["frameworks"]["hds"]["requirements"]
    assert [r["id"] for r in hds] == [f"EXI {n:02d}" for n in range(1, 32)]
    assert all(r["status"] != "not covered" for r in hds), [
        r["id"] for r in hds if r["status"] == "not covered"
    ]
    assert all(set(r["activities"]) == {"1", "2", "3", "4", "5", "6"} for r in hds)
    iso = {r["id"] for r in data["frameworks"]["iso27001_2022"]["requirements"]}
    assert {"A.5.1", "A.8.34", "A.7.14"} <= iso and "A.8.35" not in iso
    anssi = [r["id"] for r in data["frameworks"]["anssi_bp028"]["requirements"]]
    assert anssi == [f"R{n}" for n in range(1, 81)]


def test_an_exi_is_automated_only_where_a_check_decides_it() -> None:
    rows = {r.id: r for r in coverage(load_catalog())["hds"]}
    for row in rows.values():
        if row.status == "automated":
            assert all(c.checks and not c.attestation for c in row.controls), row.id
        if row.status == "attestation":
            assert all(not c.checks and c.attestation for c in row.controls), row.id
    assert rows["EXI 28"].status in ("automated", "partial")  # the inventory's countries decide it
    assert rows["EXI 17"].status == "attestation"  # only the contract can


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iso27001_2022", "A.8.35", "'A.8.35' not in ISO/IEC 27001:2022"),
        ("hds", "EXI 32", "'EXI 32' not in HDS v2"),
        ("anssi_bp028", "R81", "'R81' not in ANSSI-BP-028"),
        ("pgssi_s", "9.9.9", "'9.9.9' not in PGSSI-S"),
    ],
)
def test_lint_refuses_references_that_do_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str, message: str
) -> None:
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "c.yaml").write_text(
        f"- id: TST-01\n  title: A control\n  severity: low\n  references: {{{field}: ['{value}']}}\n"
    )
    assert main(["lint", "--controls", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"c.yaml:4: TST-01.references.{field}" in err and message in err, err


def test_framework_lists_hold_the_referential_counts() -> None:
    known = frameworks()
    assert len(known["hds"].ids) == 31
    annex = [i for i in known["iso27001_2022"].ids if i.startswith("A.")]
    assert len(annex) == 93 and sum(i.startswith("A.8.") for i in annex) == 34
    assert len(known["anssi_bp028"].ids) == 80


CATALOGUE = {
    "c.yaml": """\
        - id: TST-01
          title: Umask
          severity: low
          references: {anssi_bp028: ["R36"]}
          checks:
            - accounts.umask_restrictive: {at_least: {param: umask}}
        - id: TST-02
          title: Passwords hashed
          severity: high
          references: {anssi_bp028: ["R68"]}
          checks:
            - accounts.strong_password_hashes: {}
        """,
    "parameters/team.yaml": """\
        umask:
          type: string
          default: "027"
          description: Bits every umask must mask
          source: a test
        """,
    "profiles/strict.yaml": """\
        id: strict
        title: Strict umask
        select: {anssi_level: enhanced}
        parameters: {umask: "077"}
        """,
    "profiles/minimal-only.yaml": """\
        id: minimal-only
        title: BP-028 minimal level only
        select: {anssi_level: minimal}
        """,
}


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    folder = tmp_path / "controls"
    for name, text in CATALOGUE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def _umask(catalog_dir: Path, **kwargs: object) -> tuple[object, str]:
    catalog = load_catalog(catalog_dir, **kwargs)  # type: ignore[arg-type]
    [ref] = next(c for c in catalog.controls if c.id == "TST-01").checks
    return ref.params["at_least"], catalog.parameters["umask"].set_by


def test_parameters_come_from_one_place_strongest_last(catalogue: Path, tmp_path: Path) -> None:
    assert _umask(catalogue) == ("027", "default")
    assert _umask(catalogue, profile="strict") == ("077", "profile strict")
    values = tmp_path / "team.yaml"
    values.write_text('umask: "007"\n')
    assert _umask(catalogue, profile="strict", parameter_files=[values]) == ("007", f"file {values}")
    assert _umask(catalogue, profile="strict", parameter_files=[values], overrides={"umask": "077"}) == (
        "077",
        "--set",
    )


def test_a_bound_parameter_is_validated_by_the_check_it_feeds(catalogue: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_catalog(catalogue, overrides={"umask": "rwx"})
    assert "TST-01.checks[0].accounts.umask_restrictive.at_least" in str(
        caught.value
    ) and "parameter umask" in str(caught.value)


def test_unknown_parameters_and_profiles_are_input_errors(
    catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["catalog", "--controls", str(catalogue), "--set", "password_length=3"])
    assert code == 2 and "password_length: unknown parameter (known: umask)" in capsys.readouterr().err
    code = main(["catalog", "--controls", str(catalogue), "--profile", "nope"])
    assert code == 2 and "unknown profile 'nope'" in capsys.readouterr().err


def test_profiles_select_by_anssi_level(catalogue: Path) -> None:
    """R36 (umask) is an enhanced recommendation, R68 (stored passwords) a minimal one; levels nest."""
    assert [c.id for c in load_catalog(catalogue, profile="minimal-only").controls] == ["TST-02"]
    assert [c.id for c in load_catalog(catalogue, profile="strict").controls] == ["TST-01", "TST-02"]


def test_shipped_profiles_load_and_nest() -> None:
    full = {c.id for c in load_catalog(profile="full").controls}
    levels = ["anssi-minimal", "anssi-intermediary", "anssi-enhanced", "anssi-high"]
    selected = [{c.id for c in load_catalog(profile=p).controls} for p in levels]
    assert all(a <= b for a, b in itertools.pairwise(selected))
    assert selected[-1] <= full and {c.id for c in load_catalog().controls} == full
    assert load_catalog(profile="anssi-enhanced").parameters["umask"].value == "077"


def test_a_check_left_out_by_a_profile_tag_is_not_reviewed_never_dropped(catalogue: Path) -> None:
    catalog = load_catalog(catalogue).model_copy(update={"exclude_tags": ["slow"], "profile": "quick"})
    spec = registry()["accounts.strong_password_hashes"]
    checks = {**registry(), spec.id: spec.__class__(**{**spec.__dict__, "tags": ("slow",)})}
    record = HostRecord(name="h", connector="ssh", probe=ProbeRun(connected=True, complete=True))
    verdicts = {v.control: v for v in evaluate(catalog, checks, [record])}
    assert verdicts["TST-02"].status is Status.NOT_REVIEWED
    assert "left out by profile quick (check tagged slow)" in verdicts["TST-02"].message


TEAM_CONTROL = """\
- id: TEAM-01
  title: Our own rule, on top of the shipped catalogue
  severity: medium
  checks:
    - sshd.root_login_disabled: {}
"""


def test_a_teams_own_controls_extend_the_shipped_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = load_catalog()
    (tmp_path / "team.yaml").write_text(TEAM_CONTROL)
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "team.yaml").write_text(TEAM_CONTROL.replace("TEAM-01", "TEAM-02"))
    extended = load_catalog(extra=[tmp_path / "team.yaml", folder])
    ids = [c.id for c in extended.controls]
    assert ids[: len(shipped.controls)] == [c.id for c in shipped.controls]  # nothing replaced
    assert ids[len(shipped.controls) :] == ["TEAM-01", "TEAM-02"]
    assert extended.digest != shipped.digest  # results say which catalogue judged them
    assert main(["lint", "--extra-controls", str(tmp_path / "team.yaml")]) == 0
    assert f"ok: {len(shipped.controls) + 1} controls" in capsys.readouterr().out


def test_an_extra_control_may_not_take_a_shipped_id(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(TEAM_CONTROL.replace("TEAM-01", "ACC-01"))
    with pytest.raises(InputError) as exc:
        load_catalog(extra=[tmp_path / "team.yaml", tmp_path / "missing"])
    text = str(exc.value)
    assert "team.yaml:1: ACC-01.id: duplicate control id (first in " in text, text
    assert "missing: extra controls: no such file or folder" in text
