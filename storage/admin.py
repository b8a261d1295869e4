"""What the admin page reads: jobs filtered, sorted and paged in SQL, counts per state and
queue, one job's details, and storage per user and per run. Plain dataclasses out.

Every figure comes from the jobs, runs, users and uploads tables, so the page shows the same
after a restart of the web app, the workers or the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from netlens.storage.db import Database
from netlens.storage.models import JOB_STATES, Job, Run, Upload, User, utcnow
from netlens.storage.runs import RunNotFound
from netlens.storage.workers import aware

QUEUES = ("cpu", "gpu")
MAX_PAGE = 1000
MAX_LARGEST = 200
ERROR_PREVIEW = 300  # characters of the error shown in a grid row


class AdminQueryError(ValueError):
    """A bad filter, sort or page; the message names the field and the limit."""


@dataclass(frozen=True)
class JobRow:
    """One row of the jobs grid (no traceback: only whether there is one)."""

    run_id: int
    name: str
    owner_id: int | None
    owner: str | None
    state: str
    queue: str
    attempt: int
    max_attempts: int
    worker_id: str | None
    cancel_requested: bool
    progress_epoch: int
    progress_total: int
    enqueued_at: datetime
    claimed_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    runtime_s: float | None  # of the current attempt: claim -> finish (or now)
    error: str | None  # its first line, at most ERROR_PREVIEW characters
    has_traceback: bool


@dataclass(frozen=True)
class JobDetail:
    row: JobRow
    error: str | None  # in full
    traceback: str | None
    time_limit_s: int | None
    from_scratch: bool
    last_metrics: dict[str, float | None]
    run_status: str
    epochs_recorded: int
    recorded_bytes: int


@dataclass(frozen=True)
class UserStorage:
    owner_id: int | None  # None: runs without an owner (single-user mode, before accounts)
    owner: str | None
    runs: int
    recorded_bytes: int
    uploads: int
    upload_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.recorded_bytes + self.upload_bytes


@dataclass(frozen=True)
class RunStorage:
    run_id: int
    name: str
    owner_id: int | None
    owner: str | None
    status: str
    epochs_recorded: int
    recorded_bytes: int
    created_at: datetime


def runtime_s(
    state: str, claimed_at: datetime | None, finished_at: datetime | None, now: datetime
) -> float | None:
    """Seconds the current attempt has run (claim -> finish, or -> now while running);
    None for a queued job or one that never started."""
    claimed_at, finished_at = aware(claimed_at), aware(finished_at)
    if state == "queued" or claimed_at is None:
        return None
    end = finished_at or now
    return max(0.0, (end - claimed_at).total_seconds()) if end >= claimed_at else None


def _first_line(text: str | None) -> str | None:
    if not text:
        return text
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= ERROR_PREVIEW else line[: ERROR_PREVIEW - 1] + "…"


# ---- counts -------------------------------------------------------------------------------


def state_counts(db: Database) -> dict[str, int]:
    """Jobs per state, every state present (0 when none)."""
    with db.session() as s:
        found = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    return {state: found.get(state, 0) for state in JOB_STATES}


def queued_per_queue(db: Database) -> dict[str, int]:
    """Queued jobs per queue according to the database (the broker's own count may differ
    for a moment: see netlens.dispatch.reaper.reap_once)."""
    with db.session() as s:
        found = dict(
            s.execute(
                select(Job.queue, func.count()).where(Job.state == "queued").group_by(Job.queue)
            ).all()
        )
    return {queue: found.get(queue, 0) for queue in sorted(set(QUEUES) | set(found))}


# ---- the jobs grid ------------------------------------------------------------------------

SORTABLE = {
    "run_id": Job.run_id,
    "name": Run.name,
    "owner": User.name,
    "state": Job.state,
    "queue": Job.queue,
    "attempt": Job.attempt,
    "worker": Job.worker_id,
    "enqueued_at": Job.enqueued_at,
    "claimed_at": Job.claimed_at,
    "finished_at": Job.finished_at,
}
_ROW_COLUMNS = (
    Job.run_id,
    Run.name,
    Run.owner_id,
    User.name.label("owner"),
    Job.state,
    Job.queue,
    Job.attempt,
    Job.max_attempts,
    Job.worker_id,
    Job.cancel_requested,
    Job.progress_epoch,
    Job.progress_total,
    Job.enqueued_at,
    Job.claimed_at,
    Job.heartbeat_at,
    Job.finished_at,
    Job.error,
    Job.traceback.is_not(None).label("has_traceback"),
)


def _utc(moment: datetime | None, field: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise AdminQueryError(f"{field}: {moment!r} is not a date and time")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_owner(db: Database, owner: int | str | None) -> int | None:
    """A user id from an id or a user name (AdminQueryError when there is no such user)."""
    if owner is None or owner == "":
        return None
    with db.session() as s:
        if isinstance(owner, int) and not isinstance(owner, bool):
            found = s.scalar(select(User.id).where(User.id == owner))
        elif isinstance(owner, str):
            found = s.scalar(select(User.id).where(User.name == owner))
        else:
            raise AdminQueryError(f"user: {owner!r} is neither a user id nor a user name")
    if found is None:
        raise AdminQueryError(
            f"user: no user {'with id ' if isinstance(owner, int) else 'named '}{owner!r}"
        )
    return found


def _conditions(db: Database, states, owner, queue, since, until) -> tuple[list, bool]:
    """WHERE clauses of the filters, and whether they need the runs table."""
    where, needs_run = [], False
    if states:
        states = [states] if isinstance(states, str) else list(states)
        bad = [s for s in states if s not in JOB_STATES]
        if bad:
            raise AdminQueryError(f"state: {bad[0]!r} is not one of {', '.join(JOB_STATES)}")
        where.append(Job.state.in_(states) if len(states) > 1 else Job.state == states[0])
    owner_id = resolve_owner(db, owner)
    if owner_id is not None:
        where.append(Run.owner_id == owner_id)
        needs_run = True
    if queue:
        if queue not in QUEUES:
            raise AdminQueryError(f"queue: {queue!r} is not one of {', '.join(QUEUES)}")
        where.append(Job.queue == queue)
    since, until = _utc(since, "since"), _utc(until, "until")
    if since and until and until < since:
        raise AdminQueryError(
            f"until: {until:%Y-%m-%d %H:%M} is before since ({since:%Y-%m-%d %H:%M})"
        )
    if since:
        where.append(Job.enqueued_at >= since)
    if until:
        where.append(Job.enqueued_at < until)
    return where, needs_run


def query_jobs(
    db: Database,
    *,
    states: list[str] | str | None = None,
    owner: int | str | None = None,
    queue: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: list[tuple[str, str]] | None = None,
    offset: int = 0,
    limit: int = 100,
    now: datetime | None = None,
) -> tuple[list[JobRow], int]:
    """One page of jobs and how many match: one SELECT for the page, one COUNT.

    `states`: any of JOB_STATES; `owner`: a user id or name; `queue`: cpu or gpu;
    `since` / `until`: last (re)enqueued in [since, until) (UTC); `sort`: [(column, "asc" |
    "desc")] over SORTABLE, default newest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise AdminQueryError(f"limit: {limit} is out of range: must be 1 to {MAX_PAGE}")
    if offset < 0:
        raise AdminQueryError(f"offset: {offset} must be 0 or more")
    where, needs_run = _conditions(db, states, owner, queue, since, until)
    order = []
    for column, direction in sort or [("enqueued_at", "desc")]:
        if column not in SORTABLE:
            raise AdminQueryError(
                f"sort: cannot sort on {column!r}; choose from {', '.join(SORTABLE)}"
            )
        if direction not in ("asc", "desc"):
            raise AdminQueryError(f"sort: direction {direction!r} is not asc or desc")
        expr = SORTABLE[column]
        order.append(expr.desc() if direction == "desc" else expr.asc())
    order.append(Job.run_id.desc())
    page = (
        select(*_ROW_COLUMNS)
        .select_from(Job)
        .join(Run, Run.id == Job.run_id)
        .outerjoin(User, User.id == Run.owner_id)
        .where(*where)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    count = select(func.count()).select_from(Job)
    if needs_run:
        count = count.join(Run, Run.id == Job.run_id)
    count = count.where(*where)
    now = now or utcnow()
    with db.session() as s:
        total = s.scalar(count) or 0
        rows = s.execute(page).all()
    return [_row(r, now) for r in rows], total


def _row(r: Any, now: datetime) -> JobRow:
    return JobRow(
        run_id=r.run_id,
        name=r.name,
        owner_id=r.owner_id,
        owner=r.owner,
        state=r.state,
        queue=r.queue,
        attempt=r.attempt,
        max_attempts=r.max_attempts,
        worker_id=r.worker_id,
        cancel_requested=bool(r.cancel_requested),
        progress_epoch=r.progress_epoch,
        progress_total=r.progress_total,
        enqueued_at=aware(r.enqueued_at),
        claimed_at=aware(r.claimed_at),
        heartbeat_at=aware(r.heartbeat_at),
        finished_at=aware(r.finished_at),
        runtime_s=runtime_s(r.state, r.claimed_at, r.finished_at, now),
        error=_first_line(r.error),
        has_traceback=bool(r.has_traceback),
    )


def job_detail(db: Database, run_id: int, now: datetime | None = None) -> JobDetail:
    """Everything about one job, its traceback included (RunNotFound when there is none)."""
    query = (
        select(
            *_ROW_COLUMNS,
            Job.traceback,
            Job.error.label("full_error"),
            Job.time_limit_s,
            Job.from_scratch,
            Job.last_metrics,
            Run.status.label("run_status"),
            Run.epochs_recorded,
            Run.recorded_bytes,
        )
        .select_from(Job)
        .join(Run, Run.id == Job.run_id)
        .outerjoin(User, User.id == Run.owner_id)
        .where(Job.run_id == run_id)
    )
    with db.session() as s:
        r = s.execute(query).first()
    if r is None:
        raise RunNotFound(run_id)
    return JobDetail(
        row=_row(r, now or utcnow()),
        error=r.full_error,
        traceback=r.traceback,
        time_limit_s=r.time_limit_s,
        from_scratch=bool(r.from_scratch),
        last_metrics=r.last_metrics or {},
        run_status=r.run_status,
        epochs_recorded=r.epochs_recorded,
        recorded_bytes=r.recorded_bytes,
    )


# ---- storage ------------------------------------------------------------------------------


def storage_by_user(db: Database) -> list[UserStorage]:
    """Recorded bytes of every owner's runs, and their uploads, largest first."""
    with db.session() as s:
        names = dict(s.execute(select(User.id, User.name)).all())
        run_sums = {
            owner: (n, int(total or 0))
            for owner, n, total in s.execute(
                select(Run.owner_id, func.count(), func.sum(Run.recorded_bytes)).group_by(
                    Run.owner_id
                )
            ).all()
        }
        upload_sums = {
            owner: (n, int(total or 0))
            for owner, n, total in s.execute(
                select(Upload.owner_id, func.count(), func.sum(Upload.size)).group_by(
                    Upload.owner_id
                )
            ).all()
        }
    out = []
    for owner in set(run_sums) | set(upload_sums):
        runs, recorded = run_sums.get(owner, (0, 0))
        uploads, uploaded = upload_sums.get(owner, (0, 0))
        out.append(UserStorage(owner, names.get(owner), runs, recorded, uploads, uploaded))
    out.sort(key=lambda u: (-u.total_bytes, u.owner or ""))
    return out


def largest_runs(db: Database, limit: int = 20) -> list[RunStorage]:
    """The runs that take the most room (recorded bytes), largest first."""
    if not 1 <= limit <= MAX_LARGEST:
        raise AdminQueryError(f"limit: {limit} is out of range: must be 1 to {MAX_LARGEST}")
    query = (
        select(
            Run.id,
            Run.name,
            Run.owner_id,
            User.name.label("owner"),
            Run.status,
            Run.epochs_recorded,
            Run.recorded_bytes,
            Run.created_at,
        )
        .outerjoin(User, User.id == Run.owner_id)
        .order_by(Run.recorded_bytes.desc(), Run.id.desc())
        .limit(limit)
    )
    with db.session() as s:
        rows = s.execute(query).all()
    return [
        RunStorage(
            r.id,
            r.name,
            r.owner_id,
            r.owner,
            r.status,
            r.epochs_recorded,
            r.recorded_bytes,
            aware(r.created_at),
        )
        for r in rows
    ]
