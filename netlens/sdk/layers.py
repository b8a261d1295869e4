"""`nl.layers`: the layers of a Keras-like `nl.Sequential` (docs/python-api.md).

Each layer is one entry of the spec's `model.layers` (model kind sequential,
docs/spec.md), checked when it is made against the same limits; `to_spec()` gives that entry.
No JAX here: making layers is cheap and `import netlens` stays light.
"""

from __future__ import annotations

import numbers
from typing import Any

from pydantic import ValidationError

from netlens.storage import spec as spec_module
from netlens.storage.catalog import ACTIVATIONS
from netlens.storage.spec import (
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    MaxPool2DLayer,
)

__all__ = ["Conv2D", "Dense", "Dropout", "Flatten", "Input", "Layer", "MaxPooling2D"]

ACTIVATION_NAMES = (*ACTIVATIONS, "softmax")


def _activation(value: Any, where: str) -> str:
    """None (Keras' default: no activation) is linear; names are the spec's."""
    if value is None:
        return "linear"
    if not isinstance(value, str) or value not in ACTIVATION_NAMES:
        raise ValueError(
            f"{where}: activation {value!r} is not supported; choose one of "
            f"{', '.join(ACTIVATION_NAMES)} (softmax and sigmoid on the output layer) or None"
        )
    return value


def _square(value: Any, what: str, where: str) -> Any:
    """An int, or a pair of equal ints (Keras' (3, 3)): NetLens layers are square."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(
                f"{where}: {what} {tuple(value)!r} must be one number or a square pair"
            )
        return value[0]
    return value


def _input_shape(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    items = list(value) if isinstance(value, (tuple, list)) else None
    whole = items is not None and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items
    )
    if not whole or not 1 <= len(items) <= 3 or min(items) < 1:
        raise ValueError(
            f"{where}: input_shape {value!r} must be (features,), (height, width) or "
            "(height, width, channels), whole numbers of at least 1"
        )
    return tuple(int(v) for v in items)


class Layer:
    """One entry of a sequential model. `input_shape=` on the first layer (as in Keras)
    gives the model its input shape."""

    spec_class: type = DenseLayer
    keras_name = "Layer"

    def __init__(self, input_shape: Any = None, **fields: Any):
        where = self._where(fields)
        self.input_shape = _input_shape(input_shape, where)
        try:
            self._spec = self.spec_class(**fields)
        except ValidationError as exc:
            lines = [spec_module._format_error(e) for e in exc.errors()]
            raise ValueError(f"{where}: " + "; ".join(lines)) from None

    def _where(self, fields: dict) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items() if k != "kind")
        return f"{self.keras_name}({shown})"

    def to_spec(self) -> dict[str, Any]:
        """The spec's model.layers entry."""
        return self._spec.model_dump(mode="json")

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.to_spec().items() if k != "kind"}
        return self._where(fields)


class Dense(Layer):
    """Fully connected: `activation(x @ kernel + bias)`, `units` outputs. The last layer of
    a model is its output: `Dense(1, activation="sigmoid")` for two classes (loss
    binary_crossentropy), `Dense(C, activation="softmax")` for C classes."""

    spec_class = DenseLayer
    keras_name = "Dense"

    def __init__(self, units: int, activation: str | None = None, input_shape: Any = None):
        where = f"Dense(units={units!r}, activation={activation!r})"
        super().__init__(
            input_shape, kind="dense", units=units, activation=_activation(activation, where)
        )


class Conv2D(Layer):
    """2-D convolution of an image input (height, width, channels): `filters` square
    kernels of `kernel_size`, `strides`, padding "valid" (Keras' default) or "same"."""

    spec_class = Conv2DLayer
    keras_name = "Conv2D"

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        input_shape: Any = None,
    ):
        where = f"Conv2D(filters={filters!r}, kernel_size={kernel_size!r})"
        act = _activation(activation, where)
        if act == "softmax":
            raise ValueError(f"{where}: activation 'softmax' is for the output Dense layer only")
        super().__init__(
            input_shape,
            kind="conv2d",
            filters=filters,
            kernel_size=_square(kernel_size, "kernel_size", where),
            strides=_square(strides, "strides", where),
            padding=padding.lower() if isinstance(padding, str) else padding,
            activation=act,
        )


class MaxPooling2D(Layer):
    """2-D max-pooling over square windows of `pool_size`, stepping by `strides` (default
    `pool_size`), padding "valid"."""

    spec_class = MaxPool2DLayer
    keras_name = "MaxPooling2D"

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        input_shape: Any = None,
    ):
        where = f"MaxPooling2D(pool_size={pool_size!r}, strides={strides!r})"
        if padding != "valid":
            raise ValueError(f"{where}: padding {padding!r} is not supported; only 'valid'")
        super().__init__(
            input_shape,
            kind="max_pool2d",
            pool_size=_square(pool_size, "pool_size", where),
            strides=None if strides is None else _square(strides, "strides", where),
        )


class Flatten(Layer):
    """(height, width, channels) -> one vector, row by row (numpy's reshape order)."""

    spec_class = FlattenLayer
    keras_name = "Flatten"

    def __init__(self, input_shape: Any = None):
        super().__init__(input_shape, kind="flatten")


class Dropout(Layer):
    """Sets a fraction `rate` of its inputs to 0 in each training step (the others scaled by
    1 / (1 - rate)); the identity when evaluating, predicting and recording signatures."""

    spec_class = DropoutLayer
    keras_name = "Dropout"

    def __init__(self, rate: float, input_shape: Any = None):
        super().__init__(input_shape, kind="dropout", rate=rate)


class Input:
    """`nl.layers.Input(shape=(2,))` as the first entry of nl.Sequential gives its input
    shape (as keras.Input does); it is not a layer of the model."""

    def __init__(self, shape: Any):
        self.shape = _input_shape(shape, f"Input(shape={shape!r})")
        if self.shape is None:
            raise ValueError("Input(shape=None): give the shape of one input, e.g. (2,)")

    def __repr__(self) -> str:
        return f"Input(shape={self.shape})"
