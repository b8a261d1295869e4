"""Figures that put several runs on one set of axes: curves, distance from the initial weights,
weight and activation distributions, dead and saturated units per layer, and the layer × layer
similarity (CKA) of two runs.

Every run keeps one colour across the compare page (`run_color`); train is a solid line,
validation a dashed one. The curves are smoothed, on a log y axis, by wall time as the page's
controls say (curves.CurveOptions), drawn by the run page's own helper (curves.line_traces);
grouped by a spec field, each group is its mean curve in a ±1 std band.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from netlens.webapp.comparison import aggregate
from netlens.webapp.figures.common import (
    add_epoch_line,
    base_layout,
    deep_update,
    downsample_indices,
    empty_figure,
    layout_dict,
    plain_figure,
    typed_array,
    with_alpha,
)
from netlens.webapp.figures.curves import (
    CurveOptions,
    curve_axes,
    ema,
    line_traces,
    time_scale,
    x_of,
)

RUN_COLORS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
]


def run_color(position: int) -> str:
    return RUN_COLORS[position % len(RUN_COLORS)]


KINDS = (("train", "solid"), ("validation", "dash"))  # the names' pair: (train, validation)


def _encoded(trace: dict) -> dict:
    """A trace's arrays as typed arrays; values as float32, which keeps 7 significant digits
    (hover shows 4) in half the bytes."""
    for key, dtype in (("x", None), ("y", "float32"), ("customdata", None)):
        value = trace.get(key)
        if isinstance(value, np.ndarray):
            trace[key] = typed_array(value, dtype) if value.ndim == 1 else value.tolist()
    return trace


def _time_scale(options: CurveOptions, seconds: list) -> tuple:
    """The wall-time scale shared by every run of a figure, or None (by epoch)."""
    if options.x != "time":
        return None
    longest = [np.nanmax(s) for s in seconds if s is not None and np.isfinite(s).any()]
    return time_scale(float(max(longest))) if longest else None


def _layout(title: str, y_title: str, options: CurveOptions, scale, note: str = "") -> dict:
    layout = layout_dict(title + note, "epoch", y_title)
    return deep_update(layout, curve_axes(options, scale))


def overlaid_curves(
    runs: list[tuple[str, np.ndarray, dict[str, np.ndarray]]],
    names: tuple[str, str],
    *,
    title: str,
    y_title: str,
    max_points: int = 500,
    options: CurveOptions | None = None,
    seconds: list[np.ndarray | None] | None = None,
) -> dict:
    """`runs`: (label, epochs, metrics) per run; `names`: the (train, validation) metric keys;
    `seconds`: per run, its wall time since it started at each epoch (None: not recorded).
    Each run's series is smoothed, then downsampled on its own epochs to at most
    `max_points`. A plain figure (common.plain_figure: 8 runs' curves open the compare
    page)."""
    options = options or CurveOptions()
    seconds = seconds or [None] * len(runs)
    scale = _time_scale(options, seconds)
    traces = []
    for position, ((label, epochs, metrics), secs) in enumerate(zip(runs, seconds, strict=True)):
        if scale is not None and secs is None:
            continue  # by wall time: a run without times has no place on the axis
        x = x_of(epochs, secs, options, scale)
        for name, (kind, dash) in zip(names, KINDS, strict=True):
            values = metrics.get(name)
            if values is None or not np.isfinite(values).any():
                continue
            traces += line_traces(
                x,
                epochs,
                values,
                name=f"{label} {kind}",
                color=run_color(position),
                smoothing=options.smoothing,
                max_points=max_points,
                dash=dash,
                legendgroup=label,
                unit=scale.unit if scale else None,
            )
    if not traces:
        return empty_figure(f"{title}: nothing recorded yet").to_dict()
    note = " (no wall times recorded: by epoch)" if options.x == "time" and not scale else ""
    layout = _layout(title, y_title, options, scale, note)
    return plain_figure([_encoded(t) for t in traces], layout)


LOG_BAND_FLOOR = 0.1  # on a log y axis the band's lower edge stops a decade below the mean


def band_lower(mean: np.ndarray, std: np.ndarray, log_y: bool) -> np.ndarray:
    """The band's lower edge: mean - std; on a log axis, where that is not positive (plotly
    would drop the point and the fill with it), a decade below the mean instead."""
    lower = mean - std
    if not log_y:
        return lower
    with np.errstate(invalid="ignore"):
        return np.where(lower > 0, lower, LOG_BAND_FLOOR * mean)


def _band(
    x, epochs, mean, std, *, name: str, color: str, dash: str, group: str, log_y: bool = False
) -> list[dict]:
    """A group's mean line in its ±1 std band (upper edge, lower edge filled up to it)."""
    edge = {"type": "scatter", "mode": "lines", "x": x, "legendgroup": group}
    edge |= {"line": {"width": 0, "color": color}, "showlegend": False, "hoverinfo": "skip"}
    return [
        {**edge, "y": mean + std, "name": f"{name} +std"},
        {
            **edge,
            "y": band_lower(mean, std, log_y),
            "name": f"{name} −std",
            "fill": "tonexty",
            "fillcolor": with_alpha(color, 0.18),
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": mean,
            "customdata": np.column_stack([epochs, std]),
            "name": name,
            "legendgroup": group,
            "line": {"color": color, "width": 2, "dash": dash},
            "hovertemplate": (
                "%{fullData.name}<br>epoch %{customdata[0]}: %{y:.4g} ± %{customdata[1]:.2g}"
                "<extra></extra>"
            ),
        },
    ]


