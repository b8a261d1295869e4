"""storage/catalog.py is the one list of each concept: the spec, the new-experiment form, the
run views, sizing, the docs and the worker all agree with it."""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from types import SimpleNamespace

import dash
import flask
import numpy as np
import pytest

from netlens.storage import catalog
from netlens.storage.catalog import DATASETS, dataset_table, loss_for
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.storage.sizing import dataset_shape, estimate_recorded_bytes
from netlens.storage.spec import (
    DatasetSpec,
    ExperimentSpec,
    LayerSpec,
    ModelSpec,
    OptimizerSpec,
    SpecError,
    TrainingSpec,
    parse_spec,
)
from netlens.storage.users import LOCAL

ROOT = Path(__file__).resolve().parents[2]


def accepted(model, field: str) -> tuple[str, ...]:
    """The names the spec's pydantic model accepts for `field` (its Literal's values)."""
    return typing.get_args(model.model_fields[field].annotation)


# --- the spec ---------------------------------------------------------------------------


def test_the_spec_accepts_exactly_the_catalogs_names():
    assert accepted(DatasetSpec, "name") == tuple(DATASETS)
    assert accepted(LayerSpec, "activation") == tuple(catalog.ACTIVATIONS)
    assert accepted(ModelSpec, "conv_activation") == tuple(catalog.ACTIVATIONS)
    assert accepted(ModelSpec, "kind") == tuple(catalog.MODEL_KINDS)
    assert accepted(OptimizerSpec, "name") == tuple(catalog.OPTIMIZERS)
    assert accepted(OptimizerSpec, "schedule") == tuple(catalog.SCHEDULES)
    assert accepted(TrainingSpec, "device") == tuple(catalog.DEVICES)


def _file_fields(info) -> dict:
    return {"path": "/data/file"} if info.needs_file else {}


def _model(info) -> dict:
    """External data (nl.Recorder runs) goes with a model of the user's code, kind flax."""
    return {"model": {"kind": "flax"}} if info.kind == "external" else {}


@pytest.mark.parametrize("name", list(DATASETS))
def test_each_dataset_follows_its_catalog_entry_in_the_spec(name):
    info = DATASETS[name]
    spec = parse_spec({"dataset": {"name": name, **_file_fields(info)}, **_model(info)})
    assert spec.is_2d == (info.kind == "2-D")
    if info.needs_file:
        with pytest.raises(SpecError, match=r"dataset\.path: a .* dataset needs the path"):
            parse_spec({"dataset": {"name": name}})
    upload = {"dataset": {"name": name, "upload": 1}, **_model(info)}
    if info.upload:
        parse_spec(upload)
    else:
        with pytest.raises(SpecError, match="reads no file"):
            parse_spec(upload)
    ood = {
        "dataset": {"name": name, "classes": [0, 1], "ood_classes": [2], **_file_fields(info)},
        **_model(info),
    }
    if info.ood:
        parse_spec(ood)
    else:
        with pytest.raises(SpecError, match="has no extra classes"):
            parse_spec(ood)
    cnn = {
        "dataset": {"name": name, **_file_fields(info)},
        "model": {"kind": "cnn"},
        "training": {"epochs": 5},
    }
    if info.kind == "external":
        with pytest.raises(SpecError, match="goes with model kind flax"):
            parse_spec(cnn)
    elif info.is_image:
        parse_spec(cnn)
    else:
        with pytest.raises(SpecError, match="needs an image dataset"):
            parse_spec(cnn)


@pytest.mark.parametrize("kind", list(catalog.MODEL_KINDS))
def test_a_model_the_users_code_trains_goes_with_external_data_only(kind):
    """kind flax <=> dataset external: a spec never mixes the user's model with NetLens data
    or the reverse, and such a spec cannot be queued (check_trainable)."""
    from netlens.storage.spec import check_trainable

    trainable = catalog.MODEL_KINDS[kind].trainable
    for name, info in DATASETS.items():
        if kind == "sequential" and info.kind != "external":
            continue  # its layers must fit the data's shape: test_sdk_model.py checks those
        data = {
            "dataset": {"name": name, **_file_fields(info)},
            "model": {"kind": kind, **EXAMPLE_MODELS.get(kind, {})},
            "training": {"epochs": 5},
        }
        if (info.kind == "external") == trainable:
            with pytest.raises(SpecError, match="goes with model kind flax"):
                parse_spec(data)
        elif trainable and (info.is_image or not catalog.MODEL_KINDS[kind].needs_image):
            assert check_trainable(parse_spec(data)).model.kind == kind
        elif not trainable:
            spec = parse_spec(data)
            assert spec.model.hidden == [] and spec.model.conv_channels == []
            with pytest.raises(SpecError, match="trained by the user's code; NetLens cannot"):
                check_trainable(spec)
            with pytest.raises(SpecError, match="model.hidden: a flax model is defined by"):
                parse_spec({**data, "model": {"kind": kind, "hidden": [{"units": 3}]}})


