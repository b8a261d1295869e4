"""Node-link diagrams of a dense network: a 2-D layered graph and a 3-D view of its layers."""

from __future__ import annotations

import math

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    DIVERGING,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    UIREVISION,
    base_layout,
    deep_update,
    empty_figure,
    layout_dict,
    plain_figure,
    with_alpha,
)

WIDTHS_2D = (0.6, 1.6, 3.2)
WIDTHS_3D = (1.0, 2.0, 4.0)
OPACITY_3D = (0.15, 0.35, 0.8)
OPACITY = (0.3, 0.55, 0.9)
INPUT_NODE_COLOR = "#d9d9d9"
# In 3-D markers have no outline: a grey middle keeps near-zero biases visible on white.
DIVERGING_3D = [[0.0, NEGATIVE_COLOR], [0.5, "#c8c8c8"], [1.0, POSITIVE_COLOR]]
CAMERA_3D = {
    "eye": {"x": -1.0, "y": -2.2, "z": 1.1},
    "center": {"x": 0, "y": 0, "z": -0.05},
    "up": {"x": 0, "y": 0, "z": 1},
}


def _layers_problem(layer_names, kernels, biases, input_size: int) -> str | None:
    """Why these layers cannot be drawn (None when they can)."""
    if not kernels or input_size <= 0:
        return "No layers to draw"
    if not len(layer_names) == len(kernels) == len(biases):
        raise ValueError("layer_names, kernels and biases must have the same length")
    if any(np.ndim(k) != 2 for k in kernels):
        return "Only dense layers can be drawn as a graph"
    sizes = [input_size] + [np.shape(k)[1] for k in kernels]
    if any(np.shape(k)[0] != sizes[i] for i, k in enumerate(kernels)):
        raise ValueError(f"kernel shapes do not chain from {input_size} inputs")
    return None


def kept_units(kernels: list[np.ndarray], input_size: int, max_nodes: int) -> list[np.ndarray]:
    """Per column (input first) the sorted units to draw: the max_nodes most strongly connected.

    Layers rank units by the sum of |incoming weights|; the input column by |outgoing weights|.
    """
    scores = [np.abs(kernels[0]).sum(axis=1)] + [np.abs(k).sum(axis=0) for k in kernels]
    kept = []
    for score in scores:
        score = np.nan_to_num(score, nan=-1.0)
        if score.size <= max_nodes:
            kept.append(np.arange(score.size))
        else:
            kept.append(np.sort(np.argsort(-score, kind="stable")[:max_nodes]))
    return kept


def strongest_edges(kernels, kept, max_edges: int):
    """(column, source row, target row, weight) arrays of the max_edges strongest kept edges.

    Rows index into `kept[column]` and `kept[column + 1]`.
    """
    parts = []
    for c, kernel in enumerate(kernels):
        sub = np.asarray(kernel, dtype=float)[np.ix_(kept[c], kept[c + 1])]
        i, j = np.meshgrid(np.arange(sub.shape[0]), np.arange(sub.shape[1]), indexing="ij")
        parts.append(np.stack([np.full(sub.size, c), i.ravel(), j.ravel(), sub.ravel()], 1))
    edges = np.concatenate(parts)
    edges = edges[np.isfinite(edges[:, 3]) & (edges[:, 3] != 0)]
    if edges.shape[0] > max_edges:
        edges = edges[np.argsort(-np.abs(edges[:, 3]), kind="stable")[:max_edges]]
    return edges[:, 0].astype(int), edges[:, 1].astype(int), edges[:, 2].astype(int), edges[:, 3]


def edge_buckets(weights: np.ndarray, n_buckets: int = 3):
    """Yield (bucket, is_positive, mask): edges grouped by sign and by |w| / max |w|."""
    if weights.size == 0:
        return
    strength = np.abs(weights) / np.abs(weights).max()
    bucket = np.minimum((strength * n_buckets).astype(int), n_buckets - 1)
    for b in range(n_buckets):
        for positive in (True, False):
            mask = (bucket == b) & ((weights > 0) == positive)
            if mask.any():
                yield b, positive, mask


