"""The page for addresses NetLens does not have."""

import dash
from dash import html

from netlens.webapp.views.common import page_error

dash.register_page(__name__, path="/404", title="Not found", access="member", graphs=False)


def layout(**_kwargs):
    return html.Div(
        page_error("This page does not exist", "Check the address, or pick a run from the list.")
    )