@pytest.mark.parametrize("name", list(DATASETS))
def test_sizing_reads_the_catalogs_shape(name):
    info = DATASETS[name]
    spec = parse_spec({"dataset": {"name": name, **_file_fields(info)}, **_model(info)})
    if info.kind == "external":  # nothing known before nl.Recorder sees the model
        assert dataset_shape(spec) == info.shape() == (None, None, None)
        assert estimate_recorded_bytes(spec) == 0
        return
    features, classes, side = dataset_shape(spec)
    assert (features, classes, side) == info.shape()
    if info.n_inputs is not None:
        assert (features, classes) == (info.n_inputs, info.n_classes)
    assert (side is not None) == info.is_image
    assert features and classes  # a guess where the file decides


def test_every_kind_is_described_and_every_dataset_has_a_kind():
    assert set(catalog.DATASET_KINDS) == set(typing.get_args(catalog.DatasetKind))
    assert {d.kind for d in DATASETS.values()} <= set(catalog.DATASET_KINDS)
    for d in DATASETS.values():
        assert d.description and d.title
        if d.is_2d:
            assert (d.n_inputs, d.n_classes, d.image_side) == (2, 2, None)


def test_the_loss_follows_the_class_count():
    assert loss_for(2).name == "sigmoid_binary_cross_entropy" and loss_for(2).output_units(2) == 1
    assert loss_for(10).name == "softmax_cross_entropy" and loss_for(10).output_units(10) == 10
    assert {loss_for(2).name, loss_for(3).name} == set(catalog.LOSSES)


# --- docs -------------------------------------------------------------------------------

TABLE = re.compile(r"<!-- dataset table: .*? -->\n(.*?)<!-- end of dataset table -->", re.S)


def test_the_dataset_table_of_the_docs_is_the_catalogs():
    text = (ROOT / "docs" / "datasets.md").read_text()
    match = TABLE.search(text)
    assert match, "docs/datasets.md has lost its dataset table markers"
    assert match.group(1) == dataset_table(), (
        "docs/datasets.md: the dataset table differs from storage/catalog.py; paste the output "
        "of python -c 'from netlens.storage.catalog import dataset_table; print(dataset_table())'"
    )


def test_every_dataset_has_a_section_in_the_docs():
    headings = [
        line
        for line in (ROOT / "docs" / "datasets.md").read_text().splitlines()
        if line.startswith("#")
    ]
    for name in DATASETS:
        assert any(f"`{name}`" in h for h in headings), f"docs/datasets.md: no section on {name}"


def _bullet(text: str, field: str) -> str:
    """The '- **field**: ...' item of docs/spec.md, its continuation lines joined."""
    match = re.search(rf"^- \*\*{field}\*\*:(.*?)(?=^- |^#|\Z)", text, re.S | re.M)
    assert match, f"docs/spec.md: no '{field}' item"
    return " ".join(match.group(1).split())


def test_the_spec_doc_names_every_choice():
    text = (ROOT / "docs" / "spec.md").read_text()
    lists = {
        "dataset": DATASETS,
        "model": {**catalog.ACTIVATIONS, **catalog.MODEL_KINDS},
        "optimizer": {**catalog.OPTIMIZERS, **catalog.SCHEDULES},
        "training": catalog.DEVICES,
    }
    for field, names in lists.items():
        words = set(re.findall(r"[\w-]+", _bullet(text, field)))
        missing = [n for n in names if n not in words]
        assert not missing, f"docs/spec.md, {field}: {missing} not named"


# --- the worker -------------------------------------------------------------------------


def test_the_worker_has_a_loader_for_every_dataset_and_no_other():
    from netlens.worker.datasets.loader import LOADERS, check_loaders

    assert set(LOADERS) == set(DATASETS)
    check_loaders(LOADERS)
    with pytest.raises(RuntimeError, match=r"no loader for \['csv'\]"):
        check_loaders({n: f for n, f in LOADERS.items() if n != "csv"})
    with pytest.raises(RuntimeError, match=r"undeclared datasets \['iris'\]"):
        check_loaders({**LOADERS, "iris": LOADERS["csv"]})


def _fake_files(tmp_path: Path) -> dict[str, dict]:
    """Spec fields that make the file-reading datasets loadable from tiny files."""
    rng = np.random.default_rng(0)
    images = {
        k: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        for k, n in (("x_train", 40), ("x_test", 20))
    }
    labels = {"y_train": np.arange(40) % 10, "y_test": np.arange(20) % 10}
    np.savez(tmp_path / "images.npz", **images, **labels)
    (tmp_path / "rows.csv").write_text(
        "a,b,c,label\n" + "".join(f"{i},{i * 2},{i % 3},{i % 3}\n" for i in range(30))
    )
    return {
        "mnist": {"path": str(tmp_path / "images.npz")},
        "fashion-mnist": {"path": str(tmp_path / "images.npz")},
        "csv": {"path": str(tmp_path / "rows.csv")},
    }


