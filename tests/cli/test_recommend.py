"""``size``'s statistics and recommendation without a server: the interval of the median,
the "measurable" rule, the cells skipped, the rotated rounds, the p99 objective, and a
property test over synthetic tables that the recommendation never contradicts them."""

from __future__ import annotations

import re
from collections import Counter

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poolwarden.cli.cells import CellResult, Round
from poolwarden.cli.loadtest import schedule
from poolwarden.cli.noise import measurably_above, measurably_below, median_interval
from poolwarden.cli.objective import DurationType, ObjectiveNotMet, parse_duration
from poolwarden.cli.recommend import recommend
from poolwarden.cli.rows import usable
from poolwarden.cli.server_settings import ServerFacts
from poolwarden.cli.size_plan import Budget, plan_cells


def facts(max_connections: int = 100, user_limit: int | None = None) -> ServerFacts:
    return ServerFacts(
        kind="mysql",
        product="MariaDB 10.11.19",
        idle_timeout=600.0,
        idle_timeout_name="wait_timeout",
        global_idle_timeout=600.0,
        max_connections=max_connections,
        reserved_connections=0,
        user_limit=user_limit,
        user_limit_name="max_user_connections",
    )


def cell(size: int, clients: int, speeds: list[float], p99s: list[float] | None = None):
    """A measured cell whose rounds ran 1 s each at ``speeds`` req/s."""
    p99s = p99s or [1.0] * len(speeds)
    result = CellResult(size, clients, seconds=float(len(speeds)))
    result.rounds = [Round(1.0, int(s), 0, p) for s, p in zip(speeds, p99s, strict=True)]
    result.requests = sum(r.requests for r in result.rounds)
    result.latency_ms = {"p50": 0.5, "p95": 0.9, "p99": max(p99s)}
    result.wait_ms = {"mean": 0.0, "p99": 0.0}
    return result


def test_median_interval_is_the_order_statistic_interval() -> None:
    five = median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (five.median, five.low, five.high) == (3.0, 1.0, 5.0)
    assert five.coverage == pytest.approx(1 - 2 / 32) and not five.assumed
    # Nine rounds: the 2nd and 8th values cover the median with 96.1% (the 3rd and 7th
    # would only reach 82%).
    nine = median_interval([float(n) for n in range(1, 10)])
    assert (nine.low, nine.high) == (2.0, 8.0)
    assert nine.coverage == pytest.approx(1 - 2 * 10 / 512)
    # One or two rounds say nothing about the noise: +-5% is assumed.
    one = median_interval([100.0])
    assert (one.low, one.high, one.assumed) == (95.0, 105.0, True)
    with pytest.raises(ValueError):
        median_interval([])


def test_measurable_means_the_intervals_do_not_overlap() -> None:
    low, high = median_interval([1.0, 2.0, 3.0]), median_interval([3.5, 4.0, 5.0])
    touching = median_interval([3.0, 4.0, 5.0])
    assert measurably_below(low, high) and measurably_above(high, low)
    assert not measurably_below(low, touching) and low.overlaps(touching)


def test_the_reported_contradiction_cannot_happen() -> None:
    # The user's table: with 4 clients pool 8 measured 6,986 req/s and pool 4 5,733, and
    # the advice was pool 4 "within 5% of the peak 5,733". Pool 8 cannot give 4 clients
    # more connections than pool 4: it is skipped and named, and pool 4, measurably
    # faster than 1 and 2, is chosen on the measurements.
    cells = [
        cell(1, 4, [2000, 2100, 1900, 2050, 1950]),
        cell(2, 4, [3900, 4100, 3800, 4200, 4000]),
        cell(4, 4, [5733, 5900, 5600, 5800, 5700]),
        cell(8, 4, [6986, 5200, 6100, 5900, 6400]),
    ]
    advice = recommend(cells, facts())
    assert (advice.pool_size, advice.concurrency) == (4, 4)
    text = " ".join(advice.reasons)
    assert "within 5%" not in text
    assert "skipped, pools larger than the clients" in text and "pool_size=8 with 4" in text
    assert "pool_size=2 (4,000 req/s, CI 3,800-4,200) was measurably slower" in text


