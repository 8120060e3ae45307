"""A private /etc for the authn semantics tests: real sudo, PAM, bash and libuser read it, and the probe too.

:class:`EtcTree` lays files in the upper directory of an overlay on /etc, mounted in a private mount
namespace (``unshare -m``) together with fresh tmpfs on /run and /var/log, so the programs the tests run
(sudo, visudo, pamtester, pwscore, lpasswd, bash) and the fact snippets see the scenario, and the machine
does not change. ``None`` as content hides a file of the real /etc (an overlay whiteout).

PAM modules the machine lacks (pam_pwquality.so comes with libpam-pwquality, whose installation rewrites
/etc/pam.d/common-password) can be given in ``HDS_TEST_PAM_MODULES``: a directory overlaid on the PAM module
directory inside the namespace only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hds_compliance.check import Context, FactUnavailable, HostInfo, Outcome, registry
from hds_compliance.collect.probe import follow_ups, new_nonce, parse, render
from hds_compliance.facts import Fact
from hds_compliance.model import Capture, Status

PAM_MODULES = Path("/usr/lib/x86_64-linux-gnu/security")
# Debian 12's /etc/pam.d/common-password and common-auth as pam-auth-update writes them with pam_unix alone:
# the tests write them into their scenarios, so packages that change the machine's own copies (installing
# libpam-pwquality adds pam_pwquality) do not change what the tests start from.
DEBIAN12_COMMON_PASSWORD = """#
# /etc/pam.d/common-password - password-related modules common to all services
#
# This file is included from other service-specific PAM config files,
# and should contain a list of modules that define the services to be
# used to change user passwords.  The default is pam_unix.

# Explanation of pam_unix options:
# The "yescrypt" option enables
#hashed passwords using the yescrypt algorithm, introduced in Debian
#11.  Without this option, the default is Unix crypt.  Prior releases
#used the option "sha512"; if a shadow password hash will be shared
#between Debian 11 and older releases replace "yescrypt" with "sha512"
#for compatibility .  The "obscure" option replaces the old
#`OBSCURE_CHECKS_ENAB' option in login.defs.  See the pam_unix manpage
#for other options.

# As of pam 1.0.1-6, this file is managed by pam-auth-update by default.
# To take advantage of this, it is recommended that you configure any
# local modules either before or after the default block, and use
# pam-auth-update to manage selection of other modules.  See
# pam-auth-update(8) for details.

# here are the per-package modules (the "Primary" block)
password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt
# here's the fallback if no module succeeds
password\trequisite\t\t\tpam_deny.so
# prime the stack with a positive return value if there isn't one already;
# this avoids us returning an error just because nothing sets a success code
# since the modules above will each just jump around
password\trequired\t\t\tpam_permit.so
# and here are more per-package modules (the "Additional" block)
# end of pam-auth-update config
"""
DEBIAN12_COMMON_AUTH = """#
# /etc/pam.d/common-auth - authentication settings common to all services
#
# This file is included from other service-specific PAM config files,
# and should contain a list of the authentication modules that define
# the central authentication scheme for use on the system
# (e.g., /etc/shadow, LDAP, Kerberos, etc.).  The default is to use the
# traditional Unix authentication mechanisms.
#
# As of pam 1.0.1-6, this file is managed by pam-auth-update by default.
# To take advantage of this, it is recommended that you configure any
# local modules either before or after the default block, and use
# pam-auth-update to manage selection of other modules.  See
# pam-auth-update(8) for details.

# here are the per-package modules (the "Primary" block)
auth\t[success=1 default=ignore]\tpam_unix.so nullok
# here's the fallback if no module succeeds
auth\trequisite\t\t\tpam_deny.so
# prime the stack with a positive return value if there isn't one already;
# this avoids us returning an error just because nothing sets a success code
# since the modules above will each just jump around
auth\trequired\t\t\tpam_permit.so
# and here are more per-package modules (the "Additional" block)
# end of pam-auth-update config
"""
REGISTRY = registry()


def needs_root_and(*programs: str) -> None:
    """Skip unless running as root with ``programs`` installed."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (private mount namespaces)")
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (see the authn report for the Debian packages)")


def faillock_stack(
    preauth: str = "", authfail: str = "", after_deny: bool = False, nodelay: bool = False
) -> str:
    """An auth stack with pam_faillock around pam_unix, which jumps over the next two lines when the password
    is right. ``after_deny`` puts authfail after 'requisite pam_deny': logins work, failures never reach it.
    ``nodelay`` spares tests the two-second delay after each failure."""
    quick = " nodelay" if nodelay else ""
    fail = f"auth\t[default=die]\tpam_faillock.so authfail{quick}{' ' + authfail if authfail else ''}\n"
    deny = "auth\trequisite\tpam_deny.so\n"
    return (
        f"auth\trequired\tpam_faillock.so preauth{quick}{' ' + preauth if preauth else ''}\n"
        f"auth\t[success=2 default=ignore]\tpam_unix.so{quick}\n"
        + (deny + fail if after_deny else fail + deny)
        + "auth\trequired\tpam_permit.so\n"
    )


