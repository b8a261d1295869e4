"""Per-user limits on the pages: the account page's card (your limits and usage) and the admin
page's card (team values, per-user overrides, and a form to change either)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, html, no_update

from netlens.storage import limits, users
from netlens.storage.limits import LIMITS, LimitError, format_bytes
from netlens.webapp import context
from netlens.webapp.authz import on_click, rule

NAME, VALUE, USER, SET = "limits-name", "limits-value", "limits-user", "limits-set"
FEEDBACK, TABLE = "limits-feedback", "limits-table"


def show(name: str, value: float) -> str:
    """A limit's value as people read it (0: no limit)."""
    if not value:
        return "no limit"
    unit = LIMITS[name].unit
    if unit == "bytes":
        return format_bytes(value)
    if unit == "seconds":
        return f"{value / 3600:.3g} h" if value >= 3600 else f"{value:g} s"
    if unit == "hours":
        return f"{value:g} h"
    return f"{int(value)}"


def usage_lines(values: dict[str, float], used: dict[str, int]) -> list[str]:
    """'3 of 100 queued or running jobs', ...: a member's limits beside what they use."""

    def of(have: str, name: str) -> str:
        return f"{have} of {show(name, values[name])}" if values[name] else f"{have} (no limit)"

    return [
        f"queued and running jobs: {of(str(used['active_jobs']), 'active_jobs')}",
        f"uploads: {of(str(used['uploads']), 'uploads')}",
        f"upload storage: {of(format_bytes(used['upload_bytes']), 'upload_bytes')}",
        f"runs per sweep: at most {show('sweep_runs', values['sweep_runs'])}",
        f"job time limit: {show('job_time_limit_seconds', values['job_time_limit_seconds'])}",
        "uploads no run uses are deleted after "
        f"{show('unused_upload_hours', values['unused_upload_hours'])}",
    ]


def account_card(user_id: int) -> dbc.Card:
    web = context.current()
    values = limits.effective_limits(web.db, web.settings, user_id)
    used = limits.usage(web.db, user_id)
    if values is None:
        lines = [
            "You are an admin: no limits apply to you.",
            f"{used['active_jobs']} queued or running jobs, {used['uploads']} uploads "
            f"({format_bytes(used['upload_bytes'])})",
        ]
    else:
        lines = usage_lines(values, used)
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("Your limits"),
                html.Ul([html.Li(line) for line in lines], id="account-limits", className="mb-1"),
                html.P("An admin can change them.", className="text-muted small mb-0"),
            ]
        )
    )


def team_table():
    web = context.current()
    defaults = limits.defaults(web.settings)
    team = limits.team_limits(web.db, web.settings)
    rows = [
        html.Tr(
            [
                html.Td(html.Code(name)),
                html.Td(limit.label),
                html.Td(show(name, team[name])),
                html.Td(
                    show(name, defaults[name]) + f" (NETLENS_{limit.setting.upper()})",
                    className="text-muted",
                ),
            ]
        )
        for name, limit in LIMITS.items()
    ]
    overrides = [
        html.Li(
            f"{who}: " + ", ".join(f"{k} = {show(k, v)}" for k, v in values.items() if k in LIMITS)
        )
        for who, values in limits.all_overrides(web.db).items()
    ]
    return html.Div(
        [
            dbc.Table(
                [
                    html.Thead(
                        html.Tr([html.Th(h) for h in ("name", "limit", "team value", "default")])
                    ),
                    html.Tbody(rows),
                ],
                size="sm",
                className="mb-1",
            ),
            html.Div(
                [
                    html.Span("Per-user overrides: ", className="small"),
                    html.Ul(overrides, className="small mb-0")
                    if overrides
                    else html.Span("none", className="small text-muted"),
                ]
            ),
        ]
    )


def admin_card() -> dbc.Card:
    options = [
        {"label": f"{name} ({limit.label})", "value": name} for name, limit in LIMITS.items()
    ]
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("Limits"),
                html.P(
                    'Per member; admins are not limited. 0: no limit; "default" removes a '
                    "team value or a user's override.",
                    className="text-muted small",
                ),
                html.Div(team_table(), id=TABLE),
                dbc.Row(
                    [
                        dbc.Col(
                            dbc.Select(id=NAME, options=options, value="active_jobs", size="sm"),
                            md=4,
                        ),
                        dbc.Col(
                            dbc.Input(
                                id=VALUE,
                                placeholder="value, e.g. 20 or 2 GiB",
                                size="sm",
                                maxLength=40,
                            ),
                            md=3,
                        ),
                        dbc.Col(
                            dbc.Input(
                                id=USER,
                                placeholder="user (empty: the whole team)",
                                size="sm",
                                maxLength=80,
                            ),
                            md=3,
                        ),
                        dbc.Col(dbc.Button("Set", id=SET, color="primary", size="sm"), md=2),
                    ],
                    className="g-2 mt-1",
                ),
                html.Div(id=FEEDBACK, className="mt-2 small"),
            ]
        ),
        className="mb-3",
    )


@callback(
    Output(FEEDBACK, "children"),
    Output(TABLE, "children"),
    Input(SET, "n_clicks"),
    State(NAME, "value"),
    State(VALUE, "value"),
    State(USER, "value"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def set_limit(_n, name, value, user):
    """An admin sets a limit team-wide, or for one user (by name)."""
    web = context.current()
    name, user = str(name or ""), str(user or "").strip()
    try:
        if not user:
            new = limits.set_team_limit(web.db, name, value or "")
            where = "team-wide"
        else:
            info = users.get_user_by_name(web.db, user)
            if info is None:
                raise LimitError(f"user: no user named {user!r}")
            new = limits.set_user_limit(web.db, info.id, name, value or "")
            where = f"for {info.name}"
    except LimitError as exc:
        return html.Span(str(exc), className="text-danger"), no_update
    told = "the default" if new is None else show(name, new)
    return html.Span(f"{name} {where}: {told}", className="text-success"), team_table()
