"""A run's signatures: clusters, flow, projections, class signatures, separability by layer and
epoch, unseen classes, and two inputs compared, all on one epoch slider.

Every number comes from analyses a worker stored (worker/analyze.py); this page never runs
K-means, t-SNE or UMAP. An epoch without a stored analysis shows the nearest analysed one and
offers to queue its own.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from netlens.webapp import context, url_state
from netlens.webapp.authz import on_click, rule
from netlens.webapp.captions import captioned_tab
from netlens.webapp.figures.common import empty_figure
from netlens.webapp.glossary import lesson_link, term
from netlens.webapp.views import signatures as sd
from netlens.webapp.views import signatures_url
from netlens.webapp.views.common import (
    active,
    add_play_toggle,
    epoch_bar,
    friendly,
    graph,
    kept_marks,
    run_of_page,
    status_badge,
    thinned_note,
)

dash.register_page(
    __name__,
    path_template="/runs/<run_id>/signatures",
    order=0,
    title="Signatures · NetLens",
    access="member",
)


class ids:  # noqa: N801 - a namespace of component ids
    RUN_ID, REFRESH, PLAY_TICK, VERSION = (
        "sig-run-id",
        "sig-refresh",
        "sig-play-tick",
        "sig-version",
    )
    STATUS, ANALYZE, ANALYZE_FEEDBACK = "sig-status", "sig-analyze", "sig-analyze-feedback"
    PLAY, SLIDER, EPOCH_LABEL, TABS = "sig-play", "sig-epoch", "sig-epoch-label", "sig-tabs"
    URL, COPY_LINK = "sig-url", "sig-copy-link"
    LAYER, METHOD, COLOR_BY = "sig-layer", "sig-method", "sig-color-by"
    SEP_LAYERS, SEP_EPOCHS, SEP_METRIC = "fig-sep-layers", "fig-sep-epochs", "sig-sep-metric"
    SILHOUETTE, MAKEUP = "fig-silhouette", "fig-makeup"
    SANKEY, LINK_INPUTS = "fig-sankey", "sig-link-inputs"
    PROJECTION, HOVER_CARD = "fig-projection", "sig-hover-card"
    PROJECTION_NOTE = "sig-projection-note"
    CLASS_MEANS, CENTROIDS, TYPICAL = "fig-class-means", "fig-centroids", "sig-typical"
    OOD_TABLE, OOD_DISTANCES = "sig-ood-table", "fig-ood-distances"
    INPUT_A, INPUT_B, COMPARE, COMPARE_TEXT = (
        "sig-input-a",
        "sig-input-b",
        "fig-compare",
        "sig-compare-text",
    )


def layout(run_id: str | None = None, **query):
    """The page as its URL asks (webapp/views/signatures_url.py: tab, epoch, layer)."""
    info, missing = run_of_page(run_id)
    if missing is not None:
        return missing
    hidden = signatures_url.hidden_layers(info)
    epochs = context.current().data.epochs(info)  # a thinned run's: the kept ones
    n = max(0, len(epochs) - 1)
    view = signatures_url.parse(info, epochs, query)
    return html.Div(
        [
            url_state.location(ids.URL),
            dcc.Store(id=ids.RUN_ID, data=info.id),
            dcc.Store(id=ids.VERSION),
            dcc.Interval(id=ids.REFRESH, interval=2000),
            dcc.Interval(id=ids.PLAY_TICK, interval=700, disabled=True),
            html.H3(
                [
                    f"#{info.id} {info.name or 'unnamed run'} · signatures ",
                    status_badge(info.status),
                ]
            ),
            html.P(
                [
                    dcc.Link("← back to the run", href=f"/runs/{info.id}"),
                    " · A ",
                    term("signature", id="sig-intro-t0"),
                    " is what a hidden layer outputs for one ",
                    term("probe input", id="sig-intro-t1"),
                    ". The analyses below are computed by a worker and stored; pick an epoch, "
                    "then queue its analysis if it has none yet. ",
                    lesson_link("signatures"),
                ],
                className="text-muted",
            ),
            thinned_note(info, epochs),
            dbc.Row(
                [
                    dbc.Col(html.Div(id=ids.STATUS), md=9),
                    dbc.Col(
                        [
                            dbc.Button(
                                "Analyse this epoch",
                                id=ids.ANALYZE,
                                size="sm",
                                color="primary",
                                outline=True,
                            ),
                            html.Div(id=ids.ANALYZE_FEEDBACK, className="small"),
                        ],
                        md=3,
                    ),
                ],
                className="mb-2",
            ),
            epoch_bar(
                ids.PLAY,
                ids.SLIDER,
                ids.EPOCH_LABEL,
                n,
                updatemode="mouseup",
                value=min(view.index, n),
                beside=url_state.copy_link(ids.COPY_LINK),
                marks=kept_marks(info, epochs),
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("layer", className="small mb-0"),
                            dbc.Select(
                                id=ids.LAYER,
                                size="sm",
                                value=view.layer,
                                options=[{"label": h, "value": h} for h in hidden],
                            ),
                        ],
                        width="auto",
                    ),
                    dbc.Col(
                        [
                            dbc.Label("projection", className="small mb-0"),
                            dbc.RadioItems(
                                id=ids.METHOD,
                                inline=True,
                                value="pca",
                                options=[
                                    {"label": "PCA", "value": "pca"},
                                    {"label": "t-SNE", "value": "tsne"},
                                    {"label": "UMAP", "value": "umap"},
                                ],
                            ),
                            # t-SNE / UMAP are computed when first chosen for an epoch
                            html.Div(id=ids.PROJECTION_NOTE, className="small"),
                        ],
                        width="auto",
                    ),
                    dbc.Col(
                        [
                            dbc.Label("colour by", className="small mb-0"),
                            dbc.RadioItems(
                                id=ids.COLOR_BY,
                                inline=True,
                                value="class",
                                options=[
                                    {"label": "class", "value": "class"},
                                    {"label": "cluster", "value": "cluster"},
                                    {"label": "correct / wrong", "value": "correct"},
                                    {"label": "trained / unseen", "value": "ood"},
                                ],
                            ),
                        ],
                        width="auto",
                    ),
                ],
                className="my-2 g-4",
            ),
            _tabs(view.tab),
        ]
    )


def _tabs(active_tab: str = "separability") -> dbc.Tabs:
    return dbc.Tabs(
        [
            captioned_tab(
                "signatures",
                "separability",
                "Separability",
                [
                    dbc.Row(
                        [
                            dbc.Col(graph(ids.SEP_LAYERS, 400), md=5),
                            dbc.Col(
                                [
                                    dbc.RadioItems(
                                        id=ids.SEP_METRIC,
                                        inline=True,
                                        value="linear-probe accuracy",
                                        options=[
                                            "linear-probe accuracy",
                                            "silhouette of true classes",
                                        ],
                                    ),
                                    graph(ids.SEP_EPOCHS, 370),
                                ],
                                md=7,
                            ),
                        ]
                    )
                ],
            ),
            captioned_tab(
                "signatures",
                "clusters",
                "Clusters",
                dbc.Row(
                    [
                        dbc.Col(graph(ids.SILHOUETTE, 400), md=5),
                        dbc.Col(graph(ids.MAKEUP, 400), md=7),
                    ]
                ),
            ),
            captioned_tab(
                "signatures",
                "flow",
                "Flow",
                [graph(ids.SANKEY, 520), html.Div(id=ids.LINK_INPUTS, className="mt-2")],
            ),
            captioned_tab(
                "signatures",
                "projections",
                "Projections",
                dbc.Row(
                    [
                        dbc.Col(graph(ids.PROJECTION, 560), md=9),
                        dbc.Col(html.Div(id=ids.HOVER_CARD, className="hover-card"), md=3),
                    ]
                ),
            ),
            captioned_tab(
                "signatures",
                "classes",
                "Class signatures",
                [
                    dbc.Row(
                        [
                            dbc.Col(graph(ids.CLASS_MEANS, 380), md=7),
                            dbc.Col(graph(ids.CENTROIDS, 380), md=5),
                        ]
                    ),
                    html.Div(id=ids.TYPICAL, className="mt-2"),
                ],
            ),
            captioned_tab(
                "signatures",
                "ood",
                "Unseen classes",
                dbc.Row(
                    [
                        dbc.Col(html.Div(id=ids.OOD_TABLE), md=7),
                        dbc.Col(graph(ids.OOD_DISTANCES, 380), md=5),
                    ]
                ),
            ),
            captioned_tab(
                "signatures",
                "compare",
                "Compare two inputs",
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("input A (probe #)", className="small mb-0"),
                                    dbc.Input(
                                        id=ids.INPUT_A,
                                        type="number",
                                        min=0,
                                        value=0,
                                        size="sm",
                                        style={"width": "110px"},
                                    ),
                                ],
                                width="auto",
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("input B (probe #)", className="small mb-0"),
                                    dbc.Input(
                                        id=ids.INPUT_B,
                                        type="number",
                                        min=0,
                                        value=1,
                                        size="sm",
                                        style={"width": "110px"},
                                    ),
                                ],
                                width="auto",
                            ),
                            dbc.Col(html.Div(id=ids.COMPARE_TEXT, className="small pt-3")),
                        ],
                        className="mb-2",
                    ),
                    html.P(
                        "Tip: click a point in Projections to make it input A (the former A becomes B).",
                        className="small text-muted",
                    ),
                    graph(ids.COMPARE, 520),
                ],
            ),
        ],
        id=ids.TABS,
        active_tab=active_tab,
        className="mt-2",
    )


def _point_index(event: dict | None) -> int:
    """The probe index (customdata) of a clicked or hovered point or Sankey link."""
    points = (event or {}).get("points") or []
    if not points or "customdata" not in points[0]:
        raise PreventUpdate
    return int(points[0]["customdata"])


@callback(
    Output(ids.STATUS, "children"),
    Output(ids.EPOCH_LABEL, "children"),
    Output(ids.REFRESH, "disabled"),
    Output(ids.SLIDER, "max"),
    Output(ids.VERSION, "data"),
    Input(ids.SLIDER, "value"),
    Input(ids.REFRESH, "n_intervals"),
    State(ids.RUN_ID, "data"),
    State(ids.VERSION, "data"),
)
@rule("member")
def status(index, _n, run_id, old_version):
    """Which epochs are analysed, and what the slider's epoch will show. The views redraw
    when the version changes (an analysis queued, done or failed), not on every poll."""
    view = sd.load(context.current(), run_id, index)
    version = sd.version(view)
    pending = [a for a in view.analyses if a.state in ("queued", "running")]
    label = f"epoch {view.epoch}"
    if view.shown is not None and view.shown.epoch != view.epoch:
        label += f" · showing the analysis of epoch {view.shown.epoch}"
    return (
        sd.status_line(view),
        label,
        not pending and view.info.is_finished,
        max(0, len(view.epochs) - 1),
        no_update if version == old_version else version,
    )


@callback(
    Output(ids.ANALYZE_FEEDBACK, "children"),
    Output(ids.REFRESH, "disabled", allow_duplicate=True),
    Input(ids.ANALYZE, "n_clicks"),
    State(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@on_click
@rule("member")
def analyze(_n, index, run_id):
    """Queue the slider epoch's analysis; polling resumes until a worker has stored it."""
    from netlens.dispatch.analysis_requests import AnalysisError
    from netlens.dispatch.submission import submit_analyses

    web = context.current()
    view = sd.load(web, run_id, index)
    try:
        queued = submit_analyses(web.db, web.settings, run_id, view.epoch)
    except AnalysisError as exc:
        return html.Span(str(exc), className="text-danger"), no_update
    if not queued:
        return html.Span(
            f"epoch {view.epoch} is analysed or already queued", className="text-muted"
        ), False
    return html.Span(
        f"queued: {', '.join(f'{k} at epoch {e}' for k, e in queued)}", className="text-success"
    ), False


