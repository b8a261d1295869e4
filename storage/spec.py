"""The experiment spec: one validated, versioned schema shared by CLI, web form, API and worker."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from netlens.storage.catalog import (
    ACTIVATIONS,
    DATASETS,
    DEVICES,
    MODEL_KINDS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    SCHEDULES,
    SEQUENTIAL_LAYERS,
    TRAINED_ELSEWHERE,
    dataset_names,
    names_where,
    spoken_list,
)

SPEC_VERSION = 1

# Limits sized for a 2-core, CPU-only machine.  docs/spec.md lists them with reasons.
LIMITS = {
    "max_hidden_layers": 8,
    "max_units": 1024,
    "max_conv_channels": 64,
    "max_epochs": 100_000,
    "max_samples": 200_000,
    "max_batch_size": 65_536,
    "max_probe_size": 5_000,
    "max_grid_resolution": 100,
    "max_recorded_bytes": 2 * 1024**3,
    "max_learning_rate": 10.0,
    # CSV files are checked against these while they are read, before any array is sized
    # by them (one-hot targets are n x classes floats)
    "max_csv_columns": 4096,
    "max_classes": 1000,
    # model kind sequential (model.layers) and the arrays dataset (data given to the Python
    # API's fit, stored with the run)
    "max_sequential_layers": 16,
    "max_conv_layers": 3,
    "max_kernel_size": 7,
    "max_pool_size": 8,
    "max_strides": 4,
    "max_input_side": 1024,
    "max_input_features": 16_384,
    "max_data_bytes": 256 * 1024**2,
}

# The names a spec accepts come from storage/catalog.py, where each list is declared once.
DATASETS_2D = dataset_names("2-D")
IMAGE_DATASETS = dataset_names("image")
DatasetName = Literal[dataset_names()]
Activation = Literal[tuple(ACTIVATIONS)]
ModelKindName = Literal[tuple(MODEL_KINDS)]
OptimizerName = Literal[tuple(OPTIMIZERS)]
ScheduleName = Literal[tuple(SCHEDULES)]
DeviceName = Literal[tuple(DEVICES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value, info):
        """true/false is not a number (pydantic's lax mode would read it as 1/0; the JSON
        schema the API publishes says integer or number, which excludes booleans)."""
        if isinstance(value, bool):
            annotation = cls.model_fields[info.field_name].annotation
            if bool not in _leaf_types(annotation) and _leaf_types(annotation) & {int, float}:
                raise ValueError("must be a number, not true or false")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul_in_text(cls, value, info):
        """A NUL character in a text (a name, a tag, a column): PostgreSQL cannot read it
        back out of the stored JSON, so no spec holding one is ever accepted."""
        texts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain a NUL character (\\x00)")
        return value


def _leaf_types(annotation) -> set:
    """The plain types an annotation accepts (int | None -> {int, NoneType})."""
    args = get_args(annotation)
    if not args:
        return {annotation}
    return set().union(*(_leaf_types(a) for a in args))


class DatasetSpec(_Strict):
    name: DatasetName = "xor"
    n_samples: Annotated[int, Field(ge=4, le=LIMITS["max_samples"])] = 1000
    noise: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    val_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.2
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    classes: list[int] | None = None  # training subset (digits, MNIST); None = all
    ood_classes: list[int] = []  # shown to the probe only, never trained on
    path: str | None = None  # MNIST file/folder or CSV file
    upload: Annotated[int, Field(ge=1)] | None = None  # id of an uploaded file (storage.uploads)
    label_column: Annotated[str, Field(max_length=200)] | None = (
        None  # CSV: default the last column
    )
    max_train: Annotated[int, Field(ge=4, le=LIMITS["max_samples"])] | None = None

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        info = DATASETS[self.name]
        if info.needs_file and not self.path and self.upload is None:
            raise ValueError(
                f"dataset.path: a {self.name} dataset needs the path of the "
                f"{info.title} or an uploaded file (dataset.upload)"
            )
        if self.upload is not None and not info.upload:
            raise ValueError(
                f"dataset.upload: dataset {self.name!r} reads no file; uploads "
                f"are for {spoken_list(names_where('upload'), 'and')}"
            )
        if self.classes is not None:
            if len(set(self.classes)) < 2:
                raise ValueError(
                    f"dataset.classes: {self.classes} needs at least 2 distinct classes"
                )
            overlap = set(self.classes) & set(self.ood_classes)
            if overlap:
                raise ValueError(
                    f"dataset.ood_classes: {sorted(overlap)} also in dataset.classes; "
                    "an out-of-distribution class must not be trained on"
                )
        if self.ood_classes and not info.ood:
            raise ValueError(
                f"dataset.ood_classes: dataset {self.name!r} has no extra classes; "
                f"use {spoken_list(names_where('ood'))}"
            )
        if self.ood_classes and self.classes is None:
            raise ValueError(
                "dataset.ood_classes: set dataset.classes too, so that the "
                "out-of-distribution classes are left out of training"
            )
        return self


class LayerSpec(_Strict):
    units: Annotated[int, Field(ge=1, le=LIMITS["max_units"])]
    activation: Activation = "relu"


# -- model kind sequential: an explicit layer list (the Python API's nl.Sequential) ----------
class DenseLayer(_Strict):
    kind: Literal["dense"] = "dense"
    units: Annotated[int, Field(ge=1, le=LIMITS["max_units"])]
    activation: Activation | Literal["softmax"] = "linear"  # softmax: the output layer only


class Conv2DLayer(_Strict):
    kind: Literal["conv2d"] = "conv2d"
    filters: Annotated[int, Field(ge=1, le=LIMITS["max_conv_channels"])]
    kernel_size: Annotated[int, Field(ge=1, le=LIMITS["max_kernel_size"])] = 3
    strides: Annotated[int, Field(ge=1, le=LIMITS["max_strides"])] = 1
    padding: Literal["valid", "same"] = "valid"
    activation: Activation = "linear"


class MaxPool2DLayer(_Strict):
    kind: Literal["max_pool2d"] = "max_pool2d"
    pool_size: Annotated[int, Field(ge=1, le=LIMITS["max_pool_size"])] = 2
    strides: Annotated[int, Field(ge=1, le=LIMITS["max_pool_size"])] | None = None  # pool_size


class FlattenLayer(_Strict):
    kind: Literal["flatten"] = "flatten"


class DropoutLayer(_Strict):
    kind: Literal["dropout"] = "dropout"
    rate: Annotated[float, Field(ge=0.0, lt=1.0)]


SEQUENTIAL_LAYER_SPECS = (DenseLayer, Conv2DLayer, MaxPool2DLayer, FlattenLayer, DropoutLayer)
if [get_args(c.model_fields["kind"].annotation)[0] for c in SEQUENTIAL_LAYER_SPECS] != list(
    SEQUENTIAL_LAYERS
):  # one class per catalog entry, in its order
    raise RuntimeError("storage.spec: the sequential layer classes must match the catalog's")


def _layer_kind(value: Any) -> Any:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


SequentialLayer = Annotated[
    Annotated[DenseLayer, Tag("dense")]
    | Annotated[Conv2DLayer, Tag("conv2d")]
    | Annotated[MaxPool2DLayer, Tag("max_pool2d")]
    | Annotated[FlattenLayer, Tag("flatten")]
    | Annotated[DropoutLayer, Tag("dropout")],
    Discriminator(
        _layer_kind,
        custom_error_type="layer_kind",
        custom_error_message=f"kind must be one of {', '.join(SEQUENTIAL_LAYERS)}",
    ),
]


@dataclass(frozen=True)
class PlannedLayer:
    """One entry of model.layers with the shapes it maps (one input, no batch axis)."""

    index: int  # position in model.layers
    kind: str  # SEQUENTIAL_LAYERS
    name: str | None  # the recorded name (conv_i, hidden_i, output); None: not recorded
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    activation: str | None = None
    window: int = 0  # conv2d kernel_size, max_pool2d pool_size
    stride: int = 0  # conv2d / max_pool2d strides
    padding: str = "valid"
    rate: float = 0.0  # dropout

    @property
    def units(self) -> int:
        """Width of the recorded (flattened) output."""
        return math.prod(self.out_shape)


def _spatial(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1 if size >= window else 0


def plan_sequential(layers: list, input_shape: list[int] | tuple[int, ...]) -> list[PlannedLayer]:
    """Walk `input_shape` through `layers` (model.layers): each layer's shapes, parameter
    count and recorded name. Raises ValueError naming `model.layers.N` (or
    `model.input_shape`) when the layers do not fit together. A 2-D input (height, width) is
    one grey channel: (height, width, 1)."""
    shape = tuple(int(v) for v in input_shape)
    if not 1 <= len(shape) <= 3:
        raise ValueError(
            f"model.input_shape: {list(shape)} must be (features,), (height, width) or "
            "(height, width, channels)"
        )
    if len(shape) == 2:
        shape = (*shape, 1)
    if not layers:
        raise ValueError("model.layers: a sequential model needs at least its output layer")
    dense_total = sum(1 for layer in layers if layer.kind == "dense")
    out, convs, dense_seen = [], 0, 0
    for i, layer in enumerate(layers):
        where = f"model.layers.{i}"
        last = i == len(layers) - 1
        name, params, activation = None, 0, getattr(layer, "activation", None)
        window, stride, padding = 0, 0, "valid"
        if layer.kind == "dense":
            if len(shape) != 1:
                raise ValueError(
                    f"{where}: dense needs a flat input, got shape {shape}; put a flatten "
                    "layer before it"
                )
            dense_seen += 1
            name = "output" if dense_seen == dense_total else f"hidden_{dense_seen}"
            params = shape[0] * layer.units + layer.units
            new = (layer.units,)
        elif layer.kind in ("conv2d", "max_pool2d"):
            if len(shape) != 3:
                raise ValueError(
                    f"{where}: {layer.kind} needs an image input (height, width[, channels]), "
                    f"got shape {shape}"
                )
            h, w, c = shape
            if layer.kind == "conv2d":
                convs += 1
                window, stride, padding = layer.kernel_size, layer.strides, layer.padding
                name, channels = f"conv_{convs}", layer.filters
                params = window * window * c * layer.filters + layer.filters
            else:
                window, padding, channels = layer.pool_size, "valid", c
                stride = layer.strides or layer.pool_size
            new = (
                _spatial(h, window, stride, padding),
                _spatial(w, window, stride, padding),
                channels,
            )
            if 0 in new:
                raise ValueError(
                    f"{where}: a {window}x{window} {layer.kind} window does not fit its "
                    f"input of {h}x{w}"
                )
        elif layer.kind == "flatten":
            new = (math.prod(shape),)
        else:  # dropout
            new = shape
        if layer.kind == "dense" and last:
            if activation not in OUTPUT_ACTIVATIONS or (activation == "sigmoid") != (
                layer.units == 1
            ):
                raise ValueError(
                    f"{where}: the output layer must be dense with activation sigmoid and 1 "
                    f"unit (two classes) or softmax and 2 units or more (one per class), not "
                    f"{activation} with {layer.units} units"
                )
        elif last:
            raise ValueError(
                f"{where}: the last layer must be the dense output layer, not {layer.kind}"
            )
        elif activation == "softmax":
            raise ValueError(f"{where}: softmax is for the output layer (the last) only")
        rate = layer.rate if layer.kind == "dropout" else 0.0
        out.append(
            PlannedLayer(
                i, layer.kind, name, shape, new, params, activation, window, stride, padding, rate
            )
        )
        shape = new
    if convs > LIMITS["max_conv_layers"]:
        raise ValueError(
            f"model.layers: {convs} conv2d layers, above the limit of {LIMITS['max_conv_layers']}"
        )
    if dense_total - 1 > LIMITS["max_hidden_layers"]:
        raise ValueError(
            f"model.layers: {dense_total - 1} hidden dense layers, above the limit of "
            f"{LIMITS['max_hidden_layers']}"
        )
    return out


def describe_layers(layers: list, input_shape: list[int] | None) -> str:
    """'2-3-1', '8x8-c8-p2-32-d0.2-10': a sequential model in one short line (inputs, then
    c<filters> per conv2d, p<size> per max_pool2d, d<rate> per dropout, units per dense)."""
    parts = ["x".join(str(v) for v in input_shape) if input_shape else "in"]
    for layer in layers:
        kind = layer["kind"] if isinstance(layer, dict) else layer.kind
        get = layer.get if isinstance(layer, dict) else lambda k, lay=layer: getattr(lay, k)
        if kind == "dense":
            parts.append(str(get("units")))
        elif kind == "conv2d":
            parts.append(f"c{get('filters')}")
        elif kind == "max_pool2d":
            parts.append(f"p{get('pool_size')}")
        elif kind == "dropout":
            parts.append(f"d{get('rate'):g}")
    return "-".join(parts)


class ModelSpec(_Strict):
    kind: ModelKindName = "mlp"
    hidden: Annotated[list[LayerSpec], Field(max_length=LIMITS["max_hidden_layers"])] = [
        LayerSpec(units=3, activation="tanh")
    ]
    # CNN only: channels of each 3x3 conv (each followed by the activation and 2x2 max-pool).
    conv_channels: Annotated[
        list[Annotated[int, Field(ge=1, le=LIMITS["max_conv_channels"])]], Field(max_length=3)
    ] = [8, 16]
    conv_activation: Activation = "relu"
    # Kind sequential only: the layers in forward order, the dense output layer last, and the
    # shape of one input ((features,), (height, width) or (height, width, channels)).
    layers: Annotated[list[SequentialLayer], Field(max_length=LIMITS["max_sequential_layers"])] = []
    input_shape: (
        Annotated[
            list[Annotated[int, Field(ge=1, le=LIMITS["max_input_side"])]],
            Field(min_length=1, max_length=3),
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _sequential_has_only_its_layers(cls, data: Any) -> Any:
        """Kind sequential is its layer list: hidden and conv_channels default to empty for
        it (and are refused if given); the others take no layer list."""
        if not isinstance(data, dict):
            return data
        if data.get("kind") == "sequential":
            for field in ("hidden", "conv_channels"):
                if data.get(field):
                    raise ValueError(
                        f"model.{field}: a sequential model is its model.layers list; "
                        f"leave {field} out"
                    )
            return {**data, "hidden": [], "conv_channels": []}
        for field in ("layers", "input_shape"):
            if data.get(field):
                kind = data.get("kind", "mlp")
                raise ValueError(f"model.{field}: only for model.kind sequential, not {kind!r}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _user_model_has_no_layers(cls, data: Any) -> Any:
        """A model the user's code defines (kind flax) has no spec layers: hidden and
        conv_channels default to empty for it, and anything else is refused."""
        if (
            isinstance(data, dict)
            and isinstance(data.get("kind"), str)
            and data["kind"] in MODEL_KINDS
        ):
            if not MODEL_KINDS[data["kind"]].trainable:
                for field in ("hidden", "conv_channels"):
                    if data.get(field):
                        raise ValueError(
                            f"model.{field}: a {data['kind']} model is defined by the user's "
                            "code, not by the spec; leave it empty"
                        )
                data = {**data, "hidden": [], "conv_channels": []}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.kind == "cnn" and not self.conv_channels:
            raise ValueError("model.conv_channels: a cnn needs at least one conv layer")
        if self.kind == "sequential":
            if self.input_shape is None:
                raise ValueError(
                    "model.input_shape: a sequential model needs the shape of one input"
                )
            self.plan()  # the layers fit together (ValueError naming model.layers.N)
            features = math.prod(self.input_shape)
            if features > LIMITS["max_input_features"]:
                raise ValueError(
                    f"model.input_shape: {self.input_shape} is {features:,} features, above "
                    f"the limit of {LIMITS['max_input_features']:,} (max_input_features)"
                )
        return self

    def plan(self) -> list[PlannedLayer]:
        """Kind sequential: every layer with its shapes (plan_sequential)."""
        return plan_sequential(self.layers, self.input_shape or [])

    def output_classes(self) -> int | None:
        """Kind sequential: the classes its output layer gives (2 for one sigmoid unit)."""
        if self.kind != "sequential" or not self.layers:
            return None
        units = self.layers[-1].units
        return 2 if units == 1 else units

    def describe(self, n_in: int | str = "in", n_out: int | str = "out") -> str:
        if not MODEL_KINDS[self.kind].trainable:
            return f"{self.kind} (user code)"
        if self.kind == "sequential":
            return describe_layers(self.layers, self.input_shape)
        widths = [str(layer.units) for layer in self.hidden]
        convs = [f"c{c}" for c in self.conv_channels] if self.kind == "cnn" else []
        return "-".join([str(n_in), *convs, *widths, str(n_out)])


class OptimizerSpec(_Strict):
    name: OptimizerName = "adam"
    learning_rate: Annotated[float, Field(gt=0.0, le=LIMITS["max_learning_rate"])] = 0.01
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9  # momentum only
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    schedule: ScheduleName = "constant"
    decay_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5  # exponential: factor over the run
    warmup_epochs: Annotated[int, Field(ge=0, le=LIMITS["max_epochs"])] = 0


class TrainingSpec(_Strict):
    epochs: Annotated[int, Field(ge=1, le=LIMITS["max_epochs"])] = 1000
    batch_size: Annotated[int, Field(ge=1, le=LIMITS["max_batch_size"])] = 32
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    device: DeviceName = "cpu"


class RecordingSpec(_Strict):
    every: Annotated[int, Field(ge=1, le=LIMITS["max_epochs"])] = 1
    probe_size: Annotated[int, Field(ge=0, le=LIMITS["max_probe_size"])] = 1000
    grid_resolution: Annotated[int, Field(ge=0, le=LIMITS["max_grid_resolution"])] = 40
    grid_every: Annotated[int, Field(ge=1, le=LIMITS["max_epochs"])] | None = None
    # Lossy storage of the probe signatures, off by default: "float16" halves their raw bytes
    # at a relative error of at most 2**-11 (docs/spec.md; 1.1-1.5x less stored per epoch in
    # benchmarks/bench_storage.py). Parameters, metrics and grids are always float32.
    signature_dtype: Literal["float32", "float16"] = "float32"
    # An epoch's gradient norms (grad_norm/<layer>): the mean over all its steps when it has
    # up to this many full batches, else over about this many evenly spaced steps (one in
    # ceil(batches / grad_norm_steps)); 0: every step. Each norm taken costs about 5 % of an
    # MLP step on a CPU (docs/performance.md).
    grad_norm_steps: Annotated[int, Field(ge=0, le=100_000)] = 32


class ExperimentSpec(_Strict):
    version: Literal[1] = SPEC_VERSION
    name: Annotated[str, Field(max_length=200)] = ""
    tags: Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=20)] = []
    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    training: TrainingSpec = TrainingSpec()
    recording: RecordingSpec = RecordingSpec()

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        external = DATASETS[self.dataset.name].kind == "external"
        if external != (not MODEL_KINDS[self.model.kind].trainable):
            user_kinds = [k for k, m in MODEL_KINDS.items() if not m.trainable]
            raise ValueError(
                f"model.kind: {self.model.kind!r} with dataset {self.dataset.name!r}: the "
                f"{spoken_list(dataset_names('external'))} dataset goes with model kind "
                f"{spoken_list(user_kinds)} (a model and data of the user's own code) and "
                "with no other"
            )
        if self.model.kind == "sequential":
            self._check_sequential_fits_dataset()
        if MODEL_KINDS[self.model.kind].needs_image and not DATASETS[self.dataset.name].is_image:
            raise ValueError(
                f"model.kind: {self.model.kind!r} needs an image dataset "
                f"({', '.join(IMAGE_DATASETS)}), not {self.dataset.name!r}"
            )
        if (
            self.recording.grid_every is not None
            and self.recording.grid_every % self.recording.every
        ):
            raise ValueError(
                f"recording.grid_every: {self.recording.grid_every} must be a multiple "
                f"of recording.every ({self.recording.every})"
            )
        return self

    def _check_sequential_fits_dataset(self) -> None:
        """A dataset that fixes its inputs or classes must match the sequential model's
        input shape and output layer (the arrays dataset: the Python API checks)."""
        info = DATASETS[self.dataset.name]
        features = math.prod(self.model.input_shape)
        if info.n_inputs is not None and features != info.n_inputs:
            raise ValueError(
                f"model.input_shape: {self.model.input_shape} is {features} features; dataset "
                f"{self.dataset.name!r} has {info.n_inputs} inputs"
            )
        classes = len(self.dataset.classes) if self.dataset.classes else info.n_classes
        given = self.model.output_classes()
        if classes is not None and given != classes:
            raise ValueError(
                f"model.layers.{len(self.model.layers) - 1}: the output layer gives {given} "
                f"classes; dataset {self.dataset.name!r} has {classes} (sigmoid with 1 unit "
                "for two classes, softmax with one unit per class otherwise)"
            )

    @property
    def is_2d(self) -> bool:
        return self.dataset.name in DATASETS_2D

    def to_json(self) -> str:
        return self.model_dump_json()


class SpecError(ValueError):
    """An invalid spec; ``errors`` holds one line per problem: 'field: value: what is wrong'."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid experiment spec:\n  " + "\n  ".join(errors))


