"""The .npz bodies of the Python API's REST sink (netlens/sdk/sink.py RestSink, webapp/api_ingest.py):
a run's fixed arrays and chunks of epochs, packed by the client and checked by the server.

Both sides use these functions, so the format is defined once. Reading never unpickles
(allow_pickle=False) and checks the archive's entries and their uncompressed sizes before any
array is decoded, so a small compressed body cannot expand into gigabytes. Every refusal is a
WireError whose message names the entry and the limit.

A chunk's entries:

| entry | dtype, shape | |
|---|---|---|
| `epochs` | int64 (n,) | strictly increasing epoch numbers |
| `metrics` | float64 (n, m) | one column per name in meta `metrics`; NaN: missing |
| `meta` | uint8 (bytes of JSON) | {"metrics": [names], "checkpoint_epoch": int or null} |
| `tensors/<name>` | numeric (k, ...) | stacked over the epochs it was recorded at |
| `sparse/<name>` | int64 (k,) | those epochs, when not all of `epochs` (the grid) |
| `times` | float64 (n,) | optional: when each epoch was computed, Unix seconds (wall-time x) |
| `checkpoint` | uint8 (bytes) | the resumable state (nl.Recorder), with meta checkpoint_epoch |
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import numpy as np

from netlens.storage.arrays import encode
from netlens.storage.records import EpochChunk
from netlens.storage.spec import LIMITS

MAX_ENTRIES = 10_000  # arrays in one body
MAX_EPOCHS_PER_CHUNK = 100_000
MAX_METRICS = 200  # metric names per run (as nl.Recorder)
MAX_NAME = 120  # storage: run_tensors.name
MAX_META_BYTES = 64 * 1024
NUMERIC = "biuf"


class WireError(ValueError):
    """A body that is not what it should be; the message names the entry and the limit."""


def _pack(entries: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    return buffer.getvalue()


def _text(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """A run's fixed arrays (probe, grid, the data stored for fit) as one .npz."""
    return _pack({name: np.asarray(a) for name, a in arrays.items()})


def pack_chunk(chunk: EpochChunk, checkpoint: tuple[int, bytes] | None = None) -> bytes:
    names = sorted({k for row in chunk.metrics for k in row})
    metrics = np.array(
        [[float(row.get(k, math.nan)) for k in names] for row in chunk.metrics], np.float64
    ).reshape(len(chunk.epochs), len(names))
    entries = {
        "epochs": np.asarray(chunk.epochs, np.int64),
        "metrics": metrics,
        "meta": _text(
            {"metrics": names, "checkpoint_epoch": checkpoint[0] if checkpoint else None}
        ),
    }
    for name, stacked in chunk.tensors.items():
        entries[f"tensors/{name}"] = np.asarray(stacked)
    for name, epochs in chunk.sparse_epochs.items():
        entries[f"sparse/{name}"] = np.asarray(epochs, np.int64)
    if chunk.times:
        entries["times"] = np.asarray(chunk.times, np.float64)
    if checkpoint is not None:
        entries["checkpoint"] = np.frombuffer(checkpoint[1], np.uint8)
    return _pack(entries)


def _open(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of an .npz body, every entry checked before it is read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise WireError("body: not an .npz file (send numpy.savez output)") from None
    if len(infos) > MAX_ENTRIES:
        raise WireError(f"body: {len(infos)} arrays is over the limit of {MAX_ENTRIES:,}")
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise WireError(
            f"body: {total:,} bytes uncompressed is over the limit of {max_bytes:,} bytes"
        )
    out = {}
    with archive:
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise WireError(f"{info.filename[:100]}: not a .npy entry")
            name = info.filename[:-4]
            try:
                with archive.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError):
                raise WireError(f"{name[:100]}: not a readable numpy array") from None
    return out


def _name(name: str, what: str) -> str:
    if not name or len(name) > MAX_NAME or "\x00" in name or not name.isprintable():
        raise WireError(
            f"{what}/{name[:40]!r}: a name of 1 to {MAX_NAME} printable characters is needed"
        )
    return name


