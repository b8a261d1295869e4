"""The signatures page's data: which stored analysis the slider's epoch shows, and the stored
summaries and arrays turned into the plain inputs of `webapp.figures.signatures`.

Reads only (cached: a finished analysis never changes); never computes an analysis.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import html

from netlens.storage import analyses
from netlens.storage.analyses import AnalysisInfo
from netlens.storage.runs import RunInfo
from netlens.webapp.context import WebContext
from netlens.webapp.figures import signatures as figs
from netlens.webapp.figures.common import OOD_COLOR, blend_with_white, empty_figure, with_alpha
from netlens.webapp.figures.images import png_data_uri

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
MAX_LISTED = 60  # inputs listed for a clicked Sankey link


class InputError(ValueError):
    """A probe index typed by the user that does not exist."""


@dataclass
class View:
    """What the page shows for one slider position."""

    web: WebContext
    info: RunInfo
    epochs: np.ndarray  # recorded epochs
    epoch: int  # the slider's epoch
    analyses: list[AnalysisInfo]  # states only (no summaries)
    shown: AnalysisInfo | None  # the done epoch analysis nearest to `epoch`, with its summary
    timeline: AnalysisInfo | None  # the done timeline, with its summary

    def arrays(self, prefix: str = "", kind: str = "epoch", epoch: int | None = None):
        at = self.shown.epoch if epoch is None else epoch
        key = ("analysis-arrays", self.info.id, kind, at, prefix, self._version(kind, at))
        return self.web.data.cached(
            key, lambda: analyses.read_arrays(self.web.db, self.info.id, kind, at, prefix)
        )

    def _version(self, kind: str, epoch: int):
        return next(
            (a.finished_at for a in self.analyses if a.kind == kind and a.epoch == epoch), None
        )

    @property
    def probe(self) -> dict[str, np.ndarray]:
        return self.web.data.arrays(self.info.id)

    @property
    def summary(self) -> dict:
        return self.shown.summary


def _summary(web: WebContext, found: AnalysisInfo) -> AnalysisInfo:
    key = ("analysis", found.run_id, found.kind, found.epoch, found.finished_at)
    return web.data.cached(key, lambda: analyses.get(web.db, found.run_id, found.kind, found.epoch))


def load(web: WebContext, run_id: int, index: int | None) -> View:
    info = web.data.info(run_id)
    epochs = web.data.epochs(info)
    if len(epochs):
        index = len(epochs) - 1 if index is None else int(np.clip(index, 0, len(epochs) - 1))
        epoch = int(epochs[index])
    else:
        epoch = 0
    states = analyses.list_analyses(web.db, run_id, with_summary=False)
    done = [a for a in states if a.kind == "epoch" and a.state == "done"]
    shown = min(done, key=lambda a: (abs(a.epoch - epoch), -a.epoch)) if done else None
    timelines = [a for a in states if a.kind == "timeline" and a.state == "done"]
    return View(
        web,
        info,
        epochs,
        epoch,
        states,
        _summary(web, shown) if shown else None,
        _summary(web, timelines[-1]) if timelines else None,
    )


# -- status ----------------------------------------------------------------------------------
KIND_NAMES = {"epoch": "analysis", "timeline": "timeline", **METHOD_NAMES}


def version(view: View) -> str:
    """Changes whenever an analysis is queued, starts, moves on (its progress), ends or fails:
    the views redraw then."""
    return ";".join(
        f"{a.kind}{a.epoch}{a.state}{a.finished_at}{a.progress or ''}" for a in view.analyses
    )


def pending_text(a: AnalysisInfo) -> str:
    """'UMAP of epoch 20: computing UMAP for layer 2 of 3…' (or queued / running)."""
    doing = a.progress if a.state == "running" and a.progress else a.state
    return f"{KIND_NAMES.get(a.kind, a.kind)} of epoch {a.epoch}: {doing}"


def status_line(view: View) -> html.Div:
    done = sorted(a.epoch for a in view.analyses if a.kind == "epoch" and a.state == "done")
    pending = [a for a in view.analyses if a.state in ("queued", "running")]
    failed = [a for a in view.analyses if a.state == "failed"]
    parts = [html.Span("Analysed epochs: " + (", ".join(map(str, done)) if done else "none yet"))]
    if view.timeline:
        parts.append(html.Span(f" · timeline of {len(view.timeline.summary['epochs'])} epochs"))
    if pending:
        parts.append(
            html.Div(
                [
                    dbc.Spinner(size="sm", color="info", spinner_class_name="me-1"),
                    "; ".join(pending_text(a) for a in pending),
                ],
                id="sig-progress",
                className="text-info mt-1",
            )
        )
    for a in failed:
        parts.append(
            dbc.Alert(
                f"The {a.kind} analysis of epoch {a.epoch} failed: {a.error}",
                color="danger",
                className="mt-2 mb-0 py-1",
            )
        )
    return html.Div(parts, className="small")


def no_analysis_figure(view: View):
    if not len(view.epochs):
        return empty_figure("No epochs recorded yet")
    if any(a.state in ("queued", "running") for a in view.analyses):
        return empty_figure("A worker is analysing this run's signatures…")
    return empty_figure("No stored analysis yet: press “Analyse this epoch”")


def next_frame_index(view: View, value: int | None, maximum: int) -> int:
    """The slider index of the next analysed frame (timeline epochs and analysed epochs)."""
    frames = sorted(
        {
            *(view.timeline.summary["epochs"] if view.timeline else []),
            *(a.epoch for a in view.analyses if a.kind == "epoch" and a.state == "done"),
        }
    )
    positions = np.searchsorted(view.epochs, frames)
    later = [int(p) for p in positions if p > (value or 0)]
    return later[0] if later else int(positions[0]) if len(positions) else maximum


# -- names and colours ------------------------------------------------------------------------
def group_names(view: View, summary: dict) -> list[str]:
    """Display names of the summary's groups: trained classes by name, unseen ones marked."""
    names = view.info.data_info.get("class_names") or []
    classes = summary["classes"]
    out = []
    for g in summary["groups"]:
        if g["ood"]:
            out.append(f"{g['label']} (unseen)")
        else:
            i = classes.index(g["label"])
            name = names[i] if i < len(names) else str(g["label"])
            out.append(name if name == str(g["label"]) else f"{name} ({g['label']})")
    return out


