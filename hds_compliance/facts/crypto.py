"""System-wide cryptography settings: OpenSSL's configuration file as OpenSSL finds it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact
from hds_compliance.facts.framed import FRAMES_SH, framed_output, parts
from hds_compliance.model import Capture


@dataclass(frozen=True)
class OpenSSLSetup:
    """OpenSSL's version, the configuration file it loads by default, and the files that file includes.

    ``files`` holds the main file first, then each ``.include`` target (``None``: not readable).
    """

    version: str
    config: str
    files: dict[str, bytes | None]

    @property
    def major(self) -> int | None:
        """Major version number (3 for OpenSSL 3.0), ``None`` if ``openssl version`` said otherwise."""
        match = re.match(r"OpenSSL (\d+)\.", self.version)
        return int(match.group(1)) if match else None


# sh: the targets of the .include lines among the kept lines of openssl.cnf ($k), one per line in $n:
# ".include /path", ".include=/path", ".include = /path" (directories: every *.cnf/*.conf); each line is
# cut with shell builtins (blanks, then ".include", blanks, one "=", blanks; the target ends at a blank).
_INCLUDES_SH = (
    'n=; o=$IFS; IFS=$nl; set -f; for l in $k; do IFS=$o; l=${l#"${l%%[![:space:]]*}"}; '
    'case $l in .include*) ;; *) continue;; esac; l=${l#.include}; l=${l#"${l%%[![:space:]]*}"}; '
    'l=${l#=}; l=${l#"${l%%[![:space:]]*}"}; n="$n${l%%[[:space:]]*}$nl"; done; IFS=$o; set +f'
)
# The lines that decide SSL defaults: section headers, .include, the init and SSL keys, SSL_CONF commands.
# The rest (CA settings, commented examples such as "input_password = secret") never leaves the host.
KEPT_LINES = (
    r"^[[:space:]]*(\[|\.include|(openssl_conf|ssl_conf|system_default|"
    r"[A-Za-z.]*(Protocol|CipherString|Ciphersuites|Options|Groups|Curves|SignatureAlgorithms))[[:space:]]*=)"
)


@dataclass(frozen=True)
class OpenSSLConfig(Fact[OpenSSLSetup | None]):
    """OpenSSL's default configuration: ``openssl version -v -d`` gives the version and OPENSSLDIR, where
    ``openssl.cnf`` lives; the lines of it, and of the files it includes (one level), that decide SSL
    defaults (see :data:`KEPT_LINES`). ``None`` without the openssl tool."""

    kind: ClassVar[str] = "crypto-openssl"
    arg: str = ""

    def script(self) -> str:
        return (
            f"command -v openssl >/dev/null 2>&1 || exit {ABSENT}; {FRAMES_SH}; "
            # one openssl start for both lines (it loads its configuration each time); split by builtins
            'o=$(openssl version -v -d) || exit 1; v=${o%%"\n"*}; D=; '
            "case $o in *'OPENSSLDIR: \"'*) D=${o#*'OPENSSLDIR: \"'}; D=${D%%'\"'*};; esac; "
            'part version "$v"; part config "$D/openssl.cnf"; '
            'keep() { [ -f "$1" ] || return 0; if [ ! -r "$1" ]; then printf \'@%s! %s\\n\' "$F" "$1"; '
            f'return 0; fi; k=$(grep -E \'{KEPT_LINES}\' -- "$1"); part "$1" "$k"; }}; '
            # the include lines are among the kept ones: openssl.cnf is not read a second time
            f"nl='\n'; k=; keep \"$D/openssl.cnf\"; {_INCLUDES_SH}; "
            "for i in $n; do "
            'if [ -d "$i" ]; then for f in "$i"/*.cnf "$i"/*.conf; do keep "$f"; done; '
            'else keep "$i"; fi; done'
        )

    def parse(self, capture: Capture) -> OpenSSLSetup | None:
        frames = framed_output(self, capture)
        if frames is None:
            return None
        version, config = parts(self, frames, "version", "config")
        files = {f.name: f.data for f in frames if f.name not in ("version", "config")}
        return OpenSSLSetup(version=version.text().strip(), config=config.text().strip(), files=files)

    def describe(self) -> str:
        return "OpenSSL default configuration"
