"""What comparing runs computes, shared by the compare page (webapp/pages/compare.py,
webapp/views/compare.py) and the REST API (webapp/api_compare.py): the run ids and their
bound, the union of their epochs and metrics aligned on it, CKA between two runs' layers at
given epochs, the distance of the weights from their initial values, and runs grouped by a
spec field with their curves' mean and spread.

No Dash here, and no figures: plain values in and out, reads through webapp.data.RunData
(cached, bounded). A reason two runs cannot be compared is a NotComparable naming it; the
page shows it in place of the figure, the API answers it as an error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from netlens.storage.models import MAX_ID
from netlens.storage.runs import RunInfo
from netlens.webapp.data import RunData
from netlens.webapp.similarity import cka_matrix, distance_from_init, shared_rows

MAX_RUNS = 8  # runs compared at once (the page's and the API's limit)
MIN_SHARED_INPUTS = 3  # CKA needs at least this many probe inputs both runs have
ID_TEXT = re.compile(r"[0-9]{1,10}\Z")


class NotComparable(ValueError):
    """These runs cannot be compared this way; the message says why. `field` is the request
    field at fault (a run, or the epoch)."""

    def __init__(self, message: str, field: str = "runs"):
        super().__init__(message)
        self.field = field


def parse_ids(text: str | None, strict: bool = False) -> list[int]:
    """'3,5, 9' -> [3, 5, 9]; refuses junk, ids out of range and more than MAX_RUNS runs,
    naming the problem. `strict` (the API's `runs=3,5`): no spaces, empty parts or
    repeated ids either."""
    parts = (text or "").split(",")
    if not strict:
        parts = [p.strip() for p in parts if p.strip()]
    if not parts or parts == [""]:
        raise ValueError("runs: give the runs to compare, e.g. runs=3,5")
    ids: list[int] = []
    for part in parts:
        if not ID_TEXT.match(part):
            raise ValueError(f"runs: {part[:40]!r}: must be run numbers separated by commas")
        if not 1 <= int(part) <= MAX_ID:
            raise ValueError(f"runs: {part} is out of range: run ids are 1 to {MAX_ID}")
        if int(part) in ids and strict:
            raise ValueError(f"runs: run {int(part)} is given twice")
        ids.append(int(part))
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_RUNS:
        raise ValueError(f"runs: {len(ids)} runs given; compare at most {MAX_RUNS} at once")
    return ids


def union_epochs(epoch_lists: list[np.ndarray]) -> np.ndarray:
    joined = [np.asarray(e, dtype=int) for e in epoch_lists if len(e)]
    return np.unique(np.concatenate(joined)) if joined else np.zeros(0, dtype=int)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested spec as {"training.seed": 0, ...}."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix: data}


def spec_diff(specs: list[dict]) -> dict[str, list[Any]]:
    """Only the fields whose values differ between the runs, in spec order."""
    flat = [flatten(s) for s in specs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


LABEL_FIELDS = ("name", "tags")  # what a run is called, not how it trains: never grouped on


def group_fields(specs: list[dict]) -> list[str]:
    """The spec fields the compare page can group by: those that differ among the runs."""
    return [k for k in spec_diff(specs) if k not in LABEL_FIELDS]


def shown(value: Any) -> str:
    """Layers as the form writes them ('100 relu, 2 relu'); other values as they are."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "units" in v for v in value)
    ):
        return ", ".join(f"{v['units']} {v.get('activation', '')}".strip() for v in value)
    return "–" if value is None else str(value)


@dataclass(frozen=True)
class RunGroup:
    label: str  # the group's values of the other differing fields ("all runs": none differ)
    members: list[int]  # positions in the specs given


def group_runs(specs: list[dict], field: str) -> list[RunGroup]:
    """Runs whose specs are equal except for `field` (and their names and tags) pooled, in
    order of first appearance; e.g. by training.seed: the runs that differ only in seed."""
    others = [k for k in group_fields(specs) if k != field]
    flat = [flatten(s) for s in specs]
    groups: dict[str, list[int]] = {}
    labels: dict[str, str] = {}
    for position, f in enumerate(flat):
        key = repr([f.get(k) for k in others])
        groups.setdefault(key, []).append(position)
        labels[key] = ", ".join(f"{k.split('.')[-1]}={shown(f.get(k))}" for k in others)
    return [RunGroup(labels[k] or "all runs", members) for k, members in groups.items()]


