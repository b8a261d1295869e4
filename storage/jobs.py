"""Jobs: the database's record of queued runs; claims, leases, fencing, cancel and retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from netlens.storage.catalog import MODEL_KINDS, TRAINED_ELSEWHERE
from netlens.storage.db import Database, lease_clock
from netlens.storage.limits import check_active_jobs
from netlens.storage.models import (
    Job,
    Run,
    RunAnalysis,
    RunAnalysisArray,
    RunCheckpoint,
    RunEpoch,
    RunTensor,
    utcnow,
)
from netlens.storage.runs import RunNotFound, new_run_row
from netlens.storage.settings import Settings
from netlens.storage.spec import ExperimentSpec, check_submittable, check_trainable


class JobStateError(ValueError):
    """An action the job's current state does not allow (e.g. retrying a running job)."""


class LeaseLost(RuntimeError):
    """This worker's attempt is no longer the job's current one: it must stop writing."""


@dataclass(frozen=True)
class JobInfo:
    run_id: int
    state: str
    queue: str
    attempt: int
    max_attempts: int
    from_scratch: bool
    cancel_requested: bool
    time_limit_s: int | None
    worker_id: str | None
    progress_epoch: int
    progress_total: int
    last_metrics: dict[str, float | None]
    error: str | None
    traceback: str | None
    enqueued_at: datetime
    claimed_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """What goes on the broker: the run, the attempt, and the queue to put it on."""

    run_id: int
    attempt: int
    queue: str


def _info(job: Job) -> JobInfo:
    return JobInfo(**{k: getattr(job, k) for k in JobInfo.__dataclass_fields__})


def queue_for(spec: ExperimentSpec) -> str:
    """gpu jobs go to the gpu queue; cpu and any to cpu (GPU workers listen to both)."""
    return "gpu" if spec.training.device == "gpu" else "cpu"


def submit(
    db: Database,
    spec: ExperimentSpec,
    max_attempts: int = 3,
    time_limit_s: int | None = None,
    owner_id: int | None = None,
    limits: Settings | None = None,
) -> Delivery:
    """Create a queued run and its job in one transaction; the caller then sends the delivery.
    With `limits`, the owner's limit on queued and running jobs is checked in it."""
    with db.session() as s:
        return submit_many(s, [spec], None, max_attempts, time_limit_s, owner_id, limits)[0]


def submit_many(
    s: Session,
    specs: list[ExperimentSpec],
    group_id: int | None = None,
    max_attempts: int = 3,
    time_limit_s: int | None = None,
    owner_id: int | None = None,
    limits: Settings | None = None,
) -> list[Delivery]:
    """Inside the caller's transaction: a queued run (in `group_id`) and its job per spec,
    in order, so that a group is created whole or not at all. The caller sends them. With
    `limits`, LimitExceeded when the owner's queued and running jobs would exceed theirs."""
    for spec in specs:  # SpecError for data only the Python API gives (dataset arrays)
        check_submittable(spec)  # and for a model the user's code trains (kind flax)
        check_trainable(spec)
    if limits is not None:
        check_active_jobs(s, limits, owner_id, len(specs))
    out = []
    for spec in specs:
        run = new_run_row(spec, group_id=group_id, owner_id=owner_id)
        s.add(run)
        s.flush()
        s.add(
            Job(
                run_id=run.id,
                state="queued",
                queue=queue_for(spec),
                attempt=1,
                max_attempts=max_attempts,
                time_limit_s=time_limit_s,
                progress_total=spec.training.epochs,
                last_metrics={},
            )
        )
        out.append(Delivery(run.id, 1, queue_for(spec)))
    s.flush()
    return out


def get_job(db: Database, run_id: int) -> JobInfo:
    with db.session() as s:
        job = s.get(Job, run_id)
        if job is None:
            raise RunNotFound(run_id)
        return _info(job)


def _refuse_user_trained(s: Session, run_id: int) -> None:
    """JobStateError for a run whose model the user's own code trained (nl.Recorder): it has
    no job, and NetLens could not run one."""
    spec = s.scalar(select(Run.spec).where(Run.id == run_id))
    kind = (spec or {}).get("model", {}).get("kind")
    if kind in MODEL_KINDS and not MODEL_KINDS[kind].trainable:
        raise JobStateError(f"run {run_id} was {TRAINED_ELSEWHERE} (model.kind {kind!r})")


def _set_run(s: Session, run_id: int, **values: Any) -> None:
    s.execute(update(Run).where(Run.id == run_id).values(**values))


def claim(db: Database, run_id: int, attempt: int, worker_id: str) -> JobInfo | None:
    """Atomically take a queued job for this attempt; None for a stale or duplicate delivery."""
    with db.session() as s:
        now = lease_clock(s)
        taken = s.execute(
            update(Job)
            .where(
                Job.run_id == run_id,
                Job.attempt == attempt,
                Job.state == "queued",
                Job.cancel_requested.is_(False),
            )
            .values(
                state="running",
                worker_id=worker_id,
                claimed_at=now,
                heartbeat_at=now,
                error=None,
                traceback=None,
            )
        ).rowcount
        if not taken:
            return None
        _set_run(s, run_id, status="running", error=None)
        return _info(s.get(Job, run_id))


