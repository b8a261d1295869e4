"""`nl.datasets`: the built-in datasets (docs/datasets.md) as numpy arrays, for the
Keras-like model:

    (x, y), (x_val, y_val) = nl.datasets.load("two-regions")
    data = nl.datasets.load("digits"); data.x.shape  # (n, 8, 8): images keep their shape

The arrays are exactly those a spec run of the same dataset section trains on (the worker's
loaders: the same generation, split and seed). Labels are class indices 0 .. C-1 (`classes`
holds the original labels). No JAX here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from netlens.storage.catalog import DATASETS
from netlens.storage.spec import ExperimentSpec, SpecError, parse_spec

__all__ = ["Loaded", "load", "names"]


@dataclass(frozen=True)
class Loaded:
    """A built-in dataset: training and validation arrays, and what the labels mean.
    Unpacks as ((x, y), (x_val, y_val)), like keras.datasets' load_data()."""

    name: str
    x: np.ndarray  # float32 (n, features) or (n, height, width) for images
    y: np.ndarray  # int32 (n,) class index into `classes`
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[int]  # original labels, in class-index order
    class_names: list[str]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield self.x, self.y
        yield self.x_val, self.y_val

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def names() -> list[str]:
    """The datasets load() knows (every catalog dataset but the arrays given to fit)."""
    return [n for n, d in DATASETS.items() if not d.stored]


def load(name: str, **options: Any) -> Loaded:
    """The dataset `name` with the spec's dataset options (n_samples, noise, val_fraction,
    seed, classes, path, label_column, max_train; docs/spec.md). Errors name the option."""
    if name not in names():
        raise ValueError(
            f"name: {name!r} is not a built-in dataset; choose one of {', '.join(names())}"
        )
    if "ood_classes" in options:
        raise ValueError(
            "ood_classes: not for load(); give fit(..., probe=(x, y)) the inputs to show "
            "the network"
        )
    try:
        spec: ExperimentSpec = parse_spec({"dataset": {"name": name, **options}})
    except SpecError as exc:
        raise ValueError("; ".join(line.removeprefix("dataset.") for line in exc.errors)) from None
    from netlens.worker.datasets import load_dataset  # numpy + scikit-learn only

    data = load_dataset(spec)
    shape = data.image_shape or ()

    def shaped(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *shape) if shape else x

    return Loaded(
        name=name,
        x=shaped(data.x_train),
        y=data.y_train,
        x_val=shaped(data.x_val),
        y_val=data.y_val,
        classes=list(data.classes),
        class_names=list(data.class_names),
    )
