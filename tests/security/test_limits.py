"""Issue 13 point 6, black-box: a member over a per-user limit is refused over HTTP (API 429 /
400, the web app's message) naming the limit and its value, and nothing is created; an admin
raises a limit on the admin page and it applies. Uses accounts of its own (qjobs, qsweep,
qfiles) so that alice's and bob's quotas stay whole for the other tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from sqlalchemy import select

from netlens.storage import jobs, limits, users
from netlens.storage.models import Job, Run
from netlens.storage.uploads import uploads_dir
from tests.security.conftest import PASSWORD

CSV = b"x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"  # 36 bytes
OVERRIDES = {
    "qjobs": {"active_jobs": 2},
    "qsweep": {"sweep_runs": 3},
    "qfiles": {"uploads": 2, "upload_bytes": 60},
}


@pytest.fixture(scope="module")
def quota(team):
    """Three members of this module's own, each with a small limit, and their tokens."""
    people, tokens = {}, {}
    for name, values in OVERRIDES.items():
        people[name] = users.create_user(team.db, name, PASSWORD)
        tokens[name] = users.create_token(team.db, people[name].id, "limits tests")[1]
        for limit, value in values.items():
            limits.set_user_limit(team.db, people[name].id, limit, value)
    yield people, tokens
    with team.db.session() as s:  # leave no queued work behind for the other tests
        queued = s.scalars(
            select(Run.id).where(
                Run.status == "queued", Run.owner_id.in_([u.id for u in people.values()])
            )
        ).all()
    for run_id in queued:
        jobs.request_cancel(team.db, run_id)


def post_run(team, token: str) -> requests.Response:
    return requests.post(
        team.url + "/api/runs",
        json={"preset": "xor"},
        timeout=60,
        headers={"Authorization": f"Bearer {token}"},
    )


def callback_body(team, session: requests.Session, output: str, values: dict) -> dict:
    """A callback as the browser sends it, from the server's own /_dash-dependencies: the
    one whose outputs include `output`, its inputs clicked (1), its states from `values`."""
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
        "inputs": [{**i, "value": values.get(i["id"], 1)} for i in dep["inputs"]],
        "state": [
            {**s, "value": values.get(s["id"], False if s["property"] == "is_open" else None)}
            for s in dep["state"]
        ],
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def said(response: requests.Response) -> str:
    assert response.status_code == 200, response.text[:500]
    return json.dumps(response.json()["response"])


def test_jobs_over_the_limit_get_429_naming_it_until_an_admin_raises_it(team, quota):
    people, tokens = quota
    for _ in range(2):
        created = post_run(team, tokens["qjobs"])
        assert created.status_code == 201
    with team.db.session() as s:  # the team's default time limit (6 h) goes with the job
        assert s.get(Job, created.json()["id"]).time_limit_s == 6 * 3600
    member = team.browser("qjobs")
    before = team.snapshot()
    refused = post_run(team, tokens["qjobs"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == (
        "queued and running jobs: qjobs has 2 of at most 2; wait for one to finish or cancel one"
    )
    # the new-experiment page's Submit says the same
    page = said(
        team.callback(
            member,
            callback_body(
                team, member, "new-feedback.children", {"f-dataset": "xor", "f-epochs": 1}
            ),
        )
    )
    assert "qjobs has 2 of at most 2" in page and "new-redirect" not in page
    assert team.snapshot() == before
    root = team.browser("root")  # the admin card: qjobs may now have 3
    done = said(
        team.callback(
            root,
            callback_body(
                team,
                root,
                "limits-feedback.children",
                {"limits-name": "active_jobs", "limits-value": "3", "limits-user": "qjobs"},
            ),
        )
    )
    assert "active_jobs for qjobs: 3" in done
    assert post_run(team, tokens["qjobs"]).status_code == 201
    assert "qjobs has 3 of at most 3" in post_run(team, tokens["qjobs"]).json()["error"]


def test_a_member_cannot_set_limits(team, quota):
    member = team.browser("qjobs")
    before = team.snapshot()
    response = team.callback(
        member,
        callback_body(
            team,
            member,
            "limits-feedback.children",
            {"limits-name": "active_jobs", "limits-value": "1000", "limits-user": "qjobs"},
        ),
    )
    assert response.status_code in (401, 403), response.text[:300]
    assert team.snapshot() == before


def test_a_sweep_over_the_members_limit_is_refused_whole(team, quota):
    member = team.browser("qsweep")
    before = team.snapshot()
    body = callback_body(
        team,
        member,
        "new-feedback.children",
        {
            "f-dataset": "xor",
            "f-epochs": 1,
            "sweep-collapse": True,
            "sweep-field-0": "training.seed",
            "sweep-values-0": "0, 1, 2, 3",
        },
    )
    page = said(team.callback(member, body))
    assert "runs per sweep: 4 runs is above the limit of 3 runs per sweep" in page
    assert "new-redirect" not in page
    assert team.snapshot() == before


def upload(team, session, data: bytes) -> requests.Response:
    """The new-experiment page's upload as its script sends it: the raw file to POST /uploads."""
    return session.post(
        team.url + "/uploads",
        params={"name": "d.csv", "dataset": "csv"},
        data=data,
        headers={"Content-Type": "text/csv"},
        timeout=60,
    )


def refused(response: requests.Response) -> str:
    assert response.status_code == 429, response.text[:300]
    return response.json()["error"]


def test_uploads_over_the_count_or_the_bytes_are_refused_and_nothing_is_kept(team, quota):
    member = team.browser("qfiles")
    folder = uploads_dir(team_settings(team))
    assert upload(team, member, CSV).status_code == 201
    before, files = team.snapshot(), sorted(folder.iterdir())
    assert refused(upload(team, member, CSV)) == (
        "upload storage: qfiles has 36 bytes of at most 60 bytes, and this file is 36 bytes; "
        "uploads no run uses are deleted after 24 h"
    )
    assert team.snapshot() == before and sorted(folder.iterdir()) == files
    limits.set_user_limit(team.db, quota[0]["qfiles"].id, "upload_bytes", 0)  # no byte limit
    assert upload(team, member, CSV).status_code == 201
    before, files = team.snapshot(), sorted(folder.iterdir())
    assert refused(upload(team, member, CSV)).startswith("uploads: qfiles has 2 of at most 2")
    assert team.snapshot() == before and sorted(folder.iterdir()) == files


def team_settings(team):
    from netlens.storage.settings import Settings

    return Settings(home=team.home, database_url=team.db.url)


def test_the_cli_with_server_says_which_limit(team, quota):
    """`netlens submit --server` as qjobs, who is at the limit: exit 1 and the server's words."""
    people, tokens = quota
    if limits.usage(team.db, people["qjobs"].id)["active_jobs"] == 0:  # run alone
        assert post_run(team, tokens["qjobs"]).status_code == 201
    used = limits.usage(team.db, people["qjobs"].id)["active_jobs"]
    limits.set_user_limit(team.db, people["qjobs"].id, "active_jobs", used)
    env = {**team.env, "NETLENS_TOKEN": tokens["qjobs"]}
    before = team.snapshot()
    result = subprocess.run(
        [sys.executable, "-m", "netlens.cli", "submit", "--preset", "xor", "--server", team.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert (
        f"refused by the server (429): queued and running jobs: qjobs has {used} of at most {used}"
    ) in result.stderr
    assert team.snapshot() == before
