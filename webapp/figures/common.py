"""Shared figure helpers: empty placeholder, layout, class palette, downsampling, and plain
figures (dicts) for the hot paths."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
import plotly.io as pio
from _plotly_utils.utils import to_typed_array_spec  # plotly's own encoder of numpy arrays

UIREVISION = "netlens"
# The trace types NetLens draws (the plotly.js bundle's, webapp/plotly-bundle/build.mjs).
TEMPLATE_TRACES = (
    "scatter",
    "heatmap",
    "contour",
    "bar",
    "histogram",
    "box",
    "sankey",
    "parcoords",
    "scatter3d",
)


def _register_template() -> str:
    """plotly_white with the defaults of only the trace types NetLens draws. Plotly deep-copies
    a named template into every figure that sets it, and plotly_white's defaults for 24 trace
    types made that copy 15-55 ms a figure (most of the compare page's 0.55 s of layout on the
    lab VM); the figures look the same."""
    white = pio.templates["plotly_white"]
    data = {k: v for k, v in white.data.to_plotly_json().items() if k in TEMPLATE_TRACES}
    pio.templates["netlens"] = go.layout.Template(layout=white.layout, data=data)
    return "netlens"


TEMPLATE = _register_template()


@functools.cache
def template_dict() -> dict:
    """The NetLens template as the plain dict plotly.js takes (computed once; never mutate)."""
    return pio.templates[TEMPLATE].to_plotly_json()


def plain_figure(data: list[dict], layout: dict) -> dict:
    """A figure as a plain dict, for figures drawn on hot paths (the compare page draws six at
    once). Plotly's graph objects validate every property on assignment and copy the template
    into every figure, which took most of the compare page's server time; plotly.js takes the
    same JSON either way. A template given by name is replaced by the template itself. The
    tests pass these dicts through go.Figure, whose validation refuses any unknown property."""
    if isinstance(layout.get("template"), str):
        layout = {**layout, "template": template_dict()}
    return {"data": data, "layout": layout}


def typed_array(values, dtype: str | None = None) -> Any:
    """A numpy array as plotly.js' typed-array spec ({"dtype", "bdata"}: base64, a third of the
    size of a JSON list of floats), as plotly itself serialises graph objects' arrays."""
    return to_typed_array_spec(np.ascontiguousarray(values, dtype=dtype))


def deep_update(target: dict, changes: dict) -> dict:
    """Merge `changes` into `target` the way Figure.update_layout does (nested dicts merge,
    anything else replaces)."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_update(target[key], value)
        else:
            target[key] = value
    return target


# Qualitative class palette (no grey in it: grey/black is reserved for out-of-distribution inputs).
CLASS_COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
]
OOD_COLOR = "#3a3a3a"
OOD_SYMBOL = "diamond"
POSITIVE_COLOR = "#2166ac"
NEGATIVE_COLOR = "#b2182b"
CORRECT_COLOR = "#1a9850"
WRONG_COLOR = "#d73027"
# Diverging scale centred on 0 (use with cmid=0): red negative, white zero, blue positive.
DIVERGING = [[0.0, NEGATIVE_COLOR], [0.5, "#f7f7f7"], [1.0, POSITIVE_COLOR]]


def class_color(index: int) -> str:
    """The palette colour of the class at position `index` (cycling)."""
    return CLASS_COLORS[int(index) % len(CLASS_COLORS)]


def with_alpha(color: str, alpha: float) -> str:
    """A "#rrggbb" colour as an rgba() string with the given opacity."""
    r, g, b = pc.hex_to_rgb(color)
    return f"rgba({r}, {g}, {b}, {alpha:g})"


def blend_with_white(color: str, amount: float) -> str:
    """Mix a "#rrggbb" colour with white (amount 0 = colour, 1 = white)."""
    r, g, b = (round(c + (255 - c) * amount) for c in pc.hex_to_rgb(color))
    return f"rgb({r}, {g}, {b})"


def empty_figure(message: str) -> go.Figure:
    """A figure without axes that only shows `message` in its centre."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": "#666666"},
    )
    fig.update_layout(
        template=TEMPLATE,
        margin={"l": 40, "r": 40, "t": 40, "b": 40},
        xaxis={"visible": False},
        yaxis={"visible": False},
        font={"size": 12},
        uirevision=UIREVISION,
    )
    return fig


def layout_dict(title: str, x_title: str, y_title: str) -> dict:
    """NetLens' common layout (template, margins, top legend, font, uirevision) as a dict."""
    return {
        "template": TEMPLATE,
        "title": {
            "text": title,
            "x": 0.0,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 14},
        },
        # room for the tick labels and axis titles: when they do not fit, plotly.js pushes
        # the margins out and draws the whole figure a second time
        "margin": {"l": 60, "r": 40, "t": 70, "b": 55},
        "legend": {
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        "font": {"size": 12},
        "uirevision": UIREVISION,
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
    }


def base_layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """Apply NetLens' common layout (layout_dict) to a figure."""
    fig.update_layout(layout_dict(title, x_title, y_title))
    return fig


def downsample_indices(n: int, max_points: int) -> np.ndarray:
    """At most `max_points` evenly spaced indices into range(n), always with 0 and n - 1."""
    if n <= 0:
        return np.zeros(0, dtype=int)
    if n <= max(max_points, 2):
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(int(max_points), 2)).round().astype(int))


def add_epoch_line(
    fig: go.Figure, current_epoch: int | float | None, color: str = "#555555"
) -> go.Figure:
    """A vertical dashed line at the current epoch (nothing when it is None)."""
    if current_epoch is not None:
        fig.add_vline(x=float(current_epoch), line={"dash": "dash", "color": color, "width": 1.5})
    return fig


def friendly_name(key: str) -> str:
    """Legend name of a metric key: "train_loss" -> "train loss", "grad_norm/h_1" -> "h_1"."""
    if "/" in key:
        return " ".join(part for part in key.split("/")[1:] if part)
    return key.replace("_", " ")


def stratified_sample(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `max_points` items, each label keeping its share (at least 1)."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    values, counts = np.unique(labels, return_counts=True)
    quotas = np.maximum(1, np.floor(counts * max_points / n)).astype(int)
    for value, quota in zip(values, quotas, strict=True):
        members = np.flatnonzero(labels == value)
        keep.append(rng.choice(members, size=min(quota, members.size), replace=False))
    chosen = np.concatenate(keep)
    if chosen.size > max_points:
        chosen = rng.choice(chosen, size=max_points, replace=False)
    return np.sort(chosen)


def hide_axes(fig: go.Figure) -> go.Figure:
    """Hide both 2-D axes (ticks, grid, zero line) of a diagram."""
    fig.update_xaxes(visible=False, showgrid=False, zeroline=False)
    fig.update_yaxes(visible=False, showgrid=False, zeroline=False)
    return fig
