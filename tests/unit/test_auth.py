"""The team server's guard, through the real Flask/Dash app on a real SQLite database:
every route has a rule; without a login everything but the health check and the login page
answers 401 or redirects; members cannot act on others' runs or reach admin routes, whatever
ids a crafted callback sends; CSRF, cookies, Argon2id, the login rate limit, debug off."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import dash
import pytest
from sqlalchemy import select

from netlens.storage import jobs, runs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.models import User, utcnow
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.auth import CSRF_COOKIE, SESSION_COOKIE, page_access, route_access
from netlens.webapp.authz import PAGES_CALLBACK_PREFIX, RULES, rule_of
from tests.conftest import small_spec

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("auth")
    settings = Settings(home=home, database_url=None, broker_url=None, auth="required")
    db = Database.from_settings(settings)
    upgrade(db)
    people = {
        name: users.create_user(db, name, PASSWORD, is_admin=(name == "root"))
        for name in ("alice", "bob", "root")
    }
    app = create_app(settings, db)
    app.server.test_client().get("/healthz")  # Dash builds its callback map on the 1st request
    yield {"app": app, "db": db, "settings": settings, "users": people}
    db.dispose()


def login(app, name: str, password: str = PASSWORD, *, address: str = "127.0.0.1"):
    client = app.server.test_client()
    client.environ_base["HTTP_ORIGIN"] = "http://localhost"  # as a browser tab of the site
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": csrf},
        environ_base={"REMOTE_ADDR": address},
    )
    return client, response


def sample_url(rule) -> str:
    url = rule.rule
    for converter in re.findall(r"<[^>]+>", url):
        url = url.replace(converter, "1" if converter.startswith(("<int:", "<id:")) else "x")
    return url


def server_callbacks(app) -> dict[str, dict]:
    return {key: entry for key, entry in app.callback_map.items() if "callback" in entry}


def callback_body(
    key: str, entry: dict, inputs: dict | None = None, state: dict | None = None
) -> dict:
    """The JSON Dash's renderer posts for this callback (values from `inputs` / `state`)."""
    inputs, state = inputs or {}, state or {}

    def spec(item, values):
        out = {"id": item["id"], "property": item["property"]}
        out["value"] = values.get(f"{item['id']}.{item['property']}")
        return out

    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
    trigger = next(iter(inputs), f"{entry['inputs'][0]['id']}.{entry['inputs'][0]['property']}")
    return {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": [spec(i, inputs) for i in entry["inputs"]],
        "state": [spec(s, state) for s in entry.get("state", [])],
        "changedPropIds": [trigger],
    }


def find_callback(app, function_name: str) -> tuple[str, dict]:
    for key, entry in server_callbacks(app).items():
        if entry["callback"].__name__ == function_name:
            return key, entry
    raise KeyError(function_name)


# ---- every route has a rule -----------------------------------------------------------------


def test_every_route_page_and_callback_has_an_authorization_rule(site):
    app = site["app"]
    missing = [
        r.rule
        for r in app.server.url_map.iter_rules()
        if route_access(r.endpoint, app.server) not in RULES
    ]
    assert not missing, f"routes without an authorization rule: {missing}"
    pages = [p["module"] for p in dash.page_registry.values() if p.get("access") not in RULES]
    assert not pages, f"pages without access=...: {pages}"
    callbacks = [
        f"{e['callback'].__module__}.{e['callback'].__name__}"
        for key, e in server_callbacks(app).items()
        if not key.startswith(PAGES_CALLBACK_PREFIX) and rule_of(e["callback"]) not in RULES
    ]
    assert not callbacks, f"callbacks without @rule: {callbacks}"
    assert len(server_callbacks(app)) > 40  # the enumeration really saw the app's callbacks
    public = sorted(
        r.rule
        for r in app.server.url_map.iter_rules()
        if route_access(r.endpoint, app.server) == "public"
    )
    assert public == ["/healthz", "/login"]


