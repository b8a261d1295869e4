"""nl.Recorder: record any Flax NNX model trained by the user's own loop (docs/python-api.md).

    rec = nl.Recorder(model, probe=x_probe, probe_labels=y_probe, name="my-cnn")
    with rec:
        for epoch in range(1, 101):
            ...                                   # the user's own jitted step and optimizer
            rec.log(epoch, loss=float(loss), accuracy=acc)

At each `log` the Recorder records every parameter leaf of the model (`params/<module
path>/<leaf>`) and what each recorded submodule's `__call__` returns on the probe inputs
(`signatures/<module path>`), computed by ONE compiled function (traced and compiled once, in
the constructor), whose outputs are copied to the host once per call, asynchronously, and
written by the worker's background writer (worker/recorder.py) through a sink
(netlens/sdk/sink.py: the local database, or the team server of nl.connect()).

How outputs are captured: while that function is traced, the `__call__` of every module class
in the model is wrapped (on the class; removed as soon as tracing ends), and each wrapper
notes what its module returned. Nothing of this runs after the compilation: the compiled
function is plain XLA, and the user's own code and model are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import functools
import io
import json
import math
import numbers
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from netlens.sdk.sink import NewRun, Sink, StoredRun, default_sink
from netlens.storage.catalog import MODEL_KINDS
from netlens.storage.spec import LIMITS, parse_spec
from netlens.worker.train import Chunk, TrainState

ROOT_NAME = "output"  # the model itself, as spec runs name the network output
MAX_METRICS = 200  # metric names per run
MAX_METRIC_NAME = 100
MAX_TENSOR_NAME = 120  # storage: run_tensors.name
MAX_CONFIG_BYTES = 64 * 1024
CHECKPOINT_SECONDS = 5.0  # a resumed run redoes at most about this much of the user's loop
RESERVED = ("params", "checkpoint")
DENSE_TYPES = (
    "nnx.Linear",
    "flax.linen.linear.Dense",
)  # drawn neuron by neuron  # log() keywords that are not metrics

_TRACE_LOCK = threading.Lock()  # module classes are wrapped during one trace at a time
_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


@dataclass
class ModuleInfo:
    """One module of the user's model, as the run records it (data_info["recorder"])."""

    name: str  # its path joined with "." (layers.0, block.conv); the model itself: "output"
    type: str  # its class (nnx.Linear, my_package.Block)
    params: dict[str, list[int]] = field(default_factory=dict)  # leaf -> shape
    calls: int = 0  # times its __call__ ran in one forward pass on the probe
    returned: int | None = None  # order in which its (first) call returned, from 0
    output_shape: list[int] | None = None  # per probe input, of the first call's output
    recorded: bool = False  # its output is stored as signatures/<name>
    note: str | None = None  # why it is not recorded


# ---- input checks: each error names the argument, and nothing is written before them ------------


def _probe_array(probe: Any) -> np.ndarray:
    try:
        x = np.asarray(probe)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the argument's fault
        raise TypeError(
            f"probe: cannot be read as an array ({type(exc).__name__}: {exc})"
        ) from None
    if x.ndim < 1 or x.dtype.kind not in "biuf":
        raise TypeError(
            f"probe: needs a numeric array with one row per probe input, got dtype {x.dtype} "
            f"and shape {x.shape}"
        )
    if not 1 <= len(x) <= LIMITS["max_probe_size"]:
        raise ValueError(
            f"probe: {len(x)} inputs is out of range: must be 1 to {LIMITS['max_probe_size']:,} "
            "(max_probe_size)"
        )
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"probe: {bad} value(s) are NaN or infinite; the probe must be finite")
    return x


