"""The collector worker: the only module that imports pyinfra and gevent, in its own process.

Run as ``python -m hds_compliance.collect``: the JSON request on stdin's first line, then on stdout one JSON
line per host as each is done (``{"done": ...}``) and ``{"end": n}``.
A job marked ``follow`` (a probe) sends its first round's output as a ``{"first": host, ...}`` line and
waits for the scanning process's answer on stdin: the second round's script, or none. Safety,
whatever the inventory says: SSH host keys are checked strictly against the known_hosts file the
inventory names, no pyinfra operation is ever run, pyinfra's sudo/su machinery is never used (privilege
comes from ``hds_sudo: True``, which wraps the probe in ``sudo -n``: never a prompt), pyinfra's logger is
kept from printing host output, and the interactive prompts pyinfra could fall back on are disabled.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import IO, Any

from hds_compliance.collect import CollectOptions, HostJob, RawProbe, RawRound

_READER_WAKE_S = 5.0  # paramiko's reader timeout once connected (its default: 0.1 s)


def _no_prompt(*_args: Any, **_kwargs: Any) -> str:
    raise RuntimeError("hds-compliance never prompts for a password (use keys, root, or NOPASSWD sudo)")


def probe_command(job: HostJob) -> str:
    """The command that runs the probe, which it reads from stdin.

    Through stdin (``sh -s``) the script never shows in a process list on the host, so the run's nonce
    stays secret, and its size is not limited by the 128 KiB cap on a ``sh -c`` argument. With sudo,
    ``sudo -n``: a missing rule fails at once instead of prompting, and the command exits 0 whatever
    sudo says, because pyinfra answers a failed command that printed a sudo prompt line with getpass().
    """
    return "sudo -n -- sh -s 2>&1; exit 0" if job.sudo else "sh -s"


def _worker(out: IO[str]) -> dict[str, Any]:
    from gevent import monkey

    monkey.patch_all()

    import hmac
    import logging
    import socket

    import gevent
    import gevent.pool
    import paramiko.util as paramiko_util
    import pyinfra.connectors.ssh_util as ssh_util
    import pyinfra.connectors.sshuserclient.client as ssh_client
    import pyinfra.connectors.util as connector_util
    from gevent.event import AsyncResult
    from gevent.fileobject import FileObjectPosix
    from pyinfra.api.command import StringCommand
    from pyinfra.api.config import Config
    from pyinfra.api.inventory import Inventory
    from pyinfra.api.state import BaseStateCallback, State, StateStage

    from hds_compliance.collect.known_hosts import IndexedHostKeys

    # pyinfra logs command output (file contents) at ERROR when a command fails: keep it off.
    logging.getLogger("pyinfra").setLevel(logging.CRITICAL + 1)
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
    connector_util.getpass = _no_prompt  # type: ignore[attr-defined]
    # paramiko checks every packet's MAC with a constant-time comparison written in Python, a loop over
    # the bytes; the standard library's is the same guarantee, in C.
    paramiko_util.constant_time_bytes_eq = hmac.compare_digest  # type: ignore[assignment]
    ssh_util.getpass = _no_prompt  # type: ignore[attr-defined]
    # Every SSH connection checks its host key strictly, hops included: a ProxyJump hop gets the policy of
    # the ssh_config it is read from, "ask" by default, whose input() would read our protocol's stdin.
    strict = ssh_client.get_missing_host_key_policy
    ssh_client.get_missing_host_key_policy = lambda _policy: strict("yes")
    # pyinfra loads each known_hosts file once for the whole fleet; paramiko's lookup in it is linear, so a
    # fleet's connections would cost N^2 comparisons: the same entries, read through an index.
    ssh_client.HostKeys = IndexedHostKeys  # type: ignore[attr-defined,assignment]

    inp = FileObjectPosix(0, "rb", close=False)  # cooperative: reading it lets the other greenlets run
    request = json.loads(inp.readline())
    options = CollectOptions(**request["options"])
    follow = {j["name"] for j in request["jobs"] if j.get("follow")}  # probes: second round asked for
    scripts = request["scripts"]  # each distinct script once; a job names its own by number
    jobs = [
        HostJob(
            **{k: v for k, v in j.items() if k not in ("follow", "script", "script_id")},
            script=scripts[j["script_id"]],
        )
        for j in request["jobs"]
    ]
    by_name = {j.name: j for j in jobs}
    answers: dict[str, AsyncResult] = {}

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")  # one line, written whole before any other greenlet runs
        out.flush()

    def listen() -> None:
        # The scanning process's answers, by host; when it closes stdin, nobody gets a second round.
        for line in iter(inp.readline, b""):
            answer = json.loads(line)
            waiting = answers.pop(answer["name"], None)
            if waiting is not None:
                waiting.set(answer)
        for waiting in answers.values():
            waiting.set(None)
        answers.clear()

    def second_round(name: str, first: RawRound) -> dict[str, Any] | None:
        waiting = answers[name] = AsyncResult()
        send({"first": name, "stdout": first.stdout, "stderr": first.stderr})
        try:
            reply: dict[str, Any] | None = waiting.get(timeout=options.command_timeout)
        except gevent.Timeout:
            answers.pop(name, None)
            return None
        return reply

    host_entries = []
    jump_config = _jump_config(jobs)
    for job in jobs:
        data = dict(job.data)
        if job.jump is not None:
            data["ssh_config_file"] = jump_config
        if not job.name.startswith("@"):
            data["ssh_strict_host_key_checking"] = "yes"
            connect_kwargs = dict(data.get("ssh_paramiko_connect_kwargs") or {})
            for key in ("banner_timeout", "auth_timeout", "channel_timeout"):
                connect_kwargs.setdefault(key, options.connect_timeout)
            data["ssh_paramiko_connect_kwargs"] = connect_kwargs
        host_entries.append((job.name, data))
    inventory = Inventory((host_entries, {}))
    # CONNECT_TIMEOUT is the TCP connect timeout; paramiko's banner/auth/channel waits get the same value.
    config = Config(CONNECT_TIMEOUT=options.connect_timeout, PARALLEL=options.parallel, FAIL_PERCENT=None)
    state = State(inventory=inventory, config=config)
    nodelay: dict[str, bool] = {}

    class Events(BaseStateCallback):
        @staticmethod
        def host_connect(state: Any, host: Any) -> None:
            # paramiko sets no TCP_NODELAY; without it every command stalls ~40 ms (Nagle + delayed ACK).
            client = getattr(host.connector, "client", None)
            transport = (
                client.get_transport() if client is not None and hasattr(client, "get_transport") else None
            )
            if transport is not None:
                # through a jump host the transport runs over a hop's channel: the hop's socket is the TCP one
                tcp = transport.sock
                while not isinstance(tcp, socket.socket) and hasattr(tcp, "get_transport"):
                    tcp = tcp.get_transport().sock
                if isinstance(tcp, socket.socket):
                    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nodelay[host.name] = bool(tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                # paramiko's reader wakes up every 0.1 s (its socket timeout) to look for a closed
                # transport: about 1 ms of CPU per host and second a probe runs. Connected, nothing needs
                # those wake-ups (a close wakes the reader at once under gevent; the command timeout is
                # pyinfra's own), so the reader now sleeps until data comes.
                transport.sock.settimeout(_READER_WAKE_S)

    state.add_callback_handler(Events())
    # pyinfra, paramiko, gevent and the inventory are loaded and stay: left out of the cyclic collector's
    # walks. The collector still runs, less often (every 10,000 objects, not 700): a connection's paramiko
    # objects refer to each other and are freed by it. In a 500-host lab scan: 0.21 -> 0.07 s of collector.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    state.set_stage(StateStage.Connect)

    def run_round(host: Any, job: HostJob, script: str, record: RawRound) -> RawRound:
        try:
            ok, output = host.run_shell_command(
                StringCommand(probe_command(job)), _stdin=script, _timeout=options.command_timeout
            )
            record.stdout = "\n".join(output.stdout_lines)
            record.stderr = "\n".join(output.stderr_lines)[-4000:]
            record.command_ok = bool(ok)
        except TimeoutError:
            record.error = f"probe timed out after {options.command_timeout:g} s"
        except Exception as exc:
            record.error = f"probe failed: {type(exc).__name__}: {exc}"
        return record

    def connect_and_probe(host: Any) -> RawProbe:
        # Each host connects and probes on its own: a slow or dead host delays nobody else.
        try:
            with gevent.Timeout(options.connect_timeout * 3 + 2, TimeoutError("connection timed out")):
                host.connect(show_errors=False, raise_exceptions=True)
        except Exception as exc:
            return RawProbe(name=host.name, connected=False, error=str(exc) or type(exc).__name__)
        job = by_name[host.name]
        started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        t0 = time.monotonic()
        raw = RawProbe(name=host.name, connected=True, started_at=started)
        raw.tcp_nodelay = nodelay.get(host.name)
        first = run_round(host, job, job.script or "", RawRound(nonce=job.nonce, facts=job.facts))
        raw.rounds.append(first)
        # A second command only for facts that depend on the first one's output (sshd Match blocks...).
        if first.error is None and host.name in follow:
            answer = second_round(host.name, first)
            if answer is not None:
                sent.add(host.name)
                if answer.get("script"):
                    record = RawRound(nonce=answer["nonce"], facts=answer["facts"])
                    raw.rounds.append(run_round(host, job, answer["script"], record))
        raw.duration_s = round(time.monotonic() - t0, 3)
        with contextlib.suppress(Exception):  # results are in; a failing disconnect changes nothing
            host.disconnect()
            client = getattr(host.connector, "client", None)
            if client is not None and hasattr(client, "close"):
                client.close()
        return raw

    sent: set[str] = set()  # hosts whose first round's output the scanning process has (and answered)
    listener = gevent.spawn(listen)
    pool = gevent.pool.Pool(max(options.parallel, 1))
    done = 0
    for raw in pool.imap_unordered(connect_and_probe, list(inventory)):
        # each host as soon as it is done: nothing of it stays here
        send({"done": _plain(raw, raw.name in sent)})
        done += 1
    listener.kill()
    return {"end": done}


def _jump_config(jobs: list[HostJob]) -> str | None:
    """An ssh_config (private, removed at exit) sending each job that has a jump host through it: pyinfra's
    own ProxyJump support then connects the hop, then the target through the hop's ``direct-tcpip``
    channel, each host key checked against its known_hosts. The probe still runs on the target only."""
    jumping = [job for job in jobs if job.jump is not None]
    if not jumping:
        return None
    folder = tempfile.mkdtemp(prefix="hds-compliance-ssh-")
    atexit.register(shutil.rmtree, folder, True)
    lines = []
    for number, job in enumerate(jumping):
        jump = job.jump or {}
        alias = f"hds-jump-{number}"
        lines += [f"Host {alias}", f"  HostName {jump['ssh_hostname']}", f"  Port {jump.get('ssh_port', 22)}"]
        for key, option in (
            ("ssh_user", "User"),
            ("ssh_key", "IdentityFile"),
            ("ssh_known_hosts_file", "UserKnownHostsFile"),
        ):
            if key in jump:
                lines.append(f"  {option} {jump[key]}")
        target = job.data.get("ssh_hostname", job.name)
        lines += ["  StrictHostKeyChecking yes", f"Host {target}", f"  ProxyJump {alias}"]
    path = os.path.join(folder, "config")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _plain(raw: RawProbe, first_sent: bool) -> dict[str, Any]:
    """What ``dataclasses.asdict`` gives for a host's answer, without its deep copy of every output, nor
    the first round's output when the scanning process already has it."""
    rounds = [{k: v for k, v in vars(r).items() if k != "parsed"} for r in raw.rounds]
    if first_sent:
        rounds[0]["stdout"] = None
    return {**vars(raw), "rounds": rounds}


def main() -> None:
    """Worker entry point: JSON request and answers on stdin, JSON messages on stdout (kept for them only)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, not into our JSON
    sys.stdout = sys.stderr
    out.write(json.dumps(_worker(out)) + "\n")
    out.flush()
