"""The check API's guarantees: undeclared facts refused, shared computations still accounted per check."""

from __future__ import annotations

import pytest

from hds_compliance.check import Context, FactUnavailable, HostInfo, UndeclaredFact
from hds_compliance.facts import FileContent
from hds_compliance.model import Capture

PASSWD = FileContent("/etc/passwd")
GROUP = FileContent("/etc/group")


def _captures() -> dict[str, Capture]:
    return {
        PASSWD.key: Capture(
            fact=PASSWD.key, command="(test)", exit_code=0, stdout="root:x:0:0::/root:/bin/sh\n"
        ),
        GROUP.key: Capture(fact=GROUP.key, command="(test)", exit_code=1, stderr="boom"),
    }


def _context(declared: set[str], parsed: dict[str, object]) -> Context:
    return Context(HostInfo("h", "ssh"), _captures(), declared=frozenset(declared), parsed=parsed)


def test_an_undeclared_fact_is_refused() -> None:
    with pytest.raises(UndeclaredFact):
        _context({GROUP.key}, {}).get(PASSWD)


def test_a_derived_value_is_computed_once_and_its_facts_counted_for_every_check() -> None:
    parsed: dict[str, object] = {}
    calls = []

    def users(ctx: Context) -> list[str]:
        calls.append(1)
        data = ctx.get(PASSWD) or b""
        return [line.split(":")[0] for line in data.decode().splitlines()]

    first, second = _context({PASSWD.key}, parsed), _context({PASSWD.key}, parsed)
    assert first.derived("users", lambda: users(first)) == ["root"]
    assert second.derived("users", lambda: users(second)) == ["root"]
    assert calls == [1] and second.read == [PASSWD.key]  # the second check read passwd too, through it
    with pytest.raises(UndeclaredFact):  # a check that did not declare passwd cannot reach it that way
        _context({GROUP.key}, parsed).derived("users", lambda: [])


def test_a_derived_value_that_could_not_be_known_is_an_error_for_every_check() -> None:
    parsed: dict[str, object] = {}
    for _ in range(2):
        ctx = _context({GROUP.key}, parsed)
        with pytest.raises(FactUnavailable, match="boom"):
            ctx.derived("groups", lambda c=ctx: c.get(GROUP))


def test_a_derived_value_that_could_not_be_known_leaves_no_cycle() -> None:
    """The reason is kept for every asking check without its traceback, whose frame would hold it: the
    host's values go when the host is judged, without waiting for the cyclic collector."""
    import gc
    import weakref

    class Values(dict[str, object]):
        pass

    parsed = Values()
    ctx = _context({GROUP.key}, parsed)
    with pytest.raises(FactUnavailable, match="boom"):
        ctx.derived("groups", lambda c=ctx: c.get(GROUP))
    reason = parsed["derived:groups"][0]  # type: ignore[index]
    assert isinstance(reason, FactUnavailable) and reason.__traceback__ is None
    gone = weakref.ref(parsed)
    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting may free it
    try:
        del ctx, parsed, reason
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()
