"""A FastAPI + SQLModel service on poolwarden's SQLAlchemy pool (see ``app.py``)."""
