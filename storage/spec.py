"""The experiment spec: one validated, versioned schema shared by CLI, web form, API and worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
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
    SCHEDULES,
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

    @model_validator(mode="before")
    @classmethod
    def _user_model_has_no_layers(cls, data: Any) -> Any:
        """A model the user's code defines (kind flax) has no spec layers: hidden and
        conv_channels default to empty for it, and anything else is refused."""
        if isinstance(data, dict) and data.get("kind") in MODEL_KINDS:
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
        return self

    def describe(self, n_in: int | str = "in", n_out: int | str = "out") -> str:
        if not MODEL_KINDS[self.kind].trainable:
            return f"{self.kind} (user code)"
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


def _format_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "spec"
    ctx = err.get("ctx") or {}
    value = err.get("input")
    for key, words in _LIMIT_WORDS.items():
        if key in ctx:
            unit = " items" if "length" in key else ""
            shown = len(value) if "length" in key and hasattr(value, "__len__") else value
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
