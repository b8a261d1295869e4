"""Submit and retry jobs: the function the CLI, the web app and the API all call. No JAX."""

from __future__ import annotations

from storage import jobs
from storage.db import Database
from storage.settings import Settings
from storage.spec import ExperimentSpec, parse_spec
from worker.celery_app import make_celery, send, send_analysis


def submit_spec(db: Database, settings: Settings, spec: ExperimentSpec) -> int:
    """Validate (again), record the run and its job, then put it on the broker."""
    spec = parse_spec(spec)
    delivery = jobs.submit(db, spec, max_attempts=settings.max_attempts,
                           time_limit_s=None if settings.job_time_limit_seconds is None
                           else int(settings.job_time_limit_seconds))
    send(make_celery(settings), delivery)
    return delivery.run_id


def retry_run(db: Database, settings: Settings, run_id: int, from_scratch: bool = False) -> int:
    delivery = jobs.retry(db, run_id, from_scratch, attempts=settings.max_attempts)
    send(make_celery(settings), delivery)
    return delivery.attempt


def submit_analyses(db: Database, settings: Settings, run_id: int, epoch: int | None = None,
                    force: bool = False) -> list[tuple[str, int]]:
    """Queue the signature analyses of `epoch` (default: the last) on the run's queue;
    returns what was queued (nothing when the results are stored or on their way)."""
    from storage.analyses import queue_of
    from worker.analyze import request_analyses

    queued = request_analyses(db, run_id, epoch, force)
    if queued:
        app, queue = make_celery(settings), queue_of(db, run_id)
        for kind, at in queued:
            send_analysis(app, run_id, kind, at, queue)
    return queued
