"""The compare page (issue 6) on real recorded runs: spec diff, metrics, the shared slider's
side-by-side views, CKA, distance from initial weights, weight and activation distributions,
dead and saturated units."""

from __future__ import annotations

import sys

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.storage import records, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.figures import curves
from netlens.worker.runner import run_experiment
from tests.conftest import small_spec
from tests.unit.test_figures import decoded


def _spec(name: str, **sections):
    base = {
        "dataset": {"name": "xor"},
        "training": {"epochs": 30, "batch_size": 4},
        "model": {"hidden": [{"units": 3, "activation": "tanh"}]},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return small_spec(name=name, **base)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("compare"), database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    made = {
        "a": _spec("a"),
        "b": _spec("b", training={"seed": 1}),  # the same network and data, another seed
        "c": _spec(
            "c",
            training={"epochs": 20},
            optimizer={"learning_rate": 0.05},
            model={"hidden": [{"units": 4, "activation": "tanh"}]},
        ),
        "regions": small_spec(
            name="regions",
            dataset={"name": "two-regions", "n_samples": 200},
            model={
                "hidden": [{"units": 6, "activation": "relu"}, {"units": 2, "activation": "relu"}]
            },
            training={"epochs": 12, "batch_size": 16},
        ),
    }
    ids = {}
    for key, spec in made.items():
        ids[key] = runs.create_run(db, spec)
        run_experiment(db, ids[key])
    app = create_app(settings, db)
    with app.server.app_context():
        yield {"db": db, "ids": ids, "page": sys.modules["pages.compare"]}


def _data(fig) -> list:
    return list(go.Figure(fig).data)


def _title(fig) -> str:
    return go.Figure(fig).layout.title.text or ""


def _epochs(web) -> list[int]:
    from netlens.webapp.comparison import union_epochs

    return union_epochs(
        [runs.recorded_epoch_numbers(web["db"], i) for i in web["ids"].values()]
    ).tolist()


def test_spec_diff_lists_exactly_the_fields_that_differ(web):
    page, db, ids = web["page"], web["db"], web["ids"]
    specs = {k: runs.get_run(db, i).spec for k, i in ids.items()}
    assert set(page.spec_diff([specs["a"], specs["b"]])) == {"name", "training.seed"}
    assert set(page.spec_diff([specs["a"], specs["b"], specs["c"]])) == {
        "name",
        "training.seed",
        "training.epochs",
        "optimizer.learning_rate",
        "model.hidden",
    }
    assert page.spec_diff([specs["a"], specs["a"]]) == {}
    diff = page.spec_diff([specs["a"], specs["c"]])
    assert diff["training.epochs"] == [30, 20]
    assert page.shown(diff["model.hidden"][1]) == "4 tanh"


def test_the_page_shows_curves_metrics_and_refuses_bad_run_lists(web):
    page, ids = web["page"], web["ids"]
    layout = page.layout(runs=f"{ids['a']},{ids['b']},{ids['c']}")
    text = str(layout)
    assert "Comparing 3 runs" in text and "optimizer.learning_rate" in text
    curves = [c for c in _find(layout, "compare-loss")]
    assert len(curves) == 1 and len(_data(curves[0].figure)) == 3  # one train line per run
    assert "at least 2" in str(page.layout(runs=str(ids["a"])))
    assert "at most 8" in str(page.layout(runs=",".join(str(i) for i in range(1, 10))))
    assert "must be run numbers" in str(page.layout(runs="1,x"))


def test_best_metric_is_the_recorded_best_epoch(web):
    page, db = web["page"], web["db"]
    info = runs.get_run(db, web["ids"]["regions"])
    epochs, metrics = records.read_metrics(db, info.id)
    best = int(np.nanargmin(metrics["val_loss"]))
    assert page._best(epochs, metrics, "loss", np.nanargmin) == (
        f"{metrics['val_loss'][best]:.4g} at epoch {int(epochs[best])}"
    )
    xor_epochs, xor_metrics = records.read_metrics(db, web["ids"]["a"])
    assert page._best(xor_epochs, xor_metrics, "loss", np.nanargmin).endswith("(train)")


def _find(component, component_id):
    if getattr(component, "id", None) == component_id:
        yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            yield from _find(child, component_id)


def test_the_shared_slider_moves_every_run_to_its_epoch_at_or_before(web):
    from netlens.webapp.views import compare as v

    ids, epochs = web["ids"], _epochs(web)
    index = epochs.index(25)  # run c stopped at 20: it stays on its last epoch
    out = v.side_by_side(
        "side", index, [ids["a"], ids["b"], ids["c"]], "network", v.NARROWEST, epochs
    )
    figures, styles, widths, note = out[:4], out[4:8], out[8:12], out[12]
    assert [" epoch 25" in _title(f) for f in figures[:2]] == [True, True]
    assert " epoch 20" in _title(figures[2])
    assert all(_data(f) for f in figures[:3]) and not _data(figures[3])
    assert styles[3] == {"display": "none"} and widths[0] == 4 and note == ""
    earlier = v.side_by_side(
        "side", epochs.index(5), [ids["a"], ids["b"]], "network", v.NARROWEST, epochs
    )
    assert " epoch 5" in _title(earlier[0])
    assert go.Figure(earlier[0]).to_json() != go.Figure(figures[0]).to_json()


def test_side_by_side_boundary_and_representation_and_the_four_run_limit(web):
    from netlens.webapp.views import compare as v

    ids, epochs = web["ids"], _epochs(web)
    chosen = [ids["regions"], ids["a"]]
    boundaries = v.side_by_side("side", len(epochs) - 1, chosen, "boundary", v.NARROWEST, epochs)
    assert {t.type for t in _data(boundaries[0])} >= {"heatmap", "contour"}
    narrow = go.Figure(boundaries[0])  # made to fit a quarter of the page
    assert all(t.showscale is False for t in narrow.data if t.type == "heatmap")
    assert narrow.layout.title.font.size == 13 and narrow.layout.margin.r == 10
    assert narrow.layout.title.x == 0  # merged into the figure's own title, not replacing it
    reps = v.side_by_side("side", len(epochs) - 1, chosen, "representation", v.NARROWEST, epochs)
    assert "hidden_2" in _title(reps[0])  # the regions run's 2-unit bottleneck
    assert _data(reps[0]) and _data(reps[1])
    assert go.Figure(reps[0]).layout.showlegend is True
    assert go.Figure(boundaries[0]).layout.showlegend is False
    five = v.side_by_side(
        "side", 0, list(ids.values()) + [ids["a"] + 1000], "network", v.NARROWEST, epochs
    )
    assert "at most 4" in five[12] and all(s == {} for s in five[4:8])


def test_cka_of_a_run_with_itself_is_one_on_the_diagonal(web):
    from netlens.webapp.views import compare as v

    ids, epochs = web["ids"], _epochs(web)
    same = go.Figure(v.cka_view("cka", epochs.index(30), str(ids["a"]), str(ids["a"]), epochs))
    z = np.array(same.data[0].z, dtype=float)
    assert np.allclose(np.diag(z), 1.0)
    other = go.Figure(v.cka_view("cka", epochs.index(30), str(ids["a"]), str(ids["b"]), epochs))
    values = np.array(other.data[0].z, dtype=float)
    assert values.shape == (2, 2) and np.all((values >= 0) & (values <= 1))
    assert "shared probe inputs" in other.layout.title.text
    apart = go.Figure(v.cka_view("cka", 0, str(ids["a"]), str(ids["regions"]), epochs))
    assert not apart.data and "share 0 probe inputs" in apart.layout.annotations[0].text


def test_distance_from_initial_weights_and_weight_distributions(web):
    from netlens.webapp.views import compare as v

    ids, epochs = web["ids"], _epochs(web)
    run_ids = [ids["a"], ids["b"], ids["c"]]
    fig = go.Figure(v.distance_view("distance", len(epochs) - 1, "absolute", run_ids, epochs))
    assert [t.name for t in fig.data] == [f"#{i}" for i in run_ids]
    assert all(t.y[0] == 0 and t.y[-1] > 0 for t in fig.data)
    relative = go.Figure(v.distance_view("distance", 0, "relative", run_ids, epochs))
    assert relative.layout.yaxis.title.text == "‖θ − θ₀‖ / ‖θ₀‖"
    ratios = np.array(fig.data[0].y[1:]) / np.array(relative.data[0].y[1:])
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 0  # divided by one norm, ‖θ₀‖
    weights = go.Figure(v.weights_view("weights", 0, "hidden_1", "weights", run_ids, epochs))
    assert len(weights.data) == 3 and "(6 weights" in weights.data[0].name
    assert "(8 weights" in weights.data[2].name  # run c's layer has 4 units


def test_play_steps_the_shared_slider_in_about_fifty_frames(web):
    from netlens.webapp.views import compare as v

    assert v.toggle_play(1, True) == (False, "⏸ Pause")
    assert v.advance(1, 0, 100)[0] == 2
    value, stop, label = v.advance(1, 99, 100)
    assert (value, stop, label) == (100, True, "▶ Play")


def test_the_worker_records_each_epochs_wall_time(web):
    epochs, times = records.read_wall_times(web["db"], web["ids"]["a"])
    assert len(epochs) == 31 and np.isfinite(times).all()
    assert (np.diff(times) >= 0).all()  # in the order it trained them
    recorded, _ = records.read_metrics(web["db"], web["ids"]["a"])
    np.testing.assert_array_equal(epochs, recorded)


def test_the_curves_controls_redraw_and_crafted_values_change_nothing(web):
    """Smoothing (two traces per run: the faint raw one behind), log y, wall time and group
    by seed through the compare page's callback; a value no control sends changes nothing
    (smoothing above the slider's end is clamped)."""
    from dash.exceptions import PreventUpdate

    from netlens.webapp.views import compare as views
    from netlens.webapp.views import run as run_views

    ids = web["ids"]
    chosen = [ids["a"], ids["b"], ids["c"]]
    loss, acc = views.curves_view(0.6, True, "time", "none", chosen)
    traces = _data(loss)
    assert len(traces) == 2 * 3 and traces[0].showlegend is False
    assert go.Figure(loss).layout.yaxis.type == "log"
    assert "wall time" in go.Figure(loss).layout.xaxis.title.text
    clamped, _ = views.curves_view(5, False, "epoch", "none", chosen)  # past the end: 0.99
    raw, smooth = _data(clamped)[:2]
    assert raw.name == f"#{ids['a']} train (raw)"
    expected = curves.ema(decoded(raw.y), curves.SMOOTHING_MAX)
    np.testing.assert_allclose(decoded(smooth.y), expected, rtol=1e-5)
    for crafted in (
        ("abc", False, "epoch", "none"),
        (0.5, "yes", "epoch", "none"),
        (0.5, False, "minutes", "none"),
        (0.5, False, "epoch", "name"),  # not a field to group by
        (0.5, False, "epoch", ["training.seed"]),
    ):
        with pytest.raises(PreventUpdate):
            views.curves_view(*crafted, chosen)
    with pytest.raises(PreventUpdate):
        run_views.curve_views("curves", 3, 0, "abc", False, "epoch", ids["a"])
    loss, _ = views.curves_view(0.0, False, "epoch", "training.seed", chosen)
    grouped = _data(loss)
    means = [t for t in grouped if t.hovertemplate]
    assert len(means) == 2 and "(n=2)" in means[0].name and "(n=1)" in means[1].name
    assert [t.fill for t in grouped[:2]] == [None, "tonexty"]
    run_loss, _, _ = run_views.curve_views("curves", 3, 0, 0.9, True, "time", ids["a"])
    assert len(go.Figure(run_loss).data) == 2 and go.Figure(run_loss).layout.yaxis.type == "log"


def test_a_run_recorded_without_wall_times_disables_the_wall_time_axis(web):
    """A run recorded before the times were kept (or by a client that sends none): x by wall
    time is disabled with the reason, on its page and on a comparison with it; a link asking
    for it gets x by epoch."""
    from netlens.webapp.views import compare as views
    from netlens.webapp.views import run as run_views

    db, page = web["db"], web["page"]
    old = runs.create_run(db, _spec("old"))
    chunk = records.EpochChunk([0, 1, 2], [{"train_loss": v} for v in (0.9, 0.7, 0.6)], {}, {})
    records.write_epochs(db, old, chunk)
    data_info = runs.get_run(db, old)
    assert np.isnan(records.read_wall_times(db, old)[1]).all()
    assert "not recorded" in run_views.wall_time_note(data_info)
    assert run_views.wall_time_note(runs.get_run(db, web["ids"]["a"])) is None
    layout = page.layout(runs=f"{web['ids']['a']},{old}", x="time")
    radio = next(_find(layout, views.ids.X_AXIS))
    assert radio.value == "epoch" and radio.options[1] == {
        "label": "wall time",
        "value": "time",
        "disabled": True,
    }
    assert f"not recorded for #{old}" in str(layout)
    timed = page.layout(runs=f"{web['ids']['a']},{web['ids']['b']}", x="time")
    assert next(_find(timed, views.ids.X_AXIS)).value == "time"


def _reference_counts(acts: np.ndarray, activation: str) -> tuple[int, int | None]:
    """Dead and saturated units as the definition says them, unit by unit in plain numpy."""
    flat = acts.reshape(len(acts), -1)
    dead = saturated = 0
    for unit in flat.T:
        dead += all(abs(float(x)) <= 1e-7 for x in unit)
        if activation == "tanh":
            saturated += np.mean([x <= -0.99 or x >= 0.99 for x in unit]) >= 0.95
        if activation == "sigmoid":
            saturated += np.mean([x <= 0.01 or x >= 0.99 for x in unit]) >= 0.95
    return int(dead), (int(saturated) if activation in ("tanh", "sigmoid") else None)


def test_dead_and_saturated_counts_match_a_numpy_reference():
    from netlens.webapp.comparison import unit_counts

    rng = np.random.default_rng(7)
    relu = np.maximum(rng.normal(size=(40, 12)), 0).astype(np.float32)
    relu[:, [2, 5, 9]] = 0  # three dead units
    relu[:, 7] = 0
    relu[3, 7] = 0.5  # alive on one input only: not dead
    tanh = np.tanh(rng.normal(size=(40, 3, 4))).astype(np.float32)  # a conv-like (P, H, W)
    tanh[:, 0, 0] = 0.999  # saturated on every input
    tanh[:, 1, 2] = -0.995
    tanh[:39, 2, 3], tanh[39, 2, 3] = 0.995, 0.1  # 39 of 40 = 97.5 %: saturated
    tanh[:37, 2, 1], tanh[37:, 2, 1] = 0.995, 0.1  # 37 of 40 = 92.5 %: not
    tanh[:, 0, 1] = 0.0  # dead too
    sigmoid = (1 / (1 + np.exp(-rng.normal(size=(40, 6))))).astype(np.float32)
    sigmoid[:, 0], sigmoid[:, 1] = 0.001, 0.999
    sigmoid[:20, 2], sigmoid[20:, 2] = 0.001, 0.999  # both tails: saturated
    for acts, activation in ((relu, "relu"), (tanh, "tanh"), (sigmoid, "sigmoid")):
        assert unit_counts(acts, activation) == _reference_counts(acts, activation), activation
    assert _reference_counts(relu, "relu") == (3, None)
    assert _reference_counts(tanh, "tanh")[1] == 3 and _reference_counts(sigmoid, "sigmoid")[1] == 3
    assert unit_counts(np.zeros((0, 5), np.float32), "relu") == (0, None)


def test_counts_from_signatures_agree_with_what_the_worker_recorded(web):
    """The page counts from the stored signatures; the worker counted the same thresholds in
    JAX while training (act/<layer>/dead, saturated): the two agree at every sampled epoch."""
    from netlens.webapp import context
    from netlens.webapp.comparison import unit_counts_at

    db, data = web["db"], context.current().data
    for key in ("a", "regions"):
        info = runs.get_run(db, web["ids"][key])
        epochs, metrics = records.read_metrics(db, info.id)
        for epoch in (0, int(epochs[len(epochs) // 2]), int(epochs[-1])):
            counted = unit_counts_at(data, info, epoch)
            assert counted.epoch == epoch
            row = int(np.flatnonzero(epochs == epoch)[0])
            for layer, dead, saturated in zip(
                counted.layers, counted.dead, counted.saturated, strict=True
            ):
                assert dead == metrics[f"act/{layer}/dead"][row], (key, epoch, layer)
                assert (saturated or 0) == metrics[f"act/{layer}/saturated"][row]
    relu_run = unit_counts_at(data, runs.get_run(db, web["ids"]["regions"]), 0)
    assert relu_run.layers == ["hidden_1", "hidden_2"] and relu_run.units == [6, 2]
    assert relu_run.saturated == [None, None]  # ReLU has no flat tail to saturate in


def test_activation_distributions_units_and_layers_that_do_not_match(web):
    from netlens.webapp.views import compare as v

    ids, epochs = web["ids"], _epochs(web)
    last = len(epochs) - 1
    run_ids = [ids["a"], ids["c"], ids["regions"]]
    acts = go.Figure(v.weights_view("weights", last, "hidden_1", "activations", run_ids, epochs))
    assert len(acts.data) == 3 and acts.layout.xaxis.title.text == "activation"
    assert all(np.sum(t.y) > 0 for t in acts.data)
    assert "(12 activations" in acts.data[0].name  # run a: 4 probe inputs x 3 units
    assert "(epoch 20)" in acts.data[1].name  # run c stopped at 20: its last signatures
    assert "activations on the probe inputs at epoch 30" in acts.layout.title.text
    # hidden_2 exists in the regions run only: drawn for it, the others named as lacking it
    deeper = go.Figure(v.weights_view("weights", last, "hidden_2", "activations", run_ids, epochs))
    assert len(deeper.data) == 1 and deeper.data[0].name.startswith(f"#{ids['regions']}")
    assert deeper.data[0].line.color == go.Figure(acts).data[2].line.color  # its own colour
    note = deeper.layout.annotations[0].text
    assert f"#{ids['a']}" in note and f"#{ids['c']}" in note and "not drawn" in note
    infos = [runs.get_run(web["db"], i) for i in run_ids]
    text = v._layer_note(infos)
    assert f"hidden_2: not in #{ids['a']}, #{ids['c']}" in text
    assert "hidden_1: different units or activation" in text
    assert v._layer_note(infos[:1] * 2) == ""
    units = go.Figure(v.units_view("weights", last, "activations", run_ids, epochs))
    dead = [t for t in units.data if t.xaxis == "x"]
    assert [t.name for t in dead] == [f"#{i}" for i in run_ids]
    assert list(dead[2].x) == ["hidden_1", "hidden_2"]
    saturated = [t for t in units.data if t.xaxis == "x2"]
    assert [t.name for t in saturated] == [f"#{ids['a']}", f"#{ids['c']}"]  # tanh runs only
    assert v.units_shown("activations") == {} and v.units_shown("weights") == {"display": "none"}


@pytest.mark.parametrize(
    ("what", "layer", "chosen", "message"),
    [
        ("biases", "hidden_1", None, "distribution of: 'biases' is not one of"),
        ({"x": 1}, "hidden_1", None, "distribution of"),
        ("activations", "", None, "layer: a layer name of 1 to 200 characters"),
        ("activations", "x" * 201, None, "layer: a layer name of 1 to 200 characters"),
        ("activations", ["hidden_1"], None, "layer: a layer name"),
        ("activations", "no_such_layer", None, "layer: no run compared here has a layer"),
        ("weights", "hidden_1", list(range(1, 10)), "runs: 1 to 8 runs"),
    ],
)
def test_distribution_inputs_are_checked_on_the_server(web, what, layer, chosen, message):
    """A crafted body's values: refused with the field and its limit, never a server error."""
    from netlens.webapp.views import compare as v

    run_ids = chosen or [web["ids"]["a"], web["ids"]["b"]]
    fig = go.Figure(v.weights_view("weights", 0, layer, what, run_ids, _epochs(web)))
    assert not fig.data and message in fig.layout.annotations[0].text
    if chosen:
        units = go.Figure(v.units_view("weights", 0, "activations", run_ids, _epochs(web)))
        assert message in units.layout.annotations[0].text
