"""The kernel command line: the running kernel's (/proc/cmdline) and the one the next boot passes.

The next boot's command line is read from what the boot loader uses: GRUB's generated ``grub.cfg``
(``linux`` lines, Debian and RHEL), BLS entries (``/boot/loader/entries/*.conf`` ``options``, RHEL 8+,
with ``$kernelopts`` from ``grubenv``), and what regenerates them: ``GRUB_CMDLINE_LINUX`` and
``GRUB_CMDLINE_LINUX_DEFAULT`` of ``/etc/default/grub`` and ``/etc/default/grub.d/*.cfg`` (update-grub,
grub2-mkconfig), ``/etc/kernel/cmdline`` (kernel-install, RHEL 9).

Arguments follow the kernel's own parsing: blanks separate them except inside double quotes, the last
occurrence of a parameter wins, and everything after a lone ``--`` goes to init, not to the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hds_compliance.facts.base import ABSENT, Fact, FactError, in_shell_sh
from hds_compliance.facts.reads import WHOLE_SH
from hds_compliance.model import Capture


def split_cmdline(text: str) -> list[str]:
    """Arguments of a command line, quotes removed (the kernel's next_arg: blanks split outside quotes)."""
    args: list[str] = []
    current: list[str] = []
    quoted = started = False
    for char in text:
        if char == '"':
            quoted, started = not quoted, True
        elif char.isspace() and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        args.append("".join(current))
    return args


def kernel_params(args: list[str]) -> dict[str, str | None]:
    """What the kernel receives: name -> value of the LAST occurrence (None for a bare flag), up to ``--``."""
    params: dict[str, str | None] = {}
    for arg in args:
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        params.pop(name, None)
        params[name] = value if eq else None
    return params


def after_init_separator(args: list[str]) -> list[str]:
    """Arguments after ``--``: the kernel passes them to init."""
    return args[args.index("--") + 1 :] if "--" in args else []


def has_param(args: list[str], wanted: str) -> bool:
    """Whether the kernel gets ``wanted`` (``name=value``: its last value, or one comma-separated item of
    it, as in ``iommu=force,pt`` or ``mds=full,nosmt``; a bare ``name``: the flag or any value)."""
    name, eq, value = wanted.partition("=")
    params = kernel_params(args)
    if name not in params:
        return False
    if not eq:
        return True
    got = params[name]
    return got is not None and (got == value or value in got.split(","))


@dataclass(frozen=True)
class KernelCmdline(Fact[list[str]]):
    """Arguments the running kernel was booted with (``/proc/cmdline``)."""

    kind: ClassVar[str] = "kernel-cmdline"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        missing = "{ echo '/proc is not mounted' >&2; return 1; }"
        return WHOLE_SH + in_shell_sh("", f"[ -r /proc/cmdline ] || {missing}; rdw /proc/cmdline")

    def parse(self, capture: Capture) -> list[str]:
        if capture.exit_code != 0:
            raise self._fail(capture)
        return split_cmdline(capture.stdout_text())

    def describe(self) -> str:
        return "kernel command line (/proc/cmdline)"


KERNEL_CMDLINE = KernelCmdline()


@dataclass(frozen=True)
class BootEntry:
    """One command line the next boot (or the next regeneration of the boot menu) passes to a kernel."""

    source: str  # file:line, or the defaults file
    kind: str  # grub.cfg | bls | defaults | kernel-install
    args: tuple[str, ...]
    recovery: bool = False


@dataclass(frozen=True)
class BootConfig:
    """Every kernel command line of the boot loader's configuration."""

    entries: tuple[BootEntry, ...]

    def lacking(self, wanted: str) -> list[BootEntry]:
        """Entries (recovery entries aside) whose kernel would not get ``wanted``."""
        return [e for e in self.entries if not e.recovery and not has_param(list(e.args), wanted)]

    def all_have(self, name: str, value: str) -> bool:
        """Whether there is at least one entry and every one gives the kernel ``name=value``."""
        return bool(self.entries) and not self.lacking(f"{name}={value}")


_PATTERN = r"^[[:space:]]*(linux|linuxefi|linux16|options|kernelopts=|GRUB_CMDLINE_LINUX)"
_BOOT_FILES = (
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/boot/loader/entries/*.conf",
    "/boot/grub2/grubenv",
    "/boot/grub/grubenv",
    "/etc/default/grub",
    "/etc/default/grub.d/*.cfg",
)
_ASSIGN_RE = re.compile(r"^\s*(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*)$")
_VAR_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _shell_value(raw: str, env: dict[str, str]) -> str:
    """The value of a simple shell assignment's right side: quotes, ``$VAR`` and ``${VAR}`` expanded."""
    out, pos = [], 0
    raw = raw.strip()
    while pos < len(raw):
        char = raw[pos]
        if char == "'":
            end = raw.find("'", pos + 1)
            end = len(raw) if end < 0 else end
            out.append(raw[pos + 1 : end])
            pos = end + 1
        elif char == '"':
            end = raw.find('"', pos + 1)
            end = len(raw) if end < 0 else end
            out.append(_VAR_RE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), raw[pos + 1 : end]))
            pos = end + 1
        elif (char == "#" and (pos == 0 or raw[pos - 1].isspace())) or char.isspace():
            break  # an unquoted blank ends the word; the rest is a comment or another command
        else:
            end = pos
            while end < len(raw) and not raw[end].isspace() and raw[end] not in "'\"":
                end += 1
            out.append(_VAR_RE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), raw[pos:end]))
            pos = end
    return "".join(out)


@dataclass(frozen=True)
class BootEntries(Fact[BootConfig]):
    """Kernel command lines of the boot loader configuration (see the module docstring).

    Raises FactError when no boot loader configuration is visible (a container, ``/boot`` not mounted and
    no defaults file): what the next boot passes cannot be known.
    """

    kind: ClassVar[str] = "boot-entries"
    in_shell: ClassVar[bool] = True
    arg: str = ""

    def script(self) -> str:
        files = " ".join(_BOOT_FILES)
        return in_shell_sh(
            "f k r",
            f'set --; for f in {files}; do [ -f "$f" ] && set -- "$@" "$f"; done; '
            f'[ -f /etc/kernel/cmdline ] && k=1 || k=; [ $# -gt 0 ] || [ -n "$k" ] || return {ABSENT}; '
            f"if [ $# -gt 0 ]; then grep -n -H -E '{_PATTERN}' -- \"$@\"; r=$?; "
            '[ "$r" -le 1 ] || return "$r"; fi; '
            "[ -z \"$k\" ] || grep -n -H '' /etc/kernel/cmdline; return 0",
        )

    def parse(self, capture: Capture) -> BootConfig:
        if capture.exit_code == ABSENT:
            raise self._nothing()
        if capture.exit_code != 0:
            raise self._fail(capture)
        kernelopts = ""
        lines: list[tuple[str, int, str]] = []
        for raw in capture.stdout_text().splitlines():
            match = re.match(r"^(.*?):(\d+):(.*)$", raw)
            if not match:
                raise FactError(f"{self.describe()}: unexpected line {raw!r}")
            path, number, text = match.group(1), int(match.group(2)), match.group(3)
            if path.endswith("grubenv") and text.startswith("kernelopts="):
                kernelopts = text.partition("=")[2]
            else:
                lines.append((path, number, text))
        entries: list[BootEntry] = []
        env: dict[str, str] = {}
        defaults: list[str] = []
        for path, number, text in lines:
            words = text.split(None, 1)
            where = f"{path}:{number}"
            if path.endswith("grub.cfg") and words and words[0] in ("linux", "linuxefi", "linux16"):
                args = split_cmdline(words[1] if len(words) > 1 else "")[1:]  # the first word is the image
                args = [a for a in args if not a.startswith("$")]  # $vt_handoff and the like
                rescue = "single" in args or "systemd.unit=rescue.target" in args
                entries.append(BootEntry(where, "grub.cfg", tuple(args), recovery=rescue))
            elif "/loader/entries/" in path and words and words[0] == "options":
                text = (words[1] if len(words) > 1 else "").replace("$kernelopts", kernelopts)
                args = [a for a in split_cmdline(text) if not a.startswith("$")]  # $tuned_params: tuned's
                entries.append(BootEntry(where, "bls", tuple(args)))
            elif path == "/etc/kernel/cmdline":
                entries.append(BootEntry(where, "kernel-install", tuple(split_cmdline(text))))
            elif (assign := _ASSIGN_RE.match(text)) is not None:
                env[assign.group(1)] = _shell_value(assign.group(2), env)
                if path not in defaults:
                    defaults.append(path)
        if defaults:
            line = f"{env.get('GRUB_CMDLINE_LINUX', '')} {env.get('GRUB_CMDLINE_LINUX_DEFAULT', '')}"
            source = " + ".join(defaults) + " (GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT)"
            entries.append(BootEntry(source, "defaults", tuple(split_cmdline(line))))
        if not entries:
            raise self._nothing()
        return BootConfig(tuple(entries))

    def _nothing(self) -> FactError:
        return FactError(
            f"{self.describe()}: no grub.cfg linux line, BLS entry, GRUB_CMDLINE_LINUX or "
            "/etc/kernel/cmdline is visible (no boot loader, or /boot not mounted): "
            "what the next boot passes cannot be known"
        )

    def describe(self) -> str:
        return "boot loader kernel command lines"
