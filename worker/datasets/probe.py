"""The fixed probe set: a class-balanced slice of validation (or train) plus held-out OOD inputs."""

from __future__ import annotations

import numpy as np

from netlens.worker.datasets.base import equal_shares, pick_per_class


def empty_probe(n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.zeros((0, n_features), dtype=np.float32),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=bool),
    )


def in_distribution(
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    classes: list[int],
    probe_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to probe_size pool inputs, as equal a share per class as the pool allows.

    pool_y holds class indices; the returned labels are the original ones (classes[index]).
    The picked rows keep their pool order.
    """
    indices = list(range(len(classes)))
    counts = np.array([np.sum(pool_y == i) for i in indices])
    picked = pick_per_class(pool_y, equal_shares(counts, probe_size), indices, rng)
    rows = np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *picked]))
    return pool_x[rows], np.asarray(classes, dtype=np.int64)[pool_y[rows]]


def out_of_distribution(
    ood_x: np.ndarray,
    ood_y: np.ndarray,
    ood_classes: list[int],
    per_class: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to per_class inputs of each OOD class (ood_y holds original labels), class by class."""
    xs, ys = [], []
    for label, rows in zip(
        ood_classes,
        pick_per_class(ood_y, [per_class] * len(ood_classes), ood_classes, rng),
        strict=True,
    ):
        rows = np.sort(rows)
        xs.append(ood_x[rows])
        ys.append(np.full(len(rows), label, dtype=np.int64))
    if not xs:
        return ood_x[:0], np.zeros(0, dtype=np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def build_probe(
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    classes: list[int],
    ood_x: np.ndarray,
    ood_y: np.ndarray,
    ood_classes: list[int],
    probe_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probe_x float32, probe_y int64 original labels, probe_is_ood bool).

    In-distribution inputs first (at most probe_size), then for each OOD class as many inputs
    as an in-distribution class has on average (at least 1), so unseen classes never swamp
    the trained ones.  probe_size 0: empty.
    """
    if probe_size <= 0:
        return empty_probe(pool_x.shape[1])
    x_in, y_in = in_distribution(pool_x, pool_y, classes, probe_size, rng)
    per_class = max(1, len(x_in) // len(classes))
    x_out, y_out = out_of_distribution(ood_x, ood_y, ood_classes, per_class, rng)
    is_ood = np.concatenate([np.zeros(len(x_in), dtype=bool), np.ones(len(x_out), dtype=bool)])
    probe_x = np.concatenate([x_in, x_out]).astype(np.float32, copy=False)
    return probe_x, np.concatenate([y_in, y_out]).astype(np.int64), is_ood
