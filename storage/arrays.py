"""Numpy arrays as compact binary: dtype string + shape + raw bytes; never pickle."""

from __future__ import annotations

import json

import numpy as np

_ALLOWED_KINDS = "biuf"  # bool, int, unsigned, float


def encode(array: np.ndarray) -> tuple[str, str, bytes]:
    """(dtype, shape as JSON, C-ordered little-endian bytes) of a numeric array."""
    array = np.asarray(array)
    if array.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(f"cannot store arrays of dtype {array.dtype}: numeric only")
    # np.asarray keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d).
    array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
    return array.dtype.str, json.dumps(list(array.shape)), array.tobytes()


def decode(dtype: str, shape: str | list[int], data: bytes) -> np.ndarray:
    dims = json.loads(shape) if isinstance(shape, str) else shape
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(dims)
