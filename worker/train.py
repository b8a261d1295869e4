"""The training loop: whole chunks of epochs in one jitted call; knows nothing of SQL or Celery.

Each call trains up to `steps` recorded steps of `every` epochs each (dynamic trip counts
inside `lax.fori_loop`, so one compilation serves every chunk size), and returns, stacked,
what each recorded epoch needs: parameters, metrics, per-layer gradient norms, the probe's
post-activation outputs and the decision-boundary grid. The caller gets one callback per
call (`on_chunk`), which is how progress, recording and cancellation reach the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from netlens.storage.catalog import DEAD_ABS, SATURATED_SHARE, SATURATION
from netlens.storage.sizing import auto_grid_every, grid_frame_floats
from netlens.storage.spec import ExperimentSpec
from netlens.worker.datasets import Dataset, grid_points
from netlens.worker.models import LayerInfo, build_network, has_dropout, make_forward
from netlens.worker.optim import make_optimizer

# A chunk of epochs should take about this long, so that progress, cancellation and the
# writer stay responsive while tiny networks still run many epochs per call.
CHUNK_SECONDS = 0.05
MAX_CHUNK_STEPS = 512
MAX_CHUNK_BYTES = 32 * 1024**2
EVAL_BATCH = 2048  # inputs per step of the epoch-0 evaluation
LOWRES_EPOCHS = 1000


class StopTraining(Exception):
    """Raised by a callback to stop after the current chunk (e.g. the run was cancelled)."""


class Diverged(Exception):
    def __init__(self, epoch: int, metric: str):
        super().__init__(f"training diverged at epoch {epoch}: {metric} became NaN or infinite")
        self.epoch = epoch


@dataclass
class TrainState:
    """Everything needed to continue a run exactly: RNG keys derive from (seed, epoch)."""

    epoch: int
    params: Any
    opt_state: Any


@dataclass
class Chunk:
    """Consecutive recorded epochs, host copies. Tensor names follow the export format."""

    epochs: list[int]
    metrics: list[dict[str, float]]
    tensors: dict[str, np.ndarray]
    sparse_epochs: dict[str, list[int]] = field(default_factory=dict)
    state: TrainState | None = None  # state after the chunk's last epoch
    times: list[float] | None = None  # when each epoch was computed (Unix seconds)


def epoch_times(started: float, ended: float, plan: list[int]) -> list[float]:
    """When each recorded epoch of a chunk ended (Unix seconds): a chunk's epochs run in one
    device call, so each gets its share of the call's time by the epochs trained up to it."""
    done = np.cumsum(plan, dtype=float)
    return (started + (ended - started) * done / done[-1]).tolist()


def _loss_and_accuracy(logits: jax.Array, y: jax.Array, binary: bool):
    """Per-example loss and correctness: storage.catalog.LOSSES, sigmoid_binary_cross_entropy
    (binary) or softmax_cross_entropy."""
    if binary:
        z = logits[:, 0]
        return optax.sigmoid_binary_cross_entropy(z, y.astype(z.dtype)), (z > 0) == (y == 1)
    return (optax.softmax_cross_entropy_with_integer_labels(logits, y), jnp.argmax(logits, -1) == y)


NORM_FLOATS = 4 * 1024**2  # at most this many squared gradient sums held per epoch
# A gradient tensor this large gets its sum of squares from a reduction of its own (one row
# holding the total) instead of being packed: packing copies it, and for wide layers the copy
# costs more than the kernel launch it saves (2 x 1024 units at batch 1: 1.1 against 0.6 ms a
# step). The core MLP's largest tensor (784 x 128) stays packed.
OWN_ROW_FLOATS = 256 * 1024


def _own_row(size: int) -> bool:
    return size >= OWN_ROW_FLOATS


