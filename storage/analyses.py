"""Signature analyses: their requests, states and results (summary JSON plus raw arrays).

A request inserts (or re-queues) one row; a worker claims it with a conditional UPDATE,
computes, and stores the result. Results are reused by every page and by `netlens analyze`;
nothing here computes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, null, or_, select, update

from netlens.storage.arrays import decode, encode
from netlens.storage.db import Database
from netlens.storage.models import PROGRESS_CHARS, Job, RunAnalysis, RunAnalysisArray, utcnow

# A queued or running analysis older than this is presumed lost (its worker died or its
# message was dropped): a new request queues it again.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class AnalysisInfo:
    run_id: int
    kind: str
    epoch: int
    state: str
    summary: dict[str, Any] | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: str | None = None  # what a running analysis is doing now (set_progress)


def _info(row: RunAnalysis) -> AnalysisInfo:
    return AnalysisInfo(
        row.run_id,
        row.kind,
        row.epoch,
        row.state,
        row.summary,
        row.error,
        row.requested_at,
        row.started_at,
        row.finished_at,
        row.progress,
    )


def _key(run_id: int, kind: str, epoch: int):
    return (RunAnalysis.run_id == run_id, RunAnalysis.kind == kind, RunAnalysis.epoch == epoch)


def _is_stale(row: RunAnalysis, now: datetime) -> bool:
    since = row.started_at or row.requested_at
    if since.tzinfo is None:  # SQLite returns naive datetimes
        now = now.replace(tzinfo=None)
    return now - since > STALE_AFTER


def request(db: Database, run_id: int, kind: str, epoch: int, force: bool = False) -> bool:
    """Ask for an analysis. True when it was (re)queued and a worker must be told; False when
    it is already done (unless `force`) or already on its way."""
    now = utcnow()
    with db.session() as s:
        row = s.get(RunAnalysis, (run_id, kind, epoch))
        if row is None:
            s.add(
                RunAnalysis(run_id=run_id, kind=kind, epoch=epoch, state="queued", requested_at=now)
            )
            return True
        if row.state == "done" and not force:
            return False
        if row.state in ("queued", "running") and not _is_stale(row, now):
            return False
        row.state, row.error, row.requested_at = "queued", None, now
        row.started_at = row.finished_at = row.worker_id = row.progress = None
        return True


def claim(db: Database, run_id: int, kind: str, epoch: int, worker_id: str) -> bool:
    """Take a queued analysis (or a stale running one): one worker wins."""
    now = utcnow()
    with db.session() as s:
        result = s.execute(
            update(RunAnalysis)
            .where(*_key(run_id, kind, epoch))
            .where(
                or_(
                    RunAnalysis.state == "queued",
                    (RunAnalysis.state == "running") & (RunAnalysis.started_at < now - STALE_AFTER),
                )
            )
            .values(state="running", started_at=now, worker_id=worker_id, progress=None)
        )
        return result.rowcount == 1


def set_progress(db: Database, run_id: int, kind: str, epoch: int, text: str) -> None:
    """What the running analysis is doing now ("computing t-SNE for layer 2 of 3…"); only
    while it is running (a finished or re-queued one keeps no stale line)."""
    with db.session() as s:
        s.execute(
            update(RunAnalysis)
            .where(*_key(run_id, kind, epoch), RunAnalysis.state == "running")
            .values(progress=text[:PROGRESS_CHARS])
        )


def store(
    db: Database,
    run_id: int,
    kind: str,
    epoch: int,
    summary: dict[str, Any],
    arrays: dict[str, np.ndarray],
    create: bool = False,
) -> None:
    """Save a finished analysis, replacing any earlier result of the same key. `create`
    inserts the row when it was computed without a request (the CLI)."""
    with db.session() as s:
        row = s.get(RunAnalysis, (run_id, kind, epoch))
        if row is None:
            if not create:
                raise LookupError(
                    f"no analysis {kind} at epoch {epoch} was requested for run {run_id}"
                )
            row = RunAnalysis(run_id=run_id, kind=kind, epoch=epoch, requested_at=utcnow())
            s.add(row)
        row.state, row.summary, row.error, row.finished_at = "done", summary, None, utcnow()
        row.progress = None
        s.execute(
            delete(RunAnalysisArray).where(
                RunAnalysisArray.run_id == run_id,
                RunAnalysisArray.kind == kind,
                RunAnalysisArray.epoch == epoch,
            )
        )
        for name, array in arrays.items():
            dtype, shape, data = encode(array)
            s.add(
                RunAnalysisArray(
                    run_id=run_id,
                    kind=kind,
                    epoch=epoch,
                    name=name,
                    dtype=dtype,
                    shape=shape,
                    data=data,
                )
            )


def fail(db: Database, run_id: int, kind: str, epoch: int, error: str) -> None:
    with db.session() as s:
        s.execute(
            update(RunAnalysis)
            .where(*_key(run_id, kind, epoch))
            .values(state="failed", error=error[:4000], finished_at=utcnow(), progress=None)
        )


def get(db: Database, run_id: int, kind: str, epoch: int) -> AnalysisInfo | None:
    with db.session() as s:
        row = s.get(RunAnalysis, (run_id, kind, epoch))
        return None if row is None else _info(row)


def list_analyses(
    db: Database, run_id: int, kind: str | None = None, with_summary: bool = True
) -> list[AnalysisInfo]:
    """A run's analyses in (kind, epoch) order; without their summaries (a page polling the
    states) unless `with_summary`."""
    columns = [
        RunAnalysis.run_id,
        RunAnalysis.kind,
        RunAnalysis.epoch,
        RunAnalysis.state,
        RunAnalysis.summary if with_summary else null(),
        RunAnalysis.error,
        RunAnalysis.requested_at,
        RunAnalysis.started_at,
        RunAnalysis.finished_at,
        RunAnalysis.progress,
    ]
    query = select(*columns).where(RunAnalysis.run_id == run_id)
    if kind is not None:
        query = query.where(RunAnalysis.kind == kind)
    with db.session() as s:
        return [
            AnalysisInfo(*row)
            for row in s.execute(query.order_by(RunAnalysis.kind, RunAnalysis.epoch))
        ]


def read_arrays(
    db: Database, run_id: int, kind: str, epoch: int, prefix: str = ""
) -> dict[str, np.ndarray]:
    """The stored arrays of one analysis whose names start with `prefix`."""
    query = select(
        RunAnalysisArray.name, RunAnalysisArray.dtype, RunAnalysisArray.shape, RunAnalysisArray.data
    ).where(
        RunAnalysisArray.run_id == run_id,
        RunAnalysisArray.kind == kind,
        RunAnalysisArray.epoch == epoch,
    )
    if prefix:
        query = query.where(RunAnalysisArray.name.startswith(prefix, autoescape=True))
    with db.session() as s:
        return {r.name: decode(r.dtype, r.shape, r.data) for r in s.execute(query)}


def clear(db: Database, run_id: int) -> None:
    """Forget a run's analyses (its records are being replaced)."""
    with db.session() as s:
        for table in (RunAnalysisArray, RunAnalysis):
            s.execute(delete(table).where(table.run_id == run_id))


def queue_of(db: Database, run_id: int) -> str:
    """The broker queue of the run's job ('cpu' for runs trained without the queue)."""
    with db.session() as s:
        return s.scalar(select(Job.queue).where(Job.run_id == run_id)) or "cpu"
