"""The compare page's views: the curves (smoothing, log y, x by epoch or wall time, grouped
by a spec field with mean ± std bands), and below them views all driven by one shared epoch
slider.

The slider runs over the union of the runs' recorded epochs; each run shows its latest
recorded epoch at or before the selected one (a run that stopped earlier stays on its last).
Only the active tab computes. Every read goes through RunData (cached, bounded).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from netlens.storage.runs import RunInfo
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.captions import caption, captioned_tab
from netlens.webapp.comparison import (
    MAX_RUNS,
    NotComparable,
    group_fields,
    group_runs,
    layer_names,
    match_layers,
    unit_counts_at,
)
from netlens.webapp.comparison import cka as compute_cka
from netlens.webapp.comparison import distance as run_distance
from netlens.webapp.figures import boundary, curves, network, representation
from netlens.webapp.figures import compare as figs
from netlens.webapp.figures.common import deep_update, empty_figure
from netlens.webapp.views import run
from netlens.webapp.views.common import (
    active,
    add_player,
    curve_controls,
    friendly,
    graph,
    labelled_select,
)

MAX_SIDE_BY_SIDE = 4
NARROWEST = "(narrowest hidden layer)"


class ids:  # noqa: N801 - a namespace of component ids
    RUNS, EPOCHS = "cmp-runs", "cmp-epochs"
    PLAY, PLAY_TICK, SLIDER, EPOCH_LABEL, TABS = (
        "cmp-play",
        "cmp-play-tick",
        "cmp-epoch",
        "cmp-epoch-label",
        "cmp-tabs",
    )
    URL, COPY_LINK = "cmp-url", "cmp-copy-link"
    LOSS, ACCURACY = "compare-loss", "compare-accuracy"
    SMOOTH, LOGY, X_AXIS, GROUP = "cmp-smooth", "cmp-logy", "cmp-x", "cmp-group"
    SIDE_RUNS, SIDE_VIEW, SIDE_LAYER, SIDE_NOTE = (
        "cmp-side-runs",
        "cmp-side-view",
        "cmp-side-layer",
        "cmp-side-note",
    )
    CKA_A, CKA_B, CKA = "cmp-cka-a", "cmp-cka-b", "cmp-fig-cka"
    DIST_RELATIVE, DIST = "cmp-dist-relative", "cmp-fig-dist"
    WEIGHT_LAYER, WEIGHTS = "cmp-weight-layer", "cmp-fig-weights"
    WEIGHT_WHAT, LAYER_NOTE = "cmp-weight-what", "cmp-layer-note"
    UNITS, UNITS_BOX = "cmp-fig-units", "cmp-units-box"

    @staticmethod
    def side(i: int) -> str:
        return f"cmp-fig-side-{i}"

    @staticmethod
    def side_col(i: int) -> str:
        return f"cmp-side-col-{i}"


def run_label(info: RunInfo) -> str:
    return f"#{info.id}"


# ---- the curves ---------------------------------------------------------------------------

NO_GROUP = "none"  # the group-by select's "each run on its own"


def wall_time_note(infos: list[RunInfo]) -> str | None:
    """Why the runs cannot be drawn by wall time (some recorded no times), or None."""
    untimed = [f"#{i.id}" for i in infos if run.wall_time_note(i) is not None]
    if not untimed:
        return None
    return (
        f"wall time: not recorded for {', '.join(untimed)} (recorded before NetLens kept "
        "per-epoch times, or streamed by a client that sends none)"
    )


def page_infos(run_ids: object) -> list[RunInfo]:
    """The page's runs (its store; the guard checked them as integers)."""
    if not isinstance(run_ids, list):
        raise PreventUpdate
    data = context.current().data
    return [data.info(i) for i in run_ids]


def group_choice(value: object, infos: list[RunInfo]) -> str | None:
    """The group-by field asked for when it is one the runs differ in (or NO_GROUP); None
    for anything else."""
    allowed = [NO_GROUP, *group_fields([i.spec for i in infos])]
    return value if isinstance(value, str) and value in allowed else None


