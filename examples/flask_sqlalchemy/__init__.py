"""A Flask + Flask-SQLAlchemy service on poolwarden's SQLAlchemy pool (see ``app.py``)."""
