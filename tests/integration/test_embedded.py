"""The embedded default: `netlens serve` with no servers configured runs a real Celery worker
process on a filesystem broker and SQLite, the same code path as the lab server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _netlens(*args: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "netlens.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"netlens {args}: {result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_the_web_app_and_jobs_on_the_embedded_broker_and_sqlite(tmp_path):
    env = {
        **os.environ,
        "NETLENS_HOME": str(tmp_path),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
    }
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    serve = subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=cwd,
    )
    try:
        run_id = _netlens("submit", "--preset", "xor", "--epochs", "100", env=env).stdout.split()[
            -1
        ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            shown = json.loads(_netlens("show", run_id, "--json", env=env).stdout)
            if shown["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        text = (tmp_path / "serve.log").read_text()
        assert shown["status"] == "succeeded", text
        assert shown["epochs_recorded"] == 101
        assert "filesystem://" in text and "solo" in text  # a real worker on the local broker
        assert (tmp_path / "netlens.db").exists() and (tmp_path / "broker" / "queue").is_dir()
        assert (tmp_path / "broker" / "control").is_dir()  # never ./control in the cwd
        assert f"running at http://127.0.0.1:{port}/" in text
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{run_id}", timeout=30)
        assert page.status == 200 and b"NetLens" in page.read()
        assert not (cwd / "control").exists()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(30)
