"""A sweep's page: its grid, its runs' progress, the parallel coordinates of all its runs (the
brush picks runs to compare), and the comparison of its runs (all of them up to 8, else the 8
best so far)."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from netlens.storage import groups
from netlens.storage import runs as run_store
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.views import overview
from netlens.webapp.views.common import page_error, status_badge

dash.register_page(
    __name__, path_template="/groups/<group_id>", title="Sweep · NetLens", access="member"
)

HEADER, REFRESH, GROUP_ID = "group-header", "group-refresh", "group-id"


def chosen_for_comparison(infos: list[run_store.RunInfo], max_runs: int) -> list[run_store.RunInfo]:
    """All runs when they fit, else the best by accuracy (runs without one last, by id)."""
    if len(infos) <= max_runs:
        return infos
    return sorted(overview.best_first(infos)[:max_runs], key=lambda i: i.id)


def header(group: groups.GroupInfo) -> html.Div:
    grid = " × ".join(
        f"{axis['field']} ({len(axis['values'])}: {', '.join(str(v) for v in axis['values'])})"
        for axis in group.axes
    )
    done = sum(
        n
        for state, n in group.counts.items()
        if state in ("succeeded", "failed", "cancelled", "diverged")
    )
    return html.Div(
        [
            html.H3(f"Sweep #{group.id} {group.name}".strip()),
            html.P(
                [
                    f"{group.size} runs over ",
                    html.Strong(grid or "no axes"),
                    f" · created {group.created_at:%Y-%m-%d %H:%M}",
                ],
                className="mb-1",
            ),
            html.Div(
                [
                    html.Span([status_badge(state), f"{n} "], className="me-2")
                    for state, n in sorted(group.counts.items())
                    if n
                ],
                className="mb-1",
            ),
            dbc.Progress(
                value=100 * done / max(1, group.size),
                label=f"{done}/{group.size} finished",
                className="mb-2",
                style={"height": "18px"},
                striped=not group.is_finished,
                animated=not group.is_finished,
            ),
        ]
    )


def layout(group_id: str | None = None, **query):
    web = context.current()
    try:
        group = groups.get_group(web.db, int(group_id or ""))
    except (ValueError, groups.GroupNotFound):
        return page_error("No such sweep", f"There is no sweep {group_id!r}.")
    infos = [web.data.info(i) for i in group.run_ids]
    compare = overview.compare_page()
    chosen = chosen_for_comparison(infos, compare.MAX_RUNS)
    parts = [
        dcc.Store(id=GROUP_ID, data=group.id),
        dcc.Interval(id=REFRESH, interval=3000, disabled=group.is_finished),
        html.Div(header(group), id=HEADER),
    ]
    if not group.is_finished:
        parts.append(
            dbc.Alert(
                "Runs are still training: the figures below show what was "
                "recorded when the page opened; reload for newer epochs.",
                color="info",
                className="py-2",
            )
        )
    parts.append(
        dbc.Row(
            [
                dbc.Col(html.H5("Every run: hyperparameters against final metrics")),
                dbc.Col(
                    dcc.Link("open in Many runs →", href=f"/explore?group={group.id}"), width="auto"
                ),
            ]
        )
    )
    parts.append(overview.overview_panel(f"group-{group.id}", infos, height=440))
    if len(chosen) >= 2:
        title = (
            f"Comparing all {len(chosen)} runs"
            if len(chosen) == len(infos)
            else f"Comparing the {len(chosen)} best of {len(infos)} runs by accuracy "
            "(brush above to choose others)"
        )
        parts.append(html.Hr())
        parts.append(compare.comparison(chosen, title=title, query=query))
    elif infos:
        parts.append(
            html.P(["One run: ", dcc.Link(f"#{infos[0].id}", href=f"/runs/{infos[0].id}")])
        )
    return html.Div(parts)


@callback(
    Output(HEADER, "children"),
    Output(REFRESH, "disabled"),
    Input(REFRESH, "n_intervals"),
    State(GROUP_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def refresh(_n, group_id):
    group = groups.get_group(context.current().db, group_id)
    return header(group), group.is_finished
