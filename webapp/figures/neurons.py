"""Per-neuron maps over the input plane (TensorFlow Playground's view): each hidden unit's
output at every point of the decision grid, as small multiples and as node thumbnails."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from netlens.storage.catalog import MODEL_KINDS
from netlens.webapp.figures.boundary import grid_axes
from netlens.webapp.figures.common import (
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    base_layout,
    class_color,
    empty_figure,
    stratified_sample,
)

MAX_COLUMNS = 8  # maps per row: a 16-unit layer takes two rows, each map ~150 px wide
MAX_UNITS = 16  # maps drawn per layer; wider layers show their first MAX_UNITS with a note
RANGE_SAMPLES = 12  # grid epochs sampled for a run-wide colour range (relu, unbounded ones)
# low values red, 0 (or the middle of a bounded range) white, high values blue; relu's
# 0..max runs white to blue, so that a dead unit is a white square
SIGNED_SCALE = [[0.0, NEGATIVE_COLOR], [0.5, "#f7f7f7"], [1.0, POSITIVE_COLOR]]
POSITIVE_SCALE = [[0.0, "#f7f7f7"], [1.0, POSITIVE_COLOR]]
FIXED_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


def why_no_maps(layers: Sequence[dict], spec: dict, tensor_names: Sequence[str]) -> str | None:
    """Why a run (its layers, spec and recorded tensor names) has no per-neuron maps, in a
    sentence; None when it has them."""
    hidden = [x["name"] for x in layers[:-1]]
    if not layers:
        return "No layers recorded yet"
    if not hidden:
        return "This network has no hidden layer: its only map is the decision boundary"
    if f"grid/{hidden[0]}" in tensor_names:
        return None
    kind = spec.get("model", {}).get("kind")
    if not (kind in MODEL_KINDS and MODEL_KINDS[kind].trainable):
        return (
            "No neuron maps: NetLens computes the hidden layers' outputs over the input plane "
            "for the networks it trains (specs and nl.Sequential's fit); an nl.Recorder run "
            "records only what its loop passes"
        )
    if "grid/output" in tensor_names:
        return (
            "No neuron maps: this run was recorded before NetLens kept each hidden layer's "
            "output over the grid (grid/<layer>); train it again to get them"
        )
    return "No neuron maps: NetLens records them over the input plane of 2-D inputs only"


def sample_epochs(grid_epochs: Sequence[int], n: int = RANGE_SAMPLES) -> list[int]:
    """At most n grid epochs spread over the run, always the first and the last."""
    grid_epochs = np.asarray(grid_epochs)
    if not len(grid_epochs):
        return []
    picks = np.unique(np.linspace(0, len(grid_epochs) - 1, n).astype(int))
    return [int(grid_epochs[i]) for i in picks]


def color_range(activation: str, frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """The colour range of a layer's maps, fixed for the whole run so that frames compare:
    the activation's own range (tanh -1..1, sigmoid 0..1); relu 0..its largest value in
    `frames` (a sample of the run's grid frames); others symmetric around 0."""
    if activation in FIXED_RANGES:
        return FIXED_RANGES[activation]
    finite = [np.asarray(f, float)[np.isfinite(f)] for f in frames if f is not None]
    values = np.concatenate([f.ravel() for f in finite]) if finite else np.zeros(0)
    if activation == "relu":
        top = float(values.max()) if values.size else 0.0
        return 0.0, top if top > 0 else 1.0
    top = float(np.abs(values).max()) if values.size else 0.0
    return (-top, top) if top > 0 else (-1.0, 1.0)


def run_color_ranges(
    layers: Sequence[dict], grid_epochs: Sequence[int], read: Callable[[str, int], np.ndarray]
) -> dict[str, tuple[float, float]]:
    """color_range of each hidden layer (dicts with name and activation) over a sample of the
    run's grid epochs; read(layer, epoch) gives grid/<layer> at that epoch. Bounded
    activations read nothing."""
    sample = sample_epochs(grid_epochs)
    return {
        x["name"]: color_range(
            x["activation"],
            [] if x["activation"] in FIXED_RANGES else [read(x["name"], e) for e in sample],
        )
        for x in layers
    }


def _scale(activation: str) -> list:
    """relu's outputs start at 0 (white); the others' run low (red) to high (blue)."""
    return POSITIVE_SCALE if activation == "relu" else SIGNED_SCALE


def neuron_maps_figure(
    grid_x: np.ndarray,
    maps: dict[str, np.ndarray],
    activations: dict[str, str],
    *,
    color_ranges: dict[str, tuple[float, float]] | None = None,
    points_x: np.ndarray | None = None,
    points_y: np.ndarray | None = None,
    max_units: int = MAX_UNITS,
    title: str = "",
) -> go.Figure:
    """Small multiples: one heatmap per hidden unit of its post-activation output over the
    input plane, the layers in order (a layer of more than MAX_COLUMNS units wraps onto more
    rows), one colour bar per layer.

    grid_x: (G, 2) grid points, row-major over y then x (grid/x). maps: layer name -> (G,
    units) values at one epoch (grid/<layer>), in forward order. activations: layer name ->
    activation, which fixes the colour range unless color_ranges gives it (relu: pass the
    run's range, run_color_ranges, so that colours do not rescale from epoch to epoch).
    points_x/points_y: data points drawn faint on every map (optional). Layers wider than
    max_units show their first max_units units, and the title says so."""
    grid_x = np.asarray(grid_x, float).reshape(-1, 2)
    if not maps or not len(grid_x):
        return empty_figure("No hidden layer maps to draw")
    xs, ys = grid_axes(grid_x)
    shown = {name: min(np.shape(v)[1], max_units) for name, v in maps.items()}
    cols = min(MAX_COLUMNS, max(shown.values()))
    rows_of = {name: -(-n // cols) for name, n in shown.items()}
    n_rows = sum(rows_of.values())
    cells, titles, row = [], [""] * (n_rows * cols), 1
    for name, n in shown.items():
        for unit in range(n):
            r, c = row + unit // cols, 1 + unit % cols
            cells.append((name, unit, r, c))
            titles[(r - 1) * cols + c - 1] = f"{name} · unit {unit}"
        row += rows_of[name]
    fig = make_subplots(
        rows=n_rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.02,
        vertical_spacing=min(0.3 / n_rows, 0.08),
    )
    ranges = {
        name: (color_ranges or {}).get(name) or color_range(activations.get(name, ""), [v])
        for name, v in maps.items()
    }
    axis_of = {name: f"coloraxis{i + 1 if i else ''}" for i, name in enumerate(maps)}
    for name, unit, r, c in cells:
        z = np.asarray(maps[name], float)[:, unit].reshape(ys.size, xs.size)
        fig.add_trace(
            go.Heatmap(
                x=xs,
                y=ys,
                z=z,
                coloraxis=axis_of[name],
                hovertemplate=f"{name} · unit {unit}<br>(%{{x:.3g}}, %{{y:.3g}})<br>"
                "output %{z:.3f}<extra></extra>",
            ),
            row=r,
            col=c,
        )
        if points_x is not None and len(points_x):
            _add_faint_points(fig, points_x, points_y, r, c)
    _finish_layout(fig, maps, shown, rows_of, n_rows, ranges, axis_of, activations, title)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    # every map is the same input plane: its axes are named once, on the first map
    small = {"font": {"size": 10}, "standoff": 2}
    fig.update_layout(xaxis_title={"text": "x₁", **small}, yaxis_title={"text": "x₂", **small})
    for i in range(1, n_rows * cols + 1):
        fig.update_layout(
            {
                f"xaxis{i if i > 1 else ''}": {
                    "range": [xs.min(), xs.max()],
                    "constrain": "domain",
                },
                f"yaxis{i if i > 1 else ''}": {
                    "range": [ys.min(), ys.max()],
                    "scaleanchor": f"x{i if i > 1 else ''}",
                    "constrain": "domain",
                },
            }
        )
    return fig


def _add_faint_points(fig: go.Figure, points_x, points_y, r: int, c: int) -> None:
    keep = stratified_sample(np.asarray(points_y), 200)
    px, py = np.asarray(points_x, float)[keep], np.asarray(points_y)[keep]
    colors = [class_color(int(y)) if float(y).is_integer() else "#000000" for y in py]
    fig.add_trace(
        go.Scatter(
            x=px[:, 0],
            y=px[:, 1],
            mode="markers",
            marker={
                "color": colors,
                "size": 4,
                "opacity": 0.55,
                "line": {"color": "white", "width": 0.5},
            },
            hoverinfo="skip",
            showlegend=False,
        ),
        row=r,
        col=c,
    )


def _finish_layout(fig, maps, shown, rows_of, n_rows, ranges, axis_of, activations, title):
    """Title (with the layers cut to max_units), one colour bar per layer beside its rows,
    small subplot titles, and a height that keeps each map readable."""
    cut = [f"{n}: units 0–{shown[n] - 1} of {np.shape(v)[1]}" for n, v in maps.items()]
    cut = [c for c, (n, v) in zip(cut, maps.items(), strict=True) if shown[n] < np.shape(v)[1]]
    full = (title or "Neuron maps") + (f" · showing {'; '.join(cut)}" if cut else "")
    base_layout(fig, full, "", "")
    row = 0
    for name in maps:
        lo, hi = ranges[name]
        span = rows_of[name] / n_rows
        fig.update_layout(
            {
                axis_of[name]: {
                    "colorscale": _scale(activations.get(name, "")),
                    "cmin": lo,
                    "cmax": hi,
                    "colorbar": {
                        "title": {"text": f"{name}<br>({activations.get(name, '?')})"},
                        "thickness": 10,
                        "len": max(span - 0.04, 0.1),
                        "y": 1 - (row + rows_of[name] / 2) / n_rows,
                        "yanchor": "middle",
                    },
                }
            }
        )
        row += rows_of[name]
    fig.update_annotations(font_size=10)
    fig.update_layout(showlegend=False, height=120 + 165 * n_rows, margin={"t": 70})


def maps_title(grid_epoch: int, epoch: int) -> str:
    """The view's title: which grid epoch it shows for the slider's epoch."""
    at = "" if grid_epoch == epoch else f" (the grid epoch at or before epoch {epoch})"
    return f"Each hidden unit's output over the input plane · epoch {grid_epoch}{at}"


# -- thumbnails for the network graph -------------------------------------------------------
THUMBNAIL_UNITS = 16  # the network graph shows maps on its nodes up to this many per layer


def thumbnail_uris(
    grid_x: np.ndarray,
    maps: dict[str, np.ndarray],
    activations: dict[str, str],
    color_ranges: dict[str, tuple[float, float]],
) -> dict[str, list[str]] | None:
    """For network.network_graph's thumbnails: layer -> one PNG data URI per unit, in the
    colours of neuron_maps_figure; None when a layer has more than THUMBNAIL_UNITS units
    (the nodes would be too small to show them)."""
    if not maps or any(np.shape(v)[1] > THUMBNAIL_UNITS for v in maps.values()):
        return None
    xs, ys = grid_axes(np.asarray(grid_x, float).reshape(-1, 2))
    return {
        name: [
            map_image(
                np.asarray(v)[:, u].reshape(ys.size, xs.size),
                activations[name],
                *color_ranges[name],
            )
            for u in range(np.shape(v)[1])
        ]
        for name, v in maps.items()
    }


def _png(rgb: np.ndarray) -> bytes:
    """A minimal RGB PNG (no dependency beyond zlib): rows top to bottom."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def map_image(z: np.ndarray, activation: str, lo: float, hi: float) -> str:
    """A PNG data URI of one map (rows over y ascending, as grid/<layer> stores them), in
    the colours of neuron_maps_figure (the same scale for the same range)."""
    scale = _scale(activation)
    t = np.clip((np.nan_to_num(np.asarray(z, float)) - lo) / ((hi - lo) or 1.0), 0, 1)
    stops = np.array([s for s, _ in scale])
    colors = np.array([pc.hex_to_rgb(c) for _, c in scale], float)
    rgb = np.stack([np.interp(t, stops, colors[:, k]) for k in range(3)], axis=-1)
    image = np.round(rgb[::-1]).astype(np.uint8)  # PNG rows run top (largest y) down
    return "data:image/png;base64," + base64.b64encode(_png(image)).decode()
