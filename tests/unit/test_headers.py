"""Security headers on every response of the web process, and the script nonce of pages."""

from __future__ import annotations

import re

import pytest

from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.headers import add_nonces


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("headers"), database_url=None, broker_url=None, auth="required"
    )
    db = Database.from_settings(settings)
    upgrade(db)
    yield create_app(settings, db).server.test_client()
    db.dispose()


@pytest.mark.parametrize(
    "path", ["/login", "/healthz", "/api/runs", "/runs", "/nothing/here", "/assets/netlens.css"]
)
def test_every_response_carries_the_headers(client, path):
    response = client.get(path)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'", csp)
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert "unsafe-eval" not in csp and "unsafe-inline" not in script_src
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in headers  # plain HTTP: no HSTS


def test_hsts_only_over_https(client):
    response = client.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_each_request_gets_its_own_nonce(client):
    first, second = (client.get("/login").headers["Content-Security-Policy"] for _ in range(2))
    assert first != second


def test_every_script_of_a_page_carries_the_nonce_of_its_header(tmp_path):
    settings = Settings(home=tmp_path, database_url=None, broker_url=None)  # single-user
    db = Database.from_settings(settings)
    upgrade(db)
    response = create_app(settings, db).server.test_client().get("/explore")
    html = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    tags = re.findall(r"<script[^>]*>", html)
    assert len(tags) >= 3 and all(f'nonce="{nonce}"' in tag for tag in tags), tags
    db.dispose()


def test_add_nonces_leaves_a_tag_with_a_nonce_alone():
    html = '<script>a</script><script src="/x.js"></script><script nonce="k">b</script>'
    assert add_nonces(html, "n") == (
        '<script nonce="n">a</script><script nonce="n" '
        'src="/x.js"></script><script nonce="k">b</script>'
    )
