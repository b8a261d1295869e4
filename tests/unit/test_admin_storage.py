"""What the admin page reads and does, on SQLite and PostgreSQL: job filters and counts, job
details, requeue fencing, storage per user and per run, and worker heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import update

from netlens.storage import admin, jobs, records, runs, users, workers
from netlens.storage.jobs import JobStateError, LeaseLost
from netlens.storage.models import Job
from netlens.storage.runs import RunNotFound
from netlens.storage.settings import Settings
from netlens.storage.uploads import save_upload
from tests.conftest import small_spec

PASSWORD = "correct horse battery"


def _spec(name: str, device: str = "cpu"):
    return small_spec(
        name=name,
        dataset={"name": "xor"},
        training={"epochs": 10, "batch_size": 4, "device": device},
    )


def _submit(db, name: str, owner_id: int | None = None, device: str = "cpu") -> int:
    return jobs.submit(db, _spec(name, device), owner_id=owner_id).run_id


def _set_enqueued(db, run_id: int, moment: datetime) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.run_id == run_id).values(enqueued_at=moment))


def _record(db, run_id: int, floats: int) -> int:
    """Record one epoch with a real tensor of `floats` float32 values; returns its bytes."""
    records.write_epochs(
        db,
        run_id,
        records.EpochChunk(
            epochs=[0],
            metrics=[{"train_loss": 0.5}],
            tensors={"params/hidden_1/kernel": np.ones((1, floats), np.float32)},
            sparse_epochs={},
        ),
    )
    return runs.get_run(db, run_id).recorded_bytes


@pytest.fixture
def team(db):
    """alice: 3 cpu jobs (succeeded, failed with a traceback, queued); bob: 2 gpu jobs
    (running on w1, cancelled while queued); one cpu job of nobody, queued 3 days ago."""
    alice = users.create_user(db, "alice", PASSWORD)
    bob = users.create_user(db, "bob", PASSWORD)
    ids = {
        "a_ok": _submit(db, "a ok", alice.id),
        "a_fail": _submit(db, "a fail", alice.id),
        "a_queued": _submit(db, "a queued", alice.id),
        "b_run": _submit(db, "b run", bob.id, "gpu"),
        "b_cancel": _submit(db, "b cancel", bob.id, "gpu"),
        "old": _submit(db, "nobody old"),
    }
    jobs.claim(db, ids["a_ok"], 1, "w2")
    jobs.finish(db, ids["a_ok"], 1, "succeeded")
    jobs.claim(db, ids["a_fail"], 1, "w2")
    jobs.finish(
        db,
        ids["a_fail"],
        1,
        "failed",
        "ValueError: boom\nsecond line",
        "Traceback (most recent call last):\n  File 'x.py'\nValueError: boom",
    )
    jobs.claim(db, ids["b_run"], 1, "w1")
    jobs.request_cancel(db, ids["b_cancel"])
    _set_enqueued(db, ids["old"], datetime.now(UTC) - timedelta(days=3))
    return {"db": db, "alice": alice, "bob": bob, **ids}


def _ids(rows) -> set[int]:
    return {r.run_id for r in rows}


def test_counts_per_state_and_queue(team):
    db = team["db"]
    assert admin.state_counts(db) == {
        "queued": 2,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 1,
        "diverged": 0,
    }
    assert admin.queued_per_queue(db) == {"cpu": 2, "gpu": 0}


def test_filters_by_state_user_queue_and_time(team):
    db, t = team["db"], team
    rows, total = admin.query_jobs(db)
    assert total == 6 and len(rows) == 6
    assert rows[-1].run_id == t["old"]  # newest first by default
    rows, total = admin.query_jobs(db, states=["queued", "running"])
    assert _ids(rows) == {t["a_queued"], t["b_run"], t["old"]} and total == 3
    rows, total = admin.query_jobs(db, owner="alice")
    assert _ids(rows) == {t["a_ok"], t["a_fail"], t["a_queued"]} and total == 3
    rows, total = admin.query_jobs(db, owner=t["bob"].id, states="cancelled")
    assert _ids(rows) == {t["b_cancel"]} and total == 1
    rows, total = admin.query_jobs(db, queue="gpu")
    assert _ids(rows) == {t["b_run"], t["b_cancel"]}
    now = datetime.now(UTC)
    rows, total = admin.query_jobs(db, since=now - timedelta(hours=1))
    assert total == 5 and t["old"] not in _ids(rows)
    rows, total = admin.query_jobs(db, since=now - timedelta(days=4), until=now - timedelta(days=2))
    assert _ids(rows) == {t["old"]}
    rows, total = admin.query_jobs(
        db, states=["queued"], queue="cpu", owner="alice", since=now - timedelta(hours=1)
    )
    assert _ids(rows) == {t["a_queued"]} and total == 1
    # paging and sorting: the total is of every match, the page only `limit` of them
    rows, total = admin.query_jobs(db, sort=[("run_id", "asc")], offset=2, limit=2)
    assert (
        total == 6
        and [r.run_id for r in rows]
        == sorted(t[k] for k in ("a_ok", "a_fail", "a_queued", "b_run", "b_cancel", "old"))[2:4]
    )
    owners = [r.owner for r in admin.query_jobs(db, sort=[("owner", "asc")])[0]]
    assert [o for o in owners if o] == ["alice"] * 3 + ["bob"] * 2


def test_rows_carry_owner_attempts_runtime_and_error(team):
    db, t = team["db"], team
    rows = {r.run_id: r for r in admin.query_jobs(db)[0]}
    failed = rows[t["a_fail"]]
    assert (failed.owner, failed.state, failed.attempt, failed.max_attempts) == (
        "alice",
        "failed",
        1,
        3,
    )
    assert failed.error == "ValueError: boom" and failed.has_traceback
    assert failed.runtime_s is not None and failed.runtime_s >= 0
    assert rows[t["b_run"]].worker_id == "w1" and rows[t["b_run"]].runtime_s >= 0
    assert rows[t["a_queued"]].runtime_s is None and not rows[t["a_queued"]].has_traceback
    assert rows[t["old"]].owner is None and rows[t["old"]].owner_id is None
    detail = admin.job_detail(db, t["a_fail"])
    assert detail.traceback.endswith("ValueError: boom")
    assert detail.error == "ValueError: boom\nsecond line" and detail.run_status == "failed"
    with pytest.raises(RunNotFound):
        admin.job_detail(db, 99_999)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"states": ["bogus"]}, "state:"),
        ({"queue": "tpu"}, "queue:"),
        ({"owner": "nobody"}, "user:"),
        ({"owner": 12345}, "user:"),
        ({"limit": 0}, "limit:"),
        ({"limit": 1001}, "limit:"),
        ({"offset": -1}, "offset:"),
        ({"sort": [("traceback", "asc")]}, "sort:"),
        (
            {"since": datetime(2026, 2, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)},
            "until:",
        ),
    ],
)
def test_bad_filters_name_the_field_and_the_limit(team, kwargs, field):
    with pytest.raises(admin.AdminQueryError, match=f"^{field}"):
        admin.query_jobs(team["db"], **kwargs)


def test_requeue_of_a_running_job_fences_the_old_attempt(db):
    run_id = _submit(db, "stuck")
    assert jobs.claim(db, run_id, 1, "w-hung") is not None
    delivery = jobs.requeue(db, run_id)
    assert (delivery.run_id, delivery.attempt, delivery.queue) == (run_id, 2, "cpu")
    job = jobs.get_job(db, run_id)
    assert (job.state, job.attempt, job.worker_id, job.max_attempts) == ("queued", 2, None, 4)
    assert "requeued by an admin during attempt 1" in job.error
    assert runs.get_run(db, run_id).status == "queued"
    # the old attempt can no longer renew its lease, write an epoch or finish
    with pytest.raises(LeaseLost):
        jobs.heartbeat(db, run_id, 1, progress_epoch=5)
    with pytest.raises(LeaseLost):
        records.write_epochs(
            db,
            run_id,
            records.EpochChunk(
                epochs=[0], metrics=[{"train_loss": 1.0}], tensors={}, sparse_epochs={}
            ),
            attempt=1,
        )
    with pytest.raises(LeaseLost):
        jobs.finish(db, run_id, 1, "succeeded")
    assert jobs.claim(db, run_id, 1, "w-hung") is None  # its old message claims nothing
    assert runs.get_run(db, run_id).epochs_recorded == 0
    # the new attempt runs
    assert jobs.claim(db, run_id, 2, "w-ok") is not None
    jobs.heartbeat(db, run_id, 2, progress_epoch=3)
    jobs.finish(db, run_id, 2, "succeeded")
    assert jobs.get_job(db, run_id).state == "succeeded"


def test_requeue_of_a_queued_job_and_of_finished_ones(db):
    run_id = _submit(db, "lost message")
    assert jobs.requeue(db, run_id).attempt == 2
    assert jobs.claim(db, run_id, 1, "w") is None and jobs.claim(db, run_id, 2, "w")
    jobs.finish(db, run_id, 2, "succeeded")
    with pytest.raises(JobStateError, match="is succeeded: only queued or running"):
        jobs.requeue(db, run_id)
    with pytest.raises(RunNotFound):
        jobs.requeue(db, 99_999)
    cancelled = _submit(db, "cancelled")
    jobs.request_cancel(db, cancelled)
    with pytest.raises(JobStateError, match="retry a failed or cancelled one"):
        jobs.requeue(db, cancelled)


def test_storage_per_user_and_deleting_a_run_frees_its_bytes(db, tmp_path):
    alice = users.create_user(db, "alice", PASSWORD)
    bob = users.create_user(db, "bob", PASSWORD)
    small, big = _submit(db, "small", alice.id), _submit(db, "big", alice.id)
    bobs, nobodys = _submit(db, "bobs", bob.id), _submit(db, "nobodys")
    sizes = {
        small: _record(db, small, 100),
        big: _record(db, big, 5000),
        bobs: _record(db, bobs, 1000),
        nobodys: _record(db, nobodys, 10),
    }
    assert sizes[big] >= 20_000 and sizes[small] >= 400
    upload = save_upload(
        db, Settings(home=tmp_path), bob.id, "points.csv", b"x,y,label\n0,1,0\n1,0,1\n", "csv"
    )

    per_user = {u.owner: u for u in admin.storage_by_user(db)}
    assert per_user["alice"].runs == 2
    assert per_user["alice"].recorded_bytes == sizes[small] + sizes[big]
    assert (
        per_user["bob"].recorded_bytes,
        per_user["bob"].uploads,
        per_user["bob"].upload_bytes,
    ) == (sizes[bobs], 1, upload.size)
    assert per_user["bob"].total_bytes == sizes[bobs] + upload.size
    assert per_user[None].recorded_bytes == sizes[nobodys] and per_user[None].owner_id is None
    assert [u.owner for u in admin.storage_by_user(db)][0] == "alice"  # largest first
    largest = admin.largest_runs(db, 3)
    assert [r.run_id for r in largest] == [big, bobs, small]
    assert (largest[0].owner, largest[0].recorded_bytes) == ("alice", sizes[big])
    with pytest.raises(admin.AdminQueryError, match="^limit:"):
        admin.largest_runs(db, 0)

    runs.delete_run(db, big)
    per_user = {u.owner: u for u in admin.storage_by_user(db)}
    assert per_user["alice"].recorded_bytes == sizes[small] and per_user["alice"].runs == 1
    assert big not in [r.run_id for r in admin.largest_runs(db)]
    assert admin.state_counts(db)["queued"] == 3  # its job went with it


def test_worker_heartbeats_online_offline_stopped_and_current_job(db):
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    w1 = workers.WorkerIdentity("w1", "host-a", 101, ("cpu",))
    w2 = workers.WorkerIdentity("w2", "host-b", 202, ("gpu", "cpu"), "gpu: NVIDIA H100")
    workers.register(db, w1, now=t0)
    workers.register(db, w2, now=t0)
    workers.register(db, w1, now=t0)  # an upsert: still one row
    workers.heartbeat(
        db,
        workers.WorkerIdentity("w1", "host-a", 101, ("cpu",), "cpu"),
        now=t0 + timedelta(seconds=5),
    )
    run_id = _submit(db, "on w1")
    jobs.claim(db, run_id, 1, "w1")

    found = {
        w.name: w for w in workers.list_workers(db, heartbeat_s=1.0, now=t0 + timedelta(seconds=6))
    }
    assert set(found) == {"w1", "w2"}
    assert found["w1"].online and found["w1"].device == "cpu"
    assert found["w1"].seconds_since_heartbeat == pytest.approx(1.0, abs=0.01)
    assert (found["w1"].current_run_id, found["w1"].current_attempt) == (run_id, 1)
    assert found["w1"].current_run_name == "on w1"
    assert found["w2"].state == "offline" and found["w2"].queues == ["gpu", "cpu"]
    assert found["w2"].device == "gpu: NVIDIA H100" and found["w2"].current_run_id is None
    assert [w.name for w in workers.list_workers(db, 1.0, now=t0 + timedelta(seconds=6))] == [
        "w1",
        "w2",
    ]  # online first

    workers.mark_stopped(db, "w1", now=t0 + timedelta(seconds=7))
    workers.heartbeat(db, w1, now=t0 + timedelta(seconds=7.5))  # a late beat while exiting
    found = {w.name: w for w in workers.list_workers(db, 1.0, now=t0 + timedelta(seconds=8))}
    assert found["w1"].state == "stopped" and not found["w1"].online
    workers.register(db, w1, now=t0 + timedelta(seconds=9))  # started again
    found = {w.name: w for w in workers.list_workers(db, 1.0, now=t0 + timedelta(seconds=9))}
    assert found["w1"].online and found["w1"].stopped_at is None

    assert workers.forget_silent(db, timedelta(seconds=35), now=t0 + timedelta(seconds=40)) == 1
    assert [w.name for w in workers.list_workers(db, 1.0)] == ["w1"]
