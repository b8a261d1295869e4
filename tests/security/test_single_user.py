"""Point 5 of issue 13, black-box: a real loopback-bound `netlens serve` in single-user mode (no
login, SQLite home) refuses a DNS-rebinding Host, a request that came through a proxy, and a
client's `dataset.path` (REST API and the new-experiment submit callback), and the database
is unchanged after each; started with NETLENS_PROXY_HOPS it asks for logins."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from netlens.storage.db import Database
from netlens.storage.settings import Settings
from tests.integration.test_embedded import free_port
from tests.security.conftest import Team

SECRET = "netlens-secret-marker,7\n1,2\n"  # a file on the server no client may read
PATH_REFUSED = "dataset.path: file paths are accepted only from the command line on the server"
PROXY_REFUSED = "a proxy was detected"


@contextlib.contextmanager
def serving(home: Path, **settings: str):
    """`netlens serve --workers 0` on 127.0.0.1 with this SQLite home (and NETLENS_* settings),
    up until the block ends; yields its URL and port."""
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "NETLENS_AUTH": "auto",
        "NETLENS_PROXY_HOPS": "0",
        "NETLENS_ALLOWED_HOSTS": "",
        "JAX_PLATFORMS": "cpu",
        **{f"NETLENS_{k.upper()}": v for k, v in settings.items()},
    }
    port = free_port()
    log_path = home / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netlens.cli",
                "serve",
                "--workers",
                "0",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
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
        yield url, port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    home = tmp_path_factory.mktemp("single-user-server")
    (home / "secret.csv").write_text(SECRET)
    db = Database.from_settings(Settings(home=home, database_url=None))
    try:
        with serving(home) as (url, port):
            assert "single-user mode" in (home / "serve.log").read_text()
            yield SimpleNamespace(url=url, port=port, home=home, db=db)
    finally:
        db.dispose()


def snapshot(local) -> dict:
    return Team.snapshot(SimpleNamespace(db=local.db))  # the suite's "every row" comparison


def post_run(local, body: dict, **headers) -> requests.Response:
    return requests.post(local.url + "/api/runs", json=body, headers=headers, timeout=60)


def test_a_rebinding_host_is_refused_on_every_kind_of_route(local):
    before = snapshot(local)
    xor = {"preset": "xor", "overrides": {"training.epochs": 1}}
    for name in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io"):
        host = f"{name}:{local.port}"
        for response in (
            requests.get(local.url + "/healthz", headers={"Host": host}, timeout=30),
            requests.get(local.url + "/runs", headers={"Host": host}, timeout=30),
            requests.get(local.url + "/_dash-layout", headers={"Host": host}, timeout=30),
            post_run(local, xor, Host=host, Origin=f"http://{host}"),
        ):
            assert response.status_code == 421, (host, response.text[:300])
            assert "refused: this NetLens runs in single-user mode" in response.text
    assert snapshot(local) == before
    # the same requests with a loopback Host are answered (the refusals were the Host's doing)
    for host in (f"localhost:{local.port}", f"[::1]:{local.port}"):
        assert (
            requests.get(local.url + "/runs", headers={"Host": host}, timeout=30).status_code == 200
        )


def test_a_forwarded_request_is_refused(local):
    before = snapshot(local)
    xor = {"preset": "xor", "overrides": {"training.epochs": 1}}
    for header, value in (
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Real-IP", "203.0.113.9"),
    ):
        for response in (
            requests.get(local.url + "/runs", headers={header: value}, timeout=30),
            post_run(local, xor, **{header: value}),
        ):
            assert response.status_code == 403, response.text[:300]
            assert PROXY_REFUSED in response.text
            assert "netlens users add NAME --admin" in response.text
            assert "NETLENS_AUTH=required" in response.text
    assert snapshot(local) == before
    # control: without the header the same request queues a run, and the snapshot sees it
    assert post_run(local, xor).status_code == 201
    assert snapshot(local) != before


def test_the_api_refuses_a_dataset_path(local):
    before = snapshot(local)
    path = str(local.home / "secret.csv")
    for body in (
        {"spec": {"dataset": {"name": "csv", "path": path}, "training": {"epochs": 1}}},
        {"preset": "xor", "overrides": {"dataset": {"name": "csv", "path": path}}},
    ):
        response = post_run(local, body)
        assert response.status_code == 422, response.text[:300]
        assert PATH_REFUSED in response.json()["error"]
        assert "netlens-secret-marker" not in response.text
    assert snapshot(local) == before


def submit_callback_body(local, values: dict) -> dict:
    """The new-experiment page's submit callback as the browser would call it, built from the
    server's own /_dash-dependencies (every input and state in its declared order)."""
    deps = requests.get(local.url + "/_dash-dependencies", timeout=30).json()
    dep = next(d for d in deps if "new-feedback.children" in d["output"])
    outputs = [
        {"id": o.split(".")[0], "property": o.split(".")[1]}
        for o in dep["output"].strip(".").split("...")
    ]
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{**i, "value": 1} for i in dep["inputs"]],
        "state": [
            {**s, "value": values.get(s["id"], False if s["property"] == "is_open" else None)}
            for s in dep["state"]
        ],
        "changedPropIds": [f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"],
    }


def test_the_submit_callback_refuses_a_dataset_path(local):
    before = snapshot(local)
    body = submit_callback_body(
        local, {"f-dataset": "csv", "f-path": str(local.home / "secret.csv"), "f-epochs": 1}
    )
    response = requests.post(
        local.url + "/_dash-update-component", json=body, timeout=60, headers={"Origin": local.url}
    )
    assert response.status_code == 200, response.text[:500]
    feedback = json.dumps(response.json()["response"])
    assert PATH_REFUSED in feedback and "Not submitted" in feedback
    assert "netlens-secret-marker" not in response.text
    assert "new-redirect" not in response.json()["response"]  # no run to go to
    assert snapshot(local) == before
    # control: the same body for a built-in dataset, without a path, queues a run
    body = submit_callback_body(local, {"f-dataset": "xor", "f-epochs": 1})
    response = requests.post(
        local.url + "/_dash-update-component", json=body, timeout=60, headers={"Origin": local.url}
    )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["response"]["new-redirect"]["pathname"].startswith("/runs/")


def test_proxy_hops_at_start_mean_logins(tmp_path):
    with serving(tmp_path, proxy_hops="1") as (url, _port):
        log = (tmp_path / "serve.log").read_text()
        assert "login required: NETLENS_PROXY_HOPS=1: requests come through a proxy" in log
        response = requests.get(
            url + "/api/runs", timeout=30, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert response.status_code == 401  # a login is asked for, not the local admin
        assert requests.get(url + "/runs", timeout=30).status_code == 401
