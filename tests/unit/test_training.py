"""Models, optimizers and the trainer, without a database."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from netlens.storage.catalog import OPTIMIZERS, SCHEDULES
from netlens.storage.presets import get_preset
from netlens.storage.spec import parse_spec
from netlens.worker.datasets import load_dataset
from netlens.worker.models import build_network, make_forward
from netlens.worker.optim import make_optimizer
from netlens.worker.train import Chunk, Diverged, StopTraining, Trainer
from tests.conftest import small_spec
from tests.numpy_forward import recompute_dense


def _collect(trainer: Trainer, state=None) -> list[Chunk]:
    chunks: list[Chunk] = []
    trainer.run(chunks.append, state)
    return chunks


def test_mlp_layers_and_output_shapes():
    spec = small_spec(
        model={"hidden": [{"units": 5, "activation": "tanh"}, {"units": 4, "activation": "gelu"}]}
    )
    graphdef, params, layers = build_network(spec, n_in=2, n_classes=2, image_shape=None)
    assert [(i.name, i.units, i.activation) for i in layers] == [
        ("hidden_1", 5, "tanh"),
        ("hidden_2", 4, "gelu"),
        ("output", 1, "sigmoid"),
    ]
    assert params["hidden_1"]["kernel"].shape == (2, 5)  # (in, out): act(x @ kernel + bias)
    assert params["output"]["bias"].shape == (1,)
    logits, acts = make_forward(graphdef)(params, np.ones((7, 2), np.float32))
    assert logits.shape == (7, 1) and [a.shape for a in acts] == [(7, 5), (7, 4), (7, 1)]
    assert np.all((acts[-1] > 0) & (acts[-1] < 1))


def test_softmax_output_for_more_than_two_classes():
    spec = small_spec(model={"hidden": [{"units": 6}]})
    graphdef, params, layers = build_network(spec, n_in=64, n_classes=10, image_shape=None)
    assert layers[-1].activation == "softmax" and layers[-1].units == 10
    _, acts = make_forward(graphdef)(params, np.ones((3, 64), np.float32))
    np.testing.assert_allclose(np.sum(acts[-1], axis=1), 1.0, rtol=1e-5)


def test_cnn_records_pooled_conv_outputs():
    spec = small_spec(
        dataset={"name": "digits"},
        model={"kind": "cnn", "conv_channels": [4, 6], "hidden": [{"units": 8}]},
    )
    graphdef, params, layers = build_network(spec, n_in=64, n_classes=10, image_shape=(8, 8))
    assert [(i.name, i.kind, i.units) for i in layers] == [
        ("conv_1", "conv", 4 * 4 * 4),
        ("conv_2", "conv", 2 * 2 * 6),
        ("hidden_1", "dense", 8),
        ("output", "dense", 10),
    ]
    _, acts = make_forward(graphdef)(params, np.zeros((2, 64), np.float32))
    assert [a.shape[1] for a in acts] == [64, 24, 8, 10]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_every_optimizer_and_schedule_lowers_a_quadratic(name, schedule):
    opt = parse_spec(
        {
            "optimizer": {
                "name": name,
                "schedule": schedule,
                "learning_rate": 0.05,
                "weight_decay": 0.01,
                "warmup_epochs": 1,
            }
        }
    ).optimizer
    tx = make_optimizer(opt, steps_per_epoch=10, epochs=10)
    params = {"w": jax.numpy.array([3.0, -2.0])}
    state = tx.init(params)
    loss = lambda p: jax.numpy.sum(p["w"] ** 2)  # noqa: E731
    for _ in range(50):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    assert loss(params) < 13.0 * 0.9


def test_recorded_epochs_follow_every_and_always_include_zero_and_last():
    spec = small_spec(
        dataset={"name": "xor"},
        training={"epochs": 23, "batch_size": 4},
        recording={"every": 5, "grid_resolution": 6, "grid_every": 10},
    )
    chunks = _collect(Trainer(spec, load_dataset(spec)))
    epochs = [e for c in chunks for e in c.epochs]
    assert epochs == [0, 5, 10, 15, 20, 23]
    grid_epochs = [e for c in chunks for e in c.sparse_epochs["grid/output"]]
    assert grid_epochs == [0, 10, 20, 23]
    last = chunks[-1]
    assert last.tensors["params/hidden_1/kernel"].shape[1:] == (2, 3)
    assert last.tensors["signatures/hidden_1"].shape[1:] == (4, 3)
    assert last.tensors["grid/output"].shape[1:] == (36,)
    assert last.tensors["grid/hidden_1"].shape[1:] == (36, 3)
    assert all(c.sparse_epochs["grid/hidden_1"] == c.sparse_epochs["grid/output"] for c in chunks)
    assert {k for k in last.metrics[-1] if not k.startswith("act/")} == {
        "train_loss",
        "train_accuracy",
        "grad_norm/hidden_1",
        "grad_norm/output",
    }
    assert {k for k in last.metrics[-1] if k.startswith("act/")} == {
        f"act/hidden_1/{s}" for s in ("mean", "std", "min", "max", "dead", "saturated")
    }


def test_xor_preset_learns_and_is_deterministic():
    spec = get_preset("xor")
    data = load_dataset(spec)
    runs = [_collect(Trainer(spec, data)) for _ in range(2)]
    assert runs[0][-1].metrics[-1]["train_accuracy"] == 1.0
    for name, value in runs[0][-1].tensors.items():
        np.testing.assert_array_equal(value, runs[1][-1].tensors[name], err_msg=name)


def test_resuming_from_a_state_matches_an_uninterrupted_run():
    spec = small_spec(
        dataset={"name": "spiral", "n_samples": 200},
        model={"hidden": [{"units": 8, "activation": "tanh"}]},
        training={"epochs": 30, "batch_size": 16},
    )
    data = load_dataset(spec)
    full = Trainer(spec, data)
    final = full.run(lambda c: None)
    states = []
    part = Trainer(spec, data)

    def stop_at_12(chunk: Chunk) -> None:
        states.append(chunk.state)
        if chunk.epochs[-1] >= 12:
            raise StopTraining

    part.chunk_steps = 4  # force several chunks
    with pytest.raises(StopTraining):
        part.run(stop_at_12)
    resumed = Trainer(spec, data).run(lambda c: None, states[-1])
    for a, b in zip(jax.tree.leaves(final.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_non_finite_loss_raises_diverged_after_handing_over_the_epochs_so_far():
    spec = small_spec(
        dataset={"name": "two-regions", "n_samples": 200},
        model={
            "hidden": [{"units": 16, "activation": "linear"}, {"units": 16, "activation": "linear"}]
        },
        optimizer={"name": "sgd", "learning_rate": 10.0},
        training={"epochs": 200, "batch_size": 200},
    )
    chunks: list[Chunk] = []
    with pytest.raises(Diverged) as exc:
        Trainer(spec, load_dataset(spec)).run(chunks.append)
    last = chunks[-1]
    assert last.epochs[-1] == exc.value.epoch
    assert not np.isfinite(last.metrics[-1]["train_loss"])
    assert all(np.isfinite(m["train_loss"]) for c in chunks for m in c.metrics[:-1] if c is last)
    assert f"epoch {exc.value.epoch}" in str(exc.value)


def test_grid_is_computed_only_on_grid_epochs():
    spec = small_spec(
        dataset={"name": "xor"},
        training={"epochs": 4, "batch_size": 4},
        recording={"grid_resolution": 5, "grid_every": 4},
    )
    trainer = Trainer(spec, load_dataset(spec))
    chunks = _collect(trainer)
    grids = {
        e: g
        for c in chunks
        for e, g in zip(c.sparse_epochs["grid/output"], c.tensors["grid/output"], strict=True)
    }
    assert sorted(grids) == [0, 4]
    assert all(np.all((g > 0) & (g < 1)) for g in grids.values())  # real sigmoid outputs


def test_the_per_neuron_grid_maps_recompute_from_the_parameters():
    """grid/<layer> is each hidden layer's post-activation output on grid/x: numpy recomputes
    it from the same epoch's parameters (and grid/output is the last layer's)."""
    spec = small_spec(
        dataset={"name": "xor"},
        model={"hidden": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "relu"}]},
        training={"epochs": 6, "batch_size": 4},
        recording={"grid_resolution": 4, "grid_every": 3},
    )
    trainer = Trainer(spec, load_dataset(spec))
    layers = [x.to_dict() for x in trainer.layer_infos]
    checked = []
    for chunk in _collect(trainer):
        for row, epoch in enumerate(chunk.sparse_epochs["grid/output"]):
            i = chunk.epochs.index(epoch)
            params = {k: v[i : i + 1] for k, v in chunk.tensors.items() if k.startswith("params/")}
            want = recompute_dense(params, layers, 0, x=trainer.grid_x)
            for name in ("hidden_1", "hidden_2"):
                got = chunk.tensors[f"grid/{name}"][row]
                np.testing.assert_allclose(got, want[name], rtol=2e-4, atol=2e-5, err_msg=name)
            np.testing.assert_allclose(
                chunk.tensors["grid/output"][row], want["output"][:, 0], rtol=2e-4, atol=2e-5
            )
            checked.append(epoch)
    assert checked == [0, 3, 6]


def test_chunks_end_with_a_short_one_and_their_grid_rows_are_the_grid_epochs_in_order():
    """The run's last chunk is a quarter of a chunk (its write overlaps no training); each
    chunk's grid tensors hold one row per grid epoch, recomputed here from that epoch's
    parameters, across chunks of every size the plan makes."""
    spec = small_spec(
        dataset={"name": "xor"},
        model={"hidden": [{"units": 3, "activation": "tanh"}]},
        training={"epochs": 40, "batch_size": 4},
        recording={"grid_resolution": 4, "grid_every": 3},
    )
    trainer = Trainer(spec, load_dataset(spec))
    trainer.chunk_steps = 8  # the plan's size; the compiled buffers keep their own (larger)
    layers = [x.to_dict() for x in trainer.layer_infos]
    chunks, grid_epochs = _collect(trainer), []
    assert [len(c.epochs) for c in chunks] == [1, 8, 8, 8, 8, 6, 2]
    assert [e for c in chunks for e in c.epochs] == list(range(41))
    for chunk in chunks:
        assert len(chunk.tensors["grid/hidden_1"]) == len(chunk.sparse_epochs["grid/output"])
        for row, epoch in enumerate(chunk.sparse_epochs["grid/output"]):
            i = chunk.epochs.index(epoch)
            params = {k: v[i : i + 1] for k, v in chunk.tensors.items() if k.startswith("params/")}
            want = recompute_dense(params, layers, 0, x=trainer.grid_x)
            got = chunk.tensors["grid/hidden_1"][row]
            np.testing.assert_allclose(got, want["hidden_1"], rtol=2e-4, atol=2e-5)
            np.testing.assert_allclose(
                chunk.tensors["grid/output"][row], want["output"][:, 0], rtol=2e-4, atol=2e-5
            )
            grid_epochs.append(epoch)
    assert grid_epochs == [*range(0, 40, 3), 40]


def test_the_plan_of_a_run_with_every_and_a_short_last_chunk():
    spec = small_spec(
        dataset={"name": "xor"}, training={"epochs": 103, "batch_size": 4}, recording={"every": 5}
    )
    trainer = Trainer(spec, load_dataset(spec))
    trainer.chunk_steps = 8
    plans, epoch = [], 0
    while epoch < 103:
        plans.append(trainer._plan(epoch))
        epoch += sum(plans[-1])
    # 21 recorded steps (20 of 5 epochs, the last of 3): two whole chunks, then the 5 steps
    # left as 3 and a short last chunk of a quarter (2)
    assert plans == [[5] * 8, [5] * 8, [5] * 3, [5, 3]]


def test_wide_layers_make_grid_frames_sparser_and_the_estimate_counts_them():
    """The default grid_every budgets the bytes of grid/output and the hidden maps; the
    spec's size estimate counts the frames the trainer records."""
    from netlens.storage import sizing

    def spec_of(units):
        return small_spec(
            dataset={"name": "xor"},
            model={"hidden": [{"units": units}]},
            training={"epochs": 1000, "batch_size": 4},
            recording={"grid_resolution": 40, "probe_size": 4},
        )

    narrow, wide = (Trainer(spec_of(u), load_dataset(spec_of(u))) for u in (2, 200))
    # frames of 1600 * (1 + units) floats: the byte budget decides the narrow net's count (fewer
    # than 500), the floor of MIN_GRID_FRAMES the wide one's
    frames = sizing.GRID_BYTES // (1600 * 3 * 4)
    assert frames < sizing.GRID_FRAMES and narrow.grid_every == -(-1000 // frames)
    assert sizing.GRID_BYTES // (1600 * 201 * 4) < sizing.MIN_GRID_FRAMES
    assert wide.grid_every == 1000 // sizing.MIN_GRID_FRAMES
    for trainer in (narrow, wide):
        spec = trainer.spec
        frames = sizing.recorded_epochs(1000, trainer.grid_every)
        rest = sizing.estimate_recorded_bytes(
            spec.model_copy(
                update={"recording": spec.recording.model_copy(update={"grid_resolution": 0})}
            )
        )
        units = spec.model.hidden[0].units
        assert sizing.estimate_recorded_bytes(spec) - rest == frames * 1600 * (1 + units) * 4


def test_long_runs_get_a_low_resolution_copy_of_params_and_outputs(monkeypatch):
    import netlens.worker.train as train_module

    monkeypatch.setattr(train_module, "LOWRES_EPOCHS", 10)
    spec = small_spec(dataset={"name": "xor"}, training={"epochs": 45, "batch_size": 4})
    chunks = _collect(Trainer(spec, load_dataset(spec)))
    lowres = [e for c in chunks for e in c.sparse_epochs.get("lowres/params/output/kernel", [])]
    assert lowres == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    full = {
        e: v
        for c in chunks
        for e, v in zip(c.epochs, c.tensors["params/output/kernel"], strict=True)
    }
    low = {
        e: v
        for c in chunks
        for e, v in zip(
            c.sparse_epochs.get("lowres/params/output/kernel", []),
            c.tensors.get("lowres/params/output/kernel", []),
            strict=True,
        )
    }
    for epoch, value in low.items():
        np.testing.assert_array_equal(value, full[epoch])
    assert all("lowres/signatures/output" in c.tensors for c in chunks)
    assert not any("lowres/signatures/hidden_1" in c.tensors for c in chunks)


def test_activation_statistics_count_dead_and_saturated_units():
    from netlens.worker.models import LayerInfo
    from netlens.worker.train import activation_stats

    relu = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]], np.float32)  # unit 0 dead
    tanh = np.array([[0.999, 0.1], [0.995, -0.2]], np.float32)  # unit 0 saturated
    stats = activation_stats(
        [LayerInfo("a", "dense", 3, "relu"), LayerInfo("b", "dense", 2, "tanh")], [relu, tanh]
    )
    assert float(stats["act/a/dead"]) == 1 and float(stats["act/a/saturated"]) == 0
    assert float(stats["act/b/saturated"]) == 1 and float(stats["act/b/dead"]) == 0
    assert float(stats["act/a/max"]) == 3 and abs(float(stats["act/a/mean"]) - 1.0) < 1e-6


