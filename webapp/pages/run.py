"""A run: status, live progress, spec, notes, cancel/retry/export, and every view on one slider."""

from __future__ import annotations

import json

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, callback, dcc, html, no_update

from netlens.storage import jobs, runs
from netlens.storage.catalog import MODEL_KINDS, TRAINED_ELSEWHERE
from netlens.storage.limits import LimitExceeded
from netlens.webapp import context, url_state
from netlens.webapp.authz import on_click, rule
from netlens.webapp.views import run as views
from netlens.webapp.views import run_url
from netlens.webapp.views.common import (
    add_player,
    epoch_bar,
    kept_marks,
    run_of_page,
    run_summary_line,
    status_badge,
    thinned_note,
)
from netlens.webapp.views.run import ids

dash.register_page(__name__, path_template="/runs/<run_id>", title="Run · NetLens", access="member")


def layout(run_id: str | None = None, **query):
    """The page as its URL asks (webapp/views/run_url.py: tab, epoch, layer, neuron, input,
    the curves' smooth, logy and x)."""
    info, missing = run_of_page(run_id)
    if missing is not None:
        return missing
    time_note = views.wall_time_note(info)
    epochs = context.current().data.epochs(info)
    view = run_url.parse(info, epochs, query, time_note is None)
    last = max(0, len(epochs) - 1)  # a thinned run's slider: its kept epochs only
    return html.Div(
        [
            url_state.location(ids.URL),
            dcc.Store(id=ids.RUN_ID, data=info.id),
            dcc.Interval(id=ids.REFRESH, interval=1500, disabled=info.is_finished),
            dcc.Interval(id=ids.PLAY_TICK, interval=400, disabled=True),
            html.Div(id=ids.HEADER, children=header(info)),
            html.Div(id=ids.ACTION_FEEDBACK),
            thinned_note(info, epochs),
            spec_and_notes(info),
            epoch_bar(
                ids.PLAY,
                ids.SLIDER,
                ids.EPOCH_LABEL,
                last,
                tooltip={"always_visible": False},
                value=min(view.index, last),
                beside=url_state.copy_link(ids.COPY_LINK),
                marks=kept_marks(info, epochs),
            ),
            views.tabs(info, view.choices, time_note),
        ]
    )


def header(info: runs.RunInfo) -> html.Div:
    done = (info.last_epoch or 0) / max(1, info.epochs_total)
    parts = [
        html.H3([f"#{info.id} {info.name or 'unnamed run'} ", status_badge(info.status)]),
        html.P(run_summary_line(info), className="text-muted mb-1"),
        dbc.Progress(
            value=100 * done,
            label=f"{info.last_epoch or 0}/{info.epochs_total}",
            striped=info.status == "running",
            animated=info.status == "running",
            className="mb-2",
            style={"height": "18px"},
        ),
    ]
    if info.error:
        first, _, rest = info.error.partition("\n\n")
        parts.append(
            dbc.Alert(
                [html.Strong(f"{info.status}: "), first]
                + (
                    [html.Details([html.Summary("details"), html.Pre(rest, className="small")])]
                    if rest
                    else []
                ),
                color="danger" if info.status != "cancelled" else "warning",
            )
        )
    parts.append(actions_bar(info))
    return html.Div(parts)


NOT_YOURS = "only the run's owner or an admin can change it"


def is_trainable(info: runs.RunInfo) -> bool:
    """Whether NetLens can queue, cancel or retry the run: not an nl.Recorder run (model kind
    flax), whose model and loop live in the user's script."""
    kind = info.spec.get("model", {}).get("kind")
    return kind not in MODEL_KINDS or MODEL_KINDS[kind].trainable


def may_change(info: runs.RunInfo) -> bool:
    """Whether this request's user may cancel, retry or edit the run: the guard enforces it
    (rule "owner"); the page only disables what would be refused."""
    actor = flask.g.get("netlens_actor") if flask.has_app_context() else None
    return actor is not None and (actor.is_admin or info.owner_id == actor.id)


CANCELLABLE, RETRYABLE = ("queued", "running"), ("failed", "cancelled")


