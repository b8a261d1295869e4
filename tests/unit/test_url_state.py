"""A page's state in its URL (webapp/url_state.py and the pages' *_url modules): every query
value is a claim, checked against what the page can show, with the default for anything else;
and what a page writes reads back as the same state."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from netlens.webapp import url_state as U
from netlens.webapp.figures.curves import SMOOTHING_MAX, CurveOptions
from netlens.webapp.views import compare_url, run_url, signatures_url
from netlens.webapp.views.run import ids

EPOCHS = np.array([0, 5, 10, 20, 40])
JUNK = ("", "x", "1.5", "1e3", "-", "٣", " ", "9" * 40, "[1]", "true")


def xor_run():
    """A 2-D run (dataset xor) with two hidden layers, the first the narrowest."""
    layers = [
        {"name": "dense", "units": 2, "kind": "dense"},
        {"name": "dense_1", "units": 4, "kind": "dense"},
        {"name": "output", "units": 2, "kind": "dense"},
    ]
    return SimpleNamespace(
        id=3, spec={"dataset": {"name": "xor"}, "model": {}}, data_info={}, layers=layers
    )


def test_whole_numbers_only_in_range():
    assert [U.whole_number(v) for v in ("0", "7", " 12 ", 3)] == [0, 7, 12, 3]
    assert all(U.whole_number(v) is None for v in (*JUNK, True, None, 1.0, {"a": 1}, "-1"))
    assert U.whole_number("5", 0, 4) is None and U.whole_number("-3", -5, 5) == -3


def test_an_epoch_number_maps_to_the_nearest_recorded_epoch():
    assert [U.nearest_index(EPOCHS, e) for e in ("0", "5", "14", "16", "15", "100", "-9")] == [
        0,
        1,
        2,  # 14: 4 from 10, 6 from 20
        3,
        2,  # a tie: the earlier epoch
        4,
        0,
    ]
    assert all(U.nearest_index(EPOCHS, v) is None for v in JUNK)
    assert U.nearest_index(np.array([], int), "3") is None


def test_the_slider_at_its_end_writes_no_epoch_and_reads_back_as_the_end():
    assert U.epoch_of(EPOCHS, 2, 4) == 10
    assert U.epoch_of(EPOCHS, 4, 4) is None and U.epoch_of(EPOCHS, 3, 3) is None
    assert all(U.epoch_of(EPOCHS, v, 4) is None for v in (None, "2", -1, 99, 1.5, True))
    for index in range(len(EPOCHS) - 1):
        assert U.nearest_index(EPOCHS, str(U.epoch_of(EPOCHS, index, 4))) == index


def test_query_of_takes_text_only_and_the_first_of_a_repeated_name():
    assert U.query_of("http://h:1/runs/3?tab=a&tab=b&epoch=4#x") == {"tab": "a", "epoch": "4"}
    assert U.query_of("/runs/3") == {} and U.query_of(None) == {} and U.query_of({"a": 1}) == {}
    assert U.query_of("/r?tab=" + "x" * 500) == {}  # no value that long is anything
    # but a page may take longer ones (the runs page's filter expression, up to 1,000)
    assert U.query_of("/runs?where=" + "x" * 500, 1000) == {"where": "x" * 500}
    assert U.query_of("/runs?where=" + "x" * 1001, 1000) == {}


def test_with_query_keeps_the_page_and_drops_defaults():
    href = "http://h:1/runs/3?tab=junk#frag"
    assert U.with_query(href, {"tab": "flow", "epoch": None}, "/x") == "http://h:1/runs/3?tab=flow"
    assert U.with_query(href, {"tab": None}, "/x") == "http://h:1/runs/3"
    assert U.with_query(None, {"layer": "a b&c"}, "/runs/3") == "/runs/3?layer=a+b%26c"


def test_the_run_page_reads_its_url():
    info = xor_run()
    view = run_url.parse(info, EPOCHS, {"tab": "params", "epoch": "9", "layer": "dense_1"})
    assert view.choices.tab == "params" and view.index == 2
    assert view.choices.layers[ids.LAYER] == "dense_1"
    view = run_url.parse(info, EPOCHS, {"tab": "network", "input": "7", "neuron": "3"})
    assert (view.choices.color_by, view.choices.input_index, view.choices.neuron) == (
        "activation",
        7,
        3,
    )
    assert view.index == len(EPOCHS) - 1  # no epoch: the latest


@pytest.mark.parametrize("junk", JUNK + ("bogus", "<script>", "neurons "))
def test_junk_in_the_run_url_gives_the_default_page(junk):
    info = xor_run()
    default = run_url.parse(info, EPOCHS, {})
    query = {k: junk for k in ("tab", "epoch", "layer", "neuron", "input")}
    assert run_url.parse(info, EPOCHS, query) == default
    assert default.choices.tab == "curves" and default.choices.color_by == "bias"
    # the defaults are the page's own: the output layer's weights, the narrowest hidden layer
    assert default.choices.layers[ids.LAYER] == "output"
    assert default.choices.layers[ids.REP_LAYER] == "dense"


def test_a_layer_only_counts_for_the_tab_that_has_a_layer_selector_and_the_2d_tabs_only_for_2d():
    info = xor_run()
    assert run_url.parse(info, EPOCHS, {"tab": "curves", "layer": "dense_1"}) == run_url.parse(
        info, EPOCHS, {}
    )
    assert (
        run_url.parse(info, EPOCHS, {"tab": "activations", "layer": "output"}).choices.layers[
            ids.ACT_LAYER
        ]
        == "dense"
    )  # the output layer is not a hidden one
    assert run_url.parse(info, EPOCHS, {"tab": "neurons"}).choices.tab == "neurons"
    flat = SimpleNamespace(**{**vars(info), "spec": {"dataset": {"name": "digits"}, "model": {}}})
    assert run_url.parse(flat, EPOCHS, {"tab": "neurons"}).choices.tab == "curves"


def test_what_the_run_page_writes_reads_back_as_the_same_view():
    info = xor_run()
    cases = [
        ("params", 1, {ids.LAYER: "dense_1"}, 2, "bias", 0),
        ("network", 0, {}, 0, "activation", 5),
        ("representation", 4, {ids.REP_LAYER: "dense_1"}, 0, "bias", 0),
        ("curves", 3, {}, 0, "bias", 0),
    ]
    for tab, index, layers, neuron, color_by, probe in cases:
        chosen = {k: v for k, (_, v) in run_url.layer_choices(info).items()} | layers
        pairs = run_url.query(EPOCHS, index, 4, tab, chosen, neuron, color_by, probe)
        href = U.with_query("http://h/runs/3", pairs, "/runs/3")
        view = run_url.parse(info, EPOCHS, U.query_of(href))
        assert (view.choices.tab, view.index) == (tab, index), href
        assert view.choices.layers == chosen, href
        assert (view.choices.neuron, view.choices.color_by) == (neuron, color_by), href
        assert view.choices.input_index == probe, href
    assert U.with_query(
        "http://h/runs/3", run_url.query(EPOCHS, 4, 4, "curves", {}, 0, "bias", 0), ""
    ) == ("http://h/runs/3")  # the default view: the bare URL


def test_the_signatures_and_compare_pages_read_their_urls():
    info = xor_run()
    view = signatures_url.parse(info, EPOCHS, {"tab": "flow", "epoch": "21", "layer": "dense"})
    assert view == signatures_url.SignaturesView("flow", 3, "dense")
    for junk in JUNK:
        query = {"tab": junk, "epoch": junk, "layer": junk}
        assert signatures_url.parse(info, EPOCHS, query) == signatures_url.SignaturesView(
            "separability", 4, "dense_1"
        )
    pairs = signatures_url.query(info, EPOCHS, 1, 4, "flow", "dense")
    assert signatures_url.parse(info, EPOCHS, pairs) == signatures_url.SignaturesView(
        "flow", 1, "dense"
    )
    assert compare_url.parse([0, 10, 20], {"tab": "cka", "epoch": "12"}) == (
        compare_url.CompareView("cka", 1)
    )
    assert compare_url.parse([0, 10, 20], {"tab": "x", "epoch": "x"}) == compare_url.CompareView(
        "side", 2
    )


def test_no_url_is_written_while_play_runs():
    """Play would push a history entry per frame: the URL waits for it to stop (the tick's
    `disabled` is an input, so the URL catches up then)."""
    from dash.exceptions import PreventUpdate

    args = ("params", 3, None, None, None, 0, "bias", 0, 0, False, "epoch")
    with pytest.raises(PreventUpdate):
        run_url.write_url(*args, False, 4, "http://h/runs/3", 3)
    curves = (0, False, "epoch", "none")
    href = "http://h/compare?runs=1,2"
    with pytest.raises(PreventUpdate):
        compare_url.write_url("cka", 1, *curves, False, 2, [0, 10, 20], href)
    assert compare_url.write_url("cka", 1, *curves, True, 2, [0, 10, 20], href) == (
        "http://h/compare?runs=1,2&tab=cka&epoch=10"
    )
    shown = (0.6, True, "time", "training.seed")
    assert compare_url.write_url("side", 2, *shown, True, 2, [0, 10, 20], href) == (
        "http://h/compare?runs=1,2&smooth=0.6&logy=1&x=time&group=training.seed"
    )


SMOOTH_JUNK = ("abc", "", "nan", "inf", "-", "0x1", "1e-1", "٠.٥", "0.5.5", "[0.5]", "true")


def test_the_curves_options_in_a_url_are_checked_and_clamped():
    """smooth: a plain decimal clamped to 0..0.99 (junk: 0, off); logy only "1"; x only
    "epoch" or "time", and "time" only for runs that recorded wall times."""
    assert U.curves_of({}) == CurveOptions()
    got = U.curves_of({"smooth": "0.6", "logy": "1", "x": "time"})
    assert got == CurveOptions(0.6, True, "time")
    assert U.curves_of({"smooth": "5"}).smoothing == SMOOTHING_MAX
    assert U.curves_of({"smooth": ".25"}).smoothing == 0.25
    for junk in SMOOTH_JUNK:
        assert U.curves_of({"smooth": junk}).smoothing == 0.0, junk
    for junk in ("true", "yes", "0", "", "11"):
        assert U.curves_of({"logy": junk}).log_y is False, junk
    for junk in ("wall", "TIME", "", "epochs"):
        assert U.curves_of({"x": junk}).x == "epoch", junk
    assert U.curves_of({"x": "time"}, timed=False).x == "epoch"
    # what the page writes reads back as the same options; defaults write nothing
    for options in (CurveOptions(0.37, True, "time"), CurveOptions(0.99, False, "epoch")):
        pairs = U.curves_query(options.smoothing, options.log_y, options.x)
        assert U.curves_of(U.query_of(U.with_query("http://h/x", pairs, ""))) == options
    assert U.curves_query(0, False, "epoch") == {"smooth": None, "logy": None, "x": None}
    assert U.curves_query("abc", "yes", "wall") == {"smooth": None, "logy": None, "x": None}


def test_the_run_and_compare_urls_carry_the_curves_options():
    info = xor_run()
    query = {"tab": "curves", "smooth": "0.8", "logy": "1", "x": "time"}
    assert run_url.parse(info, EPOCHS, query).choices.curves == CurveOptions(0.8, True, "time")
    assert run_url.parse(info, EPOCHS, query, timed=False).choices.curves.x == "epoch"
    pairs = run_url.query(EPOCHS, 4, 4, "curves", {}, 0, "bias", 0, 0.8, True, "time")
    assert run_url.parse(info, EPOCHS, pairs).choices.curves == CurveOptions(0.8, True, "time")
    fields = ["training.seed", "optimizer.learning_rate"]
    view = compare_url.parse([0, 10], {"group": "training.seed", "smooth": "0.5"}, True, fields)
    assert (view.group, view.curves.smoothing) == ("training.seed", 0.5)
    for junk in ("name", "seed", "", "none;drop", "training.seed "):
        assert compare_url.parse([0, 10], {"group": junk}, True, fields).group == "none", junk
