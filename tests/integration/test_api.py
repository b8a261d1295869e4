"""The REST API against a real server: `netlens serve --workers 0` in a subprocess with
logins required, on PostgreSQL and Redis, called over HTTP with tokens made through
storage.users; and the CLI's `--server` commands against it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import redis
import requests

from netlens.storage import jobs, runs, users
from netlens.storage.db import Database
from netlens.storage.export import collect_run
from tests.conftest import flushed_redis_url, fresh_pg_database
from tests.integration.test_embedded import free_port
from tests.live_server import live_server, team_env

REDIS_DB = 14  # a database of its own on the shared Redis, flushed for this module
PASSWORD = "a long enough password"


# ---- the server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_db(pg_server):
    with fresh_pg_database(pg_server) as db:
        yield db


@pytest.fixture(scope="module")
def redis_url():
    return flushed_redis_url(REDIS_DB)


class Site:
    def __init__(self, db: Database, url: str, env: dict, home: Path):
        self.db, self.url, self.env, self.home = db, url, env, home
        self.people = {
            name: users.create_user(db, name, PASSWORD, is_admin=(name == "root"))
            for name in ("alice", "bob", "root")
        }
        self.tokens = {
            name: users.create_token(db, u.id, "tests")[1] for name, u in self.people.items()
        }

    def call(self, who: str | None, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def submit(self, who: str, **spec_fields) -> int:
        overrides = {"training.epochs": 5, **spec_fields}
        response = self.call(
            who, "POST", "/api/runs", json={"preset": "xor", "overrides": overrides}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]


@pytest.fixture(scope="module")
def site(api_db, redis_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("api-server")
    env = team_env(home, api_db.url, redis_url)
    with live_server(env, home) as url:
        yield Site(api_db, url, env, home)


@pytest.fixture(scope="module")
def trained_run(site) -> int:
    """A real run with recorded epochs: `netlens train` in a process of its own, same database."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "train",
            "--preset",
            "xor",
            "--epochs",
            "3",
            "--quiet",
        ],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run_id = int(result.stdout.split()[-1])
    assert runs.get_run(site.db, run_id).epochs_recorded == 4
    return run_id


def _netlens(*args: str, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "netlens.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, f"netlens {args}: {result.stderr}"
    return result


def _client_env(site, tmp_path: Path, token: str | None = None) -> dict:
    """A client machine: an empty NETLENS_HOME and no database of its own."""
    home = tmp_path / "client-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
    }
    env.pop("NETLENS_TOKEN", None)
    if token:
        env["NETLENS_TOKEN"] = token
    return env


def _api_operations(site) -> list[tuple[str, str]]:
    doc = site.call("alice", "GET", "/api/openapi.json").json()
    return [(method.upper(), path) for path, item in doc["paths"].items() for method in item]


# ---- 401 -----------------------------------------------------------------------------------


def test_every_api_route_answers_401_without_a_token_or_with_a_bad_or_revoked_one(site):
    run_id = site.submit("alice")
    token_id, revoked = users.create_token(site.db, site.people["alice"].id, "to revoke")
    assert (
        site.call(
            None, "GET", "/api/runs", headers={"Authorization": f"Bearer {revoked}"}
        ).status_code
        == 200
    )
    # revoked through the server (the account page or the API): refused from the next request
    # on, although the server remembers identities for 2 s (a revocation from another
    # process, the CLI's, is seen within those: tests/security/test_tokens.py)
    assert site.call("alice", "DELETE", f"/api/tokens/{token_id}").status_code in (200, 204)
    operations = _api_operations(site)
    assert len(operations) >= 12
    bad = [
        {},
        {"Authorization": "Bearer nl_not-a-real-token"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"Basic {revoked}"},
        {"Authorization": "Bearer "},
    ]
    for method, path in operations:
        url = path.replace("{run_id}", str(run_id)).replace("{token_id}", str(token_id))
        for headers in bad:
            response = site.call(
                None, method, url, headers=dict(headers), json={} if method == "POST" else None
            )
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.headers["Content-Type"].startswith("application/json")
            assert "error" in response.json()
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert site.call(None, "GET", "/api/no-such-route").status_code == 401  # no hint either
    job = jobs.get_job(site.db, run_id)  # nothing above changed the run
    assert (job.state, job.attempt, job.cancel_requested) == ("queued", 1, False)


