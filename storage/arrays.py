"""Numpy arrays as compact binary: dtype string + shape + raw bytes; never pickle.

Stored blobs (run_tensors.data, run_arrays.data) carry a codec per row (`codec` column):
"raw" (the bytes as `encode` gives them; every row written before migration 0007) or "zstd"
(those bytes compressed with Zstandard, level ZSTD_LEVEL). `pack` compresses only when it pays:
ReLU signatures (many exact zeros) shrink about 1.8x, a layer's weights (random-looking
floats) barely 1.1x and are kept raw, so reading weight histories costs no decompression.
Lossless either way: `unpack(pack(b)) == b`.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import zstandard

from netlens.storage.models import RunArray

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


CODECS = ("raw", "zstd")
ZSTD_LEVEL = 1  # level 3 gains ~4 % more on signatures at 2.5x the time
MIN_PACKED_BYTES = 256  # smaller blobs stay raw (a zstd frame costs ~10 bytes and a call)
MAX_PACKED_SHARE = 0.9  # keep the compressed bytes only if they save at least 10 %
SAMPLE_BYTES = 16_384  # blobs over 4x this are tried on a sample first...
MAX_SAMPLE_SHARE = 0.92  # ...and stored raw when the sample shrinks less than 8 %
_local = threading.local()  # zstd (de)compressor objects are not safe across threads


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "zstd", None)
    if pair is None:
        pair = _local.zstd = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True),
            zstandard.ZstdDecompressor(),
        )
    return pair


def pack(data: bytes) -> tuple[str, bytes]:
    """(codec, stored bytes) for one blob: zstd when that saves enough, else raw. A big blob
    is first judged by a sample from its middle, so that weights (which barely compress) cost
    one small trial, not a full compression thrown away."""
    if len(data) < MIN_PACKED_BYTES:
        return "raw", data
    compressor = _zstd()[0]
    if len(data) > 4 * SAMPLE_BYTES:
        middle = len(data) // 2
        sample = data[middle : middle + SAMPLE_BYTES]
        if len(compressor.compress(sample)) > MAX_SAMPLE_SHARE * SAMPLE_BYTES:
            return "raw", data
    packed = compressor.compress(data)
    if len(packed) > MAX_PACKED_SHARE * len(data):
        return "raw", data
    return "zstd", packed


def unpack(codec: str | None, data: bytes, size: int | None = None) -> bytes:
    """The bytes `pack` was given. `size`, when known (dtype x shape), bounds the output: a
    stored frame that claims more is refused rather than allocated."""
    if codec in (None, "raw"):
        return data
    if codec != "zstd":
        raise ValueError(f"codec: unknown stored codec {codec!r} (known: {', '.join(CODECS)})")
    if size is None:
        return _zstd()[1].decompress(data)
    declared = zstandard.frame_content_size(data)
    if declared != size:  # checked before anything is allocated
        raise ValueError(f"codec: stored zstd frame declares {declared} bytes, expected {size}")
    out = _zstd()[1].decompress(data, max_output_size=size)
    if len(out) != size:
        raise ValueError(f"codec: stored zstd frame holds {len(out)} bytes, expected {size}")
    return out


def decode_stored(codec: str | None, dtype: str, shape: str | list[int], data: bytes):
    """`decode` of a stored row: unpacked first, its size checked against dtype x shape."""
    dims = json.loads(shape) if isinstance(shape, str) else list(shape)
    size = int(np.dtype(dtype).itemsize * int(np.prod(dims, dtype=np.int64)))
    return decode(dtype, dims, unpack(codec, data, size))


def array_row(run_id: int, name: str, dtype: str, shape: str, raw: bytes) -> RunArray:
    """A run_arrays row for `encode`'s output, compressed when that pays (`pack`)."""
    codec, data = pack(raw)
    return RunArray(run_id=run_id, name=name, dtype=dtype, shape=shape, data=data, codec=codec)
