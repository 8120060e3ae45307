"""The bastion's session recording, judged through the real probe on bastions laid in a private /etc."""

from __future__ import annotations

import pytest
from authn_ns import EtcTree, needs_root_and
from bastion_scenarios import SSSD_CONF, Scenario, collect, scenarios

from hds_compliance.check import Context, FactUnavailable, HostInfo, registry
from hds_compliance.model import Status

SCENARIOS = scenarios()


def _verdict(scenario: Scenario) -> tuple[Status, str, dict[str, str]]:
    spec = registry()["bastion.sessions_recorded"]
    facts = spec.facts(spec.validate({}))
    with EtcTree(scenario.files) as tree:
        captures = collect(tree, facts, scenario.processes)
    ctx = Context(HostInfo("bastion", "local", roles=("bastion",)), captures, frozenset(f.key for f in facts))
    try:
        outcome = spec.func(spec.validate({}), ctx)
    except FactUnavailable as exc:
        return Status.ERROR, str(exc), {}
    return outcome.status, outcome.message, {k: c.stdout_text() for k, c in captures.items()}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_bastion_sessions_recorded(scenario: Scenario) -> None:
    needs_root_and("unshare", "sudo")
    status, message, _ = _verdict(scenario)
    assert status.value == scenario.expect, message
    assert scenario.message.lower() in message.lower(), message


def test_sssd_settings_leave_the_host_without_the_bind_password() -> None:
    """Only the [session_recording] section of sssd.conf is read out; its bind password stays on the host."""
    needs_root_and("unshare")
    scenario = next(s for s in SCENARIOS if s.files.get("/etc/sssd/sssd.conf") == SSSD_CONF)
    _, _, outputs = _verdict(scenario)
    [sssd] = [text for key, text in outputs.items() if key == "sssd-session-recording"]
    assert "scope = all" in sssd and "NotASecretButCouldBe42" not in "".join(outputs.values())
