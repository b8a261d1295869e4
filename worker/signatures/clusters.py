"""1. Clusters: K-means on each layer's signatures, K chosen by the best silhouette, and what
each cluster holds (trained classes, unseen classes)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from netlens.worker.signatures.common import (
    Probe,
    _counts,
    _distinct_rows,
    _matrix,
    _num,
    _silhouette,
)

KMEANS_N_INIT = 4


def cluster_makeup(labels: np.ndarray, probe: Probe) -> list[dict]:
    """Per cluster id 0..K-1: size, counts per trained class and per OOD class (separately),
    the dominant trained class (None when the cluster holds OOD inputs only) and its share of
    the cluster's in-distribution inputs."""
    makeup = []
    for k in range(int(labels.max()) + 1 if len(labels) else 0):
        members = labels == k
        trained = _counts(probe.y[members & probe.in_dist], probe.classes)
        ood = _counts(probe.y[members & probe.is_ood], probe.ood_classes)
        n_in = sum(trained.values())
        dominant = max(trained, key=trained.get) if n_in else None
        makeup.append(
            {
                "cluster": k,
                "size": int(members.sum()),
                "trained": trained,
                "ood": ood,
                "dominant_class": None if dominant is None else int(dominant),
                "purity": _num(trained[dominant] / n_in) if n_in else None,
            }
        )
    return makeup


def _order_clusters(labels: np.ndarray, probe: Probe) -> np.ndarray:
    """Relabel clusters by (dominant trained class in output order, OOD-only last; larger
    first), so ids read in class order and Sankey links cross less."""
    makeup = cluster_makeup(labels, probe)
    position = {int(c): i for i, c in enumerate(probe.classes)}

    def key(m: dict) -> tuple[int, int]:
        dominant = m["dominant_class"]
        return (len(position) if dominant is None else position[dominant], -m["size"])

    order = [m["cluster"] for m in sorted(makeup, key=key)]
    new_id = np.empty(len(order), dtype=np.int64)
    new_id[order] = np.arange(len(order))
    return new_id[labels]


def _kmeans(values: np.ndarray, k: int, seed: int) -> np.ndarray:
    with warnings.catch_warnings():  # "fewer distinct clusters than k" is handled by callers
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed)
        return model.fit_predict(values)


def _why_one_cluster(distinct: int, n: int, k_lo: int, k_hi: int) -> str:
    if distinct <= 1:
        return "all probe signatures are identical (dead or saturated units)"
    if k_hi < k_lo:
        return f"too few distinct signatures ({distinct}) or inputs ({n}) for K >= {k_lo}"
    return "K-means found fewer than 2 usable clusters"


def cluster_layer(
    acts: np.ndarray,
    probe: Probe,
    *,
    k_range: tuple[int, int] = (2, 10),
    seed: int = 0,
    standardize: bool = False,
) -> tuple[dict, np.ndarray]:
    """K-means on one layer's signatures of every probe input (OOD included), K chosen by the
    best silhouette over k_range (capped at P-1 and at the number of distinct signatures).

    Returns (summary, labels (P,) int64). summary: {"k", "silhouette" (of the chosen K, None
    when undefined), "k_tried" [K...], "silhouette_by_k" [score or None per K], "reason" (why K
    is 1, else None), "clusters": cluster_makeup(...)}. Degenerate layers (e.g. all ReLUs dead:
    every signature identical) give K=1 and a reason instead of raising."""
    values = _matrix(acts, probe.size)
    if standardize:
        values = StandardScaler().fit_transform(values)
    distinct = _distinct_rows(values)
    k_lo, k_hi = max(2, k_range[0]), min(k_range[1], probe.size - 1, distinct)
    result = {"k": 1, "silhouette": None, "k_tried": [], "silhouette_by_k": [], "reason": None}
    best: tuple[float, np.ndarray] | None = None
    for k in range(k_lo, k_hi + 1):
        labels = _kmeans(values, k, seed)
        score = _silhouette(values, labels, seed)
        result["k_tried"].append(k)
        result["silhouette_by_k"].append(score)
        if score is not None and (best is None or score > best[0]):
            best = (score, labels)
    if best is None:
        result["reason"] = _why_one_cluster(distinct, probe.size, k_lo, k_hi)
        labels = np.zeros(probe.size, dtype=np.int64)
    else:
        labels = _order_clusters(best[1].astype(np.int64), probe)
        result["silhouette"] = best[0]
        result["k"] = int(labels.max()) + 1
    result["clusters"] = cluster_makeup(labels, probe)
    return result, labels
