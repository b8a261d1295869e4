"""Figure builders: trace structure, data in the traces, downsampling, empty inputs, no JAX."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.decomposition import PCA

from netlens.webapp.figures import (
    build_activation_stats_figure,
    build_architecture_sketch,
    build_dataset_preview,
    build_decision_boundary,
    build_hidden_representation,
    build_metric_curves,
    build_network_3d,
    build_network_graph,
    build_neuron_trajectories,
    build_probe_outputs,
    build_weight_histogram_heatmap,
    empty_figure,
    fit_projection,
    stable_range,
)
from netlens.webapp.figures.common import (
    OOD_COLOR,
    OOD_SYMBOL,
    TEMPLATE,
    class_color,
    deep_update,
    downsample_indices,
    plain_figure,
)
from netlens.webapp.figures.compare import overlaid_curves, run_color
from netlens.webapp.figures.network import network_graph, strongest_edges
from netlens.webapp.figures.neurons import (
    color_range,
    map_image,
    neuron_maps_figure,
    sample_epochs,
    thumbnail_uris,
)

ROOT = Path(__file__).resolve().parents[2]


def is_empty_figure(fig) -> bool:
    return (
        len(fig.data) == 0
        and len(fig.layout.annotations) == 1
        and fig.layout.xaxis.visible is False
        and fig.layout.yaxis.visible is False
        and bool(fig.layout.annotations[0].text)
    )


def n_segments(traces) -> int:
    """Line segments drawn by traces whose x lists are (start, end, None) triples."""
    return sum(len(t.x) // 3 for t in traces)


def vline_x(fig) -> list[float]:
    return [s.x0 for s in fig.layout.shapes if s.x0 == s.x1]


def decoded(spec) -> np.ndarray:
    """The values of a plotly.js typed-array spec ({"dtype", "bdata"})."""
    dtypes = {"i1": np.int8, "i2": np.int16, "i4": np.int32, "f4": np.float32, "f8": np.float64}
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtypes[spec["dtype"]])


# ---------------------------------------------------------------- common


def test_plain_figure_is_what_plotly_builds_from_the_same_properties():
    layout = {"template": TEMPLATE, "title": {"text": "t"}, "xaxis": {"range": [0, 1]}}
    data = [{"type": "scatter", "x": [0, 1], "y": [2, 3], "mode": "lines"}]
    plain = plain_figure(copy.deepcopy(data), layout)
    assert isinstance(plain["layout"]["template"], dict)  # plotly.js takes no template name
    built = go.Figure(data=[go.Scatter(x=[0, 1], y=[2, 3], mode="lines")])
    built.update_layout(template=TEMPLATE, title={"text": "t"}, xaxis={"range": [0, 1]})
    assert go.Figure(plain).to_json() == built.to_json()
    with pytest.raises(ValueError, match="nosuchproperty"):  # go.Figure validates plain ones
        go.Figure(plain_figure([{"type": "scatter", "nosuchproperty": 1}], {}))


def test_deep_update_merges_like_update_layout():
    start = {
        "title": {"text": "a", "font": {"size": 14, "color": "red"}},
        "margin": {"l": 1},
        "legend": {"x": 0.5},
    }
    changes = {
        "title": {"font": {"size": 9}},
        "margin": {"r": 2},
        "legend": {"x": 0},
        "showlegend": False,
    }
    expected = go.Figure(layout=start).update_layout(changes).layout.to_plotly_json()
    assert (
        go.Figure(layout=deep_update(copy.deepcopy(start), changes)).layout.to_plotly_json()
        == expected
    )


def test_empty_figure_is_a_message_without_axes():
    fig = empty_figure("nothing here")
    assert is_empty_figure(fig)
    assert fig.layout.annotations[0].text == "nothing here"
    assert fig.layout.annotations[0].x == 0.5 and fig.layout.annotations[0].y == 0.5


@pytest.mark.parametrize("n, max_points", [(5000, 1000), (1001, 1000), (10, 1000), (7, 2), (2, 1)])
def test_downsample_indices_keep_ends_and_limit(n, max_points):
    idx = downsample_indices(n, max_points)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert idx.size <= max(max_points, 2)
    assert np.all(np.diff(idx) > 0)


# ---------------------------------------------------------------- curves


def test_metric_curves_one_line_per_series_with_friendly_names():
    epochs = np.arange(50)
    loss = np.linspace(1, 0.1, 50)
    val = loss + 0.1
    val[10:15] = np.nan
    fig = build_metric_curves(
        epochs,
        {"train_loss": loss, "val_loss": val},
        title="Loss",
        y_title="loss",
        current_epoch=20,
    )
    assert [t.type for t in fig.data] == ["scatter", "scatter"]
    assert [t.name for t in fig.data] == ["train loss", "val loss"]
    np.testing.assert_array_equal(fig.data[0].y, loss)
    assert np.isnan(np.asarray(fig.data[1].y, float)[10:15]).all()
    assert vline_x(fig) == [20.0]
    assert fig.layout.title.text == "Loss"
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis.title.text == "loss"
    assert fig.layout.uirevision is not None and fig.layout.template.layout.font is not None


def test_metric_curves_grad_norm_names_and_downsampling():
    epochs = np.arange(5000) * 2
    series = {"grad_norm/hidden_1": np.sin(np.arange(5000.0)), "grad_norm/output": np.ones(5000)}
    fig = build_metric_curves(epochs, series, title="Gradients", y_title="norm", max_points=1000)
    assert [t.name for t in fig.data] == ["hidden_1", "output"]
    x = np.asarray(fig.data[0].x)
    assert x.size <= 1000 and x[0] == 0 and x[-1] == 9998
    np.testing.assert_allclose(fig.data[0].y, np.sin(x / 2))
    assert vline_x(fig) == []


def test_metric_curves_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        build_metric_curves(np.arange(5), {"train_loss": np.ones(4)}, title="t", y_title="y")


def _act_metrics(n: int) -> dict:
    t = np.linspace(0, 1, n)
    return {
        "act/hidden_1/mean": 0.5 + t,
        "act/hidden_1/std": 0.1 + 0 * t,
        "act/hidden_1/min": 0 * t,
        "act/hidden_1/max": 2 + t,
        "act/hidden_1/dead": np.floor(4 * t),
        "act/hidden_1/saturated": np.zeros(n),
    }


def test_activation_stats_band_lines_and_unit_counts_on_right_axis():
    fig = build_activation_stats_figure(
        np.arange(30), _act_metrics(30), "hidden_1", current_epoch=3
    )
    by_name = {t.name: t for t in fig.data if t.name}
    mean = _act_metrics(30)["act/hidden_1/mean"]
    np.testing.assert_allclose(by_name["mean"].y, mean)
    band = by_name["mean ± std"]
    assert band.fill == "tonexty"
    np.testing.assert_allclose(band.y, mean - 0.1)
    upper = fig.data[list(fig.data).index(band) - 1]
    np.testing.assert_allclose(upper.y, mean + 0.1)
    assert {"min", "max", "dead units", "saturated units"} <= set(by_name)
    assert by_name["dead units"].yaxis == "y2" and by_name["dead units"].line.shape == "hv"
    assert by_name["mean"].yaxis == "y"
    assert fig.layout.yaxis.title.text == "activation"
    assert fig.layout.yaxis2.title.text == "units"
    assert vline_x(fig) == [3.0]


def test_activation_stats_downsamples():
    fig = build_activation_stats_figure(
        np.arange(3000), _act_metrics(3000), "hidden_1", max_points=500
    )
    for trace in fig.data:
        assert len(trace.x) <= 500 and trace.x[0] == 0 and trace.x[-1] == 2999


# ---------------------------------------------------------------- params


def test_neuron_trajectories_bias_and_weight_lines():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(40, 3, 5))
    bias = rng.normal(size=(40, 5))
    fig = build_neuron_trajectories(
        np.arange(40), kernel, bias, 2, input_names=["a", "b", "c"], current_epoch=7
    )
    assert len(fig.data) == 4
    bias_trace = fig.data[-1]
    assert bias_trace.name == "bias" and bias_trace.line.color == "black"
    assert bias_trace.line.width >= 3
    np.testing.assert_array_equal(bias_trace.y, bias[:, 2])
    for i, trace in enumerate(fig.data[:3]):
        np.testing.assert_array_equal(trace.y, kernel[:, i, 2])
        assert trace.name == f"w from {'abc'[i]}"
    assert vline_x(fig) == [7.0]
    assert fig.layout.xaxis.title.text == "epoch"


def test_neuron_trajectories_show_the_weights_that_changed_most():
    kernel = np.zeros((1500, 50, 2))
    movers = [3, 17, 41]
    for k, i in enumerate(movers):
        kernel[:, i, 1] = np.linspace(0, 1 + k, 1500)
    bias = np.tile(np.linspace(-1, 1, 1500)[:, None], (1, 2))
    fig = build_neuron_trajectories(np.arange(1500), kernel, bias, 1, max_lines=3, max_points=200)
    assert [t.name for t in fig.data] == [f"w from in {i}" for i in movers] + ["bias"]
    assert "3 of 50" in fig.layout.title.text
    x = np.asarray(fig.data[-1].x)
    assert x.size <= 200 and x[0] == 0 and x[-1] == 1499
    np.testing.assert_allclose(fig.data[-1].y, bias[x, 1])


def test_neuron_trajectories_unknown_neuron_is_an_empty_figure():
    fig = build_neuron_trajectories(np.arange(3), np.zeros((3, 2, 2)), np.zeros((3, 2)), 5)
    assert is_empty_figure(fig) and "5" in fig.layout.annotations[0].text


def test_weight_histogram_counts_every_value_in_fixed_bins():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(30, 200)) * np.linspace(0.1, 2, 30)[:, None]
    values[5, 0] = 1e6  # an outlier lands in the last bin instead of stretching the range
    fig = build_weight_histogram_heatmap(np.arange(30), values, title="w", bins=25, current_epoch=4)
    heat = fig.data[0]
    z = np.asarray(heat.z)
    assert heat.type == "heatmap" and z.shape == (25, 30)
    np.testing.assert_array_equal(z.sum(axis=0), np.full(30, 200))
    assert len(heat.y) == 25 and np.asarray(heat.y).max() < 100
    assert z[-1, 5] >= 1
    assert vline_x(fig) == [4.0]
    assert fig.layout.yaxis.title.text == "value" and fig.layout.title.text == "w"


def test_weight_histogram_downsamples_epochs_and_accepts_kernels():
    values = np.random.default_rng(2).normal(size=(1200, 4, 6))
    fig = build_weight_histogram_heatmap(np.arange(1200), values, title="k", max_epochs=500)
    heat = fig.data[0]
    x = np.asarray(heat.x)
    assert x.size <= 500 and x[0] == 0 and x[-1] == 1199
    np.testing.assert_array_equal(np.asarray(heat.z).sum(axis=0), np.full(x.size, 24))


# ---------------------------------------------------------------- outputs


def _xor_outputs(n_epochs=20):
    labels = np.array([0, 1, 1, 0])
    t = np.linspace(0, 1, n_epochs)[:, None]
    return labels, 0.5 + (labels - 0.5) * t


def test_probe_outputs_binary_lines_and_targets():
    labels, out = _xor_outputs()
    fig = build_probe_outputs(
        np.arange(20),
        out[:, :, None],
        labels,
        [0, 1],
        class_names=["false", "true"],
        current_epoch=5,
    )
    targets = [t for t in fig.data if t.line.dash == "dot"]
    lines = [t for t in fig.data if t.line.dash != "dot"]
    assert len(lines) == 4 and len(targets) == 2
    for p, trace in enumerate(lines):
        np.testing.assert_allclose(trace.y, out[:, p])
        assert trace.line.color == class_color(labels[p])
    assert sorted((t.y[0], t.line.color) for t in targets) == [
        (0, class_color(0)),
        (1, class_color(1)),
    ]
    assert fig.layout.yaxis.title.text == "P(true)"
    assert vline_x(fig) == [5.0]


def test_probe_outputs_ood_inputs_are_grey_without_target():
    labels, out = _xor_outputs()
    labels = np.append(labels, 9)
    out = np.concatenate([out, np.full((20, 1), 0.3)], axis=1)
    fig = build_probe_outputs(
        np.arange(20), out, labels, [0, 1], is_ood=np.array([0, 0, 0, 0, 1], bool)
    )
    ood = [t for t in fig.data if t.line.color == OOD_COLOR]
    assert len(ood) == 1 and ood[0].line.dash != "dot"
    np.testing.assert_allclose(ood[0].y, 0.3)
    assert len([t for t in fig.data if t.line.dash == "dot"]) == 2


def test_probe_outputs_multiclass_uses_true_class_probability():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=(10, 4))
    labels = np.array([7, 3, 5, 7])
    fig = build_probe_outputs(np.arange(10), probs, labels, [3, 5, 7])
    lines = [t for t in fig.data if t.line.dash != "dot"]
    for p, trace in enumerate(lines):
        np.testing.assert_allclose(trace.y, probs[:, p, [3, 5, 7].index(labels[p])])
    assert fig.layout.yaxis.title.text == "P(true class)"


def test_probe_outputs_many_inputs_show_class_means_and_bands():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 15)
    out = rng.uniform(size=(25, 30))
    fig = build_probe_outputs(np.arange(25), out, labels, [0, 1], max_inputs=12)
    means = [t for t in fig.data if t.name and "n=15" in t.name]
    assert len(means) == 2
    np.testing.assert_allclose(means[0].y, out[:, :15].mean(axis=1))
    assert sum(1 for t in fig.data if t.fill == "tonexty") == 2
    assert len(fig.data) == 2 + 3 * 2  # two targets + (upper, lower, mean) per class
    assert "band" in fig.layout.title.text and "30 inputs" in fig.layout.title.text


def test_probe_outputs_downsample_epochs():
    labels, out = _xor_outputs(3000)
    fig = build_probe_outputs(np.arange(3000), out, labels, [0, 1], max_points=300)
    x = np.asarray(fig.data[-1].x)
    assert x.size <= 300 and x[0] == 0 and x[-1] == 2999


# ---------------------------------------------------------------- network


def _mlp(rng, sizes):
    kernels = [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rng.normal(size=b) for b in sizes[1:]]
    return [f"hidden_{k + 1}" for k in range(len(sizes) - 2)] + ["output"], kernels, biases


def _node_traces(fig):
    return [t for t in fig.data if t.mode == "markers"]


def _edge_traces(fig):
    return [t for t in fig.data if t.mode == "lines"]


def test_network_graph_small_draws_every_node_and_edge():
    rng = np.random.default_rng(5)
    names, kernels, biases = _mlp(rng, [2, 4, 1])
    fig = build_network_graph(names, kernels, biases, input_size=2, title="XOR")
    nodes = _node_traces(fig)
    assert [len(t.x) for t in nodes] == [2, 4, 1]
    np.testing.assert_allclose(nodes[1].marker.color, biases[0])
    assert nodes[1].marker.coloraxis == "coloraxis" and fig.layout.coloraxis.cmid == 0
    assert "bias" in nodes[1].text[0] and "hidden_1" in nodes[1].text[0]
    edges = _edge_traces(fig)
    assert n_segments(edges) == 2 * 4 + 4
    assert len(edges) <= 6 and all(t.x[2] is None for t in edges)
    blue = [t for t in edges if t.line.color.startswith("rgba(33, 102, 172")]
    n_positive = sum(int((k > 0).sum()) for k in kernels)
    assert n_segments(blue) == n_positive and 0 < n_positive < 12
    widths = sorted(t.line.width for t in edges)
    assert widths[-1] > widths[0]
    assert fig.layout.xaxis.visible is False and fig.layout.title.text.startswith("XOR")


def test_network_graph_limits_nodes_and_edges():
    rng = np.random.default_rng(6)
    names, kernels, biases = _mlp(rng, [100, 40, 10])
    kernels[0][:, 7] *= 50  # unit 7 of hidden_1 has by far the largest incoming weights
    fig = build_network_graph(names, kernels, biases, input_size=100, max_nodes=8, max_edges=30)
    nodes = _node_traces(fig)
    assert [len(t.x) for t in nodes] == [8, 8, 8]
    assert any("unit 7<" in text for text in nodes[1].text)
    assert n_segments(_edge_traces(fig)) == 30
    notes = [a.text for a in fig.layout.annotations]
    assert any("showing 8 of 100" in n for n in notes)
    assert any("showing 8 of 40" in n for n in notes)


def test_network_graph_plain_figure_is_valid_plotly():
    rng = np.random.default_rng(9)
    names, kernels, biases = _mlp(rng, [2, 16, 2, 1])
    plain = network_graph(names, kernels, biases, input_size=2, max_nodes=16, compact=True)
    fig = go.Figure(plain)  # raises on any property plotly does not know
    assert [len(t.x) for t in _node_traces(fig)] == [2, 16, 2, 1]
    assert fig.layout.xaxis.visible is False and fig.layout.coloraxis.cmid == 0


def test_strongest_edges_are_the_largest_weights():
    kernel = np.arange(12.0).reshape(3, 4) - 6
    kept = [np.arange(3), np.arange(4)]
    col, i, j, w = strongest_edges([kernel], kept, 3)
    assert sorted(np.abs(w)) == [5, 5, 6]
    np.testing.assert_array_equal(kernel[i, j], w)


def test_network_graph_colour_by_activation():
    rng = np.random.default_rng(7)
    names, kernels, biases = _mlp(rng, [2, 3, 1])
    values = [np.array([0.2, -0.4]), np.array([0.1, 0.5, -0.9]), np.array([0.7])]
    fig = build_network_graph(
        names, kernels, biases, input_size=2, node_values=values, color_by="activation"
    )
    nodes = _node_traces(fig)
    for trace, expected in zip(nodes, values, strict=True):
        np.testing.assert_allclose(trace.marker.color, expected)
    assert fig.layout.coloraxis.colorbar.title.text == "activation"


def test_network_3d_json_stays_small_with_2000_edges():
    rng = np.random.default_rng(8)
    names, kernels, biases = _mlp(rng, [784, 128, 64, 10])
    fig = build_network_3d(names, kernels, biases, input_size=784)
    edges = [t for t in fig.data if t.mode == "lines"]
    assert all(t.type == "scatter3d" for t in fig.data)
    assert n_segments(edges) == 2000 and len(edges) <= 6
    nodes = [t for t in fig.data if t.mode == "markers"]
    assert len(nodes[0].x) == 64 and len(nodes[1].x) == 64 + 64 + 10
    assert len(fig.to_json()) < 200_000
    assert fig.layout.scene.uirevision is not None and fig.layout.scene.camera.eye.y is not None


# ---------------------------------------------------------------- boundary


def _grid(res_x, res_y):
    xs, ys = np.linspace(-2, 2, res_x), np.linspace(-1, 3, res_y)
    grid = np.array([(x, y) for y in ys for x in xs])
    return xs, ys, grid


def test_decision_boundary_heatmap_contour_and_points():
    xs, ys, grid = _grid(30, 30)
    out = 1 / (1 + np.exp(-grid[:, 0] * grid[:, 1]))
    rng = np.random.default_rng(9)
    px = rng.uniform(-2, 2, size=(5000, 2))
    py = (rng.uniform(size=5000) < 0.2).astype(int)
    fig = build_decision_boundary(grid, out, px, py, class_names=["a", "b"], max_points=500)
    heat = fig.data[0]
    assert heat.type == "heatmap" and heat.zmin == 0 and heat.zmax == 1
    np.testing.assert_allclose(heat.z, out.reshape(30, 30))
    np.testing.assert_allclose(heat.x, xs)
    np.testing.assert_allclose(heat.y, ys)
    contour = fig.data[1]
    assert contour.type == "contour" and contour.contours.start == 0.5
    points = [t for t in fig.data if t.type == "scatter"]
    sizes = {t.name: len(t.x) for t in points}
    assert sum(sizes.values()) <= 500 and sizes["b"] >= 80 and sizes["a"] >= 350
    assert all(t.marker.line.color == "white" for t in points)
    assert fig.layout.yaxis.scaleanchor == "x"
    assert tuple(fig.layout.xaxis.range) == (-2, 2) and tuple(fig.layout.yaxis.range) == (-1, 3)


def test_decision_boundary_rectangular_grid_rows_follow_y():
    xs, ys, grid = _grid(5, 3)
    out = np.linspace(0, 1, 15)
    fig = build_decision_boundary(grid, out, np.zeros((0, 2)), np.zeros(0))
    assert np.asarray(fig.data[0].z).shape == (3, 5)
    np.testing.assert_allclose(fig.data[0].z[1], out[5:10])
    assert len(fig.data) == 2


# ---------------------------------------------------------------- representation


def test_fit_projection_identity_for_two_units():
    points = np.random.default_rng(10).normal(size=(20, 2)) + 3
    np.testing.assert_allclose(fit_projection(points).apply(points), points)


def test_fit_projection_single_unit_on_x():
    values = np.arange(5.0)[:, None]
    np.testing.assert_allclose(
        fit_projection(values).apply(values), np.stack([np.arange(5.0), np.zeros(5)], axis=1)
    )


def test_fit_projection_matches_sklearn_pca_subspace():
    rng = np.random.default_rng(11)
    data = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    projection = fit_projection(data)
    pca = PCA(n_components=2).fit(data)
    ours, theirs = projection.components, pca.components_.T
    np.testing.assert_allclose(ours @ ours.T, theirs @ theirs.T, atol=1e-8)
    np.testing.assert_allclose(
        np.abs(projection.apply(data)), np.abs(pca.transform(data)), atol=1e-8
    )
    for c in range(2):
        assert ours[np.argmax(np.abs(ours[:, c])), c] > 0
    again = fit_projection(data * 1.0)
    np.testing.assert_array_equal(again.components, projection.components)


def test_stable_range_covers_every_epoch_and_ignores_far_outliers():
    rng = np.random.default_rng(12)
    epochs = [rng.normal(size=(300, 2)) * (1 + e) for e in range(5)]
    x0, x1, y0, y1 = stable_range(epochs)
    everything = np.concatenate(epochs)
    assert x0 < everything[:, 0].min() and x1 > everything[:, 0].max()
    assert y0 < everything[:, 1].min() and y1 > everything[:, 1].max()
    with_outlier = epochs + [np.array([[1e6, 0.0]])]
    assert stable_range(with_outlier)[1] < 1e3
    lo, hi, _, _ = stable_range([np.zeros((4, 2))])
    assert lo < 0 < hi


def test_hidden_representation_by_class_with_grey_ood():
    points = np.arange(12.0).reshape(6, 2)
    labels = np.array([1, 7, 1, 7, 9, 9])
    ood = labels == 9
    fig = build_hidden_representation(
        points,
        labels,
        class_names={1: "one", 7: "seven"},
        is_ood=ood,
        axis_range=(-1, 20, -2, 30),
        title="h",
    )
    by_name = {t.name: t for t in fig.data}
    assert list(by_name) == ["one", "seven", "out of distribution"]
    np.testing.assert_allclose(by_name["one"].x, [0, 4])
    assert by_name["out of distribution"].marker.color == OOD_COLOR
    assert by_name["out of distribution"].marker.symbol == OOD_SYMBOL
    assert by_name["one"].marker.color != by_name["seven"].marker.color
    assert [int(v) for v in by_name["seven"].customdata[:, 0]] == [1, 3]
    assert tuple(fig.layout.xaxis.range) == (-1, 20) and tuple(fig.layout.yaxis.range) == (-2, 30)
    assert fig.layout.xaxis.title.text == "unit 1"


def test_hidden_representation_by_correctness():
    points = np.zeros((5, 2))
    fig = build_hidden_representation(
        points,
        np.array([0, 1, 0, 1, 2]),
        correct=np.array([1, 0, 1, 1, 0], bool),
        color_by="correct",
        is_ood=np.array([0, 0, 0, 0, 1], bool),
    )
    sizes = {t.name: len(t.x) for t in fig.data}
    assert sizes == {"correct": 3, "wrong": 1, "out of distribution": 1}
    assert fig.data[-1].marker.color == OOD_COLOR


# ---------------------------------------------------------------- dataset


def test_dataset_preview_2d_scatter_subsampled_by_class():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(6000, 2))
    y = (rng.uniform(size=6000) < 0.5).astype(int)
    fig = build_dataset_preview(x, y, class_names=["no", "yes"], max_points=1000)
    assert [t.name for t in fig.data] == ["no", "yes"]
    assert sum(len(t.x) for t in fig.data) <= 1000 and min(len(t.x) for t in fig.data) > 400
    assert fig.layout.xaxis.title.text and fig.layout.title.text


def test_dataset_preview_images_balanced_and_labelled():
    y = np.repeat([3, 8], [30, 5])
    x = np.zeros((35, 16))
    x[y == 8] = 1.0
    fig = build_dataset_preview(
        x, y, class_names=[str(k) for k in range(10)], image_shape=(4, 4), n_images=8
    )
    assert [t.type for t in fig.data] == ["heatmap"]
    labels = [a.text for a in fig.layout.annotations]
    assert len(labels) == 8 and labels.count("8") == 4 and labels.count("3") == 4
    assert np.nansum(np.asarray(fig.data[0].z, float)) == 4 * 16


def test_dataset_preview_other_features_uses_pca():
    rng = np.random.default_rng(14)
    fig = build_dataset_preview(rng.normal(size=(50, 5)), np.arange(50) % 2, class_names=["a", "b"])
    assert "principal components" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "PC 1"


def test_architecture_sketch_limits_drawn_units():
    fig = build_architecture_sketch(
        [784, 128, 10], ["hidden_1", "output"], activations=["relu", "softmax"], max_nodes=12
    )
    nodes = [t for t in fig.data if t.mode == "markers"]
    assert [len(t.x) for t in nodes] == [12, 12, 10]
    assert n_segments([fig.data[0]]) == 12 * 12 + 12 * 10
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "<br>784" in notes and "relu" in notes and "input" in notes
    assert "<br>10 · softmax" in notes
    hovers = [t.hovertemplate for t in nodes]
    assert "784 units (12 drawn)" in hovers[0] and "drawn" not in hovers[2]
    assert fig.layout.height <= 260


# ---------------------------------------------------------------- titles


def _some_figures():
    rng = np.random.default_rng(15)
    names, kernels, biases = _mlp(rng, [2, 3, 1])
    labels, out = _xor_outputs()
    _, _, grid = _grid(4, 4)
    return {
        "curves": build_metric_curves(np.arange(20), {"a": out[:, 0]}, title="A", y_title="a"),
        "act": build_activation_stats_figure(np.arange(30), _act_metrics(30), "hidden_1"),
        "neuron": build_neuron_trajectories(np.arange(3), np.ones((3, 2, 2)), np.ones((3, 2)), 0),
        "hist": build_weight_histogram_heatmap(np.arange(3), np.ones((3, 4)), title="W"),
        "outputs": build_probe_outputs(np.arange(20), out, labels, [0, 1]),
        "boundary": build_decision_boundary(grid, np.zeros(16), grid, np.zeros(16)),
        "repr": build_hidden_representation(np.ones((3, 2)), np.arange(3)),
        "dataset": build_dataset_preview(np.ones((3, 2)), np.arange(3), class_names=[]),
        "graph": build_network_graph(names, kernels, biases, input_size=2),
        "3d": build_network_3d(names, kernels, biases, input_size=2),
        "sketch": build_architecture_sketch([2, 3, 1], ["hidden_1", "output"]),
        "neurons": neuron_maps_figure(grid, {"hidden_1": np.zeros((16, 3))}, {"hidden_1": "tanh"}),
    }


def _png_pixels(uri: str) -> np.ndarray:
    """Decode neurons.map_image's PNG (8-bit RGB, filter 0 rows) back to (h, w, 3)."""
    import base64
    import struct
    import zlib

    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(h, w, 3)


