"""Every analysis of one epoch (`analyze_epoch`) and the CLI's text report of it (`describe`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from netlens.worker.signatures.classes import class_signatures
from netlens.worker.signatures.clusters import cluster_layer
from netlens.worker.signatures.common import (
    THREADS,
    Probe,
    _matrix,
    _num,
    _threads,
    _Timer,
    predictions,
)
from netlens.worker.signatures.flow import sankey_flow
from netlens.worker.signatures.projections import DEFAULT_METHODS, METHODS, project
from netlens.worker.signatures.separation import separability_by_layer
from netlens.worker.signatures.unseen import ood_report

# told what is being computed ("computing t-SNE for layer 2 of 3…")
Progress = Callable[[str], None]


@dataclass
class Analysis:
    """One epoch's analyses: `summary` is JSON-serialisable, `arrays` numpy arrays by name."""

    summary: dict
    arrays: dict[str, np.ndarray]


def analyze_epoch(
    layers: Mapping[str, np.ndarray],
    output: np.ndarray,
    *,
    y,
    is_ood,
    classes,
    x: np.ndarray | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    k_range: tuple[int, int] = (2, 10),
    seed: int = 0,
    reference: Mapping[str, np.ndarray] | None = None,
    threads: int | None = THREADS,
    progress: Progress | None = None,
) -> Analysis:
    """Every analysis of one epoch. `layers`: hidden layers only, in order, each (P, units);
    `output` (P, out); `methods`: the projections (PCA by default: t-SNE and UMAP are slow,
    `project_epoch` computes them when asked for); `reference`: a previous Analysis's arrays,
    whose "projection/<method>/<layer>" the new projections are Procrustes-aligned to;
    `threads`: BLAS / OpenMP threads (see the package's docstring); `progress`: told what is
    being computed, part by part.

    summary: {"n_probe", "n_ood", "layers": [names in order], "units": {layer: int},
    "classes": [trained labels], "groups": Probe.groups(), "accuracy" (network on
    in-distribution probe inputs), "clusters": {layer: cluster_layer summary}, "flow":
    sankey_flow(...), "projections": {method: {layer: {"mode", "aligned"}}}, "class_signatures":
    {layer: class_signatures summary}, "separability": separability_by_layer list (input if x,
    layers, output), "ood": ood_report list, "timings": {part: seconds}}. Dicts keyed by layer
    carry no order (e.g. in PostgreSQL jsonb): use "layers" for it.

    arrays: "predicted" (P,) int64 labels, "confidence" (P,) float32, "clusters/<layer>" (P,)
    int64, "projection/<method>/<layer>" (P, 2) float32, "class_means/<layer>" (n_groups,
    units) float32 (rows: summary["groups"]), "margin/<layer>" (P,) float32 (NaN for OOD)."""
    start = time.perf_counter()
    probe = Probe.from_arrays(y, is_ood, classes)
    layers = {name: _matrix(acts, probe.size) for name, acts in layers.items()}
    timer = _Timer()
    predicted, confidence = predictions(output, probe.classes)
    correct = predicted[probe.in_dist] == probe.y[probe.in_dist]
    summary: dict = {
        "n_probe": probe.size,
        "n_ood": int(probe.is_ood.sum()),
        "layers": list(layers),
        "units": {n: int(v.shape[1]) for n, v in layers.items()},
        "classes": [int(c) for c in probe.classes],
        "groups": probe.groups(),
        "accuracy": _num(correct.mean()) if correct.size else None,
        "clusters": {},
        "projections": {},
        "class_signatures": {},
    }
    arrays: dict[str, np.ndarray] = {
        "predicted": predicted.astype(np.int64),
        "confidence": confidence.astype(np.float32),
    }
    labels: dict[str, np.ndarray] = {}
    say = progress or (lambda _text: None)
    n = len(layers)
    with _threads(threads):
        for i, (name, values) in enumerate(layers.items(), start=1):
            say(f"clustering layer {i} of {n}…")
            with timer("clusters"):
                summary["clusters"][name], labels[name] = cluster_layer(
                    values, probe, k_range=k_range, seed=seed
                )
            arrays[f"clusters/{name}"] = labels[name]
            with timer("class_signatures"):
                summary["class_signatures"][name], means, margin = class_signatures(values, probe)
            arrays[f"class_means/{name}"], arrays[f"margin/{name}"] = means, margin
        with timer("flow"):
            summary["flow"] = sankey_flow(labels, predicted, probe)
        for method in methods:
            summary["projections"][method] = _project_layers(
                layers, method, seed, reference, arrays, timer, say
            )
        say("separability and the unseen-class report…")
        with timer("separability"):
            summary["separability"] = separability_by_layer(
                layers,
                output,
                y=probe.y,
                is_ood=probe.is_ood,
                classes=probe.classes,
                x=x,
                seed=seed,
                threads=threads,
            )
        with timer("ood"):
            summary["ood"] = ood_report(layers, labels, predicted, confidence, probe)
    summary["timings"] = {**timer.as_dict(), "total": round(time.perf_counter() - start, 4)}
    return Analysis(summary, arrays)


METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def _project_layers(layers, method, seed, reference, arrays, timer, say) -> dict:
    """Every layer projected by `method` into `arrays`; its summary {layer: {mode, aligned}}."""
    out = {}
    for i, (name, values) in enumerate(layers.items(), start=1):
        say(f"computing {METHOD_NAMES.get(method, method)} for layer {i} of {len(layers)}…")
        key = f"projection/{method}/{name}"
        ref = None if reference is None else reference.get(key)
        with timer(f"projection/{method}"):
            arrays[key], mode = project(values, method, seed=seed, reference=ref)
        out[name] = {"mode": mode, "aligned": ref is not None and mode not in ("raw", "constant")}
    return out


def project_epoch(
    layers: Mapping[str, np.ndarray],
    method: str,
    *,
    seed: int = 0,
    reference: Mapping[str, np.ndarray] | None = None,
    threads: int | None = THREADS,
    progress: Progress | None = None,
) -> Analysis:
    """One projection (t-SNE or UMAP, asked for on demand) of every hidden layer of one epoch.
    summary: {"layers", "units", "projections": {method: {layer: {"mode", "aligned"}}},
    "timings"}; arrays: "projection/<method>/<layer>" (P, 2) float32, aligned to `reference`'s
    arrays of the same names where given."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; expected one of {METHODS}")
    start = time.perf_counter()
    layers = {name: _matrix(acts) for name, acts in layers.items()}
    timer = _Timer()
    arrays: dict[str, np.ndarray] = {}
    with _threads(threads):
        found = _project_layers(
            layers, method, seed, reference, arrays, timer, progress or (lambda _text: None)
        )
    summary = {
        "layers": list(layers),
        "units": {n: int(v.shape[1]) for n, v in layers.items()},
        "projections": {method: found},
        "timings": {**timer.as_dict(), "total": round(time.perf_counter() - start, 4)},
    }
    return Analysis(summary, arrays)


# -- text report ------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tally(counts: Mapping[str, int]) -> str:
    """'7 x80, 1 x20' for the non-zero counts, largest first."""
    items = sorted(((n, k) for k, n in counts.items() if n), reverse=True)
    return ", ".join(f"{k} x{n}" for n, k in items) or "none"


def describe(summary: dict) -> str:
    """The CLI's text rendering of an analyze_epoch summary: per layer K, cluster silhouette,
    class separability (silhouette of the true classes), linear-probe accuracy; then where each
    OOD class lands."""
    groups = summary["groups"]
    trained = ", ".join(f"{g['label']} x{g['count']}" for g in groups if not g["ood"])
    ood = ", ".join(f"{g['label']} x{g['count']}" for g in groups if g["ood"])
    lines = [
        f"probe: {summary['n_probe']} inputs (trained classes: {trained}"
        + (f"; OOD: {ood}" if ood else "")
        + f"); network accuracy "
        f"{_fmt(summary['accuracy'], 3)}",
        "",
        f"{'layer':<16} {'units':>6} {'K':>3} {'cluster sil.':>12} {'class sil.':>10} "
        f"{'linear probe':>12}",
    ]
    for row in summary["separability"]:
        cl = summary["clusters"].get(row["layer"])
        k = "-" if cl is None else str(cl["k"])
        lines.append(
            f"{row['layer']:<16} {row['units']:>6} {k:>3} "
            f"{_fmt(None if cl is None else cl['silhouette']):>12} "
            f"{_fmt(row['silhouette']):>10} {_fmt(row['probe_accuracy']):>12}"
        )
    notes = [
        f"  {name}: K=1, {cl['reason']}" for name, cl in summary["clusters"].items() if cl["reason"]
    ]
    lines += notes
    for entry in summary["ood"]:
        lines += [
            "",
            f"OOD class {entry['label']} ({entry['count']} inputs): predicted "
            f"{_tally(entry['predicted'])}, mean confidence "
            f"{_fmt(entry['confidence'])}",
        ]
        for name in summary["layers"]:
            at = entry["layers"][name]
            where = ", ".join(
                f"c{c['cluster']} x{c['count']} ("
                + ("OOD only" if c["dominant_class"] is None else f"mostly {c['dominant_class']}")
                + ")"
                for c in at["clusters"]
            )
            lines.append(
                f"  {name}: {where}; nearest class {_tally(at['nearest_class'])}; "
                f"distance {_fmt(at['distance_to_nearest'])} vs in-distribution "
                f"{_fmt(at['in_dist_distance'])} (ratio {_fmt(at['distance_ratio'])})"
            )
    return "\n".join(lines)
