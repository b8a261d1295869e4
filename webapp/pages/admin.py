"""Admin: the job queue. Queue lengths, jobs per state, workers and their current jobs, every
job (filtered, sorted and paged in SQL) with its traceback; cancel, retry, requeue, delete;
storage per user and per run; enable or disable accounts. Refreshes every 3 s.

Everything shown comes from the database (jobs, runs, users, uploads and the workers'
heartbeats in storage/admin.py and storage/workers.py), except the broker's queue lengths,
read in a background thread at most every BROKER_TTL_S seconds, so the page survives
restarts and never waits on the broker.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from netlens.storage import admin, jobs, runs, users
from netlens.storage.limits import LimitExceeded
from netlens.storage.models import JOB_STATES
from netlens.storage.users import Forbidden, require_run_owner
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import on_click, rule
from netlens.webapp.views import limits, retention, throttles
from netlens.webapp.views.admin import (  # the component ids and builders
    ANY,
    CANCEL,
    CARDS,
    CONFIRM,
    DEFAULT_VIEW,
    DELETE,
    DETAIL,
    F_DATES_BOX,
    F_FROM,
    F_QUEUE,
    F_STATE,
    F_TIME,
    F_TO,
    F_USER,
    FEEDBACK,
    GRID,
    PAGE,
    PENDING,
    PICK,
    PICKED,
    REFRESH,
    REFRESH_MS,
    REQUEUE,
    RETRY,
    SORT,
    STORAGE,
    STORAGE_FEEDBACK,
    STORE_DELETE,
    TICK,
    TIME_LABELS,
    UPDATED,
    USER_TOGGLE,
    USERS,
    USERS_FEEDBACK,
    VERBS,
    VIEW,
    WORKERS,
    P,
    job_panel,
    jobs_table,
    size,
    storage_panel,
    summary_cards,
    users_table,
    workers_table,
)

dash.register_page(__name__, path="/admin", title="Admin · NetLens", access="admin", graphs=False)

# ---- layout -------------------------------------------------------------------------------


def _filters(db) -> dbc.Row:
    """Plain controls (checkboxes, native selects and date inputs): no component chunk to
    fetch and evaluate before the grid's first rows."""
    names = [u.name for u in users.list_users(db)]

    def labelled(label, control, label_for=None):
        return dbc.Col(
            [dbc.Label(label, html_for=label_for, className="small mb-0 d-block"), control],
            width="auto",
        )

    def select(select_id, anything, options, value=ANY, width="9rem"):
        return dbc.Select(
            id=select_id,
            value=value,
            size="sm",
            style={"width": width},
            options=([{"label": anything, "value": ANY}] if anything else []) + options,
        )

    return dbc.Row(
        [
            labelled(
                "State",
                dbc.Checklist(
                    id=F_STATE,
                    options=list(JOB_STATES),
                    value=[],
                    inline=True,
                    className="small admin-states",
                ),
            ),
            labelled(
                "User",
                select(
                    F_USER, "any user", [{"label": n, "value": n} for n in names], width="10rem"
                ),
                F_USER,
            ),
            labelled(
                "Queue",
                select(F_QUEUE, "any queue", [{"label": q, "value": q} for q in admin.QUEUES]),
                F_QUEUE,
            ),
            labelled(
                "Enqueued",
                select(
                    F_TIME,
                    None,
                    [{"label": v, "value": k} for k, v in TIME_LABELS.items()],
                    "all",
                    width="11rem",
                ),
                F_TIME,
            ),
            dbc.Col(
                html.Div(
                    [
                        dbc.Label("From, to (UTC dates)", className="small mb-0 d-block"),
                        html.Div(
                            [
                                dbc.Input(id=F_FROM, type="date", size="sm"),
                                dbc.Input(id=F_TO, type="date", size="sm"),
                            ],
                            className="d-flex gap-1",
                        ),
                    ],
                    id=F_DATES_BOX,
                    style={"display": "none"},
                ),
                width="auto",
            ),
        ],
        className="g-2 mb-2 align-items-end",
    )


