"""A primary and its successor behind one address (a :class:`FaultProxy`), and the switch
from one to the other as an operator or a failover manager would make it.

- MariaDB: two servers with the same table; the standby runs with ``read_only=1``. The
  switch: ``SET GLOBAL read_only=1`` on the old primary (its sessions stay open; writes
  fail with 1290), ``read_only=0`` on the new one, the proxy retargeted. The pools log in
  as an unprivileged account: root could write through ``read_only``.
- PostgreSQL: a primary and a streaming-replication standby (``pg_basebackup -R``). The
  switch: ``default_transaction_read_only=on`` on the old primary by ``ALTER SYSTEM`` and
  a reload (sessions stay open; writes fail with 25006), the standby caught up and
  promoted, the proxy retargeted.

The proxy's retarget moves new connections only: established ones keep talking to the old
server, as after a DNS change or a virtual IP moving.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.failover.harness import Switch
from tests.faults.proxy import FaultProxy
from tests.servers import DisposableMariaDB, DisposablePostgres

__all__ = ["APP_USER", "INSERT", "MariaDBPair", "PostgresPair"]

#: The failover tests' own account on the MariaDB servers.
APP_USER = "app"
TABLE = "failover_writes"
#: One write (the same paramstyle for every driver here, and SQLAlchemy's text() below).
INSERT = f"INSERT INTO {TABLE} (worker, seq, at) VALUES (%s, %s, %s)"
SQLALCHEMY_INSERT = f"INSERT INTO {TABLE} (worker, seq, at) VALUES (:worker, :seq, :at)"


class MariaDBPair:
    """Two MariaDB servers; ``primary`` writable, ``standby`` read-only, ``proxy`` in front
    of the primary (a new one for each test, from :meth:`reset`)."""

    kind = "mysql"

    def __init__(self, first: DisposableMariaDB, second: DisposableMariaDB) -> None:
        self.primary, self.standby = first, second
        # Random, never printed: a URL with it is masked in poolwarden's messages.
        self._password = secrets.token_hex(12)
        for server in (first, second):
            server.add_user(APP_USER, self._password)
            server.execute(
                f"CREATE TABLE IF NOT EXISTS test.{TABLE} (id INT AUTO_INCREMENT PRIMARY KEY,"
                " worker INT NOT NULL, seq INT NOT NULL, at DOUBLE NOT NULL)"
            )
        self.proxy: FaultProxy | None = None

    def reset(self) -> FaultProxy:
        """Empty tables, primary writable, standby read-only, a fresh proxy to the primary."""
        self.close_proxy()
        for server in (self.primary, self.standby):
            server.execute(f"TRUNCATE TABLE test.{TABLE}")  # root passes read_only
        self.primary.set_read_only(False)
        self.standby.set_read_only(True)
        self.proxy = FaultProxy(self.primary.port)
        return self.proxy

    def close_proxy(self) -> None:
        """Stop the current proxy (the end of a test)."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def url(self, driver: str) -> str:
        """The pools' URL: the app account, at the proxy."""
        assert self.proxy is not None, "reset() first"
        return self.primary.url(driver, port=self.proxy.port, user=f"{APP_USER}:{self._password}")

    def switch(self) -> Switch:
        """Demote the primary, promote the standby, retarget the proxy; swap the roles."""
        assert self.proxy is not None, "reset() first"
        started = time.monotonic()
        self.primary.set_read_only(True)
        self.standby.set_read_only(False)
        self.proxy.retarget(self.standby.port)
        switched = time.monotonic()
        self.primary, self.standby = self.standby, self.primary
        return Switch(started, switched)

    def stored(self) -> set[tuple[int, int]]:
        """(worker, seq) of every row on either server."""
        rows: set[tuple[int, int]] = set()
        for server in (self.primary, self.standby):
            rows |= {
                (int(w), int(s))
                for w, s in server.execute(f"SELECT worker, seq FROM test.{TABLE}")
            }
        return rows

    def app_connect(self, port: int) -> Any:
        """A PyMySQL connection as the app account to ``port`` (a server or the proxy)."""
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", port=port, user=APP_USER, password=self._password,
            database="test", connect_timeout=5,
        )  # fmt: skip


class PostgresPair:
    """A PostgreSQL primary and its streaming standby, ``proxy`` in front of the primary.

    After a switch the promoted server is the primary; :meth:`reset` then drops the old
    one (it has diverged) and makes a new standby of the new primary with ``make_standby``.
    """

    kind = "postgresql"

    def __init__(
        self,
        primary: DisposablePostgres,
        make_standby: Callable[[DisposablePostgres], DisposablePostgres],
    ) -> None:
        self.primary = primary
        self._make_standby = make_standby
        execute_in_test(
            primary,
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id SERIAL PRIMARY KEY, worker INT NOT NULL,"
            " seq INT NOT NULL, at DOUBLE PRECISION NOT NULL)",
        )
        self.standby = make_standby(primary)
        self.proxy: FaultProxy | None = None

    def reset(self) -> FaultProxy:
        """Empty table, a streaming standby, a fresh proxy to the primary."""
        self.close_proxy()
        self.primary.set_read_only(False)
        if not self.standby.in_recovery():  # switched: the old primary is no standby
            self.standby.destroy()
            self.standby = self._make_standby(self.primary)
        execute_in_test(self.primary, f"TRUNCATE {TABLE}")
        self.proxy = FaultProxy(self.primary.port)
        return self.proxy

    def close_proxy(self) -> None:
        """Stop the current proxy (the end of a test)."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def url(self, driver: str) -> str:
        """The pools' URL: the superuser (bound by default_transaction_read_only like any
        other), at the proxy."""
        assert self.proxy is not None, "reset() first"
        return self.primary.url(driver, port=self.proxy.port)

    def switch(self) -> Switch:
        """Demote the primary, let the standby catch up, promote it, retarget the proxy;
        swap the roles."""
        assert self.proxy is not None, "reset() first"
        started = time.monotonic()
        self.primary.set_read_only(True)
        self.standby.catch_up(self.primary)
        self.standby.promote()
        self.proxy.retarget(self.standby.port)
        switched = time.monotonic()
        self.primary, self.standby = self.standby, self.primary
        return Switch(started, switched)

    def stored(self) -> set[tuple[int, int]]:
        """(worker, seq) of every row on either server (the old primary may have
        committed a transaction begun before its demotion after the standby caught up)."""
        rows: set[tuple[int, int]] = set()
        for server in (self.primary, self.standby):
            found = execute_in_test(server, f"SELECT worker, seq FROM {TABLE}")
            rows |= {(int(w), int(s)) for w, s in found}
        return rows


def connect_test(server: DisposablePostgres, port: int | None = None) -> Any:
    """A psycopg connection (autocommit) to database ``test`` of ``server``, or through
    the proxy at ``port``."""
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=port or server.port, user="postgres", dbname="test",
        autocommit=True, connect_timeout=5,
    )  # fmt: skip


def execute_in_test(server: DisposablePostgres, sql: str) -> list[Any]:
    """Run ``sql`` in database ``test`` as the superuser; its rows."""
    with connect_test(server) as conn:
        cursor = conn.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []
