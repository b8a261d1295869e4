"""The new-experiment page's sweep card: up to three (field, values) rows, read as grid axes."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from netlens.storage.spec import ExperimentSpec, LayerSpec, ModelSpec
from netlens.storage.sweep import (
    MAX_SWEEP_AXES,
    MAX_SWEEP_RUNS,
    WIDTH,
    Axes,
    SweepError,
    expand_grid,
    grid_size,
    parse_axes,
    split_values,
    sweep_fields,
)

TOGGLE, COLLAPSE, COUNT = "sweep-toggle", "sweep-collapse", "sweep-count"
ROWS = range(MAX_SWEEP_AXES)
FIELD_IDS = [f"sweep-field-{i}" for i in ROWS]
VALUE_IDS = [f"sweep-values-{i}" for i in ROWS]
ERROR_IDS = [f"sweep-values-{i}-error" for i in ROWS]
PLACEHOLDERS = ["0.001, 0.01, 0.1", "4, 8, 16", "0, 1, 2"]


def card(field_labels: dict[str, str]) -> dbc.Card:
    """Closed by default; the page's Submit button submits a group when a row is filled."""
    rows = [
        dbc.Row(
            [
                dbc.Col(
                    dbc.Select(
                        id=FIELD_IDS[i],
                        size="sm",
                        placeholder="field to sweep…",
                        options=field_options(1, 2, field_labels),
                    ),
                    md=6,
                ),
                dbc.Col(
                    [
                        dbc.Input(
                            id=VALUE_IDS[i],
                            size="sm",
                            debounce=True,
                            type="text",
                            placeholder=f"values, e.g. {PLACEHOLDERS[i]}",
                        ),
                        dbc.FormFeedback(id=ERROR_IDS[i], type="invalid"),
                    ],
                    md=6,
                ),
            ],
            className="g-2 mb-2",
        )
        for i in ROWS
    ]
    header = dbc.CardHeader(
        dbc.Button(
            "Sweep (optional) ▸",
            id=TOGGLE,
            color="link",
            size="sm",
            className="p-0 fw-semibold text-decoration-none text-reset",
        )
    )
    body = dbc.CardBody(
        dbc.Row(
            [
                dbc.Col(rows, lg=8),
                dbc.Col(
                    [
                        html.P(
                            f"Up to {MAX_SWEEP_AXES} fields, each with comma-separated values: one "
                            f"run per combination (at most {MAX_SWEEP_RUNS}), submitted as one "
                            "group. The form below is the base spec of every run.",
                            className="small text-muted mb-2",
                        ),
                        html.Div(id=COUNT, className="small"),
                    ],
                    lg=4,
                ),
            ]
        )
    )
    return dbc.Card(
        [header, dbc.Collapse(body, id=COLLAPSE, is_open=False)], className="form-section mb-3"
    )


def field_options(n_hidden: int, n_conv: int, labels: dict[str, str]) -> list[dict]:
    """The numeric and categorical fields of a spec with that many hidden and conv layers."""
    shape = ExperimentSpec(
        model=ModelSpec(hidden=[LayerSpec(units=1)] * n_hidden, conv_channels=[1] * n_conv)
    )
    return [
        {
            "label": f"{path} ({_label(path, labels)})" if _label(path, labels) else path,
            "value": path,
        }
        for path in sweep_fields(shape, ("int", "float", "choice"))
    ]


def _label(path: str, labels: dict[str, str]) -> str:
    parts = path.split(".")
    if path == WIDTH:
        return "every hidden layer's units"
    if parts[:2] == ["model", "hidden"]:
        return f"hidden layer {int(parts[2]) + 1} {parts[3]}"
    if parts[:2] == ["model", "conv_channels"]:
        return f"conv {int(parts[2]) + 1} channels"
    return labels.get(path, "")


def read_rows(is_open: bool, fields: list, texts: list) -> tuple[Axes, dict[int, str]]:
    """The axes the filled rows describe, and errors of rows that cannot be read. A closed
    card or empty rows mean no sweep."""
    axes: Axes = []
    errors: dict[int, str] = {}
    if not is_open:
        return axes, errors
    for i, (field, text) in enumerate(zip(fields, texts, strict=True)):
        if field:
            axes.append((field, split_values(text or "")))
        elif (text or "").strip():
            errors[i] = "choose the field these values are for"
    return axes, errors


def check(
    base: ExperimentSpec | None, is_open: bool, fields: list, texts: list
) -> tuple[Axes, dict[int, str], list[str]]:
    """(axes, errors by row, errors of the whole grid) as the page shows them; with no base
    spec (the form is invalid) only the rows themselves are checked."""
    axes, by_row = read_rows(is_open, fields, texts)
    general: list[str] = []
    if not axes or by_row or base is None:
        return axes, by_row, general
    try:
        axes = parse_axes(base, axes)
        expand_grid(base, axes)
    except SweepError as exc:
        for line in exc.errors:
            row = next((i for i, f in enumerate(fields) if f and line.startswith(f + ":")), None)
            if row is None:
                general.append(line)
            else:
                by_row[row] = (by_row.get(row, "") + " " + line).strip()
    return axes, by_row, general


def user_limit() -> int:
    """The most runs one sweep of the current user may have: their limit (storage/limits.py),
    never above the hard cap (admins: the hard cap)."""
    from netlens.storage.limits import effective_limits
    from netlens.webapp import context
    from netlens.webapp.auth import current_actor

    web = context.current()
    values = effective_limits(web.db, web.settings, current_actor().id)
    mine = int(values["sweep_runs"]) if values else 0
    return min(mine or MAX_SWEEP_RUNS, MAX_SWEEP_RUNS)


def count_text(
    axes: Axes, general: list[str], is_valid: bool, limit: int = MAX_SWEEP_RUNS
) -> html.Div | str:
    if not axes:
        return ""
    total = grid_size(axes)
    sizes = " × ".join(str(len(values)) for _f, values in axes)
    over = total > limit
    line = html.Div(
        f"{sizes} = {total} run{'s' if total != 1 else ''}" + (f" (limit {limit})" if over else ""),
        className="fw-semibold " + ("text-danger" if over or not is_valid else "text-success"),
    )
    return html.Div(
        [line]
        + [
            html.Div(g, className="text-danger")
            for g in general
            if not g.startswith("grid: ") or not over
        ]
    )