def group_colors(summary: dict) -> list[str]:
    trained = [g for g in summary["groups"] if not g["ood"]]
    return [
        figs.group_color(i - len(trained) if g["ood"] else i, g["ood"])
        for i, g in enumerate(summary["groups"])
    ]


def input_groups(view: View, summary: dict) -> np.ndarray:
    """The group (row of summary["groups"]) of every probe input."""
    probe = view.probe
    index = {(g["label"], g["ood"]): i for i, g in enumerate(summary["groups"])}
    return np.array(
        [
            index[(int(y), bool(o))]
            for y, o in zip(probe["probe/y"], probe["probe/is_ood"], strict=True)
        ]
    )


def _label_of(view: View, label: int) -> str:
    names = view.info.data_info.get("class_names") or []
    classes = [int(c) for c in view.probe["classes"]]
    if label in classes and classes.index(label) < len(names):
        name = names[classes.index(label)]
        return name if name == str(label) else f"{name} ({label})"
    return str(label)


def hover_texts(view: View, predicted: np.ndarray, confidence: np.ndarray) -> list[str]:
    probe = view.probe
    return [
        f"#{i} · {'unseen ' if ood else ''}{_label_of(view, int(y))} → predicted "
        f"{_label_of(view, int(p))} ({c:.2f})"
        for i, (y, ood, p, c) in enumerate(
            zip(probe["probe/y"], probe["probe/is_ood"], predicted, confidence, strict=True)
        )
    ]