def test_neuron_maps_one_heatmap_per_unit_wrapped_cut_and_scaled_per_activation():
    xs, ys, grid = _grid(5, 4)
    rng = np.random.default_rng(3)
    wide = np.maximum(rng.normal(size=(20, 40)), 0)
    fig = neuron_maps_figure(
        grid,
        {"hidden_1": np.tanh(rng.normal(size=(20, 3))), "hidden_2": wide},
        {"hidden_1": "tanh", "hidden_2": "relu"},
        color_ranges={"hidden_2": (0.0, 7.0)},
        points_x=grid[:4],
        points_y=np.array([0, 1, 0, 1]),
    )
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 3 + 16  # the 40-unit layer: its first 16 units, and the title says so
    assert "hidden_2: units 0–15 of 40" in fig.layout.title.text
    np.testing.assert_allclose(np.asarray(heatmaps[3 + 9].z), wide[:, 9].reshape(4, 5))
    titles = [a.text for a in fig.layout.annotations]
    assert "hidden_2 · unit 15" in titles and "hidden_2 · unit 16" not in titles
    # 8 maps a row: hidden_1 one row, hidden_2 two; one colour bar per layer, its own range
    assert len({(t.xaxis, t.yaxis) for t in heatmaps}) == 19
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-1.0, 1.0)
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (0.0, 7.0)
    assert sum(t.type == "scatter" for t in fig.data) == 19  # the faint points on every map


