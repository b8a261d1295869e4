"""Decision boundary of a 2-D classifier: output probability over a grid, with the data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    base_layout,
    blend_with_white,
    class_color,
    empty_figure,
    stratified_sample,
)


def grid_axes(grid_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of a regular grid stored row-major over y then x (point i * nx + j)."""
    nx = int(np.argmax(grid_x[:, 1] != grid_x[0, 1])) or grid_x.shape[0]
    if grid_x.shape[0] % nx:
        raise ValueError(f"grid of {grid_x.shape[0]} points is not rows of {nx} points")
    return grid_x[:nx, 0], grid_x[::nx, 1]


def label_name(label, class_names) -> str:
    """A label's display name: class_names[label] for integer labels in range, else str."""
    if class_names is not None and float(label).is_integer() and 0 <= label < len(class_names):
        return str(class_names[int(label)])
    return f"class {label}"


def _probability_colorscale() -> list:
    """Light class-0 colour at 0, white at 0.5, light class-1 colour at 1."""
    return [
        [0.0, blend_with_white(class_color(0), 0.45)],
        [0.5, "#ffffff"],
        [1.0, blend_with_white(class_color(1), 0.45)],
    ]


def _add_points(fig: go.Figure, points_x, points_y, class_names, max_points: int) -> None:
    """The data points (stratified subsample), one trace per class, with a white outline."""
    keep = stratified_sample(points_y, max_points)
    px, py = points_x[keep], points_y[keep]
    for label in np.unique(py):
        mask = py == label
        color = class_color(int(label)) if float(label).is_integer() else "#000000"
        fig.add_trace(
            go.Scatter(
                x=px[mask, 0],
                y=px[mask, 1],
                mode="markers",
                name=label_name(label, class_names),
                marker={"color": color, "size": 7, "line": {"color": "white", "width": 1}},
                hovertemplate="(%{x:.3g}, %{y:.3g})<extra>%{fullData.name}</extra>",
            )
        )


def build_decision_boundary(
    grid_x: np.ndarray,
    grid_out: np.ndarray,
    points_x: np.ndarray,
    points_y: np.ndarray,
    *,
    class_names: list[str] | None = None,
    title: str = "",
    max_points: int = 2000,
) -> go.Figure:
    """Output probability over the input plane, its 0.5 contour, and the data points."""
    grid_x = np.asarray(grid_x, dtype=float).reshape(-1, 2)
    grid_out = np.asarray(grid_out, dtype=float).reshape(-1)
    if grid_x.shape[0] == 0 or grid_out.size != grid_x.shape[0]:
        return empty_figure("No decision boundary recorded for this epoch")
    xs, ys = grid_axes(grid_x)
    z = grid_out.reshape(ys.size, xs.size)
    positive = label_name(1, class_names)
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            zmin=0.0,
            zmax=1.0,
            colorscale=_probability_colorscale(),
            colorbar={"title": {"text": f"P({positive})"}, "thickness": 12},
            hovertemplate="(%{x:.3g}, %{y:.3g})<br>P = %{z:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Contour(
            x=xs,
            y=ys,
            z=z,
            showscale=False,
            hoverinfo="skip",
            name="P = 0.5",
            contours={"coloring": "none", "start": 0.5, "end": 0.5, "size": 1.0},
            line={"color": "#222222", "width": 2},
            showlegend=False,
        )
    )
    points_x = np.asarray(points_x, dtype=float).reshape(-1, 2)
    points_y = np.asarray(points_y).reshape(-1)
    if points_x.shape[0]:
        _add_points(fig, points_x, points_y, class_names, max_points)
    base_layout(fig, title or "Decision boundary", "x₁", "x₂")
    fig.update_xaxes(range=[xs.min(), xs.max()], constrain="domain", showgrid=False)
    fig.update_yaxes(
        range=[ys.min(), ys.max()],
        scaleanchor="x",
        scaleratio=1,
        constrain="domain",
        showgrid=False,
    )
    return fig
