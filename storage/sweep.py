"""Sweeps: a grid over one to three spec fields, expanded into validated specs. Pure, no SQL."""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from netlens.storage.spec import ExperimentSpec, SpecError, parse_spec

MAX_SWEEP_AXES = 3
MAX_SWEEP_RUNS = 200
WIDTH = "model.width"  # alias: the units of every hidden layer at once
NOT_SWEPT = ("version", "name", "tags", "dataset.upload")  # names generated; tags: the base's;
# an upload is resolved once, for the base spec
INDEXED_LISTS = ("model.hidden.", "model.conv_channels.")  # swept element by element
EXAMPLE = "optimizer.learning_rate=0.001,0.01,0.1"
# Short names of the swept values in run names ("xor · lr=0.01 · width=8 · seed=2").
SHORT = {
    "optimizer.learning_rate": "lr",
    "optimizer.weight_decay": "wd",
    "optimizer.name": "opt",
    "training.batch_size": "batch",
    "dataset.seed": "data_seed",
    "dataset.n_samples": "samples",
    "dataset.name": "data",
    WIDTH: "width",
}

Axes = list[tuple[str, list[Any]]]


class SweepError(SpecError):
    """An invalid sweep; ``errors`` holds one line per problem, each naming the field."""

    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.args = ("invalid sweep:\n  " + "\n  ".join(errors),)


def parse_grid_option(text: str) -> tuple[str, list[str]]:
    """'FIELD=V1,V2,...' (the CLI's --grid) -> (field, raw values)."""
    field, sep, values = text.partition("=")
    if not sep or not field.strip():
        raise SweepError([f"grid: {text!r} must be FIELD=V1,V2,... (e.g. {EXAMPLE})"])
    return field.strip(), split_values(values)


def split_values(text: str) -> list[str]:
    """'0.001, 0.01,0.1' -> ['0.001', '0.01', '0.1'] (empty items dropped)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def grid_size(axes: Axes) -> int:
    return math.prod(len(values) for _field, values in axes) if axes else 0


def sweep_fields(
    base: ExperimentSpec, kinds: tuple[str, ...] = ("int", "float", "choice", "text")
) -> list[str]:
    """Every field a sweep can vary for this base spec, in spec order (hidden layers by
    index, plus `model.width`), optionally only those of some kinds."""
    out = [
        path
        for path, leaf in _leaves(ExperimentSpec, base.model_dump(mode="json"), "")
        if path not in NOT_SWEPT and _kind(leaf)[0] in kinds
    ]
    if base.model.hidden and "int" in kinds:
        out.insert(out.index("model.hidden.0.units"), WIDTH)
    return out


def field_kind(base: ExperimentSpec, field: str) -> tuple[str, tuple[str, ...]]:
    """('int' | 'float' | 'choice' | 'text', choices) of a sweepable field; SweepError if
    the field is not one."""
    if field == WIDTH and base.model.hidden:
        return "int", ()
    leaf = None if field in NOT_SWEPT else _leaf(base, field)
    if leaf is None or _kind(leaf)[0] == "other":
        raise SweepError([_unknown_field(base, field)])
    return _kind(leaf)


def parse_axes(base: ExperimentSpec, axes: Axes) -> Axes:
    """Check the axes (1 to 3, known fields, each value once) and give each value the
    field's type; raises SweepError listing every problem."""
    errors = []
    if not axes:
        errors.append(
            f"grid: no axis; a sweep varies 1 to {MAX_SWEEP_AXES} spec fields (e.g. {EXAMPLE})"
        )
    elif len(axes) > MAX_SWEEP_AXES:
        errors.append(
            f"grid: {len(axes)} axes is above the limit of {MAX_SWEEP_AXES} axes per sweep"
        )
    out: Axes = []
    for field, values in axes:
        try:
            kind, choices = field_kind(base, field)
        except SweepError as exc:
            errors += exc.errors
            continue
        typed, problems = _convert_all(field, kind, choices, list(values))
        errors += problems
        out.append((field, typed))
    errors += _overlaps([field for field, _values in axes])
    if errors:
        raise SweepError(errors)
    return out


