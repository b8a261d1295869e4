"""Per-epoch records: write chunks of epochs idempotently, read metrics and tensor histories."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, insert, select, update

from netlens.storage import jobs
from netlens.storage.arrays import array_row, decode_stored, encode, pack
from netlens.storage.db import Database
from netlens.storage.models import Run, RunArray, RunEpoch, RunTensor


@dataclass
class EpochChunk:
    """Consecutive recorded epochs of one run. Each tensor is stacked on a leading axis; a
    tensor recorded only at some of the epochs (the grid) lists them in `sparse_epochs`.
    `times`: when each epoch was computed (Unix seconds), or None when the writer knows not."""

    epochs: list[int]
    metrics: list[dict[str, float]]
    tensors: dict[str, np.ndarray]
    sparse_epochs: dict[str, list[int]]
    times: list[float] | None = None

    def tensor_epochs(self, name: str) -> list[int]:
        return self.sparse_epochs.get(name, self.epochs)


def _clean(value: float) -> float | None:
    """JSON has no NaN/inf: store them as None in the metrics column."""
    return float(value) if math.isfinite(value) else None


def write_epochs(
    db: Database,
    run_id: int,
    chunk: EpochChunk,
    attempt: int | None = None,
    checkpoint: tuple[int, bytes] | None = None,
) -> int:
    """Store a chunk in one transaction; epochs already stored are skipped. Returns epochs written.

    With `attempt`, the write is fenced: it raises jobs.LeaseLost, writing nothing, unless that
    attempt still owns the job. `checkpoint` (epoch, bytes) replaces the run's resumable state.
    """
    if not chunk.epochs:
        return 0
    with db.session() as s:
        if attempt is not None:
            jobs.fence(s, run_id, attempt)
        return write_chunk(s, run_id, chunk, checkpoint)


def write_chunk(
    s, run_id: int, chunk: EpochChunk, checkpoint: tuple[int, bytes] | None = None
) -> int:
    """write_epochs inside the caller's transaction (storage/client_runs.py checks the run
    first, in the same transaction)."""
    if checkpoint is not None:
        jobs.save_checkpoint(s, run_id, *checkpoint)
    existing = set(
        s.scalars(
            select(RunEpoch.epoch).where(
                RunEpoch.run_id == run_id,
                RunEpoch.epoch >= chunk.epochs[0],
                RunEpoch.epoch <= chunk.epochs[-1],
            )
        )
    )
    keep = [i for i, e in enumerate(chunk.epochs) if e not in existing]
    if not keep:
        return 0
    kept_epochs = {chunk.epochs[i] for i in keep}
    s.execute(
        insert(RunEpoch),
        [
            {
                "run_id": run_id,
                "epoch": chunk.epochs[i],
                "metrics": {k: _clean(v) for k, v in chunk.metrics[i].items()},
                "wall_time": _clean(chunk.times[i]) if chunk.times else None,
            }
            for i in keep
        ],
    )
    rows, nbytes = [], 0
    for name, stacked in chunk.tensors.items():
        epochs = chunk.tensor_epochs(name)
        for start, stop in _contiguous([j for j, e in enumerate(epochs) if e in kept_epochs]):
            part = stacked[start:stop]
            dtype, _, raw = encode(part)
            codec, data = pack(raw)
            rows.append(
                {
                    "run_id": run_id,
                    "name": name,
                    "epoch_start": epochs[start],
                    "epoch_stop": epochs[stop - 1],
                    "count": stop - start,
                    "epochs": np.asarray(epochs[start:stop], "<i4").tobytes(),
                    "dtype": dtype,
                    "shape": json.dumps(list(part.shape[1:])),
                    "data": data,
                    "codec": codec,
                }
            )
            nbytes += len(raw)
    if rows:
        s.execute(insert(RunTensor), rows)
    _advance_run(s, run_id, chunk.epochs[keep[-1]], chunk.metrics[keep[-1]], len(keep), nbytes)
    return len(keep)


def _contiguous(indices: Sequence[int]) -> list[tuple[int, int]]:
    """[1,2,3,7,8] -> [(1,4), (7,9)]: half-open runs of consecutive indices."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _advance_run(
    s, run_id: int, last_epoch: int, metrics: dict[str, float], n: int, nbytes: int
) -> None:
    run = s.get(Run, run_id, with_for_update=True)
    values = {
        "epochs_recorded": Run.epochs_recorded + n,
        "recorded_bytes": Run.recorded_bytes + nbytes,
    }
    if run.last_epoch is None or last_epoch > run.last_epoch:
        if last_epoch > run.epochs_total:  # a user's loop (nl.Recorder) that runs on
            values["epochs_total"] = last_epoch
        values |= {
            "last_epoch": last_epoch,
            **{
                f"final_{k}": _clean(metrics[k])
                for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
                if k in metrics
            },
        }
    s.execute(update(Run).where(Run.id == run_id).values(**values))