def curves_controls(
    infos: list[RunInfo], options: curves.CurveOptions, group: str, time_note: str | None
) -> dbc.Row:
    """The curves' controls (the run page's), with a group-by select of the spec fields that
    differ."""
    fields = group_fields([i.spec for i in infos])
    choices = [(NO_GROUP, "none: each run")] + [(f, f) for f in fields]
    by = labelled_select(ids.GROUP, choices, group, "group by (mean ± std of the rest)")
    return curve_controls((ids.SMOOTH, ids.LOGY, ids.X_AXIS), options, time_note, by)


def curve_figures(infos: list[RunInfo], options: curves.CurveOptions, group: str) -> tuple:
    """The loss and accuracy figures: every run overlaid, or grouped by `group` (a spec
    field), each group's mean in its ±1 std band."""
    data = context.current().data
    per_run = [data.metrics(info) for info in infos]
    # a Recorder run's own "loss"/"accuracy" names are drawn as its train curves
    metrics = [curves.with_page_names(m) for _, m in per_run]
    seconds = [
        run.run_seconds(info, epochs) if options.x == "time" else None
        for info, (epochs, _) in zip(infos, per_run, strict=True)
    ]
    # NetLens trains with cross-entropy; an nl.Recorder run's loss is whatever its loop computed
    loss_name = "cross-entropy" if all(run.is_spec_run(i) for i in infos) else "loss"
    pairs = (
        (("train_loss", "val_loss"), "Loss", loss_name),
        (("train_accuracy", "val_accuracy"), "Accuracy", "accuracy"),
    )
    found = group_runs([i.spec for i in infos], group) if group != NO_GROUP else []
    groups = [
        (g.label, [(per_run[k][0], metrics[k], seconds[k]) for k in g.members]) for g in found
    ]
    colors = [figs.run_color(g.members[0]) for g in found]  # its first run's, in the run key
    out = []
    for names, title, y_title in pairs:
        if found:
            fig = figs.grouped_curves(
                groups, names, title=title, y_title=y_title, options=options, colors=colors
            )
        else:
            labelled = [
                (run_label(i), e, m) for i, (e, _), m in zip(infos, per_run, metrics, strict=True)
            ]
            fig = figs.overlaid_curves(
                labelled, names, title=title, y_title=y_title, options=options, seconds=seconds
            )
            fig["layout"]["showlegend"] = False  # the run key above is the legend
            # ... which a downloaded file lacks: it draws plotly's (netlens-save.js reads it)
            fig["layout"]["meta"] = {"export": {"showlegend": True}}
        out.append(fig)
    return tuple(out)


@callback(
    Output(ids.LOSS, "figure"),
    Output(ids.ACCURACY, "figure"),
    Input(ids.SMOOTH, "value"),
    Input(ids.LOGY, "value"),
    Input(ids.X_AXIS, "value"),
    Input(ids.GROUP, "value"),
    State(ids.RUNS, "data"),
    prevent_initial_call=True,  # the layout draws them as its URL asks
)
@friendly(2)
@rule("member")
def curves_view(smoothing, log_y, x_axis, group, run_ids):
    """The curves redrawn as the controls say; a value no control sends changes nothing."""
    options = curves.checked_options(smoothing, log_y, x_axis)
    infos = page_infos(run_ids)
    group = group_choice(group, infos)
    if options is None or group is None:
        raise PreventUpdate
    return curve_figures(infos, options, group)


# ---- the views below the curves --------------------------------------------------------------


def _union(lists: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(name for names in lists for name in names))


def _side_columns(infos: list[RunInfo], epoch: int | None) -> list[dbc.Col]:
    """The side-by-side graphs, already drawn at `epoch` (no round trip on first load)."""
    drawn = (
        side_outputs([i.id for i in infos[:MAX_SIDE_BY_SIDE]], "network", NARROWEST, epoch)
        if epoch is not None
        else None
    )
    columns = []
    for i in range(MAX_SIDE_BY_SIDE):
        figure = graph(ids.side(i), 460)
        style, width = {}, 12 // MAX_SIDE_BY_SIDE
        if drawn is not None:
            figure.figure, style = drawn[i], drawn[MAX_SIDE_BY_SIDE + i]
            width = drawn[2 * MAX_SIDE_BY_SIDE + i]
        columns.append(dbc.Col(figure, id=ids.side_col(i), md=width, style=style))
    return columns