def norm_rows_layout(params: dict, steps: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """How `step_figures` packs a gradient: the row width and each layer's rows [a, b).

    Rows are 8 floats wide (256 from 4,096 parameters on: wider rows measured 1-2 % faster
    than 64 on the core MLP, 16 was 10 % slower), doubled until an epoch's `steps`
    rows of sums fit in NORM_FLOATS; each tensor starts a new row."""
    sizes = {k: [int(np.prod(v.shape)) for v in jax.tree.leaves(p)] for k, p in params.items()}
    width = 8 if sum(map(sum, sizes.values())) < 4096 else 256

    def tensor_rows(s: int, w: int) -> int:
        return 1 if _own_row(s) else math.ceil(s / w)

    def rows(w: int) -> int:
        return sum(tensor_rows(s, w) for layer in sizes.values() for s in layer)

    while rows(width) * steps > NORM_FLOATS and rows(width) > len(params):
        width *= 2
    spans, row = {}, 0
    for layer, layer_sizes in sizes.items():
        start = row
        row += sum(tensor_rows(s, width) for s in layer_sizes)
        spans[layer] = (start, row)
    return width, spans


def step_figures(loss_sum: jax.Array, correct: jax.Array, grads: dict, width: int) -> jax.Array:
    """One training step's figures as one vector, made by one fused kernel (on XLA:CPU each
    kernel launched costs a few microseconds, more than these sums): the loss sum, the
    correct count, then every gradient tensor's squares packed into rows of `width`
    (zero-padded, each tensor on rows of its own) and summed per row; a tensor of
    OWN_ROW_FLOATS or more is summed whole, onto one row."""
    scalars = jnp.stack([loss_sum, correct]).astype(jnp.float32)[:, None]
    parts = [jnp.pad(scalars, ((0, 0), (0, width - 1)))]
    for leaf in jax.tree.leaves(grads):
        if _own_row(leaf.size):  # its total, alone on its row (norm_rows_layout)
            total = jnp.sum(jnp.square(leaf)).astype(jnp.float32)
            parts.append(jnp.pad(total[None, None], ((0, 0), (0, width - 1))))
            continue
        flat = jnp.square(leaf.ravel())
        parts.append(jnp.pad(flat, (0, -flat.size % width)).reshape(-1, width))
    return jnp.sum(jnp.concatenate(parts), axis=1)


def grad_norm_every(full_batches: int, steps: int) -> int:
    """Gradient norms on one step in k: 1 (every step) for an epoch of up to `steps` full
    batches or `steps` 0 (recording.grad_norm_steps); else k = ceil(full_batches / steps),
    the norms being taken on the last step of each whole group of k (between steps / 2 and
    `steps` of them). The partial last batch of a sampled epoch has none."""
    return 1 if steps == 0 else max(1, math.ceil(full_batches / steps))


def mean_layer_norms(rows: jax.Array, spans: dict[str, tuple[int, int]]) -> dict[str, jax.Array]:
    """From the squared gradient sums of every step (steps, rows; `step_figures`): each
    layer's gradient norm (all its tensors together, as optax.tree.norm), averaged over the
    steps."""
    return {k: jnp.mean(jnp.sqrt(jnp.sum(rows[:, a:b], axis=1))) for k, (a, b) in spans.items()}


def activation_stats(layers: list[LayerInfo], acts: list[jax.Array]) -> dict[str, jax.Array]:
    """Cheap per-layer summaries of the probe's activations (reductions only, no sorting):
    mean, std, min, max; dead units (zero for every probe input) and saturated units (in the
    flat tails of tanh/sigmoid for at least 95 % of the probe inputs): the thresholds are
    storage.catalog's DEAD_ABS, SATURATION and SATURATED_SHARE."""
    out = {}
    for layer, a in zip(layers, acts, strict=True):
        key = f"act/{layer.name}"
        out |= {
            f"{key}/mean": jnp.mean(a),
            f"{key}/std": jnp.std(a),
            f"{key}/min": jnp.min(a),
            f"{key}/max": jnp.max(a),
            f"{key}/dead": jnp.sum(jnp.all(jnp.abs(a) <= DEAD_ABS, axis=0)).astype(jnp.float32),
        }
        low, high = SATURATION.get(layer.activation, (None, None))
        saturated = (
            jnp.float32(0)
            if low is None
            else jnp.sum(jnp.mean((a <= low) | (a >= high), axis=0) >= SATURATED_SHARE).astype(
                jnp.float32
            )
        )
        out[f"{key}/saturated"] = saturated
    return out


class Trainer:
    def __init__(self, spec: ExperimentSpec, data: Dataset, record: bool = True):
        self.spec, self.data, self.record = spec, data, record
        self.graphdef, self.init_params, self.layers = build_network(
            spec,
            data.n_features,
            data.n_classes,
            data.image_shape if spec.model.kind == "cnn" else None,
        )
        # one sigmoid output unit (storage.catalog.loss_for(2)), else softmax; a sequential
        # model may also give two classes two softmax units
        self.binary = self.layers[-1].units == 1
        self.dropout = has_dropout(spec)  # training steps then take a random key
        n = len(data.x_train)
        self.batch_size = min(spec.training.batch_size, n)
        self.n_batches = math.ceil(n / self.batch_size)
        self.tx = make_optimizer(spec.optimizer, self.n_batches, spec.training.epochs)
        self.every = spec.recording.every
        # Long runs also get a low-resolution copy (<= ~LOWRES_EPOCHS epochs) of the parameters
        # and outputs, so that pages plot whole histories without reading every epoch.
        steps = math.ceil(spec.training.epochs / self.every)
        self.lowres_every = self.every * max(1, math.ceil(steps / LOWRES_EPOCHS))
        self.grid_x = (
            grid_points(data.grid_bounds, spec.recording.grid_resolution)
            if record and data.grid_bounds and spec.recording.grid_resolution
            else None
        )
        self.grid_every = spec.recording.grid_every or self._auto_grid_every()
        self.probe_x = data.probe_x if record else data.probe_x[:0]
        self.n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(self.init_params))
        self.chunk_steps = self._choose_chunk_steps()
        # grid epochs among a chunk's recorded epochs: one every grid_every // every, and the
        # run's last epoch
        self.chunk_grid_frames = min(
            self.chunk_steps, -(-self.chunk_steps // (self.grid_every // self.every)) + 1
        )
        self._chunk_fn = jax.jit(self._build_chunk_fn())
        self._initial_fn = jax.jit(self._build_initial_fn())

    # -- sizing ---------------------------------------------------------------------------
    def _grid_frame_floats(self) -> int:
        """Floats of one grid frame: grid/output and every hidden layer's grid/<layer>."""
        if self.grid_x is None:
            return 0
        return grid_frame_floats(len(self.grid_x), sum(x.units for x in self.layers[:-1]))

    def _auto_grid_every(self) -> int:
        """At most ~500 grid frames per run (the page animates no more), and about
        storage.sizing.GRID_BYTES of them: the hidden layers' maps multiply a frame's size."""
        return auto_grid_every(self.spec.training.epochs, self.every, self._grid_frame_floats())

    def _record_bytes(self) -> int:
        units = sum(layer.units for layer in self.layers)
        return 4 * (self.n_params + len(self.probe_x) * units + self._grid_frame_floats())

    def _choose_chunk_steps(self) -> int:
        n = len(self.data.x_train)
        epoch_seconds = self.n_batches * 4e-6 + 6 * self.n_params * n / 50e9
        steps = CHUNK_SECONDS / (epoch_seconds * self.every)
        steps = min(steps, MAX_CHUNK_BYTES / max(1, self._record_bytes()), MAX_CHUNK_STEPS)
        return max(1, 2 ** int(math.log2(max(1.0, steps))))

    @property
    def layer_infos(self) -> list[LayerInfo]:
        return self.layers

    # -- compiled functions ---------------------------------------------------------------
    def _build_epoch_fn(self):
        forward, tx, binary = make_forward(self.graphdef), self.tx, self.binary
        x, y = jnp.asarray(self.data.x_train), jnp.asarray(self.data.y_train)
        n, bs, nb = len(self.data.x_train), self.batch_size, self.n_batches
        pad = nb * bs - n
        base_key = jax.random.PRNGKey(self.spec.training.seed)
        # dropout's keys derive from (seed, epoch, batch), like the shuffle: a resumed run
        # draws the same masks; a separate stream, so models without dropout are unchanged
        dropout_key = jax.random.fold_in(base_key, 0x0D0D) if self.dropout else None
        width, spans = norm_rows_layout(self.init_params, nb)
        full = n // bs  # full batches; a last, partial one wraps around the shuffled order
        # gradient norms on every step of a short epoch, else on one step in `every_norm`
        every_norm = grad_norm_every(full, self.spec.recording.grad_norm_steps)
        groups = full // every_norm

        def batch_loss(params, xb, yb, key, valid):
            """Mean loss and correct count over the first `valid` inputs (a static int: the
            padded last batch's repeated inputs weigh 0); None: a full batch."""
            logits, _ = forward(params, xb, key)
            losses, correct = _loss_and_accuracy(logits, yb, binary)
            if valid is None:
                return jnp.sum(losses) / bs, jnp.sum(correct.astype(jnp.float32))
            wb = (jnp.arange(bs) < valid).astype(jnp.float32)
            return jnp.sum(losses * wb) / valid, jnp.sum(correct * wb)

        def train_step(params, opt_state, rows, key, valid=None, norms=True):
            """One optimizer step on the inputs `rows` (indices known to be in range, so no
            bounds handling); also the step's figures: loss sum, correct count and, with
            `norms`, the squared gradient sums (`step_figures`)."""
            xb = x.at[rows].get(mode="promise_in_bounds")
            yb = y.at[rows].get(mode="promise_in_bounds")
            (loss, correct), grads = jax.value_and_grad(batch_loss, has_aux=True)(
                params, xb, yb, key, valid
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            if not norms:
                return params, opt_state, jnp.stack([loss * (valid or bs), correct])
            return params, opt_state, step_figures(loss * (valid or bs), correct, grads, width)

        # Every kernel launched per step costs a few microseconds on XLA:CPU, as much as the
        # arithmetic of a small layer: full batches run in the loop without weights, the
        # partial last batch after it, and each step writes one row of figures (a step
        # without gradient norms only the row's first two).
        def step(i, carry, norms=True):
            params, opt_state, idx, keys, out = carry
            rows = lax.dynamic_index_in_dim(idx, i, keepdims=False, allow_negative_indices=False)
            key = (
                None
                if keys is None
                else lax.dynamic_index_in_dim(keys, i, keepdims=False, allow_negative_indices=False)
            )
            params, opt_state, figures = train_step(params, opt_state, rows, key, norms=norms)
            out = lax.dynamic_update_slice(out, figures[None], (i, jnp.int32(0)))
            return params, opt_state, idx, keys, out

        def plain_step(i, carry):
            return step(i, carry, norms=False)

        def group(g, carry):
            """`every_norm` steps, the last of them with gradient norms."""
            start = g * every_norm
            carry = lax.fori_loop(start, start + every_norm - 1, plain_step, carry)
            return step(start + every_norm - 1, carry)

        def epoch_fn(params, opt_state, epoch):
            perm = jax.random.permutation(jax.random.fold_in(base_key, epoch), n)
            idx = jnp.concatenate([perm, perm[:pad]]).reshape(nb, bs)
            keys = (
                None
                if dropout_key is None
                else jax.random.split(jax.random.fold_in(dropout_key, epoch), nb)
            )
            out = jnp.zeros((nb, 2 + max(b for _, b in spans.values())), jnp.float32)
            carry = (params, opt_state, idx, keys, out)
            if every_norm == 1:
                carry = lax.fori_loop(0, full, step, carry)
            else:
                carry = lax.fori_loop(0, groups, group, carry)
                carry = lax.fori_loop(groups * every_norm, full, plain_step, carry)
            params, opt_state, _, _, out = carry
            if pad:
                key = None if keys is None else keys[-1]
                params, opt_state, figures = train_step(
                    params, opt_state, idx[-1], key, n - full * bs, norms=every_norm == 1
                )
                out = out.at[-1, : figures.shape[0]].set(figures)
            metrics = {
                "train_loss": jnp.sum(out[:, 0]) / n,
                "train_accuracy": jnp.sum(out[:, 1]) / n,
            }
            sampled = out[:, 2:] if every_norm == 1 else out[every_norm - 1 : full : every_norm, 2:]
            metrics |= {f"grad_norm/{k}": v for k, v in mean_layer_norms(sampled, spans).items()}
            return params, opt_state, metrics

        return epoch_fn

    def _build_eval_fn(self):
        """(eval_fn, grid_maps): eval_fn(params, with_grid) gives the validation metrics and
        the tensors to record; grid_maps(params) the decision-boundary grid's maps (None
        without a grid)."""
        forward, binary = make_forward(self.graphdef), self.binary
        x_val, y_val = jnp.asarray(self.data.x_val), jnp.asarray(self.data.y_val)
        probe_x = jnp.asarray(self.probe_x)
        grid_x = None if self.grid_x is None else jnp.asarray(self.grid_x)
        names = [layer.name for layer in self.layers]

        def grid_maps(params):
            """grid/output: the probability of the second class (two softmax units: the
            second's); grid/<layer>: each hidden layer's post-activation output (G, units)."""
            acts = forward(params, grid_x)[1]
            out = acts[-1]
            maps = {"grid/output": out[:, 0] if binary else out[:, 1] if out.shape[1] == 2 else out}
            return maps | {f"grid/{n}": a for n, a in zip(names[:-1], acts[:-1], strict=True)}

        def eval_fn(params, with_grid=True):
            """Validation metrics, activation statistics and the tensors to record, with the
            grid's maps when `with_grid` is true (a Python bool: the chunk function records
            the grid into buffers of its own, only on grid epochs)."""
            metrics, tensors = {}, {}
            if len(self.data.x_val):
                losses, correct = _loss_and_accuracy(forward(params, x_val)[0], y_val, binary)
                metrics = {"val_loss": jnp.mean(losses), "val_accuracy": jnp.mean(correct)}
            if self.record:
                tensors = {
                    f"params/{layer}/{p}": v for layer, ps in params.items() for p, v in ps.items()
                }
                if probe_x.shape[0]:
                    _, acts = forward(params, probe_x)
                    tensors |= {f"signatures/{n}": a for n, a in zip(names, acts, strict=True)}
                    metrics |= activation_stats(self.layers[:-1], acts[:-1])
                if grid_x is not None and with_grid:
                    tensors |= grid_maps(params)
            return metrics, tensors

        return eval_fn, (grid_maps if grid_x is not None and self.record else None)

    def _build_initial_fn(self):
        """Epoch 0: the initial parameters, evaluated on the whole training set in batches
        (a single full-batch pass would need gigabytes for large sets)."""
        forward, binary = make_forward(self.graphdef), self.binary
        eval_fn = self._build_eval_fn()[0]
        n = len(self.data.x_train)
        size = min(n, EVAL_BATCH)
        nb = math.ceil(n / size)
        pad = nb * size - n
        x = jnp.asarray(np.concatenate([self.data.x_train, self.data.x_train[:pad]])).reshape(
            nb, size, -1
        )
        y = jnp.asarray(np.concatenate([self.data.y_train, self.data.y_train[:pad]])).reshape(
            nb, size
        )
        w = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(nb, size)

        def batch_sums(params, xb, yb, wb):
            losses, correct = _loss_and_accuracy(forward(params, xb)[0], yb, binary)
            return jnp.sum(losses * wb) / n, jnp.sum(correct * wb) / n

        def initial(params):
            def step(acc, batch):
                (loss, correct), grads = jax.value_and_grad(batch_sums, has_aux=True)(
                    params, *batch
                )
                return jax.tree.map(jnp.add, acc, (loss, correct, grads)), None

            zero = (jnp.float32(0), jnp.float32(0), jax.tree.map(jnp.zeros_like, params))
            (loss, acc, grads), _ = lax.scan(step, zero, (x, y, w))
            metrics, tensors = eval_fn(params)
            metrics |= {"train_loss": loss, "train_accuracy": acc}
            metrics |= {f"grad_norm/{k}": optax.tree.norm(g) for k, g in grads.items()}
            return metrics, tensors

        return initial

    def _build_chunk_fn(self):
        epoch_fn, size, frames = self._build_epoch_fn(), self.chunk_steps, self.chunk_grid_frames
        eval_fn, grid_maps = self._build_eval_fn()
        initial_fn = self._build_initial_fn()

        def chunk(params, opt_state, first_epoch, epochs_per_step, n_steps):
            """Run n_steps (<= size) recorded steps; step i trains epochs_per_step[i] epochs.
            The grid's maps go into buffers of `frames` rows, one per grid epoch in order, and
            are computed and written only on grid epochs: buffers of one row per epoch cost
            ~10 % of a Playground epoch even where nothing was computed."""
            metric_shapes, tensor_shapes = jax.eval_shape(initial_fn, params)
            record_shapes = (
                metric_shapes,
                {k: v for k, v in tensor_shapes.items() if not k.startswith("grid/")},
            )
            train_shapes = jax.eval_shape(epoch_fn, params, opt_state, first_epoch)[2]
            buffers = jax.tree.map(lambda s: jnp.zeros((size, *s.shape), s.dtype), record_shapes)
            grid = {}
            if grid_maps is not None:
                grid_shapes = jax.eval_shape(grid_maps, params)
                grid = jax.tree.map(lambda s: jnp.zeros((frames, *s.shape), s.dtype), grid_shapes)

            def one_epoch(_, carry):
                params, opt_state, epoch, _ = carry
                params, opt_state, metrics = epoch_fn(params, opt_state, epoch + 1)
                return params, opt_state, epoch + 1, metrics

            def put_grid(carry):
                grid, frame, params = carry
                grid = jax.tree.map(lambda b, v: b.at[frame].set(v), grid, grid_maps(params))
                return grid, frame + 1, params

            def record_step(i, carry):
                params, opt_state, epoch, bufs, grid, frame = carry
                zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), train_shapes)
                params, opt_state, epoch, train_m = lax.fori_loop(
                    0, epochs_per_step[i], one_epoch, (params, opt_state, epoch, zeros)
                )
                val_m, tensors = eval_fn(params, False)
                bufs = jax.tree.map(
                    lambda b, v: b.at[i].set(v), bufs, ({**train_m, **val_m}, tensors)
                )
                if grid_maps is not None:
                    grid, frame, _ = lax.cond(
                        self._is_grid_epoch_traced(epoch),
                        put_grid,
                        lambda c: c,
                        (grid, frame, params),
                    )
                return params, opt_state, epoch, bufs, grid, frame

            params, opt_state, _, (metrics, tensors), grid, _ = lax.fori_loop(
                0,
                n_steps,
                record_step,
                (params, opt_state, first_epoch, buffers, grid, jnp.int32(0)),
            )
            return params, opt_state, (metrics, tensors | grid)

        return chunk

    # -- the loop -------------------------------------------------------------------------
    def initial_state(self) -> TrainState:
        params = jax.tree.map(jnp.asarray, self.init_params)
        return TrainState(epoch=0, params=params, opt_state=self.tx.init(params))

    def _is_grid_epoch(self, epoch: int) -> bool:
        return epoch % self.grid_every == 0 or epoch == self.spec.training.epochs

    def _is_grid_epoch_traced(self, epoch: jax.Array) -> jax.Array:
        return (epoch % self.grid_every == 0) | (epoch == self.spec.training.epochs)

    def _is_lowres_epoch(self, epoch: int) -> bool:
        return epoch % self.lowres_every == 0 or epoch == self.spec.training.epochs

    def _to_chunk(self, epochs: list[int], metrics: dict, tensors: dict, n: int) -> Chunk:
        # the grid tensors hold one row per grid epoch, in order (the rest of their rows are
        # unused): slice on the device, so that only those rows are copied to the host
        keep = [i for i, e in enumerate(epochs) if self._is_grid_epoch(e)]
        grid = [k for k in tensors if k.startswith("grid/")]
        if grid and len(keep) > self.chunk_grid_frames:  # cannot happen: see chunk_grid_frames
            raise AssertionError(f"{len(keep)} grid epochs in a chunk of {len(epochs)}")
        tensors = {k: v[: len(keep)] if k in grid else v for k, v in tensors.items()}
        metrics = {k: np.asarray(v)[:n] for k, v in jax.device_get(metrics).items()}
        tensors = {
            k: np.asarray(v) if k in grid else np.asarray(v)[:n]
            for k, v in jax.device_get(tensors).items()
        }
        rows = [{k: float(v[i]) for k, v in metrics.items()} for i in range(n)]
        sparse = {k: [epochs[i] for i in keep] for k in grid}
        if self.lowres_every > self.every:
            keep = [i for i, e in enumerate(epochs) if self._is_lowres_epoch(e)]
            for name in [n for n in tensors if n.startswith("params/") or n == "signatures/output"]:
                tensors[f"lowres/{name}"] = tensors[name][keep]
                sparse[f"lowres/{name}"] = [epochs[i] for i in keep]
        return Chunk(epochs=epochs, metrics=rows, tensors=tensors, sparse_epochs=sparse)

    def _plan(self, epoch: int) -> list[int]:
        """Epochs per recorded step for the next chunk, starting after `epoch`. The run's last
        chunk is a short one (a quarter of a chunk's steps) where the run is long enough: its
        write to the database is the one that nothing overlaps, while the chunk before it is
        written as it trains."""
        total, plan = self.spec.training.epochs, []
        size, tail = self.chunk_steps, self.chunk_steps // 4
        while epoch < total and len(plan) < size + tail:
            step = min(self.every - epoch % self.every, total - epoch)
            plan.append(step)
            epoch += step
        if len(plan) >= size + tail:  # a whole chunk, and at least a short one after it
            return plan[:size]
        return plan[: len(plan) - tail] if len(plan) > tail else plan

    def run(self, on_chunk: Callable[[Chunk], None], state: TrainState | None = None) -> TrainState:
        """Train from `state` (default: initial parameters, recording epoch 0) to the end."""
        if state is None:
            state = self.initial_state()
            metrics, tensors = self._initial_fn(state.params)
            chunk = self._to_chunk(
                [0],
                jax.tree.map(lambda v: v[None], metrics),
                jax.tree.map(lambda v: v[None], tensors),
                1,
            )
            chunk.state, chunk.times = state, [time.time()]
            self._emit(on_chunk, chunk)
        while state.epoch < self.spec.training.epochs:
            started = time.time()
            plan = self._plan(state.epoch)
            steps = np.zeros(self.chunk_steps, np.int32)
            steps[: len(plan)] = plan
            params, opt_state, (metrics, tensors) = self._chunk_fn(
                state.params,
                state.opt_state,
                jnp.int32(state.epoch),
                jnp.asarray(steps),
                jnp.int32(len(plan)),
            )
            epochs = list(state.epoch + np.cumsum(plan))
            state = TrainState(epoch=int(epochs[-1]), params=params, opt_state=opt_state)
            chunk = self._to_chunk([int(e) for e in epochs], metrics, tensors, len(plan))
            chunk.state = state
            chunk.times = epoch_times(started, time.time(), plan)
            self._emit(on_chunk, chunk)
        return state

    def _emit(self, on_chunk: Callable[[Chunk], None], chunk: Chunk) -> None:
        """Hand the chunk over; cut it at the first non-finite loss and raise Diverged."""
        bad = next(
            (i for i, m in enumerate(chunk.metrics) if not math.isfinite(m["train_loss"])), None
        )
        if bad is None:
            on_chunk(chunk)
            return
        keep = bad + 1
        kept_epochs = set(chunk.epochs[:keep])
        chunk.epochs, chunk.metrics = chunk.epochs[:keep], chunk.metrics[:keep]
        chunk.times = chunk.times[:keep] if chunk.times else None
        for name in list(chunk.tensors):
            epochs = chunk.sparse_epochs.get(name)
            if epochs is None:
                chunk.tensors[name] = chunk.tensors[name][:keep]
            else:
                mask = [e in kept_epochs for e in epochs]
                chunk.tensors[name] = chunk.tensors[name][mask]
                chunk.sparse_epochs[name] = [e for e in epochs if e in kept_epochs]
        chunk.state = None
        on_chunk(chunk)
        raise Diverged(chunk.epochs[-1], "train_loss")
