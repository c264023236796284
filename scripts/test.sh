#!/usr/bin/env bash
# The whole test suite: set up what is missing, lint, type-check, check that the sync
# modules generated from the asyncio sources are current, then every test tier
# (unit and Hypothesis state machines, stress, integration against MariaDB and PostgreSQL,
# fault injection on disposable servers, SQLAlchemy on 2.1 and 2.0 (and SQLAlchemy's own
# test suites run against WardenPool), the example services,
# the poolwarden command against both servers, its HTML report in headless Chromium) and
# smoke runs of the benchmark scripts. Under CI=true a missing server fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
# The servers' addresses: as configured, or poolwarden's own (scripts/setup.sh).
set -a; source .poolwarden/servers.env; set +a
echo "[test] ruff"; .venv/bin/ruff check src tests benchmarks examples tools
.venv/bin/ruff format --check src tests benchmarks examples tools
echo "[test] generated sync modules are current"; .venv/bin/python tools/async_to_sync.py --check
echo "[test] mypy"; .venv/bin/mypy
echo "[test] pytest"; .venv/bin/pytest "$@"
echo "[test] SQLAlchemy's own tests, with QueuePool and with WardenPool"
.venv/bin/python -m tests.sqlalchemy_suite.run pool mariadb postgresql
echo "[test] WardenPool on SQLAlchemy 2.0"; ./scripts/test-sqlalchemy20.sh
echo "[test] benchmark smoke runs"
.venv/bin/python benchmarks/bench_pool.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_requests.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_async.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_instructions.py --smoke >/dev/null