def _labels_array(labels: Any, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"probe_labels: shape {y.shape} does not match the probe's {n} inputs")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("probe_labels: must be whole numbers (class labels)")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise TypeError(f"probe_labels: must be integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(np.unique(y)) > LIMITS["max_classes"]:
        raise ValueError(
            f"probe_labels: more than {LIMITS['max_classes']:,} distinct labels (max_classes)"
        )
    return y


def _check_epoch(epoch: Any, last: int | None) -> int:
    if isinstance(epoch, bool | np.bool_) or not isinstance(epoch, numbers.Integral):
        raise TypeError(f"epoch: must be an integer, got {type(epoch).__name__} {epoch!r}")
    epoch = int(epoch)
    if not 0 <= epoch <= LIMITS["max_epochs"]:
        raise ValueError(
            f"epoch: {epoch} is out of range: must be 0 to {LIMITS['max_epochs']:,} (max_epochs)"
        )
    if last is not None and epoch <= last:
        word = "repeats" if epoch == last else "goes backwards from"
        raise ValueError(
            f"epoch: {epoch} {word} the last logged epoch {last}; each log needs a later epoch"
        )
    return epoch


def _metric_value(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: a metric must be a number, not {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001
        array = None
    if array is None or array.size != 1 or array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name}: a metric must be one real number, got {type(value).__name__}"
            + (f" of shape {array.shape}" if array is not None else "")
        )
    return float(array.reshape(()))


def _check_metric_name(name: str) -> None:
    if not name or len(name) > MAX_METRIC_NAME or "\x00" in name:
        raise ValueError(
            f"metric name {name[:120]!r}: must be 1 to {MAX_METRIC_NAME} characters, no NUL"
        )


def _config(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(f"config: must be a dict of JSON values, got {type(config).__name__}")
    try:
        text = json.dumps(config, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config: must hold JSON values (numbers, strings, lists): {exc}") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(
            f"config: {len(text):,} bytes as JSON is out of range: must be at most "
            f"{MAX_CONFIG_BYTES:,}"
        )
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _type_name(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__
    return (
        f"nnx.{cls.__qualname__}"
        if module.startswith("flax.nnx")
        else f"{module}.{cls.__qualname__}"
    )


def _to_float32(value: jax.Array) -> jax.Array:
    """Floats are recorded as float32 (bfloat16 and float16 have no numpy dtype to store)."""
    return value.astype(jnp.float32) if jnp.issubdtype(value.dtype, jnp.floating) else value


def _host_leaf(value: Any) -> np.ndarray:
    """A checkpoint leaf on the host (typed PRNG keys as their key data)."""
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    return np.asarray(value)


# ---- capturing module outputs while the snapshot function is traced ----------------------------


class _Capture:
    """During one trace: which module object has which name, and what each call returned."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.active: set[int] = set()
        self.stack: list[str] = []  # the NNX modules whose __call__ is running, outermost first
        self.linen_roots: dict[str, str] = {}  # a ToNNX module's name -> its Linen names' prefix
        self.linen_types: dict[str, str] = {}  # a Linen submodule's name -> its class
        self.returned: list[tuple[str, Any]] = []
        self.calls: Counter[str] = Counter()

    def wrap(self, original: Callable) -> Callable:
        capture = self

        @functools.wraps(original)
        def __call__(module, *args, **kwargs):  # noqa: N807 - it replaces __call__
            key = id(module)
            name = capture.names.get(key)
            if name is None or key in capture.active:  # another model, or super().__call__
                return original(module, *args, **kwargs)
            capture.active.add(key)
            capture.stack.append(name)
            capture.calls[name] += 1
            try:
                out = original(module, *args, **kwargs)
            finally:
                capture.active.discard(key)
                capture.stack.pop()
            capture.returned.append((name, out))
            return out

        return __call__

    def linen_interceptor(self, next_fun, args, kwargs, context):
        """flax.linen.intercept_methods: what each Linen submodule of a wrapped Linen model
        (nnx.bridge.ToNNX) returns, named by its Linen path under the ToNNX module's name."""
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__" or not module.path:  # the Linen root is the ToNNX
            return out
        prefix = next(
            (self.linen_roots[n] for n in reversed(self.stack) if n in self.linen_roots), None
        )
        if prefix is None:
            return out
        name = prefix + _join(module.path)
        cls = type(module)
        self.linen_types.setdefault(name, f"{cls.__module__}.{cls.__qualname__}")
        self.calls[name] += 1
        self.returned.append((name, out))
        return out

    @contextlib.contextmanager
    def installed(self, classes: set[type]) -> Iterator[None]:
        """Wrap each class's __call__ (its own or inherited) on the class; restore after."""
        saved: list[tuple[type, bool, Any]] = []
        try:
            for cls in classes:
                original = next(
                    (k.__dict__["__call__"] for k in cls.__mro__ if "__call__" in k.__dict__),
                    None,
                )
                if not callable(original) or isinstance(original, staticmethod | classmethod):
                    continue  # a container (nnx.List) or an unusual __call__: not wrapped
                saved.append((cls, "__call__" in cls.__dict__, cls.__dict__.get("__call__")))
                cls.__call__ = self.wrap(original)
            yield
        finally:
            for cls, had_own, own in reversed(saved):
                if had_own:
                    cls.__call__ = own
                else:
                    del cls.__call__


# ---- the model's structure --------------------------------------------------------------------


def _join(path: tuple) -> str:
    return ".".join(str(p) for p in path)


class _Structure:
    """The model's modules and variables, found once: names, the variables to read at each
    log (the same Variable objects the user's in-place updates write to), treedefs."""

    def __init__(self, model: nnx.Module):
        self.graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        self.param_def = jax.tree.structure(params)
        self.rest_def = jax.tree.structure(rest)
        self.param_vars = [v for _, v in nnx.to_flat_state(params)]
        self.rest_vars = [v for _, v in nnx.to_flat_state(rest)]
        paths = [p for p, _ in nnx.iter_modules(model)]
        module_names = {_join(p) for p in paths if p}
        if isinstance(model, nnx.bridge.ToNNX):  # a wrapped Linen model: its submodules' names
            module_names |= {str(p[0]) for p, _ in nnx.to_flat_state(params) if len(p) >= 2}
        self.root = ROOT_NAME
        while self.root in module_names:  # a submodule is already called "output"
            self.root = "model_" + self.root
        self.name_of = {p: (_join(p) if p else self.root) for p in paths}
        self.modules = {
            self.name_of[p]: ModuleInfo(self.name_of[p], _type_name(m))
            for p, m in nnx.iter_modules(model)
        }
        # Linen models wrapped with nnx.bridge.ToNNX: their submodules are named by their
        # Linen paths (under the ToNNX module's own name unless it is the model itself)
        self.linen_roots = {
            self.name_of[p]: (_join(p) + "." if p else "")
            for p, m in nnx.iter_modules(model)
            if isinstance(m, nnx.bridge.ToNNX)
        }
        self.param_names = []
        for path, var in nnx.to_flat_state(params):
            value = var.get_raw_value()
            if not isinstance(value, jax.Array | np.ndarray):
                raise TypeError(
                    f"model: parameter {_join(path)} holds a {type(value).__name__}, not an "
                    "array; the Recorder records array parameters"
                )
            owner = max((p for p in paths if path[: len(p)] == p), key=len)
            leaf = _join(path[len(owner) :])
            module = self.name_of[owner]
            inner = path[len(owner) : -1]  # a Linen submodule's path inside a ToNNX module
            if module in self.linen_roots and inner:
                prefix = self.linen_roots[module]
                for depth in range(1, len(inner) + 1):  # its enclosing Linen modules too
                    name = prefix + _join(inner[:depth])
                    self.modules.setdefault(name, ModuleInfo(name, "flax.linen"))
                module, leaf = prefix + _join(inner), str(path[-1])
            self.modules[module].params[leaf] = list(value.shape)
            self.param_names.append(f"params/{module}/{leaf}")
        self.param_shapes = [tuple(v.get_raw_value().shape) for v in self.param_vars]
        for name in [*self.param_names, *(f"signatures/{m}" for m in self.modules)]:
            if len(name) > MAX_TENSOR_NAME:
                raise ValueError(
                    f"model: the tensor name {name[:60]!r}... is longer than {MAX_TENSOR_NAME} "
                    "characters; shorten the module's attribute names"
                )
        self.n_params = sum(int(np.prod(s)) for s in self.param_shapes)

    def param_leaves(self) -> list[Any]:
        return [v.get_raw_value() for v in self.param_vars]

    def rest_leaves(self) -> list[Any]:
        return [leaf for v in self.rest_vars for leaf in jax.tree.leaves(v.get_raw_value())]


def _why_not_recorded(value: Any, n_probe: int) -> str | None:
    if not isinstance(value, jax.Array):
        return f"its __call__ returns a {type(value).__name__}, not one array"
    if value.ndim == 0 or value.shape[0] != n_probe:
        return (
            f"its __call__ returns shape {tuple(value.shape)}, not one row per probe input "
            f"({n_probe}, ...)"
        )
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
        return f"its __call__ returns dtype {value.dtype}"
    return None


# ---- the Recorder ---------------------------------------------------------------------------------


class Recorder:
    """Record a Flax NNX model at each epoch of the user's own training loop.

    model: an `nnx.Module`. probe: the inputs every epoch's module outputs are computed on,
    one row per input (1 to 5,000 rows), finite. probe_labels: their integer class labels
    (optional; the pages colour by them). name, tags: the run's. layers: None records every
    submodule's output (and the model's own, as "output"); or a list of module paths
    ("layers.0", "block.conv", "output" for the model). epochs: how many epochs you plan
    (for progress and the size check; optional). config: a dict of your hyperparameters,
    stored with the run. forward: how to call the model on the probe, default
    `lambda model, x: model(x)`. eval_mode: call the probe with `model.eval()` (dropout off,
    batch norm on running averages), on a copy: your model is not changed. resume: the id of
    an earlier Recorder run to continue (the same model, layers and probe).
    checkpoint_seconds: how often `log` saves the state `restore` returns.
    """

    def __init__(
        self,
        model: nnx.Module,
        probe: Any,
        probe_labels: Any = None,
        *,
        name: str = "",
        tags: Sequence[str] = (),
        layers: Sequence[str] | None = None,
        epochs: int | None = None,
        config: dict[str, Any] | None = None,
        forward: Callable[[nnx.Module, jax.Array], Any] | None = None,
        eval_mode: bool = True,
        resume: int | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        sink: Sink | None = None,
    ):
        if not isinstance(model, nnx.Module):
            raise TypeError(
                f"model: must be a flax.nnx.Module, got {type(model).__name__} (a Linen "
                "module: wrap it, model = nnx.bridge.ToNNX(module, rngs=nnx.Rngs(0)), then "
                "nnx.bridge.lazy_init(model, x))"
            )
        if isinstance(model, nnx.bridge.ToNNX) and not jax.tree.leaves(nnx.state(model, nnx.Param)):
            raise ValueError(
                "model: this nnx.bridge.ToNNX has no parameters yet; initialise it first with "
                "nnx.bridge.lazy_init(model, x)"
            )
        if forward is not None and not callable(forward):
            raise TypeError("forward: must be a function of (model, probe inputs)")
        if not (isinstance(checkpoint_seconds, numbers.Real) and checkpoint_seconds >= 0):
            raise ValueError("checkpoint_seconds: must be a number of seconds, 0 or more")
        if epochs is not None and (
            isinstance(epochs, bool)
            or not isinstance(epochs, numbers.Integral)
            or not 1 <= epochs <= LIMITS["max_epochs"]
        ):
            raise ValueError(
                f"epochs: {epochs!r} must be an integer from 1 to {LIMITS['max_epochs']:,}"
            )
        if isinstance(layers, str):
            raise TypeError("layers: give a list of module paths, e.g. ['layers.0'], or None")
        self.model = model
        self.probe = _probe_array(probe)
        self.probe_labels = _labels_array(probe_labels, len(self.probe))
        self._config = _config(config)
        self._forward = forward or (lambda m, x: m(x))
        self._forward_name = (
            "model(x)" if forward is None else getattr(forward, "__qualname__", "custom")
        )
        self._eval_mode = bool(eval_mode)
        self._planned = None if epochs is None else int(epochs)
        self._checkpoint_seconds = float(checkpoint_seconds)
        self._structure = _Structure(model)
        self._wanted = self._check_layers(layers)
        self._compiled = self._compile()  # probe or model problems raise here
        self._bytes_per_epoch = self._output_bytes()
        spec = parse_spec(  # SpecError (a ValueError) names name / tags
            {
                "name": name,
                "tags": list(tags),
                "dataset": {"name": "external"},
                "model": {"kind": "flax"},
                "training": {"epochs": self._planned or 1},
                "recording": {"every": 1, "probe_size": len(self.probe), "grid_resolution": 0},
            }
        )
        self._sink = sink if sink is not None else default_sink()
        self._last_logged: int | None = None  # this session's
        self._skip_through: int | None = None  # a resumed run's last stored epoch
        self._stored_bytes = 0
        self._last_checkpoint: float | None = None
        self._warned: set[str] = set()
        self._metric_names: set[str] = set()
        self._restored = False
        self._closed = False
        if resume is None:
            self._check_size(self._planned or 0)
            self.run_id = self._sink.create(self._new_run(spec))
            self._resumed: StoredRun | None = None
        else:
            self._resumed = self._check_resume(resume)
            self.run_id = self._resumed.id
            if self._planned is None:  # the first session's plan still holds
                self._planned = int(self._resumed.spec.get("training", {}).get("epochs", 1))
            self._skip_through = self._resumed.last_epoch
            self._stored_bytes = self._resumed.recorded_bytes
            self._sink.reopen(self.run_id, device=_describe_device())
        self._writer = self._sink.writer(self.run_id, given_states=True)
        _OPEN.add(self)

    # -- construction --------------------------------------------------------------------------
    def _check_layers(self, layers: Sequence[str] | None) -> set[str] | None:
        if layers is None:
            return None
        known = self._structure.modules
        wanted = []
        for path in layers:
            if not isinstance(path, str) or path not in known:
                close = difflib.get_close_matches(str(path), list(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(
                    f"layers: {path!r} is not a module path of this model{hint} (its modules: "
                    f"{', '.join(list(known)[:20])}{', ...' if len(known) > 20 else ''})"
                )
            wanted.append(path)
        return set(wanted)

    def _snapshot_function(self, capture: _Capture) -> Callable:
        s, forward, eval_mode, n_probe = (
            self._structure,
            self._forward,
            self._eval_mode,
            len(self.probe),
        )
        wanted = self._wanted

        def snapshot(param_leaves, rest_leaves, x):
            params = jax.tree.unflatten(s.param_def, param_leaves)
            rest = jax.tree.unflatten(s.rest_def, rest_leaves)
            model = nnx.merge(s.graphdef, params, rest)
            if eval_mode:
                model.eval()
            copies = list(nnx.iter_modules(model))
            capture.names = {id(m): s.name_of[p] for p, m in copies}
            capture.linen_roots = s.linen_roots
            linen = (
                flax.linen.intercept_methods(capture.linen_interceptor)
                if s.linen_roots
                else contextlib.nullcontext()
            )
            with capture.installed({type(m) for _, m in copies}), linen:
                forward(model, x)
            for name, type_name in capture.linen_types.items():
                s.modules.setdefault(name, ModuleInfo(name, type_name)).type = type_name
            tensors = {
                name: _to_float32(leaf)[None]
                for name, leaf in zip(s.param_names, param_leaves, strict=True)
            }
            seen = set()
            for name, value in capture.returned:
                if name in seen:  # a module called twice: its first output is recorded
                    continue
                seen.add(name)
                info = s.modules[name]
                info.returned = len(seen) - 1
                why = _why_not_recorded(value, n_probe)
                if why is None:
                    info.output_shape = list(value.shape[1:])
                if wanted is not None and name not in wanted:
                    info.note = "not in layers"
                elif why is not None:
                    info.note = why
                else:
                    info.recorded = True
                    tensors[f"signatures/{name}"] = _to_float32(value)[None]
            for name, count in capture.calls.items():
                s.modules[name].calls = count
            return tensors

        return snapshot

    def _compile(self):
        """Trace the snapshot function once (module outputs captured meanwhile), check what
        it found, and compile it. Probe and model problems are raised here, naming them."""
        s, capture = self._structure, _Capture()
        args = (s.param_leaves(), s.rest_leaves(), jnp.asarray(self.probe))
        with _TRACE_LOCK:
            try:
                lowered = jax.jit(self._snapshot_function(capture)).lower(*args)
            except Exception as exc:  # noqa: BLE001 - the model could not run on the probe
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ValueError(
                    f"probe: the model cannot be called on the probe inputs (shape "
                    f"{self.probe.shape}, dtype {self.probe.dtype}): {type(exc).__name__}: "
                    f"{first[:500]}"
                ) from exc
        for info in s.modules.values():
            if info.returned is None:
                info.note = "never called on the probe" if info.calls == 0 else info.note
        if self._wanted is not None:
            for name in sorted(self._wanted):
                info = s.modules[name]
                if not info.recorded:
                    raise ValueError(
                        f"layers: {name!r} cannot be recorded: "
                        f"{info.note or 'never called on the probe'}"
                    )
        self.layers = [
            m.name
            for m in sorted((m for m in s.modules.values() if m.recorded), key=lambda m: m.returned)
        ]
        if not self.layers and self._wanted is None:
            warnings.warn(
                "Recorder: no module returned one array per probe input; only the "
                "parameters are recorded",
                stacklevel=3,
            )
        self._out_info = lowered.out_info
        self._probe_device = args[2]
        return lowered.compile()

    def _output_bytes(self) -> int:
        return sum(
            int(np.prod(o.shape)) * np.dtype(o.dtype).itemsize
            for o in jax.tree.leaves(self._out_info)
        )

    def _check_size(self, epochs: int) -> None:
        limit = LIMITS["max_recorded_bytes"]
        total = self._bytes_per_epoch * (epochs + 1)
        if total > limit:
            raise ValueError(
                f"probe, layers, epochs: recording {epochs + 1:,} epoch(s) of this model would "
                f"take {total / 2**20:,.0f} MiB ({self._bytes_per_epoch / 2**20:,.1f} MiB per "
                f"epoch), above the limit of {limit / 2**20:,.0f} MiB per run; record fewer "
                "modules (layers=[...]), a smaller probe or fewer epochs"
            )

    @property
    def architecture(self) -> list[dict[str, Any]]:
        """Every module of the model: path, type, parameter shapes, calls, output shape, and
        whether (or why not) its output is recorded."""
        return [asdict(m) for m in self._structure.modules.values()]

    def _layer_entries(self) -> list[dict[str, Any]]:
        """runs.layers: the recorded modules in the order their outputs were returned."""
        out = []
        for name in self.layers:
            m = self._structure.modules[name]
            dense = m.type in DENSE_TYPES
            out.append(
                {
                    "name": name,
                    "kind": "dense" if dense else "module",
                    "units": int(np.prod(m.output_shape)) if m.output_shape else 0,
                    "activation": "linear" if dense else None,
                    "type": m.type,
                    "output_shape": m.output_shape,
                    "params": m.params,
                }
            )
        return out

    def _recorder_info(self) -> dict[str, Any]:
        s = self._structure
        out_shapes = {
            k: list(v.shape[1:]) for k, v in self._out_info.items()
        }  # name -> per-epoch shape
        return {
            "model": _type_name(self.model),
            "root": s.root,
            "eval_mode": self._eval_mode,
            "forward": self._forward_name,
            "modules": self.architecture,
            "params": {k: out_shapes[k] for k in s.param_names},
            "signatures": {k: v for k, v in out_shapes.items() if k.startswith("signatures/")},
            "n_params": s.n_params,
        }

    def _new_run(self, spec) -> NewRun:
        labels = self.probe_labels
        classes = [] if labels is None else sorted(int(c) for c in np.unique(labels))
        shape = list(self.probe.shape[1:])
        image = shape[:2] if len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3)) else None
        data_info = {
            "classes": classes,
            "class_names": [str(c) for c in classes],
            "image_shape": image,
            "n_features": int(np.prod(shape)) if shape else 1,
            "input_shape": shape,
            "n_train": None,
            "n_val": None,
            "n_probe": len(self.probe),
            "n_probe_ood": 0,
            "source_path": None,
            "sha256": None,
            "probe_labels": labels is not None,
            "recorder": self._recorder_info(),
            "config": self._config,
        }
        arrays = {"probe/x": self.probe, "probe/is_ood": np.zeros(len(self.probe), bool)}
        if labels is not None:
            arrays |= {"probe/y": labels, "classes": np.asarray(classes, np.int64)}
        return NewRun(
            spec=spec,
            layers=self._layer_entries(),
            architecture=(
                f"{type(self.model).__name__}: {len(self._structure.modules)} modules, "
                f"{self._structure.n_params:,} parameters"
            )[:200],
            device=_describe_device(),
            data_info=data_info,
            arrays=arrays,
        )

    def _check_resume(self, run_id: Any) -> StoredRun:
        if isinstance(run_id, bool) or not isinstance(run_id, numbers.Integral):
            raise TypeError(f"resume: must be a run id (an integer), got {run_id!r}")
        try:
            stored = self._sink.load(int(run_id))
        except LookupError as exc:
            raise ValueError(f"resume: {exc}") from None
        kind = stored.spec.get("model", {}).get("kind")
        if kind not in MODEL_KINDS or MODEL_KINDS[kind].trainable:
            raise ValueError(
                f"resume: run {stored.id} is a {kind} run that NetLens trained; resume "
                "continues runs recorded by nl.Recorder (model kind flax)"
            )
        old_probe = stored.arrays.get("probe/x")
        if (
            old_probe is None
            or old_probe.shape != self.probe.shape
            or not np.array_equal(old_probe, self.probe)
        ):
            raise ValueError(
                f"probe: differs from the probe run {stored.id} recorded; resume needs the "
                "same probe inputs"
            )
        old_labels = stored.arrays.get("probe/y")
        if (old_labels is None) != (self.probe_labels is None) or (
            old_labels is not None and not np.array_equal(old_labels, self.probe_labels)
        ):
            raise ValueError(
                f"probe_labels: differ from the labels run {stored.id} recorded; resume needs "
                "the same probe labels"
            )
        before = stored.data_info.get("recorder", {})
        now = self._recorder_info()
        for key, argument in (("params", "model"), ("signatures", "layers")):
            if before.get(key) != now[key]:
                old, new = before.get(key) or {}, now[key]
                diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                raise ValueError(
                    f"{argument}: differs from what run {stored.id} recorded ({', '.join(diff[:5])}"
                    f"{', ...' if len(diff) > 5 else ''}); resume needs the same model, layers "
                    "and probe"
                )
        return stored

    # -- the user's loop -------------------------------------------------------------------------
    @property
    def run(self):
        """The run being recorded, as `nl.get(run_id)` returns it (netlens.sdk.reading.Run)."""
        return self._sink.handle(self.run_id)

    @property
    def last_epoch(self) -> int | None:
        """The last epoch recorded: logged in this session, or stored before a resume."""
        candidates = [e for e in (self._last_logged, self._skip_through) if e is not None]
        return max(candidates) if candidates else None

    def log(
        self, epoch: int, *, params: Any = None, checkpoint: Any = None, **metrics: Any
    ) -> bool:
        """Record `epoch`: every parameter, each recorded module's output on the probe, and
        the metrics given (numbers; NaN or infinite ones are stored as missing, with a
        warning). Epochs must increase. `params`: the model's nnx.Param state when your loop
        keeps it outside the model (nnx.split(model, nnx.Param, ...)[1] or its pure dict);
        by default the model's own. `checkpoint`: a pytree your loop needs to continue (the
        optimizer state), saved with the model's state at most every checkpoint_seconds and
        returned by `restore` after a resume.

        Returns False (recording nothing) for an epoch a resumed run already holds.
        """
        if self._closed:
            raise RuntimeError(
                f"log: the recorder of run {self.run_id} is closed; make a new Recorder "
                f"(resume={self.run_id} to continue this run)"
            )
        epoch = _check_epoch(epoch, self._last_logged)
        row = self._metrics_row(metrics)
        leaves = self._params_leaves(params)
        skip = self._skip_through is not None and epoch <= self._skip_through
        limit = LIMITS["max_recorded_bytes"]
        if not skip and self._stored_bytes + self._bytes_per_epoch > limit:
            raise ValueError(
                f"epoch: recording epoch {epoch} would take run {self.run_id} above the limit "
                f"of {limit / 2**20:,.0f} MiB per run ({self._bytes_per_epoch / 2**20:,.1f} "
                "MiB per epoch); record fewer epochs or modules (layers=[...]) or a smaller "
                "probe"
            )
        if skip:
            self._metric_names |= set(row)
            self._last_logged = epoch
            return False  # stored before the resume: one copy of each epoch
        rest = self._structure.rest_leaves()
        try:
            tensors = self._compiled(leaves, rest, self._probe_device)
        except (TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            if params is not None:
                raise ValueError(
                    f"params: do not match the model's parameters in dtype or shape: {first}"
                ) from None
            raise ValueError(
                "model: its variables no longer match the model the Recorder compiled for "
                f"(was a submodule replaced?): {first}"
            ) from None
        self._metric_names |= set(row)
        self._last_logged = epoch
        for value in tensors.values():
            value.copy_to_host_async()
        state = self._checkpoint_state(epoch, leaves, rest, checkpoint)
        self._writer.put(
            Chunk(epochs=[epoch], metrics=[row], tensors=tensors, state=state, times=[time.time()])
        )
        self._stored_bytes += self._bytes_per_epoch
        return True

    def _metrics_row(self, metrics: dict[str, Any]) -> dict[str, float]:
        row = {}
        for name, value in metrics.items():
            _check_metric_name(name)
            number = _metric_value(name, value)
            if not math.isfinite(number) and name not in self._warned:
                self._warned.add(name)
                warnings.warn(
                    f"Recorder.log: metric {name!r} is {number} (epoch stored, value "
                    "recorded as missing)",
                    stacklevel=3,
                )
            row[name] = number
        count = len(self._metric_names | set(row))
        if count > MAX_METRICS:
            raise ValueError(
                f"metrics: {count} names is out of range: must be at most {MAX_METRICS} per run"
            )
        return row

    def _params_leaves(self, params: Any) -> list[Any]:
        s = self._structure
        if params is None:
            return s.param_leaves()
        leaves = jax.tree.leaves(params)
        if len(leaves) != len(s.param_shapes) and isinstance(params, nnx.State):
            leaves = jax.tree.leaves(nnx.filter_state(params, nnx.Param))
        if len(leaves) != len(s.param_shapes):
            raise ValueError(
                f"params: {len(leaves)} arrays given; the model has {len(s.param_shapes)} "
                "parameters (give nnx.split(model, nnx.Param, ...)[1] or its pure dict)"
            )
        for name, leaf, shape in zip(s.param_names, leaves, s.param_shapes, strict=True):
            if tuple(np.shape(leaf)) != shape:
                raise ValueError(
                    f"params: {name} has shape {tuple(np.shape(leaf))}, the model's is {shape}"
                )
        return leaves

    def _checkpoint_state(
        self, epoch: int, leaves: list[Any], rest: list[Any], checkpoint: Any
    ) -> TrainState | None:
        now = time.monotonic()
        due = (
            self._last_checkpoint is None or now - self._last_checkpoint >= self._checkpoint_seconds
        )
        if not due:
            return None
        self._last_checkpoint = now
        model_state = [_host_leaf(v) for v in jax.device_get([*leaves, *rest])]
        saved = (
            jax.tree.map(_host_leaf, jax.device_get(checkpoint)) if checkpoint is not None else None
        )
        return TrainState(epoch=epoch, params=model_state, opt_state=saved)

    def restore(self, checkpoint: Any = None) -> tuple[int | None, Any]:
        """After `resume=`: put the model's state saved with the last checkpoint back into the
        model (in place) and return (its epoch, the `checkpoint` pytree saved with it, in the
        structure of the one given). On a new run, or when nothing was saved: (None, the
        `checkpoint` given). Call it before the first `log`."""
        if self._last_logged is not None:
            raise RuntimeError("restore: call it before the first log")
        if self._resumed is None or self._resumed.checkpoint is None or self._restored:
            return None, checkpoint
        epoch, data = self._resumed.checkpoint
        s = self._structure
        model_vars = [*s.param_vars, *s.rest_vars]
        template = [*s.param_leaves(), *s.rest_leaves()]
        treedef = jax.tree.structure(checkpoint)
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            stored = sorted((k for k in f.files if k.startswith("leaf_")), key=lambda k: int(k[5:]))
            values = [f[k] for k in stored]
            saved_epoch = int(f["epoch"])
        expected = len(template) + treedef.num_leaves
        if len(values) != expected or len(template) != len(model_vars):
            raise ValueError(
                f"checkpoint: run {self.run_id}'s checkpoint holds {len(values)} arrays; the "
                f"model has {len(template)} and the checkpoint given {treedef.num_leaves}: "
                "give a pytree of the structure you passed to log(checkpoint=...)"
            )
        for var, old, new in zip(model_vars, template, values[: len(template)], strict=True):
            if isinstance(old, jax.Array) and jnp.issubdtype(old.dtype, jax.dtypes.prng_key):
                new = jax.random.wrap_key_data(new, impl=jax.random.key_impl(old))
            elif np.shape(old) != new.shape:
                raise ValueError(f"model: its state does not match run {self.run_id}'s checkpoint")
            var.set_raw_value(jnp.asarray(new))
        restored = jax.tree.unflatten(treedef, [jnp.asarray(v) for v in values[len(template) :]])
        self._restored = True
        del epoch
        return saved_epoch, restored

    # -- closing -------------------------------------------------------------------------------
    def close(self) -> None:
        """Write every logged epoch and end the run (succeeded). Safe to call twice."""
        self._end("succeeded", None)

    def _end(self, status: str, error: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        last = self.last_epoch
        total = max(self._planned or 1, last or 0, 1)
        failure = None
        try:  # every queued epoch written (or sent) first
            self._writer.close()
        except Exception as exc:  # the writer's error: the run says it, and it is raised
            failure = exc
            status, error = "failed", f"recording failed: {exc}"
        self._sink.finish(self.run_id, status, error, total)
        if failure is not None:
            raise failure

    def __enter__(self) -> Recorder:
        if self._closed:
            raise RuntimeError(f"Recorder: the recorder of run {self.run_id} is closed")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self._end("cancelled", "interrupted (KeyboardInterrupt); the logged epochs are kept")
        else:
            self._end("failed", f"the training loop raised {exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Recorder run {self.run_id} ({state}), {len(self.layers)} module outputs, "
            f"last epoch {self.last_epoch}>"
        )


def _describe_device() -> str:
    from netlens.worker.runner import describe_device

    return describe_device()


@atexit.register
def _close_forgotten() -> None:
    """A process that ends without close(): the logged epochs are written and the run says
    so (it may have ended early)."""
    for recorder in list(_OPEN):
        with contextlib.suppress(Exception):
            recorder._end(
                "failed",
                "the Python process ended without Recorder.close() (or the with block); "
                "the epochs logged until then are kept",
            )