# -- separability -----------------------------------------------------------------------------
def separability_figures(view: View, metric: str):
    rows, at = None, None
    if view.shown is not None:
        rows, at = view.summary["separability"], view.shown.epoch
    elif view.timeline is not None:
        t = view.timeline.summary
        i = int(np.argmin(np.abs(np.asarray(t["epochs"]) - view.epoch)))
        rows, at = t["separability"][i], t["epochs"][i]
    by_layer = (
        no_analysis_figure(view)
        if rows is None
        else figs.separability_by_layer(
            [r["layer"] for r in rows],
            [r["silhouette"] for r in rows],
            [r["probe_accuracy"] for r in rows],
            rows[0]["chance"] or 0.5,
            at,
        )
    )
    if view.timeline is None:
        return by_layer, no_analysis_figure(view)
    t = view.timeline.summary
    key = "probe_accuracy" if metric.startswith("linear") else "silhouette"
    layers = [r["layer"] for r in t["separability"][0]]
    values = np.array(
        [[np.nan if r[key] is None else r[key] for r in frame] for frame in t["separability"]],
        float,
    ).T
    epochs = t["epochs"]
    current = epochs[int(np.argmin(np.abs(np.asarray(epochs) - view.epoch)))]
    return by_layer, figs.separability_over_epochs(epochs, layers, values, metric, current)


# -- clusters and flow ------------------------------------------------------------------------
def _layer(view: View, layer: str | None) -> str:
    layers = view.summary["layers"]
    return layer if layer in layers else layers[-1]


def cluster_figures(view: View, layer: str | None):
    layer = _layer(view, layer)
    found = view.summary["clusters"][layer]
    title = f"{layer} at epoch {view.shown.epoch}"
    curve = figs.silhouette_curve(found["k_tried"], found["silhouette_by_k"], found["k"], title)
    groups = view.summary["groups"]
    counts = np.array(
        [
            [c["ood" if g["ood"] else "trained"].get(str(g["label"]), 0) for g in groups]
            for c in found["clusters"]
        ]
    )
    makeup = figs.cluster_makeup(
        counts,
        [f"c{c['cluster']}" for c in found["clusters"]],
        group_names(view, view.summary),
        [g["ood"] for g in groups],
        title,
    )
    if found["reason"]:
        makeup.add_annotation(
            text=found["reason"],
            x=0.5,
            y=1.08,
            xref="paper",
            yref="paper",
            showarrow=False,
            font={"color": "#a94442"},
        )
    return curve, makeup


def flow_figure(view: View):
    summary, flow = view.summary, view.summary["flow"]
    groups = input_groups(view, summary)
    colors = group_colors(summary)
    position = {c: i for i, c in enumerate(summary["classes"])}
    node_colors = []
    for node in flow["nodes"]:
        if node["kind"] == "true_ood":
            node_colors.append(OOD_COLOR)
        elif node["kind"] in ("true_class", "predicted"):
            node_colors.append(colors[position[node["class"]]])
        else:
            dominant = summary["clusters"][node["layer"]]["clusters"][node["cluster"]][
                "dominant_class"
            ]
            node_colors.append(
                OOD_COLOR if dominant is None else blend_with_white(colors[position[dominant]], 0.3)
            )
    link_colors = []
    for link in flow["links"]:
        majority = Counter(groups[link["indices"]].tolist()).most_common(1)[0][0]
        link_colors.append(with_alpha(colors[majority], 0.4))
    labels = []
    for node in flow["nodes"]:
        label = node["label"]
        if node["kind"] in ("true_class", "predicted"):
            label = label.replace(str(node["class"]), _label_of(view, node["class"]), 1)
        labels.append(f"{label} ({node['count']})")
    return figs.sankey(
        labels,
        node_colors,
        [x["source"] for x in flow["links"]],
        [x["target"] for x in flow["links"]],
        [x["value"] for x in flow["links"]],
        link_colors,
        f"How the probe inputs flow through the clusters at epoch "
        f"{view.shown.epoch} (links coloured by their inputs' "
        f"main true class; unseen classes grey)",
        [n["stage"] for n in flow["nodes"]],
        [n["count"] for n in flow["nodes"]],
    )


