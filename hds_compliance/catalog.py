"""The catalogue: HDS controls read from YAML into pydantic models, checked against the check registry.

Every problem is reported with file, line and field, all at once (a catalogue author fixes them in one
pass). A control without checks is kept: it is answered by an attestation or reported ``not_reviewed``.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hds_compliance.check import Check, registry
from hds_compliance.errors import InputError, Problem
from hds_compliance.model import Severity
from hds_compliance.yamlsrc import LineDict, LineList, line_of, load_yaml

ALL_ACTIVITIES = (1, 2, 3, 4, 5, 6)


class References(BaseModel):
    """Identifiers of the requirement in each framework, e.g. ``hds: ["EXI 28"]``."""

    model_config = ConfigDict(extra="forbid")

    hds: list[str] = Field(default_factory=list, description="HDS v2 (2024) requirements, 'EXI 01'..'EXI 31'")
    iso27001_2022: list[str] = Field(default_factory=list, description="ISO/IEC 27001:2022 Annex A, 'A.8.15'")
    anssi_bp028: list[str] = Field(default_factory=list, description="ANSSI-BP-028 v2.0, 'R1'..'R80'")
    anssi_pa022: list[str] = Field(
        default_factory=list, description="ANSSI-PA-022 v3.0, 'R1'..'R71', '+'/'-'"
    )
    anssi_ssh: list[str] = Field(default_factory=list, description="ANSSI OpenSSH note v1.3, 'R1'..'R31'")
    pgssi_s: list[str] = Field(default_factory=list, description="PGSSI-S canevas de PSSI rule, '7.2.2.3'")
    cnil: list[str] = Field(default_factory=list, description="CNIL deliberation, '2021-122'")

    @field_validator("hds")
    @classmethod
    def _hds(cls, values: list[str]) -> list[str]:
        return _match(values, r"EXI (0[1-9]|[12][0-9]|3[01])(\.[A-H])?", "'EXI 01' to 'EXI 31'")

    @field_validator("iso27001_2022")
    @classmethod
    def _iso(cls, values: list[str]) -> list[str]:
        return _match(
            values, r"A\.[5-8]\.[0-9]{1,2}|[4-9]|10|[4-9]\.[0-9]+(\.[0-9]+)?", "'A.5.1'..'A.8.34' or a clause"
        )

    @field_validator("anssi_bp028", "anssi_ssh")
    @classmethod
    def _anssi(cls, values: list[str]) -> list[str]:
        return _match(values, r"R[1-9][0-9]?", "'R1'..'R99'")

    @field_validator("anssi_pa022")
    @classmethod
    def _pa022(cls, values: list[str]) -> list[str]:
        return _match(values, r"R[1-9][0-9]?(\+|-{1,2})?", "'R1'..'R71', optionally with + or -")

    @field_validator("pgssi_s")
    @classmethod
    def _pgssi(cls, values: list[str]) -> list[str]:
        return _match(values, r"[0-9]+(\.[0-9]+){1,4}", "a rule number such as '7.2.2.3'")

    @field_validator("cnil")
    @classmethod
    def _cnil(cls, values: list[str]) -> list[str]:
        return _match(values, r"20[0-9]{2}-[0-9]{3}", "a deliberation number such as '2021-122'")


def _match(values: list[str], pattern: str, expected: str) -> list[str]:
    import re

    for value in values:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not a valid identifier (expected {expected})")
    return values


class CheckRef(BaseModel):
    """A check a control uses, with its parameters. YAML form: ``- sshd.option: {name: x, expect: y}``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return {"id": raw, "params": {}}
        if isinstance(raw, dict) and "id" in raw:  # the long form, as exported: {id: ..., params: ...}
            return raw
        if isinstance(raw, dict) and len(raw) == 1 and "id" not in raw:
            ((check_id, params),) = raw.items()
            return {"id": check_id, "params": {} if params is None else params}
        raise ValueError("a check is written '- <check.id>: {<params>}' (a single-key mapping)")


class Attestation(BaseModel):
    """What a human must provide for a control no check can prove."""

    model_config = ConfigDict(extra="forbid")

    evidence: Literal["document", "record", "contract", "screenshot"] = "document"
    validity_days: int = Field(default=365, ge=1, le=1095)