def test_a_callback_or_route_without_a_rule_is_refused(site):
    client, _ = login(site["app"], "root")
    response = client.post(
        "/_dash-update-component", json={"output": "nothing.children", "inputs": [], "state": []}
    )
    assert response.status_code == 403


# ---- without a login ------------------------------------------------------------------------


def test_without_a_session_or_token_every_route_answers_401_or_redirects_to_login(site):
    app = site["app"]
    client = app.server.test_client()
    checked = 0
    for rule in app.server.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = sample_url(rule)
            response = client.open(
                url,
                method=method,
                json={} if method != "GET" else None,
                headers={"Accept": "text/html"},
            )
            checked += 1
            if url in ("/healthz", "/login"):  # public; a login POST without its form token: 400
                assert response.status_code == (400 if method == "POST" else 200), (method, url)
                continue
            assert response.status_code == 401 or (
                response.status_code == 302 and response.headers["Location"].startswith("/login")
            ), (method, url, response.status_code)
    for page in dash.page_registry.values():
        response = client.get(
            sample_url(type("R", (), {"rule": page.get("path_template") or page["path"]}))
        )
        assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    for key, entry in server_callbacks(app).items():
        response = client.post("/_dash-update-component", json=callback_body(key, entry))
        assert response.status_code == 401, key
    assert checked >= 12


def test_a_bad_or_revoked_token_is_401_and_the_api_never_takes_the_session_cookie(site):
    app, db = site["app"], site["db"]
    token_id, secret = users.create_token(db, site["users"]["alice"].id, "t")
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {secret}x"}
    assert client.get("/api/openapi.json", headers=headers).status_code == 401
    users.revoke_token(db, token_id, users.Actor.of(site["users"]["alice"]))
    assert users.token_user(db, secret) is None
    browser, _ = login(app, "alice")
    assert browser.get("/api/runs").status_code == 401


# ---- members and admins ---------------------------------------------------------------------


@pytest.fixture
def alices_queued_run(site):
    db = site["db"]
    delivery = jobs.submit(db, small_spec(name="alice-run"), owner_id=site["users"]["alice"].id)
    yield delivery.run_id
    try:
        runs.delete_run(db, delivery.run_id)
    except runs.RunNotFound:
        pass


def run_page_module():
    return sys.modules["pages.run"]


def test_a_crafted_callback_cannot_cancel_retry_edit_or_delete_another_users_run(
    site, alices_queued_run
):
    app, db, run_id = site["app"], site["db"], alices_queued_run
    bob, _ = login(app, "bob")
    ids = run_page_module().ids
    key, entry = find_callback(app, "run_action")
    for button in (ids.CANCEL, ids.RETRY, ids.RETRY_SCRATCH):
        body = callback_body(
            key, entry, inputs={f"{button}.n_clicks": 1}, state={f"{ids.RUN_ID}.data": run_id}
        )
        response = bob.post("/_dash-update-component", json=body)
        assert response.status_code == 403  # the guard's owner rule, before the callback
        assert "belongs to another user" in response.text
    key, entry = find_callback(app, "save_fields")
    body = callback_body(
        key,
        entry,
        inputs={f"{ids.SAVE}.n_clicks": 1},
        state={
            f"{ids.RUN_ID}.data": run_id,
            f"{ids.NAME}.value": "bob was here",
            f"{ids.TAGS}.value": "",
            f"{ids.NOTES}.value": "",
        },
    )
    response = bob.post("/_dash-update-component", json=body)
    assert response.status_code == 403 and "belongs to another user" in response.text
    runs_page = sys.modules["pages.runs"]
    key, entry = find_callback(app, "act_on_selection")
    for button in (runs_page.CANCEL, runs_page.DELETE):
        body = callback_body(
            key,
            entry,
            inputs={f"{button}.n_clicks": 1},
            state={f"{runs_page.GRID}.selectedRows": [{"key": str(run_id)}]},
        )
        assert "belongs to another user" in bob.post("/_dash-update-component", json=body).text
    info, job = runs.get_run(db, run_id), jobs.get_job(db, run_id)
    assert (info.name, info.status, job.state, job.attempt) == ("alice-run", "queued", "queued", 1)

    # the owner can (and so can an admin: see the next test)
    alice, _ = login(app, "alice")
    key, entry = find_callback(app, "save_fields")
    body = callback_body(
        key,
        entry,
        inputs={f"{ids.SAVE}.n_clicks": 1},
        state={
            f"{ids.RUN_ID}.data": run_id,
            f"{ids.NAME}.value": "renamed",
            f"{ids.TAGS}.value": "",
            f"{ids.NOTES}.value": "",
        },
    )
    assert "saved" in alice.post("/_dash-update-component", json=body).text
    assert runs.get_run(db, run_id).name == "renamed"


