"""Record the ``sshd-hostkeys`` captures of tests/captures/sshd.yaml from real trees and daemons.

    python tests/record_sshd_hostkeys.py          # rewrites every recorded scenario's sshd-hostkeys capture

The host keys of a scenario do not depend on the rest of its sshd configuration, only on the ``HostKey``
list ``sshd -T`` prints and on the key files; so each scenario is an /etc/ssh tree holding that list and
fresh keys of the same types and sizes (made by ssh-keygen), bind-mounted over /etc/ssh in a private mount
namespace (tests/sshd_trees.py). Scenarios with several daemons start real ``sshd -D`` listeners on
loopback in that namespace, each on its own config file, and one whose config is deleted after it started.
Only the sshd-hostkeys block of each scenario is rewritten (``replace_block``); the other captures stay
as recorded.
"""

from __future__ import annotations

import random
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from fact_fixtures import dump_capture, replace_block  # noqa: E402
from sshd_trees import HOST_KEYS, collect, enter, host_key  # noqa: E402

CAPTURES = HERE / "captures" / "sshd.yaml"
STOCK = (("rsa", 3072), ("ecdsa", 256), ("ed25519", None))  # Debian's default HostKey list, ssh-keygen -A


@dataclass(frozen=True)
class Key:
    """A HostKey line and what is on disk for it."""

    kind: str
    bits: int | None = None
    present: bool = True  # the private key exists
    public: bool = True  # so does its .pub


@dataclass(frozen=True)
class Daemon:
    """One daemon's config file under /etc/ssh and its keys; ``gone``: deleted once the daemon runs."""

    config: str
    keys: tuple[Key, ...]
    gone: bool = False


ED25519 = Key("ed25519")
RSA_3072 = Key("rsa", 3072)
ONLY_ED25519 = (Key("rsa", present=False), Key("ecdsa", present=False), ED25519)
SCENARIOS: dict[str, tuple[Daemon, ...]] = {
    "debian_default": (Daemon("sshd_config", tuple(Key(k, b) for k, b in STOCK)),),
    "hardened": (Daemon("sshd_config", (ED25519, RSA_3072)),),
    "weak": (Daemon("sshd_config", (ED25519, Key("rsa", 1024), Key("dsa"))),),
    "match_address_root": (Daemon("sshd_config", (ED25519, RSA_3072)),),
    "match_group_nomember": (Daemon("sshd_config", (ED25519, RSA_3072)),),
    "match_user_idle": (Daemon("sshd_config", (ED25519, RSA_3072)),),
    "disable_forwarding": (Daemon("sshd_config", ONLY_ED25519),),
    "key_and_password": (Daemon("sshd_config", ONLY_ED25519),),
    "dsa_not_offered": (Daemon("sshd_config", (ED25519, Key("dsa"))),),
    "no_public_key": (Daemon("sshd_config", (Key("ed25519", public=False),)),),
    "config_missing": (
        Daemon("sshd_config", (ED25519,)),
        Daemon("sshd_config_sftp", (ED25519,)),
        Daemon("sshd_config_gone", (ED25519,), gone=True),
    ),
    "two_daemons": (Daemon("sshd_config", (ED25519,)), Daemon("sshd_config_sftp", (ED25519,))),
}


def _tree(root: Path, daemons: tuple[Daemon, ...]) -> tuple[Path, str]:
    """The /etc/ssh tree for ``daemons``, and the sh that starts them (nothing for one daemon: sshd -T
    then reads the default config, as on a host where sshd is not running)."""
    etc = root / "etc-ssh"
    etc.mkdir()
    start: list[str] = []
    port = random.randrange(20000, 60000)
    for n, daemon in enumerate(daemons):
        lines = [f"HostKey /etc/ssh/ssh_host_{key.kind}_key" for key in daemon.keys]
        (etc / daemon.config).write_text("\n".join([*lines, f"ListenAddress 127.0.0.1:{port + n}", ""]))
        for key in daemon.keys:
            private = etc / f"ssh_host_{key.kind}_key"
            if key.present and not private.exists():
                host_key(etc, key.kind, key.bits).chmod(0o600)
                if not key.public:
                    Path(f"{private}.pub").unlink()
        if len(daemons) > 1:
            config = shlex.quote(f"/etc/ssh/{daemon.config}")
            start.append(f'/usr/sbin/sshd -D -o PidFile=none -f {config} & pids="$pids $!"; sleep 0.3')
            if daemon.gone:
                start.append(f"rm {shlex.quote(str(etc / daemon.config))}")
    return etc, "; ".join(start)


def record(name: str, daemons: tuple[Daemon, ...]) -> dict[str, object]:
    """The sshd-hostkeys capture of one scenario, its daemons stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="hds-hostkeys-") as tmp:
        etc, start = _tree(Path(tmp), daemons)
        prefix = enter(etc)
        if start:  # the probe runs between the daemons' start and their end
            wrapper = f'{start}; "$0" "$@"; rc=$?; kill $pids; wait; exit $rc'
            prefix = enter(etc, extra=f'exec sh -c {shlex.quote(wrapper)} "$0" "$@"')
        capture = collect(prefix, [HOST_KEYS])[HOST_KEYS.key]
    print(f"{name}: exit {capture.exit_code}, {len(capture.stdout)} bytes", file=sys.stderr)
    return dump_capture(capture)


def main() -> None:
    """Command line."""
    text = CAPTURES.read_text()
    for name, daemons in SCENARIOS.items():
        text = replace_block(text, [f"  {name}: &{name}", "    sshd-hostkeys:"], record(name, daemons))
    CAPTURES.write_text(text)
    print(CAPTURES)


if __name__ == "__main__":
    main()
