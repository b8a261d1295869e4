"""Retention (storage/retention.py) on SQLite and PostgreSQL: thinning keeps every metrics
row and the kept epochs' tensors exactly, drops the rest with their analyses, never touches a
queued or running run or a checkpoint, reads back (pages' reads, export), and gives the space
back (the SQLite file shrinks)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from netlens.storage import analyses, jobs, records, retention, runs
from netlens.storage.export import collect_run
from netlens.storage.models import Run, RunAnalysis, utcnow
from tests.conftest import small_spec

RNG = np.random.default_rng(7)
N = 60  # recorded epochs 0..59
POLICY = retention.RetentionPolicy(keep_days=0, every=10, log_points=5)


def _record(db, run_id: int, epochs: list[int], per_row: int, width: int = 64) -> dict:
    """Record `epochs` in chunks of `per_row` epochs (one tensor row per chunk): a kernel,
    a signature and a grid recorded at every 4th epoch only. Returns what was written."""
    written: dict[str, dict[int, np.ndarray]] = {"params/dense/kernel": {}, "signatures/dense": {}}
    written["grid/output"] = {}
    for i in range(0, len(epochs), per_row):
        part = epochs[i : i + per_row]
        kernel = RNG.normal(size=(len(part), 8, width)).astype(np.float32)
        signature = RNG.normal(size=(len(part), 32, width)).astype(np.float32)
        grid_epochs = [e for e in part if e % 4 == 0]
        grid = RNG.normal(size=(len(grid_epochs), 16)).astype(np.float32)
        # validation loss lowest at epoch 37 (neither a k-th, log-spaced nor the last)
        metrics = [{"train_loss": 1.0 / (e + 1), "val_loss": abs(e - 37) + 0.5} for e in part]
        records.write_epochs(
            db,
            run_id,
            records.EpochChunk(
                epochs=part,
                metrics=metrics,
                tensors={
                    "params/dense/kernel": kernel,
                    "signatures/dense": signature,
                    "grid/output": grid,
                },
                sparse_epochs={"grid/output": grid_epochs},
            ),
        )
        for e, k, sg in zip(part, kernel, signature, strict=True):
            written["params/dense/kernel"][e], written["signatures/dense"][e] = k, sg
        for e, g in zip(grid_epochs, grid, strict=True):
            written["grid/output"][e] = g
    return written


def _finished_run(db, per_row: int = 1, width: int = 64) -> tuple[int, dict]:
    run_id = runs.create_run(db, small_spec(name="old", training={"epochs": N}))
    written = _record(db, run_id, list(range(N)), per_row, width)
    runs.finish_run(db, run_id, "succeeded")
    return run_id, written


def _expected_keep(best: int = 37) -> list[int]:
    epochs = list(range(N))
    return retention.select_epochs(epochs, POLICY, best)


@pytest.mark.parametrize("per_row", [1, 7])  # large networks: a row per epoch; tiny: chunks
def test_thinning_keeps_every_metric_and_exactly_the_kept_epochs_tensors(db, per_row, tmp_path):
    run_id, written = _finished_run(db, per_row)
    other, other_written = _finished_run(db, per_row)  # not thinned: untouched
    analyses.request(db, run_id, "epoch", 5)  # a dropped epoch's analysis
    analyses.request(db, run_id, "epoch", 37)  # the best epoch's: kept
    before = runs.get_run(db, run_id)
    metrics_before = records.read_metrics(db, run_id)

    dry = retention.thin_run(db, run_id, POLICY, dry_run=True)
    keep = _expected_keep()
    assert dry.kept == keep and dry.dropped == N - len(keep) and dry.bytes_freed > 0
    assert retention.kept_epochs(db, run_id) == list(range(N))  # a dry run changes nothing

    done = retention.thin_run(db, run_id, POLICY)
    assert done.kept == keep and done.dropped == N - len(keep) and done.skipped is None
    assert 0 in keep and 37 in keep and N - 1 in keep and 10 in keep
    assert retention.kept_epochs(db, run_id) == keep
    # every metrics row stays: the curves are whole
    epochs, metrics = records.read_metrics(db, run_id)
    assert epochs.tolist() == metrics_before[0].tolist() == list(range(N))
    np.testing.assert_array_equal(metrics["val_loss"], metrics_before[1]["val_loss"])
    # the kept epochs' tensors are exactly what was written; the others are gone
    for name in ("params/dense/kernel", "signatures/dense"):
        got_epochs, values = records.read_tensor(db, run_id, name)
        assert got_epochs.tolist() == keep
        for e, v in zip(got_epochs, values, strict=True):
            np.testing.assert_array_equal(v, written[name][int(e)])
    # the sparser grid keeps, for each kept epoch, the grid a page shows there (latest <= it)
    grid_epochs, grid = records.read_tensor(db, run_id, "grid/output")
    want = sorted({max(g for g in written["grid/output"] if g <= e) for e in keep})
    assert grid_epochs.tolist() == want
    for e, v in zip(grid_epochs, grid, strict=True):
        np.testing.assert_array_equal(v, written["grid/output"][int(e)])
    # analyses of dropped epochs go, the kept epochs' stay
    with db.session() as s:
        left = s.execute(select(RunAnalysis.epoch).where(RunAnalysis.run_id == run_id)).all()
    assert [r.epoch for r in left] == [37]
    info = runs.get_run(db, run_id)
    assert info.thinned_at is not None and info.epochs_recorded == before.epochs_recorded
    assert info.thinning["policy"] == POLICY.to_dict() and info.thinning["best_epoch"] == 37
    assert info.thinning["epochs_kept"] == len(keep)
    assert info.thinning["epochs_dropped"] == N - len(keep)
    # recorded bytes: the logical size of what is left
    assert info.recorded_bytes == sum(
        len(keep if not n.startswith("grid/") else want) * next(iter(v.values())).nbytes
        for n, v in written.items()
    )
    # thinning again by the same policy drops nothing more
    again = retention.thin_run(db, run_id, POLICY)
    assert again.dropped == 0 and again.rows_deleted == 0 and again.kept == keep
    # the other run is whole
    assert retention.kept_epochs(db, other) == list(range(N))
    assert runs.get_run(db, other).thinned_at is None
    got, values = records.read_tensor(db, other, "signatures/dense")
    assert got.tolist() == list(range(N))
    np.testing.assert_array_equal(values[5], other_written["signatures/dense"][5])
    # the export says which epochs have tensors and that the run was thinned
    out = collect_run(db, run_id)
    assert out["epochs"].tolist() == list(range(N))
    assert out["tensor_epochs"].tolist() == keep
    assert out["params/dense/kernel"].shape[0] == len(keep)
    assert '"thinned_at"' in str(out["run"]) and '"epochs_kept"' in str(out["run"])
    whole = collect_run(db, other)
    assert whole["tensor_epochs"].tolist() == list(range(N))


def test_queued_and_running_runs_are_never_thinned_and_checkpoints_stay(db):
    spec = small_spec(name="queued", dataset={"name": "xor"}, training={"epochs": N})
    queued = jobs.submit(db, spec).run_id
    _record(db, queued, list(range(N)), 1, 8)
    running = jobs.submit(db, spec).run_id
    _record(db, running, list(range(N)), 1, 8)
    assert jobs.claim(db, running, 1, "w1") is not None
    failed = jobs.submit(db, spec).run_id
    assert jobs.claim(db, failed, 1, "w1") is not None
    _record(db, failed, list(range(N)), 1, 8)
    records.write_epochs(
        db,
        failed,
        records.EpochChunk([N], [{"train_loss": 0.1}], {}, {}),
        attempt=1,
        checkpoint=(N, b"state bytes"),
    )
    jobs.finish(db, failed, 1, "failed", error="boom")
    for run_id in (queued, running):
        result = retention.thin_run(db, run_id, POLICY)
        assert result.skipped and result.dropped == 0
        assert retention.kept_epochs(db, run_id) == list(range(N))
        assert runs.get_run(db, run_id).thinned_at is None
    # the run's row says finished but its job is queued again (a retry): skipped too
    with db.session() as s:
        s.execute(update(Run).where(Run.id == queued).values(status="succeeded"))
    assert "job is queued" in retention.thin_run(db, queued, POLICY).skipped
    # a failed run that could resume: thinned, its checkpoint intact and its epoch kept
    result = retention.thin_run(db, failed, POLICY)
    assert result.skipped is None and result.dropped > 0
    assert jobs.load_checkpoint(db, failed) == (N, b"state bytes")
    assert runs.get_run(db, failed).thinned_at is not None
    # --older-than picks finished runs only, and only old enough ones
    assert retention.candidates(db, timedelta(days=1)) == []
    assert retention.candidates(db, timedelta(0), now=None) == [failed]


def test_the_sqlite_file_shrinks(sqlite_db):
    db = sqlite_db
    run_id, _ = _finished_run(db, 1, width=512)  # ~2.5 MB of tensors
    path = retention.sqlite_path(db)
    size_before = retention.database_size(db)
    report = retention.thin_runs(db, [run_id], POLICY)
    assert report.thinned and report.vacuum == "VACUUM done"
    assert report.size_before == size_before
    # the kept share of the tensors, plus what the rest of the database takes
    kept_share = len(_expected_keep()) / N
    assert report.size_after == retention.database_size(db) == path.stat().st_size
    assert report.size_after < size_before * (kept_share + 0.25), (size_before, report.size_after)
    assert "database" in report.summary()


def test_thinning_waits_for_a_retry_in_flight_then_skips_the_run(db):
    """A retry holding the job row (jobs.retry locks it FOR UPDATE on PostgreSQL; on SQLite
    its write transaction holds the database's write lock) makes thinning wait for its
    commit; thinning then reads the job queued and changes nothing."""
    import threading

    from netlens.storage.models import Job

    spec = small_spec(name="retried", dataset={"name": "xor"}, training={"epochs": N})
    run_id = jobs.submit(db, spec).run_id
    assert jobs.claim(db, run_id, 1, "w1") is not None
    _record(db, run_id, list(range(N)), 1, 8)
    jobs.finish(db, run_id, 1, "failed", error="boom")
    results: list = []
    thinning = threading.Thread(
        target=lambda: results.append(retention.thin_run(db, run_id, POLICY))
    )
    with db.session() as s:  # the retry's transaction, not yet committed
        s.get(Job, run_id, with_for_update=True)
        s.execute(update(Job).where(Job.run_id == run_id).values(state="queued", attempt=2))
        s.execute(update(Run).where(Run.id == run_id).values(status="queued"))
        s.flush()
        thinning.start()
        thinning.join(1.5)
        assert thinning.is_alive() and not results  # waiting on the lock
    thinning.join(30)
    assert results and results[0].skipped == "run is queued: never thinned while it may train"
    assert retention.kept_epochs(db, run_id) == list(range(N))
    assert runs.get_run(db, run_id).thinned_at is None


def _ended_days_ago(db, run_id: int, days: float) -> None:
    with db.session() as s:
        s.execute(
            update(Run).where(Run.id == run_id).values(finished_at=utcnow() - timedelta(days=days))
        )


def test_automatic_rounds_thin_the_due_runs_once_per_period(db):
    """auto_hours: 0 (the default) never thins by itself; 24: a round thins the runs older
    than keep_days, the next 24 h start no round, and a later round thins only what is new
    (a run thinned by a policy that keeps the same epochs is not gone through again)."""
    old, _ = _finished_run(db, 7, 8)
    young, _ = _finished_run(db, 7, 8)
    _ended_days_ago(db, old, 10)
    now = utcnow()
    assert retention.auto_round(db, now) is None  # the built-in policy: by hand only
    assert runs.get_run(db, old).thinned_at is None

    policy = retention.RetentionPolicy(keep_days=5, every=10, log_points=5, auto_hours=24)
    retention.set_policy(db, policy)
    report = retention.auto_round(db, now)
    assert report is not None and [r.run_id for r in report.thinned] == [old]
    assert retention.kept_epochs(db, old) == retention.select_epochs(list(range(N)), policy, 37)
    assert retention.kept_epochs(db, young) == list(range(N))
    assert retention.auto_round(db, now + timedelta(hours=23)) is None  # this period's done

    later, _ = _finished_run(db, 7, 8)
    _ended_days_ago(db, later, 6)
    report = retention.auto_round(db, now + timedelta(hours=24, minutes=1))
    assert report is not None and [r.run_id for r in report.results] == [later]
    assert runs.get_run(db, later).thinned_at is not None
    assert runs.get_run(db, young).thinned_at is None
    # a thinned run that ended again since (a retry recorded more epochs) is thinned again
    with db.session() as s:
        s.execute(update(Run).where(Run.id == old).values(thinned_at=utcnow() - timedelta(days=20)))
    report = retention.auto_round(db, now + timedelta(hours=49))
    assert report is not None and [r.run_id for r in report.results] == [old]
    # a policy keeping other epochs goes through the thinned runs again
    retention.set_policy(db, retention.RetentionPolicy(5, 20, 5, 1))
    report = retention.auto_round(db, now + timedelta(hours=51))
    assert report is not None and sorted(r.run_id for r in report.results) == sorted([old, later])


def _claims_at_once(db, now, reapers: int = 6) -> list[bool]:
    """What `reapers` threads asking claim_auto_round at the same moment are told."""
    import threading

    barrier, answers = threading.Barrier(reapers), []

    def ask() -> None:
        barrier.wait()
        answers.append(retention.claim_auto_round(db, 24, now))

    threads = [threading.Thread(target=ask) for _ in range(reapers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(answers)


def test_of_several_reapers_asking_at_once_one_claims_the_round(db):
    now = utcnow()
    assert _claims_at_once(db, now) == [False] * 5 + [True]  # the first INSERT
    # once the period has passed: the conditional UPDATE
    assert _claims_at_once(db, now + timedelta(hours=24)) == [False] * 5 + [True]
    assert _claims_at_once(db, now + timedelta(hours=47)) == [False] * 6  # within that period


def test_the_reaper_starts_the_round_in_a_thread_of_its_own(db):
    """What a worker's reaper does every few minutes (netlens/dispatch/reaper.py): the round
    runs beside the reaping, and a second call while it runs starts nothing."""
    from types import SimpleNamespace

    from netlens.dispatch.reaper import Reaper

    old, _ = _finished_run(db, 7, 8)
    _ended_days_ago(db, old, 3)
    retention.set_policy(db, retention.RetentionPolicy(1, 10, 5, 6))
    reaper = Reaper(None, db, SimpleNamespace(heartbeat_seconds=2.0))
    import threading

    release = threading.Event()
    reaper._thinning = threading.Thread(target=release.wait, daemon=True)  # a round running
    reaper._thinning.start()
    assert reaper.start_retention_round() is None  # never two rounds from one reaper
    release.set()
    reaper._thinning.join(10)
    thread = reaper.start_retention_round()
    assert thread is not None and thread.name == "netlens-retention"
    thread.join(60)
    assert runs.get_run(db, old).thinned_at is not None
    assert runs.get_run(db, old).thinning["policy"]["auto_hours"] == 6
