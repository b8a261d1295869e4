"""Hidden representation: where each probe input lands in a layer's space (projected to 2-D)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    CORRECT_COLOR,
    OOD_COLOR,
    OOD_SYMBOL,
    WRONG_COLOR,
    base_layout,
    class_color,
    empty_figure,
)


@dataclass(frozen=True)
class Projection:
    """A fixed linear map from a layer's units to two plotting coordinates."""

    mean: np.ndarray  # (U,)
    components: np.ndarray  # (U, 2)

    def apply(self, signatures: np.ndarray) -> np.ndarray:
        """(P, U) signatures -> (P, 2) points."""
        return (np.asarray(signatures, dtype=float) - self.mean) @ self.components


def _pca_components(centred: np.ndarray) -> np.ndarray:
    """(U, 2) leading principal axes, each signed so its largest-|loading| entry is positive."""
    units = centred.shape[1]
    components = np.zeros((units, 2))
    if centred.shape[0]:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(2, vt.shape[0])
        components[:, :k] = vt[:k].T
    for c in range(2):
        if not components[:, c].any():  # rank < 2: fall back to a unit axis
            free = [u for u in range(units) if not np.abs(components[u]).any()]
            components[free[0] if free else c, c] = 1.0
        column = components[:, c]
        if column[np.argmax(np.abs(column))] < 0:
            components[:, c] = -column
    return components


def fit_projection(reference: np.ndarray) -> Projection:
    """Projection fitted on reference signatures (P, U): identity (U == 2), unit on x (U == 1),
    otherwise the first two principal components."""
    reference = np.asarray(reference, dtype=float)
    units = reference.shape[1]
    if units <= 2:
        components = np.eye(units, 2)
        return Projection(mean=np.zeros(units), components=components)
    rows = reference[np.isfinite(reference).all(axis=1)]
    mean = rows.mean(axis=0) if rows.shape[0] else np.zeros(units)
    return Projection(mean=mean, components=_pca_components(rows - mean))


def _robust_bounds(values: np.ndarray) -> tuple[float, float]:
    """Range of one coordinate: 0.5-99.5 % percentiles, extended to the true extremes unless
    these are far outliers (beyond a quarter of the robust span), then padded 5 %."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    reach = 0.25 * (hi - lo)
    lo = values.min() if values.min() >= lo - reach else lo
    hi = values.max() if values.max() <= hi + reach else hi
    pad = 0.05 * (hi - lo) if hi > lo else max(0.5, 0.05 * abs(hi))
    return float(lo - pad), float(hi + pad)


def stable_range(points_over_epochs: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) covering every epoch's points, so axes stay put."""
    arrays = [np.asarray(p, dtype=float).reshape(-1, 2) for p in points_over_epochs]
    points = np.concatenate(arrays) if arrays else np.zeros((0, 2))
    points = points[np.isfinite(points).all(axis=1)]
    if points.shape[0] == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    return (*_robust_bounds(points[:, 0]), *_robust_bounds(points[:, 1]))


def _groups(labels, correct, color_by: str, class_names, ood) -> list[tuple]:
    """(name, colour, symbol, mask) per trace; out-of-distribution inputs always last, grey."""
    groups = []
    if color_by == "correct" and correct is not None:
        ok = np.asarray(correct, dtype=bool)
        groups += [
            ("correct", CORRECT_COLOR, "circle", ok & ~ood),
            ("wrong", WRONG_COLOR, "x", ~ok & ~ood),
        ]
    else:
        order = list(class_names) if class_names else []
        order += sorted(set(labels[~ood].tolist()) - set(order))
        for k, label in enumerate(order):
            name = class_names.get(label, str(label)) if class_names else f"class {label}"
            groups.append((name, class_color(k), "circle", (labels == label) & ~ood))
    groups.append(("out of distribution", OOD_COLOR, OOD_SYMBOL, ood))
    return [g for g in groups if g[3].any()]


def build_hidden_representation(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    correct: np.ndarray | None = None,
    color_by: str = "class",
    class_names: dict[int, str] | None = None,
    is_ood: np.ndarray | None = None,
    axis_range=None,
    axis_titles=("unit 1", "unit 2"),
    title: str = "",
) -> go.Figure:
    """Every probe input as a point in the (projected) layer space, by class or correctness."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    if points.shape[0] == 0:
        return empty_figure("No probe inputs to show")
    ood = np.zeros(labels.size, bool) if is_ood is None else np.asarray(is_ood, dtype=bool)
    fig = go.Figure()
    for name, color, symbol, mask in _groups(labels, correct, color_by, class_names, ood):
        index = np.flatnonzero(mask)
        label_text = [
            class_names.get(v, str(v)) if class_names else str(v) for v in labels[index].tolist()
        ]
        fig.add_trace(
            go.Scatter(
                x=points[index, 0],
                y=points[index, 1],
                mode="markers",
                name=name,
                marker={
                    "color": color,
                    "symbol": symbol,
                    "size": 9,
                    "opacity": 0.85,
                    "line": {"color": "white", "width": 0.8},
                },
                customdata=np.stack([index, label_text], axis=1),
                hovertemplate="input #%{customdata[0]}<br>label %{customdata[1]}"
                "<br>(%{x:.3g}, %{y:.3g})<extra></extra>",
            )
        )
    base_layout(fig, title or "Hidden representation of the probe inputs", *axis_titles)
    if axis_range is not None:
        fig.update_xaxes(range=list(axis_range[:2]), autorange=False)
        fig.update_yaxes(range=list(axis_range[2:]), autorange=False)
    return fig


def flatten_signatures(values: np.ndarray, epochs_axis: bool = False) -> np.ndarray:
    """A recorded output as one row of features per probe input: (P, ...) -> (P, features),
    or with `epochs_axis` (E, P, ...) -> (E, P, features). A (P,) output is one feature."""
    values = np.asarray(values)
    lead = 2 if epochs_axis else 1
    if values.ndim < lead:
        raise ValueError(f"signatures of shape {values.shape} have no probe axis")
    return values.reshape(*values.shape[:lead], -1)