def write_arrays(db: Database, run_id: int, arrays: dict[str, np.ndarray]) -> None:
    """Store the run's fixed arrays (probe inputs, grid points); replaces ones of the same name."""
    with db.session() as s:
        for name, array in arrays.items():
            dtype, shape, raw = encode(array)
            existing = s.get(RunArray, (run_id, name))
            if existing is not None:
                s.delete(existing)
                s.flush()
            s.add(array_row(run_id, name, dtype, shape, raw))


def array_catalog(db: Database, run_id: int) -> list[tuple[str, str, str]]:
    """(name, dtype, shape) of each of the run's fixed arrays, in name order, without their
    data."""
    with db.session() as s:
        rows = s.execute(
            select(RunArray.name, RunArray.dtype, RunArray.shape)
            .where(RunArray.run_id == run_id)
            .order_by(RunArray.name)
        ).all()
    return [(r.name, r.dtype, r.shape) for r in rows]


DATA_PREFIX = "data/"  # the training data of a run whose dataset is stored with it (arrays)


def read_arrays(
    db: Database, run_id: int, prefix: str = "", with_data: bool = False
) -> dict[str, np.ndarray]:
    """The run's fixed arrays whose names start with `prefix`. The training data stored with
    a run (`data/...`, up to LIMITS["max_data_bytes"]) is read only `with_data` or when
    `prefix` asks for it: the pages and analyses never need it."""
    query = select(RunArray).where(RunArray.run_id == run_id)
    if prefix:
        query = query.where(RunArray.name.startswith(prefix, autoescape=True))
    if not with_data and not prefix.startswith(DATA_PREFIX):
        query = query.where(~RunArray.name.startswith(DATA_PREFIX))
    with db.session() as s:
        rows = s.scalars(query)
        return {r.name: decode_stored(r.codec, r.dtype, r.shape, r.data) for r in rows}


def read_metrics(db: Database, run_id: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(epochs, {metric name: values}) over every recorded epoch; missing values are NaN."""
    with db.session() as s:
        rows = s.execute(
            select(RunEpoch.epoch, RunEpoch.metrics)
            .where(RunEpoch.run_id == run_id)
            .order_by(RunEpoch.epoch)
        ).all()
    epochs = np.array([r[0] for r in rows], dtype=np.int64)
    names = sorted({k for r in rows for k in r[1]})
    metrics = {
        n: np.array([np.nan if r[1].get(n) is None else r[1][n] for r in rows], dtype=np.float64)
        for n in names
    }
    return epochs, metrics


def read_wall_times(db: Database, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, when each was computed in Unix seconds) over every recorded epoch; NaN where
    none was recorded (runs recorded before the column existed)."""
    with db.session() as s:
        rows = s.execute(
            select(RunEpoch.epoch, RunEpoch.wall_time)
            .where(RunEpoch.run_id == run_id)
            .order_by(RunEpoch.epoch)
        ).all()
    epochs = np.array([r[0] for r in rows], dtype=np.int64)
    return epochs, np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)


def tensor_names(db: Database, run_id: int) -> list[str]:
    with db.session() as s:
        return list(
            s.scalars(
                select(RunTensor.name)
                .where(RunTensor.run_id == run_id)
                .distinct()
                .order_by(RunTensor.name)
            )
        )


