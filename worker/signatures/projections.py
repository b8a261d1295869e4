"""3. Projections: every layer in 2-D by PCA, t-SNE or UMAP, seeded, and Procrustes-aligned to a
reference so that epochs' pictures do not flip or spin; a fixed PCA basis for animations.

umap-learn is imported lazily: its first fit in a process compiles with numba for 10-15 s
(`warm_up()` pays it once when a worker starts)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.manifold import TSNE

from netlens.worker.signatures.common import _distinct_rows, _matrix

METHODS = ("pca", "tsne", "umap")
# The default analysis of an epoch projects by PCA only (milliseconds); t-SNE and UMAP take
# seconds per layer (t-SNE ~3 s for 1,000 inputs on one thread): computed when asked for.
DEFAULT_METHODS = ("pca",)
ON_DEMAND_METHODS = ("tsne", "umap")
TSNE_MAX_ITER = 1000
MIN_FIT_INPUTS = 5  # t-SNE / UMAP need a few inputs; fewer fall back to PCA


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
    norm = float((a**2).sum())
    if not ok.any() or norm == 0 or not (b**2).sum():
        return emb.astype(np.float32)
    rotation, singular_sum = orthogonal_procrustes(a, b)
    return ((emb - mu_e) @ rotation * (singular_sum / norm) + mu_r).astype(np.float32)


def _fit_tsne(values: np.ndarray, seed: int) -> np.ndarray:
    perplexity = min(30.0, (len(values) - 1) / 3)
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=TSNE_MAX_ITER
    ).fit_transform(values)


def _fit_umap(values: np.ndarray, seed: int) -> np.ndarray:
    import umap  # lazy: importing costs ~2 s and the first fit ~10 s of numba compilation

    with warnings.catch_warnings():  # n_jobs / spectral-init-on-tiny-data notices
        warnings.simplefilter("ignore")
        model = umap.UMAP(
            n_components=2, n_neighbors=min(15, len(values) - 1), random_state=seed, n_jobs=1
        )
        return model.fit_transform(values)


_FITTERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "pca": lambda values, _seed: fit_pca_basis(values).apply(values),
    "tsne": _fit_tsne,
    "umap": _fit_umap,
}


def project(
    acts: np.ndarray, method: str, *, seed: int = 0, reference: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
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
