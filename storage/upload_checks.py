"""Checks of an uploaded file on disk, in bounded memory, whose errors never quote its contents.

The file was already streamed to disk by storage.uploads; here a CSV is read row by row (never
decoded whole) and an .npz only by its zip directory and the .npy headers of its arrays (never
the arrays). Error messages name the field, the row or array, and the limit, never a cell, a
line or a header of the file: they are shown in browsers.
"""

from __future__ import annotations

import ast
import codecs
import csv
import io
import zipfile
from pathlib import Path

MB = 2**20
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")  # the Keras mnist.npz layout
NPZ_EXPANSION = 8  # an .npz may hold at most this many times the upload limit, uncompressed
MAX_HEADER = 10_000  # bytes of an .npy header (numpy's own files use ~128)


class FileCheckError(ValueError):
    """A file that is not what its kind needs; the message starts with "file:"."""


def check_csv(path: Path) -> None:
    """UTF-8 text, a header of at least 2 columns, at least one data row."""
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise FileCheckError(
                    "file: no header row; a csv upload needs a header row, then at least 1 data row"
                )
            if len(header) < 2:
                raise FileCheckError(
                    f"file: the header has {len(header)} column; a csv upload "
                    "needs at least 2 (features and a label)"
                )
            if not any(any(cell.strip() for cell in row) for row in reader):
                raise FileCheckError(
                    "file: a header but no data rows; a csv upload needs at least 1 data row"
                )
            for _row in reader:  # the rest must decode too
                pass
        except UnicodeDecodeError:
            raise FileCheckError(
                f"file: not UTF-8 text (near line {reader.line_num + 1}); a "
                "csv upload must be a UTF-8 CSV file with a header row"
            ) from None
        except csv.Error:
            raise FileCheckError(
                f"file: not a readable CSV file (line {reader.line_num}: "
                "malformed quoting, a NUL byte or a field over "
                f"{csv.field_size_limit()} characters)"
            ) from None


def npy_header(member) -> tuple[str, tuple[int, ...], bool]:
    """(dtype string, shape, Fortran order) of an .npy stream, read from its header alone;
    ValueError if it is not one (no pickled objects: the header is a Python literal). The
    stream is left at the first byte of the data."""
    magic = member.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        raise ValueError("not an .npy array")
    size_bytes = 2 if magic[6] == 1 else 4
    length = int.from_bytes(member.read(size_bytes), "little")
    if length > MAX_HEADER:
        raise ValueError("header too long")
    header = ast.literal_eval(codecs.decode(member.read(length), "latin1"))
    if not isinstance(header, dict) or not isinstance(header.get("descr"), str):
        raise ValueError("no plain dtype")
    shape = header.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError("bad shape")
    return header["descr"], shape, bool(header.get("fortran_order"))


def _npz_headers(path: Path, limit_bytes: int) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise FileCheckError("file: not an .npz (zip) file") from None
    with archive:
        members = archive.infolist()
        expanded = sum(m.file_size for m in members)
        limit = NPZ_EXPANSION * limit_bytes
        if expanded > limit:
            raise FileCheckError(
                f"file: the .npz holds {expanded / MB:.1f} MB uncompressed, over "
                f"the {limit // MB} MB limit ({NPZ_EXPANSION} × the upload limit)"
            )
        by_key = {m.filename.removesuffix(".npy"): m for m in members}
        missing = [k for k in NPZ_KEYS if k not in by_key]
        if missing:
            raise FileCheckError(
                f"file: the .npz lacks the arrays {missing}; it needs "
                f"{', '.join(NPZ_KEYS)} (the Keras mnist.npz layout)"
            )
        headers = {}
        for key in NPZ_KEYS:
            try:
                with archive.open(by_key[key]) as member:
                    headers[key] = npy_header(member)
            except (
                ValueError,
                SyntaxError,
                OSError,
                zipfile.BadZipFile,
                EOFError,
                MemoryError,
                RecursionError,
            ):
                raise FileCheckError(
                    f"file: an array of the .npz cannot be read: {key} is not "
                    "an .npy array of numbers"
                ) from None
        return headers


def check_npz(path: Path, limit_bytes: int) -> None:
    """A zip of the four Keras arrays: numbers of shape (n, height, width) and n integer
    labels; read from the .npy headers, so no array is loaded."""
    import numpy as np

    shapes, dtypes = {}, {}
    for key, (descr, shape, _fortran) in _npz_headers(path, limit_bytes).items():
        try:
            dtypes[key] = np.dtype(descr)
        except (TypeError, ValueError, SyntaxError):
            dtypes[key] = np.dtype(object)
        if dtypes[key].kind not in "biuf":
            raise FileCheckError(
                f"file: an array of the .npz cannot be read: {key} is not an array of numbers"
            )
        shapes[key] = shape
    for key in ("x_train", "x_test"):
        if len(shapes[key]) != 3:
            raise FileCheckError(
                f"file: {key} is {dtypes[key]} of shape {shapes[key]}; it must "
                "be numbers of shape (n, height, width)"
            )
    for key, images in (("y_train", "x_train"), ("y_test", "x_test")):
        n = shapes[images][0]
        if len(shapes[key]) != 1 or dtypes[key].kind not in "iu" or shapes[key][0] != n:
            raise FileCheckError(
                f"file: {key} is {dtypes[key]} of shape {shapes[key]}; it must "
                f"be {n} integer labels, one per image"
            )
    if shapes["x_train"][1:] != shapes["x_test"][1:] or shapes["x_train"][0] == 0:
        raise FileCheckError(
            f"file: x_train {shapes['x_train']} and x_test {shapes['x_test']} "
            "must hold images of one size, and x_train at least 1"
        )
