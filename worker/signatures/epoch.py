"""Analyses of one epoch's probe signatures: what the hidden layers do with the probe inputs.

A *signature* is the post-activation output of every hidden layer for one probe input. Given
one epoch's signatures (per layer an array (P, units)), the network output (P, out) and the
probe metadata (original labels `y`, `is_ood`, trained `classes` in output order), this module
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
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

METHODS = ("pca", "tsne", "umap")
SILHOUETTE_SAMPLE = 2000  # silhouette is O(P^2): above this many inputs, score a sample
KMEANS_N_INIT = 4
PROBE_FOLDS = 5
TSNE_MAX_ITER = 1000
N_EXAMPLES = 5  # typical / atypical inputs and selective units listed per class
MIN_FIT_INPUTS = 5  # t-SNE / UMAP need a few inputs; fewer fall back to PCA
THREADS = 1  # BLAS / OpenMP threads for the analyses (None: the libraries' defaults)


# -- probe metadata ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """Probe metadata, with every input's *group*: its row in the class-means arrays.

    Groups are the trained classes in output order, then each OOD class (sorted label)."""

    y: np.ndarray  # (P,) original labels
    is_ood: np.ndarray  # (P,) bool
    classes: np.ndarray  # (C,) trained classes' original labels, output order
    ood_classes: np.ndarray  # (G,) sorted labels of the OOD inputs
    group: np.ndarray  # (P,) group index of each input

    @classmethod
    def from_arrays(cls, y, is_ood, classes) -> Probe:
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        is_ood = np.asarray(is_ood, dtype=bool).reshape(-1)
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        if y.shape != is_ood.shape:
            raise ValueError(f"y {y.shape} and is_ood {is_ood.shape} differ")
        unknown = set(y[~is_ood].tolist()) - set(classes.tolist())
        if unknown:
            raise ValueError(f"in-distribution labels {sorted(unknown)} are not in classes")
        ood_classes = np.unique(y[is_ood])
        index = {int(c): i for i, c in enumerate(classes)}
        index_ood = {int(c): len(classes) + i for i, c in enumerate(ood_classes)}
        group = np.array([(index_ood if o else index)[int(v)] for v, o in zip(y, is_ood,
                                                                              strict=True)],
                         dtype=np.int64)
        return cls(y, is_ood, classes, ood_classes, group)

    @property
    def size(self) -> int:
        return len(self.y)

    @property
    def in_dist(self) -> np.ndarray:
        return ~self.is_ood

    @property
    def n_groups(self) -> int:
        return len(self.classes) + len(self.ood_classes)

    def group_label(self, g: int) -> int:
        c = len(self.classes)
        return int(self.classes[g] if g < c else self.ood_classes[g - c])

    def groups(self) -> list[dict]:
        """[{"label", "ood", "count"}] in group order (the rows of "class_means/<layer>")."""
        counts = np.bincount(self.group, minlength=self.n_groups)
        return [{"label": self.group_label(g), "ood": g >= len(self.classes),
                 "count": int(counts[g])} for g in range(self.n_groups)]


@dataclass
class Analysis:
    """One epoch's analyses: `summary` is JSON-serialisable, `arrays` numpy arrays by name."""

    summary: dict
    arrays: dict[str, np.ndarray]


# -- small helpers ----------------------------------------------------------------------------
def _num(value) -> float | None:
    """A plain float for JSON, or None for missing / NaN / infinite values."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _matrix(values: np.ndarray, n: int | None = None) -> np.ndarray:
    """(P, features) float64 view of a layer's signatures (conv layers arrive flattened)."""
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    if n is not None and len(values) != n:
        raise ValueError(f"expected {n} probe rows, got {len(values)}")
    return values


def _distinct_rows(values: np.ndarray) -> int:
    return len(np.unique(values, axis=0)) if len(values) else 0


