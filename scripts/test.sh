#!/usr/bin/env bash
# The whole test suite: set up what is missing, lint, type-check, then every test tier
# (unit, Hypothesis state machines, stress, integration against MariaDB and PostgreSQL)
# and a smoke run of the benchmark script. Under CI=true a missing server fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "[test] ruff"; .venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
echo "[test] mypy"; .venv/bin/mypy
echo "[test] pytest"; .venv/bin/pytest "$@"
echo "[test] benchmark smoke run"; .venv/bin/python benchmarks/bench_pool.py --smoke >/dev/null