def link_inputs_panel(view: View, link_index: int):
    if view.shown is None:
        return None
    flow = view.summary["flow"]
    if not 0 <= link_index < len(flow["links"]):
        return None
    link = flow["links"][link_index]
    nodes = flow["nodes"]
    title = (
        f"{nodes[link['source']]['label']} → {nodes[link['target']]['label']}: "
        f"{link['value']} inputs ({link['n_ood']} of unseen classes)"
    )
    return html.Div(
        [
            html.H6(title),
            input_gallery(view, link["indices"][:MAX_LISTED]),
            html.P(f"… and {link['value'] - MAX_LISTED} more", className="small")
            if link["value"] > MAX_LISTED
            else None,
        ]
    )


# -- inputs ----------------------------------------------------------------------------------
def _image_shape(view: View):
    return view.info.data_info.get("image_shape")


def input_gallery(view: View, indices: list[int], notes: dict[int, str] | None = None):
    """Probe inputs as small images (image datasets) or as a table of their features."""
    probe, notes = view.probe, notes or {}
    shape = _image_shape(view)
    if shape:
        cards = [
            html.Figure(
                [
                    html.Img(src=png_data_uri(probe["probe/x"][i], shape, 3), title=f"probe #{i}"),
                    html.Figcaption(
                        f"#{i} · {_label_of(view, int(probe['probe/y'][i]))}"
                        + (f" · {notes[i]}" if i in notes else "")
                    ),
                ],
                className="probe-card",
            )
            for i in indices
        ]
        return html.Div(cards, className="probe-gallery")
    rows = [
        html.Tr(
            [
                html.Td(f"#{i}"),
                html.Td(_label_of(view, int(probe["probe/y"][i]))),
                html.Td(", ".join(f"{v:.2f}" for v in probe["probe/x"][i][:6])),
                html.Td(notes.get(i, "")),
            ]
        )
        for i in indices
    ]
    return dbc.Table(
        [
            html.Thead(
                html.Tr([html.Th("input"), html.Th("class"), html.Th("features"), html.Th("")])
            ),
            html.Tbody(rows),
        ],
        size="sm",
        striped=True,
        className="small",
    )


def input_card(view: View, index: int):
    probe = view.probe
    if not 0 <= index < len(probe["probe/y"]):
        return None
    label = _label_of(view, int(probe["probe/y"][index]))
    parts = [
        html.H6(f"probe input #{index}"),
        html.P(("unseen class " if probe["probe/is_ood"][index] else "class ") + label),
    ]
    shape = _image_shape(view)
    if shape:
        parts.insert(1, html.Img(src=png_data_uri(probe["probe/x"][index], shape, 12)))
    else:
        parts.append(html.P("features: " + ", ".join(f"{v:.3f}" for v in probe["probe/x"][index])))
    if view.shown is not None:
        arrays = view.arrays("")
        parts.append(
            html.P(
                f"predicted {_label_of(view, int(arrays['predicted'][index]))} with "
                f"probability {float(arrays['confidence'][index]):.2f} "
                f"(epoch {view.shown.epoch})"
            )
        )
    return dbc.Card(dbc.CardBody(parts), className="mt-4")


