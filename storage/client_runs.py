"""Runs trained in a client's process and streamed to a team server (the Python API's REST
sink, webapp/api_ingest.py): create, append epochs, reopen, extend, finish.

Only the spec kinds the Python API makes are accepted: model kind sequential with dataset
arrays (nl.Sequential.fit) and model kind flax with dataset external (nl.Recorder). Such a run
never has a job (a worker never trains it), so no worker's write can meet a client's. Each
write locks the run's row first: two copies of one chunk (a retry after a lost answer) are
written once, the second finding the first's epochs.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from netlens.storage import limits, records
from netlens.storage.arrays import encode
from netlens.storage.db import Database
from netlens.storage.models import Job, Run, RunTensor, utcnow
from netlens.storage.records import EpochChunk
from netlens.storage.runs import RunNotFound, add_started_run
from netlens.storage.settings import Settings
from netlens.storage.spec import LIMITS, ExperimentSpec, SpecError

CLIENT_KINDS = {("sequential", "arrays"), ("flax", "external")}
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "diverged")


class ClientRunError(ValueError):
    """A refused write: `status` (409 the run's state, 422 what was sent) and the field."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field = status, field


def check_client_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """SpecError unless the Python API makes such a run (a spec run is the queue's)."""
    if (spec.model.kind, spec.dataset.name) not in CLIENT_KINDS:
        raise SpecError(
            [
                f"model.kind: {spec.model.kind!r} with dataset {spec.dataset.name!r}: a run "
                "streamed from the Python API is model kind sequential with dataset arrays "
                "(fit) or model kind flax with dataset external (nl.Recorder); submit a spec "
                "with POST /runs"
            ]
        )
    return spec


def create(
    db: Database,
    settings: Settings,
    spec: ExperimentSpec,
    *,
    arrays: dict[str, Any],
    layers: list[dict[str, Any]],
    device: str,
    data_info: dict[str, Any],
    architecture: str,
    owner_id: int | None,
) -> int:
    """A running run with its fixed arrays, in one transaction, counted against the owner's
    `active_jobs` limit (LimitExceeded, 429) as a queued job would be."""
    check_client_spec(spec)
    encoded = {name: encode(array) for name, array in arrays.items()}
    with db.session() as s:
        limits.check_active_jobs(s, settings, owner_id, 1)
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


def _client_run(s, run_id: int, *, running: bool) -> Run:
    """The run's row, locked; ClientRunError unless a client streams it (and it is running)."""
    row = s.get(Run, run_id, with_for_update=True)
    if row is None:
        raise RunNotFound(run_id)
    kind = (row.spec or {}).get("model", {}).get("kind")
    dataset = (row.spec or {}).get("dataset", {}).get("name")
    has_job = s.scalar(select(Job.run_id).where(Job.run_id == run_id)) is not None
    if has_job or (kind, dataset) not in CLIENT_KINDS:
        raise ClientRunError(
            409,
            "run_id",
            f"run {run_id} is trained by the server's workers, not streamed from the Python API",
        )
    if running and row.status != "running":
        raise ClientRunError(
            409,
            "run_id",
            f"run {run_id} is {row.status}, not running: reopen it first (nl.Recorder resume=)",
        )
    return row


def require(db: Database, run_id: int) -> None:
    """ClientRunError (409) unless a client streams run `run_id`; RunNotFound."""
    with db.session() as s:
        _client_run(s, run_id, running=False)


def _check_against_stored(s, row: Run, chunk: EpochChunk, nbytes: int) -> None:
    top = row.epochs_total if row.spec.get("model", {}).get("kind") == "sequential" else None
    if top is not None and chunk.epochs[-1] > top:
        raise ClientRunError(
            422,
            "epochs",
            f"epochs: {chunk.epochs[-1]} is past the run's training.epochs {top} "
            "(extend the run first)",
        )
    if (row.recorded_bytes or 0) + nbytes > LIMITS["max_recorded_bytes"]:
        raise ClientRunError(
            422,
            "body",
            f"max_recorded_bytes: the run would hold over {LIMITS['max_recorded_bytes']:,} "
            "bytes of records",
        )
    if not chunk.tensors:
        return
    stored = s.execute(
        select(RunTensor.name, RunTensor.dtype, RunTensor.shape)
        .where(RunTensor.run_id == row.id, RunTensor.name.in_(list(chunk.tensors)))
        .distinct()
    ).all()
    for name, dtype, shape in stored:
        got_dtype, _, _ = encode(chunk.tensors[name][:0])
        got_shape = json.dumps(list(chunk.tensors[name].shape[1:]))
        if (got_dtype, got_shape) != (dtype, shape):
            raise ClientRunError(
                422,
                f"tensors/{name}",
                f"tensors/{name}: {got_dtype} {got_shape} per epoch; the run holds {dtype} {shape}",
            )


def append(
    db: Database, run_id: int, chunk: EpochChunk, checkpoint: tuple[int, bytes] | None
) -> int:
    """Write the chunk's epochs the run does not hold yet (idempotent by epoch); returns how
    many were new."""
    nbytes = sum(t.nbytes for t in chunk.tensors.values())
    with db.session() as s:
        row = _client_run(s, run_id, running=True)
        _check_against_stored(s, row, chunk, nbytes)
        return records.write_chunk(s, run_id, chunk, checkpoint)


def reopen(
    db: Database,
    run_id: int,
    *,
    device: str,
    layers: list[dict[str, Any]] | None = None,
    data_info: dict[str, Any] | None = None,
    architecture: str | None = None,
) -> None:
    """Running again (a resumed nl.Recorder, a continued fit): its first start time kept."""
    with db.session() as s:
        row = _client_run(s, run_id, running=False)
        row.status, row.device, row.error, row.finished_at = "running", device, None, None
        if layers is not None:
            row.layers = layers
        if data_info is not None:
            row.data_info, row.data_sha256 = data_info, data_info.get("sha256")
        if architecture:
            row.architecture = architecture


def extend(db: Database, run_id: int, spec: ExperimentSpec) -> None:
    """A continued fit: the same spec but for more training.epochs."""
    with db.session() as s:
        row = _client_run(s, run_id, running=False)
        old, new = dict(row.spec), spec.model_dump(mode="json")
        if {**old, "training": None} != {**new, "training": None} or {
            **old["training"],
            "epochs": 0,
        } != {**new["training"], "epochs": 0}:
            raise ClientRunError(422, "spec", "spec: a continued fit changes only training.epochs")
        if spec.training.epochs <= (row.last_epoch or 0):
            raise ClientRunError(
                422,
                "spec.training.epochs",
                f"spec.training.epochs: {spec.training.epochs} does not go past the run's "
                f"last recorded epoch {row.last_epoch}",
            )
        row.spec, row.epochs_total = new, spec.training.epochs


def finish(
    db: Database, run_id: int, status: str, error: str | None, epochs_total: int | None
) -> bool:
    """End the run; False when it had already ended with `status` (a repeated finish)."""
    with db.session() as s:
        row = _client_run(s, run_id, running=False)
        if row.status == status:
            return False
        if row.status != "running":
            raise ClientRunError(409, "status", f"run {run_id} is {row.status} already")
        if epochs_total is not None:  # never before the last epoch the server holds
            epochs_total = max(epochs_total, row.last_epoch or 0)
            spec = dict(row.spec)
            spec["training"] = {**spec.get("training", {}), "epochs": epochs_total}
            row.spec, row.epochs_total = spec, epochs_total
        row.status, row.error, row.finished_at = status, error, utcnow()
        return True
