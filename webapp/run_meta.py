"""The typed `layers` and `data_info` of a run streamed from the Python API (POST /client-runs,
POST /runs/{id}/reopen), and the checks across them, the spec and the arrays sent.

The pages, the API, the export and the analyses read these fields as the two producers write
them (nl.Sequential.fit: worker.models.LayerInfo and worker.datasets.base.data_info;
nl.Recorder: netlens/sdk/recorder.py `_layer_entries`, `_new_run`, `_recorder_info`). A member
could otherwise store a run whose pages raise for everyone who opens it, or whose summary
disagrees with what it holds. So: every key is known (extra="forbid"), typed and bounded, and
`check_meta` compares what can be compared cheaply. Only `config` (the Recorder's
hyperparameters, shown as JSON) stays free, bounded. No SQL, no JAX.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from netlens.storage.spec import LIMITS, ExperimentSpec

NO_NUL = "^[^\\x00]*$"
MAX_TENSOR_NAME = 120  # storage: run_tensors.name ("signatures/<layer>", "params/<m>/<leaf>")
MAX_NAME = MAX_TENSOR_NAME - len("signatures/")
MAX_LAYERS = 10_000  # a model's recorded modules
MAX_DIMS = 32
MAX_DIM = 2**31 - 1
MAX_CONFIG_BYTES = 64 * 1024  # netlens/sdk/recorder.py MAX_CONFIG_BYTES
MAX_TEXT = 1_000

# a module or layer name: part of tensor names, so no "/" (and no NUL: PostgreSQL JSON)
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME, pattern="^[^\\x00/]+$")]
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT, pattern=NO_NUL)]
Shape = Annotated[list[Annotated[StrictInt, Field(ge=0, le=MAX_DIM)]], Field(max_length=MAX_DIMS)]
ParamShapes = Annotated[dict[Name, Shape], Field(max_length=1_000)]  # leaf -> shape
TensorName = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_TENSOR_NAME, pattern="^[^\\x00]*$")
]
Count = Annotated[StrictInt, Field(ge=0, le=2**53)]


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free JSON, as stored: at most MAX_CONFIG_BYTES, finite numbers, no NUL anywhere."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("must hold finite numbers only (no NaN or Infinity)") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"{len(text):,} bytes of JSON is over {MAX_CONFIG_BYTES:,}")
    if "\\u0000" in text:
        raise ValueError("must not contain NUL (\\u0000)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LayerEntry(_Strict):
    """One recorded layer (fit) or module (nl.Recorder), in the order the network computes
    them; the last is the network's output."""

    name: Name
    kind: Literal["dense", "conv", "module"]
    units: Annotated[StrictInt, Field(ge=0, le=MAX_DIM)] = Field(
        description="Width of the recorded output, flattened (0: a module without one)."
    )
    activation: Annotated[StrictStr, Field(max_length=40, pattern=NO_NUL)] | None
    # nl.Recorder only
    type: Annotated[StrictStr, Field(max_length=300, pattern=NO_NUL)] | None = None
    output_shape: Shape | None = None
    params: ParamShapes | None = None


class ModuleEntry(_Strict):
    """One module of an nl.Recorder model (netlens/sdk/recorder.py ModuleInfo)."""

    name: Name
    type: Annotated[StrictStr, Field(max_length=300, pattern=NO_NUL)]
    params: ParamShapes
    calls: Count
    returned: Count | None
    output_shape: Shape | None
    recorded: StrictBool
    note: Text | None


class RecorderInfo(_Strict):
    """data_info.recorder: the model an nl.Recorder run records, and its tensors' shapes."""

    model: Annotated[StrictStr, Field(max_length=300, pattern=NO_NUL)]
    root: Name = Field(description="The model's own name among the modules.")
    eval_mode: StrictBool
    forward: Annotated[StrictStr, Field(max_length=300, pattern=NO_NUL)]
    modules: list[ModuleEntry] = Field(max_length=MAX_LAYERS)
    params: dict[TensorName, Shape] = Field(
        max_length=MAX_LAYERS * 10, description="params/<module>/<leaf> -> shape per epoch."
    )
    signatures: dict[TensorName, Shape] = Field(
        max_length=MAX_LAYERS,
        description="signatures/<layer> -> shape per epoch (n_probe, *output_shape).",
    )
    n_params: Count


