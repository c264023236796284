#!/usr/bin/env bash
# The whole test suite: set up what is missing, lint, type-check, check that the sync
# modules generated from the asyncio sources are current, then every test tier
# (unit and Hypothesis state machines, stress, integration against MariaDB and PostgreSQL,
# fault injection on disposable servers, SQLAlchemy on 2.1 and 2.0 (and SQLAlchemy's own
# test suites run against WardenPool), the example services, the packaging, the poolwarden
# command against both servers, its HTML report in headless Chromium) and smoke runs of
# the benchmark scripts. Under CI=true a missing server fails the run. Arguments go to
# pytest (then it runs once, over what they select).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
# The servers' addresses: as configured, or poolwarden's own (scripts/setup.sh).
set -a; source .poolwarden/servers.env; set +a
logs=.poolwarden/logs
mkdir -p "$logs"

# SQLAlchemy 2.0's virtualenv is made meanwhile: mostly downloads and copies.
./scripts/test-sqlalchemy20.sh --prepare > "$logs/sqlalchemy20-venv.log" 2>&1 &
venv20=$!

echo "[test] ruff"; .venv/bin/ruff check src tests benchmarks examples tools
.venv/bin/ruff format --check src tests benchmarks examples tools
echo "[test] generated sync modules are current"; .venv/bin/python tools/async_to_sync.py --check
echo "[test] mypy"; .venv/bin/mypy
if [ "$#" -gt 0 ]; then
    echo "[test] pytest $*"; .venv/bin/pytest "$@"
else
    # The fault tests run on servers of their own and mostly wait (timeouts, restarts):
    # beside the rest, in a process of their own, they cost the run no time.
    echo "[test] pytest (tests/faults and tests/proxies beside the rest; their output follows)"
    faults_tmp="$(mktemp -d)"
    .venv/bin/pytest tests/faults tests/proxies --basetemp="$faults_tmp" -p no:cacheprovider \
        > "$logs/faults.log" 2>&1 &
    faults=$!
    status=0
    .venv/bin/pytest --ignore=tests/faults --ignore=tests/proxies || status=$?
    faults_status=0
    wait "$faults" || faults_status=$?
    rm -rf "$faults_tmp"
    echo "[test] pytest tests/faults tests/proxies"; cat "$logs/faults.log"
    [ "$status" -eq 0 ] && [ "$faults_status" -eq 0 ]
fi
echo "[test] SQLAlchemy's own tests, with QueuePool and with WardenPool"
.venv/bin/python -m tests.sqlalchemy_suite.run pool mariadb postgresql
echo "[test] WardenPool on SQLAlchemy 2.0"
wait "$venv20" || { cat "$logs/sqlalchemy20-venv.log"; exit 1; }
./scripts/test-sqlalchemy20.sh
echo "[test] benchmark smoke runs"
.venv/bin/python benchmarks/bench_pool.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_requests.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_async.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_instructions.py --smoke >/dev/null
.venv/bin/python benchmarks/bench_metrics.py --smoke >/dev/null