def test_no_measurable_difference_recommends_the_smallest() -> None:
    cells = [
        cell(1, 8, [900, 1100, 1000, 950, 1050]),
        cell(2, 8, [1000, 1200, 1040, 980, 1150]),
        cell(4, 8, [1080, 990, 1210, 1000, 1020]),
    ]
    advice = recommend(cells, facts())
    assert advice.pool_size == 1 and advice.matched == [2, 4]
    assert advice.reasons[0].startswith(
        "no measurable difference between pool sizes 1..4 at 8 clients"
    )


def test_fleet_budget_is_a_hard_limit() -> None:
    # 80% of 100 connections for 20 processes: 4 each. Pool 8 is skipped although it
    # is faster, and the overflow is cut to fit.
    cells = [
        cell(2, 16, [1000] * 5, [9.0] * 5),
        cell(4, 16, [2000] * 5, [5.0] * 5),
        cell(8, 16, [4000] * 5, [2.0] * 5),
    ]
    budget = Budget.of(facts(), 20)
    assert budget is not None and budget.per_process == 4
    planned = plan_cells([2, 4, 8], [16], budget)
    assert [c.skip_kind for c in planned] == ["", "", "over budget"]
    advice = recommend(cells, facts(), processes=10, instances=2)
    assert advice.pool_size == 4 and advice.pool_size + advice.max_overflow <= 4
    assert "capped by the fleet budget (20 process(es) share 80% of 100" in (
        " ".join(advice.reasons)
    )


def test_p99_objective_smallest_pool_meeting_the_target() -> None:
    cells = [
        cell(1, 32, [500] * 5, [80, 90, 85, 95, 88]),
        cell(2, 32, [900] * 5, [40, 52, 45, 47, 49]),  # its interval reaches 52 ms
        cell(4, 32, [1500] * 5, [20, 25, 22, 30, 21]),
        cell(8, 32, [1600] * 5, [10, 12, 11, 13, 12]),
        cell(1, 4, [500] * 5, [1, 2, 1, 2, 1]),  # fewer clients do not decide
    ]
    advice = recommend(cells, facts(), p99_target=0.050)
    assert (advice.pool_size, advice.concurrency, advice.max_overflow) == (4, 32, 0)
    assert advice.objective == "p99 <= 50 ms at 32 clients"
    assert "pool_size=2 did not (p99 47.00 ms, CI 40.00-52.00" in advice.reasons[0]
    with pytest.raises(ObjectiveNotMet, match=r"the best was pool_size=8 with p99 12\.00 ms"):
        recommend(cells, facts(), p99_target=0.005)


def test_duration_option() -> None:
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("0.2 s") == pytest.approx(0.2)
    assert parse_duration("800us") == pytest.approx(0.0008)
    for bad in ("50", "ms", "-3ms", "0ms", "5 minutes", ""):
        with pytest.raises(click.BadParameter, match=r"e\.g\. 50ms"):
            DurationType().convert(bad, None, None)


def test_rounds_are_rotated() -> None:
    grid = [(1, 4), (2, 4), (4, 4), (1, 16)]
    order = schedule(grid, 100.0, rounds=4)
    assert Counter(order) == {cell: 4 for cell in grid}
    rounds = [order[n : n + 4] for n in range(0, 16, 4)]
    assert rounds[1] == rounds[0][::-1]  # a pair: forwards, then backwards
    assert rounds[2] == [(4, 4), (1, 16), (1, 4), (2, 4)]  # the next pair starts further on
    # No cell always comes first or last.
    assert len({r[0] for r in rounds}) > 1 and len({r[-1] for r in rounds}) > 1
    assert schedule(grid, 2.0, rounds=5) == grid + grid[::-1]  # what 2 s allows


