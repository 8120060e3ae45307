"""sudo checks judged against the real sudo: each scenario is a private /etc (tests/authn_ns.py) that sudo
itself reads, and where a text match over the sudoers files gets the verdict wrong.

The oracle is sudo's behaviour, not its documentation: whether ``sudo`` gives alice's command its own
pseudo-terminal (``use_pty``), whether it records a session under ``iolog_dir``, what ``visudo -c`` accepts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from authn_ns import (
    REGISTRY,
    EtcTree,
    needs_root_and,
    trees_fixture,  # noqa: F401 (the trees fixture)
)

from hds_compliance.check import Context, FactUnavailable, HostInfo
from hds_compliance.evidence.redact import redact
from hds_compliance.model import Status

PASSWD = Path("/etc/passwd").read_text() + "alice:x:2001:2001::/nonexistent:/bin/sh\n"
GROUP = Path("/etc/group").read_text() + "alice:x:2001:\n"
# A synthetic shadow (never a copy of the machine's): every account locked, which PAM's account check accepts.
SHADOW = "".join(f"{line.split(':')[0]}:*:19000:0:99999:7:::\n" for line in PASSWD.splitlines() if line)
ALICE = {"/etc/passwd": PASSWD, "/etc/group": GROUP, "/etc/shadow": (SHADOW, 0o640)}
GRANT = "alice ALL=(root) NOPASSWD: /usr/bin/tty, /usr/bin/id\n"


@pytest.fixture(autouse=True)
def _root() -> None:
    needs_root_and("sudo", "visudo", "script", "runuser")


def _tree(dropins: dict[str, str | tuple[str, int] | tuple[str, int, int, int]], **more: str) -> EtcTree:
    files: dict[str, object] = {**ALICE, **more}
    for name, spec in dropins.items():
        files[f"/etc/sudoers.d/{name}"] = spec if isinstance(spec, tuple) else (spec, 0o440)
    return EtcTree(files)  # type: ignore[arg-type]


def _pty_for_alice(tree: EtcTree) -> bool:
    """Whether sudo runs alice's command in a pseudo-terminal of its own (the command's tty differs)."""
    command = 'script -qec "tty; runuser -u alice -- sudo -n /usr/bin/tty" /dev/null'
    for attempt in range(3):  # script(1) once hung after both ttys were printed, on a loaded CI machine
        try:
            done = tree.run(command, timeout=20)
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    ttys = [line.strip("\x00\r ") for line in done.stdout.splitlines() if "/dev/" in line]
    assert len(ttys) == 2, (done.stdout, done.stderr)
    return ttys[0] != ttys[1]


def _valid(tree: EtcTree) -> None:
    done = tree.run("visudo -c")
    assert done.returncode == 0, done.stdout + done.stderr


def test_user_scoped_negation_before_a_global_entry_is_overridden(trees: list[EtcTree]) -> None:
    """'Defaults:alice !use_pty' then 'Defaults use_pty': sudo applies them in file order, alice gets a pty.

    A text match that fails any '!use_pty' gets this host wrong.
    """
    tree = _tree({"50-hds": "Defaults:alice !use_pty\nDefaults use_pty\n" + GRANT})
    trees.append(tree)
    _valid(tree)
    assert _pty_for_alice(tree)
    assert tree.verdict("sudo.use_pty_enabled").status is Status.PASS


def test_user_scoped_negation_after_the_global_entry_turns_it_off(trees: list[EtcTree]) -> None:
    """'Defaults use_pty' then 'Defaults:alice !use_pty': alice gets no pty; the check fails, saying where."""
    tree = _tree({"50-hds": "Defaults use_pty\nDefaults:alice !use_pty\n" + GRANT})
    trees.append(tree)
    _valid(tree)
    assert not _pty_for_alice(tree)
    outcome = tree.verdict("sudo.use_pty_enabled")
    assert outcome.status is Status.FAIL
    assert "Defaults:alice !use_pty (/etc/sudoers.d/50-hds line 2)" in outcome.message


def test_command_defaults_apply_after_user_defaults(trees: list[EtcTree]) -> None:
    """A command-scoped '!use_pty' beats a later 'Defaults:alice use_pty': command entries apply last."""
    dropin = "Defaults!/usr/bin/tty !use_pty\nDefaults:alice use_pty\n" + GRANT
    tree = _tree({"50-hds": dropin})
    trees.append(tree)
    _valid(tree)
    assert not _pty_for_alice(tree)
    outcome = tree.verdict("sudo.use_pty_enabled")
    assert outcome.status is Status.FAIL
    assert "Defaults!/usr/bin/tty !use_pty" in outcome.message


def test_includedir_is_read_in_lexical_order_skipping_dotted_names(trees: list[EtcTree]) -> None:
    """'10-on' sets use_pty, '2-off' (read AFTER it: lexical, not numeric) turns it off, and '99-fix.conf'
    (a name with a dot, which sudo never reads) turns it back on: sudo gives no pty; the check fails."""
    tree = _tree(
        {
            "10-on": "Defaults use_pty\n" + GRANT,
            "2-off": "Defaults !use_pty\n",
            "99-fix.conf": "Defaults use_pty\n",
        }
    )
    trees.append(tree)
    _valid(tree)
    assert not _pty_for_alice(tree)
    outcome = tree.verdict("sudo.use_pty_enabled")
    assert outcome.status is Status.FAIL
    assert "/etc/sudoers.d/2-off line 1" in outcome.message


def test_a_world_writable_dropin_is_skipped_as_sudo_skips_it(trees: list[EtcTree]) -> None:
    """A world-writable drop-in saying '!use_pty' is ignored by sudo (with a warning): alice keeps her pty."""
    tree = _tree({"50-hds": "Defaults use_pty\n" + GRANT, "60-bad": ("Defaults !use_pty\n", 0o666)})
    trees.append(tree)
    assert _pty_for_alice(tree)
    assert tree.verdict("sudo.use_pty_enabled").status is Status.PASS


def test_a_dropin_owned_by_another_user_is_skipped(trees: list[EtcTree]) -> None:
    """A drop-in owned by uid 2001 is skipped by sudo: its '!use_pty' does not count."""
    tree = _tree(
        {"50-hds": "Defaults use_pty\n" + GRANT, "60-alice": ("Defaults !use_pty\n", 0o440, 2001, 0)}
    )
    trees.append(tree)
    assert _pty_for_alice(tree)
    assert tree.verdict("sudo.use_pty_enabled").status is Status.PASS


def test_relative_include_with_host_name_is_read(trees: list[EtcTree]) -> None:
    """'@include sudoers.%h' in /etc/sudoers.d/50-hds is /etc/sudoers.d/sudoers.<short host name>: a file
    that the includedir skips (it has a dot) but the include reads. Its '!use_pty' applies."""
    host = Path("/proc/sys/kernel/hostname").read_text().strip().split(".")[0]
    tree = _tree(
        {
            "50-hds": "Defaults use_pty\n" + GRANT + "@include sudoers.%h\n",
            f"sudoers.{host}": "Defaults !use_pty\n",
        }
    )
    trees.append(tree)
    _valid(tree)
    assert not _pty_for_alice(tree)
    outcome = tree.verdict("sudo.use_pty_enabled")
    assert outcome.status is Status.FAIL
    assert f"/etc/sudoers.d/sudoers.{host} line 1" in outcome.message


def test_a_missing_include_is_skipped_and_the_rest_still_judged(trees: list[EtcTree]) -> None:
    """sudo warns about a missing '@include' and goes on: the policy is still judged."""
    tree = _tree({"50-hds": "@include /etc/sudoers.missing\nDefaults use_pty\n" + GRANT})
    trees.append(tree)
    assert _pty_for_alice(tree)
    assert tree.verdict("sudo.use_pty_enabled").status is Status.PASS


def test_sudoers_from_sssd_never_pass(trees: list[EtcTree]) -> None:
    """'sudoers: files sss': rules may also come from the directory. Locally compliant -> not_reviewed;
    a local violation -> fail all the same."""
    nsswitch = Path("/etc/nsswitch.conf").read_text() + "sudoers: files sss\n"
    tree = _tree({"50-hds": "Defaults use_pty\n" + GRANT}, **{"/etc/nsswitch.conf": nsswitch})
    trees.append(tree)
    outcome = tree.verdict("sudo.use_pty_enabled")
    assert outcome.status is Status.NOT_REVIEWED
    assert "sss" in outcome.message
    bad = _tree({"50-hds": "Defaults !use_pty\n" + GRANT}, **{"/etc/nsswitch.conf": nsswitch})
    trees.append(bad)
    assert bad.verdict("sudo.use_pty_enabled").status is Status.FAIL


def _recordings(tree: EtcTree, command: str) -> str:
    """Run ``command`` as alice through sudo; list what sudo wrote under /var/log/hds-io."""
    done = tree.run(
        f"runuser -u alice -- sudo -n {command} >/dev/null; find /var/log/hds-io -name log -type f"
    )
    assert "a password is required" not in done.stderr, done.stderr
    return done.stdout


def test_io_logging_for_every_session_and_a_nolog_tag(trees: list[EtcTree]) -> None:
    """Defaults log_output records sessions under iolog_dir; a NOLOG_OUTPUT grant leaves id unrecorded.

    The helper the bastion check uses says the same as sudo does.
    """
    base = "Defaults log_output, log_input\nDefaults iolog_dir=/var/log/hds-io\n"
    tree = _tree({"50-hds": base + GRANT})
    trees.append(tree)
    _valid(tree)
    assert _recordings(tree, "/usr/bin/id")
    outcome = tree.verdict("sudo.io_logging_enabled")
    assert outcome.status is Status.PASS, outcome.message
    assert "/var/log/hds-io" in outcome.message
    gap = _tree({"50-hds": base + "alice ALL=(root) NOPASSWD:NOLOG_OUTPUT:NOLOG_INPUT: /usr/bin/id\n"})
    trees.append(gap)
    _valid(gap)
    assert not _recordings(gap, "/usr/bin/id")
    outcome = gap.verdict("sudo.io_logging_enabled")
    assert outcome.status is Status.FAIL
    assert "/usr/bin/id for alice" in outcome.message


def test_nopasswd_for_all_through_an_alias_and_continuation(trees: list[EtcTree]) -> None:
    """'NOPASSWD: ADMIN' where Cmnd_Alias ADMIN = ALL, on a continued line: full root without a password."""
    dropin = "Cmnd_Alias ADMIN = /usr/bin/id, \\\n    ALL\nalice ALL=(ALL) NOPASSWD: ADMIN\n"
    tree = _tree({"50-hds": dropin})
    trees.append(tree)
    _valid(tree)
    done = tree.run("runuser -u alice -- sudo -n /usr/bin/whoami")
    assert done.stdout.strip() == "root"
    outcome = tree.verdict("sudo.no_nopasswd_all")
    assert outcome.status is Status.FAIL
    assert "NOPASSWD: ADMIN for alice" in outcome.message


def _redacted_verdict(tree: EtcTree, check_id: str) -> tuple[Status, str]:
    """The check on what the probe read in the scenario, after the redaction pass the scan applies."""
    spec = REGISTRY[check_id]
    facts = spec.facts(spec.validate({}))
    captures = {key: redact(capture) for key, capture in tree.collect(facts).items()}
    ctx = Context(HostInfo("scenario", "local"), captures, declared=frozenset(f.key for f in facts))
    try:
        outcome = spec.func(spec.validate({}), ctx)
    except FactUnavailable as exc:
        return Status.ERROR, str(exc)
    return outcome.status, outcome.message


def test_sudo_tags_survive_redaction(trees: list[EtcTree]) -> None:
    """'NOPASSWD: /usr/bin/systemctl, ALL' is a grant of ALL: the redaction pass must leave it whole (a token
    pattern once ate the command list and made this a pass); a plain NOPASSWD grant still passes."""
    tree = _tree({"50-hds": "alice ALL=(root) NOPASSWD: /usr/bin/systemctl, ALL\n"})
    trees.append(tree)
    _valid(tree)
    status, message = _redacted_verdict(tree, "sudo.no_nopasswd_all")
    assert status is Status.FAIL, message
    assert "NOPASSWD: ALL for alice" in message
    tree = _tree({"50-hds": "alice ALL=(root) NOPASSWD: /bin/ls\n"})
    trees.append(tree)
    assert _redacted_verdict(tree, "sudo.no_nopasswd_all")[0] is Status.PASS


def test_a_redacted_sudoers_is_an_error_not_another_verdict(trees: list[EtcTree]) -> None:
    """A secret-looking line in a drop-in is redacted by the scan: no policy is judged on altered text."""
    tree = _tree({"50-hds": "alice ALL=(root) NOPASSWD: ALL\n# api_key=abcdefghijkl\n"})
    trees.append(tree)
    status, message = _redacted_verdict(tree, "sudo.no_nopasswd_all")
    assert status is Status.ERROR
    assert "token redacted" in message


def test_a_hash_and_digit_starts_a_uid_not_a_comment(trees: list[EtcTree]) -> None:
    """'#1 first rule...' reads as a comment, but to sudo '#1' is uid 1: visudo rejects the file, sudo
    refuses the policy, and the checks say they cannot judge it (error), never pass."""
    tree = _tree({"50-hds": '#1 first rule: web operators\n%web ALL=(root) /usr/bin/id ""\n'})
    trees.append(tree)
    done = tree.run("visudo -c")
    assert done.returncode != 0 and "syntax error" in done.stdout + done.stderr
    outcome = tree.verdict("sudo.no_nopasswd_all")
    assert outcome.status is Status.ERROR
    assert "/etc/sudoers.d/50-hds line 1: cannot read" in outcome.message
