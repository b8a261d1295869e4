"""Generated 2-D sets: xor, two-regions, and TensorFlow Playground's four classification sets."""

from __future__ import annotations

import math

import numpy as np

from netlens.worker.datasets.base import Source

PLAYGROUND_BOUNDS = (-6.0, 6.0, -6.0, 6.0)  # Playground's xDomain/yDomain
TWO_REGIONS_CENTRES = ((0.0, 0.0), (3.0, 3.0))
TWO_REGIONS_RADIUS = 2.0
_BINARY = {0: "0", 1: "1"}
# Playground draws -1 orange and +1 blue; NetLens colours classes itself, so the names say
# what a class is rather than a colour that the figures would contradict.
_COLOURS = {0: "negative", 1: "positive"}


def _source(x: np.ndarray, y: np.ndarray, bounds, names=None) -> Source:
    return Source(
        x=np.asarray(x, dtype=np.float32),
        y=np.asarray(y, dtype=np.int64),
        names=names or _COLOURS,
        grid_bounds=tuple(float(b) for b in bounds),
    )


def xor() -> Source:
    """The four XOR points in canonical order; never split."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    src = _source(x, [0, 1, 1, 0], (-0.5, 1.5, -0.5, 1.5), _BINARY)
    src.no_split = True
    return src


def two_regions_label(x: np.ndarray) -> np.ndarray:
    """1 where a point lies within distance 2 of (0, 0) or of (3, 3), else 0 (no noise)."""
    inside = np.zeros(len(x), dtype=bool)
    for cx, cy in TWO_REGIONS_CENTRES:
        inside |= np.hypot(x[:, 0] - cx, x[:, 1] - cy) <= TWO_REGIONS_RADIUS
    return inside.astype(np.int64)


def two_regions(n: int, noise: float, rng: np.random.Generator) -> Source:
    """n points uniform in [-5, 5]^2, labelled by two_regions_label, each flipped with p=noise."""
    x = rng.uniform(-5.0, 5.0, size=(n, 2))
    flip = rng.random(n) < noise
    y = two_regions_label(x) ^ flip
    return _source(x, y, (-5.0, 5.0, -5.0, 5.0), {0: "outside", 1: "inside"})


def _halves(n: int) -> tuple[int, int]:
    """Positive then negative counts: Playground makes ceil(n/2) of each; we keep n in total."""
    return n - n // 2, n // 2


def _polar(rng: np.random.Generator, r_lo: float, r_hi: float, k: int) -> np.ndarray:
    r = rng.uniform(r_lo, r_hi, k)
    angle = rng.uniform(0.0, 2 * math.pi, k)
    return np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)


def circle(n: int, noise: float, rng: np.random.Generator) -> Source:
    """Playground classifyCircleData: blue disc r < 2.5 inside an orange ring 3.5 <= r <= 5."""
    radius = 5.0
    n_pos, n_neg = _halves(n)
    x = np.concatenate(
        [_polar(rng, 0.0, radius * 0.5, n_pos), _polar(rng, radius * 0.7, radius, n_neg)]
    )
    jitter = rng.uniform(-radius, radius, size=(n, 2)) * noise
    y = np.hypot(*(x + jitter).T) < radius * 0.5  # label taken at the jittered point
    return _source(x, y, PLAYGROUND_BOUNDS)


def xor_quadrants(n: int, noise: float, rng: np.random.Generator) -> Source:
    """Playground classifyXORData: blue where x*y >= 0; points pushed 0.3 away from the axes."""
    x = rng.uniform(-5.0, 5.0, size=(n, 2))
    x += np.where(x > 0, 0.3, -0.3)
    jitter = rng.uniform(-5.0, 5.0, size=(n, 2)) * noise
    moved = x + jitter
    y = moved[:, 0] * moved[:, 1] >= 0
    return _source(x, y, PLAYGROUND_BOUNDS)


def gaussian(n: int, noise: float, rng: np.random.Generator) -> Source:
    """Playground classifyTwoGaussData: blue around (2, 2), orange around (-2, -2).

    The variance grows linearly with noise: 0.5 at noise 0 to 4 at noise 0.5.
    """
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5
    n_pos, n_neg = _halves(n)
    centres = np.concatenate([np.full((n_pos, 2), 2.0), np.full((n_neg, 2), -2.0)])
    x = centres + math.sqrt(variance) * rng.standard_normal((n, 2))
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    return _source(x, y, PLAYGROUND_BOUNDS)


def spiral(n: int, noise: float, rng: np.random.Generator) -> Source:
    """Playground classifySpiralData: two interleaved arms (blue at phase 0, orange at pi)."""
    half = n / 2
    parts = []
    for count, delta in zip(_halves(n), (0.0, math.pi), strict=True):
        i = np.arange(count)
        r = i / half * 5
        t = 1.75 * i / half * 2 * math.pi + delta
        arm = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        parts.append(arm + rng.uniform(-1.0, 1.0, size=(count, 2)) * noise)
    n_pos, n_neg = _halves(n)
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    return _source(np.concatenate(parts), y, PLAYGROUND_BOUNDS)


def generate(name: str, n: int, noise: float, rng: np.random.Generator) -> Source:
    """Dispatch on the dataset name (one of the generated 2-D sets)."""
    if name == "xor":
        return xor()
    makers = {
        "two-regions": two_regions,
        "circle": circle,
        "xor-quadrants": xor_quadrants,
        "gaussian": gaussian,
        "spiral": spiral,
    }
    return makers[name](n, noise, rng)


GENERATED = ("xor", "two-regions", "circle", "xor-quadrants", "gaussian", "spiral")
