"""The run page's views: one tab each, all driven by the shared epoch slider.

Each view's callback makes its storage reads through RunData (cached, bounded) and calls one
figure builder; it computes only while its tab is the active one, so a slider step costs one
view, not nine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, callback
from dash.exceptions import PreventUpdate

from netlens.storage.catalog import MODEL_KINDS, dataset_names
from netlens.storage.runs import RunInfo
from netlens.webapp import captions, context
from netlens.webapp.authz import rule
from netlens.webapp.figures import boundary, curves, network, outputs, params, representation
from netlens.webapp.figures.common import empty_figure
from netlens.webapp.views import run_neurons
from netlens.webapp.views.common import (
    active,
    curve_controls,
    friendly,
    graph,
    labelled_select,
)


class ids:  # noqa: N801 - a namespace of component ids
    RUN_ID, REFRESH, PLAY_TICK, DOWNLOAD = "run-id", "run-refresh", "run-play-tick", "run-download"
    HEADER, ACTION_FEEDBACK = "run-header", "run-action-feedback"
    CANCEL, RETRY, RETRY_SCRATCH, EXPORT = (
        "run-cancel",
        "run-retry",
        "run-retry-scratch",
        "run-export",
    )
    NAME, TAGS, NOTES, SAVE, SAVE_FEEDBACK = (
        "run-name",
        "run-tags",
        "run-notes",
        "run-save",
        "run-save-fb",
    )
    PLAY, SLIDER, EPOCH_LABEL, TABS = "run-play", "run-epoch", "run-epoch-label", "run-tabs"
    URL, COPY_LINK = "run-url", "run-copy-link"
    LOSS, ACCURACY, GRADS = "fig-loss", "fig-accuracy", "fig-grads"
    SMOOTH, LOGY, X_AXIS = "run-smooth", "run-logy", "run-x"
    LAYER, NEURON, TRAJECTORY, WEIGHT_HIST = (
        "param-layer",
        "param-neuron",
        "fig-trajectory",
        "fig-weight-hist",
    )
    OUTPUTS = "fig-outputs"
    COLOR_BY, INPUT_INDEX, GRAPH2D, GRAPH3D = (
        "net-color-by",
        "net-input",
        "fig-network",
        "fig-network-3d",
    )
    ACT_LAYER, ACT_STATS = "act-layer", "fig-act-stats"
    BOUNDARY = "fig-boundary"
    REP_LAYER, REP_COLOR, REPRESENTATION = "rep-layer", "rep-color", "fig-representation"


def param_layers(info: RunInfo) -> list[str]:
    """The layers whose weights the Parameters tab draws: every layer of a spec run; the
    modules of an nl.Recorder run that hold a kernel of their own (a container, or the model
    itself, holds none), then the others (the tab says why they show nothing)."""
    names = [layer["name"] for layer in info.layers]
    own = [x["name"] for x in info.layers if "kernel" in x.get("params", ("kernel",))]
    return own + [n for n in names if n not in own]


def default_param_layer(info: RunInfo) -> str | None:
    """The last layer holding a kernel (the output layer of a spec run)."""
    own = [x["name"] for x in info.layers if "kernel" in x.get("params", ("kernel",))]
    names = own or [layer["name"] for layer in info.layers]
    return names[-1] if names else None


def layer_choices(info: RunInfo) -> dict[str, tuple[list[str], str | None]]:
    """Options and default of each layer selector (empty until the worker starts the run)."""
    layers = [layer["name"] for layer in info.layers]
    hidden = layers[:-1]
    return {
        ids.LAYER: (param_layers(info), default_param_layer(info)),
        ids.ACT_LAYER: (hidden, hidden[0] if hidden else None),
        ids.REP_LAYER: (hidden, bottleneck(info)),
    }


def _options(names: list[str]) -> list[dict[str, str]]:
    return [{"label": o, "value": o} for o in names]


TWO_D_DATASETS = dataset_names("2-D")  # storage/catalog.py


def is_2d(info: RunInfo) -> bool:
    """Whether the run's inputs are points of a plane (it has a decision-boundary grid): a
    2-D dataset, or arrays of 2 features and 2 classes given to the Python API's fit (their
    grid's bounds are in data_info once the run started)."""
    if info.spec["dataset"]["name"] in TWO_D_DATASETS:
        return True
    return bool((info.data_info or {}).get("grid_bounds"))


