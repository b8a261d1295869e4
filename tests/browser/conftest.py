"""Browser tests: one real `netlens serve` (embedded SQLite, filesystem broker, one real worker)
for the whole session, driven by Debian's headless Chromium through Playwright.

Playwright's own browser download is never used: Chromium comes from the system
(`/usr/bin/chromium`, installed by scripts/browser.sh). Without it, or without Playwright, the
tests are skipped locally and fail on CI (`require_service`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from netlens.storage.db import Database
from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
# These flags keep Chromium from reaching for the network (this machine has none: without them
# it stalls on QUIC, component updates and sync) and from needing a GPU or a sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90


@dataclass(frozen=True)
class Server:
    url: str  # e.g. "http://127.0.0.1:41234" (no trailing slash)
    home: Path  # NETLENS_HOME: the SQLite file is home / "netlens.db"
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200 and b"NetLens" in response.read()
    except OSError:
        return False


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """`python -m netlens.cli serve` on a free port with a fresh NETLENS_HOME."""
    home = tmp_path_factory.mktemp("netlens-home")
    port = free_port()
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
    }
    log_path = home / "serve.log"
    log = open(log_path, "w")  # noqa: SIM115 - open for the life of the process
    # cwd=home: Celery's filesystem transport keeps its control (broadcast) tables in
    # ./control relative to the working directory, whatever NETLENS_HOME says; run from the
    # checkout, it rewrites the tracked control/celery.pidbox.exchange.
    process = subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "serve", "--port", str(port)],
        cwd=home,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    found = Server(url=f"http://127.0.0.1:{port}", home=home, log=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"netlens serve exited with {process.returncode}:\n{found.log_text()}")
            if "running at http://" in found.log_text() and _answers(found.url + "/"):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"netlens serve did not answer within {START_TIMEOUT_S} s:\n{found.log_text()}"
                )
            time.sleep(0.25)
        yield found
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the web app and its worker), SIGKILL stragglers.
    A worker's warm shutdown waits for its current task (often a signature analysis queued by
    the last test's run): nothing of it is needed once the tests are done, so 5 s is enough."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            # The worker child may outlive its parent for a moment: give the group a kill too.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def web_db(server) -> Database:
    """The server's own SQLite database, opened from the test process to check what exists."""
    db = Database(f"sqlite:///{server.home}/netlens.db")
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require_service("Playwright (pip install playwright)", exc)
    executable = shutil.which("chromium")
    if executable is None:
        require_service("Chromium", FileNotFoundError("no `chromium` on PATH (scripts/browser.sh)"))
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def three_runs(web_db):
    """Three XOR runs (two seeds and a wider layer), trained in this process into the server's
    database: the pages read them like any other run (test_compare.py, test_url_state.py)."""
    from netlens.storage import runs
    from netlens.worker.runner import run_experiment
    from tests.conftest import small_spec

    made = []
    for name, seed, units in (("cmp seed 0", 0, 3), ("cmp seed 1", 1, 3), ("cmp wide", 0, 5)):
        run_id = runs.create_run(
            web_db,
            small_spec(
                name=name,
                dataset={"name": "xor"},
                optimizer={"learning_rate": 0.1},
                training={"epochs": 40, "batch_size": 4, "seed": seed},
                model={"hidden": [{"units": units, "activation": "tanh"}]},
            ),
        )
        run_experiment(web_db, run_id)
        made.append(run_id)
    return made


@pytest.fixture
def page(request, browser, server):
    """A fresh page; the test fails if the browser logged an error, a script threw, or a
    request to the server answered 5xx (a callback that raised). Nothing is ignored: warnings
    (e.g. AG Grid's or WebGL's performance notes) are not errors and are not collected."""
    # Playwright compiles wait_for_function's string predicates with eval in the page,
    # which the app's CSP forbids: these tests bypass it; tests/browser/test_csp.py does not.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    request.node.browser_problems = problems  # checked right after the test body (hook below)
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text} ({m.location})")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: (
            problems.append(f"HTTP {r.status}: {r.request.method} {r.url}")
            if r.status >= 500
            else None
        ),
    )
    yield page
    context.close()
    if problems and not getattr(request.node, "browser_problems_reported", False):
        # The test body failed first (so the hook did not look), or errors came in afterwards.
        pytest.fail("the browser reported errors:\n" + "\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Browser errors fail the test itself (not only its teardown) once its body has passed."""
    result = yield
    problems = getattr(item, "browser_problems", None)
    if problems:
        item.browser_problems_reported = True
        pytest.fail("the browser reported errors:\n" + "\n".join(problems), pytrace=False)
    return result


def shot(page, name: str) -> Path:
    """A full-page screenshot in <repo>/test-artifacts/<name>.png (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
