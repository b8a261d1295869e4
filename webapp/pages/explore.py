"""Many runs: filter runs (a sweep, a preset, a tag), see their hyperparameters against their
final metrics in parallel coordinates, brush to select runs and compare them. The filters live
in the query string (/explore?group=3, /explore?dataset=xor), so a view is a shareable link."""

from __future__ import annotations

from typing import get_args
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from netlens.storage import runs as run_store
from netlens.storage.models import RUN_STATUSES
from netlens.storage.spec import DatasetName
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.figures.parcoords import MAX_PARCOORDS_RUNS
from netlens.webapp.views.overview import overview_panel

dash.register_page(
    __name__, path="/explore", title="Many runs · NetLens", access="member", graphs=False
)

PANEL = "explore"
LOCATION = "explore-location"
NAME, DATASET, STATUS, TAG, GROUP = (
    "explore-name",
    "explore-dataset",
    "explore-status",
    "explore-tag",
    "explore-group",
)
FILTERS = ("name", "dataset", "status", "tag", "group")  # query-string keys, in this order
DATASETS = get_args(DatasetName)


def parse_filters(name=None, dataset=None, status=None, tag=None, group=None) -> dict:
    """Query-string values -> overview_rows arguments; ValueError names the bad field."""
    out: dict = {}
    if name:
        out["name_contains"] = str(name)
    if dataset:
        if dataset not in DATASETS:
            raise ValueError(f"dataset: {dataset!r} is not one of {', '.join(DATASETS)}")
        out["dataset"] = dataset
    if status:
        if status not in RUN_STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(RUN_STATUSES)}")
        out["status"] = status
    if tag:
        out["tag"] = str(tag)
    if group not in (None, ""):
        if not str(group).isdigit() or int(group) < 1:
            raise ValueError(f"group: {group!r} must be a run group number (1 or more)")
        out["group"] = int(group)
    return out


def query_string(name=None, dataset=None, status=None, tag=None, group=None) -> str:
    values = dict(zip(FILTERS, (name, dataset, status, tag, group), strict=True))
    pairs = {k: str(v).strip() for k, v in values.items() if v not in (None, "")}
    return "?" + urlencode(pairs) if pairs else ""


def _select(component_id: str, options, value, label: str) -> dbc.Select:
    # the placeholder is what a value of "" shows; the "" option lets a user go back to it
    return dbc.Select(
        id=component_id,
        value=value or "",
        size="sm",
        placeholder=label,
        options=[{"label": label, "value": ""}] + [{"label": o, "value": o} for o in options],
    )


def filter_bar(values: dict) -> dbc.Row:
    def text(component_id, key, placeholder, **kwargs):
        return dbc.Input(
            id=component_id,
            value=values.get(key) or "",
            placeholder=placeholder,
            debounce=True,
            size="sm",
            **kwargs,
        )

    return dbc.Row(
        [
            dbc.Col(text(NAME, "name", "name contains"), md=3),
            dbc.Col(_select(DATASET, DATASETS, values.get("dataset"), "any dataset"), md=2),
            dbc.Col(_select(STATUS, RUN_STATUSES, values.get("status"), "any status"), md=2),
            dbc.Col(text(TAG, "tag", "tag"), md=2),
            dbc.Col(text(GROUP, "group", "group id", type="number", min=1, step=1), md=2),
        ],
        className="g-2 mb-2",
    )


def layout(name=None, dataset=None, status=None, tag=None, group=None, **_kwargs):
    values = {"name": name, "dataset": dataset, "status": status, "tag": tag, "group": group}
    head = [
        dcc.Location(id=LOCATION, refresh="callback-nav"),
        html.H3("Many runs"),
        html.P(
            "Each line is a run: the spec fields that differ between the runs, then "
            "the final metrics. Drag along an axis to brush; brush several axes to "
            "narrow down.",
            className="text-muted",
        ),
        filter_bar(values),
    ]
    try:
        filters = parse_filters(**values)
    except ValueError as exc:
        return html.Div([*head, dbc.Alert(str(exc), color="warning", className="explore-error")])
    rows = run_store.overview_rows(context.current().db, **filters, limit=MAX_PARCOORDS_RUNS + 1)
    return html.Div(
        [
            *head,
            overview_panel(
                PANEL, rows[:MAX_PARCOORDS_RUNS], more_matching=len(rows) > MAX_PARCOORDS_RUNS
            ),
        ]
    )


@callback(
    Output(LOCATION, "search"),
    Input(NAME, "value"),
    Input(DATASET, "value"),
    Input(STATUS, "value"),
    Input(TAG, "value"),
    Input(GROUP, "value"),
    State(LOCATION, "search"),
    prevent_initial_call=True,
)
@rule("member")
def apply_filters(name, dataset, status, tag, group, search):
    """A filter changed: put them in the URL; the page is drawn again from it."""
    wanted = query_string(name, dataset, status, tag, group)
    return no_update if wanted == (search or "") else wanted
