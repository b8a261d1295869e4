"""Each lesson section's live views: figures from the run page's builders, and the facts computed
from the same arrays, as Dash components."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import dcc, html

from netlens.webapp.figures import boundary, curves, outputs, params, representation
from netlens.webapp.figures.common import base_layout, class_color, empty_figure
from netlens.webapp.learn import facts as F
from netlens.webapp.learn import facts_sets as S
from netlens.webapp.learn.reading import RunArrays, at, full
from netlens.webapp.views.common import graph_config
from netlens.worker.datasets.synthetic import TWO_REGIONS_CENTRES

NEURON_MAPS_TAB = "neurons"  # the run page's Neuron maps tab


def fact_list(facts: list[F.Fact], key: str) -> html.Ul:
    """The computed statements; a fact that breaks the lesson's expectation is marked."""
    return html.Ul(
        [
            html.Li(f.text, className="learn-fact" + ("" if f.ok else " text-danger fw-bold"))
            for f in facts
        ],
        className=f"learn-facts learn-facts-{key}",
    )


def shown(facts: list[F.Fact], *runs: RunArrays) -> list[F.Fact]:
    """While a run trains, a verdict that it failed would be premature: only what already
    holds is stated (the page says the run is still training)."""
    return facts if all(r.info.is_finished for r in runs) else [f for f in facts if f.ok]


def figure(fig: go.Figure, key: str, height: int = 320) -> dcc.Graph:
    return dcc.Graph(
        figure=fig,
        id=f"learn-fig-{key}",
        config=graph_config(f"learn-{key}", responsive=False),
        style={"height": f"{height}px"},
        className="learn-graph",
    )


def pair(left: dcc.Graph, right: dcc.Graph) -> dbc.Row:
    """Two figures side by side from the md breakpoint (768 px) up, stacked below it."""
    return dbc.Row([dbc.Col(left, md=6), dbc.Col(right, md=6)], className="g-2 learn-pair")


def _epoch(run: RunArrays, index: int | None) -> int:
    epochs = run.epochs
    i = len(epochs) - 1 if index is None else int(np.clip(index, 0, len(epochs) - 1))
    return int(epochs[i])


def curves_view(run: RunArrays, index: int | None, target: float = 1.0) -> list:
    e = _epoch(run, index)
    loss = {"train loss": run.metrics["train_loss"]}
    acc = {"train accuracy": run.metrics["train_accuracy"]}
    return [
        pair(
            figure(
                curves.build_metric_curves(
                    run.epochs, loss, title="Error", y_title="cross-entropy", current_epoch=e
                ),
                "loss",
            ),
            figure(
                curves.build_metric_curves(
                    run.epochs, acc, title="Accuracy", y_title="share right", current_epoch=e
                ),
                "accuracy",
            ),
        ),
        fact_list(
            shown(
                [
                    F.loss_fall(run.epochs, run.metrics["train_loss"]),
                    F.accuracy_reached(run.epochs, run.metrics["train_accuracy"], target),
                ],
                run,
            ),
            "curves",
        ),
    ]


def single_neuron_view(run: RunArrays) -> list:
    acc = {"train accuracy": run.metrics["train_accuracy"]}
    fig = curves.build_metric_curves(
        run.epochs, acc, title="One neuron: accuracy", y_title="share right"
    )
    if not run.info.is_finished:  # "never" only once the run is over
        return [figure(fig, "baseline", 260), html.P(still_training(run), className="small")]
    fact = F.best_accuracy_of_single_neuron(
        run.epochs, run.metrics["train_accuracy"], len(run.static["probe/y"])
    )
    return [figure(fig, "baseline", 260), fact_list([fact], "baseline")]


def still_training(run: RunArrays) -> str:
    return (
        f"Still training (epoch {int(run.epochs[-1])} of {run.info.epochs_total}): the "
        "statements below are about the epochs recorded so far."
    )


def baseline_compare_view(run: RunArrays, main: RunArrays | None) -> list:
    """Lesson 2's baseline: the shallower network's accuracy, and which learned first."""
    acc = {"2-3-1 accuracy": run.metrics["train_accuracy"]}
    if main is not None:
        acc["deeper accuracy"] = np.interp(run.epochs, main.epochs, main.metrics["train_accuracy"])
    shallow = F.accuracy_reached(run.epochs, run.metrics["train_accuracy"])
    found = [Fact_with_prefix("2-3-1: ", shallow)]
    if main is not None:
        deep = F.accuracy_reached(main.epochs, main.metrics["train_accuracy"])
        found.append(
            S.fastest_learner(
                {"the 2-3-1": shallow.numbers["epoch"], "the deeper network": deep.numbers["epoch"]}
            )
        )
    return [
        figure(
            curves.build_metric_curves(
                run.epochs, acc, title="Shallow against deep", y_title="share right"
            ),
            "baseline",
            260,
        ),
        fact_list(shown(found, run, *([main] if main is not None else [])), "baseline"),
    ]


