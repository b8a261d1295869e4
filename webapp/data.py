"""Cached, bounded reads of a run for the pages: never a whole high-resolution history.

Histories come from the `lowres/` series when a run has one (<= ~1,000 epochs); values at one
epoch come from the full-resolution series. Finished runs never change, so their arrays are
cached by (run, name, last epoch); a live run's key changes as epochs arrive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from netlens.storage import records, retention, runs
from netlens.storage.db import Database
from netlens.storage.runs import RunInfo

CACHE_BYTES = 512 * 1024**2


class _Cache:
    """A thread-safe LRU bounded by the bytes of the numpy arrays it holds."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = make()
        size = _nbytes(value)
        with self._lock:
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped
        return value


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 64


class RunData:
    def __init__(self, db: Database, max_bytes: int = CACHE_BYTES):
        self.db = db
        self._cache = _Cache(max_bytes)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """Any value under `key` (which must change whenever the value would)."""
        return self._cache.get(key, make)

    def info(self, run_id: int) -> RunInfo:
        return runs.get_run(self.db, run_id)

    def epochs(self, info: RunInfo) -> np.ndarray:
        """The epochs the pages' sliders go over: every recorded epoch, or for a thinned run
        (storage/retention.py) those that kept their tensors (every metric row stays)."""

        def read():
            recorded = np.asarray(runs.recorded_epoch_numbers(self.db, info.id), np.int64)
            if info.thinned_at is None:
                return recorded
            kept = np.asarray(retention.kept_epochs(self.db, info.id), np.int64)
            return recorded[np.isin(recorded, kept)]

        return self._cache.get(("epochs", info.id, info.last_epoch, info.thinned_at), read)

    def metrics(self, info: RunInfo) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._cache.get(
            ("metrics", info.id, info.last_epoch), lambda: records.read_metrics(self.db, info.id)
        )

    def wall_times(self, info: RunInfo) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, when each was computed in Unix seconds; NaN: not recorded)."""
        return self._cache.get(
            ("wall_times", info.id, info.last_epoch),
            lambda: records.read_wall_times(self.db, info.id),
        )

    def arrays(self, run_id: int) -> dict[str, np.ndarray]:
        return self._cache.get(("arrays", run_id), lambda: records.read_arrays(self.db, run_id))

    def tensor_names(self, info: RunInfo) -> list[str]:
        return self._cache.get(
            ("names", info.id, info.last_epoch is None),
            lambda: records.tensor_names(self.db, info.id),
        )

    def history(self, info: RunInfo, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a tensor over the run, from its low-resolution copy if any."""

        def read():
            if f"lowres/{name}" in self.tensor_names(info):
                epochs, values = records.read_tensor(self.db, info.id, f"lowres/{name}")
                if len(epochs) and epochs[0] > 0:
                    # a run continued past ~1,000 recorded epochs (the Python API's second
                    # fit) has its copy only from then on; the part before, never longer
                    # than that, comes from the full series
                    head = records.read_tensor(self.db, info.id, name, None, int(epochs[0]) - 1)
                    if len(head[0]):
                        epochs = np.concatenate([head[0], epochs])
                        values = np.concatenate([head[1], values])
                return epochs, values
            return records.read_tensor(self.db, info.id, name)

        return self._cache.get(("history", info.id, name, info.last_epoch), read)

    def tensor_epochs(self, info: RunInfo, name: str) -> np.ndarray:
        """The epochs at which the run recorded tensor `name`, ascending."""
        return self._cache.get(
            ("tensor-epochs", info.id, name, info.last_epoch),
            lambda: records.tensor_epoch_list(self.db, info.id, name),
        )

    def at_epoch(self, info: RunInfo, name: str, epoch: int) -> tuple[int, np.ndarray | None]:
        """The tensor at the latest recorded epoch <= `epoch` (the grid is sparser)."""
        available = self.tensor_epochs(info, name)
        before = available[available <= epoch]
        if not len(before):
            return epoch, None
        found = int(before[-1])

        def read():
            _, values = records.read_tensor(self.db, info.id, name, found, found)
            return np.array(values[0]) if len(values) else None

        return found, self._cache.get(("at", info.id, name, found), read)
