"""Run.figure(view): the run page's figures by view name, for notebooks.

The figures are drawn by the page's own builders (netlens.webapp.figures: numpy in, plotly
out); this module only reads the run through the methods every run handle has
(netlens.sdk.reading.RunBase: a local Run reads storage/, a RemoteRun the REST API), the way
the run page's views do (webapp/views/run.py), at full resolution. A view with nothing to
draw raises ValueError with the page's sentence instead of returning an empty figure.

Views (VIEWS): loss, accuracy, metrics, gradients, trajectories, weights, outputs, network,
network3d, activations, boundary, neurons, representation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from netlens.sdk.reading import RunBase as Run

VIEWS = {
    "loss": "training and validation loss over the epochs (Loss & accuracy tab)",
    "accuracy": "training and validation accuracy over the epochs (Loss & accuracy tab)",
    "metrics": "every logged metric over the epochs",
    "gradients": "the gradient norm of each layer over the epochs (Gradients tab)",
    "trajectories": "one neuron's incoming weights and bias over the epochs (layer=, neuron=)",
    "weights": "a layer's weight distribution over the epochs (layer=)",
    "outputs": "each probe input's network output over the epochs (Outputs per input tab)",
    "network": "the network graph at the epoch, dense layers (color_by=, input_index=)",
    "network3d": "the network in 3-D at the epoch, dense layers",
    "activations": "a hidden layer's activation statistics over the epochs (layer=)",
    "boundary": "the decision boundary at the epoch (2-D datasets)",
    "neurons": "each hidden unit's output over the input plane at the epoch (2-D datasets)",
    "representation": "a layer's probe signatures projected to 2-D at the epoch (layer=)",
}


def run_figure(run: Run, view: str, epoch: int | None = None, **options: Any):
    if view not in VIEWS:
        raise ValueError(
            f"view: {view!r} is not a view of the run page; choose from {', '.join(VIEWS)}"
        )
    unknown = set(options) - _OPTIONS[view]
    if unknown:
        raise TypeError(
            f"{', '.join(sorted(unknown))}: not an option of view {view!r} "
            f"(its options: {', '.join(sorted(_OPTIONS[view])) or 'none'})"
        )
    info = run.info
    recorded = run.epochs
    if not len(recorded):
        raise ValueError(f"epoch: run {run.id} has no epoch recorded yet")
    if epoch is None:
        epoch = int(recorded[-1])
    elif epoch not in set(recorded.tolist()):
        raise ValueError(
            f"epoch: {epoch} is not recorded in run {run.id} (epochs {int(recorded[0])} to "
            f"{int(recorded[-1])}, {len(recorded)} recorded)"
        )
    return _BUILDERS[view](run, info, int(epoch), **options)


def _nothing(message: str):
    raise ValueError(message)


def _layer_names(info) -> list[str]:
    return [layer["name"] for layer in info.layers]


def _pick_layer(info, layer: str | None, default: str | None) -> str:
    names = _layer_names(info)
    chosen = layer or default
    if chosen is None or chosen not in names:
        raise ValueError(f"layer: {chosen!r} is not a layer of this run ({', '.join(names)})")
    return chosen


# ---- curves ------------------------------------------------------------------------------------


def _curves(run, title: str, y_title: str, wanted, epoch: int):
    from netlens.webapp.figures import curves

    epochs, metrics = _metrics(run)
    series = wanted(metrics)
    if not series:
        _nothing(f"{title}: no such metric recorded (metrics: {', '.join(metrics) or 'none'})")
    return curves.build_metric_curves(
        epochs, series, title=title, y_title=y_title, current_epoch=epoch
    )


def _metrics(run):
    return run._metric_arrays()  # what run.metrics() tabulates, as arrays


def _named(metrics, page: tuple[str, ...], word: str):
    """The page's metrics when the run has them (spec runs), else every metric whose name
    contains `word` (nl.Recorder runs name their own)."""
    found = {k: metrics[k] for k in page if k in metrics}
    return found or {k: v for k, v in metrics.items() if word in k and not k.startswith("act/")}


def _loss(run, info, epoch):
    return _curves(
        run,
        "Loss",
        "cross-entropy" if _is_spec_run(info) else "loss",
        lambda m: _named(m, ("train_loss", "val_loss"), "loss"),
        epoch,
    )


def _accuracy(run, info, epoch):
    return _curves(
        run,
        "Accuracy",
        "accuracy",
        lambda m: _named(m, ("train_accuracy", "val_accuracy"), "acc"),
        epoch,
    )


def _all_metrics(run, info, epoch):
    return _curves(run, "Metrics", "value", lambda m: dict(m), epoch)


def _gradients(run, info, epoch):
    return _curves(
        run,
        "Gradient norm per layer",
        "L2 norm (mean over the epoch's batches)",
        lambda m: {k: v for k, v in m.items() if k.startswith("grad_norm/")},
        epoch,
    )


def _activations(run, info, epoch, layer: str | None = None):
    from netlens.webapp.figures import curves

    names = _layer_names(info)
    layer = _pick_layer(info, layer, names[0] if len(names) > 1 else None)
    epochs, metrics = _metrics(run)
    if f"act/{layer}/mean" not in metrics and not _is_spec_run(info):
        # as the page: computed from what the module returned on the probe inputs
        name = f"signatures/{layer}"
        if name in run.tensor_names:
            sig_epochs, values = run.tensor(name, with_epochs=True)
            stats = curves.activation_stats_from_signatures(values, layer)
            fig = curves.build_activation_stats_figure(
                sig_epochs, stats, layer, current_epoch=epoch
            )
            return fig.update_layout(
                title_text=f"Activations of {layer} · computed from what the module "
                "returned on the probe inputs (no statistics were logged)"
            )
    if f"act/{layer}/mean" not in metrics:
        _nothing(
            "activations: no activation statistics for this run (NetLens computes them for "
            "the runs it trains; nl.Recorder runs have their signatures instead)"
        )
    return curves.build_activation_stats_figure(epochs, metrics, layer, current_epoch=epoch)


def _is_spec_run(info) -> bool:
    from netlens.storage.catalog import MODEL_KINDS

    kind = info.spec.get("model", {}).get("kind")
    return kind in MODEL_KINDS and MODEL_KINDS[kind].trainable


# ---- parameters ---------------------------------------------------------------------------------


def _kernel_history(run, info, layer: str | None):
    layer = _pick_layer(info, layer, (_layer_names(info) or [None])[-1])
    name = f"params/{layer}/kernel"
    if name not in run.tensor_names:
        _nothing(f"layer: {layer!r} has no kernel (params/{layer}/kernel) recorded")
    epochs, kernel = run.tensor(name, with_epochs=True)
    bias_name = f"params/{layer}/bias"
    bias = run.tensor(bias_name) if bias_name in run.tensor_names else None
    return layer, epochs, kernel, bias


def _trajectories(run, info, epoch, layer: str | None = None, neuron: int = 0):
    from netlens.webapp.figures import params

    layer, epochs, kernel, bias = _kernel_history(run, info, layer)
    kernel2d = kernel.reshape(len(kernel), -1, kernel.shape[-1])  # conv: (3*3*in, out)
    if bias is None:
        bias = np.zeros((len(kernel), kernel2d.shape[-1]), np.float32)
    names = _layer_names(info)
    position = names.index(layer)
    source = "x" if position == 0 else names[position - 1]
    inputs = [f"{source}[{i}]" for i in range(kernel2d.shape[1])]
    units = kernel2d.shape[-1]
    if not 0 <= int(neuron) < units:
        raise ValueError(f"neuron: {neuron} is out of range: {layer} has {units} units")
    return params.build_neuron_trajectories(
        epochs, kernel2d, bias, int(neuron), input_names=inputs, current_epoch=epoch
    )


def _weights(run, info, epoch, layer: str | None = None):
    from netlens.webapp.figures import params

    layer, epochs, kernel, _ = _kernel_history(run, info, layer)
    return params.build_weight_histogram_heatmap(
        epochs,
        kernel.reshape(len(kernel), -1),
        title=f"{layer} weights over epochs",
        current_epoch=epoch,
    )


# ---- outputs and the network ------------------------------------------------------------------


def _outputs(run, info, epoch):
    from netlens.webapp.figures import outputs

    arrays = run.arrays()
    if "signatures/output" not in run.tensor_names or "probe/y" not in arrays:
        _nothing("outputs: no probe outputs (signatures/output) or probe labels recorded")
    epochs, values = run.tensor("signatures/output", with_epochs=True)
    values, note = values.reshape(len(values), values.shape[1], -1), None
    if not _is_spec_run(info):  # a user's model may return logits (as the page)
        values, note = outputs.as_probabilities(values)
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


def _dense_layers(run, info, epoch):
    """The layers the network views draw: a spec run's, or an nl.Recorder run's dense
    modules (nnx.Linear) when they form one chain (each one's inputs the previous one's
    units)."""
    names = _layer_names(info)
    if not _is_spec_run(info):
        root = (info.data_info.get("recorder") or {}).get("root", "output")
        names = [layer["name"] for layer in info.layers if layer["name"] != root]
    kernels, biases = [], []
    for name in names:
        kernel = f"params/{name}/kernel"
        if kernel not in run.tensor_names or run.tensor(kernel, epoch).ndim != 2:
            _nothing(
                "network: the network views draw dense layers; this run has "
                f"{name!r}, which is not one"
            )
        kernels.append(run.tensor(kernel, epoch))
        biases.append(run.tensor(f"params/{name}/bias", epoch))
    if not names:
        _nothing("network: no dense layers recorded")
    for before, after, name in zip(kernels, kernels[1:], names[1:], strict=False):
        if before.shape[1] != after.shape[0]:
            _nothing(
                f"network: the dense layers do not form one chain ({name} takes "
                f"{after.shape[0]} inputs, the layer before it has {before.shape[1]} units)"
            )
    return names, kernels, biases


def _module_graph(run, info, epoch, three_d: bool = False):
    """As the page (webapp/views/run.py module_view): None for a chain of dense modules (the
    model's own output aside), drawn neuron by neuron; else the modules in call order with
    edges by weight norm."""
    from netlens.webapp.figures import network

    root = (info.data_info.get("recorder") or {}).get("root", "output")
    modules = [m for m in info.layers if m["name"] != root] or list(info.layers)
    names = set(run.tensor_names)
    if modules and all(m.get("kind") == "dense" for m in modules):
        kernels = [
            run.tensor(f"params/{m['name']}/kernel", epoch)
            if f"params/{m['name']}/kernel" in names
            else None
            for m in modules
        ]
        if all(k is not None and k.ndim == 2 for k in kernels) and all(
            a.shape[1] == b.shape[0] for a, b in zip(kernels, kernels[1:], strict=False)
        ):
            return None
    if not info.layers:
        _nothing("network: no modules recorded for this run")
    norms = []
    for m in info.layers:
        leaves = [
            run.tensor(f"params/{m['name']}/{leaf}", epoch)
            for leaf in m.get("params") or {}
            if f"params/{m['name']}/{leaf}" in names
        ]
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


def _network(run, info, epoch, color_by: str = "bias", input_index: int = 0):
    from netlens.webapp.figures import network

    if not _is_spec_run(info) and (fig := _module_graph(run, info, epoch)) is not None:
        return fig

    names, kernels, biases = _dense_layers(run, info, epoch)
    values = None
    if color_by == "activation":
        probe = run.arrays().get("probe/x")
        if probe is not None and len(probe):
            i = int(np.clip(input_index, 0, len(probe) - 1))
            values = [probe[i]] + [run.signatures(n, epoch)[i] for n in names]
    thumbnails = None
    if "grid/x" in run.arrays() and all(x["units"] <= 16 for x in info.layers[:-1]):
        found = _neuron_maps(run, info, epoch, quiet=True)
        if found is not None:
            from netlens.webapp.figures import neurons

            thumbnails = neurons.thumbnail_uris(*found[1:5])
    return network.build_network_graph(
        names,
        kernels,
        biases,
        input_size=kernels[0].shape[0],
        node_values=values,
        color_by=color_by,
        title=f"epoch {epoch}",
        thumbnails=thumbnails,
    )


def _network3d(run, info, epoch):
    from netlens.webapp.figures import network

    if not _is_spec_run(info) and (fig := _module_graph(run, info, epoch, True)) is not None:
        return fig

    names, kernels, biases = _dense_layers(run, info, epoch)
    return network.build_network_3d(
        names, kernels, biases, input_size=kernels[0].shape[0], title=f"epoch {epoch}"
    )


def _boundary(run, info, epoch):
    from netlens.webapp.figures import boundary

    arrays = run.arrays()
    if "grid/output" not in run.tensor_names or "grid/x" not in arrays:
        _nothing("boundary: no decision-boundary grid recorded for this run (2-D datasets)")
    epochs, _ = run.tensor("grid/output", slice(0, epoch + 1), with_epochs=True)
    found = int(epochs[-1])
    return boundary.build_decision_boundary(
        arrays["grid/x"],
        run.tensor("grid/output", found),
        arrays["probe/x"],
        arrays["probe/y"],
        class_names=info.data_info.get("class_names"),
        title=f"epoch {found}",
    )


def _neuron_maps(run, info, epoch, quiet: bool = False):
    """(grid epoch, grid/x, {layer: maps}, activations, colour ranges) at the latest grid
    epoch <= epoch, as the page's Neuron maps view reads them (None when quiet and there are
    none)."""
    from netlens.webapp.figures import neurons

    why = neurons.why_no_maps(info.layers, info.spec, run.tensor_names)
    hidden = info.layers[:-1]
    grid_epochs = np.asarray(run._tensor_epochs(f"grid/{hidden[0]['name']}")) if not why else []
    before = [int(e) for e in grid_epochs if e <= epoch]
    if not before:
        if quiet:
            return None
        _nothing(f"neurons: {why or f'no neuron maps recorded at or before epoch {epoch}'}")
    found = before[-1]
    maps = {x["name"]: run.tensor(f"grid/{x['name']}", found) for x in hidden}
    ranges = neurons.run_color_ranges(
        hidden, grid_epochs, lambda name, e: run.tensor(f"grid/{name}", e)
    )
    activations = {x["name"]: x["activation"] for x in hidden}
    return found, run.arrays()["grid/x"], maps, activations, ranges


def _neurons(run, info, epoch):
    from netlens.webapp.figures import neurons

    found, grid_x, maps, activations, ranges = _neuron_maps(run, info, epoch)
    arrays = run.arrays()
    return neurons.neuron_maps_figure(
        grid_x,
        maps,
        activations,
        color_ranges=ranges,
        points_x=arrays.get("probe/x"),
        points_y=arrays.get("probe/y"),
        title=neurons.maps_title(found, epoch),
    )


def _bottleneck(info) -> str | None:
    hidden = info.layers[:-1]
    if not hidden:
        return None
    return min(hidden, key=lambda layer: (layer["units"], -hidden.index(layer)))["name"]


def _representation(run, info, epoch, layer: str | None = None, color_by: str = "class"):
    from netlens.webapp.figures import outputs, representation

    layer = _pick_layer(info, layer, _bottleneck(info))
    arrays = run.arrays()
    epochs = run.tensor(f"signatures/{layer}", with_epochs=True)[0]

    def flat(e: int) -> np.ndarray:
        values = run.signatures(layer, int(e))
        return values.reshape(len(values), -1)

    projection = representation.fit_projection(flat(epochs[-1]))
    sample = epochs[np.unique(np.linspace(0, len(epochs) - 1, 12).astype(int))]
    axis_range = representation.stable_range([projection.apply(flat(e)) for e in sample])
    current = flat(epoch)
    labels = arrays.get("probe/y")
    if labels is None:
        labels = np.zeros(len(current), np.int64)
    is_ood = arrays.get("probe/is_ood")
    correct = None
    classes = arrays.get("classes")
    if arrays.get("probe/y") is not None and classes is not None and len(classes):
        # probabilities (a spec run) or logits (often, a user's model): as the page
        out = run.signatures("output", epoch)
        out = out.reshape(len(out), -1)
        if out.shape[1] in (1, len(classes)):
            predicted = outputs.predicted_classes(out, classes)
            ood = np.zeros(len(out), bool) if is_ood is None else np.asarray(is_ood, bool)
            correct = np.where(ood, False, predicted == labels)
    units = current.shape[1]
    axes = ("unit 1", "unit 2") if units == 2 else ("PC 1", "PC 2") if units > 2 else ("unit 1", "")
    names = dict(
        zip(info.data_info.get("classes", []), info.data_info.get("class_names", []), strict=False)
    )
    return representation.build_hidden_representation(
        projection.apply(current),
        labels,
        correct=correct,
        color_by=color_by if correct is not None or color_by == "class" else "class",
        class_names=names,
        is_ood=is_ood,
        axis_range=axis_range,
        axis_titles=axes,
        title=f"{layer} at epoch {epoch}",
    )


_BUILDERS = {
    "loss": _loss,
    "accuracy": _accuracy,
    "metrics": _all_metrics,
    "gradients": _gradients,
    "trajectories": _trajectories,
    "weights": _weights,
    "outputs": _outputs,
    "network": _network,
    "network3d": _network3d,
    "activations": _activations,
    "boundary": _boundary,
    "neurons": _neurons,
    "representation": _representation,
}
_OPTIONS = {
    "trajectories": {"layer", "neuron"},
    "weights": {"layer"},
    "network": {"color_by", "input_index"},
    "activations": {"layer"},
    "representation": {"layer", "color_by"},
}
_OPTIONS = {view: _OPTIONS.get(view, set()) for view in VIEWS}