TAB_IDS = ("side", "cka", "distance", "weights")
DISTRIBUTIONS = (("weights", "weights"), ("activations", "activations on the probe inputs"))
MAX_LAYER_TEXT = 200  # a layer name longer than this is no layer of ours


def _layer_note(infos: list[RunInfo]) -> str:
    """Which layers do not match across the runs (none: nothing to say)."""
    notes = match_layers(infos).notes
    return "Layers matched by name; " + "; ".join(notes) + "." if notes else ""


def tabs(infos: list[RunInfo], last_epoch: int | None = None, active_tab: str = "side") -> dbc.Tabs:
    """Inside in step (2-4 runs), CKA, distance from initial weights, weight and activation
    distributions with dead/saturated units; the first tab drawn at `last_epoch` (the
    slider's epoch)."""
    run_options = [(str(i.id), f"#{i.id} {i.name}".strip()) for i in infos]
    hidden = _union([layer_names(i)[:-1] for i in infos])
    layers = _union([layer_names(i) for i in infos])
    side_views = [("network", "network graph"), ("representation", "hidden representation")]
    if any(run.is_2d(i) for i in infos):
        side_views.insert(1, ("boundary", "decision boundary"))
    side = [
        dbc.Row(
            [
                dbc.Col(
                    [
                        dbc.Label("runs side by side (2 to 4)", className="small mb-0"),
                        dcc.Dropdown(
                            id=ids.SIDE_RUNS,
                            multi=True,
                            clearable=False,
                            options=[{"label": t, "value": int(v)} for v, t in run_options],
                            value=[i.id for i in infos[:MAX_SIDE_BY_SIDE]],
                        ),
                    ],
                    md=5,
                ),
                labelled_select(ids.SIDE_VIEW, side_views, side_views[0][0], "view"),
                labelled_select(
                    ids.SIDE_LAYER,
                    [(NARROWEST, NARROWEST)] + [(n, n) for n in hidden],
                    NARROWEST,
                    "layer (hidden representation)",
                ),
            ],
            className="mb-1 g-3 align-items-end",
        ),
        html.Div(id=ids.SIDE_NOTE, className="small text-muted mb-1"),
        dbc.Row(_side_columns(infos, last_epoch), className="g-1"),
    ]
    cka = [
        dbc.Row(
            [
                labelled_select(ids.CKA_A, run_options, run_options[0][0], "rows: run"),
                labelled_select(
                    ids.CKA_B, run_options, run_options[min(1, len(infos) - 1)][0], "columns: run"
                ),
            ],
            className="mb-1 g-3",
        ),
        graph(ids.CKA, 520),
    ]
    distance = [
        dbc.RadioItems(
            id=ids.DIST_RELATIVE,
            inline=True,
            value="absolute",
            className="mb-1",
            options=[
                {"label": "‖θ − θ₀‖", "value": "absolute"},
                {"label": "relative to ‖θ₀‖", "value": "relative"},
            ],
        ),
        graph(ids.DIST, 440),
    ]
    weights = [
        dbc.Row(
            [
                dbc.Col(
                    [
                        dbc.Label("distribution of", className="small mb-0 d-block"),
                        dbc.RadioItems(
                            id=ids.WEIGHT_WHAT,
                            inline=True,
                            value="weights",
                            options=[{"label": text, "value": v} for v, text in DISTRIBUTIONS],
                        ),
                    ],
                    width="auto",
                ),
                labelled_select(
                    ids.WEIGHT_LAYER,
                    [(n, n) for n in layers],
                    layers[0] if layers else None,
                    "layer",
                ),
            ],
            className="mb-1 g-3 align-items-end",
        ),
        html.Div(_layer_note(infos), id=ids.LAYER_NOTE, className="small text-muted mb-1"),
        graph(ids.WEIGHTS, 440),
        html.Div(
            [caption("compare", "units"), graph(ids.UNITS, 360)],
            id=ids.UNITS_BOX,
            style={"display": "none"},
        ),
    ]
    return dbc.Tabs(
        [
            captioned_tab("compare", "side", "Inside, in step", side),
            captioned_tab("compare", "cka", "Similarity of layers (CKA)", cka),
            captioned_tab("compare", "distance", "Distance from initial weights", distance),
            captioned_tab("compare", "weights", "Distributions", weights),
        ],
        id=ids.TABS,
        active_tab=active_tab,
        className="mb-2",
    )


