"""Metric curves over epochs: losses, accuracies, gradient norms and activation statistics."""

from __future__ import annotations

import warnings

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


def split_metrics(metrics: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """(loss-like, accuracy-like, other) metric series, by name. NetLens' own runs have
    train_/val_loss and train_/val_accuracy; a user's (nl.Recorder) names its own: a name with
    "loss" is loss-like, one with "acc" accuracy-like; gradient norms and activation
    statistics (grad_norm/, act/) have views of their own and are in none of the three."""
    own = {k: v for k, v in metrics.items() if not k.startswith(("grad_norm/", "act/"))}
    loss = {k: v for k, v in own.items() if "loss" in k.lower()}
    acc = {k: v for k, v in own.items() if "acc" in k.lower() and k not in loss}
    other = {k: v for k, v in own.items() if k not in loss and k not in acc}
    return loss, acc, other


def activation_stats_from_signatures(values: np.ndarray, layer: str) -> dict[str, np.ndarray]:
    """A layer's activation statistics over the epochs computed from its recorded outputs on
    the probe, (E, P, ...): act/<layer>/mean, std, min, max (over every input and feature),
    and dead (features that are 0 for every probe input), as NetLens records them for its own
    runs."""
    values = np.asarray(values, dtype=float)
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values[:, None]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = {
            "mean": np.nanmean(flat, axis=1),
            "std": np.nanstd(flat, axis=1),
            "min": np.nanmin(flat, axis=1),
            "max": np.nanmax(flat, axis=1),
        }
    if values.ndim >= 2:
        per_feature = values.reshape(values.shape[0], values.shape[1], -1)
        stats["dead"] = (per_feature == 0).all(axis=1).sum(axis=1).astype(float)
    return {f"act/{layer}/{k}": v for k, v in stats.items()}


def with_page_names(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The metrics with train_/val_loss and train_/val_accuracy filled in, when a run (an
    nl.Recorder run, which names its own) has none of them, from its loss-like and
    accuracy-like metrics: a name with "val" is the validation series, the first other one the
    training series. Views that overlay runs by these four names then draw such runs too."""
    loss, acc, _ = split_metrics(metrics)
    out = dict(metrics)
    for kind, found in (("loss", loss), ("accuracy", acc)):
        if f"train_{kind}" in metrics:  # NetLens' own names: a spec run, or named so
            continue
        val = [k for k in found if "val" in k.lower()]
        train = [k for k in found if k not in val]
        if train:
            out[f"train_{kind}"] = found[train[0]]
        if val and f"val_{kind}" not in metrics:
            out[f"val_{kind}"] = found[val[0]]
    return out
