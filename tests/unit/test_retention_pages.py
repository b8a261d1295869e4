"""A thinned run on the pages, without a browser: the run and signatures pages' sliders go
over the kept epochs only (their marks name kept epochs), the page says it was thinned, every
view draws at every kept epoch and at a URL's dropped epoch, and analysing a dropped epoch is
refused with a reason. The layouts and callbacks are called as Dash would call them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from netlens.storage import records, retention, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.presets import get_preset
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec
from netlens.webapp.app import create_app
from netlens.webapp.views import run as views
from netlens.worker.runner import run_experiment

EPOCHS = 30
POLICY = retention.RetentionPolicy(keep_days=0, every=10, log_points=4)


def _find(node, component_id):
    """The component with this id in a layout tree."""
    if isinstance(node, list | tuple):
        for child in node:
            found = _find(child, component_id)
            if found is not None:
                return found
        return None
    if getattr(node, "id", None) == component_id:
        return node
    children = getattr(node, "children", None)
    if children is None or isinstance(children, str | int | float):
        return None
    return _find(children, component_id)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("thin-pages")
    settings = Settings(home=home, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    data = get_preset("two-regions").model_dump()
    data["training"]["epochs"] = EPOCHS
    thinned = runs.create_run(db, parse_spec(data))
    run_experiment(db, thinned)
    whole = runs.create_run(db, parse_spec(data))
    run_experiment(db, whole)
    result = retention.thin_run(db, thinned, POLICY)
    assert result.dropped > 0
    app = create_app(settings, db)
    with app.server.app_context():
        yield {
            "db": db,
            "run": sys.modules["pages.run"],
            "sig": sys.modules["pages.signatures"],
            "thinned": thinned,
            "whole": whole,
            "kept": result.kept,
        }
    db.dispose()


def test_the_run_pages_slider_goes_over_the_kept_epochs_and_says_so(site):
    kept, run_id = site["kept"], site["thinned"]
    assert kept == retention.kept_epochs(site["db"], run_id) and 0 in kept and EPOCHS in kept
    layout = site["run"].layout(run_id=str(run_id))
    slider = _find(layout, views.ids.SLIDER)
    assert slider.max == len(kept) - 1 and slider.value == len(kept) - 1
    assert slider.marks and {int(v) for v in slider.marks.values()} <= set(kept)
    assert all(str(kept[i]) == label for i, label in slider.marks.items())
    note = _find(layout, "run-thinned-note")
    assert note is not None and f"kept at {len(kept)} of {EPOCHS + 1}" in str(note)
    # each slider position is a kept epoch
    labels = [views.epoch_label(i, run_id) for i in range(len(kept))]
    assert labels == [f"epoch {e}" for e in kept]
    # a run never thinned: every epoch, no marks, no note
    whole = site["run"].layout(run_id=str(site["whole"]))
    slider = _find(whole, views.ids.SLIDER)
    assert slider.max == EPOCHS and slider.marks is None
    assert _find(whole, "run-thinned-note") is None


def test_a_url_asking_for_a_dropped_epoch_shows_the_nearest_kept_one(site):
    kept, run_id = site["kept"], site["thinned"]
    dropped = next(e for e in range(EPOCHS) if e not in kept)
    layout = site["run"].layout(run_id=str(run_id), epoch=str(dropped), tab="network")
    index = _find(layout, views.ids.SLIDER).value
    assert abs(kept[index] - dropped) == min(abs(e - dropped) for e in kept)


def test_every_view_draws_at_every_kept_epoch(site):
    run_id, kept = site["thinned"], site["kept"]
    info = runs.get_run(site["db"], run_id)
    layer = info.layers[0]["name"]
    for index in range(len(kept)):
        drawn = [
            views.parameter_views("params", index, layer, 0, run_id),
            views.output_view("outputs", index, run_id),
            views.network_view("network", index, "bias", 0, run_id),
            views.activation_view("activations", index, layer, run_id),
            views.boundary_view("boundary", index, run_id),
            views.representation_view("representation", index, layer, "class", run_id),
        ]
        assert "could not be drawn" not in str(drawn), (kept[index], str(drawn)[:400])


def test_the_signatures_page_and_analysis_requests(site):
    from netlens.dispatch.analysis_requests import AnalysisError, resolve_epoch

    run_id, kept = site["thinned"], site["kept"]
    layout = site["sig"].layout(run_id=str(run_id))
    assert _find(layout, "run-thinned-note") is not None
    _status, label, _disabled, maximum, _version = site["sig"].status(2, 0, run_id, None)
    assert maximum == len(kept) - 1 and label.startswith(f"epoch {kept[2]}")
    info = runs.get_run(site["db"], run_id)
    dropped = next(e for e in range(EPOCHS) if e not in kept)
    with pytest.raises(AnalysisError, match=f"epoch: {dropped} was thinned away"):
        resolve_epoch(site["db"], info, dropped)
    assert resolve_epoch(site["db"], info, kept[1]) == kept[1]
    # the curves stay whole: every epoch's metrics
    epochs, metrics = records.read_metrics(site["db"], run_id)
    assert epochs.tolist() == list(range(EPOCHS + 1))
    assert np.isfinite(metrics["train_loss"]).all()
