"""Figures of the signatures page: clusters, flow, projections, class signatures,
separability by layer and epoch, unseen classes, and two inputs side by side.

Pure functions of plain arrays and lists (the page adapts the stored analysis to them), so
each one is tested without a database or a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from netlens.webapp.figures.common import (
    CORRECT_COLOR,
    OOD_COLOR,
    OOD_SYMBOL,
    TEMPLATE,
    UIREVISION,
    WRONG_COLOR,
    base_layout,
    class_color,
    empty_figure,
    with_alpha,
)

OOD_COLORS = ["#3a3a3a", "#8c8c8c", "#5b4a3a", "#6b6b9a"]  # one per unseen class


def group_color(index: int, is_ood: bool) -> str:
    """Trained classes get the class palette; unseen classes greys (never a class colour)."""
    return OOD_COLORS[index % len(OOD_COLORS)] if is_ood else class_color(index)


def silhouette_curve(
    ks: Sequence[int], scores: Sequence[float | None], chosen: int | None, layer: str
) -> go.Figure:
    """Silhouette score by K of one layer's K-means, the chosen K marked."""
    pairs = [(k, s) for k, s in zip(ks, scores, strict=True) if s is not None]
    if not pairs:
        return empty_figure(f"{layer}: no K gives two distinct clusters (all signatures equal)")
    x, y = zip(*pairs, strict=True)
    fig = go.Figure(
        go.Scatter(x=x, y=y, mode="lines+markers", name="silhouette", line={"color": "#4c72b0"})
    )
    if chosen in x:
        fig.add_trace(
            go.Scatter(
                x=[chosen],
                y=[y[x.index(chosen)]],
                mode="markers",
                name=f"chosen K = {chosen}",
                marker={"size": 14, "color": "#dd8452", "symbol": "star"},
            )
        )
    base_layout(fig, f"{layer}: K-means silhouette by K", "K (clusters)", "silhouette")
    fig.update_xaxes(dtick=1)
    return fig


def cluster_makeup(
    counts: np.ndarray,
    cluster_names: Sequence[str],
    group_names: Sequence[str],
    group_is_ood: Sequence[bool],
    layer: str,
) -> go.Figure:
    """Stacked bars: how many probe inputs of each class (unseen ones in grey) each cluster holds.
    `counts` is (clusters, groups)."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return empty_figure(f"{layer}: no clusters")
    fig = go.Figure()
    trained = [i for i, ood in enumerate(group_is_ood) if not ood]
    for g, name in enumerate(group_names):
        ood = bool(group_is_ood[g])
        color = group_color(g if not ood else g - len(trained), ood)
        fig.add_trace(
            go.Bar(
                x=list(cluster_names),
                y=counts[:, g],
                name=name,
                marker={"color": color, "pattern": {"shape": "/" if ood else ""}},
            )
        )
    base_layout(fig, f"{layer}: class make-up of each cluster", "cluster", "probe inputs")
    fig.update_layout(barmode="stack")
    return fig


def node_positions(stages: Sequence[int], counts: Sequence[int]) -> tuple[list, list]:
    """(x, y) of every Sankey node: one column per stage, nodes stacked in their given order
    with heights in proportion to their counts, so every redraw lays out the same way."""
    stages, counts = np.asarray(stages), np.asarray(counts, float)
    last = max(int(stages.max()), 1)
    xs = [0.001 + 0.998 * s / last for s in stages]
    ys = np.zeros(len(stages))
    for stage in np.unique(stages):
        members = np.flatnonzero(stages == stage)
        sizes = np.maximum(counts[members], counts.max() * 0.02)
        tops = np.concatenate([[0], np.cumsum(sizes)[:-1]]) / sizes.sum()
        ys[members] = 0.02 + 0.96 * (tops + sizes / sizes.sum() / 2)
    return xs, ys.tolist()


def sankey(
    labels: Sequence[str],
    colors: Sequence[str],
    sources: Sequence[int],
    targets: Sequence[int],
    values: Sequence[int],
    link_colors: Sequence[str],
    title: str,
    stages: Sequence[int],
    counts: Sequence[int],
) -> go.Figure:
    """True class → cluster per layer → predicted class. Each link's customdata is its index,
    so a click names the link whose inputs to list."""
    if not values:
        return empty_figure("no flow to draw")
    x, y = node_positions(stages, counts)
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": list(labels),
                "color": list(colors),
                "pad": 12,
                "thickness": 14,
                "x": x,
                "y": y,
                "line": {"width": 0.5, "color": "#888"},
            },
            link={
                "source": list(sources),
                "target": list(targets),
                "value": list(values),
                "color": list(link_colors),
                "customdata": list(range(len(values))),
                "hovertemplate": "%{source.label} → %{target.label}: %{value} inputs"
                "<extra>click to list them</extra>",
            },
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0, "font": {"size": 14}},
        margin={"l": 20, "r": 20, "t": 50, "b": 20},
        font={"size": 11},
        uirevision=title,
    )  # a new flow is laid out afresh, not over the old one
    return fig


def link_color(source_color: str, ood_share: float) -> str:
    """A link takes its source's colour, dark when most of its inputs are unseen classes."""
    return with_alpha(OOD_COLOR if ood_share > 0.5 else source_color, 0.35)


