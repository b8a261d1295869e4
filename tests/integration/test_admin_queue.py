"""The admin page's data with real Redis, PostgreSQL and `netlens worker` processes: the
workers table follows a worker's life (online with its device and current job, stopped after
SIGTERM, offline after SIGKILL), and requeueing a running job runs it again as a new attempt
while the old one is fenced off."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from netlens.dispatch.submission import requeue_run
from netlens.storage import admin, jobs, runs, workers
from tests.conftest import flushed_redis_url
from tests.integration.test_queue import Cluster, _assert_complete, _long_spec, _wait

REDIS_DB = 13  # a database of its own on the shared Redis (test_queue uses 11, benchmarks 12)


@pytest.fixture
def redis_url() -> str:
    return flushed_redis_url(REDIS_DB)


@pytest.fixture
def cluster(pg_db, redis_url, tmp_path):
    c = Cluster(pg_db, redis_url, tmp_path)
    yield c
    c.stop()


def _worker(cluster: Cluster, name: str) -> workers.WorkerInfo | None:
    found = workers.list_workers(cluster.db, cluster.settings.heartbeat_seconds)
    return next((w for w in found if w.name == name), None)


def _wait_worker(cluster: Cluster, name: str, condition, what: str, timeout: float = 30):
    _wait(
        lambda: (w := _worker(cluster, name)) is not None and condition(w),
        timeout,
        f"worker {name} {what}",
        cluster.diagnosis,
    )
    return _worker(cluster, name)


def test_workers_table_shows_a_worker_online_with_its_device_and_job_then_stopped(cluster):
    proc = cluster.start_worker("adm-w1")
    w = _wait_worker(cluster, "adm-w1", lambda w: w.online and w.device, "online")
    assert (w.device, w.queues, w.pid, w.hostname) == (
        "cpu",
        ["cpu"],
        proc.pid,
        socket.gethostname(),
    )
    assert w.current_run_id is None and w.seconds_since_heartbeat < 2

    run_id = cluster.submit(_long_spec(epochs=300))
    cluster.wait_state(run_id, ("running",), 60)
    w = _wait_worker(cluster, "adm-w1", lambda w: w.current_run_id == run_id, "on the job")
    assert w.current_attempt == 1 and w.online
    row = admin.query_jobs(cluster.db, states=["running"])[0][0]
    assert (row.run_id, row.worker_id) == (run_id, "adm-w1")

    jobs.request_cancel(cluster.db, run_id)
    cluster.wait_state(run_id, ("cancelled",), 60)
    _wait_worker(cluster, "adm-w1", lambda w: w.current_run_id is None, "free again")

    proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown; the worker marks itself stopped
    assert proc.wait(60) == 0, cluster.logs()
    w = _worker(cluster, "adm-w1")
    assert w.state == "stopped" and not w.online and w.stopped_at is not None

    # a worker that dies without a word shows offline once its heartbeats stop
    proc = cluster.start_worker("adm-w2")
    _wait_worker(cluster, "adm-w2", lambda w: w.online, "online")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    w = _wait_worker(cluster, "adm-w2", lambda w: w.state == "offline", "offline", 15)
    assert w.stopped_at is None and w.seconds_since_heartbeat > workers.online_window_s(
        cluster.settings.heartbeat_seconds
    )


def test_requeue_of_a_running_job_runs_it_again_as_a_new_attempt(cluster):
    spec = _long_spec(epochs=300)
    cluster.start_worker("adm-w1")
    run_id = cluster.submit(spec)
    _wait(
        lambda: jobs.get_job(cluster.db, run_id).progress_epoch >= 40,
        120,
        "epoch 40",
        cluster.diagnosis,
    )

    assert requeue_run(cluster.db, cluster.settings, run_id) == 2
    requeued_at = time.monotonic()
    job = jobs.get_job(cluster.db, run_id)
    assert job.state in ("queued", "running") and job.attempt == 2 and job.max_attempts == 4

    # the old attempt is fenced off at its next heartbeat or epoch write and stops at once
    # (one 0.5-s heartbeat, not the ~10 s the rest of the run takes); the worker then takes
    # the new delivery, which resumes from the last checkpoint
    _wait(
        lambda: f"run {run_id} attempt 1 ended lost" in cluster.logs(tail=None),
        30,
        "the old attempt to stop",
        cluster.diagnosis,
    )
    assert time.monotonic() - requeued_at < 5, cluster.logs()
    job = cluster.wait_state(run_id, ("succeeded", "failed"), 180)
    assert job.state == "succeeded" and job.attempt == 2, cluster.logs()
    assert "requeued by an admin during attempt 1" in (job.error or "") or job.error is None
    _assert_complete(cluster.db, run_id, spec.training.epochs)
    detail = admin.job_detail(cluster.db, run_id)
    assert (detail.row.attempt, detail.row.worker_id, detail.run_status) == (
        2,
        "adm-w1",
        "succeeded",
    )
    assert runs.get_run(cluster.db, run_id).epochs_recorded == spec.training.epochs + 1
