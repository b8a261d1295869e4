"""Uploaded data files (CSV, MNIST .npz): checked, stored under server-generated names, listed.

A file sent by a client is size-limited (`Settings.max_upload_bytes`), sanity-checked for its
kind, and written atomically to `<data dir>/uploads/<stored_name>`, where `stored_name` is
random hex chosen here plus the kind's extension. The client's file name is kept only for
display (its basename, at most 255 characters) and never takes part in a path. A spec names
an upload by id (`dataset.upload`); `resolve_spec_upload` turns that into the stored file's
path, and refuses paths sent by clients when the server does not read them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

from sqlalchemy import select, update

from netlens.storage.catalog import DATASETS
from netlens.storage.db import Database
from netlens.storage.limits import check_upload
from netlens.storage.models import Run, Upload
from netlens.storage.settings import Settings
from netlens.storage.spec import ExperimentSpec, parse_spec
from netlens.storage.upload_checks import FileCheckError, check_csv, check_npz

UploadKind = Literal["csv", "mnist"]
KINDS: tuple[str, ...] = ("csv", "mnist")
EXTENSIONS = {"csv": (".csv",), "mnist": (".npz",)}  # allowed endings of the client's name
STORED_SUFFIX = {"csv": ".csv", "mnist": ".npz"}
# Which upload kind each dataset reads (storage/catalog.py: DatasetInfo.upload).
DATASET_KIND = {name: info.upload for name, info in DATASETS.items() if info.upload}
if not set(DATASET_KIND.values()) <= set(KINDS):
    raise RuntimeError(
        f"storage.catalog names upload kinds {sorted(set(DATASET_KIND.values()))}; "
        f"storage.uploads reads only {list(KINDS)}"
    )
MAX_NAME = 255
UPLOADS_FOLDER = "uploads"
_STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(csv|npz)$")
MB = 2**20
CHUNK = 2**20  # bytes read from a client's stream at a time


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
    used_at: datetime | None = None  # when a run first took it (unused ones expire)

    def describe(self) -> str:
        """'iris.csv (4.4 kB)'."""
        return f"{self.original_name or self.stored_name} ({format_size(self.size)})"

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        out["used_at"] = self.used_at.isoformat() if self.used_at else None
        return out


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite drops the zone: it is UTC
        return moment.replace(tzinfo=UTC)
    return moment


def _info(row: Upload) -> UploadInfo:
    return UploadInfo(
        id=row.id,
        owner_id=row.owner_id,
        kind=row.kind,
        original_name=row.original_name,
        stored_name=row.stored_name,
        size=row.size,
        sha256=row.sha256,
        created_at=_utc(row.created_at),
        used_at=_utc(row.used_at),
    )


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
        text = stem[: MAX_NAME - len(ext) - 1] + "." + ext if keep else text[:MAX_NAME]
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


# -- checks ---------------------------------------------------------------------------------


def _too_big(settings: Settings, size: int) -> UploadError:
    return UploadError(
        f"file: {size / MB:.1f} MB is over the {settings.max_upload_mb} MB upload limit"
    )


def _check_extension(kind: str, name: str) -> None:
    allowed = EXTENSIONS[kind]
    if not name.lower().endswith(allowed):
        shown = repr(name) if name else "the file name"
        raise UploadError(
            f"file: {shown} is not a {' or '.join(allowed)} file; a {kind} upload "
            f"must be named *{' or *'.join(allowed)}"
        )


def _check_file(settings: Settings, path: Path, kind: str) -> None:
    try:
        if kind == "csv":
            check_csv(path)
        else:
            check_npz(path, settings.max_upload_bytes)
    except FileCheckError as exc:
        raise UploadError(str(exc)) from None


# -- operations ---------------------------------------------------------------------------


def _chunks(data: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for at in range(0, len(view), CHUNK):
            yield bytes(view[at : at + CHUNK])
        return
    while chunk := data.read(CHUNK):
        yield chunk


def _receive(settings: Settings, folder: Path, data: bytes | BinaryIO) -> tuple[Path, int, str]:
    """Stream `data` into a temporary file of `folder`, the size limit checked while reading;
    (temporary path, size, sha256). The caller renames or deletes it."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(data):
                size += len(chunk)
                if size > settings.max_upload_bytes:  # a stream: stop reading here
                    raise UploadError(
                        f"file: over the {settings.max_upload_mb} MB upload "
                        "limit (the server stopped reading there)"
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if size == 0:
        Path(tmp).unlink(missing_ok=True)
        raise UploadError(
            "file: the file is empty (0 bytes); upload a file of 1 byte to "
            f"{settings.max_upload_mb} MB"
        )
    return Path(tmp), size, digest.hexdigest()


def _store(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o640)
    if final.exists():  # 128 random bits: never in practice; never overwrite
        raise UploadError("file: stored name collision; upload again")
    os.replace(tmp, final)


def save_upload(
    db: Database,
    settings: Settings,
    owner_id: int | None,
    original_name: str,
    data: bytes | BinaryIO,
    kind: str,
) -> UploadInfo:
    """Check and store an uploaded file (bytes, or a binary stream read in chunks with the
    size limit checked while reading), record it in `uploads`; raises UploadError. The one
    place uploads are created: per-user quotas hook in here."""
    if kind not in KINDS:
        raise UploadError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) > settings.max_upload_bytes:
            raise _too_big(settings, len(data))
    elif not callable(getattr(data, "read", None)):
        raise UploadError("file: the contents must be bytes")
    name = display_name(original_name)
    _check_extension(kind, name)
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    tmp, size, sha256 = _receive(settings, folder, data)
    final = folder / (secrets.token_hex(16) + STORED_SUFFIX[kind])
    try:
        _check_file(settings, tmp, kind)
        _store(tmp, final)
        with db.session() as s:
            check_upload(s, settings, owner_id, size)  # counted and recorded atomically
            row = Upload(
                owner_id=owner_id,
                kind=kind,
                original_name=name,
                stored_name=final.name,
                size=size,
                sha256=sha256,
            )
            s.add(row)
            s.flush()
            return _info(row)
    except BaseException:
        tmp.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise


