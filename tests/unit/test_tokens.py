"""API tokens and browser sessions in storage and the CLI: scopes, expiry, revocation when
the password is reset or changed or the user disabled; sessions that end when idle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from netlens.cli import main
from netlens.storage import throttle, users
from netlens.storage.models import utcnow

PASSWORD = "a long enough password"


def test_a_token_carries_its_scope_and_stops_at_its_expiry(sqlite_db):
    db = sqlite_db
    alice = users.create_user(db, "alice", PASSWORD)
    _, read = users.create_token(db, alice.id, "r", scope="read")
    assert users.token_access(db, read)[1] == "read"
    soon = utcnow() + timedelta(seconds=1)
    token_id, short = users.create_token(db, alice.id, "s", expires_at=soon)
    assert users.token_access(db, short)[1] == "write"
    with db.session() as s:  # let it expire
        from netlens.storage.models import ApiToken

        s.get(ApiToken, token_id).expires_at = utcnow() - timedelta(seconds=1)
    assert users.token_access(db, short) is None and users.token_user(db, short) is None
    listed = {t.id: t for t in users.list_tokens(db, alice.id)}
    assert listed[token_id].expires_at is not None and listed[token_id].scope == "write"
    with pytest.raises(users.UserError, match="scope: 'read'"):
        users.create_token(db, alice.id, "x", scope="admin")
    with pytest.raises(users.UserError, match="expires: a moment from now to at most 366"):
        users.create_token(db, alice.id, "x", expires_at=utcnow() - timedelta(days=1))
    with pytest.raises(users.UserError, match="expires"):
        users.create_token(db, alice.id, "x", expires_at=utcnow() + timedelta(days=400))


@pytest.mark.parametrize("how", ["reset", "change", "disable"])
def test_tokens_are_revoked_with_a_password_reset_change_or_disabling(sqlite_db, how):
    db = sqlite_db
    bob = users.create_user(db, "bob", PASSWORD)
    _, secret = users.create_token(db, bob.id, "ci")
    assert users.token_user(db, secret).name == "bob"
    if how == "reset":
        users.set_password(db, "bob", "another long password")
    elif how == "change":
        users.change_password(db, bob.id, PASSWORD, "another long password", address="1.2.3.4")
    else:
        users.set_disabled(db, "bob")
        users.set_disabled(db, "bob", False)  # enabling again does not bring tokens back
    assert users.token_user(db, secret) is None
    assert all(t.revoked_at is not None for t in users.list_tokens(db, bob.id))


def test_the_current_password_check_is_throttled(sqlite_db):
    db = sqlite_db
    carl = users.create_user(db, "carl", PASSWORD)
    policy = throttle.Policy(free_failures=2)
    for _ in range(3):  # 2 free, the 3rd starts a block
        with pytest.raises(users.UserError, match="current password: does not match"):
            users.change_password(
                db,
                carl.id,
                "wrong password",
                "another long password",
                address="5.6.7.8",
                policy=policy,
            )
    with pytest.raises(users.RateLimited):
        users.change_password(
            db, carl.id, PASSWORD, "another long password", address="5.6.7.8", policy=policy
        )
    assert users.authenticate(db, "carl", PASSWORD, "5.6.7.9").name == "carl"  # unchanged


def test_a_session_ends_after_its_idle_time_and_use_keeps_it_alive(sqlite_db):
    db = sqlite_db
    dora = users.create_user(db, "dora", PASSWORD)
    token, idle = users.create_session(db, dora.id), timedelta(minutes=10)
    now = utcnow()
    for step in range(1, 6):  # used every 9 minutes: alive after 45 minutes
        assert users.session_user(db, token, idle, now=now + timedelta(minutes=9 * step))
    late = now + timedelta(minutes=45 + 11)
    assert users.session_user(db, token, idle, now=late) is None
    assert users.session_user(db, token, idle) is None  # the row is gone


def _cli(db, *args):
    env = {"NETLENS_DATABASE_URL": db.url, "NETLENS_HOME": "/tmp/netlens-unused-home"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_creates_scoped_expiring_tokens_and_lists_and_clears_throttles(sqlite_db):
    db = sqlite_db
    eve = users.create_user(db, "eve", PASSWORD)
    result = _cli(db, "tokens", "create", "eve", "--expires", "30d", "--scope", "read")
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert users.token_access(db, secret)[1] == "read"
    [token] = users.list_tokens(db, eve.id)
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    assert "read" in _cli(db, "tokens", "list", "eve").output
    bad = _cli(db, "tokens", "create", "eve", "--expires", "soon")
    assert bad.exit_code != 0 and "expires: a number of days or hours" in bad.output
    for _ in range(2):
        with pytest.raises(users.AuthFailed):
            users.authenticate(db, "eve", "wrong", "9.9.9.9")
    listed = _cli(db, "users", "throttles").output
    assert "n|eve|9.9.9.9" in listed and "a|9.9.9.9" in listed
    assert (
        "1 throttle(s) cleared" in _cli(db, "users", "throttles", "--clear", "n|eve|9.9.9.9").output
    )
    assert "n|eve|9.9.9.9" not in _cli(db, "users", "throttles").output
    assert _cli(db, "users", "throttles", "--clear", "n|nobody").exit_code != 0
    assert "1 throttle(s) cleared" in _cli(db, "users", "throttles", "--clear-all").output