def test_neuron_map_colour_ranges_and_thumbnails():
    frames = [np.array([[0.5, 2.0]]), np.array([[-3.0, 1.0]])]
    assert color_range("sigmoid", frames) == (0.0, 1.0)
    assert color_range("relu", frames) == (0.0, 2.0)
    assert color_range("linear", frames) == (-3.0, 3.0)
    assert color_range("relu", [np.zeros((2, 2))]) == (0.0, 1.0)  # all dead: still a range
    assert sample_epochs(range(0, 1000, 10), 4) == [0, 330, 660, 990]
    # a map as an image: largest y on the top row, low red, high blue (relu: 0 white)
    z = np.array([[-1.0, 1.0], [1.0, 1.0]])  # rows over y ascending
    pixels = _png_pixels(map_image(z, "tanh", -1.0, 1.0))
    assert pixels.shape == (2, 2, 3)
    assert pixels[1, 0, 0] > pixels[1, 0, 2] and pixels[0, 0, 2] > pixels[0, 0, 0]
    assert (_png_pixels(map_image(np.zeros((1, 1)), "relu", 0.0, 5.0)) > 240).all()
    _, _, grid = _grid(2, 2)
    maps = {"hidden_1": np.zeros((4, 3))}
    uris = thumbnail_uris(grid, maps, {"hidden_1": "tanh"}, {"hidden_1": (-1.0, 1.0)})
    assert len(uris["hidden_1"]) == 3
    too_wide = {"hidden_1": np.zeros((4, 17))}
    assert thumbnail_uris(grid, too_wide, {"hidden_1": "tanh"}, {"hidden_1": (-1, 1)}) is None
    fig = go.Figure(
        build_network_graph(
            *_mlp(np.random.default_rng(1), [2, 3, 1]), input_size=2, thumbnails=uris
        )
    )
    assert [(i.x, i.layer) for i in fig.layout.images] == [(1, "below")] * 3


