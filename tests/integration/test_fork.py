"""Fork safety with a real fork: a child process never uses, or closes at the server, a
connection its parent opened; it opens its own."""

from __future__ import annotations

import gc
import json
import os
import warnings
from typing import Any

import pytest

from poolwarden import Pool
from tests.integration.test_drivers import conn_id, scalar

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def run_in_child(body: Any) -> dict[str, Any]:
    """Fork; run ``body()`` in the child and return what it returned (as JSON)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(body()).encode())
            code = 0
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(b"".join(chunks) or b"{}")
    assert os.WEXITSTATUS(status) == 0, result
    return result


def test_child_starts_fresh_and_parent_connections_survive(db_url: str) -> None:
    with Pool(db_url, pool_size=3, max_overflow=0) as pool:
        idle_a, idle_b, held = pool.getconn(), pool.getconn(), pool.getconn()
        parent_ids = {conn_id(c, db_url) for c in (idle_a, idle_b)}
        held_id = conn_id(held, db_url)
        for conn in (idle_a, idle_b, held):
            conn.commit()
        idle_a.close()
        idle_b.close()

        def child() -> dict[str, Any]:
            with pool.connection() as conn:
                own = conn_id(conn, db_url)
            stats = pool.stats()
            try:  # the parent's connection, checked out when we forked
                scalar(held, "SELECT 1")
                inherited = "reached the server"
            except Exception as exc:
                inherited = f"refused: {type(exc).__name__}"
            held.close()
            pool.close()
            gc.collect()  # drop every inherited driver object now, in the child
            return {
                "own": own,
                "inherited": inherited,
                "connects": stats.connects,
                "idle": stats.idle,
            }

        result = run_in_child(child)
        assert "error" not in result, result
        assert result["own"] not in parent_ids | {held_id}
        assert result["inherited"].startswith("refused")
        assert (result["idle"], result["connects"]) == (1, 4)  # counters kept, books fresh

        # Back in the parent, every connection is still the same, working server session.
        with pool.connection() as a, pool.connection() as b:
            assert {conn_id(a, db_url), conn_id(b, db_url)} == parent_ids
        assert conn_id(held, db_url) == held_id
        held.close()
        stats = pool.stats()
        assert stats.discards == 0 and stats.connects == 3


def test_fork_with_min_idle_restarts_background_work(db_url: str) -> None:
    import time

    with Pool(db_url, pool_size=4, max_overflow=0, min_idle=2) as pool:
        deadline = time.monotonic() + 10
        while pool.stats().idle < 2 and time.monotonic() < deadline:
            time.sleep(0.01)

        def child() -> dict[str, Any]:
            end = time.monotonic() + 10
            while pool.stats().idle < 2 and time.monotonic() < end:
                time.sleep(0.01)  # the child's own housekeeper refills min_idle
            with pool.connection() as conn:
                own = conn_id(conn, db_url)
            idle = pool.stats().idle
            pool.close()
            return {"own": own, "idle": idle}

        def ids_of_all_four() -> set[int]:
            held = [pool.getconn() for _ in range(4)]
            ids = {conn_id(c, db_url) for c in held}
            for conn in held:
                conn.commit()
                conn.close()
            return ids

        parent_ids = ids_of_all_four()
        result = run_in_child(child)
        assert result.get("idle", 0) >= 2 and result["own"] not in parent_ids, result
        assert ids_of_all_four() == parent_ids
