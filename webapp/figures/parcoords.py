"""Parallel coordinates of many runs: the spec fields that vary against the final metrics, and
the runs a brush (the dimensions' constraint ranges) selects."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from netlens.storage.spec import describe_layers
from netlens.webapp.figures.common import TEMPLATE, UIREVISION, empty_figure

MAX_PARCOORDS_RUNS = 1000
MAX_SPEC_DIMENSIONS = 12
SKIPPED_FIELDS = ("name", "tags", "version")
METRICS = (
    ("train_loss", "train loss"),
    ("val_loss", "val loss"),
    ("val_accuracy", "val acc"),
    ("train_accuracy", "train acc"),
)
NO_VALUE = "no value"
NO_VALUE_COLOR = "#b0b0b0"
# Short axis labels: a parallel-coordinates axis is ~100 px wide, "optimizer.learning_rate" is not.
LABELS = {
    "dataset.name": "dataset",
    "dataset.n_samples": "samples",
    "dataset.seed": "data seed",
    "dataset.classes": "classes",
    "dataset.ood_classes": "unseen classes",
    "model.kind": "model",
    "model.hidden": "hidden widths",
    "model.hidden.activation": "activations",
    "model.conv_activation": "conv act.",
    "optimizer.name": "optimizer",
    "optimizer.learning_rate": "learning rate",
    "training.seed": "seed",
    "training.epochs": "epochs",
    "recording.every": "record every",
    "recording.grid_resolution": "grid res.",
    "recording.grid_every": "grid every",
    "recording.grad_norm_steps": "norm steps",
}


def spec_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec as {dotted field: value} (the keys of compare.flatten), without name, tags and
    version; hidden layers become their widths ("8-8") and activations, other lists "a-b"."""
    out: dict[str, Any] = {}

    def walk(data: dict[str, Any], prefix: str) -> None:
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            if path in SKIPPED_FIELDS:
                continue
            if isinstance(value, dict):
                walk(value, path)
            elif path == "model.layers" and isinstance(value, list):
                if value:  # kind sequential: its layers in one short line
                    out[path] = describe_layers(value, (spec.get("model") or {}).get("input_shape"))
            elif path == "model.hidden" and isinstance(value, list):
                out[path] = "-".join(str(layer.get("units")) for layer in value) or "none"
                activations = list(dict.fromkeys(layer.get("activation") for layer in value))
                out[f"{path}.activation"] = "-".join(map(str, activations)) or "none"
            elif isinstance(value, list):
                out[path] = "-".join(map(str, value)) or "none"
            else:
                out[path] = value

    walk(spec or {}, "")
    return out