def layout(**_kwargs):
    web = context.current()
    db = web.db
    jobs_card = dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.H5("Jobs", className="d-inline me-3 mb-0"),
                        dbc.Button(
                            "Cancel", id=CANCEL, color="warning", size="sm", className="me-1"
                        ),
                        dbc.Button("Retry", id=RETRY, color="primary", size="sm", className="me-1"),
                        dbc.Button(
                            "Requeue",
                            id=REQUEUE,
                            color="secondary",
                            size="sm",
                            className="me-1",
                            title="a queued or running job as a new attempt (the old one is "
                            "fenced off)",
                        ),
                        dbc.Button("Delete", id=DELETE, color="danger", size="sm", outline=True),
                        html.Span(" the selected jobs", className="small text-muted ms-1"),
                    ],
                    className="mb-2 d-flex align-items-center flex-wrap",
                ),
                _filters(db),
                html.Div(id=FEEDBACK),
                html.Div(jobs_table(DEFAULT_VIEW, ([], ANY, ANY, "all", None, None), []), id=GRID),
                html.Div(
                    html.P(
                        "Select a job (click its row) to see its details and traceback.",
                        className="text-muted small mb-0",
                    ),
                    id=DETAIL,
                    className="mt-3",
                ),
            ]
        ),
        className="mb-3",
    )
    return html.Div(
        [
            dcc.Interval(id=TICK, interval=REFRESH_MS),
            dcc.Store(id=REFRESH, data=0),
            dcc.Store(id=PENDING),
            dcc.Store(id=VIEW, data=DEFAULT_VIEW),
            dcc.Store(id=PICKED, data=[]),
            dcc.ConfirmDialog(id=CONFIRM),
            html.Div(
                [
                    html.H3("Admin: the job queue", className="d-inline me-3"),
                    html.Span(_updated(), id=UPDATED, className="small text-muted"),
                ],
                className="mb-2",
            ),
            html.Div(summary_cards(db, web.settings), id=CARDS, className="mb-3"),
            dbc.Card(
                dbc.CardBody(
                    [html.H5("Workers"), html.Div(workers_table(db, web.settings), id=WORKERS)]
                ),
                className="mb-3",
            ),
            jobs_card,
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H5("Storage"),
                                    html.Div(id=STORAGE_FEEDBACK),
                                    html.Div(storage_panel(db), id=STORAGE),
                                ]
                            )
                        ),
                        lg=8,
                        className="mb-3",
                    ),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H5("Users"),
                                    html.Div(id=USERS_FEEDBACK),
                                    html.Div(users_table(db), id=USERS),
                                ]
                            )
                        ),
                        lg=4,
                        className="mb-3",
                    ),
                ]
            ),
            retention.admin_card(),
            limits.admin_card(),
            throttles.admin_card(),
        ],
        className="admin-page",
    )


def _updated() -> str:
    return f"updated {datetime.now(UTC):%H:%M:%S} UTC, every {REFRESH_MS // 1000} s; times in UTC"


# ---- callbacks ----------------------------------------------------------------------------


@callback(
    Output(CARDS, "children"),
    Output(WORKERS, "children"),
    Output(STORAGE, "children"),
    Output(USERS, "children"),
    Output(UPDATED, "children"),
    Input(TICK, "n_intervals"),
    prevent_initial_call=True,
)
@rule("admin")
def refresh(_n):
    web = context.current()
    return (
        summary_cards(web.db, web.settings),
        workers_table(web.db, web.settings),
        storage_panel(web.db),
        users_table(web.db),
        _updated(),
    )


FILTERS = [
    Input(F_STATE, "value"),
    Input(F_USER, "value"),
    Input(F_QUEUE, "value"),
    Input(F_TIME, "value"),
    Input(F_FROM, "value"),
    Input(F_TO, "value"),
]


