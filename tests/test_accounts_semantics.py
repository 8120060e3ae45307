"""Account checks judged against the real programs: bash reading the system start-up files (TMOUT), su and
login shells (system accounts), in a private /etc (tests/authn_ns.py) that a text match gets wrong."""

from __future__ import annotations

from pathlib import Path

from authn_ns import (
    EtcTree,
    needs_root_and,
    trees_fixture,  # noqa: F401 (the trees fixture)
)

from hds_compliance.model import Status

TIMEOUT = {"max_seconds": 1800}


def _tree(trees: list[EtcTree], files: dict[str, object]) -> EtcTree:
    tree = EtcTree(files)  # type: ignore[arg-type]
    trees.append(tree)
    return tree


def _bash_tmout(tree: EtcTree) -> str:
    """``declare -p TMOUT`` in an interactive login bash (what an SSH session gets)."""
    done = tree.run("HOME=/nonexistent bash -l -i -c 'declare -p TMOUT' </dev/null")
    return next((line for line in done.stdout.splitlines() if "TMOUT" in line), "")


def test_tmout_in_a_profile_d_file_that_is_not_sourced(trees: list[EtcTree]) -> None:
    """TMOUT set read-only in /etc/profile.d/tmout.conf: /etc/profile only sources *.sh, bash has no TMOUT."""
    needs_root_and("bash")
    tree = _tree(trees, {"/etc/profile.d/tmout.conf": "readonly TMOUT=600\nexport TMOUT\n"})
    assert _bash_tmout(tree) == ""
    outcome = tree.verdict("accounts.session_timeout", TIMEOUT)
    assert outcome.status is Status.FAIL
    assert "TMOUT is not set" in outcome.message


def test_a_readonly_tmout_keeps_its_value(trees: list[EtcTree]) -> None:
    """a.sh makes TMOUT=600 read-only, b.sh (read later) says TMOUT=0: bash keeps 600. A text match that
    takes the last assignment fails this host."""
    needs_root_and("bash")
    files = {
        "/etc/profile.d/a-tmout.sh": "readonly TMOUT=600\nexport TMOUT\n",
        "/etc/profile.d/b-local.sh": "TMOUT=0 2>/dev/null\n",
    }
    tree = _tree(trees, files)
    assert _bash_tmout(tree) == 'declare -rx TMOUT="600"'
    outcome = tree.verdict("accounts.session_timeout", TIMEOUT)
    assert outcome.status is Status.PASS, outcome.message
    assert "TMOUT=600 (/etc/profile.d/a-tmout.sh line 1)" in outcome.message


def test_a_tmout_that_is_not_readonly(trees: list[EtcTree]) -> None:
    """'TMOUT=600; export TMOUT' without readonly: set, but any user can unset it; the check fails."""
    needs_root_and("bash")
    tree = _tree(trees, {"/etc/profile.d/tmout.sh": "TMOUT=600; export TMOUT\n"})
    assert _bash_tmout(tree) == 'declare -x TMOUT="600"'
    outcome = tree.verdict("accounts.session_timeout", TIMEOUT)
    assert outcome.status is Status.FAIL
    assert "not read-only" in outcome.message


def test_typeset_sets_tmout_readonly_and_exported(trees: list[EtcTree]) -> None:
    """'typeset -xr TMOUT=900' (ComplianceAsCode's form) in /etc/bash.bashrc, which Debian's /etc/profile
    sources for interactive shells."""
    needs_root_and("bash")
    bashrc = Path("/etc/bash.bashrc").read_text() + "typeset -xr TMOUT=900\n"
    tree = _tree(trees, {"/etc/bash.bashrc": bashrc})
    assert _bash_tmout(tree) == 'declare -rx TMOUT="900"'
    outcome = tree.verdict("accounts.session_timeout", TIMEOUT)
    assert outcome.status is Status.PASS, outcome.message


def test_an_empty_shell_field_is_a_login_shell(trees: list[EtcTree]) -> None:
    """A system account whose shell field is empty gets /bin/sh: su runs a command as it. A check looking
    for 'nologin' misses it only if it ignores empty fields; with /usr/sbin/nologin su is refused."""
    needs_root_and("su")
    passwd = Path("/etc/passwd").read_text()
    for shell, runs, expected in (("", True, Status.FAIL), ("/usr/sbin/nologin", False, Status.PASS)):
        users = passwd + f"svc:x:990:990:service:/nonexistent:{shell}\n"
        names = [line.split(":")[0] for line in users.splitlines() if line]
        shadow = "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names)
        tree = _tree(trees, {"/etc/passwd": users, "/etc/shadow": (shadow, 0o640)})
        done = tree.run("su svc -c 'echo ran'")
        assert ("ran" in done.stdout) is runs, done.stdout + done.stderr
        outcome = tree.verdict("accounts.system_accounts_no_login", {"exempt": ["root", "sync", "postgres"]})
        assert outcome.status is expected, outcome.message
        if expected is Status.FAIL:
            assert "svc (uid 990) has the shell /bin/sh (empty field)" in outcome.message