class DataInfo(_Strict):
    """What the run was trained on (fit) or recorded with (nl.Recorder). Which keys each
    kind sends is fixed (DATA_KEYS); for fit the server derives them from the data sent."""

    classes: list[Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]] = Field(
        max_length=LIMITS["max_classes"]
    )
    class_names: list[Annotated[StrictStr, Field(max_length=200, pattern=NO_NUL)]] = Field(
        max_length=LIMITS["max_classes"]
    )
    image_shape: (
        Annotated[
            list[Annotated[StrictInt, Field(ge=1, le=MAX_DIM)]], Field(min_length=2, max_length=2)
        ]
        | None
    )
    n_features: Annotated[StrictInt, Field(ge=1, le=MAX_DIM)]
    n_train: Count | None
    n_val: Count | None
    n_probe: Annotated[StrictInt, Field(ge=1, le=LIMITS["max_probe_size"])]
    n_probe_ood: Annotated[StrictInt, Field(ge=0, le=LIMITS["max_probe_size"])]
    source_path: Text | None
    sha256: Annotated[StrictStr, Field(pattern="^[0-9a-f]{64}$")] | None
    grid_bounds: (
        Annotated[
            list[Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]],
            Field(min_length=4, max_length=4),
        ]
        | None
    ) = None
    # nl.Recorder only
    input_shape: Shape | None = None
    probe_labels: StrictBool | None = None
    recorder: RecorderInfo | None = None
    config: Annotated[dict[str, Any], AfterValidator(_bounded_json)] | None = None


_COMMON = {"classes", "class_names", "image_shape", "n_features", "n_train", "n_val", "n_probe"}
_COMMON |= {"n_probe_ood", "source_path", "sha256"}
DATA_KEYS = {
    "sequential": _COMMON | {"grid_bounds"},
    "flax": _COMMON | {"input_shape", "probe_labels", "recorder", "config"},
}
RECORDER_LAYER_KEYS = {"name", "kind", "units", "activation", "type", "output_shape", "params"}


def dump_layers(layers: list[LayerEntry]) -> list[dict[str, Any]]:
    """As stored: the keys that were sent, nothing added."""
    return [layer.model_dump(exclude_unset=True) for layer in layers]


def dump_data_info(info: DataInfo) -> dict[str, Any]:
    return info.model_dump(exclude_unset=True)


# ---- checks across fields -------------------------------------------------------------------


def check_meta(
    spec: ExperimentSpec,
    layers: list[LayerEntry],
    data_info: DataInfo,
    shapes: dict[str, tuple[int, ...]],
    *,
    expected_data_info: dict[str, Any] | None = None,
    prefix: str = "",
) -> list[str]:
    """Problems ("<field>: <why>") between the layers, data_info, the spec and the fixed
    arrays' shapes (`shapes`: name -> shape); `expected_data_info`: what the server derived
    from the data sent (fit), which data_info must equal key by key."""
    problems = _check_layers(spec, layers) + _check_data(spec, data_info, shapes)
    if spec.model.kind == "flax":
        problems += _check_recorder(layers, data_info)
    elif expected_data_info is not None:
        sent = dump_data_info(data_info)
        for key, value in expected_data_info.items():
            if sent.get(key) != value:
                problems.append(
                    f"data_info.{key}: {_short(sent.get(key))} differs from the "
                    f"{_short(value)} the data sent gives"
                )
    return [prefix + p for p in problems]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_layers(spec: ExperimentSpec, layers: list[LayerEntry]) -> list[str]:
    problems, seen = [], {}
    for i, layer in enumerate(layers):
        if layer.name in seen:
            problems.append(f"layers.{i}.name: {layer.name!r} repeats layers.{seen[layer.name]}")
        seen.setdefault(layer.name, i)
    if spec.model.kind == "sequential":
        planned = [
            {
                "name": step.name,
                "kind": "conv" if step.kind == "conv2d" else "dense",
                "units": step.units,
                "activation": step.activation,
            }
            for step in spec.model.plan()
            if step.kind in ("dense", "conv2d")
        ]
        if len(layers) != len(planned):
            problems.append(
                f"layers: {len(layers)} given; the spec's model.layers record {len(planned)}"
            )
        for i, (layer, want) in enumerate(zip(layers, planned, strict=False)):
            got = dump_layers([layer])[0]
            for key in sorted(set(got) | set(want)):
                if got.get(key) != want.get(key):
                    problems.append(
                        f"layers.{i}.{key}: {_short(got.get(key))} differs from the spec's "
                        f"{_short(want.get(key))}"
                    )
    else:
        for i, layer in enumerate(layers):
            missing = sorted(RECORDER_LAYER_KEYS - layer.model_fields_set)
            if missing:
                problems.append(f"layers.{i}.{missing[0]}: required for model kind flax")
    return problems


