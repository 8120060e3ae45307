"""The catalogue's data: controls, their references, checks and attestations; named parameters; profiles.

Everything read from ``controls/`` is one of these pydantic models, so a malformed file is refused with its
file, line and field (see :mod:`hds_compliance.catalog.load`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from hds_compliance.catalog.frameworks import ANSSI_LEVELS, check_ids
from hds_compliance.model import Severity

ALL_ACTIVITIES = (1, 2, 3, 4, 5, 6)


class References(BaseModel):
    """Identifiers of the requirement in each framework, e.g. ``hds: ["EXI 28"]``; each must exist."""

    model_config = ConfigDict(extra="forbid")

    hds: list[str] = Field(default_factory=list, description="HDS v2 (2024) requirements, 'EXI 01'..'EXI 31'")
    iso27001_2022: list[str] = Field(default_factory=list, description="ISO/IEC 27001:2022 Annex A, 'A.8.15'")
    anssi_bp028: list[str] = Field(default_factory=list, description="ANSSI-BP-028 v2.0, 'R1'..'R80'")
    anssi_pa022: list[str] = Field(
        default_factory=list, description="ANSSI-PA-022 v3.0, 'R1'..'R71', '+'/'-' variants"
    )
    anssi_ssh: list[str] = Field(default_factory=list, description="ANSSI OpenSSH note v1.3, 'R1'..'R31'")
    anssi_tls: list[str] = Field(default_factory=list, description="ANSSI TLS guide v1.2, 'R4'")
    anssi_logging: list[str] = Field(default_factory=list, description="ANSSI logging guide, 'R17'")
    pgssi_s: list[str] = Field(default_factory=list, description="PGSSI-S canevas de PSSI rule, '7.2.2.3'")
    cnil: list[str] = Field(default_factory=list, description="CNIL deliberation, '2021-122'")

    @field_validator("*")
    @classmethod
    def _known(cls, values: list[str], info: ValidationInfo) -> list[str]:
        assert info.field_name is not None
        return check_ids(info.field_name, values)

    def items(self) -> list[tuple[str, list[str]]]:
        """(framework, identifiers) for every framework with at least one identifier."""
        return [(f, getattr(self, f)) for f in type(self).model_fields if getattr(self, f)]


class ParamRef(BaseModel):
    """A check parameter taken from a named catalogue parameter: ``{param: password_min_length}``."""

    model_config = ConfigDict(extra="forbid")

    param: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class CheckRef(BaseModel):
    """A check a control uses, with its parameters. YAML form: ``- sshd.option: {name: x, expect: y}``.

    A parameter value may be ``{param: <name>}``: the value of that catalogue parameter (profile, parameters
    file or ``--set``), recorded in ``bindings``. ``params`` holds the resolved values once loaded.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    params: dict[str, Any] = Field(default_factory=dict)
    bindings: dict[str, str] = Field(
        default_factory=dict, description="check parameter -> catalogue parameter"
    )

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
    """What a human must provide for a control no check can prove (or prove entirely)."""

    model_config = ConfigDict(extra="forbid")

    evidence: Literal["document", "record", "contract", "screenshot"] = "document"
    document: str = Field(default="", description="which document proves the control, in plain words")
    validity_days: int = Field(default=365, ge=1, le=1095)

    def describe(self) -> str:
        """What is needed, for messages: 'needs an attestation: <document> (record, valid 365 days)'."""
        what = f": {self.document}" if self.document else ""
        return f"needs an attestation{what} ({self.evidence}, valid {self.validity_days} days)"


Automation = Literal["automated", "partial", "attestation", "manual"]


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
    def automation(self) -> Automation:
        """How the control is answered, as ComplianceAsCode says it of its controls.

        ``automated``: checks decide it; ``partial``: checks decide part of it, a document the rest;
        ``attestation``: only a document can; ``manual``: nothing in the catalogue answers it yet.
        """
        if self.checks:
            return "partial" if self.attestation else "automated"
        return "attestation" if self.attestation else "manual"


