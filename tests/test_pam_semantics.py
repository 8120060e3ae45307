"""PAM and login.defs checks judged against the real programs: pam_unix, pam_pwquality, pam_faillock and
pam_securetty run by pamtester, libpwquality by pwscore, libuser by lpasswd, each in a private /etc
(tests/authn_ns.py) holding a host state that a text match over the configuration files gets wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from authn_ns import (
    DEBIAN12_COMMON_AUTH,
    DEBIAN12_COMMON_PASSWORD,
    EtcTree,
    faillock_stack,
    needs_root_and,
    pam_module_dirs,
    trees_fixture,  # noqa: F401 (the trees fixture)
)

from hds_compliance.model import Status

USERS = Path("/etc/passwd").read_text() + "alice:x:2001:2001::/nonexistent:/bin/sh\n"
GROUPS = Path("/etc/group").read_text() + "alice:x:2001:\n"
GOOD = "Zq9#vLm2@Tb"  # 11 characters, four classes
LOGIN_DEFS = Path("/etc/login.defs").read_text()
QUALITY = {"min_length": 12, "min_classes": 4}
LOCKOUT = {"attempts": 3, "seconds": 60}


def _hash(password: str) -> str:
    done = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _shadow(overrides: dict[str, str]) -> str:
    """A synthetic shadow (never a copy of the machine's): every account locked unless given."""
    names = [line.split(":")[0] for line in USERS.splitlines() if line]
    return "".join(f"{n}:{overrides.get(n, '*')}:19000:0:99999:7:::\n" for n in names)


def _accounts(**overrides: str) -> dict[str, object]:
    """Accounts with alice, and Debian 12's default auth and password stacks (tests override them)."""
    return {
        "/etc/passwd": USERS,
        "/etc/group": GROUPS,
        "/etc/shadow": (_shadow(overrides), 0o640),
        "/etc/pam.d/common-auth": DEBIAN12_COMMON_AUTH,
        "/etc/pam.d/common-password": DEBIAN12_COMMON_PASSWORD,
    }


def _tree(trees: list[EtcTree], files: dict[str, object], modules: list[str] | None = None) -> EtcTree:
    tree = EtcTree(files, pam_modules=modules)  # type: ignore[arg-type]
    trees.append(tree)
    return tree


def _set_password(tree: EtcTree, password: str) -> tuple[bool, str]:
    """pamtester changes alice's password through the passwd service: (changed, the crypt prefix stored)."""
    done = tree.run(
        "pamtester passwd alice chauthtok; grep '^alice:' /etc/shadow | cut -d: -f2",
        stdin=f"{password}\n{password}\n",
    )
    stored = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return "successfully" in done.stderr + done.stdout, stored


# ------------------------------------------------------------------------------------------- hashing


def test_pam_unix_without_hash_option_hashes_with_encrypt_method(trees: list[EtcTree]) -> None:
    """pam_unix with no hash option and ENCRYPT_METHOD SHA512: pam_unix stores $6$ hashes, the check passes
    (it used to fail this host); with ENCRYPT_METHOD MD5 pam_unix stores $1$ and the check fails."""
    needs_root_and("pamtester")
    stack = DEBIAN12_COMMON_PASSWORD.replace(" yescrypt", "")
    for method, prefix, expected in (("SHA512", "$6$", Status.PASS), ("MD5", "$1$", Status.FAIL)):
        defs = LOGIN_DEFS.replace("ENCRYPT_METHOD SHA512", f"ENCRYPT_METHOD {method}")
        tree = _tree(
            trees,
            {
                **_accounts(),
                "/etc/pam.d/common-password": stack,
                "/etc/login.defs": defs,
                "/etc/libuser.conf": None,
            },
        )
        changed, stored = _set_password(tree, GOOD)
        assert changed and stored.startswith(prefix), stored[:4]
        outcome = tree.verdict("accounts.password_hashing_configured")
        assert outcome.status is expected, outcome.message
        assert f"has no hash option: it uses ENCRYPT_METHOD {method}" in outcome.message


def test_a_commented_encrypt_method_means_des(trees: list[EtcTree]) -> None:
    """'#ENCRYPT_METHOD SHA512' is a comment: pam_unix without an option stores a 13-character DES hash."""
    needs_root_and("pamtester")
    defs = LOGIN_DEFS.replace("ENCRYPT_METHOD SHA512", "#ENCRYPT_METHOD SHA512")
    stack = DEBIAN12_COMMON_PASSWORD.replace(" yescrypt", "")
    tree = _tree(
        trees,
        {
            **_accounts(),
            "/etc/pam.d/common-password": stack,
            "/etc/login.defs": defs,
            "/etc/libuser.conf": None,
        },
    )
    changed, stored = _set_password(tree, GOOD)
    assert changed and len(stored) == 13 and not stored.startswith("$")
    outcome = tree.verdict("accounts.password_hashing_configured")
    assert outcome.status is Status.FAIL
    assert "ENCRYPT_METHOD is not set" in outcome.message and "(unset: DES)" in outcome.message


def test_libuser_keeps_the_first_crypt_style(trees: list[EtcTree]) -> None:
    """libuser.conf with 'crypt_style = md5' then 'crypt_style = sha512': libuser keeps the FIRST value,
    lpasswd stores $1$, the check fails; without crypt_style it imports ENCRYPT_METHOD SHA512 ($6$)."""
    needs_root_and("lpasswd")
    base = Path("/etc/libuser.conf").read_text() if Path("/etc/libuser.conf").exists() else ""
    if "crypt_style" not in base:
        pytest.skip("needs libuser's /etc/libuser.conf (Debian package libuser)")
    lines = [line for line in base.splitlines() if not line.startswith("crypt_style")]
    at = lines.index("[defaults]") + 1
    twice = "\n".join([*lines[:at], "crypt_style = md5", "crypt_style = sha512", *lines[at:]]) + "\n"
    none = "\n".join(lines) + "\n"
    for conf, prefix, expected in ((twice, "$1$", Status.FAIL), (none, "$6$", Status.PASS)):
        tree = _tree(trees, {**_accounts(), "/etc/libuser.conf": conf})
        done = tree.run(f"lpasswd -P '{GOOD}' alice >/dev/null && grep '^alice:' /etc/shadow | cut -d: -f2")
        assert done.stdout.startswith(prefix), done.stdout[:4] + done.stderr
        outcome = tree.verdict("accounts.password_hashing_configured")
        assert outcome.status is expected, outcome.message


# ------------------------------------------------------------------------------------------ pwquality

PWQUALITY_STACK = DEBIAN12_COMMON_PASSWORD.replace(
    "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt",
    "password\trequisite\t\t\tpam_pwquality.so ARGS\n"
    "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt",
)


def _pwscore(tree: EtcTree, password: str) -> bool:
    done = tree.run("pwscore", stdin=password + "\n")
    return done.returncode == 0


def test_pwquality_conf_wins_over_its_dropins(trees: list[EtcTree]) -> None:
    """libpwquality reads pwquality.conf.d/*.conf FIRST, then pwquality.conf: minlen=14 of the main file beats
    minlen=8 of a drop-in. pwscore refuses 11 characters; the check (12 wanted) passes."""
    needs_root_and("pwscore")
    files = {
        "/etc/pam.d/common-password": PWQUALITY_STACK.replace("ARGS", "retry=3"),
        "/etc/security/pwquality.conf": "minlen = 14\nminclass = 4\n",
        "/etc/security/pwquality.conf.d/50-local.conf": "minlen = 8\n",
    }
    tree = _tree(trees, files)
    assert not _pwscore(tree, GOOD)
    assert _pwscore(tree, GOOD + "x7K")
    outcome = tree.verdict("pam.password_quality", QUALITY)
    assert outcome.status is Status.PASS, outcome.message
    assert "at least 14 characters" in outcome.message


def test_credits_let_shorter_passwords_in(trees: list[EtcTree]) -> None:
    """minlen=12 with a credit of 1 per class: an 8-character password of four classes is accepted (pwscore),
    so the check fails though 'minlen = 12' is written."""
    needs_root_and("pwscore")
    conf = "minlen = 12\nminclass = 4\ndcredit = 1\nucredit = 1\nlcredit = 1\nocredit = 1\n"
    files = {
        "/etc/pam.d/common-password": PWQUALITY_STACK.replace("ARGS", "retry=3"),
        "/etc/security/pwquality.conf": conf,
    }
    tree = _tree(trees, files)
    assert _pwscore(tree, GOOD[:8])
    outcome = tree.verdict("pam.password_quality", QUALITY)
    assert outcome.status is Status.FAIL
    assert "passwords of 8 characters are accepted" in outcome.message


def test_a_module_argument_overrides_pwquality_conf(trees: list[EtcTree]) -> None:
    """pwquality.conf says minlen = 14 but the PAM line says minlen=8: PAM accepts 11 characters."""
    needs_root_and("pamtester")
    modules = pam_module_dirs("pam_pwquality.so")
    files = {
        **_accounts(),
        "/etc/pam.d/common-password": PWQUALITY_STACK.replace("ARGS", "minlen=8 enforce_for_root"),
        "/etc/security/pwquality.conf": "minlen = 14\nminclass = 4\n",
    }
    tree = _tree(trees, files, modules)
    changed, _ = _set_password(tree, GOOD)
    assert changed
    outcome = tree.verdict("pam.password_quality", QUALITY)
    assert outcome.status is Status.FAIL
    assert "minlen=8 (/etc/pam.d/common-password line 25)" in outcome.message


def test_pwquality_after_pam_unix_is_too_late(trees: list[EtcTree]) -> None:
    """pam_pwquality appended after pam_unix: pam_unix has already stored the weak password when it runs."""
    needs_root_and("pamtester")
    modules = pam_module_dirs("pam_pwquality.so")
    stack = (
        DEBIAN12_COMMON_PASSWORD
        + "password requisite pam_pwquality.so minlen=14 minclass=4 enforce_for_root\n"
    )
    files = {**_accounts(), "/etc/pam.d/common-password": stack}
    tree = _tree(trees, files, modules)
    _, stored = _set_password(tree, "weak")
    assert stored.startswith("$y$")  # the weak password was stored
    outcome = tree.verdict("pam.password_quality", QUALITY)
    assert outcome.status is Status.FAIL
    assert "runs after pam_unix" in outcome.message


def test_enforce_for_root(trees: list[EtcTree]) -> None:
    """Without enforce_for_root, root (pamtester runs as root) sets a weak password: only a warning."""
    needs_root_and("pamtester")
    modules = pam_module_dirs("pam_pwquality.so")
    for args, stored_weak, expected in (
        ("minlen=14", True, Status.FAIL),
        ("minlen=14 enforce_for_root", False, Status.PASS),
    ):
        files = {**_accounts(), "/etc/pam.d/common-password": PWQUALITY_STACK.replace("ARGS", args)}
        tree = _tree(trees, files, modules)
        changed, _ = _set_password(tree, "short1A!")
        assert changed is stored_weak
        assert tree.verdict("pam.password_quality_applies_to_root").status is expected


# ------------------------------------------------------------------------------------------- faillock

ALICE_PASSWORD = "Right#Pass1"


def _auth_stack(preauth: str = "", authfail: str = "", after_deny: bool = False) -> str:
    return faillock_stack(preauth, authfail, after_deny, nodelay=True)


def _locked_after(tree: EtcTree, failures: int) -> bool:
    """``failures`` wrong passwords, then the right one, through the sshd service: is alice refused?"""
    script = (
        f"for i in $(seq {failures}); do echo bad | pamtester sshd alice authenticate >/dev/null 2>&1; done; "
        f"echo '{ALICE_PASSWORD}' | pamtester sshd alice authenticate"
    )
    done = tree.run(script)
    return "successfully authenticated" not in done.stdout + done.stderr


def _lock_tree(trees: list[EtcTree], common_auth: str, faillock_conf: str = "") -> EtcTree:
    files = {
        **_accounts(alice=_hash(ALICE_PASSWORD)),
        "/etc/pam.d/common-auth": common_auth,
        "/etc/security/faillock.conf": faillock_conf,
    }
    return _tree(trees, files)


def test_authfail_below_preauth_deny_never_locks(trees: list[EtcTree]) -> None:
    """'authfail deny=3' on the line, but preauth takes deny=5 from faillock.conf: authfail stops counting at
    3 failures, preauth waits for 5, alice is never locked. A text match of 'deny=3' passes this host."""
    needs_root_and("pamtester", "faillock")
    tree = _lock_tree(trees, _auth_stack(authfail="deny=3"), "deny = 5\nunlock_time = 600\n")
    assert not _locked_after(tree, 6)
    outcome = tree.verdict("pam.lockout_after_failures", LOCKOUT)
    assert outcome.status is Status.FAIL
    assert "never locks: authfail stops counting at deny=3" in outcome.message
    assert "deny=5 (/etc/security/faillock.conf line 1)" in outcome.message


def test_preauth_deny_from_faillock_conf(trees: list[EtcTree]) -> None:
    """No deny argument anywhere: faillock.conf's deny = 5 decides: alice is locked after 5 failures."""
    needs_root_and("pamtester", "faillock")
    tree = _lock_tree(trees, _auth_stack(), "deny = 5\nunlock_time = 600\n")
    assert not _locked_after(tree, 4)
    assert _locked_after(tree, 5)
    outcome = tree.verdict("pam.lockout_after_failures", LOCKOUT)
    assert outcome.status is Status.FAIL
    assert "deny=5 (/etc/security/faillock.conf line 1)" in outcome.message
    assert "at most 3 failures wanted" in outcome.message


def test_lockout_with_preauth_argument(trees: list[EtcTree]) -> None:
    """'preauth deny=3' overrides faillock.conf's deny = 5: locked after 3 failures; the check passes."""
    needs_root_and("pamtester", "faillock")
    tree = _lock_tree(trees, _auth_stack(preauth="deny=3"), "deny = 5\nunlock_time = 600\n")
    assert _locked_after(tree, 3)
    outcome = tree.verdict("pam.lockout_after_failures", LOCKOUT)
    assert outcome.status is Status.PASS, outcome.message


def test_authfail_after_a_requisite_pam_deny_never_counts(trees: list[EtcTree]) -> None:
    """authfail appended after 'requisite pam_deny': a wrong password stops the stack before it, nothing is
    counted, no lock ever; the check fails and says why."""
    needs_root_and("pamtester", "faillock")
    tree = _lock_tree(trees, _auth_stack(after_deny=True), "deny = 3\n")
    assert not _locked_after(tree, 5)
    outcome = tree.verdict("pam.lockout_after_failures", LOCKOUT)
    assert outcome.status is Status.FAIL
    assert "never runs: pam_deny" in outcome.message


def test_faillock_in_a_file_no_service_includes(trees: list[EtcTree]) -> None:
    """The faillock lines live in /etc/pam.d/common-auth-hds, which no service includes: no lock."""
    needs_root_and("pamtester", "faillock")
    debian = DEBIAN12_COMMON_AUTH.replace("pam_unix.so nullok", "pam_unix.so nullok nodelay")
    files = {
        **_accounts(alice=_hash(ALICE_PASSWORD)),
        "/etc/pam.d/common-auth": debian,
        "/etc/pam.d/common-auth-hds": _auth_stack(preauth="deny=3"),
        "/etc/security/faillock.conf": "deny = 3\n",
    }
    tree = _tree(trees, files)
    assert not _locked_after(tree, 4)
    outcome = tree.verdict("pam.lockout_after_failures", LOCKOUT)
    assert outcome.status is Status.FAIL
    assert "sshd: no pam_faillock" in outcome.message


# --------------------------------------------------------------------------------- nullok, root, su


def test_nullok_lets_an_empty_password_in(trees: list[EtcTree]) -> None:
    """Debian's common-auth has pam_unix nullok: an account with an empty password logs in (pamtester)."""
    needs_root_and("pamtester")
    tree = _tree(trees, _accounts(alice=""))
    done = tree.run("echo | pamtester login alice authenticate")
    assert "successfully authenticated" in done.stdout + done.stderr
    outcome = tree.verdict("pam.empty_passwords_refused")
    assert outcome.status is Status.FAIL
    assert "common-auth line" in outcome.message and "nullok" in outcome.message
    strict = DEBIAN12_COMMON_AUTH.replace(" nullok", "")
    tree = _tree(trees, {**_accounts(alice=""), "/etc/pam.d/common-auth": strict})
    done = tree.run("echo | pamtester login alice authenticate")
    assert "successfully authenticated" not in done.stdout + done.stderr
    assert tree.verdict("pam.empty_passwords_refused").status is Status.PASS


def test_root_login_limited_to_consoles_by_securetty(trees: list[EtcTree]) -> None:
    """root has a password; pam_securetty in the login stack with /etc/securetty listing consoles only: root
    is refused on pts/0 and let in on tty1 (pamtester sets PAM_TTY). Without /etc/securetty, pam_securetty
    lets root in everywhere and the check fails."""
    needs_root_and("pamtester")
    login = "auth required pam_securetty.so\n" + Path("/etc/pam.d/login").read_text()
    files = {**_accounts(root=_hash(ALICE_PASSWORD)), "/etc/pam.d/login": login}
    tree = _tree(trees, {**files, "/etc/securetty": "console\ntty1\n"})

    def root_on(tty: str) -> bool:
        done = tree.run(f"echo '{ALICE_PASSWORD}' | pamtester -I tty={tty} login root authenticate")
        return "successfully authenticated" in done.stdout + done.stderr

    assert root_on("tty1") and not root_on("pts/0")
    outcome = tree.verdict("accounts.root_login_console_only")
    assert outcome.status is Status.PASS, outcome.message
    tree = _tree(trees, {**files, "/etc/securetty": None})
    assert root_on("pts/0")
    outcome = tree.verdict("accounts.root_login_console_only")
    assert outcome.status is Status.FAIL
    assert "no /etc/securetty" in outcome.message


def test_su_with_pam_wheel_commented_out(trees: list[EtcTree]) -> None:
    """Debian's /etc/pam.d/su carries '# auth required pam_wheel.so': a comment, su stays open to all."""
    needs_root_and()
    tree = _tree(trees, {})
    assert "pam_wheel.so" in Path("/etc/pam.d/su").read_text()
    assert tree.verdict("pam.su_restricted_to_group").status is Status.FAIL
    su = (
        Path("/etc/pam.d/su")
        .read_text()
        .replace("# auth       required   pam_wheel.so", "auth required pam_wheel.so group=sudo")
    )
    tree = _tree(trees, {"/etc/pam.d/su": su})
    outcome = tree.verdict("pam.su_restricted_to_group")
    assert outcome.status is Status.PASS, outcome.message
    assert "group sudo" in outcome.message
