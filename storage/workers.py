"""Worker processes as their own heartbeats report them (the `workers` table), for the admin page.

Each worker process upserts its row (name, host, pid, queues, device) when it starts and every
NETLENS_HEARTBEAT_SECONDS after, and marks it stopped when it exits cleanly. A worker is
*online* while its last heartbeat is younger than ONLINE_BEATS heartbeat periods; a worker
that was killed simply stops beating and shows *offline* (lost) after that; one that exited
cleanly shows *stopped*. Its current job is the running job whose `worker_id` is its name.
Everything is in the database, so the page survives restarts of the web app and the broker.
Times are the database server's on PostgreSQL (storage/db.py lease_clock): workers on other
machines with clocks of their own still show online or offline correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from netlens.storage.db import Database, lease_clock
from netlens.storage.models import Job, Run, WorkerRow

ONLINE_BEATS = 3  # heartbeat periods without a beat before a worker counts as offline
MIN_ONLINE_WINDOW_S = 1.0
MAX_LISTED = 50
FORGET_AFTER = timedelta(days=7)  # rows of workers silent this long are deleted at start-up
_LIMITS = {"name": 200, "hostname": 200, "queues": 100, "device": 100}


@dataclass(frozen=True)
class WorkerIdentity:
    """What a worker process reports about itself."""

    name: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    device: str = ""

    def values(self) -> dict:
        out = {
            "name": self.name,
            "hostname": self.hostname,
            "pid": self.pid,
            "queues": ",".join(self.queues),
            "device": self.device,
        }
        for key, limit in _LIMITS.items():
            out[key] = out[key][:limit]
        return out


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str
    pid: int
    queues: list[str]
    device: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    state: str  # "online" | "offline" (no heartbeat: killed or hung) | "stopped" (clean exit)
    seconds_since_heartbeat: float
    current_run_id: int | None = None
    current_run_name: str | None = None
    current_attempt: int | None = None

    @property
    def online(self) -> bool:
        return self.state == "online"


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (stored as UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def online_window_s(heartbeat_s: float) -> float:
    return max(MIN_ONLINE_WINDOW_S, ONLINE_BEATS * heartbeat_s)


def _upsert(s, values: dict, update_keys: list[str]) -> None:
    """INSERT ... ON CONFLICT (name) DO UPDATE, on SQLite and PostgreSQL."""
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(WorkerRow).values(**values)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=[WorkerRow.name],
                set_={key: stmt.excluded[key] for key in update_keys},
            )
        )
        return
    row = s.get(WorkerRow, values["name"], with_for_update=True)  # another database
    if row is None:
        s.add(WorkerRow(**values))
    else:
        for key in update_keys:
            setattr(row, key, values[key])


def register(db: Database, me: WorkerIdentity, now: datetime | None = None) -> None:
    """A worker starting (again, under the same name): online from now."""
    with db.session() as s:
        now = now or lease_clock(s)
        values = me.values() | {"started_at": now, "heartbeat_at": now, "stopped_at": None}
        _upsert(s, values, [k for k in values if k != "name"])


def heartbeat(db: Database, me: WorkerIdentity, now: datetime | None = None) -> None:
    """Renew the worker's row (and its device, once known); recreate it if it was deleted.
    A row marked stopped stays stopped (a late beat of an exiting process)."""
    with db.session() as s:
        now = now or lease_clock(s)
        values = me.values() | {"started_at": now, "heartbeat_at": now, "stopped_at": None}
        _upsert(s, values, ["hostname", "pid", "queues", "device", "heartbeat_at"])


def mark_stopped(db: Database, name: str, now: datetime | None = None) -> None:
    with db.session() as s:
        now = now or lease_clock(s)
        s.execute(
            update(WorkerRow).where(WorkerRow.name == name).values(stopped_at=now, heartbeat_at=now)
        )


def forget_silent(
    db: Database, older_than: timedelta = FORGET_AFTER, now: datetime | None = None
) -> int:
    """Delete the rows of workers not heard from for `older_than`; returns how many."""
    with db.session() as s:
        cutoff = (now or lease_clock(s)) - older_than
        return s.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < cutoff)).rowcount


def list_workers(
    db: Database, heartbeat_s: float, now: datetime | None = None, limit: int = MAX_LISTED
) -> list[WorkerInfo]:
    """The most recently heard-from workers (online ones first), each with its current job."""
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit: {limit} is out of range: must be 1 to 1000")
    window = online_window_s(heartbeat_s)
    with db.session() as s:
        now = now or lease_clock(s)  # the clock every worker's beats were stamped with
        rows = s.scalars(
            select(WorkerRow).order_by(WorkerRow.heartbeat_at.desc(), WorkerRow.name).limit(limit)
        ).all()
        names = [r.name for r in rows]
        current = {}
        if names:
            for run_id, attempt, worker_id, name in s.execute(
                select(Job.run_id, Job.attempt, Job.worker_id, Run.name)
                .join(Run, Run.id == Job.run_id)
                .where(Job.state == "running", Job.worker_id.in_(names))
                .order_by(Job.claimed_at)
            ):
                current[worker_id] = (run_id, attempt, name)
    out = []
    for r in rows:
        beat = aware(r.heartbeat_at)
        age = max(0.0, (now - beat).total_seconds())
        state = (
            "stopped" if r.stopped_at is not None else ("online" if age <= window else "offline")
        )
        run_id, attempt, run_name = current.get(r.name, (None, None, None))
        out.append(
            WorkerInfo(
                name=r.name,
                hostname=r.hostname,
                pid=r.pid,
                queues=[q for q in r.queues.split(",") if q],
                device=r.device,
                started_at=aware(r.started_at),
                heartbeat_at=beat,
                stopped_at=aware(r.stopped_at),
                state=state,
                seconds_since_heartbeat=age,
                current_run_id=run_id,
                current_run_name=run_name,
                current_attempt=attempt,
            )
        )
    out.sort(key=lambda w: (w.state != "online", w.seconds_since_heartbeat))
    return out
