"""Fact fixtures: the pyinfra way of testing facts, data in and value out.

One file per case, ``tests/facts/<kind>/<name>.yaml``::

    arg: /etc/login.defs            # the fact's argument ("" for kinds without one)
    source: this machine (Debian 12 ...), 2026-12-02   # or "written from <tool>(1)": not recorded
    command: |                      # exactly what the fact renders (its snippet in the probe)
      ...
    capture: {exit_code: 0, stdout: ..., stderr: ..., stdout_encoding: text}
    follow_ups: {<key>: <capture>}  # second-round captures, for facts that have some
    value: ...                      # the parsed value in plain form (see plain()), or
    error: ...                      # a substring of the FactError the parser raises
"""

from __future__ import annotations

import base64
import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from hds_compliance.model import Capture

FIXTURES = Path(__file__).parent / "facts"


def plain(value: Any) -> Any:
    """A parsed value as YAML/JSON data: dataclasses as mappings, sets sorted, bytes as text or base64."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def dump_capture(capture: Capture) -> dict[str, Any]:
    """The fields of a capture a fixture keeps."""
    out: dict[str, Any] = {"exit_code": capture.exit_code, "stdout": capture.stdout}
    if capture.stdout_encoding != "text":
        out["stdout_encoding"] = capture.stdout_encoding
    if capture.stderr:
        out["stderr"] = capture.stderr
    return out


def replace_block(text: str, headers: list[str], fields: dict[str, Any]) -> str:
    """``text`` (a captures file) with the mapping under the last of ``headers`` replaced by ``fields``.

    Each header is a whole line, found after the previous one (``["  scene: &scene", "    fact:"]``); the
    block is the lines after the last one indented deeper than it, or blank (blank lines inside literal
    text are written unindented), without the blank lines that end it. The result is loaded once: a
    rewrite that broke the file raises instead of being written.
    """
    lines = text.splitlines(keepends=True)
    at = -1
    for header in headers:
        at = lines.index(header + "\n", at + 1)
    indent = " " * (len(headers[-1]) - len(headers[-1].lstrip()) + 2)
    end = at + 1
    while end < len(lines) and (lines[end].startswith(indent) or not lines[end].strip()):
        end += 1
    while end > at + 1 and not lines[end - 1].strip():
        end -= 1
    block = yaml.dump(fields, sort_keys=False, allow_unicode=True, width=110)
    new = [f"{indent}{line}\n" if line else "\n" for line in block.splitlines()]
    result = "".join([*lines[: at + 1], *new, *lines[end:]])
    yaml.safe_load(result)
    return result


def load_capture(key: str, fields: dict[str, Any]) -> Capture:
    """A capture from a fixture's fields."""
    return Capture(fact=key, command="(fixture)", **fields)


def fixtures() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, case name, data) of every fixture."""
    out = []
    for path in sorted(FIXTURES.glob("*/*.yaml")):
        out.append((path.parent.name, path.stem, yaml.safe_load(path.read_text())))
    return out


def _literal(dumper: yaml.Dumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


yaml.add_representer(str, _literal)
