"""Small UI pieces shared by the pages."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html
from netlens.storage.runs import RunInfo

STATUS_COLORS = {"queued": "secondary", "running": "primary", "succeeded": "success",
                 "failed": "danger", "cancelled": "warning", "diverged": "danger"}


def status_badge(status: str) -> dbc.Badge:
    return dbc.Badge(status, color=STATUS_COLORS.get(status, "secondary"), className="me-1")


def graph(graph_id, height: int = 380) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config={"displaylogo": False, "responsive": True},
                     style={"height": f"{height}px"})


def metric_text(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def run_summary_line(info: RunInfo) -> str:
    acc = info.final_metrics.get("val_accuracy") or info.final_metrics.get("train_accuracy")
    return (f"{info.dataset} · {info.architecture} · {info.optimizer} · epoch "
            f"{info.last_epoch if info.last_epoch is not None else 0}/{info.epochs_total}"
            + (f" · accuracy {acc:.3f}" if acc is not None else ""))


def page_error(title: str, message: str) -> html.Div:
    """What a user sees instead of a traceback."""
    return dbc.Alert([html.H4(title, className="alert-heading"), html.P(message),
                      dcc.Link("Back to the runs", href="/runs")], color="warning",
                     className="mt-4")
