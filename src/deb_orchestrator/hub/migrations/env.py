"""Alembic environment: the engine comes from the hub (``config.attributes['engine']``), no alembic.ini."""

from __future__ import annotations

from alembic import context

from deb_orchestrator.hub.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
