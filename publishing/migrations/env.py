"""Alembic environment: runs on the connection handed over by publishing.db.upgrade, or on
DISCLOSURE_DATABASE_URL when alembic is called from the command line."""

from alembic import context
from sqlmodel import SQLModel

import publishing.apikeys  # noqa: F401  (api_keys)
import publishing.models  # noqa: F401  (registers the tables)
import publishing.request_models  # noqa: F401  (objections, credit repair, users, audit)
from publishing.db import get_engine, in_models

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        with get_engine().begin() as conn:
            _run_on(conn)
    else:
        _run_on(connection)


def _run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=in_models,  # `alembic check` / autogenerate leave the search tables be
    )
    with context.begin_transaction():
        context.run_migrations()


run()
