"""An asyncio FastAPI + SQLModel service on poolwarden's asyncio SQLAlchemy pool (see
``app.py``)."""
