"""Analyses of one epoch's probe signatures: what the hidden layers do with the probe inputs.

A *signature* is the post-activation output of every hidden layer for one probe input. Given
one epoch's signatures (per layer an array (P, units)), the network output (P, out) and the
probe metadata (original labels `y`, `is_ood`, trained `classes` in output order), this package
answers the questions a user asks while a network trains:

- which neurons fire for which class (class means, selective units);
- are there signatures characteristic of some inputs (K-means clusters, typical / atypical
  inputs of each class);
- from which layer the model separates the classes (silhouette of the true classes and a
  cross-validated linear probe, layer by layer);
- where inputs of never-seen classes land (the out-of-distribution report);
- how the probe inputs flow through the layers' clusters (data for a Sankey diagram);
- 2-D pictures of every layer (PCA, t-SNE, UMAP), aligned across epochs.

Out-of-distribution (OOD) inputs are clustered, projected and reported, but never counted as a
trained class: centroids, separability and typical / atypical inputs use in-distribution
inputs only.

Pure numpy / scipy / scikit-learn; umap-learn is imported lazily (its first fit in a process
compiles with numba for 10-15 s: call `warm_up()` once when a worker starts). By default
everything runs on one thread (BLAS and OpenMP, `threads=1`): on the 2-core machine shared
with other processes, two spinning OpenBLAS / OpenMP threads made the linear probe up to 60x
and t-SNE up to 10x slower, while on a quiet machine one thread costs t-SNE under 2x and the
rest nothing (the matrices are small).

`analyze_epoch` returns an `Analysis`: `summary` (JSON-serialisable, no NaN) and `arrays`
(numpy arrays keyed by name). Key layout: see `analyze_epoch`.

One module per analysis, each usable alone:

- clusters.py: K-means per layer, K by silhouette, what each cluster holds;
- flow.py: true class -> each layer's clusters -> predicted class (Sankey data);
- projections.py: PCA / t-SNE / UMAP, Procrustes alignment, a fixed PCA basis, `warm_up`;
- classes.py: class signatures (class means, centroid distances, selective units, typical and
  atypical inputs);
- separation.py: separability of the trained classes, layer by layer;
- unseen.py: where the inputs of never-trained classes land (the OOD report);
- inputs.py: two probe inputs compared, layer by layer;
- common.py: `Probe`, `predictions` and the helpers the analyses share;
- epoch.py: `analyze_epoch` (all of them for one epoch; of the projections PCA only unless
  asked), `project_epoch` (t-SNE or UMAP of one epoch, on demand) and `describe` (the CLI's
  text).

Not to be confused with worker/analyze.py, which reads recorded signatures from storage,
calls `analyze_epoch` and stores the results. Import from the package
(`from netlens.worker.signatures import analyze_epoch`); the names below are its interface.
"""

from netlens.worker.signatures.classes import N_EXAMPLES, class_signatures, group_means
from netlens.worker.signatures.clusters import KMEANS_N_INIT, cluster_layer, cluster_makeup
from netlens.worker.signatures.common import SILHOUETTE_SAMPLE, THREADS, Probe, predictions
from netlens.worker.signatures.epoch import Analysis, analyze_epoch, describe, project_epoch
from netlens.worker.signatures.flow import sankey_flow
from netlens.worker.signatures.inputs import compare_inputs
from netlens.worker.signatures.projections import (
    DEFAULT_METHODS,
    METHODS,
    MIN_FIT_INPUTS,
    ON_DEMAND_METHODS,
    TSNE_MAX_ITER,
    PcaBasis,
    fit_pca_basis,
    pca_fixed_basis,
    procrustes_align,
    project,
    warm_up,
)
from netlens.worker.signatures.separation import PROBE_FOLDS, separability, separability_by_layer
from netlens.worker.signatures.unseen import ood_report

__all__ = [
    "DEFAULT_METHODS",
    "KMEANS_N_INIT",
    "METHODS",
    "MIN_FIT_INPUTS",
    "N_EXAMPLES",
    "ON_DEMAND_METHODS",
    "PROBE_FOLDS",
    "SILHOUETTE_SAMPLE",
    "THREADS",
    "TSNE_MAX_ITER",
    "Analysis",
    "PcaBasis",
    "Probe",
    "analyze_epoch",
    "class_signatures",
    "cluster_layer",
    "cluster_makeup",
    "compare_inputs",
    "describe",
    "fit_pca_basis",
    "group_means",
    "ood_report",
    "pca_fixed_basis",
    "predictions",
    "procrustes_align",
    "project",
    "project_epoch",
    "sankey_flow",
    "separability",
    "separability_by_layer",
    "warm_up",
]