def grouped_curves(
    groups: list[tuple[str, list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]]]],
    names: tuple[str, str],
    *,
    title: str,
    y_title: str,
    max_points: int = 500,
    options: CurveOptions | None = None,
    colors: list[str] | None = None,
) -> dict:
    """`groups`: (label, members) with each member (epochs, metrics, seconds or None);
    `colors`: one per group (default: run_color of its position). Each
    group's curve is the mean over its members (each smoothed first) at the epochs all of
    them recorded, in a shaded ±1 std band; by wall time, x is the members' mean time at that
    epoch. The legend names each group and its n."""
    options = options or CurveOptions()
    scale = _time_scale(options, [s for _, members in groups for _, _, s in members])
    traces = []
    for position, (label, members) in enumerate(groups):
        if scale is not None:
            members = [m for m in members if m[2] is not None]
        for name, (kind, dash) in zip(names, KINDS, strict=True):
            having = [(e, m[name], s) for e, m, s in members if name in m]
            having = [h for h in having if np.isfinite(h[1]).any()]
            if not having:
                continue
            epochs, mean, std, _ = aggregate([(e, ema(v, options.smoothing)) for e, v, _ in having])
            if not len(epochs):
                continue
            x = epochs
            if scale is not None:
                x = aggregate([(e, s) for e, _, s in having])[1] / scale.divisor
            idx = downsample_indices(len(epochs), max_points)
            band = _band(
                x[idx],
                epochs[idx],
                mean[idx],
                std[idx],
                name=f"{label} (n={len(having)}) {kind}",
                color=colors[position] if colors else run_color(position),
                dash=dash,
                group=label,
                log_y=options.log_y,
            )
            traces += band
    if not traces:
        return empty_figure(f"{title}: nothing recorded yet").to_dict()
    note = " (no wall times recorded: by epoch)" if options.x == "time" and not scale else ""
    layout = _layout(f"{title}: mean ± std", y_title, options, scale, note)
    layout["legend"] = {"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"}
    layout["margin"] = {**layout["margin"], "b": 90}
    return plain_figure([_encoded(t) for t in traces], layout)


def build_distance_from_init(
    runs: list[tuple[str, np.ndarray, np.ndarray, float]],
    *,
    relative: bool,
    current_epoch: int | None = None,
) -> go.Figure:
    """`runs`: (label, epochs, distance, initial norm). Relative divides by ‖θ₀‖."""
    fig = go.Figure()
    for position, (label, epochs, distance, initial) in enumerate(runs):
        if not len(epochs):
            continue
        y = distance / initial if relative and initial > 0 else distance
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=y,
                mode="lines",
                name=label,
                line={"color": run_color(position), "width": 2},
                hovertemplate=f"{label}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    if not fig.data:
        return empty_figure("No parameters recorded yet")
    y_title = "‖θ − θ₀‖ / ‖θ₀‖" if relative else "‖θ − θ₀‖ (all weights and biases)"
    base_layout(fig, "Distance of the weights from their initial values", "epoch", y_title)
    return add_epoch_line(fig, current_epoch)


