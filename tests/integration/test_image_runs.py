"""Image datasets end to end: a CNN trained from a local MNIST-format file, recorded in SQL."""

from __future__ import annotations

import hashlib

import numpy as np

from netlens.storage import records, runs
from netlens.worker.runner import run_experiment
from tests.conftest import small_spec


def _fake_mnist(path) -> None:
    """A small Keras-layout mnist.npz: 28x28 uint8 images whose class shows in the pixels."""
    rng = np.random.default_rng(0)

    def part(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 * label : 2 * label + 3, 4:24] = 255
        return x, y

    (x_train, y_train), (x_test, y_test) = part(600), part(200)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def test_cnn_on_a_local_mnist_file_records_every_nth_epoch_and_the_file_hash(db, tmp_path):
    (tmp_path / "mnist").mkdir()
    npz = tmp_path / "mnist" / "mnist.npz"
    _fake_mnist(npz)
    spec = small_spec(
        dataset={"name": "mnist", "classes": [1, 7], "ood_classes": [3]},
        model={"kind": "cnn", "conv_channels": [4], "hidden": [{"units": 8}]},
        optimizer={"name": "adam", "learning_rate": 0.01},
        training={"epochs": 5, "batch_size": 32},
        recording={"every": 2, "probe_size": 20},
    )
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id, data_dir=tmp_path) == "succeeded"
    info = runs.get_run(db, run_id)
    assert info.data_sha256 == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert info.data_info["classes"] == [1, 7] and info.data_info["image_shape"] == [28, 28]
    assert [layer["name"] for layer in info.layers] == ["conv_1", "hidden_1", "output"]
    assert runs.recorded_epoch_numbers(db, run_id) == [0, 2, 4, 5]
    epochs, conv = records.read_tensor(db, run_id, "signatures/conv_1")
    assert list(epochs) == [0, 2, 4, 5] and conv.shape == (4, 30, 14 * 14 * 4)
    arrays = records.read_arrays(db, run_id)
    assert arrays["probe/is_ood"].sum() == 10 and set(arrays["probe/y"]) == {1, 3, 7}
    assert info.final_metrics["val_accuracy"] > 0.9  # the class is drawn into the pixels
