"""Flax NNX models (MLP, small CNN, an explicit layer list) that return every recorded layer's
post-activation output."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from netlens.storage import catalog
from netlens.storage.spec import ExperimentSpec, PlannedLayer

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
    "linear": lambda x: x,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
}
if set(ACTIVATIONS) != set(catalog.ACTIVATIONS):  # the spec accepts exactly the catalog's
    raise RuntimeError(
        f"worker.models: ACTIVATIONS {sorted(ACTIVATIONS)} must match "
        f"storage.catalog.ACTIVATIONS {sorted(catalog.ACTIVATIONS)}"
    )


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unsupported activation: {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str  # storage.catalog.LAYER_KINDS: "dense" or "conv"
    units: int  # width of the recorded (post-activation, flattened) output
    activation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "units": self.units,
            "activation": self.activation,
        }


class Network(nnx.Module):
    """Conv blocks (3x3 conv, activation, 2x2 max-pool) then dense layers.

    `__call__` returns (logits, [post-activation output of each layer]); the last entry is
    the network output (sigmoid for two classes, softmax for more).
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        n_in: int,
        n_classes: int,
        image_shape: tuple[int, int] | None,
        rngs: nnx.Rngs,
    ):
        self.image_shape = image_shape if spec.model.kind == "cnn" else None
        loss = catalog.loss_for(n_classes)  # the output layer it trains with
        self.binary = loss.binary
        self.layer_infos: list[LayerInfo] = []
        channels, side = 1, image_shape
        if self.image_shape:
            for i, c in enumerate(spec.model.conv_channels, start=1):
                setattr(self, f"conv_{i}", nnx.Conv(channels, c, kernel_size=(3, 3), rngs=rngs))
                channels, side = c, (side[0] // 2, side[1] // 2)
                self.layer_infos.append(
                    LayerInfo(
                        f"conv_{i}", "conv", side[0] * side[1] * c, spec.model.conv_activation
                    )
                )
            n_in = side[0] * side[1] * channels
        for i, layer in enumerate(spec.model.hidden, start=1):
            setattr(self, f"hidden_{i}", nnx.Linear(n_in, layer.units, rngs=rngs))
            self.layer_infos.append(
                LayerInfo(f"hidden_{i}", "dense", layer.units, layer.activation)
            )
            n_in = layer.units
        n_out = loss.output_units(n_classes)
        self.output = nnx.Linear(n_in, n_out, rngs=rngs)
        self.layer_infos.append(LayerInfo("output", "dense", n_out, loss.output_activation))

    def __call__(
        self, x: jax.Array, rng: jax.Array | None = None
    ) -> tuple[jax.Array, list[jax.Array]]:
        acts = []  # (`rng` drives dropout, which these kinds do not have)
        if self.image_shape:
            x = x.reshape(x.shape[0], *self.image_shape, 1)
            for info in self.layer_infos:
                if info.kind != "conv":
                    break
                x = activation(info.activation)(getattr(self, info.name)(x))
                x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
                acts.append(x.reshape(x.shape[0], -1))
            x = x.reshape(x.shape[0], -1)
        for info in self.layer_infos:
            if info.kind == "dense" and info.name != "output":
                x = activation(info.activation)(getattr(self, info.name)(x))
                acts.append(x)
        logits = self.output(x)
        acts.append(jax.nn.sigmoid(logits) if self.binary else jax.nn.softmax(logits))
        return logits, acts


class SequentialNetwork(nnx.Module):
    """Model kind sequential: spec.model.layers in order on inputs of spec.model.input_shape.

    Dense and Conv2D layers hold parameters and are recorded under their planned names
    (conv_i, hidden_i, output: storage.spec.plan_sequential); MaxPooling2D, Flatten and
    Dropout are steps between them. `__call__(x, rng)` returns (logits, [post-activation
    output of each recorded layer, flattened]), like Network; dropout is applied only when
    `rng` is given (training steps), each layer with its own key derived from it.
    """

    def __init__(self, spec: ExperimentSpec, n_classes: int, rngs: nnx.Rngs):
        plan = spec.model.plan()
        self.plan: tuple[PlannedLayer, ...] = tuple(plan)
        self.input_shape = tuple(plan[0].in_shape)
        output = plan[-1]
        expected = spec.model.output_classes()
        if n_classes != expected:
            raise ValueError(
                f"model.layers.{output.index}: the output layer gives {expected} classes; "
                f"the data has {n_classes}"
            )
        self.binary = output.units == 1
        self.layer_infos: list[LayerInfo] = []
        for step in plan:
            if step.kind == "dense":
                module = nnx.Linear(step.in_shape[0], step.out_shape[0], rngs=rngs)
            elif step.kind == "conv2d":
                module = nnx.Conv(
                    step.in_shape[-1],
                    step.out_shape[-1],
                    kernel_size=(step.window, step.window),
                    strides=(step.stride, step.stride),
                    padding=step.padding.upper(),
                    rngs=rngs,
                )
            else:
                continue
            setattr(self, step.name, module)
            kind = "conv" if step.kind == "conv2d" else "dense"
            self.layer_infos.append(LayerInfo(step.name, kind, step.units, step.activation))

    def __call__(
        self, x: jax.Array, rng: jax.Array | None = None
    ) -> tuple[jax.Array, list[jax.Array]]:
        n = x.shape[0]
        x = x.reshape(n, *self.input_shape)
        acts, logits = [], x
        for step in self.plan:
            if step.kind in ("dense", "conv2d"):
                logits = getattr(self, step.name)(x)
                if step.name == "output":
                    out = jax.nn.sigmoid(logits) if self.binary else jax.nn.softmax(logits)
                else:
                    out = activation(step.activation)(logits)
                x = out
                acts.append(out.reshape(n, -1))
            elif step.kind == "max_pool2d":
                x = nnx.max_pool(
                    x,
                    window_shape=(step.window, step.window),
                    strides=(step.stride, step.stride),
                    padding="VALID",
                )
            elif step.kind == "flatten":
                x = x.reshape(n, -1)
            elif step.kind == "dropout" and rng is not None and step.rate > 0:
                keep = jax.random.bernoulli(
                    jax.random.fold_in(rng, step.index), 1.0 - step.rate, x.shape
                )
                x = jnp.where(keep, x / (1.0 - step.rate), 0.0)
        return logits, acts


def has_dropout(spec: ExperimentSpec) -> bool:
    """Whether training steps need a random key (a sequential model with dropout)."""
    return spec.model.kind == "sequential" and any(
        layer.kind == "dropout" and layer.rate > 0 for layer in spec.model.layers
    )


def build_network(
    spec: ExperimentSpec, n_in: int, n_classes: int, image_shape: tuple[int, int] | None
):
    """(graphdef, params as a plain {layer: {kernel, bias}} dict, layer infos)."""
    if not catalog.MODEL_KINDS[spec.model.kind].trainable:
        raise ValueError(
            f"model.kind: {spec.model.kind!r}: the model is defined by the user's code; "
            f"such a run is {catalog.TRAINED_ELSEWHERE}"
        )
    rngs = nnx.Rngs(spec.training.seed)
    if spec.model.kind == "sequential":
        if n_in != math.prod(spec.model.input_shape):
            raise ValueError(
                f"model.input_shape: {spec.model.input_shape} does not match the data's "
                f"{n_in} features"
            )
        model = SequentialNetwork(spec, n_classes, rngs)
    else:
        model = Network(spec, n_in, n_classes, image_shape, rngs)
    graphdef, state = nnx.split(model, nnx.Param)
    return graphdef, nnx.to_pure_dict(state), list(model.layer_infos)


def make_forward(
    graphdef,
) -> Callable[..., tuple[jax.Array, list[jax.Array]]]:
    """A pure function of (params dict, inputs[, dropout key]) for jax.jit and lax loops."""

    def forward(params: dict, x: jax.Array, rng: jax.Array | None = None):
        return nnx.merge(graphdef, params)(x, rng)

    return forward