def pam_module_dirs(*modules: str) -> list[str]:
    """Extra module directories to overlay so ``modules`` load; skip the test if one cannot be found."""
    extra = os.environ.get("HDS_TEST_PAM_MODULES", "")
    dirs: list[str] = []
    for module in modules:
        if (PAM_MODULES / module).exists():
            continue
        if extra and (Path(extra) / module).exists():
            dirs = [extra]
            continue
        pytest.skip(
            f"{module} is not installed (Debian package libpam-pwquality) nor in HDS_TEST_PAM_MODULES"
        )
    return dirs


Spec = str | bytes | None | tuple[str | bytes, int] | tuple[str | bytes, int, int, int]


class EtcTree:
    """Files under /etc for one scenario; ``run`` and ``collect`` act inside its private namespace."""

    def __init__(
        self,
        files: Mapping[str, Spec],
        *,
        pam_modules: list[str] | None = None,
        binds: Mapping[str, str] | None = None,
    ) -> None:
        """``files``: path under /etc -> content, ``(content, mode)``, ``(content, mode, uid, gid)``, or
        ``None`` to hide the real file. Created files are owned by root, mode 0644, unless given.
        ``binds``: existing path -> file bind-mounted over it inside the namespace (a copy of /usr/bin/sudo
        with other permissions)."""
        self.root = Path(tempfile.mkdtemp(prefix="hds-authn-", dir="/var/tmp"))
        self.upper = self.root / "upper"
        self.upper.mkdir()
        (self.root / "work").mkdir()
        self.pam_modules = pam_modules or []
        self.binds = dict(binds or {})
        for path, spec in files.items():
            if not path.startswith("/etc/"):
                raise ValueError(f"only files under /etc: {path}")
            dest = self.upper / path[len("/etc/") :]
            dest.parent.mkdir(parents=True, exist_ok=True)
            if spec is None:
                os.mknod(dest, 0o600 | 0o020000, os.makedev(0, 0))  # overlay whiteout: hidden
                continue
            content, mode, uid, gid = (*spec, 0, 0)[:4] if isinstance(spec, tuple) else (spec, 0o644, 0, 0)
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
            os.chown(dest, uid, gid)
            os.chmod(dest, mode)

    def close(self) -> None:
        """Remove the scenario's directory."""
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mounts(self) -> str:
        """The shell commands that mount the scenario (overlay on /etc, fresh /run and /var/log)."""
        q = shlex.quote
        lines = [
            f"mount -t overlay hds-authn -o lowerdir=/etc,upperdir={q(str(self.upper))},"
            f"workdir={q(str(self.root / 'work'))} /etc",
            "mount -t tmpfs hds-authn-run /run",
            "mount -t tmpfs hds-authn-log /var/log",
        ]
        lines += [f"mount --bind {q(source)} {q(target)}" for target, source in self.binds.items()]
        if self.pam_modules:
            lower = ":".join([*self.pam_modules, str(PAM_MODULES)])
            lines.append(f"mount -t overlay hds-authn-pam -o lowerdir={q(lower)} {q(str(PAM_MODULES))}")
        return " && ".join(lines)

    def enter(self) -> str:
        """A command prefix entering the scenario, for tests/facts/record.py --enter (it appends 'sh -s')."""
        inner = f'{self.mounts()} && exec "$0" "$@"'
        return f"unshare -m --propagation private sh -c {shlex.quote(inner)}"

    def run(self, script: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``sh -c script`` inside the scenario (as root)."""
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{self.mounts()} && {script}"]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def collect(self, facts: list[Fact[Any]], user: str | None = None) -> dict[str, Capture]:
        """The facts' own snippets run through a real probe inside the scenario (two rounds, as a scan),
        as root or as ``user``."""
        captures: dict[str, Capture] = {}
        todo: list[Fact[Any]] = list(facts)
        shell = f"runuser -u {shlex.quote(user)} -- sh -s" if user else "sh -s"
        for _round in range(2):
            if not todo:
                break
            probe = render(todo, new_nonce())
            argv = [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"{self.mounts()} && exec {shell}",
            ]
            done = subprocess.run(
                argv, input=probe.script.encode(), capture_output=True, timeout=60, check=False
            )
            parsed = parse(
                probe, done.stdout.decode("ascii", "replace"), stderr=done.stderr.decode("utf-8", "replace")
            )
            assert parsed.problem is None, parsed.problem
            captures.update({c.fact: c for c in parsed.captures})
            todo = follow_ups(probe, parsed.captures)
        return captures

    def verdict(self, check_id: str, params: Mapping[str, Any] | None = None) -> Outcome:
        """The check's verdict on this scenario, from captures the probe collected here."""
        spec = REGISTRY[check_id]
        validated = spec.validate(params or {})
        facts = spec.facts(validated)
        ctx = Context(
            host=HostInfo(name="scenario", connector="local"),
            captures=self.collect(facts),
            declared=frozenset(f.key for f in facts),
        )
        try:
            return spec.func(validated, ctx)
        except FactUnavailable as exc:
            return Outcome(Status.ERROR, str(exc))


@pytest.fixture(name="trees")
def trees_fixture() -> Iterator[list[EtcTree]]:
    """``trees``: the scenarios a test makes (it appends them), removed when it ends. A test module imports
    ``trees_fixture`` to use it."""
    made: list[EtcTree] = []
    yield made
    for tree in made:
        tree.close()