def expand_grid(base: ExperimentSpec, axes: Axes) -> list[ExperimentSpec]:
    """One validated spec per point of the grid, first axis outermost, named after the
    swept values. All or nothing: any invalid value raises SweepError, naming the field,
    the limit and which value it was."""
    axes = parse_axes(base, axes)
    total = grid_size(axes)
    if total > MAX_SWEEP_RUNS:
        sizes = " × ".join(str(len(values)) for _field, values in axes)
        raise SweepError(
            [f"grid: {sizes} = {total} runs is above the limit of {MAX_SWEEP_RUNS} runs per sweep"]
        )
    errors = _check_each_value(base, axes)
    if errors:
        raise SweepError(errors)
    labels = _labels(base, [field for field, _values in axes])
    data = base.model_dump(mode="json")
    specs, errors = [], []
    for k, point in enumerate(itertools.product(*(values for _f, values in axes)), start=1):
        names = " · ".join(f"{label}={_show(v)}" for label, v in zip(labels, point, strict=True))
        point_data = copy.deepcopy(data)
        for (field, _values), value in zip(axes, point, strict=True):
            _apply(point_data, field, value)
        point_data["name"] = f"{base.name or 'sweep'} · {names}"[-200:]
        try:
            specs.append(parse_spec(point_data))
        except SpecError as exc:  # a combination that breaks a limit (e.g. recorded bytes)
            errors += [f"{line} (sweep run {k} of {total}: {names})" for line in exc.errors]
    if errors:
        raise SweepError(
            errors[:10] + ([f"... and {len(errors) - 10} more"] if len(errors) > 10 else [])
        )
    return specs


def describe_axes(axes: Axes) -> list[dict[str, Any]]:
    """The JSON stored with a group: [{"field": ..., "values": [...]}]."""
    return [{"field": field, "values": list(values)} for field, values in axes]


# -- fields ------------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """int from Annotated[int, ...] | None; list[X] and models stay as they are."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _leaves(annotation: Any, value: Any, prefix: str):
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            sub = value.get(name) if isinstance(value, dict) else None
            yield from _leaves(info.annotation, sub, f"{prefix}{name}.")
    elif get_origin(annotation) is list:
        item = get_args(annotation)[0]
        is_model = isinstance(_unwrap(item), type) and issubclass(_unwrap(item), BaseModel)
        if is_model or prefix in INDEXED_LISTS:  # not tags or class lists
            for i, sub in enumerate(value or []):
                yield from _leaves(item, sub, f"{prefix}{i}.")
    else:
        yield prefix[:-1], annotation


def _leaf(base: ExperimentSpec, field: str) -> Any:
    return dict(_leaves(ExperimentSpec, base.model_dump(mode="json"), "")).get(field)


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) is Literal:
        return "choice", tuple(str(a) for a in get_args(annotation))
    if annotation is bool:
        return "other", ()
    return {int: "int", float: "float", str: "text"}.get(annotation, "other"), ()


def _unknown_field(base: ExperimentSpec, field: str) -> str:
    if field in NOT_SWEPT:
        return f"{field}: cannot be swept (run names are generated from the swept values)"
    if field == WIDTH:
        return f"{WIDTH}: the base spec has no hidden layers to size"
    fields = sweep_fields(base)
    inside = [f for f in fields if f.startswith(field + ".")]
    if inside:
        return f"{field}: is a group of fields; sweep one of {', '.join(inside[:6])}"
    last = field.rsplit(".", 1)[-1]
    close = [f for f, short in SHORT.items() if short == field and f in fields]
    close += [f for f in fields if f.endswith("." + last) and f not in close]
    close += [
        f for f in difflib.get_close_matches(field, fields, n=4, cutoff=0.6) if f not in close
    ]
    hint = (
        f"did you mean {', '.join(close[:4])}?"
        if close
        else "sweepable fields are leaves of the spec such as optimizer.learning_rate, "
        f"{WIDTH}, model.hidden.0.units, training.seed (docs/spec.md)"
    )
    return f"{field}: not a field of the spec; {hint}"


