"""Several real sshd hosts on loopback, each seeing a different system.

Every host is an ``sshd -D`` that runs as PID 1 of its own private mount and PID namespace
(``unshare``). Inside that namespace the configured files and directories are bind-mounted over
the real ones, /tmp can be a fresh tmpfs, and dummy processes run under chosen names. Nothing is
mounted, created or changed on the real system except sshd's privilege-separation dir /run/sshd.
"""

from __future__ import annotations

import atexit
import ctypes
import ipaddress
import keyword
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
UNSHARE_ARGV = (
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--mount-proc",
    "--kill-child",
)
# Login-shell rc files that make every remote command slow (pyenv init on this machine).
RC_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMM_MAX = 15  # the kernel truncates /proc/<pid>/comm to 15 characters
_START_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the forked child before exec: if the test process dies (even by SIGKILL), unshare
    # gets SIGKILL, and its --kill-child takes the whole namespace down. Tied to the calling thread.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class LabHost:
    """One lab host: the address its sshd listens on and what it sees differently."""

    name: str
    address: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    dirs: dict[str, dict[str, str | bytes]] = field(default_factory=dict)
    tmp_mount_options: str | None = None
    processes: tuple[str, ...] = ()
    sshd_options: dict[str, str] = field(default_factory=dict)
    login_user: str = "root"
    file_modes: dict[str, int] = field(default_factory=dict)
    overlays: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    sshd_config_extra: str = ""
    netns: str | None = None  # a network namespace of the test's (ip netns) the daemon runs in
    routed: bool = False  # that namespace is reachable from this one (a veth the test set up)


def make_lab_root() -> Path:
    """Create a fresh lab root under /var/tmp (it must survive a tmpfs mounted on /tmp)."""
    return Path(tempfile.mkdtemp(prefix="hds-lab-", dir="/var/tmp"))


def _is_under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _check_abs(path: str) -> None:
    if not path.startswith("/") or os.path.normpath(path) != path or path == "/":
        raise ValueError(f"lab paths must be absolute and normalised (not /): {path!r}")


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def _port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    # Below the ephemeral range (32768+) so outgoing connections never take it; binding 0.0.0.0
    # fails if any 127.0.0.x already listens on it, so a free port is free on every address.
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if _port_is_free("0.0.0.0", port):
            return port
    raise RuntimeError("no free TCP port found in 20000-32000")


