"""The SSH daemon as it runs: its effective configuration (sshd -T)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError
from hds_compliance.model import Capture


@dataclass(frozen=True)
class SshdConfig:
    """Effective configuration of the SSH daemon (``sshd -T``): lower-case keyword → values."""

    source: str
    options: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        """First value of a keyword, ``None`` if sshd did not print it."""
        values = self.options.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class SshdEffectiveConfig(Fact[list[SshdConfig] | None]):
    """What the running SSH daemons enforce: ``sshd -T`` on the config file each listener was started with.

    Reading ``sshd_config`` alone misses defaults, ``Include`` files and a daemon started with ``-f``;
    ``sshd -T`` resolves all of them. Every listening daemon counts (a host may run a second sshd for
    SFTP); with none running, the default configuration is what the next start would enforce.
    ``None`` means sshd is not installed.
    """

    kind: ClassVar[str] = "sshd"
    arg: str = ""

    def script(self) -> str:
        # A listener's title is "sshd: /usr/sbin/sshd -D -f FILE [listener] ..." (OpenSSH >= 8.2) or its
        # plain command line; session processes are "sshd: user@...". Configs are de-duplicated.
        return (
            "command -v sshd >/dev/null 2>&1 || exit 100; cfgs=; "
            'for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && [ "$c" = sshd ] || continue; '
            "t=$(tr '\\000' ' ' < \"$p/cmdline\" 2>/dev/null) || continue; "
            'case "$t" in "sshd: "*"[listener]"*|/*sshd|/*sshd" "*|sshd|sshd" "*) ;; *) continue;; esac; '
            "f=$(printf '%s\\n' \"$t\" | sed -n 's/.* -f \\([^ ]*\\).*/\\1/p'); "
            'f=${f:-/etc/ssh/sshd_config}; case " $cfgs " in *" $f "*) ;; *) cfgs="$cfgs $f";; esac; done; '
            "for f in ${cfgs:-/etc/ssh/sshd_config}; do "
            'echo "# config $f"; sshd -T -f "$f" 2>&1; echo "# exit $?"; done'
        )

    def parse(self, capture: Capture) -> list[SshdConfig] | None:
        if capture.exit_code == ABSENT:
            return None
        if capture.exit_code != 0:
            raise self._fail(capture)
        configs: list[SshdConfig] = []
        source, options, lines = "/etc/ssh/sshd_config", dict[str, list[str]](), list[str]()

        def close(code: int) -> None:
            if code != 0:
                said = lines[-1] if lines else "no output"
                raise FactError(
                    f"{self.describe()}: sshd -T -f {source} failed with exit code {code} ({said})"
                )
            if not options:
                raise FactError(f"{self.describe()}: sshd -T -f {source} printed no configuration")
            configs.append(SshdConfig(source=source, options=dict(options)))

        started = False
        for line in capture.stdout_text().splitlines():
            if line.startswith("# config "):
                if started and lines:
                    close(0)  # recordings made before "# exit" lines existed
                source, options, lines, started = line[len("# config ") :].strip(), {}, [], True
            elif line.startswith("# exit "):
                close(int(line.split()[-1]) if line.split()[-1].lstrip("-").isdigit() else 1)
                started = False
            else:
                started = True  # plain `sshd -T` output without a header: the default configuration
                lines.append(line.strip())
                key, _, value = line.strip().partition(" ")
                if key:
                    options.setdefault(key.lower(), []).append(value.strip())
        if started:
            close(0)
        if not configs:
            raise FactError(f"{self.describe()}: sshd -T printed no configuration")
        return configs

    def describe(self) -> str:
        return "effective sshd configuration"
