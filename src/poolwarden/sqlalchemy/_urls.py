"""The URL checks of poolwarden's ``create_engine`` and ``create_async_engine``.

SQLAlchemy's own messages for a URL it cannot parse may quote a password (``invalid literal
for int() with base 10: 'hunter2'`` for ``user:hunter2`` with its ``@host`` forgotten), and
an option the driver does not take fails only at the first connect, as the driver's
``unexpected keyword argument``. These checks say both up front, in poolwarden's words.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from .._net.url import ASYNC_DIALECTS, DIALECT_ALIASES, DRIVER_ALIASES, malformed_url_error
from ..adapters import ADAPTERS, ASYNC_ADAPTERS
from ..adapters._options import check_url_options
from ..adapters.base import BaseAdapter

__all__ = ["check_url_options_of", "engine_url"]


def engine_url(url: Any, asyncio: bool) -> Any:
    """``url`` as SQLAlchemy will read it, or a ``ValueError`` naming what is wrong with
    it and showing it without anything that could be a password. For an asyncio engine,
    a URL naming no driver (``mysql://``, ``postgresql://``) gets poolwarden's asyncio
    default (asyncmy, psycopg), where SQLAlchemy would pick a sync driver and fail."""
    if isinstance(url, str):
        try:
            parsed = make_url(url)
        except (sa_exc.ArgumentError, ValueError):
            # Raised outside this block, so SQLAlchemy's message (which may quote the
            # password) is not even kept as the error's __context__.
            parsed = None
        if parsed is None or (parsed.port is not None and not 1 <= parsed.port <= 65535):
            raise malformed_url_error(url)
        url = parsed
    if asyncio and isinstance(url, URL) and "+" not in url.drivername:
        dialect = DIALECT_ALIASES.get(url.drivername, url.drivername)
        default = ASYNC_DIALECTS.get(dialect, ("", ()))[0]
        if default:
            url = url.set(drivername=f"{url.drivername}+{default}")
    return url


def _adapter_class(engine: Engine) -> type[BaseAdapter] | None:
    dialect = DIALECT_ALIASES.get(engine.dialect.name, engine.dialect.name)
    driver = DRIVER_ALIASES.get(engine.dialect.driver, engine.dialect.driver)
    scheme = f"{dialect}+{driver}"
    table: dict[str, Any] = ASYNC_ADAPTERS if engine.dialect.is_async else ADAPTERS
    return table.get(scheme)


def check_url_options_of(engine: Engine) -> None:
    """Refuse a URL query option that SQLAlchemy would pass to the driver's connect and
    the driver does not take (drivers poolwarden does not know are not checked)."""
    cls = _adapter_class(engine)
    if cls is None or not engine.url.query:
        return
    try:
        dbapi = cls.import_driver()
        _, passed = engine.dialect.create_connect_args(engine.url)
    except Exception:  # SQLAlchemy reports these itself at the first connect
        return
    scheme = f"{engine.url.get_backend_name()}+{engine.dialect.driver}"
    check_url_options(scheme, engine.url.query, passed, cls.driver_options(dbapi), "url")
