"""load_dataset: read or generate the named set, pick classes, split, cap, and build the probe."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netlens.storage.catalog import DATASETS
from netlens.storage.spec import LIMITS
from netlens.worker.datasets.base import (
    Dataset,
    DatasetError,
    Source,
    stratified_split,
    stratified_subsample,
)
from netlens.worker.datasets.csv_file import load_csv
from netlens.worker.datasets.mnist import load_mnist
from netlens.worker.datasets.probe import build_probe
from netlens.worker.datasets.sklearn_sets import digits, moons, sk_circles
from netlens.worker.datasets.synthetic import GENERATED, generate

if TYPE_CHECKING:
    from netlens.storage.spec import DatasetSpec, ExperimentSpec

DATA_DIR_ENV = "NETLENS_DATA_DIR"
VAL_CAP = 10_000  # MNIST: at most this many validation inputs from the test part
MAX_CLASSES = LIMITS["max_classes"]


def default_data_dir() -> Path:
    """$NETLENS_DATA_DIR, else ~/.local/share/netlens/data."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "netlens" / "data"


# One loader per dataset of storage/catalog.py: (dataset spec, rng, data dir, max_rows) -> Source.
Loader = Callable[["DatasetSpec", np.random.Generator, Path, "int | None"], Source]
LOADERS: dict[str, Loader] = {
    **{
        name: lambda ds, rng, _dir, _rows: generate(ds.name, ds.n_samples, ds.noise, rng)
        for name in GENERATED
    },
    "moons": lambda ds, _rng, _dir, _rows: moons(ds.n_samples, ds.noise, ds.seed),
    "sk-circles": lambda ds, _rng, _dir, _rows: sk_circles(ds.n_samples, ds.noise, ds.seed),
    "digits": lambda _ds, _rng, _dir, _rows: digits(),
    "mnist": lambda ds, _rng, data_dir, rows: load_mnist(ds.name, ds.path, data_dir, max_rows=rows),
    "fashion-mnist": lambda ds, _rng, data_dir, rows: load_mnist(
        ds.name, ds.path, data_dir, max_rows=rows
    ),
    "csv": lambda ds, _rng, _dir, rows: load_csv(ds.path, ds.label_column, max_rows=rows),
    "arrays": lambda ds, _rng, _dir, _rows: _stored_with_the_run(ds),
    "external": lambda ds, _rng, _dir, _rows: _external(ds),
}


def _stored_with_the_run(ds: DatasetSpec) -> Source:
    """The arrays dataset is read from the run's stored `data/...` (worker.datasets.arrays),
    never loaded by name (the web preview lands here)."""
    raise DatasetError(
        f"dataset.name: {ds.name!r}: the data was given to the Python API's fit and is "
        "stored with its run; it cannot be loaded without the run"
    )


def _external(ds: DatasetSpec) -> Source:
    """Data of the user's own code (nl.Recorder runs): there is nothing here to load."""
    raise DatasetError(
        f"dataset.name: {ds.name!r}: the data is held by the user's own training code; "
        "NetLens stored only its probe and cannot load it (such a run is trained by the "
        "user's code; NetLens cannot retrain it)"
    )


def check_loaders(loaders: dict[str, Loader]) -> None:
    """Raise unless `loaders` holds exactly the datasets of storage/catalog.py."""
    missing = [n for n in DATASETS if n not in loaders]
    extra = [n for n in loaders if n not in DATASETS]
    if missing or extra:
        raise RuntimeError(
            "worker.datasets.loader: LOADERS must match storage.catalog.DATASETS"
            + (f"; no loader for {missing}" if missing else "")
            + (f"; loaders for undeclared datasets {extra}" if extra else "")
        )


check_loaders(LOADERS)


def _read_source(
    ds: DatasetSpec, rng: np.random.Generator, data_dir: Path, max_rows: int | None = None
) -> Source:
    loader = LOADERS.get(ds.name)
    if loader is None:
        raise DatasetError(f"dataset.name: unknown dataset {ds.name!r}")
    return loader(ds, rng, data_dir, max_rows)


def _ood_pool(src: Source) -> tuple[np.ndarray, np.ndarray]:
    """Where out-of-distribution inputs come from: the test part if the set has one, else all."""
    return (src.x_test, src.y_test) if src.x_test is not None else (src.x, src.y)


