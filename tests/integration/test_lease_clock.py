"""Leases on several machines: the claim, the heartbeats and the reaper's cutoff all read the
database server's clock (PostgreSQL), so a host whose own clock is off cannot lose its job
while it trains, nor keep a dead worker's job leased too long.

A host with a wrong clock cannot be made on this machine (network namespaces share the
clock), so the worker's clock is shifted in this process: every Python clock the storage
layer reads for jobs and workers (`storage.jobs.utcnow`, `storage.db.datetime`) is shifted
for the worker's calls."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from netlens.storage import db as db_module
from netlens.storage import jobs, workers
from netlens.storage.models import utcnow
from tests.conftest import small_spec

SKEW = timedelta(minutes=10)


def _submit(db) -> int:
    return jobs.submit(db, small_spec(dataset={"name": "xor"})).run_id


@pytest.fixture
def worker_clock(monkeypatch):
    """Calls made inside `with worker_clock(offset):` see this process's clock shifted."""
    from contextlib import contextmanager

    @contextmanager
    def shifted(offset: timedelta):
        class ShiftedDatetime(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.now(tz) + offset

        with monkeypatch.context() as m:
            m.setattr(jobs, "utcnow", lambda: utcnow() + offset)
            m.setattr(db_module, "datetime", ShiftedDatetime)
            yield

    return shifted


def test_a_worker_whose_clock_is_behind_keeps_its_lease(pg_db, worker_clock):
    run_id = _submit(pg_db)
    with worker_clock(-SKEW):  # its heartbeats would look 10 minutes old to every reaper
        assert jobs.claim(pg_db, run_id, 1, "slow-clock") is not None
        jobs.heartbeat(pg_db, run_id, 1, 3)
    assert jobs.reap_stale(pg_db, lease_s=60) == []  # a reaper on a host with the right time
    job = jobs.get_job(pg_db, run_id)
    assert job.state == "running" and job.attempt == 1 and job.worker_id == "slow-clock"


def test_a_dead_worker_whose_clock_was_ahead_loses_its_job_after_one_lease(pg_db, worker_clock):
    run_id = _submit(pg_db)
    with worker_clock(SKEW):  # its heartbeats would look 10 minutes in the future
        assert jobs.claim(pg_db, run_id, 1, "fast-clock") is not None
        jobs.heartbeat(pg_db, run_id, 1, 3)
    time.sleep(1.5)  # then it dies: no more heartbeats
    requeued = jobs.reap_stale(pg_db, lease_s=1)
    assert [(d.run_id, d.attempt) for d in requeued] == [(run_id, 2)]
    assert "fast-clock stopped renewing its lease" in jobs.get_job(pg_db, run_id).error


def test_a_worker_whose_clock_is_behind_shows_online_on_the_admin_page(pg_db, worker_clock):
    me = workers.WorkerIdentity("slow-clock", "far-host", 123, ("cpu",))
    with worker_clock(-SKEW):
        workers.register(pg_db, me)
        workers.heartbeat(pg_db, me)
    (listed,) = workers.list_workers(pg_db, heartbeat_s=10)
    assert listed.state == "online" and listed.seconds_since_heartbeat < 10
