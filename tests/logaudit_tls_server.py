"""What a log collector on 127.0.0.1:6514 sees from a sender: prints one word and exits.

    python3 logaudit_tls_server.py CERT.pem KEY.pem READY_FILE

``tls-data`` (a message over TLS), ``tls-refused`` (a TLS handshake, then the sender hung up or
aborted: it did not accept this certificate), ``plain`` (a message in clear over TCP), ``udp`` (a
datagram); nothing within 40 seconds prints nothing. READY_FILE is created once it listens.
"""

from __future__ import annotations

import select
import socket
import ssl
import sys


def main() -> None:
    """Serve TCP and UDP on 127.0.0.1:6514 until the first sign of a sender."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 6514))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 6514))
    open(sys.argv[3], "w").close()  # a mark for the shell that starts the sender
    ready, _, _ = select.select([tcp, udp], [], [], 40.0)
    if udp in ready:
        print("udp", flush=True)
        return
    if not ready:
        return
    conn, _ = tcp.accept()
    conn.settimeout(2.0)
    if conn.recv(1, socket.MSG_PEEK) != b"\x16":  # not a TLS handshake record
        print("plain", flush=True)
        return
    try:
        data = context.wrap_socket(conn, server_side=True).recv(200)
    except (OSError, ssl.SSLError):
        data = b""
    print("tls-data" if data else "tls-refused", flush=True)


if __name__ == "__main__":
    main()