def _silhouette(values: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    """Silhouette score, on a seeded sample above SILHOUETTE_SAMPLE inputs; None when it is
    undefined (fewer than 2 labels, or as many labels as inputs)."""
    if len(values) > SILHOUETTE_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(values), SILHOUETTE_SAMPLE, replace=False)
        values, labels = values[rows], labels[rows]
    if not 2 <= len(np.unique(labels)) <= len(values) - 1:
        return None
    return _num(silhouette_score(values, labels))


def _counts(labels: np.ndarray, keys: np.ndarray) -> dict[str, int]:
    """{str(label): count} for every key (zeros included), JSON-friendly."""
    tally = Counter(labels.tolist())
    return {str(int(k)): int(tally.get(int(k), 0)) for k in keys}


def _threads(limit: int | None) -> AbstractContextManager:
    """Limit BLAS and OpenMP threads inside the block (None: leave the libraries' defaults)."""
    return nullcontext() if limit is None else threadpool_limits(limit)


class _Timer:
    """Accumulates wall seconds per part: `with timer("clusters"): ...`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


# -- predictions ------------------------------------------------------------------------------
def predictions(output: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """Predicted original label (P,) and confidence = probability of the predicted class (P,).

    out == 1: the sigmoid probability of classes[1]; otherwise a softmax over `classes`."""
    classes = np.asarray(classes, dtype=np.int64)
    out = np.asarray(output, dtype=np.float64).reshape(len(output), -1)
    binary = out.shape[1] == 1 and len(classes) == 2
    if not binary and (len(classes) < 2 or out.shape[1] != len(classes)):
        raise ValueError(f"output with {out.shape[1]} columns for {len(classes)} classes")
    if binary:
        p = out[:, 0]
        second = p > 0.5
        return classes[second.astype(int)], np.where(second, p, 1.0 - p)
    best = out.argmax(axis=1)
    return classes[best], out[np.arange(len(out)), best]


# -- 1. clusters ------------------------------------------------------------------------------
def cluster_makeup(labels: np.ndarray, probe: Probe) -> list[dict]:
    """Per cluster id 0..K-1: size, counts per trained class and per OOD class (separately),
    the dominant trained class (None when the cluster holds OOD inputs only) and its share of
    the cluster's in-distribution inputs."""
    makeup = []
    for k in range(int(labels.max()) + 1 if len(labels) else 0):
        members = labels == k
        trained = _counts(probe.y[members & probe.in_dist], probe.classes)
        ood = _counts(probe.y[members & probe.is_ood], probe.ood_classes)
        n_in = sum(trained.values())
        dominant = max(trained, key=trained.get) if n_in else None
        makeup.append({"cluster": k, "size": int(members.sum()), "trained": trained, "ood": ood,
                       "dominant_class": None if dominant is None else int(dominant),
                       "purity": _num(trained[dominant] / n_in) if n_in else None})
    return makeup


def _order_clusters(labels: np.ndarray, probe: Probe) -> np.ndarray:
    """Relabel clusters by (dominant trained class in output order, OOD-only last; larger
    first), so ids read in class order and Sankey links cross less."""
    makeup = cluster_makeup(labels, probe)
    position = {int(c): i for i, c in enumerate(probe.classes)}

    def key(m: dict) -> tuple[int, int]:
        dominant = m["dominant_class"]
        return (len(position) if dominant is None else position[dominant], -m["size"])

    order = [m["cluster"] for m in sorted(makeup, key=key)]
    new_id = np.empty(len(order), dtype=np.int64)
    new_id[order] = np.arange(len(order))
    return new_id[labels]


def _kmeans(values: np.ndarray, k: int, seed: int) -> np.ndarray:
    with warnings.catch_warnings():  # "fewer distinct clusters than k" is handled by callers
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed)
        return model.fit_predict(values)


def _why_one_cluster(distinct: int, n: int, k_lo: int, k_hi: int) -> str:
    if distinct <= 1:
        return "all probe signatures are identical (dead or saturated units)"
    if k_hi < k_lo:
        return f"too few distinct signatures ({distinct}) or inputs ({n}) for K >= {k_lo}"
    return "K-means found fewer than 2 usable clusters"


