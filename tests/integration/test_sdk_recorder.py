"""nl.Recorder (issue 15, part 2) and the reading API (part 4) on a real SQLite home.

Small Flax NNX models (an MLP, a CNN with a residual block and batch norm) are trained by
plain optax loops, the way a user writes them, under the Recorder; the runs are exported and
numpy alone recomputes every nnx.Linear's recorded output from the recorded parameters and
the probe; recorded parameters equal the model's at each epoch. A script killed mid-run and
restarted with resume= ends with every epoch once and the parameters of an uninterrupted run.
Bad input raises, naming the argument, before anything is written. The job queue and the API
refuse to retrain such runs. The reading API is checked on these runs and on a `netlens
train` preset run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import netlens as nl
from netlens.sdk import home
from netlens.storage import jobs, records, runs
from netlens.storage.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


# ---- the user's models and loops ---------------------------------------------------------------


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden_1 = nnx.Linear(2, 8, rngs=rngs)
        self.hidden_2 = nnx.Linear(8, 6, rngs=rngs)
        self.out = nnx.Linear(6, 1, rngs=rngs)

    def __call__(self, x):
        x = jnp.tanh(self.hidden_1(x))  # the activation is the parent's: not in hidden_1's output
        x = jnp.tanh(self.hidden_2(x))
        return self.out(x)


class Residual(nnx.Module):
    def __init__(self, channels: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(channels, rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x):
        return nnx.relu(x + self.conv2(nnx.relu(self.norm(self.conv1(x)))))


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.stem = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.block = Residual(4, rngs)
        self.head = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, x):
        x = self.block(nnx.relu(self.stem(x)))
        return self.head(x.mean(axis=(1, 2)))


def moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    x = np.stack([np.cos(t) + y, np.sin(t) * (1 - 2 * y) + 0.3 * y], 1)
    return (x + rng.normal(0, 0.1, x.shape)).astype(np.float32), y


def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 6, 6, 1)).astype(np.float32)
    for i, label in enumerate(y):
        if label == 0:
            x[i, 2, :, 0] += 1.5
        elif label == 1:
            x[i, :, 2, 0] += 1.5
        else:
            x[i, 1:5, 1:5, 0] += 1.0
    return x, y


@pytest.fixture(scope="module")
def home_dir(tmp_path_factory):
    """A NetLens home of its own: nl.Recorder and nl.get use its SQLite database."""
    folder = tmp_path_factory.mktemp("sdk-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETLENS_HOME", str(folder))
        mp.delenv("NETLENS_DATABASE_URL", raising=False)
        mp.setenv("NETLENS_URL", "http://lab.example:8050/")
        yield folder


@pytest.fixture(scope="module")
def db(home_dir):
    return home.database()


def run_count(db) -> int:
    return runs.count_runs(db)


@pytest.fixture(scope="module")
def mlp_run(home_dir, db):
    """A functional optax loop: the parameters live outside the model and go to log()."""
    x, y = moons(256, 0)
    x_probe, y_probe = moons(40, 1)
    model = MLP(nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(0.02)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(xb)[:, 0]
            return optax.sigmoid_binary_cross_entropy(logits, yb).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        accuracy = jnp.mean((logits > 0) == (yb == 1))
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    seen = {}  # epoch -> the parameters at that epoch, host copies
    rec = nl.Recorder(
        model, probe=x_probe, probe_labels=y_probe, name="mlp", tags=["sdk-test", "mlp"]
    )
    with rec:
        rec.log(0, params=params)
        seen[0] = jax.tree.map(np.asarray, nnx.to_pure_dict(params))
        for epoch in range(1, 13):
            for batch in np.array_split(np.random.default_rng(epoch).permutation(256), 4):
                params, opt_state, loss, acc = step(
                    params, opt_state, x[batch], y[batch].astype(np.float32)
                )
            rec.log(epoch, params=params, loss=float(loss), accuracy=float(acc))
            seen[epoch] = jax.tree.map(np.asarray, nnx.to_pure_dict(params))
    return {"id": rec.run.id, "rec": rec, "seen": seen, "probe": (x_probe, y_probe)}


@pytest.fixture(scope="module")
def cnn_run(home_dir, db):
    """nnx.jit and nnx.Optimizer (optax inside): the model itself is updated in place."""
    x, y = bars(240, 0)
    x_probe, y_probe = bars(30, 1)
    model = CNN(nnx.Rngs(1))
    optimizer = nnx.Optimizer(model, optax.sgd(0.05, momentum=0.9), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss_fn(model):
            logits = model(xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    seen = {}
    rec = nl.Recorder(
        model, probe=x_probe, probe_labels=y_probe, name="cnn", tags=["sdk-test"], epochs=6
    )
    with rec:
        for epoch in range(1, 7):
            for batch in np.array_split(np.random.default_rng(epoch).permutation(240), 6):
                loss = step(model, optimizer, x[batch], y[batch])
            rec.log(epoch, loss=float(loss))
            seen[epoch] = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    return {"id": rec.run.id, "rec": rec, "seen": seen, "model": model}


def flat_params(pure: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"hidden_1": {"kernel": a}} -> {"params/hidden_1/kernel": a}; nested module paths
    joined with ".", as the Recorder names them."""
    out = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, str(key)))
        else:
            out[f"params/{'.'.join(path[:-1])}/{path[-1]}"] = node

    walk(pure, ())
    return out


