"""Network failure fixtures: a port that refuses connections and a server that accepts then hangs."""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType


def closed_port(address: str = "127.0.0.1") -> int:
    """Return a TCP port on ``address`` with nothing listening (a connect is refused)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
            port: int = sock.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            try:
                probe.connect((address, port))
            except ConnectionRefusedError:
                return port
            except OSError:
                continue
    raise RuntimeError(f"could not find a closed port on {address}")


class HangingServer:
    """Accept TCP connections on ``address`` and never send a byte until stopped."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0, *, max_held: int = 1024) -> None:
        """Configure the server; ``port`` 0 picks a free one at start()."""
        self.address = address
        self.port = port
        self.max_held = max_held
        self._listener: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def accepted(self) -> int:
        """Number of connections accepted so far."""
        with self._lock:
            return self._accepted

    def start(self) -> None:
        """Bind, listen and start the accept thread."""
        if self._thread is not None:
            raise RuntimeError("HangingServer already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.address, self.port))
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f"hanging-{self.address}:{self.port}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if len(self._held) >= self.max_held:
                    # The kernel backlog keeps completing handshakes, so clients still hang.
                    self._stop.wait(0.05)
                    continue
                # Short poll so stop() returns promptly.
                if not sel.select(timeout=0.05):
                    continue
                try:
                    conn, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                with self._lock:
                    self._held.append(conn)
                    self._accepted += 1

    def stop(self) -> None:
        """Stop accepting and close every held connection (bounded: at most ~2 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()

    def __enter__(self) -> HangingServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
