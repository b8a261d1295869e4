"""The curves' controls (issue 17 part 3): TensorBoard's debiased EMA smoothing, wall time
since the run started, runs grouped by a spec field and their curves' mean ± std, and the
figures that draw them (run and compare pages). Pure functions, numpy references."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.storage.records import EpochChunk
from netlens.storage.wire import WireError, pack_chunk, unpack_chunk
from netlens.webapp.comparison import aggregate, group_fields, group_runs
from netlens.webapp.figures import compare as figs
from netlens.webapp.figures import curves
from netlens.webapp.figures.curves import CurveOptions
from netlens.worker.train import epoch_times
from tests.unit.test_figures import decoded

RNG = np.random.default_rng(7)


def ema_reference(values: np.ndarray, w: float) -> np.ndarray:
    """The closed form: s_k = (1 - w) sum_j w^(k - j) v_j / (1 - w^(k + 1)), j = 0..k."""
    k = np.arange(len(values))
    powers = np.where(k[:, None] >= k[None, :], w ** (k[:, None] - k[None, :]), 0.0)
    return (1 - w) * (powers @ values) / (1 - w ** (k + 1))


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99])
def test_ema_is_tensorboards_debiased_moving_average(w):
    values = RNG.normal(size=50).cumsum()
    got = curves.ema(values, w)
    np.testing.assert_allclose(got, values if w == 0 else ema_reference(values, w), rtol=1e-10)
    assert got[0] == pytest.approx(values[0])  # debiased: the first point is not pulled to 0
    if w:
        undebiased = (1 - w) * values[0]
        assert abs(got[0] - undebiased) > 0 and np.std(np.diff(got)) < np.std(np.diff(values))


def test_ema_skips_non_finite_values_and_keeps_them():
    values = np.array([1.0, np.nan, 3.0, np.inf, 2.0])
    got = curves.ema(values, 0.5)
    finite = np.isfinite(values)
    np.testing.assert_allclose(got[finite], ema_reference(values[finite], 0.5))
    assert np.isnan(got[1]) and got[3] == np.inf


def test_smoothing_values_are_clamped_or_refused():
    assert [curves.smoothing_of(v) for v in (0, 0.5, "0.25", 5, -1, "5")] == [
        0.0,
        0.5,
        0.25,
        curves.SMOOTHING_MAX,
        0.0,
        curves.SMOOTHING_MAX,
    ]
    for junk in ("abc", None, True, float("nan"), float("inf"), [0.5], {"a": 1}, "1e-1"):
        assert curves.smoothing_of(junk) is None, junk
    assert curves.checked_options(0.5, True, "time") == CurveOptions(0.5, True, "time")
    for bad in (("abc", False, "epoch"), (0.5, "yes", "epoch"), (0.5, False, "wall")):
        assert curves.checked_options(*bad) is None, bad
    assert curves.checked_options(5, False, "epoch").smoothing == curves.SMOOTHING_MAX


def test_elapsed_seconds_since_the_first_timed_epoch():
    epochs = np.array([0, 5, 10, 15])
    times = 1.7e9 + np.array([0.0, 2.0, 4.5, np.nan])
    got = curves.elapsed_seconds(epochs, epochs, times)
    np.testing.assert_allclose(got[:3], [0.0, 2.0, 4.5])
    assert np.isnan(got[3])
    untimed = curves.elapsed_seconds(epochs, epochs, np.full(4, np.nan))
    assert np.isnan(untimed).all() and not curves.has_wall_times(epochs, untimed)
    assert curves.has_wall_times(np.zeros(0), np.zeros(0))  # nothing yet: it will have times
    assert [curves.time_scale(s).unit for s in (10, 299, 301, 3 * 3600, 6 * 3600)] == [
        "s",
        "s",
        "min",
        "min",
        "h",
    ]


def test_a_chunks_epochs_share_its_time_by_the_epochs_trained():
    got = epoch_times(100.0, 110.0, [2, 2, 1])
    np.testing.assert_allclose(got, [104.0, 108.0, 110.0])


def test_times_travel_on_the_wire_and_junk_times_are_refused():
    chunk = EpochChunk([1, 2], [{"loss": 1.0}, {"loss": 0.5}], {}, {}, [1.7e9, 1.7e9 + 1])
    back, _ = unpack_chunk(pack_chunk(chunk), 10**6)
    assert back.times == chunk.times
    assert (
        unpack_chunk(pack_chunk(EpochChunk([1], [{"loss": 1.0}], {}, {})), 10**6)[0].times is None
    )
    for bad in ([np.nan, 1.0], [-1.0, 1.0], [1e12, 1.0]):
        with pytest.raises(WireError, match="times"):
            unpack_chunk(pack_chunk(EpochChunk([1, 2], [{}, {}], {}, {}, bad)), 10**6)


def _spec(seed: int, lr: float, name: str = "") -> dict:
    return {
        "name": name,
        "training": {"seed": seed, "epochs": 10},
        "optimizer": {"learning_rate": lr},
    }


def test_runs_that_differ_only_in_the_field_are_pooled():
    specs = [_spec(0, 0.1, "a"), _spec(1, 0.1, "b"), _spec(0, 0.01, "c"), _spec(2, 0.1, "d")]
    assert group_fields(specs) == ["training.seed", "optimizer.learning_rate"]  # not the name
    groups = group_runs(specs, "training.seed")
    assert [g.members for g in groups] == [[0, 1, 3], [2]]
    assert [g.label for g in groups] == ["learning_rate=0.1", "learning_rate=0.01"]
    by_lr = group_runs(specs, "optimizer.learning_rate")
    assert [g.members for g in by_lr] == [[0, 2], [1], [3]]
    assert group_runs(specs[:2], "training.seed")[0].label == "all runs"


def test_aggregate_is_the_mean_and_std_over_the_epochs_every_member_has():
    a = (np.arange(0, 11), RNG.normal(size=11))
    b = (np.arange(0, 11), RNG.normal(size=11))
    c = (np.arange(0, 7), RNG.normal(size=7))  # a shorter run
    epochs, mean, std, n = aggregate([a, b, c])
    np.testing.assert_array_equal(epochs, np.arange(0, 7))
    stacked = np.vstack([a[1][:7], b[1][:7], c[1]])
    np.testing.assert_allclose(mean, stacked.mean(axis=0))
    np.testing.assert_allclose(std, stacked.std(axis=0, ddof=1))
    assert (n == 3).all()
    # sparse epochs: only the shared ones; a NaN leaves that member out at that epoch
    d = (np.array([0, 2, 4, 6]), np.array([1.0, np.nan, 3.0, 5.0]))
    e = (np.array([0, 1, 2, 4, 6]), np.array([3.0, 9.0, 2.0, 5.0, 7.0]))
    epochs, mean, std, n = aggregate([d, e])
    np.testing.assert_array_equal(epochs, [0, 2, 4, 6])
    np.testing.assert_allclose(mean, [2.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(
        std, [np.std([1, 3], ddof=1), 0.0, np.std([3, 5], ddof=1), np.std([5, 7], ddof=1)]
    )
    np.testing.assert_array_equal(n, [2, 1, 2, 2])


def _curves(fig) -> list:
    """The traces of a plain figure, typed arrays decoded."""
    out = []
    for trace in go.Figure(fig).data:
        for key in ("x", "y"):
            value = getattr(trace, key)
            if isinstance(value, dict):
                trace[key] = decoded(value)
        out.append(trace)
    return out


def test_the_run_figure_draws_the_raw_line_faint_behind_the_smoothed_one():
    epochs = np.arange(40)
    series = {"train_loss": np.exp(-epochs / 10) + RNG.uniform(0, 0.1, 40)}
    plain = curves.build_metric_curves(epochs, series, title="Loss", y_title="y")
    assert len(plain.data) == 1 and plain.layout.yaxis.type == "linear"
    options = CurveOptions(0.8, True, "epoch")
    fig = curves.build_metric_curves(epochs, series, title="Loss", y_title="y", options=options)
    raw, smooth = fig.data
    assert raw.showlegend is False and "0.25" in raw.line.color and raw.line.width == 1
    np.testing.assert_allclose(raw.y, series["train_loss"])
    np.testing.assert_allclose(smooth.y, ema_reference(series["train_loss"], 0.8))
    assert fig.layout.yaxis.type == "log"


def test_the_run_figure_by_wall_time_and_its_fallback():
    epochs = np.arange(5)
    seconds = np.array([0.0, 30.0, 60.0, 400.0, 600.0])
    series = {"train_loss": np.linspace(1, 0.1, 5)}
    timed = CurveOptions(0.0, False, "time")
    fig = curves.build_metric_curves(
        epochs, series, title="Loss", y_title="y", options=timed, seconds=seconds, current_epoch=3
    )
    np.testing.assert_allclose(fig.data[0].x, seconds / 60)
    assert fig.layout.xaxis.title.text == "wall time (min since the run started)"
    assert fig.layout.shapes[0].x0 == pytest.approx(400 / 60)  # the epoch line moves too
    untimed = curves.build_metric_curves(
        epochs, series, title="Loss", y_title="y", options=timed, seconds=np.full(5, np.nan)
    )
    assert "no wall times recorded" in untimed.layout.title.text
    np.testing.assert_allclose(untimed.data[0].x, epochs)


def test_the_compare_figure_smooths_each_run_and_groups_with_bands():
    epochs = np.arange(20)
    runs = [
        (f"#{k}", epochs, {"train_loss": 1 / (epochs + 1) + RNG.uniform(0, 0.05, 20)})
        for k in range(3)
    ]
    names = ("train_loss", "val_loss")
    fig = figs.overlaid_curves(runs, names, title="L", y_title="y", options=CurveOptions(0.6, True))
    data = _curves(fig)
    assert [t.name for t in data] == [
        n for k in range(3) for n in (f"#{k} train (raw)", f"#{k} train")
    ]
    assert go.Figure(fig).layout.yaxis.type == "log"
    groups = [
        ("lr=0.1", [(e, m, None) for _, e, m in runs[:2]]),
        (
            "lr=0.01",
            [(epochs[:12], runs[2][2] | {"train_loss": runs[2][2]["train_loss"][:12]}, None)],
        ),
    ]
    grouped = _curves(figs.grouped_curves(groups, names, title="L", y_title="y"))
    assert len(grouped) == 6  # upper edge, lower edge (filled), mean: per group
    upper, lower, mean = grouped[:3]
    assert lower.fill == "tonexty" and "lr=0.1 (n=2)" in mean.name
    stacked = np.vstack([runs[0][2]["train_loss"], runs[1][2]["train_loss"]])
    np.testing.assert_allclose(mean.y, stacked.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(upper.y - mean.y, stacked.std(axis=0, ddof=1), rtol=1e-5)
    assert len(grouped[5].x) == 12  # the one-run group has the epochs it recorded
    smoothed = _curves(
        figs.grouped_curves(groups[:1], names, title="L", y_title="y", options=CurveOptions(0.7))
    )
    reference = np.vstack([ema_reference(r, 0.7) for r in stacked]).mean(axis=0)
    np.testing.assert_allclose(smoothed[2].y, reference, rtol=1e-5)  # smoothed, then averaged


def test_merged_chunks_keep_their_times_only_when_every_chunk_has_them():
    from netlens.worker.recorder import merge_chunks
    from netlens.worker.train import Chunk

    timed = [Chunk([1], [{}], {}, times=[10.0]), Chunk([2], [{}], {}, times=[11.0])]
    assert merge_chunks(timed).times == [10.0, 11.0]
    assert merge_chunks(timed[:1]).times == [10.0]
    assert merge_chunks([*timed, Chunk([3], [{}], {})]).times is None


def test_on_a_log_axis_a_band_that_reaches_zero_stops_a_decade_below_the_mean():
    from netlens.webapp.figures.compare import band_lower

    mean, std = np.array([1.0, 0.5, 0.02]), np.array([0.5, 0.6, 0.05])
    np.testing.assert_allclose(band_lower(mean, std, log_y=False), mean - std)
    np.testing.assert_allclose(band_lower(mean, std, log_y=True), [0.5, 0.05, 0.002])
    epochs = np.arange(6)
    wide = [
        (epochs, {"train_loss": np.full(6, v)}, None) for v in (0.01, 1.0)
    ]  # std > mean everywhere
    fig = figs.grouped_curves(
        [("g", wide)],
        ("train_loss", "val_loss"),
        title="L",
        y_title="y",
        options=CurveOptions(0.0, True),
    )
    lower = _curves(fig)[1]
    assert np.all(np.asarray(lower.y) > 0)
