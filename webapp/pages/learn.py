"""Learn: the list of lessons (literate tutorials on real runs, for newcomers)."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html

from netlens.webapp.learn.lessons import LESSONS

dash.register_page(__name__, path="/learn", title="Learn · NetLens", access="member", graphs=False)


def layout(**_kwargs):
    cards = [
        dbc.Col(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(f"Lesson {n}", className="small text-muted"),
                        # a full load (html.A): this page ships no plotly.js (graphs=False)
                        html.H5(
                            html.A(
                                lesson.title,
                                href=f"/learn/{lesson.slug}",
                                id=f"learn-open-{lesson.slug}",
                            )
                        ),
                        html.P(lesson.question, className="small"),
                    ]
                ),
                className="h-100",
            ),
            md=4,
            className="mb-3",
        )
        for n, lesson in enumerate(LESSONS.values(), start=1)
    ]
    return html.Div(
        [
            html.H3("Learn how a network learns"),
            html.P(
                "Short lessons on real runs: each trains a small network in seconds, shows it "
                "live, and every sentence about the run is computed from what it recorded.",
                className="lead",
                style={"maxWidth": "55rem"},
            ),
            dbc.Row(cards),
        ],
        className="learn-index",
    )
