"""Signature analyses of real recorded runs: stored, reused, requested, and via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from netlens.dispatch.analysis_requests import (
    AnalysisError,
    request_analyses,
    request_projection,
    resolve_epoch,
)
from netlens.storage import analyses
from netlens.storage.presets import get_preset
from netlens.storage.runs import create_run, get_run
from netlens.storage.spec import parse_spec
from netlens.worker.analyze import run_analysis
from netlens.worker.runner import run_experiment


def _digits_run(db, epochs: int = 30) -> int:
    data = get_preset("digits-1-7").model_dump()
    data["training"]["epochs"] = epochs
    data["recording"] = {"probe_size": 200}
    run_id = create_run(db, parse_spec(data))
    assert run_experiment(db, run_id, None) == "succeeded"
    return run_id


@pytest.fixture(scope="module")
def digits_home(tmp_path_factory):
    """One trained digits-1-7 run (1s vs 7s, unseen 3s and 4s) in a SQLite home."""
    from netlens.storage.db import Database
    from netlens.storage.migrate import upgrade

    home = tmp_path_factory.mktemp("home")
    db = Database(f"sqlite:///{home / 'netlens.db'}")
    upgrade(db)
    return home, db, _digits_run(db)


def test_epoch_analysis_is_stored_and_reads_back(digits_home):
    _, db, run_id = digits_home
    run = get_run(db, run_id)
    last = resolve_epoch(db, run, None)
    assert request_analyses(db, run_id) == [("epoch", last), ("timeline", last)]
    assert request_analyses(db, run_id) == []  # already on its way: nothing sent twice
    summary = run_analysis(db, run_id, "epoch", last)
    stored = analyses.get(db, run_id, "epoch", last)
    assert stored.state == "done" and stored.summary == json.loads(json.dumps(summary))
    assert stored.summary["layers"] == ["hidden_1", "hidden_2", "hidden_3"]
    assert stored.summary["classes"] == [1, 7]
    arrays = analyses.read_arrays(db, run_id, "epoch", last)
    n_probe = stored.summary["n_probe"]
    for layer in stored.summary["layers"]:
        assert arrays[f"clusters/{layer}"].shape == (n_probe,)
        points = arrays[f"projection/pca/{layer}"]
        assert points.shape == (n_probe, 2) and np.isfinite(points).all()
    # t-SNE and UMAP are not in the default analysis: each is asked for on its own
    assert set(stored.summary["projections"]) == {"pca"}
    assert not [name for name in arrays if name.startswith(("projection/tsne", "projection/umap"))]
    # Done analyses are reused: a new request queues nothing; force queues it again.
    assert ("epoch", last) not in request_analyses(db, run_id)
    assert request_analyses(db, run_id, force=True)[0] == ("epoch", last)


def test_tsne_and_umap_are_analyses_of_their_own_with_progress(digits_home):
    _, db, run_id = digits_home
    last = resolve_epoch(db, get_run(db, run_id), None)
    with pytest.raises(AnalysisError, match="method: 'isomap' is not one of tsne, umap"):
        request_projection(db, run_id, "isomap")
    with pytest.raises(AnalysisError, match="epoch: 999 was not recorded"):
        request_projection(db, run_id, "umap", 999)
    for method in ("tsne", "umap"):
        assert request_projection(db, run_id, method) == [(method, last)]
        assert request_projection(db, run_id, method) == []  # on its way: not sent twice
        assert analyses.claim(db, run_id, method, last, "test-worker")
        seen: list[str] = []
        original = analyses.set_progress

        def watch(db_, run_id_, kind, epoch, text, seen=seen, original=original):
            original(db_, run_id_, kind, epoch, text)
            seen.append(analyses.get(db_, run_id_, kind, epoch).progress)  # as the page reads it

        analyses.set_progress = watch
        try:
            summary = run_analysis(db, run_id, method, last)
        finally:
            analyses.set_progress = original
        name = {"tsne": "t-SNE", "umap": "UMAP"}[method]
        assert seen == [f"computing {name} for layer {i} of 3…" for i in (1, 2, 3)]
        stored = analyses.get(db, run_id, method, last)
        assert stored.state == "done" and stored.progress is None  # no stale line when done
        assert set(summary["projections"]) == {method}
        arrays = analyses.read_arrays(db, run_id, method, last)
        for layer in ("hidden_1", "hidden_2", "hidden_3"):
            points = arrays[f"projection/{method}/{layer}"]
            assert points.shape == (summary["n_probe"], 2) and np.isfinite(points).all()
        assert request_projection(db, run_id, method) == []  # stored: reused


def test_the_trained_classes_separate_better_than_the_inputs(digits_home):
    """On digits 1 vs 7 a linear probe reaches high accuracy at the last hidden layer, and the
    unseen 3s and 4s are reported as such, never as trained classes."""
    _, db, run_id = digits_home
    run = get_run(db, run_id)
    last = resolve_epoch(db, run, None)
    summary = run_analysis(db, run_id, "epoch", last)
    by_layer = {row["layer"]: row for row in summary["separability"]}
    assert list(by_layer) == ["input", "hidden_1", "hidden_2", "hidden_3", "output"]
    assert by_layer["hidden_3"]["probe_accuracy"] >= 0.9
    assert sorted(entry["label"] for entry in summary["ood"]) == [3, 4]
    for layer in summary["layers"]:
        assert sorted(summary["class_signatures"][layer]["classes"]) == ["1", "7"]
        makeup = summary["clusters"][layer]["clusters"]
        assert sum(c["size"] for c in makeup) == summary["n_probe"]
        assert all(set(c["trained"]) == {"1", "7"} for c in makeup)


def test_timeline_covers_first_and_last_epoch(digits_home):
    _, db, run_id = digits_home
    run = get_run(db, run_id)
    last = resolve_epoch(db, run, None)
    summary = run_analysis(db, run_id, "timeline", last)
    assert summary["epochs"][0] == 0 and summary["epochs"][-1] == last
    arrays = analyses.read_arrays(db, run_id, "timeline", last)
    frames = len(summary["epochs"])
    assert arrays["pca/hidden_1"].shape == (frames, summary["n_probe"], 2)
    assert len(summary["separability"]) == frames


def test_bad_epoch_is_refused_with_the_recorded_range(digits_home):
    _, db, run_id = digits_home
    with pytest.raises(AnalysisError, match="epoch: 5000 was not recorded .* from 0 to 30"):
        resolve_epoch(db, get_run(db, run_id), 5000)


def test_cli_analyze_prints_every_layer_and_the_unseen_classes(digits_home):
    home, _, run_id = digits_home
    env = {**os.environ, "NETLENS_HOME": str(home), "NETLENS_DATABASE_URL": ""}
    cli = [sys.executable, "-m", "netlens.cli", "analyze", str(run_id)]
    text = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300, check=True)
    for layer in ("hidden_1", "hidden_2", "hidden_3"):
        assert layer in text.stdout
    assert "OOD class 3 (" in text.stdout and "OOD class 4 (" in text.stdout
    header = next(line for line in text.stdout.splitlines() if line.startswith("layer"))
    assert header.split() == [
        "layer",
        "units",
        "K",
        "cluster",
        "sil.",
        "class",
        "sil.",
        "linear",
        "probe",
    ]
    as_json = subprocess.run(
        [*cli, "--json", "--epoch", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(as_json.stdout)["epoch"] == 10
    assert set(json.loads(as_json.stdout)["projections"]) == {"pca"}
    with_umap = subprocess.run(
        [*cli, "--json", "--epoch", "10", "--methods", "umap"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert set(json.loads(with_umap.stdout)["projections"]) == {"pca", "umap"}
    wrong = subprocess.run(
        [*cli, "--methods", "isomap"], env=env, capture_output=True, text=True, timeout=120
    )
    assert wrong.returncode == 2 and "--methods: 'isomap' is not one of tsne, umap" in wrong.stderr
    bad = subprocess.run(
        [*cli, "--epoch", "999"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "epoch: 999 was not recorded" in bad.stderr


def test_deleting_a_run_deletes_its_analyses(sqlite_db):
    run_id = _digits_run(sqlite_db, epochs=3)
    run_analysis(sqlite_db, run_id, "epoch", 3)
    assert analyses.list_analyses(sqlite_db, run_id)
    from netlens.storage.runs import delete_run

    delete_run(sqlite_db, run_id)
    assert analyses.list_analyses(sqlite_db, run_id) == []
    assert analyses.read_arrays(sqlite_db, run_id, "epoch", 3) == {}