def _numeric(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in NUMERIC or array.dtype.byteorder == ">":
        raise WireError(f"{name}: dtype {array.dtype} is not a numeric (bool, int, float) array")
    return array


def unpack_arrays(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    arrays = _open(data, max_bytes)
    for name, array in arrays.items():
        _name(name, "arrays")
        _numeric(name, array)
        encode(array)  # what storage accepts
    return arrays


def _meta(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = arrays.pop("meta", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_META_BYTES:
        raise WireError(f"meta: a JSON text (uint8 bytes, at most {MAX_META_BYTES:,}) is needed")
    try:
        meta = json.loads(raw.tobytes())
    except (ValueError, UnicodeDecodeError):
        raise WireError("meta: not valid JSON") from None
    if not isinstance(meta, dict) or set(meta) - {"metrics", "checkpoint_epoch"}:
        raise WireError("meta: an object of metrics and checkpoint_epoch is needed")
    names = meta.get("metrics", [])
    if not isinstance(names, list) or len(names) > MAX_METRICS:
        raise WireError(f"meta.metrics: a list of at most {MAX_METRICS} names is needed")
    for name in names:
        if not isinstance(name, str) or not 1 <= len(name) <= 100 or "\x00" in name:
            raise WireError("meta.metrics: each name is a text of 1 to 100 characters")
    if len(set(names)) != len(names):
        raise WireError("meta.metrics: names repeat")
    return meta


def _epochs(array: np.ndarray | None, what: str) -> list[int]:
    top = LIMITS["max_epochs"]
    if array is None or array.dtype.kind not in "iu" or array.ndim != 1:
        raise WireError(f"{what}: a 1-D integer array of epoch numbers is needed")
    if not 1 <= array.size <= MAX_EPOCHS_PER_CHUNK:
        raise WireError(f"{what}: 1 to {MAX_EPOCHS_PER_CHUNK:,} epochs per chunk")
    epochs = [int(e) for e in array]
    if (
        epochs[0] < 0
        or epochs[-1] > top
        or any(b <= a for a, b in zip(epochs, epochs[1:], strict=False))
    ):
        raise WireError(f"{what}: epochs must increase strictly, from 0 to {top:,}")
    return epochs


MAX_WALL_TIME = 1e11  # Unix seconds: about the year 5138


def _times(array: np.ndarray | None, n: int) -> list[float] | None:
    """The optional `times` entry: n finite Unix times, in seconds."""
    if array is None:
        return None
    if array.dtype.kind != "f" or array.shape != (n,):
        raise WireError(f"times: a float array of shape ({n},) (one per epoch) is needed")
    if not (np.isfinite(array).all() and (array >= 0).all() and (array < MAX_WALL_TIME).all()):
        raise WireError(f"times: Unix seconds from 0 to {MAX_WALL_TIME:g}, finite")
    return [float(t) for t in array]


def unpack_chunk(data: bytes, max_bytes: int) -> tuple[EpochChunk, tuple[int, bytes] | None]:
    """A chunk and its checkpoint (or None), every entry checked for type, shape and range."""
    arrays = _open(data, max_bytes)
    meta = _meta(arrays)
    epochs = _epochs(arrays.pop("epochs", None), "epochs")
    names = meta.get("metrics", [])
    values = arrays.pop("metrics", None)
    if values is None or values.dtype.kind != "f" or values.shape != (len(epochs), len(names)):
        raise WireError(
            f"metrics: a float array of shape ({len(epochs)}, {len(names)}) (epochs x names) "
            "is needed"
        )
    metrics = [dict(zip(names, (float(v) for v in row), strict=True)) for row in values]
    times = _times(arrays.pop("times", None), len(epochs))
    checkpoint = None
    raw = arrays.pop("checkpoint", None)
    at = meta.get("checkpoint_epoch")
    if (raw is None) != (at is None):
        raise WireError("checkpoint: give it with meta.checkpoint_epoch, or neither")
    if raw is not None:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise WireError("checkpoint: uint8 bytes are needed")
        if isinstance(at, bool) or not isinstance(at, int) or at not in epochs:
            raise WireError("meta.checkpoint_epoch: must be one of the chunk's epochs")
        checkpoint = (at, raw.tobytes())
    tensors, sparse = {}, {}
    for key, array in arrays.items():
        kind, _, name = key.partition("/")
        if kind == "tensors":
            tensors[_name(name, kind)] = _numeric(key, array)
        elif kind == "sparse":
            sparse[_name(name, kind)] = _epochs(array, key)
        else:
            raise WireError(
                f"{key[:100]}: unknown entry (epochs, metrics, meta, times, tensors/, sparse/)"
            )
    for name, at_epochs in sparse.items():
        if name not in tensors or not set(at_epochs) <= set(epochs):
            raise WireError(f"sparse/{name}: epochs of tensors/{name} among the chunk's epochs")
    for name, array in tensors.items():
        count = len(sparse.get(name, epochs))
        if array.ndim < 1 or array.shape[0] != count:
            raise WireError(
                f"tensors/{name}: shape {array.shape} must start with its {count} epochs"
            )
    return EpochChunk(epochs, metrics, tensors, sparse, times), checkpoint
