"""poolwarden.flask on a Flask app: the legacy pool key is named, init_app installs
WardenPool. (No server needed: nothing connects.)"""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import poolwarden.flask
from poolwarden.flask import PoolConfigWarning, check_config
from poolwarden.sqlalchemy import WardenPool
from tests.conftest import mysql_url


def test_legacy_pool_key_warns_and_init_app_installs_warden_pool() -> None:
    """Flask-SQLAlchemy 3 silently ignores SQLALCHEMY_POOL_SIZE: poolwarden says so. (No
    server needed: nothing connects.)"""
    with pytest.warns(PoolConfigWarning, match="SQLALCHEMY_POOL_SIZE=10 is ignored"):
        findings = check_config({"SQLALCHEMY_POOL_SIZE": 10})
    assert len(findings) == 1 and "'pool_size': 10" in findings[0]

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = mysql_url("pymysql")
    app.config["SQLALCHEMY_POOL_SIZE"] = 10
    db = SQLAlchemy()
    with pytest.warns(PoolConfigWarning, match="SQLALCHEMY_POOL_SIZE"):
        findings = poolwarden.flask.init_app(app, db, pool_size=3, leak_threshold=60)
    assert len(findings) == 1
    with app.app_context():
        pool = db.engine.pool
    assert isinstance(pool, WardenPool)
    assert (pool.size(), pool.stats().pool_size) == (3, 3)
    pool.close()
