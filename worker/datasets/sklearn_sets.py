"""scikit-learn sets: make_moons, make_circles and the bundled 8x8 digits (no download)."""

from __future__ import annotations

import numpy as np

from netlens.worker.datasets.base import Source

PAD = 0.5  # grid bounds are the data range padded by this much on every side


def padded_bounds(x: np.ndarray, pad: float = PAD) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of 2-D points, widened by `pad`."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    return (float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad))


def moons(n: int, noise: float, seed: int) -> Source:
    """sklearn.datasets.make_moons(n, noise=noise, random_state=seed)."""
    from sklearn.datasets import make_moons  # local: keeps `import worker.datasets` light

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return Source(
        x=x.astype(np.float32),
        y=y.astype(np.int64),
        names={0: "0", 1: "1"},
        grid_bounds=padded_bounds(x),
    )


def sk_circles(n: int, noise: float, seed: int) -> Source:
    """sklearn.datasets.make_circles(n, noise=noise, factor=0.5, random_state=seed)."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    return Source(
        x=x.astype(np.float32),
        y=y.astype(np.int64),
        names={0: "outer", 1: "inner"},
        grid_bounds=padded_bounds(x),
    )


def digits() -> Source:
    """sklearn.datasets.load_digits: 1797 images 8x8, pixels 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    return Source(
        x=x,
        y=bunch.target.astype(np.int64),
        names={d: str(d) for d in range(10)},
        image_shape=(8, 8),
    )
