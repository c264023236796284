"""A pytest plugin for SQLAlchemy's own test suite: run it against poolwarden's pools.

Loaded into a run of SQLAlchemy's tests (from its source distribution) with
``-p tests.sqlalchemy_suite.plugin``. With ``--poolwarden``, ``QueuePool`` is WardenPool and
``AsyncAdaptedQueuePool`` AsyncWardenPool wherever SQLAlchemy and its tests look them up:
``sqlalchemy.pool`` and the top-level package, from which the tests take the classes they
make and dialects the default pool class of every engine. ``--outcomes FILE`` writes each
test's outcome to FILE as JSON, for ``run.py`` to compare.
"""

from __future__ import annotations

import json

import pytest

#: Each test's outcome: "passed", "failed", "skipped", "xfailed", "xpassed" or "error" (its
#: set-up or tear-down failed). One run of pytest per process: a module-level record.
OUTCOMES: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("poolwarden")
    group.addoption(
        "--poolwarden",
        action="store_true",
        help="QueuePool is poolwarden's WardenPool, AsyncAdaptedQueuePool its AsyncWardenPool",
    )
    group.addoption("--outcomes", metavar="FILE", help="write each test's outcome here (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("poolwarden"):
        import sqlalchemy
        import sqlalchemy.pool

        from poolwarden.sqlalchemy import AsyncWardenPool, WardenPool

        for module in (sqlalchemy.pool, sqlalchemy):
            setattr(module, "QueuePool", WardenPool)  # noqa: B010 (a module's attribute)
            setattr(module, "AsyncAdaptedQueuePool", AsyncWardenPool)  # noqa: B010


#: Parametrised tests name the pool classes in their ids; the outcomes name them as the
#: run without the substitution does, so that the two runs' ids match.
_ORIGINAL_NAMES = (("AsyncWardenPool", "AsyncAdaptedQueuePool"), ("WardenPool", "QueuePool"))


def _test_id(nodeid: str) -> str:
    name, bracket, params = nodeid.partition("[")
    for ours, theirs in _ORIGINAL_NAMES:
        params = params.replace(ours, theirs)
    return name + bracket + params


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    test_id = _test_id(report.nodeid)
    if report.when == "teardown":
        if report.failed:
            OUTCOMES[test_id] = "error"
        return
    if report.failed and report.when == "setup":
        outcome = "error"
    elif hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    else:
        outcome = report.outcome
    if report.when == "call" or outcome != "passed":  # a set-up that passed says nothing yet
        OUTCOMES[test_id] = outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("outcomes")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(OUTCOMES, out, indent=0, sort_keys=True)
