"""The REST API's read routes beyond runs (webapp/api_more.py) against a real server, as
tests/integration/test_api.py runs it (its fixtures): presets and spec validation, the run
list's filters, sorting and next link, a run's tensors (JSON and .npy), its analyses, and a
sweep. Every answer is checked against the served OpenAPI document's schema."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np

from netlens.storage import analyses, records, runs
from netlens.storage.groups import create_group
from netlens.storage.spec import parse_spec
from netlens.webapp.openapi import MAX_JSON_VALUES
from tests.conftest import small_spec
from tests.live_server import api_site_fixtures

REDIS_DB = 10  # a database of its own on the shared Redis (security 9, queue 11, API 14)
HUGE = 2**63  # one past the largest id

# test_api's server and trained run, made again for this module (module-scoped fixtures), on
# this module's own Redis database; schemas(body, model) checks an answer against the OpenAPI
api_db, site, trained_run, redis_url, schemas = api_site_fixtures(REDIS_DB)


def test_presets_and_spec_validation(site, schemas):
    presets = schemas(site.call("bob", "GET", "/api/presets").json(), "PresetList")["presets"]
    by_name = {p["name"]: p for p in presets}
    assert {"xor", "two-regions", "digits"} <= set(by_name)
    assert by_name["xor"]["spec"]["training"]["epochs"] == 2000 and by_name["xor"]["description"]

    spec = {"name": "checked", "dataset": {"name": "xor"}, "training": {"epochs": 40}}
    before = runs.count_runs(site.db)
    response = site.call("bob", "POST", "/api/specs/validate", json=spec)
    assert response.status_code == 200, response.text
    answer = schemas(response.json(), "SpecChecked")
    assert answer["spec"] == parse_spec(spec).model_dump(mode="json")
    assert answer["spec"]["training"]["epochs"] == 40 and answer["recorded_epochs"] == 41
    assert 0 < answer["estimated_bytes"] < answer["limit_bytes"]
    assert runs.count_runs(site.db) == before  # nothing created

    # the same 422 answers as submitting that spec
    for bad in (
        {"name": "bad", "training": {"epochs": 0}},
        {"trainig": {"epochs": 3}},
        {"name": "p", "dataset": {"name": "csv", "path": "/etc/hosts"}},
        {
            "name": "big",
            "dataset": {"name": "moons"},
            "model": {"hidden": [{"units": 1024}] * 4},
            "training": {"epochs": 5000},
            "recording": {"probe_size": 2000},
        },
    ):
        checked = site.call("alice", "POST", "/api/specs/validate", json=bad)
        submitted = site.call("alice", "POST", "/api/runs", json={"spec": bad})
        assert checked.status_code == submitted.status_code == 422, (bad, checked.text)
        assert checked.json() == submitted.json()
        schemas(checked.json(), "ApiError")
    assert runs.count_runs(site.db) == before
    for data, status in (("[1]", 400), ("", 400), ("{x", 400)):
        response = site.call(
            "bob",
            "POST",
            "/api/specs/validate",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == status and response.json()["fields"] == ["body"]
    response = site.call(
        "bob", "POST", "/api/specs/validate", data="{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_run_list_filters_sort_and_next_link(site, trained_run, schemas):
    a = site.submit("alice", name="zeta-list", tags=["api-more", "x"])
    b = site.submit("alice", name="alpha-list", tags=["api-more"])
    c = site.submit("bob", name="beta_list%", tags=["other"], dataset={"name": "moons"})

    def listed(**params) -> dict:
        response = site.call("bob", "GET", "/api/runs", params=params)
        assert response.status_code == 200, (params, response.text)
        return schemas(response.json(), "RunPage")

    assert [r["id"] for r in listed(tag="api-more")["runs"]] == [b, a]
    assert [r["id"] for r in listed(tag="api-more", sort="name", order="asc")["runs"]] == [b, a]
    assert [r["id"] for r in listed(name="LIST", owner="alice")["runs"]] == [b, a]
    assert [r["id"] for r in listed(name="_list%")["runs"]] == [c]  # no LIKE wildcards
    moons = listed(dataset="moons")["runs"]
    assert c in [r["id"] for r in moons] and all(r["dataset"] == "moons" for r in moons)
    ids = [r["id"] for r in listed(sort="id", order="asc", limit=500)["runs"]]
    assert ids == sorted(ids) and trained_run in ids

    # paging: follow next (body and Link header) to the end
    seen, url, pages = [], "/api/runs?limit=2&tag=api-more&order=asc", 0
    all_tagged = listed(tag="api-more", limit=500)
    while url:
        response = site.call("bob", "GET", url)
        body = response.json()
        seen += [r["id"] for r in body["runs"]]
        url, pages = body.get("next"), pages + 1
        if url:
            assert response.headers["Link"] == f'<{url}>; rel="next"'
        else:
            assert "Link" not in response.headers
    assert seen == [a, b] and pages == 1 and all_tagged["total"] == 2
    first = listed(limit=1, order="asc", sort="id")
    assert first["next"].startswith("/api/runs?") and "offset=1" in first["next"]
    second = site.call("bob", "GET", first["next"]).json()
    assert second["offset"] == 1 and second["runs"][0]["id"] == ids[1]
    assert "next" not in listed(owner="nobody-here")  # the old shape on the last page

    for params, field in (
        ({"sort": "password"}, "sort"),
        ({"order": "up"}, "order"),
        ({"name": "x" * 201}, "name"),
        ({"tag": "t" * 51}, "tag"),  # a spec tag holds up to 50
    ):
        response = site.call("bob", "GET", "/api/runs", params=params)
        assert response.status_code == 400, params
        assert response.json()["fields"] == [field]


def test_tensors_as_json_and_npy(site, trained_run, schemas):
    catalog = schemas(
        site.call("bob", "GET", f"/api/runs/{trained_run}/tensors").json(), "TensorList"
    )
    by_name = {t["name"]: t for t in catalog["tensors"]}
    assert set(by_name) == set(records.tensor_names(site.db, trained_run))
    kernel = by_name["params/hidden_1/kernel"]
    assert kernel["epochs"] == [0, 1, 2, 3] and kernel["dtype"] == "float32"
    assert kernel["shape"] == [2, 3]  # xor: 2 inputs, 3 hidden units

    url = f"/api/runs/{trained_run}/tensors/params/hidden_1/kernel"
    epochs, expected = records.read_tensor(site.db, trained_run, "params/hidden_1/kernel")
    whole = schemas(site.call("bob", "GET", url).json(), "TensorValues")
    assert whole["epochs"] == [0, 1, 2, 3] and whole["shape"] == [2, 3]
    np.testing.assert_array_equal(np.array(whole["values"], np.float32), expected)
    part = site.call("bob", "GET", url, params={"start": 1, "stop": 2}).json()
    assert part["epochs"] == [1, 2]
    np.testing.assert_array_equal(np.array(part["values"], np.float32), expected[1:3])
    assert site.call("bob", "GET", url, params={"start": 9}).json()["epochs"] == []

    for how in ({"headers": {"Accept": "application/octet-stream"}}, {"params": {"format": "npy"}}):
        response = site.call("bob", "GET", url, **how)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert int(response.headers["Content-Length"]) == len(response.content)
        assert response.headers["X-NetLens-Epochs"] == "4"
        rows = np.load(io.BytesIO(response.content), allow_pickle=False)
        assert rows.dtype.names == ("epoch", "value")
        assert rows["epoch"].tolist() == [0, 1, 2, 3]
        np.testing.assert_array_equal(rows["value"], expected)
    response = site.call(
        "bob", "GET", url, params={"start": 2}, headers={"Accept": "application/x-npy"}
    )
    assert np.load(io.BytesIO(response.content))["epoch"].tolist() == [2, 3]

    for params, field in (
        ({"start": -1}, "start"),
        ({"stop": "x"}, "stop"),
        ({"format": "csv"}, "format"),
        ({"every": 2}, "every"),
    ):
        response = site.call("bob", "GET", url, params=params)
        assert response.status_code == 400, params
        assert field in response.json()["fields"]
    backwards = site.call("bob", "GET", url, params={"start": 3, "stop": 1})  # an empty range
    assert backwards.status_code == 200 and backwards.json()["epochs"] == []
    assert backwards.json()["values"] == []
    missing = site.call("bob", "GET", f"/api/runs/{trained_run}/tensors/params/nothing")
    assert missing.status_code == 404 and "params/nothing" in missing.json()["error"]
    for run_id in (999999, 0, HUGE, 2**80):
        for path in ("tensors", "tensors/params/hidden_1/kernel", "analyses"):
            response = site.call("bob", "GET", f"/api/runs/{run_id}/{path}")
            assert response.status_code == 404, (run_id, path, response.text)
            assert response.headers["Content-Type"].startswith("application/json")


def test_a_large_tensor_is_refused_as_json_and_sent_as_npy(site):
    run_id = runs.create_run(site.db, small_spec(name="wide"), status="running")
    wide = np.arange(3 * 400_000, dtype=np.float32).reshape(3, 400_000)
    records.write_epochs(
        site.db,
        run_id,
        records.EpochChunk([0, 5, 10], [{"train_loss": 1.0}] * 3, {"wide": wide}, {}),
    )
    assert 3 * 400_000 > MAX_JSON_VALUES
    url = f"/api/runs/{run_id}/tensors/wide"
    response = site.call("bob", "GET", url)
    assert response.status_code == 413 and "1,000,000" in response.json()["error"]
    assert site.call("bob", "GET", url, params={"stop": 5}).json()["epochs"] == [0, 5]
    rows = np.load(io.BytesIO(site.call("bob", "GET", url, params={"format": "npy"}).content))
    assert rows["epoch"].tolist() == [0, 5, 10]
    np.testing.assert_array_equal(rows["value"], wide)


def test_analyses_and_groups(site, trained_run, schemas):
    empty = site.call("bob", "GET", f"/api/runs/{trained_run}/analyses").json()
    assert schemas(empty, "AnalysisList") == {"run_id": trained_run, "analyses": []}
    analyses.request(site.db, trained_run, "epoch", 3)
    analyses.claim(site.db, trained_run, "epoch", 3, "test-worker")
    analyses.store(site.db, trained_run, "epoch", 3, {"layers": {"hidden_1": {"k": 2}}}, {})
    analyses.request(site.db, trained_run, "timeline", 1)
    found = site.call("bob", "GET", f"/api/runs/{trained_run}/analyses").json()
    schemas(found, "AnalysisList")
    states = [(a["kind"], a["epoch"], a["state"]) for a in found["analyses"]]
    assert states == [("epoch", 3, "done"), ("timeline", 1, "queued")]
    assert found["analyses"][0]["summary"] == {"layers": {"hidden_1": {"k": 2}}}
    only = site.call("bob", "GET", f"/api/runs/{trained_run}/analyses", params={"kind": "timeline"})
    assert [a["kind"] for a in only.json()["analyses"]] == ["timeline"]
    for bad in ("x", "epoch\x00"):  # not a kind (a NUL would reach PostgreSQL)
        refused = site.call("bob", "GET", f"/api/runs/{trained_run}/analyses", params={"kind": bad})
        assert refused.status_code == 400 and refused.json()["fields"] == ["kind"]

    base = small_spec(name="grid")
    specs = [parse_spec({**base.model_dump(), "name": f"grid-{n}"}) for n in range(3)]
    group_id, deliveries = create_group(
        site.db, "grid", base, [("training.seed", [0, 1, 2])], specs, owner_id=None
    )
    runs.finish_run(site.db, deliveries[0].run_id, "failed", "test")
    group = schemas(site.call("bob", "GET", f"/api/groups/{group_id}").json(), "Group")
    assert group["name"] == "grid" and group["size"] == 3 and group["finished"] is False
    assert group["axes"] == [{"field": "training.seed", "values": [0, 1, 2]}]
    assert [r["id"] for r in group["runs"]] == [d.run_id for d in deliveries]
    assert [r["status"] for r in group["runs"]] == ["failed", "queued", "queued"]
    assert group["counts"] == {"failed": 1, "queued": 2}
    assert group["runs"][1]["url"] == f"/runs/{deliveries[1].run_id}"
    assert datetime.fromisoformat(group["created_at"]) > datetime.now(UTC) - timedelta(hours=1)
    for group_id in (999999, 0, HUGE, 2**80):
        response = site.call("bob", "GET", f"/api/groups/{group_id}")
        assert response.status_code == 404, (group_id, response.text)
