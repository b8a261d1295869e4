"""The Keras-like model's pieces that need no training: layers, optimizers, losses, the
checks of arrays and labels, summary, the built-in datasets, and no JAX until it trains."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import netlens as nl
from netlens.sdk import checks
from netlens.storage.spec import parse_spec


def test_building_compiling_and_summarising_a_model_never_imports_jax():
    code = """
import sys
import netlens as nl
model = nl.Sequential([nl.layers.Input((8, 8)), nl.layers.Conv2D(4, 3, activation="relu"),
                       nl.layers.MaxPooling2D(), nl.layers.Flatten(), nl.layers.Dropout(0.1),
                       nl.layers.Dense(10, activation="softmax")])
model.compile(optimizer=nl.optimizers.SGD(momentum=0.9), loss="categorical_crossentropy")
model.summary(print_fn=lambda text: None)
(x, y), _ = nl.datasets.load("xor")
print(sorted(m for m in ("jax", "flax", "optax") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_layers_are_spec_entries_checked_when_made():
    assert nl.layers.Dense(3, activation="tanh").to_spec() == {
        "kind": "dense",
        "units": 3,
        "activation": "tanh",
    }
    assert nl.layers.Dense(2).to_spec()["activation"] == "linear"  # Keras: no activation
    conv = nl.layers.Conv2D(8, kernel_size=(5, 5), strides=2, padding="SAME").to_spec()
    assert (conv["kernel_size"], conv["strides"], conv["padding"]) == (5, 2, "same")
    assert nl.layers.MaxPooling2D((3, 3)).to_spec() == {
        "kind": "max_pool2d",
        "pool_size": 3,
        "strides": None,
    }
    assert nl.layers.Dropout(0.25).to_spec() == {"kind": "dropout", "rate": 0.25}
    with pytest.raises(ValueError, match=r"^Dense\(units=0.*units: 0 is out of range"):
        nl.layers.Dense(0)
    with pytest.raises(ValueError, match=r"units: 2000 is out of range: must be at most 1024"):
        nl.layers.Dense(2000)
    with pytest.raises(ValueError, match="activation 'swish' is not supported; choose one of relu"):
        nl.layers.Dense(3, activation="swish")
    with pytest.raises(ValueError, match="softmax' is for the output Dense layer only"):
        nl.layers.Conv2D(4, activation="softmax")
    with pytest.raises(ValueError, match=r"kernel_size \(3, 5\) must be one number or a square"):
        nl.layers.Conv2D(4, kernel_size=(3, 5))
    with pytest.raises(ValueError, match="filters: 65 is out of range: must be at most 64"):
        nl.layers.Conv2D(65)
    with pytest.raises(ValueError, match="padding 'same' is not supported; only 'valid'"):
        nl.layers.MaxPooling2D(padding="same")
    with pytest.raises(ValueError, match="rate: 1.0 is out of range: must be below 1.0"):
        nl.layers.Dropout(1.0)
    with pytest.raises(ValueError, match=r"input_shape \(2.5,\) must be"):
        nl.layers.Dense(3, input_shape=(2.5,))


def test_optimizers_are_spec_sections_with_keras_defaults():
    assert nl.optimizers.get("adam").to_spec()["learning_rate"] == 0.001
    assert nl.optimizers.get("ADAM").name == "adam"
    assert nl.optimizers.SGD().name == "sgd" and nl.optimizers.SGD(momentum=0.9).name == "momentum"
    assert nl.optimizers.AdamW().to_spec()["weight_decay"] == 0.004
    cosine = nl.optimizers.Adam(0.01, schedule="cosine").to_spec()
    assert (cosine["name"], cosine["learning_rate"], cosine["schedule"]) == ("adam", 0.01, "cosine")
    with pytest.raises(ValueError, match=r"^Adam\(.*learning_rate: 50 is out of range"):
        nl.optimizers.Adam(learning_rate=50)
    with pytest.raises(ValueError, match="schedule: 'step' is not allowed"):
        nl.optimizers.RMSprop(schedule="step")
    with pytest.raises(ValueError, match="^optimizer: 'adagrad' is not supported"):
        nl.optimizers.get("adagrad")


def test_compile_checks_the_loss_against_the_output_layer():
    binary = nl.Sequential([nl.layers.Dense(1, activation="sigmoid")], input_shape=(2,))
    binary.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    assert (binary.loss, binary.metrics, binary.optimizer.name) == (
        "binary_crossentropy",
        ["accuracy"],
        "adam",
    )
    softmax = nl.Sequential([nl.layers.Dense(3, activation="softmax")], input_shape=(2,))
    with pytest.raises(ValueError, match="^loss: binary_crossentropy goes with a sigmoid output"):
        softmax.compile(loss="binary_crossentropy")
    with pytest.raises(
        ValueError, match="^loss: sparse_categorical_crossentropy goes with a softmax"
    ):
        binary.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"^metrics: 'mae' is not supported"):
        softmax.compile(loss="categorical_crossentropy", metrics=["mae"])
    with pytest.raises(ValueError, match="^loss: None is not supported"):
        softmax.compile()
    with pytest.raises(ValueError, match="^run_eagerly: not supported"):
        softmax.compile(loss="categorical_crossentropy", run_eagerly=True)


def test_summary_lists_shapes_parameters_and_recorded_names():
    lines = []
    model = nl.Sequential(
        [
            nl.layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8)),
            nl.layers.MaxPooling2D(2),
            nl.layers.Flatten(),
            nl.layers.Dense(10, activation="softmax"),
        ],
        name="digits-cnn",
    )
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert 'Model: "digits-cnn" (input shape (8, 8))' in text
    assert "(None, 6, 6, 4)" in text and "(None, 3, 3, 4)" in text and "(None, 36)" in text
    assert "conv_1" in text and "output" in text
    assert "Total params: 410" in text  # 3*3*1*4 + 4 + 36*10 + 10
    with pytest.raises(ValueError, match="^input_shape: the model does not know"):
        nl.Sequential([nl.layers.Dense(1, activation="sigmoid")]).summary()
    with pytest.raises(ValueError, match=r"^layers\[1\]: dense needs a flat input"):
        nl.Sequential(
            [nl.layers.Conv2D(2), nl.layers.Dense(1, activation="sigmoid")], input_shape=(4, 4)
        ).summary()
    with pytest.raises(ValueError, match="^input_shape: given twice and differently"):
        nl.Sequential([nl.layers.Dense(1, input_shape=(3,))], input_shape=(2,))


