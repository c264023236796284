"""WardenPool under real SQLAlchemy engines, every driver, real servers."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from poolwarden.sqlalchemy import WardenPool, create_engine
from tests.integration.test_drivers import admin, dialect, kill
from tests.integration.test_fork import run_in_child


def warden(engine: sqlalchemy.Engine) -> WardenPool:
    pool = engine.pool
    assert isinstance(pool, WardenPool)
    return pool


def session_id_sql(url: str) -> str:
    return "SELECT CONNECTION_ID()" if dialect(url) == "mysql" else "SELECT pg_backend_pid()"


def idle_timeout_on_connect(engine: sqlalchemy.Engine, url: str, seconds: int) -> None:
    """Give every new connection of ``engine`` a short server-side idle timeout."""
    sql = (
        f"SET SESSION wait_timeout = {seconds}"
        if dialect(url) == "mysql"
        else f"SET idle_session_timeout = '{seconds}s'"
    )

    @event.listens_for(engine, "connect")
    def short_timeout(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(sql)
        cursor.close()
        dbapi_connection.commit()


def requests(engine: sqlalchemy.Engine, count: int, threads: int = 3) -> list[BaseException]:
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(count // threads):
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1")).scalar()
            except Exception as exc:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    return errors


def warm(engine: sqlalchemy.Engine, count: int) -> None:
    conns = [engine.connect() for _ in range(count)]
    for conn in conns:
        conn.execute(text("SELECT 1"))
        conn.close()


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "pw_sa_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sqlalchemy.String(100))


def test_orm_session_round_trip(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=2)
    assert isinstance(engine.pool, WardenPool)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add_all([Note(body="a"), Note(body="b")])
            session.commit()
        with Session(engine) as session:
            assert sorted(n.body for n in session.query(Note)) == ["a", "b"]
        stats = warden(engine).stats()
        assert stats.in_use == 0 and stats.checkouts >= 3
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_plain_create_engine_with_poolclass(db_url: str) -> None:
    engine = sqlalchemy.create_engine(
        db_url,
        poolclass=WardenPool,
        pool_size=3,
        max_overflow=2,
        pool_timeout=5,
        leak_threshold=60,
    )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert warden(engine).size() == 3 and warden(engine).timeout() == 5
    assert warden(engine)._warden._leak_threshold == 60
    engine.dispose()


@pytest.mark.parametrize("pool_class", [WardenPool, sqlalchemy.pool.QueuePool])
def test_idle_past_server_timeout(db_url: str, pool_class: type) -> None:
    """The users' 2006 "MySQL server has gone away": QueuePool passes it on, WardenPool
    (probe only, no lifetime) replaces the dead connections unseen."""
    options: dict[str, Any] = {"max_lifetime": None} if pool_class is WardenPool else {}
    engine = sqlalchemy.create_engine(db_url, poolclass=pool_class, pool_size=3, **options)
    idle_timeout_on_connect(engine, db_url, 2)
    warm(engine, 3)
    time.sleep(3.0)
    errors = requests(engine, 9)
    if pool_class is WardenPool:
        assert errors == [] and warden(engine).stats().found_dead == 3
    else:
        assert errors and all(isinstance(e, sa_exc.OperationalError) for e in errors)
    engine.dispose()


def test_lifetime_from_server_idle_timeout(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=3)
    idle_timeout_on_connect(engine, db_url, 2)
    warm(engine, 3)
    assert warden(engine)._warden._core.lifetime == pytest.approx(1.6)
    time.sleep(3.0)
    assert requests(engine, 9) == []
    stats = warden(engine).stats()
    assert stats.retired + stats.found_dead >= 3 and stats.retired >= 1
    engine.dispose()


def kill_all(url: str) -> None:
    with admin(url) as adm:
        cursor = adm.cursor()
        if dialect(url) == "mysql":
            cursor.execute(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = 'test' AND id <> CONNECTION_ID()"
            )
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {session}")
                except Exception:
                    pass  # already gone
        else:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'test' AND pid <> pg_backend_pid()"
            )


def count_pings(engine: Any) -> list[object]:
    """The connections SQLAlchemy's pre-ping pinged, as they are pinged."""
    pinged: list[object] = []
    do_ping = engine.dialect.do_ping

    def counting(dbapi_connection: object) -> Any:
        pinged.append(dbapi_connection)
        return do_ping(dbapi_connection)

    engine.dialect.do_ping = counting
    return pinged