def _overlaps(fields: list[str]) -> list[str]:
    errors = [
        f"{field}: appears in {fields.count(field)} axes; one axis per field"
        for field in dict.fromkeys(fields)
        if fields.count(field) > 1
    ]
    units = [f for f in fields if f.startswith("model.hidden.") and f.endswith(".units")]
    if WIDTH in fields and units:
        errors.append(
            f"{WIDTH}: sets every hidden layer's units, so {units[0]} cannot be "
            "swept with it; sweep one of them"
        )
    return errors


# -- values ------------------------------------------------------------------------------


def _convert_all(
    field: str, kind: str, choices: tuple[str, ...], values: list[Any]
) -> tuple[list[Any], list[str]]:
    if not values:
        return [], [f"{field}: no values; give 1 or more, separated by commas"]
    typed, errors, seen = [], [], {}
    for i, raw in enumerate(values, start=1):
        where = f"(sweep value {i} of {len(values)})"
        try:
            value = _convert(kind, choices, raw)
        except ValueError as exc:
            errors.append(f"{field}: {raw!r} {exc} {where}")
            continue
        if value in seen:
            errors.append(
                f"{field}: {_show(value)} is given twice (values {seen[value]} and "
                f"{i}); each value once"
            )
            continue
        seen[value] = i
        typed.append(value)
    return typed, errors


def _convert(kind: str, choices: tuple[str, ...], raw: Any) -> Any:
    text = raw.strip() if isinstance(raw, str) else str(raw)
    if kind == "choice":
        if text not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return text
    if kind == "text":
        return text
    try:
        number = float(text)
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(number):
        raise ValueError("is not a finite number")
    if kind == "float":
        return number
    if not number.is_integer():
        raise ValueError("is not a whole number")
    return int(number) if "." in text or "e" in text.lower() else int(text)


def _check_each_value(base: ExperimentSpec, axes: Axes) -> list[str]:
    """Each value on its own in the base spec, so an error says which value broke which
    limit ('... must be at most 10.0 (sweep value 3 of 4)')."""
    errors = []
    data = base.model_dump(mode="json")
    for field, values in axes:
        for i, value in enumerate(values, start=1):
            one = copy.deepcopy(data)
            _apply(one, field, value)
            try:
                parse_spec(one)
            except SpecError as exc:
                errors += [
                    f"{_blame(field, line)} (sweep value {i} of {len(values)})"
                    for line in exc.errors
                ]
    return list(dict.fromkeys(errors))  # a width sweep repeats one error per layer


def _blame(field: str, line: str) -> str:
    """Put the swept field first: 'model.hidden.1.units: ...' of a width sweep reads
    'model.width: ...'; an error of another field says which value caused it."""
    location = line.split(":", 1)[0]
    if field == WIDTH and location.startswith("model.hidden."):
        return f"{WIDTH}:{line.split(':', 1)[1]}"
    return line if location == field else f"{field}: {line}"


def _apply(data: dict[str, Any], field: str, value: Any) -> None:
    if field == WIDTH:
        for layer in data["model"]["hidden"]:
            layer["units"] = value
        return
    *parents, last = field.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value


def _labels(base: ExperimentSpec, fields: list[str]) -> list[str]:
    labels = []
    for field in fields:
        parts = field.split(".")
        if field in SHORT:
            labels.append(SHORT[field])
        elif parts[:2] == ["model", "hidden"]:
            several = len(base.model.hidden) > 1
            labels.append(parts[3] + (str(int(parts[2]) + 1) if several else ""))
        elif parts[:2] == ["model", "conv_channels"]:
            labels.append(f"conv{int(parts[2]) + 1}")
        else:
            labels.append(parts[-1])
    return [
        field if labels.count(label) > 1 else label
        for field, label in zip(fields, labels, strict=True)
    ]


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
