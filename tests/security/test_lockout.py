"""Issue 13 point 3, black-box: guessing a user's password from one address blocks that name
from that address with growing delays (429 + Retry-After), never the user from elsewhere;
parallel guesses cannot pass the limit; an admin sees and clears throttles. Uses accounts of
its own (lock*) and clears what it counted, so the other tests' logins are not throttled."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from netlens.storage import throttle, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from tests.security.conftest import PASSWORD
from tests.security.test_single_user import serving

WRONG = "not the password at all"
CLEAR_ALL = "admin-throttle-clear-all"


@pytest.fixture
def counted(team):
    """Clear this module's throttles (and the shared address's count) afterwards."""
    yield
    for t in throttle.list_throttles(team.db):
        if t.name.startswith("lock") or t.kind == throttle.ADDRESS:
            throttle.clear(team.db, t.key)


def _login(team, name, password):
    return team.login(team.browser(), name, password)


def test_wrong_passwords_block_the_name_from_that_address_with_retry_after(team, counted):
    users.create_user(team.db, "lockone", PASSWORD)
    statuses = [_login(team, "lockone", WRONG).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 401]  # 3 free; the 4th starts a 2 s block
    before = team.snapshot()
    refused = _login(team, "lockone", PASSWORD)  # even the right password, from here, now
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 2
    assert team.snapshot() == before  # no session was made
    time.sleep(wait)
    assert _login(team, "lockone", PASSWORD).status_code == 302
    assert "n|lockone|127.0.0.1" not in {t.key for t in throttle.list_throttles(team.db)}


def test_forty_parallel_guesses_never_pass_the_limit(team, counted):
    users.create_user(team.db, "lockpar", PASSWORD)
    sessions = [team.browser() for _ in range(40)]
    forms = [s.get(team.url + "/login", timeout=30).text for s in sessions]
    tokens = [f.split('name="csrf" value="')[1].split('"')[0] for f in forms]
    barrier, statuses = threading.Barrier(40), []

    def guess(session, token):
        barrier.wait()
        response = session.post(
            team.url + "/login",
            data={"name": "lockpar", "password": WRONG, "csrf": token, "next": "/"},
            allow_redirects=False,
            timeout=120,
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=guess, args=pair) for pair in zip(sessions, tokens, strict=True)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # 3 free + the one that starts a 2 s block; one more per block that ran out meanwhile
    # (2, then 4, then 8 s: 40 Argon2 checks on a small machine take a few seconds)
    allowed, total, delay = 4, 0, 2
    while total + delay <= elapsed:
        allowed, total, delay = allowed + 1, total + delay, delay * 2
    counts = {t.key: t.failures for t in throttle.list_throttles(team.db)}
    assert counts["n|lockpar|127.0.0.1"] == statuses.count(401) <= allowed, (statuses, elapsed)
    assert statuses.count(429) == 40 - statuses.count(401) >= 40 - allowed


def _clear_all_body(team, session) -> dict:
    deps = session.get(team.url + "/_dash-dependencies", timeout=30).json()
    dep = next(d for d in deps if "admin-throttle-table.children" in d["output"])
    outputs = [
        dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
        for o in dep["output"].strip(".").split("...")
    ]
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [[], {"id": CLEAR_ALL, "property": "n_clicks", "value": 1}],
        "changedPropIds": [f"{CLEAR_ALL}.n_clicks"],
    }


def test_an_admin_sees_and_clears_throttles_a_member_cannot(team, counted):
    users.create_user(team.db, "lockadm", PASSWORD)
    assert _login(team, "lockadm", WRONG).status_code == 401
    keys = {t.key for t in throttle.list_throttles(team.db)}
    assert "n|lockadm|127.0.0.1" in keys
    member, root = team.browser("bob"), team.browser("root")
    body = _clear_all_body(team, root)
    assert team.callback(member, body).status_code == 403
    assert {t.key for t in throttle.list_throttles(team.db)} == keys
    answer = team.callback(root, body)
    assert answer.status_code == 200 and "throttle(s) cleared" in answer.text
    assert "n|lockadm|127.0.0.1" not in {t.key for t in throttle.list_throttles(team.db)}


def test_the_issues_scenario_behind_a_proxy(tmp_path):
    """Five wrong passwords for root from one address, then the right one from another: it
    logs in (a server with NETLENS_PROXY_HOPS=1, so X-Forwarded-For names the client)."""
    settings = Settings(home=tmp_path, database_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    users.create_user(db, "root", PASSWORD, is_admin=True)
    try:
        with serving(tmp_path, proxy_hops="1", auth="required") as (url, _port):

            def login(password, address):
                session = requests.Session()
                session.headers.update({"Origin": url, "X-Forwarded-For": address})
                form = session.get(url + "/login", timeout=30).text
                token = form.split('name="csrf" value="')[1].split('"')[0]
                return session.post(
                    url + "/login",
                    data={"name": "root", "password": password, "csrf": token, "next": "/"},
                    allow_redirects=False,
                    timeout=60,
                )

            attacker = [login(WRONG, "203.0.113.9").status_code for _ in range(5)]
            assert attacker == [401, 401, 401, 401, 429]
            assert login(PASSWORD, "198.51.100.7").status_code == 302
            assert login(PASSWORD, "203.0.113.9").status_code == 429  # the guesser still waits
    finally:
        db.dispose()
