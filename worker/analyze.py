"""Run the signature analyses of a stored run: read its probe signatures, analyse, store.

The analyses themselves (`worker.signatures`) are pure numpy / scikit-learn / UMAP; this module
is the glue to storage. It never imports JAX: analysing needs only the recorded signatures.
Requesting an analysis (which epoch, what to queue) is netlens/dispatch/analysis_requests.py.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from netlens.dispatch.analysis_requests import (
    PROJECTION_KINDS,
    AnalysisError,
    recorded_epochs,
    resolve_epoch,
)
from netlens.storage import analyses
from netlens.storage.db import Database
from netlens.storage.records import read_arrays, read_tensor
from netlens.storage.runs import RunInfo, get_run
from netlens.worker.events import events

log = logging.getLogger("netlens.worker")

TIMELINE_FRAMES = 40
# The epoch analysis projects by PCA only; t-SNE and UMAP are analyses of their own (kinds
# "tsne", "umap"), computed when the page or `netlens analyze --methods` asks for them.
DEFAULT_METHODS = ("pca",)
ON_DEMAND = PROJECTION_KINDS


def use_numba_cache(home) -> None:
    """UMAP's (and pynndescent's) numba functions marked cache=True keep their compiled code
    under the NetLens home, so a fresh process loads it instead of compiling again (also
    where site-packages is read-only, e.g. in the container). Before umap is imported; a
    NUMBA_CACHE_DIR already set wins."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(home / "numba-cache"))


@dataclass
class ProbeData:
    """What one epoch's analysis needs: the probe set and its signatures at that epoch."""

    epoch: int
    layers: dict[str, np.ndarray]  # hidden layers in forward order: (P, units)
    output: np.ndarray  # (P, out)
    x: np.ndarray
    y: np.ndarray
    is_ood: np.ndarray
    classes: np.ndarray


def hidden_layer_names(run: RunInfo) -> list[str]:
    return [layer["name"] for layer in run.layers[:-1]]


def load_probe(
    db: Database, run: RunInfo, epoch: int, static: dict[str, np.ndarray] | None = None
) -> ProbeData:
    """The probe set and its signatures at `epoch`; `static` (the run's arrays) when the
    caller already read them."""
    static = read_arrays(db, run.id) if static is None else static
    if "probe/y" not in static or not len(static["probe/y"]):
        raise AnalysisError(f"run {run.id} recorded no probe inputs (recording.probe_size is 0)")
    tensors = {}
    for name in [*hidden_layer_names(run), run.layers[-1]["name"]]:
        epochs, values = read_tensor(db, run.id, f"signatures/{name}", epoch, epoch)
        if not len(epochs):
            raise AnalysisError(f"epoch: {epoch} has no signatures of layer {name}")
        values = values[0].reshape(len(values[0]), -1).astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise AnalysisError(
                f"epoch: the signatures of layer {name} at epoch {epoch} are "
                "not finite (the run diverged); pick an earlier epoch"
            )
        tensors[name] = values
    output = tensors.pop(run.layers[-1]["name"])
    return ProbeData(
        epoch,
        tensors,
        output,
        static["probe/x"].reshape(len(output), -1),
        static["probe/y"],
        static["probe/is_ood"].astype(bool),
        static["classes"],
    )


def _context(run: RunInfo, probe: ProbeData) -> dict:
    """Facts every page needs beside the results: names of the classes and layers."""
    names = run.data_info.get("class_names") or [str(c) for c in probe.classes]
    return {
        "run_id": run.id,
        "epoch": probe.epoch,
        "layers": list(probe.layers),
        "n_probe": int(len(probe.y)),
        "n_ood": int(probe.is_ood.sum()),
        "classes": [int(c) for c in probe.classes],
        "class_names": list(names),
        "image_shape": run.data_info.get("image_shape"),
    }


def compute_epoch(
    db: Database,
    run: RunInfo,
    epoch: int,
    methods=DEFAULT_METHODS,
    reference: dict[str, np.ndarray] | None = None,
    progress=None,
):
    """The analyses of one epoch (projections: `methods`): (summary, arrays), not stored."""
    from netlens.worker.signatures import analyze_epoch

    probe = load_probe(db, run, epoch)
    result = analyze_epoch(
        probe.layers,
        probe.output,
        y=probe.y,
        is_ood=probe.is_ood,
        classes=probe.classes,
        x=probe.x,
        methods=methods,
        reference=reference,
        progress=progress,
    )
    return _context(run, probe) | result.summary, result.arrays


