"""The pool settings doctor checks: each from its option, else the Flask config, else
SQLAlchemy's default."""

from __future__ import annotations

from typing import Any

from .errors import CommandError
from .findings import PoolPlan
from .flask_config import FlaskConfig

__all__ = ["DEFAULTS", "MINIMUM", "pool_plan"]

#: SQLAlchemy's QueuePool defaults, used for settings given nowhere.
DEFAULTS: dict[str, float | None] = {"pool_size": 5, "max_overflow": 10, "pool_recycle": None}

#: The smallest value each setting may have in a Flask config.
MINIMUM = {"pool_size": 1, "max_overflow": 0, "pool_recycle": -1}


def pool_plan(
    kind: str,
    config: FlaskConfig | None,
    given: dict[str, float | None],
    processes: int,
    instances: int,
) -> PoolPlan:
    """The settings for a ``kind`` (the URL's dialect) database: each from ``given`` (the
    options; None: not given), else ``config``, else :data:`DEFAULTS`."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, default in DEFAULTS.items():
        option = "--" + name.replace("_", "-")
        configured = config.pool_setting(name, kind) if config else None
        if given.get(name) is not None:
            values[name], sources[name] = given[name], option
        elif configured is not None:
            values[name] = _config_number(name, configured)
            explicit = name in (config.engine_options if config else {})
            sources[name] = (
                "SQLALCHEMY_ENGINE_OPTIONS" if explicit else "Flask-SQLAlchemy's MySQL default"
            )
        else:
            values[name], sources[name] = default, "default"
    recycle = values["pool_recycle"]
    return PoolPlan(
        pool_size=int(values["pool_size"]),
        max_overflow=int(values["max_overflow"]),
        pool_recycle=None if recycle is None or recycle < 0 else float(recycle),
        processes=processes,
        instances=instances,
        sources=sources,
    )


def _config_number(name: str, value: Any) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or value < MINIMUM[name] or (name == "pool_recycle" and -1 < value < 0):
        raise CommandError(
            f"SQLALCHEMY_ENGINE_OPTIONS[{name!r}] = {value!r} in the Flask config: expected a "
            f"number >= {MINIMUM[name]}" + (" (-1 or >= 0)" if name == "pool_recycle" else "")
        )
    return float(value)