def cluster_layer(acts: np.ndarray, probe: Probe, *, k_range: tuple[int, int] = (2, 10),
                  seed: int = 0, standardize: bool = False) -> tuple[dict, np.ndarray]:
    """K-means on one layer's signatures of every probe input (OOD included), K chosen by the
    best silhouette over k_range (capped at P-1 and at the number of distinct signatures).

    Returns (summary, labels (P,) int64). summary: {"k", "silhouette" (of the chosen K, None
    when undefined), "k_tried" [K...], "silhouette_by_k" [score or None per K], "reason" (why K
    is 1, else None), "clusters": cluster_makeup(...)}. Degenerate layers (e.g. all ReLUs dead:
    every signature identical) give K=1 and a reason instead of raising."""
    values = _matrix(acts, probe.size)
    if standardize:
        values = StandardScaler().fit_transform(values)
    distinct = _distinct_rows(values)
    k_lo, k_hi = max(2, k_range[0]), min(k_range[1], probe.size - 1, distinct)
    result = {"k": 1, "silhouette": None, "k_tried": [], "silhouette_by_k": [], "reason": None}
    best: tuple[float, np.ndarray] | None = None
    for k in range(k_lo, k_hi + 1):
        labels = _kmeans(values, k, seed)
        score = _silhouette(values, labels, seed)
        result["k_tried"].append(k)
        result["silhouette_by_k"].append(score)
        if score is not None and (best is None or score > best[0]):
            best = (score, labels)
    if best is None:
        result["reason"] = _why_one_cluster(distinct, probe.size, k_lo, k_hi)
        labels = np.zeros(probe.size, dtype=np.int64)
    else:
        labels = _order_clusters(best[1].astype(np.int64), probe)
        result["silhouette"] = best[0]
        result["k"] = int(labels.max()) + 1
    result["clusters"] = cluster_makeup(labels, probe)
    return result, labels


# -- 2. flow (Sankey) -------------------------------------------------------------------------
def sankey_flow(cluster_labels: Mapping[str, np.ndarray], predicted: np.ndarray,
                probe: Probe) -> dict:
    """Sankey data: true class -> cluster of each layer (in order) -> predicted class.

    Returns {"stages": ["true class", <layer>..., "predicted class"], "nodes": [{"id",
    "stage", "kind" ("true_class" | "true_ood" | "cluster" | "predicted"), "label" (display
    text), "class" (original label or None), "layer" (or None), "cluster" (or None), "count",
    "n_ood"}], "links": [{"source", "target" (node ids), "stage" (of the source), "value",
    "n_ood", "indices" (sorted probe indices on the link)}]}. Every trained class has a node at
    both ends (count 0 allowed); each stage's counts and links sum to P."""
    c = len(probe.classes)
    position = {int(v): i for i, v in enumerate(probe.classes)}
    stages: list[tuple[str, np.ndarray, Callable[[int], dict]]] = [
        ("true class", probe.group, lambda g: {
            "kind": "true_ood" if g >= c else "true_class", "class": probe.group_label(g),
            "label": f"{probe.group_label(g)}" + (" (OOD)" if g >= c else ""),
            "layer": None, "cluster": None})]
    for name, labels in cluster_labels.items():
        stages.append((name, np.asarray(labels, dtype=np.int64), lambda k, name=name: {
            "kind": "cluster", "class": None, "label": f"{name} c{k}", "layer": name,
            "cluster": int(k)}))
    stages.append(("predicted class", np.array([position[int(p)] for p in predicted], np.int64),
                   lambda i: {"kind": "predicted", "class": int(probe.classes[i]),
                              "label": f"predicted {int(probe.classes[i])}", "layer": None,
                              "cluster": None}))
    nodes: list[dict] = []
    node_of: list[np.ndarray] = []  # per stage: node id of every probe input
    for s, (_, values, describe_node) in enumerate(stages):
        present = set(np.unique(values).tolist())
        if s in (0, len(stages) - 1):
            present |= set(range(c))  # every trained class at both ends, even if absent
        ids = np.full(int(max(present)) + 1, -1, dtype=np.int64)
        for v in sorted(present):
            members = values == v
            ids[v] = len(nodes)
            nodes.append({"id": len(nodes), "stage": s, **describe_node(v),
                          "count": int(members.sum()), "n_ood": int(probe.is_ood[members].sum())})
        node_of.append(ids[values])
    links = []
    for s in range(len(stages) - 1):
        pairs = np.stack([node_of[s], node_of[s + 1]], axis=1)
        for source, target in np.unique(pairs, axis=0):
            indices = np.flatnonzero((node_of[s] == source) & (node_of[s + 1] == target))
            links.append({"source": int(source), "target": int(target), "stage": s,
                          "value": len(indices), "n_ood": int(probe.is_ood[indices].sum()),
                          "indices": indices.tolist()})
    return {"stages": [name for name, _, _ in stages], "nodes": nodes, "links": links}


