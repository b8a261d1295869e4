"""Your account: change your password (throttled like a login), create (with a scope and an
expiry) and revoke REST API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, callback, html, no_update

from netlens.storage import throttle, users
from netlens.storage.models import utcnow
from netlens.webapp import context
from netlens.webapp.auth import SESSION_COOKIE, current_actor
from netlens.webapp.authz import on_click, rule
from netlens.webapp.views import limits

dash.register_page(
    __name__, path="/account", title="Account · NetLens", access="member", graphs=False
)

OLD, NEW, REPEAT, CHANGE, CHANGE_FEEDBACK = (
    "account-old",
    "account-new",
    "account-repeat",
    "account-change",
    "account-change-feedback",
)
LABEL, CREATE, TOKENS, TOKEN_FEEDBACK = (
    "account-token-label",
    "account-token-create",
    "account-tokens",
    "account-token-feedback",
)
REVOKE_ID, REVOKE = "account-revoke-id", "account-revoke"
SCOPE, EXPIRES = "account-token-scope", "account-token-expires"
EXPIRY_DAYS = {"": None, "7": 7, "30": 30, "90": 90, "365": 365}


def layout(**_kwargs):
    actor = current_actor()
    if actor.id is None:
        return dbc.Alert(
            "Single-user mode: NetLens listens on the loopback address only and "
            "nobody logs in, so there is no account to manage. On a lab server "
            "(any other address, or NETLENS_AUTH=required) every user logs in.",
            color="info",
        )
    password = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Change your password"),
                dbc.Label("Current password", html_for=OLD),
                dbc.Input(id=OLD, type="password", autoComplete="current-password"),
                dbc.Label(
                    f"New password ({users.MIN_PASSWORD} to {users.MAX_PASSWORD} characters)",
                    html_for=NEW,
                    className="mt-2",
                ),
                dbc.Input(id=NEW, type="password", autoComplete="new-password"),
                dbc.Label("New password again", html_for=REPEAT, className="mt-2"),
                dbc.Input(id=REPEAT, type="password", autoComplete="new-password"),
                dbc.Button("Change password", id=CHANGE, color="primary", className="mt-3"),
                html.Div(id=CHANGE_FEEDBACK, className="mt-2"),
                html.P(
                    "Your other browser sessions end when the password changes.",
                    className="text-muted small mt-2 mb-0",
                ),
            ]
        )
    )
    tokens = dbc.Card(
        dbc.CardBody(
            [
                html.H5("REST API tokens"),
                html.P(
                    [
                        "For scripts and ",
                        html.Code("netlens runs --server URL --token ..."),
                        ". A token acts as you; revoke it when it is no longer needed.",
                    ],
                    className="text-muted small",
                ),
                dbc.InputGroup(
                    [
                        dbc.Input(
                            id=LABEL, placeholder="what it is for (e.g. laptop CLI)", maxLength=100
                        ),
                        dbc.Select(
                            id=SCOPE,
                            value="write",
                            style={"flex": "0 0 11rem"},
                            options=[
                                {"label": "read and write", "value": "write"},
                                {"label": "read only", "value": "read"},
                            ],
                        ),
                        dbc.Select(
                            id=EXPIRES,
                            value="90",
                            style={"flex": "0 0 13rem"},
                            options=[
                                {"label": f"expires in {d} days", "value": v}
                                for v, d in EXPIRY_DAYS.items()
                                if d
                            ]
                            + [{"label": "never expires", "value": ""}],
                        ),
                        dbc.Button("Create token", id=CREATE, color="secondary"),
                    ]
                ),
                html.Div(id=TOKEN_FEEDBACK, className="mt-2"),
                html.Div(token_table(actor.id), id=TOKENS, className="mt-2"),
                dbc.InputGroup(
                    [
                        dbc.Input(id=REVOKE_ID, type="number", min=1, placeholder="token id"),
                        dbc.Button("Revoke", id=REVOKE, color="danger", outline=True),
                    ],
                    className="mt-2",
                    style={"maxWidth": "20rem"},
                ),
            ]
        )
    )
    return html.Div(
        [
            html.H3(f"Account: {actor.name}" + (" (admin)" if actor.is_admin else "")),
            dbc.Row([dbc.Col(password, md=5), dbc.Col(tokens, md=7)], className="g-3"),
            dbc.Row(dbc.Col(limits.account_card(actor.id), md=5), className="g-3 mt-1"),
        ]
    )


def token_table(user_id: int):
    rows = users.list_tokens(context.current().db, user_id)
    if not rows:
        return html.P("No tokens yet.", className="text-muted mb-0")

    def when(moment):
        return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"

    return dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(h)
                        for h in ("id", "for", "scope", "created", "expires", "last used", "state")
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(t.id),
                            html.Td(t.name or "—"),
                            html.Td(t.scope),
                            html.Td(when(t.created_at)),
                            html.Td(when(t.expires_at)),
                            html.Td(when(t.last_used_at)),
                            html.Td(_state(t)),
                        ]
                    )
                    for t in rows
                ]
            ),
        ],
        size="sm",
        striped=True,
        className="mb-0",
    )


def _state(token: users.TokenInfo) -> str:
    if token.revoked_at:
        return "revoked"
    return "expired" if token.expires_at and token.expires_at <= utcnow() else "live"


def _expiry(value) -> datetime | None:
    if not isinstance(value, str) or value not in EXPIRY_DAYS:
        raise users.UserError(
            "expires: one of "
            + ", ".join(f"{d} days" for d in EXPIRY_DAYS.values() if d)
            + " or never"
        )
    days = EXPIRY_DAYS[value]
    return utcnow() + timedelta(days=days) if days else None


@callback(
    Output(CHANGE_FEEDBACK, "children"),
    Output(OLD, "value"),
    Output(NEW, "value"),
    Output(REPEAT, "value"),
    Input(CHANGE, "n_clicks"),
    State(OLD, "value"),
    State(NEW, "value"),
    State(REPEAT, "value"),
    prevent_initial_call=True,
)
@on_click
@rule("member")
def change_password(_n, old, new, repeat):
    actor = current_actor()
    if actor.id is None:
        return dbc.Alert("Single-user mode has no accounts.", color="info"), no_update, "", ""
    if (new or "") != (repeat or ""):
        return (
            html.Span("new password: the two entries differ", className="text-danger"),
            no_update,
            "",
            "",
        )
    try:
        web = context.current()
        users.change_password(
            web.db,
            actor.id,
            old or "",
            new or "",
            keep_session=flask.request.cookies.get(SESSION_COOKIE),
            address=flask.request.remote_addr or "?",
            policy=throttle.Policy.from_settings(web.settings),
        )
    except (users.UserError, users.RateLimited) as exc:
        return html.Span(str(exc), className="text-danger"), no_update, "", ""
    return html.Span("Password changed.", className="text-success"), "", "", ""


@callback(
    Output(TOKEN_FEEDBACK, "children"),
    Output(TOKENS, "children"),
    Input(CREATE, "n_clicks"),
    Input(REVOKE, "n_clicks"),
    State(LABEL, "value"),
    State(REVOKE_ID, "value"),
    State(SCOPE, "value"),
    State(EXPIRES, "value"),
    prevent_initial_call=True,
)
@on_click
@rule("member")
def manage_tokens(_create, _revoke, label, token_id, scope, expires):
    actor, db = current_actor(), context.current().db
    if actor.id is None:
        return dbc.Alert("Single-user mode has no accounts.", color="info"), no_update
    try:
        if dash.ctx.triggered_id == CREATE:
            new_id, secret = users.create_token(
                db, actor.id, str(label or "").strip(), scope=scope, expires_at=_expiry(expires)
            )
            message = dbc.Alert(
                [
                    html.Div(f"Token {new_id} created. Copy it now: it is not shown again."),
                    html.Code(secret, id="account-new-token"),
                ],
                color="success",
                className="mb-0",
            )
        else:
            if not token_id:
                raise users.UserError("token id: give the id of one of your tokens")
            users.revoke_token(db, int(token_id), actor)
            message = html.Span(f"Token {int(token_id)} revoked.", className="text-success")
    except (users.UserError, users.Forbidden) as exc:
        return html.Span(str(exc), className="text-danger"), no_update
    return message, token_table(actor.id)
