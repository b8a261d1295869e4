"""The database the Python API reads and writes: the one `netlens` commands use
($NETLENS_DATABASE_URL, else SQLite under $NETLENS_HOME), opened once per process and
migrated when it is the embedded SQLite database (as the CLI does)."""

from __future__ import annotations

import threading

from netlens.storage.db import Database
from netlens.storage.settings import Settings

_lock = threading.Lock()
_opened: dict[str, Database] = {}


def settings() -> Settings:
    return Settings()  # reads NETLENS_* from the environment (pydantic-settings)


def database(settings_: Settings | None = None) -> Database:
    """The database of `settings_` (default: the environment's), opened once per URL."""
    from netlens.storage.migrate import ensure_schema

    chosen = settings_ or settings()
    db = Database.from_settings(chosen)
    with _lock:
        if db.url in _opened:
            db.dispose()
            return _opened[db.url]
        ensure_schema(db, auto_upgrade=db.is_sqlite)
        _opened[db.url] = db
        return db