def test_every_dataset_loads_with_the_shape_its_kind_promises(tmp_path):
    from netlens.worker.datasets import DatasetError, load_dataset

    files = _fake_files(tmp_path)
    for name, info in DATASETS.items():
        if info.kind == "external":  # the user's code holds it: nothing to load
            with pytest.raises(DatasetError, match="held by the user's own training code"):
                load_dataset(parse_spec({"dataset": {"name": name}, **_model(info)}))
            continue
        if info.stored:  # given to the Python API's fit: test_a_stored_dataset_is_read_...
            continue
        data = load_dataset(
            parse_spec({"dataset": {"name": name, "n_samples": 40, **files.get(name, {})}})
        )
        if info.n_inputs is not None:
            assert (data.n_features, data.n_classes) == (info.n_inputs, info.n_classes), name
        assert (data.grid_bounds is not None) == info.is_2d, name
        assert data.image_shape == ((info.image_side,) * 2 if info.is_image else None), name
        if info.fixed_size and info.is_2d:
            assert len(data.x_train) + len(data.x_val) == info.fixed_size, name


@pytest.mark.parametrize("features", [2, 3])
def test_a_stored_dataset_is_read_from_the_runs_arrays_not_by_name(features):
    """The arrays dataset has no loader to call: its data comes from the run (data/...); a
    2-feature, 2-class set gets the decision-boundary grid, as the 2-D kind does."""
    from netlens.worker.datasets import DatasetError, load_dataset
    from netlens.worker.datasets.arrays import dataset_from_arrays

    [name] = [n for n, d in DATASETS.items() if d.stored]
    model = {
        "kind": "sequential",
        "input_shape": [features],
        "layers": [{"kind": "dense", "units": 1, "activation": "sigmoid"}],
    }
    spec = parse_spec({"dataset": {"name": name}, "model": model})
    with pytest.raises(DatasetError, match="stored with its run"):
        load_dataset(spec)
    rng = np.random.default_rng(0)
    arrays = {
        "data/x_train": rng.normal(size=(12, features)).astype(np.float32),
        "data/y_train": (np.arange(12) % 2).astype(np.int32),
        "data/classes": np.arange(2, dtype=np.int64),
    }
    data = dataset_from_arrays(spec, arrays)
    assert (data.n_features, data.n_classes) == (features, 2)
    assert (data.grid_bounds is not None) == (features == 2)
    assert len(data.probe_x) == 12 and not data.probe_is_ood.any()
    with pytest.raises(DatasetError, match="no stored data/y_train"):
        dataset_from_arrays(spec, {k: v for k, v in arrays.items() if k != "data/y_train"})


def test_the_worker_implements_every_activation_optimizer_and_loss():
    import jax.numpy as jnp

    from netlens.worker.models import ACTIVATIONS, build_network
    from netlens.worker.optim import make_optimizer

    assert set(ACTIVATIONS) == set(catalog.ACTIVATIONS)
    for name in catalog.ACTIVATIONS:
        assert ACTIVATIONS[name](jnp.ones(2)).shape == (2,)
    for name in catalog.OPTIMIZERS:
        make_optimizer(OptimizerSpec(name=name), steps_per_epoch=2, epochs=2)
    for n_classes in (2, 3):
        spec = parse_spec({"model": {"hidden": [{"units": 3}]}})
        *_, layers = build_network(spec, n_in=2, n_classes=n_classes, image_shape=None)
        loss = loss_for(n_classes)
        assert (layers[-1].units, layers[-1].activation) == (
            loss.output_units(n_classes),
            loss.output_activation,
        )


# Model kinds that the spec's defaults do not describe: an example of each.
EXAMPLE_MODELS = {
    "sequential": {
        "input_shape": [8, 8],
        "layers": [
            {"kind": "conv2d", "filters": 4, "activation": "relu"},
            {"kind": "max_pool2d"},
            {"kind": "flatten"},
            {"kind": "dropout", "rate": 0.1},
            {"kind": "dense", "units": 8, "activation": "relu"},
            {"kind": "dense", "units": 10, "activation": "softmax"},
        ],
    }
}