# -- 3. projections ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PcaBasis:
    """A fixed linear map from a layer's units to 2 coordinates (fit once, apply to any epoch).

    Layers with <= 2 units get the identity (padded with a zero column for 1 unit)."""

    mean: np.ndarray  # (U,)
    components: np.ndarray  # (U, 2)

    def apply(self, acts: np.ndarray) -> np.ndarray:
        """(P, U) signatures -> (P, 2) float32 points."""
        return ((_matrix(acts) - self.mean) @ self.components).astype(np.float32)


def fit_pca_basis(acts: np.ndarray) -> PcaBasis:
    """The first two principal axes of (P, U) signatures, each signed so that its largest
    |loading| is positive (deterministic); rank < 2 leaves a zero axis."""
    values = _matrix(acts)
    units = values.shape[1]
    if units <= 2:
        return PcaBasis(np.zeros(units), np.eye(units, 2))
    mean = values.mean(axis=0) if len(values) else np.zeros(units)
    components = np.zeros((units, 2))
    if len(values) > 1:
        _, s, vt = np.linalg.svd(values - mean, full_matrices=False)
        k = int(min(2, (s > s[0] * 1e-12).sum() if s[0] > 0 else 0))
        components[:, :k] = vt[:k].T
    signs = np.sign(components[np.abs(components).argmax(axis=0), [0, 1]])
    return PcaBasis(mean, components * np.where(signs == 0, 1.0, signs))


def pca_fixed_basis(epochs: Sequence[np.ndarray], basis_epoch: int = -1) -> np.ndarray:
    """(E, P, 2) float32: every epoch's signatures of one layer projected on the PCA basis
    fitted once on epochs[basis_epoch] (by default the last), so axes mean the same thing in
    every frame of an animation."""
    basis = fit_pca_basis(epochs[basis_epoch])
    return np.stack([basis.apply(acts) for acts in epochs])


