"""A Flask config file, read as ``app.config.from_pyfile`` reads it, for doctor."""

from __future__ import annotations

import logging
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..flask import LEGACY_KEYS, check_config
from .checks import suggest_recycle
from .errors import CommandError
from .findings import Finding, PoolPlan, Severity
from .fixes import safe_setting
from .server_settings import ServerFacts

__all__ = ["FlaskConfig", "load_flask_config"]

#: Flask-SQLAlchemy 3 gives MySQL engines this pool_recycle unless one is configured
#: (its ``_apply_driver_defaults``).
FLASK_SQLALCHEMY_MYSQL_RECYCLE = 7200


@dataclass
class FlaskConfig:
    """What a Flask config file says about the database and its pool."""

    path: str
    values: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def uri(self) -> str | None:
        """``SQLALCHEMY_DATABASE_URI``, if set to a string."""
        uri = self.values.get("SQLALCHEMY_DATABASE_URI")
        return uri if isinstance(uri, str) else None

    @property
    def engine_options(self) -> dict[str, Any]:
        """``SQLALCHEMY_ENGINE_OPTIONS``, the only pool settings Flask-SQLAlchemy 3 reads."""
        options = self.values.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        return dict(options) if isinstance(options, dict) else {}

    def pool_setting(self, name: str, dialect: str) -> Any:
        """The value Flask-SQLAlchemy 3 gives the engine for ``name`` (None: not set),
        including its own MySQL default for ``pool_recycle``."""
        options = self.engine_options
        if name in options:
            return options[name]
        if name == "pool_recycle" and dialect == "mysql":
            return FLASK_SQLALCHEMY_MYSQL_RECYCLE
        return None

    def checked_findings(
        self, plan: PoolPlan, facts: ServerFacts, useful_pool_size: int | None = None
    ) -> list[Finding]:
        """:attr:`findings`, with fixes whose values pass the checks against ``facts``
        (the legacy value itself may not: ``SQLALCHEMY_POOL_RECYCLE = 30000`` against a
        ``wait_timeout`` of 28800) and ``useful_pool_size`` (``poolwarden size``'s)."""
        return _legacy_key_findings(self, plan, facts, useful_pool_size)


def load_flask_config(path: str) -> FlaskConfig:
    """Run the config file in a fresh namespace and keep its upper-case names, as Flask
    does; report the legacy pool keys Flask-SQLAlchemy 3 ignores."""
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read the Flask config file {path}: {exc.strerror}") from None
    module = types.ModuleType("config")
    module.__file__ = str(file)
    try:
        exec(compile(source, str(file), "exec"), module.__dict__)
    except Exception as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        raise CommandError(
            f"cannot load the Flask config file {path}{where}: {type(exc).__name__}: {exc}"
        ) from None
    values = {key: value for key, value in vars(module).items() if key.isupper()}
    config = FlaskConfig(str(file), values)
    config.findings = _legacy_key_findings(config)
    return config


def _legacy_key_findings(
    config: FlaskConfig,
    plan: PoolPlan | None = None,
    facts: ServerFacts | None = None,
    useful: int | None = None,
) -> list[Finding]:
    """One finding per legacy key; with the pool ``plan`` and the server's ``facts``, the
    value the fix moves into SQLALCHEMY_ENGINE_OPTIONS is one the other checks pass."""
    present = [key for key in LEGACY_KEYS if key in config.values]
    # check_config also logs each finding; doctor prints them itself.
    logger = logging.getLogger("poolwarden")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        messages = check_config(config.values, warn=False)
    finally:
        logger.setLevel(level)
    return [
        _legacy_key_finding(config, key, message, plan, facts, useful)
        for key, message in zip(present, messages, strict=True)
    ]


def _legacy_key_finding(
    config: FlaskConfig,
    key: str,
    message: str,
    plan: PoolPlan | None,
    facts: ServerFacts | None,
    useful: int | None,
) -> Finding:
    option, value = LEGACY_KEYS[key], config.values[key]
    numbers = {
        key: value,
        f"SQLALCHEMY_ENGINE_OPTIONS[{option!r}]": config.engine_options.get(option),
    }
    title = f"{key} in {config.path} is ignored by Flask-SQLAlchemy 3"
    if option in config.engine_options:
        detail = f"{message} (SQLALCHEMY_ENGINE_OPTIONS already sets {option!r}: delete {key})"
        return Finding(
            Severity.WARNING,
            "flask-legacy-key",
            title,
            numbers,
            detail,
            f"delete {key}",
            {key: None},
            key,
        )
    suggested, why = value, ""
    if plan is not None and facts is not None:
        suggested, why = safe_setting(option, value, plan, facts, suggest_recycle, useful)
    detail = message
    if why:
        detail = (
            f"{key}={value!r} is ignored by Flask-SQLAlchemy 3, which reads pool settings "
            f"from SQLALCHEMY_ENGINE_OPTIONS only; moved there, {why}"
        )
    fix = f"SQLALCHEMY_ENGINE_OPTIONS = {{{option!r}: {suggested!r}, ...}}, and delete {key}"
    changes = {key: None, "SQLALCHEMY_ENGINE_OPTIONS": {option: suggested}}
    return Finding(Severity.ERROR, "flask-legacy-key", title, numbers, detail, fix, changes, key)
