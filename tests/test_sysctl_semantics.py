"""Kernel parameters judged as the kernel and systemd-sysctl apply them, proved against the real ones.

Per-interface values: in network namespaces made here, the tests set conf/all and conf/<if> values, read
them back through the NetConf fact's own snippet, and watch what the kernel DOES (a spoofed packet
dropped or delivered, an ICMP redirect sent, a redirect obeyed); the check's verdict must follow the
behaviour, where a text match on conf/all gets it wrong.

Persisted values: configuration trees mounted in a private mount namespace are read by the SysctlConf
fact and judged by the real systemd-sysctl: ``--cat-config`` for the order of files, and an actual apply
(``--prefix=/net/ipv4/conf``, inside a network namespace of ours) for the values it writes.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kernel_lab import (
    collect,
    counter,
    evaluate,
    in_ns,
    ip,
    namespaces,
    needs_root,
    staging_dir,
    tree_command,
    write_sysctl,
)

from hds_compliance.check import Outcome
from hds_compliance.checks.sysctl import effective
from hds_compliance.collect.probe import new_nonce, render
from hds_compliance.facts.base import ABSENT
from hds_compliance.facts.sysctl_conf import NetConf, SysctlConf
from hds_compliance.model import Status

SYSTEMD_SYSCTL = "/lib/systemd/systemd-sysctl"
NET4 = NetConf("ipv4")
CONF = SysctlConf()


@pytest.fixture(autouse=True)
def _root() -> None:
    needs_root()


def _veth(a: str, a_if: str, b: str, b_if: str) -> None:
    subprocess.run(
        ["ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b], check=True
    )
    for ns, name in ((a, a_if), (b, b_if)):
        ip(ns, "link", "set", "lo", "up")
        ip(ns, "link", "set", name, "up")


def _persisting(values: dict[str, int]) -> dict[str, str]:
    """A sysctl.d tree that persists ``values`` (conf path -> value), so only the live part is judged.
    Keys are written in slash form: systemd-sysctl keeps the dot of an interface name like b.0 then."""
    text = "".join(f"{path} = {value}\n" for path, value in values.items())
    return {"/etc/sysctl.d/90-test.conf": text}


def _judge(ns: str, params: dict[str, Any], persisted: dict[str, int]) -> Outcome:
    """The interface check on the live values of ``ns`` (read by the fact's own snippet) and a tree."""
    with staging_dir() as staging:
        argv = ["ip", "netns", "exec", ns, *tree_command(_persisting(persisted), "exec sh -s", staging)]
        captures = collect([NET4, CONF], argv)
    outcome = evaluate("sysctl.interface_values", {"family": "ipv4", **params}, captures)
    assert isinstance(outcome, Outcome), outcome
    return outcome


# ------------------------------------------------------------------------------------------ rp_filter

RP_CASES = [(0, 0), (1, 0), (0, 1), (2, 1), (1, 2), (0, 2)]


@pytest.mark.parametrize(("all_value", "if_value"), RP_CASES, ids=[f"all={a},b.0={i}" for a, i in RP_CASES])
def test_rp_filter_in_effect_is_the_maximum_of_all_and_the_interface(all_value: int, if_value: int) -> None:
    """rp_filter by behaviour: a spoofed source whose route back leaves by another interface is dropped
    only in strict mode (1); one with no route back is dropped in strict and loose (2) modes. The kernel
    uses max(all, interface): all=2 with b.0=1 is LOOSE (a text match on b.0=1 says strict), all=1 with
    b.0=0 is strict (a text match on b.0 says off). The check fails exactly where filtering is not strict."""
    with namespaces(2) as (sender, receiver):
        _veth(sender, "a0", receiver, "b.0")  # an interface name with a dot, as VLANs have
        ip(sender, "addr", "add", "10.9.0.1/24", "dev", "a0")
        ip(sender, "addr", "add", "192.0.2.77/32", "dev", "a0")  # routed back via d0 on the receiver
        ip(sender, "addr", "add", "198.51.100.77/32", "dev", "a0")  # no route back at all
        ip(receiver, "addr", "add", "10.9.0.2/24", "dev", "b.0")
        ip(receiver, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        for name in ("d0", "d1"):
            ip(receiver, "link", "set", name, "up")
        ip(receiver, "addr", "add", "10.8.0.2/24", "dev", "d0")
        ip(receiver, "route", "add", "default", "via", "10.8.0.1", "dev", "d0")
        ip(receiver, "route", "add", "unreachable", "198.51.100.0/24")
        mac = ip(receiver, "-o", "link", "show", "b.0").split("link/ether ")[1].split()[0]
        ip(sender, "neigh", "add", "10.9.0.2", "lladdr", mac, "dev", "a0", "nud", "permanent")
        for name in ("all", "default", "lo", "d0", "d1"):  # only b.0 and all decide what is judged
            write_sysctl(receiver, f"net/ipv4/conf/{name}/rp_filter", all_value if name == "all" else 1)
        write_sysctl(receiver, "net/ipv4/conf/b.0/rp_filter", if_value)
        before = counter(receiver, "TcpExt", "IPReversePathFilter")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", receiver, "python3", "-c", _RECEIVE],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        in_ns(sender, f"python3 -c '{_SEND}'")
        delivered = set(listener.communicate(timeout=10)[0].split())
        dropped = counter(receiver, "TcpExt", "IPReversePathFilter") - before
        behaviour = {frozenset({"s1", "s2"}): 0, frozenset(): 1, frozenset({"s1"}): 2}[frozenset(delivered)]
        assert behaviour == effective("max", all_value, if_value, 0)
        assert dropped == {0: 0, 1: 2, 2: 1}[behaviour]
        values = {f"net/ipv4/conf/{n}/rp_filter": 1 for n in ("default", "d0", "d1")}
        values |= {"net/ipv4/conf/all/rp_filter": all_value, "net/ipv4/conf/b.0/rp_filter": if_value}
        outcome = _judge(receiver, {"expect": {"rp_filter": 1}}, values)
    assert (outcome.status is Status.PASS) == (behaviour == 1), outcome.message
    if behaviour != 1:
        assert (
            f"b.0: rp_filter in effect is {behaviour} (max(all={all_value}, b.0={if_value}))"
            in outcome.message
        )


_RECEIVE = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
s.settimeout(5)
print("ready", flush=True)
got = []
while True:
    data = s.recv(100).decode()
    if data == "end":
        break
    got.append(data)
print(" ".join(got))
"""
_SEND = (
    "import socket\n"
    'for src, msg in (("192.0.2.77", "s1"), ("198.51.100.77", "s2"), ("10.9.0.1", "end")):\n'
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 0))\n"
    '    s.sendto(msg.encode(), ("10.9.0.2", 9999))\n'
)


# ------------------------------------------------------------------------------------------ redirects


def _redirect_lab(router: dict[str, int], host: dict[str, int]) -> tuple[int, str, str, str]:
    """A router r0 and a host a0 on one link; the host routes 10.9.1.0/24 via the router, whose own route
    goes back out r0 to 10.9.0.3: the router forwards the packet and may send an ICMP redirect, which the
    host may obey. Returns (redirects the router sent, the host's next hop, router ns, host ns)."""
    with namespaces(2) as (r, a):
        _veth(a, "a0", r, "r0")
        write_sysctl(r, "net/ipv4/ip_forward", 1)
        for path, value in router.items():
            write_sysctl(r, path, value)
        for name in ("all", "a0"):  # secure_redirects would also refuse a gateway that is not a default one
            write_sysctl(a, f"net/ipv4/conf/{name}/secure_redirects", 0)
        for path, value in host.items():
            write_sysctl(a, path, value)
        ip(r, "addr", "add", "10.9.0.254/24", "dev", "r0")
        ip(r, "route", "add", "10.9.1.0/24", "via", "10.9.0.3", "dev", "r0")
        ip(a, "addr", "add", "10.9.0.1/24", "dev", "a0")
        ip(a, "route", "add", "10.9.1.0/24", "via", "10.9.0.254")
        ip(a, "neigh", "add", "10.9.0.3", "lladdr", "02:00:00:00:00:03", "dev", "a0", "nud", "permanent")
        in_ns(a, 'python3 -c \'import socket; socket.socket(2, 2).sendto(b"x", ("10.9.1.5", 9))\'')
        in_ns(a, "sleep 0.2")
        sent = counter(r, "Icmp", "OutRedirects")
        via = ip(a, "route", "get", "10.9.1.5").split()[2]
        judged_router = _judge(r, {"expect": {"send_redirects": 0}}, {})
        judged_host = _judge(a, {"expect": {"accept_redirects": 0}}, {})
    return sent, via, judged_router.message, judged_host.message


SEND_CASES = [(0, 0), (0, 1), (1, 0), (1, 1)]
SEND_IDS = [f"all={a},r0={i}" for a, i in SEND_CASES]


@pytest.mark.parametrize(("all_value", "if_value"), SEND_CASES, ids=SEND_IDS)
def test_send_redirects_in_effect_is_all_or_the_interface(all_value: int, if_value: int) -> None:
    """send_redirects by behaviour: the router sends an ICMP redirect when all OR r0 is 1. all=0 with
    r0=1 still sends (a text match on net.ipv4.conf.all.send_redirects=0 passes that host)."""
    router = {"net/ipv4/conf/all/send_redirects": all_value, "net/ipv4/conf/r0/send_redirects": if_value}
    sent, _, router_message, _ = _redirect_lab(router, {})
    assert sent == effective("or", all_value, if_value, 1)
    live_problem = f"r0: send_redirects in effect is 1 (all={all_value} OR r0={if_value})"
    assert (live_problem in router_message) == bool(sent), router_message


ACCEPT_CASES = [(f, a, i) for f in (0, 1) for a in (0, 1) for i in (0, 1)]
ACCEPT_IDS = [f"fwd={f},all={a},a0={i}" for f, a, i in ACCEPT_CASES]


@pytest.mark.parametrize(
    ("forwarding", "all_value", "if_value"),
    ACCEPT_CASES,
    ids=ACCEPT_IDS,
)
def test_accept_redirects_in_effect_depends_on_forwarding(
    forwarding: int, all_value: int, if_value: int
) -> None:
    """accept_redirects by behaviour: the host obeys the router's redirect (its route to 10.9.1.5 then goes
    via 10.9.0.3) when all OR a0 is 1 on an interface that does not forward, all AND a0 on one that does.
    all=0 with a0=1 obeys on a host (a text match on conf/all passes it); all=1 with a0=0 does not obey on a
    forwarding interface (a text match on conf/all fails it)."""
    host = {
        "net/ipv4/conf/a0/forwarding": forwarding,
        "net/ipv4/conf/all/accept_redirects": all_value,
        "net/ipv4/conf/a0/accept_redirects": if_value,
    }
    sent, via, _, host_message = _redirect_lab({"net/ipv4/conf/all/send_redirects": 1}, host)
    assert sent == 1
    obeyed = via == "10.9.0.3"
    assert obeyed == bool(effective("redirects4", all_value, if_value, forwarding))
    assert (f"a0: accept_redirects in effect is 1 (a0 forward={forwarding}" in host_message) == obeyed, (
        host_message
    )


# ------------------------------------------------------------------------- sysctl.d as systemd reads it

ORDER_TREE = {
    "/usr/lib/sysctl.d/50-default.conf": "net.ipv4.conf.all.rp_filter = 2\n",
    "/etc/sysctl.d/50-default.conf": "net.ipv4.conf.all.rp_filter = 1\n",  # same name: replaces /usr/lib's
    "/usr/lib/sysctl.d/60-masked.conf": "net.ipv4.conf.all.log_martians = 0\n",
    "/etc/sysctl.d/60-masked.conf": "->/dev/null",
    "/usr/lib/sysctl.d/10-vendor.conf": "net.ipv4.conf.all.arp_ignore = 1\n",
    "/usr/local/lib/sysctl.d/10-vendor.conf": "net.ipv4.conf.all.arp_ignore = 2\n",
    "/run/sysctl.d/10-vendor.conf": "net.ipv4.conf.all.arp_ignore = 3\n",
    "/usr/local/lib/sysctl.d/20-local.conf": "net.ipv4.conf.all.arp_announce = 1\n",
    "/run/sysctl.d/70-run.conf": "net.ipv4.conf.all.arp_announce = 2\n",
    "/etc/sysctl.d/80-empty.conf": "",
    "/usr/lib/sysctl.d/80-empty.conf": "net.ipv4.conf.all.proxy_arp = 1\n",
    "/etc/sysctl.d/99-sysctl.conf": "->../sysctl.conf",  # Debian and RHEL link /etc/sysctl.conf in so
    "/etc/sysctl.conf": "net.ipv4.conf.default.rp_filter = 1\n",
}


def test_files_are_read_in_systemd_sysctl_order() -> None:
    """Same-named files: /etc over /run over /usr/local/lib over /usr/lib; a link to /dev/null or an empty
    file masks the name; files sorted by name across directories; /etc/sysctl.conf read through the
    99-sysctl.conf link. The fact's order is the one `systemd-sysctl --cat-config` prints."""
    with staging_dir() as staging:
        cat = subprocess.run(
            tree_command(ORDER_TREE, f"{SYSTEMD_SYSCTL} --cat-config", staging),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        captures = collect([CONF], tree_command(ORDER_TREE, "exec sh -s", staging))
    config = CONF.parse(captures[CONF.key])
    judged = [line[2:] for line in cat.splitlines() if line.startswith("# /")]
    ours = sorted([*config.files, *config.masked], key=lambda path: path.rpartition("/")[2])
    assert ours == judged
    assert config.masked == ("/etc/sysctl.d/60-masked.conf", "/etc/sysctl.d/80-empty.conf")
    assert config.value("net/ipv4/conf/all/arp_ignore") == "3"
    assert config.value("net/ipv4/conf/all/log_martians") is None
    assert config.value("net/ipv4/conf/default/rp_filter") == "1"
    assert config.assignment("net/ipv4/conf/default/rp_filter").where == "/etc/sysctl.d/99-sysctl.conf:1"


APPLY_TREE = {
    # RHEL's systemd ships globs like these (50-default.conf); explicit keys must win over them.
    "/usr/lib/sysctl.d/50-default.conf": (
        "net.ipv4.conf.default.rp_filter = 2\n"
        "net.ipv4.conf.*.rp_filter = 2\n"
        "-net.ipv4.conf.all.rp_filter\n"  # excluded from the glob, set by nothing
        "net.ipv4.conf.*.accept_local = 1\n"
    ),
    "/etc/sysctl.d/60-e.conf": (
        "net.ipv4.conf.e*.accept_local = 0\n"
        "net/ipv4/conf/e.1/log_martians = 1\n"  # slash form: the dot belongs to the interface name
        "net.ipv4.conf.e/1.arp_ignore = 2\n"  # dot form: the slash stands for the interface's dot
        "-net.ipv4.conf.e2.send_redirects = 1\n"  # '-' only means: ignore a failure to write
    ),
    "/etc/sysctl.d/70-again.conf": (
        # Re-assigning the same glob with the SAME value keeps its first place: e*.accept_local (later in
        # the map) still writes last, so e.1 and e2 end with 0, not 1.
        "net.ipv4.conf.*.accept_local = 1\n"
        "net.ipv4.conf.*.send_redirects = 1\n"
        "net.ipv4.conf.*.send_redirects = 0\n"  # a different value moves the glob to the end
        "net.ipv4.conf.all.send_redirects = 1\n"
    ),
}


def test_applied_values_are_the_ones_the_model_predicts() -> None:
    """The real systemd-sysctl applies the tree inside a network namespace of ours the way a boot does: once
    for everything (--prefix=/net/ipv4/conf), then once per interface (its udev rule runs
    `systemd-sysctl --prefix=/net/ipv4/conf/$name` for every network device "add", coldplug included),
    and for an interface created afterwards. Every value is the one SysctlConfig.value() predicts, a key
    nothing sets keeps its value, and an interface gets its own keys or else conf/default's value: the
    model the at-boot judgement uses. (Without the per-interface run the kernel's devinet_copy_dflt_conf
    would matter: writing conf/default copies the value to every interface whose key was never written,
    and systemd-sysctl skips writing a value that is already there.)"""
    with namespaces(1) as (ns,), staging_dir() as staging:
        ip(ns, "link", "add", "e.1", "type", "veth", "peer", "name", "e2")
        before = NET4.parse(collect([NET4], ["ip", "netns", "exec", ns, "sh", "-s"])[NET4.key])
        run = f"{SYSTEMD_SYSCTL} --prefix=/net/ipv4/conf"
        later = "ip link add e3 type veth peer name x3"
        boot = f"{run} && {run}/e.1 && {run}/e2 && {later} && {run}/e3 && exec sh -s"
        argv = ["ip", "netns", "exec", ns, *tree_command(APPLY_TREE, boot, staging)]
        captures = collect([NET4, CONF], argv)
    after = NET4.parse(captures[NET4.key])
    config = CONF.parse(captures[CONF.key])
    assert before is not None and after is not None
    for slot in ("all", "default", "e.1", "e2"):
        for key, value in after[slot].items():
            predicted = config.value(f"net/ipv4/conf/{slot}/{key}")
            expected = before[slot][key] if predicted is None else int(predicted)
            assert value == expected, (slot, key, predicted)
    for key, value in after["e3"].items():
        own = config.value(f"net/ipv4/conf/e3/{key}")
        assert value == int(own if own is not None else after["default"][key]), key
    # The glob written last wins over an earlier one, the explicit keys over every glob.
    assert (after["e.1"]["accept_local"], after["e2"]["send_redirects"], after["all"]["rp_filter"]) == (
        0,
        1,
        0,
    )


RHEL_LIKE = {
    "/usr/lib/sysctl.d/50-default.conf": (
        "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n"
    ),
    # What a hardening guide writes: conf/all and conf/default strict. A text match passes this host.
    "/etc/sysctl.d/90-hds.conf": "net.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.default.rp_filter = 1\n",
}


def test_a_glob_for_every_interface_loosens_rp_filter_despite_all_and_default() -> None:
    """The boot writes rp_filter=2 to each interface through the glob (explicit keys only protect all and
    default): max(all=1, eth0=2) is loose filtering. Simulated boot in a namespace of ours, then the check
    on what the kernel holds and on the files: both fail, naming eth0 and the glob's file."""
    with namespaces(1) as (ns,), staging_dir() as staging:
        boot = (
            f"{SYSTEMD_SYSCTL} --prefix=/net/ipv4/conf && ip link add eth0 type veth peer name eth1 && "
            f"{SYSTEMD_SYSCTL} --prefix=/net/ipv4/conf/eth0 && "
            f"{SYSTEMD_SYSCTL} --prefix=/net/ipv4/conf/eth1 && "
            "exec sh -s"
        )
        captures = collect([NET4, CONF], ["ip", "netns", "exec", ns, *tree_command(RHEL_LIKE, boot, staging)])
    outcome = evaluate("sysctl.interface_values", {"family": "ipv4", "expect": {"rp_filter": 1}}, captures)
    assert isinstance(outcome, Outcome) and outcome.status is Status.FAIL
    assert "eth0: rp_filter in effect is 2 (max(all=1, eth0=2))" in outcome.message
    at_boot = (
        "eth0 would get rp_filter 2: all 1 (/etc/sysctl.d/90-hds.conf:1), "
        "eth0 2 (/usr/lib/sysctl.d/50-default.conf:2)"
    )
    assert at_boot in outcome.message
    live = NET4.parse(captures[NET4.key])
    assert (
        live is not None and live["all"]["rp_filter"] == live["default"]["rp_filter"] == 1
    )  # the text match


def test_keys_the_kernel_reads_per_interface_ignore_conf_all_at_boot_too() -> None:
    """IPv6 max_addresses is the interface's own value: a file setting default and a glob (not conf/all)
    persists it, though no value of conf/all is known."""
    tree = "net.ipv6.conf.default.max_addresses = 1\nnet.ipv6.conf.*.max_addresses = 1\n"
    with namespaces(1) as (ns,), staging_dir() as staging:
        run = f"{SYSTEMD_SYSCTL} --prefix=/net/ipv6/conf"
        boot = f"ip link add eth0 type veth peer name eth1 && {run} && {run}/eth0 && {run}/eth1 && exec sh -s"
        net6 = NetConf("ipv6")
        argv = ["ip", "netns", "exec", ns, *tree_command({"/etc/sysctl.d/90-v6.conf": tree}, boot, staging)]
        captures = collect([net6, CONF], argv)
    params = {"family": "ipv6", "expect": {"max_addresses": 1}, "pass_if_ipv6_disabled": False}
    outcome = evaluate("sysctl.interface_values", params, captures)
    assert isinstance(outcome, Outcome) and outcome.status is Status.PASS, outcome


@pytest.mark.parametrize("ipv6", ["present", "hidden"])
def test_both_families_in_one_grep_give_each_what_its_own_snippet_gives(ipv6: str) -> None:
    """A probe asking IPv4 and IPv6 reads both with ONE grep (a batch); each family's capture must be the
    one its own snippet gives alone, also where the kernel has no IPv6 (its tree hidden, as with
    ipv6.disable=1: ABSENT, not an error) and where a value differs per interface."""
    net6 = NetConf("ipv6")
    hide = "mount -t tmpfs none /proc/sys/net/ipv6 && " if ipv6 == "hidden" else ""
    with namespaces(1) as (ns,):
        ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        write_sysctl(ns, "net/ipv4/conf/eth0/rp_filter", 2)
        write_sysctl(ns, "net/ipv6/conf/eth1/accept_ra", 0)
        argv = ["ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c", f"{hide}exec sh -s"]
        both = collect([NET4, net6], argv)
        alone = {**collect([NET4], argv), **collect([net6], argv)}
    assert render([NET4, net6], new_nonce()).sections[0].batched
    for fact in (NET4, net6):
        assert (both[fact.key].exit_code, both[fact.key].stdout, both[fact.key].stderr) == (
            alone[fact.key].exit_code,
            alone[fact.key].stdout,
            alone[fact.key].stderr,
        )
    four, six = NET4.parse(both[NET4.key]), net6.parse(both[net6.key])
    assert four is not None and four["eth0"]["rp_filter"] == 2 and four["eth1"]["rp_filter"] != 2
    if ipv6 == "hidden":
        assert six is None and both[net6.key].exit_code == ABSENT
    else:
        assert six is not None and six["eth1"]["accept_ra"] == 0 and six["eth0"]["accept_ra"] == 1