def _epoch(epochs: list[int], index: int | None) -> int:
    if not epochs:
        raise PreventUpdate
    index = len(epochs) - 1 if index is None else int(np.clip(index, 0, len(epochs) - 1))
    return int(epochs[index])


@callback(
    Output(ids.EPOCH_LABEL, "children"), Input(ids.SLIDER, "value"), State(ids.EPOCHS, "data")
)
@rule("member")
def epoch_label(index, epochs):
    return f"epoch {_epoch(epochs, index)}" if epochs else "no epoch recorded yet"


# Play: about 50 frames (each draws up to 4 runs).
toggle_play, advance = add_player(ids.PLAY, ids.PLAY_TICK, ids.SLIDER, frames=50)


def _side_figure(info: RunInfo, view: str, layer: str, epoch: int):
    data = context.current().data
    epochs = data.epochs(info)
    shown = epochs[epochs <= epoch]
    if not len(shown):
        return empty_figure(f"{run_label(info)}: nothing recorded by epoch {epoch}")
    at = int(shown[-1])
    title = f"{run_label(info)} {info.name}"[:40] + f" · epoch {at}"
    if (
        view == "network"
        and not run.is_spec_run(info)
        and (module_fig := run.module_view(info, epochs, at))
    ):
        fig = module_fig
    elif view == "network":
        names, kernels, biases = run.weights_at(info, at)
        if (problem := run.why_no_graph(epochs, kernels)) is not None:
            return empty_figure(problem)
        fig = network.network_graph(
            names,
            kernels,
            biases,
            input_size=kernels[0].shape[0],
            max_nodes=16,
            max_edges=600,
            compact=True,
        )
    elif view == "boundary":
        if not run.is_2d(info):
            return empty_figure(f"{run_label(info)}: its inputs are not points of a plane")
        arrays = data.arrays(info.id)
        _, grid_out = data.at_epoch(info, "grid/output", at)
        if grid_out is None or "grid/x" not in arrays:
            return empty_figure(f"{run_label(info)}: no decision-boundary grid recorded")
        fig = boundary.build_decision_boundary(
            arrays["grid/x"],
            grid_out,
            arrays["probe/x"],
            arrays["probe/y"],
            class_names=info.data_info.get("class_names"),
        )
    else:
        hidden = layer_names(info)[:-1]
        chosen = layer if layer in hidden else run.bottleneck(info)
        if chosen is None:
            return empty_figure(f"{run_label(info)} has no hidden layer")
        rep = run.representation_points(info, epochs, chosen, at)
        if rep is None:
            return empty_figure(f"{run_label(info)}: no probe signatures recorded")
        points, axes, axis_range, labels, correct, is_ood = rep
        names = dict(
            zip(
                info.data_info.get("classes", []),
                info.data_info.get("class_names", []),
                strict=False,
            )
        )
        fig = representation.build_hidden_representation(
            points,
            labels,
            correct=correct,
            class_names=names,
            is_ood=is_ood,
            axis_range=axis_range,
            axis_titles=axes,
        )
        title += f" · {chosen}"
    return _narrow(
        fig if isinstance(fig, dict) else fig.to_dict(), title, legend=view == "representation"
    )


