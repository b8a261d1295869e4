"""Export a run to one .npz file (format: docs/export-format.md), one tensor at a time.

The file is a zip of .npy members, as `np.savez` writes it, but each member is written as it
is read from the database (a recorded tensor chunk row by chunk row), so an export holds at
most one chunk of one tensor in memory, whatever the size of the run.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import select

from netlens.storage import records, retention, runs
from netlens.storage.arrays import decode_stored
from netlens.storage.db import Database
from netlens.storage.models import RunTensor

EXPORT_FORMAT_VERSION = 1


def _small_arrays(db: Database, run_id: int) -> Iterator[tuple[str, np.ndarray]]:
    """Everything but the recorded tensors: the spec, the summary, metrics, run arrays."""
    info = runs.get_run(db, run_id)
    epochs, metrics = records.read_metrics(db, run_id)
    yield "format_version", np.array(EXPORT_FORMAT_VERSION)
    yield "config", np.array(json.dumps(info.spec))
    yield "run", np.array(json.dumps(_run_summary(info)))
    yield "layers", np.array([layer["name"] for layer in info.layers], dtype=str)
    yield "epochs", epochs
    # the epochs whose tensors are stored: all of them, unless the run was thinned
    # (storage/retention.py); every non-grid tensor has one row per entry
    yield "tensor_epochs", _tensor_epochs(db, info, epochs)
    for name, values in metrics.items():
        yield f"metrics/{name}", values
    yield from records.read_arrays(db, run_id, with_data=True).items()


def _tensor_epochs(db: Database, info: runs.RunInfo, epochs: np.ndarray) -> np.ndarray:
    if info.thinned_at is None:
        return epochs
    kept = np.asarray(retention.kept_epochs(db, info.id), np.int64)
    return epochs[np.isin(epochs, kept)]


def _exported_tensors(db: Database, run_id: int) -> list[str]:
    # lowres/ series are page-speed copies of series already exported
    return [n for n in records.tensor_names(db, run_id) if not n.startswith("lowres/")]


def collect_run(db: Database, run_id: int) -> dict[str, np.ndarray]:
    """Every array of the export, keyed as in the file (all in memory: for tests and small
    runs; export_run streams)."""
    out = dict(_small_arrays(db, run_id))
    for name in _exported_tensors(db, run_id):
        tensor_epochs, out[name] = records.read_tensor(db, run_id, name)
        _check_epochs(run_id, name, tensor_epochs, out)
    return out


def _check_epochs(run_id: int, name: str, tensor_epochs: np.ndarray, out: dict) -> None:
    """Every grid/ tensor (grid/output, the hidden layers' grid/<layer>) shares grid/epochs;
    every other tensor has one row per recorded epoch."""
    if name.startswith("grid/"):
        known = out.setdefault("grid/epochs", tensor_epochs)
        if not np.array_equal(known, tensor_epochs):
            raise RuntimeError(
                f"run {run_id}: {name} was recorded at {len(tensor_epochs)} epochs, the other "
                f"grid tensors at {len(known)}; the record is inconsistent"
            )
    elif len(tensor_epochs) != len(out["tensor_epochs"]):
        raise RuntimeError(
            f"run {run_id}: {name} has {len(tensor_epochs)} epochs, the run "
            f"{len(out['tensor_epochs'])} with tensors; the record is inconsistent"
        )


def _run_summary(info: runs.RunInfo) -> dict:
    keys = (
        "id",
        "name",
        "status",
        "error",
        "device",
        "data_sha256",
        "data_info",
        "epochs_total",
        "created_at",
        "started_at",
        "finished_at",
        "layers",
        "thinned_at",
        "thinning",
    )
    full = info.to_dict()
    return {k: full[k] for k in keys}


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with archive.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _stream_tensor(db: Database, archive: zipfile.ZipFile, run_id: int, name: str) -> np.ndarray:
    """Write one recorded tensor chunk row by chunk row; its epoch numbers."""
    where = (RunTensor.run_id == run_id, RunTensor.name == name)
    with db.session() as s:
        meta = s.execute(
            select(
                RunTensor.epoch_start,
                RunTensor.count,
                RunTensor.dtype,
                RunTensor.shape,
                RunTensor.epochs,
            )
            .where(*where)
            .order_by(RunTensor.epoch_start)
        ).all()
    if not meta:
        _write_member(archive, name, np.zeros((0,), np.float32))
        return np.zeros(0, np.int64)
    # rows of one tensor share a dtype, except signatures stored as float16 where a chunk
    # beyond float16's range stayed float32: then the whole member is float32
    dtype = np.result_type(*{np.dtype(r.dtype) for r in meta})
    shape = json.loads(meta[0].shape)
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (sum(r.count for r in meta), *shape),
    }
    with archive.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, header)
        for row in meta:
            with db.session() as s:
                stored = s.execute(
                    select(RunTensor.data, RunTensor.codec).where(
                        *where, RunTensor.epoch_start == row.epoch_start
                    )
                ).one()
            values = decode_stored(
                stored.codec, row.dtype, [row.count, *json.loads(row.shape)], stored.data
            )
            member.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
    return np.concatenate([np.frombuffer(r.epochs, "<i4") for r in meta]).astype(np.int64)


def write_export(db: Database, run_id: int, out: BinaryIO, compress: bool = False) -> None:
    """The .npz of a run into a binary file object, one member at a time."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method, allowZip64=True) as archive:
        seen: dict[str, np.ndarray] = {}  # the epochs with tensors, and grid/epochs once known
        for name, array in _small_arrays(db, run_id):
            _write_member(archive, name, array)
            if name == "tensor_epochs":
                seen[name] = array
        for name in _exported_tensors(db, run_id):
            _check_epochs(run_id, name, _stream_tensor(db, archive, run_id, name), seen)
        if "grid/epochs" in seen:
            _write_member(archive, "grid/epochs", seen["grid/epochs"])


def export_run(db: Database, run_id: int, path: str | Path, compress: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            write_export(db, run_id, f, compress)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
