"""The Learn lessons' computed statements, checked against the arrays of real small runs (trained
in-process with the worker's trainer), each expectation derived from the arrays independently."""

from __future__ import annotations

import numpy as np
import pytest

from netlens.storage.spec import parse_spec
from netlens.webapp.learn import facts as F
from netlens.webapp.learn import facts_sets as S
from netlens.webapp.learn.lessons import LESSONS, checked_choices, lesson_spec
from netlens.worker.datasets import load_dataset
from netlens.worker.train import Trainer


def train(spec):
    """(epochs, metrics by name, tensors by name, data) of a run trained in-process."""
    data = load_dataset(spec)
    chunks = []
    Trainer(spec, data).run(chunks.append)
    epochs = np.array([e for c in chunks for e in c.epochs])
    metrics = {k: np.array([m[k] for c in chunks for m in c.metrics]) for k in chunks[0].metrics[0]}
    tensors = {
        k: np.concatenate([c.tensors[k] for c in chunks])
        for k in chunks[0].tensors
        if not k.startswith(("grid/", "lowres/"))
    }
    return epochs, metrics, tensors, data


def xor_spec(seed: int, learning_rate: str = "0.05", epochs: str = "300", baseline=False):
    lesson = LESSONS["xor"]
    choices = checked_choices(
        lesson, {"seed": str(seed), "learning_rate": learning_rate, "epochs": epochs}
    )
    return lesson_spec(lesson, choices, baseline=baseline)


def shortened(spec, epochs: int):
    """A lesson's run cut to `epochs` (below the lesson's shortest choice) and without the
    decision grid (no statement here reads it): compiling, not the epochs, is what such a run
    costs, and the statements hold for any run (the expectations come from its arrays)."""
    data = spec.model_dump(mode="json")
    data["training"]["epochs"] = epochs
    data["recording"]["grid_resolution"] = 0
    return parse_spec(data)


# two seeds as the lesson trains them (shortened; a third added no branch), and a learning rate
# too small to learn XOR (the "has not learned" branches)
XOR_RUNS = [(0, "0.05"), (1, "0.05"), (0, "0.005")]


@pytest.fixture(scope="module", params=XOR_RUNS, ids=lambda p: f"seed{p[0]}-lr{p[1]}")
def xor_run(request):
    return train(xor_spec(*request.param))


def test_accuracy_reached_is_the_first_epoch_from_which_it_stays_at_100(xor_run):
    epochs, metrics, _, _ = xor_run
    acc = metrics["train_accuracy"]
    fact = F.accuracy_reached(epochs, acc)
    at = fact.numbers["epoch"]
    if acc[-1] < 1.0:  # the run did not learn: the text says so and what to change
        assert at is None and not fact.ok
        assert "has not learned" in fact.text and "learning rate" in fact.text
        return
    i = int(np.flatnonzero(epochs == at)[0])
    assert np.all(acc[i:] == 1.0)
    assert i == 0 or acc[i - 1] < 1.0
    assert f"epoch {at}" in fact.text and fact.ok


def test_outputs_settle_when_all_four_stay_within_the_tolerance(xor_run):
    epochs, _, tensors, data = xor_run
    out = tensors["signatures/output"][:, :, 0]
    fact = F.outputs_settled(epochs, out, data.probe_y, data.probe_x)
    close = [all(abs(o - t) <= 0.1 for o, t in zip(row, data.probe_y, strict=True)) for row in out]
    if not close[-1]:
        assert fact.numbers["epoch"] is None and not fact.ok and "not settled" in fact.text
        return
    start = max(i for i in range(len(close)) if i == 0 or not close[i - 1])
    assert fact.numbers["epoch"] == epochs[start]


def test_unit_lines_come_from_the_recorded_parameters_and_match_the_signatures(xor_run):
    epochs, _, tensors, data = xor_run
    kernel, bias = tensors["params/hidden_1/kernel"], tensors["params/hidden_1/bias"]
    z = F.pre_activations(kernel, bias, data.probe_x)
    # the recorded signatures are tanh of these pre-activations: the lines are the run's own
    np.testing.assert_allclose(np.tanh(z), tensors["signatures/hidden_1"], atol=1e-4)
    lines = F.unit_lines(epochs, z, data.probe_y, data.probe_x, "hidden_1")
    for k, fact in enumerate(lines):
        side = [
            [(x @ kernel[e, :, k] + bias[e, k] > 0) for x in data.probe_x]
            for e in range(len(epochs))
        ]
        last = side[-1]
        same = [s == last or s == [not v for v in last] for s in side]
        start = max(i for i in range(len(same)) if i == 0 or not same[i - 1])
        if 0 < sum(last) < 4:
            assert fact.numbers["since"] == epochs[start]
            assert f"from epoch {epochs[start]}" in fact.text
        # one line never splits XOR's classes: no unit of the first layer can
        assert fact.numbers["separates_from"] is None
    assert F.no_unit_separates(epochs, z, data.probe_y, "hidden_1").numbers["units"] == []


