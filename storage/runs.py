"""Runs: create, read, list and finish them. Returns plain RunInfo objects, never ORM rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, cast, delete, func, select, update

from netlens.storage import run_filter
from netlens.storage.arrays import array_row, encode
from netlens.storage.catalog import MODEL_KINDS
from netlens.storage.db import Database
from netlens.storage.models import (
    FINISHED_STATUSES,
    RUN_STATUSES,
    Job,
    Run,
    RunEpoch,
    utcnow,
)
from netlens.storage.sizing import dataset_shape
from netlens.storage.spec import ExperimentSpec, parse_spec


class RunNotFound(LookupError):
    def __init__(self, run_id: int):
        super().__init__(f"run {run_id} does not exist")
        self.run_id = run_id


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    status: str
    spec: dict[str, Any]
    dataset: str
    architecture: str
    optimizer: str
    epochs_total: int
    epochs_recorded: int
    last_epoch: int | None
    recorded_bytes: int
    final_metrics: dict[str, float | None]
    layers: list[dict[str, Any]]
    tags: list[str]
    notes: str
    error: str | None
    device: str | None
    data_sha256: str | None
    data_info: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    group_id: int | None = None  # the sweep (run group) it belongs to
    owner_id: int | None = None  # who submitted it (None: no accounts, single-user mode)
    # when the retention policy thinned it, and how (storage/retention.py); None: never
    thinned_at: datetime | None = None
    thinning: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def experiment_spec(self) -> ExperimentSpec:
        return parse_spec(self.spec)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        for key in ("created_at", "started_at", "finished_at", "thinned_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


# Columns holding JSON documents: runs_page(json_text=True) leaves them as stored, not decoded
JSON_COLUMNS = ("spec", "layers", "tags", "data_info")


def _info(row: Run, json_text: bool = False) -> RunInfo:
    """A RunInfo of an ORM row or a plain row with the same names. With `json_text` (a plain
    row whose JSON_COLUMNS were read as text), those fields are left empty and their stored
    text goes to extra["json"]."""
    if json_text:
        info = _info_of(row, {}, [], [], {})
        info.extra["json"] = {name: getattr(row, name) for name in JSON_COLUMNS}
        return info
    return _info_of(row, row.spec, row.layers or [], row.tags or [], row.data_info or {})


def _info_of(row, spec, layers, tags, data_info) -> RunInfo:
    return RunInfo(
        id=row.id,
        name=row.name,
        status=row.status,
        spec=spec,
        dataset=row.dataset,
        architecture=row.architecture,
        optimizer=row.optimizer,
        epochs_total=row.epochs_total,
        epochs_recorded=row.epochs_recorded,
        last_epoch=row.last_epoch,
        recorded_bytes=row.recorded_bytes,
        final_metrics={
            "train_loss": row.final_train_loss,
            "train_accuracy": row.final_train_accuracy,
            "val_loss": row.final_val_loss,
            "val_accuracy": row.final_val_accuracy,
        },
        layers=layers,
        tags=tags,
        notes=row.notes or "",
        error=row.error,
        device=row.device,
        data_sha256=row.data_sha256,
        data_info=data_info,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        group_id=row.group_id,
        owner_id=row.owner_id,
        thinned_at=row.thinned_at,
        thinning=row.thinning,
    )


def new_run_row(
    spec: ExperimentSpec,
    status: str = "queued",
    group_id: int | None = None,
    owner_id: int | None = None,
) -> Run:
    """A run's row before anything is recorded (added by the caller to its session)."""
    features, classes, _ = dataset_shape(spec)
    n_out = 1 if classes == 2 else classes
    return Run(
        name=spec.name,
        status=status,
        spec=spec.model_dump(mode="json"),
        spec_version=spec.version,
        dataset=spec.dataset.name,
        architecture=spec.model.describe(features, n_out),
        # a model the user's code trains (kind flax) was trained by an optimizer NetLens
        # never saw: the spec's default optimizer would be a false statement
        optimizer=spec.optimizer.name if MODEL_KINDS[spec.model.kind].trainable else "external",
        epochs_total=spec.training.epochs,
        tags=list(spec.tags),
        layers=[],
        data_info={},
        group_id=group_id,
        owner_id=owner_id,
    )