def test_overlaid_curves_one_colour_per_run_train_solid_validation_dashed():
    epochs = np.arange(1, 1001)
    runs = [
        (
            f"#{k}",
            epochs,
            {
                "train_loss": np.linspace(2, 0.1 * k, 1000),
                "val_loss": np.linspace(3, 0.2 * k, 1000),
            },
        )
        for k in (1, 2)
    ]
    runs.append(("#3", epochs[:10], {"train_loss": np.full(10, 0.5)}))  # no validation split
    fig = go.Figure(
        overlaid_curves(
            runs, ("train_loss", "val_loss"), title="Loss", y_title="cross-entropy", max_points=200
        )
    )
    assert [t.name for t in fig.data] == [
        "#1 train",
        "#1 validation",
        "#2 train",
        "#2 validation",
        "#3 train",
    ]
    assert [t.line.dash for t in fig.data] == ["solid", "dash", "solid", "dash", "solid"]
    assert [t.line.color for t in fig.data[::2]] == [run_color(0), run_color(1), run_color(2)]
    x, y = decoded(fig.data[3].x), decoded(fig.data[3].y)
    assert len(x) == 200 and x[0] == 1 and x[-1] == 1000  # downsampled, ends kept
    np.testing.assert_allclose(y, runs[1][2]["val_loss"][x - 1], rtol=1e-6)
    assert fig.layout.title.text == "Loss" and fig.layout.yaxis.title.text == "cross-entropy"
    empty = go.Figure(
        overlaid_curves([("#1", epochs, {})], ("train_loss", "val_loss"), title="Loss", y_title="y")
    )
    assert is_empty_figure(empty) and "nothing recorded" in empty.layout.annotations[0].text


