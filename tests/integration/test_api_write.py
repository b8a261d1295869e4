"""The REST API's routes for what the pages and the CLI do (webapp/api_write.py) against a real
`netlens serve --workers 0` on PostgreSQL and Redis, over HTTP with tokens: sweeps (POST and
GET /groups), signature analysis requests, and uploads. Besides what they do, as an
attacker would: another member's upload or group, bad ids and types, oversized bodies, a
read-only token. Every answer is checked against the served OpenAPI document's schema, every
refusal against the database (nothing created) and the broker (nothing sent)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import jsonschema
import numpy as np
import pytest
import redis

from netlens.storage import analyses, groups, jobs, limits, runs, uploads, users
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec
from netlens.storage.sweep import expand_grid
from tests.conftest import REDIS_URL, flushed_redis_url, fresh_pg_database
from tests.integration import test_api
from tests.live_server import live_server, team_env

REDIS_DB = 3  # a database of its own on the shared Redis (others: 7, 9, 10, 11, 13, 14)
HUGE = 2**63
UPLOAD_MB = 1  # the server's upload limit here, so that "over it" is cheap to send
CSV = b"x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"

trained_run = test_api.trained_run  # `netlens train` in a process of its own (module-scoped)


@pytest.fixture(scope="module")
def api_db(pg_server):
    with fresh_pg_database(pg_server) as db:
        yield db


@pytest.fixture(scope="module")
def site(api_db, tmp_path_factory):
    home = tmp_path_factory.mktemp("api-write-server")
    env = team_env(
        home, api_db.url, flushed_redis_url(REDIS_DB), NETLENS_MAX_UPLOAD_MB=str(UPLOAD_MB)
    )
    with live_server(env, home) as url:
        yield test_api.Site(api_db, url, env, home)


@pytest.fixture(scope="module")
def broker():
    return redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")  # the server the site sends to


def sent(broker, queue: str = "cpu") -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in a Celery queue of the test Redis, oldest
    first (kombu pushes on the left)."""
    out = []
    for raw in reversed(broker.lrange(queue, 0, -1)):
        headers = json.loads(raw)["headers"]
        out.append((headers["task"], json.loads(headers["argsrepr"].replace("'", '"'))))
    return out


@pytest.fixture(scope="module")
def schemas(site):
    doc = site.call("alice", "GET", "/api/openapi.json").json()

    def check(body, model: str):
        schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)
        return body

    return check


def counts(site) -> tuple[int, int, int]:
    return (
        runs.count_runs(site.db),
        groups.count_groups(site.db),
        len(uploads.list_uploads(site.db)),
    )