def create_run(
    db: Database, spec: ExperimentSpec, status: str = "queued", owner_id: int | None = None
) -> int:
    with db.session() as s:
        row = new_run_row(spec, status, owner_id=owner_id)
        s.add(row)
        s.flush()
        return row.id


def create_run_with_arrays(
    db: Database,
    spec: ExperimentSpec,
    arrays: dict[str, Any],
    status: str = "queued",
    owner_id: int | None = None,
) -> int:
    """A run and its fixed arrays (e.g. the `data/...` of an arrays dataset) in one
    transaction: either both exist or neither (the Python API's fit)."""
    encoded = {name: encode(array) for name, array in arrays.items()}  # before any SQL
    with db.session() as s:
        row = new_run_row(spec, status, owner_id=owner_id)
        s.add(row)
        s.flush()
        for name, (dtype, shape, data) in encoded.items():
            s.add(array_row(row.id, name, dtype, shape, data))
        return row.id


def create_started_run(
    db: Database,
    spec: ExperimentSpec,
    *,
    layers: list[dict[str, Any]],
    device: str,
    data_info: dict[str, Any],
    architecture: str,
    arrays: dict[str, Any],
    owner_id: int | None = None,
) -> int:
    """A running run with its summary and fixed arrays (probe inputs and labels), all in one
    transaction: nothing half-created if any part fails (nl.Recorder's runs)."""
    encoded = {name: encode(array) for name, array in arrays.items()}  # TypeError before SQL
    with db.session() as s:
        return add_started_run(
            s,
            spec,
            layers=layers,
            device=device,
            data_info=data_info,
            architecture=architecture,
            encoded=encoded,
            owner_id=owner_id,
        )


def add_started_run(
    s,
    spec: ExperimentSpec,
    *,
    layers: list[dict[str, Any]],
    device: str,
    data_info: dict[str, Any],
    architecture: str,
    encoded: dict[str, tuple[str, str, bytes]],
    owner_id: int | None,
) -> int:
    """In session `s`: a running run's row and its fixed arrays (already encoded)."""
    row = new_run_row(spec, "running", owner_id=owner_id)
    row.layers, row.device, row.data_info = layers, device, data_info
    row.data_sha256, row.architecture = data_info.get("sha256"), architecture
    row.started_at = utcnow()
    s.add(row)
    s.flush()
    for name, (dtype, shape, data) in encoded.items():
        s.add(array_row(row.id, name, dtype, shape, data))
    return row.id


def extend_run(db: Database, run_id: int, spec: ExperimentSpec) -> None:
    """A run trained on for more epochs (the Python API's fit on a fitted model): its spec
    becomes `spec` (the same but for training.epochs) and epochs_total follows. The epochs
    may not end before the last recorded one (a run interrupted early may end sooner than
    it was first meant to)."""
    with db.session() as s:
        row = s.get(Run, run_id, with_for_update=True)
        if row is None:
            raise RunNotFound(run_id)
        if spec.training.epochs <= (row.last_epoch or 0):
            raise ValueError(
                f"training.epochs: {spec.training.epochs} does not go past the run's last "
                f"recorded epoch {row.last_epoch}"
            )
        row.spec, row.epochs_total = spec.model_dump(mode="json"), spec.training.epochs


def set_epochs_total(db: Database, run_id: int, epochs: int) -> None:
    """A run of the user's own loop (nl.Recorder) learns its length only as it goes: set
    `epochs_total` and the spec's training.epochs to `epochs`."""
    with db.session() as s:
        row = s.get(Run, run_id, with_for_update=True)
        if row is None:
            raise RunNotFound(run_id)
        spec = dict(row.spec)
        spec["training"] = {**spec.get("training", {}), "epochs": epochs}
        row.spec, row.epochs_total = spec, epochs


