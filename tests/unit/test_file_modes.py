"""Someone else on the same machine: the SQLite database NetLens creates, and the folder it
creates for it, are readable by their owner only."""

from __future__ import annotations

import stat

from netlens.storage.db import Database
from netlens.storage.migrate import upgrade


def test_a_new_sqlite_database_and_its_folder_are_the_owners_alone(tmp_path):
    path = tmp_path / "home" / "netlens.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for side in path.parent.glob("netlens.db-*"):  # WAL and shared-memory files
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side


def test_an_existing_database_open_to_others_is_closed(tmp_path):
    path = tmp_path / "netlens.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    db = Database(f"sqlite:///{path}")
    db.ping()
    db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_embedded_brokers_folders_are_the_owners_alone(tmp_path):
    from netlens.dispatch.celery_app import broker_options
    from netlens.storage.settings import Settings

    settings = Settings(home=tmp_path / "home")
    broker_options(settings)
    for folder in (settings.home, settings.broker_folder, settings.broker_folder / "queue"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
