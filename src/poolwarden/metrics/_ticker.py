"""One daemon thread that reads every instrumented pool about once a second.

A pool keeps its last 4,096 wait and use times in rings; a scrape every 15 s, or an
OpenTelemetry export every 60 s, would find a busy pool's rings wrapped many times over.
Reading each second keeps the histograms exact up to ~4,000 checkouts a second per pool,
and the ticker reads sooner when a ring fills faster than that. The thread runs only while
some pool is instrumented, and starts again in a forked child that instruments one.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._source import PoolMetrics

__all__ = ["TICKER", "Ticker"]

log = logging.getLogger("poolwarden.metrics")


class Ticker:
    """Reads each watched :class:`PoolMetrics` every ``interval`` seconds (sooner when
    its rings fill fast) until no watched source is left."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._sources: weakref.WeakSet[PoolMetrics] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def watch(self, source: PoolMetrics) -> None:
        """Read ``source`` from now on, starting the thread if it is not running."""
        with self._lock:
            self._sources.add(source)
            self._start()

    def ensure_running(self) -> None:
        """Start the thread again if it is gone (in a forked child): every reading calls
        this, so a child that serves scrapes gets its ticker back."""
        if self._thread is None:
            with self._lock:
                if self._sources:
                    self._start()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="poolwarden-metrics", daemon=True
            )
            self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The parent's thread is not in the child, and it may have held these locks.
        self._lock, self._wake, self._thread = threading.Lock(), threading.Event(), None
        for source in list(self._sources):
            source._lock = threading.Lock()

    def forget(self, source: PoolMetrics) -> None:
        """Stop reading ``source``."""
        with self._lock:
            self._sources.discard(source)

    def _run(self) -> None:
        delay = self.interval
        while True:
            self._wake.wait(delay)
            with self._lock:
                sources = list(self._sources)
                if not sources:
                    self._thread = None
                    return
            fill = 0.0
            for source in sources:
                try:
                    source.read()
                except Exception:  # a reading must never kill the thread for the others
                    log.exception("reading the metrics of %s failed", source.name)
                fill = max(fill, source.fill)
            # Aim to read when the fullest ring is about half full.
            delay = min(self.interval, max(0.05, delay * 0.5 / fill)) if fill else self.interval


TICKER = Ticker()
