"""YAML loading that remembers where every value came from, so errors can name the line.

Plain PyYAML safe loading, except that mappings and sequences are built as :class:`LineDict` and
:class:`LineList` carrying the line of each key/item, and a duplicate key is an error (PyYAML would keep
the last one silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hds_compliance.errors import InputError, Problem


class LineDict(dict[str, Any]):
    """A YAML mapping with the 1-based line of the mapping and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A YAML sequence with the 1-based line of the sequence and of each item."""

    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML was built with it (its wheels are): ten times faster, same nodes and marks.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path, display: str | None = None) -> Any:
    """Parse one YAML file; syntax errors become an :class:`InputError` with file and line."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(name, None, "", f"cannot read: {exc}")]) from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = str(exc.problem or exc.context or "syntax error")
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise InputError([Problem(name, line, "", f"invalid YAML: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise InputError([Problem(name, None, "", f"invalid YAML: {exc}")]) from exc


def line_of(node: Any, loc: Sequence[int | str]) -> int | None:
    """Best line for a location path (as pydantic reports it) inside a loaded YAML tree.

    Walks as deep as the path exists; a single-key mapping whose key is not on the path (the
    ``- check.id: {params}`` form) is stepped through.
    """
    line = getattr(node, "line", None)
    for part in loc:
        if isinstance(node, LineDict):
            key = str(part)
            if key not in node:
                if len(node) != 1:
                    break
                key = next(iter(node))
            line = node.key_lines[key]
            node = node[key]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def validation_problems(file: str, data: Any, exc: ValidationError) -> list[Problem]:
    """pydantic's errors over a loaded YAML tree as problems: file, line, dotted field, message."""
    return [
        Problem(file, line_of(data, err["loc"]), ".".join(str(p) for p in err["loc"]), err["msg"])
        for err in exc.errors()
    ]