def Fact_with_prefix(prefix: str, fact: F.Fact) -> F.Fact:  # noqa: N802 - reads as a constructor
    return F.Fact(prefix + fact.text, fact.ok, fact.numbers)


def outputs_view(run: RunArrays, index: int | None) -> list:
    e = _epoch(run, index)
    epochs, values = full(run, "signatures/output")
    y, x = run.static["probe/y"], run.static["probe/x"]
    values = values.reshape(len(values), values.shape[1], -1)
    fig = outputs.build_probe_outputs(
        epochs,
        values,
        y,
        [int(c) for c in run.static["classes"]],
        class_names=run.info.data_info.get("class_names"),
        current_epoch=e,
    )
    return [
        figure(fig, "outputs"),
        fact_list(shown([F.outputs_settled(epochs, values[:, :, 0], y, x)], run), "outputs"),
    ]


def params_view(run: RunArrays, index: int | None, neuron: int | None) -> list:
    e = _epoch(run, index)
    layer = run.hidden[0] if run.hidden else "output"
    epochs, kernel = full(run, f"params/{layer}/kernel")
    _, bias = full(run, f"params/{layer}/bias")
    units = kernel.shape[-1]
    k = int(np.clip(neuron or 0, 0, units - 1))
    fig = params.build_neuron_trajectories(
        epochs, kernel, bias, k, input_names=["x[0]", "x[1]"], current_epoch=e
    )
    names = [n for n in _param_names(run)]
    first = {n: full(run, n)[1][0] for n in names}
    last = {n: full(run, n)[1][-1] for n in names}
    return [figure(fig, "params"), fact_list([F.biggest_movers(first, last)], "params")]


def _param_names(run: RunArrays) -> list[str]:
    layers = [layer["name"] for layer in run.info.layers]
    return [f"params/{n}/{p}" for n in layers for p in ("kernel", "bias")]


