"""A small "items" CRUD service: Flask and Flask-SQLAlchemy on poolwarden's pool.

    flask --app examples.flask_sqlalchemy.app run

The poolwarden-specific line is ``poolwarden.flask.init_app(app, db)`` in place of
``db.init_app(app)``: it adds ``poolclass=WardenPool`` to ``SQLALCHEMY_ENGINE_OPTIONS``,
warns about pool settings Flask-SQLAlchemy would ignore, then initialises ``db``. The
database is ``$DATABASE_URL`` (default: the local MariaDB ``test`` database). ``GET
/metrics`` serves the pool's metrics in Prometheus's text format.

``GET /buggy/leak`` is a deliberate bug: it opens a session and never closes it, so that
poolwarden's leak report (logger ``poolwarden``, after ``leak_threshold`` seconds) can be
seen naming it.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, abort, request
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import poolwarden.flask
from poolwarden.metrics import PrometheusCollector

__all__ = ["DEFAULT_DATABASE_URL", "Item", "create_app", "db"]

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

#: Pool settings of this example; ``create_app(**engine_options)`` overrides them.
ENGINE_DEFAULTS: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "leak_threshold": 30.0}

#: Sessions opened by the buggy route and never closed. Holding them here keeps them from
#: being garbage-collected, which would hand their connections back: a real leak.
LEAKED: list[Session] = []


class Base(DeclarativeBase):
    """Models derive from this class rather than ``db.Model``: the same metadata, and a
    base class type checkers understand."""


db = SQLAlchemy(model_class=Base)


class Item(Base):
    """A stored item."""

    __tablename__ = "pw_example_flask_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(default=0)

    def to_json(self) -> dict[str, Any]:
        """The item as the API shows it."""
        return {"id": self.id, "name": self.name, "quantity": self.quantity}


def create_app(database_url: str | None = None, **engine_options: Any) -> Flask:
    """The service on ``database_url`` (default ``$DATABASE_URL``, else the local
    MariaDB), with :data:`ENGINE_DEFAULTS` updated by ``engine_options`` (any SQLAlchemy
    or WardenPool argument). Creates the table if it is missing."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ.get(
        "DATABASE_URL", DEFAULT_DATABASE_URL
    )
    # Pool settings belong here: Flask-SQLAlchemy 3 ignores SQLALCHEMY_POOL_SIZE and co.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**ENGINE_DEFAULTS, **engine_options}
    poolwarden.flask.init_app(app, db)
    app.register_blueprint(_routes())
    # The app's own registry rather than prometheus_client.REGISTRY, which refuses the
    # same metric names twice: a second app in one process (tests, a reload) would fail.
    metrics_registry = CollectorRegistry()
    with app.app_context():
        db.create_all()
        metrics_registry.register(PrometheusCollector(db.engine))

    @app.get("/metrics")
    def metrics() -> ResponseReturnValue:
        """The pool's metrics, for Prometheus to scrape."""
        return generate_latest(metrics_registry), {"Content-Type": CONTENT_TYPE_LATEST}

    return app


def _routes() -> Blueprint:
    """The service's routes. ``db.session`` is request-scoped: Flask-SQLAlchemy removes
    it when the request's app context ends, which hands its connection back."""
    bp = Blueprint("items", __name__)

    @bp.post("/items")
    def create_item() -> ResponseReturnValue:
        """Store a new item."""
        fields = _item_fields(required=True)
        item = Item(**fields)
        db.session.add(item)
        db.session.commit()
        return item.to_json(), 201

    @bp.get("/items")
    def list_items() -> ResponseReturnValue:
        """Every item, by id."""
        items = db.session.scalars(select(Item).order_by(Item.id)).all()
        return [item.to_json() for item in items]

    @bp.get("/items/<int:item_id>")
    def get_item(item_id: int) -> ResponseReturnValue:
        """One item, or 404."""
        return db.get_or_404(Item, item_id).to_json()

    @bp.patch("/items/<int:item_id>")
    def update_item(item_id: int) -> ResponseReturnValue:
        """Change the fields sent."""
        item = db.get_or_404(Item, item_id)
        for name, value in _item_fields(required=False).items():
            setattr(item, name, value)
        db.session.commit()
        return item.to_json()

    @bp.delete("/items/<int:item_id>")
    def delete_item(item_id: int) -> ResponseReturnValue:
        """Delete an item."""
        db.session.delete(db.get_or_404(Item, item_id))
        db.session.commit()
        return "", 204

    @bp.get("/buggy/leak")
    def buggy_leak() -> ResponseReturnValue:
        """BUG, on purpose: a session opened beside the request-scoped ``db.session`` and
        never closed. Its connection stays checked out; poolwarden reports it."""
        session = Session(db.engine)
        count = len(session.scalars(select(Item)).all())
        LEAKED.append(session)
        return {"items": count}

    return bp


def _item_fields(*, required: bool) -> dict[str, Any]:
    """The item fields of the request's JSON body; 400 if any is missing (when
    ``required``) or of the wrong type."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object")
    fields: dict[str, Any] = {}
    for name, kind in (("name", str), ("quantity", int)):
        if name in body:
            value = body[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                abort(400, description=f"{name} must be a {kind.__name__}")
            fields[name] = value
        elif required and name == "name":
            abort(400, description="name is required")
    if isinstance(fields.get("name"), str) and len(fields["name"]) > 100:
        abort(400, description="name is longer than 100 characters")
    return fields
