"""The file-system walk, run for real: one find for every walk check, local file systems only, each walked
once, under nice and ionice, counts with at most 50 paths, symbolic links not taken for world-writable files.

Each test mounts a tmpfs on /srv (and what else it needs) in a private mount namespace that dies with the
probe, fills it, and runs the FileWalk fact's own snippet there.
"""

from __future__ import annotations

import pytest
from kernel_lab import collect, evaluate, needs_root, staging_dir

from hds_compliance.catalog import load_catalog
from hds_compliance.check import HostInfo, Outcome, registry
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.facts.walk import FileWalk, WalkResult
from hds_compliance.model import Capture, Status

# Paths other test labs of this machine write to (spools, sudo timestamps, scratch trees): not ours to judge.
SKIP = ["/run/sudo", "/var/lib/docker", "/var/spool/postfix", "/var/tmp"]


@pytest.fixture(autouse=True)
def _root() -> None:
    needs_root()


def test_one_find_serves_every_walk_check_of_the_catalogue() -> None:
    """The four walk checks of the catalogue share one fact, so the probe runs find once."""
    catalog = load_catalog()
    checks = registry()
    host = HostInfo("h", "ssh")
    facts = {
        f.key: f
        for control in catalog.controls
        for ref in control.checks
        if ref.id.startswith("walk.")
        for f in checks[ref.id].facts_for(checks[ref.id].validate(ref.params), host)
    }
    walk_checks = {ref.id for c in catalog.controls for ref in c.checks if ref.id.startswith("walk.")}
    assert len(walk_checks) == 4 and len(facts) == 1
    assert all("fs-walk" in checks[c].tags for c in walk_checks)
    script = render(list(facts.values()), new_nonce()).script
    assert script.count(" find ") == 1


FINDINGS = """
mount -t tmpfs hds-kernel /srv
cd /srv
touch orphan && chown 4242:4343 orphan
mkdir drop sticky skipped && chmod 0777 drop && chmod 1777 sticky
touch sticky/open && chmod 0666 sticky/open
ln -s /etc/passwd sticky/link
touch "$(printf 'two\\nlines')" && chown 4242 "$(printf 'two\\nlines')"
for i in $(seq 1 60); do touch sticky/w$i; chmod 0606 sticky/w$i; done
touch skipped/hidden && chmod 0666 skipped/hidden
mkdir proc && mount -t proc proc /srv/proc
mkdir inner && mount -t tmpfs hds-inner /srv/inner && touch inner/x && chmod 0666 inner/x
cp /bin/true helper && chmod 4755 helper
mkdir again && mount --bind / /srv/again
"""
# A find placed first on the probe's PATH reports the priority it was started with, then runs the real one.
FAKE_FIND = """
mount -t tmpfs hds-kernel /usr/local/bin
printf '#!/bin/sh\\necho "$(nice) $(ionice -p $$)" > {report}\\nexec /usr/bin/find "$@"\\n' \\
    > /usr/local/bin/find
chmod 755 /usr/local/bin/find
"""


Walked = tuple[WalkResult, dict[str, Capture], str]


@pytest.fixture(scope="module")
def walked() -> Walked:
    """One real walk (they cost seconds): the findings tree, a bind mount of /, a reporting find."""
    needs_root()
    fact = FileWalk(",".join(sorted([*SKIP, "/srv/skipped"])))  # the checks sort their skip_paths too
    with staging_dir() as staging:
        report = staging / "priority"
        setup = f"set -e\n{FINDINGS}\n{FAKE_FIND.format(report=report)}\nexec sh -s"
        captures = collect([fact], ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup])
        priority = report.read_text()
    return fact.parse(captures[fact.key]), captures, priority


def test_findings_counted_and_at_most_50_paths_sent(
    walked: Walked,
) -> None:
    """A world-writable file in a sticky directory, a symbolic link (0777, not a file), 60 more
    world-writable files (62 with a nested tmpfs: 50 paths sent), a pruned directory, a proc mount (pseudo:
    not walked), a nested tmpfs (local: walked), an unowned name holding a newline (sent back whole)."""
    result = walked[0]
    assert "/srv" in result.roots and "/srv/inner" in result.roots and "/srv/proc" not in result.roots
    assert result.counts["ww_file"] == 62 and len(result.paths["ww_file"]) == 50
    assert not any(p.startswith(("/srv/skipped", "/srv/proc")) for p in result.paths["ww_file"])
    assert "/srv/sticky/link" not in result.paths["ww_file"]
    assert result.paths["ww_dir_no_sticky"] == ("/srv/drop",)
    assert "/srv/orphan" in result.paths["nouser"] and "/srv/orphan" in result.paths["nogroup"]
    assert "/srv/two\nlines" in result.paths["nouser"]
    assert "/srv/helper" in result.paths["setuid"]


def test_a_bind_mount_of_a_walked_file_system_is_not_walked_twice(
    walked: Walked,
) -> None:
    """-xdev keeps find on each file system; a second view of / (a bind mount) is not another one."""
    result = walked[0]
    assert "/srv/again" not in result.roots
    assert "/usr/bin/sudo" in result.paths["setuid"]
    assert not any(p.startswith("/srv/again") for cls in result.paths.values() for p in cls)


def test_the_walk_runs_at_the_lowest_cpu_and_io_priority(
    walked: Walked,
) -> None:
    """nice -n 19 and ionice -c 3 (idle), as the find started by the probe saw them."""
    nice, io_class = walked[2].split(" ", 1)
    assert nice == "19" and io_class.startswith("idle")


def test_walk_checks_judge_a_real_walk(walked: Walked) -> None:
    """The checks on the real walk: each fails and names what it found."""
    params = {"skip_paths": [*SKIP, "/srv/skipped"]}
    messages = {}
    for check in ("walk.no_unowned_files", "walk.world_writable_dirs_sticky", "walk.no_world_writable_files"):
        outcome = evaluate(check, params, walked[1])
        assert isinstance(outcome, Outcome) and outcome.status is Status.FAIL, (check, outcome)
        messages[check] = outcome.message
    assert "62 world-writable regular files (first 50 shown)" in messages["walk.no_world_writable_files"]
    assert "/srv/drop" in messages["walk.world_writable_dirs_sticky"]
    assert "/srv/orphan" in messages["walk.no_unowned_files"]