def test_labels_are_read_in_the_losses_formats():
    one_hot = np.eye(3)[[2, 0, 1]]
    assert list(checks.labels(one_hot, "y", "categorical_crossentropy", 3, 3, "x")) == [2, 0, 1]
    assert list(checks.labels([[1], [0]], "y", "binary_crossentropy", 2, 2, "x")) == [1, 0]
    assert list(checks.labels([True, False], "y", "binary_crossentropy", 2, 2, "x")) == [1, 0]
    assert list(checks.labels([2.0, 0.0], "y", "sparse_categorical_crossentropy", 3, 2, "x")) == [
        2,
        0,
    ]
    with pytest.raises(ValueError, match="row 1 is not one-hot"):
        checks.labels([[1, 0, 0], [0.5, 0.5, 0]], "y", "categorical_crossentropy", 3, 2, "x")
    with pytest.raises(ValueError, match=r"use sparse_categorical_crossentropy"):
        checks.labels([0, 1], "y", "categorical_crossentropy", 3, 2, "x")
    with pytest.raises(ValueError, match=r"use categorical_crossentropy"):
        checks.labels(one_hot, "y", "sparse_categorical_crossentropy", 3, 3, "x")
    with pytest.raises(ValueError, match=r"label 1 is 0.5; each must be a class index 0..2"):
        checks.labels([1, 0.5], "y", "sparse_categorical_crossentropy", 3, 2, "x")
    # (height, width) inputs fit a (height, width, 1) model and the other way round
    assert checks.same_input_shape((8, 8), (8, 8, 1)) and checks.same_input_shape((8, 8, 1), (8, 8))
    assert not checks.same_input_shape((8, 8), (64,))


def test_jax_arrays_are_read_like_numpy_ones():
    import jax.numpy as jnp

    x = checks.inputs(jnp.ones((3, 2)), "x", (2,))
    assert x.dtype == np.float32 and x.shape == (3, 2)


def test_built_in_datasets_are_the_workers_arrays():
    from netlens.worker.datasets import load_dataset

    (x, y), (x_val, y_val) = nl.datasets.load("two-regions", n_samples=200, seed=3)
    data = load_dataset(
        parse_spec({"dataset": {"name": "two-regions", "n_samples": 200, "seed": 3}})
    )
    np.testing.assert_array_equal(x, data.x_train)
    np.testing.assert_array_equal(y_val, data.y_val)
    digits = nl.datasets.load("digits", classes=[1, 7])
    assert digits.x.shape[1:] == (8, 8) == digits.input_shape and digits.classes == [1, 7]
    assert set(np.unique(digits.y)) == {0, 1}
    assert "arrays" not in nl.datasets.names() and "xor" in nl.datasets.names()
    with pytest.raises(ValueError, match="^name: 'iris' is not a built-in dataset"):
        nl.datasets.load("iris")
    with pytest.raises(ValueError, match="^n_samples: 3 is out of range: must be at least 4"):
        nl.datasets.load("moons", n_samples=3)
