"""Shared by migrations that alter a table other tables reference, on SQLite."""

from collections.abc import Callable
from contextlib import contextmanager

from alembic import context, op


def is_sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


@contextmanager
def sqlite_foreign_keys_off(revision: str):
    """SQLite's way to alter a referenced table (sqlite.org/lang_altertable.html, 12 steps).

    Batch mode copies `runs` and drops the original; with foreign keys on, that DROP deletes
    every run first and cascades into all recorded epochs, jobs and analyses. The pragma
    cannot change inside a transaction, so: commit the migrations before this one (each is
    already stamped), turn the keys off, alter in one transaction, check, turn them back on
    before the pooled connection serves anyone else. Other databases: nothing to do.
    """
    if not is_sqlite():
        yield
        return
    if context.is_offline_mode():
        raise NotImplementedError(f"{revision} on SQLite must run online: `netlens db upgrade`")
    raw = op.get_bind().connection.dbapi_connection
    execute: Callable = raw.execute
    if raw.in_transaction:
        raw.commit()
    execute("PRAGMA foreign_keys=OFF")
    execute("BEGIN")
    try:
        yield
        broken = execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by migration {revision}: {broken[:5]}")
    except BaseException:
        raw.rollback()
        raise
    else:
        raw.commit()
    finally:
        execute("PRAGMA foreign_keys=ON")