def segments(start: np.ndarray, end: np.ndarray) -> list:
    """Coordinates of line segments start[k] -> end[k] separated by None (for one trace)."""
    pairs = np.round(np.stack([start, end], axis=1).astype(float), 3).tolist()
    out: list = []
    for a, b in pairs:
        out.extend((a, b, None))
    return out


def _node_text(layer: str, units, bias, value) -> list[str]:
    """Hover text of each drawn node of one column."""
    text = []
    for k, unit in enumerate(units):
        line = f"{layer}<br>unit {unit}"
        if bias is not None:
            line += f"<br>bias {bias[k]:.4g}"
        if value is not None:
            line += f"<br>value {value[k]:.4g}"
        text.append(line)
    return text


def _column_y(n: int) -> np.ndarray:
    """Vertical positions of n nodes, top to bottom, centred on 0."""
    return (n - 1) / 2 - np.arange(n, dtype=float)


def _edges_2d(kernels, kept, max_edges: int) -> tuple[list[dict], int]:
    """Edge traces (one per width bucket and sign) and the number of edges drawn."""
    col, i, j, w = strongest_edges(kernels, kept, max_edges)
    ys = [_column_y(k.size) for k in kept]
    y0 = np.array([ys[c][r] for c, r in zip(col, i, strict=True)])
    y1 = np.array([ys[c + 1][r] for c, r in zip(col, j, strict=True)])
    traces = []
    for b, positive, mask in edge_buckets(w):
        color = POSITIVE_COLOR if positive else NEGATIVE_COLOR
        traces.append(
            {
                "type": "scatter",
                "x": segments(col[mask], col[mask] + 1),
                "y": segments(y0[mask], y1[mask]),
                "mode": "lines",
                "line": {"color": with_alpha(color, OPACITY[b]), "width": WIDTHS_2D[b]},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    return traces, w.size


def _node_values(col: int, kept, biases, node_values):
    """(bias, value) arrays of the drawn nodes of one column (None where not defined)."""
    bias = None if col == 0 else np.asarray(biases[col - 1], dtype=float)[kept[col]]
    value = None
    if node_values is not None and col < len(node_values):
        value = np.asarray(node_values[col], dtype=float).reshape(-1)[kept[col]]
    return bias, value


def _nodes_2d(names, kept, biases, node_values, by_activation: bool) -> list[dict]:
    """One marker trace per column, coloured through the shared diverging colour axis."""
    size = int(np.clip(320 / max(k.size for k in kept), 7, 18))
    traces = []
    for col, units in enumerate(kept):
        bias, value = _node_values(col, kept, biases, node_values)
        color = value if by_activation else bias
        marker = {"size": size, "line": {"color": "#333333", "width": 1}}
        if color is None:
            marker["color"] = INPUT_NODE_COLOR
        else:
            marker.update(color=color.tolist(), coloraxis="coloraxis")
        traces.append(
            {
                "type": "scatter",
                "x": [col] * units.size,
                "y": _column_y(units.size).tolist(),
                "mode": "markers",
                "marker": marker,
                "text": _node_text(names[col], units, bias, value),
                "hovertemplate": "%{text}<extra></extra>",
                "showlegend": False,
            }
        )
    return traces


def _column_labels(names, kept, sizes, compact: bool = False) -> list[dict]:
    """Layer name and unit count (or "showing k of n") under each column, below the plot area;
    `compact` ("k of n", smaller type) for narrow figures side by side."""
    labels = []
    for col, (name, units) in enumerate(zip(names, kept, strict=True)):
        count = (
            f"{sizes[col]} unit{'' if sizes[col] == 1 else 's'}"
            if units.size == sizes[col]
            else f"{'' if compact else 'showing '}{units.size} of {sizes[col]}"
        )
        labels.append(
            {
                "x": col,
                "y": 0,
                "yref": "paper",
                "yshift": -4,
                "text": f"<b>{name}</b><br>{count}",
                "showarrow": False,
                "yanchor": "top",
                "font": {"size": 9 if compact else 11},
            }
        )
    return labels


def build_network_graph(
    layer_names: list[str], kernels: list[np.ndarray], biases: list[np.ndarray], **options
) -> go.Figure:
    """network_graph as a plotly Figure (validated)."""
    return go.Figure(network_graph(layer_names, kernels, biases, **options))


def network_graph(
    layer_names: list[str],
    kernels: list[np.ndarray],
    biases: list[np.ndarray],
    *,
    input_size: int,
    node_values: list[np.ndarray] | None = None,
    color_by: str = "bias",
    max_nodes: int = 24,
    max_edges: int = 1500,
    title: str = "",
    compact: bool = False,
    thumbnails: dict[str, list[str]] | None = None,
) -> dict:
    """A layered node-link diagram, nodes coloured by bias or activation, edges by weight, as a
    plain figure (common.plain_figure: the compare page draws four at once). thumbnails:
    layer name -> one image URI per unit (its map over the input plane, figures.neurons),
    drawn behind the node, under the edges, so that neither the edges nor the node's colour
    are hidden."""
    problem = _layers_problem(layer_names, kernels, biases, input_size)
    if problem:
        return empty_figure(problem).to_dict()
    by_activation = color_by == "activation" and node_values is not None
    kept = kept_units(kernels, input_size, max_nodes)
    sizes = [input_size] + [np.shape(k)[1] for k in kernels]
    names = ["input"] + list(layer_names)
    edges, n_edges = _edges_2d(kernels, kept, max_edges)
    label = "activation" if by_activation else "bias"
    full_title = title or "Network"
    full_title += f" · nodes: {label} · edges: {n_edges} strongest (blue +, red −)"
    half = max(k.size for k in kept) / 2
    hidden = {"visible": False, "showgrid": False, "zeroline": False}
    layout = deep_update(
        layout_dict(full_title, "", ""),
        {
            "showlegend": False,
            "margin": {"b": 50},
            "annotations": _column_labels(names, kept, sizes, compact),
            "coloraxis": {
                "colorscale": DIVERGING,
                "cmid": 0.0,
                "colorbar": {"title": {"text": label}, "thickness": 12},
            },
            "xaxis": {"range": [-0.5, len(kept) - 0.5], **hidden},
            "yaxis": {"range": [-half, half], **hidden},
        },
    )
    if thumbnails:
        layout["images"] = _thumbnail_images(names, kept, thumbnails)
        layout["title"]["text"] += " · maps: each unit's output over the input plane"
    nodes = _nodes_2d(names, kept, biases, node_values, by_activation)
    if thumbnails:  # smaller markers: the maps around them show more
        for trace in nodes:
            trace["marker"]["size"] = min(trace["marker"]["size"], 9)
    return plain_figure(edges + nodes, layout)


def _thumbnail_images(names, kept, thumbnails: dict[str, list[str]]) -> list[dict]:
    """A square image centred on each node of the layers in `thumbnails`, below the traces."""
    images = []
    for col, (name, units) in enumerate(zip(names, kept, strict=True)):
        uris = thumbnails.get(name)
        if not uris:
            continue
        for unit, y in zip(units, _column_y(units.size), strict=True):
            images.append(
                {
                    "source": uris[int(unit)],
                    "xref": "x",
                    "yref": "y",
                    "x": col,
                    "y": float(y),
                    "sizex": 0.34,
                    "sizey": 0.82,
                    "sizing": "contain",
                    "xanchor": "center",
                    "yanchor": "middle",
                    "layer": "below",
                    "opacity": 0.85,
                }
            )
    return images


def _grid_yz(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of n neurons on a centred square grid in the (y, z) plane."""
    side = max(1, math.ceil(math.sqrt(n)))
    k = np.arange(n)
    return k % side - (side - 1) / 2, (side - 1) / 2 - k // side


def _add_edges_3d(fig: go.Figure, kernels, kept, max_edges: int) -> int:
    """3-D edge traces, one per width bucket and sign; returns the number of edges drawn."""
    col, i, j, w = strongest_edges(kernels, kept, max_edges)
    grids = [_grid_yz(k.size) for k in kept]
    y0 = np.array([grids[c][0][r] for c, r in zip(col, i, strict=True)])
    z0 = np.array([grids[c][1][r] for c, r in zip(col, i, strict=True)])
    y1 = np.array([grids[c + 1][0][r] for c, r in zip(col, j, strict=True)])
    z1 = np.array([grids[c + 1][1][r] for c, r in zip(col, j, strict=True)])
    for b, positive, mask in edge_buckets(w):
        color = POSITIVE_COLOR if positive else NEGATIVE_COLOR
        fig.add_trace(
            go.Scatter3d(
                x=segments(col[mask], col[mask] + 1),
                y=segments(y0[mask], y1[mask]),
                z=segments(z0[mask], z1[mask]),
                mode="lines",
                hoverinfo="skip",
                showlegend=False,
                line={"color": color, "width": WIDTHS_3D[b]},
                opacity=OPACITY_3D[b],
            )
        )
    return w.size


def _add_nodes_3d(fig: go.Figure, names, kept, biases) -> None:
    """Input neurons in grey, the layers' neurons coloured by bias; a label above each plane."""
    size = 9 if max(k.size for k in kept) <= 16 else 5
    y, z = _grid_yz(kept[0].size)
    fig.add_trace(
        go.Scatter3d(
            x=np.zeros(kept[0].size),
            y=y,
            z=z,
            mode="markers",
            showlegend=False,
            marker={"size": size - 1, "color": "#8c8c8c"},
            hovertemplate="%{text}<extra></extra>",
            text=_node_text(names[0], kept[0], None, None),
        )
    )
    xs, ys, zs, colors, text = [], [], [], [], []
    for col in range(1, len(kept)):
        y, z = _grid_yz(kept[col].size)
        bias, _ = _node_values(col, kept, biases, None)
        xs.extend([col] * kept[col].size)
        ys.extend(y.tolist())
        zs.extend(z.tolist())
        colors.extend(np.round(bias, 4).tolist())
        text.extend(_node_text(names[col], kept[col], bias, None))
    fig.add_trace(
        go.Scatter3d(
            x=xs,
            y=ys,
            z=zs,
            mode="markers",
            text=text,
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
            marker={
                "size": size,
                "color": colors,
                "colorscale": DIVERGING_3D,
                "cmid": 0,
                "colorbar": {"title": {"text": "bias"}, "thickness": 12},
            },
        )
    )
    top = max(_grid_yz(k.size)[1].max() for k in kept) + 1.0
    fig.add_trace(
        go.Scatter3d(
            x=list(range(len(kept))),
            y=[0.0] * len(kept),
            z=[top] * len(kept),
            mode="text",
            text=names,
            hoverinfo="skip",
            showlegend=False,
            textfont={"size": 12},
        )
    )


def build_network_3d(
    layer_names,
    kernels,
    biases,
    *,
    input_size: int,
    max_nodes: int = 64,
    max_edges: int = 2000,
    title: str = "",
) -> go.Figure:
    """The network in 3-D: each layer a plane of neurons, edges coloured by weight sign."""
    problem = _layers_problem(layer_names, kernels, biases, input_size)
    if problem:
        return empty_figure(problem)
    kept = kept_units(kernels, input_size, max_nodes)
    names = ["input"] + list(layer_names)
    fig = go.Figure()
    n_edges = _add_edges_3d(fig, kernels, kept, max_edges)
    _add_nodes_3d(fig, names, kept, biases)
    hidden = {"visible": False, "showgrid": False, "zeroline": False, "showbackground": False}
    base_layout(fig, f"{title or 'Network'} · {n_edges} strongest edges (blue +, red −)", "", "")
    fig.update_layout(
        showlegend=False,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        scene={
            "xaxis": hidden,
            "yaxis": hidden,
            "zaxis": hidden,
            "uirevision": UIREVISION,
            "aspectmode": "manual",
            "aspectratio": {"x": min(2.6, 0.65 * len(kept)), "y": 1.0, "z": 1.0},
            "camera": CAMERA_3D,
        },
    )
    return fig


# ---- any module graph (nl.Recorder runs) ------------------------------------------------------


SKIP_COLOR = "#e07b00"
# containers that only chain their children: their input never goes around them
CHAINS = frozenset({"nnx.Sequential"})


def skip_edges(modules: list[dict], root: str | None = None) -> list[tuple[int, int]]:
    """(source, container) index pairs: a container module (one whose recorded submodules,
    named `<container>.<child>`, returned before it) receives the output of the module before
    its first child, and gives back an output of the same shape: its input can reach its
    output around its children, as a residual block adds it (x + f(x)). Inferred from module
    paths, return order and shapes, which is what a recorded architecture holds; the model
    itself (`root`), a container of nnx.Sequential's kind, and shapes that differ give none."""
    names = [str(m["name"]) for m in modules]
    found = []
    for c, m in enumerate(modules):
        if names[c] == root or m.get("type") in CHAINS or m.get("output_shape") is None:
            continue
        children = [i for i, n in enumerate(names[:c]) if n.startswith(names[c] + ".")]
        if not children or min(children) == 0:  # no child, or its input is the model's input
            continue
        source = min(children) - 1
        if modules[source].get("output_shape") == m["output_shape"]:
            found.append((source, c))
    return found


def _arc(a: float, b: float, height: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Points of a half ellipse from x=a to x=b, `height` above 0: a skip edge over the chain."""
    t = np.linspace(0.0, np.pi, n)
    return (a + b) / 2 - (b - a) / 2 * np.cos(t), height * np.sin(t)


def build_module_graph(
    modules: list[dict],
    norms: list[float | None],
    *,
    title: str = "",
    three_d: bool = False,
    root: str | None = None,
) -> go.Figure:
    """The modules of a network as nodes in the order their outputs were returned, each edge
    (from one module to the next) coloured by the L2 norm of the receiving module's own
    parameters (grey: a module without parameters of its own, e.g. a container or the model),
    and a dashed arc for each skip connection `skip_edges` finds (a residual block's input
    carried around its children).

    `modules`: dicts with "name", optionally "type", "output_shape"; `norms`: one per module;
    `root`: the name of the model's own output (never a skip target).
    """
    if not modules:
        return empty_figure("No modules recorded")
    if len(norms) != len(modules):
        raise ValueError("modules and norms must have the same length")
    names = [str(m["name"]) for m in modules]
    finite = [float(v) for v in norms if v is not None and np.isfinite(v)]
    top = max(finite, default=1.0) or 1.0
    x = np.arange(len(modules), dtype=float)
    y = np.zeros(len(modules))
    edges = []
    for i in range(1, len(modules)):
        norm = norms[i]
        if norm is None or not np.isfinite(norm):
            color, width, text = "#bbbbbb", 2.0, f"{names[i]}: no parameters of its own"
        else:
            share = float(norm) / top
            color = with_alpha(POSITIVE_COLOR, 0.25 + 0.75 * share)
            width = 2.0 + 6.0 * share
            text = f"{names[i]}: weight norm {float(norm):.4g}"
        edges.append((i - 1, i, color, width, text))
    hover = []
    for m, norm in zip(modules, norms, strict=True):
        shape = m.get("output_shape")
        parts = [str(m["name"]), str(m.get("type", ""))]
        if shape is not None:
            parts.append(f"output {tuple(shape)} per input")
        parts.append("no parameters of its own" if norm is None else f"weight norm {norm:.4g}")
        hover.append("<br>".join(p for p in parts if p))
    skips = [
        (
            a,
            b,
            f"skip: the input of {names[b]} (the output of {names[a]}) goes around its "
            f"submodules to its output, as in a residual block (inferred from the module paths "
            f"and shapes)",
        )
        for a, b in skip_edges(modules, root)
    ]
    marker_color = [float(v) if v is not None else 0.0 for v in norms]
    fig = go.Figure()
    if three_d:  # a helix along x, so that the chain has depth to turn around
        turn = np.arange(len(modules)) * 0.9
        y, z = np.cos(turn), np.sin(turn)
        for a, b, text in skips:  # an arc outside the helix
            ax, lift = _arc(x[a], x[b], 1.0)
            fig.add_trace(
                go.Scatter3d(
                    x=ax,
                    y=np.linspace(y[a], y[b], len(ax)) * (1 + lift),
                    z=np.linspace(z[a], z[b], len(ax)) * (1 + lift),
                    mode="lines",
                    line={"color": SKIP_COLOR, "width": 4, "dash": "dash"},
                    hoverinfo="text",
                    text=[text] * len(ax),
                    name="skip",
                    showlegend=False,
                )
            )
        for a, b, color, width, text in edges:
            fig.add_trace(
                go.Scatter3d(
                    x=[x[a], x[b]],
                    y=[y[a], y[b]],
                    z=[z[a], z[b]],
                    mode="lines",
                    line={"color": color, "width": width},
                    hoverinfo="text",
                    text=[text, text],
                    showlegend=False,
                )
            )
        fig.add_trace(
            go.Scatter3d(
                x=x,
                y=y,
                z=z,
                mode="markers+text",
                text=names,
                hovertext=hover,
                hoverinfo="text",
                marker={
                    "size": 9,
                    "color": [
                        c if v is not None else "#9a9a9a"
                        for c, v in zip([_blue(v, top) for v in norms], norms, strict=True)
                    ],
                },
                showlegend=False,
            )
        )
        hidden = {"visible": False, "showgrid": False, "zeroline": False}
        fig.update_layout(
            template=layout_dict("", "", "")["template"],
            title={"text": title or "Modules in call order", "x": 0.0},
            scene={
                "aspectmode": "manual",
                "aspectratio": {"x": 2.2, "y": 0.8, "z": 0.8},
                "xaxis": hidden,
                "yaxis": hidden,
                "zaxis": hidden,
                "camera": CAMERA_3D,
            },
            uirevision=UIREVISION,
            margin={"l": 0, "r": 0, "t": 40, "b": 0},
        )
        return fig
    for a, b, color, width, text in edges:
        fig.add_trace(
            go.Scatter(
                x=[x[a], x[b]],
                y=[y[a], y[b]],
                mode="lines",
                line={"color": color, "width": width},
                hoverinfo="text",
                text=[text, text],
                showlegend=False,
            )
        )
    for a, b, text in skips:
        ax, ay = _arc(x[a], x[b], 0.55)
        fig.add_trace(
            go.Scatter(
                x=ax,
                y=ay,
                mode="lines",
                line={"color": SKIP_COLOR, "width": 3, "dash": "dash"},
                hoverinfo="text",
                text=[text] * len(ax),
                name="skip",
                showlegend=False,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers+text",
            text=names,
            textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(x))],
            hovertext=hover,
            hoverinfo="text",
            marker={
                "size": 22,
                "color": marker_color,
                "colorscale": "Blues",
                "cmin": 0,
                "cmax": top,
                "line": {"color": "#333333", "width": 1},
                "colorbar": {"title": {"text": "weight norm"}, "thickness": 12},
            },
            showlegend=False,
        )
    )
    base_layout(fig, title or "Modules in call order", "", "")
    fig.update_xaxes(visible=False, range=[-0.7, len(modules) - 0.3])
    fig.update_yaxes(visible=False, range=[-1, 1])
    fig.add_annotation(
        text="modules in the order their outputs were returned; an edge's colour and width: "
        "the weight norm of the module it enters (grey: no parameters of its own)"
        + ("; dashed arc: a skip connection around a block's submodules" if skips else ""),
        x=0.0,
        y=-0.02,
        xref="paper",
        yref="paper",
        showarrow=False,
        xanchor="left",
        yanchor="top",
        font={"size": 11, "color": "#666666"},
    )
    return fig


def _blue(value: float | None, top: float) -> str:
    """A node's colour on the Blues scale by its weight norm (share of the largest)."""
    if value is None or not np.isfinite(value):
        return "#9a9a9a"
    return pc.sample_colorscale("Blues", [0.25 + 0.75 * min(1.0, float(value) / top)])[0]
