"""The OpenAPI description of /api: it validates (OpenAPI 3.1), it describes every /api route
of the app with its methods and rule and nothing else, and real answers match its schemas."""

from __future__ import annotations

import inspect
import json
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from netlens.storage import jobs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp import api, api_ingest, api_more, api_write, exports
from netlens.webapp.api import BLUEPRINTS
from netlens.webapp.app import create_app
from netlens.webapp.auth import route_access
from netlens.webapp.openapi import MAX_ID, PREFIX, ROUTES, document
from tests.conftest import small_spec


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Single-user mode (loopback, NETLENS_AUTH=auto): the local operator, no token."""
    home = tmp_path_factory.mktemp("openapi")
    settings = Settings(home=home, database_url=None, broker_url=None, auth="auto")
    db = Database.from_settings(settings)
    upgrade(db)
    app = create_app(settings, db)
    yield app
    db.dispose()


def api_rules(app, prefix: str = PREFIX) -> dict[str, set[str]]:
    """{OpenAPI path: methods} of every rule under `prefix` (/api/v1, or the alias /api) in
    the Flask url_map, with paths written under /api/v1."""
    out: dict[str, set[str]] = {}
    for rule in app.server.url_map.iter_rules():
        if rule.endpoint.split(".")[0] == BLUEPRINT_OF[prefix]:
            assert rule.rule.startswith(prefix + "/"), rule.rule
            path = PREFIX + re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(prefix) :])
            out.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return out


BLUEPRINT_OF = {prefix: name for name, prefix in BLUEPRINTS.items()}


def test_the_document_is_valid_openapi_3_1():
    doc = document("http://127.0.0.1:8050")
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (nl_...).",
    }
    assert doc["security"] == [{"bearer": []}]
    spec = doc["components"]["schemas"]["ExperimentSpec"]  # the real spec's schema
    assert {"dataset", "model", "training"} <= set(spec["properties"])


def test_every_api_route_is_described_with_its_methods_and_nothing_else(app):
    served = api_rules(app)
    assert len(served) >= 9 and "/api/v1/openapi.json" in served
    assert api_rules(app, "/api") == served  # the alias serves the same routes
    assert {r.rule.split("/")[1] for r in app.server.url_map.iter_rules()} >= {"api"}
    stray = [
        r.rule
        for r in app.server.url_map.iter_rules()
        if r.rule.startswith("/api/") and r.endpoint.split(".")[0] not in BLUEPRINTS
    ]
    assert not stray, stray
    for url in ("/api/v1/openapi.json", "/api/openapi.json"):
        doc = app.server.test_client().get(url).get_json()
        validate(doc)
        described = {path: {m.upper() for m in item} for path, item in doc["paths"].items()}
        assert described == served
        assert "v1" in doc["info"]["description"] and doc["info"]["version"] == "1"
    for operation in (op for item in doc["paths"].values() for op in item.values()):
        assert "401" in operation["responses"] and operation["operationId"]


def test_each_routes_documented_rule_is_the_one_the_guard_applies(app):
    documented = {(r.method, PREFIX + r.path): r.access for r in ROUTES}
    checked = 0
    for rule in app.server.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        prefix = BLUEPRINTS[rule.endpoint.split(".")[0]]
        path = PREFIX + re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(prefix) :])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert route_access(rule.endpoint, app.server) == documented[(method, path)], rule
            checked += 1
    assert checked == 2 * len(ROUTES)  # /api/v1 and the alias /api


def test_answers_match_the_documented_schemas(app):
    db = app.server.config["NETLENS"].db
    run_id = jobs.submit(db, small_spec(name="described")).run_id
    owner = users.create_user(db, "carol", "a long enough password")
    users.create_token(db, owner.id, "laptop")
    doc = document()
    client = app.server.test_client()

    def check(url: str, model: str) -> dict:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)
        return body

    assert check("/api/v1/runs", "RunPage")["runs"][0]["id"] == run_id
    assert check(f"/api/runs/{run_id}", "RunDetail")["job"]["state"] == "queued"
    assert check(f"/api/runs/{run_id}/metrics", "Metrics")["epochs"] == []
    assert [t["user"] for t in check("/api/tokens", "TokenList")["tokens"]] == ["carol"]
    missing = client.get("/api/runs/424242")
    jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/ApiError", "components": doc["components"]}
    ).validate(missing.get_json())
    # the local operator has no account: no token to make
    assert client.post("/api/tokens", json={"name": "x"}).status_code == 409


# ---- issue 18: the status codes each route can answer are documented ------------------------


def _codes_in(source: str) -> set[int]:
    return {int(c) for c in re.findall(r"(?:ApiProblem|_problem|ExportFailed)\(\s*(\d{3})", source)}


def _returnable(view, helpers: dict[str, set[int]]) -> set[int]:
    """The statuses a view of webapp/api.py can answer, read from its source and the helpers of
    webapp/api.py it calls (transitively), plus what the guard and the error handlers add."""
    source = inspect.getsource(view)
    codes = _codes_in(source)
    for name, helper_codes in helpers.items():
        if re.search(rf"\b{name}\(", source):
            codes |= helper_codes
    if re.search(r"\b(submit_spec|retry_run|submit_sweep|save_upload)\(", source):
        codes |= {400, 429}  # storage.limits: 429 (or 400)
    if "exc.status" in source:  # ExportFailed: 404 or 409 (webapp/exports.py)
        codes |= _codes_in(inspect.getsource(exports))
    if re.search(r"\betags\.not_modified\(", source):  # If-None-Match matched: 304
        codes.add(304)
    return codes


def _helper_codes() -> dict[str, set[int]]:
    """The statuses of the private helpers of the API's modules (a name in two modules: the
    statuses of both)."""
    helpers: dict[str, str] = {}
    for module in (api, api_more, api_write, api_ingest):
        for name, fn in vars(module).items():
            if name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
                helpers[name] = helpers.get(name, "") + inspect.getsource(fn)
    codes = {name: _codes_in(source) for name, source in helpers.items()}
    codes["_body"] |= {413}  # RequestEntityTooLarge, answered by api._too_large
    for _ in range(len(helpers)):  # helpers calling helpers
        for name, source in helpers.items():
            for other in helpers:
                if other != name and re.search(rf"\b{other}\(", source):
                    codes[name] |= codes[other]
    return codes


def test_every_status_a_route_can_answer_is_documented_with_the_error_body(app):
    doc = document()
    helpers = _helper_codes()
    assert {400, 413, 415, 422} <= helpers["_body"] and 404 in helpers["_get_run"]
    by_endpoint = {}
    for rule in app.server.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "api":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            path = PREFIX + re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(PREFIX) :])
            operation = doc["paths"][path][method.lower()]
            documented = {int(code) for code in operation["responses"]}
            view = app.server.view_functions[rule.endpoint]
            access = route_access(rule.endpoint, app.server)
            can = _returnable(view, helpers) | {500}
            if access != "public":
                can.add(401)
            if rule.arguments:  # an id in the path: no such one, or out of range (no route)
                can.add(404)
                for param in operation["parameters"]:
                    if param["in"] == "path" and param["name"] != "name":  # a tensor's name
                        assert param["schema"] == {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_ID,
                        }
            if access == "owner":
                can |= {403, 404}
            if method != "GET":  # a read-only token
                can.add(403)
            missing = can - documented
            assert not missing, (method, path, sorted(missing))
            # a 304 is documented exactly where the view can answer it: no body, and the
            # ETag header on it and on the 200; If-None-Match among the parameters
            assert (304 in documented) == (304 in can), (method, path)
            if 304 in can:
                not_modified = operation["responses"]["304"]
                assert "content" not in not_modified and "ETag" in not_modified["headers"]
                assert "ETag" in operation["responses"]["200"]["headers"]
                header = [p for p in operation["parameters"] if p["in"] == "header"]
                assert [p["name"] for p in header] == ["If-None-Match"]
                assert header[0]["schema"]["maxLength"] > 0
            for code in documented - {200, 201, 202, 204, 304}:
                content = operation["responses"][str(code)]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ApiError"}
            by_endpoint[(method, path)] = can
    assert len(by_endpoint) == len(ROUTES)
    conditional = {key for key, codes in by_endpoint.items() if 304 in codes}
    assert conditional == {
        ("GET", PREFIX + path)
        for path in (
            "/runs/{run_id}",
            "/runs/{run_id}/metrics",
            "/runs/{run_id}/tensors",
            "/runs/{run_id}/tensors/{name}",
            "/runs/{run_id}/export",
            "/runs/{run_id}/analyses",
        )
    }
    assert {422, 429} <= by_endpoint[("POST", "/api/v1/runs")]
    assert 429 in by_endpoint[("POST", "/api/v1/runs/{run_id}/retry")]
    validate(doc)


def test_the_submit_body_needs_a_spec_or_a_preset_by_the_schema_and_the_spec_has_its_limits():
    doc = document()
    schema = {"$ref": "#/components/schemas/SubmitRequest", "components": doc["components"]}
    check = jsonschema.Draft202012Validator(schema).is_valid
    assert (
        not check({}) and not check({"preset": None}) and not check({"spec": {}, "preset": "xor"})
    )
    assert check({"preset": "xor", "overrides": {"training.epochs": 5}})
    assert not check({"preset": "no-such-preset"})
    text = json.dumps(doc["components"]["schemas"])
    # every limit of the spec is in its schema: minimum/maximum/lengths of the real model
    assert text.count('"maximum"') >= 10 and '"maxLength"' in text and '"maxItems"' in text


def test_ids_beyond_the_documented_bound_and_unsupported_methods(app):
    client = app.server.test_client()
    for prefix in ("/api/v1", "/api"):
        for bad in ("0", str(MAX_ID + 1), "255900075698605636139876352"):
            for method, suffix in (("GET", "/metrics"), ("POST", "/cancel"), ("GET", "")):
                response = client.open(f"{prefix}/runs/{bad}{suffix}", method=method, json=None)
                assert response.status_code == 404, (method, bad, response.get_data(as_text=True))
                assert response.get_json()["fields"] == ["path"]
        assert client.get(f"{prefix}/runs/{MAX_ID}").get_json()["fields"] == ["run_id"]
        for path, allow in (
            ("/runs/1/cancel", "OPTIONS, POST"),
            ("/runs/1/retry", "OPTIONS, POST"),
            ("/runs/1", "DELETE, GET, HEAD, OPTIONS"),
            ("/runs", "GET, HEAD, OPTIONS, POST"),
            ("/tokens/1", "DELETE, OPTIONS"),
        ):
            assert client.options(prefix + path).headers["Allow"] == allow, path
            for method in ("TRACE", "PUT", "PATCH") + (("GET",) if "GET" not in allow else ()):
                response = client.open(prefix + path, method=method)
                assert response.status_code == 405, (method, path)
                assert response.headers["Allow"] == allow
                assert response.get_json()["fields"] == ["method"]
        assert client.open(f"{prefix}/nothing-here", method="TRACE").status_code == 404