def get_run(db: Database, run_id: int) -> RunInfo:
    with db.session() as s:
        row = s.get(Run, run_id)
        if row is None:
            raise RunNotFound(run_id)
        return _info(row)


def get_run_attempt(db: Database, run_id: int) -> tuple[RunInfo, int | None]:
    """The run and its job's current attempt (None: no job, a run of `netlens train`), in one
    query: what the REST API derives its ETags from (webapp/etags.py). Records only grow
    within an attempt, and every write of them moves the run's counters in the same
    transaction; a new attempt (retry, requeue) is the only thing that drops any."""
    with db.session() as s:
        found = s.execute(
            select(Run, Job.attempt).outerjoin(Job, Job.run_id == Run.id).where(Run.id == run_id)
        ).first()
        if found is None:
            raise RunNotFound(run_id)
        return _info(found[0]), found[1]


def create_runs(
    db: Database,
    specs: list[ExperimentSpec],
    status: str | list[str] = "queued",
    owner_id: int | None = None,
) -> list[int]:
    """Many runs in one transaction (benchmarks and imports; no jobs: see jobs.submit_many),
    their ids in the order of `specs`. `status` is one for all, or one per spec."""
    statuses = [status] * len(specs) if isinstance(status, str) else list(status)
    if len(statuses) != len(specs):
        raise ValueError(f"status: {len(statuses)} statuses for {len(specs)} specs")
    bad = sorted(set(statuses) - set(RUN_STATUSES))
    if bad:
        raise ValueError(f"status: {bad[0]!r} is not one of {', '.join(RUN_STATUSES)}")
    with db.session() as s:
        rows = [
            new_run_row(spec, st, owner_id=owner_id)
            for spec, st in zip(specs, statuses, strict=True)
        ]
        s.add_all(rows)
        s.flush()
        return [row.id for row in rows]


def list_runs(
    db: Database, limit: int = 50, offset: int = 0, status: str | None = None
) -> list[RunInfo]:
    query = select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Run.status == status)
    with db.session() as s:
        return [_info(r) for r in s.scalars(query)]


def count_runs(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Run)) or 0


def mark_started(
    db: Database,
    run_id: int,
    *,
    layers: list[dict[str, Any]],
    device: str,
    data_info: dict[str, Any],
    architecture: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": "running",
        "layers": layers,
        "device": device,
        "data_sha256": data_info.get("sha256"),
        "data_info": data_info,
        "error": None,
    }
    if architecture:
        values["architecture"] = architecture
    _update(db, run_id, values)
    with db.session() as s:  # a resumed run keeps its first start time
        s.execute(
            update(Run)
            .where(Run.id == run_id, Run.started_at.is_(None))
            .values(started_at=utcnow())
        )


def finish_run(db: Database, run_id: int, status: str, error: str | None = None) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {RUN_STATUSES}")
    _update(db, run_id, {"status": status, "error": error, "finished_at": utcnow()})


