"""The Dash app factory: multi-page, Bootstrap CSS shipped locally, one shared context."""

from __future__ import annotations

from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html

from storage.db import Database
from storage.settings import Settings
from webapp import context
from webapp.data import RunData

HERE = Path(__file__).parent


def navbar() -> dbc.Navbar:
    links = [dbc.NavItem(dbc.NavLink(text, href=href, active="exact"))
             for text, href in (("Home", "/"), ("New experiment", "/new"), ("Runs", "/runs"),
                                ("Many runs", "/explore"))]
    return dbc.Navbar(dbc.Container([
        dbc.NavbarBrand([html.Span("◉ ", className="text-info"), "NetLens"], href="/"),
        dbc.Nav(links, navbar=True, className="me-auto"),
    ], fluid=True), color="dark", dark=True, className="mb-3")


def create_app(settings: Settings | None = None, db: Database | None = None) -> Dash:
    settings = settings or Settings()
    db = db or Database.from_settings(settings)
    app = Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"),
               assets_folder=str(HERE / "assets"), external_stylesheets=[],
               suppress_callback_exceptions=True, title="NetLens", update_title=None,
               serve_locally=True)
    context.install(app.server, context.WebContext(settings, db, RunData(db)))
    app.layout = html.Div([
        dcc.Location(id="url"),
        navbar(),
        dbc.Container(dash.page_container, fluid=True, className="pb-5"),
    ])
    _install_error_pages(app)
    return app


def _install_error_pages(app: Dash) -> None:
    @app.server.errorhandler(500)
    def server_error(_exc):  # pragma: no cover - exercised by the browser tests
        return ("<h3>NetLens hit an internal error</h3><p>The problem was logged on the "
                "server. Go back to the <a href='/'>home page</a>.</p>"), 500
