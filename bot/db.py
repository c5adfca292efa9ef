"""Database engine, session scope, SQLite pragmas, and Alembic upgrades (the only way the schema changes)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

import models  # noqa: F401  (every table registered before Alembic compares)

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = "rapport_read_only"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = not parsed.database or parsed.database == ":memory:"
        if not in_memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool = {} if in_memory else {"pool_size": 10, "max_overflow": 20}
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy's "begin" event own transactions instead of the driver's lazy BEGIN.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection) -> None:
    # A deferred transaction that reads then writes fails with SQLITE_BUSY (busy_timeout cannot help)
    # when another writer got in between; taking the write lock up front makes writers queue instead.
    # Read-only units of work (read_scope) begin deferred and run beside writers (WAL).
    read_only = connection.get_execution_options().get(READ_ONLY)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back whole on any error (no partial writes)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work that only reads: on SQLite it does not queue for the write lock. Nothing is committed."""
    # Closing (not rolling back) ends the transaction and keeps loaded objects usable for rendering.
    with Session(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


def alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
