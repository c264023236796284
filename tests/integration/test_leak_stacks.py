"""Leak reports show the application's frames, not the event loop's and the frameworks'.

A real asyncmy connection is checked out through a few layers of application code inside
asyncio and anyio tasks (run under pytest: 40-odd frames of asyncio, anyio, pytest and
pluggy above them), then held past ``leak_threshold``, or dropped for the garbage collector.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from typing import Any

import anyio
import pytest

from poolwarden import AsyncPool
from poolwarden._core.callsite import FULL_STACKS_ENV, capture_stack, format_stack
from tests.conftest import reachable_url

pytestmark = pytest.mark.anyio


async def checkout_for_request(pool: AsyncPool) -> Any:
    """The application's innermost frame: where the connection is taken."""
    return await pool.getconn()


async def handle_request(pool: AsyncPool, kept: list[Any]) -> None:
    """An application handler that keeps its connection (the leak)."""
    kept.append(await checkout_for_request(pool))


async def serve(pool: AsyncPool, kept: list[Any]) -> None:
    # A framework would run the handler in a task of its own, under a task group.
    async with anyio.create_task_group() as group:
        group.start_soon(handle_request, pool, kept)


async def report_of(caplog: pytest.LogCaptureFixture, words: str) -> str:
    """The first poolwarden log message containing ``words`` (waiting up to 10 s)."""
    with anyio.fail_after(10):
        while True:
            for record in caplog.records:
                if words in record.getMessage():
                    return record.getMessage()
            await asyncio.sleep(0.05)


def frames_of(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith('  File "')]


async def leak_report(caplog: pytest.LogCaptureFixture, words: str, drop: bool) -> str:
    url = reachable_url("mysql+asyncmy")
    kept: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        async with AsyncPool(url, pool_size=1, leak_threshold=0.2) as pool:
            await serve(pool, kept)
            if drop:
                kept.clear()
                gc.collect()
            report = await report_of(caplog, words)
            for conn in kept:
                await conn.close()
    caplog.clear()
    return report


@pytest.mark.parametrize(
    ("drop", "words"), [(False, "not returned yet"), (True, "garbage-collected")]
)
async def test_report_shows_the_application_frames(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, drop: bool, words: str
) -> None:
    monkeypatch.delenv(FULL_STACKS_ENV, raising=False)
    report = await leak_report(caplog, words, drop)
    frames = frames_of(report)
    assert frames[-1].endswith("in checkout_for_request"), report
    assert any(line.endswith("in handle_request") for line in frames), report
    assert all(__file__ in line for line in frames), report  # nothing but the app's
    assert f"not shown; {FULL_STACKS_ENV}=1 shows them" in report
    assert "asyncio" in report.splitlines()[-1]  # counted among the frames left out


async def test_full_stack_on_request(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FULL_STACKS_ENV, "1")
    report = await leak_report(caplog, "not returned yet", drop=False)
    frames = frames_of(report)
    assert frames[-1].endswith("in checkout_for_request"), report
    assert any("asyncio" in line and "events.py" in line for line in frames), report
    assert "not shown" not in report


def test_only_framework_frames_keeps_the_innermost_few() -> None:
    """A checkout made by framework code alone still shows where, in a few frames."""
    stack = capture_stack(sys._getframe())  # this test's frame, then pytest's and pluggy's
    framework_only = stack[1:]
    text = format_stack(framework_only, full=False)
    assert len(frames_of(text)) == 5
    assert __file__ not in text and "not shown" in text
    assert len(frames_of(format_stack(framework_only, full=True))) == len(framework_only)
