"""Load the catalogue: control files, named parameters and profiles, checked against the check registry.

Layout of a catalogue folder::

    *.yaml, <sub>/*.yaml      control files (YAML lists of controls)
    parameters/*.yaml         named parameters (name -> type, default, description, source)
    profiles/*.yaml           profiles (one per file)

Every problem is reported with file, line and field, all at once (a catalogue author fixes them in one
pass). A control without checks is kept: it is answered by an attestation or reported ``not_reviewed``.
Parameter values come, from weakest to strongest, from the catalogue defaults, the profile (and the
profiles it extends), parameter files, then ``--set``; each value records where it was set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hds_compliance.catalog.frameworks import ANSSI_LEVELS, anssi_level
from hds_compliance.catalog.models import (
    Catalog,
    CheckRef,
    Control,
    Parameter,
    ParameterValue,
    ParamRef,
    Profile,
    coerce,
)
from hds_compliance.check import Check, registry
from hds_compliance.errors import InputError, Problem
from hds_compliance.yamlsrc import LineDict, LineList, line_of, load_yaml

PARAMETERS_DIR = "parameters"
PROFILES_DIR = "profiles"


def default_controls_dir() -> Path:
    """The catalogue shipped with the package (the repository's ``controls/``)."""
    return Path(str(resources.files("hds_compliance.controls")))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class _Sources:
    """Everything read from the catalogue folder, before a profile is applied."""

    controls: list[tuple[Control, LineDict, str]] = field(default_factory=list)  # control, raw, file
    parameters: dict[str, Parameter] = field(default_factory=dict)
    parameter_lines: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    profile_lines: dict[str, dict[str, int]] = field(default_factory=dict)  # profile -> parameter -> line
    digest: Any = field(default_factory=hashlib.sha256)
    problems: list[Problem] = field(default_factory=list)


def catalogue_files(directory: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(control files, parameter files, profile files) of a catalogue folder, sorted."""
    controls, parameters, profiles = [], [], []
    for path in sorted(p for p in directory.rglob("*.yaml") if p.is_file()):
        rel = path.relative_to(directory).parts
        if rel[0] == PARAMETERS_DIR:
            parameters.append(path)
        elif rel[0] == PROFILES_DIR:
            profiles.append(path)
        else:
            controls.append(path)
    return controls, parameters, profiles


def _read(directory: Path, checks: dict[str, Check[Any]], extra: Sequence[Path] = ()) -> _Sources:
    """Read the catalogue folder, then each ``extra`` control file or folder (a team's own controls, and
    in a folder its own parameters and profiles), on top of it: ids must not clash."""
    if not directory.is_dir():
        raise InputError([Problem(str(directory), None, "", "not a directory of control files")])
    control_files, parameter_files, profile_files = catalogue_files(directory)
    if not control_files:
        raise InputError([Problem(str(directory), None, "", "no *.yaml control files found")])
    src = _Sources()
    for path in [*control_files, *parameter_files, *profile_files]:
        src.digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for number, root in enumerate(extra, 1):
        if root.is_dir():
            more = catalogue_files(root)
        elif root.is_file():
            more = ([root], [], [])
        else:
            src.problems.append(Problem(str(root), None, "", "extra controls: no such file or folder"))
            continue
        if not more[0]:
            src.problems.append(Problem(str(root), None, "", "extra controls: no *.yaml control files found"))
        for path in [path for files in more for path in files]:
            # the extra's number keeps "a.yaml" of two extras apart in the digest
            name = f"+{number}/{path.relative_to(root).as_posix() if root.is_dir() else path.name}"
            src.digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        control_files += more[0]
        parameter_files += more[1]
        profile_files += more[2]
    seen: dict[str, str] = {}
    for path in control_files:
        _read_controls(path, checks, src, seen)
    for path in parameter_files:
        _read_parameters(path, src)
    for path in profile_files:
        _read_profile(path, src)
    return src


def _read_controls(path: Path, checks: dict[str, Check[Any]], src: _Sources, seen: dict[str, str]) -> None:
    name = _display(path)
    try:
        data = load_yaml(path, name)
    except InputError as exc:
        src.problems.extend(exc.problems)
        return
    if data is None or data == []:
        # An empty file is a truncated or misplaced one far more often than a deliberate placeholder,
        # and a catalogue of empty files would judge nothing: never a silent pass.
        src.problems.append(Problem(name, 1, "", "holds no controls (empty, or only comments)"))
        return
    if not isinstance(data, LineList):
        src.problems.append(
            Problem(name, getattr(data, "line", 1), "", "a control file is a YAML list of controls")
        )
        return
    for index, raw in enumerate(data):
        control = _load_control(raw, index, data, name, checks, src.problems)
        if control is None:
            continue
        if control.id in seen:
            where = line_of(raw, ["id"])
            src.problems.append(
                Problem(
                    name, where, f"{control.id}.id", f"duplicate control id (first in {seen[control.id]})"
                )
            )
            continue
        seen[control.id] = control.source
        src.controls.append((control, raw, name))


def _yaml(path: Path, name: str, problems: list[Problem]) -> Any:
    try:
        return load_yaml(path, name)
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def _read_parameters(path: Path, src: _Sources) -> None:
    name = _display(path)
    data = _yaml(path, name, src.problems)
    if data is None:
        return
    if not isinstance(data, LineDict):
        src.problems.append(
            Problem(name, getattr(data, "line", 1), "", "a parameters file is a YAML mapping")
        )
        return
    for key, raw in data.items():
        where = data.key_lines[key]
        if key in src.parameters:
            src.problems.append(
                Problem(name, where, key, f"parameter defined twice (first in {src.parameter_lines[key]})")
            )
            continue
        try:
            ParamRef(param=key)
            src.parameters[key] = Parameter.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [p for p in err["loc"] if p not in ("function-after",)]
                at = line_of(raw, loc) if loc else where
                src.problems.append(Problem(name, at or where, _field(key, loc), err["msg"]))
            continue
        src.parameter_lines[key] = f"{name}:{where}"


def _read_profile(path: Path, src: _Sources) -> None:
    name = _display(path)
    data = _yaml(path, name, src.problems)
    if data is None:
        return
    if not isinstance(data, LineDict):
        src.problems.append(Problem(name, getattr(data, "line", 1), "", "a profile file is a YAML mapping"))
        return
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            src.problems.append(
                Problem(name, line_of(data, err["loc"]), _field("profile", err["loc"]), err["msg"])
            )
        return
    profile.source = f"{name}:{data.line}"
    if profile.id in src.profiles:
        src.problems.append(
            Problem(
                name,
                data.line,
                "id",
                f"profile {profile.id!r} defined twice ({src.profiles[profile.id].source})",
            )
        )
        return
    src.profiles[profile.id] = profile
    parameters = data.get("parameters")
    src.profile_lines[profile.id] = dict(parameters.key_lines) if isinstance(parameters, LineDict) else {}


def _load_control(
    raw: Any, index: int, data: LineList, name: str, checks: dict[str, Check[Any]], problems: list[Problem]
) -> Control | None:
    label = str(raw["id"]) if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"[{index}]"
    if not isinstance(raw, LineDict):
        problems.append(Problem(name, data.item_lines[index], label, "a control is a mapping"))
        return None
    try:
        control = Control.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [p for p in err["loc"] if p not in ("function-before", "function-after")]
            problems.append(Problem(name, line_of(raw, loc), _field(label, loc), err["msg"]))
        return None
    control.source = f"{name}:{raw.line}"
    ok = True
    for i, ref in enumerate(control.checks):
        if ref.id not in checks:
            where = line_of(raw, ["checks", i])
            problems.append(
                Problem(name, where, _field(label, ["checks", i]), f"unknown check id {ref.id!r}")
            )
            ok = False
    return control if ok else None


def _field(label: str, loc: list[int | str] | tuple[int | str, ...]) -> str:
    out = label
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# ------------------------------------------------------------------------------------ profile and values


def _profile_chain(src: _Sources, profile_id: str, where: str) -> list[Profile]:
    """The profile and the ones it extends, base first."""
    chain: list[Profile] = []
    current: str | None = profile_id
    while current is not None:
        if current not in src.profiles:
            known = ", ".join(sorted(src.profiles)) or "none"
            raise InputError(
                [Problem(where, None, "profile", f"unknown profile {current!r} (known: {known})")]
            )
        profile = src.profiles[current]
        if profile in chain:
            raise InputError(
                [Problem(profile.source, None, "extends", f"profile {current!r} extends itself")]
            )
        chain.insert(0, profile)
        current = profile.extends
    return chain


def _selected(control: Control, profile: Profile) -> bool:
    select = profile.select
    if select.all or control.id in select.controls:
        return True
    if select.min_severity is not None and control.severity.rank >= select.min_severity.rank:
        return True
    if select.anssi_level is not None:
        limit = ANSSI_LEVELS.index(select.anssi_level)
        return any(ANSSI_LEVELS.index(anssi_level(r)) <= limit for r in control.references.anssi_bp028)
    return False


@dataclass(frozen=True)
class _Setter:
    """Who sets parameter values, for the record (``set_by``) and for error messages (file, line)."""

    set_by: str
    file: str
    lines: dict[str, int] = field(default_factory=dict)

    def apply(
        self, values: dict[str, ParameterValue], src: _Sources, raw: dict[str, Any], problems: list[Problem]
    ) -> None:
        for name, value in raw.items():
            line = self.lines.get(name)
            if name not in src.parameters:
                known = ", ".join(sorted(src.parameters)) or "none"
                problems.append(Problem(self.file, line, name, f"unknown parameter (known: {known})"))
                continue
            definition = src.parameters[name]
            try:
                coerced = coerce(definition.type, value)
            except ValueError as exc:
                problems.append(Problem(self.file, line, name, str(exc)))
                continue
            values[name] = ParameterValue(value=coerced, set_by=self.set_by, source=definition.source)


def parameter_file_values(path: Path) -> dict[str, tuple[Any, int | None]]:
    """name -> (raw value, line) of a team's parameters file (a YAML mapping)."""
    data = load_yaml(path, _display(path))
    if data is None:
        return {}
    if not isinstance(data, LineDict):
        raise InputError([Problem(_display(path), 1, "", "a parameters file is a mapping: name: value")])
    return {key: (value, data.key_lines[key]) for key, value in data.items()}


def _resolve(
    control: Control,
    raw: LineDict,
    name: str,
    values: dict[str, ParameterValue],
    checks: dict[str, Check[Any]],
) -> tuple[Control, list[Problem]]:
    """The control with every ``{param: x}`` replaced by x's value and all parameters validated."""
    problems: list[Problem] = []
    resolved: list[CheckRef] = []
    for i, ref in enumerate(control.checks):
        params: dict[str, Any] = {}
        bindings: dict[str, str] = {}
        for key, value in ref.params.items():
            if isinstance(value, dict) and set(value) == {"param"}:
                param = str(value["param"])
                if param not in values:
                    where = line_of(raw, ["checks", i, ref.id, key])
                    problems.append(
                        Problem(
                            name,
                            where,
                            _field(control.id, ["checks", i, key]),
                            f"unknown parameter {param!r}",
                        )
                    )
                    continue
                params[key], bindings[key] = values[param].value, param
            else:
                params[key] = value
        try:
            params = checks[ref.id].validate(params).model_dump(mode="json")
        except ValidationError as exc:
            for err in exc.errors():
                loc: list[int | str] = ["checks", i, ref.id, *err["loc"]]
                bound = bindings.get(str(err["loc"][0])) if err["loc"] else None
                message = err["msg"] + (f" (value of parameter {bound})" if bound else "")
                problems.append(Problem(name, line_of(raw, loc), _field(control.id, loc), message))
            continue
        resolved.append(CheckRef(id=ref.id, params=params, bindings=bindings))
    return control.model_copy(update={"checks": resolved}), problems


def load_catalog(
    directory: Path | None = None,
    checks: dict[str, Check[Any]] | None = None,
    *,
    profile: str | None = None,
    parameter_files: list[Path] | None = None,
    overrides: dict[str, str] | None = None,
    skip_tags: list[str] | None = None,
    extra: Sequence[Path] = (),
) -> Catalog:
    """Load and validate a catalogue; raise :class:`InputError` with every problem found.

    ``profile`` selects controls and parameter values (``None``: every control, default values);
    ``parameter_files`` and ``overrides`` (``--set name=value``) set parameter values, strongest last;
    ``skip_tags`` leaves checks with those tags out (``not_reviewed``), on top of the profile's; ``extra``
    control files or folders (a team's own) are read on top of the catalogue, as part of it.
    """
    directory = directory or default_controls_dir()
    checks = registry() if checks is None else checks
    src = _read(directory, checks, extra)
    problems = list(src.problems)
    values = {
        name: ParameterValue(value=p.default, set_by="default", source=p.source)
        for name, p in src.parameters.items()
    }
    chain = _profile_chain(src, profile, "--profile") if profile is not None else []
    for prof in chain:
        file = prof.source.rsplit(":", 1)[0]
        _Setter(f"profile {prof.id}", file, src.profile_lines[prof.id]).apply(
            values, src, prof.parameters, problems
        )
    for path in parameter_files or []:
        raw_values = parameter_file_values(path)
        lines = {k: line for k, (_, line) in raw_values.items() if line is not None}
        setter = _Setter(f"file {_display(path)}", _display(path), lines)
        setter.apply(values, src, {k: v for k, (v, _) in raw_values.items()}, problems)
    _Setter("--set", "--set").apply(values, src, dict(overrides or {}), problems)
    selected: list[Control] = []
    for control, raw, name in src.controls:
        resolved, found = _resolve(control, raw, name, values, checks)
        problems.extend(found)
        if chain and not any(_selected(control, p) for p in chain):
            continue
        if chain and any(control.id in p.exclude_controls for p in chain):
            continue
        selected.append(resolved)
    known_ids = {c.id for c, _, _ in src.controls}
    for prof in src.profiles.values():
        for cid in [*prof.select.controls, *prof.exclude_controls]:
            if cid not in known_ids:
                problems.append(
                    Problem(
                        prof.source.rsplit(":", 1)[0], None, f"{prof.id}.controls", f"unknown control {cid!r}"
                    )
                )
    if problems:
        raise InputError(problems)
    exclude_tags = sorted({t for p in chain for t in p.exclude_tags} | set(skip_tags or []))
    digest = src.digest.copy()
    effective = {
        "profile": profile,
        "exclude_tags": exclude_tags,
        "parameters": {k: v.value for k, v in sorted(values.items())},
    }
    digest.update(json.dumps(effective, sort_keys=True).encode())
    return Catalog(
        controls=selected,
        digest=digest.hexdigest(),
        profile=profile,
        parameters=dict(sorted(values.items())),
        exclude_tags=exclude_tags,
    )


def profiles(
    directory: Path | None = None, checks: dict[str, Check[Any]] | None = None, extra: Sequence[Path] = ()
) -> list[Profile]:
    """The profiles a catalogue folder (and its extras) defines."""
    src = _read(directory or default_controls_dir(), registry() if checks is None else checks, extra)
    if src.problems:
        raise InputError(src.problems)
    return sorted(src.profiles.values(), key=lambda p: p.id)


def lint_catalog(
    directory: Path | None = None, checks: dict[str, Check[Any]] | None = None, extra: Sequence[Path] = ()
) -> Catalog:
    """The whole catalogue, after loading it under each of its profiles (so every profile is validated)."""
    full = load_catalog(directory, checks, extra=extra)
    for prof in profiles(directory, checks, extra):
        load_catalog(directory, checks, profile=prof.id, extra=extra)
    return full


def control_schema(checks: dict[str, Check[Any]] | None = None) -> dict[str, Any]:
    """JSON Schema of a control file (a list of controls), with each check's parameters, for editors."""
    checks = registry() if checks is None else checks
    schema = Control.model_json_schema()
    schema["properties"].pop("source", None)
    param_ref = {"$ref": "#/$defs/ParamRef"}
    items = []
    for cid, spec in checks.items():
        params = spec.params.model_json_schema()
        for prop in params.get("properties", {}).values():
            alternatives = [dict(prop), param_ref]
            prop.clear()
            prop["anyOf"] = alternatives
        items.append(
            {
                "type": "object",
                "description": spec.summary,
                "properties": {cid: params},
                "required": [cid],
                "additionalProperties": False,
            }
        )
    schema["properties"]["checks"] = {
        "type": "array",
        "description": "checks that prove the control: '- <check.id>: {<params>}'",
        "items": {"anyOf": items},
    }
    defs = schema.pop("$defs", {})
    defs["ParamRef"] = ParamRef.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hds_compliance control file",
        "type": "array",
        "items": schema,
        "$defs": defs,
    }


def schema_json(checks: dict[str, Check[Any]] | None = None) -> str:
    """The control-file schema as stable, pretty JSON."""
    return json.dumps(control_schema(checks), indent=2, sort_keys=True) + "\n"