def fence(s: Session, run_id: int, attempt: int) -> Job:
    """Lock the job row and check that `attempt` still owns it (inside the caller's transaction)."""
    job = s.get(Job, run_id, with_for_update=True, populate_existing=True)
    if job is None or job.attempt != attempt or job.state != "running":
        raise LeaseLost(f"run {run_id}: attempt {attempt} no longer owns the job")
    return job


def heartbeat(
    db: Database,
    run_id: int,
    attempt: int,
    progress_epoch: int | None = None,
    last_metrics: dict[str, float | None] | None = None,
) -> bool:
    """Renew the lease; returns whether cancellation was requested. Raises LeaseLost."""
    with db.session() as s:
        job = fence(s, run_id, attempt)
        job.heartbeat_at = lease_clock(s)
        if progress_epoch is not None:
            job.progress_epoch = progress_epoch
        if last_metrics is not None:
            job.last_metrics = last_metrics
        return job.cancel_requested


def finish(
    db: Database,
    run_id: int,
    attempt: int,
    state: str,
    error: str | None = None,
    traceback: str | None = None,
) -> None:
    """End the attempt (fenced): the job and its run get the final state."""
    now = utcnow()
    with db.session() as s:
        job = fence(s, run_id, attempt)
        job.state, job.error, job.traceback, job.finished_at = state, error, traceback, now
        _set_run(
            s,
            run_id,
            status=state,
            error=error if not traceback else f"{error}\n\n{traceback}",
            finished_at=now,
        )


def request_cancel(db: Database, run_id: int) -> str:
    """Cancel a queued job at once, or ask a running one to stop; returns the resulting state."""
    now = utcnow()
    with db.session() as s:
        job = s.get(Job, run_id, with_for_update=True)
        if job is None:
            raise RunNotFound(run_id)
        if job.state == "queued":
            job.state, job.finished_at, job.error = "cancelled", now, "cancelled before it started"
            _set_run(s, run_id, status="cancelled", finished_at=now, error=job.error)
            return "cancelled"
        if job.state == "running":
            job.cancel_requested = True
            return "cancelling"
        raise JobStateError(
            f"run {run_id} is {job.state}: only queued or running jobs can be cancelled"
        )


def retry(
    db: Database,
    run_id: int,
    from_scratch: bool = False,
    attempts: int = 3,
    limits: Settings | None = None,
) -> Delivery:
    """A new attempt of a failed or cancelled job, with a fresh budget of `attempts`. Two
    clicks make one attempt: the second finds the job queued and is refused. With `limits`,
    the run owner's limit on queued and running jobs applies (LimitExceeded)."""
    with db.session() as s:
        _refuse_user_trained(s, run_id)
        job = s.get(Job, run_id, with_for_update=True)
        if job is None:
            raise RunNotFound(run_id)
        if job.state not in ("failed", "cancelled"):
            raise JobStateError(
                f"run {run_id} is {job.state}: only failed or cancelled jobs can be retried"
            )
        if limits is not None:
            check_active_jobs(s, limits, s.get(Run, run_id).owner_id, 1)
        changed = s.execute(
            update(Job)
            .where(
                Job.run_id == run_id,
                Job.attempt == job.attempt,
                Job.state.in_(("failed", "cancelled")),
            )
            .values(
                state="queued",
                attempt=Job.attempt + 1,
                from_scratch=from_scratch,
                cancel_requested=False,
                error=None,
                traceback=None,
                worker_id=None,
                enqueued_at=utcnow(),
                finished_at=None,
                max_attempts=job.attempt + attempts,
            )
        ).rowcount
        if not changed:
            raise JobStateError(f"run {run_id} changed state meanwhile; not retried")
        _set_run(s, run_id, status="queued", error=None, finished_at=None)
        s.flush()
        job = s.get(Job, run_id, populate_existing=True)
        return Delivery(run_id, job.attempt, job.queue)


def requeue(db: Database, run_id: int) -> Delivery:
    """Put a queued or running job back on its queue as a new attempt (an admin's action, e.g.
    for a job stuck on a hung worker or whose message was lost). The old attempt is fenced
    off: its heartbeat, epoch writes and final state raise LeaseLost, and its message, if it
    is still on the broker, claims nothing. A requeue does not use up the job's attempts.
    The caller sends the delivery."""
    now = utcnow()
    with db.session() as s:
        _refuse_user_trained(s, run_id)
        job = s.get(Job, run_id, with_for_update=True)
        if job is None:
            raise RunNotFound(run_id)
        if job.state not in ("queued", "running"):
            raise JobStateError(
                f"run {run_id} is {job.state}: only queued or running jobs can "
                "be requeued (retry a failed or cancelled one)"
            )
        reason = f"requeued by an admin during attempt {job.attempt}" + (
            f" (was running on {job.worker_id})" if job.state == "running" else ""
        )
        changed = s.execute(
            update(Job)
            .where(
                Job.run_id == run_id,
                Job.attempt == job.attempt,
                Job.state.in_(("queued", "running")),
            )
            .values(
                state="queued",
                attempt=Job.attempt + 1,
                max_attempts=Job.max_attempts + 1,
                from_scratch=False,
                cancel_requested=False,
                worker_id=None,
                error=reason,
                traceback=None,
                enqueued_at=now,
                finished_at=None,
            )
        ).rowcount
        if not changed:
            raise JobStateError(f"run {run_id} changed state meanwhile; not requeued")
        _set_run(s, run_id, status="queued", error=None, finished_at=None)
        s.flush()
        job = s.get(Job, run_id, populate_existing=True)
        return Delivery(run_id, job.attempt, job.queue)


