"""A TCP fault proxy on 127.0.0.1, between a pool and a database server.

It forwards bytes both ways until told to break the path:

- ``reset()``: every current connection is aborted with a TCP RST (ECONNRESET).
- ``close()``: every current connection is closed cleanly (FIN), as a server would.
- ``blackhole()``: every current connection silently stops carrying data. Packets on them
  are also dropped by an nftables rule, so the operating system sees no acknowledgements
  either (a real silent drop: TCP keepalives and user timeouts fire as they would);
  connections made afterwards work, as after a NAT or firewall forgot the old ones.
- ``delay(seconds)``: forwarding waits this long before each chunk.
- ``refuse()`` / ``accept()``: new connections are refused, or accepted again.
- ``retarget(port)``: new connections go to another server; current ones stay on the old
  one, as after a DNS switch or a virtual IP moving to a new primary.
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import shutil
import socket
import struct
import subprocess
import threading
import time

__all__ = ["FaultProxy", "nft_available"]

_tables = itertools.count(1)


def nft_available() -> bool:
    """Whether this process may add nftables rules (root, nft installed, kernel support)."""
    if shutil.which("nft") is None:
        return False
    probe = f"pwprobe{id(object())}"
    ok = (
        subprocess.run(["nft", "add", "table", "inet", probe], capture_output=True).returncode == 0
    )
    if ok:
        subprocess.run(["nft", "delete", "table", "inet", probe], capture_output=True)
    return ok


class _Pair:
    __slots__ = ("client", "dead", "upstream")

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = False


class FaultProxy:
    """Listens on ``self.port`` and forwards to ``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._delay = 0.0
        self._refusing = False
        self._stopped = False
        self._table = f"pwfault{next(_tables)}_{self.port}"
        self._nft_rules = False
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- faults --------------------------------------------------------------------------
    def reset(self) -> int:
        """Abort every current connection with RST; return how many."""
        return self._drop_all(abort=True)

    def close(self) -> int:
        """Close every current connection cleanly; return how many."""
        return self._drop_all(abort=False)

    def blackhole(self) -> int:
        """Silently stop every current connection; return how many."""
        with self._lock:
            pairs = self._silence_all()
            ports = [pair.client.getpeername()[1] for pair in pairs]
        self._drop_packets(ports)
        return len(pairs)

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before forwarding each chunk (0 to stop delaying)."""
        self._delay = seconds

    def refuse(self) -> None:
        """Refuse new connections (they are reset right after accept)."""
        self._refusing = True

    def accept(self) -> None:
        """Accept new connections again."""
        self._refusing = False

    def retarget(self, port: int) -> None:
        """Forward new connections to ``port``; current ones keep their old upstream (a
        DNS switch or VIP move does not touch established connections either)."""
        self.target_port = port

    @property
    def connections(self) -> int:
        """Connections currently carrying data."""
        with self._lock:
            return sum(not p.dead for p in self._pairs)

    def stop(self) -> None:
        """Close everything and remove any packet rules."""
        self._stopped = True
        # The forwarding thread first: one still accepting would add a pair after the
        # close below, whose sockets nobody closes then.
        self._thread.join(5)
        self._drop_all(abort=True)
        with self._lock:
            for pair in self._pairs:
                pair.client.close()
                pair.upstream.close()
            self._pairs.clear()
        self._listener.close()
        if self._nft_rules:
            subprocess.run(["nft", "delete", "table", "inet", self._table], capture_output=True)
            self._nft_rules = False

    # -- internals -----------------------------------------------------------------------
    def _silence_all(self) -> list[_Pair]:
        """Mark every live pair dead and stop forwarding it (caller holds the lock)."""
        pairs = [p for p in self._pairs if not p.dead]
        for pair in pairs:
            pair.dead = True
            for sock in (pair.client, pair.upstream):
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
        return pairs

    def _drop_all(self, abort: bool) -> int:
        with self._lock:
            pairs = self._silence_all()
            for pair in pairs:
                for sock in (pair.client, pair.upstream):
                    if abort:  # linger 0: close() sends RST instead of FIN
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    with contextlib.suppress(OSError):
                        sock.close()
        return len(pairs)

    def _drop_packets(self, client_ports: list[int]) -> None:
        """Drop, in the kernel, packets between the proxy and those client ports."""
        if not client_ports or not nft_available():
            return
        commands = []
        if not self._nft_rules:
            commands += [
                f"add table inet {self._table}",
                f"add chain inet {self._table} out {{ type filter hook output priority 0 ; }}",
            ]
            self._nft_rules = True
        for port in client_ports:
            commands += [
                f"add rule inet {self._table} out tcp sport {port} tcp dport {self.port} drop",
                f"add rule inet {self._table} out tcp sport {self.port} tcp dport {port} drop",
            ]
        subprocess.run(["nft", "-f", "-"], input="\n".join(commands).encode(), check=True)

    def _run(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select(timeout=0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._forward(key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._refusing:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()  # server down: the client sees its connection closed
            return
        client.setblocking(True)
        upstream.setblocking(True)
        pair = _Pair(client, upstream)
        with self._lock:
            self._pairs.append(pair)
            self._selector.register(client, selectors.EVENT_READ, (pair, upstream))
            self._selector.register(upstream, selectors.EVENT_READ, (pair, client))

    def _forward(self, source: socket.socket, data: tuple[_Pair, socket.socket]) -> None:
        pair, destination = data
        try:
            chunk = source.recv(65536)
        except OSError:
            chunk = b""
        with self._lock:
            if pair.dead:
                return
            if not chunk:  # one side closed: close the other, as a straight path would
                pair.dead = True
                for sock in (pair.client, pair.upstream):
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(sock)
                    with contextlib.suppress(OSError):
                        sock.close()
                return
        if self._delay:
            time.sleep(self._delay)
        with contextlib.suppress(OSError):
            destination.sendall(chunk)
