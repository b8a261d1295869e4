"""A labelled table from a CSV file with a header row, read row by row within fixed limits.

The file is never held whole: rows go straight into a growing float32 array, labels into a
small code table, and the row, column and class limits (storage.spec.LIMITS) are checked as
each row arrives, so a huge file fails early and cheaply. Error messages name the row, the
column and the limit, never a cell or a line of the file (they are shown in browsers).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from pathlib import Path

import numpy as np

from netlens.storage.spec import LIMITS
from netlens.worker.datasets.base import DatasetError, Source

MAX_ROWS = LIMITS["max_samples"]
MAX_COLUMNS = LIMITS["max_csv_columns"]
MAX_CLASSES = LIMITS["max_classes"]
FIRST_ROWS = 1024  # rows allocated at first; the array doubles when full
INT32 = 2**31


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _label_index(header: list[str], label_column: str | None, path: Path) -> int:
    if len(header) < 2:
        raise DatasetError(
            f"dataset.path: {path} has {len(header)} column; it needs at least "
            "one feature column and one label column"
        )
    if len(header) > MAX_COLUMNS:
        raise DatasetError(
            f"dataset.path: {path} has {len(header)} columns, over the limit of "
            f"{MAX_COLUMNS} (max_csv_columns)"
        )
    if label_column is None:
        return len(header) - 1
    if label_column not in header:
        raise DatasetError(
            f"dataset.label_column: {label_column!r} is not one of the "
            f"{len(header)} column names in the header row of {path}"
        )
    return header.index(label_column)


def _number(cell: str) -> float:
    value = float(cell)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


class _Table:
    """Rows as they are read: features in a growing float32 array, labels as codes."""

    def __init__(self, header: list[str], label_at: int, path: Path):
        self.header, self.label_at, self.path = header, label_at, path
        self.features = [i for i in range(len(header)) if i != label_at]
        self.x = np.empty((FIRST_ROWS, len(self.features)), dtype=np.float32)
        self.codes = np.empty(FIRST_ROWS, dtype=np.int32)
        self.labels: dict[str, int] = {}  # label text -> code, in order of appearance
        self.n = 0

    def add(self, cells: list[str], line: int) -> None:
        row = self.n + 1
        if self.n >= MAX_ROWS:
            raise DatasetError(
                f"dataset.path: {self.path} has more than {MAX_ROWS:,} data rows, "
                f"over the limit (max_samples); at line {line}"
            )
        if len(cells) != len(self.header):
            raise DatasetError(
                f"dataset.path: {self.path}: row {row} (line {line}) has "
                f"{len(cells)} cells but the header has {len(self.header)} columns"
            )
        if self.n == len(self.x):
            self.x = np.resize(self.x, (2 * self.n, len(self.features)))
            self.codes = np.resize(self.codes, 2 * self.n)
        for j, col in enumerate(self.features):
            try:
                self.x[self.n, j] = _number(cells[col].strip())
            except ValueError:
                raise DatasetError(
                    f"dataset.path: {self.path}: column {col + 1}, row {row} (line {line}) is "
                    "not a finite number; every column except the label column "
                    f"(column {self.label_at + 1}) must be numeric"
                ) from None
        label = cells[self.label_at].strip()
        code = self.labels.get(label)
        if code is None:
            if len(self.labels) >= MAX_CLASSES:
                raise DatasetError(
                    f"dataset.label_column: column {self.label_at + 1} of "
                    f"{self.path} holds more than {MAX_CLASSES} distinct labels "
                    f"(the limit, max_classes); at row {row} (line {line})"
                )
            code = self.labels[label] = len(self.labels)
        self.codes[self.n] = code
        self.n += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """x, original labels (integers stay themselves; else sorted texts become 0..C-1)."""
        x, codes = self.x[: self.n].copy(), self.codes[: self.n]
        texts = list(self.labels)
        try:
            values = np.array([int(t) for t in texts], dtype=np.int64)
            if values.size and np.abs(values).max() >= INT32:
                raise ValueError("too large")
            return x, values[codes], {int(v): str(int(v)) for v in np.unique(values)}
        except ValueError:
            order = sorted(texts)
            position = {t: i for i, t in enumerate(order)}
            rank = np.array([position[t] for t in texts] or [0], dtype=np.int64)
            return x, rank[codes], dict(enumerate(order))


def _read(path: Path, label_column: str | None, max_rows: int | None) -> _Table:
    with open(path, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        try:
            header = next(reader, None)
            if not header:
                raise DatasetError(
                    f"dataset.path: {path} is empty; it needs a header row, then data rows"
                )
            header = [h.strip() for h in header]
            table = _Table(header, _label_index(header, label_column, path), path)
            for cells in reader:
                if max_rows is not None and table.n >= max_rows:
                    break
                if any(c.strip() for c in cells):
                    table.add(cells, reader.line_num)
        except UnicodeDecodeError:
            raise DatasetError(
                f"dataset.path: {path} is not UTF-8 text (near line {reader.line_num + 1})"
            ) from None
        except csv.Error:
            raise DatasetError(
                f"dataset.path: {path}: line {reader.line_num} is not valid CSV "
                "(malformed quoting, a NUL byte, or a field over "
                f"{csv.field_size_limit()} characters)"
            ) from None
    return table


def load_csv(
    path_text: str | None, label_column: str | None, max_rows: int | None = None
) -> Source:
    """Read the CSV at dataset.path; the label column defaults to the last one. `max_rows`
    reads only the first rows (a preview)."""
    if not path_text:
        raise DatasetError("dataset.path: a csv dataset needs the path of the CSV file")
    path = Path(path_text).expanduser().absolute()
    if not path.is_file():
        raise DatasetError(
            f"dataset.path: {path} does not exist or is not a file; give the path "
            "of a CSV file with a header row"
        )
    table = _read(path, label_column, max_rows)
    if table.n == 0:
        raise DatasetError(f"dataset.path: {path} has a header but no data rows")
    x, y, names = table.arrays()
    if len(names) < 2:
        raise DatasetError(
            f"dataset.label_column: column {table.label_at + 1} of {path} holds "
            "only 1 distinct label; a classifier needs at least 2"
        )
    return Source(x=x, y=y, names=names, source_path=str(path), source_sha256=_sha256(path))
