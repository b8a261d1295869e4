"""Flax NNX models (MLP, small CNN) that return every layer's post-activation output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from netlens.storage import catalog
from netlens.storage.spec import ExperimentSpec

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

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        acts = []
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


def build_network(
    spec: ExperimentSpec, n_in: int, n_classes: int, image_shape: tuple[int, int] | None
):
    """(graphdef, params as a plain {layer: {kernel, bias}} dict, layer infos)."""
    if not catalog.MODEL_KINDS[spec.model.kind].trainable:
        raise ValueError(
            f"model.kind: {spec.model.kind!r}: the model is defined by the user's code; "
            f"such a run is {catalog.TRAINED_ELSEWHERE}"
        )
    model = Network(spec, n_in, n_classes, image_shape, nnx.Rngs(spec.training.seed))
    graphdef, state = nnx.split(model, nnx.Param)
    return graphdef, nnx.to_pure_dict(state), list(model.layer_infos)


def make_forward(graphdef) -> Callable[[dict, jax.Array], tuple[jax.Array, list[jax.Array]]]:
    """A pure function of (params dict, inputs) suitable for jax.jit and lax loops."""

    def forward(params: dict, x: jax.Array):
        return nnx.merge(graphdef, params)(x)

    return forward