@pytest.mark.parametrize("kind", list(catalog.MODEL_KINDS))
def test_each_model_kind_is_built_of_its_catalog_layer_kinds(kind):
    from netlens.worker.models import build_network

    if not catalog.MODEL_KINDS[kind].trainable:  # the user's code builds it (nl.Recorder)
        spec = parse_spec({"dataset": {"name": "external"}, "model": {"kind": kind}})
        with pytest.raises(ValueError, match="defined by the user's code"):
            build_network(spec, n_in=64, n_classes=10, image_shape=None)
        return
    model = {"kind": kind, **EXAMPLE_MODELS.get(kind, {})}
    spec = parse_spec({"dataset": {"name": "digits"}, "model": model})
    *_, layers = build_network(spec, n_in=64, n_classes=10, image_shape=(8, 8))
    kinds = list(dict.fromkeys(info.kind for info in layers))
    assert tuple(kinds) == catalog.MODEL_KINDS[kind].layers


# --- the web app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from netlens.webapp.app import create_app

    home = tmp_path_factory.mktemp("catalog-web")
    settings = Settings(home=home, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    app = create_app(settings, db)
    with app.server.test_request_context("/new"):
        flask.g.netlens_actor = LOCAL
        page = next(p for p in dash.page_registry.values() if p["path"] == "/new")
        yield {"layout": page["layout"](), "new": sys.modules[page["module"]]}
    db.dispose()


def _options(layout, component_id: str) -> list[str]:
    [select] = [c for c in layout._traverse() if getattr(c, "id", None) == component_id]
    return [o["value"] for o in select.options]


def test_the_form_offers_every_name_the_spec_accepts(web):
    """Every name NetLens can train: nl.Recorder's external data and flax models are the
    user's code's, and the only ones left out."""
    layout = web["layout"]
    # but those the form cannot give: in-memory arrays, an explicit layer list (Python API);
    # the external data and flax models of nl.Recorder runs
    form_datasets = [n for n in accepted(DatasetSpec, "name") if DATASETS[n].form]
    form_kinds = [n for n in accepted(ModelSpec, "kind") if catalog.MODEL_KINDS[n].form]
    assert _options(layout, "f-dataset") == form_datasets == list(catalog.form_dataset_names())
    assert {n for n, d in DATASETS.items() if not d.form} == {"arrays", "external"}
    assert _options(layout, "f-conv-act") == list(accepted(ModelSpec, "conv_activation"))
    assert _options(layout, "f-kind") == form_kinds == list(catalog.form_model_kinds())
    assert {n for n, m in catalog.MODEL_KINDS.items() if not m.form} == {"sequential", "flax"}
    assert _options(layout, "f-opt") == list(accepted(OptimizerSpec, "name"))
    assert _options(layout, "f-schedule") == list(accepted(OptimizerSpec, "schedule"))
    assert _options(layout, "f-device") == list(accepted(TrainingSpec, "device"))


@pytest.mark.parametrize("activation", accepted(LayerSpec, "activation"))
def test_the_forms_hidden_layers_take_every_activation(web, activation):
    new = web["new"]
    values = new.spec_to_form(ExperimentSpec())
    values[[cid for cid, *_ in new.FIELDS].index("f-hidden")] = f"4 {activation}, 3"
    spec, errors = new.validate(values)
    assert not errors and spec.model.hidden[0].activation == activation


# What the form shows for each kind of dataset: the upload box for a set that reads a file.
UPLOAD_BOX = {
    "xor": False,
    "spiral": False,
    "digits": False,
    "mnist": True,
    "fashion-mnist": True,
    "csv": True,
}


@pytest.mark.parametrize("name", accepted(DatasetSpec, "name"))
def test_the_form_shows_each_datasets_controls(web, name):
    """show_upload (the box) and forget_upload (the id) are the callbacks that change the form
    with the dataset; the box shows exactly when the spec takes an upload for that set."""
    new = web["new"]
    shown = new.show_upload(name) == {"display": "block"}
    assert new.show_upload(name) in ({"display": "block"}, {"display": "none"})
    assert shown == bool(DATASETS[name].upload) == UPLOAD_BOX.get(name, shown)
    if DATASETS[name].kind == "2-D":
        assert not shown
    if DATASETS[name].kind == "tabular":
        assert shown
    try:
        parse_spec({"dataset": {"name": name, "upload": 7}})
        takes_upload = True
    except SpecError:
        takes_upload = False
    assert shown == takes_upload
    forgotten = new.forget_upload(name, 7)
    assert (forgotten is None) == (not shown) and (forgotten is dash.no_update) == shown


def test_the_run_views_apply_the_2d_views_to_the_2d_datasets():
    from netlens.webapp.views import run as run_views

    for name, info in DATASETS.items():
        run = SimpleNamespace(spec={"dataset": {"name": name}}, data_info={})
        assert run_views.is_2d(run) == info.is_2d
    # arrays of 2 features and 2 classes have a grid: their data_info gives its bounds
    plane = SimpleNamespace(
        spec={"dataset": {"name": "arrays"}}, data_info={"grid_bounds": [0, 1, 0, 1]}
    )
    assert run_views.is_2d(plane)
