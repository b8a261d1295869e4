"""The Python API against a team server (nl.connect): nl.runs, nl.get and RemoteRun read over the
REST API exactly what the local Run reads from the same database; nl.submit queues locally and
remotely; run.analyze computes (locally) or fetches and requests (remotely) the signature
analyses. A real `netlens serve --workers 0` on PostgreSQL and Redis (DB 8), tokens made
through storage.users; the run is written through storage (a synthetic 2-3-1 network whose
signatures are its real forward pass), so no JAX runs here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis

import netlens as nl
from netlens.remote import RemoteError
from netlens.sdk import connection, reading
from netlens.sdk.remote_run import RemoteRun
from netlens.storage import analyses, jobs, runs, users
from netlens.storage.presets import get_preset
from netlens.storage.records import EpochChunk, write_epochs
from netlens.storage.spec import SpecError
from tests.conftest import REDIS_URL, flushed_redis_url, fresh_pg_database
from tests.integration import test_api
from tests.live_server import live_server, team_env

REDIS_DB = 8
EPOCHS, PROBE = 12, 40


@pytest.fixture(scope="module")
def api_db(pg_server):
    with fresh_pg_database(pg_server) as db:
        yield db


@pytest.fixture(scope="module")
def site(api_db, tmp_path_factory):
    home = tmp_path_factory.mktemp("sdk-remote-server")
    env = team_env(home, api_db.url, flushed_redis_url(REDIS_DB))
    with live_server(env, home) as url:
        site = test_api.Site(api_db, url, env, home)
        site.read_only = users.create_token(api_db, site.people["alice"].id, "ro", scope="read")[1]
        yield site


@pytest.fixture(autouse=True)
def _connection_restored(monkeypatch):
    """nl.connect/nl.disconnect change process-wide state: put it back after each test."""
    monkeypatch.setattr(connection, "_current", connection._current)
    monkeypatch.setattr(connection, "_env_ignored", connection._env_ignored)


@pytest.fixture
def as_alice(site, monkeypatch):
    """Connected to the server as alice (who reads bob's run: members read every run)."""
    monkeypatch.delenv("NETLENS_SERVER", raising=False)
    nl.connect(site.url, token=site.tokens["alice"])
    yield site
    nl.disconnect()


def _forward(x, kernel, bias, activation):
    return activation(x @ kernel + bias).astype(np.float32)


@pytest.fixture(scope="module")
def stored_run(site) -> int:
    """bob's run of a 2-3-1 tanh/sigmoid network: every epoch's parameters (random walks),
    its real outputs on 40 probe inputs, a grid every 3 epochs, metrics with a gap."""
    rng = np.random.default_rng(7)
    spec = get_preset("xor").model_copy(deep=True)
    spec.name, spec.tags, spec.training.epochs = "remote-read", ["sdk-remote"], EPOCHS
    x = rng.normal(size=(PROBE, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5)), -1)
    grid = grid.reshape(-1, 2).astype(np.float32)
    layers = [
        {"name": "hidden_1", "kind": "dense", "units": 3, "activation": "tanh"},
        {"name": "output", "kind": "dense", "units": 1, "activation": "sigmoid"},
    ]
    run_id = runs.create_started_run(
        site.db,
        spec,
        layers=layers,
        device="cpu",
        data_info={"class_names": ["0", "1"], "classes": [0, 1]},
        architecture="2-3-1",
        arrays={
            "probe/x": x,
            "probe/y": y,
            "probe/is_ood": np.zeros(PROBE, bool),
            "classes": np.array([0, 1]),
            "grid/x": grid,
        },
        owner_id=site.people["bob"].id,
    )
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    k1, b1, k2, b2 = (rng.normal(size=s).astype(np.float32) for s in ((2, 3), 3, (3, 1), 1))
    for epochs in (range(0, 7), range(7, EPOCHS)):  # two chunks: reads span both
        tensors: dict[str, list] = {}
        metrics = []
        for e in epochs:
            k1, k2 = k1 + 0.1 * rng.normal(size=k1.shape), k2 + 0.1 * rng.normal(size=k2.shape)
            hidden = _forward(x, k1, b1, np.tanh)
            out = _forward(hidden, k2, b2, sigmoid)
            for name, value in (
                ("params/hidden_1/kernel", k1),
                ("params/hidden_1/bias", b1),
                ("params/output/kernel", k2),
                ("params/output/bias", b2),
                ("signatures/hidden_1", hidden),
                ("signatures/output", out),
            ):
                tensors.setdefault(name, []).append(np.asarray(value, np.float32))
            if e % 3 == 0:
                g = _forward(_forward(grid, k1, b1, np.tanh), k2, b2, sigmoid)
                tensors.setdefault("grid/output", []).append(g)
            accuracy = float(np.mean((out[:, 0] > 0.5) == y))
            metrics.append(
                {
                    "train_loss": float(1 - accuracy + e / 100),
                    "train_accuracy": accuracy,
                    "val_loss": float("nan") if e == 3 else float(e),
                    "grad_norm/hidden_1": float(np.linalg.norm(k1)),
                }
            )
        write_epochs(
            site.db,
            run_id,
            EpochChunk(
                list(epochs),
                metrics,
                {k: np.stack(v) for k, v in tensors.items()},
                {"grid/output": [e for e in epochs if e % 3 == 0]},
            ),
        )
    runs.finish_run(site.db, run_id, "succeeded")
    return run_id


