"""What the pages share: small UI pieces, the run a page's URL names, the guard that turns a
failing view into a readable message, the active-tab check, and the player (Play and the
epoch slider)."""

from __future__ import annotations

import functools
import logging
import re

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from netlens.storage import runs as run_store
from netlens.storage.runs import RunInfo
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.figures.common import empty_figure
from netlens.webapp.figures.curves import SMOOTHING_MAX, CurveOptions

log = logging.getLogger("netlens.web")

STATUS_COLORS = {
    "queued": "secondary",
    "running": "primary",
    "succeeded": "success",
    "failed": "danger",
    "cancelled": "warning",
    "diverged": "danger",
}


def status_badge(status: str) -> dbc.Badge:
    return dbc.Badge(status, color=STATUS_COLORS.get(status, "secondary"), className="me-1")


# Downloads from a graph's modebar: publication size (a full-width figure of a paper, PNG at
# twice the pixels), not the on-screen size. webapp/assets/netlens-save.js replaces plotly's
# camera button with "PNG" and "SVG" buttons that use these options and give an untitled
# figure a title in the file; without that script the camera button still uses them.
EXPORT_WIDTH, EXPORT_HEIGHT, EXPORT_SCALE = 1200, 700, 2


def export_name(graph_id) -> str:
    """The download's file name (and its title when the figure has none) from a graph's id:
    "fig-sep-layers" -> "sep-layers"; a pattern-matching id's values joined."""
    if isinstance(graph_id, dict):
        graph_id = "-".join(str(v) for _, v in sorted(graph_id.items()))
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", str(graph_id)).strip("-")
    return re.sub(r"^(fig|graph)-", "", name) or "figure"


def graph_config(
    name: str, title: str | None = None, responsive: bool = True, height: int | None = EXPORT_HEIGHT
) -> dict:
    """dcc.Graph's config: no plotly logo, downloads at publication size named `name`;
    `title` is what the download's title says when the figure has none; height None: the
    figure's own (one that grows with its content)."""
    return {
        "displaylogo": False,
        "responsive": responsive,
        "toImageButtonOptions": {
            "format": "png",
            "width": EXPORT_WIDTH,
            "height": height,
            "scale": EXPORT_SCALE,
            "filename": name,
            # not plotly's: netlens-save.js reads it
            "title": title or name.replace("-", " ").replace("_", " ").capitalize(),
        },
    }


def graph(graph_id, height: int = 380, title: str | None = None) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        config=graph_config(export_name(graph_id), title),
        style={"height": f"{height}px"},
    )


