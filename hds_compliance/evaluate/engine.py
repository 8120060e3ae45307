"""Plan and evaluate: which controls apply to a host, which facts that needs, and the verdicts.

Pure functions of the catalogue, the inventory data and the captures: no host access. A certifier
re-running :func:`evaluate` on the captures of a scan gets the same verdicts. Fleet checks see every
scanned host at once; their verdicts take the place of the host's, in inventory then catalogue order.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hds_compliance.catalog import Catalog, CheckRef, Control
from hds_compliance.check import (
    TRACE_CLOCK,
    TRACE_HOST,
    TRACE_OPAQUE,
    Ask,
    Check,
    Context,
    FactUnavailable,
    Fleet,
    HostInfo,
    Outcome,
    fingerprint,
)
from hds_compliance.facts import Fact, fact_from_key, origin_of
from hds_compliance.model import HostRecord, Recent, Scope, Status, Verdict


def applies(control: Control, host: HostInfo) -> str | None:
    """``None`` if the control applies to the host, else the reason it does not."""
    if host.hds_activities is not None and not set(control.activities) & set(host.hds_activities):
        return (
            f"control covers HDS activities {control.activities}, "
            f"host serves {sorted(host.hds_activities) or 'none'}"
        )
    if control.roles and not set(control.roles) & set(host.roles):
        return f"control applies to roles {control.roles}, host has {sorted(host.roles) or 'none'}"
    return None


def left_out(catalog: Catalog, spec: Check[Any]) -> str | None:
    """Why the profile leaves a check out (one of its tags is excluded), else ``None``."""
    tags = sorted(set(spec.tags) & set(catalog.exclude_tags))
    if not tags:
        return None
    return f"left out by profile {catalog.profile} (check tagged {', '.join(tags)})"


def plan_facts(catalog: Catalog, checks: dict[str, Check[Any]], host: HostInfo) -> list[Fact[Any]]:
    """Facts needed on a host by the checks of its applicable controls (the probe de-duplicates them).

    A fleet check may need facts of a host its control does not apply to (the bastions' addresses when
    judging data hosts), so fleet checks are planned on every host.
    """
    facts: list[Fact[Any]] = []
    for control in catalog.controls:
        applicable = applies(control, host) is None
        for ref in control.checks:
            spec = checks[ref.id]
            if left_out(catalog, spec) is None and (applicable or spec.fleet is not None):
                if spec.fleet_facts is None:  # the same facts on every host
                    facts.extend(_static_facts(spec, ref))
                else:
                    facts.extend(spec.facts_for(_validated(spec, ref), host))
    return facts


# By id() of the reference, which the entry keeps alive (so the id cannot be reused by another object).
_FACTS: dict[int, tuple[CheckRef, Check[Any], tuple[Fact[Any], ...]]] = {}


def _static_facts(spec: Check[Any], ref: CheckRef) -> tuple[Fact[Any], ...]:
    """The facts a check whose facts do not depend on the host declares for a reference, listed once."""
    entry = _FACTS.get(id(ref))
    if entry is None or entry[0] is not ref or entry[1] is not spec:
        entry = _FACTS[id(ref)] = (ref, spec, tuple(spec.facts(_validated(spec, ref))))
    return entry[2]


def host_info(record: HostRecord) -> HostInfo:
    """The inventory view of a host record."""
    return HostInfo.of(record.name, record.connector, record)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# Parsed values by (fact, capture fingerprint), for every host: hosts built alike parse a capture once.
_SHARED_SIZE = 1024


@dataclass
class _Host:
    """A host as the evaluator holds it: its view, captures, parsed facts, and why it is unusable if so."""

    info: HostInfo
    captures: dict[str, Any]
    error: str | None
    now: datetime | None
    parsed: dict[str, Any]

    shared: dict[tuple[str, Any], Any] = field(default_factory=dict)  # parsed values of the whole run

    def context(self, declared: frozenset[str] | None) -> Context:
        ctx = Context(self.info, self.captures, declared=declared, now=self.now, parsed=self.parsed)
        ctx.shared = self.shared
        return ctx

    def answer(self, ask: Ask) -> Any:
        """What a check asking ``ask`` observes on this host (see :data:`hds_compliance.check.Ask`)."""
        if ask == TRACE_HOST:
            return self.info
        if ask == TRACE_CLOCK:
            return self.now
        if ask[0] == "value":  # a fact traced by value (see Fact.traced_by_value)
            return self.context(None).observe(fact_from_key(ask[1]), bool(ask[2]))
        return fingerprint(self.captures.get(ask[1]))


class _Node:
    """A point of a check's run: the next thing it asks (``ask``) and where each answer leads, or its
    outcome (``done``) once it asks nothing more."""

    __slots__ = ("ask", "done", "next")

    def __init__(self) -> None:
        self.ask: Ask | None = None
        self.done: tuple[Status, str, list[str]] | None = None
        self.next: dict[Any, _Node] = {}


class _Memo:
    """Outcomes a check (with given parameters) reached, by what it observed on the way.

    A check is a pure function of its parameters and of what it observes through its Context: the facts it
    gets (their captures, and those their parser looked up), the host's inventory view, the probe's time.
    Given the same answers in the same order, it asks the same next thing, and ends with the same outcome,
    message and facts read. So a host whose answers follow a path already taken gets that path's outcome
    without running the check: hosts built alike are judged once. A run that read captures or parsed values
    directly (``TRACE_OPAQUE``) is never remembered; a check that asked two different things after the same
    answers (not a pure function) is no longer remembered at all.
    """

    NODES = 512  # past this many answers remembered, start again: hosts that differ cost no memory

    def __init__(self) -> None:
        self.root = _Node()
        self.usable = True
        self.nodes = 0

    def recall(self, host: _Host) -> tuple[Status, str, list[str]] | None:
        node: _Node | None = self.root
        while node is not None and self.usable:
            if node.done is not None:
                return node.done
            if node.ask is None:
                return None
            node = node.next.get(host.answer(node.ask))
        return None

    def learn(self, trace: list[tuple[Ask, Any]], done: tuple[Status, str, list[str]]) -> None:
        if any(ask == TRACE_OPAQUE for ask, _ in trace):
            return
        if self.nodes > self.NODES:
            self.root, self.nodes = _Node(), 0
        node = self.root
        for ask, answer in trace:
            if node.done is not None or (node.ask is not None and node.ask != ask):
                self.usable = False  # the same answers led elsewhere: the check is not pure
                return
            node.ask = ask
            if answer not in node.next:
                node.next[answer] = _Node()
                self.nodes += 1
            node = node.next[answer]
        if node.ask is not None or (node.done is not None and node.done != done):
            self.usable = False
            return
        node.done = done


@dataclass
class _Ref:
    """A check reference of a control, prepared once for every host: its validated parameters, whether
    the profile leaves it out, the facts it declares when they do not depend on the host."""

    control: Control
    index: int
    ref: CheckRef
    spec: Check[Any]
    params: Any
    excluded: str | None
    declared: frozenset[str] | None
    memo: _Memo | None


def _prepare(catalog: Catalog, checks: dict[str, Check[Any]]) -> dict[str, list[_Ref]]:
    """Every control's check references, prepared; references to the same check with the same parameters
    share one memo (per-host checks whose facts do not depend on the host)."""
    memos: dict[tuple[str, str], _Memo] = {}
    prepared: dict[str, list[_Ref]] = {}
    for control in catalog.controls:
        refs = []
        for index, ref in enumerate(control.checks):
            spec = checks[ref.id]
            excluded = left_out(catalog, spec)
            if excluded is not None:  # never run: its parameters need not even be valid for this profile
                refs.append(_Ref(control, index, ref, spec, None, excluded, None, None))
                continue
            params = _validated(spec, ref)
            static = spec.fleet is None and spec.fleet_facts is None
            declared = frozenset(f.key for f in _static_facts(spec, ref)) if static else None
            memo = memos.setdefault((ref.id, _params_key(ref)), _Memo()) if static else None
            refs.append(_Ref(control, index, ref, spec, params, None, declared, memo))
        prepared[control.id] = refs
    return prepared


def _host_error(record: HostRecord) -> str | None:
    """Why nothing can be said of a host at all: unreachable, or a probe that returned nothing usable.

    Captures the scanning machine made (a TLS endpoint it could not reach) do not count: they say
    nothing of the probe.
    """
    if not record.probe.connected:
        return f"host unreachable: {record.probe.error}"
    probed = [c for c in record.captures if origin_of(c.fact) == "host"]
    if probed and all(c.problem is not None for c in probed):
        return f"probe failed: {record.probe.error}"
    return None


def evaluate(
    catalog: Catalog,
    checks: dict[str, Check[Any]],
    hosts: list[HostRecord],
    scope: Scope | None = None,
    collected_at: str | None = None,
) -> list[Verdict]:
    """Verdicts for every host × control × check, in inventory then catalogue order. Nothing is dropped.

    ``scope`` says which inventory hosts the scan left out (fleet checks that need them are
    ``not_reviewed``); ``collected_at`` is the run's start, the clock of hosts whose probe time is unknown.
    """
    with few_collections():
        evaluator = Evaluator(catalog, checks, scope, collected_at)
        for record in hosts:
            evaluator.add(record)
        return evaluator.finish()


@contextlib.contextmanager
def few_collections() -> Iterator[Callable[[], None]]:
    """Evaluation allocates a few hundred objects per host and frees almost none: the cyclic collector,
    at its default pace, would walk them again and again (about a fifth of the evaluation's CPU). It runs
    rarely meanwhile, over the objects made since the evaluation began, and as before afterwards.

    It gives a function to call once some hosts are judged: what they left is kept out of the collector's
    walks until the end (a scan's verdicts and records of hosts done would otherwise be walked again by each
    collection of the older generation: 0.48 -> 0.10 ms of collector per host, on a 500-host replay). The
    evaluation makes almost no cycles (7 unreachable objects after 500 lab hosts): what is kept out and
    unreachable is collected after the end, as before.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield gc.freeze
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


class Evaluator:
    """Judges hosts one by one as their records come (a scan streams them), then the fleet checks.

    :meth:`add` runs a host's own checks at once and keeps of the host only what the fleet checks will read
    (its view and the captures of the facts they declare): a fleet's captures never have to be in memory
    together. :meth:`finish` runs the fleet checks over every host added and returns the verdicts in the
    order hosts were added, then catalogue order: the same as judging them all at once, since a check is a
    pure function of what it observes.
    """

    def __init__(
        self,
        catalog: Catalog,
        checks: dict[str, Check[Any]],
        scope: Scope | None = None,
        collected_at: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.scope = scope
        self.collected_at = collected_at
        self.prepared = _prepare(catalog, checks)
        self.fleet_refs = [r for refs in self.prepared.values() for r in refs if r.spec.fleet is not None]
        self.needs = {c.id: _needs(c) for c in catalog.controls}  # one text for every host
        self.shared: Recent[tuple[str, Any], Any] = Recent(_SHARED_SIZE)
        self.hosts: dict[str, _Host] = {}
        # per host, its verdicts in catalogue order (a fleet check's have no status until finish)
        self.pending: dict[str, list[_Pending]] = {}

    def add(self, record: HostRecord) -> None:
        """Judge a host's own checks now; keep what the fleet checks need of it."""
        host = _Host(
            host_info(record),
            record.capture_map(),
            _host_error(record),
            _time(record.probe.started_at or self.collected_at),
            {},
            shared=self.shared,
        )
        self.pending[host.info.name] = [
            item
            for control in self.catalog.controls
            for item in _control_verdicts(control, self.prepared[control.id], host, self.needs[control.id])
        ]
        # Judged: the host's parsed facts are needed no more, and of its captures only those a fleet check
        # declares on it (the bastions' sshd settings, the log collectors' addresses...).
        fleet_keys = {
            f.key
            for r in self.fleet_refs
            if r.excluded is None
            for f in r.spec.facts_for(r.params, host.info)
        }
        host.captures = {key: c for key, c in host.captures.items() if key in fleet_keys}
        # their parsed values too, with what their parsers looked up (parsing sshd's settings is not cheap)
        host.parsed = {
            key: value for key, value in host.parsed.items() if key.removeprefix("lookups:") in fleet_keys
        }
        self.hosts[host.info.name] = host

    def finish(self, order: list[str] | None = None) -> list[Verdict]:
        """The fleet checks over every host added, then all verdicts, hosts in ``order`` (their names; by
        default, and for hosts it does not name, the order they were added: none is dropped)."""
        named = [name for name in order or [] if name in self.pending]
        names = list(dict.fromkeys([*named, *self.pending]))
        hosts = {name: self.hosts[name] for name in names}
        fleet_outcomes = {
            (r.control.id, r.index): _run_fleet(r, hosts, self.scope)
            for r in self.fleet_refs
            if r.excluded is None
        }
        verdicts: list[Verdict] = []
        for name in names:
            for control, r, status, message, facts in self.pending.pop(name):
                if status is None:
                    assert r is not None
                    outcomes, read = fleet_outcomes[(control.id, r.index)]
                    outcome = outcomes.get(name)
                    if outcome is None:
                        outcome = Outcome(Status.ERROR, f"fleet check {r.ref.id} gave no verdict for {name}")
                    status, message, facts = outcome.status, outcome.message, read.get(name, [])
                verdicts.append(_verdict(name, control, r, status, message, facts))
        return verdicts


_PARAMS: dict[tuple[type[Any], str], Any] = {}


def _params_key(ref: CheckRef) -> str:
    return repr(sorted(ref.params.items()))


def _validated(spec: Check[Any], ref: CheckRef) -> Any:
    """The check's parameters model for a reference, validated once (they are the same for every host)."""
    key = (spec.params, _params_key(ref))
    if key not in _PARAMS:
        _PARAMS[key] = spec.validate(ref.params)
    return _PARAMS[key]


def _run_fleet(
    r: _Ref, state: dict[str, _Host], scope: Scope | None
) -> tuple[dict[str, Outcome], dict[str, list[str]]]:
    """Outcomes of a fleet check per judged host, and the facts it read, by host (``fleet:key`` for a fact
    read on other hosts of the scan)."""
    judged = [name for name, h in state.items() if applies(r.control, h.info) is None and h.error is None]
    fleet = Fleet(
        hosts={
            name: h.context(frozenset(f.key for f in r.spec.facts_for(r.params, h.info)))
            for name, h in state.items()
        },
        judged=judged,
        broken={name: h.error for name, h in state.items() if h.error is not None},
        outside={name: tuple(roles) for name, roles in (scope.outside if scope else {}).items()},
    )
    assert r.spec.fleet is not None
    try:
        outcomes = r.spec.fleet(r.params, fleet)
    except Exception as exc:  # a crashing fleet check is an error on every host it judges, never a pass
        why = f"fleet check {r.ref.id} crashed: {type(exc).__name__}: {exc}"
        outcomes = {name: Outcome(Status.ERROR, why) for name in judged}
    # How many hosts each fact was read on: for a host, "fleet:KEY" stands for KEY read on other hosts of
    # the scan (naming them all would make every fleet verdict as long as the fleet: quadratic in hosts).
    readers = Counter(key for ctx in fleet.hosts.values() for key in ctx.read)
    named = {key: f"fleet:{key}" for key in readers}  # one text per fact, not per host
    read = {}
    for name in judged:
        own = fleet.hosts[name].read
        others = [named[key] for key, count in readers.items() if count > (key in own)]
        read[name] = sorted(own) + sorted(others)
    return outcomes, read


def _verdict(
    host: str, control: Control, r: _Ref | None, status: Status, message: str, facts: list[str]
) -> Verdict:
    """A verdict from values that are already what its model holds (no validation, no copies): the
    evaluation makes hundreds per host, and a validated model copies its parameters and facts each time.
    Built as pydantic's ``model_construct`` builds one when every field is given (its fields in their
    order), without its walk over the fields' defaults and aliases: at fleet scale that walk was a third of
    the evaluation's own cost, and a dict made by keywords another fifth."""
    verdict = _new(Verdict)
    fields = {
        "host": host,
        "control": control.id,
        "check": r.ref.id if r else None,
        "index": r.index if r else 0,
        "params": r.ref.params if r else {},
        "status": status,
        "severity": control.severity,
        "message": message,
        "facts": facts,
        "waiver": None,
        "attestation": None,
    }
    _set(verdict, "__dict__", fields)
    _set(verdict, "__pydantic_fields_set__", _VERDICT_FIELDS)
    _set(verdict, "__pydantic_extra__", None)
    _set(verdict, "__pydantic_private__", None)
    return verdict


_new = object.__new__
_set = object.__setattr__
_VERDICT_FIELDS = set(Verdict.model_fields)  # one set shared by every verdict (each would hold its own)


# A verdict as the evaluator holds it until the end: its control, check reference (None for a control
# without checks), status, message and facts read, or a status of None for a fleet check's place. A few
# shared references instead of a model each: a fleet's verdicts wait in memory while it is probed.
_Pending = tuple[Control, "_Ref | None", Status | None, str, list[str]]


def _control_verdicts(control: Control, refs: list[_Ref], host: _Host, need: str) -> list[_Pending]:
    """A host's verdicts for a control; ``need`` says what it takes when it has no check."""
    skip = applies(control, host.info)
    if not refs:
        if skip is not None:
            return [(control, None, Status.NOT_APPLICABLE, skip, [])]
        return [(control, None, Status.NOT_REVIEWED, need, [])]
    verdicts: list[_Pending] = []
    for r in refs:
        if skip is not None:
            verdicts.append((control, r, Status.NOT_APPLICABLE, skip, []))
        elif r.excluded is not None:
            verdicts.append((control, r, Status.NOT_REVIEWED, r.excluded, []))
        elif host.error is not None:
            # Inventory-only checks too: a host we could not reach or probe is never reported as passing.
            verdicts.append((control, r, Status.ERROR, host.error, []))
        elif r.spec.fleet is not None:
            verdicts.append((control, r, None, "", []))  # judged over the fleet, once every host is in
        else:
            status, message, facts = _host_outcome(r, host)
            verdicts.append((control, r, status, message, facts))
    return verdicts


def _needs(control: Control) -> str:
    """What a control without automated checks needs."""
    if control.attestation:
        return control.attestation.describe()
    return "no automated check: needs a manual review"


def _host_outcome(r: _Ref, host: _Host) -> tuple[Status, str, list[str]]:
    """A per-host check's status, message and facts read: remembered from a host that answered its
    questions the same way, or from running it."""
    if r.memo is not None:
        done = r.memo.recall(host)
        if done is not None:
            return done
    declared = r.declared
    if declared is None:
        declared = frozenset(f.key for f in r.spec.facts_for(r.params, host.info))
    ctx = host.context(declared)
    if r.memo is not None:
        ctx.trace = []
    try:
        outcome = r.spec.func(r.params, ctx)
        status, message = outcome.status, outcome.message
    except FactUnavailable as exc:
        status, message = Status.ERROR, str(exc)
    except Exception as exc:  # a crashing check must surface as an error, never vanish
        status, message = Status.ERROR, f"check {r.ref.id} crashed: {type(exc).__name__}: {exc}"
    done = (status, message, sorted(set(ctx.read)))
    if r.memo is not None and ctx.trace is not None:
        r.memo.learn(ctx.trace, done)
    return done
