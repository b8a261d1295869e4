"""Home: what NetLens shows, the presets as one-click cards, the most recent runs."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, callback, ctx, dcc, html, no_update

from netlens.storage.presets import get_preset, preset_description, preset_names
from netlens.storage.runs import list_runs
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule
from netlens.webapp.views.common import run_summary_line, status_badge

dash.register_page(__name__, path="/", title="NetLens", access="member", graphs=False)

REDIRECT = "home-redirect"
LAUNCH = "preset-launch"
FEEDBACK = "home-feedback"

INTRO = (
    "NetLens trains networks and records every epoch: parameters, metrics, and the "
    "activation of every layer for a fixed set of probe inputs. Replay any epoch of any "
    "run: weight and bias trajectories, the network as a graph and in 3D, decision "
    "boundaries, hidden representations."
)


def preset_card(name: str) -> dbc.Col:
    spec = get_preset(name)
    body = dbc.CardBody(
        [
            html.H5(preset_description(name).split(":")[0], className="card-title"),
            html.P(
                preset_description(name).split(":", 1)[-1].strip(), className="small text-muted"
            ),
            html.P(
                f"{spec.dataset.name} · {spec.model.describe()} · {spec.training.epochs} epochs",
                className="small",
            ),
            dbc.Button("Launch", id={"type": LAUNCH, "name": name}, color="primary", size="sm"),
        ]
    )
    return dbc.Col(dbc.Card(body, className="preset-card h-100"), md=4, lg=2, className="mb-3")


def recent_runs() -> html.Div:
    items = list_runs(context.current().db, limit=8)
    if not items:
        return html.P(
            "No runs yet: launch a preset above or design a new experiment.", className="text-muted"
        )
    return dbc.ListGroup(
        [
            dbc.ListGroupItem(
                [
                    status_badge(r.status),
                    dcc.Link(f"#{r.id} {r.name or 'unnamed'}", href=f"/runs/{r.id}"),
                    html.Span(f"  {run_summary_line(r)}", className="small text-muted"),
                ]
            )
            for r in items
        ]
    )


def layout(**_kwargs):
    return html.Div(
        [
            dcc.Location(id=REDIRECT, refresh="callback-nav"),
            html.H2("See inside neural networks as they train"),
            html.P(INTRO, className="lead", style={"maxWidth": "60rem"}),
            dbc.Button("New experiment", href="/new", color="dark", className="me-2 mb-3"),
            dbc.Button("All runs", href="/runs", color="secondary", outline=True, className="mb-3"),
            html.Div(id=FEEDBACK),
            html.H4("Presets from the source studies", className="mt-2"),
            dbc.Row([preset_card(n) for n in preset_names()]),
            html.H4("Recent runs", className="mt-3"),
            recent_runs(),
        ]
    )


@callback(
    Output(REDIRECT, "pathname"),
    Output(FEEDBACK, "children"),
    Input({"type": LAUNCH, "name": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
@rule("member")
def launch_preset(clicks):
    if not ctx.triggered_id or not any(clicks):
        return no_update, no_update
    from netlens.dispatch.submission import submit_spec

    web = context.current()
    try:
        run_id = submit_spec(
            web.db, web.settings, get_preset(ctx.triggered_id["name"]), owner_id=current_actor().id
        )
    except Exception as exc:  # the broker is down, say, shown to the user as such
        return no_update, dbc.Alert(f"Could not queue the run: {exc}", color="danger")
    return f"/runs/{run_id}", no_update
