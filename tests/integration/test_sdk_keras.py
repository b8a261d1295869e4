"""The Python API's Keras-like model end to end: nl.Sequential.fit makes a run in the real
database (SQLite under NETLENS_HOME; one test on PostgreSQL), recorded as a spec run is,
retrainable by the worker from its stored data, exportable, shown by the run pages, and
continued by a second fit. Bad input is refused before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

import netlens as nl
from netlens.sdk.home import database
from netlens.storage import jobs, records, runs
from netlens.storage.export import collect_run, export_run
from netlens.storage.presets import get_preset
from netlens.storage.spec import LIMITS, SpecError, parse_spec
from netlens.worker.runner import run_experiment
from tests.numpy_forward import ACT, recompute_sequential

ROOT = Path(__file__).resolve().parents[2]
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # the xor dataset's order
Y = np.array([0, 1, 1, 0])


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh NETLENS_HOME: the Python API's default SQLite database lives there."""
    monkeypatch.setenv("NETLENS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NETLENS_DATABASE_URL", raising=False)
    return database()


def xor_model(learning_rate: float = 0.05) -> nl.Sequential:
    model = nl.Sequential(
        [nl.layers.Dense(3, activation="tanh"), nl.layers.Dense(1, activation="sigmoid")],
        input_shape=(2,),
    )
    model.compile(
        optimizer=nl.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def digits_model() -> nl.Sequential:
    model = nl.Sequential(
        [
            nl.layers.Conv2D(6, kernel_size=3, activation="relu"),
            nl.layers.MaxPooling2D(2),
            nl.layers.Conv2D(8, kernel_size=(2, 2), padding="same", activation="tanh"),
            nl.layers.Flatten(),
            nl.layers.Dropout(0.2),
            nl.layers.Dense(16, activation="relu"),
            nl.layers.Dense(10, activation="softmax"),
        ],
        input_shape=(8, 8),
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _forward(params: dict, x: np.ndarray) -> np.ndarray:
    """The 2-3-1 XOR network in numpy: sigmoid output."""
    hidden = np.tanh(x @ params["hidden_1/kernel"] + params["hidden_1/bias"])
    return ACT["sigmoid"](hidden @ params["output/kernel"] + params["output/bias"])


def _final_params(db, run_id: int) -> dict[str, np.ndarray]:
    out = {}
    for name in ("hidden_1/kernel", "hidden_1/bias", "output/kernel", "output/bias"):
        epochs, values = records.read_tensor(db, run_id, f"params/{name}")
        out[name] = values[-1].astype(np.float64)
    return out


def test_xor_fit_learns_and_is_recorded_like_a_spec_run(home):
    model = xor_model()
    before = runs.count_runs(home)
    history = model.fit(X, Y, epochs=800, batch_size=4, name="xor", tags=["notebook"], verbose=0)
    assert runs.count_runs(home) == before + 1
    assert history.history["accuracy"][-1] == 1.0
    assert history.epoch == list(range(1, 801))
    run = history.run
    assert run.url.endswith(f"/runs/{run.id}") and run.status == "succeeded"
    info = runs.get_run(home, run.id)
    assert (info.name, info.tags, info.status, info.dataset) == (
        "xor",
        ["notebook"],
        "succeeded",
        "arrays",
    )
    assert info.architecture == "2-3-1" and info.epochs_total == 800
    assert [layer["name"] for layer in info.layers] == ["hidden_1", "output"]
    assert runs.recorded_epoch_numbers(home, run.id) == list(range(801))
    # the history is the stored metrics, epoch by epoch
    epochs, metrics = records.read_metrics(home, run.id)
    for stored, ours in (("train_loss", "loss"), ("train_accuracy", "accuracy")):
        np.testing.assert_array_equal(metrics[stored][1:], np.asarray(history.history[ours]))
    # predict and evaluate use the final recorded parameters
    params = _final_params(home, run.id)
    expected = _forward(params, X.astype(np.float64))
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)
    loss, accuracy = model.evaluate(X, Y)
    p = np.clip(expected[:, 0], 1e-12, 1 - 1e-12)
    np.testing.assert_allclose(loss, -np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p)), rtol=1e-3)
    assert accuracy == 1.0
    np.testing.assert_allclose(model.get_weights()[0], params["hidden_1/kernel"], rtol=1e-6)
    # the data went with the run, and the pages never read it
    stored = records.read_arrays(home, run.id, "data/")
    np.testing.assert_array_equal(stored["data/x_train"], X)
    assert list(stored["data/y_train"]) == list(Y)
    assert not any(n.startswith("data/") for n in records.read_arrays(home, run.id))