def refused(site, who, method, path, status, field=None, **kwargs):
    response = site.call(who, method, path, **kwargs)
    assert response.status_code == status, (method, path, kwargs, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    if field is not None:
        assert field in body["fields"], (field, body)
    return body


# ---- sweeps --------------------------------------------------------------------------------


SWEEP = {
    "preset": "xor",
    "overrides": {"training.epochs": 3},
    "axes": [
        {"field": "optimizer.learning_rate", "values": [0.01, 0.1]},
        {"field": "training.seed", "values": [0, 1, 2]},
    ],
    "name": "api-sweep",
}


def test_a_sweep_is_the_grid_of_the_cli_queued_as_the_callers_group(site, broker, schemas):
    before_messages = len(sent(broker))
    response = site.call("alice", "POST", "/api/v1/groups", json=SWEEP)
    assert response.status_code == 201, response.text
    group = schemas(response.json(), "Group")
    assert response.headers["Location"] == f"/api/v1/groups/{group['id']}"
    assert group["name"] == "api-sweep" and group["owner"] == "alice" and group["size"] == 6
    assert group["axes"] == SWEEP["axes"] and group["counts"] == {"queued": 6}
    assert group["base_spec"]["training"]["epochs"] == 3

    # exactly what `netlens sweep` expands (storage.sweep.expand_grid), in grid order
    base = parse_spec(group["base_spec"])
    expected = expand_grid(base, [(a["field"], a["values"]) for a in SWEEP["axes"]])
    assert [r["name"] for r in group["runs"]] == [s.name for s in expected]
    assert [r["id"] for r in group["runs"]] == group["run_ids"]
    alice = site.people["alice"].id
    for run, spec in zip(group["runs"], expected, strict=True):
        info = runs.get_run(site.db, run["id"])
        assert info.owner_id == alice and info.group_id == group["id"] and run["owner"] == "alice"
        assert info.spec["optimizer"]["learning_rate"] == spec.optimizer.learning_rate
        assert info.spec["training"]["seed"] == spec.training.seed
    # each run's job was put on the broker
    messages = sent(broker)[before_messages:]
    assert [args for _task, args in messages] == [[r, 1] for r in group["run_ids"]]

    # GET /groups/{id} answers the same group; GET /groups lists it, newest first
    again = site.call("bob", "GET", response.headers["Location"]).json()
    assert again == group
    second = site.call("bob", "POST", "/api/groups", json={**SWEEP, "name": "bobs"}).json()
    page = schemas(site.call("bob", "GET", "/api/groups").json(), "GroupPage")
    assert [g["id"] for g in page["groups"][:2]] == [second["id"], group["id"]]
    assert page["total"] == groups.count_groups(site.db) and "runs" not in page["groups"][0]
    assert page["groups"][1]["run_ids"] == group["run_ids"]
    mine = site.call("bob", "GET", "/api/groups", params={"owner": "alice"}).json()
    assert [g["id"] for g in mine["groups"]] == [group["id"]] and mine["total"] == 1
    nobody = site.call("bob", "GET", "/api/groups", params={"owner": "nobody"}).json()
    assert nobody["groups"] == [] and nobody["total"] == 0 and "next" not in nobody
    first = site.call("bob", "GET", "/api/groups", params={"limit": 1})
    assert first.json()["next"] == "/api/groups?limit=1&offset=1"
    assert first.headers["Link"] == "<" + first.json()["next"] + '>; rel="next"'
    follow = site.call("bob", "GET", first.json()["next"]).json()
    assert [g["id"] for g in follow["groups"]] == [group["id"]] and follow["offset"] == 1
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": HUGE}, "offset"),
        ({"owner": "x" * 41}, "owner"),
        ({"owner": "a\x00"}, "owner"),
        ({"kind": "sweep"}, "kind"),
    ):
        refused(site, "bob", "GET", "/api/groups", 400, field, params=params)


