"""New experiment: a form for every spec field, validated like the CLI, with previews."""

from __future__ import annotations

import os
import threading
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from netlens.storage import catalog
from netlens.storage.presets import get_preset, preset_names
from netlens.storage.sizing import dataset_shape, estimate_recorded_bytes
from netlens.storage.spec import (
    DATASETS_2D,
    ExperimentSpec,
    SpecError,
    check_trainable,
    parse_spec,
)
from netlens.storage.sweep import SweepError
from netlens.storage.uploads import DATASET_KIND, UploadError, resolve_spec_upload
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import on_click, rule
from netlens.webapp.figures.common import empty_figure
from netlens.webapp.figures.dataset import build_architecture_sketch, build_dataset_preview
from netlens.webapp.views import sweep as sweep_form
from netlens.webapp.views.common import graph

dash.register_page(__name__, path="/new", title="New experiment · NetLens", access="member")

PRESET, SUBMIT, FEEDBACK, REDIRECT = "new-preset", "new-submit", "new-feedback", "new-redirect"
PREVIEW, SKETCH, SIZE = "new-preview", "new-sketch", "new-size"
UPLOAD, UPLOAD_BOX, UPLOAD_STATUS = "new-upload", "new-upload-box", "new-upload-status"
NOT_SWEPT_HERE = ("dataset.upload", "dataset.path")  # resolved once, before the grid expands
# The choices of each select are storage/catalog.py's, in its order: what the form can
# give (not the arrays of nl.Sequential.fit, nor the external data and flax models of
# nl.Recorder runs).
DATASETS = list(catalog.form_dataset_names())
ACTIVATIONS = list(catalog.ACTIVATIONS)

# (component id, spec path, label, kind, choices) in form order, grouped by section.
SECTIONS: dict[str, list[tuple[str, str, str, str, list[str] | None]]] = {
    "Experiment": [
        ("f-name", "name", "Name", "text", None),
        ("f-tags", "tags", "Tags", "list", None),
    ],
    "Data": [
        ("f-dataset", "dataset.name", "Dataset", "select", DATASETS),
        ("f-n-samples", "dataset.n_samples", "Samples", "int", None),
        ("f-noise", "dataset.noise", "Noise (0–0.5)", "float", None),
        ("f-val", "dataset.val_fraction", "Validation fraction", "float", None),
        ("f-data-seed", "dataset.seed", "Data seed", "int", None),
        ("f-classes", "dataset.classes", "Classes (e.g. 1, 7)", "ints", None),
        ("f-ood", "dataset.ood_classes", "Unseen probe classes (e.g. 3, 4)", "ints", None),
        ("f-path", "dataset.path", "File path (MNIST/CSV)", "text", None),
        ("f-upload", "dataset.upload", "Uploaded file (id)", "int", None),
        ("f-label", "dataset.label_column", "CSV label column", "text", None),
    ],
    "Network": [
        ("f-kind", "model.kind", "Kind", "select", list(catalog.form_model_kinds())),
        ("f-hidden", "model.hidden", "Hidden layers (e.g. 8 tanh, 8 tanh)", "layers", None),
        ("f-conv", "model.conv_channels", "CNN conv channels (e.g. 8, 16)", "ints", None),
        ("f-conv-act", "model.conv_activation", "CNN conv activation", "select", ACTIVATIONS),
    ],
    "Optimizer": [
        ("f-opt", "optimizer.name", "Optimizer", "select", list(catalog.OPTIMIZERS)),
        ("f-lr", "optimizer.learning_rate", "Learning rate", "float", None),
        ("f-momentum", "optimizer.momentum", "Momentum", "float", None),
        ("f-wd", "optimizer.weight_decay", "Weight decay", "float", None),
        ("f-schedule", "optimizer.schedule", "Schedule", "select", list(catalog.SCHEDULES)),
        ("f-warmup", "optimizer.warmup_epochs", "Warm-up epochs", "int", None),
    ],
    "Training": [
        ("f-epochs", "training.epochs", "Epochs", "int", None),
        ("f-batch", "training.batch_size", "Batch size", "int", None),
        ("f-seed", "training.seed", "Initialisation seed", "int", None),
        ("f-device", "training.device", "Device", "select", list(catalog.DEVICES)),
    ],
    "Recording": [
        ("f-every", "recording.every", "Record every N epochs", "int", None),
        ("f-probe", "recording.probe_size", "Probe inputs", "int", None),
        ("f-grid", "recording.grid_resolution", "Boundary grid side (2-D)", "int", None),
        (
            "f-sig-dtype",
            "recording.signature_dtype",
            "Signatures stored as (float16: half the space, lossy)",
            "select",
            ["float32", "float16"],
        ),
    ],
}
FIELDS = [field for section in SECTIONS.values() for field in section]
LABELS = {path: label for _cid, path, label, _kind, _choices in FIELDS}
SWEEP_STATES = [State(sweep_form.COLLAPSE, "is_open")] + [
    State(cid, "value") for cid in sweep_form.FIELD_IDS + sweep_form.VALUE_IDS
]


