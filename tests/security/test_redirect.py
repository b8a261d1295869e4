"""Issue 13 point 2, black-box: a login (and single-user mode's /login) redirects only to a
path on this site; every usual bypass of `next` ends on "/" (the Location header)."""

from __future__ import annotations

import requests

from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from tests.security.conftest import PASSWORD
from tests.security.test_single_user import serving
from tests.unit.test_login_redirect import BYPASSES

ATTACKS = [b for b in BYPASSES if isinstance(b, str) and b and "\x00" not in b]


def _location(response: requests.Response, base: str) -> str:
    location = response.headers["Location"]
    return location[len(base) :] if location.startswith(base) else location


def test_login_redirects_only_to_paths_on_this_site(team):
    browser = team.browser()  # one tab: each login also ends the session it had before
    for target in ATTACKS:
        response = team.login(browser, "alice", PASSWORD, next_=target)
        assert response.status_code == 302, target
        assert _location(response, team.url) == "/", (target, response.headers["Location"])
    response = team.login(browser, "alice", PASSWORD, next_="/runs?sort=name")
    assert _location(response, team.url) == "/runs?sort=name"
    # the form itself carries only the checked target
    form = browser.get(team.url + "/login", params={"next": "/\t/evil.example/x"}, timeout=30)
    assert 'name="next" value="/"' in form.text and "evil.example" not in form.text


def test_single_user_mode_redirects_only_to_paths_on_this_site(tmp_path):
    db = Database.from_settings(Settings(home=tmp_path, database_url=None))
    upgrade(db)
    try:
        with serving(tmp_path) as (url, _port):
            for target in [*ATTACKS, "/\x00//x"]:
                response = requests.get(
                    url + "/login", params={"next": target}, allow_redirects=False, timeout=30
                )
                assert response.status_code == 302, target
                assert _location(response, url) == "/", (target, response.headers["Location"])
            ok = requests.get(
                url + "/login", params={"next": "/explore"}, allow_redirects=False, timeout=30
            )
            assert _location(ok, url) == "/explore"
    finally:
        db.dispose()
