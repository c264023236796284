"""Flask-SQLAlchemy: use WardenPool, and catch the pool settings Flask-SQLAlchemy ignores.

Flask-SQLAlchemy 3 reads engine options only from ``SQLALCHEMY_ENGINE_OPTIONS``; the older
``SQLALCHEMY_POOL_SIZE``, ``SQLALCHEMY_POOL_TIMEOUT``, ``SQLALCHEMY_POOL_RECYCLE`` and
``SQLALCHEMY_MAX_OVERFLOW`` keys are silently ignored. ::

    from flask_sqlalchemy import SQLAlchemy
    import poolwarden.flask

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 10, "leak_threshold": 30}
    db = SQLAlchemy()
    poolwarden.flask.init_app(app, db)   # WardenPool, config checked, then db.init_app(app)
"""

from __future__ import annotations

import logging
import sys
import warnings
import weakref
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["LEGACY_KEYS", "PoolConfigWarning", "check_config", "init_app"]

log = logging.getLogger("poolwarden")

#: Legacy Flask-SQLAlchemy keys -> the SQLALCHEMY_ENGINE_OPTIONS key that replaced them.
LEGACY_KEYS = {
    "SQLALCHEMY_POOL_SIZE": "pool_size",
    "SQLALCHEMY_POOL_TIMEOUT": "pool_timeout",
    "SQLALCHEMY_POOL_RECYCLE": "pool_recycle",
    "SQLALCHEMY_MAX_OVERFLOW": "max_overflow",
}


class PoolConfigWarning(UserWarning):
    """A pool setting that does not do what it appears to."""


def check_config(
    config: Mapping[str, Any],
    *,
    engine: Any = None,
    server_idle_timeout: float | None = None,
    warn: bool = True,
) -> list[str]:
    """Findings about a Flask app's pool configuration, each also issued once: as a
    :class:`PoolConfigWarning` pointing at the caller's line, or with ``warn=False``
    logged instead (WARNING, logger ``poolwarden``). Not both: with logging left
    unconfigured, Python prints a warning and a log line alike on stderr, so each
    finding would show twice.

    Checks the legacy ``SQLALCHEMY_POOL_*`` keys Flask-SQLAlchemy 3 ignores, and a
    ``pool_recycle`` not below the server's idle timeout (given, or read through
    ``engine``, a SQLAlchemy engine for the app's database).
    """
    findings = _findings(config, engine, server_idle_timeout)
    _issue(findings, warn, sys._getframe(1))
    return findings


def _findings(
    config: Mapping[str, Any], engine: Any, server_idle_timeout: float | None
) -> list[str]:
    findings: list[str] = []
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    for key, option in LEGACY_KEYS.items():
        if key in config:
            findings.append(
                f"{key}={config[key]!r} is ignored by Flask-SQLAlchemy 3: set it as "
                f"SQLALCHEMY_ENGINE_OPTIONS = {{{option!r}: {config[key]!r}}} instead"
            )
    recycle = options.get("pool_recycle")
    if recycle is not None and recycle > 0:
        timeout = server_idle_timeout
        if timeout is None and engine is not None:
            timeout = _read_idle_timeout(engine)
        if timeout and recycle >= timeout:
            findings.append(
                f"pool_recycle={recycle} is not below the server's idle timeout "
                f"(wait_timeout={timeout:g}): the server closes connections first. Lower it, "
                "or drop it with WardenPool, which retires connections before the server's "
                "timeout on its own"
            )
    return findings


def _issue(findings: list[str], warn: bool, caller: Any) -> None:
    """Warn (at the ``caller`` frame's line) or log each finding. The warning gets a
    registry of its own: Python's would show it only for the first app a factory makes
    at that line, where each app should hear about its own configuration."""
    for finding in findings:
        if not warn:
            log.warning("%s", finding)
            continue
        warnings.warn_explicit(
            finding,
            PoolConfigWarning,
            caller.f_code.co_filename,
            caller.f_lineno,
            module=caller.f_globals.get("__name__"),
            registry={},
        )


#: The findings already issued for each app: init_app called again for the same app (a
#: test fixture, a second extension set-up) does not repeat them.
_REPORTED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _new_for(app: Any, findings: list[str]) -> list[str]:
    try:
        reported = _REPORTED.setdefault(app, set())
    except TypeError:  # an app object that takes no weak reference: nothing remembered
        return findings
    new = [finding for finding in findings if finding not in reported]
    reported.update(new)
    return new


def _read_idle_timeout(engine: Any) -> float | None:
    """The server's idle timeout for a session of ``engine``, asked through the adapter of
    its driver (the same query the pool runs on its first connection)."""
    from .adapters import for_connection

    try:
        conn = engine.raw_connection()
        try:
            dbapi_connection = conn.dbapi_connection
            adapter = for_connection(dbapi_connection, lambda: None)
            return adapter.server_idle_timeout(dbapi_connection)
        finally:
            conn.close()
    except Exception as exc:
        log.info("could not read the server's idle timeout: %r", exc)
        return None


def init_app(app: Any, db: Any = None, **options: Any) -> list[str]:
    """Make ``app`` use WardenPool and check its configuration.

    Adds ``poolclass=WardenPool`` (unless another pool class is configured) and
    ``options`` to ``SQLALCHEMY_ENGINE_OPTIONS`` (with ``pool_recycle=-1`` unless set, so
    Flask-SQLAlchemy's own MySQL default of 7200 s does not replace the lifetime WardenPool
    derives from the server), checks the configuration (see
    :func:`check_config`), then calls ``db.init_app(app)`` if ``db`` is given. Returns
    the findings. Each is warned about once per app, at the line that called
    ``init_app``: calling it again for the same app returns them without repeating them.
    """
    from .sqlalchemy import WardenPool

    config: MutableMapping[str, Any] = app.config
    engine_options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options.setdefault("poolclass", WardenPool)
    if engine_options["poolclass"] is WardenPool:
        # Flask-SQLAlchemy gives MySQL engines pool_recycle=7200 unless one is set, which
        # would replace WardenPool's lifetime derived from the server: say "none" (-1).
        engine_options.setdefault("pool_recycle", -1)
    engine_options.update(options)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    findings = _findings(config, None, None)
    _issue(_new_for(app, findings), True, sys._getframe(1))
    if db is not None:
        db.init_app(app)
    return findings
