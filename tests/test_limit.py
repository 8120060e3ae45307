"""--limit: host names, group names and globs over either; a pattern that selects nothing is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hds_compliance.cli import main
from hds_compliance.errors import InputError
from hds_compliance.inventory import load_inventory, select_hosts

INVENTORY = """
bastions = [("bastion1", {"roles": ["bastion"]})]
databases = ["db-paris-1", "db-paris-2", "db-lyon-1"]
web = (["web1", "web2"], {"roles": ["app"]})
"""


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inv.py"
    path.write_text(INVENTORY)
    return path


@pytest.mark.parametrize(
    ("patterns", "selected"),
    [
        (["db-paris-1"], ["db-paris-1"]),
        (["databases"], ["db-paris-1", "db-paris-2", "db-lyon-1"]),
        (["db-paris-*"], ["db-paris-1", "db-paris-2"]),
        (["web?", "bastion1"], ["bastion1", "web1", "web2"]),
        (["bastions,db-lyon-1"], ["bastion1", "db-lyon-1"]),
        (["*s"], ["bastion1", "db-paris-1", "db-paris-2", "db-lyon-1"]),  # groups "bastions", "databases"
    ],
)
def test_limit_selects_by_name_group_and_glob(
    inventory_file: Path, patterns: list[str], selected: list[str]
) -> None:
    inventory = load_inventory(inventory_file)
    chosen, outside = select_hosts(inventory, patterns)
    assert [h.name for h in chosen] == selected  # inventory order, each host once
    assert {h.name for h in outside} == {h.name for h in inventory.hosts} - set(selected)


def test_a_pattern_that_selects_nothing_lists_what_there_is(inventory_file: Path) -> None:
    inventory = load_inventory(inventory_file)
    with pytest.raises(InputError) as exc:
        select_hosts(inventory, ["db-pairs-*", "web1"])
    (problem,) = exc.value.problems
    assert "'db-pairs-*' matches no host or group" in str(problem)
    assert "db-paris-1" in str(problem) and "groups: bastions, databases, web" in str(problem)


def test_the_command_exits_2_before_connecting(
    inventory_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "-i", str(inventory_file), "--limit", "nosuchhost"]) == 2
    assert "--limit: 'nosuchhost' matches no host or group" in capsys.readouterr().err