def projection_scatter(
    points: np.ndarray,
    groups: Sequence[int],
    group_names: Sequence[str],
    group_colors: Sequence[str],
    group_symbols: Sequence[str],
    hover: Sequence[str],
    title: str,
    axis_names: tuple[str, str],
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> go.Figure:
    """One marker per probe input, one trace per group (class, cluster, correct/wrong, ...).
    customdata holds the probe index (hover cards and the two-input comparison use it), as a
    list: plotly.js leaves a typed-array customdata out of hover and click events.
    Fixed `ranges` keep the axes still while the slider moves through epochs."""
    points, groups = np.asarray(points, float), np.asarray(groups)
    if not len(points):
        return empty_figure("no probe inputs")
    fig = go.Figure()
    hover = np.asarray(hover, dtype=object)
    for g, name in enumerate(group_names):
        idx = np.flatnonzero(groups == g)
        if not len(idx):
            continue
        fig.add_trace(
            go.Scatter(
                x=points[idx, 0],
                y=points[idx, 1],
                mode="markers",
                name=f"{name} ({len(idx)})",
                customdata=idx.tolist(),
                text=hover[idx],
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "color": group_colors[g],
                    "symbol": group_symbols[g],
                    "size": 7,
                    "opacity": 0.85,
                    "line": {"width": 0.5, "color": "white"},
                },
            )
        )
    base_layout(fig, title, *axis_names)
    if ranges is not None:
        fig.update_xaxes(range=list(ranges[0]))
        fig.update_yaxes(range=list(ranges[1]))
    return fig


def color_groups(
    mode: str,
    *,
    class_index: np.ndarray,
    is_ood: np.ndarray,
    clusters: np.ndarray | None,
    correct: np.ndarray,
    class_names: Sequence[str],
    ood_names: Sequence[str],
    ood_index: np.ndarray,
):
    """(groups per input, names, colours, symbols) for colouring a projection by `mode`:
    "class" (unseen classes in greys), "cluster", "correct" or "ood"."""
    if mode == "cluster" and clusters is not None:
        k = int(clusters.max()) + 1 if len(clusters) else 0
        return (
            clusters,
            [f"cluster {c}" for c in range(k)],
            [class_color(c) for c in range(k)],
            ["circle"] * k,
        )
    if mode == "correct":
        groups = np.where(is_ood, 2, np.where(correct, 0, 1))
        return (
            groups,
            ["correct", "wrong", "unseen class"],
            [CORRECT_COLOR, WRONG_COLOR, OOD_COLOR],
            ["circle", "x", OOD_SYMBOL],
        )
    if mode == "ood":
        return (
            is_ood.astype(int),
            ["trained classes", "unseen classes"],
            ["#4c72b0", OOD_COLOR],
            ["circle", OOD_SYMBOL],
        )
    n = len(class_names)
    groups = np.where(is_ood, n + ood_index, class_index)
    names = [*class_names, *[f"{o} (unseen)" for o in ood_names]]
    colors = [group_color(i, False) for i in range(n)] + [
        group_color(i, True) for i in range(len(ood_names))
    ]
    return groups, names, colors, ["circle"] * n + [OOD_SYMBOL] * len(ood_names)


def stable_ranges(frames: np.ndarray, pad: float = 0.05):
    """Axis ranges covering every frame (F, P, 2), so an animation never rescales."""
    frames = np.asarray(frames, float)
    finite = frames[np.isfinite(frames).all(axis=-1)]
    if not len(finite):
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.maximum(hi - lo, 1e-6) * pad
    return (float(lo[0] - span[0]), float(hi[0] + span[0])), (
        float(lo[1] - span[1]),
        float(hi[1] + span[1]),
    )


def class_heatmap(means: np.ndarray, group_names: Sequence[str], layer: str) -> go.Figure:
    """Mean activation of each class (rows, unseen classes marked) on each neuron (columns)."""
    means = np.asarray(means, float)
    if means.size == 0:
        return empty_figure(f"{layer}: no class means")
    fig = go.Figure(
        go.Heatmap(
            z=means,
            x=[f"n{i}" for i in range(means.shape[1])],
            y=list(group_names),
            colorscale="Viridis",
            colorbar={"title": {"text": "mean"}},
            hovertemplate="%{y}, neuron %{x}: %{z:.3f}<extra></extra>",
        )
    )
    base_layout(fig, f"{layer}: which neurons fire for which class", "neuron", "")
    fig.update_yaxes(autorange="reversed")
    return fig


def distance_heatmap(distances: np.ndarray, names: Sequence[str], layer: str) -> go.Figure:
    """Euclidean distances between the trained classes' centroids in one layer."""
    distances = np.asarray(distances, float)
    if distances.size == 0:
        return empty_figure(f"{layer}: fewer than two classes")
    fig = go.Figure(
        go.Heatmap(
            z=distances,
            x=list(names),
            y=list(names),
            colorscale="Blues",
            text=np.round(distances, 2),
            texttemplate="%{text}",
            colorbar={"title": {"text": "distance"}},
        )
    )
    base_layout(fig, f"{layer}: distance between class centroids", "", "")
    fig.update_yaxes(autorange="reversed")
    return fig


