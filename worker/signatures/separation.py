"""5. Separability: from which layer the network separates the trained classes (silhouette of
the true classes and a cross-validated linear probe, layer by layer)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from netlens.worker.signatures.common import THREADS, Probe, _matrix, _num, _silhouette, _threads

PROBE_FOLDS = 5


def separability(features: np.ndarray, probe: Probe, *, seed: int = 0) -> dict:
    """How well one layer separates the trained classes, on in-distribution inputs only.

    {"silhouette": silhouette of the true classes (None if undefined), "probe_accuracy":
    stratified k-fold cross-validated accuracy of a standardised logistic regression (None
    with fewer than 2 classes of 2 inputs), "folds", "chance": the majority class's share}."""
    ind = probe.in_dist
    values, labels = _matrix(features, probe.size)[ind], probe.y[ind]
    counts = np.unique(labels, return_counts=True)[1]
    folds = int(min(PROBE_FOLDS, counts.min())) if len(counts) >= 2 else 0
    accuracy = None
    if folds >= 2:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # lbfgs convergence notices on separable data
            warnings.simplefilter("ignore")
            accuracy = _num(cross_val_score(model, values, labels, cv=split).mean())
    return {
        "silhouette": _silhouette(values, labels, seed),
        "probe_accuracy": accuracy,
        "folds": folds,
        "chance": _num(counts.max() / counts.sum()) if len(counts) else None,
    }


def separability_by_layer(
    layers: Mapping[str, np.ndarray],
    output: np.ndarray | None = None,
    *,
    y,
    is_ood,
    classes,
    x: np.ndarray | None = None,
    seed: int = 0,
    threads: int | None = THREADS,
) -> list[dict]:
    """Separability of the trained classes at the input (if `x` is given), every hidden layer
    (in order) and the output (if given): [{"layer", "units", **separability(...)}]. Cheap
    (tens of ms per layer for 1,000 x 128): meant to be called for many epochs."""
    probe = Probe.from_arrays(y, is_ood, classes)
    named = (
        ([("input", x)] if x is not None else [])
        + list(layers.items())
        + ([("output", output)] if output is not None else [])
    )
    with _threads(threads):
        return [
            {
                "layer": name,
                "units": int(_matrix(values).shape[1]),
                **separability(values, probe, seed=seed),
            }
            for name, values in named
        ]
