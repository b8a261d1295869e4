"""Run Alembic migrations from code and check that a database is at the latest revision."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from netlens import migrations
from netlens.storage.db import Database


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


@contextmanager
def _migration_lock(db: Database):
    """Processes starting together (serve, submit) must not migrate one SQLite file twice."""
    path = db.engine.url.database
    if not db.is_sqlite or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_schema(db: Database, auto_upgrade: bool) -> None:
    """Upgrade (embedded SQLite) or refuse to start on an out-of-date schema, naming the fix."""
    if current_revision(db) == head_revision(db):
        return
    if auto_upgrade:
        with _migration_lock(db):
            if current_revision(db) != head_revision(db):
                upgrade(db)
        return
    raise SchemaOutOfDate(
        f"the database schema is at revision {current_revision(db)!r}, NetLens needs "
        f"{head_revision(db)!r}: run `netlens db upgrade` (with the same NETLENS_DATABASE_URL)"
    )