def aggregate(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(epochs, mean, std, n) of a group's curves over the epochs every member recorded:
    `series` is (epochs, values) per member. std is the sample standard deviation (ddof 1)
    over the members with a finite value at that epoch, 0 where only one has; n counts them."""
    if not series:
        return tuple(np.zeros(0) for _ in range(4))
    common = reduce(np.intersect1d, [np.asarray(e) for e, _ in series])
    rows = []
    for epochs, values in series:
        epochs, values = np.asarray(epochs), np.asarray(values, dtype=float)
        rows.append(values[np.searchsorted(epochs, common)])
    stacked = np.vstack(rows) if rows else np.zeros((0, 0))
    n = np.isfinite(stacked).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch with no finite value
        mean = np.nanmean(stacked, axis=0)
        std = np.where(n > 1, np.nanstd(stacked, axis=0, ddof=1), 0.0)
    return common, mean, np.where(n > 0, std, np.nan), n


def layer_names(info: RunInfo) -> list[str]:
    return [layer["name"] for layer in info.layers]


def aligned_metrics(
    data: RunData, infos: list[RunInfo], names: list[str]
) -> tuple[np.ndarray, dict[str, list[list[float | None]]]]:
    """The union of the runs' recorded epochs, and for each metric name one list per run (in
    `infos` order) of its values at those epochs: None where the run recorded no value there
    (or the value is not finite)."""
    per_run = [data.metrics(info) for info in infos]
    epochs = union_epochs([e for e, _ in per_run])
    at = {int(e): i for i, e in enumerate(epochs.tolist())}
    out: dict[str, list[list[float | None]]] = {}
    for name in names:
        rows = []
        for run_epochs, metrics in per_run:
            row: list[float | None] = [None] * len(epochs)
            values = metrics.get(name)
            if values is not None:
                for epoch, value in zip(run_epochs.tolist(), values.tolist(), strict=True):
                    if np.isfinite(value):
                        row[at[int(epoch)]] = float(value)
            rows.append(row)
        out[name] = rows
    return epochs, out


def metric_names(data: RunData, infos: list[RunInfo]) -> list[str]:
    """Every metric any of the runs recorded, in order of first appearance."""
    return list(dict.fromkeys(name for info in infos for name in data.metrics(info)[1]))


# ---- CKA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cka:
    """CKA of every layer of run A (rows) with every layer of run B (columns)."""

    matrix: np.ndarray  # NaN where a layer has no variance (e.g. all its units dead)
    rows: list[str]  # A's layer names
    columns: list[str]  # B's layer names
    epoch_a: int
    epoch_b: int
    n_inputs: int  # the probe inputs both runs share, on which it is computed


def signature_epochs(data: RunData, info: RunInfo) -> np.ndarray:
    """The epochs at which the run recorded its layers' signatures (activations on the probe
    inputs), ascending; what CKA compares."""
    names = layer_names(info)
    if not names:
        return np.zeros(0, dtype=int)
    return data.tensor_epochs(info, f"signatures/{names[-1]}")


def cka(data: RunData, a: RunInfo, b: RunInfo, epoch_a: int, epoch_b: int) -> Cka:
    """Linear CKA between A's layers at `epoch_a` and B's at `epoch_b`, on the probe inputs
    both share; NotComparable when they share too few or a signature is missing there."""
    probe_a, probe_b = data.arrays(a.id).get("probe/x"), data.arrays(b.id).get("probe/x")
    if probe_a is None or probe_b is None:
        missing = a if probe_a is None else b
        raise NotComparable(
            f"CKA needs probe inputs; run {missing.id} recorded none",
            "a" if probe_a is None else "b",
        )
    rows_a, rows_b = shared_rows(probe_a, probe_b)
    if len(rows_a) < MIN_SHARED_INPUTS:
        raise NotComparable(
            f"#{a.id} and #{b.id} share {len(rows_a)} probe inputs; CKA needs "
            "the same inputs in both runs (the same dataset spec)"
        )
    sig_a = [data.at_epoch(a, f"signatures/{n}", epoch_a) for n in layer_names(a)]
    sig_b = [data.at_epoch(b, f"signatures/{n}", epoch_b) for n in layer_names(b)]
    found = [s for _, s in sig_a + sig_b]
    if not found or any(s is None for s in found):
        at = epoch_a if epoch_a == epoch_b else f"{epoch_a} / {epoch_b}"
        raise NotComparable(f"No signatures recorded at epoch {at} for one of the runs", "epoch")
    at_a, at_b = sig_a[0][0], sig_b[0][0]

    def compute():
        flat = lambda sigs, rows: [s.reshape(len(s), -1)[rows] for _, s in sigs]  # noqa: E731
        return cka_matrix(flat(sig_a, rows_a), flat(sig_b, rows_b))

    matrix = data.cached(("cka", a.id, at_a, b.id, at_b), compute)
    return Cka(matrix, layer_names(a), layer_names(b), at_a, at_b, len(rows_a))


# ---- distance from the initial weights ---------------------------------------------------------


def distance(data: RunData, info: RunInfo) -> tuple[np.ndarray, np.ndarray, float]:
    """(epochs, ‖θ − θ₀‖ at each, ‖θ₀‖) over every kernel and bias of the run, from their
    low-resolution copies when there are (cached per run and last epoch)."""

    def compute():
        series = [
            data.history(info, f"params/{name}/{kind}")
            for name in layer_names(info)
            for kind in ("kernel", "bias")
        ]
        series = [(e, v) for e, v in series if len(e)]
        if not series:
            return np.zeros(0, int), np.zeros(0), 0.0
        epochs = series[0][0]
        moved, initial = distance_from_init([v for e, v in series if len(e) == len(epochs)])
        return epochs, moved, initial

    return data.cached(("distance-from-init", info.id, info.last_epoch), compute)
