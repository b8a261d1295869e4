"""`nl.Sequential`: a Keras-like model whose `fit` is a NetLens run (docs/python-api.md).

    model = nl.Sequential([nl.layers.Dense(3, activation="tanh"),
                           nl.layers.Dense(1, activation="sigmoid")], input_shape=(2,))
    model.compile(optimizer=nl.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=1500, batch_size=4)

The model is a spec of kind sequential (docs/spec.md); `fit` checks every argument, stores the
arrays with a new run (dataset "arrays"), and trains it in this process with the worker's
Trainer (worker/train.py) while the worker's Recorder writes every recorded epoch: the run is
stored exactly as a spec run is, and a worker can retrain it from the stored data. Nothing is
written before every check has passed. A second `fit` continues the same run (later epochs),
from the state kept in memory. The run goes through a sink (netlens/sdk/sink.py): the local
database, or the team server of nl.connect().

JAX is imported only when a model trains or predicts.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from netlens.sdk import checks
from netlens.sdk import layers as layer_module
from netlens.sdk import optimizers as optimizer_module
from netlens.storage import spec as spec_module
from netlens.storage.catalog import DATASETS
from netlens.storage.records import DATA_PREFIX
from netlens.storage.sizing import estimate_recorded_bytes
from netlens.storage.spec import LIMITS, ExperimentSpec, ModelSpec, SpecError, parse_spec

__all__ = ["History", "Sequential"]

ARRAYS = next(n for n, d in DATASETS.items() if d.stored)  # the dataset fit's data goes in
PREDICT_BATCH = 2048  # inputs per call of predict / evaluate (the last batch is padded)
# spec fields -> the argument of fit (or compile) that sets them, for error messages
SPEC_ARGUMENTS = {
    "training.epochs": "epochs",
    "training.batch_size": "batch_size",
    "training.seed": "seed",
    "dataset.seed": "seed",
    "recording.every": "record_every",
    "recording.probe_size": "probe_size",
    "recording.grid_resolution": "grid_resolution",
    "optimizer": "optimizer",
    "model.input_shape": "input_shape",
    "model.layers": "layers",
    "name": "name",
    "tags": "tags",
    "recording": "epochs",  # the recorded size: epochs x (parameters + probe x units)
}
HISTORY_NAMES = {
    "train_loss": "loss",
    "train_accuracy": "accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
}


@dataclass
@dataclass
class History:
    """What one fit call trained, as Keras' History: `history[metric]` has one value per
    recorded epoch of this call (`epoch`: their numbers, counted from 1 over the whole run;
    every epoch unless fit's record_every > 1). Metrics: loss, accuracy, and val_loss,
    val_accuracy with validation data. `run` is the run it was recorded into: the same
    handle as nl.get(id) gives (metrics(), tensor(), figure(), url, status read live)."""

    history: dict[str, list[float]]
    epoch: list[int]
    run: Any  # netlens.sdk.reading.Run, or RemoteRun on a team server
    params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<History: {len(self.epoch)} epochs of {self.run!r}>"


def _spec_error(exc: SpecError) -> ValueError:
    """A spec's errors with the argument that set each field first."""
    lines = []
    for line in exc.errors:
        location, _, rest = line.partition(":")
        parts = location.split(".")
        argument = next(
            (arg for fld, arg in SPEC_ARGUMENTS.items() if location.startswith(fld)), None
        )
        if argument == "layers" and len(parts) > 2 and parts[2].isdigit():
            argument = f"layers[{parts[2]}]"
        lines.append(f"{argument}:{rest} ({location})" if argument else line)
    return ValueError("; ".join(lines))


def _layer_list(items: Any) -> tuple[list[layer_module.Layer], tuple[int, ...] | None]:
    """The layers and the input shape an Input entry gives, checked."""
    if items is None:
        return [], None
    if isinstance(items, (layer_module.Layer, layer_module.Input)) or not isinstance(
        items, (list, tuple)
    ):
        raise ValueError("layers: give a list of nl.layers (Dense, Conv2D, ...)")
    out, shape = [], None
    for i, item in enumerate(items):
        if isinstance(item, layer_module.Input):
            if i != 0:
                raise ValueError(f"layers[{i}]: an Input must come first")
            shape = item.shape
        elif isinstance(item, layer_module.Layer):
            out.append(item)
        else:
            raise ValueError(
                f"layers[{i}]: {type(item).__name__} is not a NetLens layer; use nl.layers."
                "Dense, Conv2D, MaxPooling2D, Flatten or Dropout"
            )
    return out, shape


class _Progress:
    """tqdm.auto's bar (the notebook bar in Jupyter) over one fit's epochs; verbose=0: none."""

    def __init__(self, epochs: int, first: int, verbose: int):
        self.bar = None
        self.first, self.done = first, 0
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, unit="epoch", mininterval=0.2, dynamic_ncols=True)

    def update(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.update(epoch - self.first - self.done)
        self.done = epoch - self.first
        shown = {HISTORY_NAMES[k]: v for k, v in metrics.items() if k in HISTORY_NAMES}
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Plan:
    """A checked fit: its spec, the arrays stored with the run and their digest."""

    spec: ExperimentSpec
    arrays: dict[str, np.ndarray]
    digest: str


@dataclass
class _Fitted:
    """What a fit leaves for predict, evaluate and the next fit."""

    spec: ExperimentSpec
    arrays: dict[str, np.ndarray]
    digest: str
    data: Any  # worker.datasets.Dataset
    state: Any  # worker.train.TrainState after the last trained epoch
    graphdef: Any
    run: Any  # netlens.sdk.reading.Run, or RemoteRun on a team server
    sink: Any


class Sequential:
    """A stack of nl.layers; the last is the output Dense layer (sigmoid, 1 unit, for two
    classes; softmax, one unit per class, otherwise). `input_shape` is the shape of one input
    ((features,), (height, width) or (height, width, channels)); it may also come from the
    first layer's `input_shape=`, an `nl.layers.Input(shape)` first, or the first fit's x."""

    def __init__(self, layers: Any = None, input_shape: Any = None, name: str | None = None):
        self.layers, given = _layer_list(layers)
        first = self.layers[0].input_shape if self.layers else None
        shapes = {
            s for s in (given, first, layer_module._input_shape(input_shape, "Sequential")) if s
        }
        if len(shapes) > 1:
            raise ValueError(f"input_shape: given twice and differently: {sorted(shapes)}")
        self._input_shape: tuple[int, ...] | None = shapes.pop() if shapes else None
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise ValueError("name: must be a text of at most 200 characters")
        self.name = name or "sequential"
        self.optimizer: optimizer_module.Optimizer | None = None
        self.loss: str | None = None
        self.metrics: list[str] = []
        self.history: History | None = None
        self._fitted: _Fitted | None = None
        self._cache: dict[str, Any] = {}

    # -- building -------------------------------------------------------------------------
    def add(self, layer: Any) -> None:
        """Append a layer (before the first fit)."""
        if self._fitted is not None:
            raise ValueError("add: the model has been fitted; its layers are fixed")
        more, shape = _layer_list([layer])
        if shape is not None:
            if self.layers or (self._input_shape and self._input_shape != shape):
                raise ValueError("add: an Input must come first")
            self._input_shape = shape
        if more and not self.layers and more[0].input_shape and self._input_shape is None:
            self._input_shape = more[0].input_shape
        self.layers += more

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self._input_shape

    def _model_spec(self, input_shape: tuple[int, ...] | None = None) -> ModelSpec:
        shape = input_shape or self._input_shape
        if shape is None:
            raise ValueError(
                "input_shape: the model does not know the shape of its inputs yet; give "
                "nl.Sequential(..., input_shape=(features,)) or call fit first"
            )
        if not self.layers:
            raise ValueError("layers: the model has no layers; its last must be the output Dense")
        try:
            return ModelSpec(
                kind="sequential",
                input_shape=list(shape),
                layers=[layer.to_spec() for layer in self.layers],
            )
        except ValidationError as exc:
            lines = [spec_module._format_error(e) for e in exc.errors()]
            located = [line if line.startswith("model.") else f"model.{line}" for line in lines]
            raise _spec_error(SpecError(located)) from None

    @property
    def n_classes(self) -> int:
        return self._model_spec().output_classes()

    def compile(
        self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **unsupported: Any
    ) -> None:
        """The optimizer (nl.optimizers or a name), the loss (binary_crossentropy,
        categorical_crossentropy or sparse_categorical_crossentropy) and the metrics
        (['accuracy'] or none: NetLens records loss and accuracy anyway)."""
        if unsupported:
            raise ValueError(
                f"{sorted(unsupported)[0]}: not supported by nl.Sequential.compile (optimizer, "
                "loss, metrics)"
            )
        if self._fitted is not None:
            raise ValueError(
                f"compile: the model has been fitted (run {self._fitted.run.id}); its "
                "optimizer and loss are part of that run. Build a new nl.Sequential to train "
                "with others"
            )
        self.optimizer = optimizer_module.get(optimizer)
        self.loss = checks.loss_name(loss)
        self.metrics = checks.metric_names(metrics)
        if self.layers and self.layers[-1].to_spec().get("kind") == "dense":
            self._check_loss_fits_output()

    def _check_loss_fits_output(self) -> None:
        last = self.layers[-1].to_spec()
        wanted = checks.LOSSES[self.loss]
        if last.get("activation") != wanted:
            raise ValueError(
                f"loss: {self.loss} goes with a {wanted} output layer; the last layer is "
                f"{self.layers[-1]!r}"
            )

    def _require_compiled(self, what: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise ValueError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # -- fit ------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        validation_split: float = 0.0,
        validation_data: Any = None,
        probe: Any = None,
        name: str | None = None,
        tags: list[str] | None = None,
        seed: int = 0,
        record_every: int = 1,
        probe_size: int = 1000,
        grid_resolution: int = 40,
        **unsupported: Any,
    ) -> History:
        """Train and record a run; a later fit continues it (docs/python-api.md).

        x, y: inputs (n, *input_shape) and labels in the loss's format (0/1, class indices,
        or one-hot rows). validation_data=(x_val, y_val) or validation_split (the last
        fraction of x, as Keras). probe=(x_probe, y_probe): the inputs whose every layer's
        outputs are recorded at every recorded epoch (default: up to probe_size inputs
        chosen class by class from the validation data, else the training data). name, tags:
        the run's. seed: initialisation, shuffling and dropout. record_every: record every
        N-th epoch (and the last). grid_resolution: the decision-boundary grid of 2-feature,
        2-class data (0: none). verbose: 1 a progress bar, 0 nothing.
        """
        if unsupported:
            raise ValueError(
                f"{sorted(unsupported)[0]}: not an argument of nl.Sequential.fit (see "
                "docs/python-api.md)"
            )
        self._require_compiled("fit")
        if verbose not in (0, 1, 2) or isinstance(verbose, bool):
            raise ValueError(f"verbose: {verbose!r} must be 0 (silent), 1 or 2 (a progress bar)")
        plan = self._prepare(  # every check; raises before anything is written
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=validation_split,
            validation_data=validation_data,
            probe=probe,
            name=name,
            tags=tags,
            seed=seed,
            record_every=record_every,
            probe_size=probe_size,
            grid_resolution=grid_resolution,
        )
        return self._train(plan, verbose)

    def _prepare(self, x: Any, y: Any, **options: Any) -> _Plan:
        """The spec, the arrays to store and their digest, every argument checked."""
        validation_data, validation_split = options["validation_data"], options["validation_split"]
        probe, probe_size = options["probe"], options["probe_size"]
        x_arr = checks.inputs(x, "x", self._input_shape, "max_samples")
        input_shape = self._input_shape or tuple(x_arr.shape[1:])
        model = self._model_spec(input_shape)
        self._check_loss_fits_output()
        n_classes = model.output_classes()
        y_idx = checks.labels(y, "y", self.loss, n_classes, len(x_arr), "x")
        x_val = y_val = None
        if validation_data is not None and validation_split:
            raise ValueError("validation_split: give validation_data or validation_split, not both")
        if validation_data is not None:
            xv, yv = checks.pair(validation_data, "validation_data")
            x_val = checks.inputs(xv, "validation_data[0]", input_shape, "max_samples")
            y_val = checks.labels(
                yv, "validation_data[1]", self.loss, n_classes, len(x_val), "validation_data[0]"
            )
        elif validation_split:
            if not isinstance(validation_split, (int, float)) or not 0 < validation_split < 1:
                raise ValueError(
                    f"validation_split: {validation_split!r} must be above 0 and below 1"
                )
            cut = int(len(x_arr) * (1 - validation_split))
            if cut < 1 or cut == len(x_arr):
                raise ValueError(
                    f"validation_split: {validation_split} of {len(x_arr)} inputs leaves no "
                    "training or no validation input"
                )
            x_arr, x_val, y_idx, y_val = x_arr[:cut], x_arr[cut:], y_idx[:cut], y_idx[cut:]
        arrays = {
            f"{DATA_PREFIX}x_train": x_arr.reshape(len(x_arr), -1),
            f"{DATA_PREFIX}y_train": y_idx,
            f"{DATA_PREFIX}classes": np.arange(n_classes, dtype=np.int64),
        }
        if x_val is not None:
            arrays[f"{DATA_PREFIX}x_val"] = x_val.reshape(len(x_val), -1)
            arrays[f"{DATA_PREFIX}y_val"] = y_val
        n_probe = None
        if probe is not None:
            xp, yp = checks.pair(probe, "probe")
            x_probe = checks.inputs(xp, "probe[0]", input_shape, "max_probe_size")
            y_probe = checks.labels(yp, "probe[1]", self.loss, n_classes, len(x_probe), "probe[0]")
            arrays[f"{DATA_PREFIX}probe_x"] = x_probe.reshape(len(x_probe), -1)
            arrays[f"{DATA_PREFIX}probe_y"] = y_probe.astype(np.int64)
            n_probe = probe_size = len(x_probe)
        checks.check_bytes(arrays)
        spec = self._spec(model, **{**options, "probe_size": probe_size})
        features = math.prod(input_shape)
        if n_probe is None:
            pool = len(x_val) if x_val is not None and len(x_val) else len(x_arr)
            n_probe = min(probe_size, pool)
        size = estimate_recorded_bytes(spec, features, n_classes, None, n_probe)
        if size > LIMITS["max_recorded_bytes"]:
            raise ValueError(
                f"epochs: the run would record about {size / 2**20:,.0f} MiB, above the limit "
                f"of {LIMITS['max_recorded_bytes'] / 2**20:,.0f} MiB per run "
                "(max_recorded_bytes); raise record_every, or use fewer probe inputs or epochs"
            )
        from netlens.worker.datasets.arrays import data_sha256  # numpy only

        digest = data_sha256(arrays)
        if self._fitted is not None:
            self._check_continues(spec, digest)
        return _Plan(spec, arrays, digest)

    def _spec(
        self,
        model: ModelSpec,
        *,
        epochs: Any,
        batch_size: Any,
        seed: Any,
        record_every: Any,
        probe_size: Any,
        grid_resolution: Any,
        name: Any,
        tags: Any,
        **_data: Any,
    ) -> ExperimentSpec:
        if isinstance(epochs, bool) or not isinstance(epochs, int):
            raise ValueError(f"epochs: {epochs!r} must be a whole number")
        done = self._fitted.state.epoch if self._fitted is not None else 0
        if tags is not None and (isinstance(tags, str) or not isinstance(tags, (list, tuple))):
            raise ValueError(f"tags: {tags!r} must be a list of texts")
        before = self._fitted.spec if self._fitted is not None else None  # a continued run
        if name is None:
            name = before.name if before is not None else self.name
        if tags is None:
            tags = before.tags if before is not None else []
        data = {
            "name": name,
            "tags": list(tags),
            "dataset": {"name": ARRAYS, "seed": seed, "val_fraction": 0.0},
            "model": model.model_dump(mode="json"),
            "optimizer": self.optimizer.to_spec(),
            "training": {
                "epochs": done + epochs if epochs >= 1 else epochs,
                "batch_size": 32 if batch_size is None else batch_size,
                "seed": seed,
            },
            "recording": {
                "every": record_every,
                "probe_size": probe_size,
                "grid_resolution": grid_resolution,
            },
        }
        try:
            return parse_spec(data)
        except SpecError as exc:
            raise _spec_error(exc) from None

    def _check_continues(self, spec: ExperimentSpec, digest: str) -> None:
        """A second fit continues the run: the same data and settings, more epochs."""
        fitted = self._fitted
        if fitted.run.status not in ("succeeded", "cancelled"):
            raise ValueError(
                f"fit: run {fitted.run.id} ended {fitted.run.status}; it cannot be continued. "
                "Build a new nl.Sequential to train again"
            )
        if digest != fitted.digest:
            raise ValueError(
                f"x: the data (x, y, validation data, probe) differs from what run "
                f"{fitted.run.id} trains on; a run keeps its data. Give the same arrays to "
                "continue it, or build a new nl.Sequential for a new run"
            )
        if spec.optimizer.schedule != "constant":
            raise ValueError(
                f"optimizer: schedule {spec.optimizer.schedule!r} spans the run's epochs; a "
                "run with a schedule cannot be continued. Fit all its epochs at once"
            )
        old = fitted.spec.model_dump(mode="json")
        new = spec.model_dump(mode="json")
        for section, key, argument in (
            ("training", "batch_size", "batch_size"),
            ("training", "seed", "seed"),
            ("recording", "every", "record_every"),
            ("recording", "probe_size", "probe_size"),
            ("recording", "grid_resolution", "grid_resolution"),
        ):
            if old[section][key] != new[section][key]:
                raise ValueError(
                    f"{argument}: {new[section][key]!r} differs from run {fitted.run.id}'s "
                    f"{old[section][key]!r}; a continued fit keeps the run's settings"
                )
        for key, argument in (("name", "name"), ("tags", "tags")):
            if new[key] != old[key]:
                raise ValueError(
                    f"{argument}: {new[key]!r} differs from run {fitted.run.id}'s "
                    f"{old[key]!r}; leave it out to continue the run"
                )

    def _train(self, plan: _Plan, verbose: int) -> History:
        from netlens.sdk.sink import NewRun, default_sink
        from netlens.worker.datasets.arrays import dataset_from_arrays
        from netlens.worker.runner import (
            check_real_size,
            data_info,
            describe_device,
            describe_failure,
            static_arrays,
            train_outcome,
        )
        from netlens.worker.train import Trainer

        spec, arrays = plan.spec, plan.arrays
        fitted = self._fitted
        # the worker builds the same Dataset from the stored arrays when it retrains the run
        data = fitted.data if fitted is not None else dataset_from_arrays(spec, arrays)
        check_real_size(spec, data)  # DatasetError (a ValueError) naming the limit
        _enable_compile_cache()
        trainer = Trainer(spec, data)  # builds the network; nothing written yet
        state = fitted.state if fitted is not None else None
        first = state.epoch if state is not None else 0
        # -- from here on the run exists ---------------------------------------------------
        sink = fitted.sink if fitted is not None else default_sink()
        started = {
            "layers": [layer.to_dict() for layer in trainer.layer_infos],
            "device": describe_device(),
            "data_info": data_info(data),
            "architecture": spec.model.describe(),
        }
        fixed = static_arrays(trainer, data)
        if fitted is None:  # one step: the run with its data, summary, probe and grid
            run_id = sink.create(NewRun(spec=spec, arrays={**arrays, **fixed}, **started))
            run = sink.handle(run_id)
        else:
            run = fitted.run
            sink.extend(run.id, spec)
            sink.reopen(run.id, arrays=fixed, **started)
        writer = sink.writer(run.id)
        history: dict[str, list[float]] = {}
        epochs: list[int] = []
        last = {"state": state}
        bar = _Progress(spec.training.epochs - first, first, verbose)

        def on_chunk(chunk) -> None:
            writer.put(chunk)
            if chunk.state is not None:
                last["state"] = chunk.state
            for epoch, metrics in zip(chunk.epochs, chunk.metrics, strict=True):
                if epoch == 0:
                    continue
                epochs.append(epoch)
                for key, value in metrics.items():
                    if key in HISTORY_NAMES:
                        history.setdefault(HISTORY_NAMES[key], []).append(value)
            bar.update(chunk.epochs[-1], chunk.metrics[-1])

        interrupted = False
        try:
            status, error, tb = train_outcome(trainer, on_chunk, state)
        except KeyboardInterrupt:
            interrupted = True
            done = last["state"].epoch if last["state"] is not None else first
            status, error, tb = (
                "cancelled",
                f"interrupted (KeyboardInterrupt) after epoch {done}",
                None,
            )
        finally:
            bar.close()
        try:
            writer.close()
        except Exception as exc:
            status, error, tb = (
                "failed",
                f"recording failed: {describe_failure(exc)}",
                traceback.format_exc(),
            )
        sink.finish(run.id, status, error if not tb else f"{error}\n\n{tb}")
        self._fitted = _Fitted(
            spec=spec,
            arrays=arrays,
            digest=plan.digest,
            data=data,
            state=last["state"] if last["state"] is not None else trainer.initial_state(),
            graphdef=trainer.graphdef,
            run=run,
            sink=sink,
        )
        self._input_shape = tuple(spec.model.input_shape)
        self.history = History(
            history,
            epochs,
            run,
            {"epochs": spec.training.epochs - first, "verbose": verbose, "status": status},
        )
        if interrupted:
            raise KeyboardInterrupt
        if status == "failed":
            raise RuntimeError(f"fit: run {run.id} failed: {error}")
        if status == "diverged" and verbose:
            print(f"run {run.id}: {error}")
        return self.history

    # -- using the trained model ----------------------------------------------------------
    @property
    def run(self) -> Any:
        """The run the fits of this model record into (None before the first fit)."""
        return self._fitted.run if self._fitted is not None else None

    def _params(self) -> tuple[Any, Any]:
        """(graphdef, parameters): the last trained ones, or the initial ones (seed 0)."""
        if self._fitted is not None:
            return self._fitted.graphdef, self._fitted.state.params
        if "initial" not in self._cache:
            from netlens.worker.models import build_network

            spec = ExperimentSpec(model=self._model_spec(), dataset={"name": ARRAYS})
            model = spec.model
            graphdef, params, _ = build_network(
                spec, math.prod(model.input_shape), model.output_classes(), None
            )
            self._cache["initial"] = (graphdef, params)
        return self._cache["initial"]

    def _outputs(self, x: np.ndarray, batch_size: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(logits, output probabilities) of inputs x, in batches of a fixed size."""
        import jax
        import jax.numpy as jnp

        from netlens.worker.models import make_forward

        graphdef, params = self._params()
        key = ("forward", id(graphdef))
        if key not in self._cache:
            forward = make_forward(graphdef)

            def logits_and_output(params, xb):
                logits, outputs = forward(params, xb)
                return logits, outputs[-1]

            self._cache[key] = jax.jit(logits_and_output)
        fn = self._cache[key]
        size = min(len(x), batch_size or PREDICT_BATCH)
        flat = x.reshape(len(x), -1)
        logits, outputs = [], []
        for start in range(0, len(flat), size):
            part = flat[start : start + size]
            padded = np.concatenate([part, np.zeros((size - len(part), part.shape[1]), np.float32)])
            lo, out = fn(params, jnp.asarray(padded))
            logits.append(np.asarray(lo)[: len(part)])
            outputs.append(np.asarray(out)[: len(part)])
        return np.concatenate(logits), np.concatenate(outputs)

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """The output layer's values for inputs x: (n, 1) sigmoid probabilities of class 1,
        or (n, C) softmax probabilities. Before fit: with the initial parameters."""
        x_arr = checks.inputs(x, "x", tuple(self._model_spec().input_shape))
        return self._outputs(x_arr, batch_size)[1]

    def evaluate(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = None,
        verbose: int = 0,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """The loss (and accuracy when compiled with metrics=['accuracy']) on x, y, computed
        as training computes them (the loss from the logits)."""
        self._require_compiled("evaluate")
        model = self._model_spec()
        x_arr = checks.inputs(x, "x", tuple(model.input_shape))
        y_idx = checks.labels(y, "y", self.loss, model.output_classes(), len(x_arr), "x")
        import jax.numpy as jnp

        from netlens.worker.train import _loss_and_accuracy

        logits, _ = self._outputs(x_arr, batch_size)
        binary = model.layers[-1].units == 1
        losses, correct = _loss_and_accuracy(jnp.asarray(logits), jnp.asarray(y_idx), binary)
        result = {"loss": float(jnp.mean(losses))}
        if self.metrics:
            result["accuracy"] = float(jnp.mean(correct))
        if return_dict:
            return result
        return list(result.values()) if self.metrics else result["loss"]

    def get_weights(self) -> list[np.ndarray]:
        """Each recorded layer's kernel and bias, in layer order (as Keras' get_weights)."""
        _, params = self._params()
        names = [p.name for p in self._model_spec().plan() if p.name is not None]
        return [np.asarray(params[n][k]) for n in names for k in ("kernel", "bias")]

    def summary(self, print_fn: Any = None) -> None:
        """Print each layer's type, output shape, parameter count and the name its tensors
        are recorded under (params/<name>/kernel, signatures/<name>)."""
        model = self._model_spec()
        plan = model.plan()
        rows = [("Layer (type)", "Output Shape", "Param #", "Recorded as")]
        counts: dict[str, int] = {}
        for step, layer in zip(plan, self.layers, strict=True):
            counts[step.kind] = counts.get(step.kind, 0) + 1
            rows.append(
                (
                    f"{step.kind}_{counts[step.kind]} ({type(layer).__name__})",
                    str((None, *step.out_shape)),
                    f"{step.params:,}",
                    step.name or "-",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "-" * (sum(widths) + 6)
        text = [f'Model: "{self.name}" (input shape {tuple(model.input_shape)})', line]
        for i, row in enumerate(rows):
            text.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if i == 0:
                text.append(line)
        text += [line, f"Total params: {sum(p.params for p in plan):,}"]
        if self._fitted is not None:
            text.append(
                f"Run: {self._fitted.run.id} ({self._fitted.state.epoch} epochs) {self._fitted.run.url}"
            )
        (print_fn or print)("\n".join(text))

    def __repr__(self) -> str:
        return f"<nl.Sequential {self.name!r}: {len(self.layers)} layers>"


def _enable_compile_cache() -> None:
    """Compiled XLA programs kept under NETLENS_HOME, as `netlens train` keeps them, unless
    this process already chose a cache folder."""
    import jax

    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    from netlens.sdk.home import settings
    from netlens.worker.runner import enable_compile_cache

    enable_compile_cache(settings().home / "jax-cache")
