"""The admin page's login-throttle card: it lists counted keys with their blocks, and its
buttons clear one key or all of them (admins only: the callback's rule)."""

from __future__ import annotations

import pytest

from netlens.storage import throttle, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.authz import rule_of
from netlens.webapp.views import throttles as throttle_views


@pytest.fixture
def admin_request(tmp_path):
    settings = Settings(home=tmp_path, database_url=None, broker_url=None, auth="required")
    db = Database.from_settings(settings)
    upgrade(db)
    app = create_app(settings, db)
    with app.server.test_request_context("/admin"):
        yield db
    db.dispose()


def test_the_card_lists_throttles_and_clears_one_or_all(admin_request):
    db = admin_request
    assert "No failed logins" in str(throttle_views.admin_card())
    for _ in range(4):
        with pytest.raises(users.AuthFailed):
            users.authenticate(db, "root", "wrong password", "10.7.7.7")
    table = str(throttle_views.throttle_table())
    assert "root" in table and "10.7.7.7" in table and "s more" in table  # blocked
    assert "30 failures per 15 min" in str(throttle_views.admin_card())
    assert rule_of(throttle_views.clear_throttles) == "admin"

    import dash._callback_context as ctx  # the callback as Dash calls it for one button

    key = {"type": throttle_views.CLEAR, "key": "n|root|10.7.7.7"}
    with _triggered(ctx, key):
        message, table = throttle_views.clear_throttles([1], None)
    assert "1 throttle(s) cleared" in str(message) and "n|root|10.7.7.7" not in {
        t.key for t in throttle.list_throttles(db)
    }
    with _triggered(ctx, throttle_views.CLEAR_ALL):
        message, _ = throttle_views.clear_throttles([], 1)
    assert "1 throttle(s) cleared" in str(message) and throttle.list_throttles(db) == []


class _triggered:
    """dash.ctx.triggered_id and .triggered for a direct call, as Dash sets them."""

    def __init__(self, ctx_module, component_id):
        import json

        self.ctx = ctx_module
        prop = (
            json.dumps(component_id, separators=(",", ":"), sort_keys=True)
            if isinstance(component_id, dict)
            else component_id
        ) + ".n_clicks"
        self.value = {"triggered_inputs": [{"prop_id": prop, "value": 1}]}

    def __enter__(self):
        from dash._utils import AttributeDict

        self.token = self.ctx.context_value.set(AttributeDict(self.value))
        return self

    def __exit__(self, *exc):
        self.ctx.context_value.reset(self.token)
