"""A legacy Flask-SQLAlchemy pool key is reported once per app: one warning, not also a
log line, not again when the same app is set up twice. (No server needed: nothing
connects.)"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import poolwarden.flask
from poolwarden.flask import PoolConfigWarning
from tests.conftest import mysql_url

MESSAGE = "SQLALCHEMY_POOL_SIZE=10 is ignored by Flask-SQLAlchemy 3"


def legacy_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = mysql_url("pymysql")
    app.config["SQLALCHEMY_POOL_SIZE"] = 10
    return app


def pool_warnings(recwarn: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in recwarn if issubclass(w.category, PoolConfigWarning)]


def test_one_warning_and_no_log_line_per_app(
    recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    app, db = legacy_app(), SQLAlchemy()
    with caplog.at_level(logging.DEBUG, logger="poolwarden"):
        findings = poolwarden.flask.init_app(app, db)
        poolwarden.flask.init_app(app)  # set up again: nothing new to say
    assert [w for w in pool_warnings(recwarn) if MESSAGE in w] == findings
    assert len(findings) == 1
    assert [r for r in caplog.records if MESSAGE in r.getMessage()] == []
    (warning,) = [w for w in recwarn if issubclass(w.category, PoolConfigWarning)]
    assert warning.filename == __file__  # the caller's line, not poolwarden's


def test_each_app_hears_about_its_own_config(recwarn: pytest.WarningsRecorder) -> None:
    for _ in range(2):  # an app factory: same line, two apps
        poolwarden.flask.init_app(legacy_app())
    assert len([w for w in pool_warnings(recwarn) if MESSAGE in w]) == 2


def test_check_config_logs_instead_when_not_warning(
    recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="poolwarden"):
        poolwarden.flask.check_config({"SQLALCHEMY_POOL_SIZE": 10}, warn=False)
    assert pool_warnings(recwarn) == []
    assert len([r for r in caplog.records if MESSAGE in r.getMessage()]) == 1


def test_printed_once_on_stderr() -> None:
    """What the user saw: with Python's default warning filters and no logging set up,
    the warning and the log line both reached stderr."""
    script = textwrap.dedent(
        f"""
        from flask import Flask
        from flask_sqlalchemy import SQLAlchemy
        import poolwarden.flask
        app = Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = {mysql_url("pymysql")!r}
        app.config["SQLALCHEMY_POOL_SIZE"] = 10
        poolwarden.flask.init_app(app, SQLAlchemy())
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr.count(MESSAGE) == 1, done.stderr
