"""The admin page's login-throttle card: which (name, address) pairs and addresses are being
counted or blocked, and a button per key (and one for all) that clears it."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, callback, html, no_update

from netlens.storage import throttle
from netlens.storage.models import utcnow
from netlens.webapp import context
from netlens.webapp.authz import on_click, rule

P = "admin-throttle-"
TABLE, FEEDBACK, CLEAR, CLEAR_ALL = P + "table", P + "feedback", P + "clear", P + "clear-all"


def throttle_table() -> html.Div:
    web = context.current()
    rows = throttle.list_throttles(web.db, policy=throttle.Policy.from_settings(web.settings))
    if not rows:
        return html.P("No failed logins counted now.", className="text-muted small mb-0")
    now = utcnow()

    def blocked(t: throttle.ThrottleInfo) -> str:
        if t.blocked_until and t.blocked_until > now:
            return f"{(t.blocked_until - now).total_seconds():.0f} s more"
        return ""

    body = [
        html.Tr(
            [
                html.Td(t.name or "(any name)"),
                html.Td(t.address),
                html.Td(t.failures),
                html.Td(f"{t.updated_at:%H:%M:%S}"),
                html.Td(blocked(t)),
                html.Td(
                    dbc.Button(
                        "Clear",
                        id={"type": CLEAR, "key": t.key},
                        size="sm",
                        color="secondary",
                        outline=True,
                        className="py-0",
                    )
                ),
            ]
        )
        for t in rows
    ]
    head = html.Tr(
        [html.Th(h) for h in ("name", "address", "failures", "last (UTC)", "blocked", "")]
    )
    return dbc.Table(
        [html.Thead(head), html.Tbody(body)], size="sm", className="admin-table mb-0", id=P + "rows"
    )


def admin_card() -> dbc.Card:
    settings = context.current().settings
    policy = (
        f"Per user name and address: {settings.login_free_failures} failures free, then "
        f"2 s, 4 s, 8 s … (at most {settings.login_max_delay_seconds} s) before the next "
        f"try; per address: {settings.login_address_limit} failures per "
        f"{settings.login_window_minutes} min across all names."
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.H5("Login throttles", className="d-inline me-3 mb-0"),
                        dbc.Button(
                            "Clear all", id=CLEAR_ALL, size="sm", color="danger", outline=True
                        ),
                    ],
                    className="mb-2 d-flex align-items-center",
                ),
                html.P(policy, className="text-muted small"),
                html.Div(id=FEEDBACK),
                html.Div(throttle_table(), id=TABLE),
            ]
        ),
        className="mb-3",
    )


@callback(
    Output(FEEDBACK, "children"),
    Output(TABLE, "children"),
    Input({"type": CLEAR, "key": ALL}, "n_clicks"),
    Input(CLEAR_ALL, "n_clicks"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def clear_throttles(_clicks, _all):
    trigger = dash.ctx.triggered_id
    db = context.current().db
    if trigger == CLEAR_ALL:
        removed = throttle.clear(db)
    elif isinstance(trigger, dict) and isinstance(trigger.get("key"), str):
        removed = throttle.clear(db, trigger["key"][:200])
    else:
        return no_update, no_update
    message = html.P(f"{removed} throttle(s) cleared.", className="text-success small")
    return message, throttle_table()