class SSHLab:
    """A set of sshd hosts on 127.0.0.x sharing one port, host key and client key."""

    def __init__(self, root: Path, port: int | None = None, *, mask_rc_files: bool = True) -> None:
        """Prepare keys under ``root`` (outside /tmp); ``port`` None picks a free one."""
        self.root = Path(root).resolve()
        if _is_under(str(self.root), "/tmp"):
            raise ValueError(f"lab root must not live under /tmp (hidden by tmpfs mounts): {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else _pick_port()
        self.mask_rc_files = mask_rc_files
        self.hosts: dict[str, LabHost] = {}
        self.host_key = self.root / "host_ed25519"
        self.client_key = self.root / "client_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        for key in (self.host_key, self.client_key):
            if not key.exists():
                argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hds-lab", "-f", str(key)]
                subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        self.authorized_keys.write_bytes(self.client_key.with_suffix(".pub").read_bytes())
        self.known_hosts.write_text("")

    # -- configuration -------------------------------------------------------------------------

    def add_host(
        self,
        name: str,
        address: str,
        *,
        files: dict[str, str | bytes] | None = None,
        dirs: dict[str, dict[str, str | bytes]] | None = None,
        tmp_mount_options: str | None = None,
        processes: tuple[str, ...] = (),
        sshd_options: dict[str, str] | None = None,
        file_modes: dict[str, int] | None = None,
        login_user: str = "root",
        overlays: tuple[str, ...] = (),
        absent: tuple[str, ...] = (),
        sshd_config_extra: str = "",
        netns: str | None = None,
        routed: bool = False,
    ) -> LabHost:
        """Declare a host; raise ValueError if anything it must see cannot be bind-mounted.

        ``login_user`` may exist only in the host's own ``/etc/passwd`` (given in ``files``).
        ``overlays`` are existing directories (``/etc``) the host sees through an overlay file system of its
        own: paths below them may be created (``files``, ``dirs``) or hidden (``absent``), and the real
        directory never changes. ``processes`` are names, or command lines whose first word is the name.
        ``sshd_config_extra`` is appended to the daemon's configuration as is (``Match`` blocks).
        ``netns`` runs the daemon in that network namespace (made by the test), on an address of its own;
        ``routed`` says this process reaches that address (the test linked the namespace to its own).
        """
        if self._procs:
            raise RuntimeError("add_host() after start()")
        if not _NAME_RE.match(name) or name in self.hosts:
            raise ValueError(f"bad or duplicate host name: {name!r}")
        if netns is None and ipaddress.IPv4Address(address) not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError(f"lab addresses must be in 127.0.0.0/8: {address!r}")
        if any(h.address == address for h in self.hosts.values()):
            raise ValueError(f"address already used by another lab host: {address}")
        host = LabHost(
            name=name,
            address=address,
            files=dict(files or {}),
            dirs={d: dict(entries) for d, entries in (dirs or {}).items()},
            tmp_mount_options=tmp_mount_options,
            processes=tuple(processes),
            sshd_options=dict(sshd_options or {}),
            file_modes=dict(file_modes or {}),
            login_user=login_user,
            overlays=tuple(overlays),
            absent=tuple(absent),
            sshd_config_extra=sshd_config_extra,
            netns=netns,
            routed=routed,
        )
        self._validate(host)
        self.hosts[name] = host
        return host

    def _visible_kind(self, host: LabHost, path: str) -> str | None:
        """What ``host`` sees at ``path`` once its mounts are in place: "file", "dir" or None."""
        for dir_path in sorted(host.dirs, key=len, reverse=True):
            if _is_under(path, dir_path) and path != dir_path:
                rel = path[len(dir_path) + 1 :]
                return "file" if rel in host.dirs[dir_path] else None
        if host.tmp_mount_options is not None and _is_under(path, "/tmp"):
            return "dir" if path == "/tmp" else None
        if os.path.isdir(path):
            return "dir"
        return "file" if os.path.isfile(path) else None

    @staticmethod
    def _creatable(host: LabHost, path: str) -> bool:
        """True if ``path`` may be created: in the host's private /tmp tmpfs or below one of its overlays,
        outside any replaced dir."""
        private = (host.tmp_mount_options is not None and _is_under(path, "/tmp") and path != "/tmp") or any(
            _is_under(path, root) and path != root for root in host.overlays
        )
        return private and not any(_is_under(path, d) and path != d for d in host.dirs)

    def _validate(self, host: LabHost) -> None:
        for dir_path, entries in host.dirs.items():
            _check_abs(dir_path)
            kind = self._visible_kind(host, dir_path)
            if kind != "dir" and not (kind is None and self._creatable(host, dir_path)):
                raise ValueError(
                    f"{host.name}: dirs target {dir_path} is not an existing directory "
                    "(the lab never creates paths on the real system)"
                )
            for filename in entries:
                if not filename or "/" in filename or filename in (".", ".."):
                    raise ValueError(f"{host.name}: dirs[{dir_path!r}] keys must be plain file names")
        for path in host.files:
            _check_abs(path)
            if path in host.dirs:
                raise ValueError(f"{host.name}: {path} is both in files and dirs")
            kind = self._visible_kind(host, path)
            if kind != "file" and not (kind is None and self._creatable(host, path)):
                raise ValueError(
                    f"{host.name}: files target {path} is not an existing regular file "
                    "(the lab never creates paths on the real system)"
                )
        for path in host.file_modes:
            if (
                path not in host.files
                and path not in host.dirs
                and not any(_is_under(path, d) and path[len(d) + 1 :] in e for d, e in host.dirs.items())
            ):
                raise ValueError(f"{host.name}: file_modes entry {path} is not a lab file or dir")
        for root in host.overlays:
            _check_abs(root)
            if not os.path.isdir(root) or _is_under(str(self.root), root):
                raise ValueError(
                    f"{host.name}: overlay {root} must be an existing directory not holding the lab"
                )
        for path in host.absent:
            _check_abs(path)
            if not any(_is_under(path, root) and path != root for root in host.overlays):
                raise ValueError(f"{host.name}: absent path {path} must lie below one of the host's overlays")
        for proc in host.processes:
            name = proc.split()[0] if proc.split() else ""
            if not _NAME_RE.match(name) or len(name) > _COMM_MAX or not re.fullmatch(r"[\w ./=:,-]+", proc):
                raise ValueError(f"{host.name}: process {proc!r} must start with a plain name of <= 15 chars")
        for key, value in host.sshd_options.items():
            bad_value = not value.strip() or "\n" in value or "\r" in value
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key) or key.lower() == "match" or bad_value:
                raise ValueError(f"{host.name}: unsupported sshd option keyword {key!r}")
        if not _NAME_RE.match(host.login_user):
            raise ValueError(f"{host.name}: bad login user {host.login_user!r}")

    # -- per-host paths ------------------------------------------------------------------------

    def host_dir(self, name: str) -> Path:
        """Directory holding everything generated for host ``name``."""
        return self.root / name

    def sshd_config_path(self, name: str) -> Path:
        """The sshd_config the running daemon of host ``name`` uses."""
        return self.host_dir(name) / "sshd_config"

    def log_path(self, name: str) -> Path:
        """stdout/stderr of host ``name``'s start script and sshd."""
        return self.host_dir(name) / "sshd.log"

    # -- generation ----------------------------------------------------------------------------

    def _sshd_config_text(self, host: LabHost) -> str:
        name = host.name
        defaults = [
            ("ListenAddress", f"{host.address}:{self.port}"),
            ("HostKey", str(self.host_key)),
            ("PidFile", str(self.host_dir(name) / "sshd.pid")),
            ("AuthorizedKeysFile", str(self.authorized_keys)),
            ("PermitRootLogin", "prohibit-password"),
            ("PasswordAuthentication", "no"),
            ("KbdInteractiveAuthentication", "no"),
            ("UsePAM", "no"),
            ("StrictModes", "no"),
            ("MaxStartups", "200:30:400"),
            ("LogLevel", "ERROR"),
            ("Subsystem", "sftp internal-sftp"),
        ]
        # sshd keeps the FIRST value of a keyword: host options go first, overridden defaults go.
        overridden = {k.lower() for k in host.sshd_options}
        lines = [f"# generated by tests/lab/sshlab.py for lab host {name}"]
        lines += [f"{k} {v}" for k, v in host.sshd_options.items()]
        lines += [f"{k} {v}" for k, v in defaults if k.lower() not in overridden]
        return "\n".join(lines) + "\n" + host.sshd_config_extra

    @staticmethod
    def _write_overlay_file(dest: Path, content: str | bytes, mode: int | None, like: str | None) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(_as_bytes(content))
        uid = gid = 0
        if like is not None and os.path.exists(like):
            st = os.stat(like)
            uid, gid = st.st_uid, st.st_gid
            mode = st.st_mode & 0o7777 if mode is None else mode
        os.chown(dest, uid, gid)
        os.chmod(dest, 0o644 if mode is None else mode)

    def _start_script(self, host: LabHost) -> str:
        hdir = self.host_dir(host.name)
        overlay = hdir / "overlay"
        q = shlex.quote
        lines = ["#!/bin/sh", f"# generated by tests/lab/sshlab.py for lab host {host.name}", "set -eu"]
        if host.netns is not None:
            # ``ip netns add`` leaves a mount per namespace under /run/netns, which the host would list as
            # its own (a mount table as long as the lab): taken off in its mount namespace; its network stays.
            lines.append("umount -l /run/netns 2>/dev/null || :")
        if self.mask_rc_files:
            empty = hdir / "empty_rc"
            empty.write_bytes(b"")
            try:
                home = pwd.getpwnam(host.login_user).pw_dir
            except KeyError:  # a user of the host's own /etc/passwd overlay: its home is the lab's
                home = "/nonexistent"
            lines += [
                f"mount --bind {q(str(empty))} {q(os.path.join(home, rc))}"
                for rc in RC_FILES
                if os.path.isfile(os.path.join(home, rc))
            ]
        if host.tmp_mount_options is not None:
            opts = host.tmp_mount_options or "defaults"
            lines.append(f"mount -t tmpfs -o {q(opts)} hds-lab-tmp /tmp")
        for number, root in enumerate(host.overlays):
            upper, work = hdir / f"overlay{number}-upper", hdir / f"overlay{number}-work"
            upper.mkdir(exist_ok=True)
            work.mkdir(exist_ok=True)
            options = f"lowerdir={root},upperdir={upper},workdir={work}"
            lines.append(f"mount -t overlay hds-lab-overlay -o {q(options)} {q(root)}")
        lines += [f"rm -rf -- {q(path)}" for path in host.absent]  # a whiteout in the host's overlay

        def created(path: str) -> bool:
            return self._creatable(host, path) and self._visible_kind(host, path) is None

        # Parents before children, so a file inside a replaced dir lands on the lab's copy.
        for dir_path in sorted(host.dirs, key=lambda p: p.count("/")):
            src = overlay / dir_path.lstrip("/")
            src.mkdir(parents=True, exist_ok=True)
            st = None if created(dir_path) else os.stat(dir_path)
            os.chown(src, st.st_uid if st else 0, st.st_gid if st else 0)
            os.chmod(src, host.file_modes.get(dir_path, st.st_mode & 0o7777 if st else 0o755))
            for filename, content in host.dirs[dir_path].items():
                path = f"{dir_path}/{filename}"
                self._write_overlay_file(src / filename, content, host.file_modes.get(path), None)
            if created(dir_path):
                lines.append(f"mkdir -p {q(dir_path)}")
            lines.append(f"mount --bind {q(str(src))} {q(dir_path)}")
        for path in sorted(host.files, key=lambda p: p.count("/")):
            src = overlay / path.lstrip("/")
            under_dir = any(_is_under(path, d) for d in host.dirs)
            like = None if created(path) or under_dir else path
            self._write_overlay_file(src, host.files[path], host.file_modes.get(path), like)
            if created(path):
                lines.append(f"mkdir -p {q(os.path.dirname(path))} && : > {q(path)}")
            lines.append(f"mount --bind {q(str(src))} {q(path)}")
        if host.processes:
            bindir = hdir / "bin"
            bindir.mkdir(exist_ok=True)
            for proc in host.processes:
                name = proc.split()[0]
                if proc == name:
                    shutil.copy2("/bin/sleep", bindir / name)
                    # Found via PATH so argv[0] (what pidof/ps show) is the bare name too.
                    lines.append(
                        f"(PATH={q(str(bindir))}; exec {q(name)} infinity) </dev/null >/dev/null 2>&1 &"
                    )
                else:
                    # perl rewrites its command line when $0 is assigned; comm is then set through /proc.
                    script = (
                        f'$0 = q({proc}); open(F, ">/proc/self/comm") && print F q({name}); close F; sleep'
                    )

                    lines.append(f"perl -e {q(script)} </dev/null >/dev/null 2>&1 &")
        lines.append(f"exec {q(str(SSHD))} -D -e -f {q(str(self.sshd_config_path(host.name)))}")
        return "\n".join(lines) + "\n"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every host's sshd and wait for its banner; raise RuntimeError with the log on failure.

        Call it from a thread that outlives the lab: the daemons are killed when that thread exits.
        """
        if self._procs:
            raise RuntimeError("lab already started")
        if not SSHD.exists():
            raise RuntimeError(f"{SSHD} is missing (apt-get install openssh-server)")
        if shutil.which("unshare") is None:
            raise RuntimeError("unshare (util-linux) is missing")
        for host in self.hosts.values():
            if host.netns is None and not _port_is_free(host.address, self.port):
                raise RuntimeError(f"port {host.address}:{self.port} is already in use")
        if not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        host_pub = " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts.write_text(
            "".join(f"[{h.address}]:{self.port} {host_pub}\n" for h in self.hosts.values())
        )
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        try:
            for host in self.hosts.values():
                hdir = self.host_dir(host.name)
                hdir.mkdir(exist_ok=True)
                self.sshd_config_path(host.name).write_text(self._sshd_config_text(host))
                script = hdir / "start.sh"
                script.write_text(self._start_script(host))
                with self.log_path(host.name).open("wb") as log:
                    netns = ("ip", "netns", "exec", host.netns) if host.netns else ()
                    self._procs[host.name] = subprocess.Popen(
                        [*netns, *UNSHARE_ARGV, "sh", str(script)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                        preexec_fn=_die_with_parent,
                    )
            atexit.register(self.stop)
            self._wait_for_banners()
        except BaseException:
            self.stop()
            raise

    def _wait_for_banners(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        pending = dict(self.hosts)
        while pending:
            for name, host in list(pending.items()):
                proc = self._procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"lab host {name} exited with {proc.returncode}:\n{self._log(name)}")
                if _has_banner(host.address, self.port, None if host.routed else host.netns):
                    del pending[name]
            if pending:
                if time.monotonic() > deadline:
                    logs = "\n".join(f"--- {n}\n{self._log(n)}" for n in pending)
                    raise RuntimeError(f"lab hosts did not answer within {_START_TIMEOUT}s:\n{logs}")
                time.sleep(0.02)

    def _log(self, name: str) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        """Kill every namespace this lab started (their mounts and processes die with them)."""
        procs, self._procs = self._procs, {}
        atexit.unregister(self.stop)
        for proc in procs.values():
            # The forking unshare blocks SIGTERM; SIGKILL makes --kill-child SIGKILL the namespace's
            # PID 1 (sshd), and the kernel then kills everything else in that PID namespace.
            if proc.poll() is None:
                proc.kill()
        for proc in procs.values():
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        """True between a successful start() and stop()."""
        return bool(self._procs)

    def __enter__(self) -> SSHLab:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- client side ---------------------------------------------------------------------------

    def ssh_argv(self, name: str, command: str) -> list[str]:
        """argv for the plain OpenSSH client running ``command`` on host ``name``."""
        host = self.hosts[name]
        options = {
            "IdentitiesOnly": "yes",
            "BatchMode": "yes",
            "UserKnownHostsFile": str(self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "ConnectTimeout": "5",
            "LogLevel": "ERROR",
        }
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.client_key), "-p", str(self.port)]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        return [*argv, f"{host.login_user}@{host.address}", command]

    def ssh(self, name: str, command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on host ``name`` with the plain ssh client; return the completed process."""
        return subprocess.run(
            self.ssh_argv(name, command),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def write_inventory(
        self, path: Path, host_data: dict[str, dict[str, object]] | None = None, group: str = "lab"
    ) -> Path:
        """Write a pyinfra inventory .py with one group ``group`` listing every host as (name, data)."""
        if not group.isidentifier() or keyword.iskeyword(group) or group.startswith("_"):
            raise ValueError(f"group must be a public Python identifier: {group!r}")
        host_data = host_data or {}
        unknown = set(host_data) - set(self.hosts)
        if unknown:
            raise KeyError(f"host_data for unknown lab hosts: {sorted(unknown)}")
        rows = []
        for host in self.hosts.values():
            data: dict[str, object] = {
                "ssh_hostname": host.address,
                "ssh_port": self.port,
                "ssh_user": host.login_user,
                "ssh_key": str(self.client_key),
                "ssh_known_hosts_file": str(self.known_hosts),
                "ssh_strict_host_key_checking": "yes",
            }
            data.update(host_data.get(host.name, {}))
            rows.append(f"    ({host.name!r}, {data!r}),\n")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f'"""pyinfra inventory generated by tests/lab/sshlab.py."""\n\n{group} = [\n'
            + "".join(rows)
            + "]\n"
        )
        return path


def _has_banner(address: str, port: int, netns: str | None = None) -> bool:
    if netns is not None:  # asked from inside the namespace, which this process cannot reach
        probe = f"import socket; s = socket.create_connection(({address!r}, {port}), 1); s.settimeout(1); "
        probe += "raise SystemExit(0 if s.recv(64).startswith(b'SSH-') else 1)"
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", probe]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
