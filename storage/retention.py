"""Retention: thin old runs to some epochs' tensors, keeping every metrics row (docs/admin.md).

A policy (kept in `server_settings` under "retention_policy", set on the admin page or with
`netlens storage policy`) says how old a finished run must be before it is thinned
(`keep_days`) and which epochs keep their tensors then: every `every`-th recorded epoch, a
log-spaced set of `log_points` epochs (dense early, where training changes fastest), the
first (the initial state: distance-from-init views need it), the best (lowest validation
loss, else lowest training loss), the last, and the checkpoint's epoch. Thinning deletes the
other epochs' slices of every tensor (parameters, outputs, signatures, grid, lowres copies)
and their analyses (kinds epoch, tsne, umap; the timeline analysis is a summary over the run
and stays), never a `run_epochs` row, and marks the run (`runs.thinned_at`, `runs.thinning`).

Runs that are queued or running (the run or its job) are skipped: the run and job rows are
locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer at a time) and checked in
the transaction that deletes, so a retry cannot start in between. The checkpoint is never
touched, so a failed or cancelled run still resumes from it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from netlens.storage.arrays import decode_stored, encode, pack
from netlens.storage.db import Database
from netlens.storage.models import (
    FINISHED_STATUSES,
    Job,
    Run,
    RunAnalysis,
    RunAnalysisArray,
    RunCheckpoint,
    RunEpoch,
    RunTensor,
    ServerSetting,
    utcnow,
)
from netlens.storage.runs import RunNotFound

POLICY_SETTING = "retention_policy"
AUTO_ROUND_SETTING = "retention_auto_round"  # when the workers last started an automatic round
KEPT_ANALYSIS_KINDS = ("timeline",)  # summaries over the whole run: never thinned


class RetentionError(ValueError):
    """Bad policy or age input; the message names the field and its limit."""


# field -> (lowest, highest, what it means)
LIMITS: dict[str, tuple[int, int, str]] = {
    "keep_days": (0, 36_500, "days every epoch is kept after a run ends"),
    "every": (1, 1_000_000, "keep every k-th recorded epoch"),
    "log_points": (0, 10_000, "log-spaced epochs kept besides"),
    "auto_hours": (0, 8_760, "hours between the workers' automatic rounds; 0: by hand only"),
}


@dataclass(frozen=True)
class RetentionPolicy:
    keep_days: int = 30
    every: int = 10
    log_points: int = 20
    auto_hours: int = 0  # the workers thin the due runs every so many hours; 0: never

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def keeps_like(self, other: Mapping[str, Any]) -> bool:
        """Whether a run thinned by `other` (a stored policy) keeps what this one keeps:
        the same every and log_points (keep_days and auto_hours choose runs, not epochs)."""
        return other.get("every") == self.every and other.get("log_points") == self.log_points

    def describe(self) -> str:
        when = (
            f"thinned automatically every {self.auto_hours} h"
            if self.auto_hours
            else "thinned by hand only"
        )
        return (
            f"after {self.keep_days} days: every {self.every}th epoch, {self.log_points} "
            f"log-spaced, the first, best and last; {when}"
        )


def check_field(name: str, value: Any) -> int:
    """A whole number within the field's limits, or RetentionError naming both."""
    low, high, meaning = LIMITS[name]
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise RetentionError(
            f"{name}: must be a whole number from {low} to {high:,} ({meaning}); got {value!r}"
        )
    return number


def parse_policy(values: Mapping[str, Any], base: RetentionPolicy | None = None) -> RetentionPolicy:
    """A policy from untrusted values (a form, the CLI, JSON): unknown fields are refused,
    missing ones come from `base` (default: the built-in policy)."""
    if not isinstance(values, Mapping):
        raise RetentionError(f"policy: must be an object with {', '.join(LIMITS)}")
    unknown = sorted(set(values) - set(LIMITS))
    if unknown:
        raise RetentionError(f"{unknown[0]}: not a policy field (fields: {', '.join(LIMITS)})")
    merged = (base or RetentionPolicy()).to_dict()
    merged.update({k: check_field(k, v) for k, v in values.items() if v is not None})
    return RetentionPolicy(**merged)


AGE_UNITS = {"d": 1.0, "h": 1 / 24, "w": 7.0}
MAX_AGE_DAYS = 36_500


