"""Single-user mode (loopback, no login) answers only a browser on this machine: Host must be
localhost, 127.0.0.1, [::1] or a configured name (DNS rebinding), a request with proxy headers
is refused with how to set up logins, proxy hops turn logins on, and no client may name a
file on the server (dataset.path), in single-user mode too."""

from __future__ import annotations

import flask
import pytest
from sqlalchemy import func, select

from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.models import Job, Run
from netlens.storage.settings import Settings
from netlens.storage.uploads import PATHS_REFUSED
from netlens.webapp.app import create_app
from netlens.webapp.single_user import host_name, login_reason, refusal

ALLOWED = [
    "localhost:8050",
    "127.0.0.1:8050",
    "[::1]:8050",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "LocalHost:8050",
]
REBOUND = [
    "evil.example",
    "evil.example:8050",
    "localhost.evil.example",
    "localhost.evil.example:8050",
    "127.0.0.1.nip.io",
    "127.0.0.1.nip.io:8050",
    "",
    "[::1",
    "::1",
    "localhost:80x",
    "localhost:8050:1",
    "127.0.0.1:8050@evil.example",
    "localhost.",
    "127.0.0.2",
    "0.0.0.0:8050",
    "[::ffff:127.0.0.1]:8050",
]
ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/runs"),
    ("GET", "/api/runs"),
    ("GET", "/login"),
    ("GET", "/_dash-layout"),
    ("POST", "/_dash-update-component"),
]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A single-user app (bound to 127.0.0.1, NETLENS_AUTH=auto) on a fresh SQLite home."""
    home = tmp_path_factory.mktemp("single-user")
    settings = Settings(
        home=home,
        database_url=None,
        broker_url=None,
        auth="auto",
        allowed_hosts="mybox.local, [fe80::1]:8050",
    )
    db = Database.from_settings(settings)
    upgrade(db)
    app = create_app(settings, db, bind_host="127.0.0.1")
    yield {"app": app, "db": db, "settings": settings, "client": app.server.test_client()}
    db.dispose()


def send(client, method: str, path: str, host: str, **kwargs):
    kwargs.setdefault("environ_overrides", {})["HTTP_HOST"] = host
    if method == "POST":
        kwargs.setdefault("json", {"output": "x.children", "inputs": []})
    return client.open(path, method=method, **kwargs)


def test_the_app_is_in_single_user_mode(local):
    assert local["app"].server.config["NETLENS"].auth_required is False


@pytest.mark.parametrize(
    "host", ALLOWED + ["mybox.local", "MyBox.Local:8443", "[fe80::1]", "[fe80::1]:9000"]
)
def test_loopback_and_configured_names_are_answered(local, host):
    response = send(local["client"], "GET", "/healthz", host)
    assert response.status_code == 200, response.text
    assert send(local["client"], "GET", "/runs", host).status_code == 200


@pytest.mark.parametrize("host", REBOUND)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_any_other_host_is_refused_on_every_route(local, host, method, path):
    response = send(local["client"], method, path, host)
    assert response.status_code == 421
    text = response.json["error"] if response.is_json else response.text
    assert "refused: this NetLens runs in single-user mode" in text
    assert "localhost, 127.0.0.1 and [::1]" in text and "NETLENS_ALLOWED_HOSTS" in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the echoed Host is text
    assert "<" not in response.headers["Content-Type"]


def test_a_page_refusal_is_plain_text_and_an_api_refusal_is_json(local):
    page = send(local["client"], "GET", "/runs", "evil.example")
    assert page.mimetype == "text/plain" and "Host 'evil.example' refused" in page.text
    api = send(local["client"], "GET", "/api/runs", "")
    assert api.is_json and api.json["error"].startswith("Host (none) refused")


def test_a_request_without_any_host_header_is_refused(local):
    with local["app"].server.test_request_context("/runs") as ctx:
        ctx.request.environ.pop("HTTP_HOST")
        response = refusal(frozenset({"localhost"}))
    assert response is not None and response.status_code == 421


@pytest.mark.parametrize(
    "header",
    ["X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto", "Via"],
)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_proxy_headers_are_refused_with_how_to_set_up_logins(local, header, method, path):
    value = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
    response = send(local["client"], method, path, "127.0.0.1:8050", headers={header: value})
    assert response.status_code == 403
    text = response.json["error"] if response.is_json else response.text
    assert f"a proxy was detected (header {header.lower()})" in text.lower()
    assert "netlens users add NAME --admin" in text and "NETLENS_AUTH=required" in text


@pytest.mark.parametrize(
    ("settings", "host", "reason"),
    [
        ({"auth": "auto"}, "127.0.0.1", None),
        ({"auth": "auto"}, "::1", None),
        ({"auth": "required"}, "127.0.0.1", "NETLENS_AUTH=required"),
        ({"auth": "auto"}, "0.0.0.0", "listening on 0.0.0.0, not only on the loopback address"),
        (
            {"auth": "auto", "proxy_hops": 1},
            "127.0.0.1",
            "NETLENS_PROXY_HOPS=1: requests come through a proxy",
        ),
    ],
)
def test_login_reason(tmp_path, settings, host, reason):
    assert login_reason(Settings(home=tmp_path, **settings), host) == reason


def test_configured_proxy_hops_start_the_app_with_logins(local, tmp_path):
    app = create_app(
        Settings(home=tmp_path, auth="auto", proxy_hops=1), local["db"], bind_host="127.0.0.1"
    )
    assert app.server.config["NETLENS"].auth_required is True
    client = app.server.test_client()
    assert client.get("/api/runs").status_code == 401
    # with logins on, the proxy's headers are what ProxyFix reads, not a reason to refuse
    assert client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200


def test_team_mode_has_no_host_check(local, tmp_path):
    app = create_app(Settings(home=tmp_path, auth="required"), local["db"], bind_host="127.0.0.1")
    response = send(app.server.test_client(), "GET", "/healthz", "lab.example.org")
    assert response.status_code == 200  # the login guards a team server, whatever its name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8050", "localhost"),
        ("[::1]:8050", "::1"),
        ("[::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("Example.ORG:1", "example.org"),
        ("", None),
        (":8050", None),
        ("[::1]x", None),
        ("a:b", None),
        ("a:１２", None),
        ("a:1234567", None),
        ("[]:80", None),
    ],
)
def test_host_name(header, name):
    assert host_name(header) == name


def count(db: Database, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_the_api_refuses_a_client_path_in_single_user_mode(local):
    before = (count(local["db"], Run), count(local["db"], Job))
    response = send(
        local["client"],
        "POST",
        "/api/runs",
        "127.0.0.1:8050",
        json={"spec": {"dataset": {"name": "csv", "path": "/etc/passwd"}}},
    )
    assert response.status_code == 422, response.text
    assert PATHS_REFUSED in response.json["error"]
    assert "dataset.path" in str(response.json)
    assert "root:" not in response.text  # the file was not read
    assert (count(local["db"], Run), count(local["db"], Job)) == before


def test_the_new_experiment_form_refuses_a_path_in_single_user_mode(local):
    import dash

    from netlens.storage.spec import parse_spec
    from netlens.storage.users import LOCAL

    page = next(p for p in dash.page_registry.values() if p["path"] == "/new")
    new = __import__(page["module"], fromlist=["submit"])
    values = new.spec_to_form(
        parse_spec({"dataset": {"name": "csv", "path": "/etc/passwd"}, "training": {"epochs": 5}})
    )
    before = count(local["db"], Run)
    with local["app"].server.test_request_context("/new"):
        flask.g.netlens_actor = LOCAL
        ids = [cid for cid, *_ in new.FIELDS]
        out = new.check(*values)
        alert, _target = new.submit(1, *values)
    assert out[ids.index("f-path")] is True
    assert out[len(ids) + ids.index("f-path")] == PATHS_REFUSED
    assert PATHS_REFUSED in str(alert)
    assert count(local["db"], Run) == before
    assert PATHS_REFUSED.startswith(
        "dataset.path: file paths are accepted only from the "
        "command line on the server; upload the file instead"
    )
