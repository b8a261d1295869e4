"""The run page's state in its URL: `/runs/3?tab=params&epoch=100&layer=dense_1&neuron=2`.

Query names: tab, epoch (an epoch NUMBER: the nearest recorded one is shown; none means the
latest), layer (of the tab's layer selector), neuron (Parameters), input (the probe input
whose activations colour the Network graph), and the curves' smooth (0..0.99), logy=1 and
x=time (wall time). Invalid values fall back to the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dash import Input, Output, State, callback
from dash.exceptions import PreventUpdate

from netlens.storage.runs import RunInfo, RunNotFound
from netlens.webapp import context, url_state
from netlens.webapp.authz import rule
from netlens.webapp.views.run import Choices, ids, layer_choices, tab_ids, wall_time_note

# the layer selector of each tab that has one
LAYER_OF_TAB = {"params": ids.LAYER, "activations": ids.ACT_LAYER, "representation": ids.REP_LAYER}
MAX_UNIT = 1_000_000  # neurons and probe inputs: the views clip to what the run has


@dataclass(frozen=True)
class RunView:
    """Everything the URL can say, resolved against the run: valid, with defaults filled in."""

    choices: Choices
    index: int  # the slider's position


def parse(
    info: RunInfo, epochs: Sequence[int], query: Mapping[str, object], timed: bool = True
) -> RunView:
    """The view a query asks for, every claim checked against the run (`timed`: whether it
    recorded wall times, without which x=time means x by epoch)."""
    tab = url_state.choice(query.get("tab"), tab_ids(info), "curves") or "curves"
    layers = {k: default for k, (_, default) in layer_choices(info).items()}
    if tab in LAYER_OF_TAB:
        selector = LAYER_OF_TAB[tab]
        options = layer_choices(info)[selector][0]
        layers[selector] = url_state.choice(query.get("layer"), options, layers[selector])
    neuron = url_state.whole_number(query.get("neuron"), 0, MAX_UNIT)
    probe_input = url_state.whole_number(query.get("input"), 0, MAX_UNIT)
    index = url_state.nearest_index(epochs, query.get("epoch"))
    return RunView(
        Choices(
            tab=tab,
            layers=layers,
            neuron=neuron or 0,
            color_by="bias" if probe_input is None else "activation",
            input_index=probe_input or 0,
            curves=url_state.curves_of(query, timed),
        ),
        max(0, len(epochs) - 1) if index is None else index,
    )


def query(
    epochs: Sequence[int],
    index,
    last,
    tab,
    layers: Mapping[str, object],
    neuron,
    color_by,
    inp,
    smoothing=0.0,
    log_y=False,
    x="epoch",
) -> dict[str, object]:
    """The query that says what the page shows; defaults are left out (no tab: the first;
    no epoch: the latest; the curves unsmoothed, linear, by epoch)."""
    tab = tab if isinstance(tab, str) else "curves"
    layer = layers.get(LAYER_OF_TAB.get(tab, ""))
    return {
        "tab": None if tab == "curves" else tab,
        "epoch": url_state.epoch_of(epochs, index, last),
        "layer": layer if isinstance(layer, str) and layer else None,
        "neuron": url_state.whole_number(neuron, 1, MAX_UNIT) if tab == "params" else None,
        "input": (
            url_state.whole_number(inp, 0, MAX_UNIT)
            if tab == "network" and color_by == "activation"
            else None
        ),
        **url_state.curves_query(smoothing, log_y, x),
    }


def _run(run_id) -> tuple[RunInfo, Sequence[int]]:
    data = context.current().data
    try:
        info = data.info(run_id)
    except RunNotFound:
        raise PreventUpdate from None
    return info, data.epochs(info)


SELECTORS = (ids.LAYER, ids.ACT_LAYER, ids.REP_LAYER)
CURVES = (ids.SMOOTH, ids.LOGY, ids.X_AXIS)


@callback(
    Output(ids.URL, "href"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    *[Input(s, "value") for s in SELECTORS],
    Input(ids.NEURON, "value"),
    Input(ids.COLOR_BY, "value"),
    Input(ids.INPUT_INDEX, "value"),
    *[Input(c, "value") for c in CURVES],
    Input(ids.PLAY_TICK, "disabled"),
    State(ids.SLIDER, "max"),
    State(ids.URL, "href"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def write_url(tab, index, layer, act_layer, rep_layer, neuron, color_by, inp, *rest):
    """The URL follows the page (a history entry per change; none while Play runs: the URL
    catches up when it stops). `rest`: the curves' smoothing, log y and x, then whether Play
    is stopped, the slider's end, the href and the run."""
    smoothing, log_y, x, is_stopped, last, href, run_id = rest
    if is_stopped is False:
        raise PreventUpdate
    _, epochs = _run(run_id)
    layers = dict(zip(SELECTORS, (layer, act_layer, rep_layer), strict=True))
    pairs = query(epochs, index, last, tab, layers, neuron, color_by, inp, smoothing, log_y, x)
    new = url_state.with_query(href, pairs, f"/runs/{run_id}")
    if new == href:
        raise PreventUpdate
    return new


@callback(
    Output(ids.TABS, "active_tab", allow_duplicate=True),
    Output(ids.SLIDER, "value", allow_duplicate=True),
    *[Output(s, "value", allow_duplicate=True) for s in SELECTORS],
    Output(ids.NEURON, "value", allow_duplicate=True),
    Output(ids.COLOR_BY, "value", allow_duplicate=True),
    Output(ids.INPUT_INDEX, "value", allow_duplicate=True),
    *[Output(c, "value", allow_duplicate=True) for c in CURVES],
    Input(ids.URL, "href"),
    State(ids.TABS, "active_tab"),
    State(ids.SLIDER, "value"),
    *[State(s, "value") for s in SELECTORS],
    State(ids.NEURON, "value"),
    State(ids.COLOR_BY, "value"),
    State(ids.INPUT_INDEX, "value"),
    *[State(c, "value") for c in CURVES],
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def restore(href, *current_and_run):
    """Back and forward (or a link to this same page) set the page from its URL; what it
    already shows is left alone, so that the URL it wrote changes nothing."""
    *current, run_id = current_and_run
    info, epochs = _run(run_id)
    view = parse(info, epochs, url_state.query_of(href), wall_time_note(info) is None)
    c = view.choices
    wanted = [c.tab, view.index, *[c.layers.get(s) for s in SELECTORS]]
    wanted += [c.neuron, c.color_by, c.input_index]
    wanted += [c.curves.smoothing, c.curves.log_y, c.curves.x]
    return [url_state.changed(now, want) for now, want in zip(current, wanted, strict=True)]