def _check_data(spec: ExperimentSpec, info: DataInfo, shapes: dict[str, tuple]) -> list[str]:
    kind = spec.model.kind
    sent = info.model_fields_set
    problems = [
        f"data_info.{k}: unknown field for model kind {kind}"
        for k in sorted(sent - DATA_KEYS[kind])
    ]
    problems += [
        f"data_info.{k}: required for model kind {kind}" for k in sorted(DATA_KEYS[kind] - sent)
    ]
    if len(info.class_names) != len(info.classes):
        problems.append(
            f"data_info.class_names: {len(info.class_names)} names for {len(info.classes)} classes"
        )
    if len(set(info.classes)) != len(info.classes):
        problems.append("data_info.classes: repeats a class")
    probe = shapes.get("probe/x")
    if probe is None:
        problems.append("arrays: probe/x is required")
    else:
        if info.n_probe != probe[0]:
            problems.append(
                f"data_info.n_probe: {info.n_probe} differs from the {probe[0]} rows of probe/x"
            )
        row = math.prod(probe[1:])
        if info.n_features != row:
            problems.append(
                f"data_info.n_features: {info.n_features} differs from the {row} values of a "
                "probe/x row"
            )
        if info.input_shape is not None and tuple(info.input_shape) != tuple(probe[1:]):
            problems.append(
                f"data_info.input_shape: {info.input_shape} differs from probe/x's "
                f"{list(probe[1:])}"
            )
    if info.n_probe_ood > info.n_probe:
        problems.append(f"data_info.n_probe_ood: {info.n_probe_ood} is over n_probe")
    if info.image_shape is not None and info.n_features % math.prod(info.image_shape):
        problems.append(
            f"data_info.image_shape: {info.image_shape} does not divide the "
            f"{info.n_features} features"
        )
    classes = shapes.get("classes")
    if classes is not None and classes != (len(info.classes),):
        problems.append(
            f"data_info.classes: {len(info.classes)} classes; the classes array has {classes}"
        )
    if info.probe_labels is not None and info.probe_labels != ("probe/y" in shapes):
        problems.append(
            f"data_info.probe_labels: {info.probe_labels} but probe/y is "
            + ("sent" if "probe/y" in shapes else "not sent")
        )
    if kind == "flax" and info.n_probe != spec.recording.probe_size:
        problems.append(
            f"data_info.n_probe: {info.n_probe} differs from the spec's recording.probe_size "
            f"{spec.recording.probe_size}"
        )
    return problems


def _check_recorder(layers: list[LayerEntry], info: DataInfo) -> list[str]:
    """An nl.Recorder run: the layers are its recorded modules, each with its signature and
    its parameters as data_info.recorder lists them."""
    rec = info.recorder
    if rec is None:
        return []  # _check_data said it is required
    problems = []
    modules = {m.name: m for m in rec.modules}
    if len(modules) != len(rec.modules):
        problems.append("data_info.recorder.modules: a module name repeats")
    if rec.root not in modules:
        problems.append(f"data_info.recorder.root: {rec.root!r} is not among the modules")
    recorded = {m.name for m in rec.modules if m.recorded}
    if recorded != {layer.name for layer in layers}:
        problems.append("layers: differ from the modules data_info.recorder.modules records")
    wanted = {f"signatures/{layer.name}" for layer in layers}
    if set(rec.signatures) != wanted:
        extra = sorted(set(rec.signatures) ^ wanted)
        problems.append(f"data_info.recorder.signatures: {extra[0]!r} does not match the layers")
    for i, layer in enumerate(layers):
        shape = rec.signatures.get(f"signatures/{layer.name}")  # one row per probe input
        if shape is not None and shape != [info.n_probe, *(layer.output_shape or [])]:
            problems.append(
                f"layers.{i}.output_shape: {layer.output_shape} per probe input does not give "
                f"its signature's {shape} for {info.n_probe} probe inputs"
            )
        units = math.prod(layer.output_shape) if layer.output_shape else 0
        if layer.units != units:
            problems.append(f"layers.{i}.units: {layer.units} differs from its output's {units}")
        module = modules.get(layer.name)
        if module is not None and layer.params != module.params:
            problems.append(f"layers.{i}.params: differ from its module's in data_info.recorder")
    params = {f"params/{m.name}/{leaf}": s for m in rec.modules for leaf, s in m.params.items()}
    if params != rec.params:
        extra = sorted(set(params) ^ set(rec.params)) or ["(shapes)"]
        problems.append(f"data_info.recorder.params: {extra[0]!r} differs from the modules'")
    if rec.n_params != sum(math.prod(s) for s in rec.params.values()):
        problems.append("data_info.recorder.n_params: differs from the parameters' shapes")
    return problems
