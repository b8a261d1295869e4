"""MNIST and Fashion-MNIST from local files (Keras .npz or the four IDX files).

Reading never downloads; `netlens data get NAME` (netlens/datafetch.py) puts the IDX files in
<data_dir>/NAME/, where locate() looks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from netlens.storage.upload_checks import npy_header
from netlens.worker.datasets.base import DatasetError, Source

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# IDX type byte -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def parse_idx(data: bytes, what: str = "IDX file") -> np.ndarray:
    """Decode IDX bytes (gzip allowed): 0, 0, type byte, ndim, ndim big-endian uint32 dims, data."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DatasetError(f"dataset.path: {what} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(dims) != ndim or len(data) - header != expected:
        raise DatasetError(
            f"dataset.path: {what} is truncated or corrupt: header says {dims}, "
            f"{expected} data bytes, the file has {max(0, len(data) - header)}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _idx_paths(folder: Path) -> list[Path] | None:
    """The four IDX files in `folder` (each plain or .gz), or None if any is missing."""
    found = []
    for base in IDX_FILES:
        candidates = [folder / base, folder / f"{base}.gz"]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def _missing_message(name: str, folder: Path, user_path: bool) -> str:
    title = _TITLES[name]
    looked = [folder / f"{name}.npz", *(folder / f"{b}[.gz]" for b in IDX_FILES)]
    where = f"{folder}/" if user_path else f"{folder}/ or set dataset.path"
    fetch = "" if user_path else f"run `netlens data get {name}` (downloads them to {folder}/), or "
    return (
        f"dataset.path: no {title} file found; looked at {', '.join(map(str, looked))}; "
        f"{fetch}put {name}.npz (keys {', '.join(NPZ_KEYS)}) or the four IDX files "
        f"({', '.join(IDX_FILES)}, each optionally .gz) in {where}"
    )


def locate(name: str, path: str | None, data_dir: Path) -> Path | list[Path]:
    """The .npz file, or the four IDX files, to read for `name` (mnist or fashion-mnist)."""
    folder = data_dir / name
    if path:
        given = Path(path).expanduser().absolute()
        if given.is_file():
            if given.suffix != ".npz":
                raise DatasetError(
                    f"dataset.path: {given} is not a .npz file; give a .npz with keys "
                    f"{', '.join(NPZ_KEYS)} or a folder holding the four IDX files"
                )
            return given
        if not given.is_dir():
            raise DatasetError(
                f"dataset.path: {given} does not exist; give a {name}.npz file or a "
                "folder holding it or the four IDX files"
            )
        folder = given
    npz = folder / f"{name}.npz"
    if npz.is_file():
        return npz
    idx = _idx_paths(folder)
    if idx is None:
        raise DatasetError(_missing_message(name, folder, bool(path)))
    return idx


def _read_npz(path: Path) -> tuple[list[np.ndarray], str]:
    raw = path.read_bytes()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in NPZ_KEYS if k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):  # numpy's words may quote it
        raise DatasetError(
            f"dataset.path: {path} is not a readable .npz file of number arrays"
        ) from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DatasetError(
            f"dataset.path: {path} lacks the keys {missing}; it needs "
            f"{', '.join(NPZ_KEYS)} (the Keras mnist.npz layout)"
        )
    return [arrays[k] for k in NPZ_KEYS], hashlib.sha256(raw).hexdigest()


def _head_of_npy(member, max_rows: int) -> np.ndarray:
    """The first `max_rows` rows of an .npy stream, reading only those bytes."""
    descr, shape, fortran = npy_header(member)
    dtype = np.dtype(descr)
    if fortran or dtype.hasobject or not shape:
        raise ValueError("not a C-ordered array of numbers")
    rows = min(shape[0], max_rows)
    count = rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    data = member.read(count)
    if len(data) != count:
        raise ValueError("truncated")
    return np.frombuffer(data, dtype=dtype).reshape((rows, *shape[1:]))