def layer_z(run: RunArrays, position: int) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, pre-activations (E, P, units)) of hidden layer `position`."""
    layer = run.hidden[position]
    epochs, kernel = full(run, f"params/{layer}/kernel")
    _, bias = full(run, f"params/{layer}/bias")
    inputs = (
        run.static["probe/x"]
        if position == 0
        else full(run, f"signatures/{run.hidden[position - 1]}")[1]
    )
    return epochs, F.pre_activations(kernel, bias, inputs)


def lines_view(run: RunArrays, index: int | None, deep: bool = False) -> list:
    x, y = run.static["probe/x"], run.static["probe/y"]
    found = []
    for position, layer in enumerate(run.hidden[: 2 if deep else 1]):
        epochs, z = layer_z(run, position)
        found += F.unit_lines(epochs, z, y, x, layer)
        found.append(F.no_unit_separates(epochs, z, y, layer))
    parts = [boundary_view(run, index), fact_list(found, "lines")]
    if not deep:
        parts.append(neuron_maps_view(run, index))
    return parts


def neuron_maps_view(run: RunArrays, index: int | None) -> html.Div:
    """Each hidden neuron's output over the input square at the slider's epoch (the run page's
    Neuron maps figure): where a first-layer map changes colour is the line that neuron draws."""
    from netlens.webapp.views.run_neurons import maps_figure

    fig = maps_figure(run.info, _epoch(run, index))
    return html.Div(
        [
            html.P(
                [
                    html.Strong("Per-neuron maps: "),
                    "each hidden neuron's output over the input square. Where a map turns "
                    "from one colour to the other is the line that neuron draws; the four "
                    "points are drawn faintly on top. ",
                    dcc.Link(
                        "The same maps on the run page →",
                        href=f"/runs/{run.info.id}?tab={NEURON_MAPS_TAB}",
                    ),
                ],
                className="small mb-1",
            ),
            dcc.Graph(
                figure=fig,
                id="learn-fig-neurons",
                config=graph_config("learn-neurons", "Neuron maps", responsive=False, height=None),
                className="learn-graph",
            ),
        ],
        id="learn-neuron-maps-slot",
    )


def boundary_view(run: RunArrays, index: int | None) -> dcc.Graph:
    found, grid = at(run, "grid/output", _epoch(run, index))
    if grid is None or "grid/x" not in run.static:
        return figure(empty_figure("No decision-boundary grid recorded yet"), "boundary")
    return figure(
        boundary.build_decision_boundary(
            run.static["grid/x"],
            grid,
            run.static["probe/x"],
            run.static["probe/y"],
            class_names=run.info.data_info.get("class_names"),
            title=f"epoch {found}",
        ),
        "boundary",
        380,
    )


def bottleneck_view(run: RunArrays, index: int | None) -> list:
    e = _epoch(run, index)
    layer = run.hidden[-1]
    x, y = run.static["probe/x"], run.static["probe/y"]
    _, codes = at(run, f"signatures/{layer}", e)
    epochs, out = full(run, "signatures/output")
    if codes is None:
        return [figure(empty_figure("No signatures recorded yet"), "bottleneck")]
    codes = codes.reshape(len(codes), -1)
    pred = S.predicted(out[np.searchsorted(epochs, e)], run.static["classes"])
    fig = representation.build_hidden_representation(
        codes[:, :2],
        y,
        correct=pred == y,
        color_by="correct",
        class_names=run.class_names,
        is_ood=np.zeros(len(y), bool),
        axis_titles=("unit 0", "unit 1"),
        title=f"{layer} at epoch {e}",
    )
    found = S.groups_isolated(epochs, out, x, y, TWO_REGIONS_CENTRES, run.static["classes"])
    found.append(S.collapsed_inputs(codes, f"{layer} at epoch {e}"))
    return [figure(fig, "bottleneck", 420), fact_list(shown(found, run), "bottleneck")]


def separability_view(run: RunArrays, index: int | None) -> list:
    e = _epoch(run, index)
    layers = {n: at(run, f"signatures/{n}", e)[1] for n in run.hidden}
    if any(v is None for v in layers.values()):
        return [figure(empty_figure("No signatures recorded yet"), "separability")]
    y, ood = run.static["probe/y"], run.static["probe/is_ood"].astype(bool)
    fact = S.first_separating_layer(layers, y, ood)
    scores = fact.numbers["scores"]
    fig = go.Figure(go.Bar(x=list(scores), y=list(scores.values()), marker_color=class_color(0)))
    base_layout(fig, f"Nearest class mean, epoch {e}", "layer", "share told apart")
    fig.update_yaxes(range=[0, 1])
    return [figure(fig, "separability", 300), fact_list(shown([fact], run), "separability")]


def unseen_view(run: RunArrays, index: int | None) -> list:
    e = _epoch(run, index)
    _, out = at(run, "signatures/output", e)
    if out is None:
        return [figure(empty_figure("No outputs recorded yet"), "unseen")]
    y, ood = run.static["probe/y"], run.static["probe/is_ood"].astype(bool)
    pred = S.predicted(out.reshape(len(y), -1), run.static["classes"])
    names = run.class_names
    found = S.unseen_destinations(pred, y, ood, names) + [S.confused_inputs(pred, y, ood, names)]
    fig = go.Figure()
    for i, c in enumerate(run.static["classes"]):
        counts = [int(np.sum((y == g) & (pred == c))) for g in np.unique(y)]
        fig.add_bar(
            x=[f"true {names.get(int(g), g)}" for g in np.unique(y)],
            y=counts,
            name=f"predicted {names.get(int(c), c)}",
            marker_color=class_color(i),
        )
    base_layout(fig, f"What the network answers, epoch {e}", "probe inputs", "count")
    fig.update_layout(barmode="stack")
    link = dcc.Link(
        "Clusters, flow between layers (Sankey) and the unseen-class view →",
        href=f"/runs/{run.info.id}/signatures",
        className="small",
    )
    return [figure(fig, "unseen", 320), fact_list(shown(found, run), "unseen"), link]


def compare_view(runs: list[RunArrays], labels: list[str]) -> list:
    acc = {label: r.metrics["train_accuracy"] for label, r in zip(labels, runs, strict=True)}
    loss = {label: r.metrics["train_loss"] for label, r in zip(labels, runs, strict=True)}
    epochs = runs[0].epochs
    n = min(len(r.epochs) for r in runs)
    acc = {k: v[:n] for k, v in acc.items()}
    loss = {k: v[:n] for k, v in loss.items()}
    reached = {
        label: F.accuracy_reached(r.epochs, r.metrics["train_accuracy"])
        for label, r in zip(labels, runs, strict=True)
    }
    found = [Fact_with_prefix(f"{k}: ", f) for k, f in reached.items()]
    found.append(S.fastest_learner({k: f.numbers["epoch"] for k, f in reached.items()}))
    return [
        pair(
            figure(
                curves.build_metric_curves(
                    epochs[:n], acc, title="Accuracy", y_title="share right"
                ),
                "cmp-acc",
            ),
            figure(
                curves.build_metric_curves(
                    epochs[:n], loss, title="Error", y_title="cross-entropy"
                ),
                "cmp-loss",
            ),
        ),
        fact_list(shown(found, *runs), "compare"),
    ]