TAB_IDS = (
    "curves",
    "params",
    "outputs",
    "network",
    "network3d",
    "activations",
    "gradients",
    "boundary",
    "neurons",
    "representation",
)
TWO_D_TABS = ("boundary", "neurons")


def tab_ids(info: RunInfo) -> list[str]:
    """The run's tabs, in page order (the 2-D views only for inputs that are points of a plane)."""
    return [t for t in TAB_IDS if t not in TWO_D_TABS or is_2d(info)]


@dataclass(frozen=True)
class Choices:
    """What the tabs open on: the defaults, or what the page's URL asked for
    (webapp/views/run_url.py)."""

    tab: str = "curves"
    layers: dict[str, str | None] = field(default_factory=dict)  # selector id -> layer
    neuron: int = 0
    color_by: str = "bias"
    input_index: int = 0
    curves: curves.CurveOptions = field(default_factory=curves.CurveOptions)


NO_WALL_TIME = (
    "wall time: not recorded for this run (runs recorded before NetLens stored per-epoch "
    "times, or streamed by a client that sends none)"
)


def run_seconds(info: RunInfo, epochs: np.ndarray) -> np.ndarray:
    """Seconds since the run started at each of `epochs` (NaN: no time recorded)."""
    return curves.elapsed_seconds(epochs, *context.current().data.wall_times(info))


def wall_time_note(info: RunInfo) -> str | None:
    """Why the run's curves cannot be drawn by wall time, or None when they can."""
    epochs, _ = context.current().data.metrics(info)
    return None if curves.has_wall_times(epochs, run_seconds(info, epochs)) else NO_WALL_TIME


def tabs(info: RunInfo, chosen: Choices | None = None, time_note: str | None = None) -> dbc.Tabs:
    """The run's tabs opened as `chosen` says; `time_note`: why its curves cannot be drawn
    by wall time (wall_time_note), if they cannot."""
    chosen = chosen or Choices()
    controls = curve_controls((ids.SMOOTH, ids.LOGY, ids.X_AXIS), chosen.curves, time_note)
    layers = [layer["name"] for layer in info.layers]
    hidden = layers[:-1]
    picked = {k: v for k, (_, v) in layer_choices(info).items()} | chosen.layers
    items = [
        _tab(
            info,
            "curves",
            "Loss & accuracy",
            [
                controls,
                dbc.Row([dbc.Col(graph(ids.LOSS), md=6), dbc.Col(graph(ids.ACCURACY), md=6)]),
            ],
        ),
        _tab(
            info,
            "params",
            "Parameters",
            [
                dbc.Row(
                    [
                        labelled_select(
                            ids.LAYER,
                            [(n, n) for n in param_layers(info)],
                            picked[ids.LAYER],
                            "layer",
                        ),
                        dbc.Col(
                            [
                                dbc.Label("neuron", className="small mb-0"),
                                dbc.Input(
                                    id=ids.NEURON,
                                    type="number",
                                    min=0,
                                    value=chosen.neuron,
                                    size="sm",
                                    style={"width": "90px"},
                                ),
                            ],
                            width="auto",
                        ),
                    ],
                    className="mb-2",
                ),
                dbc.Row(
                    [dbc.Col(graph(ids.TRAJECTORY), md=6), dbc.Col(graph(ids.WEIGHT_HIST), md=6)]
                ),
            ],
        ),
        _tab(info, "outputs", "Outputs per input", graph(ids.OUTPUTS, 420)),
        _tab(
            info,
            "network",
            "Network graph",
            [
                dbc.Row(
                    [
                        dbc.Col(
                            dbc.RadioItems(
                                id=ids.COLOR_BY,
                                inline=True,
                                value=chosen.color_by,
                                options=[
                                    {"label": "nodes by bias", "value": "bias"},
                                    {
                                        "label": "nodes by activation of probe input #",
                                        "value": "activation",
                                    },
                                ],
                            ),
                            width="auto",
                        ),
                        dbc.Col(
                            dbc.Input(
                                id=ids.INPUT_INDEX,
                                type="number",
                                min=0,
                                value=chosen.input_index,
                                size="sm",
                                style={"width": "90px"},
                            ),
                            width="auto",
                        ),
                    ],
                    className="mb-2",
                    # the module graph colours by weight norm only: no bias, no activation
                    style={"display": "none"} if draws_module_graph(info) else None,
                ),
                graph(ids.GRAPH2D, 520),
            ],
        ),
        _tab(info, "network3d", "3D network", graph(ids.GRAPH3D, 600)),
        _tab(
            info,
            "activations",
            "Activations",
            [
                dbc.Row(
                    [
                        labelled_select(
                            ids.ACT_LAYER,
                            [(n, n) for n in hidden],
                            picked[ids.ACT_LAYER],
                            "layer",
                        )
                    ],
                    className="mb-2",
                ),
                graph(ids.ACT_STATS, 420),
            ],
        ),
        _tab(info, "gradients", "Gradients", graph(ids.GRADS, 420)),
    ]
    if is_2d(info):
        items.append(_tab(info, "boundary", "Decision boundary", graph(ids.BOUNDARY, 560)))
        items.append(_tab(info, "neurons", "Neuron maps", run_neurons.neurons_graph()))
    items.append(
        _tab(
            info,
            "representation",
            "Hidden representation",
            [
                dbc.Row(
                    [
                        labelled_select(
                            ids.REP_LAYER, [(n, n) for n in hidden], picked[ids.REP_LAYER], "layer"
                        ),
                        dbc.Col(
                            dbc.RadioItems(
                                id=ids.REP_COLOR,
                                inline=True,
                                value="class",
                                options=[
                                    {"label": "colour by class", "value": "class"},
                                    {"label": "by correct / wrong", "value": "correct"},
                                ],
                            ),
                            width="auto",
                            className="pt-3",
                        ),
                    ],
                    className="mb-2",
                ),
                graph(ids.REPRESENTATION, 560),
            ],
        )
    )
    return dbc.Tabs(items, id=ids.TABS, active_tab=chosen.tab, className="mb-2")