# ---- what is recorded ----------------------------------------------------------------------------


def test_the_mlp_run_holds_every_epoch_parameter_and_module_output(mlp_run, db, tmp_path):
    info = runs.get_run(db, mlp_run["id"])
    assert (info.status, info.dataset, info.spec["model"]["kind"]) == (
        "succeeded",
        "external",
        "flax",
    )
    assert info.epochs_recorded == 13 and info.last_epoch == 12 and info.epochs_total == 12
    assert info.optimizer == "external"
    assert mlp_run["rec"].layers == ["hidden_1", "hidden_2", "out", "output"]  # return order
    assert [(x["name"], x["kind"], x["units"]) for x in info.layers] == [
        ("hidden_1", "dense", 8),
        ("hidden_2", "dense", 6),
        ("out", "dense", 1),
        ("output", "module", 1),
    ]
    modules = {m["name"]: m for m in info.data_info["recorder"]["modules"]}
    assert modules["hidden_1"]["type"] == "nnx.Linear"
    assert modules["hidden_1"]["params"] == {"bias": [8], "kernel": [2, 8]}
    assert modules["output"]["type"].endswith("MLP") and modules["output"]["calls"] == 1

    path = nl.get(mlp_run["id"]).export(tmp_path / "mlp.npz")
    f = np.load(path)
    assert list(f["epochs"]) == list(range(13))
    assert list(f["layers"]) == ["hidden_1", "hidden_2", "out", "output"]
    x = f["probe/x"]
    assert np.array_equal(x, mlp_run["probe"][0]) and np.array_equal(
        f["probe/y"], mlp_run["probe"][1]
    )
    for i, epoch in enumerate(f["epochs"]):
        seen = flat_params(mlp_run["seen"][int(epoch)])
        assert set(seen) == {k for k in f.files if k.startswith("params/")}
        for name, value in seen.items():  # the parameters are the model's at that epoch
            assert np.array_equal(f[name][i], value), (name, epoch)
        # numpy alone: each nnx.Linear's output is x @ kernel + bias of its recorded params
        h1 = x @ f["params/hidden_1/kernel"][i] + f["params/hidden_1/bias"][i]
        h2 = np.tanh(h1) @ f["params/hidden_2/kernel"][i] + f["params/hidden_2/bias"][i]
        out = np.tanh(h2) @ f["params/out/kernel"][i] + f["params/out/bias"][i]
        for name, mine in (("hidden_1", h1), ("hidden_2", h2), ("out", out), ("output", out)):
            assert np.allclose(f[f"signatures/{name}"][i], mine, atol=1e-5), (name, epoch)
    assert np.isnan(f["metrics/loss"][0]) and np.all(np.isfinite(f["metrics/loss"][1:]))


