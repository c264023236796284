"""poolwarden.flask.check_config: the pool settings Flask-SQLAlchemy 3 ignores, and a
pool_recycle the server's idle timeout makes useless."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy

from poolwarden.flask import PoolConfigWarning, check_config, init_app
from poolwarden.sqlalchemy import WardenPool
from tests.conftest import mysql_url


def test_legacy_keys_named_with_their_replacement() -> None:
    config = {"SQLALCHEMY_POOL_SIZE": 20, "SQLALCHEMY_MAX_OVERFLOW": 5, "SQLALCHEMY_ECHO": True}
    with pytest.warns(PoolConfigWarning) as caught:
        findings = check_config(config)
    assert len(findings) == 2 and len(caught) == 2
    assert "SQLALCHEMY_POOL_SIZE=20 is ignored by Flask-SQLAlchemy 3" in findings[0]
    assert "SQLALCHEMY_ENGINE_OPTIONS = {'pool_size': 20}" in findings[0]
    assert "{'max_overflow': 5}" in findings[1]


def test_clean_config_has_no_findings() -> None:
    options = {"pool_size": 10, "pool_recycle": 100}
    assert check_config({"SQLALCHEMY_ENGINE_OPTIONS": options}) == []


def test_recycle_not_below_the_server_idle_timeout(caplog: pytest.LogCaptureFixture) -> None:
    config = {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 3600}}
    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        findings = check_config(config, server_idle_timeout=600, warn=False)
    assert len(findings) == 1
    assert "pool_recycle=3600" in findings[0] and "wait_timeout=600" in findings[0]
    assert "pool_recycle=3600" in caplog.text
    assert check_config(config, server_idle_timeout=7200, warn=False) == []


def test_recycle_checked_against_the_real_server(mysql_driver: str) -> None:
    engine = sqlalchemy.create_engine(mysql_url(mysql_driver))

    @sqlalchemy.event.listens_for(engine, "connect")
    def short_timeout(dbapi_connection: object, record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("SET SESSION wait_timeout = 30")
        cursor.close()

    config = {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 60}}
    findings = check_config(config, engine=engine, warn=False)
    engine.dispose()
    assert len(findings) == 1 and "wait_timeout=30" in findings[0]


def test_init_app_installs_wardenpool_and_checks() -> None:
    class App:
        def __init__(self) -> None:
            self.config: dict[str, object] = {"SQLALCHEMY_POOL_TIMEOUT": 5}

    app = App()
    with pytest.warns(PoolConfigWarning):
        findings = init_app(app, leak_threshold=30)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options == {"poolclass": WardenPool, "pool_recycle": -1, "leak_threshold": 30}
    assert "SQLALCHEMY_POOL_TIMEOUT" in findings[0]


def test_flask_sqlalchemy_mysql_default_recycle_does_not_replace_auto_lifetime() -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = mysql_url("pymysql")
    db = SQLAlchemy()
    init_app(app, db)
    with app.app_context():
        pool = db.engine.pool
        assert isinstance(pool, WardenPool)
        assert pool._settings.max_lifetime == "auto"  # not Flask-SQLAlchemy's 7200 s
        db.engine.dispose()
