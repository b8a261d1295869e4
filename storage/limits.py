"""Per-user limits of a team server: names, effective values, usage, and the atomic checks.

A limit's value is the user's own override (`users.limits`), else the team's (an admin's
row in `server_settings`), else the default from Settings (NETLENS_* variables); 0 means no
limit. Admins, and work with no owner (the CLI on the server, single-user mode), are not
limited. A refusal is a LimitExceeded carrying the HTTP status (429: a quota is full, wait
or free something; 400: the request itself is too large) and a message naming the limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from netlens.storage.db import Database
from netlens.storage.models import Job, Run, ServerSetting, Upload, User, utcnow
from netlens.storage.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    label: str  # how messages and pages name it
    setting: str  # the Settings field holding its default
    unit: str  # "count" | "bytes" | "seconds" | "hours"
    per_user: bool = True  # False: team-wide only


LIMITS = {
    limit.name: limit
    for limit in (
        Limit("active_jobs", "queued and running jobs", "max_active_jobs_per_user", "count"),
        Limit("sweep_runs", "runs per sweep", "max_sweep_runs", "count"),
        Limit("uploads", "uploads", "max_uploads_per_user", "count"),
        Limit("upload_bytes", "upload storage", "max_upload_bytes_per_user", "bytes"),
        Limit("job_time_limit_seconds", "job time limit", "team_job_time_limit_seconds", "seconds"),
        Limit(
            "unused_upload_hours",
            "unused uploads kept for",
            "unused_upload_hours",
            "hours",
            per_user=False,
        ),
    )
}
ACTIVE = ("queued", "running")
UNITS = {"k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30}


class LimitExceeded(ValueError):
    """A request over a limit: `status` 429 (quota full) or 400 (request too large)."""

    def __init__(self, status: int, limit: str, value: int | float, message: str):
        super().__init__(message)
        self.status, self.limit, self.value, self.message = status, limit, value, message


class LimitError(ValueError):
    """A bad limit name or value (an admin's input); the message names it."""


# -- values ----------------------------------------------------------------------------------


def defaults(settings: Settings) -> dict[str, float]:
    return {name: getattr(settings, limit.setting) for name, limit in LIMITS.items()}


def _team(s: Session, settings: Settings) -> dict[str, float]:
    values = defaults(settings)
    for name, value in s.execute(
        select(ServerSetting.name, ServerSetting.value).where(ServerSetting.name.in_(list(LIMITS)))
    ):
        values[name] = value
    return values


def _effective(s: Session, settings: Settings, user: User | None) -> dict[str, float] | None:
    """None: not limited (no user, or an admin)."""
    if user is None or user.is_admin:
        return None
    values = _team(s, settings)
    for name, value in (user.limits or {}).items():
        if name in LIMITS and LIMITS[name].per_user:
            values[name] = value
    return values


def team_limits(db: Database, settings: Settings) -> dict[str, float]:
    with db.session() as s:
        return _team(s, settings)


def effective_limits(
    db: Database, settings: Settings, user_id: int | None
) -> dict[str, float] | None:
    """The limits that apply to `user_id`; None when nothing is limited (admin, no user)."""
    if user_id is None:
        return None
    with db.session() as s:
        return _effective(s, settings, s.get(User, user_id))


def user_overrides(db: Database, user_id: int) -> dict[str, float]:
    with db.session() as s:
        user = s.get(User, user_id)
        return dict(user.limits or {}) if user else {}


def all_overrides(db: Database) -> dict[str, dict[str, float]]:
    """Every user's own limits, by user name (admins' overrides are kept but do not apply)."""
    with db.session() as s:
        return {
            name: dict(values)
            for name, values in s.execute(
                select(User.name, User.limits).where(User.limits.is_not(None)).order_by(User.name)
            )
            if values
        }


def job_time_limit(db: Database, settings: Settings, owner_id: int | None) -> int | None:
    """NETLENS_JOB_TIME_LIMIT_SECONDS when set; else the owner's team limit (a job with
    no owner, or an admin's, has none)."""
    if settings.job_time_limit_seconds is not None:
        return int(settings.job_time_limit_seconds)
    values = effective_limits(db, settings, owner_id)
    seconds = int(values["job_time_limit_seconds"]) if values else 0
    return seconds or None


# -- usage -----------------------------------------------------------------------------------


def _active_jobs(s: Session, user_id: int) -> int:
    """Queued and running jobs, and running runs streamed from the Python API (no job: the
    client trains them, storage/client_runs.py), which take the server's time as a job does."""
    jobs = s.scalar(
        select(func.count())
        .select_from(Job)
        .join(Run, Run.id == Job.run_id)
        .where(Run.owner_id == user_id, Job.state.in_(ACTIVE))
    )
    streamed = s.scalar(
        select(func.count())
        .select_from(Run)
        .outerjoin(Job, Job.run_id == Run.id)
        .where(Run.owner_id == user_id, Run.status == "running", Job.run_id.is_(None))
    )
    return (jobs or 0) + (streamed or 0)


def _uploads(s: Session, user_id: int) -> tuple[int, int]:
    count, total = s.execute(
        select(func.count(), func.coalesce(func.sum(Upload.size), 0)).where(
            Upload.owner_id == user_id
        )
    ).one()
    return int(count), int(total)


def usage(db: Database, user_id: int) -> dict[str, int]:
    with db.session() as s:
        uploads, total = _uploads(s, user_id)
        return {"active_jobs": _active_jobs(s, user_id), "uploads": uploads, "upload_bytes": total}


# -- checks ----------------------------------------------------------------------------------


def _lock_user(s: Session, user_id: int) -> User | None:
    """Serialise this user's submissions until the transaction ends: a row lock on
    PostgreSQL; on SQLite a write, which takes the database's single write lock."""
    if s.get_bind().dialect.name == "sqlite":
        s.execute(update(User).where(User.id == user_id).values(limits=User.limits))
        return s.get(User, user_id, populate_existing=True)
    return s.get(User, user_id, with_for_update=True, populate_existing=True)


def check_active_jobs(s: Session, settings: Settings, user_id: int | None, adding: int) -> None:
    """Inside the transaction that inserts `adding` jobs for `user_id`: refuse (429) when
    they would take the user's queued and running jobs over the limit."""
    if user_id is None:
        return
    user = _lock_user(s, user_id)
    values = _effective(s, settings, user)
    limit = int(values["active_jobs"]) if values else 0
    if not limit:
        return
    have = _active_jobs(s, user_id)
    if have + adding > limit:
        adds = f", and this sweep adds {adding}" if adding > 1 else ""
        raise LimitExceeded(
            429,
            "active_jobs",
            limit,
            f"queued and running jobs: {user.name} has {have} of at most "
            f"{limit}{adds}; wait for one to finish or cancel one",
        )


def check_sweep_size(db: Database, settings: Settings, user_id: int | None, runs: int) -> None:
    """Refuse (400) a sweep of more runs than the user may ask for at once."""
    values = effective_limits(db, settings, user_id)
    limit = int(values["sweep_runs"]) if values else 0
    if limit and runs > limit:
        raise LimitExceeded(
            400,
            "sweep_runs",
            limit,
            f"runs per sweep: {runs} runs is above the limit of {limit} runs "
            "per sweep; make the grid smaller or split it",
        )


def check_upload(s: Session, settings: Settings, user_id: int | None, size: int) -> None:
    """Inside the transaction that records an upload of `size` bytes: refuse (429) when
    it would take the user over the number or total size of uploads."""
    if user_id is None:
        return
    user = _lock_user(s, user_id)
    values = _effective(s, settings, user)
    if not values:
        return
    count, total = _uploads(s, user_id)
    most, most_bytes = int(values["uploads"]), int(values["upload_bytes"])
    hours = values["unused_upload_hours"]
    later = f"; uploads no run uses are deleted after {hours:g} h" if hours else ""
    if most and count + 1 > most:
        raise LimitExceeded(
            429, "uploads", most, f"uploads: {user.name} has {count} of at most {most}{later}"
        )
    if most_bytes and total + size > most_bytes:
        raise LimitExceeded(
            429,
            "upload_bytes",
            most_bytes,
            f"upload storage: {user.name} has {format_bytes(total)} of at most "
            f"{format_bytes(most_bytes)}, and this file is "
            f"{format_bytes(size)}{later}",
        )


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


# -- an admin's changes ----------------------------------------------------------------------


def parse_value(name: str, text: Any) -> float | None:
    """An admin's value: a whole number >= 0 (0: no limit; bytes may end in KiB, MiB,
    GiB), or "default" (None: remove the override)."""
    if name not in LIMITS:
        raise LimitError(f"limit: {name!r} is not one of {', '.join(LIMITS)}")
    raw = str(text).strip().lower().replace(" ", "")
    if raw in ("default", ""):
        return None
    factor = 1
    for suffix, size in UNITS.items():
        if LIMITS[name].unit == "bytes" and raw.endswith(suffix) and raw[: -len(suffix)]:
            raw, factor = raw[: -len(suffix)], size
            break
    try:
        value = float(raw) * factor
    except ValueError:
        raise LimitError(
            f"{name}: {text!r} is not a number (0: no limit; 'default': the team's value)"
        ) from None
    if not 0 <= value < 2**53 or (LIMITS[name].unit != "hours" and not value.is_integer()):
        raise LimitError(f"{name}: {text!r} must be a whole number from 0 (no limit) up")
    return value if LIMITS[name].unit == "hours" else int(value)


def set_team_limit(db: Database, name: str, value: Any) -> float | None:
    """Set (or with "default", remove) the team-wide value of a limit."""
    parsed = parse_value(name, value)
    with db.session() as s:
        row = s.get(ServerSetting, name)
        if parsed is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(ServerSetting(name=name, value=parsed, updated_at=utcnow()))
        else:
            row.value, row.updated_at = parsed, utcnow()
    return parsed


def set_user_limit(db: Database, user_id: int, name: str, value: Any) -> float | None:
    """Set (or with "default", remove) one user's own value of a limit."""
    parsed = parse_value(name, value)
    if not LIMITS[name].per_user:
        raise LimitError(f"{name}: is a team-wide setting, not a per-user one")
    with db.session() as s:
        user = s.get(User, user_id, with_for_update=True)
        if user is None:
            raise LimitError(f"user: no user with id {user_id}")
        overrides = {k: v for k, v in (user.limits or {}).items() if k != name}
        if parsed is not None:
            overrides[name] = parsed
        user.limits = overrides or None
    return parsed


# -- unused uploads --------------------------------------------------------------------------


def delete_unused_uploads(db: Database, settings: Settings, now=None) -> list[int]:
    """Delete the uploads no run took (`used_at` unset) that are older than the team's
    `unused_upload_hours` (0: keep them): the row first, only while still unused, then the
    file. Returns the ids deleted."""
    from netlens.storage.uploads import uploads_dir

    hours = team_limits(db, settings)["unused_upload_hours"]
    if not hours:
        return []
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    with db.session() as s:
        old = s.execute(
            select(Upload.id, Upload.stored_name).where(
                Upload.used_at.is_(None), Upload.created_at < cutoff
            )
        ).all()
    deleted = []
    for upload_id, stored_name in old:
        with db.session() as s:
            gone = s.execute(
                delete(Upload).where(Upload.id == upload_id, Upload.used_at.is_(None))
            ).rowcount
        if gone:
            (uploads_dir(settings) / stored_name).unlink(missing_ok=True)
            deleted.append(upload_id)
    if deleted:
        log.info("deleted %d uploads no run used for %g h: ids %s", len(deleted), hours, deleted)
    return deleted
