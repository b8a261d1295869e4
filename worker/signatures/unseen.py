"""6. Unseen classes (out-of-distribution inputs): where the inputs of each never-trained class
land, layer by layer, and what the network predicts for them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from netlens.worker.signatures.classes import _own_and_nearest_other, group_means
from netlens.worker.signatures.clusters import cluster_makeup
from netlens.worker.signatures.common import Probe, _counts, _matrix, _num


def ood_report(
    layers: Mapping[str, np.ndarray],
    cluster_labels: Mapping[str, np.ndarray],
    predicted: np.ndarray,
    confidence: np.ndarray,
    probe: Probe,
) -> list[dict]:
    """Where the inputs of each never-trained class land.

    Per OOD class: {"label", "count", "predicted": {str(trained label): count}, "confidence":
    mean probability of the predicted class, "layers": {layer: {"clusters": [{"cluster",
    "count", "dominant_class" (trained class dominating that cluster, None if it holds OOD
    inputs only), "purity"}], "nearest_class": {str(label): count} (nearest trained centroid),
    "distance_to_nearest": mean distance to the nearest trained centroid, "in_dist_distance":
    in-distribution inputs' mean distance to their own centroid, "distance_ratio": the first
    over the second}}}. Empty list when the probe has no OOD inputs."""
    per_layer = {}
    for name, acts in layers.items():
        values = _matrix(acts, probe.size)
        own, nearest_distance, nearest = _own_and_nearest_other(
            values, group_means(values, probe)[: len(probe.classes)], probe
        )
        labels = np.asarray(cluster_labels[name])
        per_layer[name] = (
            labels,
            cluster_makeup(labels, probe),
            nearest_distance,
            nearest,
            _num(np.nanmean(own)) if probe.in_dist.any() else None,
        )
    report = []
    for label in probe.ood_classes:
        members = probe.is_ood & (probe.y == label)
        entry = {
            "label": int(label),
            "count": int(members.sum()),
            "predicted": _counts(predicted[members], probe.classes),
            "confidence": _num(confidence[members].mean()),
            "layers": {},
        }
        for name, (labels, makeup, nearest_distance, nearest, in_dist) in per_layer.items():
            found = nearest[members]
            far = _num(nearest_distance[members].mean()) if (found >= 0).all() else None
            clusters = Counter(labels[members].tolist())
            entry["layers"][name] = {
                "clusters": [
                    {
                        "cluster": int(k),
                        "count": int(n),
                        "dominant_class": makeup[k]["dominant_class"],
                        "purity": makeup[k]["purity"],
                    }
                    for k, n in clusters.most_common()
                ],
                "nearest_class": _counts(probe.classes[found[found >= 0]], probe.classes),
                "distance_to_nearest": far,
                "in_dist_distance": in_dist,
                "distance_ratio": _num(far / in_dist) if far is not None and in_dist else None,
            }
        report.append(entry)
    return report