def test_the_cnn_run_records_every_module_of_a_residual_block(cnn_run, db, tmp_path):
    info = runs.get_run(db, cnn_run["id"])
    assert info.status == "succeeded" and info.epochs_total == 6
    assert cnn_run["rec"].layers == [
        "stem",
        "block.conv1",
        "block.norm",
        "block.conv2",
        "block",
        "head",
        "output",
    ]
    f = np.load(nl.get(cnn_run["id"]).export(tmp_path / "cnn.npz"))
    assert list(f["epochs"]) == [1, 2, 3, 4, 5, 6]
    assert f["signatures/block.conv1"].shape == (6, 30, 6, 6, 4)
    assert f["signatures/head"].shape == (6, 30, 3)
    modules = {m["name"]: m for m in json.loads(str(f["run"]))["data_info"]["recorder"]["modules"]}
    assert modules["block.norm"]["type"] == "nnx.BatchNorm"
    assert modules["block"]["params"] == {} and modules["block.conv1"]["params"]["kernel"] == [
        3,
        3,
        4,
        4,
    ]
    for i, epoch in enumerate(f["epochs"]):
        for name, value in flat_params(cnn_run["seen"][int(epoch)]).items():
            assert np.array_equal(f[name][i], value), (name, epoch)
        # the head (nnx.Linear) from the block's recorded output and the head's parameters
        pooled = f["signatures/block"][i].mean(axis=(1, 2))
        head = pooled @ f["params/head/kernel"][i] + f["params/head/bias"][i]
        assert np.allclose(f["signatures/head"][i], head, atol=1e-5)
        assert np.allclose(f["signatures/output"][i], head, atol=1e-5)
    # eval mode: the probe ran on batch norm's running averages, and the last epoch's outputs
    # are the trained model's own (in eval mode) on the probe
    model = cnn_run["model"]
    model.eval()
    try:
        last = np.asarray(model(jnp.asarray(f["probe/x"])))
    finally:
        model.train()
    assert np.allclose(f["signatures/output"][-1], last, atol=1e-5)


class LinenBlock(flax.linen.Module):
    @flax.linen.compact
    def __call__(self, x):
        return flax.linen.Dense(5, name="inner")(flax.linen.tanh(x))


class LinenMLP(flax.linen.Module):
    @flax.linen.compact
    def __call__(self, x):
        h = flax.linen.Dense(6, name="hidden")(x)
        h = LinenBlock(name="block")(h)
        return flax.linen.Dense(1, name="output")(jnp.tanh(h))  # "output": the root moves aside


class HoldsLinen(nnx.Module):
    """An NNX model with a Linen part: its submodules are named under the part's name."""

    def __init__(self, rngs: nnx.Rngs):
        self.encoder = nnx.bridge.ToNNX(LinenBlock(), rngs=rngs)
        self.head = nnx.Linear(5, 1, rngs=rngs)

    def __call__(self, x):
        return self.head(self.encoder(x))


def test_a_linen_model_wrapped_with_tonnx_records_each_linen_submodule(home_dir, db, tmp_path):
    x, y = moons(64, 2)
    x_probe, y_probe = moons(12, 3)
    model = nnx.bridge.ToNNX(LinenMLP(), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="lazy_init"):  # nothing initialised yet
        nl.Recorder(model, probe=x_probe)
    with pytest.raises(TypeError, match="ToNNX"):  # a bare Linen module
        nl.Recorder(LinenMLP(), probe=x_probe)
    nnx.bridge.lazy_init(model, x[:1])
    optimizer = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss_fn(model):
            return optax.sigmoid_binary_cross_entropy(model(xb)[:, 0], yb).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    with nl.Recorder(model, probe=x_probe, probe_labels=y_probe, name="linen") as rec:
        for epoch in range(1, 4):
            loss = step(model, optimizer, x, y.astype(np.float32))
            rec.log(epoch, loss=float(loss))
    assert rec.layers == ["hidden", "block.inner", "block", "output", "model_output"]
    info = runs.get_run(db, rec.run.id)
    types = {m["name"]: m["type"] for m in info.data_info["recorder"]["modules"]}
    assert types["hidden"] == types["output"] == types["block.inner"] == "flax.linen.linear.Dense"
    assert types["block"].endswith("LinenBlock") and types["model_output"] == "nnx.ToNNX"
    assert [m["kind"] for m in info.layers] == ["dense", "dense", "module", "dense", "module"]
    f = np.load(nl.get(rec.run.id).export(tmp_path / "linen.npz"))
    assert list(f["epochs"]) == [1, 2, 3]
    for i in range(3):  # numpy alone recomputes each Dense's output from its recorded params
        h = x_probe @ f["params/hidden/kernel"][i] + f["params/hidden/bias"][i]
        inner = np.tanh(h) @ f["params/block.inner/kernel"][i] + f["params/block.inner/bias"][i]
        out = np.tanh(inner) @ f["params/output/kernel"][i] + f["params/output/bias"][i]
        for name, mine in (("hidden", h), ("block.inner", inner), ("block", inner)):
            assert np.allclose(f[f"signatures/{name}"][i], mine, atol=1e-5), name
        assert np.allclose(f["signatures/output"][i], out, atol=1e-5)
        assert np.allclose(f["signatures/model_output"][i], out, atol=1e-5)

    nested = HoldsLinen(nnx.Rngs(1))
    nnx.bridge.lazy_init(nested.encoder, x[:1, :])
    with nl.Recorder(nested, probe=x_probe, name="nested linen") as rec:
        rec.log(1)
    assert rec.layers == ["encoder.inner", "encoder", "head", "output"]
    names = nl.get(rec.run.id).tensor_names
    assert {"params/encoder.inner/kernel", "params/head/kernel"} <= set(names)


