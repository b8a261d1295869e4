"""Compare 2-8 runs: overlaid curves, the spec fields that differ, final and best metrics, and
one epoch slider driving views of what happens inside (webapp/views/compare.py)."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html

from netlens.storage import runs as run_store
from netlens.webapp import context, url_state
from netlens.webapp.captions import caption

# MAX_RUNS and parse_ids (the API's too) are read here by views/overview.py and the group page
from netlens.webapp.comparison import MAX_RUNS, parse_ids, union_epochs  # noqa: F401
from netlens.webapp.figures import compare as figs
from netlens.webapp.figures import curves
from netlens.webapp.views import compare as views
from netlens.webapp.views import compare_url
from netlens.webapp.views.common import epoch_bar, graph, metric_text, page_error, status_badge
from netlens.webapp.views.run import is_spec_run

dash.register_page(__name__, path="/compare", title="Compare · NetLens", access="member")
copy_url = url_state.add_copy_link(views.ids.COPY_LINK, views.ids.URL)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix: data}


def spec_diff(specs: list[dict]) -> dict[str, list[Any]]:
    """Only the fields whose values differ between the runs, in spec order."""
    flat = [flatten(s) for s in specs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


def _best(epochs: np.ndarray, metrics: dict, name: str, pick) -> str:
    """The best value of val_<name> (train_<name> when the run has no validation split)."""
    split = "val" if f"val_{name}" in metrics else "train"
    values = metrics.get(f"{split}_{name}")
    if values is None or not len(values) or not np.isfinite(values).any():
        return "–"
    i = int(pick(np.where(np.isfinite(values), values, np.nan)))
    return f"{values[i]:.4g} at epoch {int(epochs[i])}" + (" (train)" if split == "train" else "")


def _last_values(metrics: dict) -> dict[str, float]:
    """Each metric's value at the last recorded epoch, where it is finite: the final values
    of a run whose summary lacks NetLens' own names (an nl.Recorder run logs its own)."""
    out = {}
    for name, values in metrics.items():
        if len(values) and np.isfinite(values[-1]):
            out[name] = float(values[-1])
    return out


def metrics_table(infos: list[run_store.RunInfo], all_metrics: list[dict]) -> dbc.Table:
    """Final metrics (the last recorded epoch) and the best epoch of each validation metric
    (train when the run has no validation split)."""
    columns = [
        "run",
        "status",
        "epochs",
        "final train loss",
        "final val loss",
        "final train acc",
        "final val acc",
        "best val loss",
        "best val acc",
    ]
    rows = []
    for position, (info, (epochs, recorded)) in enumerate(zip(infos, all_metrics, strict=True)):
        metrics = curves.with_page_names(recorded)  # a Recorder run's "loss", "val_acc", ...
        final = {
            **_last_values(metrics),
            **{k: v for k, v in info.final_metrics.items() if v is not None},
        }
        rows.append(
            html.Tr(
                [
                    html.Td([run_key(info, position)]),
                    html.Td(status_badge(info.status)),
                    html.Td(
                        f"{info.last_epoch if info.last_epoch is not None else 0}/{info.epochs_total}"
                    ),
                    *[
                        html.Td(metric_text(final.get(k)))
                        for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
                    ],
                    html.Td(_best(epochs, metrics, "loss", np.nanargmin)),
                    html.Td(_best(epochs, metrics, "accuracy", np.nanargmax)),
                ]
            )
        )
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(c) for c in columns])), html.Tbody(rows)],
        bordered=False,
        hover=True,
        size="sm",
        className="compare-table",
    )


def run_key(info: run_store.RunInfo, position: int) -> dcc.Link:
    """The run's colour swatch and name, linking to its page: the legend of every figure."""
    return dcc.Link(
        [
            html.Span("■ ", style={"color": figs.run_color(position)}),
            f"#{info.id} {info.name}".strip(),
        ],
        href=f"/runs/{info.id}",
        className="me-3 text-nowrap d-inline-block",
    )


