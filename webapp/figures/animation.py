"""Frames of an animation over epochs (`netlens figure RUN VIEW --epochs A:B:STEP -o out.gif`):
one view drawn at several epochs, made to hold still. Every frame gets the axis ranges that
cover all the frames' data (so the axes never rescale between frames), one colour range per
trace for heatmaps and colour-mapped markers, and its epoch in the title.

Pure: plotly figures in, plotly figures out (no browser; tests/unit/test_figure_animation.py).
Axes that are categories, dates, logarithmic or reversed keep what their builder set, as do
axes whose range the builder fixed the same way in every frame (the projections do).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

PAD = 0.05  # of the span, each side of a data range
_STACKED = ("stack", "relative")


def _numbers(values) -> np.ndarray | None:
    """`values` as finite floats, or None when they are not numbers (categories)."""
    if values is None:
        return None
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        try:
            array = array.astype(float)
        except (TypeError, ValueError):
            return None
    array = np.asarray(array, float).ravel()
    return array[np.isfinite(array)]


def _axis_key(ref: str | None, letter: str) -> str:
    """'x2' -> 'xaxis2'; None or 'x' -> 'xaxis'."""
    ref = ref or letter
    return f"{letter}axis{ref[1:]}"


class _Span:
    def __init__(self):
        self.lo, self.hi, self.category, self.fixed, self.bars = np.inf, -np.inf, False, [], False

    def add(self, values: np.ndarray | None) -> None:
        if values is None:
            self.category = True
        elif len(values):
            self.lo, self.hi = min(self.lo, float(values.min())), max(self.hi, float(values.max()))

    def range(self) -> list[float] | None:
        if self.category or not np.isfinite(self.lo):
            return None
        lo, hi = self.lo, self.hi
        if self.bars:  # bars grow from zero: keep zero on the axis, pad only the far end
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            span = (hi - lo) or 1.0
            return [lo - (PAD * span if lo < 0 else 0.0), hi + (PAD * span if hi > 0 else 0.0)]
        span = hi - lo
        pad = PAD * span if span > 0 else max(abs(lo) * PAD, 0.5)
        return [lo - pad, hi + pad]


def _bar_totals(traces: list) -> dict[str, np.ndarray]:
    """Stacked bars: the positive and the negative total at each position, per value axis."""
    sums: dict[tuple[str, object], list[float]] = {}
    for trace in traces:
        horizontal = trace.orientation == "h"
        positions = trace.y if horizontal else trace.x
        values = _numbers(trace.x if horizontal else trace.y)
        if values is None or positions is None or len(values) != len(positions):
            continue
        axis = _axis_key(trace.xaxis if horizontal else trace.yaxis, "x" if horizontal else "y")
        for where, value in zip(positions, values, strict=True):
            entry = sums.setdefault((axis, where), [0.0, 0.0])
            entry[int(value < 0)] += float(value)
    out: dict[str, list[float]] = {}
    for (axis, _), totals in sums.items():
        out.setdefault(axis, []).extend(totals)
    return {axis: np.asarray(values, float) for axis, values in out.items()}


def _layout_axis(fig: go.Figure, axis: str):
    try:
        return fig.layout[axis]
    except (KeyError, ValueError):
        return None


def _trace_key(index: int, trace) -> tuple:
    return (index, trace.type, getattr(trace, "name", None))


def steady(figures: Sequence[go.Figure], epochs: Sequence[int]) -> list[go.Figure]:
    """The frames, each drawn at its epoch (`epochs[i]` for `figures[i]`), with shared axis
    and colour ranges and the epoch in the title. The figures are copied, not changed."""
    frames = [go.Figure(f) for f in figures]
    spans: dict[str, _Span] = {}
    colours: dict[tuple, list[float]] = {}
    for fig in frames:
        stacked = fig.layout.barmode in _STACKED
        here: set[str] = set()
        for index, trace in enumerate(fig.data):
            if not hasattr(trace, "xaxis"):  # sankey, parcoords, 3-D scenes: no cartesian axes
                continue
            if trace.type in ("heatmap", "contour", "histogram2d"):
                z = _numbers(trace.z)
                if trace.zmin is None and trace.zmax is None and z is not None and len(z):
                    bounds = colours.setdefault(_trace_key(index, trace), [np.inf, -np.inf])
                    bounds[:] = [min(bounds[0], z.min()), max(bounds[1], z.max())]
                for axis in (_axis_key(trace.xaxis, "x"), _axis_key(trace.yaxis, "y")):
                    spans.setdefault(axis, _Span()).category = True  # its grid: left as drawn
                continue
            marker = getattr(trace, "marker", None)
            colour = _numbers(getattr(marker, "color", None)) if marker is not None else None
            if colour is not None and len(colour) > 1 and marker.cmin is None:
                shared = getattr(marker, "coloraxis", None)  # a layout colour axis, by name
                key = ("coloraxis", shared) if shared else _trace_key(index, trace)
                bounds = colours.setdefault(key, [np.inf, -np.inf])
                bounds[:] = [min(bounds[0], colour.min()), max(bounds[1], colour.max())]
            horizontal = trace.type == "bar" and trace.orientation == "h"
            for axis, values, is_value in (
                (_axis_key(trace.xaxis, "x"), trace.x, horizontal),
                (_axis_key(trace.yaxis, "y"), trace.y, trace.type == "bar" and not horizontal),
            ):
                here.add(axis)
                span = spans.setdefault(axis, _Span())
                span.bars |= is_value
                if is_value and stacked:
                    continue  # from the totals below
                span.add(_numbers(values) if values is not None else np.zeros(0))
        if stacked:
            for axis, totals in _bar_totals([t for t in fig.data if t.type == "bar"]).items():
                spans[axis].add(totals)
        for axis in here:
            layout_axis = _layout_axis(fig, axis)
            if layout_axis is None:
                continue
            if layout_axis.type in ("category", "multicategory", "date", "log") or (
                layout_axis.autorange == "reversed"
            ):
                spans[axis].category = True
            elif layout_axis.range is not None:
                spans[axis].fixed.append(tuple(layout_axis.range))
    for axis, span in spans.items():
        wanted = span.range()
        if span.fixed and len(span.fixed) == len(frames) and len(set(span.fixed)) == 1:
            continue  # the builder fixed this axis the same way in every frame
        if span.fixed and wanted is not None:
            lows, highs = zip(*span.fixed, strict=True)
            wanted = [min(wanted[0], *lows), max(wanted[1], *highs)]
        if wanted is None:
            continue
        for fig in frames:
            layout_axis = _layout_axis(fig, axis)
            if layout_axis is not None:
                layout_axis.update(range=wanted, autorange=False)
    for fig, epoch in zip(frames, epochs, strict=True):
        for index, trace in enumerate(fig.data):
            bounds = colours.get(_trace_key(index, trace)) if hasattr(trace, "xaxis") else None
            if bounds is None:
                continue
            if trace.type in ("heatmap", "contour", "histogram2d"):
                lo, hi = _colour_range(bounds, trace.zmid)
                trace.update(zmin=lo, zmax=hi)
            else:
                lo, hi = _colour_range(bounds, trace.marker.cmid)
                trace.marker.update(cmin=lo, cmax=hi)
        for key, bounds in colours.items():
            axis = _layout_axis(fig, key[1]) if key[0] == "coloraxis" else None
            if axis is not None and axis.cmin is None and axis.cmax is None:
                lo, hi = _colour_range(bounds, axis.cmid)
                axis.update(cmin=lo, cmax=hi)
        _title_with_epoch(fig, int(epoch))
    return frames


def _colour_range(bounds, middle) -> tuple[float, float]:
    """[lo, hi] of every frame's colours; around `middle` when the builder centred the scale
    there (a diverging scale: zero stays white)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if middle is not None:
        half = max(abs(lo - middle), abs(hi - middle)) or 1.0
        return float(middle) - half, float(middle) + half
    return lo, hi if hi > lo else lo + 1.0


def _title_with_epoch(fig: go.Figure, epoch: int) -> None:
    text = fig.layout.title.text or ""
    if f"epoch {epoch}" not in text:
        text = f"{text} · epoch {epoch}" if text else f"epoch {epoch}"
    fig.update_layout(title_text=text)
