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


def _wait_for_line(log, line: str, timeout: float = 60) -> str:
    """The log's text once `line` is in it (or as it is at the deadline)."""
    deadline = time.monotonic() + timeout
    while line not in (text := log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return text


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
        assert "broker filesystem://" in text  # a real worker on the local broker
        text = _wait_for_line(tmp_path / "serve.log", f"netlens: run {run_id}: analysis epoch")
        # Quiet by default: one readable line per event, no Celery banner, no root warning.
        readable = (
            "ready (queues cpu, solo pool)",
            f"run {run_id} started",
            f"run {run_id} attempt 1 ended succeeded",
        )
        for line in readable:
            assert line in text, text
        for noise in ("-------------- ", "[config]", "SecurityWarning", "INFO/", "No hostname"):
            assert noise not in text, text
        assert (tmp_path / "netlens.db").exists() and (tmp_path / "broker" / "queue").is_dir()
        assert (tmp_path / "broker" / "control").is_dir()  # never ./control in the cwd
        assert f"running at http://127.0.0.1:{port}/" in text
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{run_id}", timeout=30)
        assert page.status == 200 and b"NetLens" in page.read()
        assert not (cwd / "control").exists()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(30)


def test_worker_verbose_brings_back_celerys_banner_and_task_lines(tmp_path):
    env = {
        **os.environ,
        "NETLENS_HOME": str(tmp_path),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "netlens.cli", "worker", "--verbose"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        text = _wait_for_line(log_path, "netlens: worker ")
        assert "ready (queues cpu, solo pool)" in text, text
        assert "-------------- " in text and "[config]" in text and "INFO/" in text, text
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
