"""A team server in a real browser: a member logs in and launches a run; the admin page is
refused to them; an admin logs in, finds the run in the queue, cancels it, and disables and
enables an account.

Its own `netlens serve --workers 0` with NETLENS_AUTH=required (login always), a fresh
NETLENS_HOME and the embedded SQLite and filesystem broker: with no worker, the run stays
queued until the admin cancels it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from netlens.storage import jobs, runs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from tests.browser.conftest import REPO, Server, _stop, free_port, shot

pytestmark = pytest.mark.browser

MEMBER, ADMIN = "member1", "admin1"
PASSWORDS = {MEMBER: "member one password", ADMIN: "admin one password"}
RUN_URL = re.compile(r".*/runs/(\d+)$")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The server, its database (opened here too) and the two users."""
    home = tmp_path_factory.mktemp("netlens-team")
    db = Database(f"sqlite:///{home}/netlens.db")
    upgrade(db)
    accounts = {
        MEMBER: users.create_user(db, MEMBER, PASSWORDS[MEMBER]),
        ADMIN: users.create_user(db, ADMIN, PASSWORDS[ADMIN], is_admin=True),
    }
    port = free_port()
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "NETLENS_AUTH": "required",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
    }
    log_path = home / "serve.log"
    log = open(log_path, "w")  # noqa: SIM115 - open for the life of the process
    process = subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "serve", "--workers", "0", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(url=f"http://127.0.0.1:{port}", home=home, log=log_path)
    try:
        deadline = time.monotonic() + 90
        while not _healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"netlens serve did not start:\n{server.log_text()}")
            time.sleep(0.25)
        yield {"server": server, "db": db, "users": accounts}
    finally:
        _stop(process)
        log.close()
        db.dispose()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def page(request, browser, team):
    """A fresh browser context; the test fails on a browser error, a script error or a 5xx
    answer. Errors expected, which Chromium logs: the member's /admin answered 403, and
    /favicon.ico answered 401 while logged out (the self-contained login page names no icon,
    so the browser asks for the default one)."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, bypass_csp=True
    )  # see conftest.page
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    request.node.browser_problems = problems
    admin_url, favicon_url = team["server"].url + "/admin", team["server"].url + "/favicon.ico"

    def console(message):
        if message.type != "error":
            return
        where = message.location.get("url")
        if ("status of 403" in message.text and where == admin_url) or (
            "status of 401" in message.text and where == favicon_url
        ):
            return
        problems.append(f"console error: {message.text} ({message.location})")

    page.on("console", console)
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
        pytest.fail("the browser reported errors:\n" + "\n".join(problems), pytrace=False)


def log_in(page, url: str, name: str) -> None:
    page.goto(url + "/login")
    shot(page, "team-login")
    page.fill("#name", name)
    page.fill("#password", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.wait_for_selector("#nav-account")
    assert page.inner_text("#nav-account").startswith(name)


def _cell(page, run_id: int, column: str) -> str:
    return page.inner_text(f'#admin-jobs tr[data-run="{run_id}"] td[data-col="{column}"]')


def _wait_cell(page, run_id: int, column: str, text: str, timeout_ms: int = 20_000) -> None:
    page.wait_for_function(
        """([id, col, text]) => {
            const cell = document.querySelector(
                `#admin-jobs tr[data-run="${id}"] td[data-col="${col}"]`);
            return cell !== null && cell.innerText.trim() === text;
        }""",
        arg=[run_id, column, text],
        timeout=timeout_ms,
    )


def test_member_launches_a_run_and_an_admin_cancels_it_from_the_queue(page, team):
    url, db, accounts = team["server"].url, team["db"], team["users"]

    # a member logs in and launches a preset from the home page
    log_in(page, url, MEMBER)
    page.locator(".preset-card").first.get_by_role("button", name="Launch").click()
    page.wait_for_url(RUN_URL)
    run_id = int(RUN_URL.match(page.url).group(1))
    info = runs.get_run(db, run_id)
    assert info.owner_id == accounts[MEMBER].id
    assert jobs.get_job(db, run_id).state == "queued"  # no worker: it waits in the queue
    page.wait_for_selector("#run-header")
    shot(page, "team-member-run")

    # the admin page is not theirs
    answer = page.goto(url + "/admin")
    assert answer.status == 403
    assert "admins only" in page.inner_text("body")
    assert not page.locator("#admin-jobs").count()
    shot(page, "team-member-admin-refused")

    # their account page: a token is created, shown once, listed
    page.goto(url + "/account")
    page.fill("#account-token-label", "laptop CLI")
    page.click("#account-token-create")
    page.wait_for_selector("#account-new-token")
    secret = page.inner_text("#account-new-token")
    assert users.token_user(db, secret).name == MEMBER
    page.wait_for_function(
        "document.querySelector('#account-tokens')?.innerText.includes('laptop CLI')"
    )
    shot(page, "team-account")

    # log out (the navbar's button), then in as the admin
    page.goto(url + f"/runs/{run_id}")
    page.click("#nav-logout")
    page.wait_for_url(re.compile(r".*/login$"))
    assert page.goto(url + "/admin").url.startswith(url + "/login")  # logged out for real
    log_in(page, url, ADMIN)

    page.goto(url + "/admin")
    _wait_cell(page, run_id, "state", "queued")
    assert _cell(page, run_id, "owner") == MEMBER
    assert _cell(page, run_id, "queue") == "cpu"
    assert _cell(page, run_id, "attempt") == "1/3"
    assert page.inner_text("#admin-count-queued") == "1"
    assert page.inner_text("#admin-queue-cpu") == "1"  # the message waits on the broker
    shot(page, "team-admin-queue")

    # the time filter: "between dates" shows two date inputs; a day without jobs empties it
    assert not page.locator("#admin-f-dates-box").is_visible()
    page.select_option("#admin-f-time", "dates")
    page.locator("#admin-f-dates-box").wait_for(state="visible")
    page.fill("#admin-f-from", "2020-01-01")
    page.fill("#admin-f-to", "2020-01-02")
    page.wait_for_selector("#admin-jobs >> text=No job matches these filters")
    page.select_option("#admin-f-time", "all")
    _wait_cell(page, run_id, "state", "queued")
    assert not page.locator("#admin-f-dates-box").is_visible()

    # select it: its details show; cancel it
    page.locator(
        f'#admin-jobs tr[data-run="{run_id}"] td[data-col="queue"]'
    ).click()  # a row is its own tick box
    _wait_cell(page, run_id, "pick", "☑")
    page.wait_for_function(
        f"document.querySelector('#admin-detail')?.innerText.includes('#{run_id} ')"
    )
    assert "attempt: 1 of 3" in page.inner_text("#admin-detail")
    page.click("#admin-cancel")
    page.wait_for_function(
        f"document.querySelector('#admin-feedback')?.innerText.includes('run {run_id}: cancelled')"
    )
    _wait_cell(page, run_id, "state", "cancelled")
    page.wait_for_function(
        "document.querySelector('#admin-count-cancelled')?.innerText === '1'", timeout=10_000
    )  # the cards' next refresh (every 3 s)
    assert jobs.get_job(db, run_id).state == "cancelled"
    assert runs.get_run(db, run_id).status == "cancelled"
    shot(page, "team-admin-cancelled")

    # the users card: disable the member (their sessions end), enable them again
    toggle = f'#admin-users-table tr:has(td:text-is("{MEMBER}")) button'
    page.click(toggle)
    page.wait_for_function(
        "document.querySelector('#admin-users-feedback')?.innerText"
        f".startsWith('{MEMBER}: disabled')"
    )
    assert users.get_user_by_name(db, MEMBER).disabled
    page.locator(toggle, has_text="Enable").click()
    page.wait_for_function(
        f"document.querySelector('#admin-users-feedback')?.innerText === '{MEMBER}: enabled'"
    )
    assert not users.get_user_by_name(db, MEMBER).disabled
    # not their own account
    assert page.locator(f'#admin-users-table tr:has(td:text-is("{ADMIN}")) button').is_disabled()
