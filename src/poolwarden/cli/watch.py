"""``poolwarden watch``: a live view of running applications' pools, from the Prometheus
endpoint each serves (``poolwarden.metrics.PrometheusCollector``)."""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import CommandError, passwords_in
from .options import State, debug_option
from .scrape import Endpoint, ScrapeError, normalize, parse_endpoint
from .watch_live import clock, fetch_all, names, no_pools, run_live
from .watch_rows import PoolRow, pool_rows
from .watch_table import print_view, watch_view

__all__ = ["watch_command"]


def _check_interval(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not 0.1 <= value <= 3600:  # also refuses nan
        raise click.BadParameter(
            f"{value:g}: expected the seconds between refreshes, from 0.1 to 3600 (e.g. 2 or 0.5)"
        )
    return value


@click.command(
    "watch",
    epilog="Examples:\n\n\b\n"
    "  poolwarden watch http://127.0.0.1:8000/metrics\n"
    "  poolwarden watch web-1:8000 web-2:8000 --interval 5\n"
    "  poolwarden watch 127.0.0.1:8000 --once --json",
)
@click.argument("endpoints", metavar="ENDPOINT...", nargs=-1, required=True)
@click.option(
    "--once",
    is_flag=True,
    help="Fetch once, print the table and exit; latencies and events are totals since the "
    "pools started.",
)
@click.option(
    "--interval",
    type=float,
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    callback=_check_interval,
    help="Seconds between refreshes of the live view (0.1 to 3600).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="With --once: print a JSON list, one object per pool (keys below), instead of the table.",
)
@debug_option
@click.pass_obj
def watch_command(
    state: State, endpoints: tuple[str, ...], once: bool, interval: float, as_json: bool
) -> int:
    """Show the connection pools of running applications, live.

    ENDPOINT is the URL of an application's Prometheus metrics page, where it registers
    poolwarden.metrics.PrometheusCollector: http://host:port/path or https://..., or
    host:port for http://host:port/metrics. A user:password@ in the URL is sent as basic
    authentication and never shown. Give several to see all their pools (then with an
    endpoint column).

    One row per pool: used/idle/max connections (max is ∞ with no limit), pending
    checkouts waiting for one, the wait for a connection and the time it was held (use)
    at p50 and p99, estimated from the histogram buckets as Prometheus's
    histogram_quantile does ("—": no checkout; "≤0.1 ms": within the first bucket, where
    checkouts that found a connection idle are counted), the timeouts since the pool started, and
    the events: timeouts, dead connections caught (by the socket probe or a ping),
    replaced, lost, leaks, invalidations and failed connects. Live, latencies and events
    cover the last refresh's window (the first frame: since the pools started); an
    endpoint that fails shows its error and is tried again at every refresh. Ctrl-C stops.

    \b
    --once --json prints a list of objects with the keys: endpoint, pool, used, idle,
    max, pending, timeouts, checkouts (null when not exported), wait_p50_seconds,
    wait_p99_seconds, use_p50_seconds, use_p99_seconds (null without samples),
    window ("total"), and events: {timeouts, dead_probe, dead_ping, replaced, lost,
    leaks, invalidations, create_errors}, totals since the pools started.

    Exit status: 0, or 2 if an endpoint cannot be read or serves no pool (with --once),
    or the arguments are wrong.
    """
    if as_json and not once:
        raise click.UsageError("--json goes with --once: the live view is a table")
    parsed = []
    for text in endpoints:
        state.secrets |= passwords_in(normalize(text))  # before any message can show it
        try:
            parsed.append(parse_endpoint(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'ENDPOINT'") from None
    try:
        import prometheus_client.parser  # noqa: F401
    except ModuleNotFoundError:
        raise CommandError(
            "watch needs prometheus_client, which is not installed: pip install 'poolwarden[cli]'"
        ) from None
    if once:
        return _once(state, parsed, as_json)
    return run_live(state.console(), parsed, interval)


def _once(state: State, endpoints: list[Endpoint], as_json: bool) -> int:
    rows: list[PoolRow] = []
    for endpoint, result in zip(endpoints, fetch_all(endpoints), strict=True):
        if isinstance(result, ScrapeError):
            raise CommandError(str(result))
        if not result:
            raise CommandError(no_pools(endpoint))
        rows.extend(pool_rows(endpoint.shown, result, None))
    if as_json:
        data: list[dict[str, Any]] = [row.as_json() for row in rows]
        click.echo(state.redact(json.dumps(data, indent=2)))
        return 0
    heading = f"{names(endpoints)} at {clock()}: latencies and events since the pools started"
    print_view(state.console(), watch_view(rows, [], heading, "total", len(endpoints) > 1))
    return 0
