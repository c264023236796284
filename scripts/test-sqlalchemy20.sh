#!/usr/bin/env bash
# WardenPool and AsyncWardenPool must work with SQLAlchemy 2.0 as well as 2.1: run their tests,
# and SQLAlchemy 2.0's own pool tests (tests/sqlalchemy_suite), against 2.0 in a virtualenv
# of their own (.venv-sqlalchemy20), made or refreshed when pyproject changes. With
# --prepare it only makes that virtualenv (test.sh does so while the other tiers run).
set -euo pipefail
cd "$(dirname "$0")/.."
prepare_only=false
if [ "${1:-}" = "--prepare" ]; then prepare_only=true; shift; fi
venv=.venv-sqlalchemy20
stamp="$venv/.poolwarden-installed"
want="$(cat pyproject.toml "$0" | sha256sum | cut -d' ' -f1)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[test] installing SQLAlchemy 2.0 into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q \
        -e '.[pymysql,mysqlclient,mysql-connector,psycopg,psycopg2,asyncmy,aiomysql]' \
        'SQLAlchemy[asyncio]>=2.0,<2.1' 'Flask-SQLAlchemy>=3.1' pytest pytest-timeout hypothesis anyio
    echo "$want" > "$stamp"
fi
if $prepare_only; then exit 0; fi
"$venv/bin/python" -m pytest tests/sqlalchemy_pool -q -p no:cacheprovider "$@"
"$venv/bin/python" -m tests.sqlalchemy_suite.run pool