@callback(
    Output(ids.PROJECTION_NOTE, "children"),
    Output(ids.REFRESH, "disabled", allow_duplicate=True),
    Input(ids.METHOD, "value"),
    Input(ids.TABS, "active_tab"),
    Input(ids.VERSION, "data"),
    Input(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def request_projection(method, tab, _version, index, run_id):
    """Choosing t-SNE or UMAP on the Projections tab queues that projection of the shown
    epoch when it is not stored yet (the epoch analysis computes PCA only: these take
    seconds per layer); polling then shows its progress until a worker has stored it."""
    from netlens.dispatch.analysis_requests import PROJECTION_KINDS, AnalysisError
    from netlens.dispatch.submission import submit_projection

    if tab != "projections" or method == "pca":
        raise PreventUpdate
    if method not in PROJECTION_KINDS:
        return html.Span(
            f"projection: {str(method)[:40]!r} is not one of pca, tsne, umap",
            className="text-danger",
        ), no_update
    web = context.current()
    view = sd.load(web, run_id, index)
    if view.shown is None:
        raise PreventUpdate  # the figure says to analyse an epoch first
    stored = next(
        (a for a in view.analyses if a.kind == method and a.epoch == view.shown.epoch), None
    )
    if stored is not None and stored.state in ("done", "failed"):
        return "", no_update  # drawn, or its failure shown in the status line
    try:
        queued = submit_projection(web.db, web.settings, run_id, method, view.shown.epoch)
    except AnalysisError as exc:
        return html.Span(str(exc), className="text-danger"), no_update
    name = sd.METHOD_NAMES[method]
    if queued:
        return html.Span(
            f"queued: {name} of epoch {view.shown.epoch}", className="text-success"
        ), False
    return html.Span(
        f"{name} of epoch {view.shown.epoch}: on its way", className="text-muted"
    ), False


toggle_play = add_play_toggle(ids.PLAY, ids.PLAY_TICK)
write_url, restore_url = signatures_url.register(ids)
copy_url = url_state.add_copy_link(ids.COPY_LINK, ids.URL)


@callback(
    Output(ids.SLIDER, "value"),
    Input(ids.PLAY_TICK, "n_intervals"),
    State(ids.SLIDER, "value"),
    State(ids.SLIDER, "max"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def advance(_n, value, maximum, run_id):
    """Play steps through the analysed frames (timeline epochs), not every recorded epoch."""
    view = sd.load(context.current(), run_id, value)
    return sd.next_frame_index(view, value, maximum)


@callback(
    Output(ids.SEP_LAYERS, "figure"),
    Output(ids.SEP_EPOCHS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.SEP_METRIC, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(2)
@rule("member")
def separability(tab, index, metric, _n, run_id):
    active(tab, "separability")
    view = sd.load(context.current(), run_id, index)
    return sd.separability_figures(view, metric)


@callback(
    Output(ids.SILHOUETTE, "figure"),
    Output(ids.MAKEUP, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.LAYER, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(2)
@rule("member")
def clusters(tab, index, layer, _n, run_id):
    active(tab, "clusters")
    view = sd.load(context.current(), run_id, index)
    if view.shown is None:
        return (sd.no_analysis_figure(view),) * 2
    return sd.cluster_figures(view, layer)


@callback(
    Output(ids.SANKEY, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def flow(tab, index, _n, run_id):
    active(tab, "flow")
    view = sd.load(context.current(), run_id, index)
    return sd.no_analysis_figure(view) if view.shown is None else sd.flow_figure(view)


@callback(
    Output(ids.LINK_INPUTS, "children"),
    Input(ids.SANKEY, "clickData"),
    State(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def link_inputs(click, index, run_id):
    """The probe inputs on a clicked Sankey link (images for image datasets)."""
    view = sd.load(context.current(), run_id, index)
    return sd.link_inputs_panel(view, _point_index(click))


@callback(
    Output(ids.PROJECTION, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.LAYER, "value"),
    Input(ids.METHOD, "value"),
    Input(ids.COLOR_BY, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def projection(tab, index, layer, method, color_by, _n, run_id):
    active(tab, "projections")
    view = sd.load(context.current(), run_id, index)
    return sd.projection_figure(view, layer, method, color_by)


@callback(
    Output(ids.HOVER_CARD, "children"),
    Input(ids.PROJECTION, "hoverData"),
    State(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def hover_card(hover, index, run_id):
    """The hovered probe input itself: its image, label and prediction."""
    view = sd.load(context.current(), run_id, index)
    return sd.input_card(view, _point_index(hover))


@callback(
    Output(ids.INPUT_A, "value"),
    Output(ids.INPUT_B, "value"),
    Input(ids.PROJECTION, "clickData"),
    State(ids.INPUT_A, "value"),
    prevent_initial_call=True,
)
@rule("member")
def pick_inputs(click, current_a):
    """A click on a projection point makes it input A; the former A becomes B."""
    return _point_index(click), current_a if current_a is not None else no_update


@callback(
    Output(ids.CLASS_MEANS, "figure"),
    Output(ids.CENTROIDS, "figure"),
    Output(ids.TYPICAL, "children"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.LAYER, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(3, children_at=(2,))
@rule("member")
def class_signatures(tab, index, layer, _n, run_id):
    active(tab, "classes")
    view = sd.load(context.current(), run_id, index)
    if view.shown is None:
        return sd.no_analysis_figure(view), sd.no_analysis_figure(view), None
    return sd.class_figures(view, layer)


@callback(
    Output(ids.OOD_TABLE, "children"),
    Output(ids.OOD_DISTANCES, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.LAYER, "value"),
    Input(ids.VERSION, "data"),
    State(ids.RUN_ID, "data"),
)
@friendly(2, children_at=(0,))
@rule("member")
def unseen(tab, index, layer, _n, run_id):
    active(tab, "ood")
    view = sd.load(context.current(), run_id, index)
    if view.shown is None:
        return None, sd.no_analysis_figure(view)
    return sd.ood_panel(view, layer)


@callback(
    Output(ids.COMPARE, "figure"),
    Output(ids.COMPARE_TEXT, "children"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.INPUT_A, "value"),
    Input(ids.INPUT_B, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(2, children_at=(1,))
@rule("member")
def compare(tab, index, a, b, run_id):
    active(tab, "compare")
    view = sd.load(context.current(), run_id, index)
    try:
        return sd.compare_figure(view, a, b)
    except sd.InputError as exc:
        return empty_figure(str(exc)), html.Span(str(exc), className="text-danger")
