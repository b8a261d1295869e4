"""The Dash app factory: multi-page, Bootstrap CSS shipped locally, one shared context."""

from __future__ import annotations

from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from flask import g
from werkzeug.middleware.proxy_fix import ProxyFix

from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.webapp import (
    api,
    auth,
    context,
    csv_export,
    exports,
    page_scripts,
    single_user,
    upload_route,
)
from netlens.webapp.data import RunData

HERE = Path(__file__).parent


def navbar() -> dbc.Navbar:
    """Built per page load (the layout is a function): the user's name, Admin for admins."""
    actor = g.get("netlens_actor")
    entries = [
        ("Home", "/"),
        ("New experiment", "/new"),
        ("Runs", "/runs"),
        ("Many runs", "/explore"),
        ("Learn", "/learn"),
    ]
    if actor is not None and actor.is_admin:
        entries.append(("Admin", "/admin"))
    links = [dbc.NavItem(dbc.NavLink(text, href=href, active="exact")) for text, href in entries]
    right = []
    if actor is not None and actor.id is not None:
        right = [
            dbc.NavItem(
                dbc.NavLink(
                    actor.name + (" (admin)" if actor.is_admin else ""),
                    href="/account",
                    id="nav-account",
                )
            ),
            html.Form(
                html.Button(
                    "Log out",
                    type="submit",
                    id="nav-logout",
                    className="btn btn-sm btn-outline-light ms-2",
                ),
                action="/logout",
                method="POST",
                className="d-flex",
            ),
        ]
    elif actor is not None:
        right = [
            html.Span(
                "single-user mode",
                className="navbar-text small text-secondary",
                title="Listening on the loopback address only: no login.",
            )
        ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand([html.Span("◉ ", className="text-info"), "NetLens"], href="/"),
                dbc.Nav(links, navbar=True, className="me-auto"),
                dbc.Nav(right, navbar=True, className="align-items-center"),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def layout():
    return html.Div(
        [
            dcc.Location(id="url"),
            navbar(),
            dbc.Container(dash.page_container, fluid=True, className="pb-5"),
        ]
    )


def create_app(
    settings: Settings | None = None, db: Database | None = None, bind_host: str = "127.0.0.1"
) -> Dash:
    """The web app. `bind_host` is the address it will listen on: login is required unless
    it is the loopback address (and NETLENS_AUTH is not "required", and no proxy hops)."""
    settings = settings or Settings()
    db = db or Database.from_settings(settings)
    auth_required = single_user.login_reason(settings, bind_host) is not None
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        external_stylesheets=[],
        suppress_callback_exceptions=True,
        title="NetLens",
        update_title=None,
        serve_locally=True,
        # *.lazy.js assets (the 3-D plotly.js traces) load only when a page plots one
        assets_ignore=r"\.lazy\.js$",
    )
    context.install(app.server, context.WebContext(settings, db, RunData(db), auth_required))
    app.server.debug = settings.debug
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.server.wsgi_app = ProxyFix(
            app.server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    app.layout = layout
    if not auth_required:  # before the guard: Host and proxy checks of single-user mode
        single_user.install(app.server, settings)
    upload_route.install(app)  # before the guard: it sets the request body limits
    auth.install(app)
    api.install(app)
    exports.install(app)
    csv_export.install(app)
    page_scripts.install(app)
    _install_error_pages(app)
    return app


def _install_error_pages(app: Dash) -> None:
    @app.server.errorhandler(500)
    def server_error(_exc):  # pragma: no cover - exercised by the browser tests
        return (
            "<h3>NetLens hit an internal error</h3><p>The problem was logged on the "
            "server. Go back to the <a href='/'>home page</a>.</p>"
        ), 500