def test_biases_and_weights_movement_is_measured_between_the_first_and_last_epoch(xor_run):
    _, _, tensors, _ = xor_run
    params = {k: v for k, v in tensors.items() if k.startswith("params/")}
    fact = F.biggest_movers(
        {k: v[0] for k, v in params.items()}, {k: v[-1] for k, v in params.items()}
    )
    bias = np.mean(
        np.concatenate(
            [np.abs(v[-1] - v[0]).ravel() for k, v in params.items() if k.endswith("bias")]
        )
    )
    assert fact.numbers["bias"] == pytest.approx(bias)
    assert f"{bias:.2f}" in fact.text


def test_a_single_neuron_fails_on_xor_and_says_so():
    epochs, metrics, _, data = train(xor_spec(0, baseline=True))
    fact = F.best_accuracy_of_single_neuron(epochs, metrics["train_accuracy"], len(data.probe_y))
    assert max(metrics["train_accuracy"]) < 1.0  # the run itself: never all four
    assert fact.ok and "never gets all 4" in fact.text
    assert fact.numbers["right"] == round(max(metrics["train_accuracy"]) * 4)
    assert F.accuracy_reached(epochs, metrics["train_accuracy"]).ok is False


def test_a_second_layer_unit_can_separate_xor_when_the_deeper_network_learns():
    lesson = LESSONS["deeper"]
    spec = lesson_spec(lesson, checked_choices(lesson, {"epochs": "300"}))
    epochs, metrics, tensors, data = train(spec)
    h1 = tensors["signatures/hidden_1"]
    z2 = F.pre_activations(tensors["params/hidden_2/kernel"], tensors["params/hidden_2/bias"], h1)
    np.testing.assert_allclose(np.tanh(z2), tensors["signatures/hidden_2"], atol=1e-4)
    fact = F.no_unit_separates(epochs, z2, data.probe_y, "hidden_2")
    y = data.probe_y.astype(bool)
    expected = [
        k
        for k in range(z2.shape[2])
        if len({bool(v) for v in (z2[-1, y, k] > 0)} | set()) == 1
        and len({bool(v) for v in (z2[-1, ~y, k] > 0)}) == 1
        and (z2[-1, y, k][0] > 0) != (z2[-1, ~y, k][0] > 0)
    ]
    assert fact.numbers["units"] == expected


def test_bottleneck_and_signature_facts_on_short_runs():
    lesson = LESSONS["bottleneck"]
    spec = shortened(lesson_spec(lesson, checked_choices(lesson, {})), 10)
    epochs, _, tensors, data = train(spec)
    out, y, x = tensors["signatures/output"], data.probe_y, data.probe_x
    facts = S.groups_isolated(epochs, out, x, y, ((0, 0), (3, 3)), data.classes)
    near_origin = (y == 1) & (np.hypot(x[:, 0], x[:, 1]) < np.hypot(x[:, 0] - 3, x[:, 1] - 3))
    right = ((out[-1, :, 0] > 0.5).astype(int) == y)[near_origin]
    assert facts[0].numbers["n"] == near_origin.sum()
    assert facts[0].numbers["share"] == pytest.approx(right.mean())
    codes = tensors["signatures/hidden_2"][-1]
    assert S.collapsed_inputs(codes, "hidden_2").numbers["n"] == int(
        np.sum(np.all(codes == 0, axis=1))
    )

    lesson = LESSONS["signatures"]
    spec = shortened(lesson_spec(lesson, checked_choices(lesson, {})), 10)
    epochs, _, tensors, data = train(spec)
    y, ood = data.probe_y, data.probe_is_ood.astype(bool)
    pred = S.predicted(tensors["signatures/output"][-1], data.classes)
    names = {int(c): n for c, n in zip(data.classes, data.class_names, strict=False)}
    unseen = S.unseen_destinations(pred, y, ood, names)
    assert len(unseen) == len(np.unique(y[ood]))  # one statement per unseen class
    for fact in unseen:
        mine = ood & (y == fact.numbers["class"])
        assert fact.numbers["of"] == mine.sum()
        assert fact.numbers["count"] == np.sum(pred[mine] == fact.numbers["top"])
        assert fact.numbers["count"] >= mine.sum() / 2
    layers = {n: tensors[f"signatures/{n}"][-1] for n in ("hidden_1", "hidden_2", "hidden_3")}
    sep = S.first_separating_layer(layers, y, ood)
    h1 = layers["hidden_1"][~ood]
    means = {c: h1[y[~ood] == c].mean(0) for c in np.unique(y[~ood])}
    nearest = [min(means, key=lambda c: np.sum((v - means[c]) ** 2)) for v in h1]
    assert sep.numbers["scores"]["hidden_1"] == pytest.approx(np.mean(nearest == y[~ood]))


def test_fastest_learner_names_failures():
    fact = S.fastest_learner({"a": 30, "b": None, "c": 10})
    assert fact.text.startswith("c learns first (epoch 10), a last (epoch 30)")
    assert "b did not learn" in fact.text
    assert not S.fastest_learner({"a": None}).ok
