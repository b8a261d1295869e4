"""The arrays dataset: training data given in memory to the Python API (nl.Sequential.fit),
stored with the run in run_arrays under `data/...`, and turned into a Dataset here, by the
Python API before it trains and by a worker that retries the run, the same way.

Layout (written by netlens/sdk/model.py):

| name | dtype, shape | |
|---|---|---|
| `data/x_train` | float32 (n, features) | inputs, images flattened row by row (H, W, C) |
| `data/y_train` | int32 (n,) | class index into `data/classes` |
| `data/x_val`, `data/y_val` | as above, (m, ...) | validation data (absent: none) |
| `data/probe_x`, `data/probe_y` | float32 (p, features), int64 (p,) | the probe given to fit (absent: chosen from validation, else training data, as for other datasets) |
| `data/classes` | int64 (C,) | the labels in output order (0 .. C-1) |
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from netlens.storage.spec import ExperimentSpec
from netlens.worker.datasets.base import Dataset, DatasetError
from netlens.worker.datasets.probe import build_probe

PREFIX = "data/"
REQUIRED = ("x_train", "y_train", "classes")
OPTIONAL = ("x_val", "y_val", "probe_x", "probe_y")
GRID_PAD = 0.1  # the grid spans the data's range widened by this fraction (at least 0.25)


def data_sha256(arrays: dict[str, np.ndarray]) -> str:
    """One digest of every stored data array (names, dtypes, shapes and bytes), in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def stored_bounds(x: np.ndarray) -> tuple[float, float, float, float]:
    """The decision-boundary grid of 2-D points: their range, widened on every side."""
    lo, hi = x.min(axis=0).astype(float), x.max(axis=0).astype(float)
    pad = max(GRID_PAD * float(np.max(hi - lo)), 0.25)
    return (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)


def _get(arrays: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return arrays.get(PREFIX + name)


def _image_shape(spec: ExperimentSpec) -> tuple[int, int] | None:
    shape = spec.model.input_shape
    if spec.model.kind == "sequential" and shape and len(shape) >= 2:
        if len(shape) == 2 or shape[2] == 1:
            return int(shape[0]), int(shape[1])
    return None


def dataset_from_arrays(spec: ExperimentSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    """The Dataset of a run whose data is stored with it (`arrays`: names with `data/`)."""
    missing = [PREFIX + n for n in REQUIRED if _get(arrays, n) is None]
    if missing:
        raise DatasetError(
            f"dataset.name: {spec.dataset.name!r}: the run has no stored {', '.join(missing)}; "
            "its data is given to the Python API's fit and stored with the run"
        )
    x = np.ascontiguousarray(_get(arrays, "x_train"), dtype=np.float32)
    y = np.asarray(_get(arrays, "y_train")).astype(np.int32)
    classes = [int(c) for c in _get(arrays, "classes")]
    features = x.shape[1] if x.ndim == 2 else 0
    empty_x, empty_y = np.zeros((0, features), np.float32), np.zeros(0, np.int32)
    x_val = _get(arrays, "x_val")
    x_val = empty_x if x_val is None else np.ascontiguousarray(x_val, dtype=np.float32)
    y_val = _get(arrays, "y_val")
    y_val = empty_y if y_val is None else np.asarray(y_val).astype(np.int32)
    if x.ndim != 2 or y.shape != (len(x),) or x_val.shape[1:] != x.shape[1:]:
        raise DatasetError(f"{PREFIX}x_train: stored arrays of inconsistent shapes {x.shape}")
    if spec.model.kind == "sequential" and features != math.prod(spec.model.input_shape):
        raise DatasetError(
            f"model.input_shape: {spec.model.input_shape} does not match the stored data's "
            f"{features} features"
        )
    for name, labels in (("y_train", y), ("y_val", y_val)):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DatasetError(f"{PREFIX}{name}: class indices outside 0..{len(classes) - 1}")
    rng = np.random.default_rng(spec.dataset.seed)
    probe_x, probe_y = _get(arrays, "probe_x"), _get(arrays, "probe_y")
    if probe_x is not None and probe_y is not None:
        probe_x = np.ascontiguousarray(probe_x, dtype=np.float32)
        probe_y = np.asarray(probe_y).astype(np.int64)
        is_ood = np.zeros(len(probe_x), dtype=bool)
    else:
        pool_x, pool_y = (x_val, y_val) if len(y_val) else (x, y)
        probe_x, probe_y, is_ood = build_probe(
            pool_x,
            pool_y,
            classes,
            pool_x[:0],
            np.zeros(0, np.int64),
            [],
            spec.recording.probe_size,
            rng,
        )
    two_d = features == 2 and len(classes) == 2 and len(x)
    stored = {k: v for k, v in arrays.items() if k.startswith(PREFIX)}
    return Dataset(
        x_train=x,
        y_train=y,
        x_val=x_val,
        y_val=y_val,
        probe_x=probe_x,
        probe_y=probe_y,
        probe_is_ood=is_ood,
        classes=classes,
        class_names=[str(c) for c in classes],
        image_shape=_image_shape(spec),
        grid_bounds=stored_bounds(np.concatenate([x, x_val])) if two_d else None,
        source_sha256=data_sha256(stored),
    )
