"""Animations over epochs: the --epochs range, the frames' epochs, and frames that hold still
(webapp/figures/animation.py, netlens/figure_animation.py); no database, no browser."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.figure_animation import MAX_FRAMES, frame_epochs, parse_epochs
from netlens.webapp.figures.animation import steady


def test_epoch_ranges_parse_and_name_the_option_and_limit():
    assert parse_epochs("0:200:5") == (0, 200, 5)
    assert parse_epochs(" 3 : 9 ") == (3, 9, 1)
    for text, says in (
        ("5:1", "the last epoch (1) is before the first (5)"),
        ("0:10:0", "the step must be 1 or more, got 0"),
        ("0:10:-2", "the step must be 1 or more"),
        ("-1:10", "the first epoch must be 0 or more"),
        ("x", "'x' is not A:B:STEP"),
        ("1.5:3", "is not A:B:STEP"),
        (f"0:{MAX_FRAMES}", f"asks for {MAX_FRAMES + 1} frames; the limit is {MAX_FRAMES}"),
    ):
        with pytest.raises(ValueError, match="^--epochs: ") as found:
            parse_epochs(text)
        assert says in str(found.value), (text, found.value)
    assert parse_epochs(f"0:{MAX_FRAMES - 1}")[1] == MAX_FRAMES - 1  # the limit itself is fine


def test_each_wanted_epoch_takes_the_nearest_drawable_one_once():
    # recorded every 10 epochs: 25 -> 20 (ties: the earlier), 75 -> 70
    assert frame_epochs(0, 100, 25, range(0, 101, 10)) == [0, 20, 50, 70, 100]
    assert frame_epochs(15, 35, 5, [0, 10, 20, 30, 40]) == [20, 30]  # only inside the range
    assert frame_epochs(0, 9, 1, [0, 4, 8]) == [0, 4, 8]  # each once
    with pytest.raises(ValueError, match=r"no analysed epoch in 1\.\.3 .*: 0 to 4\)"):
        frame_epochs(1, 3, 1, [0, 4], "analysed")


def test_frames_share_their_axes_and_carry_their_epoch():
    small = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"title": {"text": "Loss"}})
    large = go.Figure(go.Scatter(x=[0, 2], y=[0, 10]), layout={"title": {"text": "Loss"}})
    first, second = steady([small, large], [3, 4])
    assert first.layout.yaxis.range == second.layout.yaxis.range
    assert first.layout.xaxis.range == second.layout.xaxis.range
    low, high = first.layout.yaxis.range
    assert low < 0 < 10 < high
    assert (first.layout.title.text, second.layout.title.text) == (
        "Loss · epoch 3",
        "Loss · epoch 4",
    )
    assert small.layout.yaxis.range is None  # the figures given are not changed
    untitled = steady([go.Figure(go.Scatter(x=[1], y=[1]))], [7])[0]
    assert untitled.layout.title.text == "epoch 7"
    said = steady([go.Figure(layout={"title": {"text": "net at epoch 7"}})], [7])[0]
    assert said.layout.title.text == "net at epoch 7"  # not twice


def test_stacked_bars_get_the_tallest_stack_and_keep_zero():
    frames = [
        go.Figure([go.Bar(x=["a", "b"], y=[1, 2]), go.Bar(x=["a", "b"], y=[3, 1])]),
        go.Figure([go.Bar(x=["a", "b"], y=[1, 1]), go.Bar(x=["a", "b"], y=[1, 1])]),
    ]
    for f in frames:
        f.update_layout(barmode="stack")
    out = steady(frames, [0, 1])
    assert out[0].layout.yaxis.range == out[1].layout.yaxis.range
    low, high = out[0].layout.yaxis.range
    assert low == 0 and 4 < high < 4.5  # the stack a: 1 + 3
    assert out[0].layout.xaxis.range is None  # categories stay as drawn


def test_colour_ranges_cover_every_frame_and_stay_centred():
    heat = [go.Figure(go.Heatmap(z=np.full((2, 2), v), zmid=0)) for v in (-1.0, 3.0)]
    assert [(f.data[0].zmin, f.data[0].zmax) for f in steady(heat, [0, 1])] == [(-3, 3)] * 2
    plain = [go.Figure(go.Heatmap(z=np.full((2, 2), v))) for v in (1.0, 5.0)]
    assert {(f.data[0].zmin, f.data[0].zmax) for f in steady(plain, [0, 1])} == {(1, 5)}
    # markers coloured through a shared layout colour axis (the network view's nodes)
    nodes = [
        go.Figure(
            go.Scatter(x=[0, 1], y=[0, 1], marker={"color": c, "coloraxis": "coloraxis"}),
            layout={"coloraxis": {"cmid": 0}},
        )
        for c in ([-0.5, 0.5], [0.1, 2.0])
    ]
    assert {(f.layout.coloraxis.cmin, f.layout.coloraxis.cmax) for f in steady(nodes, [0, 1])} == {
        (-2, 2)
    }


def test_axes_a_builder_fixed_alike_in_every_frame_stay_as_they_are():
    frames = [
        go.Figure(go.Scatter(x=[0, v], y=[0, v]), layout={"xaxis": {"range": [-5, 5]}})
        for v in (1, 2)
    ]
    out = steady(frames, [0, 1])
    assert [tuple(f.layout.xaxis.range) for f in out] == [(-5, 5)] * 2
    assert out[0].layout.yaxis.range == out[1].layout.yaxis.range
