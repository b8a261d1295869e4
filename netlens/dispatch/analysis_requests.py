"""Requesting signature analyses: which recorded epoch, and what a worker must be told to compute.

The computing side (reading probe signatures, the analyses themselves) is worker/analyze.py;
this side only reads which epochs were recorded and records the requests (storage.analyses).
"""

from __future__ import annotations

import numpy as np

from netlens.storage import analyses
from netlens.storage.db import Database
from netlens.storage.records import tensor_epoch_list
from netlens.storage.runs import RunInfo, get_run

# t-SNE and UMAP of one epoch: analyses of their own (their kind is the method), computed only
# when asked for: they take seconds per layer where the rest of an epoch's analysis takes one
PROJECTION_KINDS = ("tsne", "umap")


class AnalysisError(ValueError):
    """The run cannot be analysed at that epoch (not recorded, not finite, no probe set)."""


def recorded_epochs(db: Database, run: RunInfo) -> np.ndarray:
    if not run.layers:
        return np.zeros(0, np.int64)
    return tensor_epoch_list(db, run.id, f"signatures/{run.layers[-1]['name']}")


def resolve_epoch(db: Database, run: RunInfo, epoch: int | None) -> int:
    """The recorded epoch to analyse: `epoch` itself, or the last recorded one."""
    epochs = recorded_epochs(db, run)
    if not len(epochs):
        raise AnalysisError(f"run {run.id} has no recorded signatures yet")
    if epoch is None:
        return int(epochs[-1])
    if epoch not in set(epochs.tolist()):
        nearest = int(epochs[np.argmin(np.abs(epochs - epoch))])
        why = (
            "was thinned away (the retention policy kept its metrics only)"
            if run.thinned_at is not None and epoch <= (run.last_epoch or 0)
            else "was not recorded"
        )
        raise AnalysisError(
            f"epoch: {epoch} {why} for run {run.id}; recorded "
            f"epochs run from {epochs[0]} to {epochs[-1]} (nearest: {nearest})"
        )
    return int(epoch)


def wanted_analyses(db: Database, run: RunInfo, epoch: int | None = None) -> list[tuple[str, int]]:
    """What a request for `epoch` (default: the last recorded) asks for: its epoch analysis
    and, for the last epoch, the timeline. AnalysisError when it cannot be analysed."""
    last = resolve_epoch(db, run, None)
    epoch = resolve_epoch(db, run, epoch)
    return [("epoch", epoch)] + ([("timeline", last)] if epoch == last else [])


def request_analyses(
    db: Database, run_id: int, epoch: int | None = None, force: bool = False
) -> list[tuple[str, int]]:
    """Queue the epoch analysis (default: the last recorded epoch) and, for the last epoch,
    the timeline. Returns the (kind, epoch) pairs a worker must be told about."""
    wanted = wanted_analyses(db, get_run(db, run_id), epoch)
    return [(kind, e) for kind, e in wanted if analyses.request(db, run_id, kind, e, force)]


def projection_methods(methods: object) -> list[str]:
    """The t-SNE / UMAP projections asked for ("tsne,umap" or a list of names), each once,
    in order; an AnalysisError names the first unknown one."""
    if isinstance(methods, str):
        methods = methods.split(",")
    if not isinstance(methods, list | tuple):
        raise AnalysisError(f"methods: expected names such as {', '.join(PROJECTION_KINDS)}")
    asked = [str(m).strip().lower() for m in methods if str(m).strip()]
    if unknown := [m for m in asked if m not in PROJECTION_KINDS]:
        raise AnalysisError(
            f"methods: {unknown[0][:40]!r} is not one of {', '.join(PROJECTION_KINDS)}"
        )
    return list(dict.fromkeys(asked))


def with_projections(summary: dict, projected: dict[str, dict]) -> dict:
    """An epoch's summary with the on-demand projections' results beside PCA's."""
    for found in projected.values():
        summary["projections"] |= found["projections"]
    return summary


def request_projection(
    db: Database, run_id: int, method: str, epoch: int | None = None, force: bool = False
) -> list[tuple[str, int]]:
    """Queue the t-SNE or UMAP (`method`) of one recorded epoch (default: the last). Returns
    [(method, epoch)] when a worker must be told, [] when it is stored or on its way."""
    if method not in PROJECTION_KINDS:
        raise AnalysisError(
            f"method: {str(method)[:40]!r} is not one of {', '.join(PROJECTION_KINDS)}"
        )
    epoch = resolve_epoch(db, get_run(db, run_id), epoch)
    return [(method, epoch)] if analyses.request(db, run_id, method, epoch, force) else []