speeds = st.lists(st.floats(100, 10_000), min_size=1, max_size=6)
latencies = st.floats(0.1, 100.0)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[CellResult], int, int]:
    """A synthetic table: cells measured (1 to 6 rounds), not measured or skipped."""
    sizes = draw(st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=1, max_size=5, unique=True))
    counts = draw(st.lists(st.sampled_from([1, 2, 4, 8, 16, 32]), min_size=1, max_size=3,
                           unique=True))  # fmt: skip
    cells = []
    for clients in counts:
        for size in sizes:
            kind = draw(st.sampled_from(["measured"] * 4 + ["not measured", "skipped"]))
            if kind == "measured":
                rounds = draw(speeds)
                p99s = draw(st.lists(latencies, min_size=len(rounds), max_size=len(rounds)))
                cells.append(cell(size, clients, rounds, p99s))
            elif kind == "skipped":
                skipped = CellResult(size, clients, skipped="a reason", skip_kind="over budget")
                cells.append(skipped)
            else:
                cells.append(CellResult(size, clients, not_measured="connect refused"))
    return cells, draw(st.integers(5, 300)), draw(st.integers(1, 8))


def named(reasons: list[str]) -> set[tuple[int, int]]:
    """The cells the "left out" reasons name."""
    found = set()
    for line in reasons:
        if line.startswith(("skipped", "capped", "not measured")):
            for sizes, count in re.findall(r"pool_size=([0-9, ]+) with ([0-9]+) client", line):
                found |= {(int(size), int(count)) for size in sizes.split(",")}
    return found


@settings(max_examples=300, deadline=None)
@given(tables(), st.one_of(st.none(), st.floats(0.5, 120.0)))
def test_recommendation_never_contradicts_the_table(
    table: tuple[list[CellResult], int, int], target_ms: float | None
) -> None:
    cells, max_connections, processes = table
    server = facts(max_connections)
    budget = Budget.of(server, processes)
    assert budget is not None
    kept, out = usable(cells, budget)
    target = None if target_ms is None else target_ms / 1000
    try:
        advice = recommend(cells, server, processes, p99_target=target)
    except ValueError:
        assert not kept  # nothing could be recommended from
        return
    except ObjectiveNotMet as exc:
        expected = max(c.concurrency for c in cells)
        assert target_ms is not None
        assert not any(
            c.concurrency == expected and c.p99_interval().high <= target_ms for c in kept
        )
        assert "the best was pool_size=" in str(exc) or "nothing was measured" in str(exc)
        return
    chosen = next(c for c in kept if (c.pool_size, c.concurrency) == (
        advice.pool_size, advice.concurrency))  # fmt: skip
    row = [c for c in kept if c.concurrency == advice.concurrency]
    # Never a skipped cell, never over the fleet budget.
    left = {(c.pool_size, c.concurrency) for group in out.values() for c in group}
    assert (advice.pool_size, advice.concurrency) not in left
    assert advice.pool_size + advice.max_overflow <= budget.per_process
    # Every cell left out is named, and none of those it recommends.
    assert left <= named(advice.reasons)
    assert advice.reasons[0].startswith(
        (f"pool_size={advice.pool_size}:", "no measurable difference")
    )
    if target_ms is None:
        # No cell of its row beats it measurably, least of all one it claims to match.
        speed = chosen.throughput_interval()
        assert not any(measurably_below(speed, c.throughput_interval()) for c in row)
        for size in advice.matched:
            match = next(c for c in row if c.pool_size == size)
            assert speed.overlaps(match.throughput_interval())
        if advice.reasons[0].startswith("no measurable difference"):
            assert all(a.throughput_interval().overlaps(b.throughput_interval())
                       for a in row for b in row)  # fmt: skip
            assert advice.pool_size == min(c.pool_size for c in row)
    else:
        assert advice.concurrency == max(c.concurrency for c in cells)
        assert chosen.p99_interval().high <= target_ms
        assert not any(
            c.pool_size < chosen.pool_size and c.p99_interval().high <= target_ms for c in row
        )