def varying_fields(specs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Only the fields whose values differ between the runs, in spec order."""
    flat = [spec_fields(s) for s in specs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


def axis_labels(fields: Sequence[str]) -> dict[str, str]:
    """Short, unique labels: LABELS, else the last part of the path with spaces."""
    labels = {f: LABELS.get(f, f.rsplit(".", 1)[-1].replace("_", " ")) for f in fields}
    taken = list(labels.values())
    return {
        f: f"{f.split('.', 1)[0]} {label}" if taken.count(label) > 1 else label
        for f, label in labels.items()
    }


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_WIDTHS = re.compile(r"\d{1,18}(-\d{1,18})*")  # longer: text (int() of 4300+ digits raises)


def _sort_key(value: Any) -> tuple:
    """Numbers, then widths like "8-8" by their numbers, then other text; none last."""
    if _is_number(value):
        return (0, (float(value),), "")
    if isinstance(value, str) and _WIDTHS.fullmatch(value):
        return (1, tuple(int(w) for w in value.split("-")), "")
    return (2 + (value is None), (), _text(value))


def _categorical(label: str, values: list[Any]) -> dict[str, Any]:
    categories = sorted({_text(v): v for v in values}.values(), key=_sort_key)
    code = {_text(v): i for i, v in enumerate(categories)}
    return {
        "label": label,
        "values": [code[_text(v)] for v in values],
        "tickvals": list(range(len(categories))),
        "ticktext": [_text(v) for v in categories],
    }


def _spread_enough(positions: np.ndarray) -> bool:
    """Ticks at these positions can all carry a label without overlapping."""
    span = positions[-1] - positions[0]
    return len(positions) <= 8 and bool(np.all(np.diff(positions) >= span / 14))


def _log_ticks(lo: float, hi: float) -> np.ndarray:
    """Round values between lo and hi for a log axis: 1-2-5 or 1-3 per decade, else decades."""
    decades = np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = np.array([m * 10.0**d for d in decades for m in mantissas])
        ticks = ticks[(ticks >= lo * (1 - 1e-9)) & (ticks <= hi * (1 + 1e-9))]
        if len(ticks) <= 8:
            return ticks
    return ticks


def _numeric(label: str, values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    lo, hi = float(array.min()), float(array.max())
    is_log = lo > 0 and hi / lo > 10  # more than a decade (a learning-rate sweep)
    shown = np.log10(array) if is_log else array
    dim: dict[str, Any] = {"label": label, "values": shown.tolist()}
    distinct = np.unique(array)
    positions = np.log10(distinct) if is_log else distinct
    if _spread_enough(positions):
        ticks = distinct
    elif is_log:
        ticks = _log_ticks(lo, hi)
    else:
        return dim  # Plotly's own ticks
    dim["tickvals"] = (np.log10(ticks) if is_log else ticks).tolist()
    dim["ticktext"] = [f"{t:g}" for t in ticks]
    return dim


def spec_dimension(label: str, values: list[Any]) -> dict[str, Any]:
    """Numbers on a linear (or, spanning > 1 decade, log10) axis; anything else categorical
    with integer codes and the values as tick labels."""
    if all(_is_number(v) for v in values):
        return _numeric(label, [float(v) for v in values])
    return _categorical(label, values)


def nice_ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    """About `count` round numbers (1, 2, 5 × 10^k steps) between lo and hi."""
    if hi <= lo:
        return np.array([lo])
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(math.ceil(lo / step) * step, hi + step * 1e-9, step)


def metric_values(values: list[float | None]) -> tuple[np.ndarray, float | None]:
    """Values with the missing ones (failed runs, NaN) at a `no value` level below the rest;
    returns (values, that level or None when nothing is missing)."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    missing = ~np.isfinite(array)
    if not missing.any():
        return array, None
    lo, hi = float(np.min(array[~missing])), float(np.max(array[~missing]))
    level = lo - max(hi - lo, abs(lo) * 0.1, 0.05) * 0.15
    array[missing] = level
    return array, level


def metric_dimension(label: str, values: list[float | None]) -> dict[str, Any]:
    array, level = metric_values(values)
    dim: dict[str, Any] = {"label": label, "values": array.tolist()}
    if level is not None:
        real = array[array > level]
        ticks = [float(t) for t in nice_ticks(float(real.min()), float(real.max()))]
        dim["tickvals"] = [level, *ticks]
        dim["ticktext"] = [NO_VALUE, *[f"{t:.3g}" for t in ticks]]
    return dim


def _line(rows: Sequence[Any]) -> dict[str, Any]:
    """Colour by final val accuracy (train accuracy without validation); no value is grey."""
    found = next(
        (
            (key, title)
            for key, title in (("val_accuracy", "val acc"), ("train_accuracy", "train acc"))
            if any(_is_number(r.final_metrics.get(key)) for r in rows)
        ),
        None,
    )
    if found is None:
        return {"color": "#1f77b4"}
    values, title = [r.final_metrics.get(found[0]) for r in rows], found[1]
    array, level = metric_values(values)
    real = array if level is None else array[array > level]
    lo, hi = float(real.min()), float(real.max())
    hi = hi if hi > lo else lo + 1e-6
    colorbar = {"title": {"text": title}, "thickness": 14, "len": 0.8}
    scale: list = [
        [0.0, "#440154"],
        [0.25, "#3b528b"],
        [0.5, "#21918c"],
        [0.75, "#5ec962"],
        [1.0, "#fde725"],
    ]  # viridis
    if level is not None:  # a grey band at the bottom of the scale for runs without a value
        cut = (lo - level) / (hi - level)
        scale = [[0.0, NO_VALUE_COLOR], [cut * 0.5, NO_VALUE_COLOR]] + [
            [cut * 0.5 + (1 - cut * 0.5) * p, c] for p, c in scale
        ]
        ticks = nice_ticks(lo, hi, 4)
        colorbar |= {
            "tickvals": [level, *ticks.tolist()],
            "ticktext": [NO_VALUE, *[f"{t:.3g}" for t in ticks]],
        }
        lo = level
    return {
        "color": array.tolist(),
        "colorscale": scale,
        "cmin": lo,
        "cmax": hi,
        "showscale": True,
        "colorbar": colorbar,
    }


def _caption(
    n: int, n_fields: int, left_out: int, n_missing: int, more_matching: bool
) -> tuple[str, list[str]]:
    """The heading and the notes under it."""
    text = f"{n:,} runs · {n_fields} spec field{'s' * (n_fields != 1)} that vary"
    notes = []
    if more_matching:
        notes.append(
            f"the first {MAX_PARCOORDS_RUNS:,} runs of more than {MAX_PARCOORDS_RUNS:,}"
            " that match: narrow the filters to see the others"
        )
    if left_out:
        notes.append(f"{left_out} more varying field{'s' * (left_out != 1)} not shown")
    if n_missing:
        notes.append(
            f"{n_missing} run{'s' * (n_missing != 1)} without final metrics "
            f"(failed, diverged or unfinished) at '{NO_VALUE}'"
        )
    return text, notes


def _title(heading: str, notes: list[str]) -> str:
    return heading + (
        "<br><span style='font-size:11px;color:#555'>" + "; ".join(notes) + "</span>"
        if notes
        else ""
    )


def run_label(row: Any) -> str:
    """What a line says when the pointer is on it: "#12 name (status)"."""
    name = getattr(row, "name", "") or ""
    status = getattr(row, "status", "") or ""
    return f"#{row.id} {name}".strip() + (f" ({status})" if status else "")


def build_parallel_coordinates(
    rows: Sequence[Any], *, more_matching: bool = False, height: int = 520
) -> go.Figure:
    """One line per run (objects with .spec and .final_metrics, e.g. storage RunOverview or
    RunInfo), one axis per varying spec field then per final metric, coloured by accuracy.
    More than MAX_PARCOORDS_RUNS rows: the first ones are drawn and the title says so."""
    more_matching = more_matching or len(rows) > MAX_PARCOORDS_RUNS
    rows = list(rows)[:MAX_PARCOORDS_RUNS]
    if len(rows) < 2:
        return empty_figure(f"Parallel coordinates need at least 2 runs; {len(rows)} match")
    fields = varying_fields([r.spec for r in rows])
    shown = list(fields)[:MAX_SPEC_DIMENSIONS]
    labels = axis_labels(shown)
    dims = [spec_dimension(labels[f], fields[f]) for f in shown]
    for key, label in METRICS:
        values = [r.final_metrics.get(key) for r in rows]
        if any(_is_number(v) for v in values):
            dims.append(metric_dimension(label, values))
    if not dims:
        return empty_figure(f"{len(rows)} runs with the same spec and no final metrics yet")
    n_missing = sum(all(r.final_metrics.get(k) is None for k, _ in METRICS) for r in rows)
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line=_line(rows),
            labelangle=-15,
            labelside="top",
            labelfont={"size": 12},
            tickfont={"size": 11},
            # axis-end min/max labels: codes and log10 values, not what the ticks say
            rangefont={"color": "rgba(0,0,0,0)"},
        )
    )
    heading, notes = _caption(
        len(rows), len(shown), len(fields) - len(shown), n_missing, more_matching
    )
    fig.update_layout(
        template=TEMPLATE,
        height=height,
        font={"size": 12},
        uirevision=UIREVISION,
        title={
            "text": _title(heading, notes),
            "x": 0.0,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "yref": "container",
            "font": {"size": 14},
        },
        margin={"l": 70, "r": 40, "t": 110, "b": 30},
        # for webapp/assets/netlens-parcoords.js: the caption as text, a label per line
        meta={"heading": heading, "notes": notes, "run_labels": [run_label(r) for r in rows]},
    )
    return fig