def get_upload(db: Database, upload_id: int) -> UploadInfo | None:
    """Any user's upload: for admin views and tests. Requests use `usable_upload`."""
    with db.session() as s:
        row = s.get(Upload, upload_id)
        return _info(row) if row is not None else None


def usable_upload(
    db: Database, upload_id: int, *, user_id: int | None, is_admin: bool
) -> UploadInfo | None:
    """The upload if this user may use it (its owner, or an admin; single-user mode's local
    operator is an admin), else None: another member's upload looks like a missing one."""
    info = get_upload(db, upload_id)
    if info is None or is_admin or (user_id is not None and info.owner_id == user_id):
        return info
    return None


def mark_used(db: Database, upload_id: int | None) -> None:
    """Record that a run took the upload (unused uploads are deleted after a while)."""
    if upload_id is None:
        return
    with db.session() as s:
        s.execute(update(Upload).where(Upload.id == upload_id).values(used_at=datetime.now(UTC)))


def list_uploads(db: Database, owner_id: int | None = None) -> list[UploadInfo]:
    """Newest first; only `owner_id`'s when given."""
    query = select(Upload).order_by(Upload.id.desc())
    if owner_id is not None:
        query = query.where(Upload.owner_id == owner_id)
    with db.session() as s:
        return [_info(row) for row in s.scalars(query)]


class UploadInUse(UploadError):
    """The upload is the data of runs that still exist (a retry would read it again)."""

    def __init__(self, upload_id: int, run_ids: list[int]):
        shown = ", ".join(map(str, run_ids[:10])) + (" ..." if len(run_ids) > 10 else "")
        super().__init__(
            f"upload {upload_id}: the data of {len(run_ids)} run(s) ({shown}), which a retry "
            "reads again; delete those runs first"
        )
        self.upload_id, self.run_ids = upload_id, run_ids


def _runs_naming(s, upload_id: int) -> list[int]:
    named = Run.spec[("dataset", "upload")].as_integer()  # a JSON path: PostgreSQL and SQLite
    return list(s.scalars(select(Run.id).where(named == upload_id).order_by(Run.id)))


def runs_using(db: Database, upload_id: int) -> list[int]:
    """The ids of the runs whose spec names this upload (`dataset.upload`), ascending."""
    with db.session() as s:
        return _runs_naming(s, upload_id)


def delete_upload(db: Database, settings: Settings, upload_id: int) -> bool:
    """Delete an upload no run names (UploadInUse otherwise): its row, then its file. False
    when there is no such upload. The caller checks who may (its owner or an admin)."""
    with db.session() as s:
        row = s.get(Upload, upload_id, with_for_update=True)
        if row is None:
            return False
        users = _runs_naming(s, upload_id)
        if users:
            raise UploadInUse(upload_id, users)
        stored = row.stored_name
        s.delete(row)
    if _STORED_NAME.match(stored or ""):  # never a path outside uploads/
        (uploads_dir(settings) / stored).unlink(missing_ok=True)
    return True


PATHS_REFUSED = (
    "dataset.path: file paths are accepted only from the command line on the "
    "server; upload the file instead and use dataset.upload"
)


def resolve_spec_upload(
    db: Database,
    settings: Settings,
    spec: ExperimentSpec,
    *,
    allow_paths: bool,
    user_id: int | None,
    is_admin: bool,
) -> ExperimentSpec:
    """The spec a worker should run: with `dataset.upload` set, its `dataset.path` becomes
    the stored file of that upload (which must exist, be usable by this user, and fit the
    dataset). Without an upload, a client's `dataset.path` passes only when `allow_paths`
    (single-user mode, CLI)."""
    ds = spec.dataset
    if ds.upload is None:
        if ds.path and not allow_paths:
            raise UploadError(PATHS_REFUSED)
        return spec
    needed = DATASET_KIND.get(ds.name)
    if needed is None:
        raise UploadError(
            f"dataset.upload: dataset {ds.name!r} reads no file; uploads are for "
            f"{', '.join(DATASET_KIND)}"
        )
    info = usable_upload(db, ds.upload, user_id=user_id, is_admin=is_admin)
    if info is None:  # the same words for "not yours" as for "no such upload"
        raise UploadError(f"dataset.upload: upload {ds.upload} does not exist")
    if info.kind != needed:
        raise UploadError(
            f"dataset.upload: upload {info.id} is a {info.kind} file; dataset "
            f"{ds.name!r} needs a {needed} upload"
        )
    path = upload_path(settings, info)
    if not path.is_file():
        raise UploadError(
            f"dataset.upload: the file of upload {info.id} is missing from the "
            "server's uploads folder; upload it again"
        )
    data = spec.model_dump(mode="json")
    data["dataset"]["path"] = str(path)
    return parse_spec(data)
