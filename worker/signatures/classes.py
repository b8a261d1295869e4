"""4. Class signatures: each class's mean signature, the distances between trained-class
centroids, the units selective for a class, and each class's most typical and most
atypical inputs."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from netlens.worker.signatures.common import Probe, _matrix, _num

N_EXAMPLES = 5  # typical / atypical inputs and selective units listed per class


def group_means(acts: np.ndarray, probe: Probe) -> np.ndarray:
    """(n_groups, U) mean signature per group (trained classes from in-distribution inputs
    only, then each OOD class); NaN rows for empty groups."""
    values = _matrix(acts, probe.size)
    sums = np.zeros((probe.n_groups, values.shape[1]))
    np.add.at(sums, probe.group, values)
    counts = np.bincount(probe.group, minlength=probe.n_groups)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _own_and_nearest_other(
    values: np.ndarray, centroids: np.ndarray, probe: Probe
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every input: distance to its own trained-class centroid (NaN for OOD inputs), to
    the nearest *other* present trained centroid (nearest of all for OOD inputs; inf if none)
    and that centroid's class index (-1 if none)."""
    distances = cdist(values, np.nan_to_num(centroids))  # (P, C)
    distances[:, np.isnan(centroids).any(axis=1)] = np.inf  # absent classes
    own = np.full(probe.size, np.nan)
    ind = np.flatnonzero(probe.in_dist)
    own[ind] = distances[ind, probe.group[ind]]
    others = distances.copy()
    others[ind, probe.group[ind]] = np.inf
    nearest = others.argmin(axis=1) if others.shape[1] else np.full(probe.size, -1)
    nearest_distance = (
        others[np.arange(probe.size), nearest] if others.shape[1] else np.full(probe.size, np.inf)
    )
    return own, nearest_distance, np.where(np.isfinite(nearest_distance), nearest, -1)


def class_signatures(
    acts: np.ndarray, probe: Probe, *, n_examples: int = N_EXAMPLES
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Class means, distances between trained-class centroids, selective units, and each
    trained class's most typical and most atypical inputs.

    Score of an in-distribution input = margin = distance to its own class centroid minus
    distance to the nearest other class centroid: very negative = typical, positive = looks
    like another class (e.g. the 7s that look like 1s). With a single trained class the score
    is the distance to its centroid. OOD inputs get no score and never move a centroid.

    Returns (summary, means (n_groups, U) float32 in the row order of Probe.groups(), margins
    (P,) float32, NaN for OOD inputs). summary: {"score": "margin" | "distance",
    "centroid_distances": C x C list (None where a class is absent), "classes": {str(label):
    {"typical": [{"index", "score"}], "atypical": [{"index", "score", "nearest_class"}],
    "selective_units": [{"unit", "mean", "others_mean"}]}}}."""
    values = _matrix(acts, probe.size)
    means = group_means(values, probe)
    c = len(probe.classes)
    centroids = means[:c]
    own, other, nearest = _own_and_nearest_other(values, centroids, probe)
    single = not np.isfinite(other[probe.in_dist]).any()
    score = own if single else own - other
    between = cdist(np.nan_to_num(centroids), np.nan_to_num(centroids))
    absent = np.isnan(centroids).any(axis=1)
    classes = {}
    for g, label in enumerate(probe.classes):
        members = np.flatnonzero(probe.group == g)
        order = members[np.argsort(score[members], kind="stable")]
        rest = np.delete(centroids, g, axis=0)
        rest_mean = (
            np.nanmean(rest, axis=0)
            if (~np.isnan(rest).all(axis=1)).any()
            else np.zeros(values.shape[1])
        )
        lift = np.nan_to_num(centroids[g] - rest_mean, nan=-np.inf)
        units = np.argsort(-lift, kind="stable")[:n_examples] if members.size else []
        classes[str(int(label))] = {
            "typical": [{"index": int(i), "score": _num(score[i])} for i in order[:n_examples]],
            "atypical": [
                {
                    "index": int(i),
                    "score": _num(score[i]),
                    "nearest_class": None if nearest[i] < 0 else int(probe.classes[nearest[i]]),
                }
                for i in order[::-1][:n_examples]
            ],
            "selective_units": [
                {"unit": int(u), "mean": _num(centroids[g, u]), "others_mean": _num(rest_mean[u])}
                for u in units
            ],
        }
    summary = {
        "score": "distance" if single else "margin",
        "centroid_distances": [
            [None if absent[i] or absent[j] else _num(between[i, j]) for j in range(c)]
            for i in range(c)
        ],
        "classes": classes,
    }
    return summary, means.astype(np.float32), score.astype(np.float32)