def _control(cid: str, kind: str, choices: list[str] | None):
    if kind == "select":
        return dbc.Select(
            id=cid, options=[{"label": c, "value": c} for c in choices or []], size="sm"
        )
    return dbc.Input(
        id=cid,
        type="number" if kind in ("int", "float") else "text",
        size="sm",
        step="any" if kind == "float" else 1 if kind == "int" else None,
        debounce=True,
    )


def _section(title: str, fields, extra: list | None = None) -> dbc.Card:
    rows = [
        html.Div(
            [
                dbc.Label(label, html_for=cid, className="small mb-0"),
                _control(cid, kind, choices),
                dbc.FormFeedback(id=f"{cid}-error", type="invalid"),
            ],
            className="mb-2",
        )
        for cid, _path, label, kind, choices in fields
    ]
    return dbc.Card(
        [dbc.CardHeader(title), dbc.CardBody(rows + (extra or []))], className="form-section mb-3"
    )


def _upload_limit_mb() -> int:
    try:
        return context.current().settings.max_upload_mb
    except RuntimeError:  # no app context (a test building the layout alone)
        from netlens.storage.settings import Settings

        return Settings().max_upload_mb


def _upload_box() -> html.Div:
    """Shown for the datasets that read a file: the file is posted to /uploads (not sent in a
    callback), checked and stored by the server (storage.uploads), and its id fills
    dataset.upload."""
    limit_mb = _upload_limit_mb()
    return html.Div(
        [
            dbc.Label("Upload a file", html_for=UPLOAD, className="small mb-0"),
            dcc.Upload(
                id=UPLOAD,
                accept=".csv,.npz",
                multiple=False,
                max_size=limit_mb * 2**20,
                children=html.Div(["Drop a .csv or .npz here or ", html.A("choose one")]),
                className="small text-center border rounded p-2",
                style={"borderStyle": "dashed", "cursor": "pointer"},
            ),
            html.Div(
                f"CSV with a header row, or MNIST as a Keras .npz; at most {limit_mb} MB.",
                className="form-text",
            ),
            html.Div(id=UPLOAD_STATUS, className="small", role="status"),
        ],
        id=UPLOAD_BOX,
        className="mb-2",
        style={"display": "none"},
    )


