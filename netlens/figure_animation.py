"""`netlens figure RUN VIEW --epochs A:B:STEP -o out.gif|out.mp4`: a view drawn at many epochs
and written as an animated GIF or an MP4 video.

Which epochs (frame_epochs): for each of A, A+STEP, ... up to B, the nearest epoch the view
can draw in [A, B] (a recorded epoch; for the signatures page's views, an analysed one), each
once. The frames are held still (webapp/figures/animation.py: shared axis and colour ranges,
the epoch in each title), drawn in one browser page (netlens/figure_render.py) and encoded
with imageio (Pillow for GIF, imageio-ffmpeg's ffmpeg for MP4, H.264).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netlens.sdk.reading import Run

MAX_FRAMES = 500  # an --epochs range asking for more is refused (a GIF of 500 frames is ~50 MB)
ANIMATION_FORMATS = (".gif", ".mp4")
_RANGE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$")


def parse_epochs(text: str) -> tuple[int, int, int]:
    """'A:B:STEP' (or 'A:B', step 1) -> (A, B, STEP); ValueError naming --epochs and the
    limit that is broken."""
    match = _RANGE.match(str(text))
    if match is None:
        raise ValueError(
            f"--epochs: {text!r} is not A:B:STEP in whole epoch numbers (e.g. --epochs 0:200:5)"
        )
    first, last = int(match.group(1)), int(match.group(2))
    step = int(match.group(3)) if match.group(3) is not None else 1
    if first < 0:
        raise ValueError(f"--epochs: the first epoch must be 0 or more, got {first}")
    if last < first:
        raise ValueError(f"--epochs: the last epoch ({last}) is before the first ({first})")
    if step < 1:
        raise ValueError(f"--epochs: the step must be 1 or more, got {step}")
    count = (last - first) // step + 1
    if count > MAX_FRAMES:
        raise ValueError(
            f"--epochs: {first}:{last}:{step} asks for {count} frames; the limit is "
            f"{MAX_FRAMES} (a larger step, e.g. {first}:{last}:{-(-(last - first) // (MAX_FRAMES - 1))})"
        )
    return first, last, step


def frame_epochs(
    first: int, last: int, step: int, available: Sequence[int], what: str = "recorded"
) -> list[int]:
    """For each wanted epoch first, first+step, ... <= last, the nearest available epoch in
    [first, last] (ties: the earlier), each once, in order. ValueError when none is there."""
    inside = np.asarray(sorted(e for e in set(int(e) for e in available) if first <= e <= last))
    if not len(inside):
        shown = sorted(set(int(e) for e in available))
        where = f"{shown[0]} to {shown[-1]}" if shown else "none"
        raise ValueError(
            f"--epochs: no {what} epoch in {first}..{last} (the {what} epochs: {where})"
        )
    out: list[int] = []
    for wanted in range(first, last + 1, step):
        i = int(np.searchsorted(inside, wanted))
        candidates = [inside[j] for j in (i - 1, i) if 0 <= j < len(inside)]
        nearest = int(min(candidates, key=lambda e: (abs(e - wanted), e)))
        if nearest not in out:
            out.append(nearest)
    return out


class CachedRun(Run):
    """A local run whose reads are kept: drawing a view at 100 epochs reads its info, arrays,
    metric history and whole-history tensors once instead of 100 times (the run page's
    builders ask for them at every epoch). For one command over a run, not for a live view."""

    def __init__(self, run_id: int, database=None):
        super().__init__(run_id, database)
        self._kept: dict[Any, Any] = {}

    def _keep(self, key, read):
        if key not in self._kept:
            self._kept[key] = read()
        return self._kept[key]

    @property
    def info(self):
        return self._keep("info", lambda: Run.info.fget(self))

    @property
    def epochs(self):
        return self._keep("epochs", lambda: Run.epochs.fget(self))

    @property
    def tensor_names(self):
        return self._keep("names", lambda: Run.tensor_names.fget(self))

    def arrays(self):
        return self._keep("arrays", lambda: Run.arrays(self))

    def _metric_arrays(self):
        return self._keep("metrics", lambda: Run._metric_arrays(self))

    def _tensor_epochs(self, name):
        return self._keep(("epochs", name), lambda: Run._tensor_epochs(self, name))

    def _read_tensor(self, name, first, last):
        return self._keep(
            ("tensor", name, first, last), lambda: Run._read_tensor(self, name, first, last)
        )


def encode(frames: Sequence[bytes], path: Path, fps: float) -> Path:
    """PNG frames -> an animated GIF (looping) or an H.264 MP4 at `fps` frames a second."""
    import imageio.v3 as iio

    images = [iio.imread(io.BytesIO(frame), extension=".png") for frame in frames]
    images = [
        image[..., :3] if image.ndim == 3 and image.shape[-1] == 4 else image for image in images
    ]
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(images), extension=".gif", duration=1000 / fps, loop=0)
        return path
    import imageio.v2 as imageio

    with imageio.get_writer(
        path,
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=2,
        quality=8,
        ffmpeg_log_level="error",
    ) as writer:
        for image in images:
            writer.append_data(image)
    return path
