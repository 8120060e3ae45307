"""Facts: the pieces of host state checks read, each a POSIX sh snippet and a pure parser.

A fact is declared by a check (never fetched by it). The probe runs every fact's snippet once per host
inside one script; the snippet's stdout and exit code come back as a :class:`~hds_compliance.model.Capture`
and :meth:`Fact.parse` turns that into a value. Parsers run on the evaluating side, so they are unit-tested
with recorded captures and re-run offline by certifiers.

Conventions for snippets: exit ``ABSENT`` (100) when the thing does not exist (file, directory, daemon),
``UNREADABLE`` (101) when it exists but cannot be read with the probe's privileges. ``command not found``
is the shell's own 127. Any other non-zero exit code is a collection error, never a silent value.
Where a raw read would carry a secret (``/etc/shadow``), the snippet derives the fact on the host.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, NamedTuple, TypeVar

from hds_compliance.model import Capture

ABSENT = 100
UNREADABLE = 101
NOT_FOUND = 127

T = TypeVar("T")


class Part(NamedTuple):
    """What one fact of a batch printed: the same fields a section of its own would have."""

    exit_code: int
    stdout: bytes
    stderr: str


def error_lines(stderr: str, path: str) -> str:
    """Error lines a tool printed about ``path`` (quoted 'path' or followed by a colon)."""
    return "\n".join(line for line in stderr.splitlines() if f"'{path}'" in line or f"{path}:" in line)


def part_from_error(message: str) -> Part:
    if "No such file" in message:
        return Part(ABSENT, b"", message)
    if "Permission denied" in message:
        return Part(UNREADABLE, b"", message)
    return Part(1, b"", message or "no output for this item")


# A joint snippet's parts (Fact.joint_script): ``jf CODE OUTPUT`` prints the first fact's exit code and
# output as one length-prefixed record, ``J <length> <code> <output>\n``, the length in bytes (the probe
# runs with LC_ALL=C), so no output can forge where the companion's starts; the record has the form of
# rd's records (facts.reads), so the probe's pooled reads of the companion find their request after it.
JOINT_SH = 'jf() { p="$1 $2"; printf \'J %s %s\\n\' "${#p}" "$p"; }; '
JOINT_ABSENT_SH = f"{{ echo 'J absent'; exit {ABSENT}; }}"


def in_shell_sh(variables: str, body: str) -> str:
    """The form of an in-shell snippet (:attr:`Fact.in_shell`): ``body`` as the function ``_h``, its
    ``variables`` (names separated by blanks) local to it, defined then called; ``body`` returns its
    exit code (``return N``: ``exit`` would end the probe's shell)."""
    declare = f"local {variables}; " if variables else ""
    return f"_h() {{ {declare}{body.rstrip()}; }}; _h"


class FactError(Exception):
    """A fact could not be established from its capture; the check gets an ``error`` verdict."""


def quote(value: str) -> str:
    return shlex.quote(value)


_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@/-]*$")
GLOB_RE = re.compile(r"^[A-Za-z0-9._*?+@-]+$")


def check_path(path: str) -> str:
    if not _PATH_RE.match(path) or "/../" in f"{path}/":
        raise ValueError(f"not a plain absolute path: {path!r}")
    return path


def exists_or_return(path: str) -> str:
    """sh (in an in-shell snippet, its variable ``d`` local) that returns ABSENT if ``path`` does not exist,
    UNREADABLE if a folder on the way cannot be searched.

    ``[ -e ]`` is also false for a file below a folder the probe may not enter: that is "cannot know",
    not "absent". The deepest folder on the way that the probe sees tells which.
    """
    p = quote(path)
    parts = path.rstrip("/").split("/")[1:-1]
    ancestors = " ".join(quote("/" + "/".join(parts[:i])) for i in range(len(parts), -1, -1))
    return (
        f'[ -e {p} ] || [ -L {p} ] || {{ for d in {ancestors}; do [ -d "$d" ] || continue; '
        f'[ -x "$d" ] && return {ABSENT}; return {UNREADABLE}; done; return {ABSENT}; }}'
    )


# Every fact kind, by the ``kind`` prefix of its keys: how a key read back from evidence becomes a fact again.
KINDS: dict[str, type[Fact[Any]]] = {}