def test_buttons_act_only_on_a_real_click(site, alices_queued_run):
    """Dash fired the run page's Cancel, with n_clicks None, when the page was opened from the
    home page without a reload: such a call must change nothing (webapp.authz.on_click)."""
    app, db = site["app"], site["db"]
    alice, _ = login(app, "alice")
    ids = run_page_module().ids
    key, entry = find_callback(app, "run_action")
    body = callback_body(key, entry, state={f"{ids.RUN_ID}.data": alices_queued_run})
    body["changedPropIds"] = [f"{b}.n_clicks" for b in (ids.CANCEL, ids.RETRY, ids.RETRY_SCRATCH)]
    assert alice.post("/_dash-update-component", json=body).status_code == 204
    assert jobs.get_job(db, alices_queued_run).state == "queued"
    # every callback of buttons only that may change something (owner, admin) has the guard
    actions = {
        f"{e['callback'].__module__}.{e['callback'].__name__}": getattr(
            e["callback"], "__netlens_on_click__", False
        )
        for e in server_callbacks(app).values()
        if all(i["property"] == "n_clicks" for i in e["inputs"])
        and rule_of(e["callback"]) in ("owner", "admin")
    }
    guarded = [name for name, ok in actions.items() if ok]
    unguarded = [name for name, ok in actions.items() if not ok]
    assert guarded and not unguarded, unguarded


def test_an_admin_may_cancel_anyones_run(site, alices_queued_run):
    app, db = site["app"], site["db"]
    root, _ = login(app, "root")
    ids = run_page_module().ids
    key, entry = find_callback(app, "run_action")
    body = callback_body(
        key,
        entry,
        inputs={f"{ids.CANCEL}.n_clicks": 1},
        state={f"{ids.RUN_ID}.data": alices_queued_run},
    )
    assert "cancelled" in root.post("/_dash-update-component", json=body).text
    assert jobs.get_job(db, alices_queued_run).state == "cancelled"


def test_a_crafted_cancel_or_retry_of_a_finished_run_is_refused_and_changes_nothing(
    site, alices_queued_run
):
    """The page mutes these buttons, but a crafted callback still reaches the server."""
    app, db, run_id = site["app"], site["db"], alices_queued_run
    attempt = jobs.get_job(db, run_id).attempt
    assert jobs.claim(db, run_id, attempt, "test-worker") is not None
    jobs.finish(db, run_id, attempt, "succeeded")
    before = (jobs.get_job(db, run_id), runs.get_run(db, run_id))
    alice, _ = login(app, "alice")  # the owner: the guard lets her through
    ids = run_page_module().ids
    key, entry = find_callback(app, "run_action")
    expected = {
        ids.CANCEL: "only queued or running jobs can be cancelled",
        ids.RETRY: "only failed or cancelled jobs can be retried",
        ids.RETRY_SCRATCH: "only failed or cancelled jobs can be retried",
    }
    for button, reason in expected.items():
        body = callback_body(
            key, entry, inputs={f"{button}.n_clicks": 1}, state={f"{ids.RUN_ID}.data": run_id}
        )
        response = alice.post("/_dash-update-component", json=body)
        assert response.status_code == 200, response.text
        assert f"run {run_id} is succeeded: {reason}" in response.text
        assert "Refused" in response.text and "Nothing was changed" in response.text
    assert (jobs.get_job(db, run_id), runs.get_run(db, run_id)) == before