def _tab(info: RunInfo, tab_id: str, label: str, content) -> dbc.Tab:
    """A tab whose pane opens with its caption: what the view shows, what to look for."""
    return captions.captioned_tab("run", tab_id, label, content, caption_variant(info, tab_id))


def has_convolutions(info: RunInfo) -> bool:
    """Whether the run's network has convolution layers (a cnn, or a sequential model with a
    conv2d), known from its spec before the worker has recorded its layers."""
    model = info.spec.get("model", {})
    return (
        any(layer.get("kind") == "conv" for layer in info.layers)
        or model.get("kind") == "cnn"
        or any(isinstance(x, dict) and x.get("kind") == "conv2d" for x in model.get("layers") or [])
    )


def caption_variant(info: RunInfo, tab_id: str) -> str | None:
    """Which caption a view gets where the view itself adapts to the run (webapp/captions.py):
    the module graph of an nl.Recorder run, a network with convolutions, a user's own loop."""
    if tab_id in ("network", "network3d"):
        if not is_spec_run(info) and draws_module_graph(info):
            return "modules"
        return "cnn" if has_convolutions(info) else None
    if tab_id == "params":
        return "cnn" if has_convolutions(info) else None
    if tab_id in ("curves", "outputs", "activations", "gradients") and not is_spec_run(info):
        return "recorder"
    return None


def bottleneck(info: RunInfo) -> str | None:
    """The narrowest hidden layer (the blog post's 2-unit layer), else the last hidden one."""
    hidden = info.layers[:-1]
    if not hidden:
        return None
    return min(hidden, key=lambda layer: (layer["units"], -hidden.index(layer)))["name"]


def _context(run_id: int, index: int | None) -> tuple[RunInfo, np.ndarray, int]:
    """The run, its recorded epochs, and the epoch the slider points at."""
    data = context.current().data
    info = data.info(run_id)
    epochs = data.epochs(info)
    if not len(epochs):
        return info, epochs, 0
    index = len(epochs) - 1 if index is None else int(np.clip(index, 0, len(epochs) - 1))
    return info, epochs, int(epochs[index])


