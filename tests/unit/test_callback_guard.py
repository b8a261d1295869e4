"""The guard binds every callback body by position (webapp/callback_guard.py): for every
registered callback, a member's permuted, duplicated, missing, extra and wrongly typed inputs
are refused or handled cleanly (never a 500), and no body shows a member the admin page."""

from __future__ import annotations

import json
import re
import time

import pytest
from dash._utils import stringify_id

from netlens.storage import jobs, runs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.authz import PAGES_CALLBACK_PREFIX, rule_of
from tests.conftest import small_spec

PASSWORD = "a long enough password"
# what only the admin page (and its callbacks) show
ADMIN_MARKERS = ("Admin: the job queue", "admin-page", "admin-jobs", "admin-workers", "admin-users")
BAD_VALUES = ("x", {"a": 1}, [1, 2], 10**30, -1, 1.5, True, None, "9" * 5000)
PATHS = (
    "/admin",
    "admin",
    "//admin",
    "/admin/",
    "/admin//",
    "/ADMIN",
    "/runs/../admin",
    "/./admin",
    "/admin?x=1",
    "/admin#x",
    " /admin",
    "/%61dmin",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("guard")
    settings = Settings(home=home, database_url=None, broker_url=None, auth="required")
    db = Database.from_settings(settings)
    upgrade(db)
    people = {
        name: users.create_user(db, name, PASSWORD, is_admin=(name == "root"))
        for name in ("alice", "bob", "root")
    }
    queued = jobs.submit(db, small_spec(name="alices"), owner_id=people["alice"].id).run_id
    app = create_app(settings, db)
    app.server.test_client().get("/healthz")  # Dash completes its callback map on a request
    yield {"app": app, "db": db, "users": people, "run": queued}
    db.dispose()


def login(app, name: str):
    client = app.server.test_client()
    client.environ_base["HTTP_ORIGIN"] = "http://localhost"
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf})
    assert response.status_code == 302
    return client


def callbacks(app) -> dict[str, dict]:
    return {key: entry for key, entry in app.callback_map.items() if "callback" in entry}


def _concrete(id_text: str):
    """A pattern id as the renderer sends it (wildcards filled in), or the plain id."""
    if not id_text.startswith("{"):
        return id_text, None
    pattern = json.loads(id_text)
    kinds = {v[0] for v in pattern.values() if isinstance(v, list)}
    return {k: (1 if isinstance(v, list) else v) for k, v in pattern.items()}, kinds


def _item(dep: dict, value):
    id_, kinds = _concrete(dep["id"])
    item = {"id": id_, "property": dep["property"], "value": value}
    return [item] if kinds and kinds & {"ALL", "ALLSMALLER"} else item