def read_tensor(
    db: Database, run_id: int, name: str, first: int | None = None, last: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values stacked on axis 0) of one tensor for recorded epochs in [first, last].
    Values stored as float16 (recording.signature_dtype) are returned as float32, as every
    reader expects."""
    query = select(
        RunTensor.epochs,
        RunTensor.count,
        RunTensor.dtype,
        RunTensor.shape,
        RunTensor.data,
        RunTensor.codec,
    ).where(RunTensor.run_id == run_id, RunTensor.name == name)
    if first is not None:
        query = query.where(RunTensor.epoch_stop >= first)
    if last is not None:
        query = query.where(RunTensor.epoch_start <= last)
    with db.session() as s:
        rows = s.execute(query.order_by(RunTensor.epoch_start)).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0,), np.float32)
    epochs = np.concatenate([np.frombuffer(r.epochs, "<i4") for r in rows]).astype(np.int64)
    values = np.concatenate(
        [decode_stored(r.codec, r.dtype, [r.count, *json.loads(r.shape)], r.data) for r in rows]
    )
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    if len(epochs) > 1 and not np.all(epochs[1:] > epochs[:-1]):  # (never, as written)
        mask = np.ones(len(epochs), bool)
        if first is not None:
            mask &= epochs >= first
        if last is not None:
            mask &= epochs <= last
        return epochs[mask], values[mask]
    # ascending: the range is a slice (a view; a mask would copy every value once more)
    lo = 0 if first is None else int(np.searchsorted(epochs, first, "left"))
    hi = len(epochs) if last is None else int(np.searchsorted(epochs, last, "right"))
    return epochs[lo:hi], values[lo:hi]


def tensor_epoch_list(db: Database, run_id: int, name: str) -> np.ndarray:
    """The epochs at which a tensor was recorded, without reading its data."""
    with db.session() as s:
        rows = s.scalars(
            select(RunTensor.epochs)
            .where(RunTensor.run_id == run_id, RunTensor.name == name)
            .order_by(RunTensor.epoch_start)
        )
        parts = [np.frombuffer(r, "<i4") for r in rows]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


@dataclass(frozen=True)
class TensorEntry:
    """What a run recorded of one tensor, without its data: dtype, shape of one epoch's
    value, and the epochs at which it was recorded (ascending)."""

    name: str
    dtype: str
    shape: list[int]
    epochs: list[int]


def _read_dtype(stored: str) -> str:
    """The dtype `read_tensor` returns for rows stored as `stored` (float16 reads as float32)."""
    dtype = np.dtype(stored)
    return "float32" if dtype == np.float16 else dtype.name


def tensor_catalog(db: Database, run_id: int, name: str | None = None) -> list[TensorEntry]:
    """Every tensor a run recorded (or only `name`), in name order, in one query that reads
    no tensor data."""
    query = select(RunTensor.name, RunTensor.dtype, RunTensor.shape, RunTensor.epochs).where(
        RunTensor.run_id == run_id
    )
    if name is not None:
        query = query.where(RunTensor.name == name)
    with db.session() as s:
        rows = s.execute(query.order_by(RunTensor.name, RunTensor.epoch_start)).all()
    out: dict[str, TensorEntry] = {}
    for row in rows:
        entry = out.get(row.name)
        if entry is None:
            entry = out[row.name] = TensorEntry(
                row.name, _read_dtype(row.dtype), json.loads(row.shape), []
            )
        entry.epochs.extend(np.frombuffer(row.epochs, "<i4").tolist())
    return list(out.values())


@dataclass(frozen=True)
class Footprint:
    """What a run's recorded tensors take: their logical bytes (dtype x shape, what the run's
    recorded_bytes counts) and the bytes actually stored (after each row's codec)."""

    rows: int
    raw_bytes: int
    stored_bytes: int
    packed_rows: int  # rows stored compressed

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else 1.0


def footprint(db: Database, run_id: int) -> Footprint:
    """The run's tensor rows, their logical and stored sizes (no data read)."""
    with db.session() as s:
        rows = s.execute(
            select(
                RunTensor.count,
                RunTensor.dtype,
                RunTensor.shape,
                RunTensor.codec,
                func.length(RunTensor.data).label("stored"),
            ).where(RunTensor.run_id == run_id)
        ).all()
    raw = sum(
        r.count * np.dtype(r.dtype).itemsize * int(np.prod(json.loads(r.shape), dtype=np.int64))
        for r in rows
    )
    return Footprint(
        rows=len(rows),
        raw_bytes=int(raw),
        stored_bytes=int(sum(r.stored for r in rows)),
        packed_rows=sum(r.codec != "raw" for r in rows),
    )
