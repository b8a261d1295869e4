"""Two probe inputs compared, layer by layer."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from netlens.worker.signatures.common import _matrix, _num


def compare_inputs(layers: Mapping[str, np.ndarray], a: int, b: int) -> list[dict]:
    """Probe inputs a and b side by side, layer by layer: [{"layer", "a": [...], "b": [...],
    "distance" (Euclidean), "cosine" (None when either signature is all zeros)}]."""
    rows = []
    for name, acts in layers.items():
        values = _matrix(acts)
        va, vb = values[a], values[b]
        norms = float(np.linalg.norm(va) * np.linalg.norm(vb))
        rows.append(
            {
                "layer": name,
                "a": [_num(v) for v in va],
                "b": [_num(v) for v in vb],
                "distance": _num(np.linalg.norm(va - vb)),
                "cosine": _num(va @ vb / norms) if norms > 0 else None,
            }
        )
    return rows
