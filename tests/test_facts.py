"""Every fact kind pinned by fixtures: the exact command it renders, a recorded output, the parsed value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fact_fixtures import fixtures, load_capture, plain, replace_block

from hds_compliance.facts import KINDS, FactError

FIXTURES = fixtures()

CAPTURES = Path(__file__).parent / "captures"


@pytest.mark.parametrize(("kind", "name", "data"), FIXTURES, ids=[f"{k}/{n}" for k, n, _ in FIXTURES])
def test_fact_fixture(kind: str, name: str, data: dict[str, Any]) -> None:
    fact = KINDS[kind](data["arg"])
    assert data.get("source"), "a fixture says where its output comes from"
    assert fact.script() == data["command"], "the fact renders another command than the one recorded"
    capture = load_capture(fact.key, data["capture"])
    lookup = {key: load_capture(key, fields) for key, fields in (data.get("follow_ups") or {}).items()}
    if [f.key for f in fact.follow_ups(capture)] != list(lookup):
        pytest.fail(f"follow-ups differ: {[f.key for f in fact.follow_ups(capture)]} != {list(lookup)}")
    if "error" in data:
        with pytest.raises(FactError, match=data["error"]):
            fact.parse_with(capture, lookup.get)
    else:
        assert plain(fact.parse_with(capture, lookup.get)) == data["value"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_fact_kind_has_fixtures(kind: str) -> None:
    assert any(k == kind for k, _, _ in FIXTURES), f"no fixture in tests/facts/{kind}/"


@pytest.mark.parametrize(
    ("file", "key", "prefix"), [("sshd.yaml", "sshd-hostkeys", ""), ("mounts.yaml", None, "tmp_mount_")]
)
def test_record_scripts_rewrite_a_block_and_nothing_else(file: str, key: str | None, prefix: str) -> None:
    """What the record scripts write back (replace_block) is byte for byte the file when the fields are
    the ones it holds, for every scene they rewrite: blank lines inside literal text and between scenes
    included."""
    text = (CAPTURES / file).read_text()
    recorded = yaml.safe_load(text)["recorded"]
    scenes = [n for n, c in recorded.items() if n.startswith(prefix) and (key is None or key in c)]
    assert scenes
    for name in scenes:
        headers = [f"  {name}: &{name}", *([f"    {key}:"] if key else [])]
        fields = recorded[name][key] if key else recorded[name]
        assert replace_block(text, headers, fields) == text, name