def test_kill_of_idle_connections_goes_unseen(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=3)
    warm(engine, 3)
    kill_all(db_url)
    time.sleep(0.2)
    assert requests(engine, 9) == []
    assert warden(engine).stats().found_dead >= 3
    engine.dispose()


def test_disconnect_seen_by_the_engine_replaces_the_older_connections(db_url: str) -> None:
    """As with QueuePool: once the engine sees a disconnect, every connection opened before
    it is replaced at its next checkout (none of those sessions is served again)."""
    engine = create_engine(db_url, pool_size=3, ping_after_idle=60)
    with engine.connect() as a, engine.connect() as b, engine.connect() as conn:
        old = {x.execute(text(session_id_sql(db_url))).scalar() for x in (a, b, conn)}
        a.commit()
        b.commit()
        victim = conn.execute(text(session_id_sql(db_url))).scalar()
        conn.commit()
        kill(db_url, int(str(victim)))
        with pytest.raises(sa_exc.OperationalError) as info:
            conn.execute(text("SELECT 1"))
    assert requests(engine, 6, threads=2) == []
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        served = {x.execute(text(session_id_sql(db_url))).scalar() for x in (a, b, c)}
    assert victim not in served  # the dead session never came back
    if info.value.connection_invalidated:  # the dialect took it for a disconnect
        assert not served & old
    engine.dispose()


def test_pool_pre_ping_and_recycle_are_honoured(db_url: str) -> None:
    """pool_pre_ping is SQLAlchemy's own, as with QueuePool (poolwarden pings nothing on
    top); pool_recycle is the connections' lifetime."""
    engine = create_engine(db_url, pool_size=1, pool_pre_ping=True, pool_recycle=1)
    pings = count_pings(engine)
    warm(engine, 1)
    requests(engine, 3, threads=1)
    assert len(pings) >= 3 and warden(engine).stats().pings == 0
    time.sleep(1.2)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert warden(engine).stats().retired >= 1
    engine.dispose()


def test_leak_report_names_the_application_code(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(db_url, pool_size=2, leak_threshold=0.3)

    def report_handler_that_forgets() -> Any:
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
        return conn

    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        held = report_handler_that_forgets()
        deadline = time.monotonic() + 5
        while "has been checked out" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    held.close()
    assert "report_handler_that_forgets" in caplog.text
    assert "test_engine.py" in caplog.text.split("checked out at", 1)[1].split("\n", 1)[0]
    assert warden(engine).stats().leaks == 1
    engine.dispose()


def test_dispose_and_keep_going(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=2)
    warm(engine, 2)
    old_pool = engine.pool
    engine.dispose()
    assert engine.pool is not old_pool and isinstance(engine.pool, WardenPool)
    assert requests(engine, 4, threads=2) == []
    assert isinstance(old_pool, WardenPool)
    old_pool.close()
    engine.dispose()


def test_engine_in_a_forked_child(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        parent = conn.execute(text(session_id_sql(db_url))).scalar()
        conn.commit()

    def child() -> dict[str, Any]:
        with engine.connect() as conn:
            own = conn.execute(text(session_id_sql(db_url))).scalar()
        engine.dispose()
        return {"own": own}

    result = run_in_child(child)
    assert result["own"] != parent
    with engine.connect() as conn:
        assert conn.execute(text(session_id_sql(db_url))).scalar() == parent
    engine.dispose()