def _same_arrays(a, b) -> None:
    assert type(a) is type(b) or isinstance(a, np.ndarray)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


# ---- reading ----------------------------------------------------------------------------------


def test_a_remote_run_reads_exactly_what_the_local_run_reads(as_alice, stored_run, tmp_path):
    import pandas

    remote, local = nl.get(stored_run), reading.get(stored_run, database=as_alice.db)
    assert isinstance(remote, RemoteRun) and type(local) is reading.Run
    assert remote.info.to_dict() == local.info.to_dict()
    assert remote.info.extra["owner"] == "bob"
    assert (remote.name, remote.status, remote.layers) == (local.name, local.status, local.layers)
    assert remote.spec == local.spec and remote.spec.training.epochs == EPOCHS
    assert remote.url == f"{as_alice.url}/runs/{stored_run}"
    assert repr(remote).startswith(f"<RemoteRun {stored_run} 'remote-read' succeeded")
    _same_arrays(remote.epochs, local.epochs)
    assert list(remote.epochs) == list(range(EPOCHS))
    pandas.testing.assert_frame_equal(remote.metrics(), local.metrics())
    assert np.isnan(remote.metrics().loc[3, "val_loss"])
    assert remote.tensor_names == local.tensor_names
    for name in ("params/hidden_1/kernel", "signatures/output", "grid/output"):
        for epochs in (None, 6, slice(0, 100), slice(2, 9, 3), slice(None, 5), [9, 1], []):
            if name == "grid/output" and epochs in (6, [9, 1]):
                continue  # not recorded at those epochs (below: the same error both ways)
            for with_epochs in (False, True):
                got = remote.tensor(name, epochs, with_epochs=with_epochs)
                want = local.tensor(name, epochs, with_epochs=with_epochs)
                if with_epochs:
                    _same_arrays(got[0], want[0])
                    got, want = got[1], want[1]
                if not (isinstance(epochs, list) and not epochs):  # (local: no shape then)
                    _same_arrays(got, want)
    assert list(remote.tensor("grid/output", slice(2, 10), with_epochs=True)[0]) == [3, 6, 9]
    _same_arrays(remote.signatures("hidden_1"), local.signatures("hidden_1"))
    _same_arrays(remote.signatures("output", 4), local.signatures("output", 4))
    remote_arrays, local_arrays = remote.arrays(), local.arrays()
    assert sorted(remote_arrays) == sorted(local_arrays)
    for name in local_arrays:
        _same_arrays(remote_arrays[name], local_arrays[name])
    for got, want in zip(remote.probe(), local.probe(), strict=True):
        _same_arrays(got, want)
    # the export: the same .npz members (the zip's timestamps differ)
    with (
        np.load(remote.export(tmp_path / "r.npz")) as r,
        np.load(local.export(tmp_path / "l.npz")) as lo,
    ):
        assert sorted(r.files) == sorted(lo.files)
        for name in lo.files:
            _same_arrays(r[name], lo[name])
    # the run page's figures, drawn from either
    for view, options in (
        ("loss", {}),
        ("gradients", {}),
        ("weights", {"layer": "hidden_1"}),
        ("outputs", {}),
        ("network", {"color_by": "activation", "input_index": 3}),
        ("network3d", {}),
        ("boundary", {}),
        ("representation", {"layer": "hidden_1"}),
    ):
        assert (
            remote.figure(view, 7, **options).to_json()
            == local.figure(view, 7, **options).to_json()
        ), view