# -- projections -----------------------------------------------------------------------------
def projection_figure(view: View, layer: str | None, method: str, color_by: str):
    frames, frame_epochs, points, at = None, None, None, None
    if method == "pca" and view.timeline is not None:
        t = view.timeline.summary
        layer = layer if layer in t["layers"] else t["layers"][-1]
        frames = view.arrays(f"pca/{layer}", "timeline", view.timeline.epoch)[f"pca/{layer}"]
        frame_epochs = np.asarray(t["epochs"])
        i = int(np.argmin(np.abs(frame_epochs - view.epoch)))
        points, at = frames[i], int(frame_epochs[i])
    elif view.shown is not None:
        layer = _layer(view, layer)
        key = f"projection/{method}/{layer}"
        # PCA is in every epoch analysis; t-SNE and UMAP are analyses of their own (on demand)
        kind = "epoch" if method == "pca" else method
        done = [a.epoch for a in view.analyses if a.kind == kind and a.state == "done"]
        if view.shown.epoch not in done and key in view.arrays(key):
            kind, done = "epoch", [view.shown.epoch]  # stored before t-SNE / UMAP were apart
        if view.shown.epoch not in done:
            return projection_pending(view, method)
        frames = np.stack([view.arrays(key, kind, e)[key] for e in done])
        points, at = view.arrays(key, kind)[key], view.shown.epoch
    if points is None:
        return no_analysis_figure(view)
    summary = view.summary if view.shown is not None else view.timeline.summary
    predicted, confidence = _predictions_at(view, at)
    probe = view.probe
    groups, names, colors, symbols = figs.color_groups(
        color_by,
        class_index=input_groups(view, summary),
        is_ood=probe["probe/is_ood"],
        clusters=view.arrays("clusters/")[f"clusters/{layer}"] if view.shown else None,
        correct=predicted == probe["probe/y"],
        class_names=[],
        ood_names=[],
        ood_index=np.zeros(len(predicted), int),
    )
    if color_by == "class" or (color_by == "cluster" and view.shown is None):
        groups, names, colors = (
            input_groups(view, summary),
            group_names(view, summary),
            group_colors(summary),
        )
        symbols = ["diamond" if g["ood"] else "circle" for g in summary["groups"]]
    mode = (
        "fixed PCA basis (last epoch's)"
        if method == "pca" and view.timeline is not None
        else f"{METHOD_NAMES[method]}, aligned to the last analysed epoch"
    )
    title = f"{layer} · {METHOD_NAMES[method]} at epoch {at} ({mode})"
    if color_by == "cluster" and view.shown is not None and view.shown.epoch != at:
        title += f" · clusters of epoch {view.shown.epoch}"
    units = summary.get("units", {}).get(layer)
    axes = (
        ("unit 1", "unit 2")
        if units is not None and units <= 2
        else (f"{METHOD_NAMES[method]} 1", f"{METHOD_NAMES[method]} 2")
    )
    return figs.projection_scatter(
        points,
        groups,
        names,
        colors,
        symbols,
        hover_texts(view, predicted, confidence),
        title,
        axes,
        figs.stable_ranges(frames),
    )


def projection_pending(view: View, method: str):
    """The figure while the shown epoch's t-SNE or UMAP is being computed (or why not)."""
    name, at = METHOD_NAMES[method], view.shown.epoch
    found = next((a for a in view.analyses if a.kind == method and a.epoch == at), None)
    if found is None:
        return empty_figure(f"{name} of epoch {at}: asking a worker to compute it…")
    if found.state == "failed":
        return empty_figure(f"{name} of epoch {at} failed: {found.error}")
    return empty_figure(pending_text(found))