def separability_by_layer(
    layers: Sequence[str],
    silhouette: Sequence[float | None],
    probe_accuracy: Sequence[float | None],
    chance: float,
    epoch: int,
) -> go.Figure:
    """Silhouette of the true classes and linear-probe accuracy at each layer: from which
    layer the classes are separated."""
    if not layers:
        return empty_figure("no layers")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=list(layers),
            y=list(probe_accuracy),
            mode="lines+markers",
            name="linear-probe accuracy",
            line={"color": "#4c72b0"},
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=list(layers),
            y=list(silhouette),
            mode="lines+markers",
            name="silhouette of true classes",
            line={"color": "#dd8452", "dash": "dot"},
        ),
        secondary_y=True,
    )
    fig.add_hline(
        y=chance,
        line={"color": "#999", "dash": "dash", "width": 1},
        annotation_text="chance",
        annotation_position="bottom right",
    )
    base_layout(fig, f"Class separability by layer at epoch {epoch}", "layer", "")
    fig.update_yaxes(title_text="linear-probe accuracy", secondary_y=False)
    fig.update_yaxes(
        title_text="silhouette",
        range=[-0.315, 1.05],
        secondary_y=True,
        showgrid=False,
        tickvals=[-0.25, 0, 0.25, 0.5, 0.75, 1],
    )
    fig.update_yaxes(range=[-0.315, 1.05], tickvals=[0, 0.25, 0.5, 0.75, 1], secondary_y=False)
    return fig


def separability_over_epochs(
    epochs: Sequence[int],
    layers: Sequence[str],
    values: np.ndarray,
    metric: str,
    current: int | None,
) -> go.Figure:
    """A layer × epoch heatmap of one separability measure: from which epoch each layer
    separates the classes. `values` is (layers, epochs)."""
    values = np.asarray(values, float)
    if values.size == 0:
        return empty_figure("no timeline analysed yet")
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(e) for e in epochs],
            y=list(layers),
            colorscale="Viridis",
            zmin=0 if metric == "linear-probe accuracy" else -0.2,
            zmax=1,
            colorbar={"title": {"text": metric.split()[0]}},
            hovertemplate="epoch %{x}, %{y}: %{z:.3f}<extra></extra>",
        )
    )
    base_layout(fig, f"{metric} by layer and epoch", "epoch (analysed frames)", "")
    fig.update_xaxes(type="category")
    if current is not None and str(current) in fig.data[0].x:
        fig.add_vline(
            x=list(fig.data[0].x).index(str(current)),
            line={"color": "white", "width": 2, "dash": "dash"},
        )
    fig.update_yaxes(autorange="reversed")
    return fig


def ood_distances(
    names: Sequence[str],
    ood_distance: Sequence[float | None],
    in_distance: float | None,
    layer: str,
) -> go.Figure:
    """Each unseen class's mean distance to the nearest trained-class centroid, against the
    trained inputs' mean distance to their own centroid."""
    if not names:
        return empty_figure("this run has no unseen classes in its probe set")
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=list(ood_distance),
            name="unseen class → nearest trained centroid",
            marker={"color": OOD_COLORS[0]},
        )
    )
    if in_distance is not None:
        fig.add_hline(
            y=in_distance,
            line={"color": "#4c72b0", "dash": "dash"},
            annotation_text="trained inputs → own centroid",
            annotation_position="top right",
            annotation_bgcolor="rgba(255,255,255,0.85)",
        )
    base_layout(fig, f"{layer}: how far the unseen classes land", "unseen class", "mean distance")
    return fig


def compare_inputs(
    layers: Sequence[str],
    first: Sequence[np.ndarray],
    second: Sequence[np.ndarray],
    names: tuple[str, str],
) -> go.Figure:
    """Two inputs' signatures side by side, one row per layer (units on x)."""
    if not layers:
        return empty_figure("no layers")
    fig = make_subplots(
        rows=len(layers),
        cols=1,
        subplot_titles=list(layers),
        vertical_spacing=min(0.12, 0.5 / len(layers)),
    )
    for row, (a, b) in enumerate(zip(first, second, strict=True), start=1):
        units = [f"n{i}" for i in range(len(a))]
        for values, name, color in ((a, names[0], "#4c72b0"), (b, names[1], "#dd8452")):
            fig.add_trace(
                go.Bar(
                    x=units,
                    y=values,
                    name=name,
                    marker={"color": color},
                    showlegend=row == 1,
                    legendgroup=name,
                ),
                row=row,
                col=1,
            )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        uirevision=UIREVISION,
        margin={"l": 50, "r": 30, "t": 80, "b": 30},
        font={"size": 11},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        height=max(320, 170 * len(layers)),
    )
    return fig
