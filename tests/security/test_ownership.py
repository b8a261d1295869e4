"""Issue 13 point 10, black-box: ownership by default. Every state-changing callback and every
state-changing route of the live team server is enumerated from the app itself (its rules are
not visible over HTTP); bob then sends each one against alice's run over HTTP, as a client
would, and gets 403 (or, for a multi-run action, a per-run refusal) with the database
unchanged. A new state-changing callback or route that is not classified fails this test."""

from __future__ import annotations

import pytest

from netlens.storage import users
from netlens.storage.settings import Settings
from netlens.webapp.authz import EACH, rule_of, run_of
from tests.unit.test_callback_guard import body_for

# member callbacks and routes that change only the caller's own things (or derived views any
# member may ask for): the guard has nothing of another user's to check
SELF_SCOPED_CALLBACKS = {
    "pages.account.change_password": "the caller's own password",
    "pages.account.manage_tokens": "the caller's own tokens (revoke checks the owner)",
    "pages.new.submit": "creates a run owned by the caller",
    "pages.learn_lesson.train": "creates a lesson's run (or sweep) owned by the caller",
    "pages.runs.compare_selected": "only navigates to /compare",
    "pages.runs.download_csv": "reads only: the runs every member may read, as a CSV file",
    "pages.signatures.analyze": "derived views of a run, which every member may read",
    "pages.signatures.request_projection": "queues a t-SNE / UMAP of a run's epoch: a derived "
    "view, which every member may read (as Analyse)",
}
API_SELF_SCOPED = {
    "submit": "creates a run owned by the caller",
    "create_token": "a token for the caller",
    "revoke_token": "checked below: only its owner or an admin",
    "validate_spec": "changes nothing: checks the posted spec",
    "create_group": "creates a sweep (a group of runs) owned by the caller",
    "request_analyses": "derived views of a run, which every member may read (the "
    "signatures page's Analyze)",
    "create_upload": "an upload owned by the caller",
    "delete_upload": "checked below: only its owner or an admin (others: 404, as a missing one)",
    "create_client_run": "creates a run owned by the caller (streamed from the Python API)",
}
SELF_SCOPED_ROUTES = {
    # the API under /api/v1 (blueprint "api") and its alias /api ("api_alias"): same views
    **{f"{bp}.{name}": why for bp in ("api", "api_alias") for name, why in API_SELF_SCOPED.items()},
    "netlens_upload": "an upload owned by the caller",
    "netlens_logout": "ends the caller's own session",
    "netlens_login": "public",
    "/_dash-update-component": "each callback has its own rule (the callback test above)",
}


@pytest.fixture(scope="module")
def app(team):
    """The server's app, built in this process only to read its rules (never served)."""
    from netlens.webapp.app import create_app

    settings = Settings(home=team.home, database_url=team.db.url, broker_url=None, auth="required")
    app = create_app(settings, team.db)
    app.server.test_client().get("/healthz")  # Dash completes its callback map on a request
    return app


def _name(fn) -> str:
    return f"{fn.__module__}.{fn.__name__}"


def _state_changing(app) -> list[tuple[str, dict]]:
    return [
        (key, entry)
        for key, entry in app.callback_map.items()
        if "callback" in entry
        and (
            rule_of(entry["callback"]) in ("owner", "admin")
            or getattr(entry["callback"], "__netlens_on_click__", False)
        )
    ]


def _position(entry: dict, component_id: str, prop: str) -> int:
    deps = entry["inputs"] + entry.get("state", [])
    return next(n for n, d in enumerate(deps) if (d["id"], d["property"]) == (component_id, prop))