def _predictions_at(view: View, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and their probabilities at `epoch`, from the recorded output."""
    name = f"signatures/{view.info.layers[-1]['name']}"
    _, output = view.web.data.at_epoch(view.info, name, epoch)
    classes = view.probe["classes"]
    out = np.asarray(output, float).reshape(len(output), -1)
    if out.shape[1] == 1:
        second = out[:, 0] > 0.5
        return classes[second.astype(int)], np.where(second, out[:, 0], 1 - out[:, 0])
    best = out.argmax(axis=1)
    return classes[best], out[np.arange(len(out)), best]


# -- class signatures ------------------------------------------------------------------------
def class_figures(view: View, layer: str | None):
    layer = _layer(view, layer)
    found = view.summary["class_signatures"][layer]
    title = f"{layer} at epoch {view.shown.epoch}"
    means = view.arrays(f"class_means/{layer}")[f"class_means/{layer}"]
    names = group_names(view, view.summary)
    heat = figs.class_heatmap(means, names, title)
    trained = [n for n, g in zip(names, view.summary["groups"], strict=True) if not g["ood"]]
    distances = np.array(
        [[np.nan if v is None else v for v in row] for row in found["centroid_distances"]], float
    )
    centroids = figs.distance_heatmap(distances, trained, title)
    sections = []
    for label, entry in found["classes"].items():
        name = _label_of(view, int(label))
        typical = [e["index"] for e in entry["typical"]]
        atypical = [e["index"] for e in entry["atypical"]]
        notes = {
            e["index"]: f"nearest {_label_of(view, e['nearest_class'])}"
            for e in entry["atypical"]
            if e.get("nearest_class") is not None
        }
        units = (
            ", ".join(
                f"n{u['unit']}"
                for u in entry["selective_units"]
                if (u["mean"] or 0) > (u["others_mean"] or 0)
            )
            or "none"
        )
        sections.append(
            dbc.Col(
                [
                    html.H6(f"Class {name}"),
                    html.P(
                        f"units firing most for it (vs the other classes): {units}",
                        className="small text-muted",
                    ),
                    html.Div("most typical", className="small fw-bold"),
                    input_gallery(view, typical),
                    html.Div("most atypical (closest to another class)", className="small fw-bold"),
                    input_gallery(view, atypical, notes),
                ],
                md=6,
            )
        )
    return heat, centroids, dbc.Row(sections)


# -- unseen classes ---------------------------------------------------------------------------
def ood_panel(view: View, layer: str | None):
    layer = _layer(view, layer)
    report = view.summary["ood"]
    if not report:
        return (
            html.P("This run's probe set has no unseen classes (dataset.ood_classes)."),
            empty_figure("no unseen classes in this run's probe set"),
        )
    rows = []
    for entry in report:
        predicted = ", ".join(
            f"{_label_of(view, int(k))} ×{n}" for k, n in entry["predicted"].items() if n
        )
        for name in view.summary["layers"]:
            at = entry["layers"][name]
            where = ", ".join(
                f"c{c['cluster']} ×{c['count']} ("
                + (
                    "unseen only"
                    if c["dominant_class"] is None
                    else f"mostly {_label_of(view, c['dominant_class'])}"
                )
                + ")"
                for c in at["clusters"][:3]
            )
            ratio = at["distance_ratio"]
            rows.append(
                html.Tr(
                    [
                        html.Td(f"{entry['label']} ({entry['count']})"),
                        html.Td(name),
                        html.Td(where),
                        html.Td("–" if ratio is None else f"{ratio:.2f}"),
                        html.Td(predicted),
                        html.Td(
                            f"{entry['confidence']:.2f}" if entry["confidence"] is not None else "–"
                        ),
                    ]
                )
            )
    table = dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(h)
                        for h in (
                            "unseen class",
                            "layer",
                            "lands in clusters",
                            "distance ratio",
                            "predicted as",
                            "confidence",
                        )
                    ]
                )
            ),
            html.Tbody(rows),
        ],
        size="sm",
        striped=True,
        className="small",
    )
    note = html.P(
        "Distance ratio: the unseen inputs' mean distance to the nearest trained-class "
        "centroid over the trained inputs' mean distance to their own centroid "
        "(above 1: they land away from every trained class).",
        className="small text-muted",
    )
    bars = figs.ood_distances(
        [f"{e['label']} (unseen)" for e in report],
        [e["layers"][layer]["distance_to_nearest"] for e in report],
        report[0]["layers"][layer]["in_dist_distance"],
        f"{layer} at epoch {view.shown.epoch}",
    )
    return html.Div([table, note]), bars


# -- two inputs ------------------------------------------------------------------------------
def compare_figure(view: View, a, b):
    n = len(view.probe["probe/y"])
    for field, value in (("input A", a), ("input B", b)):
        if value is None or not 0 <= int(value) < n:
            raise InputError(f"{field}: {value} is out of range: must be between 0 and {n - 1}")
    a, b = int(a), int(b)
    hidden = [layer["name"] for layer in view.info.layers[:-1]]
    first, second, notes = [], [], []
    for name in hidden:
        _, values = view.web.data.at_epoch(view.info, f"signatures/{name}", view.epoch)
        values = np.asarray(values, float).reshape(n, -1)
        va, vb = values[a], values[b]
        first.append(va)
        second.append(vb)
        norms = float(np.linalg.norm(va) * np.linalg.norm(vb))
        cosine = f"{va @ vb / norms:.2f}" if norms > 0 else "–"
        notes.append(f"{name}: distance {np.linalg.norm(va - vb):.2f}, cosine {cosine}")
    probe = view.probe
    names = (
        f"#{a} ({_label_of(view, int(probe['probe/y'][a]))})",
        f"#{b} ({_label_of(view, int(probe['probe/y'][b]))})",
    )
    fig = figs.compare_inputs(hidden, first, second, names)
    fig.update_layout(
        title={
            "text": f"Inputs {names[0]} and {names[1]} at epoch {view.epoch}",
            "x": 0,
            "y": 0.99,
            "yanchor": "top",
            "font": {"size": 14},
        }
    )
    return fig, html.Span(" · ".join(notes))


# -- the page's figures by name, out of the page (`netlens figure RUN VIEW`) -----------------
# Each entry: what it shows, and the options it takes (the page's controls: layer select,
# projection method, colour-by, separability metric, inputs A and B).
FIGURE_VIEWS = {
    "separability": ("each layer's class separability at the epoch (Separability tab)", set()),
    "separability-epochs": (
        "separability by layer and epoch, the timeline's frames (Separability tab; metric=)",
        {"metric"},
    ),
    "silhouette": ("K-means silhouette by K of a layer (Clusters tab; layer=)", {"layer"}),
    "clusters": (
        "class make-up of each K-means cluster of a layer (Clusters tab; layer=)",
        {"layer"},
    ),
    "flow": ("how the probe inputs flow through the clusters, layer by layer (Flow tab)", set()),
    "projection": (
        "a layer's probe signatures in 2-D (Projections tab; layer=, method=, color_by=)",
        {"layer", "method", "color_by"},
    ),
    "class-means": (
        "each class's mean activation per neuron (Class signatures tab; layer=)",
        {"layer"},
    ),
    "centroids": (
        "distances between the class centroids (Class signatures tab; layer=)",
        {"layer"},
    ),
    "unseen": ("how far the unseen classes land (Unseen classes tab; layer=)", {"layer"}),
    "compare-inputs": (
        "two probe inputs' signatures side by side (input_a=, input_b=)",
        {"input_a", "input_b"},
    ),
}
METRICS = ("linear-probe accuracy", "silhouette of true classes")
COLOR_BY = ("class", "cluster", "correct", "ood")


class NotAnalysed(ValueError):
    """The view needs a stored analysis that the epoch does not have."""


def load_at(web: WebContext, run_id: int, epoch: int | None) -> View:
    """The page's View with its slider at `epoch` (default: the last recorded)."""
    info = web.data.info(run_id)
    epochs = web.data.epochs(info)
    if not len(epochs):
        raise ValueError(f"epoch: run {run_id} has no epoch recorded yet")
    if epoch is None:
        epoch = int(epochs[-1])
    elif epoch not in set(epochs.tolist()):
        raise ValueError(
            f"epoch: {epoch} is not recorded in run {run_id} (epochs {int(epochs[0])} to "
            f"{int(epochs[-1])}, {len(epochs)} recorded)"
        )
    return load(web, run_id, int(np.searchsorted(epochs, epoch)))


def analysed_epochs(view: View) -> list[int]:
    return sorted(a.epoch for a in view.analyses if a.kind == "epoch" and a.state == "done")


def drawable_epochs(view: View, name: str, method: str = "pca") -> list[int]:
    """The epochs at which view `name` draws that epoch itself (the page shows the nearest
    analysed one): the epoch's stored analysis, or the timeline's frames (separability, PCA
    projections once a timeline is stored), or for two inputs compared every recorded one."""
    timeline = list(view.timeline.summary["epochs"]) if view.timeline is not None else []
    analysed = analysed_epochs(view)
    if name == "compare-inputs":
        return [int(e) for e in view.epochs]
    if name == "separability-epochs":
        return timeline
    if name == "separability":
        return sorted({*analysed, *timeline})
    if name == "projection" and method == "pca" and view.timeline is not None and analysed:
        return timeline  # the class names and colours come from an epoch's summary
    if name == "projection" and method != "pca":  # t-SNE / UMAP: computed only when asked
        projected = {a.epoch for a in view.analyses if a.kind == method and a.state == "done"}
        return [e for e in analysed if e in projected]
    return analysed


def why_not_drawable(view: View, name: str, method: str = "pca") -> str | None:
    """None when view `name` can be drawn at view.epoch; else what is missing and the command
    that stores it."""
    if view.epoch in drawable_epochs(view, name, method):
        return None
    run = view.info.id
    if name == "separability-epochs" or (
        name == "projection" and method == "pca" and view.timeline is not None
    ):
        if view.timeline is None:
            return (
                f"{name}: run {run} has no stored timeline analysis; run `netlens analyze "
                f"{run}` (analysing the last epoch also stores the timeline)"
            )
        return (
            f"epoch: {view.epoch} is not a frame of run {run}'s stored timeline (frames: "
            f"{', '.join(map(str, view.timeline.summary['epochs']))})"
        )
    done = analysed_epochs(view)
    if name == "projection" and method != "pca" and view.epoch in done:
        return (
            f"epoch: run {run} has no stored {METHOD_NAMES[method]} projection at epoch "
            f"{view.epoch} (t-SNE and UMAP are computed only when asked for); run `netlens "
            f"analyze {run} --epoch {view.epoch} --methods {method}` first"
        )
    return (
        f"epoch: run {run} has no stored signature analysis at epoch {view.epoch} "
        f"(analysed epochs: {', '.join(map(str, done)) if done else 'none'}); run "
        f"`netlens analyze {run} --epoch {view.epoch}` first"
    )


def figure_of(view: View, name: str, **options) -> go.Figure:
    """View `name` at view.epoch, drawn by the page's own code (NotAnalysed when the epoch
    lacks the stored analysis it needs; ValueError naming the option otherwise)."""
    if name not in FIGURE_VIEWS:
        raise ValueError(
            f"view: {name!r} is not a view of the signatures page; choose from "
            f"{', '.join(FIGURE_VIEWS)}"
        )
    unknown = set(options) - FIGURE_VIEWS[name][1]
    if unknown:
        raise TypeError(
            f"{', '.join(sorted(unknown))}: not an option of view {name!r} (its options: "
            f"{', '.join(sorted(FIGURE_VIEWS[name][1])) or 'none'})"
        )
    method = options.get("method", "pca")
    if method not in METHOD_NAMES:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHOD_NAMES)}")
    color_by = options.get("color_by", "class")
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by: {color_by!r} is not one of {', '.join(COLOR_BY)}")
    metric = options.get("metric", METRICS[0])
    metric = {"probe": METRICS[0], "silhouette": METRICS[1]}.get(metric, metric)
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not one of probe, silhouette")
    layer = options.get("layer")
    if layer is not None:
        hidden = [x["name"] for x in view.info.layers[:-1]]  # the page's layer select
        if layer not in hidden:
            raise ValueError(
                f"layer: {layer!r} is not a hidden layer of this run ({', '.join(hidden)})"
            )
    problem = why_not_drawable(view, name, method)
    if problem is not None:
        raise NotAnalysed(problem)
    if name in ("separability", "separability-epochs"):
        if view.epoch not in analysed_epochs(view):  # a timeline frame: its own rows
            view = replace(view, shown=None)
        return separability_figures(view, metric)[name == "separability-epochs"]
    if name in ("silhouette", "clusters"):
        return cluster_figures(view, layer)[name == "clusters"]
    if name == "flow":
        return flow_figure(view)
    if name == "projection":
        return projection_figure(view, layer, method, color_by)
    if name in ("class-means", "centroids"):
        return class_figures(view, layer)[name == "centroids"]
    if name == "unseen":
        return ood_panel(view, layer)[1]
    try:
        return compare_figure(view, options.get("input_a", 0), options.get("input_b", 1))[0]
    except InputError as exc:
        raise ValueError(str(exc)) from None
