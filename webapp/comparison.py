"""What comparing runs computes, shared by the compare page (webapp/pages/compare.py,
webapp/views/compare.py) and the REST API (webapp/api_compare.py): the run ids and their
bound, the union of their epochs and metrics aligned on it, CKA between two runs' layers at
given epochs, the distance of the weights from their initial values, runs grouped by a spec
field with their curves' mean and spread, how their layers match, and each layer's dead and
saturated units counted from its signatures.

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

from netlens.storage.catalog import DEAD_ABS, SATURATED_SHARE, SATURATION
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


# ---- activations and dead / saturated units ----------------------------------------------------


def unit_counts(acts: np.ndarray, activation: str | None) -> tuple[int, int | None]:
    """(dead, saturated) units of one layer from its outputs on the probe inputs, (P, ...):
    each value after the input axis is a unit (a conv layer's every position and channel).
    Dead: |output| <= DEAD_ABS on every probe input; saturated: in the flat tails of its
    activation (catalog.SATURATION) on at least SATURATED_SHARE of them; None for an
    activation without such tails (ReLU, linear, ...). The thresholds are the ones the worker
    records each epoch with (storage.catalog), so the two counts agree."""
    acts = np.asarray(acts, dtype=np.float32)
    if not len(acts):  # no probe input: nothing can be called dead or saturated
        return 0, (0 if activation in SATURATION else None)
    flat = acts.reshape(len(acts), -1)
    dead = int(np.all(np.abs(flat) <= DEAD_ABS, axis=0).sum())
    if activation not in SATURATION:
        return dead, None
    low, high = SATURATION[activation]
    in_tails = np.mean((flat <= low) | (flat >= high), axis=0)
    return dead, int((in_tails >= SATURATED_SHARE).sum())


@dataclass(frozen=True)
class LayerMatch:
    """How the layers of several runs line up for the distributions tab: by name (a spec
    run's `hidden_1`, `conv_2`, ...; the same name is the same position in the forward
    order), and what does not match."""

    shared: list[str]  # hidden layers every run has, in forward order
    layers: list[str]  # every layer any run has (the union, in order of first appearance)
    notes: list[str]  # one sentence per mismatch: a layer some runs lack, another activation


def match_layers(infos: list[RunInfo], hidden_only: bool = False) -> LayerMatch:
    per_run = [info.layers[:-1] if hidden_only else info.layers for info in infos]
    names = [[layer["name"] for layer in layers] for layers in per_run]
    union = list(dict.fromkeys(n for run_names in names for n in run_names))
    shared = [n for n in union if all(n in run_names for run_names in names)]
    notes = []
    for name in union:
        lacking = [
            f"#{i.id}" for i, run_names in zip(infos, names, strict=True) if name not in run_names
        ]
        if lacking:
            notes.append(f"{name}: not in {', '.join(lacking)}")
            continue
        found = [next(layer for layer in layers if layer["name"] == name) for layers in per_run]
        kinds = {(layer.get("activation"), layer.get("units")) for layer in found}
        if len(kinds) > 1:
            each = ", ".join(
                f"#{i.id} {layer.get('units', '?')} {layer.get('activation') or ''}".strip()
                for i, layer in zip(infos, found, strict=True)
            )
            notes.append(f"{name}: different units or activation ({each})")
    return LayerMatch(shared, union, notes)


def layer_activation(info: RunInfo, name: str) -> str | None:
    return next((layer.get("activation") for layer in info.layers if layer["name"] == name), None)


@dataclass(frozen=True)
class UnitCounts:
    """One run's dead and saturated units per hidden layer at one epoch."""

    run_id: int
    epoch: int | None  # the signatures' epoch (the latest at or before the asked one); None: none
    layers: list[str]
    dead: list[int | None]  # None: no signature recorded for that layer
    saturated: list[int | None]  # None: also for an activation without flat tails
    units: list[int | None]


def unit_counts_at(data: RunData, info: RunInfo, epoch: int) -> UnitCounts:
    """The run's dead/saturated units of each hidden layer, from its signatures at the latest
    recorded epoch at or before `epoch` (cached per run and that epoch)."""
    names = layer_names(info)[:-1]
    at = {data.at_epoch(info, f"signatures/{n}", epoch)[0] for n in names}

    def compute():
        dead: list[int | None] = []
        saturated: list[int | None] = []
        units: list[int | None] = []
        found = None
        for name in names:
            at_epoch, acts = data.at_epoch(info, f"signatures/{name}", epoch)
            counted = (
                (None, None) if acts is None else unit_counts(acts, layer_activation(info, name))
            )
            dead.append(counted[0])
            saturated.append(counted[1])
            units.append(None if acts is None else int(np.prod(acts.shape[1:])))
            found = found if acts is None else at_epoch
        return UnitCounts(info.id, found, names, dead, saturated, units)

    return data.cached(("unit-counts", info.id, tuple(sorted(at))), compute)
