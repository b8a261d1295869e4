"""A real `netlens serve --workers 0` for tests that talk to it over HTTP (the API, the
security suite, the contract fuzzer): the environment they share, the start, the wait for
/healthz, and the stop of the whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import pytest
import requests

from tests.integration.test_embedded import free_port


def team_env(home: Path, database_url: str, broker_url: str, **extra: str) -> dict:
    """A team server's environment (logins required) with its own home and temp folder."""
    (home / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": database_url,
        "NETLENS_BROKER_URL": broker_url,
        "NETLENS_AUTH": "required",
        "JAX_PLATFORMS": "cpu",
        "TMPDIR": str(home / "tmp"),
        "NETLENS_ANALYZE_AFTER_TRAINING": "0",
        **extra,
    }
    env.pop("NETLENS_TOKEN", None)
    return env


@contextmanager
def live_server(env: dict, home: Path) -> Iterator[str]:
    """Its URL once /healthz answers; its output in home/serve.log (shown if it fails)."""
    port = free_port()
    log_path = home / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "netlens.cli", "serve", "--workers", "0", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server not up:\n" + log_path.read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def api_site_fixtures(redis_db: int) -> tuple:
    """For a module that tests the REST API as tests/integration/test_api.py does: that
    module's fixtures (api_db: a fresh PostgreSQL database; site: the live server with users
    and tokens; trained_run), made again for the calling module (module scope), on Redis
    database `redis_db` of its own; and `schemas`, which checks an answer against the served
    OpenAPI document's schema of a model. Unpack all five into the module's globals:

        api_db, site, trained_run, redis_url, schemas = api_site_fixtures(REDIS_DB)
    """
    from tests.conftest import flushed_redis_url
    from tests.integration import test_api  # it imports this module: not at the top

    @pytest.fixture(scope="module")
    def redis_url():
        return flushed_redis_url(redis_db)

    @pytest.fixture(scope="module")
    def schemas(site):
        doc = site.call("alice", "GET", "/api/openapi.json").json()

        def check(body, model: str):
            schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
            jsonschema.Draft202012Validator(schema).validate(body)
            return body

        check.doc = doc
        return check

    return test_api.api_db, test_api.site, test_api.trained_run, redis_url, schemas
