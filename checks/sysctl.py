"""Kernel parameters, judged on the live values in ``/proc/sys`` (what the kernel enforces now), not on
``/etc/sysctl.d`` (what it would be set to at the next boot, if nothing overrides it).

Values are compared after collapsing whitespace, so ``32768 65535`` matches the kernel's tab-separated
``32768\t65535``. Expected values may be written as YAML numbers or strings.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from hds_compliance.check import Context, FactUnavailable, Outcome, Params, check, failed, passed
from hds_compliance.facts import Sysctl


def _norm(value: str | int) -> str:
    return " ".join(str(value).split())


def _valid_name(name: str) -> str:
    Sysctl(name)  # raises ValueError on anything that is not a dotted sysctl name
    return name


class ValueParams(Params):
    name: str = Field(description="sysctl name, e.g. kernel.kptr_restrict")
    expect: str | int = Field(description="required live value")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value)


@check("sysctl.value", params=ValueParams, facts=lambda p: [Sysctl(p.name)])
def sysctl_value(p: ValueParams, ctx: Context) -> Outcome:
    """A kernel parameter has the expected live value."""
    value = ctx.get(Sysctl(p.name))
    path = "/proc/sys/" + p.name.replace(".", "/")
    if value is None:
        return failed(f"the kernel has no parameter {p.name} (no {path}; expected {_norm(p.expect)})")
    if value != _norm(p.expect):
        return failed(f"{p.name} is {value} (expected {_norm(p.expect)})")
    return passed(f"{p.name} is {value}")


class ValuesParams(Params):
    expect: dict[str, str | int] = Field(min_length=1, description="sysctl name -> required live value")

    @field_validator("expect")
    @classmethod
    def _names(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        for name in value:
            _valid_name(name)
        return value


@check("sysctl.values", params=ValuesParams, facts=lambda p: [Sysctl(name) for name in p.expect])
def sysctl_values(p: ValuesParams, ctx: Context) -> Outcome:
    """Several kernel parameters have their expected live values; every mismatch is reported at once."""
    wrong: list[str] = []
    unknown: list[str] = []
    for name, expected in p.expect.items():
        try:
            value = ctx.get(Sysctl(name))
        except FactUnavailable as exc:
            unknown.append(str(exc))
            continue
        if value is None:
            wrong.append(f"{name} does not exist in this kernel (expected {_norm(expected)})")
        elif value != _norm(expected):
            wrong.append(f"{name} is {value} (expected {_norm(expected)})")
    if wrong:
        tail = f" ({len(unknown)} more could not be read: {'; '.join(unknown)})" if unknown else ""
        return failed(f"{len(wrong)} of {len(p.expect)} kernel parameters differ: {'; '.join(wrong)}{tail}")
    if unknown:
        raise FactUnavailable("; ".join(unknown))
    return passed(f"all {len(p.expect)} kernel parameters have their expected values")
