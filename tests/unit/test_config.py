"""Every bad argument raises ValueError naming the argument and what is allowed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from poolwarden import Pool, PoolTimeout
from poolwarden.adapters.pymysql import PyMySQLAdapter
from tests.fakedb import FakeAdapter, FakeServer

URL = "mysql+pymysql://root:topsecret@127.0.0.1:3306/test"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"pool_size": -1}, "pool_size must be an integer >= 0, got -1"),
        ({"pool_size": 2.5}, "pool_size must be an integer >= 0, got 2.5"),
        ({"pool_size": True}, "pool_size must be an integer >= 0, got True"),
        ({"max_overflow": -3}, "max_overflow must be an integer >= 0, got -3"),
        ({"pool_size": 0, "max_overflow": 0}, "pool_size + max_overflow must be >= 1"),
        ({"min_idle": -1}, "min_idle must be an integer >= 0"),
        (
            {"pool_size": 2, "max_overflow": 1, "min_idle": 4},
            "min_idle must be between 0 and pool_size + max_overflow (3), got 4",
        ),
        ({"timeout": -1.0}, "timeout must be a number of seconds >= 0 or None, got -1.0"),
        ({"timeout": float("inf")}, "timeout must be a number of seconds >= 0 or None, got inf"),
        ({"timeout": "30"}, "timeout must be a number of seconds >= 0 or None, got '30'"),
        ({"connect_wait": 0}, "connect_wait must be a number of seconds > 0 or None, got 0"),
        ({"leak_threshold": 0}, "leak_threshold must be a number of seconds > 0 or None"),
        ({"reset": "commit"}, "reset must be 'rollback', 'session' or None, got 'commit'"),
        ({"max_connecting": 0}, "max_connecting must be an integer >= 1, got 0"),
        ({"configure": 42}, "configure must be a callable"),
        ({"connect_args": [1]}, "connect_args must be a mapping"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as info:
        Pool(URL, **kwargs)
    assert expected in str(info.value)
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize("target", [42, None, b"mysql://x"])
def test_bad_target_type(target: Any) -> None:
    with pytest.raises(ValueError, match="target must be a database URL"):
        Pool(target)


def test_bad_url_option_type_names_option() -> None:
    with pytest.raises(
        ValueError,
        match="URL option 'connect_timeout' for mysql\\+pymysql must be an integer, got 'soon'",
    ):
        Pool("mysql+pymysql://u:topsecret@127.0.0.1/db?connect_timeout=soon")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PyMySQLAdapter, "module_name", "pymysql_not_installed_here")
    with pytest.raises(ValueError) as info:
        Pool(URL)
    text = str(info.value)
    assert "pip install 'poolwarden[pymysql]'" in text
    assert "topsecret" not in text


def test_getconn_timeout_checked() -> None:
    server = FakeServer()
    with Pool(server.connect, adapter=FakeAdapter(server), pool_size=1, max_overflow=0) as pool:
        held = pool.getconn()
        with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0, got -2"):
            pool.getconn(timeout=-2)
        held.close()


def test_resize_checked() -> None:
    server = FakeServer()
    with Pool(server.connect, adapter=FakeAdapter(server)) as pool:
        with pytest.raises(ValueError, match="pool_size must be an integer >= 0, got -1"):
            pool.resize(pool_size=-1)
        with pytest.raises(ValueError, match="min_idle must be between 0 and pool_size"):
            pool.resize(pool_size=1, max_overflow=0, min_idle=2)


def test_repr_never_shows_password() -> None:
    with Pool(URL) as pool:
        assert "topsecret" not in repr(pool)
        assert "root:***@127.0.0.1" in repr(pool)
        assert "topsecret" not in pool.name


def test_timeout_zero_fails_at_once_and_none_waits_without_limit() -> None:
    """QueuePool's ``timeout=0`` (never wait for a held connection) and ``timeout=None``
    (wait as long as it takes) mean the same here; ``connect_wait`` bounds the wait for
    a connection being opened instead (WardenPool's default is 30 s)."""
    server = FakeServer()
    adapter = FakeAdapter(server)
    with Pool(
        server.connect, adapter=adapter, pool_size=1, max_overflow=0, timeout=0, connect_wait=5
    ) as pool:
        held = pool.getconn()  # a connection opened for it: waited for, whatever timeout says
        with pytest.raises(PoolTimeout):
            pool.getconn()
        held.close()
    with Pool(
        server.connect, adapter=FakeAdapter(server), pool_size=1, max_overflow=0, timeout=None
    ) as pool:
        held = pool.getconn()
        threading.Timer(0.3, held.close).start()
        started = time.monotonic()
        pool.getconn().close()
        assert time.monotonic() - started >= 0.25
