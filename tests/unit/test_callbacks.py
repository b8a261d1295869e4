"""Every Dash callback called directly, against real runs recorded in a temporary SQLite."""

from __future__ import annotations

import sys
from contextvars import copy_context
from types import ModuleType

import flask
import numpy as np
import plotly.graph_objects as go
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from netlens.storage import jobs, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.presets import get_preset
from netlens.storage.settings import Settings
from netlens.storage.users import LOCAL
from netlens.webapp.app import create_app
from netlens.webapp.views.run import ids
from netlens.worker.runner import run_experiment
from tests.conftest import small_spec

home = new = run = runs_page = ModuleType("set by the web fixture")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    home_dir = tmp_path_factory.mktemp("web")
    settings = Settings(home=home_dir, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    xor = runs.create_run(
        db,
        small_spec(
            name="xor-run", dataset={"name": "xor"}, training={"epochs": 40, "batch_size": 4}
        ),
    )
    run_experiment(db, xor)
    digits = runs.create_run(
        db,
        get_preset("digits-1-7").model_copy(
            update={"training": get_preset("digits-1-7").training.model_copy(update={"epochs": 5})}
        ),
    )
    run_experiment(db, digits)
    app = create_app(settings, db)
    global home, new, run, runs_page  # Dash imports the page modules as pages.<name>
    home, new, run, runs_page = (sys.modules[f"pages.{n}"] for n in ("home", "new", "run", "runs"))
    with app.server.app_context():
        flask.g.netlens_actor = LOCAL  # single-user mode: what the guard sets per request
        yield {"db": db, "settings": settings, "xor": xor, "digits": digits}


def triggered(prop_id: str, fn, *args):
    """Run a callback as Dash would after `prop_id` fired."""

    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": 1}]))
        return fn(*args)

    return copy_context().run(call)


def _has_data(fig) -> bool:
    """At least one trace with points (an empty figure carries only an annotation)."""

    def size(trace) -> int:
        for name in ("x", "z", "y"):
            values = getattr(trace, name, None)
            if values is not None and len(values):
                return len(values)
        return 0

    return any(size(t) > 0 for t in go.Figure(fig).data)


def _is_empty_message(fig) -> bool:
    fig = go.Figure(fig)
    return not fig.data and bool(fig.layout.annotations)


def test_every_view_of_a_2d_run_draws_data_at_a_chosen_epoch(web):
    from netlens.webapp.views import run as v

    run_id = web["xor"]
    assert v.epoch_label(10, run_id) == "epoch 10"
    loss, acc, grads = v.curve_views("curves", 10, 0, 0, False, "epoch", run_id)
    assert {t.name for t in go.Figure(loss).data} >= {"train loss"}
    assert {t.name for t in go.Figure(grads).data} == {"hidden_1", "output"}
    assert _has_data(acc)
    traj, hist = v.parameter_views("params", 10, "hidden_1", 1, run_id)
    bias_line = [t for t in go.Figure(traj).data if t.name == "bias"][0]
    assert len(bias_line.y) == 41
    assert _has_data(hist)
    assert _has_data(v.output_view("outputs", 10, run_id))
    graph2d = go.Figure(v.network_view("network", 10, "activation", 2, run_id))
    assert graph2d.data and "epoch 10" in graph2d.layout.title.text
    assert go.Figure(v.network3d_view("network3d", 10, run_id)).data
    stats = go.Figure(v.activation_view("activations", 10, "hidden_1", run_id))
    assert any("mean" in (t.name or "") for t in stats.data)
    boundary = go.Figure(v.boundary_view("boundary", 10, run_id))
    assert any(t.type == "heatmap" for t in boundary.data)
    rep = go.Figure(v.representation_view("representation", 10, "hidden_1", "correct", run_id))
    assert rep.data and "hidden_1 at epoch 10" in rep.layout.title.text


def test_views_compute_only_for_the_active_tab(web):
    from dash.exceptions import PreventUpdate

    from netlens.webapp.views import run as v

    with pytest.raises(PreventUpdate):
        v.parameter_views("curves", 3, "hidden_1", 0, web["xor"])
    with pytest.raises(PreventUpdate):
        v.network_view("params", 3, "bias", 0, web["xor"])


def test_image_run_views_and_out_of_distribution_inputs(web):
    from netlens.webapp.views import run as v

    run_id = web["digits"]
    info = runs.get_run(web["db"], run_id)
    assert [layer["name"] for layer in info.layers][-1] == "output"
    outputs = go.Figure(v.output_view("outputs", None, run_id))
    assert _has_data(outputs)
    rep = go.Figure(v.representation_view("representation", None, "hidden_3", "class", run_id))
    assert rep.data and rep.layout.xaxis.title.text == "PC 1"
    # 2-D only: a digits run has no decision-boundary grid, and says so
    assert _is_empty_message(v.boundary_view("boundary", None, run_id))


def test_slider_index_is_clipped_and_maps_to_recorded_epochs(web):
    from netlens.webapp.views import run as v

    assert v.epoch_label(10_000, web["xor"]) == "epoch 40"
    assert v.epoch_label(-5, web["xor"]) == "epoch 0"


def test_live_refresh_play_and_advance(web):
    header, disabled, maximum, value = run.refresh(1, web["xor"], 40, 40)
    assert disabled is True and maximum == 40 and value == 40  # finished: no more polling
    assert run.toggle_play(1, True) == (False, "⏸ Pause")
    assert run.toggle_play(2, False) == (True, "▶ Play")
    assert run.advance(1, 10, 40)[0] == 11
    value, stop, label = run.advance(1, 39, 40)
    assert value == 40 and stop is True and label == "▶ Play"
    assert run.advance(1, 40, 40)[0] == 0  # playing again from the end restarts


def test_save_fields_validates_and_saves(web):
    bad = run.save_fields(1, web["xor"], "x" * 201, "", "")
    assert "name: longer than 200" in str(bad)
    ok = run.save_fields(1, web["xor"], "renamed", "a, b", "some notes")
    assert "saved" in str(ok)
    info = runs.get_run(web["db"], web["xor"])
    assert info.name == "renamed" and info.tags == ["a", "b"] and info.notes == "some notes"


def test_export_is_a_link_to_the_streamed_route(web, tmp_path, monkeypatch):
    """No callback carries the file: Export links to GET /runs/<id>/export.npz, which streams
    an .npz from a temporary file that has no name on disk."""
    import io
    import tempfile

    info = runs.get_run(web["db"], web["xor"])
    link = run.export_link(info)
    assert link.href == f"/runs/{info.id}/export.npz" and link.download == f"run{info.id}.npz"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    answer = flask.current_app.test_client().get(link.href)
    assert answer.status_code == 200 and answer.headers["Content-Length"] == str(len(answer.data))
    with np.load(io.BytesIO(answer.data), allow_pickle=False) as npz:
        assert len(npz["epochs"]) == info.epochs_recorded
    assert list(tmp_path.iterdir()) == []


def test_run_actions_on_a_queued_job(web):
    from netlens.dispatch.submission import submit_spec

    run_id = submit_spec(web["db"], web["settings"], small_spec(name="queued"))
    message = triggered(f"{ids.CANCEL}.n_clicks", run.run_action, 1, None, None, run_id)
    assert "cancelled" in str(message)
    assert jobs.get_job(web["db"], run_id).state == "cancelled"
    message = triggered(f"{ids.RETRY}.n_clicks", run.run_action, None, 1, None, run_id)
    assert "attempt 2 queued" in str(message)
    message = triggered(f"{ids.RETRY}.n_clicks", run.run_action, None, 2, None, run_id)
    assert "only failed or cancelled" in str(message)  # a second click: refused
    local = triggered(f"{ids.CANCEL}.n_clicks", run.run_action, 1, None, None, web["xor"])
    assert "outside the queue" in str(local)


def test_runs_table_pages_sorts_and_filters_in_sql(web):
    page = runs_page.rows_for_request(
        {"startRow": 0, "endRow": 1, "sortModel": [{"colId": "id", "sort": "asc"}]}
    )
    assert page["rowCount"] >= 2 and len(page["rowData"]) == 1
    assert page["rowData"][0]["key"] == str(web["xor"])
    filtered = runs_page.rows_for_request(
        {
            "startRow": 0,
            "endRow": 50,
            "filterModel": {
                "dataset": {"filterType": "text", "type": "contains", "filter": "digi"}
            },
        }
    )
    assert {r["dataset"] for r in filtered["rowData"]} == {"digits"}


def test_runs_table_actions(web):
    from netlens.dispatch.submission import submit_spec

    run_id = submit_spec(web["db"], web["settings"], small_spec(name="to-delete"))
    rows = [{"key": str(run_id)}]
    alert, _grid = triggered(
        f"{runs_page.DELETE}.n_clicks", runs_page.act_on_selection, None, 1, rows
    )
    assert "cancel it before deleting it" in str(alert)
    triggered(f"{runs_page.CANCEL}.n_clicks", runs_page.act_on_selection, 1, None, rows)
    alert, _grid = triggered(
        f"{runs_page.DELETE}.n_clicks", runs_page.act_on_selection, None, 2, rows
    )
    assert "deleted" in str(alert)
    with pytest.raises(runs.RunNotFound):
        runs.get_run(web["db"], run_id)
    nothing, _ = triggered(f"{runs_page.DELETE}.n_clicks", runs_page.act_on_selection, None, 3, [])
    assert "Select runs first" in str(nothing)


def test_new_experiment_form_round_trips_presets_and_names_errors(web):
    values = new.fill_from_preset("two-regions")
    spec, errors = new.validate(values)
    assert errors == [] and spec.model.hidden[1].units == 2
    assert spec.model_dump(exclude={"name", "tags"}) == get_preset("two-regions").model_dump(
        exclude={"name", "tags"}
    )
    index = [cid for cid, *_ in new.FIELDS].index("f-epochs")
    values[index] = 0
    out = new.check(*values)
    n = len(new.FIELDS)
    invalid, messages = out[:n], out[n : 2 * n]
    assert invalid[index] is True and "at least 1" in messages[index]
    assert sum(invalid) == 1
    hidden = [cid for cid, *_ in new.FIELDS].index("f-hidden")
    values[index], values[hidden] = 100, "8 tanh, lots relu"
    out = new.check(*values)
    assert out[hidden] is True and "UNITS ACTIVATION" in out[n + hidden]


def test_new_experiment_submit_refuses_invalid_and_queues_valid(web):
    before = runs.count_runs(web["db"])
    values = new.fill_from_preset("xor")
    epochs = [cid for cid, *_ in new.FIELDS].index("f-epochs")
    values[epochs] = -3
    alert, path = new.submit(1, *values)
    assert "Not submitted" in str(alert) and runs.count_runs(web["db"]) == before
    values[epochs] = 50
    _alert, path = new.submit(1, *values)
    run_id = int(path.rsplit("/", 1)[1])
    assert runs.get_run(web["db"], run_id).epochs_total == 50
    assert jobs.get_job(web["db"], run_id).state == "queued"


def test_new_experiment_previews(web):
    values = new.fill_from_preset("digits-1-7")

    def call():
        context_value.set(
            AttributeDict(
                triggered_inputs=[],
                inputs={f"{cid}.value": v for (cid, *_), v in zip(new.FIELDS, values, strict=True)},
            )
        )
        return new.preview(*values)

    preview = go.Figure(copy_context().run(call))
    assert preview.data  # sample images of 1s and 7s
    out = new.check(*values)
    size, sketch = out[-2], go.Figure(out[-1])
    assert "MiB" in str(size) and sketch.data


def test_home_launches_a_preset_and_lists_recent_runs(web):
    path, feedback = triggered(
        '{"name":"spiral","type":"preset-launch"}.n_clicks', home.launch_preset, [None, None, 1]
    )
    run_id = int(path.rsplit("/", 1)[1])
    assert runs.get_run(web["db"], run_id).name == "spiral"
    assert "xor-run" in str(home.recent_runs()) or "renamed" in str(home.recent_runs())


def test_run_page_layout_for_missing_and_existing_runs(web):
    assert "No such run" in str(run.layout(run_id="999999"))
    assert "No such run" in str(run.layout(run_id="abc"))
    page = str(run.layout(run_id=str(web["xor"])))
    assert "Decision boundary" in page and "Hidden representation" in page
    digits_page = str(run.layout(run_id=str(web["digits"])))
    assert "Decision boundary" not in digits_page


def test_cached_reads_return_the_selected_epoch(web):
    from netlens.webapp.context import current

    data = current().data
    info = runs.get_run(web["db"], web["xor"])
    found, kernel = data.at_epoch(info, "params/hidden_1/kernel", 7)
    epochs, history = data.history(info, "params/hidden_1/kernel")
    assert found == 7 and np.array_equal(kernel, history[list(epochs).index(7)])


def test_a_failing_view_shows_a_readable_message_instead_of_raising(web, monkeypatch):
    from netlens.webapp.views import run as v

    def broken(*_args, **_kwargs):
        raise RuntimeError("storage went away")

    monkeypatch.setattr(v.network, "build_network_graph", broken)
    fig = go.Figure(v.network_view("network", 3, "bias", 0, web["xor"]))
    assert not fig.data
    assert "could not be drawn: RuntimeError: storage went away" in fig.layout.annotations[0].text
    loss, acc, grads = v.curve_views(
        "curves", 3, 0, 0, False, "epoch", 10**9
    )  # a run that does not exist
    assert "RunNotFound" in go.Figure(loss).layout.annotations[0].text


def test_compare_page_overlays_runs_and_lists_only_differing_spec_fields(web):
    compare = sys.modules["pages.compare"]
    page = compare.layout(runs=f"{web['xor']},{web['digits']}")
    text = str(page)
    assert "Comparing 2 runs" in text and "dataset.name" in text
    assert "training.seed" not in text  # the same in both runs: not a difference
    diff = compare.spec_diff([{"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}])
    assert diff == {"a.y": [2, 3]}
    assert "Cannot compare" in str(compare.layout(runs="1,abc"))
    assert "at most 8" in str(compare.layout(runs=",".join(str(i) for i in range(1, 10))))
    assert "does not exist" in str(compare.layout(runs="999999,1"))
    alert = runs_page.compare_selected(1, [{"key": "1"}])[2]
    assert "between 2 and 8" in str(alert)
    assert runs_page.compare_selected(1, [{"key": "1"}, {"key": "2"}])[:2] == (
        "?runs=1,2",
        "/compare",
    )


def test_neuron_maps_draw_each_hidden_unit_and_runs_without_them_say_why(web):
    """The Neuron maps tab draws grid/<layer> as stored (one heatmap per unit, at the grid
    epoch the slider points at); the network graph carries the same maps on its nodes; a run
    without maps gets a sentence, not empty axes."""
    import json

    from dash.exceptions import PreventUpdate

    from netlens.storage import records
    from netlens.webapp.figures import neurons
    from netlens.webapp.views import run as v
    from netlens.webapp.views import run_neurons

    run_id = web["xor"]
    info = runs.get_run(web["db"], run_id)
    units = info.layers[0]["units"]
    fig = go.Figure(run_neurons.neurons_view("neurons", 10, run_id))
    maps = [t for t in fig.data if t.type == "heatmap"]
    assert len(maps) == units and "epoch 10" in fig.layout.title.text
    _, stored = records.read_tensor(web["db"], run_id, "grid/hidden_1", 10, 10)
    side = int(np.sqrt(stored.shape[1]))
    for unit, trace in enumerate(maps):
        np.testing.assert_allclose(np.asarray(trace.z), stored[0][:, unit].reshape(side, side))
    assert [a.text for a in fig.layout.annotations][:units] == [
        f"hidden_1 · unit {u}" for u in range(units)
    ]
    # the Python API's run.figure draws the page's figures
    from netlens.sdk.reading import Run

    sdk_run = Run(run_id, web["db"])

    def same(a, b) -> bool:
        return json.loads(go.Figure(a).to_json()) == json.loads(go.Figure(b).to_json())

    assert same(sdk_run.figure("neurons", epoch=10), fig)
    graph = go.Figure(v.network_view("network", 10, "bias", 0, run_id))
    assert same(sdk_run.figure("network", epoch=10), graph)
    assert len(graph.layout.images) == units
    assert all(i.source.startswith("data:image/png;base64,") for i in graph.layout.images)
    # a digits run has no grid: a sentence; a run recorded before grid/<layer> existed: another
    assert _is_empty_message(run_neurons.neurons_view("neurons", None, web["digits"]))
    assert not go.Figure(v.network_view("network", None, "bias", 0, web["digits"])).layout.images
    old = neurons.why_no_maps(info.layers, info.spec, ["grid/output", "params/output/kernel"])
    assert "before NetLens kept" in old
    with pytest.raises(PreventUpdate):
        run_neurons.neurons_view("boundary", 10, run_id)