def parse_age(value: str, name: str = "older-than") -> timedelta:
    """'30d', '12h', '2w' (or a bare number of days) -> timedelta; RetentionError naming
    `name` and the limit otherwise."""
    match = re.fullmatch(r"\s*(\d{1,6}(?:\.\d+)?)\s*([dhw]?)\s*", str(value))
    days = None if match is None else float(match[1]) * AGE_UNITS[match[2] or "d"]
    if days is None or not 0 <= days <= MAX_AGE_DAYS:
        raise RetentionError(
            f"{name}: {value!r} is not an age from 0 to {MAX_AGE_DAYS} days, such as 30d, 12h or 2w"
        )
    return timedelta(days=days)


def get_policy(db: Database) -> RetentionPolicy:
    """The team's saved policy (the built-in one until an admin saves one)."""
    with db.session() as s:
        row = s.get(ServerSetting, POLICY_SETTING)
        stored = dict(row.value) if row is not None and isinstance(row.value, dict) else {}
    try:
        return parse_policy(stored)
    except RetentionError:  # a hand-edited row: the defaults rather than a broken page
        return RetentionPolicy()


def set_policy(db: Database, policy: RetentionPolicy) -> RetentionPolicy:
    with db.session() as s:
        row = s.get(ServerSetting, POLICY_SETTING)
        if row is None:
            s.add(ServerSetting(name=POLICY_SETTING, value=policy.to_dict(), updated_at=utcnow()))
        else:
            row.value, row.updated_at = policy.to_dict(), utcnow()
    return policy


# ---- which epochs stay (pure) -----------------------------------------------------------


def best_epoch(epochs: Sequence[int], metrics: Sequence[Mapping[str, Any]]) -> int | None:
    """The epoch of the lowest validation loss, else of the lowest training loss (runs
    without a validation split); None when neither was ever finite. Ties: the earliest."""
    for key in ("val_loss", "train_loss"):
        best, best_value = None, math.inf
        for epoch, m in zip(epochs, metrics, strict=True):
            value = m.get(key) if m else None
            if isinstance(value, int | float) and math.isfinite(value) and value < best_value:
                best, best_value = int(epoch), float(value)
        if best is not None:
            return best
    return None


def select_epochs(
    epochs: Sequence[int],
    policy: RetentionPolicy,
    best: int | None = None,
    also: Sequence[int] = (),
) -> list[int]:
    """The recorded epochs (ascending) that keep their tensors: every policy.every-th by
    position (the first included), policy.log_points positions log-spaced from the first to
    the last, the first, the last, `best` and `also` (those that were recorded)."""
    n = len(epochs)
    if n == 0:
        return []
    positions = set(range(0, n, policy.every)) | {0, n - 1}
    if policy.log_points > 0 and n > 1:
        spaced = np.geomspace(1, n - 1, num=policy.log_points) if n > 2 else np.array([1.0])
        positions |= {int(round(p)) for p in spaced}
    kept = {int(epochs[p]) for p in positions}
    recorded = {int(e) for e in epochs}
    kept |= {int(e) for e in (best, *also) if e is not None and int(e) in recorded}
    return sorted(kept)


def nearest_at_or_before(available: np.ndarray, wanted: Sequence[int]) -> set[int]:
    """For a tensor recorded at `available` (ascending; the grid is sparser than the run),
    the recorded epoch each page would show at each wanted epoch: the latest <= it."""
    if not len(available):
        return set()
    idx = np.searchsorted(available, np.asarray(wanted, np.int64), side="right") - 1
    return {int(available[i]) for i in idx if i >= 0}


# ---- plans and thinning ------------------------------------------------------------------


@dataclass
class ThinResult:
    """What thinning a run did (or, dry, would do)."""

    run_id: int
    name: str = ""
    status: str = ""
    skipped: str | None = None  # why nothing was done
    epochs_before: int = 0  # epochs that had tensors
    kept: list[int] = field(default_factory=list)
    dropped: int = 0
    rows_deleted: int = 0
    rows_rewritten: int = 0
    bytes_freed: int = 0  # stored bytes of tensors and analyses (dry run: estimated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_main_tensor(name: str) -> bool:
    return not (name.startswith("lowres/") or name.startswith("grid/"))


def kept_epochs(db: Database, run_id: int) -> list[int]:
    """The epochs at which the run still has its per-epoch tensors (all of them for a run
    never thinned), read from one full-resolution tensor's epoch lists (no data read)."""
    with db.session() as s:
        names = s.scalars(select(RunTensor.name).where(RunTensor.run_id == run_id).distinct()).all()
        main = sorted(n for n in names if _is_main_tensor(n))
        if not main:
            return []
        parts = s.scalars(
            select(RunTensor.epochs)
            .where(RunTensor.run_id == run_id, RunTensor.name == main[0])
            .order_by(RunTensor.epoch_start)
        ).all()
    return sorted({int(e) for p in parts for e in np.frombuffer(p, "<i4")})


