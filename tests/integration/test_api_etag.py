"""Conditional reads of the REST API (issue 18; webapp/etags.py, docs/api.md "ETags") against
a real server, as tests/integration/test_api.py runs it (its fixtures): every run and
tensor read answers a weak ETag, If-None-Match that matches is 304 with no body, and the
tag changes whenever the answer can: epochs recorded, a status change, a retry (a new
attempt, records cleared), an edit, analyses added; it differs between JSON and .npy and
between epoch ranges, and never matches another run. The run's life is driven through the
storage calls a worker makes (claim, mark_started, write_epochs, finish, clear_records)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from netlens.storage import analyses, jobs, records, runs
from tests.conftest import flushed_redis_url, small_spec
from tests.integration import test_api

# test_api's server, made again for this module (module-scoped fixtures)
api_db, site = test_api.api_db, test_api.site

REDIS_DB = 5  # a database of its own on the shared Redis
KERNEL = "params/hidden_1/kernel"
WORKER = "etag-test-worker"


@pytest.fixture(scope="module")
def redis_url():
    return flushed_redis_url(REDIS_DB)


def _routes(run_id: int) -> list[tuple[str, dict]]:
    """(path, request options) of every conditional read of a run."""
    tensor = f"/api/runs/{run_id}/tensors/{KERNEL}"
    return [
        (f"/api/runs/{run_id}", {}),
        (f"/api/runs/{run_id}/metrics", {}),
        (f"/api/runs/{run_id}/tensors", {}),
        (tensor, {}),
        (tensor, {"params": {"format": "npy"}}),
        (tensor, {"params": {"start": 1, "stop": 1}}),
        (f"/api/runs/{run_id}/export", {}),
        (f"/api/runs/{run_id}/analyses", {}),
    ]


def _get(site, path: str, options: dict, if_none_match: str | None = None, method: str = "GET"):
    headers = dict(options.get("headers", {}))
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    return site.call(
        "bob", method, path, params=options.get("params"), headers=headers, allow_redirects=False
    )


def _tags(site, run_id: int) -> list[str | None]:
    """The ETag of each of _routes; None for a tensor not recorded (yet): 404, no tag."""
    out = []
    for path, options in _routes(run_id):
        response = _get(site, path, options)
        if response.status_code == 404 and "/tensors/" in path:
            assert "ETag" not in response.headers
            out.append(None)
            continue
        assert response.status_code == 200, (path, response.text)
        out.append(response.headers["ETag"])
    return out


def _chunk(epochs: list[int], seed: int) -> records.EpochChunk:
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((len(epochs), 2, 3)).astype(np.float32)
    return records.EpochChunk(
        epochs, [{"train_loss": 0.5, "train_accuracy": 0.75}] * len(epochs), {KERNEL: kernel}, {}
    )


def _start(site, run_id: int, attempt: int) -> None:
    """A worker takes the job and starts the run, as worker/runner.py does."""
    assert jobs.claim(site.db, run_id, attempt, WORKER) is not None
    runs.mark_started(
        site.db, run_id, layers=[{"name": "hidden_1"}], device="cpu", data_info={"n": 4}
    )
    records.write_arrays(site.db, run_id, {"probe/inputs": np.zeros((4, 2), np.float32)})


def _recorded_run(site, name: str) -> int:
    """A run with 2 recorded epochs and a finished state (succeeded)."""
    run_id = site.submit("alice", name=name)
    _start(site, run_id, 1)
    records.write_epochs(site.db, run_id, _chunk([0, 1], seed=len(name)), attempt=1)
    jobs.finish(site.db, run_id, 1, "succeeded")
    return run_id


def test_the_same_tag_twice_and_304_when_it_matches(site):
    run_id = _recorded_run(site, "etag-same")
    first, second = _tags(site, run_id), _tags(site, run_id)
    assert first == second
    assert len(set(first)) == len(first)  # each route and representation its own tag
    for tag in first:
        assert tag.startswith(f'W/"{run_id}-') and tag.endswith('"')  # weak
    for (path, options), tag in zip(_routes(run_id), first, strict=True):
        other = '"not-this-one"'
        for header in (
            tag,
            f"{other}, {tag}",
            f", {tag} ,{other},",  # empty list elements
            tag[2:],  # the same opaque tag, not weak: the weak comparison matches it
            "*",  # any current answer
        ):
            response = _get(site, path, options, header)
            assert response.status_code == 304, (path, header, response.text)
            assert response.content == b"" and response.headers["ETag"] == tag
            assert "Content-Type" not in response.headers
        head = _get(site, path, options, tag, method="HEAD")
        assert head.status_code == 304 and head.headers["ETag"] == tag
        fresh = _get(site, path, options, other)  # no match: the whole answer
        assert fresh.status_code == 200 and fresh.headers["ETag"] == tag and fresh.content
        # the same resource under /api/v1: the same tag
        again = _get(site, path.replace("/api/", "/api/v1/", 1), options, tag)
        assert again.status_code == 304 and again.headers["ETag"] == tag
    export = _get(site, f"/api/runs/{run_id}/export", {}, first[6])
    assert export.headers["Cache-Control"] == "no-store"  # what the 200 says, also on the 304
    npy = _get(site, *_routes(run_id)[4], first[4])
    assert npy.headers["Vary"] == "Accept"


def test_json_and_npy_and_epoch_ranges_have_their_own_tags(site):
    run_id = _recorded_run(site, "etag-ranges")
    url = f"/api/runs/{run_id}/tensors/{KERNEL}"

    def tag(**options) -> str:
        response = _get(site, url, options)
        assert response.status_code == 200, response.text
        return response.headers["ETag"]

    as_json = tag()
    assert tag(headers={"Accept": "application/json"}) == tag(params={"format": "json"}) == as_json
    as_npy = tag(headers={"Accept": "application/octet-stream"})
    assert as_npy == tag(params={"format": "npy"}) == tag(headers={"Accept": "application/x-npy"})
    assert as_npy != as_json
    ranges = {
        tag(params={"start": 0, "stop": 0}),
        tag(params={"start": 1}),
        tag(params={"stop": 1, "format": "npy"}),
        tag(params={"stop": 0, "format": "npy"}),
    }
    assert len(ranges) == 4 and not ranges & {as_json, as_npy}
    # a JSON tag sent for the .npy (and the other way) is no match: the whole answer
    response = _get(site, url, {"params": {"format": "npy"}}, as_json)
    assert response.status_code == 200
    assert np.load(io.BytesIO(response.content))["epoch"].tolist() == [0, 1]
    response = _get(site, url, {}, as_npy)
    assert response.status_code == 200 and response.json()["epochs"] == [0, 1]
    response = _get(site, url, {"params": {"start": 1}}, as_json)
    assert response.status_code == 200 and response.json()["epochs"] == [1]
    assert _get(site, url, {"params": {"start": 0}}, as_json).status_code == 304  # the default


def test_a_malformed_if_none_match_is_ignored_and_an_oversized_one_refused(site):
    run_id = _recorded_run(site, "etag-malformed")
    tags = _tags(site, run_id)
    for (path, options), tag in zip(_routes(run_id), tags, strict=True):
        bare = tag[3:-1]  # the opaque tag without its quotes
        for header in (
            bare,
            f"W/{bare}",
            f"w/{tag[2:]}",  # W/ is case-sensitive
            f"{tag} {tag}",  # no comma between
            f"{tag}, *",  # * is alone or not at all
            f"{tag}x",
            tag[:-1],  # unterminated
            "",
            ",",
        ):
            response = _get(site, path, options, header)
            assert response.status_code == 200, (path, header)
            assert response.headers["ETag"] == tag and response.content
    url, options = _routes(run_id)[1]
    response = _get(site, url, options, ", ".join([tags[1]] * 200))  # 6,800 characters
    assert response.status_code == 400 and response.json()["fields"] == ["If-None-Match"]
    assert "4,096" in response.json()["error"]


def test_never_304_for_another_run_or_an_error(site):
    one, two = _recorded_run(site, "etag-one"), _recorded_run(site, "etag-two")
    tags_one = _tags(site, one)
    for (path, options), tag in zip(_routes(two), tags_one, strict=True):
        response = _get(site, path, options, tag)
        assert response.status_code == 200, (path, tag)
        assert response.headers["ETag"] != tag
    # errors come before preconditions (RFC 9110, 13.2.1): even `*` is no 304 there
    for path in (
        "/api/runs/999999",
        "/api/runs/999999/metrics",
        "/api/runs/999999/export",
        f"/api/runs/{one}/tensors/params/nothing",
    ):
        response = _get(site, path, {}, "*")
        assert response.status_code == 404, path
    bad = _get(site, f"/api/runs/{one}/tensors/{KERNEL}", {"params": {"start": -1}}, "*")
    assert bad.status_code == 400
    wide = runs.create_run(site.db, small_spec(name="etag-wide"), status="running")
    values = np.zeros((3, 400_000), np.float32)
    records.write_epochs(site.db, wide, records.EpochChunk([0, 1, 2], [{}] * 3, {"w": values}, {}))
    url = f"/api/runs/{wide}/tensors/w"
    too_big = _get(site, url, {}, "*")
    assert too_big.status_code == 413  # asked as JSON: too large, whatever the precondition
    assert _get(site, url, {"params": {"format": "npy"}}, "*").status_code == 304


def test_tags_change_with_epochs_status_retry_edits_and_analyses(site):
    """Every change a run goes through changes the tags of the answers it changes; a tag
    held from before is then no match (200, the new answer)."""
    run_id = site.submit("alice", name="etag-life")
    seen: list[list[str]] = [_tags(site, run_id)]

    def changed(*indices: int) -> list[str]:
        """The tags now: those at `indices` (of _routes) differ from the last ones, and the
        old ones no longer match; the others are the same."""
        now, before = _tags(site, run_id), seen[-1]
        for i, (path, options) in enumerate(_routes(run_id)):
            if i not in indices or before[i] is now[i] is None:  # (no tensor yet: 404)
                assert now[i] == before[i], (i, path, options)
                continue
            assert now[i] != before[i], (i, path, options)
            if before[i] is not None:
                assert _get(site, path, options, before[i]).status_code in (200, 404)
            if now[i] is not None:
                assert _get(site, path, options, now[i]).status_code == 304
        seen.append(now)
        return now

    everything = range(7)  # all but the analyses, whose answer is its own
    _start(site, run_id, 1)  # queued -> running, the fixed arrays written
    changed(*everything)
    metrics = f"/api/runs/{run_id}/metrics"
    records.write_epochs(site.db, run_id, _chunk([0], seed=1), attempt=1)
    changed(*everything)  # a new epoch: every answer (the run's counters, the records)
    assert _get(site, metrics, {}).json()["epochs"] == [0]
    jobs.heartbeat(site.db, run_id, 1, progress_epoch=1)
    changed(0)  # the job's progress, in GET /runs/{id}
    records.write_epochs(site.db, run_id, _chunk([1], seed=2), attempt=1)
    at_two_epochs = changed(*everything)
    kernel_attempt_1 = _get(site, *_routes(run_id)[4]).content
    assert _get(site, metrics, {}, at_two_epochs[1]).status_code == 304

    jobs.finish(site.db, run_id, 1, "failed", "it broke")  # a status change
    changed(*everything)
    assert _get(site, f"/api/runs/{run_id}", {}).json()["status"] == "failed"

    retried = site.call("alice", "POST", f"/api/runs/{run_id}/retry", json={"from_scratch": True})
    assert retried.status_code == 200 and retried.json()["attempt"] == 2
    changed(*everything)  # queued again: the status, and a new attempt
    # the new attempt clears the records and records the same epochs again, other values
    _start(site, run_id, 2)
    jobs.clear_records(site.db, run_id, 2)
    changed(*everything)
    assert _get(site, metrics, {}).json()["epochs"] == []
    records.write_epochs(site.db, run_id, _chunk([0, 1], seed=3), attempt=2)
    again = changed(*everything)
    info = runs.get_run(site.db, run_id)
    assert (info.status, info.epochs_recorded, info.last_epoch) == ("running", 2, 1)
    # the run's row reads as it did at two epochs of attempt 1 (same counters, same
    # metrics), yet the values differ: only the attempt tells, and it does
    for i in everything:
        assert again[i] != at_two_epochs[i], _routes(run_id)[i]
        path, options = _routes(run_id)[i]
        assert _get(site, path, options, at_two_epochs[i]).status_code == 200
    kernel_attempt_2 = _get(site, *_routes(run_id)[4]).content
    assert kernel_attempt_2 != kernel_attempt_1

    runs.update_run_fields(site.db, run_id, notes="an edit")
    changed(*everything)  # any change of the run's row changes every tag derived from it
    analyses.request(site.db, run_id, "epoch", 1)
    changed(7)  # an analysis added
    analyses.claim(site.db, run_id, "epoch", 1, WORKER)
    changed(7)
    analyses.store(site.db, run_id, "epoch", 1, {"layers": {}}, {})
    changed(7)