def test_remote_reads_refuse_bad_arguments_with_the_local_messages(as_alice, stored_run):
    remote, local = nl.get(stored_run), reading.get(stored_run, database=as_alice.db)
    for call, error in (
        (lambda run: run.tensor("params/hidden_1/kernal"), ValueError),
        (lambda run: run.tensor("params/output/bias", 40), ValueError),
        (lambda run: run.tensor("grid/output", [9, 1]), ValueError),
        (lambda run: run.tensor("params/output/bias", slice(0, 5, 0)), ValueError),
        (lambda run: run.tensor("params/output/bias", "3"), TypeError),
        (lambda run: run.tensor(3), TypeError),
        (lambda run: run.signatures("hidden_3"), ValueError),
        (lambda run: run.figure("histogram"), ValueError),
        (lambda run: run.figure("loss", epoch=99), ValueError),
        (lambda run: run.figure("weights", neuron=2), TypeError),
    ):
        with pytest.raises(error) as remote_error:
            call(remote)
        with pytest.raises(error) as local_error:
            call(local)
        assert str(remote_error.value) == str(local_error.value)
    with pytest.raises(LookupError, match=r"^run 999999 does not exist \(404\)"):
        nl.get(999_999)
    with pytest.raises(TypeError, match=r"^run_id: must be an integer"):
        nl.get("12")


def test_runs_lists_the_servers_runs_with_the_local_filters(as_alice, stored_run):
    import pandas

    queued = as_alice.submit("bob", name="other-run")  # a queued run that filters must drop
    for filters in (
        {},
        {"tag": "sdk-remote"},
        {"status": "succeeded"},
        {"status": "queued"},
        {"dataset": "xor", "name": "REMOTE-r"},
        {"limit": 1},
    ):
        remote = nl.runs(**filters)
        nl.disconnect()
        local = nl.runs(**filters, database=as_alice.db)
        nl.connect(as_alice.url, token=as_alice.tokens["alice"])
        for column in ("created_at", "finished_at"):  # the same instants; tz objects differ
            remote[column] = pandas.to_datetime(remote[column], utc=True)
            local[column] = pandas.to_datetime(local[column], utc=True)
        assert remote.equals(local), filters
    assert list(nl.runs(tag="sdk-remote")["id"]) == [stored_run]
    assert queued in list(nl.runs(status="queued")["id"]) and len(nl.runs(limit=1)) == 1
    for kwargs, message in (
        ({"status": "done"}, r"^status: 'done' is not one of queued, running"),
        ({"dataset": "iris"}, r"^dataset: 'iris' is not one of xor"),
        ({"limit": 0}, r"^limit: 0 is out of range"),
        ({"tag": "x" * 51}, r"^tag: 'x+' must be a text of 1 to 50"),
    ):
        with pytest.raises(ValueError, match=message):
            nl.runs(**kwargs)
    assert list(nl.runs(tag="t" * 50)["id"]) == []  # the longest tag a spec holds: asked


def test_tokens_the_server_refuses_give_clear_errors(site, stored_run, monkeypatch):
    monkeypatch.delenv("NETLENS_SERVER", raising=False)
    with pytest.raises(RemoteError, match=r"^token: the server refused the token \(401\)"):
        nl.connect(site.url, token="not-a-token")
    nl.connect(site.url, token=site.read_only)
    try:
        run = nl.get(stored_run)  # a read-only token reads
        assert run.name == "remote-read"
        with pytest.raises(RemoteError, match=r"^not allowed \(403\): token scope: .*read-only"):
            nl.submit("xor")
        with pytest.raises(RemoteError, match=r"^not allowed \(403\): token scope"):
            run.analyze()
    finally:
        nl.disconnect()


# ---- nl.submit ----------------------------------------------------------------------------------