def _narrow(fig: dict, title: str, legend: bool) -> dict:
    """A figure made to fit a quarter of the page: short title, legend below, thin colour bars,
    no heatmap scale (a plain figure, as update_layout would change it)."""
    layout = deep_update(
        fig["layout"],
        {
            "title": {"text": title, "font": {"size": 13}},
            "showlegend": legend,
            "legend": {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"},
            "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
        },
    )
    for trace in fig["data"]:
        if trace.get("type") == "heatmap":
            trace["showscale"] = False
    for key in [k for k in layout if k.startswith("coloraxis")]:
        deep_update(layout[key], {"colorbar": {"thickness": 8, "title": {"side": "right"}}})
    return fig


def side_outputs(chosen: list[int], view: str, layer: str, epoch: int) -> tuple:
    """Figures, column styles, column widths and a note for the side-by-side row."""
    chosen = list(dict.fromkeys(chosen or []))
    note = ""
    if len(chosen) > MAX_SIDE_BY_SIDE:
        note = (
            f"runs side by side: {len(chosen)} chosen; at most {MAX_SIDE_BY_SIDE} fit, "
            f"showing the first {MAX_SIDE_BY_SIDE}"
        )
        chosen = chosen[:MAX_SIDE_BY_SIDE]
    data = context.current().data
    figures = [
        _side_figure(data.info(run_id), view or "network", layer, epoch) for run_id in chosen
    ]
    n = max(1, len(figures))
    figures += [empty_figure("")] * (MAX_SIDE_BY_SIDE - len(figures))
    styles = [{} if i < len(chosen) else {"display": "none"} for i in range(MAX_SIDE_BY_SIDE)]
    widths = [12 // n] * MAX_SIDE_BY_SIDE
    if not chosen:
        note = "runs side by side: choose 2 to 4 runs"
    return (*figures, *styles, *widths, note)


@callback(
    [Output(ids.side(i), "figure") for i in range(MAX_SIDE_BY_SIDE)]
    + [Output(ids.side_col(i), "style") for i in range(MAX_SIDE_BY_SIDE)]
    + [Output(ids.side_col(i), "md") for i in range(MAX_SIDE_BY_SIDE)]
    + [Output(ids.SIDE_NOTE, "children")],
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.SIDE_RUNS, "value"),
    Input(ids.SIDE_VIEW, "value"),
    Input(ids.SIDE_LAYER, "value"),
    State(ids.EPOCHS, "data"),
    prevent_initial_call=True,
)
@friendly(MAX_SIDE_BY_SIDE * 3 + 1, children_at=(MAX_SIDE_BY_SIDE * 3,))
@rule("member")
def side_by_side(tab, index, chosen, view, layer, epochs):
    """The same internal view of 2-4 runs at one epoch (drawn in the layout on first load)."""
    active(tab, "side")
    return side_outputs(chosen, view, layer, _epoch(epochs, index))


def _at_or_before(info: RunInfo, epoch: int) -> int:
    """The run's latest recorded epoch at or before `epoch` (`epoch` itself when none is)."""
    epochs = context.current().data.epochs(info)
    shown = epochs[epochs <= epoch]
    return int(shown[-1]) if len(shown) else epoch


@callback(
    Output(ids.CKA, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.CKA_A, "value"),
    Input(ids.CKA_B, "value"),
    State(ids.EPOCHS, "data"),
    # no prevent_initial_call: a link may open the page on this tab (views/compare_url.py)
)
@friendly(1)
@rule("member")
def cka_view(tab, index, run_a, run_b, epochs):
    active(tab, "cka")
    epoch = _epoch(epochs, index)
    data = context.current().data
    a, b = data.info(int(run_a)), data.info(int(run_b))
    try:
        found = compute_cka(data, a, b, _at_or_before(a, epoch), _at_or_before(b, epoch))
    except NotComparable as exc:
        return empty_figure(str(exc))
    return figs.build_cka_heatmap(
        found.matrix,
        found.rows,
        found.columns,
        row_run=f"#{a.id}",
        column_run=f"#{b.id}",
        n_inputs=found.n_inputs,
        epoch=epoch if found.epoch_a == found.epoch_b else f"{found.epoch_a} / {found.epoch_b}",
    )


@callback(
    Output(ids.DIST, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.DIST_RELATIVE, "value"),
    State(ids.RUNS, "data"),
    State(ids.EPOCHS, "data"),
    # no prevent_initial_call: a link may open the page on this tab (views/compare_url.py)
)
@friendly(1)
@rule("member")
def distance_view(tab, index, relative, run_ids, epochs):
    active(tab, "distance")
    data = context.current().data
    infos = [data.info(i) for i in run_ids]
    series = [(f"#{info.id}", *run_distance(data, info)) for info in infos]
    return figs.build_distance_from_init(
        series, relative=relative == "relative", current_epoch=_epoch(epochs, index)
    )


def _distribution_request(what, layer, run_ids) -> tuple[str, str, list[int]]:
    """The distributions tab's inputs, checked: a body may hold anything (the guard checked
    their types; here their values), and an error names the field and what it may be."""
    if not isinstance(what, str) or what not in dict(DISTRIBUTIONS):
        raise ValueError(f"distribution of: {str(what)[:40]!r} is not one of weights, activations")
    if not isinstance(layer, str) or not 0 < len(layer) <= MAX_LAYER_TEXT:
        raise ValueError(f"layer: a layer name of 1 to {MAX_LAYER_TEXT} characters")
    if not isinstance(run_ids, list) or not 1 <= len(run_ids) <= MAX_RUNS:
        raise ValueError(f"runs: 1 to {MAX_RUNS} runs")
    return what, layer, run_ids


@callback(
    Output(ids.WEIGHTS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.WEIGHT_LAYER, "value"),
    Input(ids.WEIGHT_WHAT, "value"),
    State(ids.RUNS, "data"),
    State(ids.EPOCHS, "data"),
    # no prevent_initial_call: a link may open the page on this tab (views/compare_url.py)
)
@friendly(1)
@rule("member")
def weights_view(tab, index, layer, what, run_ids, epochs):
    """One layer's weights, or its outputs on the probe inputs, of every run that has it, at
    each run's latest recorded epoch at or before the slider's."""
    active(tab, "weights")
    epoch = _epoch(epochs, index)
    what, layer, run_ids = _distribution_request(what, layer, run_ids)
    data = context.current().data
    infos = [data.info(run_id) for run_id in run_ids]
    if all(layer not in layer_names(info) for info in infos):
        return empty_figure(f"layer: no run compared here has a layer named {layer[:40]!r}")
    name = f"params/{layer}/kernel" if what == "weights" else f"signatures/{layer}"
    runs, positions, lacking = [], [], []
    for position, info in enumerate(infos):
        at, values = (
            data.at_epoch(info, name, epoch) if layer in layer_names(info) else (epoch, None)
        )
        if values is None:
            lacking.append(f"#{info.id}")
            continue
        runs.append((f"#{info.id}" + (f" (epoch {at})" if at != epoch else ""), values))
        positions.append(position)
    kind = "weights" if what == "weights" else "activations on the probe inputs"
    fig = figs.build_weight_distributions(
        runs,
        title=f"{layer} {kind} at epoch {epoch}",
        what="weight" if what == "weights" else "activation",
        positions=positions,
    )
    if lacking and runs:
        fig.add_annotation(
            text=f"not drawn: {', '.join(lacking)} (no {layer} {what} recorded)",
            xref="paper",
            yref="paper",
            x=1,
            y=1,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font={"size": 11, "color": "#666"},
        )
    return fig


@callback(
    Output(ids.UNITS_BOX, "style"),
    Input(ids.WEIGHT_WHAT, "value"),
)
@rule("member")
def units_shown(what):
    """The dead/saturated units chart goes with the activations."""
    return {} if what == "activations" else {"display": "none"}


@callback(
    Output(ids.UNITS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.WEIGHT_WHAT, "value"),
    State(ids.RUNS, "data"),
    State(ids.EPOCHS, "data"),
)
@friendly(1)
@rule("member")
def units_view(tab, index, what, run_ids, epochs):
    """Dead and saturated units of every hidden layer of every run (storage.catalog's
    thresholds), counted from their signatures at the slider's epoch."""
    active(tab, "weights")
    if what != "activations":
        raise PreventUpdate
    epoch = _epoch(epochs, index)
    _, _, run_ids = _distribution_request(what, "-", run_ids)
    data = context.current().data
    infos = [data.info(run_id) for run_id in run_ids]
    counted = [unit_counts_at(data, info, epoch) for info in infos]
    return figs.build_unit_counts(
        [
            (f"#{c.run_id}", position, c.layers, c.dead, c.saturated, c.units)
            for position, c in enumerate(counted)
        ],
        title=f"Dead and saturated units per hidden layer at epoch {epoch}",
    )
