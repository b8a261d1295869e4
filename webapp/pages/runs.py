"""Runs: a server-side paginated, sortable, filterable table; select runs to cancel or delete.

The filter box takes an expression of the run filter language (storage/run_filter.py,
docs/filter.md); it lives in the URL (`/runs?where=...`), read when the page opens and
written back, without a reload, when it changes. Download CSV saves the runs it matches."""

from __future__ import annotations

from typing import get_args
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from netlens.storage import jobs, run_filter, runs
from netlens.storage.models import RUN_STATUSES
from netlens.storage.spec import DatasetName
from netlens.storage.users import Forbidden, require_run_owner
from netlens.webapp import context, csv_export, url_state
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import EACH, on_click, rule

dash.register_page(
    __name__, path="/runs", title="Runs · NetLens", access="member", graphs=False, grids=True
)

GRID = "runs-grid"
GRID_HOLDER = "runs-grid-holder"
COMPARE = "runs-compare"
REDIRECT = "runs-redirect"
CANCEL = "runs-cancel"
DELETE = "runs-delete"
FEEDBACK = "runs-feedback"
EXPLORE = "runs-explore"
URL = "runs-url"
WHERE = "runs-where"  # the filter box
WHERE_APPLIED = "runs-where-applied"  # the expression the grid shows (a readable one)
WHERE_ERROR = "runs-where-error"
CSV_BUTTON = "runs-csv"
CSV_DOWNLOAD = "runs-csv-download"
BLOCK = 50
WHERE_EXAMPLE = "dataset = digits and val_accuracy > 0.9 and tag:preset"

TEXT_FILTER = {
    "filter": "agTextColumnFilter",
    "filterParams": {"filterOptions": ["contains"], "maxNumConditions": 1},
}
COLUMNS = [
    {"field": "id", "headerName": "#", "width": 80, "sort": "desc", "cellRenderer": "markdown"},
    {"field": "name", "flex": 1, "minWidth": 140, **TEXT_FILTER},
    {"field": "status", "width": 120, **TEXT_FILTER},
    {"field": "dataset", "width": 140, **TEXT_FILTER},
    {"field": "architecture", "width": 160, **TEXT_FILTER},
    {"field": "optimizer", "width": 110, **TEXT_FILTER},
    {"field": "last_epoch", "headerName": "epoch", "width": 95},
    {"field": "epochs_total", "headerName": "of", "width": 85},
    {
        "field": "final_train_loss",
        "headerName": "train loss",
        "width": 115,
        "valueFormatter": {
            "function": "params.value == null ? '' : d3.format('.4g')(params.value)"
        },
    },
    {
        "field": "final_train_accuracy",
        "headerName": "train acc",
        "width": 110,
        "valueFormatter": {
            "function": "params.value == null ? '' : d3.format('.3f')(params.value)"
        },
    },
    {
        "field": "final_val_accuracy",
        "headerName": "val acc",
        "width": 100,
        "valueFormatter": {
            "function": "params.value == null ? '' : d3.format('.3f')(params.value)"
        },
    },
    {"field": "created_at", "headerName": "created", "width": 160},
    {"field": "tags", "width": 140, "sortable": False},
]


def make_grid() -> dag.AgGrid:
    return dag.AgGrid(
        id=GRID,
        columnDefs=COLUMNS,
        rowModelType="infinite",
        defaultColDef={"sortable": True, "resizable": True},
        dashGridOptions={
            "rowSelection": {"mode": "multiRow", "headerCheckbox": False},
            "cacheBlockSize": BLOCK,
            "maxBlocksInCache": 20,
            "pagination": True,
            "paginationPageSize": BLOCK,
            "paginationPageSizeSelector": False,
            "getRowId": {"function": "params.data.key"},
        },
        style={"height": "640px"},
    )


def _readable(where: object) -> tuple[str, str | None]:
    """(the expression, its error message or None): one of a URL or the box, checked."""
    text = where.strip() if isinstance(where, str) else ""
    try:
        run_filter.parse(text)
    except run_filter.FilterError as exc:
        return text, str(exc)
    return text, None


def filter_bar(where: str, error: str | None) -> html.Div:
    return html.Div(
        [
            dbc.InputGroup(
                [
                    dbc.InputGroupText("Filter"),
                    dbc.Input(
                        id=WHERE,
                        value=where,
                        placeholder=WHERE_EXAMPLE,
                        debounce=True,  # on Enter or leaving the box
                        maxLength=run_filter.MAX_LENGTH,
                        autoComplete="off",
                        invalid=error is not None,
                    ),
                    dbc.Button("Download CSV", id=CSV_BUTTON, color="secondary", outline=True),
                ],
                size="sm",
            ),
            html.Div(error or "", id=WHERE_ERROR, className="text-danger small mt-1"),
            html.Div(
                "Fields (name, status, dataset, owner, val_accuracy, ..., spec paths such as "
                "optimizer.learning_rate), = != < <= > >= ~, and / or / not, ( ), tag:NAME, "
                "dates (created > 2026-11-01); press Enter. The syntax: docs/filter.md.",
                className="text-muted small",
            ),
            dcc.Download(id=CSV_DOWNLOAD),
        ],
        className="mb-2",
    )


