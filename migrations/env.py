"""Alembic environment: targets SQLModel.metadata (our tables and slack_sdk's OAuth tables)."""

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata
MIGRATION_LOCK = int.from_bytes(b"rapport", "big")  # the advisory lock every Rapport process upgrades under


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from bot.config import load_settings
        from bot.db import make_engine

        engine = make_engine(load_settings().database)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Processes starting together upgrade one after the other (held until this transaction ends);
                # the later ones then find the schema at head.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
        connection.commit()


run_migrations()
