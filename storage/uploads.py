"""Uploaded data files (CSV, MNIST .npz): checked, stored under server-generated names, listed.

A file sent by a client is size-limited (`Settings.max_upload_bytes`), sanity-checked for its
kind, and written atomically to `<data dir>/uploads/<stored_name>`, where `stored_name` is
random hex chosen here plus the kind's extension. The client's file name is kept only for
display (its basename, at most 255 characters) and never takes part in a path. A spec names
an upload by id (`dataset.upload`); `resolve_spec_upload` turns that into the stored file's
path, and refuses paths sent by clients when the server does not read them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from storage.db import Database
from storage.limits import check_upload
from storage.models import Upload
from storage.settings import Settings
from storage.spec import ExperimentSpec, parse_spec

UploadKind = Literal["csv", "mnist"]
KINDS: tuple[str, ...] = ("csv", "mnist")
EXTENSIONS = {"csv": (".csv",), "mnist": (".npz",)}  # allowed endings of the client's name
STORED_SUFFIX = {"csv": ".csv", "mnist": ".npz"}
# Which upload kind each dataset reads.
DATASET_KIND = {"csv": "csv", "mnist": "mnist", "fashion-mnist": "mnist"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")  # the Keras mnist.npz layout
NPZ_EXPANSION = 8  # an .npz may hold at most this many times the upload limit, uncompressed
MAX_NAME = 255
UPLOADS_FOLDER = "uploads"
_STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(csv|npz)$")
MB = 2**20


class UploadError(ValueError):
    """A refused upload or upload reference; the message names the field and the limit."""


@dataclass(frozen=True)
class UploadInfo:
    id: int
    owner_id: int | None
    kind: str
    original_name: str  # for display only
    stored_name: str
    size: int
    sha256: str
    created_at: datetime

    def describe(self) -> str:
        """'iris.csv (4.4 kB)'."""
        return f"{self.original_name or self.stored_name} ({format_size(self.size)})"

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


def _info(row: Upload) -> UploadInfo:
    created = row.created_at
    if created is not None and created.tzinfo is None:  # SQLite drops the zone: it is UTC
        created = created.replace(tzinfo=UTC)
    return UploadInfo(id=row.id, owner_id=row.owner_id, kind=row.kind,
                      original_name=row.original_name, stored_name=row.stored_name,
                      size=row.size, sha256=row.sha256, created_at=created)


def format_size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < MB:
        return f"{n / 1024:.1f} kB"
    return f"{n / MB:.1f} MB"


def display_name(name: str | None) -> str:
    """The client's file name reduced to something safe to show: its last path component
    (after '/' or '\\'), without control characters (NUL included), at most 255 characters
    (a longer stem is cut, its extension kept)."""
    text = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    if text in (".", ".."):
        text = ""
    if len(text) > MAX_NAME:  # shorten the stem, keep the extension
        stem, dot, ext = text.rpartition(".")
        keep = dot and stem and len(ext) <= 16
        text = stem[:MAX_NAME - len(ext) - 1] + "." + ext if keep else text[:MAX_NAME]
    return text


def uploads_dir(settings: Settings) -> Path:
    return Path(settings.resolved_data_dir) / UPLOADS_FOLDER


def upload_path(settings: Settings, info: UploadInfo) -> Path:
    """The stored file of an upload; raises UploadError unless it lies inside uploads/."""
    folder = uploads_dir(settings).resolve()
    if not _STORED_NAME.match(info.stored_name or ""):
        raise UploadError(f"dataset.upload: upload {info.id} has an invalid stored name")
    path = (folder / info.stored_name).resolve()
    if path.parent != folder:
        raise UploadError(f"dataset.upload: upload {info.id} resolves outside the uploads folder")
    return path


# -- checks -------------------------------------------------------------------------------

def _check_size(settings: Settings, data: bytes) -> None:
    limit = settings.max_upload_bytes
    if len(data) > limit:
        raise UploadError(f"file: {len(data) / MB:.1f} MB is over the "
                          f"{settings.max_upload_mb} MB upload limit")
    if not data:
        raise UploadError("file: the file is empty (0 bytes); upload a file of 1 byte to "
                          f"{settings.max_upload_mb} MB")


def _check_extension(kind: str, name: str) -> None:
    allowed = EXTENSIONS[kind]
    if not name.lower().endswith(allowed):
        shown = repr(name) if name else "the file name"
        raise UploadError(f"file: {shown} is not a {' or '.join(allowed)} file; a {kind} upload "
                          f"must be named *{' or *'.join(allowed)}")


def _check_csv(data: bytes) -> None:
    """UTF-8 text, a header of at least 2 columns, at least one data row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"file: not UTF-8 text (byte {exc.start}); a csv upload must be a "
                          "UTF-8 CSV file with a header row") from None
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise UploadError("file: no header row; a csv upload needs a header row, then "
                              "at least 1 data row")
        if len(header) < 2:
            raise UploadError(f"file: the header has {len(header)} column; a csv upload needs "
                              "at least 2 (features and a label)")
        if not any(any(cell.strip() for cell in row) for row in reader):
            raise UploadError("file: a header but no data rows; a csv upload needs at least "
                              "1 data row")
    except csv.Error as exc:
        raise UploadError(f"file: not a readable CSV file: {exc}") from None