def _busy_reason(run: Run, job: Job | None) -> str | None:
    if run.status not in FINISHED_STATUSES:
        return f"run is {run.status}"
    if job is not None and job.state not in FINISHED_STATUSES:
        return f"its job is {job.state}"
    return None


def thin_run(
    db: Database, run_id: int, policy: RetentionPolicy, dry_run: bool = False
) -> ThinResult:
    """Thin one run by `policy` in one transaction (the epochs to keep do not depend on its
    age: --older-than chooses runs). Queued or running runs are skipped, their rows locked
    and checked in the same transaction. Thinning twice by one policy drops nothing more."""
    with db.session() as s:
        if db.is_sqlite:
            # SQLite ignores FOR UPDATE and starts a write transaction only at the first
            # write: a no-op UPDATE first takes the database's write lock, so the states read
            # below cannot change (a retry commit in between) before the deletes commit.
            s.execute(update(Run).where(Run.id == run_id).values(thinned_at=Run.thinned_at))
        # the job row first, as jobs.retry locks it: a retry waits for this transaction
        job = s.get(Job, run_id, with_for_update=True)
        run = s.get(Run, run_id, with_for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        result = ThinResult(run_id, run.name or "", run.status)
        busy = _busy_reason(run, job)
        if busy is not None:
            result.skipped = f"{busy}: never thinned while it may train"
            return result
        epoch_rows = s.execute(
            select(RunEpoch.epoch, RunEpoch.metrics)
            .where(RunEpoch.run_id == run_id)
            .order_by(RunEpoch.epoch)
        ).all()
        epochs = [r.epoch for r in epoch_rows]
        checkpoint = s.scalar(select(RunCheckpoint.epoch).where(RunCheckpoint.run_id == run_id))
        best = best_epoch(epochs, [r.metrics or {} for r in epoch_rows])
        keep = select_epochs(epochs, policy, best, [] if checkpoint is None else [checkpoint])
        keep_set = set(keep)
        meta = s.execute(
            select(
                RunTensor.name,
                RunTensor.epoch_start,
                RunTensor.count,
                RunTensor.epochs,
                RunTensor.dtype,
                RunTensor.shape,
                func.length(RunTensor.data).label("stored"),
            )
            .where(RunTensor.run_id == run_id)
            .order_by(RunTensor.name, RunTensor.epoch_start)
        ).all()
        by_name: dict[str, list] = {}
        for row in meta:
            by_name.setdefault(row.name, []).append(row)
        had: set[int] = set()
        logical_freed = 0
        for name, rows in by_name.items():
            available = np.concatenate([np.frombuffer(r.epochs, "<i4") for r in rows]).astype(
                np.int64
            )
            if _is_main_tensor(name):
                had |= {int(e) for e in available}
            wanted = nearest_at_or_before(available, keep)
            for row in rows:
                row_epochs = np.frombuffer(row.epochs, "<i4").astype(np.int64)
                mask = np.array([int(e) in wanted for e in row_epochs], bool)
                if mask.all():
                    continue
                one = np.dtype(row.dtype).itemsize * int(
                    np.prod(json.loads(row.shape), dtype=np.int64)
                )
                logical_freed += one * int((~mask).sum())
                share = 1 - mask.sum() / len(mask)
                if not mask.any():
                    result.rows_deleted += 1
                    result.bytes_freed += int(row.stored)
                    if not dry_run:
                        _delete_row(s, run_id, name, row.epoch_start)
                    continue
                result.rows_rewritten += 1
                if dry_run:
                    result.bytes_freed += int(row.stored * share)
                    continue
                result.bytes_freed += int(row.stored) - _rewrite_row(
                    s, run_id, name, row, row_epochs, mask
                )
        result.epochs_before = len(had)
        result.kept = sorted(had & keep_set)
        result.dropped = len(had - keep_set)
        pairs = {
            (r.kind, r.epoch)
            for table in (RunAnalysis, RunAnalysisArray)
            for r in s.execute(
                select(table.kind, table.epoch)
                .where(table.run_id == run_id, table.kind.notin_(KEPT_ANALYSIS_KINDS))
                .distinct()
            )
            if r.epoch not in keep_set
        }
        for kind, epoch in sorted(pairs):
            where = (
                (RunAnalysisArray.run_id == run_id)
                & (RunAnalysisArray.kind == kind)
                & (RunAnalysisArray.epoch == epoch)
            )
            total = func.coalesce(func.sum(func.length(RunAnalysisArray.data)), 0)
            result.bytes_freed += int(s.scalar(select(total).where(where)) or 0)
            if not dry_run:
                s.execute(delete(RunAnalysisArray).where(where))
                s.execute(
                    delete(RunAnalysis).where(
                        RunAnalysis.run_id == run_id,
                        RunAnalysis.kind == kind,
                        RunAnalysis.epoch == epoch,
                    )
                )
        if dry_run:
            return result
        now = utcnow()
        previous = run.thinning or {}
        s.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                thinned_at=now,
                thinning={
                    "at": now.isoformat(),
                    "policy": policy.to_dict(),
                    "epochs_kept": len(result.kept),
                    "epochs_dropped": result.dropped + int(previous.get("epochs_dropped", 0)),
                    "bytes_freed": result.bytes_freed + int(previous.get("bytes_freed", 0)),
                    "best_epoch": best,
                },
                recorded_bytes=func.max(Run.recorded_bytes - logical_freed, 0)
                if db.is_sqlite
                else func.greatest(Run.recorded_bytes - logical_freed, 0),
            )
        )
    return result


