"""Compare runs: overlaid curves, the spec fields that differ, final and best metrics."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html

from storage import runs as run_store
from webapp import context
from webapp.components import graph, page_error, status_badge
from webapp.figures import curves

dash.register_page(__name__, path="/compare", title="Compare · NetLens")

MAX_RUNS = 8


def parse_ids(text: str | None) -> list[int]:
    """'3,5, 9' -> [3, 5, 9]; refuses junk and more than MAX_RUNS runs, naming the problem."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise ValueError("runs: give the runs to compare, e.g. /compare?runs=3,5")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"runs: {text!r} must be run numbers separated by commas")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if len(ids) > MAX_RUNS:
        raise ValueError(f"runs: {len(ids)} runs given; compare at most {MAX_RUNS} at once")
    return ids


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


def metrics_table(infos: list[run_store.RunInfo], all_metrics: list[dict]) -> dbc.Table:
    header = html.Thead(html.Tr([html.Th("run"), html.Th("status"), html.Th("final train loss"),
                                 html.Th("final val acc"), html.Th("best val acc (epoch)")]))
    rows = []
    for info, (epochs, metrics) in zip(infos, all_metrics, strict=True):
        val = metrics.get("val_accuracy", metrics.get("train_accuracy"))
        best = (f"{np.nanmax(val):.3f} ({int(epochs[np.nanargmax(val)])})"
                if val is not None and len(val) and not np.all(np.isnan(val)) else "–")
        loss = info.final_metrics.get("train_loss")
        acc = info.final_metrics.get("val_accuracy")
        rows.append(html.Tr([html.Td(dcc.Link(f"#{info.id} {info.name}", href=f"/runs/{info.id}")),
                             html.Td(status_badge(info.status)),
                             html.Td("–" if loss is None else f"{loss:.4g}"),
                             html.Td("–" if acc is None else f"{acc:.3f}"), html.Td(best)]))
    return dbc.Table([header, html.Tbody(rows)], bordered=False, hover=True, size="sm")


def shown(value: Any) -> str:
    """Layers as the form writes them ('100 relu, 2 relu'); other values as they are."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "units" in v
                                                 for v in value):
        return ", ".join(f"{v['units']} {v.get('activation', '')}".strip() for v in value)
    return "–" if value is None else str(value)


def diff_table(infos: list[run_store.RunInfo]) -> html.Div:
    diff = spec_diff([info.spec for info in infos])
    if not diff:
        return html.P("The specs are identical.", className="text-muted")
    header = html.Thead(html.Tr([html.Th("field")] + [html.Th(f"#{i.id}") for i in infos]))
    body = html.Tbody([html.Tr([html.Td(key)] + [html.Td(shown(v)) for v in values])
                       for key, values in diff.items()])
    return dbc.Table([header, body], bordered=False, striped=True, size="sm")


def overlaid(infos, all_metrics, names: tuple[str, ...], title: str, y_title: str):
    """One figure, a line per (run, metric), on the union of the runs' epochs."""
    epochs = np.unique(np.concatenate([e for e, _ in all_metrics]))
    series = {}
    for info, (run_epochs, metrics) in zip(infos, all_metrics, strict=True):
        for name in names:
            if name in metrics:
                values = np.full(len(epochs), np.nan)
                values[np.searchsorted(epochs, run_epochs)] = metrics[name]
                series[f"#{info.id} {name.replace('_', ' ')}"] = values
    return curves.build_metric_curves(epochs, series, title=title, y_title=y_title)


def layout(runs: str | None = None, **_kwargs):  # noqa: A002 - the query parameter's name
    web = context.current()
    try:
        ids = parse_ids(runs)
        infos = [web.data.info(i) for i in ids]
    except (ValueError, run_store.RunNotFound) as exc:
        return page_error("Cannot compare these runs", str(exc))
    all_metrics = [web.data.metrics(info) for info in infos]
    loss = overlaid(infos, all_metrics, ("train_loss", "val_loss"), "Loss", "cross-entropy")
    acc = overlaid(infos, all_metrics, ("train_accuracy", "val_accuracy"), "Accuracy", "accuracy")
    loss_graph, acc_graph = graph("compare-loss", 420), graph("compare-accuracy", 420)
    loss_graph.figure, acc_graph.figure = loss, acc
    return html.Div([
        html.H3(f"Comparing {len(infos)} runs"),
        dbc.Row([dbc.Col(loss_graph, md=6), dbc.Col(acc_graph, md=6)]),
        dbc.Row([dbc.Col([html.H5("Final and best metrics"), metrics_table(infos, all_metrics)],
                         md=6),
                 dbc.Col([html.H5("Spec fields that differ"), diff_table(infos)], md=6)]),
    ])
