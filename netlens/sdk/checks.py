"""The Python API's checks of what a user hands to fit, predict and evaluate: arrays (numpy,
JAX or anything numpy reads), their shapes against the model, labels against the loss,
finiteness and the size limits. Each error names the argument (`x`, `y`,
`validation_data[1]`, `probe[0]`, ...) and the limit; all of them run before anything is
written. No JAX here."""

from __future__ import annotations

from typing import Any

import numpy as np

from netlens.storage.spec import LIMITS

# Keras' loss names -> the output layer activation they go with (storage.catalog.LOSSES
# trains sigmoid outputs with sigmoid_binary_cross_entropy, softmax ones with
# softmax_cross_entropy: the same losses, computed from the logits).
LOSSES = {
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
}
METRICS = ("accuracy",)  # NetLens records loss and accuracy of every run anyway


def loss_name(value: Any) -> str:
    key = value.lower() if isinstance(value, str) else None
    if key not in LOSSES:
        raise ValueError(
            f"loss: {value!r} is not supported; choose one of {', '.join(LOSSES)} "
            "(binary_crossentropy with a Dense(1, activation='sigmoid') output, the "
            "categorical ones with a softmax output)"
        )
    return key


def metric_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"metrics: {value!r} must be a list, e.g. ['accuracy']")
    out = []
    for item in value:
        key = {"acc": "accuracy"}.get(item, item) if isinstance(item, str) else None
        if key not in METRICS:
            raise ValueError(
                f"metrics: {item!r} is not supported; NetLens records loss and "
                f"{', '.join(METRICS)} (give metrics=['accuracy'] or leave it out)"
            )
        out.append(key)
    return out


def as_array(value: Any, arg: str) -> np.ndarray:
    """numpy's view of `value` (a JAX array is copied to the host), numbers only."""
    if value is None:
        raise ValueError(f"{arg}: missing; give an array")
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. ragged lists
        raise ValueError(f"{arg}: cannot be read as an array ({type(exc).__name__})") from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{arg}: must hold numbers, not {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{arg}: must hold real numbers, not {array.dtype}")
    return array


def _first_bad_row(array: np.ndarray) -> int | None:
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def same_input_shape(shape: tuple[int, ...], input_shape: tuple[int, ...]) -> bool:
    """Equal, or (height, width) against (height, width, 1): one grey channel."""
    shape, input_shape = tuple(shape), tuple(input_shape)
    return shape == input_shape or (
        tuple(shape) + (1,) == input_shape or shape == tuple(input_shape) + (1,)
    )


def inputs(
    value: Any, arg: str, input_shape: tuple[int, ...] | None, limit: str | None = None
) -> np.ndarray:
    """float32 (n, *one input's shape), finite, n >= 1; with `limit` (a LIMITS name), at most
    that many inputs, and never more than LIMITS["max_data_bytes"] as float32 (checked on
    the shape, before anything is copied)."""
    array = as_array(value, arg)
    if array.ndim < 2:
        raise ValueError(
            f"{arg}: shape {array.shape}: give one row per input, (n, features) or "
            "(n, height, width[, channels])"
        )
    if len(array) == 0:
        raise ValueError(f"{arg}: holds no inputs")
    if array.ndim > 4:
        raise ValueError(f"{arg}: shape {array.shape}: an input has at most 3 axes")
    if input_shape is not None and not same_input_shape(array.shape[1:], input_shape):
        raise ValueError(
            f"{arg}: inputs of shape {tuple(array.shape[1:])} do not match the model's "
            f"input_shape {tuple(input_shape)}"
        )
    if limit is not None:
        check_counts(array, arg, limit)
    check_bytes({}, array.size * 4, arg)
    array = np.asarray(array, dtype=np.float32)
    row = _first_bad_row(array)
    if row is not None:
        raise ValueError(
            f"{arg}: row {row} holds NaN or infinity (float32); every value must be finite"
        )
    return array


def labels(value: Any, arg: str, loss: str, n_classes: int, n: int, x_arg: str) -> np.ndarray:
    """int32 class indices (n,) from labels in the loss's format: 0/1 (binary), class indices
    (sparse_categorical) or one-hot rows (categorical)."""
    array = as_array(value, arg)
    if loss == "categorical_crossentropy":
        if array.ndim != 2 or array.shape[1] != n_classes:
            raise ValueError(
                f"{arg}: shape {array.shape}: categorical_crossentropy takes one-hot rows "
                f"(n, {n_classes}); for class indices use sparse_categorical_crossentropy"
            )
        row = _first_bad_row(array)
        if row is not None:
            raise ValueError(f"{arg}: row {row} holds NaN or infinity")
        one_hot = np.isin(array, (0, 1)).all(axis=1) & (array.sum(axis=1) == 1)
        if not one_hot.all():
            raise ValueError(
                f"{arg}: row {int(np.argmin(one_hot))} is not one-hot (a single 1, the rest 0); "
                "soft labels are not supported"
            )
        index = array.argmax(axis=1)
    else:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            hint = (
                "; for one-hot rows use categorical_crossentropy"
                if loss == "sparse_categorical_crossentropy" and array.ndim == 2
                else ""
            )
            raise ValueError(
                f"{arg}: shape {array.shape}: {loss} takes one label per input, (n,) or "
                f"(n, 1){hint}"
            )
        row = _first_bad_row(array[:, None]) if len(array) else None
        if row is not None:
            raise ValueError(f"{arg}: label {row} is NaN or infinite")
        whole = array == np.round(array)
        top = n_classes - 1
        inside = whole & (array >= 0) & (array <= top)
        if not inside.all():
            bad = int(np.argmin(inside))
            wanted = (
                "0 or 1 (binary_crossentropy: one sigmoid output)"
                if loss == "binary_crossentropy"
                else f"a class index 0..{top} (the output layer has {n_classes} units)"
            )
            raise ValueError(f"{arg}: label {bad} is {array[bad].item()!r}; each must be {wanted}")
        index = array
    if len(index) != n:
        raise ValueError(f"{arg}: {len(index)} labels for {n} inputs in {x_arg}")
    return np.asarray(index, dtype=np.int32)


def pair(value: Any, arg: str) -> tuple[Any, Any]:
    """(x, y) given as a tuple or list of two."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{arg}: give a pair (x, y) of inputs and their labels")
    return value[0], value[1]


def check_counts(x: np.ndarray, arg: str, limit_name: str) -> None:
    limit = LIMITS[limit_name]
    if len(x) > limit:
        raise ValueError(f"{arg}: {len(x):,} inputs, above the limit of {limit:,} ({limit_name})")


def check_bytes(arrays: dict[str, np.ndarray], total: int | None = None, arg: str = "x") -> None:
    """All the data stored with the run (or `total` bytes) within LIMITS["max_data_bytes"]."""
    total = sum(a.nbytes for a in arrays.values()) if total is None else total
    limit = LIMITS["max_data_bytes"]
    if total > limit:
        raise ValueError(
            f"{arg}: the data stored with the run would be {total / 2**20:,.0f} MiB (inputs as "
            f"float32, with validation and probe data), above the limit of {limit / 2**20:,.0f} "
            "MiB (max_data_bytes); give fewer inputs"
        )