def _state_hints(status: str) -> tuple[str | None, str | None]:
    """Why Cancel / Retry do not apply to a run in this state (None where they do)."""
    cancel = (
        None if status in CANCELLABLE else f"the run has finished ({status}): nothing to cancel"
    )
    if status in RETRYABLE:
        retry = None
    elif status in CANCELLABLE:
        retry = f"the run is {status}: retry it once it has failed or been cancelled"
    else:
        retry = f"the run {status}: only a failed or cancelled run can be retried"
    return cancel, retry


def action_button(label: str, button_id: str, color: str, hint: str | None, **kw) -> dbc.Button:
    """A live button, or a muted outline one with the reason as its tooltip.

    A disabled solid button keeps its bright colour and looks clickable (a finished run's
    yellow Cancel did); Bootstrap also turns off pointer events on disabled buttons, which
    hides their title, so they are switched back on here (clicks stay off: `disabled`).
    """
    if hint is None:
        return dbc.Button(
            label, id=button_id, color=color, size="sm", className="me-2", disabled=False, **kw
        )
    return dbc.Button(
        label,
        id=button_id,
        color="secondary",
        outline=True,
        size="sm",
        className="me-2 opacity-50",
        disabled=True,
        title=hint,
        style={"pointerEvents": "auto", "cursor": "not-allowed"},
    )


def actions_bar(info: runs.RunInfo) -> html.Div:
    """Cancel and Retry live only when their action applies to the run's current state; else
    muted, with why in the tooltip (the server refuses them anyway: storage.jobs)."""
    cancel_hint, retry_hint = _state_hints(info.status)
    if not is_trainable(info):  # the server refuses both with 409 (storage.jobs): say why here
        cancel_hint = f"{TRAINED_ELSEWHERE}, nor stop it: stop the script that records it"
        retry_hint = f"{TRAINED_ELSEWHERE}: run your training script again"
    elif not may_change(info):
        cancel_hint, retry_hint = cancel_hint or NOT_YOURS, retry_hint or NOT_YOURS
    return html.Div(
        [
            action_button("Cancel", ids.CANCEL, "warning", cancel_hint),
            action_button("Retry (continue)", ids.RETRY, "primary", retry_hint, outline=True),
            action_button(
                "Retry from scratch", ids.RETRY_SCRATCH, "secondary", retry_hint, outline=True
            ),
            export_link(info),
            metrics_csv_link(info),
            dbc.Button(
                "Signatures: clusters, flow, unseen classes →",
                id="run-signatures-link",
                href=f"/runs/{info.id}/signatures",
                color="info",
                size="sm",
                outline=True,
                disabled=info.epochs_recorded == 0,
            ),
        ],
        className="mb-2",
    )


def export_link(info: runs.RunInfo) -> html.A:
    """A plain link to the streamed export (webapp/exports.py): the file never travels
    through a callback, and the browser downloads it as it comes."""
    return file_link(info, "Export .npz", ids.EXPORT, "export.npz", f"run{info.id}.npz")


def metrics_csv_link(info: runs.RunInfo) -> html.A:
    """A plain link to the run's metrics as CSV (webapp/csv_export.py)."""
    name = f"run{info.id}-metrics.csv"
    return file_link(info, "Metrics CSV", "run-metrics-csv", "metrics.csv", name)


def file_link(info: runs.RunInfo, label: str, link_id: str, path: str, name: str) -> html.A:
    """A download link under /runs/<id>/, muted while the run has recorded nothing."""
    if info.epochs_recorded == 0:
        return html.A(
            label,
            id=link_id,
            role="button",
            **{"aria-disabled": "true"},
            className="btn btn-sm btn-outline-dark me-2 disabled",
        )
    return html.A(
        label,
        id=link_id,
        href=f"/runs/{info.id}/{path}",
        download=name,
        role="button",
        className="btn btn-sm btn-outline-dark me-2",
    )


