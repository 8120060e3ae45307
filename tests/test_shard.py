"""Shards and merge: a stable split of the inventory per CI job, put back into one run that gates like a
single scan, fleet checks judged again over all hosts; the wrong set of shards is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LAB_HOST_DATA
from lab.sshlab import SSHLab

from hds_compliance.errors import InputError
from hds_compliance.model import HostRecord, ProbeRun, RunRecord, ScanResult, Scope
from hds_compliance.shard import Shard, merge

EXE = Path(sys.executable).with_name("hds-compliance")


def test_the_split_is_stable_and_covers_every_host_once() -> None:
    # pinned: the same split on every machine and every run (sha256 of the name), whatever the order
    assert [k for k in (1, 2) if Shard(k, 2).holds("hardened")] == [2]
    assert [k for k in (1, 2) if Shard(k, 2).holds("weak")] == [1]
    assert [k for k in (1, 2, 3) if Shard(k, 3).holds("db1")] == [1]
    names = [f"h{i:03d}" for i in range(300)]
    parts = [[n for n in names if Shard(k, 4).holds(n)] for k in range(1, 5)]
    assert sorted(n for part in parts for n in part) == names
    assert all(50 < len(part) < 100 for part in parts), [len(p) for p in parts]


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "a/b", "1", "-1/2"])
def test_a_bad_shard_spec_is_invalid_input(spec: str) -> None:
    with pytest.raises(InputError, match="expected K/N with 1 <= K <= N"):
        Shard.parse(spec)


def _shard(
    spec: str | None, hosts: list[str], digest: str = "d", order: tuple[str, ...] = ("a", "b", "c")
) -> ScanResult:
    run = RunRecord(
        tool_version="t",
        started_at="2026-12-01T00:00:00Z",
        finished_at="2026-12-01T00:00:01Z",
        inventory="inv.py",
        catalog_digest=digest,
        scope=Scope(inventory_hosts=3, shard=spec, order=list(order)),
    )
    records = [HostRecord(name=h, connector="ssh", probe=ProbeRun(connected=True)) for h in hosts]
    return ScanResult(run=run, hosts=records, verdicts=[])


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        ([("1/3", ["a"]), ("2/3", ["b"])], "shard(s) 3 of 3 missing"),
        ([("1/2", ["a"]), ("1/2", ["b"])], "shard 1/2 is also r0.json"),
        ([("1/2", ["a"]), ("1/3", ["b"])], "shards of [2, 3] parts mixed"),
        ([("1/2", ["a"]), (None, ["b"])], "not a shard (scanned without --shard)"),
        ([("1/2", ["a", "b"]), ("2/2", ["b"])], "host b is also in r0.json"),
    ],
)
def test_the_wrong_set_of_shards_is_refused(shards: list[tuple[str | None, list[str]]], message: str) -> None:
    with pytest.raises(InputError) as exc:
        merge([(f"r{i}.json", _shard(spec, hosts)) for i, (spec, hosts) in enumerate(shards)])
    assert message in str(exc.value), str(exc.value)


def test_shards_of_different_catalogues_or_inventories_are_refused() -> None:
    with pytest.raises(InputError) as exc:
        merge([("r1.json", _shard("1/2", ["a"])), ("r2.json", _shard("2/2", ["b"], digest="other"))])
    assert "r2.json: run.catalog_digest: differs from r1.json" in str(exc.value)
    with pytest.raises(InputError) as exc:
        merge([("r1.json", _shard("1/2", ["a"])), ("r2.json", _shard("2/2", ["b"], order=("a", "b", "x")))])
    assert "r2.json: run.scope.order: differs from r1.json" in str(exc.value)


def test_merged_hosts_come_back_in_inventory_order() -> None:
    merged = merge([("r2.json", _shard("2/2", ["c", "a"])), ("r1.json", _shard("1/2", ["b"]))])
    assert [h.name for h in merged.hosts] == ["a", "b", "c"] and merged.scope.outside == {}


def _verdicts(path: Path) -> list[tuple[str, str, str, str, str]]:
    data = json.loads(path.read_text())
    return [
        (v["host"], v["control"], str(v["check"]), json.dumps(v["params"], sort_keys=True), v["status"])
        for v in data["verdicts"]
    ]


def test_shards_merged_give_the_verdicts_of_one_scan(ssh_lab: SSHLab, tmp_path: Path) -> None:
    """The SSH lab scanned whole, then as shards 1/2 and 2/2 (weak alone; hardened and nosudo), merged."""
    data = {
        name: {**d, "roles": [*d.get("roles", []), *(["bastion"] if name == "weak" else [])]}
        for name, d in LAB_HOST_DATA.items()
    }  # type: ignore[list-item]
    inventory = ssh_lab.write_inventory(tmp_path / "inv.py", data)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    whole = run("scan", "-i", str(inventory), "--json", "whole.json", "-q")
    one = run("scan", "-i", str(inventory), "--shard", "1/2", "--json", "s1.json", "-q")
    two = run("scan", "-i", str(inventory), "--shard", "2/2", "--json", "s2.json", "-q")
    assert {whole.returncode, one.returncode, two.returncode} <= {0, 1}, (
        whole.stderr + one.stderr + two.stderr
    )
    # The scan judged each host as it came back and wrote its captures out at once; judged all together
    # from the file, the same bytes.
    again = run("evaluate", "whole.json", "--json", "again.json", "-q")
    assert again.returncode == whole.returncode, again.stderr
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    s1 = json.loads((tmp_path / "s1.json").read_text())
    assert [h["name"] for h in s1["hosts"]] == ["weak"] and s1["run"]["scope"]["shard"] == "1/2"
    # in shard 2, the bastion (weak) is outside: "the fleet has a bastion" cannot be judged there...
    s2 = json.loads((tmp_path / "s2.json").read_text())
    has_bastion = [
        v["status"]
        for v in s2["verdicts"]
        if v["host"] == "hardened" and v["check"] == "fleet.role_present" and v["params"]["role"] == "bastion"
    ]
    assert has_bastion == ["not_reviewed"], has_bastion
    merged = run("merge", "s2.json", "s1.json", "-o", "merged.json", "--junit", "merged.xml")
    assert merged.returncode == whole.returncode, merged.stderr
    assert _verdicts(tmp_path / "merged.json") == _verdicts(tmp_path / "whole.json")
    merged_data = json.loads((tmp_path / "merged.json").read_text())
    assert merged_data["run"]["scope"]["outside"] == {}
    # ...and merged, it is judged again over all hosts: it passes
    assert [
        v["status"]
        for v in merged_data["verdicts"]
        if v["host"] == "hardened" and v["check"] == "fleet.role_present" and v["params"]["role"] == "bastion"
    ] == ["pass"]
    # merging with the other catalogue's options is refused, naming why
    other = run("merge", "s1.json", "s2.json", "--profile", "minimal")
    assert other.returncode == 2 and "run.catalog_digest: not the catalogue given here" in other.stderr


def test_signed_shard_bundles_merge_into_one_bundle_that_verifies(ssh_lab: SSHLab, tmp_path: Path) -> None:
    """Shards 1/2 and 2/2 of the SSH lab, each a signed bundle, merged into a signed bundle: verify accepts
    it, keeps each shard's signature and checks the captures against them; captures changed after the merge
    and signed again are named."""
    from hds_compliance.evidence.bundle import ENVELOPE, MANIFEST, read_bundle, result_of, signed
    from hds_compliance.evidence.signing import load_private, load_public
    from hds_compliance.evidence.verify import verify

    inventory = ssh_lab.write_inventory(tmp_path / "inv.py", LAB_HOST_DATA)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert run("keygen", "k").returncode == 0
    sign = ["--sign-key", "k/signing.key", "-q"]
    for k in (1, 2):
        done = run("scan", "-i", str(inventory), "--shard", f"{k}/2", "--bundle", f"s{k}", *sign)
        assert done.returncode in (0, 1), done.stderr
    done = run("merge", "s1.tar.gz", "s2", "--bundle", "m", "--json", "m.json", *sign)
    assert done.returncode in (0, 1), done.stderr
    key = load_public(tmp_path / "k/signing.pub")
    files = read_bundle(tmp_path / "m").files
    assert {"shards/1-of-2/manifest.dsse.json", "shards/2-of-2/manifest.dsse.json"} <= set(files)
    assert verify(read_bundle(tmp_path / "m"), key).problems == []
    assert run("verify", "m.tar.gz", "--key", "k/signing.pub").returncode == 0
    result, _ = result_of(files)
    assert sorted(h.name for h in result.hosts) == sorted(LAB_HOST_DATA)
    # one host's captures replaced after the merge (its verdicts judged again to match), signed again
    name = next(n for n in files if n.endswith("/captures.json"))
    host = json.loads(files[name])
    host["captures"] = host["captures"][:-1]
    files[name] = json.dumps(host).encode()
    rest = {n: d for n, d in files.items() if n not in (MANIFEST, ENVELOPE)}
    for path, data in signed(rest, load_private(tmp_path / "k/signing.key"), result.run).items():
        (tmp_path / "m" / path).write_bytes(data)
    problems = verify(read_bundle(tmp_path / "m"), key).problems
    assert f"{name}: captures no shard signed" in problems, problems
    assert any("the captures it signed as" in p and "are not here" in p for p in problems), problems