# ---- reading -------------------------------------------------------------------------------


def test_list_get_and_metrics(site, trained_run):
    alices = site.submit("alice", name="listed")
    response = site.call("bob", "GET", "/api/runs", params={"limit": 500})
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == runs.count_runs(site.db) and page["limit"] == 500
    by_id = {r["id"]: r for r in page["runs"]}
    assert by_id[alices]["owner"] == "alice" and by_id[alices]["name"] == "listed"
    assert by_id[alices]["url"] == f"/runs/{alices}"
    assert by_id[trained_run]["owner"] is None and by_id[trained_run]["status"] == "succeeded"
    ids = [r["id"] for r in page["runs"]]
    assert ids == sorted(ids, reverse=True)

    first = site.call("bob", "GET", "/api/runs", params={"limit": 1}).json()
    second = site.call("bob", "GET", "/api/runs", params={"limit": 1, "offset": 1}).json()
    assert [first["runs"][0]["id"], second["runs"][0]["id"]] == ids[:2]
    mine = site.call("bob", "GET", "/api/runs", params={"owner": "alice"}).json()
    assert mine["runs"] and all(r["owner"] == "alice" for r in mine["runs"])
    assert mine["total"] == len(mine["runs"])
    done = site.call("bob", "GET", "/api/runs", params={"status": "succeeded"}).json()
    assert trained_run in [r["id"] for r in done["runs"]]
    assert all(r["status"] == "succeeded" for r in done["runs"])
    assert site.call("bob", "GET", "/api/runs", params={"owner": "nobody-here"}).json() == {
        "runs": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }

    for params, field in (
        ({"limit": 501}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
        ({"colour": "red"}, "colour"),
    ):
        response = site.call("bob", "GET", "/api/runs", params=params)
        assert response.status_code == 400, params
        assert response.json()["fields"] == [field] and field in response.json()["error"]
    response = site.call("bob", "GET", "/api/runs", params={"limit": 501})
    assert "500" in response.json()["error"]  # the limit is named
    assert site.call("bob", "GET", "/api/runs", params={"group": 999999}).status_code == 404

    detail = site.call("bob", "GET", f"/api/runs/{alices}").json()
    assert detail["owner"] == "alice" and detail["job"]["state"] == "queued"
    assert detail["job"]["attempt"] == 1 and detail["epochs_total"] == 5
    trained = site.call("bob", "GET", f"/api/runs/{trained_run}").json()
    assert trained["job"] is None and trained["epochs_recorded"] == 4
    assert trained["spec"] == runs.get_run(site.db, trained_run).spec
    missing = site.call("bob", "GET", "/api/runs/999999")
    assert missing.status_code == 404 and missing.json()["error"] == "run 999999 does not exist"

    metrics = site.call("bob", "GET", f"/api/runs/{trained_run}/metrics").json()
    assert metrics["epochs"] == [0, 1, 2, 3]
    assert {"train_loss", "train_accuracy"} <= set(metrics["metrics"])
    assert all(len(v) == 4 for v in metrics["metrics"].values())
    final = runs.get_run(site.db, trained_run).final_metrics["train_loss"]
    assert metrics["metrics"]["train_loss"][-1] == pytest.approx(final)
    assert site.call("bob", "GET", "/api/runs/999999/metrics").status_code == 404


# ---- submitting ----------------------------------------------------------------------------


def test_submit_a_valid_spec_queues_a_run_owned_by_the_tokens_user(site):
    r = redis.Redis.from_url(site.env["NETLENS_BROKER_URL"])
    queued_before = r.llen("cpu")
    spec = {
        "name": "whole-spec",
        "dataset": {"name": "xor"},
        "model": {"hidden": [{"units": 3, "activation": "tanh"}]},
        "training": {"epochs": 12, "batch_size": 4},
    }
    response = site.call("bob", "POST", "/api/runs", json={"spec": spec})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    assert response.json()["url"] == f"/runs/{run_id}"
    assert response.headers["Location"] == f"/api/runs/{run_id}"
    info = runs.get_run(site.db, run_id)
    assert info.owner_id == site.people["bob"].id
    assert (info.status, info.epochs_total, info.name) == ("queued", 12, "whole-spec")
    assert jobs.get_job(site.db, run_id).state == "queued"
    assert r.llen("cpu") == queued_before + 1  # the delivery is on the broker

    run_id = site.submit(
        "alice", **{"name": "from-preset", "training": {"seed": 7}, "optimizer.learning_rate": 0.2}
    )
    spec = runs.get_run(site.db, run_id).spec
    assert (spec["name"], spec["training"]["seed"], spec["training"]["epochs"]) == (
        "from-preset",
        7,
        5,
    )
    assert spec["optimizer"]["learning_rate"] == 0.2 and spec["dataset"]["name"] == "xor"
    assert runs.get_run(site.db, run_id).owner_id == site.people["alice"].id


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"spec": {"name": "bad", "training": {"epochs": 0}}}, "training.epochs", "at least 1"),
        ({"spec": {"trainig": {"epochs": 3}}}, "trainig", "unknown field"),
        (
            {"preset": "xor", "overrides": {"model.hidden": [{"units": 5000}]}},
            "model.hidden.0.units",
            "at most",
        ),
        ({"preset": "no-such-preset"}, "preset", "not a preset"),
        ({"preset": "xor", "spec": {}}, "spec", "either"),
        (
            {"spec": {"name": "p", "dataset": {"name": "csv", "path": "/etc/hosts"}}},
            "dataset.path",
            "upload",
        ),
        ({"spec": "xor"}, "spec", "dictionary"),
        ({"spec": {"name": "a", "dataset": {"name": "arrays"}}}, "dataset.name", "Python API"),
        ({"preset": "xor", "colour": "red"}, "colour", "unknown field"),
    ],
)
def test_an_invalid_spec_is_422_naming_the_field_and_creates_nothing(site, body, field, words):
    before = runs.count_runs(site.db)
    response = site.call("alice", "POST", "/api/runs", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert field in answer["fields"], answer
    assert field in answer["error"] and words in answer["error"], answer
    assert runs.count_runs(site.db) == before


def test_bodies_must_be_json_objects_of_bounded_size(site):
    token = {"Authorization": f"Bearer {site.tokens['alice']}"}
    for path in ("/api/runs", "/api/tokens"):
        response = requests.post(
            site.url + path,
            data='{"preset": "xor"}',
            headers={**token, "Content-Type": "text/plain"},
            timeout=30,
        )
        assert response.status_code == 415, (path, response.text)
        assert response.json()["fields"] == ["Content-Type"]
    run_id = site.submit("alice")
    response = requests.post(
        site.url + f"/api/runs/{run_id}/cancel",
        data="cancel",
        headers={**token, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 415
    assert jobs.get_job(site.db, run_id).state == "queued"
    # an optional body is absent or a JSON object: whitespace alone is neither (found by the
    # contract fuzzer on retry)
    response = requests.post(
        site.url + f"/api/runs/{run_id}/retry",
        data="\n",
        headers={**token, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["fields"] == ["body"]
    assert jobs.get_job(site.db, run_id).attempt == 1
    response = requests.post(
        site.url + "/api/runs",
        data=b"x" * 2_000_000,
        headers={**token, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413 and "1 MiB" in response.json()["error"]
    for data, status in (("[1, 2]", 400), ("{not json", 400), ("", 400)):
        response = requests.post(
            site.url + "/api/runs",
            data=data,
            headers={**token, "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == status, (data, response.text)
        assert response.json()["fields"] == ["body"]


# ---- owners and admins ---------------------------------------------------------------------


def _state(site, run_id: int) -> tuple:
    job, info = jobs.get_job(site.db, run_id), runs.get_run(site.db, run_id)
    return job.state, job.attempt, job.cancel_requested, info.status


def test_a_member_cannot_cancel_retry_or_delete_another_members_run_an_admin_can(site):
    run_id = site.submit("alice", name="alices")
    queued = _state(site, run_id)
    for method, path, body in (
        ("POST", "cancel", None),
        ("POST", "retry", {}),
        ("POST", "retry", {"from_scratch": True}),
        ("DELETE", "", None),
    ):
        url = f"/api/runs/{run_id}" + (f"/{path}" if path else "")
        response = site.call("bob", method, url, json=body)
        assert response.status_code == 403, (method, url, response.text)
        assert "belongs to another user" in response.json()["error"]
        assert _state(site, run_id) == queued

    assert site.call("alice", "DELETE", f"/api/runs/{run_id}").status_code == 409  # not finished
    assert site.call("alice", "POST", f"/api/runs/{run_id}/retry").status_code == 409  # queued
    response = site.call("alice", "POST", f"/api/runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json() == {"id": run_id, "state": "cancelled"}
    cancelled = _state(site, run_id)
    assert cancelled[0] == cancelled[3] == "cancelled"
    for method, path in (("POST", "retry"), ("DELETE", "")):  # a finished run: still not bob's
        url = f"/api/runs/{run_id}" + (f"/{path}" if path else "")
        assert site.call("bob", method, url).status_code == 403
        assert _state(site, run_id) == cancelled
    assert site.call("alice", "POST", f"/api/runs/{run_id}/cancel").status_code == 409

    response = site.call("root", "POST", f"/api/runs/{run_id}/retry", json={"from_scratch": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": run_id, "attempt": 2, "state": "queued"}
    job = jobs.get_job(site.db, run_id)
    assert (job.state, job.attempt, job.from_scratch) == ("queued", 2, True)
    assert site.call("root", "POST", f"/api/runs/{run_id}/cancel").json()["state"] == "cancelled"
    assert site.call("root", "DELETE", f"/api/runs/{run_id}").status_code == 204
    assert site.call("alice", "GET", f"/api/runs/{run_id}").status_code == 404
    with pytest.raises(runs.RunNotFound):
        runs.get_run(site.db, run_id)

    own = site.submit("bob")
    assert site.call("bob", "POST", f"/api/runs/{own}/cancel").status_code == 200
    retried = site.call("bob", "POST", f"/api/runs/{own}/retry", json={"from_scratch": False})
    assert retried.status_code == 200 and retried.json()["attempt"] == 2
    bad = site.call("bob", "POST", f"/api/runs/{own}/retry", json={"from_scratch": "yes"})
    assert bad.status_code == 422 and bad.json()["fields"] == ["from_scratch"]
    assert site.call("bob", "POST", "/api/runs/999999/cancel").status_code == 404


def test_runs_trained_outside_the_queue_cannot_be_cancelled_but_can_be_deleted(site):
    from tests.conftest import small_spec

    run_id = runs.create_run(
        site.db, small_spec(name="no-job"), status="queued", owner_id=site.people["alice"].id
    )
    runs.finish_run(site.db, run_id, "failed", "test")
    response = site.call("alice", "POST", f"/api/runs/{run_id}/cancel")
    assert response.status_code == 409 and "no job" in response.json()["error"]
    assert site.call("alice", "DELETE", f"/api/runs/{run_id}").status_code == 204


# ---- tokens --------------------------------------------------------------------------------


def test_tokens_are_listed_not_created_by_tokens_and_revoked_by_their_owner_or_an_admin(site):
    response = site.call("alice", "POST", "/api/tokens", json={"name": "laptop"})
    assert response.status_code == 403 and "cannot create tokens" in response.json()["error"]
    token_id, secret = users.create_token(site.db, site.people["alice"].id, "laptop")
    listed = site.call("alice", "GET", "/api/tokens").json()["tokens"]
    created = next(t for t in listed if t["id"] == token_id)
    assert created["user"] == "alice" and created["name"] == "laptop"
    assert created["revoked_at"] is None and created["scope"] == "write"
    assert token_id in [t["id"] for t in listed] and {t["user"] for t in listed} == {"alice"}
    assert secret not in json.dumps(listed) and all("token" not in t for t in listed)
    assert all(t["user"] == "bob" for t in site.call("bob", "GET", "/api/tokens").json()["tokens"])
    assert site.call("bob", "GET", "/api/tokens", params={"user": "alice"}).status_code == 403
    as_admin = site.call("root", "GET", "/api/tokens", params={"user": "alice"}).json()["tokens"]
    assert token_id in [t["id"] for t in as_admin]

    new = {"Authorization": f"Bearer {secret}"}
    assert site.call(None, "GET", "/api/runs", headers=dict(new)).status_code == 200
    response = site.call("bob", "DELETE", f"/api/tokens/{token_id}")
    assert response.status_code == 403 and "owner or an admin" in response.json()["error"]
    assert site.call(None, "GET", "/api/runs", headers=dict(new)).status_code == 200
    assert site.call("bob", "DELETE", "/api/tokens/999999").status_code == 404
    assert site.call("alice", "DELETE", f"/api/tokens/{token_id}").status_code == 204
    assert site.call(None, "GET", "/api/runs", headers=dict(new)).status_code == 401
    revoked = [
        t for t in site.call("alice", "GET", "/api/tokens").json()["tokens"] if t["id"] == token_id
    ]
    assert revoked[0]["revoked_at"] is not None

    other, _ = users.create_token(site.db, site.people["bob"].id, "ci")
    assert site.call("root", "DELETE", f"/api/tokens/{other}").status_code == 204
    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({}, "name"),
        ({"name": "a", "user": "root"}, "user"),
    ):
        response = site.call("alice", "POST", "/api/tokens", json=body)
        assert response.status_code == 422 and field in response.json()["fields"], body


# ---- export --------------------------------------------------------------------------------


def test_export_streams_a_valid_npz_and_leaves_no_temporary_file(site, trained_run):
    response = site.call("bob", "GET", f"/api/runs/{trained_run}/export")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert f'filename="run{trained_run}.npz"' in response.headers["Content-Disposition"]
    assert int(response.headers["Content-Length"]) == len(response.content)
    expected = collect_run(site.db, trained_run)
    with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
        assert set(npz.files) == set(expected)
        assert list(npz["epochs"]) == [0, 1, 2, 3]
        for name, value in expected.items():
            np.testing.assert_array_equal(npz[name], value, err_msg=name)
    compressed = site.call(
        "bob", "GET", f"/api/runs/{trained_run}/export", params={"compress": "true"}
    )
    assert compressed.status_code == 200 and len(compressed.content) < len(response.content)
    assert list(np.load(io.BytesIO(compressed.content))["epochs"]) == [0, 1, 2, 3]
    assert site.call("bob", "GET", "/api/runs/999999/export").status_code == 404
    assert (
        site.call(
            "bob", "GET", f"/api/runs/{trained_run}/export", params={"compress": "maybe"}
        ).status_code
        == 400
    )
    assert list((site.home / "tmp").iterdir()) == []


# ---- the CLI's --server ----------------------------------------------------------------------


def test_cli_runs_with_server_prints_what_the_local_command_prints(site, trained_run, tmp_path):
    env = _client_env(site, tmp_path)
    for args in (
        ["--limit", "7"],
        ["--limit", "7", "--json"],
        ["--status", "succeeded"],
        ["--where", "status = succeeded and epochs > 1 or not tag:nothing"],
    ):
        remote = _netlens(
            "runs", *args, "--server", site.url, "--token", site.tokens["bob"], env=env
        )
        local = _netlens("runs", *args, env=site.env)
        assert remote.stdout == local.stdout, args
        assert site.tokens["bob"] not in remote.stdout + remote.stderr
    assert str(trained_run) in local.stdout
    assert (
        len(
            json.loads(
                _netlens(
                    "runs",
                    "--json",
                    "--limit",
                    "3",
                    "--server",
                    site.url,
                    "--token",
                    site.tokens["bob"],
                    env=env,
                ).stdout
            )
        )
        == 3
    )
    assert not (tmp_path / "client-home" / "netlens.db").exists()  # no local database touched


def test_cli_submit_and_export_with_server(site, trained_run, tmp_path):
    env = _client_env(site, tmp_path, token=site.tokens["alice"])  # the token from the env
    result = _netlens(
        "submit",
        "--preset",
        "xor",
        "--epochs",
        "9",
        "--name",
        "cli-remote",
        "--server",
        site.url + "/",
        env=env,
    )
    run_id = int(result.stdout.strip().splitlines()[-1])
    info = runs.get_run(site.db, run_id)
    assert info.owner_id == site.people["alice"].id and info.epochs_total == 9
    assert info.name == "cli-remote" and site.tokens["alice"] not in result.stdout + result.stderr

    out = tmp_path / "sub" / "exported.npz"
    result = _netlens("export", str(trained_run), str(out), "--server", site.url, env=env)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "wrote" in result.stderr and not out.with_name("exported.npz.part").exists()
    with np.load(out) as npz:
        assert list(npz["epochs"]) == [0, 1, 2, 3]
        np.testing.assert_array_equal(
            npz["params/hidden_1/kernel"],
            collect_run(site.db, trained_run)["params/hidden_1/kernel"],
        )
    assert not (tmp_path / "client-home" / "netlens.db").exists()


def test_cli_server_errors_are_clear_and_never_show_the_token(site, trained_run, tmp_path):
    env = _client_env(site, tmp_path)
    secret = "nl_" + "s" * 43
    result = _netlens("runs", "--server", site.url, "--token", secret, env=env, ok=False)
    assert (
        result.returncode == 1
        and "401" in result.stderr
        and "netlens tokens create" in result.stderr
    )
    assert secret not in result.stdout + result.stderr

    token_id, revoked = users.create_token(site.db, site.people["bob"].id, "revoked")
    users.revoke_token(site.db, token_id, users.Actor.of(site.people["root"]))
    result = _netlens(
        "export",
        str(trained_run),
        str(tmp_path / "x.npz"),
        "--server",
        site.url,
        env={**env, "NETLENS_TOKEN": revoked},
        ok=False,
    )
    assert result.returncode == 1 and "401" in result.stderr
    assert revoked not in result.stdout + result.stderr and not (tmp_path / "x.npz").exists()

    result = _netlens("runs", "--server", site.url, env=env, ok=False)  # no token at all
    assert result.returncode == 2 and "NETLENS_TOKEN" in result.stderr

    closed = f"http://127.0.0.1:{free_port()}"
    result = _netlens("runs", "--server", closed, "--token", secret, env=env, ok=False)
    assert result.returncode == 1 and "connection refused" in result.stderr
    assert secret not in result.stderr

    result = _netlens("runs", "--server", "ftp://example.org", "--token", secret, env=env, ok=False)
    assert result.returncode == 2 and "--server" in result.stderr

    spec = tmp_path / "paths.json"  # valid here; the server reads no client paths
    spec.write_text(json.dumps({"name": "p", "dataset": {"name": "csv", "path": "/etc/hosts"}}))
    before = runs.count_runs(site.db)
    result = _netlens(
        "submit", str(spec), "--server", site.url, "--token", site.tokens["bob"], env=env, ok=False
    )
    assert result.returncode == 2 and "422" in result.stderr and "dataset.path" in result.stderr
    assert runs.count_runs(site.db) == before
    result = _netlens(
        "submit",
        "--preset",
        "xor",
        "--epochs",
        "0",
        "--server",
        site.url,
        "--token",
        site.tokens["bob"],
        env=env,
        ok=False,
    )
    assert result.returncode == 2 and "training.epochs" in result.stderr  # checked locally

    result = _netlens(
        "export",
        "999999",
        str(tmp_path / "y.npz"),
        "--server",
        site.url,
        "--token",
        site.tokens["bob"],
        env=env,
        ok=False,
    )
    assert result.returncode == 2 and "run 999999 does not exist" in result.stderr

    result = _netlens("runs", "--token", site.tokens["bob"], env=env, ok=False)
    assert result.returncode == 2 and "--server" in result.stderr
    assert site.tokens["bob"] not in result.stdout + result.stderr
