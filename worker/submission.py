"""Submit and retry jobs: the function the CLI, the web app and the API all call. No JAX."""

from __future__ import annotations

from storage import jobs
from storage.db import Database
from storage.settings import Settings
from storage.spec import ExperimentSpec, parse_spec
from worker.celery_app import make_celery, send


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
