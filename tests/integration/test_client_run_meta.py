"""POST /client-runs and POST /runs/{id}/reopen as a hostile member would call them: a `meta`
crafted by hand (requests, not the Python API) whose layers or data_info have wrong types,
unknown keys, repeated names, sizes that disagree with the arrays sent, huge strings or NUL is
refused with 422 naming the field, and no run is created or changed (webapp/run_meta.py). A
crafted but valid run is accepted (tests/browser/test_crafted_run.py opens its pages)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from netlens.storage import runs
from netlens.storage.records import EpochChunk
from netlens.storage.wire import pack_arrays, pack_chunk
from tests.conftest import flushed_redis_url, fresh_pg_database
from tests.integration import test_api
from tests.live_server import live_server, team_env

REDIS_DB = 6
PROBE = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
LABELS = np.array([0, 1, 1, 0], np.int64)
# an nl.Recorder-like run of a model `hidden` (2->3) then `head` (3->1), written by hand
PARAMS = {"hidden": {"kernel": [2, 3], "bias": [3]}, "head": {"kernel": [3, 1], "bias": [1]}}
OUTPUTS = {"hidden": [3], "head": [1], "output": [1]}  # per probe input, in call order


def crafted_flax_run(epochs: int = 3) -> tuple[dict, dict[str, np.ndarray], bytes]:
    """(meta, arrays, chunk .npz) of a valid client run, every field derived from the shapes
    above as nl.Recorder would derive them."""
    n = len(PROBE)
    modules = [
        {
            "name": name,
            "type": "my_package.Model" if name == "output" else "nnx.Linear",
            "params": PARAMS.get(name, {}),
            "calls": 1,
            "returned": i,
            "output_shape": shape,
            "recorded": True,
            "note": None,
        }
        for i, (name, shape) in enumerate(OUTPUTS.items())
    ]
    layers = [
        {
            "name": m["name"],
            "kind": "dense" if m["type"] == "nnx.Linear" else "module",
            "units": math.prod(m["output_shape"]),
            "activation": "linear" if m["type"] == "nnx.Linear" else None,
            "type": m["type"],
            "output_shape": m["output_shape"],
            "params": m["params"],
        }
        for m in modules
    ]
    params = {f"params/{m}/{leaf}": s for m, leaves in PARAMS.items() for leaf, s in leaves.items()}
    signatures = {f"signatures/{name}": [n, *shape] for name, shape in OUTPUTS.items()}
    recorder = {
        "model": "my_package.Model",
        "root": "output",
        "eval_mode": True,
        "forward": "model(x)",
        "modules": modules,
        "params": params,
        "signatures": signatures,
        "n_params": sum(math.prod(s) for s in params.values()),
    }
    data_info = {
        "classes": [0, 1],
        "class_names": ["0", "1"],
        "image_shape": None,
        "n_features": 2,
        "input_shape": [2],
        "n_train": None,
        "n_val": None,
        "n_probe": n,
        "n_probe_ood": 0,
        "source_path": None,
        "sha256": None,
        "probe_labels": True,
        "recorder": recorder,
        "config": {"learning_rate": 0.1, "schedule": ["warmup", 3]},
    }
    spec = {
        "name": "crafted",
        "dataset": {"name": "external"},
        "model": {"kind": "flax"},
        "training": {"epochs": epochs},
        "recording": {"every": 1, "probe_size": n, "grid_resolution": 0},
    }
    meta = {
        "spec": spec,
        "layers": layers,
        "device": "cpu",
        "data_info": data_info,
        "architecture": "Model: 3 modules",
    }
    arrays = {
        "probe/x": PROBE,
        "probe/y": LABELS,
        "probe/is_ood": np.zeros(n, bool),
        "classes": np.array([0, 1], np.int64),
    }
    rng = np.random.default_rng(0)
    tensors = {
        name: rng.normal(size=(epochs, *shape)).astype(np.float32)
        for name, shape in {**params, **signatures}.items()
    }
    metrics = [{"loss": 1.0 / e} for e in range(1, epochs + 1)]
    chunk = pack_chunk(EpochChunk(list(range(1, epochs + 1)), metrics, tensors, {}))
    return meta, arrays, chunk


def post_run(site, meta: dict | str, arrays: dict[str, np.ndarray], who: str = "alice"):
    text = meta if isinstance(meta, str) else json.dumps(meta)
    files = {
        "meta": ("run.json", text, "application/json"),
        "arrays": ("a.npz", pack_arrays(arrays)),
    }
    return site.call(who, "POST", "/api/v1/client-runs", files=files)


@pytest.fixture(scope="module")
def site(pg_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("client-run-meta")
    with fresh_pg_database(pg_server) as db:
        env = team_env(home, db.url, flushed_redis_url(REDIS_DB))
        with live_server(env, home) as url:
            yield test_api.Site(db, url, env, home)


def _set(meta: dict, path: str, value) -> dict:
    """A copy of meta with the value at "a.b.0.c" replaced (value DELETE: removed)."""
    out = copy.deepcopy(meta)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return out


DELETE = object()
CRAFTED = [  # (path in meta, value, field the answer names)
    ("layers.0.name", 5, "meta.layers.0.name"),
    ("layers.0.units", "3", "meta.layers.0.units"),
    ("layers.0.units", -1, "meta.layers.0.units"),
    ("layers.0.secret", 1, "meta.layers.0.secret"),
    ("layers.1.name", "hidden", "meta.layers.1.name"),  # repeats layers.0
    ("layers.0.name", "a/b", "meta.layers.0.name"),  # would forge tensor names
    ("layers.0.type", "x" * 100_000, "meta.layers.0.type"),
    ("layers.0.output_shape", [4], "meta.layers.0.output_shape"),  # not its signature's
    ("data_info.classes", "x", "meta.data_info.classes"),
    ("data_info.class_names.0", "a\x00b", "meta.data_info.class_names.0"),
    ("data_info.class_names", ["0"], "meta.data_info.class_names"),
    ("data_info.recorder.modules", 3, "meta.data_info.recorder.modules"),
    ("data_info.recorder.root", "nowhere", "meta.data_info.recorder.root"),
    ("data_info.recorder.signatures.signatures/head", DELETE, "meta.data_info.recorder.signatures"),
    ("data_info.recorder.n_params", 12, "meta.data_info.recorder.n_params"),
    ("data_info.n_probe", 5, "meta.data_info.n_probe"),  # probe/x has 4 rows
    ("data_info.n_features", 3, "meta.data_info.n_features"),
    ("data_info.probe_labels", False, "meta.data_info.probe_labels"),  # probe/y is sent
    ("data_info.grid_bounds", [0, 1, 0, 1], "meta.data_info.grid_bounds"),  # fit's key
    ("data_info.recorder", DELETE, "meta.data_info.recorder"),
    ("data_info.unknown", 1, "meta.data_info.unknown"),
    ("data_info.config", {"a\x00": 1}, "meta.data_info.config"),
    ("data_info.config", {"big": "x" * 70_000}, "meta.data_info.config"),
    ("data_info.config", {"lr": float("nan")}, "meta.data_info.config"),
    ("layers", DELETE, "meta.layers"),
]


def test_crafted_metas_are_422_naming_the_field_and_create_nothing(site):
    meta, arrays, _ = crafted_flax_run()
    before = runs.count_runs(site.db)
    failures = []
    for path, value, field in CRAFTED:
        response = post_run(site, _set(meta, path, value), arrays)
        body = response.json() if response.status_code == 422 else {}
        if response.status_code != 422 or field not in body.get("fields", []):
            failures.append(
                f"{path}={str(value)[:30]}: {response.status_code} {response.text[:300]}"
            )
    assert not failures, "\n".join(failures)
    assert runs.count_runs(site.db) == before
    # the valid one is stored as it was sent, keys and all
    response = post_run(site, meta, arrays)
    assert response.status_code == 201, response.text
    stored = runs.get_run(site.db, response.json()["id"])
    assert stored.layers == meta["layers"] and stored.data_info == meta["data_info"]
    assert runs.count_runs(site.db) == before + 1


def test_a_fit_run_must_send_the_layers_and_data_info_its_spec_and_data_give(site):
    from netlens.storage.spec import parse_spec
    from netlens.worker.datasets.arrays import dataset_from_arrays
    from netlens.worker.datasets.base import data_info

    spec = {
        "dataset": {"name": "arrays"},
        "model": {
            "kind": "sequential",
            "layers": [
                {"kind": "dense", "units": 3, "activation": "tanh"},
                {"kind": "dense", "units": 1, "activation": "sigmoid"},
            ],
            "input_shape": [2],
        },
        "training": {"epochs": 2},
    }
    data = {"data/x_train": PROBE, "data/y_train": LABELS, "data/classes": np.array([0, 1])}
    dataset = dataset_from_arrays(parse_spec(spec), data)
    arrays = {**data, "probe/x": dataset.probe_x, "probe/y": dataset.probe_y}
    layers = [
        {"name": "hidden_1", "kind": "dense", "units": 3, "activation": "tanh"},
        {"name": "output", "kind": "dense", "units": 1, "activation": "sigmoid"},
    ]
    meta = {"spec": spec, "layers": layers, "data_info": data_info(dataset)}
    before = runs.count_runs(site.db)
    for path, value, field in (
        ("layers.1", DELETE, "meta.layers"),  # the spec records two
        ("layers.0.units", 4, "meta.layers.0.units"),
        ("layers.0.activation", "relu", "meta.layers.0.activation"),
        ("layers.0.params", {"kernel": [2, 3]}, "meta.layers.0.params"),  # nl.Recorder's key
        ("data_info.n_train", 400, "meta.data_info.n_train"),  # the data sent has 4
        ("data_info.classes", [0, 7], "meta.data_info.classes"),
        ("data_info.input_shape", [2], "meta.data_info.input_shape"),
    ):
        response = post_run(site, _set(meta, path, value), arrays)
        assert response.status_code == 422, (path, response.text)
        assert field in response.json()["fields"], (path, response.text)
    assert runs.count_runs(site.db) == before
    response = post_run(site, json.loads(json.dumps(meta)), arrays)
    assert response.status_code == 201, response.text


def test_a_crafted_reopen_is_422_and_changes_nothing(site):
    meta, arrays, chunk = crafted_flax_run()
    run_id = post_run(site, meta, arrays).json()["id"]
    finish = site.call("alice", "POST", f"/api/v1/runs/{run_id}/finish", json={"status": "failed"})
    assert finish.status_code == 200, finish.text
    path = f"/api/v1/runs/{run_id}/reopen"
    for body, field in (
        (
            {"device": "cpu", "data_info": _set(meta, "data_info.n_probe", 3)["data_info"]},
            "data_info.n_probe",
        ),
        ({"device": "cpu", "layers": [{"name": 5}]}, "layers.0.name"),
        ({"device": "cpu", "layers": meta["layers"][:2]}, "layers"),  # output has a signature
        ({"device": "cpu\x00"}, "device"),
    ):
        response = site.call("alice", "POST", path, json=body)
        assert response.status_code == 422 and field in response.json()["fields"], response.text
    after = runs.get_run(site.db, run_id)
    assert after.status == "failed" and after.data_info == meta["data_info"]
    assert after.layers == meta["layers"]
    again = site.call("alice", "POST", path, json={"device": "gpu", "layers": meta["layers"]})
    assert again.status_code == 200, again.text
    assert runs.get_run(site.db, run_id).status == "running"