def test_submit_queues_on_the_server_as_the_tokens_user(as_alice):
    broker = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    before = runs.count_runs(as_alice.db)
    with pytest.raises(SpecError, match=r"training\.epochs"):
        nl.submit("xor", overrides={"training.epochs": 0})
    with pytest.raises(TypeError, match=r"^spec: an ExperimentSpec"):
        nl.submit(42)
    assert runs.count_runs(as_alice.db) == before  # refused here: nothing sent
    run = nl.submit("xor", overrides={"training": {"epochs": 4}, "name": "from-notebook"})
    assert isinstance(run, RemoteRun) and run.status == "queued"
    info = runs.get_run(as_alice.db, run.id)
    assert info.extra == {} and info.owner_id == as_alice.people["alice"].id
    assert (info.name, info.spec["training"]["epochs"]) == ("from-notebook", 4)
    assert jobs.get_job(as_alice.db, run.id).state == "queued"
    messages = [json.loads(m)["headers"]["argsrepr"] for m in broker.lrange("cpu", 0, -1)]
    assert any(str(run.id) in m for m in messages)
    spec = get_preset("xor").model_dump(mode="json") | {"name": "as-a-dict"}
    assert nl.submit(spec).name == "as-a-dict"


def test_submit_without_a_server_queues_locally_as_netlens_submit_does(tmp_path, monkeypatch):
    monkeypatch.setenv("NETLENS_HOME", str(tmp_path))
    monkeypatch.delenv("NETLENS_DATABASE_URL", raising=False)
    monkeypatch.delenv("NETLENS_SERVER", raising=False)
    monkeypatch.setenv("NETLENS_BROKER_URL", flushed_redis_url(REDIS_DB))
    nl.disconnect()
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(get_preset("xor").model_dump(mode="json") | {"name": "file"}))
    run = nl.submit(spec_file, overrides={"training.epochs": 2})
    assert type(run) is reading.Run and str(tmp_path) in run.db.url
    assert (run.name, run.status, run.spec.training.epochs) == ("file", "queued", 2)
    assert jobs.get_job(run.db, run.id).state == "queued"
    broker = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    assert broker.llen("cpu") == 1


# ---- run.analyze --------------------------------------------------------------------------------


def test_analyze_computes_locally_and_the_server_returns_what_is_stored(as_alice, stored_run):
    local = reading.get(stored_run, database=as_alice.db)
    with pytest.raises(ValueError, match=r"^epoch: 99 was not recorded for run"):
        local.analyze(99)
    result = local.analyze()  # the last epoch: its analysis and the timeline, computed here
    assert (result.run_id, result.epoch) == (stored_run, EPOCHS - 1)
    assert result.summary["n_probe"] == PROBE and result.summary["layers"] == ["hidden_1"]
    assert result.timeline["epochs"][-1] == EPOCHS - 1
    stored = analyses.get(as_alice.db, stored_run, "epoch", EPOCHS - 1)
    assert stored.state == "done" and stored.summary == result.summary
    assert "hidden_1" in result.describe()

    remote = nl.get(stored_run)
    fetched = remote.analyze()  # stored: the server answers 200 at once
    assert fetched == result
    with pytest.raises(ValueError, match=r"^epoch: 99 was not recorded for run .* \(422\)"):
        remote.analyze(99)
    # not stored, and this server has no workers: a clear timeout, the request left queued
    with pytest.raises(
        RemoteError, match=r"^analyze: the server has not finished .* within 0\.3 s"
    ):
        remote.analyze(5, timeout=0.3, poll=0.1)
    assert analyses.get(as_alice.db, stored_run, "epoch", 5).state == "queued"
    with pytest.raises(TypeError, match=r"^epoch: must be an epoch number"):
        remote.analyze("5")

    # t-SNE on demand: computed here beside PCA, then read back from the server the same
    assert set(result.summary["projections"]) == {"pca"}
    for run in (local, remote):
        with pytest.raises(ValueError, match=r"^methods: 'pca3' is not one of tsne, umap"):
            run.analyze(methods=["tsne", "pca3"])
    projected = local.analyze(methods="tsne")
    assert set(projected.summary["projections"]) == {"pca", "tsne"}
    assert set(projected.summary["projections"]["tsne"]) == {"hidden_1"}
    assert analyses.get(as_alice.db, stored_run, "tsne", EPOCHS - 1).state == "done"
    assert remote.analyze(methods=("tsne",)) == projected


def test_reading_a_server_imports_no_jax(site, stored_run):
    import subprocess
    import sys

    code = (
        "import sys, netlens as nl\n"
        f"run = nl.get({stored_run}); run.tensor('params/output/bias', 3); run.probe()\n"
        "print(run.name, len(nl.runs()), 'jax' in sys.modules)\n"
    )
    env = {**site.env, "NETLENS_SERVER": site.url, "NETLENS_TOKEN": site.tokens["bob"]}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["remote-read", str(runs.count_runs(site.db)), "False"]