def test_a_bad_sweep_is_refused_naming_the_field_and_the_limit_and_creates_nothing(
    site, broker, schemas
):
    before, before_messages = counts(site), len(sent(broker))
    axis = {"field": "training.seed", "values": [0, 1]}
    cases = [
        ({**SWEEP, "axes": []}, 422, "axes"),
        ({**SWEEP, "axes": [axis] * 4}, 422, "axes"),
        ({**SWEEP, "axes": [{"field": "optimizer.lerning_rate", "values": [1]}]}, 422, None),
        ({**SWEEP, "axes": [{"field": "optimizer.learning_rate", "values": [-1, 0.1]}]}, 422, None),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": [1, 1]}]}, 422, "training.seed"),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": [True]}]}, 422, None),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": [[1]]}]}, 422, None),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": []}]}, 422, None),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": list(range(201))}]}, 422, None),
        (
            {**SWEEP, "axes": [{"field": "optimizer.name", "values": ["adam", "rmsprop!"]}]},
            422,
            "optimizer.name",
        ),
        (
            {**SWEEP, "axes": [{"field": "dataset.path", "values": ["/etc/passwd"]}]},
            422,
            "axes.0.field",
        ),
        ({**SWEEP, "axes": [{"field": "dataset.upload", "values": [1]}]}, 422, "axes.0.field"),
        ({**SWEEP, "axes": [{"field": "name", "values": ["a", "b"]}]}, 422, "name"),
        ({**SWEEP, "axes": [{"field": "training.seed", "values": [1], "x": 1}]}, 422, None),
        ({**SWEEP, "name": "a\x00b"}, 422, "name"),
        ({**SWEEP, "name": ""}, 422, "name"),
        ({**SWEEP, "name": "n" * 201}, 422, "name"),
        ({**SWEEP, "unknown": 1}, 422, "unknown"),
        ({k: v for k, v in SWEEP.items() if k != "preset"}, 422, "preset"),
        ({**SWEEP, "spec": {"name": "x"}}, 422, "spec"),
        ({**SWEEP, "overrides": {"training.epochs": 0}}, 422, "training.epochs"),
        ({**SWEEP, "preset": "nope"}, 422, "preset"),
        (
            {"spec": {"dataset": {"name": "csv", "path": "/etc/hosts"}}, "axes": [axis]},
            422,
            "dataset.path",
        ),
        ({**SWEEP, "axes": "training.seed=0,1"}, 422, "axes"),
    ]
    # 10 x 10 x 3 = 300 runs: over the hard cap of 200, refused before anything is expanded
    big = [
        {"field": "training.seed", "values": list(range(10))},
        {"field": "dataset.seed", "values": list(range(10))},
        {"field": "optimizer.learning_rate", "values": [0.01, 0.02, 0.03]},
    ]
    # a combination that breaks a limit no value breaks alone (recorded bytes)
    heavy = {
        "spec": {
            "dataset": {"name": "moons"},
            "model": {"hidden": [{"units": 64}] * 2},
            "training": {"epochs": 2000},
            "recording": {"probe_size": 500},
        },
        "axes": [{"field": "model.width", "values": [64, 1024]}],
    }
    cases.append((heavy, 422, "model.width"))
    for body, status, field in cases:
        answer = refused(site, "alice", "POST", "/api/groups", status, field, json=body)
        schemas(answer, "ApiError")
        assert ":" in answer["error"] and answer["fields"], (body, answer)
        assert all(":" in line for line in answer.get("errors") or []), answer
    text = refused(
        site, "alice", "POST", "/api/groups", 422, "optimizer.lerning_rate", json=cases[2][0]
    )["error"]
    assert "did you mean optimizer.learning_rate" in text
    # a member meets her own limit (50 by default) first; an admin, the hard cap of 200
    text = refused(
        site, "alice", "POST", "/api/groups", 400, "sweep_runs", json={**SWEEP, "axes": big}
    )
    assert "300 runs is above the limit of 50 runs per sweep" in text["error"]
    text = refused(site, "root", "POST", "/api/groups", 422, "axes", json={**SWEEP, "axes": big})
    assert "300 runs is above the limit of 200" in text["error"]
    text = refused(site, "alice", "POST", "/api/groups", 422, None, json=cases[3][0])
    assert "optimizer.learning_rate" in text["fields"] and "sweep value 1 of 2" in text["error"]

    # not JSON, not an object, too large, not JSON's type
    refused(
        site,
        "alice",
        "POST",
        "/api/groups",
        400,
        "body",
        data="[1]",
        headers={"Content-Type": "application/json"},
    )
    refused(site, "alice", "POST", "/api/groups", 400, "body")
    refused(
        site,
        "alice",
        "POST",
        "/api/groups",
        415,
        "Content-Type",
        data="{}",
        headers={"Content-Type": "text/plain"},
    )
    huge = {**SWEEP, "overrides": {"name": "x" * (1024 * 1024)}}
    refused(site, "alice", "POST", "/api/groups", 413, "body", json=huge)
    refused(site, "alice", "POST", "/api/groups", 400, "dry_run", params={"dry_run": 1}, json=SWEEP)
    assert counts(site) == before and len(sent(broker)) == before_messages


def test_a_members_sweep_is_held_to_their_limits(site, broker):
    bob = site.people["bob"].id
    before, before_messages = counts(site), len(sent(broker))
    limits.set_user_limit(site.db, bob, "sweep_runs", 4)
    try:
        answer = refused(site, "bob", "POST", "/api/groups", 400, "sweep_runs", json=SWEEP)
        assert "6 runs is above the limit of 4 runs per sweep" in answer["error"]
        # an admin is not limited (the hard cap of 200 still holds: above)
        limits.set_user_limit(site.db, bob, "sweep_runs", 0)
        active = limits.usage(site.db, bob)["active_jobs"]
        limits.set_user_limit(site.db, bob, "active_jobs", active + 5)
        answer = refused(site, "bob", "POST", "/api/groups", 429, "active_jobs", json=SWEEP)
        assert str(active + 5) in answer["error"]
    finally:
        limits.set_user_limit(site.db, bob, "sweep_runs", "default")
        limits.set_user_limit(site.db, bob, "active_jobs", "default")
    assert counts(site) == before and len(sent(broker)) == before_messages
    # a read-only token creates nothing either
    _, read = users.create_token(site.db, bob, "ro", scope="read")
    response = site.call(
        None, "POST", "/api/groups", json=SWEEP, headers={"Authorization": f"Bearer {read}"}
    )
    assert response.status_code == 403 and "read-only" in response.json()["error"]
    assert counts(site) == before