# --------------------------------------------------------------------------- the brush


def _decode(values: Any) -> np.ndarray:
    """A dimension's values as Dash hands them back: a list, or Plotly's typed-array JSON."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    if isinstance(values, dict):  # a JS typed array serialised as {"0": v0, "1": v1, ...}
        return np.array([values[k] for k in sorted(values, key=int)], dtype=float)
    return np.asarray(values if values is not None else [], dtype=float)


def dimensions_of(figure_or_dimensions: Any) -> list[dict[str, Any]]:
    """The parcoords dimensions of a figure (go.Figure or its dict) or a list of them."""
    if isinstance(figure_or_dimensions, go.Figure):
        figure_or_dimensions = figure_or_dimensions.to_plotly_json()
    if isinstance(figure_or_dimensions, dict):
        traces = [t for t in figure_or_dimensions.get("data") or [] if t.get("type") == "parcoords"]
        return list(traces[0].get("dimensions") or []) if traces else []
    return list(figure_or_dimensions or [])


def constraint_ranges(value: Any) -> list[tuple[float, float]]:
    """A constraintrange, [lo, hi] or [[lo, hi], ...], as (lo, hi) pairs; None gives []."""
    if value is None or len(value) == 0:
        return []
    if all(isinstance(v, int | float) for v in value):
        value = [value]
    return [
        (min(float(r[0]), float(r[1])), max(float(r[0]), float(r[1])))
        for r in value
        if r is not None and len(r) == 2
    ]


def _one_trace(value: Any) -> Any:
    """restyle values are per trace ([value of trace 0, ...]); a bare [lo, hi] is taken as is."""
    if isinstance(value, list) and value and (value[0] is None or isinstance(value[0], list)):
        return value[0]
    return value


_CONSTRAINT = re.compile(r"dimensions\[(\d+)\]\.constraintrange")


def apply_restyle(dimensions: list[dict[str, Any]], restyle_data: Any) -> list[dict[str, Any]]:
    """The dimensions after a dcc.Graph `restyleData` event ([{attribute: value}, [trace]]):
    a brush sets `dimensions[i].constraintrange`; dragging an axis may send all `dimensions`."""
    if not restyle_data:
        return dimensions
    changes = restyle_data[0] if isinstance(restyle_data, list) else restyle_data
    dims = [dict(d) for d in dimensions]
    for key, value in (changes or {}).items():
        if key == "dimensions" and isinstance(value, list):
            dims = [dict(d) for d in _one_trace(value) or []]
        elif (match := _CONSTRAINT.fullmatch(key)) and int(match.group(1)) < len(dims):
            dims[int(match.group(1))]["constraintrange"] = _one_trace(value)
    return dims


def selected_runs(figure_or_dimensions: Any, run_ids: Sequence[int]) -> list[int]:
    """The runs (ids in the figure's line order) inside every dimension's constraint ranges;
    a dimension with several ranges keeps a run inside any of them; no brush keeps all."""
    keep = np.ones(len(run_ids), dtype=bool)
    for dim in dimensions_of(figure_or_dimensions):
        ranges = constraint_ranges(dim.get("constraintrange"))
        if not ranges:
            continue
        values = _decode(dim.get("values"))
        if values.shape[0] != len(run_ids):
            raise ValueError(
                f"dimension {dim.get('label')!r} has {values.shape[0]} values for "
                f"{len(run_ids)} runs"
            )
        inside = np.zeros(len(run_ids), dtype=bool)
        for lo, hi in ranges:
            inside |= (values >= lo) & (values <= hi)
        keep &= inside
    return [int(i) for i, k in zip(run_ids, keep, strict=True) if k]
