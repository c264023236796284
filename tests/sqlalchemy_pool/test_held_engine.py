"""Held connections through SQLAlchemy: a ``Connection`` or ``Session`` kept across a pause
longer than the server's idle timeout, every driver, real servers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import poolwarden
import poolwarden.sqlalchemy
from poolwarden.adapters import for_connection
from poolwarden.sqlalchemy import create_engine
from poolwarden.sqlalchemy._held import WardenFairy, driver_connection
from tests.integration.test_drivers import admin, dialect, kill
from tests.sqlalchemy_pool.test_engine import session_id_sql, warden

IDLE_TIMEOUT = 2
DRIVERS = ("pymysql", "MySQLdb", "mysql", "psycopg", "psycopg2")
PAUSE = IDLE_TIMEOUT + 1.0


class Base(DeclarativeBase):
    pass


def held_engine(url: str, **kwargs: Any) -> sqlalchemy.Engine:
    """An engine whose connections the server closes after 2 s idle (in a transaction or
    not)."""
    engine = create_engine(url, pool_size=1, max_overflow=0, **kwargs)
    mysql = dialect(url) == "mysql"
    statements = (
        [f"SET SESSION wait_timeout = {IDLE_TIMEOUT}"]
        if mysql
        else [
            f"SET idle_session_timeout = '{IDLE_TIMEOUT}s'",
            f"SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}s'",
        ]
    )

    @event.listens_for(engine, "connect")
    def short_timeout(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for sql in statements:
            cursor.execute(sql)
        cursor.close()
        dbapi_connection.commit()

    return engine


@pytest.fixture
def visit_model(db_url: str) -> Iterator[type[Any]]:
    """A mapped class on a fresh table, dropped after the test."""
    name = f"pw_visits_{uuid.uuid4().hex[:8]}"
    model = type(
        f"Visit_{name}",
        (Base,),
        {
            "__tablename__": name,
            "__annotations__": {"id": Mapped[int]},
            "id": mapped_column(primary_key=True, autoincrement=False),
        },
    )
    engine = sqlalchemy.create_engine(db_url)
    model.__table__.create(engine)  # type: ignore[attr-defined]
    yield model
    model.__table__.drop(engine)  # type: ignore[attr-defined]
    engine.dispose()
    Base.metadata.remove(model.__table__)  # type: ignore[attr-defined]


def committed(url: str, model: type[Any]) -> list[int]:
    with admin(url) as adm:
        cur = adm.cursor()
        cur.execute(f"SELECT id FROM {model.__tablename__} ORDER BY id")
        return [int(row[0]) for row in cur.fetchall()]


def test_connection_held_without_transaction_keeps_working(db_url: str) -> None:
    engine = held_engine(db_url)
    with engine.connect() as conn:
        first = conn.execute(text(session_id_sql(db_url))).scalar()
        conn.commit()
        time.sleep(PAUSE)
        if db_url.startswith("mysql+mysqlconnector"):
            # mysql-connector does not keep the server's autocommit flag, so a SET
            # autocommit statement could have run unseen: reported, not replaced.
            with pytest.raises(sa_exc.OperationalError) as caught:
                conn.execute(text(session_id_sql(db_url)))
            assert isinstance(caught.value.orig, poolwarden.ConnectionLost)
            conn.rollback()
        second = conn.execute(text(session_id_sql(db_url))).scalar()
        conn.commit()
        assert second != first
        assert isinstance(conn.connection, WardenFairy)
    stats = warden(engine).stats()
    assert stats.held_replaced + stats.held_lost == 1
    engine.dispose()


def test_session_held_with_transaction_fails_clearly_and_loses_nothing_silently(
    db_url: str, visit_model: type[Any]
) -> None:
    engine = held_engine(db_url)
    with Session(engine) as session:
        session.add(visit_model(id=1))
        session.commit()
        session.add(visit_model(id=2))
        session.flush()  # written but uncommitted when the server drops the session
        time.sleep(PAUSE)
        session.add(visit_model(id=3))
        with pytest.raises(sa_exc.OperationalError) as caught:
            session.commit()
        error = caught.value
        assert isinstance(error.orig, poolwarden.ConnectionLost)
        assert error.connection_invalidated  # the dialect took it for a disconnect
        assert "transaction was open" in str(error) and f"{IDLE_TIMEOUT} s" in str(error)
        session.rollback()
        session.add_all([visit_model(id=2), visit_model(id=3)])  # the unit of work, again
        session.commit()
    assert committed(db_url, visit_model) == [1, 2, 3]
    assert warden(engine).stats().held_lost == 1
    engine.dispose()


@pytest.mark.parametrize("how", ["execution option", "SQL statement"])
def test_autocommit_session_is_never_replaced_by_a_non_autocommit_one(
    db_url: str, visit_model: type[Any], how: str
) -> None:
    """A replacement would come without the autocommit the dead connection had, and the
    writes after it would be rolled back on return: the autocommit is carried over where
    the driver reports it, and otherwise the borrower is told. (PostgreSQL has no SQL
    statement for autocommit: there the second case sets it through the driver.)"""
    engine = held_engine(db_url)
    if how == "execution option":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    with Session(engine) as session:
        if how == "SQL statement":
            if db_url.startswith("mysql"):
                session.execute(text("SET autocommit = 1"))
            else:
                session.commit()
                dbapi_connection = session.connection().connection.dbapi_connection
                assert dbapi_connection is not None
                dbapi_connection.autocommit = True
        session.add(visit_model(id=1))
        session.flush()
        time.sleep(PAUSE)
        session.add(visit_model(id=2))
        try:
            session.flush()
            session.commit()
            replaced = True
        except sa_exc.OperationalError as error:
            assert isinstance(error.orig, poolwarden.ConnectionLost)
            session.rollback()
            replaced = False
    # Committed once each, or reported: never a write rolled back in silence.
    assert committed(db_url, visit_model) == ([1, 2] if replaced else [1])
    engine.dispose()


def test_killed_connection_in_a_session_and_the_retry_helper(
    db_url: str, visit_model: type[Any]
) -> None:
    engine = held_engine(db_url, held_check_after=0.2)
    killed: list[int] = []

    @poolwarden.retry_on_disconnect(attempts=2)
    def add_visit(visit_id: int) -> None:
        with Session(engine) as session:
            if not killed:
                killed.append(session.execute(text(session_id_sql(db_url))).scalar_one())
                kill(db_url, killed[0])
                time.sleep(0.5)
            if session.get(visit_model, visit_id) is None:  # safe to run twice
                session.add(visit_model(id=visit_id))
            session.commit()

    add_visit(5)
    stats = warden(engine).stats()
    # Lost (a transaction was open: the unit ran again) or replaced (the driver reported
    # none: the unit went on); either way the visit is recorded once.
    assert killed and stats.held_lost + stats.held_replaced == 1
    assert committed(db_url, visit_model) == [5]
    engine.dispose()


def test_dialect_sees_the_driver_through_the_held_connection(db_url: str) -> None:
    """What dialects do to DB-API connections — isolation levels, autocommit, reading the
    server version, their own cursors — works as on QueuePool, on the driver's own
    connection object."""
    engine = create_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        proxy = conn.connection
        assert isinstance(proxy, WardenFairy)
        raw = proxy.dbapi_connection
        assert type(raw).__module__.split(".")[0] in DRIVERS  # the driver's own object
        assert type(proxy.cursor()).__module__.split(".")[0] == type(raw).__module__.split(".")[0]
        for level in ("SERIALIZABLE", "READ COMMITTED"):
            conn.execution_options(isolation_level=level)
            assert conn.get_isolation_level() == level
            conn.execute(text("SELECT 1"))
            conn.rollback()
        conn.execution_options(isolation_level="AUTOCOMMIT")  # the dialect sets autocommit
        driver = for_connection(raw, lambda: None)
        assert driver.get_autocommit(raw) is True
        conn.execute(text("SELECT 1"))
        assert engine.dialect.server_version_info
    with engine.connect() as conn:
        # the reset on return restored the default level on the same driver connection
        assert driver_connection(conn.connection.dbapi_connection) is raw
        assert conn.get_isolation_level() == engine.dialect.default_isolation_level
        assert driver.get_autocommit(raw) is False
        rows = conn.execute(select(sqlalchemy.literal(1))).all()
        assert rows == [(1,)]
    engine.dispose()


def test_detached_connection_is_left_to_its_holder(db_url: str) -> None:
    """A connection detached from the pool is its holder's: it is not replaced behind its
    back (nor is the pool's record reconnected for it)."""
    engine = held_engine(db_url, held_check_after=0.0)
    with engine.connect() as conn:
        conn.connection.detach()  # the caller takes the connection out of the pool for good
        session = conn.execute(text(session_id_sql(db_url))).scalar_one()
        conn.commit()
        kill(db_url, session)
        time.sleep(0.3)
        with pytest.raises(sa_exc.DBAPIError):
            conn.execute(text("SELECT 1"))
        assert warden(engine).stats().held_replaced == 0
    assert warden(engine).checkedout() == 0
    engine.dispose()


def test_session_settings_changed_by_the_driver_are_reported_not_replaced(db_url: str) -> None:
    """A connection is replaced only by an equivalent one: settings given through a driver
    method called on the proxy (MySQL's ``select_db``), or set on the driver's own object
    (PostgreSQL's read-only mode, which the drivers keep on it), make a dead connection
    raise ConnectionLost instead, so they are never silently lost."""
    engine = held_engine(db_url, held_check_after=0.2)
    with engine.connect() as conn:
        session = conn.execute(text(session_id_sql(db_url))).scalar_one()
        conn.commit()
        proxy = conn.connection
        raw = poolwarden.sqlalchemy.driver_connection(proxy)
        assert raw is proxy.dbapi_connection
        assert type(raw).__module__.split(".")[0] in DRIVERS
        driver: Any = raw
        if db_url.startswith("mysql+mysqlconnector"):
            proxy.cmd_init_db("test")
        elif db_url.startswith("mysql"):
            proxy.select_db("test")
        elif db_url.startswith("postgresql+psycopg2"):
            driver.readonly = True
        else:
            driver.read_only = True
        kill(db_url, session)
        time.sleep(0.5)
        with pytest.raises(sa_exc.OperationalError) as caught:
            conn.execute(text("SELECT 1"))
        assert isinstance(caught.value.orig, poolwarden.ConnectionLost)
        assert "Session state had been set" in str(caught.value.orig)
    engine.dispose()
