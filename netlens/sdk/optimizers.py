"""`nl.optimizers`: the optimizers `model.compile` takes, each one spec `optimizer` section
(docs/spec.md): SGD (with momentum: the spec's "momentum"), Adam, AdamW, RMSprop, or their
names as strings ("sgd", "momentum", "adam", "adamw", "rmsprop") with Keras' default learning
rates. Every one also takes the spec's schedule ("constant", "cosine", "exponential",
"warmup_cosine") with decay_rate / warmup_epochs. No JAX here."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from netlens.storage import spec as spec_module
from netlens.storage.catalog import OPTIMIZERS
from netlens.storage.spec import OptimizerSpec

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "get"]


class Optimizer:
    """One spec optimizer section, checked when made (errors name the argument)."""

    keras_name = "Optimizer"

    def __init__(self, name: str, **fields: Any):
        given = {k: v for k, v in fields.items() if v is not None}
        try:
            self._spec = OptimizerSpec(name=name, **given)
        except ValidationError as exc:
            lines = [spec_module._format_error(e).removeprefix("optimizer.") for e in exc.errors()]
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
            raise ValueError(f"{self.keras_name}({shown}): " + "; ".join(lines)) from None

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def learning_rate(self) -> float:
        return self._spec.learning_rate

    def to_spec(self) -> dict[str, Any]:
        """The spec's optimizer section."""
        return self._spec.model_dump(mode="json")

    def __repr__(self) -> str:
        defaults = OptimizerSpec(name=self.name).model_dump()
        changed = {k: v for k, v in self.to_spec().items() if k != "name" and v != defaults[k]}
        shown = ", ".join(
            f"{k}={v!r}" for k, v in {"learning_rate": self.learning_rate, **changed}.items()
        )
        return f"{self.keras_name}({shown})"


class SGD(Optimizer):
    """Stochastic gradient descent; `momentum` > 0 is the spec's "momentum" optimizer.
    `weight_decay` adds L2 decay to the gradient."""

    keras_name = "SGD"

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        schedule: str = "constant",
        decay_rate: float | None = None,
        warmup_epochs: int | None = None,
    ):
        fields = dict(learning_rate=learning_rate, weight_decay=weight_decay, schedule=schedule)
        fields |= dict(decay_rate=decay_rate, warmup_epochs=warmup_epochs)
        if momentum:
            super().__init__("momentum", momentum=momentum, **fields)
        else:
            super().__init__("sgd", **fields)


class Adam(Optimizer):
    """Adam; `weight_decay` adds L2 decay to the gradient (AdamW decouples it)."""

    keras_name = "Adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        schedule: str = "constant",
        decay_rate: float | None = None,
        warmup_epochs: int | None = None,
    ):
        super().__init__(
            "adam",
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            schedule=schedule,
            decay_rate=decay_rate,
            warmup_epochs=warmup_epochs,
        )


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Keras' default decay 0.004)."""

    keras_name = "AdamW"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        schedule: str = "constant",
        decay_rate: float | None = None,
        warmup_epochs: int | None = None,
    ):
        super().__init__(
            "adamw",
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            schedule=schedule,
            decay_rate=decay_rate,
            warmup_epochs=warmup_epochs,
        )


class RMSprop(Optimizer):
    """RMSProp."""

    keras_name = "RMSprop"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        schedule: str = "constant",
        decay_rate: float | None = None,
        warmup_epochs: int | None = None,
    ):
        super().__init__(
            "rmsprop",
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            schedule=schedule,
            decay_rate=decay_rate,
            warmup_epochs=warmup_epochs,
        )


# Keras' default learning rates for the names compile() takes as strings.
_BY_NAME = {
    "sgd": lambda: SGD(),
    "momentum": lambda: SGD(momentum=0.9),
    "adam": lambda: Adam(),
    "adamw": lambda: AdamW(),
    "rmsprop": lambda: RMSprop(),
}
if set(_BY_NAME) != set(OPTIMIZERS):  # every optimizer of the catalog, and no other
    raise RuntimeError("netlens.sdk.optimizers: names must match storage.catalog.OPTIMIZERS")


def get(identifier: Any) -> Optimizer:
    """An Optimizer from an Optimizer or a name ("adam", ...; case does not matter)."""
    if isinstance(identifier, Optimizer):
        return identifier
    key = identifier.lower() if isinstance(identifier, str) else None
    if key not in _BY_NAME:
        raise ValueError(
            f"optimizer: {identifier!r} is not supported; give nl.optimizers.SGD, Adam, AdamW, "
            f"RMSprop or one of the names {', '.join(_BY_NAME)}"
        )
    return _BY_NAME[key]()
