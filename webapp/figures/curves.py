"""Metric curves over epochs: losses, accuracies, gradient norms and activation statistics."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

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


# ---- the curves' controls: smoothing, log y, x by epoch or wall time (run and compare pages)

SMOOTHING_MAX = 0.99  # TensorBoard's slider stops there: a weight of 1 would never move
X_AXES = ("epoch", "time")  # the x radio's values (the URL's `x`); "time": wall time
FRACTION = re.compile(r"[0-9]{1,3}(\.[0-9]{0,6})?|\.[0-9]{1,6}")  # "0.6", ".6", "1" (ASCII)


@dataclass(frozen=True)
class CurveOptions:
    """How the curves are drawn: EMA smoothing weight (0: off), log-scale y, x axis."""

    smoothing: float = 0.0
    log_y: bool = False
    x: str = "epoch"


def smoothing_of(value: object) -> float | None:
    """A smoothing weight from a control or a query: a number, or decimal text, clamped to
    0..SMOOTHING_MAX; None for anything else (text that is not a plain decimal, NaN, bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and FRACTION.fullmatch(value.strip()):
        value = float(value.strip())
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(max(float(value), 0.0), SMOOTHING_MAX)


def checked_options(smoothing: object, log_y: object, x: object) -> CurveOptions | None:
    """The controls' values as a callback gets them, checked: None when any is not what the
    control sends (a crafted request), so that the callback changes nothing."""
    weight = smoothing_of(smoothing)
    if weight is None or not isinstance(log_y, bool) or x not in X_AXES:
        return None
    return CurveOptions(weight, log_y, x)


def ema(values, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average debiased like Adam's moments,
    s_k = (w s_{k-1} + (1 - w) v_k) / (1 - w^n) with s_0 = 0 and n the finite values so far;
    so the first points are not pulled towards 0. Non-finite values stay as they are and do
    not enter the average."""
    values = np.asarray(values, dtype=float).reshape(-1)
    out = values.copy()
    if weight <= 0:
        return out
    last, n = 0.0, 0
    for i in np.flatnonzero(np.isfinite(values)):
        last = last * weight + (1 - weight) * values[i]
        n += 1
        out[i] = last / (1 - weight**n)
    return out


def elapsed_seconds(epochs, time_epochs, times) -> np.ndarray:
    """Seconds since the run's first timed epoch at each of `epochs` (NaN where an epoch has
    no recorded time); `time_epochs`, `times`: what records.read_wall_times returned."""
    epochs = np.asarray(epochs).reshape(-1)
    times = np.asarray(times, dtype=float).reshape(-1)
    finite = np.isfinite(times)
    out = np.full(epochs.shape, np.nan)
    if not finite.any():
        return out
    known = dict(zip(np.asarray(time_epochs)[finite].tolist(), times[finite], strict=True))
    start = times[finite].min()
    return np.array([known.get(int(e), np.nan) - start for e in epochs.tolist()], dtype=float)


def has_wall_times(epochs, seconds) -> bool:
    """Whether a run can be drawn by wall time: it has times, or nothing recorded yet (a new
    run records them)."""
    return not len(epochs) or bool(np.isfinite(np.asarray(seconds, dtype=float)).any())


@dataclass(frozen=True)
class TimeScale:
    """Wall-time x axis: seconds divided by `divisor`, in `unit`."""

    divisor: float
    unit: str

    @property
    def title(self) -> str:
        return f"wall time ({self.unit} since the run started)"


def time_scale(longest_seconds: float) -> TimeScale:
    """Seconds for a run of up to 5 minutes, minutes up to 5 hours, hours beyond."""
    if not math.isfinite(longest_seconds) or longest_seconds <= 300:
        return TimeScale(1.0, "s")
    if longest_seconds <= 5 * 3600:
        return TimeScale(60.0, "min")
    return TimeScale(3600.0, "h")


def x_of(
    epochs, seconds: np.ndarray | None, options: CurveOptions, scale: TimeScale | None
) -> np.ndarray:
    """The x values of a run's points: its epochs, or its wall time in the scale's unit."""
    if options.x == "time" and seconds is not None and scale is not None:
        return np.asarray(seconds, dtype=float) / scale.divisor
    return np.asarray(epochs)


def line_traces(
    x,
    epochs,
    values,
    *,
    name: str,
    color: str,
    smoothing: float,
    max_points: int,
    dash: str = "solid",
    legendgroup: str | None = None,
    unit: str | None = None,
) -> list[dict]:
    """One series as trace dicts: the smoothed line (smoothing on the whole series, then
    downsampled) over its raw values drawn faint, or the raw line alone when smoothing is
    0. Points without an x (no wall time) are left out; hover names the epoch. The one
    drawing of a curve for the run and the compare pages."""
    x = np.asarray(x).reshape(-1)
    epochs = np.asarray(epochs).reshape(-1)
    raw = np.asarray(values, dtype=float).reshape(-1)
    smooth = ema(raw, smoothing)
    keep = np.flatnonzero(np.isfinite(x))
    idx = keep[downsample_indices(keep.size, max_points)] if keep.size else keep
    at = f"epoch %{{customdata}}, %{{x:.3g}} {unit}" if unit else "epoch %{x}"
    common = {"type": "scatter", "mode": "lines", "x": x[idx], "customdata": epochs[idx]}
    if legendgroup is not None:
        common["legendgroup"] = legendgroup
    line = {
        **common,
        "y": smooth[idx],
        "name": name,
        "connectgaps": False,
        "line": {"color": color, "width": 2, "dash": dash},
        # the name through fullData: a user's metric name is not read as a template
        "hovertemplate": f"%{{fullData.name}}<br>{at}: %{{y:.4g}}<extra></extra>",
    }
    if smoothing <= 0:
        return [line]
    faint = {
        **common,
        "y": raw[idx],
        "name": f"{name} (raw)",
        "showlegend": False,
        "hoverinfo": "skip",
        "line": {"color": with_alpha(color, 0.25), "width": 1, "dash": dash},
    }
    line["hovertemplate"] = f"%{{fullData.name}} (smoothed)<br>{at}: %{{y:.4g}}<extra></extra>"
    return [faint, line]


def curve_axes(options: CurveOptions, scale: TimeScale | None) -> dict:
    """The layout changes the options make: log y, the x axis' title."""
    by_time = options.x == "time" and scale is not None
    return {
        "xaxis": {"title": {"text": scale.title if by_time else "epoch"}},
        "yaxis": {"type": "log" if options.log_y else "linear"},
    }


def build_metric_curves(
    epochs,
    series: dict[str, np.ndarray],
    *,
    title: str,
    y_title: str,
    current_epoch: int | None = None,
    max_points: int = 1000,
    options: CurveOptions | None = None,
    seconds: np.ndarray | None = None,
) -> go.Figure:
    """One line per metric series over the epochs (or over wall time: `seconds` since the
    run started at each epoch), downsampled to at most `max_points`, smoothed, on a log y
    axis, as `options` say."""
    options = options or CurveOptions()
    epochs = np.asarray(epochs).reshape(-1)
    if epochs.size == 0 or not series:
        return empty_figure(f"{title}: nothing recorded yet")
    arrays = {key: _series_array(values, epochs.size, key) for key, values in series.items()}
    if not any(np.isfinite(a).any() for a in arrays.values()):
        return empty_figure(f"{title}: no finite values recorded")
    timed = seconds is not None and np.isfinite(seconds).any()
    if options.x == "time" and not timed:
        title += " (no wall times recorded: by epoch)"
    scale = time_scale(float(np.nanmax(seconds))) if timed else None
    x = x_of(epochs, seconds, options, scale)
    unit = scale.unit if options.x == "time" and scale else None
    fig = go.Figure()
    for k, (key, values) in enumerate(arrays.items()):
        for trace in line_traces(
            x,
            epochs,
            values,
            name=friendly_name(key),
            color=class_color(k),
            smoothing=options.smoothing,
            max_points=max_points,
            legendgroup=key,
            unit=unit,
        ):
            fig.add_trace(trace)
    base_layout(fig, title, "epoch", y_title)
    fig.update_layout(hovermode="x unified", **curve_axes(options, scale))
    if current_epoch is not None and unit:
        found = np.flatnonzero(epochs == current_epoch)
        current_epoch = x[found[0]] if found.size and np.isfinite(x[found[0]]) else None
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
