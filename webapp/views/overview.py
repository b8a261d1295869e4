"""The many-runs panel: parallel coordinates of runs and the runs its brush selects, with a
link to compare them. Any page embeds it with `overview_panel(prefix, rows)`; its callbacks
use pattern-matching ids, so several pages (or several panels) share them.

The figure is a Plotly parcoords figure (webapp/figures/parcoords.py) kept in a store and drawn
in SVG by webapp/assets/netlens-parcoords.js, not by plotly.js: its WebGL parcoords cost 1.2 s
and more per page in a browser without a GPU (docs/performance.md, "Many runs"). The drawing
puts its brushes into the BRUSH store as Plotly's restyleData would; the selection callback
reads them against the figure's dimensions.

It lives outside webapp/pages/ on purpose: Dash imports each page as `pages.<name>`, and a
page imported again as `webapp.pages.<name>` registers its path a second time, after which
Dash refuses to render any page ("duplicate paths")."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import (
    MATCH,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
)
from dash.exceptions import PreventUpdate

from netlens.storage import runs as run_store
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.figures.parcoords import (
    MAX_PARCOORDS_RUNS,
    apply_restyle,
    build_parallel_coordinates,
    dimensions_of,
    selected_runs,
)
from netlens.webapp.views.common import status_badge

PLOT = "overview-plot"  # the element the drawing goes into
FIGURE = "overview-figure"  # store: the parcoords figure as Plotly JSON
BRUSH = "overview-brush"  # store: the brushes, as restyleData ([{"dimensions[i]...": ...}, [0]])
DRAWN = "overview-drawn"  # store: what the drawing callback returned (the axes drawn)
RUN_IDS = "overview-run-ids"
SELECTION = "overview-selection"
TABLE_ROWS = 25


def panel_id(kind: str, prefix: str) -> dict[str, str]:
    """The pattern-matching id of one part (PLOT, FIGURE, BRUSH, ...) of panel `prefix`."""
    return {"type": kind, "panel": prefix}


def compare_page():
    """The /compare page module as Dash imported it (its MAX_RUNS and parse_ids); see the
    module docstring for why not `import webapp.pages.compare`."""
    for page in dash.page_registry.values():
        if page["path"] == "/compare":
            return sys.modules[page["module"]]
    raise LookupError("the /compare page is not registered: create the app first")


def compare_href(run_ids: Sequence[int]) -> str:
    ids = compare_page().parse_ids(",".join(str(i) for i in run_ids))  # refuses > MAX_RUNS
    return "/compare?runs=" + ",".join(str(i) for i in ids)


def overview_panel(
    prefix: str, rows: Sequence[Any], *, more_matching: bool = False, height: int = 520
) -> html.Div:
    """Parallel coordinates of `rows` (storage RunOverview or RunInfo, at most
    MAX_PARCOORDS_RUNS are drawn) and, under it, the runs the brush selects. `prefix` makes
    the component ids unique on a page; `more_matching` says the rows are a truncated list."""
    rows = list(rows)
    shown = rows[:MAX_PARCOORDS_RUNS]
    figure = build_parallel_coordinates(rows, more_matching=more_matching, height=height)
    if not any(t.type == "parcoords" for t in figure.data):  # too few runs: say why
        message = " ".join(a.text for a in figure.layout.annotations)
        return html.Div(
            html.P(message, className="text-muted overview-empty"), className="overview-panel"
        )
    meta = figure.layout.meta
    return html.Div(
        [
            html.Div(
                [
                    html.Div(
                        [
                            html.Strong(meta["heading"]),
                            *[
                                html.Div(note, className="small text-muted")
                                for note in meta["notes"]
                            ],
                        ]
                    ),
                    _download_buttons(),
                ],
                className="overview-caption d-flex justify-content-between align-items-start",
            ),
            html.Div(
                id=panel_id(PLOT, prefix),
                className="overview-graph",
                style={"height": f"{height - 80}px"},
            ),
            dcc.Store(id=panel_id(FIGURE, prefix), data=figure.to_plotly_json()),
            dcc.Store(id=panel_id(BRUSH, prefix)),
            dcc.Store(id=panel_id(DRAWN, prefix)),
            dcc.Store(id=panel_id(RUN_IDS, prefix), data=[r.id for r in shown]),
            html.Div(
                selection_view(shown, len(shown)),
                id=panel_id(SELECTION, prefix),
                className="overview-selection mt-2",
            ),
        ],
        className="overview-panel",
    )


def _download_buttons() -> html.Div:
    """The drawing as a file at publication size (1200 x 700; PNG at twice the pixels), with
    its heading as the title: webapp/assets/netlens-parcoords.js does it in the browser (no
    callback: the drawing, with the brushes as they are, is only there)."""
    return html.Div(
        [
            html.Button(
                label,
                type="button",
                className="btn btn-outline-secondary btn-sm nl-pc-download",
                title=f"Download {label} (publication size)",
                **{"data-format": label.lower()},
            )
            for label in ("PNG", "SVG")
        ],
        className="btn-group btn-group-sm overview-downloads",
        role="group",
    )


def _accuracy(row: Any) -> float | None:
    """Final validation accuracy, or train accuracy for a run without a validation split."""
    for key in ("val_accuracy", "train_accuracy"):
        value = row.final_metrics.get(key)
        if value is not None and math.isfinite(value):
            return value
    return None


def best_first(rows: Sequence[Any]) -> list[Any]:
    """By final accuracy (validation, else train), highest first; runs without one last."""
    return sorted(rows, key=lambda r: (_accuracy(r) is None, -(_accuracy(r) or 0.0), r.id))


def _table(rows: list[Any]) -> dbc.Table:
    header = html.Thead(
        html.Tr([html.Th("run"), html.Th("name"), html.Th("status"), html.Th("accuracy")])
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(dcc.Link(f"#{r.id}", href=f"/runs/{r.id}")),
                    html.Td(r.name),
                    html.Td(status_badge(r.status)),
                    html.Td("–" if _accuracy(r) is None else f"{_accuracy(r):.3f}"),
                ]
            )
            for r in rows
        ]
    )
    return dbc.Table(
        [header, body], bordered=False, hover=True, size="sm", className="overview-table mb-1"
    )


def _compare_controls(ranked: list[Any]) -> list:
    max_runs = compare_page().MAX_RUNS
    n = len(ranked)
    is_ok = 2 <= n <= max_runs
    controls: list = [
        dbc.Button(
            "Compare selected",
            href=compare_href([r.id for r in ranked]) if is_ok else None,
            disabled=not is_ok,
            color="primary",
            size="sm",
            className="overview-compare me-2",
        )
    ]
    if n < 2:
        controls.append(
            html.Span(f"select 2 to {max_runs} runs to compare", className="text-muted small")
        )
    elif n > max_runs:
        controls.append(
            html.Span(
                f"select at most {max_runs} — narrow the brush", className="text-muted small me-2"
            )
        )
        best = [r for r in ranked if _accuracy(r) is not None][:max_runs]
        if len(best) >= 2:
            controls.append(
                dbc.Button(
                    f"Compare the {len(best)} best by accuracy",
                    href=compare_href([r.id for r in best]),
                    outline=True,
                    color="primary",
                    size="sm",
                    className="overview-best",
                )
            )
    return controls


def selection_view(selected: Sequence[Any], total: int) -> list:
    """The count, the compare links and the best selected runs as a small table."""
    ranked = best_first(selected)
    n = len(ranked)
    if n == total:
        heading = (
            f"All {total} runs (no brush): drag along an axis to select runs"
            if total
            else "No runs"
        )
    else:
        heading = f"{n} run{'s' * (n != 1)} selected by the brush (of {total})"
    out: list = [
        html.Div(
            [html.Strong(heading, className="overview-count me-3"), *_compare_controls(ranked)],
            className="mb-2",
        )
    ]
    if ranked:
        out.append(_table(ranked[:TABLE_ROWS]))
    if n > TABLE_ROWS:
        out.append(
            html.P(
                f"… and {n - TABLE_ROWS} more (the table lists the best {TABLE_ROWS} by accuracy)",
                className="text-muted small",
            )
        )
    return out


clientside_callback(
    ClientsideFunction("netlens", "drawParcoords"),
    Output(panel_id(DRAWN, MATCH), "data"),
    Input(panel_id(FIGURE, MATCH), "data"),
    State(panel_id(PLOT, MATCH), "id"),
    State(panel_id(BRUSH, MATCH), "id"),
)


@callback(
    Output(panel_id(SELECTION, MATCH), "children"),
    Input(panel_id(BRUSH, MATCH), "data"),
    State(panel_id(FIGURE, MATCH), "data"),
    State(panel_id(RUN_IDS, MATCH), "data"),
    prevent_initial_call=True,
)
@rule("member")
def update_selection(brushes, figure, run_ids):
    """A brush changed: the runs inside every constraint range, read back in one query.
    `brushes` holds every axis's ranges, in restyleData's form (netlens-parcoords.js)."""
    run_ids = run_ids or []
    try:
        chosen = selected_runs(apply_restyle(dimensions_of(figure), brushes), run_ids)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        raise PreventUpdate from None  # brushes or figure not in Plotly's form: a crafted call
    rows = (
        run_store.overview_rows(context.current().db, run_ids=chosen, limit=len(chosen))
        if chosen
        else []
    )
    return selection_view(rows, len(run_ids))