def layout(where: object = None, **_kwargs):
    where, error = _readable(where)
    return html.Div(
        [
            dcc.Location(id=REDIRECT, refresh="callback-nav"),
            url_state.location(URL),
            dcc.Store(id=WHERE_APPLIED, data=None if error else where),
            html.Div(
                [
                    html.H3("Runs", className="d-inline me-3"),
                    dbc.Button(
                        "Compare selected", id=COMPARE, color="primary", size="sm", className="me-2"
                    ),
                    dbc.Button(
                        "Cancel selected", id=CANCEL, color="warning", size="sm", className="me-2"
                    ),
                    dbc.Button(
                        "Delete selected",
                        id=DELETE,
                        color="danger",
                        size="sm",
                        outline=True,
                        className="me-2",
                    ),
                    dbc.Button("New experiment", href="/new", color="dark", size="sm"),
                    dcc.Link(
                        "Parallel coordinates of these runs →",
                        href="/explore",
                        id=EXPLORE,
                        className="ms-3 small",
                    ),
                ],
                className="mb-2",
            ),
            filter_bar(where, error),
            html.Div(id=FEEDBACK),
            html.Div(make_grid(), id=GRID_HOLDER),
        ]
    )


def _row(info: runs.RunInfo) -> dict:
    return {
        "key": str(info.id),
        "id": f"[{info.id}](/runs/{info.id})",
        "name": info.name,
        "status": info.status,
        "dataset": info.dataset,
        "architecture": info.architecture,
        "optimizer": info.optimizer,
        "last_epoch": info.last_epoch,
        "epochs_total": info.epochs_total,
        **{f"final_{k}": v for k, v in info.final_metrics.items()},
        "created_at": f"{info.created_at:%Y-%m-%d %H:%M}",
        "tags": ", ".join(info.tags),
    }


def rows_for_request(request: dict, where: str | None = None) -> dict:
    """Answer AG Grid's infinite-model request from SQL: one block, sorted and filtered (by
    the column filters and the filter expression `where`)."""
    start, end = int(request.get("startRow", 0)), int(request.get("endRow", BLOCK))
    sort = [
        (m["colId"] if m["colId"] != "id" else "id", m["sort"])
        for m in request.get("sortModel") or []
        if m["colId"] in runs.SORTABLE
    ]
    contains = {
        col: f.get("filter", "")
        for col, f in (request.get("filterModel") or {}).items()
        if col in runs.TEXT_FILTERS
    }
    try:
        items, total = runs.query_runs(
            context.current().db,
            offset=start,
            limit=end - start,
            sort=sort or None,
            contains=contains,
            where=where,
        )
    except run_filter.FilterError:  # (a crafted call: the page stores readable ones only)
        return {"rowData": [], "rowCount": 0}
    return {"rowData": [_row(i) for i in items], "rowCount": total}


@callback(
    Output(GRID, "getRowsResponse"), Input(GRID, "getRowsRequest"), State(WHERE_APPLIED, "data")
)
@rule("member")
def serve_rows(request, where):
    if not request:
        return no_update
    return rows_for_request(request, where if isinstance(where, str) else None)


@callback(
    Output(WHERE_ERROR, "children"),
    Output(WHERE, "invalid"),
    Output(WHERE_APPLIED, "data"),
    Output(GRID_HOLDER, "children", allow_duplicate=True),
    Output(URL, "href"),
    Input(WHERE, "value"),
    State(WHERE_APPLIED, "data"),
    State(URL, "href"),
    prevent_initial_call=True,
)
@rule("member")
def apply_where(value, applied, href):
    """A new expression in the box: its error under it, or the grid filtered by it and the
    URL saying so (a history entry, no reload)."""
    where, error = _readable(value)
    if error is not None:
        return error, True, no_update, no_update, no_update
    if where == (applied or ""):
        return "", False, no_update, no_update, no_update
    new_href = url_state.with_query(href, {"where": where or None}, "/runs")
    return "", False, where or None, make_grid(), new_href