_LIMIT_WORDS = {
    "le": "at most",
    "lt": "below",
    "ge": "at least",
    "gt": "above",
    "max_length": "at most",
    "min_length": "at least",
}


def _location(parts: tuple) -> str:
    """'model.layers.0.units': without the tag pydantic puts after a layer's index."""
    kept = [
        p
        for i, p in enumerate(parts)
        if not (p in SEQUENTIAL_LAYERS and i >= 2 and parts[i - 2] == "layers")
    ]
    return ".".join(str(p) for p in kept) or "spec"


class _Shown:
    """A rejected value as an error message shows it: its repr, cut to MAX_SHOWN characters
    (a crafted body's 100,000-item list must not come back whole in the message)."""

    MAX_SHOWN = 80

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        text = repr(self.value)
        if len(text) <= self.MAX_SHOWN:
            return text
        size = f"; {len(self.value):,} items" if isinstance(self.value, list | dict) else ""
        return f"{text[: self.MAX_SHOWN]}... ({len(text):,} characters{size})"


def _format_error(err: dict[str, Any]) -> str:
    loc = _location(tuple(err["loc"]))
    ctx = err.get("ctx") or {}
    value = _Shown(err.get("input"))
    for key, words in _LIMIT_WORDS.items():
        if key in ctx:
            unit = " items" if "length" in key else ""
            raw = value.value
            shown = len(raw) if "length" in key and hasattr(raw, "__len__") else value
            return f"{loc}: {shown!r}{unit} is out of range: must be {words} {ctx[key]}{unit}"
    if err["type"] == "value_error":  # our own validators already name the field
        msg = str(ctx.get("error", err["msg"]))
        return msg if ":" in msg.split(" ")[0] else f"{loc}: {msg}"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown field (value {value!r})"
    if err["type"] == "literal_error":
        return f"{loc}: {value!r} is not allowed: {err['msg'].replace('Input should be ', 'expected ')}"
    return f"{loc}: {value!r}: {err['msg']}"


