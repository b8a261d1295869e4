"""The Dataset record, DatasetError, and the seeded stratified sampling helpers all loaders share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DatasetError(ValueError):
    """A dataset that cannot be built; the message starts with the spec field ("dataset.path: ...")."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation arrays, the fixed probe set, and what is needed to draw them."""

    x_train: np.ndarray  # float32 (n, features); images flattened, pixels in [0, 1]
    y_train: np.ndarray  # int32 (n,) class index into `classes`
    x_val: np.ndarray  # float32 (m, features), m may be 0
    y_val: np.ndarray  # int32 (m,)
    probe_x: np.ndarray  # float32 (p, features)
    probe_y: np.ndarray  # int64 (p,) original label
    probe_is_ood: np.ndarray  # bool (p,)
    classes: list[int]  # original labels of the trained classes, in output order
    class_names: list[str]
    image_shape: tuple[int, int] | None = None
    grid_bounds: tuple[float, float, float, float] | None = None
    source_path: str | None = None
    source_sha256: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.x_train, np.float32, 2),
            (self.y_train, np.int32, 1),
            (self.x_val, np.float32, 2),
            (self.y_val, np.int32, 1),
            (self.probe_x, np.float32, 2),
            (self.probe_y, np.int64, 1),
            (self.probe_is_ood, np.bool_, 1),
        ]
        for array, dtype, ndim in checks:
            if array.dtype != dtype or array.ndim != ndim:
                raise ValueError(
                    f"Dataset: expected {dtype.__name__} with {ndim} dims, "
                    f"got {array.dtype} with shape {array.shape}"
                )
        n_feat = self.x_train.shape[1]
        if self.x_val.shape[1] != n_feat or self.probe_x.shape[1] != n_feat:
            raise ValueError("Dataset: x_train, x_val and probe_x must have the same feature count")
        pairs = [
            (self.x_train, self.y_train),
            (self.x_val, self.y_val),
            (self.probe_x, self.probe_y),
            (self.probe_x, self.probe_is_ood),
        ]
        if any(len(x) != len(y) for x, y in pairs):
            raise ValueError("Dataset: inputs and labels differ in length")
        if len(self.class_names) != len(self.classes):
            raise ValueError("Dataset: classes and class_names differ in length")

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        """float32 one-hot rows of class indices (0..n_classes-1)."""
        y = np.asarray(y)
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"one_hot: class indices must be in 0..{self.n_classes - 1}")
        # one row per input, never an n_classes x n_classes identity (classes are capped by
        # storage.spec.LIMITS["max_classes"], but the cost should follow the batch anyway)
        out = np.zeros((y.size, self.n_classes), dtype=np.float32)
        out[np.arange(y.size), y.reshape(-1).astype(np.int64)] = 1.0
        return out.reshape(*y.shape, self.n_classes)


def data_info(data: Dataset) -> dict:
    """runs.data_info of a run trained on `data` (by a worker or by the Python API's fit):
    here, without JAX, so that the server can derive what a streamed fit must send."""
    return {
        "classes": [int(c) for c in data.classes],
        "class_names": list(data.class_names),
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "n_features": data.n_features,
        "n_train": len(data.x_train),
        "n_val": len(data.x_val),
        "n_probe": len(data.probe_x),
        "n_probe_ood": int(np.sum(data.probe_is_ood)),
        "source_path": data.source_path,
        "sha256": data.source_sha256,
        # the decision-boundary grid's extent: the run page's 2-D views apply (webapp.views.run)
        "grid_bounds": list(data.grid_bounds) if data.grid_bounds else None,
    }


@dataclass
class Source:
    """What a loader read or generated, before class selection, splitting and the probe."""

    x: np.ndarray  # float32 (n, features)
    y: np.ndarray  # int64 (n,) original labels
    names: dict[int, str]  # label -> display name, for every label in y (and y_test)
    x_test: np.ndarray | None = None  # a predefined held-out part (MNIST's test files)
    y_test: np.ndarray | None = None
    no_split: bool = False  # xor: everything trains, whatever val_fraction says
    image_shape: tuple[int, int] | None = None
    grid_bounds: tuple[float, float, float, float] | None = None
    source_path: str | None = None
    source_sha256: str | None = None


def grid_points(bounds: tuple[float, float, float, float], resolution: int) -> np.ndarray:
    """float32 (resolution**2, 2) points, row-major over y then x, spanning bounds inclusive.

    Point ``i * resolution + j`` is ``(xs[j], ys[i])`` with ``xs``/``ys`` evenly spaced from
    xmin to xmax and ymin to ymax.  Resolution 1 gives the centre; 0 gives an empty (0, 2) array.
    """
    if resolution < 0:
        raise ValueError(f"grid_points: resolution must be >= 0, got {resolution}")
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    if resolution == 1:
        return np.array([[(xmin + xmax) / 2, (ymin + ymax) / 2]], dtype=np.float32)
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    gx, gy = np.meshgrid(xs, ys)  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def proportional_shares(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `counts` (largest remainder, ties by order)."""
    counts = np.asarray(counts, dtype=np.int64)
    if total <= 0 or counts.sum() == 0:
        return np.zeros_like(counts)
    total = min(int(total), int(counts.sum()))
    quota = counts * total / counts.sum()
    alloc = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - alloc), kind="stable")
    alloc[order[: total - int(alloc.sum())]] += 1
    return np.minimum(alloc, counts)


def equal_shares(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` as evenly as possible over classes, none above its count (water-filling)."""
    counts = np.asarray(counts, dtype=np.int64)
    alloc = np.zeros_like(counts)
    remaining = min(int(total), int(counts.sum()))
    while remaining > 0:
        open_ = np.flatnonzero(alloc < counts)
        share = remaining // len(open_)
        if share == 0:  # fewer left than open classes: one more each, in class order
            alloc[open_[:remaining]] += 1
            break
        add = np.minimum(share, counts[open_] - alloc[open_])
        alloc[open_] += add
        remaining -= int(add.sum())
    return alloc


def pick_per_class(
    y: np.ndarray, shares: np.ndarray, labels: list[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """For each label, `shares[k]` random positions of y == labels[k] (one array per label)."""
    picked = []
    for label, share in zip(labels, shares, strict=True):
        positions = np.flatnonzero(y == label)
        picked.append(rng.permutation(positions)[: int(share)])
    return picked


def stratified_split(
    y: np.ndarray, labels: list[int], val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, val) positions; round(len(y) * val_fraction) go to val, per class."""
    counts = np.array([np.sum(y == label) for label in labels])
    n_val = int(round(len(y) * val_fraction))
    shares = proportional_shares(counts, n_val)
    train, val = [], []
    for label, share in zip(labels, shares, strict=True):
        positions = rng.permutation(np.flatnonzero(y == label))
        val.append(positions[: int(share)])
        train.append(positions[int(share) :])
    empty = np.zeros(0, dtype=np.int64)
    train_idx = rng.permutation(np.concatenate([empty, *train]))
    val_idx = rng.permutation(np.concatenate([empty, *val]))
    return train_idx, val_idx


def stratified_subsample(
    y: np.ndarray, labels: list[int], k: int, rng: np.random.Generator
) -> np.ndarray:
    """Sorted positions of a class-proportional random subset of size min(k, len(y))."""
    counts = np.array([np.sum(y == label) for label in labels])
    picked = pick_per_class(y, proportional_shares(counts, k), labels, rng)
    return np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *picked]))
