"""Submit, retry and requeue jobs, request analyses: what the CLI, the web app, the API and the
workers all call. No JAX. (Cancelling sends no message: storage.jobs.request_cancel.)"""

from __future__ import annotations

from typing import Any

from netlens.dispatch.celery_app import make_celery, send, send_analysis
from netlens.storage import jobs
from netlens.storage.db import Database
from netlens.storage.limits import check_sweep_size, job_time_limit
from netlens.storage.settings import Settings
from netlens.storage.spec import ExperimentSpec, parse_spec
from netlens.storage.uploads import mark_used


def submit_spec(
    db: Database, settings: Settings, spec: ExperimentSpec, owner_id: int | None = None
) -> int:
    """Validate (again), record the run and its job, then put it on the broker."""
    spec = parse_spec(spec)
    delivery = jobs.submit(
        db,
        spec,
        max_attempts=settings.max_attempts,
        time_limit_s=job_time_limit(db, settings, owner_id),
        owner_id=owner_id,
        limits=settings,
    )
    mark_used(db, spec.dataset.upload)
    send(make_celery(settings), delivery)
    return delivery.run_id


def submit_sweep(
    db: Database,
    settings: Settings,
    base_spec: ExperimentSpec,
    axes: list[tuple[str, list[Any]]],
    name: str | None = None,
    owner_id: int | None = None,
) -> tuple[int, list[int]]:
    """Expand the grid (all or nothing: SweepError names the field and the limit), record the
    group with every run and job in one transaction, then put each on the broker."""
    from netlens.storage.groups import create_group
    from netlens.storage.sweep import describe_axes, expand_grid, grid_size, parse_axes

    base_spec = parse_spec(base_spec)
    axes = parse_axes(base_spec, axes)
    check_sweep_size(db, settings, owner_id, grid_size(axes))
    specs = expand_grid(base_spec, axes)
    group_id, deliveries = create_group(
        db,
        name or base_spec.name or "sweep",
        base_spec,
        describe_axes(axes),
        specs,
        max_attempts=settings.max_attempts,
        time_limit_s=job_time_limit(db, settings, owner_id),
        owner_id=owner_id,
        limits=settings,
    )
    mark_used(db, base_spec.dataset.upload)
    app = make_celery(settings)
    for delivery in deliveries:
        send(app, delivery)
    return group_id, [d.run_id for d in deliveries]


def retry_run(db: Database, settings: Settings, run_id: int, from_scratch: bool = False) -> int:
    delivery = jobs.retry(db, run_id, from_scratch, attempts=settings.max_attempts, limits=settings)
    send(make_celery(settings), delivery)
    return delivery.attempt


def release_run(db: Database, settings: Settings, run_id: int, attempt: int, reason: str) -> int:
    """A worker that shuts down gives its job back: the next attempt, sent to the queue."""
    delivery = jobs.release(db, run_id, attempt, reason)
    send(make_celery(settings), delivery)
    return delivery.attempt


def requeue_run(db: Database, settings: Settings, run_id: int) -> int:
    """A queued or running job as a new attempt (the old one fenced off), sent to its queue;
    returns the new attempt number."""
    delivery = jobs.requeue(db, run_id)
    send(make_celery(settings), delivery)
    return delivery.attempt


def submit_analyses(
    db: Database, settings: Settings, run_id: int, epoch: int | None = None, force: bool = False
) -> list[tuple[str, int]]:
    """Queue the signature analyses of `epoch` (default: the last) on the run's queue;
    returns what was queued (nothing when the results are stored or on their way)."""
    from netlens.dispatch.analysis_requests import request_analyses

    queued = request_analyses(db, run_id, epoch, force)
    _send_analyses(db, settings, run_id, queued)
    return queued


def submit_projection(
    db: Database, settings: Settings, run_id: int, method: str, epoch: int | None = None
) -> list[tuple[str, int]]:
    """Queue the t-SNE or UMAP (`method`) of `epoch` (default: the last) on the run's queue;
    returns what was queued (nothing when it is stored or on its way)."""
    from netlens.dispatch.analysis_requests import request_projection

    queued = request_projection(db, run_id, method, epoch)
    _send_analyses(db, settings, run_id, queued)
    return queued


def _send_analyses(db: Database, settings: Settings, run_id: int, queued) -> None:
    from netlens.storage.analyses import queue_of

    if queued:
        app, queue = make_celery(settings), queue_of(db, run_id)
        for kind, at in queued:
            send_analysis(app, run_id, kind, at, queue)