def parse_spec(data: dict[str, Any] | ExperimentSpec) -> ExperimentSpec:
    """Validate a spec (dict or model) and check its recording size; raise SpecError."""
    if isinstance(data, ExperimentSpec):
        data = data.model_dump()
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_format_error(e) for e in exc.errors()]) from None
    from netlens.storage.sizing import estimate_recorded_bytes  # local: sizing imports this module

    size = estimate_recorded_bytes(spec)
    if size > LIMITS["max_recorded_bytes"]:
        raise SpecError(
            [
                f"recording: the run would record about {size / 1024**2:,.0f} MiB, above the limit of "
                f"{LIMITS['max_recorded_bytes'] / 1024**2:,.0f} MiB per run; raise recording.every, "
                "lower recording.probe_size or training.epochs"
            ]
        )
    return spec


def check_submittable(spec: ExperimentSpec) -> ExperimentSpec:
    """Raise SpecError unless a spec alone can be queued: a dataset stored with its run
    (arrays) comes only with the data the Python API's fit stores."""
    if DATASETS[spec.dataset.name].stored:
        raise SpecError(
            [
                f"dataset.name: {spec.dataset.name!r}: its data is given to the Python API "
                "(nl.Sequential.fit) and stored with that run; a spec alone cannot be queued "
                "with it"
            ]
        )
    return spec


def check_trainable(spec: ExperimentSpec) -> ExperimentSpec:
    """Raise SpecError unless NetLens itself can train `spec` (queue it, retry it, run it in
    `netlens train`): a flax model with external data is the user's code's to train."""
    if not MODEL_KINDS[spec.model.kind].trainable:
        raise SpecError(
            [
                f"model.kind: {spec.model.kind!r}: such a run is {TRAINED_ELSEWHERE} (record it "
                "with nl.Recorder in your own training loop)"
            ]
        )
    return spec


def load_spec_file(path: str | Path) -> ExperimentSpec:
    """Read a spec from a YAML or JSON file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"spec file: {str(path)!r} does not exist"])
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(
            [f"spec file: {str(path)!r} is not valid {path.suffix[1:] or 'YAML'}: {exc}"]
        ) from None
    if not isinstance(data, dict):
        raise SpecError([f"spec file: {str(path)!r} must hold a mapping of spec fields"])
    return parse_spec(data)