def spec_and_notes(info: runs.RunInfo) -> dbc.Accordion:
    edit = dbc.Row(
        [
            dbc.Col(
                [dbc.Label("Name"), dbc.Input(id=ids.NAME, value=info.name, maxlength=200)], md=3
            ),
            dbc.Col(
                [
                    dbc.Label("Tags (comma-separated)"),
                    dbc.Input(id=ids.TAGS, value=", ".join(info.tags)),
                ],
                md=3,
            ),
            dbc.Col(
                [dbc.Label("Notes"), dbc.Textarea(id=ids.NOTES, value=info.notes, rows=2)], md=4
            ),
            dbc.Col(
                [
                    dbc.Button(
                        "Save",
                        id=ids.SAVE,
                        color="primary",
                        className="mt-4",
                        disabled=not may_change(info),
                        title=None if may_change(info) else NOT_YOURS,
                    ),
                    html.Span(id=ids.SAVE_FEEDBACK, className="ms-2 small"),
                ],
                md=2,
            ),
        ]
    )
    spec = html.Pre(json.dumps(info.spec, indent=1), className="spec-json")
    return dbc.Accordion(
        [
            dbc.AccordionItem(edit, title="Name, tags and notes"),
            dbc.AccordionItem(spec, title="Experiment spec"),
        ],
        start_collapsed=True,
        className="mb-2",
    )


@callback(
    Output(ids.HEADER, "children"),
    Output(ids.REFRESH, "disabled"),
    Output(ids.SLIDER, "max"),
    Output(ids.SLIDER, "value", allow_duplicate=True),
    Input(ids.REFRESH, "n_intervals"),
    State(ids.RUN_ID, "data"),
    State(ids.SLIDER, "value"),
    State(ids.SLIDER, "max"),
    prevent_initial_call=True,
)
@rule("member")
def refresh(_n, run_id, value, old_max):
    """Live updates: new epochs extend the slider; a slider left at the end follows them."""
    web = context.current()
    info = runs.get_run(web.db, run_id)
    new_max = max(0, len(web.data.epochs(info)) - 1)
    follow = value is None or value >= (old_max or 0)
    return header(info), info.is_finished, new_max, new_max if follow else no_update


# Play: about 100 frames from the first epoch to the last.
toggle_play, advance = add_player(ids.PLAY, ids.PLAY_TICK, ids.SLIDER, frames=100)
copy_url = url_state.add_copy_link(ids.COPY_LINK, ids.URL)


@callback(
    Output(ids.ACTION_FEEDBACK, "children"),
    Input(ids.CANCEL, "n_clicks"),
    Input(ids.RETRY, "n_clicks"),
    Input(ids.RETRY_SCRATCH, "n_clicks"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@on_click
@rule("owner", run=(ids.RUN_ID, "data"))
def run_action(_c, _r, _s, run_id):
    from netlens.dispatch.submission import retry_run

    web, action = context.current(), dash.ctx.triggered_id
    try:  # the guard checked that the user owns the run (or is an admin)
        if action == ids.CANCEL:
            message = f"Run {run_id}: {jobs.request_cancel(web.db, run_id)}."
        else:
            attempt = retry_run(web.db, web.settings, run_id, action == ids.RETRY_SCRATCH)
            message = f"Run {run_id}: attempt {attempt} queued."
    except runs.RunNotFound:
        message = f"Run {run_id} was trained outside the queue (netlens train); it has no job."
    except (jobs.JobStateError, LimitExceeded) as exc:  # refused: nothing changed
        refusal = f"Refused: {str(exc).rstrip('.')}. Nothing was changed."
        return dbc.Alert(refusal, color="warning", dismissable=True, duration=8000)
    return dbc.Alert(message, color="info", dismissable=True, duration=8000)


@callback(
    Output(ids.SAVE_FEEDBACK, "children"),
    Input(ids.SAVE, "n_clicks"),
    State(ids.RUN_ID, "data"),
    State(ids.NAME, "value"),
    State(ids.TAGS, "value"),
    State(ids.NOTES, "value"),
    prevent_initial_call=True,
)
@on_click
@rule("owner", run=(ids.RUN_ID, "data"))
def save_fields(_n, run_id, name, tags, notes):
    tag_list = [t.strip() for t in (tags or "").split(",") if t.strip()]
    problems = [f"tags: {t!r} is longer than 50 characters" for t in tag_list if len(t) > 50]
    if len(name or "") > 200:
        problems.append("name: longer than 200 characters")
    if problems:
        return html.Span("; ".join(problems), className="text-danger")
    runs.update_run_fields(
        context.current().db, run_id, name=name or "", tags=tag_list, notes=notes or ""
    )
    return html.Span("saved", className="text-success")
