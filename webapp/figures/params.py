"""Parameter figures: one neuron's weights and bias over epochs, weight distributions."""

from __future__ import annotations

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    add_epoch_line,
    base_layout,
    class_color,
    downsample_indices,
    empty_figure,
)


def _most_changed(weights: np.ndarray, max_lines: int) -> np.ndarray:
    """Sorted column indices of the `max_lines` weights with the largest range over epochs."""
    if weights.shape[1] <= max_lines:
        return np.arange(weights.shape[1])
    span = np.nan_to_num(np.nanmax(weights, axis=0) - np.nanmin(weights, axis=0), nan=-1.0)
    return np.sort(np.argsort(-span, kind="stable")[:max_lines])


def build_neuron_trajectories(
    epochs,
    kernel: np.ndarray,
    bias: np.ndarray,
    neuron: int,
    *,
    input_names: list[str] | None = None,
    current_epoch=None,
    max_lines: int = 20,
    max_points: int = 1000,
) -> go.Figure:
    """The chosen neuron's incoming weights (one line each) and its bias over the epochs."""
    epochs = np.asarray(epochs).reshape(-1)
    kernel, bias = np.asarray(kernel, dtype=float), np.asarray(bias, dtype=float)
    if epochs.size == 0 or kernel.size == 0:
        return empty_figure("No weights recorded for this layer")
    if kernel.ndim != 3:
        return empty_figure("Weight trajectories need a dense kernel (epochs, in, out)")
    if not 0 <= neuron < kernel.shape[2]:
        return empty_figure(f"Neuron {neuron} does not exist (the layer has {kernel.shape[2]})")
    idx = downsample_indices(epochs.size, max_points)
    weights = kernel[:, :, neuron]
    shown = _most_changed(weights, max_lines)
    fig = go.Figure()
    for k, i in enumerate(shown):
        name = input_names[i] if input_names is not None and i < len(input_names) else f"in {i}"
        fig.add_trace(
            go.Scatter(
                x=epochs[idx],
                y=weights[idx, i],
                mode="lines",
                name=f"w from {name}",
                line={"color": class_color(k), "width": 1.5},
                hovertemplate="epoch %{x}<br>%{y:.4g}<extra>%{fullData.name}</extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=epochs[idx],
            y=bias[idx, neuron],
            mode="lines",
            name="bias",
            line={"color": "black", "width": 3.5},
            hovertemplate="epoch %{x}<br>bias %{y:.4g}<extra></extra>",
        )
    )
    title = f"Neuron {neuron}: bias and incoming weights"
    if shown.size < weights.shape[1]:
        title += f" ({shown.size} of {weights.shape[1]} weights: those that changed most)"
    base_layout(fig, title, "epoch", "value")
    if shown.size > 6:
        fig.update_layout(
            legend={
                "orientation": "v",
                "x": 1.02,
                "xanchor": "left",
                "y": 1.0,
                "yanchor": "top",
                "font": {"size": 10},
            },
            margin={"t": 45},
        )
    return add_epoch_line(fig, current_epoch)


def _value_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """`bins + 1` fixed edges from the robust (0.5/99.5 %) range of all values, widened 5 %."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.1, 0.5)
    return np.linspace(lo - pad, hi + pad, bins + 1)


def _histograms(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (bins, E) per epoch row; values beyond the edges go to the end bins, NaN nowhere."""
    bins = edges.size - 1
    finite = np.isfinite(values)
    scaled = (np.where(finite, values, edges[0]) - edges[0]) / (edges[-1] - edges[0]) * bins
    which = np.clip(np.floor(scaled).astype(int), 0, bins - 1)
    rows = np.broadcast_to(np.arange(values.shape[0])[:, None], values.shape)
    counts = np.zeros((values.shape[0], bins))
    np.add.at(counts, (rows[finite], which[finite]), 1)
    return counts.T


def log_colorscale(zmax: float, base: str = "Viridis", steps: int = 24) -> list:
    """A colour scale over raw counts 0..zmax whose colour follows log1p(count)."""
    u = np.linspace(0.0, 1.0, steps)
    positions = np.expm1(u * np.log1p(zmax)) / zmax if zmax > 0 else u
    positions[0], positions[-1] = 0.0, 1.0
    colors = pc.sample_colorscale(base, list(u))
    return [[float(p), c] for p, c in zip(positions, colors, strict=True)]


def build_weight_histogram_heatmap(
    epochs,
    values: np.ndarray,
    *,
    title: str,
    bins: int = 40,
    current_epoch=None,
    max_epochs: int = 500,
) -> go.Figure:
    """How a set of values (a layer's weights) is distributed at each epoch, as a heatmap."""
    epochs = np.asarray(epochs).reshape(-1)
    values = np.asarray(values, dtype=float)
    if epochs.size == 0 or values.size == 0 or not np.isfinite(values).any():
        return empty_figure(f"{title}: no values recorded")
    values = values.reshape(values.shape[0], -1)  # (E, in, out) kernels flatten to (E, n)
    idx = downsample_indices(epochs.size, max_epochs)
    edges = _value_bins(values[np.isfinite(values)], bins)
    counts = _histograms(values[idx], edges)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Heatmap(
            x=epochs[idx],
            y=centres,
            z=counts,
            zmin=0,
            zmax=float(counts.max()),
            colorscale=log_colorscale(float(counts.max())),
            colorbar={"title": {"text": "count"}, "thickness": 12},
            hovertemplate="epoch %{x}<br>value ≈ %{y:.3g}<br>%{z:.0f} values<extra></extra>",
        )
    )
    base_layout(fig, title, "epoch", "value")
    return add_epoch_line(fig, current_epoch, color="#ffffff")
