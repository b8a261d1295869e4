"""What the lessons read of a run: full-resolution histories (the facts name exact epochs), through
RunData's cache and storage.records only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netlens.storage import records
from netlens.storage.runs import RunInfo
from netlens.webapp import context


@dataclass
class RunArrays:
    info: RunInfo
    epochs: np.ndarray  # recorded epochs (metrics)
    metrics: dict[str, np.ndarray]
    static: dict[str, np.ndarray]  # probe/x, probe/y, probe/is_ood, classes, grid/x

    @property
    def hidden(self) -> list[str]:
        return [layer["name"] for layer in self.info.layers[:-1]]

    @property
    def class_names(self) -> dict[int, str]:
        d = self.info.data_info or {}
        return dict(zip(d.get("classes", []), d.get("class_names", []), strict=False))


def load(run_id: int) -> RunArrays | None:
    """The run's metrics and static arrays; None before its first epoch."""
    return arrays_of(context.current().data.info(run_id))


def arrays_of(info: RunInfo) -> RunArrays | None:
    """load() of a run whose info the caller has just read."""
    data = context.current().data
    epochs, metrics = data.metrics(info)
    if not len(epochs):
        return None
    return RunArrays(info, np.asarray(epochs), metrics, data.arrays(info.id))


def full(run: RunArrays, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of a tensor at every recorded epoch (not the low-resolution copy)."""
    web = context.current()
    key = ("learn-full", run.info.id, name, run.info.last_epoch)
    return web.data.cached(key, lambda: records.read_tensor(web.db, run.info.id, name))


def at(run: RunArrays, name: str, epoch: int) -> tuple[int, np.ndarray | None]:
    return context.current().data.at_epoch(run.info, name, epoch)
