"""Training recorded in SQL, on SQLite and PostgreSQL: every epoch stored, once, and exportable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from netlens.storage import records, runs
from netlens.storage.export import export_run
from netlens.storage.models import Base
from netlens.storage.presets import get_preset
from netlens.storage.records import EpochChunk
from netlens.worker.runner import run_experiment
from tests.conftest import small_spec
from tests.numpy_forward import recompute_dense


def test_migrated_schema_equals_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_xor_trains_to_full_accuracy_and_every_epoch_is_stored(db):
    spec = get_preset("xor")
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id) == "succeeded"
    info = runs.get_run(db, run_id)
    assert info.status == "succeeded" and info.error is None
    assert info.final_metrics["train_accuracy"] == 1.0
    assert info.epochs_recorded == spec.training.epochs + 1
    assert runs.recorded_epoch_numbers(db, run_id) == list(range(spec.training.epochs + 1))
    assert info.device.startswith("cpu") and info.started_at and info.finished_at
    epochs, kernel = records.read_tensor(db, run_id, "params/hidden_1/kernel", 100, 199)
    assert list(epochs) == list(range(100, 200)) and kernel.shape == (100, 2, 3)


@pytest.mark.parametrize(
    "preset, signature_dtype",
    [("xor-deep", "float32"), ("digits-1-7", "float32"), ("digits-1-7", "float16")],
)
def test_export_lets_numpy_alone_recompute_every_signature(db, tmp_path, preset, signature_dtype):
    """...to float32's rounding; a run recording its signatures as float16 (lossy, asked
    for) to float16's: a relative error of at most 2**-11 on top."""
    base = get_preset(preset)
    spec = base.model_copy(
        update={
            "training": base.training.model_copy(update={"epochs": 12}),
            "recording": base.recording.model_copy(update={"signature_dtype": signature_dtype}),
        }
    )
    rtol = 2e-4 + (2.0**-11 if signature_dtype == "float16" else 0.0)
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id) == "succeeded"
    path = export_run(db, run_id, tmp_path / "run.npz")
    with np.load(path) as f:
        export = {k: f[k] for k in f.files}
    config = json.loads(str(export["config"]))
    assert config["dataset"]["name"] == spec.dataset.name
    layers = json.loads(str(export["run"]))["layers"]
    assert list(export["layers"]) == [layer["name"] for layer in layers]
    assert list(export["epochs"]) == list(range(13))
    for name in ("train_loss", "train_accuracy"):
        assert export[f"metrics/{name}"].shape == (13,)
    n_probe = len(export["probe/x"])
    for epoch_index in (0, 6, 12):
        recomputed = recompute_dense(export, layers, epoch_index)
        for name, values in recomputed.items():
            stored = export[f"signatures/{name}"]
            assert stored.shape[:2] == (13, n_probe)
            assert stored.dtype == np.dtype(signature_dtype), name
            np.testing.assert_allclose(
                stored[epoch_index],
                values,
                rtol=rtol,
                atol=2e-5,
                err_msg=f"{name} at epoch {epoch_index}",
            )
    if preset == "digits-1-7":
        ood = export["probe/is_ood"]
        assert set(export["probe/y"][ood]) == {3, 4} and set(export["probe/y"][~ood]) == {1, 7}
        assert "metrics/val_loss" in export and "grid/x" not in export
    else:
        _check_grid_maps(export, layers)


