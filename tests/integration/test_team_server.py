"""A real `netlens serve` process: bound to all addresses it requires login (no
NETLENS_AUTH needed); bound to the loopback address it runs in single-user mode."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.integration.test_embedded import free_port

PASSWORD = "a long enough password"


def _serve(tmp_path, host: str) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,
        "NETLENS_HOME": str(tmp_path),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "NETLENS_AUTH": "auto",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "users",
            "add",
            "lab-admin",
            "--admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "serve",
            "--workers",
            "0",
            "--host",
            host,
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise AssertionError((tmp_path / "serve.log").read_text())


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def test_bound_to_all_addresses_login_is_required(tmp_path):
    proc, base = _serve(tmp_path, "0.0.0.0")
    try:
        assert "login required" in (tmp_path / "serve.log").read_text()
        anonymous = requests.Session()
        page = anonymous.get(
            base + "/runs", allow_redirects=False, timeout=10, headers={"Accept": "text/html"}
        )  # a browser: redirected
        assert anonymous.get(base + "/runs", timeout=10).status_code == 401  # a script: 401
        assert page.status_code == 302 and page.headers["Location"] == "/login?next=/runs"
        assert anonymous.get(base + "/_dash-layout", timeout=10).status_code == 401
        assert (
            anonymous.post(
                base + "/_dash-update-component", json={"output": "x.children"}, timeout=10
            ).status_code
            == 401
        )
        assert requests.get(base + "/healthz", timeout=10).json()["status"] == "ok"

        browser = requests.Session()
        form = browser.get(base + "/login?next=/runs", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        done = browser.post(
            base + "/login",
            data={"name": "lab-admin", "password": PASSWORD, "csrf": csrf, "next": "/runs"},
            allow_redirects=False,
            timeout=30,
        )
        assert done.status_code == 302 and done.headers["Location"] == "/runs"
        assert browser.get(base + "/runs", timeout=10).status_code == 200
        layout = browser.get(base + "/_dash-layout", timeout=10)
        assert layout.status_code == 200 and "lab-admin" in layout.text
    finally:
        _stop(proc)


def test_bound_to_loopback_it_runs_in_single_user_mode(tmp_path):
    proc, base = _serve(tmp_path, "127.0.0.1")
    try:
        assert "single-user mode" in (tmp_path / "serve.log").read_text()
        assert requests.get(base + "/runs", allow_redirects=False, timeout=10).status_code == 200
        login = requests.get(base + "/login", allow_redirects=False, timeout=10)
        assert login.status_code == 302  # nothing to log in to
    finally:
        _stop(proc)
