"""The REST API's admin routes (webapp/api_admin.py) and comparisons (webapp/api_compare.py)
against a real server, as tests/integration/test_api.py runs it (its fixtures), attacker-style:
a member on every admin route, bad ids and lists, unknown fields, an admin disabling
themselves. Every answer is checked against the served OpenAPI document's schema; expected
values come from the storage functions and numpy, never written in."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from netlens.storage import admin, jobs, records, runs, users, workers
from netlens.webapp.similarity import cka_matrix, shared_rows
from tests.live_server import api_site_fixtures

REDIS_DB = 4  # a database of its own on the shared Redis (contract 7, security 9, ...)
ADMIN_PATHS = (
    ("GET", "/admin/jobs"),
    ("GET", "/admin/jobs/{run}"),
    ("POST", "/admin/jobs/{run}/requeue"),
    ("GET", "/admin/queues"),
    ("GET", "/admin/workers"),
    ("GET", "/admin/users"),
    ("PATCH", "/admin/users/alice"),
    ("GET", "/admin/storage"),
)

# test_api's server and trained run, made again for this module (module-scoped fixtures), on
# this module's own Redis database; schemas(body, model) checks an answer against the OpenAPI
api_db, site, trained_run, redis_url, schemas = api_site_fixtures(REDIS_DB)


def _train(site, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "train", "--quiet", *args],
        env=site.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def compared(site, trained_run) -> dict[str, int]:
    """Runs with recorded epochs to compare, each trained by `netlens train` in a process of
    its own: trained_run (xor, epochs 0-3), a longer xor run (0-5, another seed: the same
    probe inputs) and a two-regions run (other inputs)."""
    started = {
        "xor5": _train(site, "--preset", "xor", "--epochs", "5", "--seed", "7"),
        "regions": _train(site, "--preset", "two-regions", "--epochs", "2"),
    }
    out = {"xor3": trained_run}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        out[name] = int(stdout.split()[-1])
    return out


def _error(response, status: int, field: str, schemas) -> str:
    assert response.status_code == status, (status, response.status_code, response.text)
    body = schemas(response.json(), "ApiError")
    assert field in body["fields"], body
    return body["error"]


# ---- who may ------------------------------------------------------------------------------------


def test_members_are_refused_every_admin_route_and_change_nothing(site, trained_run, schemas):
    documented = {
        (method.upper(), path[len("/api/v1") :])
        for path, item in schemas.doc["paths"].items()
        for method in item
        if path.startswith("/api/v1/admin/")
    }
    assert documented == {
        (m, p.replace("{run}", "{run_id}").replace("alice", "{name}")) for m, p in ADMIN_PATHS
    }
    queued = site.submit("alice", name="not-bobs")
    before = (jobs.get_job(site.db, queued), users.list_users(site.db))
    for prefix in ("/api/v1", "/api"):
        for method, path in ADMIN_PATHS:
            url = prefix + path.format(run=queued)
            body = {"disabled": True} if method == "PATCH" else None
            response = site.call("bob", method, url, json=body)
            assert response.status_code == 403, (method, url, response.text)
            assert response.json()["error"] == "admins only"
            no_token = site.call(None, method, url, json=body)
            assert no_token.status_code == 401 and "WWW-Authenticate" in no_token.headers
    assert (jobs.get_job(site.db, queued), users.list_users(site.db)) == before
    # the operations carry their rule in the document
    for path, item in schemas.doc["paths"].items():
        for operation in item.values():
            if path.startswith("/api/v1/admin/"):
                assert operation["x-netlens-rule"] == "admin" and "403" in operation["responses"]
            elif path.startswith("/api/v1/compare/"):
                assert operation["x-netlens-rule"] == "member"


# ---- the job queue ------------------------------------------------------------------------------


def test_jobs_are_filtered_sorted_and_paged_as_storage_does(site, schemas):
    made = [
        site.submit("alice", name="adm-a"),
        site.submit("alice", name="adm-b"),
        site.submit("bob", name="adm-c"),
    ]
    jobs.request_cancel(site.db, made[1])

    def listed(**params) -> dict:
        response = site.call("root", "GET", "/api/admin/jobs", params=params)
        assert response.status_code == 200, (params, response.text)
        return schemas(response.json(), "AdminJobPage")

    everything = listed(limit=500)
    expected, total = admin.query_jobs(site.db, limit=500)
    assert [j["run_id"] for j in everything["jobs"]] == [j.run_id for j in expected]
    assert everything["total"] == total >= 3 and "next" not in everything
    row = next(j for j in everything["jobs"] if j["run_id"] == made[1])
    assert row["state"] == "cancelled" and row["owner"] == "alice" and row["name"] == "adm-b"
    assert row["error"] == "cancelled before it started" and row["url"] == f"/runs/{made[1]}"

    alices = listed(owner="alice", state="queued,cancelled", sort="run_id", order="asc")
    want, _ = admin.query_jobs(
        site.db, owner="alice", states=["queued", "cancelled"], sort=[("run_id", "asc")]
    )
    assert [j["run_id"] for j in alices["jobs"]] == [j.run_id for j in want]
    assert {made[0], made[1]} <= {j["run_id"] for j in alices["jobs"]}
    assert made[2] not in [j["run_id"] for j in alices["jobs"]]
    assert [j["run_id"] for j in listed(state="cancelled", owner="alice")["jobs"]] == [made[1]]
    assert listed(queue="gpu")["total"] == admin.query_jobs(site.db, queue="gpu")[1]

    # time windows (RFC 3339, any offset), and a window that ends before it starts is empty
    start = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    recent = listed(since=start.isoformat(), limit=500)
    assert set(made) <= {j["run_id"] for j in recent["jobs"]}
    at_plus_two = (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")  # the same
    assert listed(since=at_plus_two, limit=500)["total"] == recent["total"]
    assert (
        listed(since=start.strftime("%Y-%m-%dT%H:%M:%S.5Z"), limit=500)["total"] <= recent["total"]
    )
    assert listed(until="2000-01-01T00:00:00Z")["total"] == 0
    assert listed(since="2030-01-01T00:00:00z", until="2020-01-01T00:00:00Z")["jobs"] == []
    assert listed(since="0001-01-01T00:00:00+23:59")["total"] == total  # before year 1 in UTC

    # paging: follow next (body and Link header) to the end
    seen, url = [], "/api/admin/jobs?limit=2&sort=run_id&order=asc"
    while url:
        response = site.call("root", "GET", url)
        body = schemas(response.json(), "AdminJobPage")
        seen += [j["run_id"] for j in body["jobs"]]
        url = body.get("next")
        assert response.headers.get("Link") == (f'<{url}>; rel="next"' if url else None)
    assert seen == sorted(j.run_id for j in expected)

    for params, status, field in (
        ({"state": "bogus"}, 400, "state"),
        ({"state": ""}, 400, "state"),
        ({"state": "queued,queued"}, 400, "state"),
        ({"state": "queued,"}, 400, "state"),
        ({"queue": "tpu"}, 400, "queue"),
        ({"since": "yesterday"}, 400, "since"),
        ({"since": "2026-01-31"}, 400, "since"),  # a date is not a date-time
        ({"since": "2026-01-31T08:00:00." + "0" * 30 + "Z"}, 400, "since"),  # over 40
        ({"until": "2026-02-30T00:00:00Z"}, 400, "until"),
        ({"until": "2026-01-31T08:00:00+24:00"}, 400, "until"),
        ({"sort": "password_hash"}, 400, "sort"),
        ({"order": "sideways"}, 400, "order"),
        ({"limit": 0}, 400, "limit"),
        ({"limit": 501}, 400, "limit"),
        ({"offset": 2**31}, 400, "offset"),
        ({"owner": "o" * 41}, 400, "owner"),
        ({"owner": "nobody-here"}, 404, "owner"),
        ({"user": "alice"}, 400, "user"),  # unknown parameter
    ):
        response = site.call("root", "GET", "/api/admin/jobs", params=params)
        _error(response, status, field, schemas)


def test_one_job_and_requeue(site, trained_run, schemas):
    queued = site.submit("alice", name="stuck")
    worker = "adm-worker-1"
    jobs.claim(site.db, queued, 1, worker)  # as a worker would: running, then it hangs
    jobs.heartbeat(site.db, queued, 1, progress_epoch=2, last_metrics={"train_loss": 0.5})
    failed = site.submit("bob", name="broke")
    jobs.claim(site.db, failed, 1, worker)
    jobs.finish(site.db, failed, 1, "failed", "ValueError: boom", "Traceback...\nValueError: boom")

    detail = schemas(site.call("root", "GET", f"/api/admin/jobs/{failed}").json(), "AdminJobDetail")
    stored = admin.job_detail(site.db, failed)
    assert detail["error"] == stored.error == "ValueError: boom"
    assert detail["traceback"] == stored.traceback and detail["has_traceback"] is True
    assert detail["run_status"] == "failed" and detail["owner"] == "bob"
    running = schemas(
        site.call("root", "GET", f"/api/v1/admin/jobs/{queued}").json(), "AdminJobDetail"
    )
    assert running["state"] == "running" and running["worker_id"] == worker
    assert running["last_metrics"] == {"train_loss": 0.5} and running["progress_epoch"] == 2

    requeued = site.call("root", "POST", f"/api/admin/jobs/{queued}/requeue")
    assert requeued.status_code == 200, requeued.text
    assert schemas(requeued.json(), "Requeued") == {"id": queued, "attempt": 2, "state": "queued"}
    job = jobs.get_job(site.db, queued)
    assert (job.state, job.attempt, job.worker_id) == ("queued", 2, None)
    again = site.call("root", "POST", f"/api/admin/jobs/{queued}/requeue", json={})
    assert again.status_code == 200 and again.json()["attempt"] == 3

    # a finished job is retried, not requeued; a run of `netlens train` has no job
    assert "retry" in _error(
        site.call("root", "POST", f"/api/admin/jobs/{failed}/requeue"), 409, "run_id", schemas
    )
    assert "no job" in _error(
        site.call("root", "POST", f"/api/admin/jobs/{trained_run}/requeue"), 409, "run_id", schemas
    )
    assert "no job" in _error(
        site.call("root", "GET", f"/api/admin/jobs/{trained_run}"), 404, "run_id", schemas
    )
    for run_id in (999999, 0, 2**31, 2**80):
        for method, path in (("GET", ""), ("POST", "/requeue")):
            response = site.call("root", method, f"/api/admin/jobs/{run_id}{path}")
            assert response.status_code == 404, (run_id, path, response.text)
    for body, status in (({"force": True}, 422), ([1], 400)):
        response = site.call("root", "POST", f"/api/admin/jobs/{queued}/requeue", json=body)
        assert response.status_code == status, (body, response.text)
    response = site.call(
        "root",
        "POST",
        f"/api/admin/jobs/{queued}/requeue",
        data="x",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert jobs.get_job(site.db, queued).attempt == 3  # none of those changed it


def test_queue_counts_workers_and_storage(site, trained_run, schemas):
    summary = schemas(site.call("root", "GET", "/api/admin/queues").json(), "QueueSummary")
    assert summary["states"] == admin.state_counts(site.db)
    assert summary["queued"] == admin.queued_per_queue(site.db)
    assert summary["broker"] is None or set(summary["broker"]) == {"cpu", "gpu"}

    now = datetime.now(UTC)
    me = workers.WorkerIdentity("adm-online", "host-a", 101, ("cpu",), "cpu")
    workers.register(site.db, me)
    workers.register(
        site.db,
        workers.WorkerIdentity("adm-lost", "host-b", 102, ("gpu",)),
        now=now - timedelta(hours=1),
    )
    workers.register(site.db, workers.WorkerIdentity("adm-done", "host-c", 103, ("cpu", "gpu")))
    workers.mark_stopped(site.db, "adm-done")
    running = site.submit("alice", name="on-a-worker")
    jobs.claim(site.db, running, 1, "adm-online")

    answer = schemas(site.call("root", "GET", "/api/admin/workers").json(), "WorkerList")
    by_name = {w["name"]: w for w in answer["workers"]}
    # the server's heartbeat period is the default, as this process's Settings has it
    expected = {w.name: w for w in workers.list_workers(site.db, 10.0)}
    for name, state in (("adm-online", "online"), ("adm-lost", "offline"), ("adm-done", "stopped")):
        assert by_name[name]["state"] == expected[name].state == state
    assert answer["online_window_s"] == workers.online_window_s(10.0)
    online = by_name["adm-online"]
    assert online["current_run_id"] == running and online["current_run_name"] == "on-a-worker"
    assert online["queues"] == ["cpu"] and online["pid"] == 101
    assert [w["name"] for w in answer["workers"]][0] == "adm-online"  # online ones first
    assert (
        len(site.call("root", "GET", "/api/admin/workers", params={"limit": 1}).json()["workers"])
        == 1
    )
    for limit in (0, 1001, "x"):
        _error(
            site.call("root", "GET", "/api/admin/workers", params={"limit": limit}),
            400,
            "limit",
            schemas,
        )

    storage = schemas(site.call("root", "GET", "/api/admin/storage").json(), "StorageReport")
    want = admin.storage_by_user(site.db)
    assert [(u["owner"], u["runs"], u["total_bytes"]) for u in storage["users"]] == [
        (u.owner, u.runs, u.total_bytes) for u in want
    ]
    largest = [r for r in admin.largest_runs(site.db, 20) if r.recorded_bytes > 0]
    assert [r["run_id"] for r in storage["largest_runs"]] == [r.run_id for r in largest]
    assert trained_run in [r["run_id"] for r in storage["largest_runs"]]
    first = site.call("root", "GET", "/api/admin/storage", params={"limit": 1}).json()
    assert len(first["largest_runs"]) <= 1
    for limit in (0, 201):
        _error(
            site.call("root", "GET", "/api/admin/storage", params={"limit": limit}),
            400,
            "limit",
            schemas,
        )


# ---- accounts -----------------------------------------------------------------------------------


def test_accounts_are_listed_without_secrets_and_disabled_by_another_admin_only(site, schemas):
    response = site.call("root", "GET", "/api/admin/users")
    listed = schemas(response.json(), "AccountList")["users"]
    assert [(u["name"], u["admin"], u["disabled"]) for u in listed] == [
        (u.name, u.is_admin, u.disabled) for u in users.list_users(site.db)
    ]
    assert "argon2" not in response.text and "hash" not in response.text.lower()

    def patch(who: str, name: str, **kwargs):
        return site.call(who, "PATCH", f"/api/admin/users/{name}", **kwargs)

    # the admin's own account: never (there might be no other admin to undo it)
    for disabled in (True, False):
        assert "your own account" in _error(
            patch("root", "root", json={"disabled": disabled}), 409, "name", schemas
        )
    assert users.get_user_by_name(site.db, "root").disabled is False
    assert site.call("root", "GET", "/api/admin/users").status_code == 200

    # bad requests change nothing
    for kwargs, status in (
        ({"json": {"disabled": True, "admin": True}}, 422),  # promoting is not offered
        ({"json": {"disabled": "yes"}}, 422),
        ({"json": {"disabled": 1}}, 422),
        ({"json": {}}, 422),
        ({}, 400),
        ({"json": [True]}, 400),
        (
            {
                "data": "disabled=1",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            415,
        ),
    ):
        response = patch("root", "bob", **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        schemas(response.json(), "ApiError")
    for name in ("nobody", "Bob", "a" * 41, "bob%00"):
        response = patch("root", name, json={"disabled": True})
        assert response.status_code == 404, (name, response.text)
    assert patch("alice", "bob", json={"disabled": True}).status_code == 403
    assert users.get_user_by_name(site.db, "bob").disabled is False

    # root disables bob: his token stops at once; enabled again, old tokens stay revoked
    assert site.call("bob", "GET", "/api/runs").status_code == 200
    answer = schemas(patch("root", "bob", json={"disabled": True}).json(), "Account")
    assert answer["name"] == "bob" and answer["disabled"] is True and answer["admin"] is False
    assert users.get_user_by_name(site.db, "bob").disabled is True
    assert site.call("bob", "GET", "/api/runs").status_code == 401
    assert patch("root", "bob", json={"disabled": False}).json()["disabled"] is False
    assert site.call("bob", "GET", "/api/runs").status_code == 401
    bob = users.get_user_by_name(site.db, "bob")
    site.tokens["bob"] = users.create_token(site.db, bob.id, "after re-enabling")[1]
    assert site.call("bob", "GET", "/api/runs").status_code == 200


# ---- comparing runs -----------------------------------------------------------------------------


def test_metrics_of_several_runs_aligned_on_their_epochs(site, compared, schemas):
    a, b = compared["xor3"], compared["xor5"]
    response = site.call("bob", "GET", "/api/compare/metrics", params={"runs": f"{b},{a}"})
    body = schemas(response.json(), "ComparedMetrics")
    (ea, ma), (eb, mb) = records.read_metrics(site.db, a), records.read_metrics(site.db, b)
    union = sorted(set(ea.tolist()) | set(eb.tolist()))
    assert body["runs"] == [b, a] and body["epochs"] == union and len(ea) < len(eb)
    curves = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")  # the default
    assert list(body["metrics"]) == [n for n in curves if n in ma or n in mb]
    assert "val_loss" not in ma  # xor has no validation split
    for name, per_run in body["metrics"].items():
        for values, (epochs, stored) in zip(per_run, ((eb, mb), (ea, ma)), strict=True):
            at = dict(zip(epochs.tolist(), stored[name].tolist(), strict=True))
            assert values == [at.get(e) for e in union]  # null where the run has no epoch
    assert body["metrics"]["train_loss"][1][-1] is None  # a (0-3) has nothing at 5

    # a metric one run recorded and the other did not: that one's values are all null
    regions = compared["regions"]
    er, mr = records.read_metrics(site.db, regions)
    chosen = site.call(
        "bob",
        "GET",
        "/api/v1/compare/metrics",
        params={"runs": f"{a},{regions}", "metric": "val_loss,train_loss"},
    )
    body = schemas(chosen.json(), "ComparedMetrics")
    union = sorted(set(ea.tolist()) | set(er.tolist()))
    assert list(body["metrics"]) == ["val_loss", "train_loss"] and body["epochs"] == union
    assert body["metrics"]["val_loss"][0] == [None] * len(union)
    at = dict(zip(er.tolist(), mr["val_loss"].tolist(), strict=True))
    assert body["metrics"]["val_loss"][1] == [at.get(e) for e in union]

    def refused(params, status, field):
        return _error(
            site.call("bob", "GET", "/api/compare/metrics", params=params), status, field, schemas
        )

    assert "no-such-metric" in refused({"runs": f"{a}", "metric": "no-such-metric"}, 404, "metric")
    assert "999999" in refused({"runs": f"{a},999999"}, 404, "runs")
    for runs_text in (
        "",
        "0",
        f"{a},{a}",
        f"{a},",
        " 1",
        "1.5",
        "x",
        str(2**31),
        ",".join(map(str, range(1, 10))),
    ):
        refused({"runs": runs_text}, 400, "runs")
    refused({}, 400, "runs")
    refused({"runs": str(a), "metric": ""}, 400, "metric")
    refused({"runs": str(a), "metric": "train_loss,train_loss"}, 400, "metric")
    refused({"runs": str(a), "metric": ",".join(f"m{i}" for i in range(17))}, 400, "metric")
    refused({"runs": str(a), "metrics": "train_loss"}, 400, "metrics")


def _expected_cka(db, a: int, b: int, epoch: int) -> np.ndarray:
    """CKA from the stored signatures, read here with storage and numpy."""
    probes = [records.read_arrays(db, r)["probe/x"] for r in (a, b)]
    rows = shared_rows(*probes)
    sides = []
    for run_id, chosen in zip((a, b), rows, strict=True):
        names = [layer["name"] for layer in runs.get_run(db, run_id).layers]
        found = [
            records.read_tensor(db, run_id, f"signatures/{n}", epoch, epoch)[1][0] for n in names
        ]
        sides.append([s.reshape(len(s), -1)[chosen] for s in found])
    return cka_matrix(*sides)


def test_cka_between_two_runs_layers(site, compared, schemas):
    a, b, other = compared["xor3"], compared["xor5"], compared["regions"]
    body = schemas(
        site.call("bob", "GET", "/api/compare/cka", params={"a": a, "b": b}).json(), "ComparedCka"
    )
    layers = [layer["name"] for layer in runs.get_run(site.db, a).layers]
    assert body["epoch"] == 3  # the last epoch both recorded (a: 0-3, b: 0-5)
    assert body["rows"] == body["columns"] == layers and body["inputs"] >= 3
    np.testing.assert_allclose(
        np.array(body["matrix"], dtype=float), _expected_cka(site.db, a, b, 3), atol=1e-9
    )
    itself = site.call("bob", "GET", "/api/compare/cka", params={"a": b, "b": b, "epoch": 5}).json()
    assert itself["epoch"] == 5
    np.testing.assert_allclose(np.diag(np.array(itself["matrix"], dtype=float)), 1.0, atol=1e-9)
    at_one = site.call("bob", "GET", "/api/compare/cka", params={"a": a, "b": b, "epoch": 1}).json()
    np.testing.assert_allclose(
        np.array(at_one["matrix"], dtype=float), _expected_cka(site.db, a, b, 1), atol=1e-9
    )

    def refused(params, status, field):
        return _error(
            site.call("bob", "GET", "/api/compare/cka", params=params), status, field, schemas
        )

    assert "from 0 to 3" in refused({"a": a, "b": b, "epoch": 4}, 404, "epoch")
    assert "share 0 probe inputs" in refused({"a": a, "b": other, "epoch": 1}, 409, "a")
    queued = site.submit("alice", name="nothing-yet")
    assert "no signatures" in refused({"a": queued, "b": a}, 409, "a")
    assert "no signatures" in refused({"a": a, "b": queued}, 409, "b")
    refused({"a": 999999, "b": a}, 404, "a")
    refused({"a": a, "b": 999999}, 404, "b")
    for params, field in (
        ({"b": a}, "a"),
        ({"a": a}, "b"),
        ({"a": 0, "b": a}, "a"),
        ({"a": a, "b": 2**31}, "b"),
        ({"a": "x", "b": a}, "a"),
        ({"a": a, "b": b, "epoch": -1}, "epoch"),
        ({"a": a, "b": b, "epoch": ""}, "epoch"),
        ({"a": a, "b": b, "layer": "x"}, "layer"),
    ):
        refused(params, 400, field)


def test_distance_from_initial_weights(site, compared, schemas):
    a, b = compared["xor3"], compared["xor5"]
    body = schemas(
        site.call("bob", "GET", "/api/compare/distance", params={"runs": f"{a},{b}"}).json(),
        "ComparedDistance",
    )
    assert [r["run_id"] for r in body["runs"]] == [a, b]
    for answer in body["runs"]:
        names = [layer["name"] for layer in runs.get_run(site.db, answer["run_id"]).layers]
        flat = np.concatenate(
            [
                records.read_tensor(site.db, answer["run_id"], f"params/{n}/{k}")[1].reshape(
                    len(answer["epochs"]), -1
                )
                for n in names
                for k in ("kernel", "bias")
            ],
            axis=1,
        ).astype(np.float64)
        assert (
            answer["epochs"]
            == records.read_tensor(site.db, answer["run_id"], f"params/{names[0]}/kernel")[
                0
            ].tolist()
        )
        np.testing.assert_allclose(
            answer["distance"], np.linalg.norm(flat - flat[0], axis=1), rtol=1e-9
        )
        assert answer["distance"][0] == 0.0 and answer["distance"][-1] > 0
        assert answer["initial_norm"] == pytest.approx(float(np.linalg.norm(flat[0])))
    for params, status in (({"runs": "0"}, 400), ({"runs": "999999"}, 404), ({}, 400)):
        _error(
            site.call("bob", "GET", "/api/compare/distance", params=params), status, "runs", schemas
        )