def _delete_row(s, run_id: int, name: str, epoch_start: int) -> None:
    s.execute(
        delete(RunTensor).where(
            RunTensor.run_id == run_id,
            RunTensor.name == name,
            RunTensor.epoch_start == epoch_start,
        )
    )


def _rewrite_row(s, run_id: int, name: str, row, row_epochs: np.ndarray, mask: np.ndarray) -> int:
    """Replace a chunk row by its kept slices; returns the new row's stored bytes."""
    stored = s.execute(
        select(RunTensor.data, RunTensor.codec, RunTensor.epoch_stop).where(
            RunTensor.run_id == run_id,
            RunTensor.name == name,
            RunTensor.epoch_start == row.epoch_start,
        )
    ).one()
    values = decode_stored(
        stored.codec, row.dtype, [row.count, *json.loads(row.shape)], stored.data
    )[mask]
    kept = row_epochs[mask]
    dtype, _, raw = encode(np.ascontiguousarray(values))
    codec, data = pack(raw)
    _delete_row(s, run_id, name, row.epoch_start)
    s.execute(
        insert(RunTensor),
        [
            {
                "run_id": run_id,
                "name": name,
                "epoch_start": int(kept[0]),
                "epoch_stop": int(kept[-1]),
                "count": len(kept),
                "epochs": kept.astype("<i4").tobytes(),
                "dtype": dtype,
                "shape": row.shape,
                "data": data,
                "codec": codec,
            }
        ],
    )
    return len(data)