def release(db: Database, run_id: int, attempt: int, reason: str) -> Delivery:
    """The worker running `attempt` gives the job back (it is shutting down): the job is
    queued again as the next attempt, to resume from its checkpoint elsewhere. Fenced: raises
    LeaseLost unless that attempt still runs the job. Does not use up an attempt (the worker
    did not fail). The caller sends the delivery."""
    now = utcnow()
    with db.session() as s:
        job = fence(s, run_id, attempt)
        job.state, job.attempt, job.max_attempts = "queued", attempt + 1, job.max_attempts + 1
        job.worker_id, job.from_scratch, job.enqueued_at = None, False, now
        job.error = f"{reason} during attempt {attempt}; requeued"
        _set_run(s, run_id, status="queued")
        return Delivery(run_id, job.attempt, job.queue)


def reap_stale(db: Database, lease_s: float, now: datetime | None = None) -> list[Delivery]:
    """Requeue running jobs whose lease expired (also when no heartbeat ever came after the
    claim), or fail them once they used all their attempts. Returns deliveries to send.
    `now` defaults to the lease clock (the database server's on PostgreSQL)."""
    out = []
    with db.session() as s:
        now = now or lease_clock(s)
        cutoff = now - timedelta(seconds=lease_s)
        stale = s.scalars(
            select(Job)
            .where(Job.state == "running", Job.heartbeat_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        for job in stale:
            reason = (
                f"worker {job.worker_id} stopped renewing its lease (last heartbeat "
                f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC) during attempt {job.attempt}"
            )
            if job.attempt >= job.max_attempts:
                job.state, job.finished_at = "failed", now
                job.error = f"{reason}; gave up after {job.attempt} attempts"
                _set_run(s, job.run_id, status="failed", error=job.error, finished_at=now)
                continue
            job.state, job.attempt, job.enqueued_at = "queued", job.attempt + 1, now
            job.error, job.worker_id, job.from_scratch = f"{reason}; requeued", None, False
            _set_run(s, job.run_id, status="queued")
            out.append(Delivery(job.run_id, job.attempt, job.queue))
    return out


def queued_since(db: Database, before: datetime) -> list[Delivery]:
    """Queued jobs enqueued before `before`: their messages may be lost (broker flushed)."""
    with db.session() as s:
        jobs = s.scalars(
            select(Job)
            .where(Job.state == "queued", Job.enqueued_at < before)
            .order_by(Job.enqueued_at)
        ).all()
        return [Delivery(j.run_id, j.attempt, j.queue) for j in jobs]


def mark_resent(db: Database, deliveries: list[Delivery]) -> None:
    with db.session() as s:
        for d in deliveries:
            s.execute(
                update(Job)
                .where(Job.run_id == d.run_id, Job.attempt == d.attempt, Job.state == "queued")
                .values(enqueued_at=utcnow())
            )


def count_by_state(db: Database) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())


def save_checkpoint(s: Session, run_id: int, epoch: int, data: bytes) -> None:
    """Inside a fenced write transaction: keep only the newest checkpoint."""
    row = s.get(RunCheckpoint, run_id)
    if row is None:
        s.add(RunCheckpoint(run_id=run_id, epoch=epoch, data=data))
    elif epoch >= row.epoch:
        row.epoch, row.data = epoch, data


def load_checkpoint(db: Database, run_id: int) -> tuple[int, bytes] | None:
    with db.session() as s:
        row = s.get(RunCheckpoint, run_id)
        return None if row is None else (row.epoch, row.data)


def clear_records(db: Database, run_id: int, attempt: int) -> None:
    """Retry from scratch: drop the recorded epochs, checkpoint and analyses (fenced)."""
    with db.session() as s:
        fence(s, run_id, attempt)
        for table in (RunEpoch, RunTensor, RunCheckpoint, RunAnalysisArray, RunAnalysis):
            s.execute(delete(table).where(table.run_id == run_id))
        _set_run(
            s,
            run_id,
            epochs_recorded=0,
            last_epoch=None,
            recorded_bytes=0,
            final_train_loss=None,
            final_train_accuracy=None,
            final_val_loss=None,
            final_val_accuracy=None,
            thinned_at=None,  # every epoch is recorded afresh, in full
            thinning=None,
        )
