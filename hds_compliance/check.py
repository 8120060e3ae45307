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
which the evaluator turns into an ``error`` verdict: a check cannot pass by accident. Reading a fact the
check did not declare is a programming error, refused the same way.

A *fleet check* (:func:`fleet_check`) reads the facts of several hosts at once (is every data host
reachable over SSH only from the inventory's bastions?) and gives one outcome per host it judges.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from hds_compliance.facts import Fact, FactError
from hds_compliance.model import REDACTION_MARK, BackupRepository, Capture, PerCapture, Status

T = TypeVar("T")
P = TypeVar("P", bound="Params")


class Params(BaseModel):
    """Base of check parameter models: unknown keys are errors, values are never coerced silently."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoParams(Params):
    """For checks that take no parameter."""


class FactUnavailable(Exception):
    """A fact the check needs could not be established on this host."""


class UndeclaredFact(Exception):
    """A check read a fact it did not declare: the probe would not have collected it on a real host."""


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
    """The check has nothing to judge on this host (e.g. the service is not installed), and says why."""
    return Outcome(Status.NOT_APPLICABLE, message)


def errored(message: str) -> Outcome:
    """A fleet check could not judge this host: a fact it needs there could not be read."""
    return Outcome(Status.ERROR, message)


def not_reviewed(message: str) -> Outcome:
    """The check could not judge with what this scan holds (e.g. hosts it needs are outside the scan)."""
    return Outcome(Status.NOT_REVIEWED, message)


@dataclass(frozen=True)
class HostInfo:
    """What the inventory says about a host (checks may read it; it is part of the evidence)."""

    name: str
    connector: str
    hds_activities: tuple[int, ...] | None = None
    roles: tuple[str, ...] = ()
    location_country: str | None = None
    ssh_hostname: str | None = None
    tls_endpoints: tuple[str, ...] = ()
    backup_repositories: tuple[BackupRepository, ...] = ()

    @classmethod
    def of(cls, name: str, connector: str, data: Any) -> HostInfo:
        """From host data (inventory) or a host record: any object with the same attribute names."""
        activities = data.hds_activities
        return cls(
            name=name,
            connector=connector,
            hds_activities=tuple(activities) if activities is not None else None,
            roles=tuple(data.roles),
            location_country=data.location_country,
            ssh_hostname=data.ssh_hostname,
            tls_endpoints=tuple(data.tls_endpoints),
            backup_repositories=tuple(data.backup_repositories),
        )


def contains_redaction(text: str | bytes) -> bool:
    """Whether a redaction marker sits in ``text`` (a check must not interpret redacted text)."""
    mark = REDACTION_MARK
    return mark in text if isinstance(text, str) else mark.encode() in text


# What a check observes through its Context, in order, when the evaluator records it (Context.trace): pairs
# (what it asked, what it got). A check is a pure function of its parameters and of these observations, so
# another host answering the same gets the same outcome (see hds_compliance.evaluate.engine._Memo).
Ask = tuple[str, ...] | tuple[str, str, bool]
TRACE_HOST: Ask = ("host",)  # ctx.host: the inventory view
TRACE_CLOCK: Ask = ("clock",)  # ctx.now or ctx.clock(): when the host was probed
TRACE_OPAQUE: Ask = ("opaque",)  # ctx.captures or ctx.parsed read directly: nothing can be said


def fingerprint(capture: Capture | None) -> tuple[Any, ...] | None:
    """Everything of a capture a fact's parser and :meth:`Context.get` can see (equal: same value).

    Its texts (snippet, stdout, stderr) are in it as one 128-bit BLAKE2b digest, not as themselves: the
    evaluator remembers fingerprints across hosts, and holding the texts would keep every host's
    captures in memory (a collision is as likely as guessing a random 128-bit key).
    """
    return None if capture is None else _FINGERPRINTS(capture)


def _fingerprint(capture: Capture) -> tuple[Any, ...]:
    texts = hashlib.blake2b(digest_size=16)
    for text in (capture.command, capture.stdout, capture.stderr):
        data = text.encode("utf-8", "surrogatepass")
        texts.update(len(data).to_bytes(8, "big"))  # lengths first: no two splits of a text hash alike
        texts.update(data)
    return (
        capture.fact,
        capture.exit_code,
        capture.stdout_encoding,
        capture.truncated,
        capture.complete,
        capture.problem,
        tuple(capture.redactions),
        texts.digest(),
    )


_FINGERPRINTS = PerCapture(_fingerprint)  # a capture shared by hosts built alike is digested once


class Context:
    """The facts of one host, as a check sees them.

    ``now`` is when the host was probed (from the run record): every time-relative judgement (backup age,
    certificate expiry) is made against it, so evaluating the same captures next year gives the same verdict.
    ``parsed`` holds the values shared by every check of the host (each fact is parsed once); checks must not
    mutate them.
    """

    def __init__(
        self,
        host: HostInfo,
        captures: Mapping[str, Capture],
        declared: frozenset[str]
        | None = None,  # keys the check declared; None only for tools that read anything
        now: datetime | None = None,
        read: list[str] | None = None,
        parsed: dict[str, Any] | None = None,
    ) -> None:
        self._host = host
        self._captures = captures
        self.declared = declared
        self._now = now
        self.read: list[str] = [] if read is None else read
        self._parsed: dict[str, Any] = {} if parsed is None else parsed
        self.trace: list[tuple[Ask, Any]] | None = None  # set to [] to record what the check observes
        # Set by an evaluator judging several hosts: parsed values by (fact key, capture fingerprint), for
        # every host (a parser is a pure function of its capture), for facts whose parser looks nothing up.
        self.shared: dict[tuple[str, Any], Any] | None = None

    @property
    def host(self) -> HostInfo:
        """What the inventory says about the host."""
        if self.trace is not None:
            self.trace.append((TRACE_HOST, self._host))
        return self._host

    @property
    def now(self) -> datetime | None:
        """When the host was probed, if known (see :meth:`clock`)."""
        if self.trace is not None:
            self.trace.append((TRACE_CLOCK, self._now))
        return self._now

    @property
    def captures(self) -> Mapping[str, Capture]:
        """The host's captures by fact key (checks read facts through :meth:`get`)."""
        if self.trace is not None:
            self.trace.append((TRACE_OPAQUE, None))
        return self._captures

    @property
    def parsed(self) -> dict[str, Any]:
        """Values shared by the checks of the host: parsed facts, derived values."""
        if self.trace is not None:
            self.trace.append((TRACE_OPAQUE, None))
        return self._parsed

    def get(self, fact: Fact[T], *, redacted_ok: bool = False) -> T:
        """Parsed value of a declared fact; raises :class:`FactUnavailable` when it cannot be known.

        A capture from which secrets were redacted cannot be interpreted safely: unless the caller says it
        checks the markers itself (``redacted_ok``, then see :func:`contains_redaction`), its fact is
        unavailable and the verdict is ``error``, never a verdict computed on altered text.
        """
        if self.trace is not None and fact.traced_by_value:
            answer = self.observe(fact, redacted_ok)
            self.trace.append((("value", fact.key, redacted_ok), answer))
            if answer[0] == "unavailable":
                raise FactUnavailable(answer[1])
            return answer[1]  # type: ignore[no-any-return]
        key = fact.key
        if self.declared is not None and key not in self.declared:
            raise UndeclaredFact(f"{key} was read but not declared by the check")
        self.read.append(key)
        capture = self._captures.get(key)
        if self.trace is not None:
            self.trace.append((("get", key, redacted_ok), fingerprint(capture)))
        if key not in self._parsed:
            self._parsed[key] = self._parse(fact, capture)
        elif self.trace is not None:
            self.trace.extend(self._parsed.get(f"lookups:{key}", ()))
        value = self._parsed[key]
        if isinstance(value, FactUnavailable):
            raise FactUnavailable(str(value))
        if capture is not None and capture.redactions and not redacted_ok:
            raise FactUnavailable(
                f"{fact.describe()}: {', '.join(capture.redactions)} redacted from what the probe read; "
                "the check does not judge altered input"
            )
        return value  # type: ignore[no-any-return]

    def observe(self, fact: Fact[Any], redacted_ok: bool = False) -> tuple[str, Any]:
        """All that :meth:`get` lets a check see of a fact: ``("value", value)``, or ``("unavailable",
        why)`` for the :class:`FactUnavailable` it raises. For a fact traced by value, this is the answer a
        trace records (two hosts answering alike are judged alike)."""
        outer, self.trace = self.trace, None
        try:
            return ("value", self.get(fact, redacted_ok=redacted_ok))
        except FactUnavailable as exc:
            return ("unavailable", str(exc))
        finally:
            self.trace = outer

    def derived(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per host, shared by the checks that ask for ``name`` (a policy parsed from
        several facts). Each asking check is recorded as reading the facts the computation read, and must
        have declared them; a computation that raised raises the same for every one."""
        key = f"derived:{name}"
        if key not in self._parsed:
            start = len(self.read)
            outer, self.trace = self.trace, []  # what the computation observes, kept for later askers
            try:
                value: Any = compute()
            except FactUnavailable as exc:
                # kept without its traceback, whose frame holds ``value``: no cycle for the collector to find
                value = exc.with_traceback(None)
            finally:
                observed, self.trace = self.trace, outer
                if outer is not None:
                    outer.extend(observed)
            self._parsed[key] = (value, tuple(self.read[start:]), tuple(observed))
        else:
            _value, reads, observed = self._parsed[key]
            for fact_key in reads:
                if self.declared is not None and fact_key not in self.declared:
                    raise UndeclaredFact(
                        f"{fact_key} was read (through {name}) but not declared by the check"
                    )
                self.read.append(fact_key)
            if self.trace is not None:
                self.trace.extend(observed)
        return cast(T, self._derived(key))

    def _derived(self, key: str) -> Any:
        value = self._parsed[key][0]
        if isinstance(value, FactUnavailable):
            raise FactUnavailable(str(value))
        return value

    def clock(self) -> datetime:
        """When the host was probed; a check that judges ages cannot run without it."""
        now = self.now
        if now is None:
            raise FactUnavailable("the time of collection is not recorded for this host")
        return now

    def _parse(self, fact: Fact[T], capture: Capture | None) -> T | FactUnavailable:
        if capture is None:
            return FactUnavailable(f"{fact.describe()} was not collected")
        if capture.problem is not None or not capture.complete:
            return FactUnavailable(f"{fact.describe()}: {capture.problem or 'incomplete capture'}")
        if self.shared is not None and type(fact).parse_with is Fact.parse_with:
            shared_key = (fact.key, fingerprint(capture))
            if shared_key not in self.shared:
                self.shared[shared_key] = self._parse_alone(fact, capture)
            return cast("T | FactUnavailable", self.shared[shared_key])
        return self._parse_alone(fact, capture)

    def _parse_alone(self, fact: Fact[T], capture: Capture) -> T | FactUnavailable:
        looked: list[tuple[Ask, Any]] = []

        def lookup(key: str) -> Capture | None:
            found = self._captures.get(key)
            looked.append((("lookup", key), fingerprint(found)))
            return found

        try:
            return fact.parse_with(capture, lookup)
        except FactError as exc:
            return FactUnavailable(str(exc))
        finally:
            if looked:  # what the parser read besides the capture: part of what any reader observes
                self._parsed[f"lookups:{fact.key}"] = tuple(looked)
                if self.trace is not None:
                    self.trace.extend(looked)


@dataclass
class Fleet:
    """What a fleet check sees: every scanned host's facts, and the inventory hosts left out of the scan.

    ``judged`` are the hosts the control applies to (in inventory order): the check returns one outcome
    for each. ``broken`` hosts could not be probed (their facts all raise); ``outside`` are inventory hosts
    not in this scan (``--limit``, a shard), by name with their roles.
    """

    hosts: dict[str, Context]
    judged: list[str]
    broken: dict[str, str] = field(default_factory=dict)
    outside: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def with_role(self, role: str) -> list[str]:
        """Scanned hosts having ``role``, in inventory order."""
        return [name for name, ctx in self.hosts.items() if role in ctx.host.roles]

    def outside_with_role(self, role: str) -> list[str]:
        """Inventory hosts having ``role`` that this scan left out."""
        return [name for name, roles in self.outside.items() if role in roles]


@dataclass(frozen=True)
class Check(Generic[P]):
    """A registered check (per host), or a fleet check (``fleet`` set: it judges hosts together)."""

    id: str
    func: Callable[[P, Context], Outcome]
    params: type[P]
    facts: Callable[[P], list[Fact[Any]]]
    summary: str
    tags: tuple[str, ...] = ()
    fleet: Callable[[P, Fleet], dict[str, Outcome]] | None = None
    # Facts that depend on the host's inventory data (a fleet check's, or a check's host_facts).
    fleet_facts: Callable[[P, HostInfo], list[Fact[Any]]] | None = None

    def validate(self, raw: Mapping[str, Any]) -> P:
        """Parameters from YAML, validated (raises pydantic.ValidationError)."""
        return self.params.model_validate(dict(raw))

    def facts_for(self, params: P, host: HostInfo) -> list[Fact[Any]]:
        """Facts this check reads on ``host``."""
        if self.fleet_facts is not None:
            return self.fleet_facts(params, host)
        return self.facts(params)


_REGISTRY: dict[str, Check[Any]] = {}


def _summary(func: Callable[..., Any], check_id: str) -> str:
    return (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else check_id


def _register(spec: Check[Any]) -> None:
    if spec.id in _REGISTRY:
        raise ValueError(f"check {spec.id} registered twice")
    _REGISTRY[spec.id] = spec


def check(
    check_id: str,
    *,
    params: type[P] = NoParams,  # type: ignore[assignment]
    facts: Callable[[P], list[Fact[Any]]] | None = None,
    host_facts: Callable[[P, HostInfo], list[Fact[Any]]] | None = None,
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[[P, Context], Outcome]], Callable[[P, Context], Outcome]]:
    """Register a check function under ``check_id`` (``<area>.<what_it_proves>``).

    ``facts(params)`` says what it reads; ``host_facts(params, host)`` instead, when that depends on the
    host's inventory data (the TLS endpoints it lists). ``tags`` let a profile or a benchmark leave a kind
    of check out (``fs-walk``: it walks file systems).
    """

    def register(func: Callable[[P, Context], Outcome]) -> Callable[[P, Context], Outcome]:
        summary = _summary(func, check_id)
        spec: Check[Any] = Check(
            check_id, func, params, facts or (lambda _p: []), summary, tags, fleet_facts=host_facts
        )
        _register(spec)
        return func

    return register


def _no_host_check(_p: Any, _ctx: Context) -> Outcome:
    raise TypeError("a fleet check is evaluated over the fleet, not one host")


def fleet_check(
    check_id: str,
    *,
    params: type[P] = NoParams,  # type: ignore[assignment]
    facts: Callable[[P, HostInfo], list[Fact[Any]]],
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[[P, Fleet], dict[str, Outcome]]], Callable[[P, Fleet], dict[str, Outcome]]]:
    """Register a fleet check: ``facts(params, host)`` says what it reads on each host (it may read
    nothing on some), and the function returns an outcome for every host of ``fleet.judged``."""

    def register(func: Callable[[P, Fleet], dict[str, Outcome]]) -> Callable[[P, Fleet], dict[str, Outcome]]:
        summary = _summary(func, check_id)
        spec: Check[Any] = Check(
            check_id, _no_host_check, params, lambda _p: [], summary, tags, fleet=func, fleet_facts=facts
        )
        _register(spec)
        return func

    return register


def registry() -> dict[str, Check[Any]]:
    """All checks shipped in ``hds_compliance.checks`` (the top-level ``checks/`` folder), by id."""
    package = importlib.import_module("hds_compliance.checks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"hds_compliance.checks.{module.name}")
    return dict(sorted(_REGISTRY.items()))
