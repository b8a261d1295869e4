"""Metric curves over epochs: losses, accuracies, gradient norms and activation statistics."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from netlens.webapp.figures.common import (
    add_epoch_line,
    base_layout,
    class_color,
    downsample_indices,
    empty_figure,
    friendly_name,
    with_alpha,
)


def _series_array(values, n: int, key: str) -> np.ndarray:
    """A metric as a float array of the epochs' length (ValueError when it does not match)."""
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.shape[0] != n:
        raise ValueError(f"metric {key!r} has {array.shape[0]} values for {n} epochs")
    return array


def build_metric_curves(
    epochs,
    series: dict[str, np.ndarray],
    *,
    title: str,
    y_title: str,
    current_epoch: int | None = None,
    max_points: int = 1000,
) -> go.Figure:
    """One line per metric series over the epochs, downsampled to at most `max_points`."""
    epochs = np.asarray(epochs).reshape(-1)
    if epochs.size == 0 or not series:
        return empty_figure(f"{title}: nothing recorded yet")
    arrays = {key: _series_array(values, epochs.size, key) for key, values in series.items()}
    if not any(np.isfinite(a).any() for a in arrays.values()):
        return empty_figure(f"{title}: no finite values recorded")
    idx = downsample_indices(epochs.size, max_points)
    fig = go.Figure()
    for k, (key, values) in enumerate(arrays.items()):
        fig.add_trace(
            go.Scatter(
                x=epochs[idx],
                y=values[idx],
                mode="lines",
                name=friendly_name(key),
                line={"color": class_color(k), "width": 2},
                connectgaps=False,
                hovertemplate="epoch %{x}<br>%{y:.4g}<extra>%{fullData.name}</extra>",
            )
        )
    base_layout(fig, title, "epoch", y_title)
    fig.update_layout(hovermode="x unified")
    return add_epoch_line(fig, current_epoch)


ACT_STATS = ("mean", "std", "min", "max", "dead", "saturated")


def _activation_arrays(metrics: dict, layer: str, n: int, idx: np.ndarray) -> dict:
    """The layer's downsampled activation statistics that were recorded with a finite value."""
    out = {}
    for stat in ACT_STATS:
        key = f"act/{layer}/{stat}"
        if key in metrics:
            values = _series_array(metrics[key], n, key)[idx]
            if np.isfinite(values).any():
                out[stat] = values
    return out


def _add_band(fig: go.Figure, x: np.ndarray, mean: np.ndarray, std: np.ndarray | None) -> None:
    """Mean line with a filled mean ± std band around it (left y axis)."""
    color = class_color(0)
    if std is not None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean + std,
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            ),
            secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean - std,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=with_alpha(color, 0.25),
                name="mean ± std",
                hoverinfo="skip",
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(x=x, y=mean, mode="lines", name="mean", line={"color": color, "width": 2}),
        secondary_y=False,
    )


def build_activation_stats_figure(
    epochs, metrics: dict[str, np.ndarray], layer: str, *, current_epoch=None, max_points=1000
) -> go.Figure:
    """A layer's activation mean ± std, min/max, and dead/saturated unit counts over epochs."""
    epochs = np.asarray(epochs).reshape(-1)
    idx = downsample_indices(epochs.size, max_points)
    stats = _activation_arrays(metrics, layer, epochs.size, idx) if epochs.size else {}
    if "mean" not in stats:
        return empty_figure(f"No activation statistics recorded for layer {layer}")
    x = epochs[idx]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    _add_band(fig, x, stats["mean"], stats.get("std"))
    for k, stat in enumerate(("min", "max")):
        if stat in stats:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=stats[stat],
                    mode="lines",
                    name=stat,
                    line={"color": "#7f7f7f", "width": 1, "dash": ("dot", "dash")[k]},
                ),
                secondary_y=False,
            )
    for stat, color in (("dead", "#d62728"), ("saturated", "#9467bd")):
        if stat in stats:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=stats[stat],
                    mode="lines",
                    name=f"{stat} units",
                    line={"color": color, "width": 1.5, "shape": "hv"},
                ),
                secondary_y=True,
            )
    base_layout(fig, f"Activations of {layer}", "epoch", "activation")
    counts = [np.nanmax(stats[s]) for s in ("dead", "saturated") if s in stats]
    step = max(1, int(np.ceil(max(counts, default=0) / 5)))  # whole units on the right axis
    fig.update_yaxes(
        title_text="units",
        secondary_y=True,
        rangemode="tozero",
        showgrid=False,
        visible=bool(counts),
        tickmode="linear",
        tick0=0,
        dtick=step,
    )
    fig.update_layout(hovermode="x unified")
    return add_epoch_line(fig, current_epoch)