def compute_projection(
    db: Database,
    run: RunInfo,
    epoch: int,
    method: str,
    reference: dict[str, np.ndarray] | None = None,
    progress=None,
):
    """One on-demand projection (t-SNE or UMAP) of the epoch's hidden layers: (summary,
    arrays), not stored."""
    from netlens.worker.signatures import project_epoch

    probe = load_probe(db, run, epoch)
    result = project_epoch(probe.layers, method, reference=reference, progress=progress)
    return _context(run, probe) | result.summary, result.arrays


def timeline_epochs(epochs: np.ndarray, frames: int = TIMELINE_FRAMES) -> np.ndarray:
    """Up to `frames` recorded epochs: half spread evenly, half geometrically (most change
    happens early), always the first and the last."""
    if len(epochs) <= frames:
        return epochs
    even = np.linspace(0, len(epochs) - 1, frames // 2)
    geometric = np.geomspace(1, len(epochs), frames - frames // 2) - 1
    picks = np.unique(np.round(np.concatenate([even, geometric])).astype(int))
    return epochs[picks]


def compute_timeline(db: Database, run: RunInfo, last: int, frames: int = TIMELINE_FRAMES):
    """Separability per layer and fixed-basis PCA frames over up to `frames` epochs ≤ last."""
    from netlens.worker.signatures import pca_fixed_basis, separability_by_layer

    epochs = recorded_epochs(db, run)
    epochs = timeline_epochs(epochs[epochs <= last], frames)
    static = read_arrays(db, run.id)
    probes = [load_probe(db, run, int(e), static) for e in epochs]
    final = probes[-1]
    separability = [
        separability_by_layer(p.layers, p.output, y=p.y, is_ood=p.is_ood, classes=p.classes, x=p.x)
        for p in probes
    ]
    arrays = {"epochs": epochs.astype(np.int64)}
    for layer in final.layers:  # one PCA basis (the last epoch's): axes stay put across frames
        arrays[f"pca/{layer}"] = pca_fixed_basis([p.layers[layer] for p in probes])
    summary = _context(run, final) | {
        "epochs": [int(e) for e in epochs],
        "separability": separability,
    }
    return summary, arrays


def _reference(db: Database, run: RunInfo, kind: str, epoch: int) -> dict | None:
    """The last recorded epoch's stored projections of this kind, which another epoch's are
    aligned to (None for the last epoch itself, or when it has none yet)."""
    last = resolve_epoch(db, run, None)
    if epoch == last:
        return None
    stored = analyses.get(db, run.id, kind, last)
    if stored is None or stored.state != "done":
        return None
    return analyses.read_arrays(db, run.id, kind, last, "projection/")


def run_analysis(db: Database, run_id: int, kind: str, epoch: int) -> dict:
    """Compute and store one requested analysis; returns its summary. While it runs, what it
    is doing is stored as the analysis's progress (the signatures page polls it)."""
    run = get_run(db, run_id)
    started = time.perf_counter()

    def progress(text: str) -> None:
        analyses.set_progress(db, run_id, kind, epoch, text)

    if kind == "timeline":
        progress("separability over the epochs…")
        summary, arrays = compute_timeline(db, run, epoch)
    elif kind in ON_DEMAND:
        reference = _reference(db, run, kind, epoch)
        summary, arrays = compute_projection(db, run, epoch, kind, reference, progress)
    elif kind == "epoch":
        reference = _reference(db, run, kind, epoch)
        summary, arrays = compute_epoch(db, run, epoch, reference=reference, progress=progress)
    else:
        raise AnalysisError(f"kind: {kind[:40]!r} is not an analysis NetLens computes")
    summary["seconds"] = round(time.perf_counter() - started, 3)
    analyses.store(db, run_id, kind, epoch, summary, arrays, create=True)
    return summary


def execute(db: Database, run_id: int, kind: str, epoch: int, worker_id: str) -> str:
    """The analysis task's body: claim, compute, store; a failure is stored with its reason."""
    if not analyses.claim(db, run_id, kind, epoch, worker_id):
        return "skipped"
    try:
        run_analysis(db, run_id, kind, epoch)
    except Exception as exc:
        log.exception("analysis %s of run %s at epoch %s failed", kind, run_id, epoch)
        reason = str(exc) if isinstance(exc, AnalysisError) else f"{type(exc).__name__}: {exc}"
        analyses.fail(db, run_id, kind, epoch, reason)
        events.info("run %s: analysis %s at epoch %s failed: %s", run_id, kind, epoch, reason)
        return "failed"
    events.info("run %s: analysis %s at epoch %s done", run_id, kind, epoch)
    return "done"
