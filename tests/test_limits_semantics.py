"""Core-dump limits judged as pam_limits applies them, against the real pam_limits.

In a private mount namespace with /etc overlaid, limits files are written, su (its PAM service reduced to
pam_rootok and pam_limits) opens a session for two users, and ``ulimit -Hc`` shows the hard core limit
each really gets. kernel.core_dumps_limited, run on the same files through its facts' own snippets, passes
exactly when every user gets 0: later files win over earlier ones, a group line beats the wildcard
whatever the order (a text search for "* hard core 0" passes those hosts).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from kernel_lab import collect, evaluate, needs_root, staging_dir

from hds_compliance.check import Outcome
from hds_compliance.facts import FileContent, FilesMatching
from hds_compliance.model import Status

FACTS = [FileContent("/etc/security/limits.conf"), FilesMatching("/etc/security/limits.d/*.conf")]
SU_PAM = "auth sufficient pam_rootok.so\naccount required pam_permit.so\nsession required pam_limits.so\n"
D = "/etc/security/limits.d"
CASES = {
    "wildcard hard 0": {f"{D}/90-hds-core.conf": "* hard core 0\n"},
    "a group line after it": {
        f"{D}/90-hds-core.conf": "* hard core 0\n",
        f"{D}/95-debug.conf": "@devs - core unlimited\n",
    },
    "a group line before it": {
        f"{D}/10-debug.conf": "@devs - core unlimited\n",
        f"{D}/90-hds-core.conf": "* hard core 0\n",
    },
    "a later file raises it": {
        f"{D}/10-hds-core.conf": "* hard core 0\n",
        f"{D}/50-app.conf": "* - core unlimited\n",
    },
    "a user line in limits.d": {
        "/etc/security/limits.conf+": "* hard core 0\n",
        f"{D}/20-svc.conf": "nobody hard core 1000\n",
    },
    "soft only": {f"{D}/90-hds-core.conf": "* soft core 0\n"},
}


@pytest.fixture(autouse=True)
def _root() -> None:
    if (
        not Path("/lib/x86_64-linux-gnu/security/pam_limits.so").exists()
        and not Path("/usr/lib64/security/pam_limits.so").exists()
    ):
        pytest.skip("pam_limits is not installed (libpam-modules)")
    needs_root()


def _setup(files: dict[str, str], upper: Path) -> str:
    (upper / "u").mkdir()
    (upper / "w").mkdir()
    lines = [
        f"mount -t overlay hds-kernel -o lowerdir=/etc,upperdir={upper}/u,workdir={upper}/w /etc",
        f"printf '%s' {shlex.quote(SU_PAM)} > /etc/pam.d/su",
        "echo devs:x:4300:nobody >> /etc/group",  # nobody is in @devs, daemon is not
    ]
    for path, text in files.items():
        append = path.endswith("+")
        lines.append(f"printf '%s' {shlex.quote(text)} {'>>' if append else '>'} {path.rstrip('+')}")
    return "set -e\n" + "\n".join(lines)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_check_passes_exactly_when_pam_limits_gives_every_user_a_zero_hard_limit(name: str) -> None:
    """The hard core limit pam_limits sets for nobody (in @devs) and daemon, against the check's verdict."""
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    with staging_dir() as staging:
        captures = collect(FACTS, [*private, f"{_setup(CASES[name], staging)}\nexec sh -s"])
    with staging_dir() as staging:
        su = "for u in nobody daemon; do su -s /bin/sh $u -c 'ulimit -Hc'; done"
        done = subprocess.run(
            [*private, f"{_setup(CASES[name], staging)}\n{su}"], capture_output=True, text=True, check=True
        )
    limits = dict(zip(("nobody", "daemon"), done.stdout.split(), strict=True))
    outcome = evaluate("kernel.core_dumps_limited", {}, captures)
    assert isinstance(outcome, Outcome), outcome
    every_user_zero = all(value == "0" for value in limits.values())
    assert (outcome.status is Status.PASS) == every_user_zero, (limits, outcome.message)
    assert every_user_zero == (name == "wildcard hard 0"), limits  # the cases do what their names say