def metric_text(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def run_summary_line(info: RunInfo) -> str:
    acc = info.final_metrics.get("val_accuracy") or info.final_metrics.get("train_accuracy")
    # an nl.Recorder run's optimizer is "external" like its dataset: the user's loop's, unseen
    optimizer = "own training loop" if info.optimizer == "external" else info.optimizer
    return (
        f"{info.dataset} · {info.architecture} · {optimizer} · epoch "
        f"{info.last_epoch if info.last_epoch is not None else 0}/{info.epochs_total}"
        + (f" · accuracy {acc:.3f}" if acc is not None else "")
    )


def page_error(title: str, message: str) -> html.Div:
    """What a user sees instead of a traceback."""
    return dbc.Alert(
        [
            html.H4(title, className="alert-heading"),
            html.P(message),
            dcc.Link("Back to the runs", href="/runs"),
        ],
        color="warning",
        className="mt-4",
    )


def run_of_page(run_id: str | None) -> tuple[RunInfo | None, dbc.Alert | None]:
    """The run a page's URL names, or (None, what the page shows instead) when there is none."""
    try:
        return run_store.get_run(context.current().db, int(run_id or "")), None
    except (ValueError, run_store.RunNotFound):
        return None, page_error(
            "No such run", f"There is no run {run_id!r}. It may have been deleted."
        )


def labelled_select(
    select_id: str, options: list[tuple[str, str]], value: str | None, label: str
) -> dbc.Col:
    """A small select under its label; options are (value, text) pairs."""
    return dbc.Col(
        [
            dbc.Label(label, className="small mb-0"),
            dbc.Select(
                id=select_id,
                value=value,
                size="sm",
                options=[{"label": text, "value": v} for v, text in options],
            ),
        ],
        width="auto",
    )


def curve_controls(
    ids: tuple[str, str, str], options: CurveOptions, time_note: str | None, *extra
) -> dbc.Row:
    """The curves' controls of the run and compare pages, (smoothing, log y, x) ids: an EMA
    smoothing slider as TensorBoard's (0 = off), a log-y switch, x by epoch or wall time
    (disabled with `time_note` saying why when the runs recorded no times); `extra`: more
    columns (the compare page's group by)."""
    smooth_id, logy_id, x_id = ids
    x_options = [
        {"label": "epoch", "value": "epoch"},
        {"label": "wall time", "value": "time", "disabled": time_note is not None},
    ]
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("smoothing", className="small mb-0", html_for=smooth_id),
                    dcc.Slider(
                        id=smooth_id,
                        min=0,
                        max=SMOOTHING_MAX,
                        step=0.01,
                        value=options.smoothing,
                        marks={0: "0", 0.5: "0.5", SMOOTHING_MAX: str(SMOOTHING_MAX)},
                        tooltip={"placement": "bottom", "always_visible": False},
                        className="curve-smoothing",
                    ),
                ],
                md=3,
            ),
            dbc.Col(
                dbc.Switch(id=logy_id, label="log y", value=options.log_y, className="mb-0"),
                width="auto",
                className="pt-3",
            ),
            dbc.Col(
                [
                    dbc.Label("x axis", className="small mb-0 me-2"),
                    dbc.RadioItems(id=x_id, inline=True, value=options.x, options=x_options),
                    html.Div(time_note, className="small text-muted") if time_note else None,
                ],
                width="auto",
            ),
            *extra,
        ],
        className="mb-1 g-3 align-items-start",
    )


# ---- views -------------------------------------------------------------------------------


def friendly(n_figures: int = 1, children_at: tuple[int, ...] = ()):
    """A view that fails shows what went wrong in its figures (and the log), not a stale graph.
    Outputs at `children_at` are component children: they get the message as text."""

    def wrap(view):
        @functools.wraps(view)
        def guarded(*args):
            try:
                return view(*args)
            except PreventUpdate:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure becomes a readable message
                log.exception("view %s failed", view.__name__)
                text = f"This view could not be drawn: {type(exc).__name__}: {exc}"
                outputs = [
                    html.Div(text, className="text-danger small")
                    if i in children_at
                    else empty_figure(text)
                    for i in range(n_figures)
                ]
                return outputs[0] if n_figures == 1 else tuple(outputs)

        return guarded

    return wrap


def active(tab: str, want: str) -> None:
    """A view computes only while its tab is the active one: otherwise no update."""
    if tab != want:
        raise PreventUpdate


# ---- the player: Play and the epoch slider -------------------------------------------------


def epoch_bar(
    play_id: str,
    slider_id: str,
    label_id: str,
    last: int,
    *,
    updatemode: str = "drag",
    tooltip: dict | None = None,
    value: int | None = None,
    beside: html.Span | None = None,
    marks: dict[int, str] | None = None,
) -> html.Div:
    """Play, the epoch slider (0 to `last`, standing at `value`, else at `last`), the epoch's
    label and `beside` it (the copy-link button). A page adds the dcc.Interval `tick` beside
    it and the callbacks with `add_player`."""
    extra = {} if tooltip is None else {"tooltip": tooltip}
    if marks is not None:  # a thinned run: the slider's box would show a position, not an epoch
        extra["allow_direct_input"] = False
    return html.Div(
        dbc.Row(
            [
                dbc.Col(dbc.Button("▶ Play", id=play_id, size="sm", color="success"), width="auto"),
                dbc.Col(
                    dcc.Slider(
                        id=slider_id,
                        min=0,
                        max=last,
                        step=1,
                        value=last if value is None else value,
                        marks=marks,
                        updatemode=updatemode,
                        **extra,
                    ),
                    className="pt-2",
                ),
                dbc.Col(
                    html.Strong(id=label_id, children="epoch –"), width="auto", className="pt-1"
                ),
            ]
            + ([dbc.Col(beside, width="auto")] if beside is not None else []),
            className="g-2 align-items-center",
        ),
        className="epoch-bar",
    )


