"""The set-up's servers: the configured ones when they answer, else poolwarden's own, started
once, reused, stopped and started again on their data (``python -m tests.local_servers``,
as ``scripts/setup.sh`` runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, MYSQL, POSTGRES
from tests.local_servers import KINDS, answers, missing_packages

SECRET = "Sup3rSecretPw9"


@pytest.fixture
def state() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to this account, and PostgreSQL runs
    # as the postgres account when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="poolwarden-state-"))
    base.chmod(0o755)
    yield base / "servers"
    run(base / "servers", {}, "stop")
    shutil.rmtree(base, ignore_errors=True)


def run(servers: Path, configured: dict[str, str], *args: str) -> str:
    env = {**os.environ, "POOLWARDEN_SERVERS_DIR": str(servers), **configured}
    done = subprocess.run(
        [sys.executable, "-m", "tests.local_servers", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def env_values(servers: Path) -> dict[str, str]:
    lines = (servers.parent / "servers.env").read_text().splitlines()
    pairs = [line.removeprefix("export ").split("=", 1) for line in lines if "=" in line]
    return {key: value.strip("'") for key, value in pairs}


def test_own_servers_when_none_answers_as_configured(state: Path) -> None:
    if missing_packages(list(KINDS)):
        _unavailable(f"the servers' binaries are missing: {missing_packages(list(KINDS))}")
    nobody = {
        "POOLWARDEN_TEST_MYSQL": f"root:{SECRET}@127.0.0.1:1/test",
        "POOLWARDEN_TEST_POSTGRES": f"postgres:{SECRET}@127.0.0.1:1/test",
    }
    first = run(state, nobody, "ensure")
    assert "creating poolwarden's own server" in first and SECRET not in first
    assert "root:***@127.0.0.1:1/test does not answer" in first
    made = env_values(state)
    for kind in KINDS.values():
        address = made[kind.variable]
        assert address.startswith("root@127.0.0.1:" if kind.name == "mariadb" else "postgres@")
        assert answers(kind, address) is None
    mysql = made["POOLWARDEN_TEST_MYSQL"]
    with _mysql(mysql) as conn:
        conn.cursor().execute("CREATE TABLE kept (n INT)")
        conn.cursor().execute("INSERT INTO kept VALUES (7)")

    again = run(state, nobody, "ensure")
    assert env_values(state) == made
    assert again.count("using poolwarden's own server") == 2 and "creating" not in again

    stopped = run(state, nobody, "stop")
    assert stopped.count("stopped poolwarden's own server") == 2
    assert all(answers(k, made[k.variable]) is not None for k in KINDS.values())

    restarted = run(state, nobody, "ensure")
    assert restarted.count("starting poolwarden's own server") == 2
    assert env_values(state) == made  # the same ports, kept from the first run
    with _mysql(mysql) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT n FROM kept")
        assert cursor.fetchall() == ((7,),)  # and the same data


def test_configured_servers_are_used_and_nothing_is_started(state: Path) -> None:
    for kind, address in ((KINDS["mariadb"], MYSQL), (KINDS["postgresql"], POSTGRES)):
        problem = answers(kind, address)
        if problem is not None:
            _unavailable(problem)
    configured = {"POOLWARDEN_TEST_MYSQL": MYSQL, "POOLWARDEN_TEST_POSTGRES": POSTGRES}
    out = run(state, configured, "ensure")
    assert out.count("as configured") == 2
    assert env_values(state) == configured
    assert not state.exists()  # no server of our own, not even an empty folder for one


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"{why} (CI=true: a failure, not a skip)")
    pytest.skip(why)


def _mysql(address: str) -> Any:
    import pymysql

    user_host, _, database = address.partition("/")
    user, _, hostport = user_host.partition("@")
    host, _, port = hostport.partition(":")
    return pymysql.connect(
        host=host, port=int(port), user=user, database=database, autocommit=True
    )