@callback(
    Output(GRID, "children"),
    Input(VIEW, "data"),
    Input(TICK, "n_intervals"),
    Input(REFRESH, "data"),
    *[State(f.component_id, f.component_property) for f in FILTERS],
    State(PICKED, "data"),
    prevent_initial_call=True,
)
@rule("admin")
def refresh_jobs(view, _n, _refreshed, *filters_and_picked):
    """The table again: every tick, after an action, and when the view changes (a filter
    changes the view too: back to its first page)."""
    *filters, picked = filters_and_picked
    return jobs_table(view, tuple(filters), picked)


@callback(
    Output(VIEW, "data"),
    Input({"type": SORT, "col": ALL}, "n_clicks"),
    Input({"type": PAGE, "to": ALL, "role": ALL}, "n_clicks"),
    *FILTERS,
    State(VIEW, "data"),
    prevent_initial_call=True,
)
@rule("admin")
def change_view(_sorts, _pages, *filters_and_view):
    """A header sorts (again: the other way), a pager button turns the page, a filter goes
    back to the first page."""
    view = {**DEFAULT_VIEW, **(filters_and_view[-1] or {})}
    trigger = dash.ctx.triggered_id
    if isinstance(trigger, dict):
        if not dash.ctx.triggered[0].get("value"):
            return no_update  # a button that just appeared in a new table
        if trigger["type"] == SORT:
            column = trigger["col"]
            same = view["sort"] and view["sort"][0] == column
            direction = ("asc" if view["sort"][1] == "desc" else "desc") if same else "desc"
            return {"page": 0, "sort": [column, direction]}
        return {**view, "page": int(trigger["to"])}
    return {**view, "page": 0}


