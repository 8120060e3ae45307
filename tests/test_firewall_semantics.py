"""The host firewall judged as the kernel filters: each ruleset is loaded by the real nft, iptables or ufw
into a network namespace the test creates, dumped by the probe's own snippet, and judged. Each case names the
state a text match (one input chain, its policy, its last rule) gets wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from firewall_lab import SCENARIOS, can_run, scenario

from hds_compliance.check import Context, HostInfo, registry
from hds_compliance.model import Capture, Status

pytestmark = pytest.mark.skipif(not can_run(), reason="needs root, iproute2, nftables, iptables, ufw")


def _verdict(captures: dict[str, Capture], check_id: str, **params: Any) -> tuple[Status, str]:
    spec = registry()[check_id]
    ctx = Context(host=HostInfo(name="netns", connector="local"), captures=captures)
    outcome = spec.func(spec.validate(params), ctx)
    return outcome.status, outcome.message


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Capture]]:
    """Every scenario, loaded once and dumped by the probe."""
    return {name: scenario(load, tmp_path_factory.mktemp(name)) for name, load in SCENARIOS.items()}


def test_a_disabled_ufw_filters_nothing(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match: INPUT holds 6 rules (jumps into ufw chains) -> "rules loaded". Kernel: the chains are
    empty, the policy accepts: nothing is filtered."""
    status, message = _verdict(loaded["ufw_disabled"], "firewall.host_firewall_active")
    assert status is Status.FAIL and "nft ip filter INPUT (policy accept, 6 rules)" in message
    status, message = _verdict(loaded["ufw_disabled"], "firewall.default_deny_inbound")
    assert status is Status.FAIL and "policy accept of nft ip filter INPUT" in message


def test_an_enabled_ufw_denies_and_restricts_ssh(loaded: dict[str, dict[str, Capture]]) -> None:
    """ufw's rules (written by iptables-nft, opaque in nft's JSON) are read from iptables-nft-save, whole."""
    assert _verdict(loaded["ufw_enabled"], "firewall.default_deny_inbound")[0] is Status.PASS
    status, message = _verdict(
        loaded["ufw_enabled"], "firewall.ssh_sources_restricted", allowed=["10.20.0.0/24"]
    )
    assert status is Status.PASS, message
    status, message = _verdict(
        loaded["ufw_enabled"], "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32"]
    )
    assert status is Status.FAIL and "accepted from 10.20.0.0/24 (IPv4)" in message
    assert "ufw-user-input" in message  # the rule that lets it in


def test_a_drop_reached_through_a_jump_denies(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match: policy accept, last rule a jump -> "accepts by default". Kernel: the jumped chain drops."""
    assert _verdict(loaded["nft_jump_then_drop"], "firewall.default_deny_inbound")[0] is Status.PASS
    status, message = _verdict(loaded["iptables_legacy_user_chain"], "firewall.host_firewall_active")
    assert status is Status.PASS and "iptables-legacy filter INPUT (1 drop/reject rule(s))" in message


def test_a_drop_after_a_goto_is_never_reached(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match: the chain ends with 'drop' -> deny. Kernel: 'goto zone' returns past it to the policy."""
    status, message = _verdict(loaded["nft_goto_then_drop"], "firewall.default_deny_inbound")
    assert status is Status.FAIL and "policy accept of nft inet filter input" in message


def test_policy_drop_voided_by_a_jump_to_accept(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match: policy drop -> deny. Kernel: the first rule jumps to a chain that accepts everything."""
    status, message = _verdict(loaded["nft_jump_to_accept_all"], "firewall.default_deny_inbound")
    assert status is Status.FAIL and "'accept' in nft inet filter allow" in message


def test_an_accept_ends_one_base_chain_only(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match of the first input chain: accept everything. Kernel: a second base chain still drops."""
    captures = loaded["nft_two_base_chains"]
    assert _verdict(captures, "firewall.default_deny_inbound")[0] is Status.PASS
    status, message = _verdict(captures, "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32"])
    assert status is Status.PASS, message


def test_legacy_iptables_filters_beside_nftables(loaded: dict[str, dict[str, Capture]]) -> None:
    """An empty nft input chain (policy accept) and a legacy INPUT DROP: the kernel applies both."""
    captures = loaded["nft_open_but_legacy_drops"]
    assert "# hds iptables-legacy" in captures["firewall"].stdout
    assert _verdict(captures, "firewall.default_deny_inbound")[0] is Status.PASS


def test_ssh_through_a_verdict_map_and_a_named_set(loaded: dict[str, dict[str, Capture]]) -> None:
    """'tcp dport vmap { 22 : jump ssh_in }' and 'ip saddr @bastions': SSH only from the two bastions."""
    captures = loaded["nft_vmap_to_bastion_chain"]
    status, message = _verdict(
        captures, "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32", "10.20.0.6/32"]
    )
    assert status is Status.PASS, message
    status, message = _verdict(captures, "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32"])
    assert status is Status.FAIL and "10.20.0.6/32" in message


def test_an_ipv4_only_restriction_leaves_ipv6_open(loaded: dict[str, dict[str, Capture]]) -> None:
    """Text match: 'ip saddr != 10.20.0.0/24 tcp dport 22 drop' -> restricted. Kernel: it never sees IPv6."""
    status, message = _verdict(
        loaded["nft_ipv4_only_restriction"], "firewall.ssh_sources_restricted", allowed=["10.20.0.0/24"]
    )
    assert status is Status.FAIL and "accepted from ::/0 (IPv6)" in message and "(IPv4)" not in message


def test_firewalld_zones_through_jumps_and_gotos(loaded: dict[str, dict[str, Capture]]) -> None:
    """firewalld's layout: filter_INPUT jumps to the zones, reached by goto; the reject comes last."""
    public, bastion = loaded["firewalld_public"], loaded["firewalld_bastion"]
    assert _verdict(public, "firewall.default_deny_inbound")[0] is Status.PASS
    status, message = _verdict(public, "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32"])
    assert (
        status is Status.FAIL
        and "'tcp dport 22 accept' in nft inet firewalld filter_IN_public_allow" in message
    )
    status, message = _verdict(bastion, "firewall.ssh_sources_restricted", allowed=["10.20.0.5/32"])
    assert status is Status.PASS, message


def test_no_ruleset_filters_nothing(loaded: dict[str, dict[str, Capture]], tmp_path: Path) -> None:
    """nft installed, nothing loaded; and Debian's shipped /etc/nftables.conf (chains without rules)."""
    for name in ("nft_empty", "nft_debian_default"):
        assert _verdict(loaded[name], "firewall.host_firewall_active")[0] is Status.FAIL, name
        assert _verdict(loaded[name], "firewall.default_deny_inbound")[0] is Status.FAIL, name