def test_a_member_gets_403_on_every_admin_page_and_callback(site):
    app = site["app"]
    member, _ = login(app, "bob")
    admin_pages = [p for p in dash.page_registry.values() if p.get("access") == "admin"]
    for page in admin_pages:
        assert member.get(page["path"]).status_code == 403
        key, entry = next(
            (k, e) for k, e in server_callbacks(app).items() if k.startswith(PAGES_CALLBACK_PREFIX)
        )
        body = callback_body(
            key,
            entry,
            inputs={"_pages_location.pathname": page["path"], "_pages_location.search": ""},
        )
        assert member.post("/_dash-update-component", json=body).status_code == 403
    admin_callbacks = [
        (k, e) for k, e in server_callbacks(app).items() if rule_of(e["callback"]) == "admin"
    ]
    for key, entry in admin_callbacks:
        assert (
            member.post("/_dash-update-component", json=callback_body(key, entry)).status_code
            == 403
        ), key
    admin_routes = [
        r
        for r in app.server.url_map.iter_rules()
        if route_access(r.endpoint, app.server) == "admin"
    ]
    for rule in admin_routes:
        # under /api a session cookie is no credential at all (401); a member's token gets
        # 403 there (tests/integration/test_api_admin.py)
        expected = 401 if rule.rule.startswith("/api/") else 403
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (
                member.open(
                    sample_url(rule), method=method, json={} if method != "GET" else None
                ).status_code
                == expected
            ), (rule.rule, method)
    assert admin_pages, "the admin queue page exists and is admin-only"
    root, _ = login(app, "root")
    assert root.get(admin_pages[0]["path"]).status_code == 200
    assert page_access("/runs/7") == "member" and page_access("/admin") == "admin"


# ---- CSRF, cookies, debug -------------------------------------------------------------------