class Control(BaseModel):
    """A requirement of the catalogue."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z]{2,5}-[0-9]{2,3}$", description="e.g. ACC-01")
    title: str = Field(min_length=3)
    description: str = ""
    severity: Severity
    activities: list[int] = Field(
        default_factory=lambda: list(ALL_ACTIVITIES), description="HDS activities (1-6) it applies to"
    )
    roles: list[str] = Field(
        default_factory=list, description="if set, applies only to hosts with one of these roles"
    )
    references: References = Field(default_factory=References)
    checks: list[CheckRef] = Field(default_factory=list)
    attestation: Attestation | None = None
    remediation: str = ""
    source: str = Field(default="", exclude=True, description="file:line it was read from")

    @field_validator("activities")
    @classmethod
    def _activities(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("at least one HDS activity (1-6)")
        bad = [v for v in values if v not in ALL_ACTIVITIES]
        if bad:
            raise ValueError(f"HDS activities are 1 to 6, got {bad}")
        return sorted(set(values))

    @property
    def automation(self) -> str:
        """``automated`` when checks prove it, ``manual`` when it needs an attestation or review."""
        return "automated" if self.checks else "manual"


class Catalog(BaseModel):
    """The loaded catalogue, in file then document order."""

    controls: list[Control]
    digest: str = Field(description="sha256 over the catalogue files, to tie results to a catalogue")

    def export(self) -> dict[str, Any]:
        """Machine-readable form printed by ``hds-compliance catalog --format json``."""
        return {
            "schema_version": 1,
            "digest": self.digest,
            "controls": [
                {
                    "id": c.id,
                    "title": c.title,
                    "description": c.description,
                    "severity": c.severity.value,
                    "activities": c.activities,
                    "roles": c.roles,
                    "automation": c.automation,
                    "references": {k: v for k, v in c.references.model_dump().items() if v},
                    "checks": [{"id": ref.id, "params": ref.params} for ref in c.checks],
                    "attestation": c.attestation.model_dump() if c.attestation else None,
                    "remediation": c.remediation,
                    "source": c.source,
                }
                for c in self.controls
            ],
        }


def default_controls_dir() -> Path:
    """The catalogue shipped with the package (the repository's ``controls/``)."""
    return Path(str(resources.files("hds_compliance.controls")))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_catalog(directory: Path | None = None, checks: dict[str, Check[Any]] | None = None) -> Catalog:
    """Load and validate every ``*.yaml`` under ``directory``; raise :class:`InputError` with all problems."""
    directory = directory or default_controls_dir()
    checks = registry() if checks is None else checks
    if not directory.is_dir():
        raise InputError([Problem(str(directory), None, "", "not a directory of control files")])
    files = sorted(p for p in directory.rglob("*.yaml") if p.is_file())
    if not files:
        raise InputError([Problem(str(directory), None, "", "no *.yaml control files found")])
    problems: list[Problem] = []
    controls: list[Control] = []
    seen: dict[str, str] = {}
    digest = hashlib.sha256()
    for path in files:
        name = _display(path)
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        try:
            data = load_yaml(path, name)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if data is None:
            continue
        if not isinstance(data, LineList):
            problems.append(
                Problem(name, getattr(data, "line", 1), "", "a control file is a YAML list of controls")
            )
            continue
        for index, raw in enumerate(data):
            control = _load_control(raw, index, data, name, checks, problems)
            if control is None:
                continue
            if control.id in seen:
                problems.append(
                    Problem(
                        name,
                        line_of(raw, ["id"]),
                        f"{control.id}.id",
                        f"duplicate control id (first in {seen[control.id]})",
                    )
                )
                continue
            seen[control.id] = control.source
            controls.append(control)
    if problems:
        raise InputError(problems)
    return Catalog(controls=controls, digest=digest.hexdigest())


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
        spec = checks.get(ref.id)
        if spec is None:
            problems.append(
                Problem(
                    name,
                    line_of(raw, ["checks", i]),
                    _field(label, ["checks", i]),
                    f"unknown check id {ref.id!r}",
                )
            )
            ok = False
            continue
        try:
            ref.params = spec.validate(ref.params).model_dump(mode="json")
        except ValidationError as exc:
            for err in exc.errors():
                where: list[int | str] = ["checks", i, ref.id, *err["loc"]]
                problems.append(Problem(name, line_of(raw, where), _field(label, where), err["msg"]))
            ok = False
    return control if ok else None


def _field(label: str, loc: list[int | str] | tuple[int | str, ...]) -> str:
    out = label
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def control_schema(checks: dict[str, Check[Any]] | None = None) -> dict[str, Any]:
    """JSON Schema of a control file (a list of controls), with each check's parameters, for editors."""
    checks = registry() if checks is None else checks
    schema = Control.model_json_schema()
    schema["properties"].pop("source", None)
    schema["properties"]["checks"] = {
        "type": "array",
        "description": "checks that prove the control: '- <check.id>: {<params>}'",
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "description": spec.summary,
                    "properties": {cid: spec.params.model_json_schema()},
                    "required": [cid],
                    "additionalProperties": False,
                }
                for cid, spec in checks.items()
            ]
        },
    }
    defs = schema.pop("$defs", {})
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
