"""Recompute recorded signatures from an export (.npz) with numpy alone: the check that an
export is complete (docs/export-format.md). Used by the recording tests of spec runs
(tests/integration/test_recording.py) and of the Python API's runs
(tests/integration/test_sdk_keras.py)."""

from __future__ import annotations

import numpy as np


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACT = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "linear": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": _softmax,
    # JAX's definitions (jax.nn.gelu: the tanh approximation; leaky_relu: slope 0.01)
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "silu": lambda z: z / (1 + np.exp(-z)),
}


def recompute_dense(
    export: dict, layers: list[dict], epoch_index: int, x: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Each dense layer's post-activation output on the probe (or on the inputs `x`: the grid
    of grid/<layer>), from the exported parameters (an MLP: layers as in the export's run
    summary)."""
    x, out = export["probe/x"] if x is None else x, {}
    for layer in layers:
        kernel = export[f"params/{layer['name']}/kernel"][epoch_index]
        bias = export[f"params/{layer['name']}/bias"][epoch_index]
        x = ACT[layer["activation"]](x @ kernel + bias)
        out[layer["name"]] = x
    return out


def _windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(P, H', W', C, size, size): every size x size window of (P, H, W, C), by `stride`."""
    view = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return view[:, ::stride, ::stride]


def _conv2d(x, kernel, bias, stride: int, padding: str) -> np.ndarray:
    """Cross-correlation as flax.nnx.Conv computes it (kernel HWIO; SAME pads the low side
    with the smaller half)."""
    k = kernel.shape[0]
    if padding == "same":
        pads = []
        for size in x.shape[1:3]:
            out = -(-size // stride)
            total = max((out - 1) * stride + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    return np.einsum("phwcij,ijcf->phwf", _windows(x, k, stride), kernel) + bias


def recompute_sequential(export: dict, model: dict, epoch_index: int) -> dict[str, np.ndarray]:
    """Each recorded layer's output (flattened) of a model of kind sequential, from the spec's
    `model` section (layers in order; names conv_i, hidden_i, output) and the exported
    parameters. Dropout is the identity outside training steps."""
    x = export["probe/x"].astype(np.float64)
    shape = list(model["input_shape"])
    if len(shape) == 2:
        shape.append(1)
    x = x.reshape(len(x), *shape)
    dense_total = sum(1 for layer in model["layers"] if layer["kind"] == "dense")
    convs = denses = 0
    out = {}
    for layer in model["layers"]:
        kind = layer["kind"]
        if kind in ("dense", "conv2d"):
            if kind == "dense":
                denses += 1
                name = "output" if denses == dense_total else f"hidden_{denses}"
            else:
                convs += 1
                name = f"conv_{convs}"
            kernel = export[f"params/{name}/kernel"][epoch_index].astype(np.float64)
            bias = export[f"params/{name}/bias"][epoch_index].astype(np.float64)
            if kind == "dense":
                z = x @ kernel + bias
            else:
                z = _conv2d(x, kernel, bias, layer["strides"], layer["padding"])
            x = ACT[layer["activation"]](z.reshape(len(z), -1)).reshape(z.shape)
            out[name] = x.reshape(len(x), -1)
        elif kind == "max_pool2d":
            size = layer["pool_size"]
            x = _windows(x, size, layer["strides"] or size).max(axis=(-2, -1))
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
    return out