def layout(preset: str | None = None, **_kwargs):
    sections = list(SECTIONS.items())
    return html.Div(
        [
            dcc.Location(id=REDIRECT, refresh="callback-nav"),
            html.H3("New experiment"),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Select(
                            id=PRESET,
                            value=preset if preset in preset_names() else "xor",
                            options=[{"label": f"preset: {n}", "value": n} for n in preset_names()],
                        ),
                        md=3,
                    ),
                    dbc.Col(dbc.Button("Submit", id=SUBMIT, color="primary"), width="auto"),
                    dbc.Col(html.Div(id=FEEDBACK)),
                ],
                className="mb-3 g-2",
            ),
            sweep_form.card(LABELS),
            dbc.Row(
                [
                    dbc.Col(
                        [_section(*sections[0]), _section(*sections[1], extra=[_upload_box()])],
                        md=3,
                    ),
                    dbc.Col([_section(*sections[2]), _section(*sections[3])], md=3),
                    dbc.Col(
                        [
                            _section(*sections[4]),
                            _section(*sections[5]),
                            dbc.Card(
                                [dbc.CardHeader("Recording size"), dbc.CardBody(html.Div(id=SIZE))]
                            ),
                        ],
                        md=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Card(
                                [dbc.CardHeader("Data preview"), dbc.CardBody(graph(PREVIEW, 300))],
                                className="mb-3",
                            ),
                            dbc.Card([dbc.CardHeader("Network"), dbc.CardBody(graph(SKETCH, 240))]),
                        ],
                        md=4,
                    ),
                ]
            ),
        ]
    )