def _choose_classes(ds: DatasetSpec, src: Source) -> tuple[list[int], list[int]]:
    """Sorted trained classes (default: every label) and sorted OOD classes, both checked."""
    present = sorted(int(v) for v in np.unique(src.y))
    if len(present) > MAX_CLASSES:  # before anything is sized by the class count
        raise DatasetError(
            f"dataset: {ds.name!r} has {len(present)} distinct labels, over the "
            f"limit of {MAX_CLASSES} (max_classes)"
        )
    classes = present if ds.classes is None else sorted(set(ds.classes))
    missing = [c for c in classes if c not in present]
    if missing:
        raise DatasetError(
            f"dataset.classes: {missing} not among the labels of {ds.name!r} "
            f"({present}); pick classes from those"
        )
    if len(classes) < 2:
        raise DatasetError(
            f"dataset.classes: {ds.name!r} has only the labels {classes}; "
            "a classifier needs at least 2"
        )
    ood = sorted(set(ds.ood_classes))
    pool = {int(v) for v in np.unique(_ood_pool(src)[1])}
    absent = [c for c in ood if c not in pool]
    if absent:
        raise DatasetError(
            f"dataset.ood_classes: {absent} not among the held-out labels of "
            f"{ds.name!r} ({sorted(pool)})"
        )
    if set(ood) & set(classes):
        raise DatasetError(
            f"dataset.ood_classes: {sorted(set(ood) & set(classes))} also trained on"
        )
    return classes, ood


def _split(ds: DatasetSpec, src: Source, classes: list[int], rng: np.random.Generator):
    """(x_train, y_train, x_val, y_val) of the kept classes; labels still original."""
    keep = np.isin(src.y, classes)
    x, y = src.x[keep], src.y[keep]
    if src.x_test is not None:  # predefined test part validates (all of it, up to VAL_CAP)
        keep_test = np.isin(src.y_test, classes)
        if ds.val_fraction == 0:  # no validation wanted
            keep_test[:] = False
        x_tr, y_tr, x_va, y_va = x, y, src.x_test[keep_test], src.y_test[keep_test]
        if len(y_va) > VAL_CAP:
            rows = stratified_subsample(y_va, classes, VAL_CAP, rng)
            x_va, y_va = x_va[rows], y_va[rows]
    elif src.no_split:
        x_tr, y_tr, x_va, y_va = x, y, x[:0], y[:0]
    else:
        tr, va = stratified_split(y, classes, ds.val_fraction, rng)
        x_tr, y_tr, x_va, y_va = x[tr], y[tr], x[va], y[va]
    if ds.max_train is not None and len(y_tr) > ds.max_train:
        rows = stratified_subsample(y_tr, classes, ds.max_train, rng)
        x_tr, y_tr = x_tr[rows], y_tr[rows]
    return x_tr, y_tr, x_va, y_va


def load_dataset(
    spec: ExperimentSpec, data_dir: Path | None = None, max_rows: int | None = None
) -> Dataset:
    """Build the Dataset of `spec.dataset`, deterministic from spec.dataset.seed.

    data_dir is where MNIST/Fashion-MNIST files are looked for when dataset.path is unset
    (default: default_data_dir()). `max_rows` reads only the first rows of a file (CSV rows,
    MNIST images of each part): the web preview's bound. Raises DatasetError naming the spec
    field at fault.
    """
    ds = spec.dataset
    rng = np.random.default_rng(ds.seed)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    src = _read_source(ds, rng, folder, max_rows)
    classes, ood = _choose_classes(ds, src)
    x_tr, y_tr, x_va, y_va = _split(ds, src, classes, rng)
    index = np.asarray(classes)
    y_tr = np.searchsorted(index, y_tr).astype(np.int32)
    y_va = np.searchsorted(index, y_va).astype(np.int32)
    pool_x, pool_y = (x_va, y_va) if len(y_va) else (x_tr, y_tr)
    all_x, all_y = _ood_pool(src)
    is_ood = np.isin(all_y, ood)
    probe_x, probe_y, probe_is_ood = build_probe(
        pool_x, pool_y, classes, all_x[is_ood], all_y[is_ood], ood, spec.recording.probe_size, rng
    )
    return Dataset(
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32),
        y_train=y_tr,
        x_val=np.ascontiguousarray(x_va, dtype=np.float32),
        y_val=y_va,
        probe_x=probe_x,
        probe_y=probe_y,
        probe_is_ood=probe_is_ood,
        classes=classes,
        class_names=[src.names[c] for c in classes],
        image_shape=src.image_shape,
        grid_bounds=src.grid_bounds,
        source_path=src.source_path,
        source_sha256=src.source_sha256,
    )