@callback(
    Output(WHERE, "value", allow_duplicate=True),
    Input(URL, "href"),
    State(WHERE, "value"),
    prevent_initial_call=True,
)
@rule("member")
def restore_where(href, current):
    """Back and forward: the box follows the URL (and apply_where the grid)."""
    wanted = url_state.query_of(href, run_filter.MAX_LENGTH).get("where", "")
    now = current.strip() if isinstance(current, str) else ""
    return wanted if wanted != now else no_update


@callback(
    Output(CSV_DOWNLOAD, "data"),
    Output(FEEDBACK, "children", allow_duplicate=True),
    Input(CSV_BUTTON, "n_clicks"),
    State(WHERE_APPLIED, "data"),
    prevent_initial_call=True,
)
@on_click
@rule("member")
def download_csv(_n, where):
    """The runs the filter matches as CSV (the first MAX_CSV_ROWS of them)."""
    try:
        text, total = csv_export.runs_csv(
            context.current().db, where=where if isinstance(where, str) else None
        )
    except run_filter.FilterError as exc:  # (a crafted call: the page stores readable ones)
        return no_update, dbc.Alert(str(exc), color="warning", dismissable=True)
    note = no_update
    if total > csv_export.MAX_CSV_ROWS:
        note = dbc.Alert(
            f"{total:,} runs match: the file holds the first {csv_export.MAX_CSV_ROWS:,} "
            "(newest first). Narrow the filter for the rest.",
            color="info",
            dismissable=True,
        )
    return dcc.send_string(text, csv_export.runs_filename(total), type="text/csv"), note


def explore_href(filter_model: dict | None) -> str:
    """/explore with the grid's filters that it understands: name (contains), and dataset or
    status when the text is exactly one (the page filters those exactly)."""
    texts = {col: (f or {}).get("filter") or "" for col, f in (filter_model or {}).items()}
    exact = {"dataset": get_args(DatasetName), "status": RUN_STATUSES}
    pairs = {"name": texts.get("name", "")} | {
        col: texts.get(col, "") for col, allowed in exact.items() if texts.get(col) in allowed
    }
    pairs = {k: v for k, v in pairs.items() if v}
    return "/explore" + ("?" + urlencode(pairs) if pairs else "")


@callback(Output(EXPLORE, "href"), Input(GRID, "getRowsRequest"), prevent_initial_call=True)
@rule("member")
def link_to_explore(request):
    return explore_href((request or {}).get("filterModel"))


@callback(
    Output(FEEDBACK, "children"),
    Output(GRID_HOLDER, "children"),
    Input(CANCEL, "n_clicks"),
    Input(DELETE, "n_clicks"),
    State(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@on_click
@rule("owner", run=EACH)  # several runs: apply_action checks each one's owner
def act_on_selection(_cancel, _delete, selected):
    action = dash.ctx.triggered_id
    ids = selected_ids(selected)
    if not ids:
        return dbc.Alert(
            "Select runs first (tick their rows).", color="info", dismissable=True
        ), no_update
    messages = [apply_action(action, run_id) for run_id in ids]
    return dbc.Alert(
        html.Ul([html.Li(m) for m in messages]), color="light", dismissable=True
    ), make_grid()


def selected_ids(selected: list | None) -> list[int]:
    """The run ids of the grid's selected rows (row objects whose "key" is the id); anything
    else in a crafted call is left out."""
    rows = [r.get("key") for r in selected or [] if isinstance(r, dict)]
    return [
        int(k)
        for k in rows
        if isinstance(k, str | int) and str(k).isdecimal() and 0 < int(k) < 2**63
    ][:1000]


def apply_action(action: str, run_id: int) -> str:
    db = context.current().db
    try:
        require_run_owner(db, current_actor(), run_id, "cancel" if action == CANCEL else "delete")
        if action == CANCEL:
            return f"run {run_id}: {jobs.request_cancel(db, run_id)}"
        info = runs.get_run(db, run_id)
        if info.status in ("queued", "running"):
            return f"run {run_id} is {info.status}: cancel it before deleting it"
        runs.delete_run(db, run_id)
        return f"run {run_id}: deleted"
    except (jobs.JobStateError, runs.RunNotFound, Forbidden) as exc:
        return str(exc)


@callback(
    Output(REDIRECT, "search"),
    Output(REDIRECT, "pathname"),
    Output(FEEDBACK, "children", allow_duplicate=True),
    Input(COMPARE, "n_clicks"),
    State(GRID, "selectedRows"),
    prevent_initial_call=True,
)
@on_click
@rule("member")
def compare_selected(_n, selected):
    ids = [str(i) for i in selected_ids(selected)]
    if not 2 <= len(ids) <= 8:
        return (
            no_update,
            no_update,
            dbc.Alert("Select between 2 and 8 runs to compare.", color="info", dismissable=True),
        )
    return f"?runs={','.join(ids)}", "/compare", no_update
