"""One lesson: narrative interleaved with the live views of a run it trains on demand (or that the
learner picks), and 'try this' controls that retrain with bounded changes."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from netlens.storage import runs
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import declare_kind, on_click, rule
from netlens.webapp.learn import lessons as L
from netlens.webapp.learn import progress as P
from netlens.webapp.learn import reading
from netlens.webapp.learn import views as V
from netlens.webapp.views.common import friendly, page_error, status_badge

dash.register_page(
    __name__, path_template="/learn/<slug>", title="Lesson · NetLens", access="member"
)

SLUG, MAIN, BASE, STAMP = "learn-slug", "learn-runs", "learn-base", "learn-stamp"
POLL, FEEDBACK, STATUS, PICKER = "learn-poll", "learn-feedback", "learn-status", "learn-picker"
TRAIN, BASE_TRAIN, BASE_BODY, BODY = (
    "learn-train",
    "learn-base-train",
    "learn-base-body",
    "learn-body",
)
SLIDER, EPOCH_LABEL, NEURON = "learn-epoch", "learn-epoch-label", "learn-neuron"
DRAWN = "learn-drawn"  # the run state the page shows (see run_state)
CONTROL = {name: f"learn-c-{name.replace('_', '-')}" for name in L.CHOICES}
MAX_RUNS = 3  # the compare lesson's three
# counted from 0, as on the run page, in its neuron maps and in the lesson's statements
NEURONS = [str(k) for k in range(int(L.CHOICES["units"][-1]))]


def neuron_options(units: int) -> list[dict]:
    return [{"label": f"follow hidden neuron {k}", "value": k} for k in NEURONS[:units]]


for _id, _prop, _kind in [
    (SLUG, "data", "text"),
    (MAIN, "data", "ids"),
    (BASE, "data", "ids"),
    (STAMP, "data", "ints"),
    (DRAWN, "data", "ints"),
    (PICKER, "value", "id_or_none"),
    (SLIDER, "value", "index"),
    (SLIDER, "max", "index"),
    (NEURON, "value", "text"),
    *[(cid, "value", "text") for cid in CONTROL.values()],
]:
    declare_kind(_id, _prop, _kind)


def _select(name: str, value: str, is_shown: bool = True) -> dbc.Col:
    """Every control is on every lesson's page (the train callback reads them all); a lesson
    shows only its own."""
    return dbc.Col(
        [
            dbc.Label(L.LABELS[name], html_for=CONTROL[name], className="small mb-0"),
            dbc.Select(
                id=CONTROL[name],
                value=value,
                size="sm",
                options=[{"label": c, "value": c} for c in L.CHOICES[name]],
            ),
        ],
        width="auto",
        style=None if is_shown else {"display": "none"},
    )


def _baseline_card(lesson: L.Lesson) -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.P(lesson.baseline_text, className="mb-2"),
                dbc.Button(lesson.baseline_label, id=BASE_TRAIN, color="secondary", size="sm"),
                html.Div(id=BASE_BODY, className="mt-2"),
            ]
        ),
        className="mb-3 learn-baseline",
        style=None if lesson.baseline is not None else {"display": "none"},
    )


def _run_card(lesson: L.Lesson) -> dbc.Card:
    controls = [
        _select(name, lesson.defaults.get(name, L.CHOICES[name][0]), name in lesson.controls)
        for name in L.CHOICES
    ]
    is_compare = lesson.slug == "compare"
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Row(
                    [
                        dbc.Col(
                            dbc.Button(
                                "Train" + (" three runs" if is_compare else ""),
                                id=TRAIN,
                                color="primary",
                            ),
                            width="auto",
                        ),
                        dbc.Col(
                            dcc.Dropdown(
                                id=PICKER,
                                placeholder="…or pick an earlier run of this lesson",
                                clearable=False,
                            ),
                            md=4,
                        ),
                        dbc.Col(html.Div(id=STATUS, className="small pt-2")),
                    ],
                    className="g-2 mb-2",
                ),
                html.Div("Try this, then train again:", className="small text-muted"),
                dbc.Row(controls, className="g-2 mb-2"),
                html.Div(id=FEEDBACK),
                dbc.Row(
                    [
                        dbc.Col(
                            dcc.Slider(
                                id=SLIDER,
                                min=0,
                                max=0,
                                step=1,
                                value=0,
                                marks=None,
                                updatemode="mouseup",
                            ),
                            className="pt-2",
                        ),
                        dbc.Col(html.Strong(id=EPOCH_LABEL, children="epoch –"), width="auto"),
                        dbc.Col(
                            dbc.Select(
                                id=NEURON,
                                value="0",
                                size="sm",
                                options=neuron_options(int(lesson.defaults["units"])),
                            ),
                            width="auto",
                            style={"display": "block" if lesson.slug == "xor" else "none"},
                        ),
                    ],
                    className="g-2 align-items-center learn-epoch-bar",
                ),
            ]
        ),
        className="mb-3 learn-run-card sticky-top",
    )


def layout(slug: str | None = None, **_kwargs):
    lesson = L.LESSONS.get(slug or "")
    if lesson is None:
        return page_error("No such lesson", f"The lessons are: {', '.join(L.SLUGS)}.")
    n = L.SLUGS.index(lesson.slug) + 1
    parts = [
        dcc.Store(id=SLUG, data=lesson.slug),
        dcc.Store(id=MAIN, data=[]),
        dcc.Store(id=BASE, data=[]),
        dcc.Store(id=STAMP, data=[]),
        dcc.Store(id=DRAWN, data=[]),
        dcc.Interval(id=POLL, interval=800, disabled=True),
        html.Div(
            [html.A("Learn", href="/learn"), f" · lesson {n} of {len(L.SLUGS)}"], className="small"
        ),
        html.H3(lesson.title),
        html.P(html.Em(lesson.question)),
        html.P(lesson.intro, style={"maxWidth": "60rem"}),
    ]
    parts += [_baseline_card(lesson), _run_card(lesson), html.Div(id=BODY, className="learn-body")]
    return html.Div(parts, className="learn-lesson", id=f"learn-lesson-{lesson.slug}")


def _lesson(slug) -> L.Lesson:
    lesson = L.LESSONS.get(slug) if isinstance(slug, str) else None
    if lesson is None:
        raise PreventUpdate  # not a lesson: a crafted call
    return lesson


def _ids(values) -> list[int]:
    return [int(v) for v in (values or [])][:MAX_RUNS]


@callback(
    Output(MAIN, "data", allow_duplicate=True),
    Output(BASE, "data", allow_duplicate=True),
    Output(FEEDBACK, "children"),
    Output(POLL, "disabled", allow_duplicate=True),
    Input(TRAIN, "n_clicks"),
    Input(BASE_TRAIN, "n_clicks"),
    State(SLUG, "data"),
    [State(cid, "value") for cid in CONTROL.values()],
    prevent_initial_call=True,
)
@on_click
@rule("member")
def train(_n, _nb, slug, *values):
    """Queue the lesson's run (or three, or its baseline) as this user, through the same
    submission as the New-experiment page (its validation and per-user limits)."""
    from netlens.dispatch.submission import submit_spec, submit_sweep

    lesson = _lesson(slug)
    try:
        choices = L.checked_choices(lesson, dict(zip(CONTROL, values, strict=True)))
        is_base = ctx.triggered_id == BASE_TRAIN and lesson.baseline is not None
        spec = L.lesson_spec(lesson, choices, baseline=is_base)
        web, owner = context.current(), current_actor().id
        if lesson.slug == "compare":
            _group, ids = submit_sweep(
                web.db,
                web.settings,
                spec,
                L.sweep_axes(choices),
                name="learn compare",
                owner_id=owner,
            )
        else:
            ids = [submit_spec(web.db, web.settings, spec, owner_id=owner)]
    except Exception as exc:  # a bad choice, a limit reached, the broker down: said as such
        return (
            no_update,
            no_update,
            dbc.Alert(f"Not trained: {exc}", color="danger", className="py-1"),
            no_update,
        )
    done = html.Span(
        f"Queued run {', '.join(f'#{i}' for i in ids)}.", className="small text-success"
    )
    if is_base:
        return no_update, ids, done, False
    return ids, no_update, done, False


@callback(
    Output(MAIN, "data", allow_duplicate=True),
    Output(POLL, "disabled", allow_duplicate=True),
    Input(PICKER, "value"),
    State(SLUG, "data"),
    prevent_initial_call=True,
)
@rule("member")
def pick(run_id, slug):
    """An earlier run of this lesson (the compare lesson: its whole sweep)."""
    lesson = _lesson(slug)
    if run_id is None:
        raise PreventUpdate
    info = runs.get_run(context.current().db, run_id)
    if f"learn:{lesson.slug}" not in info.tags:
        raise PreventUpdate  # only this lesson's runs are offered
    if lesson.slug == "compare" and info.group_id is not None:
        found, _ = runs.query_runs(
            context.current().db, group=info.group_id, limit=MAX_RUNS, sort=[("id", "asc")]
        )
        return [r.id for r in found], False
    return [run_id], False


def _options(slug: str) -> list[dict]:
    found, _ = runs.query_runs(context.current().db, tag=f"learn:{slug}", limit=30)
    return [
        {
            "label": f"#{r.id} {r.name} · {r.status} · {r.spec['training']['epochs']} epochs, "
            f"lr {r.spec['optimizer']['learning_rate']:g}, seed {r.spec['training']['seed']}",
            "value": r.id,
        }
        for r in found
        if "learn:baseline" not in r.tags
    ]


@callback(
    Output(STATUS, "children"),
    Output(SLIDER, "max"),
    Output(SLIDER, "value"),
    Output(STAMP, "data"),
    Output(POLL, "disabled"),
    Output(PICKER, "options"),
    Output(NEURON, "options"),
    Input(POLL, "n_intervals"),
    Input(MAIN, "data"),
    Input(BASE, "data"),
    State(SLIDER, "value"),
    State(SLIDER, "max"),
    State(STAMP, "data"),
    State(DRAWN, "data"),
    State(SLUG, "data"),
)
@rule("member")
def poll(n, main, base, value, old_max, stamp, drawn, slug):
    """Live progress: new epochs extend the slider (a slider left at the end follows them).
    Polling stops only once the finished runs are drawn, so the last render always happens."""
    lesson = _lesson(slug)
    db = context.current().db
    infos = [runs.get_run(db, i) for i in _ids(main)]
    bases = [runs.get_run(db, i) for i in _ids(base)]
    options = _options(lesson.slug)
    state = P.run_state(infos + bases)
    new_stamp = P.next_stamp(stamp, state, drawn, n or 0)
    stop = P.may_stop(new_stamp, state, drawn)
    if not infos:
        return (
            html.Span("No run yet: press Train."),
            0 if old_max else no_update,
            0 if value else no_update,
            new_stamp if new_stamp != stamp else no_update,
            stop or not bases,
            options,
            no_update,
        )
    status = [
        html.Span(
            [status_badge(i.status), f" #{i.id} {i.last_epoch or 0}/{i.epochs_total} "],
            className="me-2",
        )
        for i in infos
    ]
    new_max = max(0, min(i.epochs_recorded for i in infos) - 1)
    follow = value is None or value >= (old_max or 0)
    # re-sending an unchanged value would redraw the whole lesson at every poll
    return (
        status,
        new_max if new_max != old_max else no_update,
        new_max if follow and new_max != value else no_update,
        new_stamp if new_stamp != stamp else no_update,
        stop,
        options,
        neuron_options(infos[0].layers[0]["units"]) if len(infos[0].layers) > 1 else no_update,
    )


@callback(
    Output(EPOCH_LABEL, "children"),
    Output(BODY, "children"),
    Output(BASE_BODY, "children"),
    Output(DRAWN, "data"),
    Input(MAIN, "data"),
    Input(BASE, "data"),
    Input(SLIDER, "value"),
    Input(NEURON, "value"),
    Input(STAMP, "data"),
    State(SLUG, "data"),
)
@friendly(4, children_at=(0, 1, 2))
@rule("member")
def render(main, base, index, neuron, _stamp, slug):
    """The lesson at the slider's epoch, and (DRAWN) the run state it was drawn from: the
    state read here, not the stamp's, so a render that read older rows never passes for the
    final one."""
    lesson = _lesson(slug)
    data = context.current().data
    infos = [data.info(i) for i in _ids(main)]
    base_infos = [data.info(i) for i in _ids(base)]
    loaded = [r for r in map(reading.arrays_of, infos) if r is not None]
    base_run = next((r for r in map(reading.arrays_of, base_infos) if r is not None), None)
    main_run = loaded[0] if loaded else None
    base_body = _baseline_body(lesson, base_run, main_run) if base else None
    drawn = P.run_state(infos + base_infos)
    if main_run is None:
        waiting = "Training… the views appear with the first epochs." if main else None
        return "epoch –", _sections(lesson, None, index, neuron, waiting), base_body, drawn
    epoch = V._epoch(main_run, index)
    k = int(neuron) if neuron in NEURONS else 0
    return f"epoch {epoch}", _sections(lesson, loaded, index, k, None), base_body, drawn


def _baseline_body(lesson, base_run, main_run):
    if base_run is None:
        return html.Span("Training…", className="small")
    if lesson.slug == "deeper":
        return V.baseline_compare_view(base_run, main_run)
    return V.single_neuron_view(base_run)


def _sections(lesson: L.Lesson, loaded, index, neuron, waiting) -> list:
    out = []
    unfinished = [r for r in loaded or [] if not r.info.is_finished]
    if unfinished:
        out.append(
            dbc.Alert(
                V.still_training(unfinished[0]), color="info", className="py-1 learn-still-training"
            )
        )
    for section in lesson.sections:
        body = [html.H5(section.heading), html.P(section.text)]
        if loaded:
            body += _views(lesson, section.view, loaded, index, neuron)
        elif waiting:
            body.append(html.P(waiting, className="text-muted small"))
        out.append(
            html.Section(body, className="learn-section mb-4", id=f"learn-section-{section.view}")
        )
    return out


def _views(lesson: L.Lesson, view: str, loaded, index, neuron) -> list:
    run = loaded[0]
    if view == "curves":
        return V.curves_view(run, index, lesson.extra.get("target", 1.0))
    if view == "outputs":
        return V.outputs_view(run, index)
    if view == "params":
        return V.params_view(run, index, neuron)
    if view in ("lines", "deep-lines"):
        return V.lines_view(run, index, deep=view == "deep-lines")
    if view == "bottleneck":
        return V.bottleneck_view(run, index)
    if view == "boundary":
        return [V.boundary_view(run, index)]
    if view == "separability":
        return V.separability_view(run, index)
    if view == "unseen":
        return V.unseen_view(run, index)
    if view == "compare":
        labels = [_label(r) for r in loaded]
        return V.compare_view(loaded, labels)
    raise ValueError(f"view: {view!r} is not a lesson view")


def _label(run: reading.RunArrays) -> str:
    spec = run.info.spec
    return (
        f"#{run.info.id} seed {spec['training']['seed']}, lr {spec['optimizer']['learning_rate']:g}"
    )