class Parameter(BaseModel):
    """A named figure of the catalogue (password length, idle timeout...), with where it comes from."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["integer", "number", "string", "boolean", "list"]
    default: Any
    description: str = Field(min_length=3)
    source: str = Field(min_length=3, description="the text the default comes from")
    alternatives: list[dict[str, Any]] = Field(
        default_factory=list, description="other figures with their source, for the team to choose"
    )

    @model_validator(mode="after")
    def _default_has_type(self) -> Parameter:
        self.default = coerce(self.type, self.default)
        return self


def coerce(kind: str, value: Any) -> Any:
    """``value`` as a parameter of type ``kind``; ValueError if it is not one (strings are parsed)."""
    if kind == "string":
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r} (quote it in YAML)")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ValueError(f"expected an integer, got {value!r}")
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            return float(value) if isinstance(value, str) else _bad(value)
        except ValueError as exc:
            raise ValueError(f"expected a number, got {value!r}") from exc
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    raise ValueError(f"expected a list, got {value!r}")


def _bad(value: Any) -> float:
    raise ValueError(repr(value))


class ProfileSelect(BaseModel):
    """Which controls a profile keeps: the union of what each selector names."""

    model_config = ConfigDict(extra="forbid")

    all: bool = False
    controls: list[str] = Field(default_factory=list, description="control ids")
    min_severity: Severity | None = Field(default=None, description="controls at or above this severity")
    anssi_level: Literal["minimal", "intermediary", "enhanced", "high"] | None = Field(
        default=None,
        description="controls referencing a BP-028 recommendation of this level or below (ANSSI levels nest)",
    )

    @field_validator("anssi_level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        assert value is None or value in ANSSI_LEVELS
        return value


class Profile(BaseModel):
    """A selection of controls and parameter values, like ComplianceAsCode's levels."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str = Field(min_length=3)
    description: str = ""
    extends: str | None = Field(
        default=None, description="a profile whose selection and values this one starts from"
    )
    select: ProfileSelect = Field(default_factory=ProfileSelect)
    exclude_controls: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(
        default_factory=list, description="check tags left out (e.g. fs-walk): those checks are not_reviewed"
    )
    parameters: dict[str, Any] = Field(default_factory=dict, description="parameter values for this profile")
    source: str = Field(default="", exclude=True)


class ParameterValue(BaseModel):
    """The value a parameter has in this run, and where that value was set."""

    model_config = ConfigDict(extra="forbid")

    value: Any
    set_by: str = Field(description="'default', 'profile <id>', 'file <path>' or '--set'")
    source: str = Field(description="the text the catalogue default comes from")


class Catalog(BaseModel):
    """The loaded catalogue as a run uses it: the profile's controls, with parameters resolved."""

    controls: list[Control]
    digest: str = Field(description="sha256 over the catalogue files, the profile and the parameter values")
    profile: str | None = Field(default=None, description="id of the profile applied, None for every control")
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    exclude_tags: list[str] = Field(default_factory=list, description="check tags the profile leaves out")

    def export(self) -> dict[str, Any]:
        """Machine-readable form printed by ``hds-compliance catalog --format json``."""
        return {
            "schema_version": 2,
            "digest": self.digest,
            "profile": self.profile,
            "exclude_tags": self.exclude_tags,
            "parameters": {name: p.model_dump() for name, p in self.parameters.items()},
            "controls": [
                {
                    "id": c.id,
                    "title": c.title,
                    "description": c.description,
                    "severity": c.severity.value,
                    "activities": c.activities,
                    "roles": c.roles,
                    "automation": c.automation,
                    "references": dict(c.references.items()),
                    "checks": [
                        {
                            "id": ref.id,
                            "params": ref.params,
                            **({"bindings": ref.bindings} if ref.bindings else {}),
                        }
                        for ref in c.checks
                    ],
                    "attestation": c.attestation.model_dump() if c.attestation else None,
                    "remediation": c.remediation,
                    "source": c.source,
                }
                for c in self.controls
            ],
        }
