"""Estimate a run's recorded bytes from its spec alone, before anything runs."""

from __future__ import annotations

import math

from netlens.storage.catalog import DATASETS, MODEL_KINDS, loss_for
from netlens.storage.spec import ExperimentSpec

FLOAT_BYTES = 4


def dataset_shape(spec: ExperimentSpec) -> tuple[int, int, int | None]:
    """(input features, trained classes, image side) implied by the spec's dataset (the
    catalog's; a guess for a file that decides them: the worker checks again with the real
    sizes once the data is loaded)."""
    features, classes, side = DATASETS[spec.dataset.name].shape()
    if spec.dataset.classes is not None:
        classes = len(spec.dataset.classes)
    if spec.model.kind == "sequential":  # its input shape and output layer say them
        features = math.prod(spec.model.input_shape)
        classes = spec.model.output_classes()
    return features, classes, side


def layer_units(
    spec: ExperimentSpec, n_in: int, n_classes: int, image_side: int | None
) -> list[tuple[int, int]]:
    """(parameter count, output units) of each recorded layer in forward order."""
    if spec.model.kind == "sequential":
        return [(p.params, p.units) for p in spec.model.plan() if p.name is not None]
    out = []
    if spec.model.kind == "cnn" and image_side:
        side, channels = image_side, 1
        for c in spec.model.conv_channels:
            out.append((9 * channels * c + c, 0))
            side, channels = side // 2, c
            out[-1] = (out[-1][0], side * side * c)
        n_in = side * side * channels
    for layer in spec.model.hidden:
        out.append((n_in * layer.units + layer.units, layer.units))
        n_in = layer.units
    n_out = loss_for(n_classes).output_units(n_classes)
    out.append((n_in * n_out + n_out, n_out))
    return out


def probe_inputs(spec: ExperimentSpec, n_classes: int) -> int:
    """Upper bound of probe inputs: probe_size (at most the inputs a synthetic set has) plus,
    per unseen class, one class's share."""
    size = spec.recording.probe_size
    info = DATASETS[spec.dataset.name]
    if info.is_2d:
        size = min(size, info.fixed_size or spec.dataset.n_samples)
    return size + len(spec.dataset.ood_classes) * max(1, size // max(1, n_classes))


GRID_FRAMES = 500  # the trainer records at most about this many grid frames by default
# ... and, by default, about this many bytes of grid tensors (grid/output and the hidden
# layers' maps grid/<layer>), but never fewer than MIN_GRID_FRAMES frames: a wide layer's
# maps would otherwise make the grid the bulk of a run, and its writes the bulk of its time
GRID_BYTES = 8 * 1024**2
MIN_GRID_FRAMES = 50


def auto_grid_every(epochs: int, every: int, frame_floats: int) -> int:
    """The default recording.grid_every: a multiple of `every` giving at most GRID_FRAMES
    frames of `frame_floats` floats each and about GRID_BYTES in all (at least MIN_GRID_FRAMES
    frames). Shared by the trainer and the size estimate, so that both count the same."""
    by_bytes = GRID_BYTES // (FLOAT_BYTES * max(1, frame_floats))
    frames = min(GRID_FRAMES, max(MIN_GRID_FRAMES, by_bytes))
    steps = epochs // every
    return every * max(1, -(-steps // frames))


def grid_frame_floats(points: int, hidden_units: int) -> int:
    """Floats of one grid frame: the output (one value per point) and every hidden unit."""
    return points * (1 + hidden_units)


def grid_frames(spec: ExperimentSpec, frame_floats: int) -> int:
    every = spec.recording.grid_every or auto_grid_every(
        spec.training.epochs, spec.recording.every, frame_floats
    )
    return recorded_epochs(spec.training.epochs, every)


def has_grid(spec: ExperimentSpec, n_in: int | None, n_classes: int | None) -> bool:
    """Whether the run records a decision-boundary grid: a 2-D dataset, or data stored with
    the run (arrays) of 2 features and 2 classes."""
    stored_plane = DATASETS[spec.dataset.name].stored and (n_in, n_classes) == (2, 2)
    return spec.is_2d or stored_plane


def recorded_epochs(epochs: int, every: int) -> int:
    """Epoch 0, every `every`-th epoch, and the last one."""
    return epochs // every + 1 + (1 if epochs % every else 0)


def estimate_recorded_bytes(
    spec: ExperimentSpec,
    n_in: int | None = None,
    n_classes: int | None = None,
    image_side: int | None = None,
    probe_count: int | None = None,
) -> int:
    """Bytes the run will record. 0 for a model the user's code defines (kind flax): the spec
    does not know it; nl.Recorder checks the size of what it records itself."""
    if not MODEL_KINDS[spec.model.kind].trainable:
        return 0
    features, classes, side = dataset_shape(spec)
    layers = layer_units(spec, n_in or features, n_classes or classes, image_side or side)
    probe = probe_inputs(spec, n_classes or classes) if probe_count is None else probe_count
    # signatures as float16 (recording.signature_dtype) take 2 bytes a value; a chunk that
    # would overflow float16 stays float32 (rare: activations beyond 65,504)
    signature_bytes = 2 if spec.recording.signature_dtype == "float16" else FLOAT_BYTES
    per_epoch = sum(p * FLOAT_BYTES + probe * u * signature_bytes for p, u in layers)
    n_rec = recorded_epochs(spec.training.epochs, spec.recording.every)
    total = per_epoch * n_rec
    if has_grid(spec, n_in or features, n_classes or classes) and spec.recording.grid_resolution:
        hidden = sum(units for _, units in layers[:-1])
        floats = grid_frame_floats(spec.recording.grid_resolution**2, hidden)
        total += grid_frames(spec, floats) * floats * FLOAT_BYTES
    return total