def update_run_fields(db: Database, run_id: int, **values: Any) -> None:
    allowed = {"name", "notes", "tags"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot edit {sorted(unknown)}; editable fields: {sorted(allowed)}")
    _update(db, run_id, values)


def delete_run(db: Database, run_id: int) -> None:
    with db.session() as s:
        if s.execute(delete(Run).where(Run.id == run_id)).rowcount == 0:
            raise RunNotFound(run_id)


def _update(db: Database, run_id: int, values: dict[str, Any]) -> None:
    with db.session() as s:
        if s.execute(update(Run).where(Run.id == run_id).values(**values)).rowcount == 0:
            raise RunNotFound(run_id)


def recorded_epoch_numbers(db: Database, run_id: int) -> list[int]:
    with db.session() as s:
        return list(
            s.scalars(
                select(RunEpoch.epoch).where(RunEpoch.run_id == run_id).order_by(RunEpoch.epoch)
            )
        )


SORTABLE = {
    "id": Run.id,
    "name": Run.name,
    "status": Run.status,
    "dataset": Run.dataset,
    "architecture": Run.architecture,
    "optimizer": Run.optimizer,
    "epochs_total": Run.epochs_total,
    "last_epoch": Run.last_epoch,
    "final_train_loss": Run.final_train_loss,
    "final_train_accuracy": Run.final_train_accuracy,
    "final_val_loss": Run.final_val_loss,
    "final_val_accuracy": Run.final_val_accuracy,
    "created_at": Run.created_at,
}
TEXT_FILTERS = ("name", "status", "dataset", "architecture", "optimizer")


def query_runs(
    db: Database,
    *,
    offset: int = 0,
    limit: int = 100,
    sort: list[tuple[str, str]] | None = None,
    contains: dict[str, str] | None = None,
    tag: str | None = None,
    group: int | None = None,
    where: str | None = None,
) -> tuple[list[RunInfo], int]:
    """One page of runs, sorted and filtered in SQL, and the total count that matches.

    `sort`: [(column, "asc"|"desc")] over SORTABLE; `contains`: {column: text} over
    TEXT_FILTERS (case-insensitive substring); `tag`: runs carrying that tag; `group`: runs
    of that run group (sweep); `where`: a filter expression (storage/run_filter.py; a
    FilterError when it cannot be read)."""
    query = select(Run)
    condition = run_filter.condition(where)
    if condition is not None:
        query = query.where(condition)
    for column, text in (contains or {}).items():
        if column not in TEXT_FILTERS:
            raise ValueError(f"filter: cannot filter on {column!r}; choose from {TEXT_FILTERS}")
        if text:
            query = query.where(SORTABLE[column].ilike(f"%{text}%"))
    if tag:
        query = query.where(func.cast(Run.tags, String).like(f'%"{tag}"%'))
    if group is not None:
        query = query.where(Run.group_id == group)
    order = []
    for column, direction in sort or [("id", "desc")]:
        if column not in SORTABLE:
            raise ValueError(f"sort: cannot sort on {column!r}")
        order.append(SORTABLE[column].desc() if direction == "desc" else SORTABLE[column].asc())
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(*order, Run.id.desc()).offset(offset).limit(limit))
        return [_info(r) for r in rows], total


@dataclass(frozen=True)
class RunOverview:
    """What a many-runs view needs of a run: its spec and final metrics (no layers, traceback
    or notes), so a thousand of them are one light SELECT."""

    id: int
    name: str
    status: str
    dataset: str
    spec: dict[str, Any]
    final_metrics: dict[str, float | None]
    tags: list[str]
    group_id: int | None


_OVERVIEW_COLUMNS = (
    Run.id,
    Run.name,
    Run.status,
    Run.dataset,
    Run.spec,
    Run.final_train_loss,
    Run.final_train_accuracy,
    Run.final_val_loss,
    Run.final_val_accuracy,
    Run.tags,
    Run.group_id,
)
MAX_OVERVIEW_ROWS = 10_000


def overview_rows(
    db: Database,
    *,
    name_contains: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    group: int | None = None,
    run_ids: list[int] | None = None,
    limit: int = 1001,
) -> list[RunOverview]:
    """Runs that match every filter given, in id order, at most `limit` (one SELECT).

    `name_contains`: case-insensitive substring; `dataset`, `status`: exact; `tag`: runs
    carrying it; `group`: runs of that group (sweep); `run_ids`: only these runs. Ask for one
    more than you show to learn whether more match."""
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(RUN_STATUSES)}")
    if not 1 <= limit <= MAX_OVERVIEW_ROWS:
        raise ValueError(f"limit: {limit} is out of range: must be 1 to {MAX_OVERVIEW_ROWS}")
    query = select(*_OVERVIEW_COLUMNS)
    if name_contains:
        query = query.where(Run.name.ilike(f"%{name_contains}%"))
    if dataset:
        query = query.where(Run.dataset == dataset)
    if status:
        query = query.where(Run.status == status)
    if tag:
        query = query.where(func.cast(Run.tags, String).like(f'%"{tag}"%'))
    if group is not None:
        query = query.where(Run.group_id == group)
    if run_ids is not None:
        query = query.where(Run.id.in_(list(run_ids)))
    with db.session() as s:
        rows = s.execute(query.order_by(Run.id).limit(limit)).all()
    return [
        RunOverview(
            id=r.id,
            name=r.name,
            status=r.status,
            dataset=r.dataset,
            spec=r.spec,
            final_metrics={
                "train_loss": r.final_train_loss,
                "train_accuracy": r.final_train_accuracy,
                "val_loss": r.final_val_loss,
                "val_accuracy": r.final_val_accuracy,
            },
            tags=r.tags or [],
            group_id=r.group_id,
        )
        for r in rows
    ]