def candidates(db: Database, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Finished runs (run and job) that ended (or, never started, were created) before
    now - older_than, oldest first. thin_run checks each again under its row locks."""
    cutoff = (now or utcnow()) - older_than
    ended = func.coalesce(Run.finished_at, Run.created_at)
    with db.session() as s:
        return list(
            s.scalars(
                select(Run.id)
                .outerjoin(Job, Job.run_id == Run.id)
                .where(
                    Run.status.in_(FINISHED_STATUSES),
                    Job.state.is_(None) | Job.state.in_(FINISHED_STATUSES),
                    ended < cutoff,
                    Run.epochs_recorded > 0,
                )
                .order_by(ended, Run.id)
            )
        )


@dataclass
class ThinReport:
    results: list[ThinResult]
    dry_run: bool
    size_before: int | None = None
    size_after: int | None = None
    vacuum: str = ""

    @property
    def thinned(self) -> list[ThinResult]:
        return [r for r in self.results if r.skipped is None and (r.dropped or r.rows_deleted)]

    @property
    def bytes_freed(self) -> int:
        return sum(r.bytes_freed for r in self.results if r.skipped is None)

    @property
    def epochs_dropped(self) -> int:
        return sum(r.dropped for r in self.results if r.skipped is None)

    def summary(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        line = (
            f"{len(self.thinned)} run(s) {'to thin' if self.dry_run else 'thinned'}: {verb} "
            f"{self.epochs_dropped:,} epochs' tensors, "
            f"{'about ' if self.dry_run else ''}{human_bytes(self.bytes_freed)}"
        )
        skipped = [r for r in self.results if r.skipped]
        if skipped:
            line += f"; {len(skipped)} skipped (queued or running)"
        if self.size_before is not None and self.size_after is not None:
            line += f"; database {human_bytes(self.size_before)} -> {human_bytes(self.size_after)}"
        return line


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"


def thin_runs(
    db: Database,
    run_ids: Sequence[int],
    policy: RetentionPolicy,
    dry_run: bool = False,
    vacuum_after: bool = True,
) -> ThinReport:
    """Thin each run (skipping busy ones), then return the space to the file system."""
    report = ThinReport([], dry_run, size_before=database_size(db))
    for run_id in run_ids:
        report.results.append(thin_run(db, run_id, policy, dry_run))
    if not dry_run and vacuum_after and report.thinned:
        report.vacuum = vacuum(db)
    report.size_after = database_size(db) if not dry_run else None
    return report


def thin_older_than(
    db: Database,
    policy: RetentionPolicy,
    older_than: timedelta | None = None,
    dry_run: bool = False,
) -> ThinReport:
    """Thin every finished run older than `older_than` (default: the policy's keep_days)."""
    age = older_than if older_than is not None else timedelta(days=policy.keep_days)
    return thin_runs(db, candidates(db, age), policy, dry_run)


# ---- automatic rounds (the workers' reaper) -------------------------------------------------


def claim_auto_round(db: Database, hours: int, now: datetime | None = None) -> bool:
    """Whether this caller starts the automatic round that is due (none began in the last
    `hours`): one conditional UPDATE (or the first INSERT), so of several workers' reapers
    asking at once exactly one is told yes, on SQLite and PostgreSQL alike."""
    now = now or utcnow()
    with db.session() as s:
        claimed = s.execute(
            update(ServerSetting)
            .where(
                ServerSetting.name == AUTO_ROUND_SETTING,
                ServerSetting.updated_at <= now - timedelta(hours=hours),
            )
            .values(value={"started": now.isoformat()}, updated_at=now)
        ).rowcount
        if claimed:
            return True
        if s.get(ServerSetting, AUTO_ROUND_SETTING) is not None:
            return False
    try:
        with db.session() as s:
            s.add(
                ServerSetting(
                    name=AUTO_ROUND_SETTING, value={"started": now.isoformat()}, updated_at=now
                )
            )
        return True
    except IntegrityError:  # another reaper inserted it first: its round
        return False


def due_for(db: Database, policy: RetentionPolicy, now: datetime | None = None) -> list[int]:
    """The runs old enough for `policy` that it would still thin: those thinned, since they
    last ended, by a policy that keeps the same epochs are left out (thinning them again
    drops nothing; a run retried after thinning has new epochs and is thinned again)."""
    due = candidates(db, timedelta(days=policy.keep_days), now)
    with db.session() as s:
        done = {
            run_id
            for run_id, thinning in s.execute(
                select(Run.id, Run.thinning).where(
                    Run.thinned_at.is_not(None),
                    Run.finished_at.is_(None) | (Run.finished_at <= Run.thinned_at),
                )
            )
            if isinstance(thinning, dict)
            and isinstance(thinning.get("policy"), dict)
            and policy.keeps_like(thinning["policy"])
        }
    return [run_id for run_id in due if run_id not in done]


def auto_round(db: Database, now: datetime | None = None) -> ThinReport | None:
    """One automatic round of the saved policy, when it asks for them (auto_hours > 0) and
    this caller claims the round that is due: thin every due run (busy ones are skipped, as
    by hand), then give the space back. None when there was nothing to do here."""
    policy = get_policy(db)
    if not policy.auto_hours or not claim_auto_round(db, policy.auto_hours, now):
        return None
    return thin_runs(db, due_for(db, policy, now), policy)


# ---- giving the space back ----------------------------------------------------------------


def sqlite_path(db: Database) -> Path | None:
    if not db.is_sqlite:
        return None
    path = db.url.split("///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def database_size(db: Database) -> int | None:
    """The database's bytes on disk: the SQLite file and its WAL, or pg_database_size."""
    path = sqlite_path(db)
    if path is not None:
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    if db.is_sqlite:
        return None
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())


def vacuum(db: Database) -> str:
    """Return freed pages: SQLite VACUUM (rewrites the file; needs no writer for a moment and
    free disk about the database's size) then a WAL checkpoint that truncates the WAL;
    PostgreSQL plain VACUUM (ANALYZE) of the thinned tables (no exclusive lock: the space is
    reused by later writes, the file shrinks only at its end; see docs/admin.md)."""
    from sqlalchemy.exc import OperationalError

    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if db.is_sqlite:
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return "VACUUM done"
            for table in ("run_tensors", "run_analysis_arrays", "run_analyses", "runs"):
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
            return "VACUUM (ANALYZE) done"
    except OperationalError as exc:  # busy: the rows are gone; the space comes back later
        return f"VACUUM skipped ({str(exc.orig or exc).splitlines()[0]}); run thin again later"