def build_weight_distributions(
    runs: list[tuple[str, np.ndarray]],
    *,
    title: str,
    bins: int = 60,
    what: str = "weight",
    positions: list[int] | None = None,
) -> go.Figure:
    """One layer's weights (or, `what="activation"`, its outputs on the probe inputs) per run
    as overlaid step histograms on shared bins (density, so layers of different widths
    compare). `positions`: each run's place on the page (its colour), when some runs are
    missing from `runs`."""
    finite = [(label, np.asarray(v, float).ravel()) for label, v in runs]
    finite = [(label, v[np.isfinite(v)]) for label, v in finite]
    values = [v for _, v in finite if v.size]
    if not values:
        return empty_figure(f"{title}: no {what}s recorded at this epoch")
    low, high = min(v.min() for v in values), max(v.max() for v in values)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for k, (label, v) in enumerate(finite):
        if not v.size:
            continue
        density, _ = np.histogram(v, bins=edges, density=True)
        position = positions[k] if positions is not None else k
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=density,
                mode="lines",
                line={"shape": "hvh", "width": 2, "color": run_color(position)},
                name=f"{label} ({v.size} {what}s, std {v.std():.3g})",
                hovertemplate=f"{label}<br>{what} %{{x:.3g}}: density %{{y:.3g}}<extra></extra>",
            )
        )
    return base_layout(fig, title, what, "density")


def build_unit_counts(
    runs: list[tuple[str, int, list[str], list[int | None], list[int | None], list[int | None]]],
    *,
    title: str,
) -> go.Figure:
    """Dead (left) and saturated (right) units per hidden layer, one bar per run in its
    colour, grouped by layer. `runs`: (label, position, layers, dead, saturated, units) with
    None where a layer has no signature (dead) or its activation no flat tails (saturated):
    that bar is left out. Each bar carries its count as text, so that zeros show."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("dead units", "saturated units (tanh, sigmoid)"),
        horizontal_spacing=0.1,
    )
    drawn = False
    for label, position, layers, dead, saturated, units in runs:
        for col, counts, kind in ((1, dead, "dead"), (2, saturated, "saturated")):
            shown = [
                (n, c, u) for n, c, u in zip(layers, counts, units, strict=True) if c is not None
            ]
            if not shown:
                continue
            drawn = True
            fig.add_trace(
                go.Bar(
                    x=[n for n, _, _ in shown],
                    y=[c for _, c, _ in shown],
                    customdata=[u for _, _, u in shown],
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1 or not any(d is not None for d in dead),
                    marker={"color": run_color(position)},
                    # the count over each bar: a 0 (the common, good case) is seen, not a gap
                    text=[str(c) for _, c, _ in shown],
                    textposition="outside",
                    cliponaxis=False,
                    hovertemplate=(
                        f"{label} %{{x}}<br>%{{y}} of %{{customdata}} units {kind}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
    if not drawn:
        return empty_figure(f"{title}: no signatures recorded at this epoch")
    base_layout(fig, title, "", "")
    fig.update_layout(
        barmode="group",
        legend={"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
        margin={"t": 80, "b": 80},
    )
    highest = max(
        (c for run in runs for counts in (run[3], run[4]) for c in counts if c is not None),
        default=0,
    )
    fig.update_yaxes(  # whole units: ticks 0, 1, 2, ... (or every n-th for wide layers)
        range=[0, max(1, highest) * 1.2], tick0=0, dtick=max(1, math.ceil(highest / 5))
    )
    fig.update_yaxes(title_text="units", row=1, col=1)
    fig.update_xaxes(type="category")
    return fig


def build_cka_heatmap(
    matrix: np.ndarray,
    rows: list[str],
    columns: list[str],
    *,
    row_run: str,
    column_run: str,
    n_inputs: int,
    epoch: int,
) -> go.Figure:
    """Linear CKA of every layer of one run (rows) with every layer of another (columns)."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.size == 0:
        return empty_figure("No layers to compare")
    text = [["–" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in matrix]
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(matrix), matrix, None),
            x=columns,
            y=rows,
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            text=text,
            texttemplate="%{text}",
            textfont={"size": 12},
            colorbar={"title": {"text": "CKA"}, "thickness": 12},
            hovertemplate=(
                f"{row_run} %{{y}}<br>{column_run} %{{x}}<br>linear CKA %{{text}}<extra></extra>"
            ),
        )
    )
    base_layout(
        fig,
        f"Linear CKA at epoch {epoch}, on {n_inputs} shared probe inputs",
        f"layer of {column_run}",
        f"layer of {row_run}",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return fig