def _check_npz(settings: Settings, data: bytes) -> None:
    """A zip of the four Keras arrays, read by numpy with allow_pickle=False; its
    uncompressed size is bounded before any array is read."""
    import numpy as np

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UploadError(f"file: not an .npz (zip) file: {exc}") from None
    expanded = sum(m.file_size for m in members)
    limit = NPZ_EXPANSION * settings.max_upload_bytes
    if expanded > limit:
        raise UploadError(f"file: the .npz holds {expanded / MB:.1f} MB uncompressed, over the "
                          f"{limit // MB} MB limit ({NPZ_EXPANSION} × the upload limit)")
    names = {m.filename.removesuffix(".npy") for m in members}
    missing = [k for k in NPZ_KEYS if k not in names]
    if missing:
        raise UploadError(f"file: the .npz lacks the arrays {missing}; it needs "
                          f"{', '.join(NPZ_KEYS)} (the Keras mnist.npz layout)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            x_tr, y_tr, x_te, y_te = (npz[k] for k in NPZ_KEYS)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UploadError(f"file: an array of the .npz cannot be read: {exc}") from None
    for key, x in (("x_train", x_tr), ("x_test", x_te)):
        if x.ndim != 3 or not (np.issubdtype(x.dtype, np.integer)
                               or np.issubdtype(x.dtype, np.floating)):
            raise UploadError(f"file: {key} is {x.dtype} of shape {x.shape}; it must be numbers "
                              "of shape (n, height, width)")
    for key, y, x in (("y_train", y_tr, x_tr), ("y_test", y_te, x_te)):
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise UploadError(f"file: {key} is {y.dtype} of shape {y.shape}; it must be "
                              f"{len(x)} integer labels, one per image")
    if x_tr.shape[1:] != x_te.shape[1:] or len(x_tr) == 0:
        raise UploadError(f"file: x_train {x_tr.shape} and x_test {x_te.shape} must hold "
                          "images of one size, and x_train at least 1")


# -- operations ---------------------------------------------------------------------------

def _write_atomically(folder: Path, stored_name: str, data: bytes) -> Path:
    final = folder / stored_name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o640)
        if final.exists():  # 128 random bits: never in practice; never overwrite
            raise UploadError("file: stored name collision; upload again")
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def save_upload(db: Database, settings: Settings, owner_id: int | None, original_name: str,
                data: bytes, kind: str) -> UploadInfo:
    """Check and store an uploaded file, record it in `uploads`; raises UploadError."""
    if kind not in KINDS:
        raise UploadError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UploadError("file: the contents must be bytes")
    data = bytes(data)
    _check_size(settings, data)
    name = display_name(original_name)
    _check_extension(kind, name)
    if kind == "csv":
        _check_csv(data)
    else:
        _check_npz(settings, data)
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16) + STORED_SUFFIX[kind]
    path = _write_atomically(folder, stored_name, data)
    try:
        with db.session() as s:
            check_upload(s, settings, owner_id, len(data))  # counted and recorded atomically
            row = Upload(owner_id=owner_id, kind=kind, original_name=name,
                         stored_name=stored_name, size=len(data),
                         sha256=hashlib.sha256(data).hexdigest())
            s.add(row)
            s.flush()
            return _info(row)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def get_upload(db: Database, upload_id: int) -> UploadInfo | None:
    with db.session() as s:
        row = s.get(Upload, upload_id)
        return _info(row) if row is not None else None


def list_uploads(db: Database, owner_id: int | None = None) -> list[UploadInfo]:
    """Newest first; only `owner_id`'s when given."""
    query = select(Upload).order_by(Upload.id.desc())
    if owner_id is not None:
        query = query.where(Upload.owner_id == owner_id)
    with db.session() as s:
        return [_info(row) for row in s.scalars(query)]


PATHS_REFUSED = ("dataset.path: file paths are accepted only from the command line on the "
                 "server; upload the file instead and use dataset.upload")


def resolve_spec_upload(db: Database, settings: Settings, spec: ExperimentSpec, *,
                        allow_paths: bool) -> ExperimentSpec:
    """The spec a worker should run: with `dataset.upload` set, its `dataset.path` becomes
    the stored file of that upload (which must exist and fit the dataset). Without an
    upload, a client's `dataset.path` passes only when `allow_paths` (single-user mode, CLI)."""
    ds = spec.dataset
    if ds.upload is None:
        if ds.path and not allow_paths:
            raise UploadError(PATHS_REFUSED)
        return spec
    needed = DATASET_KIND.get(ds.name)
    if needed is None:
        raise UploadError(f"dataset.upload: dataset {ds.name!r} reads no file; uploads are for "
                          f"{', '.join(DATASET_KIND)}")
    info = get_upload(db, ds.upload)
    if info is None:
        raise UploadError(f"dataset.upload: upload {ds.upload} does not exist")
    if info.kind != needed:
        raise UploadError(f"dataset.upload: upload {info.id} is a {info.kind} file; dataset "
                          f"{ds.name!r} needs a {needed} upload")
    path = upload_path(settings, info)
    if not path.is_file():
        raise UploadError(f"dataset.upload: the file of upload {info.id} is missing from the "
                          "server's uploads folder; upload it again")
    data = spec.model_dump(mode="json")
    data["dataset"]["path"] = str(path)
    return parse_spec(data)
