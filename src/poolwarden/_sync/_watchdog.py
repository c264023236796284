"""Deadlines for blocking driver calls the pool makes on its own behalf (pings).

A ping on a connection whose network path silently died would block until the operating
system gives up, which can take many minutes. Drivers offer no common way to bound one call,
so the watchdog does it from outside: when a guarded call overruns its deadline, it shuts the
connection's socket down. The blocked read then returns at once, the driver raises, and the
pool discards the connection. One thread serves the whole process and sleeps until the
earliest deadline; it starts with the first guarded call.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

__all__ = ["Ticket", "guard", "release"]


class Ticket:
    """One guarded call: its deadline, its socket, and whether the watchdog fired."""

    __slots__ = ("deadline", "done", "fd", "fired")

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.fired = False
        self.done = False


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Ticket]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def guard(self, fd: int, deadline: float) -> Ticket:
        ticket = Ticket(fd, deadline)
        with self._lock:
            heapq.heappush(self._heap, (deadline, next(self._order), ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="poolwarden-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return ticket

    def release(self, ticket: Ticket) -> bool:
        """The call finished; return True if the watchdog had already cut its socket."""
        with self._lock:
            ticket.done = True
            return ticket.fired

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                _, _, ticket = heapq.heappop(self._heap)
                ticket.fired = True
                shut_down(ticket.fd)

    def after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]  # the parent's thread does not exist here


def shut_down(fd: int) -> None:
    """Shut the socket behind ``fd`` down for both directions, without closing ``fd``."""
    try:
        dup = os.dup(fd)
    except OSError:
        return
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


_watchdog = _Watchdog()
guard = _watchdog.guard
release = _watchdog.release

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watchdog.after_fork)
