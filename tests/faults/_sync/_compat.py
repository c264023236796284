"""The thread half of what the fault scenarios are written against (``_async/_compat.py``
is the asyncio half, with the same names; the generated scenarios here import from this
one). Written by hand: work runs concurrently in threads, and a blocking call is just
made."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import pytest

__all__ = [
    "ASYNC",
    "HANG",
    "MARKS",
    "SILENT_PATH_LIMITS",
    "Configure",
    "Started",
    "blocking",
    "bounded",
    "concurrently",
    "outcome_of",
    "sleep",
    "start",
    "until",
]

T = TypeVar("T")

#: The sync side of the generator's ``if ASYNC:`` switch (those blocks are gone here).
ASYNC = False

#: The marks every scenario module carries on this side.
MARKS: list[pytest.MarkDecorator] = []

#: Longest any helper waits for requests before declaring a hang (seconds).
HANG = 120.0

#: Driver options that bound a read on a silent network path, as a production
#: configuration should: a read timeout for the MySQL drivers, TCP keepalives and a TCP
#: user timeout for libpq (which has no read timeout).
_LIBPQ_LIMITS = (
    "keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000"
)
SILENT_PATH_LIMITS = {
    "pymysql": "read_timeout=3",
    "mysqldb": "read_timeout=3",
    "mysqlconnector": "read_timeout=3",
    "psycopg": _LIBPQ_LIMITS,
    "psycopg2": _LIBPQ_LIMITS,
}

#: A pool's ``configure`` callback on this side.
Configure = Callable[[Any], None]

sleep = time.sleep


def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking call: made as it is (the asyncio side makes it in a thread)."""
    return fn(*args, **kwargs)


def bounded(value: T, limit: float = HANG, what: str = "a request") -> T:
    """The result of a call that has already returned: a thread's own call cannot be
    bounded from inside (the drivers' timeouts and the test's timeout bound it)."""
    return value


class Started(Generic[T]):
    """Work running in a thread of its own (what :func:`start` returns)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._result: list[T] = []
        self._error: list[BaseException] = []

        def run() -> None:
            try:
                self._result.append(work())
            except BaseException as exc:
                self._error.append(exc)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self) -> T:
        if self._error:
            raise self._error[0]
        return self._result[0]


def start(work: Callable[[], T]) -> Started[T]:
    """Run ``work()`` in a thread of its own; :func:`outcome_of` collects it."""
    return Started(work)


def outcome_of(started: Started[T], limit: float = HANG) -> T:
    """What a :func:`start` thread returned, waited for at most ``limit`` s."""
    started.thread.join(limit)
    if not started.done():
        raise AssertionError(f"a request hung (still running after {limit:g} s)")
    return started.result()


def concurrently(
    works: Sequence[Callable[[], None]], limit: float = HANG, what: str = "a request"
) -> None:
    """Run every ``work()`` in concurrent threads; all must end within ``limit`` seconds."""
    threads = [threading.Thread(target=work, daemon=True) for work in works]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise AssertionError(f"{what} hung (still running after {limit:g} s)")


def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``check`` until true; return how long it took."""
    start_time = time.monotonic()
    while not check():
        if time.monotonic() - start_time > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
    return time.monotonic() - start_time
