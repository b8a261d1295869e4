"""Issue 13 point 8, black-box: a token cannot mint a token; a read token cannot change
anything; tokens die with a password reset or change, a disabled account and their expiry;
the account page makes scoped, expiring tokens and lists them. Accounts of its own (tok*)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from netlens.storage import users
from netlens.storage.models import utcnow
from tests.security.conftest import PASSWORD

NEW_PASSWORD = "a brand new long password"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def callback_body(team, session, output: str, values: dict) -> dict:
    """The callback whose outputs include `output`, as the browser posts it: its inputs
    clicked (1), the first one the trigger, its states from `values`."""
    deps = session.get(team.url + "/_dash-dependencies", timeout=30).json()
    dep = next(d for d in deps if output in d["output"])
    outputs = [
        dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
        for o in dep["output"].strip(".").split("...")
    ]
    first = dep["inputs"][0]
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{**i, "value": 1} for i in dep["inputs"]],
        "state": [{**s, "value": values.get(s["id"])} for s in dep["state"]],
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


@pytest.fixture
def member(team, request):
    """A fresh member named after the test, with a write token."""
    name = "tok" + str(abs(hash(request.node.name)) % 10**6)
    info = users.create_user(team.db, name, PASSWORD)
    return info, users.create_token(team.db, info.id, "test")[1]


def test_a_token_cannot_mint_a_token(team):
    before = team.snapshot()
    response = team.api("alice", "POST", "/api/tokens", json={"name": "forever"})
    assert response.status_code == 403 and "cannot create tokens" in response.json()["error"]
    assert team.snapshot() == before


def test_a_read_token_reads_and_cannot_write(team, member):
    info, _ = member
    _, read = users.create_token(team.db, info.id, "ro", scope="read")
    assert team.api(None, "GET", "/api/runs", headers=bearer(read)).status_code == 200
    before = team.snapshot()
    for method, path, body in (
        ("POST", "/api/runs", {"preset": "xor"}),
        ("DELETE", "/api/tokens/1", None),
        ("POST", "/api/runs/1/cancel", None),
    ):
        response = team.api(None, method, path, headers=bearer(read), json=body)
        assert response.status_code == 403 and "read-only" in response.json()["error"], path
    assert team.snapshot() == before


@pytest.mark.parametrize("how", ["reset", "disable"])
def test_tokens_die_with_a_password_reset_or_a_disabled_account(team, member, how):
    info, secret = member
    assert team.api(None, "GET", "/api/runs", headers=bearer(secret)).status_code == 200
    if how == "reset":  # what `netlens users passwd` and the admin do
        users.set_password(team.db, info.name, NEW_PASSWORD)
    else:
        users.set_disabled(team.db, info.name)
        users.set_disabled(team.db, info.name, False)
    team.wait_for_other_process_change()
    assert team.api(None, "GET", "/api/runs", headers=bearer(secret)).status_code == 401


def test_tokens_die_when_the_user_changes_the_password_on_the_account_page(team, member):
    info, secret = member
    browser = team.browser(info.name)
    body = callback_body(
        team,
        browser,
        "account-change-feedback.children",
        {"account-old": PASSWORD, "account-new": NEW_PASSWORD, "account-repeat": NEW_PASSWORD},
    )
    answer = team.callback(browser, body)
    assert answer.status_code == 200 and "Password changed" in answer.text
    assert team.api(None, "GET", "/api/runs", headers=bearer(secret)).status_code == 401


def test_an_expired_token_is_refused(team, member):
    info, _ = member
    _, short = users.create_token(
        team.db, info.id, "short", expires_at=utcnow() + timedelta(seconds=2)
    )
    assert team.api(None, "GET", "/api/runs", headers=bearer(short)).status_code == 200
    time.sleep(2.5)
    assert team.api(None, "GET", "/api/runs", headers=bearer(short)).status_code == 401


def test_the_account_page_makes_scoped_expiring_tokens_and_lists_them(team, member):
    info, _ = member
    browser = team.browser(info.name)
    body = callback_body(
        team,
        browser,
        "account-token-feedback.children",
        {
            "account-token-label": "laptop",
            "account-token-scope": "read",
            "account-token-expires": "30",
        },
    )
    answer = team.callback(browser, body)
    assert answer.status_code == 200, answer.text[:300]
    text = json.dumps(answer.json()["response"])
    assert "laptop" in text and "read" in text and "last used" in text and "expires" in text
    made = [t for t in users.list_tokens(team.db, info.id) if t.name == "laptop"]
    assert made[0].scope == "read"
    assert timedelta(days=29) < made[0].expires_at - utcnow() <= timedelta(days=30)
    bad = dict(
        body,
        state=[
            {**s, "value": "forever"} if s["id"] == "account-token-expires" else s
            for s in body["state"]
        ],
    )
    refused = team.callback(browser, bad)
    assert "expires: one of 7 days" in refused.text