@callback(
    Output(PICKED, "data"),
    Output(GRID, "children", allow_duplicate=True),
    Input({"type": PICK, "run": ALL}, "n_clicks"),
    State(PICKED, "data"),
    State(VIEW, "data"),
    *[State(f.component_id, f.component_property) for f in FILTERS],
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def pick(_clicks, picked, view, *filters):
    """A click on a row ticks it, or unticks it; ticks on other pages are kept."""
    run_id = int(dash.ctx.triggered_id["run"])
    picked = list(picked or [])
    picked = [i for i in picked if i != run_id] if run_id in picked else picked + [run_id]
    return picked, jobs_table(view, tuple(filters), picked)


clientside_callback(
    "function(choice) { return {display: choice === 'dates' ? 'block' : 'none'}; }",
    Output(F_DATES_BOX, "style"),
    Input(F_TIME, "value"),
    prevent_initial_call=True,
)


@callback(
    Output(FEEDBACK, "children"),
    Output(REFRESH, "data"),
    Output(PICKED, "data", allow_duplicate=True),
    Input(CANCEL, "n_clicks"),
    Input(RETRY, "n_clicks"),
    Input(REQUEUE, "n_clicks"),
    Input(DELETE, "n_clicks"),
    State(PICKED, "data"),
    State(REFRESH, "data"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def act_on_jobs(_cancel, _retry, _requeue, _delete, picked, refreshed):
    action = dash.ctx.triggered_id
    ids = [int(i) for i in picked or []]
    if not ids:
        return (
            dbc.Alert(
                "Select jobs first (click their rows).",
                color="info",
                dismissable=True,
                className="py-2",
            ),
            no_update,
            no_update,
        )
    results = [apply_action(action, run_id) for run_id in ids]
    items = [
        html.Li(message, className="text-success" if ok else "text-danger")
        for ok, message in results
    ]
    return (
        dbc.Alert(
            html.Ul(items, className="mb-0"),
            color="light",
            dismissable=True,
            className="py-2",
            id=P + "feedback-list",
        ),
        (refreshed or 0) + 1,
        [],
    )


def apply_action(action: str, run_id: int) -> tuple[bool, str]:
    """One action on one run: (done, what happened), the reason when refused."""
    web = context.current()
    db, verb = web.db, VERBS[action]
    try:
        require_run_owner(db, current_actor(), run_id, verb)
        if action == CANCEL:
            return True, f"run {run_id}: {jobs.request_cancel(db, run_id)}"
        if action == RETRY:
            from netlens.dispatch.submission import retry_run

            return True, f"run {run_id}: retried as attempt {retry_run(db, web.settings, run_id)}"
        if action == REQUEUE:
            from netlens.dispatch.submission import requeue_run

            attempt = requeue_run(db, web.settings, run_id)
            return True, f"run {run_id}: requeued as attempt {attempt}"
        return _delete(db, run_id)
    except (jobs.JobStateError, runs.RunNotFound, Forbidden, LimitExceeded) as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - the broker down, say: shown as such
        return False, f"run {run_id}: could not {verb} it ({type(exc).__name__}: {exc})"


def _delete(db, run_id: int) -> tuple[bool, str]:
    info = runs.get_run(db, run_id)
    if info.status in ("queued", "running"):
        return False, f"run {run_id} is {info.status}: cancel it before deleting it"
    runs.delete_run(db, run_id)
    return True, f"run {run_id}: deleted ({size(info.recorded_bytes)} freed)"


@callback(
    Output(DETAIL, "children"),
    Input(PICKED, "data"),
    Input(TICK, "n_intervals"),
    prevent_initial_call=True,
)
@rule("admin")
def show_detail(picked, _n):
    ids = [int(i) for i in picked or []]
    if not ids:
        if dash.ctx.triggered_id == TICK:
            return no_update
        return html.P(
            "Select a job (click its row) to see its details and traceback.",
            className="text-muted small mb-0",
        )
    return job_panel(ids[0], len(ids))


@callback(
    Output(CONFIRM, "displayed"),
    Output(CONFIRM, "message"),
    Output(PENDING, "data"),
    Input({"type": STORE_DELETE, "run": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def ask_delete(clicks):
    trigger = dash.ctx.triggered_id
    if not trigger or not any(clicks or []) or not dash.ctx.triggered[0].get("value"):
        return no_update, no_update, no_update
    run_id = int(trigger["run"])
    return True, f"Delete run {run_id} and everything recorded for it?", run_id


@callback(
    Output(STORAGE_FEEDBACK, "children"),
    Output(STORAGE, "children", allow_duplicate=True),
    Output(REFRESH, "data", allow_duplicate=True),
    Input(CONFIRM, "submit_n_clicks"),
    State(PENDING, "data"),
    State(REFRESH, "data"),
    prevent_initial_call=True,
)
@rule("admin")
def confirm_delete(_n, run_id, refreshed):
    if not run_id:
        return no_update, no_update, no_update
    db = context.current().db
    try:
        require_run_owner(db, current_actor(), int(run_id), "delete")
        ok, message = _delete(db, int(run_id))
    except (runs.RunNotFound, Forbidden) as exc:
        ok, message = False, str(exc)
    return (
        html.P(message, className=("text-success" if ok else "text-danger") + " small"),
        storage_panel(db),
        (refreshed or 0) + 1,
    )


@callback(
    Output(USERS_FEEDBACK, "children"),
    Output(USERS, "children", allow_duplicate=True),
    Input({"type": USER_TOGGLE, "name": ALL, "disable": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def toggle_user(clicks):
    trigger = dash.ctx.triggered_id
    if not trigger or not any(clicks or []) or not dash.ctx.triggered[0].get("value"):
        return no_update, no_update
    db, me = context.current().db, current_actor()
    name, disable = trigger["name"], bool(trigger["disable"])
    try:
        if me.name == name and me.id is not None:
            raise users.UserError("user: you cannot disable or enable your own account")
        users.set_disabled(db, name, disable)
        message = html.P(
            f"{name}: {'disabled (logged out everywhere)' if disable else 'enabled'}",
            className="text-success small",
        )
    except users.UserError as exc:
        message = html.P(str(exc), className="text-danger small")
    return message, users_table(db)
