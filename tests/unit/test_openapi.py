"""The OpenAPI description of /api: it validates (OpenAPI 3.1), it describes every /api route
of the app with its methods and rule and nothing else, and real answers match its schemas."""

from __future__ import annotations

import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from netlens.storage import jobs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.auth import route_access
from netlens.webapp.openapi import ROUTES, document
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


def api_rules(app) -> dict[str, set[str]]:
    """{OpenAPI path: methods} of every /api rule in the Flask url_map."""
    out: dict[str, set[str]] = {}
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            out.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return out


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
    assert len(served) >= 9 and "/api/openapi.json" in served
    doc = app.server.test_client().get("/api/openapi.json").get_json()
    validate(doc)
    described = {path: {m.upper() for m in item} for path, item in doc["paths"].items()}
    assert described == served
    for operation in (op for item in doc["paths"].values() for op in item.values()):
        assert "401" in operation["responses"] and operation["operationId"]


def test_each_routes_documented_rule_is_the_one_the_guard_applies(app):
    documented = {(r.method, r.path): r.access for r in ROUTES}
    for rule in app.server.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert route_access(rule.endpoint, app.server) == documented[(method, path)], rule


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

    assert check("/api/runs", "RunPage")["runs"][0]["id"] == run_id
    assert check(f"/api/runs/{run_id}", "RunDetail")["job"]["state"] == "queued"
    assert check(f"/api/runs/{run_id}/metrics", "Metrics")["epochs"] == []
    assert [t["user"] for t in check("/api/tokens", "TokenList")["tokens"]] == ["carol"]
    missing = client.get("/api/runs/424242")
    jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/ApiError", "components": doc["components"]}
    ).validate(missing.get_json())
    # the local operator has no account: no token to make
    assert client.post("/api/tokens", json={"name": "x"}).status_code == 409