def procrustes_align(embedding: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`embedding` (P, 2) moved onto `reference` (P, 2) by the similarity transform (rotation
    or reflection, uniform scale, translation) with the least squared error: orthogonal
    Procrustes. Keeps epochs' pictures from flipping or spinning. Rows that are not finite in
    either are ignored for the fit; a collapsed embedding or reference is left as it is."""
    emb = np.asarray(embedding, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if emb.shape != ref.shape:
        raise ValueError(f"embedding {emb.shape} and reference {ref.shape} differ")
    ok = np.isfinite(emb).all(axis=1) & np.isfinite(ref).all(axis=1)
    mu_e, mu_r = emb[ok].mean(axis=0), ref[ok].mean(axis=0)
    a, b = emb[ok] - mu_e, ref[ok] - mu_r
    norm = float((a ** 2).sum())
    if not ok.any() or norm == 0 or not (b ** 2).sum():
        return emb.astype(np.float32)
    rotation, singular_sum = orthogonal_procrustes(a, b)
    return ((emb - mu_e) @ rotation * (singular_sum / norm) + mu_r).astype(np.float32)


def _fit_tsne(values: np.ndarray, seed: int) -> np.ndarray:
    perplexity = min(30.0, (len(values) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                max_iter=TSNE_MAX_ITER).fit_transform(values)


def _fit_umap(values: np.ndarray, seed: int) -> np.ndarray:
    import umap  # lazy: importing costs ~2 s and the first fit ~10 s of numba compilation

    with warnings.catch_warnings():  # n_jobs / spectral-init-on-tiny-data notices
        warnings.simplefilter("ignore")
        model = umap.UMAP(n_components=2, n_neighbors=min(15, len(values) - 1),
                          random_state=seed, n_jobs=1)
        return model.fit_transform(values)


_FITTERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "pca": lambda values, _seed: fit_pca_basis(values).apply(values),
    "tsne": _fit_tsne, "umap": _fit_umap}


def project(acts: np.ndarray, method: str, *, seed: int = 0,
            reference: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """One layer's signatures (P, U) in 2-D by `method` ("pca", "tsne" or "umap"), seeded.

    Returns (points (P, 2) float32, mode): mode "raw" (U <= 2: the units themselves, no
    fitting, never aligned), "constant" (every signature identical: zeros), "pca" (t-SNE /
    UMAP asked for fewer than MIN_FIT_INPUTS inputs or distinct signatures) or "fitted". With a
    `reference` (P, 2), e.g. the same layer's projection at the last epoch, fitted points are
    Procrustes-aligned to it."""
    if method not in _FITTERS:
        raise ValueError(f"unknown projection method {method!r}; expected one of {METHODS}")
    values = _matrix(acts)
    if values.shape[1] <= 2:
        return fit_pca_basis(values).apply(values), "raw"
    distinct = _distinct_rows(values)
    if distinct <= 1:
        return np.zeros((len(values), 2), np.float32), "constant"
    mode = "fitted"
    if method != "pca" and min(len(values), distinct) < MIN_FIT_INPUTS:
        method, mode = "pca", "pca"
    points = np.asarray(_FITTERS[method](values, seed), dtype=np.float32)
    return (points if reference is None else procrustes_align(points, reference)), mode


def warm_up() -> None:
    """Import umap-learn and fit a tiny UMAP once, so numba compiles now (10-15 s) and not in
    the first real analysis. Call it when a worker starts."""
    _fit_umap(np.random.default_rng(0).random((32, 4)), 0)


# -- 4. class signatures ----------------------------------------------------------------------
def group_means(acts: np.ndarray, probe: Probe) -> np.ndarray:
    """(n_groups, U) mean signature per group (trained classes from in-distribution inputs
    only, then each OOD class); NaN rows for empty groups."""
    values = _matrix(acts, probe.size)
    sums = np.zeros((probe.n_groups, values.shape[1]))
    np.add.at(sums, probe.group, values)
    counts = np.bincount(probe.group, minlength=probe.n_groups)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _own_and_nearest_other(values: np.ndarray, centroids: np.ndarray,
                           probe: Probe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every input: distance to its own trained-class centroid (NaN for OOD inputs), to
    the nearest *other* present trained centroid (nearest of all for OOD inputs; inf if none)
    and that centroid's class index (-1 if none)."""
    distances = cdist(values, np.nan_to_num(centroids))  # (P, C)
    distances[:, np.isnan(centroids).any(axis=1)] = np.inf  # absent classes
    own = np.full(probe.size, np.nan)
    ind = np.flatnonzero(probe.in_dist)
    own[ind] = distances[ind, probe.group[ind]]
    others = distances.copy()
    others[ind, probe.group[ind]] = np.inf
    nearest = others.argmin(axis=1) if others.shape[1] else np.full(probe.size, -1)
    nearest_distance = others[np.arange(probe.size), nearest] if others.shape[1] else \
        np.full(probe.size, np.inf)
    return own, nearest_distance, np.where(np.isfinite(nearest_distance), nearest, -1)


def class_signatures(acts: np.ndarray, probe: Probe, *,
                     n_examples: int = N_EXAMPLES) -> tuple[dict, np.ndarray, np.ndarray]:
    """Class means, distances between trained-class centroids, selective units, and each
    trained class's most typical and most atypical inputs.

    Score of an in-distribution input = margin = distance to its own class centroid minus
    distance to the nearest other class centroid: very negative = typical, positive = looks
    like another class (e.g. the 7s that look like 1s). With a single trained class the score
    is the distance to its centroid. OOD inputs get no score and never move a centroid.

    Returns (summary, means (n_groups, U) float32 in the row order of Probe.groups(), margins
    (P,) float32, NaN for OOD inputs). summary: {"score": "margin" | "distance",
    "centroid_distances": C x C list (None where a class is absent), "classes": {str(label):
    {"typical": [{"index", "score"}], "atypical": [{"index", "score", "nearest_class"}],
    "selective_units": [{"unit", "mean", "others_mean"}]}}}."""
    values = _matrix(acts, probe.size)
    means = group_means(values, probe)
    c = len(probe.classes)
    centroids = means[:c]
    own, other, nearest = _own_and_nearest_other(values, centroids, probe)
    single = not np.isfinite(other[probe.in_dist]).any()
    score = own if single else own - other
    between = cdist(np.nan_to_num(centroids), np.nan_to_num(centroids))
    absent = np.isnan(centroids).any(axis=1)
    classes = {}
    for g, label in enumerate(probe.classes):
        members = np.flatnonzero(probe.group == g)
        order = members[np.argsort(score[members], kind="stable")]
        rest = np.delete(centroids, g, axis=0)
        rest_mean = np.nanmean(rest, axis=0) if (~np.isnan(rest).all(axis=1)).any() else \
            np.zeros(values.shape[1])
        lift = np.nan_to_num(centroids[g] - rest_mean, nan=-np.inf)
        units = np.argsort(-lift, kind="stable")[:n_examples] if members.size else []
        classes[str(int(label))] = {
            "typical": [{"index": int(i), "score": _num(score[i])} for i in order[:n_examples]],
            "atypical": [{"index": int(i), "score": _num(score[i]),
                          "nearest_class": None if nearest[i] < 0
                          else int(probe.classes[nearest[i]])}
                         for i in order[::-1][:n_examples]],
            "selective_units": [{"unit": int(u), "mean": _num(centroids[g, u]),
                                 "others_mean": _num(rest_mean[u])} for u in units]}
    summary = {"score": "distance" if single else "margin",
               "centroid_distances": [[None if absent[i] or absent[j] else _num(between[i, j])
                                       for j in range(c)] for i in range(c)],
               "classes": classes}
    return summary, means.astype(np.float32), score.astype(np.float32)


# -- 5. separability --------------------------------------------------------------------------
def separability(features: np.ndarray, probe: Probe, *, seed: int = 0) -> dict:
    """How well one layer separates the trained classes, on in-distribution inputs only.

    {"silhouette": silhouette of the true classes (None if undefined), "probe_accuracy":
    stratified k-fold cross-validated accuracy of a standardised logistic regression (None
    with fewer than 2 classes of 2 inputs), "folds", "chance": the majority class's share}."""
    ind = probe.in_dist
    values, labels = _matrix(features, probe.size)[ind], probe.y[ind]
    counts = np.unique(labels, return_counts=True)[1]
    folds = int(min(PROBE_FOLDS, counts.min())) if len(counts) >= 2 else 0
    accuracy = None
    if folds >= 2:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # lbfgs convergence notices on separable data
            warnings.simplefilter("ignore")
            accuracy = _num(cross_val_score(model, values, labels, cv=split).mean())
    return {"silhouette": _silhouette(values, labels, seed), "probe_accuracy": accuracy,
            "folds": folds, "chance": _num(counts.max() / counts.sum()) if len(counts) else None}


def separability_by_layer(layers: Mapping[str, np.ndarray], output: np.ndarray | None = None,
                          *, y, is_ood, classes, x: np.ndarray | None = None,
                          seed: int = 0, threads: int | None = THREADS) -> list[dict]:
    """Separability of the trained classes at the input (if `x` is given), every hidden layer
    (in order) and the output (if given): [{"layer", "units", **separability(...)}]. Cheap
    (tens of ms per layer for 1,000 x 128): meant to be called for many epochs."""
    probe = Probe.from_arrays(y, is_ood, classes)
    named = ([("input", x)] if x is not None else []) + list(layers.items()) + \
        ([("output", output)] if output is not None else [])
    with _threads(threads):
        return [{"layer": name, "units": int(_matrix(values).shape[1]),
                 **separability(values, probe, seed=seed)} for name, values in named]


# -- 6. out-of-distribution report ------------------------------------------------------------
def ood_report(layers: Mapping[str, np.ndarray], cluster_labels: Mapping[str, np.ndarray],
               predicted: np.ndarray, confidence: np.ndarray, probe: Probe) -> list[dict]:
    """Where the inputs of each never-trained class land.

    Per OOD class: {"label", "count", "predicted": {str(trained label): count}, "confidence":
    mean probability of the predicted class, "layers": {layer: {"clusters": [{"cluster",
    "count", "dominant_class" (trained class dominating that cluster, None if it holds OOD
    inputs only), "purity"}], "nearest_class": {str(label): count} (nearest trained centroid),
    "distance_to_nearest": mean distance to the nearest trained centroid, "in_dist_distance":
    in-distribution inputs' mean distance to their own centroid, "distance_ratio": the first
    over the second}}}. Empty list when the probe has no OOD inputs."""
    per_layer = {}
    for name, acts in layers.items():
        values = _matrix(acts, probe.size)
        own, nearest_distance, nearest = _own_and_nearest_other(
            values, group_means(values, probe)[:len(probe.classes)], probe)
        labels = np.asarray(cluster_labels[name])
        per_layer[name] = (labels, cluster_makeup(labels, probe), nearest_distance, nearest,
                           _num(np.nanmean(own)) if probe.in_dist.any() else None)
    report = []
    for label in probe.ood_classes:
        members = probe.is_ood & (probe.y == label)
        entry = {"label": int(label), "count": int(members.sum()),
                 "predicted": _counts(predicted[members], probe.classes),
                 "confidence": _num(confidence[members].mean()), "layers": {}}
        for name, (labels, makeup, nearest_distance, nearest, in_dist) in per_layer.items():
            found = nearest[members]
            far = _num(nearest_distance[members].mean()) if (found >= 0).all() else None
            clusters = Counter(labels[members].tolist())
            entry["layers"][name] = {
                "clusters": [{"cluster": int(k), "count": int(n),
                              "dominant_class": makeup[k]["dominant_class"],
                              "purity": makeup[k]["purity"]} for k, n in clusters.most_common()],
                "nearest_class": _counts(probe.classes[found[found >= 0]], probe.classes),
                "distance_to_nearest": far, "in_dist_distance": in_dist,
                "distance_ratio": _num(far / in_dist) if far is not None and in_dist else None}
        report.append(entry)
    return report


# -- 7. compare two inputs --------------------------------------------------------------------
def compare_inputs(layers: Mapping[str, np.ndarray], a: int, b: int) -> list[dict]:
    """Probe inputs a and b side by side, layer by layer: [{"layer", "a": [...], "b": [...],
    "distance" (Euclidean), "cosine" (None when either signature is all zeros)}]."""
    rows = []
    for name, acts in layers.items():
        values = _matrix(acts)
        va, vb = values[a], values[b]
        norms = float(np.linalg.norm(va) * np.linalg.norm(vb))
        rows.append({"layer": name, "a": [_num(v) for v in va], "b": [_num(v) for v in vb],
                     "distance": _num(np.linalg.norm(va - vb)),
                     "cosine": _num(va @ vb / norms) if norms > 0 else None})
    return rows


# -- 8. everything for one epoch --------------------------------------------------------------
def analyze_epoch(layers: Mapping[str, np.ndarray], output: np.ndarray, *, y, is_ood, classes,
                  x: np.ndarray | None = None, methods: Sequence[str] = METHODS,
                  k_range: tuple[int, int] = (2, 10), seed: int = 0,
                  reference: Mapping[str, np.ndarray] | None = None,
                  threads: int | None = THREADS) -> Analysis:
    """Every analysis of one epoch. `layers`: hidden layers only, in order, each (P, units);
    `output` (P, out); `reference`: a previous Analysis's arrays, whose
    "projection/<method>/<layer>" the new projections are Procrustes-aligned to; `threads`:
    BLAS / OpenMP threads (see the module's docstring).

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
        "n_probe": probe.size, "n_ood": int(probe.is_ood.sum()), "layers": list(layers),
        "units": {n: int(v.shape[1]) for n, v in layers.items()},
        "classes": [int(c) for c in probe.classes], "groups": probe.groups(),
        "accuracy": _num(correct.mean()) if correct.size else None,
        "clusters": {}, "projections": {}, "class_signatures": {}}
    arrays: dict[str, np.ndarray] = {"predicted": predicted.astype(np.int64),
                                     "confidence": confidence.astype(np.float32)}
    labels: dict[str, np.ndarray] = {}
    with _threads(threads):
        for name, values in layers.items():
            with timer("clusters"):
                summary["clusters"][name], labels[name] = cluster_layer(
                    values, probe, k_range=k_range, seed=seed)
            arrays[f"clusters/{name}"] = labels[name]
            with timer("class_signatures"):
                summary["class_signatures"][name], means, margin = class_signatures(values, probe)
            arrays[f"class_means/{name}"], arrays[f"margin/{name}"] = means, margin
        with timer("flow"):
            summary["flow"] = sankey_flow(labels, predicted, probe)
        for method in methods:
            summary["projections"][method] = {}
            for name, values in layers.items():
                key = f"projection/{method}/{name}"
                ref = None if reference is None else reference.get(key)
                with timer(f"projection/{method}"):
                    arrays[key], mode = project(values, method, seed=seed, reference=ref)
                summary["projections"][method][name] = {
                    "mode": mode, "aligned": ref is not None and mode not in ("raw", "constant")}
        with timer("separability"):
            summary["separability"] = separability_by_layer(
                layers, output, y=probe.y, is_ood=probe.is_ood, classes=probe.classes, x=x,
                seed=seed, threads=threads)
        with timer("ood"):
            summary["ood"] = ood_report(layers, labels, predicted, confidence, probe)
    summary["timings"] = {**timer.as_dict(), "total": round(time.perf_counter() - start, 4)}
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
    lines = [f"probe: {summary['n_probe']} inputs (trained classes: {trained}"
             + (f"; OOD: {ood}" if ood else "") + f"); network accuracy "
             f"{_fmt(summary['accuracy'], 3)}", "",
             f"{'layer':<16} {'units':>6} {'K':>3} {'cluster sil.':>12} {'class sil.':>10} "
             f"{'linear probe':>12}"]
    for row in summary["separability"]:
        cl = summary["clusters"].get(row["layer"])
        k = "-" if cl is None else str(cl["k"])
        lines.append(f"{row['layer']:<16} {row['units']:>6} {k:>3} "
                     f"{_fmt(None if cl is None else cl['silhouette']):>12} "
                     f"{_fmt(row['silhouette']):>10} {_fmt(row['probe_accuracy']):>12}")
    notes = [f"  {name}: K=1, {cl['reason']}" for name, cl in summary["clusters"].items()
             if cl["reason"]]
    lines += notes
    for entry in summary["ood"]:
        lines += ["", f"OOD class {entry['label']} ({entry['count']} inputs): predicted "
                      f"{_tally(entry['predicted'])}, mean confidence "
                      f"{_fmt(entry['confidence'])}"]
        for name in summary["layers"]:
            at = entry["layers"][name]
            where = ", ".join(
                f"c{c['cluster']} x{c['count']} ("
                + ("OOD only" if c["dominant_class"] is None else f"mostly {c['dominant_class']}")
                + ")" for c in at["clusters"])
            lines.append(f"  {name}: {where}; nearest class {_tally(at['nearest_class'])}; "
                         f"distance {_fmt(at['distance_to_nearest'])} vs in-distribution "
                         f"{_fmt(at['in_dist_distance'])} (ratio {_fmt(at['distance_ratio'])})")
    return "\n".join(lines)
