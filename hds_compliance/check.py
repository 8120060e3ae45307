"""The check API: small pure functions over facts, registered by id and parametrised from YAML.

A check module in ``checks/`` looks like::

    class OptionParams(Params):
        name: str
        expect: str

    @check("sshd.option", params=OptionParams, facts=lambda p: [SSHD])
    def sshd_option(p: OptionParams, ctx: Context) -> Outcome:
        config = ctx.get(SSHD)
        ...
        return failed(f"{p.name} is {value} ...")

The function never touches a host: it reads the facts it declared through :meth:`Context.get`. A fact
that was not collected, or whose capture is unusable, raises :class:`FactUnavailable` inside ``get``,
which the evaluator turns into an ``error`` verdict: a check cannot pass by accident.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from hds_compliance.facts import Fact, FactError
from hds_compliance.model import Capture, Status

T = TypeVar("T")
P = TypeVar("P", bound="Params")


class Params(BaseModel):
    """Base of check parameter models: unknown keys are errors, values are never coerced silently."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoParams(Params):
    """For checks that take no parameter."""


class FactUnavailable(Exception):
    """A fact the check needs could not be established on this host."""


@dataclass(frozen=True)
class Outcome:
    """What a check concluded, with a message that says what was found."""

    status: Status
    message: str


def passed(message: str) -> Outcome:
    """The control holds on this host."""
    return Outcome(Status.PASS, message)


def failed(message: str) -> Outcome:
    """The control does not hold; the message says what was found and where."""
    return Outcome(Status.FAIL, message)


def not_applicable(message: str) -> Outcome:
    """The check has nothing to judge on this host (e.g. the service is not installed)."""
    return Outcome(Status.NOT_APPLICABLE, message)


@dataclass(frozen=True)
class HostInfo:
    """What the inventory says about a host (checks may read it; it is part of the evidence)."""

    name: str
    connector: str
    hds_activities: tuple[int, ...] | None = None
    roles: tuple[str, ...] = ()
    location_country: str | None = None

    @classmethod
    def of(
        cls,
        name: str,
        connector: str,
        hds_activities: list[int] | None,
        roles: list[str],
        location_country: str | None,
    ) -> HostInfo:
        """From inventory data (lists) to the frozen view checks get."""
        activities = tuple(hds_activities) if hds_activities is not None else None
        return cls(name, connector, activities, tuple(roles), location_country)


@dataclass
class Context:
    """The facts of one host, as a check sees them."""

    host: HostInfo
    captures: Mapping[str, Capture]
    read: list[str] = field(default_factory=list)
    # Parsed values shared by every check of the host (each fact is parsed once); checks must not mutate them.
    parsed: dict[str, Any] = field(default_factory=dict)

    def get(self, fact: Fact[T]) -> T:
        """Parsed value of a declared fact; raises :class:`FactUnavailable` when it cannot be known."""
        self.read.append(fact.key)
        if fact.key not in self.parsed:
            self.parsed[fact.key] = self._parse(fact)
        value = self.parsed[fact.key]
        if isinstance(value, FactUnavailable):
            raise FactUnavailable(str(value))
        return value  # type: ignore[no-any-return]

    def _parse(self, fact: Fact[T]) -> T | FactUnavailable:
        capture = self.captures.get(fact.key)
        if capture is None:
            return FactUnavailable(f"{fact.describe()} was not collected")
        if capture.problem is not None or not capture.complete:
            return FactUnavailable(f"{fact.describe()}: {capture.problem or 'incomplete capture'}")
        try:
            return fact.parse(capture)
        except FactError as exc:
            return FactUnavailable(str(exc))


@dataclass(frozen=True)
class Check(Generic[P]):
    """A registered check."""

    id: str
    func: Callable[[P, Context], Outcome]
    params: type[P]
    facts: Callable[[P], list[Fact[Any]]]
    summary: str

    def validate(self, raw: Mapping[str, Any]) -> P:
        """Parameters from YAML, validated (raises pydantic.ValidationError)."""
        return self.params.model_validate(dict(raw))


_REGISTRY: dict[str, Check[Any]] = {}


def check(
    check_id: str,
    *,
    params: type[P] = NoParams,  # type: ignore[assignment]
    facts: Callable[[P], list[Fact[Any]]] | None = None,
) -> Callable[[Callable[[P, Context], Outcome]], Callable[[P, Context], Outcome]]:
    """Register a check function under ``check_id`` (``<area>.<what_it_proves>``)."""

    def register(func: Callable[[P, Context], Outcome]) -> Callable[[P, Context], Outcome]:
        if check_id in _REGISTRY:
            raise ValueError(f"check {check_id} registered twice")
        summary = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else check_id
        _REGISTRY[check_id] = Check(
            id=check_id, func=func, params=params, facts=facts or (lambda _p: []), summary=summary
        )
        return func

    return register


def registry() -> dict[str, Check[Any]]:
    """All checks shipped in ``hds_compliance.checks`` (the top-level ``checks/`` folder), by id."""
    package = importlib.import_module("hds_compliance.checks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"hds_compliance.checks.{module.name}")
    return dict(sorted(_REGISTRY.items()))
