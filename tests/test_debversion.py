"""Debian version comparison held to dpkg's own (``dpkg --compare-versions``) over a corpus: every version
in this machine's dpkg status (about 840), plus hand-made ones (epochs, ``~``, letters
before other characters, leading zeros, revisions, an empty revision part)."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from hds_compliance.facts.debversion import BadVersion, compare_versions, split_version, version_key

TRICKY = [
    "1.0~rc1", "1.0~~", "1.0~", "1.0~a", "1.0", "1.00", "1.0.0", "1.0a", "1.0+b1", "1.0-0", "1.0-1",
    "1.0-1~bpo12+1", "1.0-1+deb12u1", "1.0-1a", "1.0-1.1", "0:1.0", "1:0.9", "2:0", "10", "9",
    "1.2.3-4ubuntu0.1", "1.2.3-4ubuntu0.10", "1.2.3-4build1", "a1.0", "1.0-a", "1.0+~", "1.0.~", "1.0-+",
    "3.0.9-1", "3.0.17-1~deb12u2", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", "2024a-0+deb12u1",
]  # fmt: skip


def _corpus() -> list[str]:
    versions = set(TRICKY)
    status = Path("/var/lib/dpkg/status")
    if status.exists():
        versions |= {
            line.split(":", 1)[1].strip()
            for line in status.read_text().splitlines()
            if line.startswith("Version:")
        }
    return sorted(versions)


def _dpkg(pairs: list[tuple[str, str, str]]) -> list[bool]:
    """dpkg's answer for each (a, relation, b), from one shell running dpkg once per pair."""
    script = "".join(
        f"if dpkg --compare-versions '{a}' {rel} '{b}'; then echo y; else echo n; fi\n" for a, rel, b in pairs
    )
    done = subprocess.run(["sh"], input=script, capture_output=True, text=True, check=True)
    return [word == "y" for word in done.stdout.split()]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_order_is_dpkgs() -> None:
    """Sorted with the model, each version is ``le`` the next for dpkg, and ``eq`` exactly where the model
    says equal: two total orders that agree on every neighbour are the same order. Random pairs are
    compared directly as well."""
    versions = sorted(_corpus(), key=version_key)
    pairs = []
    for a, b in itertools.pairwise(versions):
        pairs.append((a, "le", b))
        pairs.append((a, "eq", b))
    rng = random.Random(5)
    randoms = [(rng.choice(versions), rng.choice(versions)) for _ in range(200)]
    pairs += [(a, "lt", b) for a, b in randoms]
    answers = _dpkg(pairs)
    assert len(answers) == len(pairs)
    wrong = []
    for (a, rel, b), said in zip(pairs, answers, strict=True):
        ours = compare_versions(a, b)
        expected = {"le": ours <= 0, "eq": ours == 0, "lt": ours < 0}[rel]
        if said != expected:
            wrong.append(f"dpkg says {a} {rel} {b} is {said}")
    assert not wrong, wrong[:10]
    assert len(versions) > 100


def test_split_and_refusals() -> None:
    """Epoch, upstream and revision split as dpkg does; what dpkg refuses raises."""
    assert split_version("1:2.0-3-4") == (1, "2.0-3", "4")
    assert split_version("2.0") == (0, "2.0", "")
    assert compare_versions("1.0", "1.0-0") == 0
    for bad in ("", "a:1.0", "1.0-", "1 .0", ":1.0"):
        with pytest.raises(BadVersion):
            split_version(bad)