def runs_page(
    db: Database,
    *,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
    group: int | None = None,
    owner: str | None = None,
    dataset: str | None = None,
    tag: str | None = None,
    name_contains: str | None = None,
    sort: str = "id",
    order: str = "desc",
    json_text: bool = False,
    where: str | None = None,
) -> tuple[list[RunInfo], int]:
    """One page of runs, newest first, and how many match (the REST API's list). Filters are
    exact: `status`, `group` (sweep), `owner` (a user name), `dataset`, `tag` (runs carrying
    it); `name_contains` is a case-insensitive substring. `sort` is a SORTABLE column, `order`
    "asc" or "desc" (empty values last; ties newest first). Each RunInfo's extra["owner"] is
    its owner's user name (None for runs without an owner).

    `json_text`: the JSON columns (JSON_COLUMNS: spec, layers, tags, data_info) are not
    decoded: their fields are left empty ({} or []) and extra["json"] holds the stored text
    of each (None for SQL NULL), for callers that only pass them on as JSON (decoding them
    is most of this function's time).

    `where`: a filter expression (storage/run_filter.py), with the others; FilterError when
    it cannot be read."""
    from netlens.storage.models import User

    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(RUN_STATUSES)}")
    if limit < 1 or offset < 0:
        raise ValueError(f"limit: {limit}, offset: {offset}: need limit >= 1 and offset >= 0")
    if sort not in SORTABLE or order not in ("asc", "desc"):
        raise ValueError(
            f"sort: {sort!r} {order!r}: choose from {', '.join(SORTABLE)}, asc or desc"
        )
    conditions = []
    if status:
        conditions.append(Run.status == status)
    if group is not None:
        conditions.append(Run.group_id == group)
    if owner is not None:
        conditions.append(User.name == owner)
    if dataset is not None:
        conditions.append(Run.dataset == dataset)
    if tag is not None:  # tags are a JSON list of strings: match the quoted string
        conditions.append(func.cast(Run.tags, String).contains(json.dumps(tag), autoescape=True))
    if name_contains:
        conditions.append(Run.name.icontains(name_contains, autoescape=True))
    condition = run_filter.condition(where)
    if condition is not None:
        conditions.append(condition)
    column = SORTABLE[sort]
    ordering = column.asc() if order == "asc" else column.desc()
    if column.nullable:  # NULLS LAST only where there can be any: on a NOT NULL column
        # it would keep PostgreSQL from reading the index backwards (id DESC: every run sorted)
        ordering = ordering.nulls_last()
    # Plain rows (no ORM identity map): _info reads the same attribute names from them.
    columns = [
        cast(c, Text).label(c.name) if json_text and c.name in JSON_COLUMNS else c
        for c in Run.__table__.c
    ]
    query = (
        select(*columns, User.name.label("owner_name"))
        .select_from(Run)
        .outerjoin(User, User.id == Run.owner_id)
        .where(*conditions)
        .order_by(ordering, Run.id.desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count(Run.id)).select_from(Run).where(*conditions)
    if owner is not None:
        count = count.join(User, User.id == Run.owner_id)
    with db.session() as s:
        total = s.scalar(count) or 0
        rows = s.execute(query).all()
    out = []
    for row in rows:
        info = _info(row, json_text)
        info.extra["owner"] = row.owner_name  # a fresh dict per RunInfo (default_factory)
        out.append(info)
    return out, total
