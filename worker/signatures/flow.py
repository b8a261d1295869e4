"""2. Flow: how the probe inputs go from their true class through each layer's clusters to
the predicted class (the data of a Sankey diagram)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from netlens.worker.signatures.common import Probe


def sankey_flow(
    cluster_labels: Mapping[str, np.ndarray], predicted: np.ndarray, probe: Probe
) -> dict:
    """Sankey data: true class -> cluster of each layer (in order) -> predicted class.

    Returns {"stages": ["true class", <layer>..., "predicted class"], "nodes": [{"id",
    "stage", "kind" ("true_class" | "true_ood" | "cluster" | "predicted"), "label" (display
    text), "class" (original label or None), "layer" (or None), "cluster" (or None), "count",
    "n_ood"}], "links": [{"source", "target" (node ids), "stage" (of the source), "value",
    "n_ood", "indices" (sorted probe indices on the link)}]}. Every trained class has a node at
    both ends (count 0 allowed); each stage's counts and links sum to P."""
    c = len(probe.classes)
    position = {int(v): i for i, v in enumerate(probe.classes)}
    stages: list[tuple[str, np.ndarray, Callable[[int], dict]]] = [
        (
            "true class",
            probe.group,
            lambda g: {
                "kind": "true_ood" if g >= c else "true_class",
                "class": probe.group_label(g),
                "label": f"{probe.group_label(g)}" + (" (OOD)" if g >= c else ""),
                "layer": None,
                "cluster": None,
            },
        )
    ]
    for name, labels in cluster_labels.items():
        stages.append(
            (
                name,
                np.asarray(labels, dtype=np.int64),
                lambda k, name=name: {
                    "kind": "cluster",
                    "class": None,
                    "label": f"{name} c{k}",
                    "layer": name,
                    "cluster": int(k),
                },
            )
        )
    stages.append(
        (
            "predicted class",
            np.array([position[int(p)] for p in predicted], np.int64),
            lambda i: {
                "kind": "predicted",
                "class": int(probe.classes[i]),
                "label": f"predicted {int(probe.classes[i])}",
                "layer": None,
                "cluster": None,
            },
        )
    )
    nodes: list[dict] = []
    node_of: list[np.ndarray] = []  # per stage: node id of every probe input
    for s, (_, values, describe_node) in enumerate(stages):
        present = set(np.unique(values).tolist())
        if s in (0, len(stages) - 1):
            present |= set(range(c))  # every trained class at both ends, even if absent
        ids = np.full(int(max(present)) + 1, -1, dtype=np.int64)
        for v in sorted(present):
            members = values == v
            ids[v] = len(nodes)
            nodes.append(
                {
                    "id": len(nodes),
                    "stage": s,
                    **describe_node(v),
                    "count": int(members.sum()),
                    "n_ood": int(probe.is_ood[members].sum()),
                }
            )
        node_of.append(ids[values])
    links = []
    for s in range(len(stages) - 1):
        pairs = np.stack([node_of[s], node_of[s + 1]], axis=1)
        for source, target in np.unique(pairs, axis=0):
            indices = np.flatnonzero((node_of[s] == source) & (node_of[s + 1] == target))
            links.append(
                {
                    "source": int(source),
                    "target": int(target),
                    "stage": s,
                    "value": len(indices),
                    "n_ood": int(probe.is_ood[indices].sum()),
                    "indices": indices.tolist(),
                }
            )
    return {"stages": [name for name, _, _ in stages], "nodes": nodes, "links": links}
