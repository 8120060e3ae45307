"""Kernel modules: which ones modprobe refuses to load, which are loaded, which are built in.

``modprobe --showconfig`` is the judge of modprobe's configuration: it merges /etc/modprobe.d,
/run/modprobe.d, /usr/local/lib/modprobe.d and /lib/modprobe.d (and ``modprobe.blacklist=`` of the
command line) the way modprobe itself does, and prints module names with ``_`` for ``-``. Only its
``install`` and ``blacklist`` lines are kept (the rest is the alias index, thousands of lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import ClassVar

from hds_compliance.facts.base import NOT_FOUND, Fact, FactError, in_shell_sh
from hds_compliance.model import Capture


def module_name(name: str) -> str:
    """A module name as modprobe compares them (``usb-storage`` and ``usb_storage`` are one module)."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class ModuleState:
    """modprobe's configuration and the running kernel's modules."""

    install: tuple[tuple[str, str], ...] = ()  # (module or glob, command run instead of loading it)
    blacklist: frozenset[str] = frozenset()
    loaded: frozenset[str] | None = None  # None: the kernel has no loadable module support
    builtin: frozenset[str] | None = None  # None: modules.builtin of the running kernel is not readable
    present: frozenset[str] = frozenset()  # /sys/module: loaded, or built in with parameters

    def install_command(self, module: str) -> str | None:
        """The command modprobe runs instead of loading ``module``: the FIRST matching install line
        (libkmod: "find only the first command, as modprobe from module-init-tools does")."""
        return next((cmd for pattern, cmd in self.install if fnmatchcase(module, pattern)), None)


@dataclass(frozen=True)
class KernelModules(Fact[ModuleState]):
    """modprobe's install/blacklist rules, /proc/modules, modules.builtin and /sys/module of this kernel."""

    kind: ClassVar[str] = "modprobe"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        return in_shell_sh(
            "k b m",
            f"command -v modprobe >/dev/null 2>&1 || return {NOT_FOUND}; "
            "{ modprobe --showconfig; echo \"@rc $?\"; } | grep -E '^(install|blacklist|@rc) '; "
            "echo @loaded; if [ -r /proc/modules ]; then cut -d' ' -f1 /proc/modules; else echo @none; fi; "
            # the kernel release and /sys/module's entries by builtins: two programs fewer than uname and ls
            "echo @builtin; { read -r k < /proc/sys/kernel/osrelease; } 2>/dev/null || k=$(uname -r); "
            'b="/lib/modules/$k/modules.builtin"; '
            'if [ -r "$b" ]; then sed \'s,.*/,,; s,\\.ko.*$,,\' "$b"; else echo @none; fi; '
            'echo @sys; for m in /sys/module/*; do [ -e "$m" ] && echo "${m##*/}"; done; return 0',
        )

    def parse(self, capture: Capture) -> ModuleState:
        if capture.exit_code == NOT_FOUND:
            raise FactError(f"{self.describe()}: modprobe is not installed (kmod package)")
        if capture.exit_code != 0:
            raise self._fail(capture)
        install: list[tuple[str, str]] = []
        blacklist: set[str] = set()
        sections: dict[str, set[str] | None] = {}
        current: str | None = None
        status = None
        for line in capture.stdout_text().splitlines():
            if line.startswith("@rc "):
                status = line[4:]
            elif line in ("@loaded", "@builtin", "@sys"):
                current = line[1:]
                sections[current] = set()
            elif current is None:
                word, _, rest = line.partition(" ")
                name, _, command = rest.strip().partition(" ")
                if word == "install" and name:
                    install.append((module_name(name), command.strip()))
                elif word == "blacklist" and name:
                    blacklist.add(module_name(name))
            elif line == "@none":
                sections[current] = None
            elif line.strip():
                names = sections[current]
                if names is not None:
                    names.add(module_name(line.strip()))
        if status != "0" or set(sections) != {"loaded", "builtin", "sys"}:
            raise FactError(f"{self.describe()}: modprobe --showconfig failed ({capture.stderr.strip()})")
        loaded, builtin = sections["loaded"], sections["builtin"]
        return ModuleState(
            install=tuple(install),
            blacklist=frozenset(blacklist),
            loaded=None if loaded is None else frozenset(loaded),
            builtin=None if builtin is None else frozenset(builtin),
            present=frozenset(sections["sys"] or ()),
        )

    def describe(self) -> str:
        return "kernel modules (modprobe --showconfig, /proc/modules)"
