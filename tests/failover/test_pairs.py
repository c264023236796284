"""The failover fixtures themselves: real replication, real promotion and demotion, and a
proxy whose retarget moves new connections only. The pool tests rely on all of it."""

from __future__ import annotations

import pymysql
import pytest

from tests.failover.pairs import INSERT, MariaDBPair, PostgresPair, connect_test


def test_postgres_standby_replicates_and_takes_over(postgres_pair: PostgresPair) -> None:
    """A row written on the primary appears on the standby; the standby refuses writes
    until promoted; after the switch an old connection through the proxy still reaches
    the old (now read-only) primary and a new one reaches the promoted server."""
    import psycopg

    pair = postgres_pair
    assert pair.proxy is not None
    old, new = pair.primary, pair.standby
    assert new.in_recovery() and not old.in_recovery()
    with connect_test(old, port=pair.proxy.port) as before:
        before.execute(INSERT, (1, 1, 0.0))
        new.catch_up(old)
        with connect_test(new) as standby:
            assert standby.execute("SELECT worker, seq FROM failover_writes").fetchall() == [
                (1, 1)
            ]
            assert standby.info.parameter_status("in_hot_standby") == "on"
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                standby.execute(INSERT, (1, 2, 0.0))

        pair.switch()
        assert not new.in_recovery()
        # The old session is still open, on the old server, and now read-only.
        assert before.execute("SELECT inet_server_port()").fetchone() == (old.port,)
        assert before.info.parameter_status("default_transaction_read_only") == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            before.execute(INSERT, (1, 3, 0.0))
    with connect_test(new, port=pair.proxy.port) as after:
        assert after.execute("SELECT inet_server_port()").fetchone() == (new.port,)
        after.execute(INSERT, (1, 4, 0.0))
    assert pair.stored() == {(1, 1), (1, 4)}


def test_mariadb_read_only_switch(mariadb_pair: MariaDBPair) -> None:
    """The app account writes on the primary, not on the read-only standby (root would:
    READ ONLY ADMIN); after the switch an old connection through the proxy stays on the
    old server and gets 1290, a new one reaches the new primary and writes."""
    pair = mariadb_pair
    assert pair.proxy is not None
    old, new = pair.primary, pair.standby
    with pair.app_connect(new.port) as standby:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            standby.cursor().execute(INSERT, (9, 1, 0.0))
        assert refused.value.args[0] == 1290
    # Why the pools do not log in as root: it writes through read_only.
    new.execute("INSERT INTO test.failover_writes (worker, seq, at) VALUES (9, 2, 0)")
    new.execute("DELETE FROM test.failover_writes WHERE worker = 9")

    with pair.app_connect(pair.proxy.port) as before:
        cursor = before.cursor()
        cursor.execute(INSERT, (1, 1, 0.0))
        before.commit()
        pair.switch()
        cursor.execute("SELECT @@port, @@global.read_only")
        assert cursor.fetchone() == (old.port, 1)
        with pytest.raises(pymysql.err.OperationalError) as demoted:
            cursor.execute(INSERT, (1, 2, 0.0))
            before.commit()
        assert demoted.value.args[0] == 1290
    with pair.app_connect(pair.proxy.port) as after:
        cursor = after.cursor()
        cursor.execute("SELECT @@port, @@global.read_only")
        assert cursor.fetchone() == (new.port, 0)
        cursor.execute(INSERT, (1, 3, 0.0))
        after.commit()
    assert pair.stored() == {(1, 1), (1, 3)}
