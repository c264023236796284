"""Sizing from production numbers: Little's law on ``Pool.stats()`` dumps, with known
numbers, and on the stats of a real pool run against MariaDB (``size --from-stats`` and
``doctor --stats``)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from poolwarden import Pool
from poolwarden.cli.errors import CommandError
from poolwarden.cli.findings import PoolPlan, Severity
from poolwarden.cli.littles_law import load_stats, lognormal_mean, poisson_quantile, size
from poolwarden.cli.stats_sizing import stats_finding
from tests.cli.conftest import Cli, one_error_line


def stats(checkouts: int, p50: float, p99: float, **extra: Any) -> dict[str, Any]:
    """The parts of ``pool.stats().as_dict()`` Little's law reads."""
    return {
        "pool_size": 5, "max_overflow": 10, "peak_in_use": 7, "checkouts": checkouts,
        "timeouts": extra.pop("timeouts", 0),
        "hold_time": {"count": checkouts, "p50": p50, "p99": p99, "max": p99, **extra},
        "wait_time": {"count": checkouts, "p50": 0.0, "p99": 0.0, "max": 0.0},
    }  # fmt: skip


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_poisson_quantile_and_lognormal_mean() -> None:
    # P(Poisson(10) <= 17) = 0.9857, <= 18: 0.9928.
    assert poisson_quantile(10.0) == 18
    assert poisson_quantile(2.0) == 6 and poisson_quantile(1.1) == 4
    assert poisson_quantile(0.0) == 0
    assert poisson_quantile(10_000.0) == 10_234  # normal approximation: 10000 + 2.326 * 100
    assert lognormal_mean(0.002, 0.002) == 0.002
    # sigma = ln(10) / 2.326 = 0.98976: mean = p50 * exp(0.4898) = 1.632 * p50
    assert lognormal_mean(0.001, 0.010) == pytest.approx(0.0016320, rel=1e-4)
    assert lognormal_mean(0.0, 0.004) == 0.004  # no median to fit: the safe side


def test_littles_law_with_known_numbers(tmp_path: Path) -> None:
    # 6,000 checkouts in 60 s, each held 20 ms on average: 100/s x 0.02 s = 2 busy; the
    # 99th percentile of Poisson(2) is 6.
    two = [{"at": 1000.0, "stats": stats(1000, 0.01, 0.05)},
           {"at": 1060.0, "stats": stats(7000, 0.01, 0.05, mean=0.02)}]  # fmt: skip
    sizing = size(load_stats(write(tmp_path, two), "--from-stats"))
    assert sizing.arrival_rate == pytest.approx(100.0)
    assert (sizing.mean_hold, sizing.mean_estimated) == (0.02, False)
    assert sizing.busy == pytest.approx(2.0) and sizing.needed == 6
    assert sizing.window.how == "2 snapshots 60.0 s apart" and not sizing.saturated
    # One snapshot with the seconds its counters cover; the mean estimated from p50/p99.
    one = {"seconds": 100.0, "stats": stats(5000, 0.001, 0.010, timeouts=2)}
    sizing = size(load_stats(write(tmp_path, one), "--stats"))
    assert sizing.mean_estimated and sizing.busy == pytest.approx(50 * 0.001632, rel=1e-3)
    assert sizing.needed == 1 and sizing.saturated  # timeouts: the need is a lower bound
    assert sizing.summary().startswith("at least 1 connection(s): 50.0 checkouts/s")
    finding = stats_finding(sizing, PoolPlan(pool_size=5, max_overflow=0, sources={}), "f")
    assert finding.severity is Severity.WARNING and "timeout" in finding.title


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (stats(10, 0.1, 0.2), "a bare stats() snapshot counts checkouts but not over how long"),
        ([{"at": 1.0, "stats": stats(1, 0.1, 0.2)}], "a list needs two snapshots or more"),
        ([{"at": 5.0, "stats": stats(1, 0.1, 0.2)}, {"at": 5.0, "stats": stats(9, 0.1, 0.2)}],
         "the last snapshot is not later than the first"),
        ([{"at": 1.0, "stats": stats(9, 0.1, 0.2)}, {"at": 5.0, "stats": stats(1, 0.1, 0.2)}],
         "the counters went down"),
        ({"seconds": 10, "stats": stats(0, 0.1, 0.2)}, "no checkout in the window"),
        ({"seconds": 10, "stats": {**stats(5, 0.1, 0.2), "checkouts": "x"}},
         "stats.checkouts must be a whole number >= 0, not 'x'"),
        ([1, 2], "snapshot 1 must be an object"),
    ],
)  # fmt: skip
def test_stats_files_that_do_not_fit(tmp_path: Path, data: Any, message: str) -> None:
    with pytest.raises(CommandError, match=r"^--from-stats: .* is not a pool\.stats") as caught:
        load_stats(write(tmp_path, data), "--from-stats")
    assert message in str(caught.value)


def test_unreadable_stats_files(cli: Cli, tmp_path: Path) -> None:
    missing = one_error_line(cli("size", "--from-stats", str(tmp_path / "none.json")))
    assert missing == f"poolwarden: --from-stats: no such file '{tmp_path / 'none.json'}'"
    (tmp_path / "bad.json").write_text("{not json")
    line = one_error_line(cli("doctor", "--stats", str(tmp_path / "bad.json")))
    assert line.startswith("poolwarden: Invalid value for '--stats': ")
    assert "is not a pool.stats() dump poolwarden reads: Expecting property name" in line
    both = one_error_line(cli("size", "--from-stats", "s.json", "--query", "SELECT 1"))
    assert "--from-stats sizes from production's numbers without a load test: leave out " in (both)


def real_stats(url: str, path: Path) -> None:
    """Two snapshots of a real pool around 3 threads' checkouts, each holding its
    connection for a query of 2 ms, written as ``size --from-stats`` reads them."""
    with Pool(url, pool_size=3, max_overflow=0) as pool:

        def work(count: int) -> None:
            for _ in range(count):
                with pool.connection() as conn:
                    cursor = conn.cursor()
                    cursor.execute("SELECT SLEEP(0.002)")
                    cursor.fetchall()
                    cursor.close()

        work(3)  # connections open before the window: its waits are not connects
        first = {"at": time.time(), "stats": pool.stats().as_dict()}
        threads = [threading.Thread(target=work, args=(40,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = {"at": time.time(), "stats": pool.stats().as_dict()}
    path.write_text(json.dumps([first, last]))


def test_sizing_from_a_real_pools_stats(cli: Cli, mysql: str, tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    real_stats(mysql, path)
    sizing = size(load_stats(str(path), "--from-stats"))
    assert sizing.window.checkouts == 120 and sizing.window.pool_size == 3
    # The sleeps take 2 ms or more: so does each hold.
    assert sizing.window.hold_p50 >= 0.002 and sizing.mean_estimated
    run = cli("size", "--from-stats", str(path))
    assert run.status == 0, run.output
    assert f"recommended: pool_size={sizing.needed}" in run.out
    assert f"{sizing.arrival_rate:,.1f} checkouts/s (120 in" in run.flat
    assert sizing.summary() in run.flat
    # With the server's URL, the fleet budget caps it: 151 * 0.8 // 1000 processes is 0.
    over = cli("size", mysql, "--from-stats", str(path), "--processes", "1000")
    assert over.status == 1 and "OVER BUDGET:" in over.out and "0 each" in over.flat
    # doctor: pool_size=1 against the same arithmetic's need (how many connections the
    # threads kept busy depends on the machine's speed, the verdict on the need).
    report = cli("doctor", mysql, "--stats", str(path), "--pool-size", "1",
                 "--max-overflow", "0", "--json")  # fmt: skip
    finding = next(f for f in json.loads(report.out)["findings"] if f["check"] == "littles-law")
    assert finding["numbers"]["needed_connections"] == sizing.needed
    assert finding["numbers"]["pool_size"] == 1
    expected = "warning" if sizing.needed > 1 or sizing.saturated else "ok"
    assert finding["severity"] == expected
    assert finding["detail"].startswith(f"From {path}: {sizing.summary()}")
