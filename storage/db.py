"""Engine creation, SQLite pragmas, session scope and the schema-version check."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from netlens.storage.settings import Settings


def make_engine(url: str, idle_transaction_timeout_s: float | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            # Other accounts on the machine must not read the runs (or the sessions table):
            # a folder NetLens creates is the user's alone, and so is the database file.
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            event.listen(engine, "first_connect", lambda *_: _owner_only(Path(path)))
        return engine
    connect_args = {}
    if idle_transaction_timeout_s:
        # A frozen or hung process must not hold row locks forever: the server ends its
        # transaction, and the reaper can requeue the job once its lease expires.
        ms = int(idle_transaction_timeout_s * 1000)
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={ms}"
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args
    )


def _owner_only(path: Path) -> None:
    """chmod 600 a database file this process owns (SQLite gives its -wal and -shm files the
    same mode); a file of another account, or a read-only share, is left as it is."""
    try:
        if path.exists() and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:
        pass


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An engine and its session factory; every public storage call opens one short session."""

    def __init__(self, url: str, idle_transaction_timeout_s: float | None = None):
        self.url = url
        self.engine = make_engine(url, idle_transaction_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.resolved_database_url, idle_transaction_timeout_s=settings.lease_seconds / 2
        )

    def ping(self) -> None:
        """Raise when the database cannot be reached (the health check)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Commit on success, roll back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def has_tables(self) -> bool:
        return inspect(self.engine).has_table("runs")

    def dispose(self) -> None:
        self.engine.dispose()


def is_transient(exc: BaseException) -> bool:
    """A lost connection or a server restarting: worth trying again."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def with_retry(fn, *args, timeout_s: float = 120.0, **kwargs):
    """Call fn, retrying transient database errors with backoff for up to `timeout_s`."""
    import logging
    import time

    deadline, delay = time.monotonic() + timeout_s, 0.25
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            logging.getLogger("netlens.storage").warning(
                "database unavailable (%s); retrying in %.1f s", type(exc).__name__, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def lease_clock(s) -> datetime:
    """Now, for leases (the claim's first heartbeat, every heartbeat, the reaper's cutoff).
    On PostgreSQL the database server's clock: workers, the web app and the reapers run on
    several machines, and one whose clock is off by more than the lease would otherwise have
    its jobs taken from it while it trains (clock behind) or keep a dead worker's jobs
    leased for too long (clock ahead). SQLite is one machine: this process's clock."""
    if s.get_bind().dialect.name == "postgresql":
        return s.scalar(text("SELECT clock_timestamp()")).astimezone(UTC)
    return datetime.now(UTC)
