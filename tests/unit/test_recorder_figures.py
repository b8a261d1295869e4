"""The figure helpers that let the run and compare pages draw nl.Recorder runs (issue 15
part 3): the user's metric names, module graphs, flattened conv outputs, statistics from
signatures, and logits read as probabilities."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.webapp.figures import curves, network, outputs, representation


def test_split_metrics_sorts_user_names_into_loss_accuracy_and_other():
    m = {
        "loss": np.ones(3),
        "val_loss": np.ones(3),
        "accuracy": np.ones(3),
        "top5_acc": np.ones(3),
        "lr": np.ones(3),
        "grad_norm/head": np.ones(3),
        "act/head/mean": np.ones(3),
    }
    loss, acc, other = curves.split_metrics(m)
    assert sorted(loss) == ["loss", "val_loss"]
    assert sorted(acc) == ["accuracy", "top5_acc"]
    assert list(other) == ["lr"]


def test_with_page_names_maps_a_recorder_runs_names_and_keeps_a_spec_runs():
    user = {"loss": np.array([2.0, 1.0]), "val_loss": np.array([3.0, 2.0]), "acc": np.zeros(2)}
    mapped = curves.with_page_names(user)
    np.testing.assert_array_equal(mapped["train_loss"], user["loss"])
    np.testing.assert_array_equal(mapped["val_loss"], user["val_loss"])
    np.testing.assert_array_equal(mapped["train_accuracy"], user["acc"])
    spec = {"train_loss": np.ones(2), "my_loss": np.zeros(2)}
    assert curves.with_page_names(spec)["train_loss"] is spec["train_loss"]


def test_activation_stats_from_conv_signatures():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 5, 3, 3, 2))  # (E, P, H, W, C)
    values[:, :, 0, 0, 0] = 0.0  # one feature dead on every input
    stats = curves.activation_stats_from_signatures(values, "block")
    flat = values.reshape(4, -1)
    np.testing.assert_allclose(stats["act/block/mean"], flat.mean(1))
    np.testing.assert_allclose(stats["act/block/std"], flat.std(1))
    np.testing.assert_allclose(stats["act/block/max"], flat.max(1))
    np.testing.assert_array_equal(stats["act/block/dead"], np.ones(4))
    fig = curves.build_activation_stats_figure(np.arange(4), stats, "block")
    assert len(fig.data) >= 3


def test_flatten_signatures_keeps_inputs_and_epochs():
    assert representation.flatten_signatures(np.zeros((7, 6, 6, 4))).shape == (7, 144)
    assert representation.flatten_signatures(np.zeros((3, 7, 6, 6, 4)), True).shape == (3, 7, 144)
    assert representation.flatten_signatures(np.zeros(7)).shape == (7, 1)
    with pytest.raises(ValueError, match="no probe axis"):
        representation.flatten_signatures(np.zeros(()))
    sig = np.random.default_rng(1).normal(size=(20, 6, 6, 4))
    flat = representation.flatten_signatures(sig)
    points = representation.fit_projection(flat).apply(flat)
    assert points.shape == (20, 2) and np.isfinite(points).all()


def test_logits_are_read_as_probabilities_and_said_so():
    logits = np.array([[[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]]])  # (E, P, K)
    probs, note = outputs.as_probabilities(logits)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(-1, keepdims=True))
    assert "softmax" in note
    binary, note = outputs.as_probabilities(np.array([[[-3.0], [4.0]]]))
    np.testing.assert_allclose(binary[0, :, 0], 1 / (1 + np.exp([3.0, -4.0])))
    assert "sigmoid" in note
    already = np.array([[[0.2, 0.8], [0.5, 0.5]]])
    same, note = outputs.as_probabilities(already)
    assert note is None and same is not None
    np.testing.assert_array_equal(same, already)
    # in [0, 1] but rows not summing to 1: scores, not probabilities
    _, note = outputs.as_probabilities(np.array([[[0.2, 0.3], [0.9, 0.9]]]))
    assert note is not None


def test_predicted_classes_from_logits_and_probabilities():
    classes = [3, 7]
    assert outputs.predicted_classes(np.array([[-2.0], [1.0]]), classes).tolist() == [3, 7]
    assert outputs.predicted_classes(np.array([[0.4], [0.6]]), classes).tolist() == [3, 7]
    assert outputs.predicted_classes(np.array([[5.0, -1.0], [0.0, 2.0]]), classes).tolist() == [
        3,
        7,
    ]


def test_probe_outputs_figure_shows_the_note():
    probs, note = outputs.as_probabilities(np.random.default_rng(2).normal(size=(3, 4, 3)) * 5)
    fig = outputs.build_probe_outputs(
        np.arange(3), probs, np.array([0, 1, 2, 0]), [0, 1, 2], note=note
    )
    assert "softmax" in fig.layout.title.text
    assert all(np.nanmax(t.y) <= 1 for t in fig.data if t.y is not None)


@pytest.mark.parametrize("three_d", [False, True])
def test_module_graph_nodes_in_call_order_edges_by_weight_norm(three_d):
    modules = [
        {"name": "stem", "type": "nnx.Conv", "output_shape": [6, 6, 4]},
        {"name": "block", "type": "Residual", "output_shape": [6, 6, 4]},
        {"name": "head", "type": "nnx.Linear", "output_shape": [3]},
    ]
    fig = network.build_module_graph(modules, [1.0, None, 4.0], title="t", three_d=three_d)
    go.Figure(fig)  # valid
    edges = [t for t in fig.data if t.mode == "lines"]
    nodes = [t for t in fig.data if t.mode == "markers+text"]
    assert len(edges) == 2 and len(nodes) == 1
    assert list(nodes[0].text) == ["stem", "block", "head"]
    assert "no parameters of its own" in edges[0].text[0]  # the edge into block
    assert "weight norm 4" in edges[1].text[0]
    assert edges[1].line.width > edges[0].line.width or three_d
    assert network.build_module_graph([], []).layout.annotations[0].text == "No modules recorded"
    with pytest.raises(ValueError, match="same length"):
        network.build_module_graph(modules, [1.0])


RESIDUAL_CNN = [  # tests/browser/test_recorder_pages.py's SmallCNN, as the Recorder lists it
    {"name": "stem", "type": "nnx.Conv", "output_shape": [6, 6, 4]},
    {"name": "block.conv1", "type": "nnx.Conv", "output_shape": [6, 6, 4]},
    {"name": "block.conv2", "type": "nnx.Conv", "output_shape": [6, 6, 4]},
    {"name": "block", "type": "Residual", "output_shape": [6, 6, 4]},
    {"name": "hidden", "type": "nnx.Linear", "output_shape": [8]},
    {"name": "output", "type": "SmallCNN", "output_shape": [3]},
]


def test_skip_edges_go_around_a_blocks_submodules_when_shapes_allow_an_add():
    assert network.skip_edges(RESIDUAL_CNN, root="output") == [(0, 3)]  # stem -> block
    # the model itself is no skip target, whatever its root is called
    assert network.skip_edges(RESIDUAL_CNN, root=None) == [(0, 3)]
    # a chain container (nnx.Sequential) only passes its input to its first child
    chained = [dict(m, type="nnx.Sequential") if m["name"] == "block" else m for m in RESIDUAL_CNN]
    assert network.skip_edges(chained, root="output") == []
    # its input cannot be added to an output of another shape
    widened = [dict(m, output_shape=[6, 6, 8]) if m["name"] == "block" else m for m in RESIDUAL_CNN]
    assert network.skip_edges(widened, root="output") == []
    # a block whose first submodule takes the model's input: no node to start the skip from
    assert network.skip_edges(RESIDUAL_CNN[1:], root="output") == []
    # nested blocks: each goes around its own submodules
    nested = [
        {"name": "stem", "output_shape": [4]},
        {"name": "a.b.x", "output_shape": [4]},
        {"name": "a.b", "output_shape": [4]},
        {"name": "a.y", "output_shape": [4]},
        {"name": "a", "output_shape": [4]},
    ]
    assert network.skip_edges(nested) == [(0, 2), (0, 4)]


@pytest.mark.parametrize("three_d", [False, True])
def test_module_graph_draws_the_skip_as_a_dashed_arc(three_d):
    norms = [1.0, 2.0, 2.0, None, 3.0, None]
    fig = network.build_module_graph(RESIDUAL_CNN, norms, three_d=three_d, root="output")
    skips = [t for t in fig.data if t.name == "skip"]
    assert len(skips) == 1 and skips[0].line.dash == "dash"
    (skip,) = skips
    assert (skip.x[0], skip.x[-1]) == (0, 3)  # from stem's node to block's
    assert "input of block (the output of stem)" in skip.text[0]
    chain = [t for t in fig.data if t.mode == "lines" and t.name != "skip"]
    assert len(chain) == len(RESIDUAL_CNN) - 1  # the call-order chain is still all there
    plain = network.build_module_graph(RESIDUAL_CNN[3:], norms[3:], three_d=three_d)
    assert not [t for t in plain.data if t.name == "skip"]
