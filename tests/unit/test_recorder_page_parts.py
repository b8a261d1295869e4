"""The run and compare pages' parts for nl.Recorder runs (issue 15 part 3), called directly:
which network view a run gets and whether its colour selector shows, the Cancel/Retry buttons
the server would refuse, the subtitle, and the compare table read from the run's own metric
names."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from netlens.storage.catalog import TRAINED_ELSEWHERE
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.views import run as run_views
from netlens.webapp.views.common import run_summary_line


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The run and compare page modules: Dash registers pages once an app exists."""
    from netlens.webapp.app import create_app

    settings = Settings(home=tmp_path_factory.mktemp("pages"), database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    create_app(settings, db)
    # as Dash registered them ("pages.<name>"): importing netlens.webapp.pages.<name> would
    # register each page a second time, and every later app would refuse its duplicate paths
    yield SimpleNamespace(run=sys.modules["pages.run"], compare=sys.modules["pages.compare"])
    db.dispose()


def dense(name: str, n_in: int, n_out: int) -> dict:
    return {
        "name": name,
        "kind": "dense",
        "params": {"kernel": [n_in, n_out], "bias": [n_out]},
        "output_shape": [n_out],
        "units": n_out,
    }


def recorder_info(layers: list[dict], status: str = "failed", **fields) -> SimpleNamespace:
    base = {
        "id": 7,
        "name": "mine",
        "status": status,
        "spec": {"model": {"kind": "flax"}, "dataset": {"name": "external"}},
        "layers": layers,
        "data_info": {"recorder": {"root": "output"}},
        "dataset": "external",
        "architecture": "Net: 3 modules, 20 parameters",
        "optimizer": "external",
        "last_epoch": 5,
        "epochs_total": 5,
        "epochs_recorded": 6,
        "final_metrics": {"train_loss": None, "train_accuracy": None},
        "owner_id": None,
    }
    return SimpleNamespace(**{**base, **fields})


ROOT = {"name": "output", "kind": "module", "params": {}, "output_shape": [1], "units": 1}


def test_a_dense_chain_is_drawn_neuron_by_neuron_anything_else_as_modules():
    chain = recorder_info([dense("a", 2, 5), dense("b", 5, 1), ROOT])
    assert not run_views.draws_module_graph(chain)
    broken = recorder_info([dense("a", 2, 5), dense("b", 4, 1), ROOT])  # kernels do not fit
    assert run_views.draws_module_graph(broken)
    conv = {"name": "c", "kind": "module", "params": {"kernel": [3, 3, 1, 4]}, "units": 64}
    assert run_views.draws_module_graph(recorder_info([conv, dense("b", 4, 1), ROOT]))
    spec_run = recorder_info([conv], spec={"model": {"kind": "cnn"}})
    assert not run_views.draws_module_graph(spec_run)  # the spec's own network views


def _network_tab_controls(info) -> dict:
    tabs = run_views.tabs(info)
    (tab,) = [t for t in tabs.children if t.tab_id == "network"]
    return tab.children[1].style  # below the tab's caption


def test_the_colour_selector_shows_only_above_a_neuron_level_graph():
    conv = {"name": "c", "kind": "module", "params": {"kernel": [3, 3, 1, 4]}, "units": 64}
    assert _network_tab_controls(recorder_info([conv, dense("b", 4, 1), ROOT])) == {
        "display": "none"
    }
    assert _network_tab_controls(recorder_info([dense("a", 2, 5), dense("b", 5, 1), ROOT])) is None


def _buttons(bar) -> dict:
    return {
        b.id: b
        for b in bar.children
        if getattr(b, "id", None)
        in (run_views.ids.CANCEL, run_views.ids.RETRY, run_views.ids.RETRY_SCRATCH)
    }


def test_cancel_and_retry_of_a_recorder_run_are_disabled_with_the_servers_reason(
    pages, monkeypatch
):
    monkeypatch.setattr(pages.run, "may_change", lambda info: True)  # the owner is looking
    for status in ("failed", "cancelled", "running", "succeeded"):
        buttons = _buttons(pages.run.actions_bar(recorder_info([ROOT], status=status)))
        assert all(b.disabled for b in buttons.values()), status
        assert all(TRAINED_ELSEWHERE in b.title for b in buttons.values()), status
    spec_run = recorder_info([ROOT], status="failed", spec={"model": {"kind": "mlp"}})
    buttons = _buttons(pages.run.actions_bar(spec_run))
    retry = buttons[run_views.ids.RETRY]
    assert not retry.disabled and getattr(retry, "title", None) is None


def test_the_subtitle_names_external_once():
    line = run_summary_line(recorder_info([ROOT]))
    assert line.count("external") == 1 and "own training loop" in line


def test_compare_table_reads_a_recorder_runs_own_metric_names(pages):
    info = recorder_info([ROOT], status="succeeded")
    epochs = np.arange(4)
    metrics = {
        "loss": np.array([1.0, 0.6, 0.4, 0.5]),
        "acc": np.array([0.2, 0.5, 0.9, 0.8]),
        "val_loss": np.array([1.1, 0.7, np.nan, 0.65]),
    }
    table = pages.compare.metrics_table([info], [(epochs, metrics)])
    cells = [str(td.children) for td in table.children[1].children[0].children[3:]]
    final_train_loss, final_val_loss, final_train_acc, final_val_acc, best_loss, best_acc = cells
    assert final_train_loss == f"{metrics['loss'][-1]:.4g}"
    assert final_val_loss == f"{metrics['val_loss'][-1]:.4g}"
    assert final_train_acc == f"{metrics['acc'][-1]:.4g}"
    assert final_val_acc == "–"  # never logged
    best = int(np.nanargmin(metrics["val_loss"]))
    assert best_loss == f"{metrics['val_loss'][best]:.4g} at epoch {best}"
    best = int(np.argmax(metrics["acc"]))
    assert best_acc == f"{metrics['acc'][best]:.4g} at epoch {best} (train)"


def test_cancel_and_retry_are_live_only_where_they_apply_else_muted_with_the_reason(
    pages, monkeypatch
):
    monkeypatch.setattr(pages.run, "may_change", lambda info: True)
    spec = {"model": {"kind": "mlp"}}
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        buttons = _buttons(pages.run.actions_bar(recorder_info([ROOT], status=status, spec=spec)))
        live = {
            run_views.ids.CANCEL: status in ("queued", "running"),
            run_views.ids.RETRY: status in ("failed", "cancelled"),
            run_views.ids.RETRY_SCRATCH: status in ("failed", "cancelled"),
        }
        for button_id, is_live in live.items():
            button = buttons[button_id]
            assert bool(button.disabled) is not is_live, (status, button_id)
            if is_live:
                assert getattr(button, "title", None) is None, (status, button_id)
            else:  # grey outline, not a bright disabled warning; the tooltip says why
                assert button.color == "secondary" and button.outline, (status, button_id)
                assert status in button.title, (status, button_id)
        if live[run_views.ids.CANCEL]:
            assert buttons[run_views.ids.CANCEL].color == "warning"
        else:
            assert "has finished" in buttons[run_views.ids.CANCEL].title
    monkeypatch.setattr(pages.run, "may_change", lambda info: False)  # someone else's run
    queued = _buttons(pages.run.actions_bar(recorder_info([ROOT], status="queued", spec=spec)))
    assert queued[run_views.ids.CANCEL].disabled
    assert queued[run_views.ids.CANCEL].title == pages.run.NOT_YOURS