@pytest.mark.parametrize(
    ("units", "norm_steps"), [([80], 32), ([1024, 1024], 32), ([80], 5), ([80], 0)]
)
def test_recorded_loss_and_gradient_norms_match_a_plain_step_by_step_recompute(units, norm_steps):
    """The epoch packs each step's squared gradient sums into one row and weights the padded
    last batch by its index: recomputed here one step at a time, on the valid inputs only,
    with each layer's norm taken in float64 by numpy. With two layers of 1,024 units, the
    second's kernel (1,024 x 1,024) is summed whole onto a row of its own (OWN_ROW_FLOATS),
    the rest packed. With recording.grad_norm_steps 5 (28 full batches), the norms are the
    mean over the last step of each whole group of ceil(27 / 5) = 6: steps 5, 11, 17, 23."""
    from netlens.worker.train import OWN_ROW_FLOATS

    spec = small_spec(
        dataset={"name": "digits"},
        model={
            "hidden": [*({"units": u, "activation": "relu"} for u in units)]
            + [{"units": 6, "activation": "tanh"}]
        },
        training={"epochs": 2, "batch_size": 50},
        recording={"grad_norm_steps": norm_steps},
    )
    assert (1024 * 1024 >= OWN_ROW_FLOATS > 64 * 1024) and (max(units) == 1024) == (len(units) == 2)
    data = load_dataset(spec)
    trainer = Trainer(spec, data, record=False)
    n, bs = len(data.x_train), trainer.batch_size
    assert n % bs and trainer.n_params > 4096  # a padded last batch; 256-wide rows of sums
    full = n // bs
    assert full == 28  # the digits less the validation share, in batches of 50
    sampled = range(full + 1) if norm_steps in (0, 32) else range(5, 24, 6)
    metrics = [m for c in _collect(trainer) for m in c.metrics][1:]
    forward = make_forward(trainer.graphdef)

    @jax.jit
    def loss_and_grads(params, xb, yb):
        def loss(p):
            logits = forward(p, xb)[0]
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        return jax.value_and_grad(loss)(params)

    params = trainer.init_params
    opt_state = trainer.tx.init(params)
    key = jax.random.PRNGKey(spec.training.seed)
    for epoch, recorded in enumerate(metrics, start=1):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
        loss_sum, norms = 0.0, {name: [] for name in params}
        for step, start in enumerate(range(0, n, bs)):
            rows = order[start : start + bs]
            loss, grads = loss_and_grads(params, data.x_train[rows], data.y_train[rows])
            loss_sum += float(loss) * len(rows)
            for name, g in grads.items():
                squares = [np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(g)]
                if step in sampled:
                    norms[name].append(np.sqrt(sum(squares)))
            updates, opt_state = trainer.tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        assert recorded["train_loss"] == pytest.approx(loss_sum / n, rel=1e-5)
        for name, values in norms.items():
            assert recorded[f"grad_norm/{name}"] == pytest.approx(np.mean(values), rel=1e-5)
