"""A labelled table from a CSV file with a header row; features kept as raw numbers."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from pathlib import Path

import numpy as np

from worker.datasets.base import DatasetError, Source


def _read_rows(raw: bytes, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header cells and (line number, cells) of every non-blank data row."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset.path: {path} is not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DatasetError(f"dataset.path: {path} is empty; it needs a header row, then data rows")
    rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    return [h.strip() for h in header], rows


def _label_index(header: list[str], label_column: str | None, path: Path) -> int:
    if len(header) < 2:
        raise DatasetError(f"dataset.path: {path} has {len(header)} column; it needs at least "
                           "one feature column and one label column")
    if label_column is None:
        return len(header) - 1
    if label_column not in header:
        raise DatasetError(f"dataset.label_column: {label_column!r} is not a column of {path}; "
                           f"the columns are {header}")
    return header.index(label_column)


def _number(cell: str) -> float:
    value = float(cell)
    if not math.isfinite(value):
        raise ValueError(cell)
    return value


def _parse(header: list[str], rows: list[tuple[int, list[str]]], label_at: int,
           path: Path) -> tuple[np.ndarray, list[str]]:
    """float32 features of every row and the raw label strings; errors name column and row."""
    features = [i for i in range(len(header)) if i != label_at]
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    labels = []
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(header):
            raise DatasetError(f"dataset.path: {path}: row {r + 1} (line {line}) has {len(cells)} "
                               f"cells but the header has {len(header)} columns")
        for j, col in enumerate(features):
            try:
                x[r, j] = _number(cells[col].strip())
            except ValueError:
                raise DatasetError(
                    f"dataset.path: {path}: column {header[col]!r}, row {r + 1} (line {line}): "
                    f"{cells[col]!r} is not a finite number; every column except the label "
                    f"column {header[label_at]!r} must be numeric") from None
        labels.append(cells[label_at].strip())
    return x, labels


def _encode_labels(labels: list[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Integer labels stay as they are; otherwise sorted unique strings become 0..C-1."""
    try:
        y = np.array([int(s) for s in labels], dtype=np.int64)
        return y, {int(v): str(int(v)) for v in np.unique(y)}
    except ValueError:
        names = sorted(set(labels))
        code = {name: i for i, name in enumerate(names)}
        return np.array([code[s] for s in labels], dtype=np.int64), dict(enumerate(names))


def load_csv(path_text: str | None, label_column: str | None) -> Source:
    """Read the CSV at dataset.path; the label column defaults to the last one."""
    if not path_text:
        raise DatasetError("dataset.path: a csv dataset needs the path of the CSV file")
    path = Path(path_text).expanduser().absolute()
    if not path.is_file():
        raise DatasetError(f"dataset.path: {path} does not exist or is not a file; give the path "
                           "of a CSV file with a header row")
    raw = path.read_bytes()
    header, rows = _read_rows(raw, path)
    label_at = _label_index(header, label_column, path)
    if not rows:
        raise DatasetError(f"dataset.path: {path} has a header but no data rows")
    x, labels = _parse(header, rows, label_at, path)
    y, names = _encode_labels(labels)
    if len(names) < 2:
        raise DatasetError(f"dataset.label_column: column {header[label_at]!r} of {path} holds "
                           f"only {sorted(names.values())}; a classifier needs at least 2 labels")
    return Source(x=x, y=y, names=names, source_path=str(path),
                  source_sha256=hashlib.sha256(raw).hexdigest())
