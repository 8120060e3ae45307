"""The worker's indexed known_hosts: paramiko's answers, and ssh-keygen's, from the entries that can match.

The judge is ``ssh-keygen -F NAME`` (OpenSSH's own lookup, hashed entries included) on a real file of real
keys, and paramiko's linear ``HostKeys.lookup`` on the same file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from paramiko.hostkeys import HostKeys

from hds_compliance.collect.known_hosts import IndexedHostKeys


def _keygen(tmp_path: Path, kind: str, name: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)], check=True)
    kind_field, blob = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind_field} {blob}"


@pytest.fixture(scope="module")
def known_hosts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A plain known_hosts of 300 hosts and its hashed twin (``ssh-keygen -H``), with the cases that matter:
    several names on a line, a port in brackets, two key types for one host, one name on two lines; and a
    file of both kinds."""
    tmp = tmp_path_factory.mktemp("known_hosts")
    ed, ed2, ec = (_keygen(tmp, kind, f"k{n}") for n, kind in enumerate(("ed25519", "ed25519", "ecdsa")))
    lines = [f"[10.0.{n // 200}.{n % 200}]:2222 {ed}" for n in range(300)]
    lines += [
        f"db1,10.1.0.1 {ed}",
        f"db1 {ec}",  # a second key type for db1
        f"web1 {ed2}",
        f"web1 {ed}",  # the same type again: the first line's key is the one that counts
    ]
    plain = tmp / "plain"
    plain.write_text("\n".join(lines) + "\n")
    hashed = tmp / "hashed"
    hashed.write_text(plain.read_text())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True, capture_output=True)
    # half hashed, half plain: the index must read both kinds in one file
    mixed = tmp / "mixed"
    mixed.write_text(hashed.read_text().splitlines(keepends=True)[0] + "\n".join(lines[1:]) + "\n")
    return plain, hashed, mixed


NAMES = ["[10.0.0.0]:2222", "[10.0.1.99]:2222", "10.0.1.99", "db1", "10.1.0.1", "web1", "nowhere", "[db1]:22"]


def _answer(keys: HostKeys, name: str) -> dict[str, str] | None:
    found = keys.lookup(name)
    return None if found is None else {kind: found[kind].get_base64() for kind in found}


def _ssh_keygen_answer(path: Path, name: str) -> dict[str, str] | None:
    out = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        if line and not line.startswith("#"):
            _names, kind, blob = line.split()[:3]
            found.setdefault(kind, blob)  # the first line of a type, as paramiko's mapping gives it
    return found or None


@pytest.mark.parametrize("which", [0, 1, 2], ids=["plain", "hashed", "mixed"])
def test_lookup_gives_paramiko_and_ssh_keygen_answers(
    known_hosts: tuple[Path, Path, Path], which: int
) -> None:
    path = known_hosts[which]
    indexed, linear = IndexedHostKeys(str(path)), HostKeys(str(path))
    for name in NAMES:
        expected = _answer(linear, name)
        assert _answer(indexed, name) == expected, name
        assert expected == _ssh_keygen_answer(path, name), name
    assert len(_answer(indexed, "db1") or {}) == 2  # both key types of db1, from two lines
    assert _answer(indexed, "nowhere") is None


def test_a_hashed_name_given_as_the_name_matches_its_own_text_only(
    known_hosts: tuple[Path, Path, Path],
) -> None:
    hashed_name = known_hosts[1].read_text().split()[0]
    indexed, linear = IndexedHostKeys(str(known_hosts[1])), HostKeys(str(known_hosts[1]))
    assert _answer(indexed, hashed_name) == _answer(linear, hashed_name) is not None


def test_plain_names_are_not_compared_with_every_entry(
    known_hosts: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed, linear = IndexedHostKeys(str(known_hosts[0])), HostKeys(str(known_hosts[0]))
    compared: list[str] = []
    real = HostKeys._hostname_matches
    monkeypatch.setattr(
        HostKeys, "_hostname_matches", lambda self, h, e: compared.append(h) or real(self, h, e)
    )
    for name in NAMES:
        indexed.lookup(name)
    # paramiko alone compares each name with all 304 entries; the index with the lines listing it
    assert 0 < len(compared) <= 2 * len(NAMES)
    compared.clear()
    linear.lookup("db1")
    assert len(compared) == 304


def test_entries_added_after_the_first_lookup_are_found(
    known_hosts: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    indexed = IndexedHostKeys(str(known_hosts[0]))
    assert indexed.lookup("late") is None
    key = HostKeys(str(known_hosts[0])).lookup("db1")["ssh-ed25519"]  # type: ignore[index]
    indexed.add("late", "ssh-ed25519", key)
    assert _answer(indexed, "late") == {"ssh-ed25519": key.get_base64()}
    indexed.clear()
    assert indexed.lookup("late") is None and indexed.lookup("db1") is None