# ---- signature analyses ------------------------------------------------------------------------


def test_any_member_requests_the_analyses_of_a_recorded_epoch(site, trained_run, broker, schemas):
    """bob asks for analyses of alice's run, as the signatures page lets him."""
    url = f"/api/runs/{trained_run}/analyses"
    before = len(sent(broker))
    first = site.call("bob", "POST", url)
    assert first.status_code == 202, first.text
    body = schemas(first.json(), "AnalysisRequested")
    assert body["epoch"] == 3 and body["queued"] == [
        {"kind": "epoch", "epoch": 3},
        {"kind": "timeline", "epoch": 3},
    ]
    assert [(a["kind"], a["epoch"], a["state"]) for a in body["analyses"]] == [
        ("epoch", 3, "queued"),
        ("timeline", 3, "queued"),
    ]
    assert sent(broker)[before:] == [
        ("netlens.analyze_run", [trained_run, "epoch", 3]),
        ("netlens.analyze_run", [trained_run, "timeline", 3]),
    ]
    # asked again while on their way: nothing new is sent
    again = site.call("alice", "POST", url, json={})
    assert again.status_code == 202 and again.json()["queued"] == []
    assert len(sent(broker)) == before + 2

    # an earlier epoch: its own analysis only (the timeline is of the last epoch)
    one = site.call("bob", "POST", url, json={"epoch": 1})
    assert one.status_code == 202 and one.json()["queued"] == [{"kind": "epoch", "epoch": 1}]

    # stored (as a worker does): 200, nothing queued, the results' summary in the answer
    for kind in ("epoch", "timeline"):
        assert analyses.claim(site.db, trained_run, kind, 3, "test-worker")
        analyses.store(site.db, trained_run, kind, 3, {"kind": kind}, {})
    done = site.call("bob", "POST", url, json={"epoch": 3})
    assert done.status_code == 200, done.text
    assert done.json()["queued"] == [] and [a["state"] for a in done.json()["analyses"]] == [
        "done",
        "done",
    ]
    assert done.json()["analyses"][0]["summary"] == {"kind": "epoch"}
    listed = site.call("bob", "GET", url).json()["analyses"]
    assert {(a["kind"], a["epoch"], a["state"]) for a in listed} == {
        ("epoch", 1, "queued"),
        ("epoch", 3, "done"),
        ("timeline", 3, "done"),
    }
    # t-SNE / UMAP only when asked for: queued on their own beside the stored epoch analysis
    projected = site.call("bob", "POST", url, json={"epoch": 3, "methods": ["umap"]})
    assert projected.status_code == 202, projected.text
    body = schemas(projected.json(), "AnalysisRequested")
    assert body["queued"] == [{"kind": "umap", "epoch": 3}]
    assert [(a["kind"], a["state"]) for a in body["analyses"]] == [
        ("epoch", "done"),
        ("timeline", "done"),
        ("umap", "queued"),
    ]
    assert sent(broker)[-1] == ("netlens.analyze_run", [trained_run, "umap", 3])
    assert analyses.claim(site.db, trained_run, "umap", 3, "test-worker")
    analyses.set_progress(site.db, trained_run, "umap", 3, "computing UMAP for layer 1 of 1…")
    running = [a for a in site.call("bob", "GET", url).json()["analyses"] if a["kind"] == "umap"]
    assert running[0]["state"] == "running"
    assert running[0]["progress"] == "computing UMAP for layer 1 of 1…"
    sent_before = len(sent(broker))

    # refusals: not recorded, bad types and bounds, no signatures yet, no such run
    answer = refused(site, "bob", "POST", url, 422, "epoch", json={"epoch": 99})
    assert "recorded epochs run from 0 to 3" in answer["error"]
    for bad in (
        {"epoch": -1},
        {"epoch": 2**31},
        {"epoch": "1"},
        {"epoch": True},
        {"epoch": 1.5},
        {"epoch": None},
        {"epochs": 1},
        {"methods": ["isomap"]},
        {"methods": "umap"},
        {"methods": ["tsne", "umap", "tsne"]},
    ):
        refused(site, "bob", "POST", url, 422, None, json=bad)
    refused(
        site,
        "bob",
        "POST",
        url,
        400,
        "body",
        data="7",
        headers={"Content-Type": "application/json"},
    )
    refused(
        site,
        "bob",
        "POST",
        url,
        415,
        "Content-Type",
        data="epoch=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    queued = site.submit("alice", name="not-yet")  # queued: nothing recorded
    answer = refused(site, "bob", "POST", f"/api/runs/{queued}/analyses", 409, "run_id")
    assert "no signatures" in answer["error"]
    for run_id in (999999, 0, HUGE, 2**80, "x"):
        refused(site, "bob", "POST", f"/api/runs/{run_id}/analyses", 404)
    _, read = users.create_token(site.db, site.people["bob"].id, "ro2", scope="read")
    response = site.call(None, "POST", url, headers={"Authorization": f"Bearer {read}"})
    assert response.status_code == 403
    assert len(sent(broker)) == sent_before + 1  # the queued run's own job; no analysis


# ---- uploads -------------------------------------------------------------------------------


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=np.zeros((4, 8, 8), np.uint8),
        y_train=np.arange(4, dtype=np.uint8),
        x_test=np.zeros((2, 8, 8), np.uint8),
        y_test=np.arange(2, dtype=np.uint8),
    )
    return buffer.getvalue()


