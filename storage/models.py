"""ORM tables. Rows never leave storage/: public functions return plain dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "diverged")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled", "diverged")


def utcnow() -> datetime:
    return datetime.now(UTC)


# Primary keys are 32-bit INTEGER columns (PostgreSQL): an id beyond this reaches no row,
# and must never reach the database ("integer out of range" would be a 500).
MAX_ID = 2**31 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """A lab member. Passwords are stored only as Argon2id hashes (storage/users.py)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # this user's own limits (storage/limits.py), overriding the team's; None: the team's
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WebSession(Base):
    """A browser login: the cookie holds a random token, this row only its SHA-256, so that
    logout, a password change or disabling the user ends it on the server."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiToken(Base):
    """A revocable REST API token of one user; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(String(10), default="write", server_default="write")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed logins counted for one key: a (user name, client address) pair, or an address
    across names. Counted and checked in one conditional UPDATE (storage/throttle.py)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "name+address" | "address"
    name: Mapped[str] = mapped_column(String(80), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServerSetting(Base):
    """A team-wide setting an admin changed from its default (e.g. a per-user limit)."""

    __tablename__ = "server_settings"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerRow(Base):
    """A worker process as last reported by its own heartbeat (admin queue page)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    queues: Mapped[str] = mapped_column(String(100), default="")
    device: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    """A data file uploaded through the web app or API, stored as `stored_name` (generated by
    the server) inside the data folder's uploads/; the client's file name is only shown."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # csv | mnist
    original_name: Mapped[str] = mapped_column(String(255), default="")
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a run took it


class RunGroup(Base):
    """Runs submitted together, e.g. a sweep: the base spec and the axes varied over it.

    `axes` is a list of {"field": dotted spec path, "values": [...]}; the runs point here
    through `runs.group_id` (a run outlives its group: ON DELETE SET NULL)."""

    __tablename__ = "run_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20), default="sweep")
    base_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    axes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), index=True, default="queued")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_version: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(50), index=True)
    architecture: Mapped[str] = mapped_column(String(200))
    optimizer: Mapped[str] = mapped_column(String(20))
    epochs_total: Mapped[int] = mapped_column(Integer)
    epochs_recorded: Mapped[int] = mapped_column(Integer, default=0)
    last_epoch: Mapped[int | None] = mapped_column(Integer)
    # indexed with the id (0010): the admin page's largest runs read the index backwards
    recorded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Last recorded metrics, denormalised so that run lists sort and filter without joins;
    # indexed with the id (RUN_SORT_INDEXES below, 0010) so that a list sorted by one reads
    # its rows from the index.
    final_train_loss: Mapped[float | None] = mapped_column(Float)
    final_train_accuracy: Mapped[float | None] = mapped_column(Float)
    final_val_loss: Mapped[float | None] = mapped_column(Float)
    final_val_accuracy: Mapped[float | None] = mapped_column(Float)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(100))
    data_sha256: Mapped[str | None] = mapped_column(String(64))
    # Facts about the loaded data: class labels and names, image shape, split sizes, file read.
    data_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("run_groups.id", ondelete="SET NULL"), index=True
    )
    # Who submitted it (None: before accounts existed, or single-user mode). Members may
    # cancel, retry, edit and delete only their own runs; admins any.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Set when the retention policy thinned the run (storage/retention.py, migration 0011):
    # its tensors and analyses were kept at some epochs only, every run_epochs row stays.
    # `thinning`: the policy, epochs kept and dropped, bytes freed.
    thinned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    thinning: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# (metric, id DESC): the order of the run lists (storage/runs.py: ties newest first). Read
# forwards for ascending, backwards (then ties sorted in small groups) for descending.
RUN_SORT_INDEXES = [
    Index(f"ix_runs_{c.name}_id", c, Run.id.desc())
    for c in (
        Run.final_train_loss,
        Run.final_train_accuracy,
        Run.final_val_loss,
        Run.final_val_accuracy,
    )
]
RUN_BYTES_INDEX = Index("ix_runs_recorded_bytes_id", Run.recorded_bytes, Run.id)