def test_every_state_changing_callback_refuses_another_member(team, trained_run, app):
    bob = team.browser("bob")
    before = team.snapshot()
    checked = {"owner": 0, "each": 0, "admin": 0}
    for key, entry in _state_changing(app):
        fn = entry["callback"]
        access, run = rule_of(fn), run_of(fn)
        if access == "member":
            assert _name(fn) in SELF_SCOPED_CALLBACKS, (
                f"{_name(fn)} changes state with the member rule: give it @rule('owner', "
                "run=...) or list it in SELF_SCOPED_CALLBACKS with the reason"
            )
            continue
        if run == EACH:
            at = _position(entry, "runs-grid", "selectedRows")
            response = team.callback(bob, body_for(key, entry, {at: [{"key": str(trained_run)}]}))
            assert response.status_code == 200 and "belongs to another user" in response.text
            checked["each"] += 1
        elif isinstance(run, tuple):
            body = body_for(key, entry, {_position(entry, *run): trained_run})
            response = team.callback(bob, body)
            assert response.status_code == 403, (_name(fn), response.text[:300])
            assert "belongs to another user" in response.json()["error"]
            checked["owner"] += 1
        else:
            assert access == "admin", _name(fn)
            assert team.callback(bob, body_for(key, entry)).status_code == 403, _name(fn)
            checked["admin"] += 1
        assert team.snapshot() == before, _name(fn)
    assert checked["owner"] >= 2 and checked["each"] >= 1 and checked["admin"] >= 5, checked
    # the control: the owner herself passes the guard (the run has no job: 200 with a message)
    alice = team.browser("alice")
    key, entry = next(
        (k, e)
        for k, e in app.callback_map.items()
        if "callback" in e and _name(e["callback"]) == "pages.run.run_action"
    )
    response = team.callback(alice, body_for(key, entry, {3: trained_run}))
    assert response.status_code == 200 and "no job" in response.text


def _sample(rule) -> str:
    url = rule.rule
    for converter in ("<id:run_id>", "<id:token_id>"):
        url = url.replace(converter, "{}")
    return url.replace("<name>", "alice")  # an admin route on an account: bob at alice's


def test_every_state_changing_route_refuses_another_member(team, trained_run, app):
    bobs_browser = team.browser("bob")  # (logging in adds a session: before the snapshot)
    response = team.api("alice", "POST", "/api/uploads", files={"file": ("a.csv", b"x,y\n1,0\n")})
    assert response.status_code == 201, response.text
    alices_upload = response.json()["id"]
    before = team.snapshot()
    alices_token = next(t.id for t in users.list_tokens(team.db, team.people["alice"].id))
    checked, admin_routes, prefixes = 0, 0, set()
    for rule in app.server.url_map.iter_rules():
        view = app.server.view_functions.get(rule.endpoint)
        access = rule_of(view)
        # admin routes are refused to members whatever they do: their reads too
        reads = {"HEAD", "OPTIONS"} if access == "admin" else {"GET", "HEAD", "OPTIONS"}
        for method in sorted(rule.methods - reads):
            if access == "owner":
                assert run_of(view) == "run_id", rule.rule
                response = team.api("bob", method, _sample(rule).format(trained_run))
                assert response.status_code == 403, (method, rule.rule, response.text)
                assert "belongs to another user" in response.json()["error"]
            elif access == "admin":
                url = _sample(rule).format(trained_run)
                response = team.api("bob", method, url)
                assert response.status_code == 403, (method, rule.rule, response.text)
                # bob's browser session: a member's (403), and no credential at all under /api
                refused = 401 if url.startswith("/api/") else 403
                response = bobs_browser.request(method, team.url + url)
                assert response.status_code == refused, (method, rule.rule, response.text)
            else:
                assert rule.endpoint in SELF_SCOPED_ROUTES, (
                    f"{method} {rule.rule} changes state with rule {access!r}: give it "
                    "@rule('owner', run=...) or list it in SELF_SCOPED_ROUTES with the reason"
                )
                continue
            checked += 1
            admin_routes += access == "admin" and "/admin/" in rule.rule
            prefixes.add(rule.rule.split("/runs/")[0])
            assert team.snapshot() == before, rule.rule
    for prefix in ("/api/v1", "/api"):  # the versioned API and its alias
        response = team.api("bob", "DELETE", f"{prefix}/tokens/{alices_token}")
        assert response.status_code == 403, response.text
        for method in ("GET", "DELETE"):  # another member's upload is not even disclosed
            response = team.api("bob", method, f"{prefix}/uploads/{alices_upload}")
            assert response.status_code == 404, (method, response.text)
        assert alices_upload not in [
            u["id"] for u in team.api("bob", "GET", f"{prefix}/uploads").json()["uploads"]
        ]
    assert team.snapshot() == before
    assert checked >= 6 and {"/api/v1", "/api"} <= prefixes, (checked, prefixes)
    assert admin_routes >= 2 * 8, admin_routes  # the /admin API (both prefixes), reads too
