"""Durable event log: SQLAlchemy 2 async models, engine, migrations and the repository."""