def test_metrics_that_are_not_finite_are_stored_as_missing(home_dir, db):
    rec = nl.Recorder(MLP(nnx.Rngs(3)), probe=moons(10, 2)[0], name="nan-metric")
    with rec, pytest.warns(UserWarning, match="metric 'loss' is nan"):
        rec.log(1, loss=float("nan"), accuracy=0.5)
        rec.log(2, loss=0.25, accuracy=np.float32(0.75))
    epochs, metrics = records.read_metrics(db, rec.run_id)
    assert list(epochs) == [1, 2] and np.isnan(metrics["loss"][0]) and metrics["loss"][1] == 0.25
    assert list(metrics["accuracy"]) == [0.5, 0.75]


# ---- bad input: a clear error naming the argument, nothing written ------------------------------


def test_bad_input_is_refused_before_anything_is_written(home_dir, db):
    x_probe, y_probe = moons(10, 3)
    before = run_count(db)
    cases = [
        (
            dict(probe=np.ones((10, 3), np.float32)),
            ValueError,
            r"^probe: the model cannot be called",
        ),
        (dict(probe=np.where(np.eye(10, 2) > 0, np.nan, 1.0)), ValueError, r"^probe: 2 value"),
        (dict(probe=np.zeros((0, 2))), ValueError, r"^probe: 0 inputs is out of range"),
        (dict(probe=np.ones((5001, 2))), ValueError, r"^probe: 5001 inputs"),
        (dict(probe=["a", "b"]), TypeError, r"^probe: needs a numeric array"),
        (dict(probe=x_probe, probe_labels=y_probe[:5]), ValueError, r"^probe_labels: shape"),
        (dict(probe=x_probe, probe_labels=y_probe + 0.5), ValueError, r"^probe_labels: must be"),
        (dict(probe=x_probe, layers=["hidden_3"]), ValueError, r"^layers: 'hidden_3' is not"),
        (dict(probe=x_probe, layers="hidden_1"), TypeError, r"^layers: give a list"),
        (dict(probe=x_probe, epochs=0), ValueError, r"^epochs: 0 must be"),
        (dict(probe=x_probe, name="x" * 201), SpecError, r"name: .* at most 200"),
        (dict(probe=x_probe, config={"f": object()}), TypeError, r"^config: must hold JSON"),
        (dict(probe=x_probe, resume=10**6), ValueError, r"^resume: run 1000000 does not exist"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            nl.Recorder(MLP(nnx.Rngs(0)), **kwargs)
    with pytest.raises(TypeError, match=r"^model: must be a flax.nnx.Module"):
        nl.Recorder(lambda x: x, probe=x_probe)
    with pytest.raises(ValueError, match=r"^layers: 'hiden_1' is not .*did you mean hidden_1"):
        nl.Recorder(MLP(nnx.Rngs(0)), probe=x_probe, layers=["hiden_1"])
    assert run_count(db) == before

    rec = nl.Recorder(MLP(nnx.Rngs(0)), probe=x_probe, layers=["hidden_2"], name="bad-logs")
    assert rec.layers == ["hidden_2"] and run_count(db) == before + 1
    rec.log(3, loss=1.0)
    for epoch, message in ((3, r"^epoch: 3 repeats"), (2, r"^epoch: 2 goes backwards")):
        with pytest.raises(ValueError, match=message):
            rec.log(epoch, loss=1.0)
    for bad in (1.5, True, "4"):
        with pytest.raises(TypeError, match=r"^epoch: must be an integer"):
            rec.log(bad)
    with pytest.raises(ValueError, match=r"^epoch: 100001 is out of range"):
        rec.log(100_001)
    with pytest.raises(TypeError, match=r"^loss: a metric must be one real number"):
        rec.log(4, loss=np.ones(3))
    with pytest.raises(TypeError, match=r"^accuracy: a metric must be a number, not True"):
        rec.log(4, accuracy=True)
    with pytest.raises(ValueError, match=r"^params: 2 arrays given; the model has 6"):
        rec.log(4, params={"a": np.ones(2), "b": np.ones(3)})
    as_float64 = jax.tree.map(  # numpy float64: JAX (without x64) takes it as float32
        lambda v: np.asarray(v, np.float64), nnx.to_pure_dict(nnx.state(rec.model, nnx.Param))
    )
    assert rec.log(4, params=as_float64, loss=0.5)  # the refused calls moved nothing
    rec.close()
    with pytest.raises(RuntimeError, match=r"^log: the recorder of run \d+ is closed"):
        rec.log(5, loss=0.1)
    epochs, metrics = records.read_metrics(db, rec.run_id)
    assert list(epochs) == [3, 4] and list(metrics["loss"]) == [1.0, 0.5]
    assert records.tensor_names(db, rec.run_id) == [
        *(f"params/{m}/{p}" for m in ("hidden_1", "hidden_2", "out") for p in ("bias", "kernel")),
        "signatures/hidden_2",
    ]


def test_resume_refuses_another_model_probe_or_a_run_netlens_trained(mlp_run, home_dir, db):
    x_probe, y_probe = mlp_run["probe"]
    before = run_count(db)
    with pytest.raises(ValueError, match=r"^probe: differs from the probe run"):
        nl.Recorder(
            MLP(nnx.Rngs(0)), probe=x_probe[:20], probe_labels=y_probe[:20], resume=mlp_run["id"]
        )
    with pytest.raises(ValueError, match=r"^probe_labels: differ"):
        nl.Recorder(MLP(nnx.Rngs(0)), probe=x_probe, resume=mlp_run["id"])
    with pytest.raises(ValueError, match=r"^layers: differs from what run"):
        nl.Recorder(
            MLP(nnx.Rngs(0)),
            probe=x_probe,
            probe_labels=y_probe,
            layers=["out"],
            resume=mlp_run["id"],
        )
    spec_run = runs.create_run(db, parse_spec({"training": {"epochs": 5}}))
    with pytest.raises(ValueError, match=r"^resume: run \d+ is a mlp run that NetLens trained"):
        nl.Recorder(MLP(nnx.Rngs(0)), probe=x_probe, resume=spec_run)
    assert run_count(db) == before + 1  # the spec run only
    assert runs.get_run(db, mlp_run["id"]).status == "succeeded"  # untouched


# ---- resume after a crash -------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np, optax
    from flax import nnx
    import netlens as nl

    mode, out = sys.argv[1], sys.argv[2]
    EPOCHS = 40

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden_1 = nnx.Linear(2, 16, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)
        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden_1(x)))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    model = MLP(nnx.Rngs(0))
    tx = optax.adam(0.01)
    opt_state = tx.init(nnx.state(model, nnx.Param))

    @nnx.jit
    def step(model, opt_state, xb, yb):
        def loss_fn(model):
            return optax.sigmoid_binary_cross_entropy(model(xb)[:, 0], yb).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        params = nnx.state(model, nnx.Param)
        updates, opt_state = tx.update(grads, opt_state, params)
        nnx.update(model, optax.apply_updates(params, updates))
        return loss, opt_state

    def train(epoch, opt_state):
        for batch in np.array_split(np.random.default_rng(epoch).permutation(128), 8):
            loss, opt_state = step(model, opt_state, x[batch], y[batch])
        return float(loss), opt_state

    if mode == "reference":  # the same loop, uninterrupted and unrecorded
        losses = []
        for epoch in range(1, EPOCHS + 1):
            loss, opt_state = train(epoch, opt_state)
            losses.append(loss)
        np.savez(out, losses=np.array(losses), kernel=np.asarray(model.hidden_1.kernel[...]))
        sys.exit(0)

    resume = None if mode == "new" else int(mode)
    rec = nl.Recorder(model, probe=x[:16], name="resumable", resume=resume,
                      checkpoint_seconds=0.4)
    done, opt_state = rec.restore(opt_state)
    print("RUN", rec.run.id, "RESTORED", done, flush=True)
    skipped = 0
    with rec:
        if done is None and resume is None:
            rec.log(0, checkpoint=opt_state)
        for epoch in range((done or 0) + 1, EPOCHS + 1):
            loss, opt_state = train(epoch, opt_state)
            skipped += not rec.log(epoch, loss=loss, checkpoint=opt_state)
            if mode == "new":
                time.sleep(0.05)  # slow enough to be killed mid-run
    print("SKIPPED", skipped, flush=True)
    """
)


def test_a_killed_script_resumes_without_gaps_or_duplicates(home_dir, db, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "NETLENS_HOME": str(home_dir), "JAX_PLATFORMS": "cpu"}
    reference = tmp_path / "reference.npz"
    subprocess.run(
        [PYTHON, str(script), "reference", str(reference)], env=env, check=True, timeout=300
    )
    first = subprocess.Popen(
        [PYTHON, str(script), "new", "-"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = first.stdout.readline()
        assert line.startswith("RUN "), line
        run_id = int(line.split()[1])
        deadline = time.monotonic() + 240
        while runs.get_run(db, run_id).epochs_recorded < 15:
            assert first.poll() is None, "the script ended before it was killed"
            assert time.monotonic() < deadline, "the script recorded too slowly"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait(timeout=60)
    killed_at = runs.get_run(db, run_id)
    assert killed_at.status == "running" and 15 <= killed_at.epochs_recorded < 41

    second = subprocess.run(
        [PYTHON, str(script), str(run_id), "-"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    restored = int(second.stdout.split("RESTORED")[1].split()[0])
    assert 1 <= restored <= killed_at.last_epoch  # a checkpoint at or before the last stored
    # the epochs redone between that checkpoint and the last stored one were not written again
    assert int(second.stdout.split("SKIPPED")[1].split()[0]) == killed_at.last_epoch - restored

    info = runs.get_run(db, run_id)
    epochs, metrics = records.read_metrics(db, run_id)
    assert info.status == "succeeded" and list(epochs) == list(range(41))  # each epoch once
    assert info.epochs_recorded == 41 and info.last_epoch == 40
    ref = np.load(reference)
    assert np.allclose(metrics["loss"][1:], ref["losses"], rtol=1e-5, atol=1e-6)
    kernel_epochs, kernels = records.read_tensor(db, run_id, "params/hidden_1/kernel")
    assert list(kernel_epochs) == list(range(41))
    assert np.allclose(kernels[-1], ref["kernel"], rtol=1e-5, atol=1e-6)


# ---- the job queue and the API refuse to retrain such runs --------------------------------------


def test_the_queue_refuses_to_submit_retry_or_requeue_a_recorder_run(mlp_run, db):
    flax_spec = parse_spec({"dataset": {"name": "external"}, "model": {"kind": "flax"}})
    before = run_count(db)
    with pytest.raises(SpecError, match="trained by the user's code; NetLens cannot retrain it"):
        jobs.submit(db, flax_spec)
    assert run_count(db) == before
    for action in (jobs.retry, jobs.requeue):
        with pytest.raises(jobs.JobStateError) as caught:
            action(db, mlp_run["id"])
        assert str(caught.value) == (
            f"run {mlp_run['id']} was trained by the user's code; NetLens cannot retrain it "
            "(model.kind 'flax')"
        )


def test_the_api_answers_409_to_retry_and_422_to_submit(mlp_run, home_dir, db):
    from netlens.storage.settings import Settings
    from netlens.webapp.app import create_app

    settings = Settings()  # the same home: single-user mode on 127.0.0.1
    app = create_app(settings, db, bind_host="127.0.0.1")
    client = app.server.test_client()
    host = {"HTTP_HOST": "127.0.0.1:8050"}
    retried = client.post(f"/api/runs/{mlp_run['id']}/retry", environ_overrides=host)
    assert retried.status_code == 409, retried.text
    assert retried.json["error"] == (
        f"run {mlp_run['id']} was trained by the user's code; NetLens cannot retrain it "
        "(model.kind 'flax')"
    )
    assert retried.json["fields"] == ["run_id"]
    before = run_count(db)
    spec = {"dataset": {"name": "external"}, "model": {"kind": "flax"}}
    for path in ("/api/runs", "/api/specs/validate"):
        body = {"spec": spec} if path == "/api/runs" else spec
        answer = client.post(path, json=body, environ_overrides=host)
        assert answer.status_code == 422, answer.text
        assert (
            "model.kind: 'flax': such a run is trained by the user's code" in answer.json["error"]
        )
    assert run_count(db) == before


# ---- reading runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def preset_run(home_dir, db) -> int:
    """A `netlens train` preset run, in a process of its own, in the same home."""
    env = {**os.environ, "NETLENS_HOME": str(home_dir), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [
            str(Path(PYTHON).parent / "netlens"),
            "train",
            "--preset",
            "xor",
            "--epochs",
            "120",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_runs_lists_and_filters(mlp_run, cnn_run, preset_run):
    table = nl.runs(tag="sdk-test")
    assert list(table["id"]) == [cnn_run["id"], mlp_run["id"]]  # newest first
    assert list(table["model"]) == ["flax", "flax"] and list(table["dataset"]) == ["external"] * 2
    xor = nl.runs(dataset="xor")
    assert preset_run in set(xor["id"]) and set(xor["dataset"]) == {"xor"}
    assert preset_run not in set(nl.runs(dataset="external")["id"])
    assert set(nl.runs(tag="mlp")["id"]) == {mlp_run["id"]}
    assert mlp_run["id"] in set(nl.runs(status="succeeded", name="mlp")["id"])
    assert len(nl.runs(limit=1)) == 1
    row = nl.runs(tag="mlp").iloc[0]
    assert (row["name"], row["status"], row["last_epoch"]) == ("mlp", "succeeded", 12)
    for kwargs, message in (
        ({"status": "done"}, r"^status: 'done' is not one of queued, running"),
        ({"dataset": "iris"}, r"^dataset: 'iris' is not one of xor"),
        ({"limit": 0}, r"^limit: 0 is out of range"),
        ({"tag": ""}, r"^tag: '' must be"),
    ):
        with pytest.raises(ValueError, match=message):
            nl.runs(**kwargs)


def test_runs_is_a_list_of_dicts_without_pandas_and_reading_imports_no_jax(mlp_run, home_dir):
    code = (
        "import sys; sys.modules['pandas'] = None\n"  # pandas cannot be imported
        "import json, netlens as nl\n"
        "rows = nl.runs(tag='mlp'); m = nl.get(rows[0]['id']).metrics()\n"
        "t = nl.get(rows[0]['id']).tensor('params/out/kernel', 3)\n"
        "print(json.dumps([type(rows).__name__, rows[0]['name'], sorted(m), len(m['epoch']),\n"
        "                  list(t.shape), 'jax' in sys.modules]))\n"
    )
    env = {**os.environ, "NETLENS_HOME": str(home_dir)}
    done = subprocess.run(
        [PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    # reading imports no JAX (a notebook reading runs starts fast)
    assert json.loads(done.stdout) == [
        "list",
        "mlp",
        ["accuracy", "epoch", "loss"],
        13,
        [6, 1],
        False,
    ]


def test_get_reads_a_recorder_run(mlp_run):
    run = nl.get(mlp_run["id"])
    assert run.name == "mlp" and run.status == "succeeded" and run.id == mlp_run["id"]
    assert run.url == f"http://lab.example:8050/runs/{run.id}"
    assert run.spec.model.kind == "flax" and run.spec.dataset.name == "external"
    assert list(run.epochs) == list(range(13))
    metrics = run.metrics()
    assert list(metrics.index) == list(range(13)) and set(metrics.columns) == {"loss", "accuracy"}
    seen = mlp_run["seen"]
    kernels = run.tensor("params/hidden_1/kernel", epochs=slice(0, 100))
    assert kernels.shape == (13, 2, 8)
    assert np.array_equal(kernels[5], seen[5]["hidden_1"]["kernel"])
    found, values = run.tensor("params/out/bias", epochs=slice(2, 9, 3), with_epochs=True)
    assert list(found) == [2, 5, 8] and np.array_equal(values[1], seen[5]["out"]["bias"])
    assert np.array_equal(run.tensor("params/out/bias", 7), seen[7]["out"]["bias"])
    picked = run.tensor("params/out/bias", [9, 1])
    assert np.array_equal(picked[0], seen[9]["out"]["bias"]) and picked.shape == (2, 1)
    x_probe, y_probe = run.probe()
    sig = run.signatures("hidden_1", 4)
    assert sig.shape == (40, 8)
    assert np.allclose(
        sig, x_probe @ seen[4]["hidden_1"]["kernel"] + seen[4]["hidden_1"]["bias"], atol=1e-5
    )
    assert np.array_equal(run.signatures("output"), run.tensor("signatures/output", 12))
    with pytest.raises(
        ValueError,
        match=r"^name: 'params/hidden_1/kernal' .*did you mean "
        r"params/hidden_1/kernel",
    ):
        run.tensor("params/hidden_1/kernal")
    with pytest.raises(ValueError, match=r"^epochs: \[40\] not recorded for params/out/bias"):
        run.tensor("params/out/bias", 40)
    with pytest.raises(ValueError, match=r"^layer: 'hidden_3' has no recorded signatures"):
        run.signatures("hidden_3")
    with pytest.raises(LookupError, match=r"run 999999 does not exist"):
        nl.get(999_999)


def test_figures_of_a_recorder_run(mlp_run, cnn_run):
    import plotly.graph_objects as go

    run = nl.get(mlp_run["id"])
    for view, options in (
        ("loss", {}),
        ("accuracy", {}),
        ("metrics", {}),
        ("trajectories", {"layer": "hidden_2", "neuron": 3}),
        ("weights", {"layer": "hidden_1"}),
        ("outputs", {}),
        ("network", {}),
        ("network", {"color_by": "activation", "input_index": 2}),
        ("network3d", {}),
        ("representation", {"layer": "hidden_2"}),
        ("activations", {"layer": "hidden_1"}),  # computed from its signatures, as the page
    ):
        figure = go.Figure(run.figure(view, epoch=6, **options))
        assert figure.data, view
    # the page's figures: the MLP's dense chain neuron by neuron, its logit through a sigmoid
    assert "modules in call order" not in run.figure("network").layout.title.text
    assert "sigmoid" in run.figure("outputs").layout.title.text
    for view, message in (
        ("gradients", r"^Gradient norm per layer: no such metric recorded"),
        ("boundary", r"^boundary: no decision-boundary grid"),
        ("neurons", r"^neurons: No neuron maps: NetLens computes"),
    ):
        with pytest.raises(ValueError, match=message):
            run.figure(view)
    with pytest.raises(ValueError, match=r"^view: 'histogram' is not a view of the run page"):
        run.figure("histogram")
    with pytest.raises(ValueError, match=r"^epoch: 99 is not recorded"):
        run.figure("loss", epoch=99)
    with pytest.raises(TypeError, match=r"^neuron: not an option of view 'weights'"):
        run.figure("weights", neuron=2)
    cnn = nl.get(cnn_run["id"])
    assert go.Figure(cnn.figure("representation", layer="block.conv1")).data  # (P, 6, 6, 4)
    network = cnn.figure("network", epoch=3)  # a CNN: its modules in call order, as the page
    assert network.data and network.layout.title.text.startswith("modules in call order")
    (skip,) = [t for t in network.data if t.name == "skip"]  # the residual block's, as the page
    assert "input of block" in skip.text[0]
    with pytest.raises(ValueError, match=r"^layer: 'stem' has no kernel|^layer: 'block'"):
        cnn.figure("trajectories", layer="block")


def test_reading_a_netlens_train_preset_run(preset_run, tmp_path):
    import plotly.graph_objects as go

    run = nl.get(preset_run)
    assert run.spec.dataset.name == "xor" and run.status == "succeeded"
    assert list(run.epochs) == list(range(121))
    assert run.tensor("params/hidden_1/kernel", epochs=slice(0, 100)).shape == (100, 2, 3)
    assert run.signatures("hidden_1", 50).shape == (4, 3)
    metrics = run.metrics()
    assert {"train_loss", "train_accuracy", "grad_norm/hidden_1"} <= set(metrics.columns)
    f = np.load(run.export(tmp_path / "xor.npz"))
    assert np.array_equal(f["params/output/kernel"], run.tensor("params/output/kernel"))
    for view in (
        "loss",
        "accuracy",
        "gradients",
        "trajectories",
        "weights",
        "outputs",
        "network",
        "network3d",
        "activations",
        "boundary",
        "neurons",
        "representation",
    ):
        assert go.Figure(run.figure(view, epoch=60)).data, view


# ---- the example and the command line ------------------------------------------------------------


def test_the_example_records_its_own_flax_model(tmp_path):
    env = {**os.environ, "NETLENS_HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    env.pop("NETLENS_DATABASE_URL", None)
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, str(ROOT / "examples" / "own_flax_model.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 120  # "runs in seconds": ~10 s, most of it importing JAX
    run_id = int(done.stdout.strip().splitlines()[-1])
    from netlens.storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'netlens.db'}")
    try:
        info = runs.get_run(db, run_id)
        assert (info.name, info.status, info.epochs_recorded) == ("own-flax-cnn", "succeeded", 31)
        assert info.data_info["config"]["learning_rate"] == 3e-3
        epochs, metrics = records.read_metrics(db, run_id)
        assert metrics["accuracy"][-1] > 0.9  # the example learns what it says it learns
    finally:
        db.dispose()


def test_netlens_train_refuses_a_flax_spec(tmp_path):
    from click.testing import CliRunner

    from netlens.cli import main

    spec = tmp_path / "flax.yaml"
    spec.write_text("dataset: {name: external}\nmodel: {kind: flax}\n")
    result = CliRunner().invoke(main, ["train", str(spec)], env={"NETLENS_HOME": str(tmp_path)})
    assert result.exit_code != 0
    assert "trained by the user's code; NetLens cannot retrain it" in result.output
    assert not (tmp_path / "netlens.db").exists()  # refused before the database was opened
