"""Which server answers at a port: MySQL's greeting or PostgreSQL's reply, for the hint
given when a connect failed because the URL's port belongs to the other kind of server
(``postgresql://...@db:3306``), where the drivers' own errors do not say so ("received
invalid response to SSL negotiation", or a wait for a greeting that never comes).

The probe runs only after a connect failed, only to the host and port of the URL, and
within :data:`PROBE_SECONDS` in all: MySQL and MariaDB send a handshake packet as soon as
the connection is accepted; PostgreSQL waits to be spoken to, and answers the 8-byte
SSLRequest with one byte, ``S`` or ``N``.
"""

from __future__ import annotations

import socket
import struct
import time

from .url import URL

__all__ = ["PROBE_SECONDS", "server_kind", "wrong_server_hint"]

#: The longest the whole probe may take.
PROBE_SECONDS = 1.0
#: How long to wait for a greeting before speaking first.
GREETING_SECONDS = 0.3
#: PostgreSQL's SSLRequest: length 8, request code 80877103.
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
#: The usual port of each kind of server, for the hint and for URLs without a port.
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}
NAMES = {"mysql": "MySQL", "postgresql": "PostgreSQL"}


def _is_mysql_greeting(head: bytes) -> bool:
    """A MySQL packet with sequence number 0: a handshake (protocol 10) or an error
    (0xFF, e.g. "host is not allowed to connect")."""
    return len(head) >= 5 and head[3] == 0 and head[4] in (0x0A, 0xFF)


def server_kind(host: str, port: int, seconds: float = PROBE_SECONDS) -> str | None:
    """``"mysql"`` or ``"postgresql"`` by how the server at ``host:port`` greets a new
    connection, or None (no answer, refused, or something else)."""
    deadline = time.monotonic() + seconds

    def left(at_most: float = seconds) -> float:
        return max(0.01, min(at_most, deadline - time.monotonic()))

    try:
        with socket.create_connection((host, port), timeout=left()) as sock:
            sock.settimeout(left(GREETING_SECONDS))
            try:
                head: bytes | None = sock.recv(64)
            except TimeoutError:
                head = None  # silent: PostgreSQL, or something else that waits
            if head is not None:
                return "mysql" if _is_mysql_greeting(head) else None
            sock.settimeout(left())
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(1)
            return "postgresql" if answer in (b"S", b"N") else None
    except OSError:
        return None


def wrong_server_hint(url: URL | None, seconds: float = PROBE_SECONDS) -> str | None:
    """A plain sentence when the server at ``url``'s host and port is of the other kind
    than its dialect (None otherwise, and for Unix sockets and SQLite)."""
    if url is None or url.dialect not in DEFAULT_PORTS:
        return None
    host = url.host or "localhost"
    if host.startswith("/") or "unix_socket" in url.query:
        return None
    port = url.port or DEFAULT_PORTS[url.dialect]
    kind = server_kind(host, port, seconds)
    if kind is None or kind == url.dialect:
        return None
    greeting = " (its greeting)" if kind == "mysql" else ""
    return (
        f"port {port} answers like {NAMES[kind]}{greeting}, not {NAMES[url.dialect]}: "
        f"is the port right? ({NAMES[url.dialect]} usually listens on "
        f"{DEFAULT_PORTS[url.dialect]}, {NAMES[kind]} on {DEFAULT_PORTS[kind]})"
    )
