"""Server roles, read-only errors, failover demotion and DNS moves, without servers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolwarden._core import PoolCore
from poolwarden._net.servers import address_text, is_name, watched_names, with_hosts
from poolwarden._net.url import parse_url
from poolwarden.adapters._roles import (
    ROLES,
    accepts,
    check_role,
    libpq_target,
    mysql_read_only_error,
    mysql_role_of,
    postgres_role_of,
    postgres_role_reported,
)
from poolwarden.adapters.pymysql import PyMySQLAdapter

A = ("10.0.0.1", 3306)
B = ("10.0.0.2", 3306)


def make_core() -> PoolCore:
    return PoolCore(
        pool_size=4, max_overflow=0, min_idle=0, max_connecting=4, rng=random.Random(3)
    )


def open_to(core: PoolCore, peer: tuple[str, int], now: float, host: str = "db") -> None:
    core.connecting += 1
    core.connect_succeeded(object(), now, peer=peer, host=host)


# -- role words ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given_", "role"),
    [
        ("primary", "primary"),
        ("read-write", "primary"),
        ("READ-ONLY", "standby"),
        (" standby ", "standby"),
        ("prefer-standby", "prefer-standby"),
        ("any", "any"),
    ],
)
def test_role_names_take_libpq_words(given_: str, role: str) -> None:
    assert check_role(given_) == role


@pytest.mark.parametrize("bad", ["master", "", None, 1, True])
def test_bad_role_names_the_argument_and_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match=r"role must be one of 'any', 'primary'"):
        check_role(bad)


def test_primary_asks_libpq_for_read_write() -> None:
    # libpq's "primary" accepts a fenced primary (default_transaction_read_only on).
    assert libpq_target("primary") == "read-write"
    assert {libpq_target(r) for r in ROLES} == {"any", "read-write", "standby", "prefer-standby"}


@given(st.sampled_from(ROLES), st.sampled_from(["primary", "standby", None]), st.booleans())
def test_accepts_follows_the_role_table(role: str, found: str | None, last: bool) -> None:
    expected = (
        True
        if role == "any"
        else found is not None
        and (found == "standby" or last if role == "prefer-standby" else found == role)
    )
    assert accepts(role, found, last) is expected


def test_unknown_role_never_passes_a_real_check() -> None:
    # A server mid-failover may not say what it is yet: "unknown" is not "primary".
    assert not accepts("primary", None)
    assert not accepts("prefer-standby", None)


# -- what servers answer --------------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "role"),
    [((0, 0), "primary"), ((1, 0), "standby"), ((0, 1), "standby"), ((None, 0), "primary")],
)
def test_mysql_role_from_read_only_variables(row: tuple[object, ...], role: str) -> None:
    assert mysql_role_of(row) == role
    assert mysql_role_of(None) is None


def test_postgres_role_reported_unasked() -> None:
    reported = {"in_hot_standby": "off", "default_transaction_read_only": "off"}
    assert postgres_role_reported(reported.get) == "primary"
    reported["default_transaction_read_only"] = "on"  # a fenced primary
    assert postgres_role_reported(reported.get) == "standby"
    assert postgres_role_reported({"in_hot_standby": "on"}.get) == "standby"
    assert postgres_role_reported({}.get) is None  # before PostgreSQL 14: query it
    assert postgres_role_of((True, "off")) == "standby"
    assert postgres_role_of((False, "off")) == "primary"


@pytest.mark.parametrize(
    ("code", "message", "verdict"),
    [
        (1290, "The MariaDB server is running with the --read-only option", "server"),
        (1290, "running with the --super-read-only option so it cannot", "server"),
        (1290, "running with the --skip-grant-tables option", None),
        (1836, "Running in read-only mode", "server"),
        (1792, "Cannot execute statement in a READ ONLY transaction.", "maybe"),
        (1062, "Duplicate entry", None),
        (None, "read-only", None),
    ],
)
def test_mysql_read_only_errors(code: int | None, message: str, verdict: str | None) -> None:
    assert mysql_read_only_error(code, message) == verdict


def test_pymysql_adapter_classifies_its_own_errors() -> None:
    import pymysql

    adapter = PyMySQLAdapter(pymysql, lambda: None)
    error = pymysql.err.OperationalError(1290, "running with the --read-only option")
    assert adapter.read_only_error(error) == "server"
    assert adapter.read_only_error(ValueError("--read-only")) is None  # not the driver's


# -- failover: demotion ---------------------------------------------------------------
def test_demotion_retires_every_connection_to_that_server_only() -> None:
    core = make_core()
    for peer in (A, A, B):
        open_to(core, peer, 0.0)
    held = core.checkout(1.0)
    assert held is not None and held.peer == B  # LIFO: the last opened
    held_a = core.checkout(1.0)
    assert held_a is not None and held_a.peer == A
    assert core.demote(A, checked_at=0.0, now=5.0)
    assert core.counters.demotions == 1
    # The idle one to A is due now (housekeeping or the next checkout retires it) ...
    retire, _ = core.due_for_maintenance(5.0, None, None)
    assert [e.peer for e in retire] == [A]
    # ... the held one to A retires when it comes back; B's are untouched.
    assert core.checkin(held_a, 6.0, True) == (None, held_a)
    assert core.checkin(held, 6.0, True) == (None, None)
    assert [e.peer for e in core.idle] == [B]


def test_late_errors_from_the_same_failover_do_not_retire_new_connections() -> None:
    core = make_core()
    open_to(core, A, 0.0)
    old = core.checkout(1.0)
    assert old is not None
    assert core.demote(A, checked_at=old.checked_at, now=10.0)
    open_to(core, A, 11.0)  # a new connection through the same address: to the new primary
    # The old connection's second failing write (checked before the demotion) is old news.
    assert not core.demote(A, checked_at=old.checked_at, now=12.0)
    assert core.idle[0].expires_at == float("inf") or core.idle[0].expires_at > 12.0
    assert core.counters.demotions == 1


# -- DNS ------------------------------------------------------------------------------
def test_a_moved_name_retires_its_old_connections_gradually() -> None:
    core = make_core()
    for _ in range(3):
        open_to(core, A, 0.0, host="db")
    open_to(core, A, 0.0, host="other")
    assert core.moved("db", {B}, now=100.0, spread=10.0) == 3
    due = sorted(e.expires_at for e in core.idle if e.host == "db")
    assert all(100.0 <= d <= 110.0 for d in due) and len(set(due)) == 3  # spread, not a burst
    assert core.moved("db", {B}, now=101.0, spread=10.0) == 0  # already scheduled
    assert core.counters.moved == 3
    assert core.moved("db", {A}, now=102.0, spread=10.0) == 0  # still listed: kept


def test_names_watched_are_names_only() -> None:
    assert is_name("db.example") and is_name("localhost")
    assert not is_name("127.0.0.1") and not is_name("::1") and not is_name("/run/mysqld")
    url = parse_url("mysql+pymysql://u:pw@db1:3307,10.0.0.5,db2/app")
    adapter = PyMySQLAdapter(None, lambda: None, url)
    assert watched_names(adapter) == [("db1", 3307), ("db2", 3306)]
    assert address_text("::1", 5432) == "[::1]:5432"


# -- multi-host URLs ------------------------------------------------------------------
_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True)


@given(st.lists(st.tuples(_HOST, st.none() | st.integers(1, 65535)), min_size=2, max_size=4))
def test_multi_host_urls_round_trip(hosts: list[tuple[str, int | None]]) -> None:
    text = ",".join(h if p is None else f"{h}:{p}" for h, p in hosts)
    url = parse_url(f"mysql+pymysql://app:s3cret@{text}/shop?charset=utf8mb4")
    assert url.hosts == tuple(hosts)
    assert (url.host, url.port) == hosts[0]
    assert parse_url(url.render(hide_password=False)) == url
    assert "s3cret" not in str(url)


def test_bad_host_lists_name_the_problem_without_the_password() -> None:
    with pytest.raises(ValueError, match="port must be a number") as caught:
        parse_url("mysql+pymysql://app:s3cret@db1:99999,db2/app")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ValueError, match="empty host"):
        parse_url("mysql+pymysql://app:s3cret@db1,,db2/app")


def test_hosts_argument_replaces_the_urls_host() -> None:
    text = with_hosts("mysql+pymysql://app:pw@old:1/app?x=1", ["db1:3306", "db2"])
    assert parse_url(text).hosts == (("db1", 3306), ("db2", None))
    with pytest.raises(ValueError, match="hosts must be a non-empty list"):
        with_hosts("mysql+pymysql://app:pw@old/app", "db1")
    with pytest.raises(ValueError, match="URL targets only"):
        with_hosts(lambda: None, ["db1"])
