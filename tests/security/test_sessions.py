"""Issue 13 point 9, black-box: a login ends the session the browser had (a planted session
dies); unused sessions end; a state-changing request with the session cookie and no Origin,
Sec-Fetch-Site or Referer is refused (token API calls are not); the account page's
current-password check is throttled; every response carries the security headers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from netlens.storage import throttle, users
from netlens.storage.models import WebSession, utcnow
from tests.security.conftest import PASSWORD
from tests.security.test_tokens import callback_body

COOKIE = "netlens_session"


def sessions_of(team, name: str) -> int:
    user_id = users.get_user_by_name(team.db, name).id
    with team.db.session() as s:
        return s.scalar(
            select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)
        )


def logged_in(team, cookie: str) -> bool:
    """Whether this session cookie still opens a page (no redirect to /login)."""
    response = requests.get(
        team.url + "/runs", cookies={COOKIE: cookie}, allow_redirects=False, timeout=30
    )
    return response.status_code == 200


def test_a_login_ends_the_session_the_browser_had(team):
    attacker = team.browser("bob")
    planted = attacker.cookies[COOKIE]
    victim = requests.Session()
    victim.headers["Origin"] = team.url
    # fixation: the attacker's session planted in the victim's tab, as the server set it
    cookie = next(c for c in attacker.cookies if c.name == COOKIE)
    victim.cookies.set(COOKIE, planted, domain=cookie.domain, path=cookie.path)
    bob_before = sessions_of(team, "bob")
    assert team.login(victim, "alice", PASSWORD).status_code == 302
    fresh = victim.cookies[COOKIE]
    assert fresh != planted and logged_in(team, fresh)
    assert not logged_in(team, planted)  # the old session is gone on the server
    assert sessions_of(team, "bob") == bob_before - 1
    alice_before = sessions_of(team, "alice")
    assert team.login(victim, "alice", PASSWORD).status_code == 302  # logging in again
    assert victim.cookies[COOKIE] != fresh and not logged_in(team, fresh)
    assert sessions_of(team, "alice") == alice_before


def test_a_logout_or_a_revoked_token_is_refused_at_once_despite_the_identity_cache(team):
    """The server remembers identities for a few seconds; a logout and a token revoked
    through it are made in its own process, which forgets them at once."""
    browser = team.browser("alice")
    cookie = browser.cookies[COOKIE]
    assert logged_in(team, cookie) and logged_in(team, cookie)  # now in the cache
    assert browser.post(team.url + "/logout", timeout=30, allow_redirects=False).status_code == 302
    assert not logged_in(team, cookie)

    info = users.get_user_by_name(team.db, "alice")
    token_id, secret = users.create_token(team.db, info.id, "revoked at once")
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):
        assert team.api(None, "GET", "/api/runs", headers=headers).status_code == 200
    revoke = requests.delete(
        team.url + f"/api/tokens/{token_id}",
        timeout=30,
        headers={"Authorization": f"Bearer {team.tokens['alice']}"},
    )
    assert revoke.status_code in (200, 204), revoke.text
    assert team.api(None, "GET", "/api/runs", headers=headers).status_code == 401


def test_an_idle_session_ends(team):
    browser = team.browser("alice")
    cookie = browser.cookies[COOKIE]
    assert logged_in(team, cookie)
    with team.db.engine.begin() as conn:  # nine hours unused (the default idle time is 8 h)
        conn.execute(
            update(WebSession)
            .where(WebSession.token_hash == users._digest(cookie))
            .values(last_seen_at=utcnow() - timedelta(hours=9))
        )
    team.wait_for_other_process_change()
    assert not logged_in(team, cookie)
    with team.db.session() as s:
        assert s.get(WebSession, users._digest(cookie)) is None


def test_a_post_with_the_cookie_and_no_origin_is_refused(team, trained_run):
    browser = team.browser("alice")
    body = callback_body(
        team,
        browser,
        "run-save-fb.children",
        {"run-name": "renamed by no-origin", "run-tags": "", "run-notes": ""},
    )
    bare = requests.Session()  # the cookie, and none of Origin, Sec-Fetch-Site, Referer
    bare.cookies.update(browser.cookies)
    before = team.snapshot()
    response = bare.post(team.url + "/_dash-update-component", json=body, timeout=30)
    assert response.status_code == 403 and "Origin" in response.json()["error"]
    assert bare.post(team.url + "/logout", timeout=30, allow_redirects=False).status_code == 403
    assert team.snapshot() == before
    assert logged_in(team, browser.cookies[COOKIE])
    # a same-origin Referer alone is a browser saying where it is: accepted
    ok = bare.post(
        team.url + "/_dash-update-component",
        json=body,
        timeout=30,
        headers={"Referer": team.url + f"/runs/{trained_run}"},
    )
    assert ok.status_code != 403
    # the API with a token has no ambient credential: no Origin needed
    assert team.api("alice", "POST", "/api/runs/999999/cancel").status_code == 404


def test_the_current_password_check_is_throttled(team):
    users.create_user(team.db, "sesspw", PASSWORD)
    browser = team.browser("sesspw")
    wrong = callback_body(
        team,
        browser,
        "account-change-feedback.children",
        {
            "account-old": "not my password",
            "account-new": "a new long one!",
            "account-repeat": "a new long one!",
        },
    )
    try:
        said = [team.callback(browser, wrong).text for _ in range(5)]
        assert all("current password: does not match" in t for t in said[:4])
        assert "too many failed attempts" in said[4]
    finally:
        throttle.clear(team.db, "n|sesspw|127.0.0.1")
        throttle.clear(team.db, "a|127.0.0.1")


@pytest.mark.parametrize("path", ["/login", "/", "/healthz", "/api/runs", "/_dash-layout"])
def test_every_response_carries_the_security_headers(team, path):
    headers = team.browser("alice").get(team.url + path, timeout=30, allow_redirects=False).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # plain HTTP