def _read_npz_head(path: Path, max_rows: int) -> tuple[list[np.ndarray], str]:
    """The first `max_rows` images and labels of each part, never the whole file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {m.filename.removesuffix(".npy"): m for m in archive.infolist()}
            missing = [k for k in NPZ_KEYS if k not in names]
            if missing:
                raise DatasetError(
                    f"dataset.path: {path} lacks the keys {missing}; it needs "
                    f"{', '.join(NPZ_KEYS)} (the Keras mnist.npz layout)"
                )
            arrays = []
            for key in NPZ_KEYS:
                with archive.open(names[key]) as member:
                    arrays.append(_head_of_npy(member, max_rows))
    except (OSError, ValueError, SyntaxError, zipfile.BadZipFile, EOFError):
        raise DatasetError(
            f"dataset.path: {path} is not a readable .npz file of number arrays"
        ) from None
    return arrays, ""


def _read_idx(paths: list[Path], max_rows: int | None = None) -> tuple[list[np.ndarray], str]:
    """Arrays in NPZ_KEYS order; the hash is sha256 over the four files' sha256 hex digests
    (none with `max_rows`: then only the first rows of each file are read)."""
    if max_rows is not None:
        return [_idx_head(p, max_rows) for p in paths], ""
    arrays, digests = [], []
    for p in paths:
        raw = p.read_bytes()
        digests.append(hashlib.sha256(raw).hexdigest())
        arrays.append(parse_idx(raw, str(p)))
    combined = hashlib.sha256("".join(digests).encode("ascii")).hexdigest()
    return arrays, combined


def _idx_head(path: Path, max_rows: int) -> np.ndarray:
    """The first `max_rows` rows of an IDX file (plain or .gz), reading only those bytes."""
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if is_gzip else open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
            raise DatasetError(f"dataset.path: {path} is not an IDX file (bad magic number)")
        dtype, ndim = np.dtype(_IDX_TYPES[magic[2]]), magic[3]
        dims = [int(d) for d in np.frombuffer(f.read(4 * ndim), dtype=">u4")]
        if len(dims) != ndim or not dims:
            raise DatasetError(f"dataset.path: {path} is truncated or corrupt")
        rows = min(dims[0], max_rows)
        count = rows * int(np.prod(dims[1:], dtype=np.int64)) * dtype.itemsize
        data = f.read(count)
    if len(data) != count:
        raise DatasetError(f"dataset.path: {path} is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype).reshape((rows, *dims[1:]))


def _images(x: np.ndarray, what: str) -> np.ndarray:
    """(n, H, W) images -> float32 (n, H*W) in [0, 1] (divided by 255 unless already <= 1)."""
    if x.ndim != 3:
        raise DatasetError(f"dataset.path: {what} has shape {x.shape}; expected (n, height, width)")
    flat = x.reshape(len(x), -1).astype(np.float32)
    if np.issubdtype(x.dtype, np.integer) or (flat.size and flat.max() > 1.0):
        flat /= 255.0
    return flat


def load_mnist(name: str, path: str | None, data_dir: Path, max_rows: int | None = None) -> Source:
    """Read MNIST/Fashion-MNIST; the train part trains, the test part validates and gives OOD.
    `max_rows`: only the first images of each part (a preview; no hash is computed)."""
    found = locate(name, path, data_dir)
    if isinstance(found, Path):
        (x_tr, y_tr, x_te, y_te), digest = (
            _read_npz(found) if max_rows is None else _read_npz_head(found, max_rows)
        )
        source = str(found)
    else:
        (x_tr, y_tr, x_te, y_te), digest = _read_idx(found, max_rows)
        source = str(found[0].parent)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te) or x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(f"dataset.path: {source}: image and label counts or image sizes differ")
    names = FASHION_NAMES if name == "fashion-mnist" else [str(d) for d in range(10)]
    labels = np.unique(np.concatenate([y_tr, y_te])).astype(np.int64)
    return Source(
        x=_images(x_tr, "x_train"),
        y=y_tr.astype(np.int64),
        x_test=_images(x_te, "x_test"),
        y_test=y_te.astype(np.int64),
        names={int(k): names[k] if 0 <= k < len(names) else str(k) for k in labels},
        image_shape=(int(x_tr.shape[1]), int(x_tr.shape[2])),
        source_path=source,
        source_sha256=digest,
    )