def test_cross_origin_and_text_plain_posts_to_the_callback_endpoint_are_rejected(site):
    app = site["app"]
    client, _ = login(app, "alice")
    key, entry = find_callback(app, "save_fields")
    body = callback_body(key, entry)
    # a form on another site: text/plain (no preflight) and its Origin
    assert (
        client.post(
            "/_dash-update-component", data=json.dumps(body), content_type="text/plain"
        ).status_code
        == 415
    )
    assert client.post(
        "/_dash-update-component",
        data={"output": key},
        headers={"Origin": app.server.config.get("X", "http://localhost")},
    ).status_code in (403, 415)
    assert (
        client.post(
            "/_dash-update-component", json=body, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/_dash-update-component", json=body, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    # the login form needs the token from its own page
    fresh = app.server.test_client()
    assert fresh.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 400


def test_session_cookie_flags_logout_and_server_side_end(site):
    app = site["app"]
    client, response = login(app, "alice")
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert client.get("/runs").status_code == 200
    assert client.post("/logout").status_code == 302
    replay = app.server.test_client()
    replay.set_cookie(SESSION_COOKIE, token)
    assert replay.get("/runs").status_code == 302  # the server forgot the session
    secure = app.server.test_client()
    page = secure.get("/login", base_url="https://lab.example")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert "Secure" in page.headers["Set-Cookie"]
    response = secure.post(
        "/login",
        base_url="https://lab.example",
        data={"name": "alice", "password": PASSWORD, "csrf": csrf},
    )
    assert "Secure" in response.headers["Set-Cookie"] and response.status_code == 302


def test_next_after_login_stays_on_this_site(site):
    client = site["app"].server.test_client()
    page = client.get("/login?next=//evil.example/x")
    assert 'value="/"' in page.text and "evil" not in page.text.split('name="next"')[1][:40]


def test_debug_is_off_unless_asked_for(site, tmp_path):
    app = site["app"]
    assert app.server.debug is False and not app._dev_tools.get("ui")
    on = create_app(Settings(home=tmp_path, debug=True), site["db"])
    assert on.server.debug is True


def test_password_change_and_disabling_end_sessions(site):
    app, db = site["app"], site["db"]
    users.create_user(db, "carol", PASSWORD)
    first, _ = login(app, "carol")
    second, _ = login(app, "carol")
    token_id, secret = users.create_token(db, users.get_user_by_name(db, "carol").id)
    users.change_password(
        db,
        users.get_user_by_name(db, "carol").id,
        PASSWORD,
        PASSWORD + "!",
        keep_session=_session_of(second),
    )
    assert first.get("/runs").status_code == 302 and second.get("/runs").status_code == 200
    users.set_disabled(db, "carol")
    assert second.get("/runs").status_code == 302
    assert users.token_user(db, secret) is None
    _, response = login(app, "carol", PASSWORD + "!")
    assert response.status_code == 401


def _session_of(client) -> str:
    return client.get_cookie(SESSION_COOKIE).value


# ---- passwords and the rate limit -----------------------------------------------------------


def test_passwords_are_stored_only_as_argon2id_hashes(site):
    db = site["db"]
    with db.session() as s:
        for user in s.scalars(select(User)):
            assert user.password_hash.startswith("$argon2id$v=19$")
            row = " ".join(str(getattr(user, c.key)) for c in User.__table__.columns)
            assert PASSWORD not in row
    with pytest.raises(users.UserError, match="password: 10 to 256 characters"):
        users.create_user(db, "dave", "short")
    with pytest.raises(users.UserError, match="name: 2 to 40 characters"):
        users.create_user(db, "../etc", PASSWORD)


def test_wrong_passwords_are_throttled_per_name_and_address_and_per_address(site):
    app, db = site["app"], site["db"]
    users.create_user(db, "erin", PASSWORD)
    for _ in range(5):  # 3 free, the 4th blocks for 2 s, the 5th is refused while blocked
        _, response = login(app, "erin", "wrong password!", address="10.0.0.7")
        assert response.status_code in (401, 429)
    assert response.status_code == 429 and "Too many failed" in response.text
    assert int(response.headers["Retry-After"]) >= 1
    # the scenario: the right password from another address still logs in
    _, response = login(app, "erin", PASSWORD, address="10.0.0.8")
    assert response.status_code == 302
    later = utcnow() + timedelta(seconds=2)
    assert users.authenticate(db, "erin", PASSWORD, "10.0.0.7", now=later).name == "erin"
    limit = users.DEFAULT.address_limit
    for i in range(limit):
        with pytest.raises(users.AuthFailed):
            users.authenticate(db, f"nobody{i}", "x", "10.9.9.9")
    with pytest.raises(users.RateLimited):
        users.authenticate(db, "alice", PASSWORD, "10.9.9.9")
    assert users.authenticate(db, "alice", PASSWORD, "10.9.9.10").name == "alice"


# ---- single-user mode -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "auth", "required"),
    [
        ("127.0.0.1", "auto", False),
        ("localhost", "auto", False),
        ("::1", "auto", False),
        ("0.0.0.0", "auto", True),
        ("192.168.1.20", "auto", True),
        ("127.0.0.1", "required", True),
    ],
)
def test_single_user_mode_only_on_loopback(site, tmp_path, host, auth, required):
    app = create_app(Settings(home=tmp_path, auth=auth), site["db"], bind_host=host)
    assert app.server.config["NETLENS"].auth_required is required
    status = app.server.test_client().get("/runs").status_code
    assert status == (302 if required else 200)


def test_the_login_cookie_for_the_form_is_scoped_to_the_login_page(site):
    page = site["app"].server.test_client().get("/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith(CSRF_COOKIE) and "Path=/login" in cookie and "HttpOnly" in cookie