def test_every_figure_has_a_title_and_axis_titles_where_axes_show():
    for name, fig in _some_figures().items():
        assert fig.layout.title.text, name
        assert fig.layout.template.layout.paper_bgcolor is not None, name  # plotly_white
        if fig.layout.xaxis.visible is not False and name != "3d":
            assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, name


# ---------------------------------------------------------------- empty inputs

EMPTY = {
    "metric_curves": lambda: build_metric_curves([], {}, title="t", y_title="y"),
    "metric_curves_all_nan": lambda: build_metric_curves(
        [0, 1], {"a": [np.nan, np.nan]}, title="t", y_title="y"
    ),
    "activation_stats": lambda: build_activation_stats_figure(np.arange(3), {}, "hidden_1"),
    "neuron": lambda: build_neuron_trajectories([], np.zeros((0, 2, 2)), np.zeros((0, 2)), 0),
    "histogram": lambda: build_weight_histogram_heatmap([], np.zeros((0, 3)), title="w"),
    "outputs": lambda: build_probe_outputs([], np.zeros((0, 0)), np.zeros(0), [0, 1]),
    "network": lambda: build_network_graph([], [], [], input_size=2),
    "network_3d": lambda: build_network_3d([], [], [], input_size=2),
    "boundary": lambda: build_decision_boundary(
        np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0)
    ),
    "representation": lambda: build_hidden_representation(np.zeros((0, 2)), np.zeros(0)),
    "dataset": lambda: build_dataset_preview(np.zeros((0, 2)), np.zeros(0), class_names=[]),
    "architecture": lambda: build_architecture_sketch([], []),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_every_builder_returns_the_empty_figure_on_empty_input(name):
    assert is_empty_figure(EMPTY[name]())


def test_importing_figures_does_not_load_jax():
    code = (
        "import sys, netlens.webapp.figures; "
        "bad = [m for m in ('jax', 'flax', 'optax', 'netlens.storage', 'netlens.worker') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