def shown(value: Any) -> str:
    """Layers as the form writes them ('100 relu, 2 relu'); other values as they are."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "units" in v for v in value)
    ):
        return ", ".join(f"{v['units']} {v.get('activation', '')}".strip() for v in value)
    return "–" if value is None else str(value)


def diff_table(infos: list[run_store.RunInfo]) -> html.Div:
    diff = spec_diff([info.spec for info in infos])
    if not diff:
        return html.P("The specs are identical.", className="text-muted")
    header = html.Thead(html.Tr([html.Th("field")] + [html.Th(f"#{i.id}") for i in infos]))
    body = html.Tbody(
        [
            html.Tr([html.Td(key)] + [html.Td(shown(v)) for v in values])
            for key, values in diff.items()
        ]
    )
    return dbc.Table([header, body], bordered=False, striped=True, size="sm")


def layout(runs: str | None = None, **query):  # noqa: A002 - the query parameter's name
    """The runs the URL names, on its tab and epoch (webapp/views/compare_url.py)."""
    web = context.current()
    try:
        ids = parse_ids(runs)
        if len(ids) < 2:
            raise ValueError("runs: give at least 2 runs to compare, e.g. /compare?runs=3,5")
        infos = [web.data.info(i) for i in ids]
    except (ValueError, run_store.RunNotFound) as exc:
        return page_error("Cannot compare these runs", str(exc))
    return comparison(infos, query=query)


def comparison(
    infos: list[run_store.RunInfo], title: str | None = None, query: dict | None = None
) -> html.Div:
    """The whole comparison of 2-8 runs (also the body of a sweep group's page), on the tab
    and epoch `query` asks for."""
    web = context.current()
    all_metrics = [web.data.metrics(info) for info in infos]
    curves_in = [  # a Recorder run's own "loss"/"accuracy" names are drawn as its train curves
        (f"#{i.id}", e, curves.with_page_names(m))
        for i, (e, m) in zip(infos, all_metrics, strict=True)
    ]
    loss_graph, acc_graph = graph("compare-loss", 400), graph("compare-accuracy", 400)
    # NetLens trains with cross-entropy; an nl.Recorder run's loss is whatever its loop computed
    loss_name = "cross-entropy" if all(is_spec_run(i) for i in infos) else "loss"
    loss_graph.figure = figs.overlaid_curves(
        curves_in, ("train_loss", "val_loss"), title="Loss", y_title=loss_name
    )
    acc_graph.figure = figs.overlaid_curves(
        curves_in, ("train_accuracy", "val_accuracy"), title="Accuracy", y_title="accuracy"
    )
    for figure in (loss_graph.figure, acc_graph.figure):
        figure["layout"]["showlegend"] = False  # the run key above is the legend
        # ... which a downloaded file lacks: it draws plotly's (netlens-save.js reads meta.export)
        figure["layout"]["meta"] = {"export": {"showlegend": True}}
    epochs = union_epochs([web.data.epochs(i) for i in infos])
    view = compare_url.parse(epochs, query or {})
    return html.Div(
        [
            url_state.location(views.ids.URL),
            dcc.Store(id=views.ids.RUNS, data=[i.id for i in infos]),
            dcc.Store(id=views.ids.EPOCHS, data=epochs.tolist()),
            dcc.Interval(id=views.ids.PLAY_TICK, interval=500, disabled=True),
            html.H3(title or f"Comparing {len(infos)} runs"),
            html.Div(
                [run_key(info, k) for k, info in enumerate(infos)]
                + [
                    html.Span(
                        "solid: train · dashed: validation",
                        className="text-muted small d-inline-block",
                    )
                ],
                className="mb-2",
            ),
            caption("compare", "curves"),
            dbc.Row([dbc.Col(loss_graph, lg=6), dbc.Col(acc_graph, lg=6)]),
            html.H5("Final and best metrics"),
            metrics_table(infos, all_metrics),
            html.H5("Spec fields that differ"),
            diff_table(infos),
            html.H5("One epoch, every run", className="mt-2"),
            epoch_bar(
                views.ids.PLAY,
                views.ids.SLIDER,
                views.ids.EPOCH_LABEL,
                max(0, len(epochs) - 1),
                value=view.index,
                beside=url_state.copy_link(views.ids.COPY_LINK),
            ),
            views.tabs(infos, int(epochs[view.index]) if len(epochs) else None, view.tab),
        ]
    )
