"""Reading a lab scan's result: the verdict of one check on one host, as the lab tests assert it."""

from __future__ import annotations

from typing import Any

from hds_compliance.model import ScanResult, Status


def _plain(value: Any) -> Any:
    """Lists compared as tuples: parameters come from YAML as lists, tests name them as tuples."""
    return tuple(value) if isinstance(value, list) else value


def verdict_of(
    result: ScanResult, host: str, check: str, *, control: str | None = None, **params: Any
) -> tuple[Status, str]:
    """Status and message of THE verdict of ``check`` on ``host`` (in ``control``, with these parameters
    among its own); more than one or none is a test failure naming what matched."""
    found = [
        v
        for v in result.verdicts
        if v.host == host
        and v.check == check
        and (control is None or v.control == control)
        and all(_plain(v.params.get(k)) == _plain(value) for k, value in params.items())
    ]
    assert len(found) == 1, (host, check, control, params, [(v.control, v.params) for v in found])
    return found[0].status, found[0].message