class RunEpoch(Base):
    """One row per recorded epoch: its scalar metrics and the wall-clock time at which it was
    computed (Unix seconds; None for runs recorded before 0008 and for clients that send
    none). Its presence means the epoch is complete."""

    __tablename__ = "run_epochs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics: Mapped[dict[str, float | None]] = mapped_column(JSON)
    wall_time: Mapped[float | None] = mapped_column(Float, nullable=True)


class RunTensor(Base):
    """One tensor over a chunk of consecutive recorded epochs, stacked on a leading axis.

    Large networks write one epoch per row; tiny ones a chunk of epochs per row, so that a
    20,000-epoch XOR run is not 200,000 rows. `shape` is the shape of one epoch's tensor;
    `epochs` says which epochs the slices are (the decision-boundary grid may be sparser).
    """

    __tablename__ = "run_tensors"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    epoch_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch_stop: Mapped[int] = mapped_column(Integer)  # last epoch in the chunk, inclusive
    count: Mapped[int] = mapped_column(Integer)  # recorded epochs in the chunk
    epochs: Mapped[bytes] = mapped_column(LargeBinary)  # int32 epoch numbers, one per slice
    dtype: Mapped[str] = mapped_column(String(16))
    shape: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # how `data` is stored: "raw" or "zstd" (storage/arrays.py pack / unpack; migration 0007)
    codec: Mapped[str] = mapped_column(String(8), default="raw", server_default="raw")


class RunArray(Base):
    """Arrays fixed for the whole run: probe inputs and labels, the decision-boundary grid."""

    __tablename__ = "run_arrays"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    dtype: Mapped[str] = mapped_column(String(16))
    shape: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # how `data` is stored: "raw" or "zstd" (storage/arrays.py pack / unpack; migration 0007)
    codec: Mapped[str] = mapped_column(String(8), default="raw", server_default="raw")


JOB_STATES = RUN_STATUSES


class Job(Base):
    """The truth about a queued run: Celery only delivers (run_id, attempt); this row decides.

    `attempt` grows with every (re)enqueue; a delivery whose attempt is not the current one,
    or that finds the job no longer queued, does nothing, and every write a worker makes is
    fenced by its attempt number.
    """

    __tablename__ = "jobs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    queue: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    from_scratch: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    time_limit_s: Mapped[int | None] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    progress_epoch: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    last_metrics: Mapped[dict[str, float | None]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunCheckpoint(Base):
    """The latest resumable training state of a run: parameters, optimizer state, epoch."""

    __tablename__ = "run_checkpoints"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # an .npz of the state's leaves, no pickle


ANALYSIS_STATES = ("queued", "running", "done", "failed")
# "tsne" and "umap": that projection of one epoch's hidden layers, computed only when asked
# for (the signatures page's projection selector, `netlens analyze --methods`)
ANALYSIS_KINDS = ("epoch", "timeline", "tsne", "umap")
PROGRESS_CHARS = 200


class RunAnalysis(Base):
    """Signature analyses of one run (issue 5), computed by a worker and reused by every page.

    kind "epoch": clusters, flow, projections, class signatures and out-of-distribution
    report at one recorded epoch, with its PCA projection. kind "timeline": separability and
    fixed-basis PCA frames across many epochs (its `epoch` is the last epoch it covers). kinds
    "tsne" and "umap": that projection of one epoch, on demand (slow: seconds per layer).
    `progress`: what a running analysis is doing now, written by its worker."""

    __tablename__ = "run_analyses"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[str | None] = mapped_column(String(PROGRESS_CHARS))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunAnalysisArray(Base):
    """One array of an analysis (cluster labels, a projection, class means), raw bytes."""

    __tablename__ = "run_analysis_arrays"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    dtype: Mapped[str] = mapped_column(String(16))
    shape: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
