"""A write load through a pool while the primary is switched, and what it cost.

Workers (threads, or asyncio tasks) run short write transactions (one INSERT and a commit)
in a loop through a ``write(worker, seq)`` callable and record every write's outcome with
monotonic timestamps. In the middle of the run the caller's ``switch()`` demotes the old
primary, promotes the new one and moves the address the pool connects to; the load goes on
for a while after, and :class:`LoadResult` measures the damage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["LoadResult", "Switch", "Write", "run_tasks", "run_threads"]

#: Longest the harness waits for a worker to finish once told to stop (seconds): every
#: write is bounded by the pool's checkout timeout, so a worker still busy then hangs.
HANG = 30.0
#: Longest the warm-up waits for every worker's first successful write (seconds).
WARM_UP = 15.0


@dataclass(frozen=True)
class Write:
    """One write attempt: which worker, its sequence number, when it started and ended
    (``time.monotonic()``), and the error it raised (``None``: it committed)."""

    worker: int
    seq: int
    start: float
    end: float
    error: str | None = None
    #: The exception's notes (``add_note``), where a pool explains a failure.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Switch:
    """When the switch happened (``time.monotonic()``).

    ``started``: the demotion of the old primary was issued; ``switched``: the new primary
    accepts writes and the pool's address leads to it (no pool can succeed earlier).
    """

    started: float
    switched: float

    @property
    def duration(self) -> float:
        """How long the switch itself took."""
        return self.switched - self.started


@dataclass
class LoadResult:
    """Every write of a run and the switch in its middle.

    ``concurrency`` is the most writes that can be in flight at once: the workers, or the
    pool's connections if fewer.
    """

    writes: list[Write]
    switch: Switch
    concurrency: int
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.writes.sort(key=lambda w: w.start)
        self.errors = Counter(w.error for w in self.writes if w.error is not None)

    @property
    def failed_before(self) -> list[Write]:
        """Writes that failed before the switch began (a broken set-up: should be none)."""
        return [w for w in self.writes if w.error is not None and w.end < self.switch.started]

    @property
    def failed(self) -> list[Write]:
        """Writes that failed after the switch began."""
        return [w for w in self.writes if w.error is not None and w.end >= self.switch.started]

    @property
    def in_flight(self) -> int:
        """Writes in flight at the switch: those under way at the moment the first failed
        write after the switch ended (that write included), i.e. when the switch first
        became visible to anyone.

        The demotion takes effect at some point inside the statement making it, which
        the harness cannot see; the first failure is the first sign of it. Writes under
        way then were sent on connections to the old primary before any client or pool
        could know, so they may fail whatever the pool does; a pool that reacts to the
        first read-only error fails no write that starts later. Without a failure: the
        writes under way when the switch began. A worker has one write at a time, so
        this is at most the number of workers.
        """
        failed = self.failed
        moment = min(w.end for w in failed) if failed else self.switch.started
        return sum(1 for w in self.writes if w.start <= moment <= w.end)

    @property
    def recovery(self) -> float | None:
        """Time to recover, from ``switch.switched`` (the new primary reachable) to the
        end of the first successful write after which no write failed; ``None`` if the
        run ended without such a write (still failing at the end).
        """
        settled = max([self.switch.switched, *(w.end for w in self.failed)])
        later = [w.end for w in self.writes if w.error is None and w.end >= settled]
        return min(later) - self.switch.switched if later else None

    @property
    def succeeded(self) -> set[tuple[int, int]]:
        """The (worker, seq) of every write that committed."""
        return {(w.worker, w.seq) for w in self.writes if w.error is None}

    def describe(self) -> str:
        """A few lines for an assertion message: counts, timings, the errors seen."""
        recovery = "never" if self.recovery is None else f"{self.recovery:.3f} s"
        lines = [
            f"{len(self.writes)} writes, {len(self.failed)} failed after the switch "
            f"({len(self.failed_before)} before), {self.in_flight} in flight at it, "
            f"switch took {self.switch.duration:.3f} s, recovery {recovery}",
        ]
        lines += [f"  {count} x {error}" for error, count in self.errors.most_common(5)]
        notes = {note for w in self.failed for note in w.notes}
        lines += [f"  note: {note}" for note in sorted(notes)[:3]]
        return "\n".join(lines)


def _outcome(worker: int, seq: int, start: float, exc: BaseException | None) -> Write:
    if exc is None:
        return Write(worker, seq, start, time.monotonic())
    # The text, not the exception: a traceback would keep the connections it went
    # through alive until the run's results are dropped.
    # The first line: SQLAlchemy's wrapper adds the statement and parameters below it.
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    # The driver's error's notes too when a wrapper (SQLAlchemy's) raised from it.
    notes = tuple(getattr(exc, "__notes__", ())) + tuple(getattr(exc.__cause__, "__notes__", ()))
    return Write(worker, seq, start, time.monotonic(), text, notes)


def run_threads(
    write: Callable[[int, int], object],
    switch: Callable[[], Switch],
    workers: int = 4,
    concurrency: int | None = None,
    before: float = 0.5,
    after: float = 3.0,
    pause: float = 0.005,
) -> LoadResult:
    """``workers`` threads call ``write(worker, seq)`` in a loop, ``pause`` seconds apart;
    once each has written once and ``before`` more seconds passed, ``switch()`` runs in
    this thread, and the load goes on ``after`` seconds more."""
    stop = threading.Event()
    writes: list[Write] = []  # list.append is atomic: the threads share it unlocked

    def loop(worker: int) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            start = time.monotonic()
            try:
                write(worker, seq)
            except Exception as exc:
                writes.append(_outcome(worker, seq, start, exc))
            else:
                writes.append(_outcome(worker, seq, start, None))
            stop.wait(pause)

    threads = [
        threading.Thread(target=loop, args=(n,), name=f"writer-{n}") for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        _warm_up(lambda: writes, workers)
        time.sleep(before)
        happened = switch()
        time.sleep(after)
    finally:
        stop.set()
        for thread in threads:
            thread.join(HANG)
    assert not any(t.is_alive() for t in threads), f"a write hung for over {HANG:g} s"
    return LoadResult(list(writes), happened, min(workers, concurrency or workers))


async def run_tasks(
    write: Callable[[int, int], Awaitable[object]],
    switch: Callable[[], Switch],
    workers: int = 8,
    concurrency: int | None = None,
    before: float = 0.5,
    after: float = 3.0,
    pause: float = 0.005,
) -> LoadResult:
    """:func:`run_threads` with asyncio tasks; ``switch()`` (blocking: it runs the
    servers' tools) runs in a thread so that the event loop, and the load, go on."""
    stop = asyncio.Event()
    writes: list[Write] = []

    async def loop(worker: int) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            start = time.monotonic()
            try:
                await write(worker, seq)
            except Exception as exc:
                writes.append(_outcome(worker, seq, start, exc))
            else:
                writes.append(_outcome(worker, seq, start, None))
            await asyncio.sleep(pause)

    tasks = [asyncio.create_task(loop(n), name=f"writer-{n}") for n in range(workers)]
    try:
        deadline = time.monotonic() + WARM_UP
        while not _all_wrote(writes, workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        _check_warm(writes, workers)
        await asyncio.sleep(before)
        happened = await asyncio.to_thread(switch)
        await asyncio.sleep(after)
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=HANG)
        for task in pending:
            task.cancel()
    assert not pending, f"a write hung for over {HANG:g} s"
    for task in tasks:
        task.result()  # a loop that died of something other than a write's error
    return LoadResult(list(writes), happened, min(workers, concurrency or workers))


def _all_wrote(writes: list[Write], workers: int) -> bool:
    return len({w.worker for w in writes if w.error is None}) == workers


def _check_warm(writes: list[Write], workers: int) -> None:
    assert _all_wrote(writes, workers), "the load never got going before the switch:\n" + (
        "\n".join(sorted({w.error for w in writes if w.error})[:5])
    )


def _warm_up(writes: Callable[[], list[Write]], workers: int) -> None:
    """Wait (bounded) until every worker has committed once: the switch must strike a
    pool in full use, not one still opening its connections."""
    deadline = time.monotonic() + WARM_UP
    while not _all_wrote(writes(), workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    _check_warm(writes(), workers)
