"""Shared fixtures: migrated SQLite and PostgreSQL databases, small specs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.spec import ExperimentSpec, parse_spec

# One JAX compile cache for every process the suite starts (workers, `netlens train`, servers,
# notebooks), each with a home of its own: without it every test's first worker compiles the
# same tiny programs again (`netlens train --preset xor --epochs 3`, busy 2-core machine: 11 s
# with a cold cache, 4.8 s warm).
# Fresh for each session, so the suite still compiles each program once and a stale cache
# cannot hide anything; netlens honours JAX's own variable (worker/runner.py enable_compile_cache).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _jax_cache = tempfile.mkdtemp(prefix="netlens-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _jax_cache
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)

PG_ADMIN_URL = os.environ.get(
    "NETLENS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def require_service(name: str, error: Exception) -> None:
    """Skip when a server is missing, except on CI where skipping would hide a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required on CI but unavailable: {error}")
    pytest.skip(f"{name} unavailable: {error}")


REDIS_URL = os.environ.get("NETLENS_TEST_REDIS", "redis://127.0.0.1:6379")


def flushed_redis_url(db_number: int) -> str:
    """The URL of one database of the test Redis (127.0.0.1:6379, or NETLENS_TEST_REDIS's
    server: sessions running the same modules at once on one machine would otherwise take
    each other's messages), emptied first; each test module that needs Redis has its own
    number, so modules cannot disturb each other."""
    import redis

    url = f"{REDIS_URL}/{db_number}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.exceptions.ConnectionError as exc:
        require_service("Redis on 127.0.0.1:6379", exc)
    return url


@pytest.fixture
def sqlite_db(tmp_path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'netlens.db'}")
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL on 127.0.0.1:5432", exc)
    return PG_ADMIN_URL


@contextmanager
def fresh_pg_database(pg_server: str) -> Iterator[Database]:
    """A new, migrated PostgreSQL database on the test server, dropped afterwards."""
    name = f"netlens_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    db = Database(f"{base}/{name}")
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_db(pg_server) -> Database:
    with fresh_pg_database(pg_server) as db:
        yield db


@pytest.fixture(params=["sqlite", "postgres"])
def db(request) -> Database:
    """Each test using `db` runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


def small_spec(**sections) -> ExperimentSpec:
    """A spec from section overrides, e.g. small_spec(training={"epochs": 5})."""
    data: dict = {"name": "test"}
    for key, value in sections.items():
        data[key] = value
    return parse_spec(data)
