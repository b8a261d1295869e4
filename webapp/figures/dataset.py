"""Dataset preview (points, sample images or a PCA view) and a sketch of the architecture."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    base_layout,
    class_color,
    empty_figure,
    hide_axes,
    stratified_sample,
)
from netlens.webapp.figures.representation import fit_projection


def _name_lookup(y: np.ndarray, class_names: list[str]) -> dict:
    """label -> display name: class_names[label] when every label indexes it, else by rank."""
    labels = np.unique(y).tolist()
    if class_names and all(float(v).is_integer() and 0 <= v < len(class_names) for v in labels):
        return {v: str(class_names[int(v)]) for v in labels}
    if class_names and len(class_names) == len(labels):
        return {v: str(n) for v, n in zip(labels, class_names, strict=True)}
    return {v: f"class {v}" for v in labels}


def _scatter_by_class(points, y, names, max_points: int) -> go.Figure:
    """Points coloured by class (stratified subsample), one trace per class."""
    keep = stratified_sample(y, max_points)
    fig = go.Figure()
    for k, (label, name) in enumerate(names.items()):
        mask = y[keep] == label
        fig.add_trace(
            go.Scatter(
                x=points[keep][mask, 0],
                y=points[keep][mask, 1],
                mode="markers",
                name=name,
                marker={"color": class_color(k), "size": 6, "opacity": 0.8},
                hovertemplate="(%{x:.3g}, %{y:.3g})<extra>%{fullData.name}</extra>",
            )
        )
    return fig


def balanced_choice(y: np.ndarray, n: int) -> np.ndarray:
    """Up to n indices taking each class in turn (first examples of each class)."""
    pools = [list(np.flatnonzero(y == label)) for label in np.unique(y)]
    chosen: list[int] = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(int(pool.pop(0)))
    return np.array(chosen, dtype=int)


def _image_grid(x, y, names, image_shape, n_images: int) -> go.Figure:
    """Sample images tiled into one greyscale heatmap, each labelled with its class."""
    h, w = image_shape
    chosen = balanced_choice(y, n_images)
    cols = math.ceil(math.sqrt(chosen.size))
    rows = math.ceil(chosen.size / cols)
    gap_x, gap_y = max(2, w // 6), max(6, h // 2)  # room for the label above each image
    tiled = np.full((rows * (h + gap_y), cols * (w + gap_x)), np.nan)
    fig = go.Figure()
    for k, index in enumerate(chosen):
        top, left = (k // cols) * (h + gap_y) + gap_y, (k % cols) * (w + gap_x)
        tiled[top : top + h, left : left + w] = x[index].reshape(h, w)
        fig.add_annotation(
            x=left + w / 2,
            y=top - 0.5,
            text=names[y[index]],
            showarrow=False,
            yanchor="bottom",
            font={"size": 11},
        )
    finite = x[chosen][np.isfinite(x[chosen])]
    low = float(finite.min()) if finite.size else 0.0
    high = max(float(finite.max()) if finite.size else 1.0, low + 1e-6)
    fig.add_trace(
        go.Heatmap(
            z=tiled, colorscale="gray", showscale=False, hoverinfo="skip", zmin=low, zmax=high
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1)
    return hide_axes(fig)


def build_dataset_preview(
    x: np.ndarray,
    y: np.ndarray,
    *,
    class_names: list[str],
    image_shape: tuple[int, int] | None = None,
    max_points: int = 2000,
    n_images: int = 16,
    title: str = "",
) -> go.Figure:
    """2-D data as a scatter, images as a grid of samples, anything else by its first two PCs."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y).reshape(-1)
    if x.size == 0 or x.ndim == 0:
        return empty_figure("The dataset is empty")
    x = x.reshape(x.shape[0], -1)
    names = _name_lookup(y, class_names)
    title = title or "Dataset"
    if image_shape is not None and image_shape[0] * image_shape[1] == x.shape[1]:
        fig = _image_grid(x, y, names, tuple(image_shape), n_images)
        return base_layout(fig, f"{title}: sample images", "", "")
    if x.shape[1] == 2:
        fig = _scatter_by_class(x, y, names, max_points)
        base_layout(fig, title, "x₁", "x₂")
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        return fig
    projection = fit_projection(x)
    fig = _scatter_by_class(projection.apply(x), y, names, max_points)
    if x.shape[1] == 1:
        return base_layout(fig, title, "x₁", "")
    return base_layout(
        fig, f"{title}: first two principal components of {x.shape[1]} features", "PC 1", "PC 2"
    )


def _sketch_columns(layer_sizes, layer_names, activations) -> list[tuple[str, int, str]]:
    """(name, units, activation) per column, adding an "input" name when one is missing."""
    names = list(layer_names)
    if len(names) == len(layer_sizes) - 1:
        names = ["input"] + names
    acts = list(activations or [])
    if len(acts) == len(layer_sizes) - 1:
        acts = [""] + acts
    acts += [""] * (len(layer_sizes) - len(acts))
    names += [f"layer {k}" for k in range(len(names), len(layer_sizes))]
    return [(names[k], int(n), acts[k] or "") for k, n in enumerate(layer_sizes)]


def build_architecture_sketch(
    layer_sizes: list[int],
    layer_names: list[str],
    *,
    activations: list[str] | None = None,
    max_nodes: int = 12,
) -> go.Figure:
    """A compact drawing of the network: circles per unit, links, and a caption per layer."""
    columns = _sketch_columns(layer_sizes, layer_names, activations)
    if not columns or all(n <= 0 for _, n, _ in columns):
        return empty_figure("Add layers to see the network")
    ys = [np.linspace(-1, 1, max_nodes)[: min(n, max_nodes)] for _, n, _ in columns]
    ys = [v - v.mean() if v.size else v for v in ys]
    lx, ly = [], []
    for c in range(len(columns) - 1):
        for a in ys[c]:
            for b in ys[c + 1]:
                lx += [c, c + 1, None]
                ly += [round(float(a), 3), round(float(b), 3), None]
    fig = go.Figure(
        go.Scatter(
            x=lx,
            y=ly,
            mode="lines",
            hoverinfo="skip",
            showlegend=False,
            line={"color": "rgba(120, 120, 120, 0.35)", "width": 0.7},
        )
    )
    for c, (name, n, act) in enumerate(columns):
        fig.add_trace(
            go.Scatter(
                x=np.full(ys[c].size, c),
                y=ys[c],
                mode="markers",
                showlegend=False,
                hovertemplate=f"{name}: {n} units"
                + (f" ({max_nodes} drawn)" if n > max_nodes else "")
                + "<extra></extra>",
                marker={
                    "size": 9,
                    "color": "#d9d9d9" if c == 0 else class_color(0),
                    "line": {"color": "#333333", "width": 1},
                },
            )
        )
        # Name on one line, width and activation on the next: a 5-layer sketch is ~90 px
        # per column, and one long line per column ran into its neighbours.
        caption = f"<b>{name}</b><br>{n}{' · ' + act if act else ''}"
        fig.add_annotation(
            x=c, y=-1.12, text=caption, showarrow=False, yanchor="top", font={"size": 10}
        )
    base_layout(fig, "Architecture", "", "")
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    fig.update_xaxes(range=[-0.6, len(columns) - 0.4])
    fig.update_yaxes(range=[-1.75, 1.15])
    return hide_axes(fig)
