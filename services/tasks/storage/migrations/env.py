"""Alembic environment: always run through services.tasks.storage.db.migrate,
which passes an open connection."""

from alembic import context

from services.tasks.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