@dataclass(frozen=True)
class Fact(ABC, Generic[T]):
    """A fact request. Equal requests (same kind and argument) are collected once per host."""

    kind: ClassVar[str]
    arg: str
    # "host": collected by the probe on the host. "scanner": collected from the scanning machine (a TLS
    # handshake with an endpoint the host serves), by hds_compliance.collect.network.
    origin: ClassVar[Literal["host", "scanner"]] = "host"
    # Whether the evaluator remembers what a check saw of this fact by its parsed value rather than by its
    # capture (see hds_compliance.evaluate.engine._Memo): for kinds whose capture differs from host to host
    # where the value does not (the process table: its PIDs), with a small hashable value parsed from the
    # capture alone, its key saying all the parser needs.
    traced_by_value: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            if kind in KINDS or ":" in kind:
                raise ValueError(f"fact kind {kind!r} defined twice or holding ':'")
            KINDS[kind] = cls
        if cls.traced_by_value and cls.parse_with is not Fact.parse_with:
            raise TypeError(f"{cls.__name__}: a fact traced by value is parsed from its own capture alone")

    @property
    def key(self) -> str:
        """Stable identifier of the fact in captures and evidence, e.g. ``file:/etc/login.defs``."""
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    @abstractmethod
    def script(self) -> str:
        """POSIX sh snippet printing the fact's raw data on stdout."""

    @abstractmethod
    def parse(self, capture: Capture) -> T:
        """Value of the fact from its capture; raise :class:`FactError` when it cannot be known."""

    def follow_ups(self, capture: Capture) -> list[Fact[Any]]:
        """Facts that depend on this one's output, collected in the probe's second round trip.

        Most facts have none. A fact that has some reads their captures in :meth:`parse_with`.
        """
        return []

    def parse_with(self, capture: Capture, lookup: Callable[[str], Capture | None]) -> T:
        """Value of the fact from its capture and, by key, those of its follow-ups."""
        return self.parse(capture)

    def describe(self) -> str:
        """Short human name used in messages."""
        return self.key

    # Kinds of facts (one each, not batched) that the probe collects in ONE section with this kind's fact,
    # through ``joint_script``, because their snippets would each run the same costly program (sshd -T,
    # apt-config). Each fact's own snippet is unchanged: alone, it runs the program itself.
    companions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def joint_script(cls, facts: Sequence[Fact[Any]]) -> str:
        """One snippet collecting a fact of this kind and its one companion (only with ``companions``): it
        prints the first fact's exit code and output as one record (:data:`JOINT_SH`), then the
        companion's output, and exits with the companion's code; ``J absent`` and ABSENT where the program
        they share is not installed."""
        raise NotImplementedError(cls.kind)

    @classmethod
    def split_joint(
        cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, exit_code: int
    ) -> list[Part]:
        """Per-fact (exit code, stdout, stderr) recovered from the joint snippet's output: for each fact, what
        its own snippet would have printed. Both get the section's stderr."""
        if stdout == b"J absent\n" and exit_code == ABSENT:
            return [Part(ABSENT, b"", stderr) for _ in facts]
        tag, _, rest = stdout.partition(b" ")
        size, _, rest = rest.partition(b" ")
        if tag == b"J" and size.isdigit() and rest[int(size) : int(size) + 1] == b"\n":
            code, separator, first = rest[: int(size)].partition(b" ")
            if separator and code.isdigit():
                return [Part(int(code), first, stderr), Part(exit_code, rest[int(size) + 1 :], stderr)]
        why = stderr or f"the joint snippet of {cls.kind} printed a malformed or cut output"
        return [Part(exit_code or 1, b"", why) for _ in facts]

    # Whether the probe may run this kind's snippets in its main shell instead of a subshell (a
    # subshell's fork costs the host about 0.4 ms; a probe has dozens of sections). Its script (and
    # batch_script) then keeps a contract, held by tests/test_in_shell.py: ONE function named _h, defined
    # and called (``_h() { ...; }; _h``, so alone it runs the same), that changes nothing the next snippet
    # could see: every variable it sets is ``local`` to _h (and set before it is read: dash's ``local``
    # keeps the outer value), any other function it defines is named _h..., no exit (return), cd, set
    # (but ``set --``), trap, umask or exec. It may start programs and subshells as it likes.
    in_shell: ClassVar[bool] = False

    # Facts of one kind whose snippets would each start the same program (cat, stat) can be batched:
    # the probe runs ONE snippet for all of them and splits its output back into one capture per fact.
    batchable: ClassVar[bool] = False

    @classmethod
    def batch_script(cls, facts: Sequence[Fact[Any]]) -> str:
        """One snippet collecting every fact of ``facts`` (only for ``batchable`` kinds)."""
        raise NotImplementedError(cls.kind)

    @classmethod
    def split_batch(cls, facts: Sequence[Fact[Any]], stdout: bytes, stderr: str, limit: int) -> list[Part]:
        """Per-fact (exit code, stdout, stderr) recovered from the batch snippet's output.

        ``limit`` is the probe's ``$C``: the most bytes a snippet reads from one file.
        """
        raise NotImplementedError(cls.kind)

    def _fail(self, capture: Capture) -> FactError:
        # Some tools report errors on stdout (chronyc: "506 Cannot talk to daemon").
        detail = (capture.stderr.strip() or capture.stdout_text().strip()).splitlines()
        reason = detail[-1] if detail else "no error output"
        if capture.exit_code == UNREADABLE:
            return FactError(f"{self.describe()}: not readable with the probe's privileges ({reason})")
        return FactError(f"{self.describe()}: exit code {capture.exit_code} ({reason})")


# ---------------------------------------------------------------------------------------------- files


def _kind_of(key: str) -> tuple[type[Fact[Any]], str]:
    """The fact class a capture key names, and its argument."""
    kind, _, arg = key.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown fact kind in key {key!r}")
    return KINDS[kind], arg


def origin_of(key: str) -> Literal["host", "scanner"]:
    """Where the fact a capture key names is collected, from its kind alone (no fact is built)."""
    return _kind_of(key)[0].origin


def fact_from_key(key: str) -> Fact[Any]:
    """The fact a capture key names (``file:/etc/passwd`` -> ``FileContent("/etc/passwd")``)."""
    cls, arg = _kind_of(key)
    return cls(arg)
