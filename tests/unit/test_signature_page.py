"""The signatures page: its callbacks called directly on a real analysed digits-1-7 run, and
its figure builders on small known inputs."""

from __future__ import annotations

import struct
import sys
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.storage import analyses, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.presets import get_preset
from netlens.storage.records import read_arrays
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec
from netlens.webapp.app import create_app
from netlens.webapp.figures import signatures as figs
from netlens.webapp.figures.images import png_bytes
from netlens.worker.analyze import run_analysis
from netlens.worker.runner import run_experiment

EPOCHS = 12


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    home = tmp_path_factory.mktemp("sig-web")
    settings = Settings(home=home, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    data = get_preset("digits-1-7").model_dump()
    data["training"]["epochs"] = EPOCHS
    data["recording"] = {"probe_size": 120}
    analysed = runs.create_run(db, parse_spec(data))
    run_experiment(db, analysed)
    run_analysis(db, analysed, "epoch", EPOCHS)
    run_analysis(db, analysed, "timeline", EPOCHS)
    for method in ("tsne", "umap"):  # on demand: the page asks for them when chosen
        run_analysis(db, analysed, method, EPOCHS)
    bare = runs.create_run(db, parse_spec(data))
    run_experiment(db, bare)
    app = create_app(settings, db)
    page = sys.modules["pages.signatures"]  # Dash imports the page modules as pages.<name>
    n_probe = len(read_arrays(db, analysed)["probe/y"])
    with app.server.app_context():
        yield {"db": db, "page": page, "run": analysed, "bare": bare, "n": n_probe}


def _traces(fig) -> int:
    """Traces with data points (a Sankey counts by its links)."""
    count = 0
    for trace in go.Figure(fig).data:
        if trace.type == "sankey":
            count += len(trace.link.value or [])
        else:
            count += any(
                v is not None and len(v) for v in (getattr(trace, n, None) for n in ("x", "y", "z"))
            )
    return count


def _title(fig) -> str:
    return go.Figure(fig).layout.title.text or ""


def test_every_tab_draws_the_stored_analysis_of_the_last_epoch(web):
    p, run_id, n = web["page"], web["run"], web["n"]
    status, label, _disabled, maximum, version = p.status(EPOCHS, 0, run_id, None)
    assert label == f"epoch {EPOCHS}" and maximum == EPOCHS and version
    by_layer, over_epochs = p.separability(
        "separability", EPOCHS, "linear-probe accuracy", version, run_id
    )
    assert [t.name for t in go.Figure(by_layer).data] == [
        "linear-probe accuracy",
        "silhouette of true classes",
    ]
    assert list(go.Figure(by_layer).data[0].x) == [
        "input",
        "hidden_1",
        "hidden_2",
        "hidden_3",
        "output",
    ]
    assert go.Figure(over_epochs).data[0].z.shape[0] == 5  # layers × analysed frames
    curve, makeup = p.clusters("clusters", EPOCHS, "hidden_2", version, run_id)
    assert _traces(curve) and _traces(makeup) and "hidden_2" in _title(makeup)
    # the make-up's bars hold every probe input once, unseen classes in their own traces
    bars = go.Figure(makeup).data
    assert sum(sum(b.y) for b in bars) == n and {b.name for b in bars} >= {"3 (unseen)"}
    sankey = go.Figure(p.flow("flow", EPOCHS, version, run_id)).data[0]
    first_stage = [
        v for v, s in zip(sankey.link.value, sankey.link.source, strict=True) if s < 4
    ]  # links leaving the four true-class nodes (1, 7, 3, 4)
    assert sum(first_stage) == n
    for method in ("pca", "tsne", "umap"):
        for color_by in ("class", "cluster", "correct", "ood"):
            fig = p.projection("projections", EPOCHS, "hidden_3", method, color_by, version, run_id)
            points = sum(len(t.x) for t in go.Figure(fig).data)
            assert points == n, (method, color_by)
            assert f"epoch {EPOCHS}" in _title(fig)
    # customdata must reach hover and click events: a plain list, not a base64 typed array
    # (plotly.js leaves those out of the events).
    for trace in go.Figure(fig).to_plotly_json()["data"]:
        assert isinstance(trace["customdata"], list | tuple)
    heat, centroids, typical = p.class_signatures("classes", EPOCHS, "hidden_1", version, run_id)
    assert go.Figure(heat).data[0].z.shape == (4, 32)  # 1, 7, 3 (unseen), 4 (unseen) × units
    assert "data:image/png;base64," in str(typical)  # the typical inputs shown as images
    table, bars = p.unseen("ood", EPOCHS, "hidden_3", version, run_id)
    assert "3 (" in str(table) and "4 (" in str(table) and _traces(bars)
    fig, text = p.compare("compare", EPOCHS, 0, 5, run_id)
    assert _traces(fig) == 6  # two inputs × three hidden layers
    assert "cosine" in str(text)


def test_an_epoch_without_analysis_shows_the_nearest_and_offers_to_queue_it(web):
    p, run_id = web["page"], web["run"]
    _, label, *_ = p.status(3, 0, run_id, None)
    assert label == f"epoch 3 · showing the analysis of epoch {EPOCHS}"
    feedback, polling_disabled = p.analyze(1, 3, run_id)
    assert "queued: epoch at epoch 3" in str(feedback) and polling_disabled is False
    assert analyses.get(web["db"], run_id, "epoch", 3).state == "queued"
    assert "already queued" in str(p.analyze(2, 3, run_id)[0])


def test_a_run_without_analyses_says_so_in_every_view(web):
    p, run_id = web["page"], web["bare"]
    flow = go.Figure(p.flow("flow", EPOCHS, "", run_id))
    assert not flow.data and "Analyse this epoch" in flow.layout.annotations[0].text
    proj = go.Figure(p.projection("projections", EPOCHS, "hidden_1", "umap", "class", "", run_id))
    assert not proj.data


def test_a_bad_input_number_names_the_field_and_the_limit(web):
    p, run_id, n = web["page"], web["run"], web["n"]
    fig, text = p.compare("compare", EPOCHS, 0, 500, run_id)
    assert f"input B: 500 is out of range: must be between 0 and {n - 1}" in str(text)
    assert not go.Figure(fig).data


def test_clicking_a_sankey_link_lists_its_inputs(web):
    p, run_id = web["page"], web["run"]
    panel = str(p.link_inputs({"points": [{"customdata": 0}]}, EPOCHS, run_id))
    assert "inputs" in panel and "data:image/png;base64," in panel
    card = str(p.hover_card({"points": [{"customdata": 7}]}, EPOCHS, run_id))
    assert "probe input #7" in card and "predicted" in card


def test_png_bytes_is_a_valid_greyscale_png_of_the_scaled_image():
    image = np.array([[0.0, 1.0], [0.5, 0.25]])
    data = png_bytes(image, scale=3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (6, 6)
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    rows = [raw[i * 7 + 1 : (i + 1) * 7] for i in range(6)]  # filter byte + 6 pixels per row
    assert rows[0] == bytes([255, 255, 255, 0, 0, 0])  # 0 → white, 1 → black ink
    assert rows[3][0] == 255 - round(0.5 * 255)


def test_stable_ranges_cover_every_frame():
    frames = np.array([[[0, 0], [1, 2]], [[-3, 5], [0, 0]]], float)
    (x0, x1), (y0, y1) = figs.stable_ranges(frames)
    assert x0 < -3 and x1 > 1 and y0 < 0 and y1 > 5


def test_colouring_by_correctness_keeps_unseen_inputs_apart():
    groups, names, *_ = figs.color_groups(
        "correct",
        class_index=np.zeros(4, int),
        is_ood=np.array([0, 0, 1, 1], bool),
        clusters=None,
        correct=np.array([1, 0, 1, 0], bool),
        class_names=[],
        ood_names=[],
        ood_index=np.zeros(4, int),
    )
    assert [names[g] for g in groups] == ["correct", "wrong", "unseen class", "unseen class"]


def test_choosing_tsne_queues_it_shows_its_progress_then_draws_it(web):
    """Last in this module: it analyses the bare run (the test above wants it bare)."""
    from dash.exceptions import PreventUpdate

    p, db, run_id = web["page"], web["db"], web["bare"]
    run_analysis(db, run_id, "epoch", EPOCHS)
    _, _, _, _, version = p.status(EPOCHS, 0, run_id, None)
    with pytest.raises(PreventUpdate):
        p.request_projection("pca", "projections", version, EPOCHS, run_id)
    with pytest.raises(PreventUpdate):  # another tab: nothing asked
        p.request_projection("tsne", "clusters", version, EPOCHS, run_id)
    bad, _ = p.request_projection({"x": 1}, "projections", version, EPOCHS, run_id)
    assert "projection: " in str(bad) and "is not one of pca, tsne, umap" in str(bad)
    assert analyses.get(db, run_id, "tsne", EPOCHS) is None
    note, polling_disabled = p.request_projection("tsne", "projections", version, EPOCHS, run_id)
    assert f"queued: t-SNE of epoch {EPOCHS}" in str(note) and polling_disabled is False
    assert analyses.get(db, run_id, "tsne", EPOCHS).state == "queued"
    again, _ = p.request_projection("tsne", "projections", version, EPOCHS, run_id)
    assert "on its way" in str(again)
    waiting = go.Figure(
        p.projection("projections", EPOCHS, "hidden_1", "tsne", "class", "", run_id)
    )
    assert not waiting.data
    assert waiting.layout.annotations[0].text == f"t-SNE of epoch {EPOCHS}: queued"
    # a worker takes it and tells its progress: the status line and the figure show it
    assert analyses.claim(db, run_id, "tsne", EPOCHS, "test-worker")
    analyses.set_progress(db, run_id, "tsne", EPOCHS, "computing t-SNE for layer 2 of 3…")
    status, _, polling_stopped, _, moved = p.status(EPOCHS, 1, run_id, version)
    assert f"t-SNE of epoch {EPOCHS}: computing t-SNE for layer 2 of 3…" in str(status)
    assert polling_stopped is False and moved != version  # the views redraw with it
    running = go.Figure(
        p.projection("projections", EPOCHS, "hidden_1", "tsne", "class", moved, run_id)
    )
    assert running.layout.annotations[0].text.endswith("computing t-SNE for layer 2 of 3…")
    run_analysis(db, run_id, "tsne", EPOCHS)
    status, _, polling_stopped, _, done = p.status(EPOCHS, 2, run_id, moved)
    assert "computing" not in str(status) and polling_stopped is True
    drawn = go.Figure(
        p.projection("projections", EPOCHS, "hidden_1", "tsne", "class", done, run_id)
    )
    assert sum(len(t.x) for t in drawn.data) == web["n"]
    assert f"t-SNE at epoch {EPOCHS}" in _title(drawn)
    # the UMAP of that epoch was never asked for: not computed
    assert analyses.get(db, run_id, "umap", EPOCHS) is None