def _outputs(key: str):
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    items = [
        _item({"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]}, None) for p in parts
    ]
    for item in items:
        for one in item if isinstance(item, list) else [item]:
            one.pop("value")
    return items if key.startswith("..") else items[0]


def body_for(key: str, entry: dict, values: dict[int, object] | None = None) -> dict:
    """The body Dash's renderer posts, with `values` by position (inputs, then state) and
    the first input as the trigger (value 1 unless given)."""
    values = {0: 1, **(values or {})}
    deps = entry["inputs"] + entry.get("state", [])
    items = [_item(dep, values.get(n)) for n, dep in enumerate(deps)]
    first = items[0][0] if isinstance(items[0], list) else items[0]
    return {
        "output": key,
        "outputs": _outputs(key),
        "inputs": items[: len(entry["inputs"])],
        "state": items[len(entry["inputs"]) :],
        "changedPropIds": [f"{stringify_id(first['id'])}.{first['property']}"],
    }


def post(client, body, *, is_admin: bool = False):
    """Post a callback body: never a server error, and admin content only for admins."""
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code < 500, (
        body["output"][:80],
        response.status_code,
        response.text[:300],
    )
    if response.status_code == 200 and not is_admin:
        for marker in ADMIN_MARKERS:
            assert marker not in response.text, (body["output"][:80], marker)
    return response


# ---- the attack of the issue ----------------------------------------------------------------


def test_swapped_routing_inputs_are_refused_and_never_show_the_admin_page(site):
    app = site["app"]
    bob = login(app, "bob")
    key = next(k for k in callbacks(app) if k.startswith(PAGES_CALLBACK_PREFIX))
    swapped = {
        "output": key,
        "outputs": _outputs(key),
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
        "inputs": [
            {"id": "_pages_location", "property": "search", "value": "/admin"},
            {"id": "_pages_location", "property": "pathname", "value": "/"},
        ],
    }
    response = post(bob, swapped)
    assert response.status_code == 400 and "inputs[0]" in response.json["error"]
    for path in PATHS:
        for search in ("", "?x=1&x=2", "?run_id=1", None):
            body = body_for(key, callbacks(app)[key], {0: path, 1: search})
            assert post(bob, body).status_code in (200, 204, 400, 403), path
    root = login(app, "root")
    body = body_for(key, callbacks(app)[key], {0: "/admin", 1: ""})
    assert "Admin: the job queue" in root.post("/_dash-update-component", json=body).text


def test_the_admin_layout_renders_nothing_admin_for_a_member_whatever_reached_it(site):
    import dash
    import flask

    page = next(p for p in dash.page_registry.values() if p["path"] == "/admin")
    bob = site["users"]["bob"]
    with site["app"].server.test_request_context("/"):
        flask.g.netlens_actor = users.Actor.of(bob)
        assert "Admin: the job queue" not in str(page["layout"]())
        flask.g.netlens_actor = users.Actor.of(site["users"]["root"])
        assert "Admin: the job queue" in str(page["layout"]())
    with site["app"].server.test_request_context("/"):  # no actor at all: nothing either
        assert "Admin: the job queue" not in str(page["layout"]())


# ---- every callback, every malformed body ---------------------------------------------------


def _malformed(key: str, entry: dict) -> list[tuple[str, dict]]:
    good = body_for(key, entry)
    first = good["inputs"][0]
    cases = [
        ("missing", {**good, "inputs": good["inputs"][:-1]}),
        ("duplicated", {**good, "inputs": good["inputs"] + [first]}),
        ("extra", {**good, "inputs": good["inputs"] + [{"id": "x", "property": "y", "value": 1}]}),
        ("extra state", {**good, "state": good["state"] + [first]}),
        ("other output", {**good, "outputs": {"id": "x", "property": "children"}}),
        ("not a list", {**good, "inputs": {"a": 1}}),
        ("bad trigger", {**good, "changedPropIds": ["nothing.n_clicks"]}),
    ]
    if len(good["inputs"]) > 1 and good["inputs"][0] != good["inputs"][-1]:
        cases.append(("permuted", {**good, "inputs": good["inputs"][::-1]}))
    if len(good["state"]) > 1 and good["state"][0] != good["state"][-1]:
        cases.append(("permuted state", {**good, "state": good["state"][::-1]}))
    return cases


@pytest.mark.parametrize("who", ["bob", "root"])
def test_every_callback_refuses_bodies_that_do_not_fit_it(site, who):
    app = site["app"]
    client = login(app, who)
    checked = 0
    for key, entry in callbacks(app).items():
        access = rule_of(entry["callback"])
        for name, body in _malformed(key, entry):
            response = post(client, body, is_admin=who == "root")
            expected = {403} if access == "admin" and who == "bob" else {400}
            assert response.status_code in expected, (key[:80], name, response.text[:200])
            checked += 1
    assert checked > 300


def test_every_callback_takes_wrongly_typed_values_without_a_500(site):
    app, run_id = site["app"], site["run"]
    clients = {who: login(app, who) for who in ("alice", "bob", "root")}
    started, calls = time.monotonic(), 0
    for key, entry in callbacks(app).items():
        who = {"admin": "root", "owner": "alice"}.get(rule_of(entry["callback"]), "bob")
        deps = entry["inputs"] + entry.get("state", [])
        run_at = {n for n, d in enumerate(deps) if d["id"] in ("run-id", "sig-run-id")}
        for n in range(len(deps)):
            for value in BAD_VALUES:
                values = {m: run_id for m in run_at} | {n: value}
                if n != 0 and value is None:
                    continue
                post(clients[who], body_for(key, entry, values), is_admin=who == "root")
                calls += 1
    assert calls > 1000, calls
    print(f"{calls} calls in {time.monotonic() - started:.1f} s")
    # what those calls stored (runs submitted with odd fields, ...) breaks no page for anyone
    import dash

    key = next(k for k in callbacks(app) if k.startswith(PAGES_CALLBACK_PREFIX))
    for page in dash.page_registry.values():
        path = (page.get("path_template") or page["path"]).replace("<run_id>", str(run_id))
        body = body_for(key, callbacks(app)[key], {0: path.replace("<group_id>", "1"), 1: ""})
        assert post(clients["bob"], body).status_code in (200, 403), path


def test_run_ids_reach_callbacks_only_as_ids(site):
    app = site["app"]
    bob, before = login(app, "bob"), runs.get_run(site["db"], site["run"])
    key = next(k for k, e in callbacks(app).items() if e["callback"].__name__ == "run_action")
    for bad in ("1", 1.0, True, [site["run"]], {"id": site["run"]}, 0, 2**64):
        response = post(bob, body_for(key, callbacks(app)[key], {3: bad}))
        assert response.status_code == 400 and "run-id.data" in response.text, bad
    assert runs.get_run(site["db"], site["run"]) == before


def test_pattern_matching_ids_with_wrongly_typed_keys_never_give_a_500(site):
    app = site["app"]
    clients = {who: login(app, who) for who in ("bob", "root")}
    checked = 0
    for key, entry in callbacks(app).items():
        who = "root" if rule_of(entry["callback"]) == "admin" else "bob"
        for n, dep in enumerate(entry["inputs"]):
            if not dep["id"].startswith("{"):
                continue
            for wild in ("x", "", 1.5, True, -1, 10**30, "9" * 300):
                body = body_for(key, entry, {n: 1})
                items = body["inputs"][n]
                for item in items if isinstance(items, list) else [items]:
                    item["id"] = {
                        k: (wild if isinstance(v, list) else v)
                        for k, v in json.loads(dep["id"]).items()
                    }
                first = items[0] if isinstance(items, list) else items
                body["changedPropIds"] = [f"{stringify_id(first['id'])}.{dep['property']}"]
                post(clients[who], body, is_admin=who == "root")
                checked += 1
    assert checked > 30


def test_every_pattern_id_the_pages_render_fits_its_declared_kinds(site):
    """The guard refuses wildcard values of another kind (authz.PATTERN_KEY_KINDS): the ids the
    pages really render must pass (the admin pager's "previous" of page 0 is -1)."""
    import dash
    import flask

    from netlens.webapp.authz import pattern_key_kind
    from netlens.webapp.callback_guard import CHECKS

    seen = 0
    with site["app"].server.test_request_context("/"):
        flask.g.netlens_actor = users.Actor.of(site["users"]["root"])
        for page in dash.page_registry.values():
            template = page.get("path_template") or ""
            layout = page["layout"](
                **({"run_id": str(site["run"])} if "<run_id>" in template else {})
            )
            parts = [layout, *layout._traverse()] if hasattr(layout, "_traverse") else []
            for part in parts:
                id_ = getattr(part, "id", None)
                if not isinstance(id_, dict):
                    continue
                for key, value in id_.items():
                    if key != "type":
                        assert CHECKS[pattern_key_kind(id_["type"], key)][0](value), (id_, key)
                        seen += 1
    assert seen > 5


def test_a_pattern_list_naming_one_component_twice_is_refused(site):
    """Dash reads a trigger's value from the last of equal ids; the guard must not read
    another (the owner check is skipped for a call that is not a real click)."""
    app = site["app"]
    root = login(app, "root")
    key, entry = next(
        (k, e) for k, e in callbacks(app).items() if e["callback"].__name__ == "ask_delete"
    )
    body = body_for(key, entry)
    one = body["inputs"][0][0]
    body["inputs"][0] = [{**one, "value": None}, {**one, "value": 1}]
    response = post(root, body, is_admin=True)
    assert response.status_code == 400 and "twice" in response.json["error"]


def test_the_run_page_disables_what_the_guard_would_refuse(site):
    import sys

    import flask

    run_page = sys.modules["pages.run"]
    info = runs.get_run(site["db"], site["run"])
    with site["app"].server.test_request_context("/"):
        for who, is_enabled in (("alice", True), ("bob", False), ("root", True)):
            flask.g.netlens_actor = users.Actor.of(site["users"][who])
            layout = str(run_page.layout(run_id=str(site["run"])))
            assert (run_page.NOT_YOURS not in layout) == is_enabled, who
            assert run_page.may_change(info) == is_enabled, who


def test_owner_rules_say_where_the_run_is_and_every_spec_builds(site):
    from netlens.webapp.authz import rule

    with pytest.raises(ValueError, match="run"):
        rule("owner")
    with pytest.raises(ValueError, match="run"):
        rule("member", run=("run-id", "data"))
    registry = site["app"].server.extensions["netlens_callbacks"]
    specs = [registry.get(key) for key in callbacks(site["app"])]
    owners = [s for s in specs if s.access == "owner"]
    assert all(s.run_at is not None or s.fn.__name__ == "act_on_selection" for s in owners)
    assert len(owners) >= 3 and registry.get("no-such.children") is None
    assert "no-such.children" not in registry.cache  # unknown outputs are not remembered
