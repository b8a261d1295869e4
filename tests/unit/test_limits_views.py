"""The limits on the pages (webapp/views/limits.py): a member's account card shows their
limits beside their usage; the admin card changes team values and one user's override."""

from __future__ import annotations

import flask
import pytest

from netlens.storage import jobs, limits, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.views import limits as limits_views
from tests.conftest import small_spec


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("limits-page"),
        database_url=None,
        broker_url=None,
        auth="required",
    )
    db = Database.from_settings(settings)
    upgrade(db)
    root = users.create_user(db, "root", "a long enough password", is_admin=True)
    carol = users.create_user(db, "carol", "a long enough password")
    for _ in range(3):
        jobs.submit(db, small_spec(), owner_id=carol.id)
    app = create_app(settings, db)
    with app.server.test_request_context("/admin"):
        flask.g.netlens_actor = users.Actor.of(root)
        yield {"db": db, "settings": settings, "carol": carol, "root": root}
    db.dispose()


def test_a_members_card_shows_usage_against_each_limit(site):
    text = str(limits_views.account_card(site["carol"].id))
    assert "queued and running jobs: 3 of 100" in text
    assert "uploads: 0 of 20" in text and "upload storage: 0 bytes of 1 GiB" in text
    assert "runs per sweep: at most 50" in text and "job time limit: 6 h" in text
    assert "no limits apply to you" in str(limits_views.account_card(site["root"].id))


def test_an_admin_sets_a_team_value_and_a_users_override(site):
    db, carol = site["db"], site["carol"]
    message, table = limits_views.set_limit(1, "active_jobs", "7", "")
    assert "active_jobs team-wide: 7" in str(message)
    assert limits.effective_limits(db, site["settings"], carol.id)["active_jobs"] == 7
    message, table = limits_views.set_limit(1, "upload_bytes", "2 GiB", "carol")
    assert "upload_bytes for carol: 2 GiB" in str(message)
    assert "carol: upload_bytes = 2 GiB" in str(table)
    assert "queued and running jobs: 3 of 7" in str(limits_views.account_card(carol.id))
    limits_views.set_limit(1, "active_jobs", "default", "")
    limits_views.set_limit(1, "upload_bytes", "default", "carol")
    assert limits.user_overrides(db, carol.id) == {}


@pytest.mark.parametrize(
    "name, value, user, message",
    [
        ("active_jobs", "-3", "", "must be a whole number"),
        ("nonsense", "3", "", "is not one of"),
        ("active_jobs", "3", "nobody", "no user named 'nobody'"),
        ("unused_upload_hours", "3", "carol", "team-wide setting"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(site, name, value, user, message):
    before = limits.team_limits(site["db"], site["settings"])
    shown, table = limits_views.set_limit(1, name, value, user)
    assert message in str(shown)
    assert limits.team_limits(site["db"], site["settings"]) == before
    assert limits.all_overrides(site["db"]) == {}
