"""What every analysis of this package shares: the probe's metadata (`Probe`), the network's
predictions, and small helpers (JSON-safe numbers, a layer's signatures as a matrix, the
silhouette on a sample, the thread limit, a timer)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

SILHOUETTE_SAMPLE = 2000  # silhouette is O(P^2): above this many inputs, score a sample
THREADS = 1  # BLAS / OpenMP threads for the analyses (None: the libraries' defaults)


# -- probe metadata ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """Probe metadata, with every input's *group*: its row in the class-means arrays.

    Groups are the trained classes in output order, then each OOD class (sorted label)."""

    y: np.ndarray  # (P,) original labels
    is_ood: np.ndarray  # (P,) bool
    classes: np.ndarray  # (C,) trained classes' original labels, output order
    ood_classes: np.ndarray  # (G,) sorted labels of the OOD inputs
    group: np.ndarray  # (P,) group index of each input

    @classmethod
    def from_arrays(cls, y, is_ood, classes) -> Probe:
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        is_ood = np.asarray(is_ood, dtype=bool).reshape(-1)
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        if y.shape != is_ood.shape:
            raise ValueError(f"y {y.shape} and is_ood {is_ood.shape} differ")
        unknown = set(y[~is_ood].tolist()) - set(classes.tolist())
        if unknown:
            raise ValueError(f"in-distribution labels {sorted(unknown)} are not in classes")
        ood_classes = np.unique(y[is_ood])
        index = {int(c): i for i, c in enumerate(classes)}
        index_ood = {int(c): len(classes) + i for i, c in enumerate(ood_classes)}
        group = np.array(
            [(index_ood if o else index)[int(v)] for v, o in zip(y, is_ood, strict=True)],
            dtype=np.int64,
        )
        return cls(y, is_ood, classes, ood_classes, group)

    @property
    def size(self) -> int:
        return len(self.y)

    @property
    def in_dist(self) -> np.ndarray:
        return ~self.is_ood

    @property
    def n_groups(self) -> int:
        return len(self.classes) + len(self.ood_classes)

    def group_label(self, g: int) -> int:
        c = len(self.classes)
        return int(self.classes[g] if g < c else self.ood_classes[g - c])

    def groups(self) -> list[dict]:
        """[{"label", "ood", "count"}] in group order (the rows of "class_means/<layer>")."""
        counts = np.bincount(self.group, minlength=self.n_groups)
        return [
            {"label": self.group_label(g), "ood": g >= len(self.classes), "count": int(counts[g])}
            for g in range(self.n_groups)
        ]


# -- small helpers ----------------------------------------------------------------------------
def _num(value) -> float | None:
    """A plain float for JSON, or None for missing / NaN / infinite values."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _matrix(values: np.ndarray, n: int | None = None) -> np.ndarray:
    """(P, features) float64 view of a layer's signatures (conv layers arrive flattened)."""
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    if n is not None and len(values) != n:
        raise ValueError(f"expected {n} probe rows, got {len(values)}")
    return values


def _distinct_rows(values: np.ndarray) -> int:
    return len(np.unique(values, axis=0)) if len(values) else 0


def _silhouette(values: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    """Silhouette score, on a seeded sample above SILHOUETTE_SAMPLE inputs; None when it is
    undefined (fewer than 2 labels, or as many labels as inputs)."""
    if len(values) > SILHOUETTE_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(values), SILHOUETTE_SAMPLE, replace=False)
        values, labels = values[rows], labels[rows]
    if not 2 <= len(np.unique(labels)) <= len(values) - 1:
        return None
    return _num(silhouette_score(values, labels))


def _counts(labels: np.ndarray, keys: np.ndarray) -> dict[str, int]:
    """{str(label): count} for every key (zeros included), JSON-friendly."""
    tally = Counter(labels.tolist())
    return {str(int(k)): int(tally.get(int(k), 0)) for k in keys}


def _threads(limit: int | None) -> AbstractContextManager:
    """Limit BLAS and OpenMP threads inside the block (None: leave the libraries' defaults)."""
    return nullcontext() if limit is None else threadpool_limits(limit)


class _Timer:
    """Accumulates wall seconds per part: `with timer("clusters"): ...`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


# -- predictions ------------------------------------------------------------------------------
def predictions(output: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """Predicted original label (P,) and confidence = probability of the predicted class (P,).

    out == 1: the sigmoid probability of classes[1]; otherwise a softmax over `classes`."""
    classes = np.asarray(classes, dtype=np.int64)
    out = np.asarray(output, dtype=np.float64).reshape(len(output), -1)
    binary = out.shape[1] == 1 and len(classes) == 2
    if not binary and (len(classes) < 2 or out.shape[1] != len(classes)):
        raise ValueError(f"output with {out.shape[1]} columns for {len(classes)} classes")
    if binary:
        p = out[:, 0]
        second = p > 0.5
        return classes[second.astype(int)], np.where(second, p, 1.0 - p)
    best = out.argmax(axis=1)
    return classes[best], out[np.arange(len(out)), best]