def _check_grid_maps(export: dict, layers: list[dict]) -> None:
    """grid/output and every hidden layer's grid/<layer>, at grid/epochs, recompute from
    grid/x and that epoch's parameters."""
    grid_epochs, n_grid = export["grid/epochs"], len(export["grid/x"])
    assert export["grid/output"].shape == (len(grid_epochs), n_grid)
    assert grid_epochs[0] == 0 and grid_epochs[-1] == export["epochs"][-1]
    for row, epoch in enumerate(grid_epochs):
        index = int(np.flatnonzero(export["epochs"] == epoch)[0])
        recomputed = recompute_dense(export, layers, index, x=export["grid/x"])
        for layer in layers[:-1]:
            stored = export[f"grid/{layer['name']}"]
            assert stored.shape == (len(grid_epochs), n_grid, layer["units"])
            np.testing.assert_allclose(stored[row], recomputed[layer["name"]], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(
            export["grid/output"][row], recomputed["output"][:, 0], rtol=2e-4, atol=2e-5
        )


def _chunk(epochs: list[int]) -> EpochChunk:
    n = len(epochs)
    return EpochChunk(
        epochs=epochs,
        metrics=[{"train_loss": float(e), "train_accuracy": 0.5} for e in epochs],
        tensors={
            "params/a/kernel": np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
            + 100 * np.array(epochs)[:, None, None]
        },
        sparse_epochs={},
    )


def test_writing_the_same_epochs_twice_keeps_one_copy(db):
    run_id = runs.create_run(db, small_spec())
    assert records.write_epochs(db, run_id, _chunk([0, 1, 2, 3])) == 4
    assert records.write_epochs(db, run_id, _chunk([0, 1, 2, 3])) == 0
    assert records.write_epochs(db, run_id, _chunk([2, 3, 4, 5])) == 2  # overlap: 4, 5 new
    assert runs.recorded_epoch_numbers(db, run_id) == [0, 1, 2, 3, 4, 5]
    epochs, values = records.read_tensor(db, run_id, "params/a/kernel")
    assert list(epochs) == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(values[4], _chunk([2, 3, 4, 5]).tensors["params/a/kernel"][2])
    info = runs.get_run(db, run_id)
    assert info.epochs_recorded == 6 and info.last_epoch == 5
    assert info.final_metrics["train_loss"] == 5.0


def test_nan_and_inf_round_trip_through_the_database(db):
    run_id = runs.create_run(db, small_spec())
    chunk = _chunk([0, 1])
    chunk.tensors["params/a/kernel"][1, 0] = [np.nan, np.inf, -np.inf]
    chunk.metrics[1]["train_loss"] = float("nan")
    records.write_epochs(db, run_id, chunk)
    _, values = records.read_tensor(db, run_id, "params/a/kernel")
    assert np.isnan(values[1, 0, 0]) and values[1, 0, 1] == np.inf and values[1, 0, 2] == -np.inf
    _, metrics = records.read_metrics(db, run_id)
    assert np.isnan(metrics["train_loss"][1]) and metrics["train_loss"][0] == 0.0


def test_a_diverging_run_ends_diverged_and_keeps_its_epochs(db):
    spec = small_spec(
        dataset={"name": "two-regions", "n_samples": 200},
        model={
            "hidden": [{"units": 16, "activation": "linear"}, {"units": 16, "activation": "linear"}]
        },
        optimizer={"name": "sgd", "learning_rate": 10.0},
        training={"epochs": 200, "batch_size": 200},
    )
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id) == "diverged"
    info = runs.get_run(db, run_id)
    assert info.status == "diverged"
    assert f"diverged at epoch {info.last_epoch}" in info.error
    assert 0 < info.last_epoch < 200
    assert runs.recorded_epoch_numbers(db, run_id) == list(range(info.last_epoch + 1))
    _, metrics = records.read_metrics(db, run_id)
    assert not np.isfinite(metrics["train_loss"][-1]) and np.isfinite(metrics["train_loss"][0])


def test_a_run_whose_data_is_missing_fails_with_the_reason(db, tmp_path):
    spec = small_spec(
        dataset={"name": "mnist", "path": str(tmp_path / "nowhere")}, training={"epochs": 1}
    )
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id, data_dir=tmp_path) == "failed"
    error = runs.get_run(db, run_id).error
    assert "dataset.path" in error and "nowhere" in error
