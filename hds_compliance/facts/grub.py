"""The boot loader's protection: GRUB superusers and passwords, derived on the host without the hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import Fact, FactError, in_shell_sh
from hds_compliance.model import Capture

GRUB_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/grub2/user.cfg")


@dataclass(frozen=True)
class GrubLine:
    """A line of a GRUB file that sets users or passwords; hashes are replaced by ``<hash>`` on the host
    and a clear-text ``password`` by ``<clear-text>``."""

    number: int
    text: str


@dataclass(frozen=True)
class GrubFile:
    """A GRUB configuration file: mode and owner, and its user and password lines."""

    path: str
    mode: int
    uid: int
    lines: list[GrubLine]
    readable: bool


@dataclass(frozen=True)
class GrubState:
    """GRUB's generated configuration files, and the /etc/grub.d scripts that emit a password (those
    survive the next ``update-grub``/``grub2-mkconfig``)."""

    files: dict[str, GrubFile]
    generators: list[str]


# Hash or clear text never leaves the host: pbkdf2 hashes become <hash>, "password USER SECRET" loses SECRET.
_MASK = (
    r"s/grub\.pbkdf2\.[A-Za-z0-9]*\.[0-9]*\.[0-9A-Fa-f.]*/<hash>/g; "
    r"s/^\([0-9]*:[[:space:]]*password[[:space:]][[:space:]]*[^[:space:]]*\).*/\1 <clear-text>/; "
    r"s/GRUB2_PASSWORD=[^<].*$/GRUB2_PASSWORD=<not-a-hash>/"
)


@dataclass(frozen=True)
class GrubPasswords(Fact[GrubState]):
    """GRUB's configuration files (Debian ``/boot/grub/grub.cfg``, RHEL ``/boot/grub2/grub.cfg`` and
    ``user.cfg``): stat, and the lines about superusers and passwords, masked on the host."""

    kind: ClassVar[str] = "boot-grub"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        files = " ".join(GRUB_CONFIGS)
        return in_shell_sh(
            "f",
            f'for f in {files}; do [ -e "$f" ] || continue; stat -L -c \'# %a %u %n\' -- "$f" || return 1; '
            '[ -r "$f" ] || { echo "# unreadable"; continue; }; '
            "grep -n -E 'superusers|password|GRUB2_PASSWORD|user\\.cfg' -- \"$f\" | "
            f"sed -e '{_MASK}'; done; "
            "echo '# generators'; "
            "grep -l -s -E '^[^#]*password(_pbkdf2)?[[:space:]]' /etc/grub.d/* ; return 0",
        )

    def parse(self, capture: Capture) -> GrubState:
        if capture.exit_code != 0:
            raise self._fail(capture)
        files: dict[str, GrubFile] = {}
        generators: list[str] = []
        current: GrubFile | None = None
        in_generators = False
        for line in capture.stdout_text().splitlines():
            if line == "# generators":
                in_generators = True
            elif in_generators:
                if line.strip():
                    generators.append(line.strip())
            elif line == "# unreadable" and current is not None:
                files[current.path] = GrubFile(current.path, current.mode, current.uid, [], False)
            elif line.startswith("# "):
                fields = line[2:].split(" ", 2)
                if len(fields) != 3 or not fields[1].isdigit():
                    raise FactError(f"{self.describe()}: unexpected line {line!r}")
                current = GrubFile(fields[2], int(fields[0], 8), int(fields[1]), [], True)
                files[current.path] = current
            elif current is not None:
                number, sep, text = line.partition(":")
                if not sep or not number.isdigit():
                    raise FactError(f"{self.describe()}: unexpected line {line!r}")
                current.lines.append(GrubLine(int(number), text))
            else:
                raise FactError(f"{self.describe()}: output before any file header")
        if not in_generators:
            raise FactError(f"{self.describe()}: incomplete output")
        return GrubState(files=files, generators=generators)

    def describe(self) -> str:
        return "GRUB users and passwords"