@callback(
    [Output(i, "options") for i in (ids.LAYER, ids.ACT_LAYER, ids.REP_LAYER)]
    + [Output(i, "value") for i in (ids.LAYER, ids.ACT_LAYER, ids.REP_LAYER)],
    Input(ids.REFRESH, "n_intervals"),
    State(ids.LAYER, "options"),
    State(ids.RUN_ID, "data"),
    prevent_initial_call=True,
)
@rule("member")
def fill_layer_choices(_n, current_options, run_id):
    """A page opened before the worker started the run learns its layers when they appear."""
    if current_options:
        raise PreventUpdate
    info = context.current().data.info(run_id)
    if not info.layers:
        raise PreventUpdate
    choices = layer_choices(info)
    return [_options(names) for names, _ in choices.values()] + [
        value for _, value in choices.values()
    ]


@callback(
    Output(ids.EPOCH_LABEL, "children"), Input(ids.SLIDER, "value"), State(ids.RUN_ID, "data")
)
@rule("member")
def epoch_label(index, run_id):
    _, epochs, epoch = _context(run_id, index)
    return f"epoch {epoch}" if len(epochs) else "no epoch recorded yet"


@callback(
    Output(ids.LOSS, "figure"),
    Output(ids.ACCURACY, "figure"),
    Output(ids.GRADS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.REFRESH, "n_intervals"),
    Input(ids.SMOOTH, "value"),
    Input(ids.LOGY, "value"),
    Input(ids.X_AXIS, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(3)
@rule("member")
def curve_views(tab, index, _n, smoothing, log_y, x_axis, run_id):
    """Loss and accuracy as the curves' controls say (smoothing, log y, x); gradients by epoch."""
    options = curves.checked_options(smoothing, log_y, x_axis)
    if tab not in ("curves", "gradients") or options is None:
        raise PreventUpdate
    info, _, epoch = _context(run_id, index)
    epochs, metrics = context.current().data.metrics(info)
    shown = {
        "options": options,
        "seconds": run_seconds(info, epochs) if options.x == "time" else None,
    }
    loss, acc, other = curves.split_metrics(metrics)
    grads = {k: v for k, v in metrics.items() if k.startswith("grad_norm/")}
    spec_run = is_spec_run(info)
    if other:  # a user's own metrics beside loss and accuracy: drawn with the accuracies
        acc = {**acc, **other}
    acc_title = "Accuracy" if not other else "Accuracy and other metrics"
    if not metrics:
        why = "no metric logged yet" + ("" if spec_run else " (rec.log(epoch, loss=...) logs them)")
        loss_fig = empty_figure(f"Loss: {why}")
        acc_fig = empty_figure(f"Accuracy: {why}")
    else:
        loss_fig = (
            curves.build_metric_curves(
                epochs,
                loss,
                title="Loss",
                y_title="cross-entropy" if spec_run else "loss",
                current_epoch=epoch,
                **shown,
            )
            if loss
            else empty_figure(f"Loss: no metric named like a loss (logged: {_listed(metrics)})")
        )
        acc_fig = (
            curves.build_metric_curves(
                epochs, acc, title=acc_title, y_title="value", current_epoch=epoch, **shown
            )
            if acc
            else empty_figure(
                f"Accuracy: no metric named like an accuracy (logged: {_listed(metrics)})"
            )
        )
    if grads:
        grad_fig = curves.build_metric_curves(
            epochs,
            grads,
            title="Gradient norm per layer",
            y_title="L2 norm (epoch mean)",
            current_epoch=epoch,
        )
    elif spec_run:
        grad_fig = empty_figure("Gradient norm per layer: nothing recorded yet")
    else:
        grad_fig = empty_figure(
            "No gradient norms: NetLens computes them for the runs it trains; this run was "
            "trained by the user's own loop (log them as grad_norm/<module> to see them here)"
        )
    return loss_fig, acc_fig, grad_fig


def _listed(metrics: dict, at_most: int = 6) -> str:
    names = list(metrics)
    more = f", … {len(names) - at_most} more" if len(names) > at_most else ""
    return ", ".join(names[:at_most]) + more


def draws_module_graph(info: RunInfo) -> bool:
    """Whether the network views draw an nl.Recorder run's modules as nodes (the module
    graph) rather than neuron by neuron: unless its modules (the model's own output aside)
    are a chain of dense ones whose kernels (from the recorded shapes) fit one another."""
    if is_spec_run(info):
        return False
    root = (info.data_info.get("recorder") or {}).get("root", "output")
    modules = [m for m in info.layers if m["name"] != root] or list(info.layers)
    shapes = [(m.get("params") or {}).get("kernel") for m in modules]
    is_chain = (
        bool(modules)
        and all(m.get("kind") == "dense" for m in modules)
        and all(k is not None and len(k) == 2 for k in shapes)
        and all(a[1] == b[0] for a, b in zip(shapes, shapes[1:], strict=False))
    )
    return not is_chain


def is_spec_run(info: RunInfo) -> bool:
    """Whether NetLens trained the run from a spec (or nl.Sequential's fit): its layers are
    the spec's dense/conv layers, its metrics and outputs NetLens' own. Else an nl.Recorder
    run: the user's modules, metrics and outputs (logits, often)."""
    kind = info.spec.get("model", {}).get("kind")
    return kind in MODEL_KINDS and MODEL_KINDS[kind].trainable


@callback(
    Output(ids.TRAJECTORY, "figure"),
    Output(ids.WEIGHT_HIST, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.LAYER, "value"),
    Input(ids.NEURON, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(2)
@rule("member")
def parameter_views(tab, index, layer, neuron, run_id):
    active(tab, "params")
    info, _, epoch = _context(run_id, index)
    data = context.current().data
    if not layer:
        return empty_figure("No layer"), empty_figure("No layer")
    names = data.tensor_names(info)
    if names and f"params/{layer}/kernel" not in names:
        why = (
            f"{layer} has no weights of its own (no params/{layer}/kernel): it calls other "
            "modules, or has no kernel; choose one of the modules it calls"
        )
        return empty_figure(why), empty_figure(why)
    epochs, kernel = data.history(info, f"params/{layer}/kernel")
    _, bias = data.history(info, f"params/{layer}/bias")
    if not len(epochs):
        return empty_figure("No epoch recorded yet"), empty_figure("No epoch recorded yet")
    if not len(bias):  # a module without a bias (use_bias=False)
        bias = np.zeros((len(kernel), kernel.shape[-1]), np.float32)
    kernel2d = kernel.reshape(len(kernel), -1, kernel.shape[-1])  # conv: (3*3*in, out)
    units = kernel2d.shape[-1]
    neuron = int(np.clip(neuron or 0, 0, units - 1))
    inputs = _input_names(info, layer, kernel2d.shape[1])
    return (
        params.build_neuron_trajectories(
            epochs, kernel2d, bias, neuron, input_names=inputs, current_epoch=epoch
        ),
        params.build_weight_histogram_heatmap(
            epochs,
            kernel.reshape(len(kernel), -1),
            title=f"{layer} weights over epochs",
            current_epoch=epoch,
        ),
    )


def _input_names(info: RunInfo, layer: str, n: int) -> list[str]:
    names = [x["name"] for x in info.layers]
    position = names.index(layer) if layer in names else 0
    source = "x" if position == 0 else names[position - 1]
    return [f"{source}[{i}]" for i in range(n)]


@callback(
    Output(ids.OUTPUTS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def output_view(tab, index, run_id):
    active(tab, "outputs")
    info, _, epoch = _context(run_id, index)
    data = context.current().data
    epochs, values = data.history(info, "signatures/output")
    arrays = data.arrays(run_id)
    if not len(epochs):
        return empty_figure("No probe outputs recorded yet")
    if "probe/y" not in arrays:
        return empty_figure(
            "No probe labels: the outputs are drawn against each input's class "
            "(nl.Recorder(..., probe_labels=...) records them)"
        )
    values = values.reshape(len(values), values.shape[1], -1)
    note = None
    if not is_spec_run(info):  # a user's model may return logits
        values, note = outputs.as_probabilities(values)
    n_classes = len(arrays["classes"])
    if values.shape[2] != n_classes and not (values.shape[2] == 1 and n_classes <= 2):
        return empty_figure(
            f"The model returns {values.shape[2]} values per input for "
            f"{len(arrays['classes'])} classes: not one score per class, so they cannot be "
            "drawn as class probabilities"
        )
    return outputs.build_probe_outputs(
        epochs,
        values,
        arrays["probe/y"],
        [int(c) for c in arrays["classes"]],
        note=note,
        class_names=info.data_info.get("class_names"),
        is_ood=arrays.get("probe/is_ood"),
        current_epoch=epoch,
    )


def why_no_graph(epochs: np.ndarray, kernels: list) -> str | None:
    if not len(epochs):
        return "No epoch recorded yet"
    if not kernels:  # epochs but no layers (a run whose worker never recorded them)
        return "No layers recorded for this run"
    if any(k is None or k.ndim != 2 for k in kernels):
        return "The network views draw dense layers; this run has convolutions"
    return None


def module_view(info: RunInfo, epochs: np.ndarray, epoch: int, three_d: bool = False):
    """For an nl.Recorder run: None when its modules are a chain of dense ones (nnx.Linear,
    the model's own output aside), which the neuron-level graph draws; else the module graph
    (modules in call order, edges by weight norm), or a sentence saying why there is none."""
    if not len(epochs):
        return empty_figure("No epoch recorded yet")
    if not draws_module_graph(info):
        return None
    data = context.current().data
    if not info.layers:
        return empty_figure("No modules recorded for this run")
    norms = []
    for m in info.layers:
        leaves = [
            data.at_epoch(info, f"params/{m['name']}/{leaf}", epoch)[1]
            for leaf in m.get("params") or {}
        ]
        leaves = [v for v in leaves if v is not None]
        norms.append(
            float(np.sqrt(sum(float(np.sum(np.square(v, dtype=float))) for v in leaves)))
            if leaves
            else None
        )
    return network.build_module_graph(
        info.layers,
        norms,
        title=f"modules in call order · epoch {epoch}",
        three_d=three_d,
        root=(info.data_info.get("recorder") or {}).get("root", "output"),
    )


def weights_at(info: RunInfo, epoch: int):
    data = context.current().data
    names = [layer["name"] for layer in info.layers]
    if not is_spec_run(info):  # a chain of dense modules (module_view said so): the model aside
        root = (info.data_info.get("recorder") or {}).get("root", "output")
        names = [n for n in names if n != root]
    kernels = [data.at_epoch(info, f"params/{n}/kernel", epoch)[1] for n in names]
    biases = [data.at_epoch(info, f"params/{n}/bias", epoch)[1] for n in names]
    return names, kernels, biases


@callback(
    Output(ids.GRAPH2D, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.COLOR_BY, "value"),
    Input(ids.INPUT_INDEX, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def network_view(tab, index, color_by, input_index, run_id):
    active(tab, "network")
    info, epochs, epoch = _context(run_id, index)
    if not is_spec_run(info) and (fig := module_view(info, epochs, epoch)) is not None:
        return fig
    names, kernels, biases = weights_at(info, epoch)
    if (problem := why_no_graph(epochs, kernels)) is not None:
        return empty_figure(problem)
    values = None
    if color_by == "activation":
        values = _activations_of_input(info, names, epoch, int(input_index or 0))
    return network.build_network_graph(
        names,
        kernels,
        biases,
        input_size=kernels[0].shape[0],
        node_values=values,
        color_by=color_by or "bias",
        title=f"epoch {epoch}",
        thumbnails=run_neurons.thumbnails_at(info, epoch) if is_2d(info) else None,
    )


def _activations_of_input(info: RunInfo, names: list[str], epoch: int, i: int):
    data = context.current().data
    probe = data.arrays(info.id).get("probe/x")
    if probe is None or not len(probe):
        return None
    i = int(np.clip(i, 0, len(probe) - 1))
    values = [probe[i]]
    for name in names:
        _, sig = data.at_epoch(info, f"signatures/{name}", epoch)
        values.append(sig[i] if sig is not None else np.zeros(0))
    return values


@callback(
    Output(ids.GRAPH3D, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def network3d_view(tab, index, run_id):
    active(tab, "network3d")
    info, epochs, epoch = _context(run_id, index)
    if not is_spec_run(info) and (fig := module_view(info, epochs, epoch, True)) is not None:
        return fig
    names, kernels, biases = weights_at(info, epoch)
    if (problem := why_no_graph(epochs, kernels)) is not None:
        return empty_figure(problem)
    return network.build_network_3d(
        names, kernels, biases, input_size=kernels[0].shape[0], title=f"epoch {epoch}"
    )


@callback(
    Output(ids.ACT_STATS, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.ACT_LAYER, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def activation_view(tab, index, layer, run_id):
    active(tab, "activations")
    info, _, epoch = _context(run_id, index)
    epochs, metrics = context.current().data.metrics(info)
    if layer and f"act/{layer}/mean" not in metrics and not is_spec_run(info):
        # the user's loop records no statistics: compute them from the module's outputs
        sig_epochs, values = context.current().data.history(info, f"signatures/{layer}")
        if len(sig_epochs):
            stats = curves.activation_stats_from_signatures(values, layer)
            fig = curves.build_activation_stats_figure(
                sig_epochs, stats, layer, current_epoch=epoch
            )
            return fig.update_layout(
                title_text=f"Activations of {layer} · computed from what the module "
                "returned on the probe inputs (no statistics were logged)"
            )
    if not layer or f"act/{layer}/mean" not in metrics:
        return empty_figure(
            "No activation statistics for this run (it has no probe inputs, "
            "or an older NetLens recorded it)"
        )
    return curves.build_activation_stats_figure(epochs, metrics, layer, current_epoch=epoch)


@callback(
    Output(ids.BOUNDARY, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def boundary_view(tab, index, run_id):
    active(tab, "boundary")
    info, _, epoch = _context(run_id, index)
    data = context.current().data
    arrays = data.arrays(run_id)
    found, grid_out = data.at_epoch(info, "grid/output", epoch)
    if grid_out is None or "grid/x" not in arrays:
        return empty_figure("No decision-boundary grid recorded for this run")
    return boundary.build_decision_boundary(
        arrays["grid/x"],
        grid_out,
        arrays["probe/x"],
        arrays["probe/y"],
        class_names=info.data_info.get("class_names"),
        title=f"epoch {found}",
    )


@callback(
    Output(ids.REPRESENTATION, "figure"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.REP_LAYER, "value"),
    Input(ids.REP_COLOR, "value"),
    State(ids.RUN_ID, "data"),
)
@friendly(1)
@rule("member")
def representation_view(tab, index, layer, color_by, run_id):
    active(tab, "representation")
    info, epochs, epoch = _context(run_id, index)
    if not layer or not len(epochs):
        return empty_figure("No hidden layer recorded yet")
    rep = representation_points(info, epochs, layer, epoch)
    if rep is None:
        return empty_figure("No probe signatures recorded")
    points, projection_name, axis_range, labels, correct, is_ood = rep
    names = dict(
        zip(info.data_info.get("classes", []), info.data_info.get("class_names", []), strict=False)
    )
    return representation.build_hidden_representation(
        points,
        labels,
        correct=correct,
        color_by=color_by or "class",
        class_names=names,
        is_ood=is_ood,
        axis_range=axis_range,
        axis_titles=projection_name,
        title=f"{layer} at epoch {epoch}",
    )


def representation_points(info: RunInfo, epochs: np.ndarray, layer: str, epoch: int):
    """Points of every probe input at `epoch` in a projection fixed for the whole run (fitted
    on the last epoch), with axes covering a sample of epochs so that they never jump."""
    data = context.current().data
    arrays = data.arrays(info.id)
    flat = representation.flatten_signatures  # (P, ...) -> (P, features): conv outputs too

    def at(e: int):
        return data.at_epoch(info, f"signatures/{layer}", int(e))[1]

    reference, current = at(int(epochs[-1])), at(epoch)
    _, out = data.at_epoch(info, "signatures/output", epoch)
    if reference is None or current is None:
        return None
    reference, current = flat(reference), flat(current)
    projection = representation.fit_projection(reference)
    sample = epochs[np.unique(np.linspace(0, len(epochs) - 1, 12).astype(int))]
    seen = [projection.apply(flat(v)) for v in (at(e) for e in sample) if v is not None]
    axis_range = representation.stable_range(seen)
    is_ood = arrays.get("probe/is_ood")
    if is_ood is None:
        is_ood = np.zeros(len(current), bool)
    labels, correct = arrays.get("probe/y"), None
    if labels is None:  # a recorder run without probe labels: one group
        labels = np.zeros(len(current), np.int64)
    elif out is not None and len(arrays.get("classes", [])):
        out = flat(out)
        if out.shape[1] in (1, len(arrays["classes"])):
            predicted = outputs.predicted_classes(out, arrays["classes"])
            correct = np.where(is_ood, False, predicted == labels)
    units = current.shape[1]
    names = (
        ("unit 1", "unit 2") if units == 2 else ("PC 1", "PC 2") if units > 2 else ("unit 1", "")
    )
    return projection.apply(current), names, axis_range, labels, correct, is_ood
