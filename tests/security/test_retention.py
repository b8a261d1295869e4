"""The admin page's retention card over HTTP, as an attacker calls it: a member who posts
the Save or Thin now callback body (built from the server's own /_dash-dependencies) is
refused (403) and nothing changes; values of the wrong type are 400; an admin's bad value is
named with its limit and changes nothing; an admin's Thin now thins only the old runs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import update

from netlens.storage import records, retention, runs
from netlens.storage.models import Run, utcnow
from tests.conftest import small_spec

P = "admin-retention-"
FIELDS = (P + "keep-days", P + "every", P + "log-points", P + "auto-hours")
BUTTONS = (P + "save", P + "preview", P + "thin")


def _body(team, session, button: str, values: tuple) -> dict:
    deps = session.get(team.url + "/_dash-dependencies", timeout=30).json()
    dep = next(d for d in deps if d["output"] == f"{P}feedback.children")
    return {
        "output": dep["output"],
        "outputs": {"id": P + "feedback", "property": "children"},
        "inputs": [
            {"id": b, "property": "n_clicks", "value": 1 if b == button else None} for b in BUTTONS
        ],
        "state": [
            {"id": f, "property": "value", "value": v} for f, v in zip(FIELDS, values, strict=True)
        ],
        "changedPropIds": [f"{button}.n_clicks"],
    }


def _old_run(team) -> int:
    """A finished run of 40 recorded epochs that ended 10 days ago."""
    run_id = runs.create_run(team.db, small_spec(name="old for retention"))
    records.write_epochs(
        team.db,
        run_id,
        records.EpochChunk(
            epochs=list(range(40)),
            metrics=[{"train_loss": 1.0 / (e + 1)} for e in range(40)],
            tensors={"params/dense/kernel": np.ones((40, 4, 4), np.float32)},
            sparse_epochs={},
        ),
    )
    runs.finish_run(team.db, run_id, "succeeded")
    with team.db.session() as s:
        s.execute(
            update(Run).where(Run.id == run_id).values(finished_at=utcnow() - timedelta(days=10))
        )
    return run_id


def test_a_member_cannot_save_the_policy_or_thin(team):
    run_id = _old_run(team)
    member, root = team.browser("bob"), team.browser("root")
    before = team.snapshot()
    for button in BUTTONS:
        body = _body(team, root, button, ("1", "1000", "0", "1"))
        answer = team.callback(member, body)
        assert answer.status_code == 403, (button, answer.status_code, answer.text[:200])
        assert "thinned" not in answer.text and "Saved" not in answer.text
    # no session at all: not even to the callback
    assert team.callback(
        team.browser(None), _body(team, root, BUTTONS[2], ("1", "2", "0", "0"))
    ).status_code in (401, 403)
    assert team.snapshot() == before
    assert runs.get_run(team.db, run_id).thinned_at is None


def test_values_of_the_wrong_type_are_400_and_bad_values_are_named(team):
    root = team.browser("root")
    before = team.snapshot()
    crafted = _body(team, root, BUTTONS[0], ("30", "10", "20", "0"))
    crafted["state"][1]["value"] = ["10"]  # a list where the form has text
    assert team.callback(root, crafted).status_code == 400
    crafted = _body(team, root, BUTTONS[0], ("30", "10", "20", "0"))
    crafted["state"][3]["value"] = {"hours": 1}  # an object where the form has text
    assert team.callback(root, crafted).status_code == 400
    crafted = _body(team, root, BUTTONS[0], ("30", "10", "20", "0"))
    crafted["state"] = crafted["state"][:3]  # the card as it was before auto_hours
    assert team.callback(root, crafted).status_code == 400
    answer = team.callback(root, _body(team, root, BUTTONS[0], ("30", "0", "20", "0")))
    assert answer.status_code == 200 and "every: must be a whole number from 1 to" in answer.text
    answer = team.callback(root, _body(team, root, BUTTONS[2], ("-5", "10", "20", "0")))
    assert answer.status_code == 200 and "keep_days: must be a whole number from 0" in answer.text
    for hours in ("8761", "-1", "1.5", "daily"):
        answer = team.callback(root, _body(team, root, BUTTONS[0], ("30", "10", "20", hours)))
        assert answer.status_code == 200, answer.text[:200]
        assert "auto_hours: must be a whole number from 0 to 8,760" in answer.text, hours
    assert team.snapshot() == before


def test_an_admin_saves_the_policy_and_thins_the_old_runs_only(team, trained_run):
    run_id = _old_run(team)
    root = team.browser("root")
    saved = team.callback(root, _body(team, root, BUTTONS[0], ("5", "10", "2", "24")))
    assert saved.status_code == 200 and "Saved" in saved.text
    assert "thinned automatically every 24 h" in saved.text
    assert retention.get_policy(team.db) == retention.RetentionPolicy(5, 10, 2, 24)
    preview = team.callback(root, _body(team, root, BUTTONS[1], ("5", "10", "2", "24")))
    assert preview.status_code == 200 and "to thin" in preview.text
    assert runs.get_run(team.db, run_id).thinned_at is None  # a preview changes nothing
    answer = team.callback(root, _body(team, root, BUTTONS[2], ("5", "10", "2", "24")))
    assert answer.status_code == 200 and "thinned" in answer.text, answer.text[:300]
    info = runs.get_run(team.db, run_id)
    assert info.thinned_at is not None and info.epochs_recorded == 40
    kept = retention.kept_epochs(team.db, run_id)
    assert kept == retention.select_epochs(list(range(40)), retention.RetentionPolicy(5, 10, 2), 39)
    # the run trained a moment ago is younger than 5 days: untouched
    assert runs.get_run(team.db, trained_run).thinned_at is None
