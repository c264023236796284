"""The pools ``poolwarden size`` measures with: one per pool size, opened (warmed up)
before its first run and kept open across the rounds, so that each round times requests,
not connects; least recently used pools are closed when the server's connection limit
would not let all of them stay open."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from .._sync._pool import Pool
from ..errors import PoolTimeout
from .errors import driver_message
from .server_settings import ServerFacts
from .target import Target
from .workload import statement_limit

__all__ = ["MAX_CONNECTING", "WarmPools", "connection_cap"]

#: Connects a warm-up runs at the same time: enough to open a large pool quickly, few
#: enough not to swamp the server with handshakes.
MAX_CONNECTING = 16


def connection_cap(facts: ServerFacts) -> int:
    """Connections the measuring pools may hold together: what the server, the account
    and the database still accept (the connections open when the facts were read, less
    the one that read them, are someone else's)."""
    others = max(0, facts.connected - 1)
    limits = [facts.available_connections - others, facts.user_limit, facts.database_limit]
    return max(1, min(limit for limit in limits if limit is not None))


class WarmPools:
    """Open pools by size, at most ``cap`` connections in all."""

    def __init__(self, target: Target, facts: ServerFacts, cap: int, statement_seconds: float):
        self.target, self.facts, self.cap = target, facts, cap
        #: Each session's statement time limit: a run's fair share of the time.
        self.statement_seconds = statement_seconds
        self._open: OrderedDict[int, Pool] = OrderedDict()
        #: Why a pool could not be opened before the rounds: not tried again.
        self.failed: dict[int, str] = {}

    def open_all(self, sizes: list[int], until: float) -> None:
        """Open and warm up the pools of ``sizes`` that fit under the cap together,
        smallest first, before ``until``. A pool the server refused is not tried again;
        one that ran out of time (a busy machine) is, at its first run."""
        fitting: list[int] = []
        for size in sorted(sizes):
            if sum(fitting) + size <= self.cap:
                fitting.append(size)
        for size in fitting:
            problem = self._open_pool(size, until)
            if isinstance(problem, str) and " failed: " in problem:
                self.failed[size] = problem

    def get(self, size: int, until: float) -> Pool | str:
        """The open pool of ``size`` connections, warmed up before ``until`` (a
        ``time.perf_counter()`` value) if it was not open; why not, if it cannot be."""
        if size in self.failed:
            return self.failed[size]
        if size in self._open:
            self._open.move_to_end(size)
            return self._open[size]
        while self._open and sum(self._open) + size > self.cap:
            self._open.popitem(last=False)[1].close()
        return self._open_pool(size, until)

    def _open_pool(self, size: int, until: float) -> Pool | str:
        pool = Pool(
            self.target.text,
            pool_size=size,
            max_overflow=0,
            timeout=self.statement_seconds,
            max_connecting=min(size, MAX_CONNECTING),
            connect_args=self.target.connect_args(),
            configure=statement_limit(self.facts, self.statement_seconds),
            # A pool waits idle while the others are measured: a ping at its next
            # checkouts would be timed as the workload.
            ping_after_idle=None,
            name=str(self.target),
        )
        problem = _warm_up(pool, size, until)
        if problem is not None:
            pool.close()
            return problem
        self._open[size] = pool
        return pool

    def close(self) -> None:
        """Close every pool."""
        while self._open:
            self._open.popitem()[1].close()


def _warm_up(pool: Pool, size: int, until: float) -> str | None:
    """Open the pool's ``size`` connections before ``until``; why not, if not.

    Each connection is checked out by a thread of its own and all are held until every
    one is open: checkouts one after another would take a connect's time ``size`` times
    over, and a connection given back early would be reused instead of a new one opened.
    """
    bound = max(0.01, until - time.perf_counter())
    outcomes: list[Any] = [None] * size

    def take(n: int) -> None:
        try:
            outcomes[n] = pool.getconn(timeout=max(0.01, until - time.perf_counter()))
        except Exception as exc:
            outcomes[n] = exc

    threads = [
        threading.Thread(target=take, args=(n,), name=f"poolwarden-warm-up-{n}", daemon=True)
        for n in range(size)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, until - time.perf_counter()) + 0.1)
    opened = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for conn in opened:
        if conn is not None:
            conn.close()
    failure = next((f for f in failures if not isinstance(f, PoolTimeout)), None)
    failure = failure or next((f.__cause__ for f in failures if f.__cause__), None)
    if failure is None and (failures or None in opened):
        # Out of time with checkouts still waiting (a slow machine): a refused connect
        # meanwhile says more than the time. The pool is this run's own.
        failure = pool.engine.last_connect_error
    if failure is not None:  # the connects failed: say what the server said
        return f"opening its {size} connection(s) failed: {driver_message(failure)}"
    if failures or None in opened:
        return (
            f"opening its {size} connection(s) took longer than the {bound:.2f} s its "
            f"warm-up may take ({len(opened) - opened.count(None)} opened): give a longer "
            "--duration"
        )
    return None
