"""Database engine, session scope, SQLite pragmas, and Alembic upgrades (the only way the schema changes)."""

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

import models  # noqa: F401  (every table registered before Alembic compares)

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = "rapport_read_only"
BUSY_SECONDS = 30  # how long a writer waits for SQLite's one write lock before giving up


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = not parsed.database or parsed.database == ":memory:"
        if not in_memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool = {} if in_memory else {"pool_size": 10, "max_overflow": 20}
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        writers = FairLock()
        event.listen(engine, "begin", lambda connection: _sqlite_begin_immediate(connection, writers))
        event.listen(engine, "commit", lambda connection: _sqlite_end(connection, writers))
        event.listen(engine, "rollback", lambda connection: _sqlite_end(connection, writers))
        return engine
    # hide_parameters: a database error's text would otherwise carry the statement's values (names, notes) into
    # the log.
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy's "begin" event own transactions instead of the driver's lazy BEGIN.
    dbapi_connection.isolation_level = None


class FairLock:
    """A lock granted in the order it was asked for.

    SQLite has one writer at a time, and a writer that finds the database locked polls for it with growing
    sleeps (busy_timeout), so under load one unlucky thread can wait seconds while later ones get in — past
    Slack's 3 seconds. The writers of one process queue here first, in arrival order, and meet SQLite's lock
    only when it is theirs (other processes still meet it through busy_timeout)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        """True once it is ours; False after `timeout` seconds (the caller then meets SQLite's own lock and
        busy_timeout, as a unit of work nested in another would)."""
        me = object()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._queue.append(me)
            while self._held or self._queue[0] is not me:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._queue.remove(me)
                    self._changed.notify_all()
                    return False
                self._changed.wait(left)
            self._queue.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()


_WRITING = "rapport_writing"  # connection.info key: this connection holds the process's write turn


def _sqlite_begin_immediate(connection, writers: FairLock) -> None:
    # A deferred transaction that reads then writes fails with SQLITE_BUSY (busy_timeout cannot help)
    # when another writer got in between; taking the write lock up front makes writers queue instead.
    # Read-only units of work (read_scope) begin deferred and run beside writers (WAL).
    read_only = connection.get_execution_options().get(READ_ONLY)
    if read_only:
        connection.exec_driver_sql("BEGIN")
        return
    connection.info[_WRITING] = writers.acquire(timeout=BUSY_SECONDS)
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _sqlite_end(connection, writers)
        raise


def _sqlite_end(connection, writers: FairLock) -> None:
    if connection.info.pop(_WRITING, False):
        writers.release()


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