def _stored(site, upload_id: int):
    info = uploads.get_upload(site.db, upload_id)
    settings = Settings(home=site.home)
    return uploads.upload_path(settings, info) if info else None


def test_uploads_multipart_or_raw_are_their_owners(site, schemas):
    # curl -F file=@iris.csv
    response = site.call("alice", "POST", "/api/v1/uploads", files={"file": ("iris.csv", CSV)})
    assert response.status_code == 201, response.text
    first = schemas(response.json(), "Upload")
    assert response.headers["Location"] == f"/api/v1/uploads/{first['id']}"
    assert first["name"] == "iris.csv" and first["kind"] == "csv" and first["owner"] == "alice"
    assert first["size"] == len(CSV) and first["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert first["used_at"] is None
    assert _stored(site, first["id"]).read_bytes() == CSV
    # the raw file, with its name in the query; a path in the name is only shown, never used
    raw = site.call(
        "alice",
        "POST",
        "/api/uploads",
        params={"name": "../../etc/more.csv"},
        data=CSV,
        headers={"Content-Type": "text/csv"},
    )
    assert raw.status_code == 201 and raw.json()["name"] == "more.csv"
    assert _stored(site, raw.json()["id"]).parent.name == "uploads"
    npz = site.call(
        "alice",
        "POST",
        "/api/uploads",
        params={"name": "digits.npz"},
        data=_npz(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert npz.status_code == 201 and npz.json()["kind"] == "mnist", npz.text
    # chunked (no Content-Length): streamed as well
    chunked = site.call(
        "alice",
        "POST",
        "/api/uploads",
        params={"name": "c.csv", "kind": "csv"},
        data=iter([CSV[:10], CSV[10:]]),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert chunked.status_code == 201 and chunked.json()["size"] == len(CSV), chunked.text
    # no name: the part's file name, else upload.csv (a part without one: its text is the file)
    unnamed = site.call(
        "alice", "POST", "/api/uploads", data=CSV, headers={"Content-Type": "text/csv"}
    )
    assert unnamed.status_code == 201 and unnamed.json()["name"] == "upload.csv", unnamed.text
    text_part = site.call("alice", "POST", "/api/uploads", files={"file": (None, CSV)})
    assert text_part.status_code == 201 and text_part.json()["name"] == "upload.csv"
    assert text_part.json()["sha256"] == hashlib.sha256(CSV).hexdigest()
    ids = [first["id"], raw.json()["id"], npz.json()["id"], chunked.json()["id"]]
    ids += [unnamed.json()["id"], text_part.json()["id"]]

    listed = schemas(site.call("alice", "GET", "/api/uploads").json(), "UploadList")["uploads"]
    assert [u["id"] for u in listed] == ids[::-1]
    assert site.call("alice", "GET", f"/api/uploads/{ids[0]}").json() == first
    # other members neither see nor use nor delete them: 404, as missing ones
    assert site.call("bob", "GET", "/api/uploads").json() == {"uploads": []}
    refused(site, "bob", "GET", "/api/uploads", 403, "user", params={"user": "alice"})
    for method in ("GET", "DELETE"):
        refused(site, "bob", method, f"/api/uploads/{ids[0]}", 404, "upload_id")
    assert _stored(site, ids[0]).exists()
    spec = {
        "name": "theirs",
        "dataset": {"name": "csv", "upload": ids[0]},
        "training": {"epochs": 3},
    }
    before = counts(site)
    for path, body in (
        ("/api/runs", {"spec": spec}),
        ("/api/groups", {"spec": spec, "axes": [{"field": "training.seed", "values": [0, 1]}]}),
        ("/api/specs/validate", spec),
    ):
        answer = refused(site, "bob", "POST", path, 422, "dataset.upload", json=body)
        assert f"upload {ids[0]} does not exist" in answer["error"]
    assert counts(site) == before
    # an admin sees and lists them
    assert site.call("root", "GET", f"/api/uploads/{ids[0]}").status_code == 200
    theirs = site.call("root", "GET", "/api/uploads", params={"user": "alice"}).json()
    assert [u["id"] for u in theirs["uploads"]] == ids[::-1]
    refused(site, "root", "GET", "/api/uploads", 404, "user", params={"user": "nobody"})

    # the owner sweeps over her upload: it is the runs' data; then it cannot be deleted
    sweep = site.call(
        "alice",
        "POST",
        "/api/groups",
        json={"spec": spec, "axes": [{"field": "training.seed", "values": [0, 1]}]},
    )
    assert sweep.status_code == 201, sweep.text
    run_ids = sweep.json()["run_ids"]
    stored = str(_stored(site, ids[0]))
    assert all(runs.get_run(site.db, r).spec["dataset"]["path"] == stored for r in run_ids)
    assert site.call("alice", "GET", f"/api/uploads/{ids[0]}").json()["used_at"] is not None
    answer = refused(site, "alice", "DELETE", f"/api/uploads/{ids[0]}", 409, "upload_id")
    assert f"({run_ids[0]}, {run_ids[1]})" in answer["error"]
    for run_id in run_ids:  # cancel and delete the runs: then the upload may go
        assert site.call("alice", "POST", f"/api/runs/{run_id}/cancel").status_code == 200
        assert site.call("alice", "DELETE", f"/api/runs/{run_id}").status_code == 204
    assert site.call("alice", "DELETE", f"/api/uploads/{ids[0]}").status_code == 204
    assert not (site.home / "data" / "uploads" / stored.rsplit("/", 1)[1]).exists()
    assert uploads.get_upload(site.db, ids[0]) is None
    refused(site, "alice", "GET", f"/api/uploads/{ids[0]}", 404)
    refused(site, "alice", "DELETE", f"/api/uploads/{ids[0]}", 404)
    # an admin deletes anyone's
    assert site.call("root", "DELETE", f"/api/uploads/{ids[1]}").status_code == 204
    for upload_id in (999999, 0, HUGE, 2**80, "x"):
        refused(site, "alice", "GET", f"/api/uploads/{upload_id}", 404)
        refused(site, "alice", "DELETE", f"/api/uploads/{upload_id}", 404)


def test_bad_uploads_are_refused_and_leave_nothing(site):
    folder = site.home / "data" / "uploads"
    before_files = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    before = counts(site)
    octet = {"Content-Type": "application/octet-stream"}
    over = b"a,b\n" + b"1,2\n" * (UPLOAD_MB * 2**20 // 4)
    cases = [
        # (params, data/files, headers, status, field)
        (
            {"name": "a.csv"},
            {"data": CSV, "headers": {"Content-Type": "application/json"}},
            415,
            "Content-Type",
        ),
        ({"name": "a.csv"}, {"data": CSV}, 415, "Content-Type"),  # curl's default form type
        ({"name": "n" * 256 + ".csv"}, {"data": CSV, "headers": octet}, 400, "name"),
        ({"name": "a\x00.csv"}, {"data": CSV, "headers": octet}, 400, "name"),
        ({"name": "a.csv", "kind": "exe"}, {"data": CSV, "headers": octet}, 400, "kind"),
        ({"name": "a.csv", "kind": ""}, {"data": CSV, "headers": octet}, 400, "kind"),
        ({"name": "a.csv", "owner": "bob"}, {"data": CSV, "headers": octet}, 400, "owner"),
        ({"name": "a.exe"}, {"data": CSV, "headers": octet}, 422, "name"),
        ({"name": "a.csv", "kind": "mnist"}, {"data": CSV, "headers": octet}, 422, "name"),
        ({"name": "a.npz"}, {"data": CSV, "headers": octet}, 422, "file"),  # not a zip
        ({"name": "a.csv"}, {"data": b"\xff\xfe\x00binary", "headers": octet}, 422, "file"),
        ({"name": "a.csv"}, {"data": b"only-a-header\n", "headers": octet}, 422, "file"),
        ({"name": "a.csv"}, {"data": b"", "headers": octet}, 422, "file"),
        ({}, {"files": {"data": ("a.csv", CSV)}}, 400, "data"),
        ({}, {"files": {"file": ("a.csv", CSV), "other": ("b.csv", CSV)}}, 400, "other"),
        ({}, {"files": [("file", ("a.csv", CSV)), ("file", ("b.csv", CSV))]}, 400, "file"),
        ({"kind": "mnist"}, {"files": {"file": ("", CSV)}}, 422, "file"),  # upload.npz
        # over the limit: declared, chunked (cut off while read), and as multipart
        ({"name": "big.csv"}, {"data": over, "headers": octet}, 413, "file"),
        (
            {"name": "big.csv"},
            {"data": iter([over[: 2**19], over[2**19 :]]), "headers": octet},
            413,
            "file",
        ),
        ({}, {"files": {"file": ("big.csv", over)}}, 413, "file"),
    ]
    for params, kwargs, status, field in cases:
        answer = refused(
            site, "alice", "POST", "/api/uploads", status, field, params=params, **kwargs
        )
        if status == 413:
            assert f"over the {UPLOAD_MB} MB upload limit" in answer["error"], answer
    # the member's quota of uploads
    alice = site.people["alice"].id
    limits.set_user_limit(site.db, alice, "uploads", limits.usage(site.db, alice)["uploads"])
    try:
        refused(
            site, "alice", "POST", "/api/uploads", 429, "uploads", files={"file": ("a.csv", CSV)}
        )
    finally:
        limits.set_user_limit(site.db, alice, "uploads", "default")
    _, read = users.create_token(site.db, alice, "ro3", scope="read")
    response = site.call(
        None,
        "POST",
        "/api/uploads",
        files={"file": ("a.csv", CSV)},
        headers={"Authorization": f"Bearer {read}"},
    )
    assert response.status_code == 403
    assert counts(site) == before
    assert sorted(p.name for p in folder.iterdir()) == before_files  # no partial file left
    # a zip that is not the Keras arrays
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x_train.npy", b"not an array")
    refused(
        site,
        "alice",
        "POST",
        "/api/uploads",
        422,
        "file",
        params={"name": "z.npz"},
        data=buffer.getvalue(),
        headers=octet,
    )
    assert counts(site) == before


def test_a_sweep_cannot_cancel_or_touch_another_members_runs(site):
    """A group is created for the caller only: bob's sweep never names alice's runs, and the
    run routes of its runs keep their owner rule."""
    created = site.call("alice", "POST", "/api/groups", json=SWEEP).json()
    target = created["run_ids"][0]
    before = jobs.get_job(site.db, target)
    for method, suffix in (("POST", "/cancel"), ("POST", "/retry"), ("DELETE", "")):
        refused(site, "bob", method, f"/api/runs/{target}{suffix}", 403)
    after = jobs.get_job(site.db, target)
    assert (after.state, after.attempt, after.cancel_requested) == (
        before.state,
        before.attempt,
        before.cancel_requested,
    )