MAX_MARKS = 12


def kept_marks(info, epochs) -> dict[int, str] | None:
    """A thinned run's slider marks: its kept epochs' numbers (at most MAX_MARKS, spread
    over the slider, first and last included), so that the gaps between kept epochs show;
    None for a run that was never thinned (the slider's label says the epoch)."""
    if getattr(info, "thinned_at", None) is None or not len(epochs):
        return None
    n = len(epochs)
    picks = sorted({round(i * (n - 1) / max(1, MAX_MARKS - 1)) for i in range(MAX_MARKS)})
    return {int(i): str(int(epochs[i])) for i in picks if i < n}


def _epoch_list(epochs, shown: int = 8) -> str:
    values = [int(e) for e in epochs]
    if len(values) <= shown:
        return ", ".join(map(str, values))
    head = ", ".join(map(str, values[: shown - 2]))
    return f"{head}, …, {values[-2]}, {values[-1]}"


def thinned_note(info, epochs) -> dbc.Alert | None:
    """What a thinned run kept: when, by which policy, and which epochs (docs/admin.md)."""
    thinning = getattr(info, "thinning", None)
    if getattr(info, "thinned_at", None) is None or not thinning:
        return None
    policy = thinning.get("policy") or {}
    best = thinning.get("best_epoch")
    return dbc.Alert(
        [
            html.Strong("Thinned "),
            f"on {info.thinned_at:%Y-%m-%d %H:%M} UTC by the retention policy (every "
            f"{policy.get('every', '?')}th epoch, {policy.get('log_points', '?')} log-spaced, "
            f"the first, the best{'' if best is None else f' ({best})'} and the last): "
            f"parameters, signatures and analyses are kept at {len(epochs):,} of "
            f"{info.epochs_recorded:,} recorded epochs ({_epoch_list(epochs)}); the slider goes "
            "over those. Every epoch's metrics remain, so the curves are whole.",
        ],
        id="run-thinned-note",
        color="secondary",
        className="small py-2 mb-2",
    )


def add_play_toggle(play_id: str, tick_id: str):
    """Register the callback of a play button (`play_id`) that starts and stops an interval
    (`tick_id`); returns it so tests can call it."""

    @callback(
        Output(tick_id, "disabled"),
        Output(play_id, "children"),
        Input(play_id, "n_clicks"),
        State(tick_id, "disabled"),
        prevent_initial_call=True,
    )
    @rule("member")
    def toggle_play(_clicks, was_stopped):
        playing = bool(was_stopped)
        return (not playing), ("⏸ Pause" if playing else "▶ Play")

    return toggle_play


def add_player(play_id: str, tick_id: str, slider_id: str, frames: int):
    """Register the two callbacks of a play button (`play_id`) that toggles an interval
    (`tick_id`) stepping `slider_id` from its position to its end in about `frames` steps.
    Returns them (toggle, advance) so tests can call them."""
    toggle_play = add_play_toggle(play_id, tick_id)

    @callback(
        Output(slider_id, "value"),
        Output(tick_id, "disabled", allow_duplicate=True),
        Output(play_id, "children", allow_duplicate=True),
        Input(tick_id, "n_intervals"),
        State(slider_id, "value"),
        State(slider_id, "max"),
        prevent_initial_call=True,
    )
    @rule("member")
    def advance(_n, value, maximum):
        maximum = maximum or 0  # the guard checked the types; a missing max: nothing to play
        step = max(1, maximum // frames)
        value = 0 if value is None or value >= maximum else min(maximum, value + step)
        at_end = value >= maximum
        return value, at_end, ("▶ Play" if at_end else no_update)

    return toggle_play, advance
