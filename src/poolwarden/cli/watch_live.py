"""Fetching every endpoint at once, and the live view that does it at each refresh."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live

from .scrape import Endpoint, PoolSample, ScrapeError, scrape
from .watch_rows import pool_rows
from .watch_table import print_view, watch_view

__all__ = ["FETCH_TIMEOUT", "clock", "fetch_all", "names", "no_pools", "run_live"]

#: Seconds a fetch may take, connecting and reading the page.
FETCH_TIMEOUT = 5.0

Result = dict[str, PoolSample] | ScrapeError


def fetch_all(endpoints: list[Endpoint]) -> list[Result]:
    """Scrape every endpoint at once (each within :data:`FETCH_TIMEOUT`): its pools or
    its error, in order."""
    results: list[Result] = [ScrapeError(f"{e.shown}: not fetched") for e in endpoints]

    def fetch(i: int) -> None:
        try:
            results[i] = scrape(endpoints[i], FETCH_TIMEOUT)
        except ScrapeError as exc:
            results[i] = exc
        except Exception as exc:  # a bug here must not end the live view
            results[i] = ScrapeError(f"{endpoints[i].shown}: {type(exc).__name__}: {exc}")

    if len(endpoints) == 1:
        fetch(0)
        return results
    # Daemon threads: after Ctrl-C the process must not wait for a slow endpoint.
    threads = [
        threading.Thread(target=fetch, args=(i,), daemon=True) for i in range(len(endpoints))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def no_pools(endpoint: Endpoint) -> str:
    """The error for a page without any pool."""
    return (
        f"{endpoint.shown} serves no poolwarden pool metrics (no db_client_connection_* "
        "samples with a db_client_connection_pool_name label): does the application "
        "register poolwarden.metrics.PrometheusCollector there?"
    )


def names(endpoints: list[Endpoint]) -> str:
    """The endpoints as shown (masked), comma-separated."""
    return ", ".join(endpoint.shown for endpoint in endpoints)


def clock() -> str:
    """The local time, to the second."""
    return datetime.now().strftime("%H:%M:%S")


def run_live(console: Console, endpoints: list[Endpoint], interval: float) -> int:
    """Show the pools of ``endpoints`` on ``console``, refreshed every ``interval``
    seconds until Ctrl-C (then return 0): in place on a terminal, else frame after frame.
    """
    previous: dict[Endpoint, dict[str, PoolSample]] = {}

    def frame() -> Group:
        rows, errors = [], []
        for endpoint, result in zip(endpoints, fetch_all(endpoints), strict=True):
            if isinstance(result, ScrapeError):
                errors.append(f"{result} (trying again every {interval:g} s)")
                previous.pop(endpoint, None)  # its next window starts afresh
                continue
            if not result:
                errors.append(no_pools(endpoint))
            rows.extend(pool_rows(endpoint.shown, result, previous.get(endpoint)))
            previous[endpoint] = result
        fresh = all(row.window == "total" for row in rows)
        since = "the pools started" if fresh else "the previous refresh"
        heading = (
            f"{names(endpoints)} at {clock()}, every {interval:g} s (Ctrl-C to stop): "
            f"latencies and events since {since}"
        )
        return watch_view(rows, errors, heading, f"last {interval:g} s", len(endpoints) > 1)

    try:
        if console.is_terminal:
            with Live(frame(), console=console, auto_refresh=False) as live:
                for _ in _ticks(interval):
                    live.update(frame(), refresh=True)
        else:
            # Not a terminal (a pipe, a log file): Live would print only the last frame;
            # print each one instead.
            print_view(console, frame())
            for _ in _ticks(interval):
                console.file.write("\n")
                print_view(console, frame())
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a live view ends
    return 0


def _ticks(interval: float) -> Iterator[None]:
    """Sleep to each next multiple of ``interval`` (skipping those already past)."""
    due = time.monotonic()
    while True:
        due += interval
        delay = due - time.monotonic()
        if delay < 0:
            due = time.monotonic()
        else:
            time.sleep(delay)
        yield
