"""Datasets for NetLens runs (numpy + scikit-learn only: never imports jax, flax or optax).

Public API: ``load_dataset(spec, data_dir=None) -> Dataset``, ``Dataset``, ``DatasetError``,
``grid_points(bounds, resolution)`` and ``default_data_dir()``.  See docs/datasets.md.
"""

from netlens.worker.datasets.base import Dataset, DatasetError, grid_points
from netlens.worker.datasets.loader import DATA_DIR_ENV, default_data_dir, load_dataset

__all__ = [
    "DATA_DIR_ENV",
    "Dataset",
    "DatasetError",
    "default_data_dir",
    "grid_points",
    "load_dataset",
]