def test_a_fit_equals_the_spec_run_of_the_same_network(home):
    """The same network, data, optimizer and seed as the xor preset: the same tensors, values
    and metrics, because it is the same Trainer."""
    spec = get_preset("xor")
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"epochs": 300})})
    preset_run = runs.create_run(home, spec)
    assert run_experiment(home, preset_run) == "succeeded"
    fitted = xor_model().fit(X, Y, epochs=300, batch_size=4, verbose=0).run.id
    assert records.tensor_names(home, fitted) == records.tensor_names(home, preset_run)
    for name in records.tensor_names(home, fitted):
        e1, v1 = records.read_tensor(home, preset_run, name)
        e2, v2 = records.read_tensor(home, fitted, name)
        np.testing.assert_array_equal(e1, e2, err_msg=name)
        if name.startswith("grid/"):  # over other points: the arrays' grid spans their range
            assert v1.shape == v2.shape
            continue
        np.testing.assert_allclose(v1, v2, rtol=1e-6, atol=1e-7, err_msg=name)
    m1, m2 = records.read_metrics(home, preset_run)[1], records.read_metrics(home, fitted)[1]
    assert m1.keys() == m2.keys()
    for key in m1:
        np.testing.assert_allclose(m1[key], m2[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_the_worker_retrains_a_fit_run_from_its_stored_data(home):
    history = xor_model().fit(X, Y, epochs=60, batch_size=2, validation_data=(X, Y), verbose=0)
    info = runs.get_run(home, history.run.id)
    copy = runs.create_run_with_arrays(
        home, parse_spec(info.spec), records.read_arrays(home, info.id, "data/")
    )
    assert run_experiment(home, copy) == "succeeded"
    original, again = records.read_metrics(home, info.id), records.read_metrics(home, copy)
    np.testing.assert_array_equal(original[0], again[0])
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(original[1][key], again[1][key], rtol=1e-6, err_msg=key)
    assert runs.get_run(home, copy).data_sha256 == info.data_sha256


def test_export_lets_numpy_alone_recompute_every_signature_of_a_conv_model(home, tmp_path):
    """Conv2D (valid and same padding), MaxPooling2D, Flatten, Dropout and Dense on the
    digits: it trains, and the export recomputes every recorded layer with numpy."""
    (x, y), (x_val, y_val) = nl.datasets.load("digits", max_train=600)
    assert x.shape[1:] == (8, 8)
    model = digits_model()
    history = model.fit(
        x,
        y,
        epochs=6,
        batch_size=32,
        validation_data=(x_val, y_val),
        probe=(x_val[:40], y_val[:40]),
        verbose=0,
    )
    assert history.history["val_accuracy"][-1] > 0.5 > history.history["val_accuracy"][0] / 2
    info = runs.get_run(home, history.run.id)
    assert [layer["name"] for layer in info.layers] == ["conv_1", "conv_2", "hidden_1", "output"]
    assert [layer["units"] for layer in info.layers] == [6 * 6 * 6, 3 * 3 * 8, 16, 10]
    assert info.data_info["image_shape"] == [8, 8]
    path = export_run(home, history.run.id, tmp_path / "run.npz")
    with np.load(path) as f:
        export = {k: f[k] for k in f.files}
    config = json.loads(str(export["config"]))
    assert config["model"]["kind"] == "sequential" and config["dataset"]["name"] == "arrays"
    assert export["data/x_train"].shape == (600, 64)  # the export carries the data too
    assert list(export["epochs"]) == list(range(7))
    for epoch_index in (0, 3, 6):
        recomputed = recompute_sequential(export, config["model"], epoch_index)
        assert list(recomputed) == [layer["name"] for layer in info.layers]
        for name, values in recomputed.items():
            np.testing.assert_allclose(
                export[f"signatures/{name}"][epoch_index],
                values,
                rtol=2e-4,
                atol=2e-5,
                err_msg=f"{name} at epoch {epoch_index}",
            )
    # predict = the recorded output on the probe at the last epoch
    np.testing.assert_allclose(
        model.predict(x_val[:40]), export["signatures/output"][-1], rtol=1e-4, atol=1e-6
    )


def test_xor_export_recomputes_every_signature(home, tmp_path):
    history = xor_model().fit(X, Y, epochs=20, batch_size=4, probe=(X, Y), verbose=0)
    export = collect_run(home, history.run.id)
    config = json.loads(str(export["config"]))
    for epoch_index in (0, 10, 20):
        for name, values in recompute_sequential(export, config["model"], epoch_index).items():
            np.testing.assert_allclose(
                export[f"signatures/{name}"][epoch_index], values, rtol=2e-4, atol=2e-5
            )
    # 2 features, 2 classes: the decision-boundary grid, as a 2-D dataset has
    assert export["grid/output"].shape == (len(export["grid/epochs"]), 40 * 40)
    assert runs.get_run(home, history.run.id).data_info["grid_bounds"] == [-0.25, 1.25, -0.25, 1.25]


def test_a_second_fit_continues_the_run_without_gaps(home):
    model = xor_model()
    first = model.fit(X, Y, epochs=30, batch_size=2, probe=(X, Y), verbose=0)
    second = model.fit(X, Y, epochs=20, batch_size=2, probe=(X, Y), verbose=0)
    assert first.run.id == second.run.id
    assert first.epoch == list(range(1, 31)) and second.epoch == list(range(31, 51))
    info = runs.get_run(home, first.run.id)
    assert info.epochs_total == 50 and info.spec["training"]["epochs"] == 50
    assert info.status == "succeeded" and info.last_epoch == 50
    assert runs.recorded_epoch_numbers(home, info.id) == list(range(51))
    for name in records.tensor_names(home, info.id):
        if not name.startswith(("grid/", "lowres/")):
            assert list(records.read_tensor(home, info.id, name)[0]) == list(range(51)), name
    # the same as training 50 epochs at once
    once = xor_model().fit(X, Y, epochs=50, batch_size=2, probe=(X, Y), verbose=0)
    np.testing.assert_allclose(
        records.read_metrics(home, info.id)[1]["train_loss"],
        records.read_metrics(home, once.run.id)[1]["train_loss"],
        rtol=1e-5,
    )
    # a continued fit keeps the run's data and settings
    count = runs.count_runs(home)
    with pytest.raises(ValueError, match=r"^x: the data .* differs from what run"):
        model.fit(X[::-1], Y[::-1], epochs=5, batch_size=2, probe=(X, Y), verbose=0)
    with pytest.raises(ValueError, match=r"^batch_size: 4 differs from run"):
        model.fit(X, Y, epochs=5, batch_size=4, probe=(X, Y), verbose=0)
    with pytest.raises(ValueError, match=r"^compile: the model has been fitted"):
        model.compile(optimizer="sgd", loss="binary_crossentropy")
    assert runs.count_runs(home) == count and runs.get_run(home, info.id).epochs_total == 50


def test_an_interrupted_fit_keeps_its_epochs_and_can_be_continued(home):
    """Ctrl-C in a notebook: KeyboardInterrupt reaches fit while it trains; the epochs so far
    stay, the run is cancelled, and the next fit goes on from the last recorded epoch."""
    import _thread
    import threading

    model = xor_model()
    # 250 copies of the four points: ~250 steps an epoch, so 100,000 epochs take minutes and
    # the interrupt lands while fit trains (the bare four points ran 100,000 epochs in ~6 s,
    # and on a loaded machine fit could end before the watcher saw the first epoch stored)
    x, y = np.tile(X, (250, 1)), np.tile(Y, 250)
    stop = threading.Event()

    def interrupt_once_epochs_are_stored():
        while not stop.is_set():
            ids = [r.id for r in runs.list_runs(home, limit=1)]
            if ids and (runs.get_run(home, ids[0]).last_epoch or 0) >= 1:
                _thread.interrupt_main()
                return
            stop.wait(0.05)

    watcher = threading.Thread(target=interrupt_once_epochs_are_stored, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, epochs=100_000, batch_size=4, verbose=0)
    finally:
        stop.set()
        watcher.join()
    info = runs.get_run(home, model.run.id)
    assert info.status == "cancelled" and "KeyboardInterrupt" in info.error
    done = info.last_epoch
    assert 1 <= done < 100_000 and model.history.epoch[-1] == done
    assert runs.recorded_epoch_numbers(home, info.id) == list(range(done + 1))
    more = model.fit(x, y, epochs=10, batch_size=4, verbose=0)
    assert more.epoch == list(range(done + 1, done + 11))
    info = runs.get_run(home, info.id)
    assert info.status == "succeeded" and info.epochs_total == done + 10
    assert runs.recorded_epoch_numbers(home, info.id) == list(range(done + 11))


def test_a_run_continued_past_a_thousand_epochs_keeps_its_whole_history_on_the_pages(home):
    """The first 600 epochs have no lowres/ copy (a run of <= 1,000 recorded epochs needs
    none), the next 900 do: the pages' history joins the two."""
    from netlens.webapp.data import RunData

    model = xor_model()
    model.fit(X, Y, epochs=600, batch_size=4, verbose=0)
    run_id = model.fit(X, Y, epochs=900, batch_size=4, verbose=0).run.id
    lowres = records.read_tensor(home, run_id, "lowres/params/output/kernel")[0]
    assert lowres[0] > 600
    epochs, values = RunData(home).history(runs.get_run(home, run_id), "params/output/kernel")
    assert epochs[0] == 0 and epochs[-1] == 1500 and (np.diff(epochs) > 0).all()
    assert epochs[600] == 600 and len(values) == len(epochs)


def test_fit_records_into_postgresql_too(db, monkeypatch):
    monkeypatch.setenv("NETLENS_DATABASE_URL", db.url)
    history = xor_model().fit(X, Y, epochs=25, batch_size=4, validation_split=0.25, verbose=0)
    sdk_db = database()
    info = runs.get_run(sdk_db, history.run.id)
    assert (
        info.status == "succeeded"
        and info.data_info["n_train"] == 3
        and info.data_info["n_val"] == 1
    )
    assert runs.recorded_epoch_numbers(sdk_db, info.id) == list(range(26))
    assert len(history.history["val_loss"]) == 25


def test_verbose_1_shows_a_progress_bar_and_0_nothing(home, capfd):
    xor_model().fit(X, Y, epochs=40, batch_size=4, verbose=0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    xor_model().fit(X, Y, epochs=40, batch_size=4, verbose=1)
    _, err = capfd.readouterr()
    assert "40/40" in err and "epoch" in err and "accuracy=" in err


def test_the_run_pages_and_analyses_work_on_fit_runs(home):
    """Every view of the run page on a 2-D (XOR) and an image (conv) fit run, and the
    signature analyses of the conv run."""
    import dash
    import flask

    from netlens.storage.settings import Settings
    from netlens.storage.users import LOCAL
    from netlens.webapp.app import create_app
    from netlens.webapp.views import run as v
    from netlens.worker.analyze import run_analysis

    xor_run = xor_model().fit(X, Y, epochs=30, batch_size=4, probe=(X, Y), verbose=0).run.id
    (x, y), (x_val, y_val) = nl.datasets.load("digits", max_train=300)
    conv_run = digits_model().fit(x, y, epochs=3, validation_data=(x_val, y_val), verbose=0).run.id
    summary = run_analysis(home, conv_run, "epoch", 3)
    assert set(summary["layers"]) >= {"conv_1", "hidden_1"}
    app = create_app(
        Settings(home=Path(os.environ["NETLENS_HOME"]), database_url=None, broker_url=None), home
    )
    page = next(p for p in dash.page_registry.values() if p["path_template"] == "/runs/<run_id>")
    with app.server.test_request_context("/"):
        flask.g.netlens_actor = LOCAL
        xor_page = str(page["layout"](run_id=str(xor_run)))
        assert "Decision boundary" in xor_page and "Hidden representation" in xor_page
        assert "Decision boundary" not in str(page["layout"](run_id=str(conv_run)))
        boundary = go.Figure(v.boundary_view("boundary", None, xor_run))
        assert any(t.type == "heatmap" for t in boundary.data)
        assert go.Figure(v.network_view("network", None, "activation", 1, xor_run)).data
        for run_id, layer in ((xor_run, "hidden_1"), (conv_run, "conv_1")):
            figures = [
                *v.curve_views("curves", None, 0, 0, False, "epoch", run_id),
                *v.parameter_views("params", None, layer, 0, run_id),
                v.output_view("outputs", None, run_id),
                v.activation_view("activations", None, layer, run_id),
                v.representation_view("representation", None, layer, "class", run_id),
            ]
            assert all(go.Figure(f).data for f in figures), run_id
        message = go.Figure(v.network_view("network", None, "bias", 0, conv_run))
        assert "convolutions" in message.layout.annotations[0].text
        # the signatures page draws the conv run's stored analysis
        sig = sys.modules["pages.signatures"]
        _status, label, _disabled, _maximum, version = sig.status(3, 0, conv_run, None)
        assert label == "epoch 3" and version
        by_layer, _ = sig.separability(
            "separability", 3, "linear-probe accuracy", version, conv_run
        )
        assert list(go.Figure(by_layer).data[0].x) == [
            "input",
            "conv_1",
            "conv_2",
            "hidden_1",
            "output",
        ]
        curve, makeup = sig.clusters("clusters", 3, "conv_2", version, conv_run)
        assert go.Figure(curve).data and go.Figure(makeup).data
        assert go.Figure(sig.flow("flow", 3, version, conv_run)).data
        projection = sig.projection("projections", 3, "conv_1", "pca", "class", version, conv_run)
        assert sum(len(t.x) for t in go.Figure(projection).data) == len(x_val)


# --- bad input: refused before anything is written ------------------------------------


def _bad_calls():
    ok = {"x": X, "y": Y, "epochs": 2, "batch_size": 4, "verbose": 0}
    nan_x = X.copy()
    nan_x[2, 1] = np.nan
    return [
        (
            {"x": np.ones((4, 3), np.float32)},
            r"^x: inputs of shape \(3,\) do not match the model's input_shape \(2,\)",
        ),
        ({"x": X[:, 0]}, r"^x: shape \(4,\): give one row per input"),
        ({"y": Y[:3]}, r"^y: 3 labels for 4 inputs in x"),
        ({"y": np.array([0, 1, 2, 0])}, r"^y: label 2 is 2; each must be 0 or 1"),
        ({"y": np.array([0, 1, np.inf, 0])}, r"^y: label 2 is NaN or infinite"),
        ({"x": nan_x}, r"^x: row 2 holds NaN or infinity"),
        ({"x": [["a", "b"]] * 4}, r"^x: must hold numbers"),
        ({"validation_data": (X, Y[:2])}, r"^validation_data\[1\]: 2 labels for 4 inputs"),
        ({"validation_data": X}, r"^validation_data: give a pair \(x, y\)"),
        (
            {"validation_data": (X, Y), "validation_split": 0.5},
            r"^validation_split: give validation_data or",
        ),
        ({"validation_split": 1.5}, r"^validation_split: 1.5 must be above 0 and below 1"),
        ({"probe": (np.ones((2, 5)), Y[:2])}, r"^probe\[0\]: inputs of shape \(5,\) do not match"),
        (
            {"probe": (np.zeros((5001, 2)), np.zeros(5001))},
            r"^probe\[0\]: 5,001 inputs, above the limit of 5,000 \(max_probe_size\)",
        ),
        (
            {"x": np.zeros((200_001, 2)), "y": np.zeros(200_001)},
            r"^x: 200,001 inputs, above the limit of 200,000 \(max_samples\)",
        ),
        ({"epochs": 0}, r"^epochs: 0 is out of range: must be at least 1 \(training.epochs\)"),
        ({"epochs": 100_001}, r"^epochs: 100001 is out of range: must be at most 100000"),
        ({"batch_size": 0}, r"^batch_size: 0 is out of range: must be at least 1"),
        ({"record_every": 0}, r"^record_every: 0 is out of range"),
        ({"tags": "notebook"}, r"^tags: 'notebook' must be a list"),
        ({"verbose": 5}, r"^verbose: 5 must be 0"),
        ({"shuffle": False}, r"^shuffle: not an argument of nl.Sequential.fit"),
    ], ok


@pytest.mark.parametrize("index", range(21))
def test_bad_input_names_the_argument_and_writes_nothing(home, index):
    calls, ok = _bad_calls()
    change, message = calls[index]
    before = runs.count_runs(home)
    with pytest.raises(ValueError, match=message):
        xor_model().fit(**{**ok, **change})
    assert runs.count_runs(home) == before


def test_bad_models_losses_and_optimizers_are_refused_before_anything_is_written(home, monkeypatch):
    before = runs.count_runs(home)
    with pytest.raises(
        ValueError, match=r"^loss: 'mse' is not supported; choose one of binary_crossentropy"
    ):
        nl.Sequential([nl.layers.Dense(1, activation="sigmoid")]).compile(loss="mse")
    with pytest.raises(ValueError, match=r"^optimizer: 'adagrad' is not supported"):
        nl.Sequential([nl.layers.Dense(1, activation="sigmoid")]).compile(
            "adagrad", loss="binary_crossentropy"
        )
    with pytest.raises(ValueError, match=r"activation 'swish' is not supported"):
        nl.layers.Dense(3, activation="swish")
    with pytest.raises(ValueError, match=r"^layers\[1\]: str is not a NetLens layer"):
        nl.Sequential([nl.layers.Dense(3), "dense"])
    with pytest.raises(
        ValueError, match=r"^loss: binary_crossentropy goes with a sigmoid output layer"
    ):
        nl.Sequential([nl.layers.Dense(3, activation="softmax")]).compile(
            loss="binary_crossentropy"
        )
    no_flatten = nl.Sequential(
        [nl.layers.Conv2D(2), nl.layers.Dense(1, activation="sigmoid")], input_shape=(4, 4)
    )
    no_flatten.compile(loss="binary_crossentropy")
    with pytest.raises(
        ValueError, match=r"^layers\[1\]: dense needs a flat input, got shape \(2, 2, 2\)"
    ):
        no_flatten.fit(np.zeros((4, 4, 4)), Y, verbose=0)
    hidden_output = nl.Sequential(
        [nl.layers.Dense(1, activation="sigmoid"), nl.layers.Dropout(0.5)], input_shape=(2,)
    )
    hidden_output.compile(loss="binary_crossentropy")
    with pytest.raises(
        ValueError, match=r"^layers\[1\]: the last layer must be the dense output layer"
    ):
        hidden_output.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match=r"^fit: call model.compile"):
        nl.Sequential([nl.layers.Dense(1, activation="sigmoid")]).fit(X, Y)
    # the recording would be too large: the epochs argument is named, with the limit
    wide = nl.Sequential(
        [nl.layers.Dense(1024, activation="relu"), nl.layers.Dense(1, activation="sigmoid")]
    )
    wide.compile(loss="binary_crossentropy")
    with pytest.raises(
        ValueError, match=r"^epochs: the run would record about .* above the limit of 2,048 MiB"
    ):
        wide.fit(np.zeros((5000, 2)), np.zeros(5000), epochs=100_000, verbose=0)
    # the data stored with the run is bounded too (a smaller limit, to keep the test light)
    monkeypatch.setitem(LIMITS, "max_data_bytes", 1000)
    with pytest.raises(
        ValueError, match=r"^x: the data stored with the run would be .* \(max_data_bytes\)"
    ):
        xor_model().fit(np.zeros((200, 2)), np.zeros(200), verbose=0)
    # a spec of the arrays dataset cannot be queued without the data fit stores with it
    with pytest.raises(
        SpecError, match=r"dataset.name: 'arrays': its data is given to the Python API"
    ):
        jobs.submit(home, parse_spec({"dataset": {"name": "arrays"}}))
    assert runs.count_runs(home) == before


def test_the_example_runs_in_a_few_seconds(tmp_path):
    env = {**os.environ, "NETLENS_HOME": str(tmp_path)}
    env.pop("NETLENS_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "xor_keras_like.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy 1.00" in result.stdout and "epochs 1501..2000 added" in result.stdout


def test_a_fits_run_url_follows_netlens_url_as_nl_get_does(home, monkeypatch):
    from netlens.sdk.reading import Run
    from netlens.sdk.sink import LocalSink

    monkeypatch.setenv("NETLENS_URL", "http://lab.example:9000/")
    assert LocalSink(home).handle(7).url == "http://lab.example:9000/runs/7"  # fit's run
    assert Run(7, home).url == "http://lab.example:9000/runs/7"