def _get(data: dict, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def spec_to_form(spec: ExperimentSpec) -> list:
    data = spec.model_dump(mode="json")
    values = []
    for _cid, path, _label, kind, _choices in FIELDS:
        value = _get(data, path)
        if kind == "layers":
            value = ", ".join(f"{layer['units']} {layer['activation']}" for layer in value)
        elif kind in ("ints", "list"):
            value = ", ".join(str(v) for v in value) if value else ""
        values.append(value)
    return values


def form_to_data(values: list) -> tuple[dict, list[str]]:
    """The spec dict the form describes, and errors for text that cannot even be parsed."""
    data: dict = {}
    errors = []
    for (_cid, path, _label, kind, _choices), value in zip(FIELDS, values, strict=True):
        try:
            parsed = _parse(kind, value)
        except ValueError as exc:
            errors.append(f"{path}: {exc}")
            continue
        if parsed is None:
            continue
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = parsed
    return data, errors


def _parse(kind: str, value: Any) -> Any:
    text = "" if value is None else str(value).strip()
    if kind in ("int", "float", "select", "text"):
        if text == "":
            return None
        return text if kind in ("select", "text") else value
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if kind == "list":
        return parts
    if kind == "ints":
        try:
            return [int(p) for p in parts] or None
        except ValueError:
            raise ValueError(f"{text!r} must be whole numbers separated by commas") from None
    layers = []
    for part in parts:  # "8 tanh"
        words = part.split()
        if not words or not words[0].isdigit() or len(words) > 2:
            raise ValueError(f"{part!r}: write each layer as 'UNITS ACTIVATION', e.g. '8 tanh'")
        layers.append(
            {"units": int(words[0]), **({"activation": words[1]} if len(words) == 2 else {})}
        )
    return layers


def validate(values: list) -> tuple[ExperimentSpec | None, list[str]]:
    data, errors = form_to_data(values)
    if errors:
        return None, errors
    try:
        return check_trainable(parse_spec(data)), []  # not kind flax: nl.Recorder's
    except SpecError as exc:
        return None, exc.errors


def errors_by_field(errors: list[str]) -> tuple[dict[str, str], list[str]]:
    """Attach each error line to the form field whose spec path is its longest prefix."""
    by_field, general = {}, []
    for line in errors:
        location = line.split(":", 1)[0]
        match = max(
            (f for f in FIELDS if location == f[1] or location.startswith(f[1] + ".")),
            key=lambda f: len(f[1]),
            default=None,
        )
        if match is None:
            general.append(line)
        else:
            by_field[match[0]] = (by_field.get(match[0], "") + " " + line).strip()
    return by_field, general


@callback([Output(cid, "value") for cid, *_ in FIELDS], Input(PRESET, "value"))
@rule("member")
def fill_from_preset(name):
    if name not in (None, *preset_names()):
        raise PreventUpdate  # not one of the dropdown's options: a crafted call
    return spec_to_form(get_preset(name or "xor"))


@callback(
    [Output(cid, "invalid") for cid, *_ in FIELDS]
    + [Output(f"{cid}-error", "children") for cid, *_ in FIELDS]
    + [Output(SIZE, "children"), Output(SKETCH, "figure")],
    [Input(cid, "value") for cid, *_ in FIELDS],
)
@rule("member")
def check(*values):
    spec, errors = validate(list(values))
    if spec is not None:
        spec, errors = resolve_upload(spec)
    by_field, general = errors_by_field(errors)
    invalid = [cid in by_field for cid, *_ in FIELDS]
    messages = [by_field.get(cid, "") for cid, *_ in FIELDS]
    if spec is None:
        size = html.Div(
            [html.P(g, className="text-danger small") for g in general]
            or html.P("Fix the fields marked in red.", className="text-danger small")
        )
        return (
            invalid + messages + [size, empty_figure("The drawing appears once the form is valid")]
        )
    features, classes, _ = _file_shape(spec) or dataset_shape(spec)
    megabytes = estimate_recorded_bytes(spec, n_in=features, n_classes=classes) / 1024**2
    size = html.Div(
        [
            html.H4(f"≈ {megabytes:,.1f} MiB"),
            html.P(
                f"{spec.training.epochs // spec.recording.every + 1:,} recorded epochs",
                className="small text-muted mb-0",
            ),
        ]
    )
    return invalid + messages + [size, _sketch(spec)]


def resolve_upload(spec: ExperimentSpec) -> tuple[ExperimentSpec | None, list[str]]:
    """The spec with dataset.upload turned into the stored file's path (storage.uploads); a
    dataset.path typed in the form is refused, in single-user mode too (a path is read on the
    server: only the command line there may name one)."""
    web = context.current()
    try:
        actor = current_actor()
        return resolve_spec_upload(
            web.db, web.settings, spec, allow_paths=False, user_id=actor.id, is_admin=actor.is_admin
        ), []
    except SpecError as exc:
        return None, exc.errors
    except UploadError as exc:
        return None, [str(exc)]


def _file_shape(spec: ExperimentSpec) -> tuple[int, int, int | None] | None:
    """(features, classes, image side) of a CSV the server can read (an uploaded file, say),
    instead of storage.sizing's guess; None when it cannot be read (the preview says why)."""
    info = catalog.DATASETS[spec.dataset.name]
    if (info.n_inputs is not None and info.n_classes is not None) or not spec.dataset.path:
        return None
    try:
        data = _load(spec)
    except Exception:  # worker.datasets.DatasetError or an unreadable file
        return None
    return data.n_features, data.n_classes, None


_LOADED: dict[tuple, Any] = {}  # a few recent datasets of the preview (see _load)
_LOADED_LOCK = threading.Lock()
PREVIEW_ROWS = 2000  # rows of a file (CSV rows, MNIST images per part) the preview reads
CACHED = 2  # previews kept: at most 2 x 2 x 2,000 x 4,096 floats (~128 MB) for huge CSVs


def _load(spec: ExperimentSpec):
    """The dataset as the worker will load it, but only the first PREVIEW_ROWS rows of a
    file: the web process never reads a whole upload (a preview and a size estimate need no
    more). A few are kept, keyed by what they are made of (the dataset and probe fields, and
    a file's size and time of change), so that typing in other fields reads nothing again."""
    from netlens.worker.datasets import load_dataset

    stamp = None
    if spec.dataset.path:
        try:
            stat = os.stat(spec.dataset.path)
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None
    key = (spec.model_dump_json(include={"dataset", "recording"}), stamp)
    with _LOADED_LOCK:
        data = _LOADED.get(key)
    if data is None:
        data = load_dataset(
            spec, context.current().settings.resolved_data_dir, max_rows=PREVIEW_ROWS
        )
        with _LOADED_LOCK:
            while len(_LOADED) >= CACHED:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = data
    return data


def _sketch(spec: ExperimentSpec):
    features, classes, _ = _file_shape(spec) or dataset_shape(spec)
    loss = catalog.loss_for(classes)
    sizes = [features] + [layer.units for layer in spec.model.hidden] + [loss.output_units(classes)]
    names = ["input"] + [f"hidden_{i + 1}" for i in range(len(spec.model.hidden))] + ["output"]
    acts = [""] + [layer.activation for layer in spec.model.hidden] + [loss.output_activation]
    return build_architecture_sketch(sizes, names, activations=acts)


@callback(
    Output(PREVIEW, "figure"),
    [Input(cid, "value") for cid, path, *_ in FIELDS if path.startswith("dataset.")],
)
@rule("member")
def preview(*_values):
    values = [dash.ctx.inputs.get(f"{cid}.value") for cid, *_ in FIELDS]
    spec, _errors = validate(values)
    if spec is not None:
        spec, errors = resolve_upload(spec)
        if spec is None:
            return empty_figure(errors[0][:200])
    if spec is None:
        return empty_figure("Fix the data fields to see a preview")
    from netlens.worker.datasets import DatasetError

    try:
        data = _load(spec)
    except DatasetError as exc:  # its words name rows and limits, never the file's contents
        return empty_figure(str(exc)[:200])
    return build_dataset_preview(
        data.x_train,
        data.y_train,
        class_names=data.class_names,
        image_shape=data.image_shape,
        title=f"{spec.dataset.name}: {len(data.x_train)} training inputs"
        + (" (2-D)" if spec.dataset.name in DATASETS_2D else ""),
    )


@callback(
    Output(sweep_form.COLLAPSE, "is_open"),
    Output(sweep_form.TOGGLE, "children"),
    Input(sweep_form.TOGGLE, "n_clicks"),
    State(sweep_form.COLLAPSE, "is_open"),
    prevent_initial_call=True,
)
@rule("member")
def toggle_sweep(_n, is_open):
    return not is_open, "Sweep (optional) " + ("▸" if is_open else "▾")


@callback(
    [Output(cid, "options") for cid in sweep_form.FIELD_IDS],
    Input("f-hidden", "value"),
    Input("f-conv", "value"),
)
@rule("member")
def sweep_field_options(hidden, conv):
    """Hidden layers and conv channels are swept one by one: offer the ones the form has."""
    n_hidden = min(len([p for p in str(hidden or "").split(",") if p.strip()]), 8)
    n_conv = min(len([p for p in str(conv or "").split(",") if p.strip()]), 3)
    options = [
        o
        for o in sweep_form.field_options(n_hidden, n_conv, LABELS)
        if o["value"] not in NOT_SWEPT_HERE
    ]
    return [options] * len(sweep_form.FIELD_IDS)


def _unsweepable_rows(is_open, fields: list) -> dict[int, str]:
    """Rows sweeping the data file: refused (the upload is resolved once, for the base spec)."""
    if not is_open:
        return {}
    return {
        i: f"{f}: cannot be swept from the web form; the uploaded file is checked once "
        "for the base spec"
        for i, f in enumerate(fields)
        if f in NOT_SWEPT_HERE
    }


@callback(
    [Output(cid, "invalid") for cid in sweep_form.VALUE_IDS]
    + [Output(cid, "children") for cid in sweep_form.ERROR_IDS]
    + [Output(sweep_form.COUNT, "children"), Output(SUBMIT, "children")],
    [Input(sweep_form.COLLAPSE, "is_open")]
    + [Input(cid, "value") for cid in sweep_form.FIELD_IDS + sweep_form.VALUE_IDS]
    + [Input(cid, "value") for cid, *_ in FIELDS],
)
@rule("member")
def check_sweep(is_open, *values):
    """Live: the number of runs, and each row's problems under it (same rules as the CLI)."""
    n = len(sweep_form.FIELD_IDS)
    fields, texts, form = list(values[:n]), list(values[n : 2 * n]), list(values[2 * n :])
    base, _errors = validate(form)
    axes, by_row, general = sweep_form.check(base, is_open, fields, texts)
    by_row = {**by_row, **_unsweepable_rows(is_open, fields)}
    valid = not by_row and not general
    label = f"Submit sweep ({sweep_form.grid_size(axes)} runs)" if axes else "Submit"
    return (
        [i in by_row for i in range(n)]
        + [by_row.get(i, "") for i in range(n)]
        + [sweep_form.count_text(axes, general, valid, sweep_form.user_limit()), label]
    )


@callback(
    Output(FEEDBACK, "children"),
    Output(REDIRECT, "pathname"),
    Input(SUBMIT, "n_clicks"),
    [State(cid, "value") for cid, *_ in FIELDS] + SWEEP_STATES,
    prevent_initial_call=True,
)
@on_click
@rule("member")
def submit(_n, *values):
    """One run, or a group of runs when a sweep row is filled in (then /groups/ID)."""
    form, sweep = list(values[: len(FIELDS)]), list(values[len(FIELDS) :])
    spec, errors = validate(form)
    if spec is None:
        return dbc.Alert(
            f"Not submitted: {len(errors)} problem(s); see the fields marked in red.",
            color="danger",
            className="py-1 mb-0",
        ), no_update
    spec, errors = resolve_upload(spec)
    if spec is None:
        return dbc.Alert(
            f"Not submitted: {'; '.join(errors)}", color="danger", className="py-1 mb-0"
        ), no_update
    if sweep:
        n = len(sweep_form.FIELD_IDS)
        axes, by_row, general = sweep_form.check(spec, sweep[0], sweep[1 : 1 + n], sweep[1 + n :])
        by_row = {**by_row, **_unsweepable_rows(sweep[0], sweep[1 : 1 + n])}
        if by_row or general:
            return dbc.Alert(
                f"Not submitted: {len(by_row) + len(general)} sweep problem(s); "
                "see the sweep rows.",
                color="danger",
                className="py-1 mb-0",
            ), no_update
        if axes:
            return _submit_sweep(spec, axes)
    from netlens.dispatch.submission import submit_spec

    web = context.current()
    try:
        run_id = submit_spec(web.db, web.settings, spec, owner_id=current_actor().id)
    except Exception as exc:
        return dbc.Alert(f"Could not queue the run: {exc}", color="danger"), no_update
    return no_update, f"/runs/{run_id}"


def _submit_sweep(spec: ExperimentSpec, axes):
    from netlens.dispatch.submission import submit_sweep

    web = context.current()
    try:
        group_id, _run_ids = submit_sweep(
            web.db, web.settings, spec, axes, owner_id=current_actor().id
        )
    except SweepError as exc:  # checked above already; never let one become a traceback
        return dbc.Alert(
            f"Not submitted: {'; '.join(exc.errors)}", color="danger", className="py-1 mb-0"
        ), no_update
    except Exception as exc:
        return dbc.Alert(f"Could not queue the sweep: {exc}", color="danger"), no_update
    return no_update, f"/groups/{group_id}"


@callback(Output(UPLOAD_BOX, "style"), Input("f-dataset", "value"))
@rule("member")
def show_upload(dataset):
    """The upload box is for the datasets that read a file (the catalog's DatasetInfo.upload:
    csv, mnist, fashion-mnist)."""
    return {"display": "block" if dataset in DATASET_KIND else "none"}


@callback(
    Output("f-upload", "value", allow_duplicate=True),
    Input("f-dataset", "value"),
    State("f-upload", "value"),
    prevent_initial_call=True,
)
@rule("member")
def forget_upload(dataset, upload):
    """A dataset that reads no file takes no upload: clear the id rather than refuse the spec."""
    return None if dataset not in DATASET_KIND and upload not in (None, "") else no_update


# The file goes to POST /uploads (webapp/upload_route.py), not through a callback body:
# netlens-upload.js posts the bytes and returns the new upload's id and a message.
clientside_callback(
    ClientsideFunction("netlens", "uploadFile"),
    Output("f-upload", "value", allow_duplicate=True),
    Output(UPLOAD_STATUS, "children"),
    Output(UPLOAD_STATUS, "className"),
    Input(UPLOAD, "contents"),
    State(UPLOAD, "filename"),
    State("f-dataset", "value"),
    prevent_initial_call=True,
)
