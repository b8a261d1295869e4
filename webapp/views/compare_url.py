"""The compare page's state in its URL: `/compare?runs=3,5&tab=cka&epoch=20` (also a sweep
group's page, whose comparison is the same components).

tab and epoch (a NUMBER: the nearest epoch of the runs' union; none means the latest); the
curves' smooth (0..0.99), logy=1, x=time and group (a spec field the runs differ in); the
query's other names (runs) are the page's identity and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dash import Input, Output, State, callback
from dash.exceptions import PreventUpdate

from netlens.webapp import url_state
from netlens.webapp.authz import rule
from netlens.webapp.comparison import group_fields
from netlens.webapp.figures.curves import CurveOptions
from netlens.webapp.views.compare import NO_GROUP, TAB_IDS, ids, page_infos, wall_time_note

# the names this page writes; any other (runs) it keeps
OWN = ("tab", "epoch", "smooth", "logy", "x", "group")


@dataclass(frozen=True)
class CompareView:
    tab: str
    index: int  # the slider's position
    curves: CurveOptions = field(default_factory=CurveOptions)
    group: str = NO_GROUP


def parse(
    epochs: Sequence[int],
    query: Mapping[str, object],
    timed: bool = True,
    fields: Sequence[str] = (),
) -> CompareView:
    """The view a query asks for; `timed`: whether every run recorded wall times, `fields`:
    the spec fields the runs can be grouped by."""
    index = url_state.nearest_index(epochs, query.get("epoch"))
    return CompareView(
        url_state.choice(query.get("tab"), TAB_IDS, TAB_IDS[0]) or TAB_IDS[0],
        max(0, len(epochs) - 1) if index is None else index,
        url_state.curves_of(query, timed),
        url_state.choice(query.get("group"), fields, NO_GROUP) or NO_GROUP,
    )


CURVES = (ids.SMOOTH, ids.LOGY, ids.X_AXIS, ids.GROUP)


def _epochs(value) -> list[int]:
    """The page's epochs (its store; the guard checked them as integers)."""
    return value if isinstance(value, list) else []


@callback(
    Output(ids.URL, "href"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    *[Input(c, "value") for c in CURVES],
    Input(ids.PLAY_TICK, "disabled"),
    State(ids.SLIDER, "max"),
    State(ids.EPOCHS, "data"),
    State(ids.URL, "href"),
    prevent_initial_call=True,
)
@rule("member")
def write_url(tab, index, smoothing, log_y, x, group, is_stopped, last, epochs, href):
    """A history entry per change; none while Play runs (the URL catches up at its end)."""
    if is_stopped is False or not isinstance(href, str):
        raise PreventUpdate
    kept = {k: v for k, v in url_state.query_of(href).items() if k not in OWN}
    pairs = kept | {
        "tab": tab if tab in TAB_IDS and tab != TAB_IDS[0] else None,
        "epoch": url_state.epoch_of(_epochs(epochs), index, last),
        **url_state.curves_query(smoothing, log_y, x),
        # a field name, checked when read back (parse: one the runs differ in)
        "group": group if isinstance(group, str) and group != NO_GROUP else None,
    }
    new = url_state.with_query(href, pairs, "/compare")
    if new == href:
        raise PreventUpdate
    return new


@callback(
    Output(ids.TABS, "active_tab", allow_duplicate=True),
    Output(ids.SLIDER, "value", allow_duplicate=True),
    *[Output(c, "value", allow_duplicate=True) for c in CURVES],
    Input(ids.URL, "href"),
    State(ids.TABS, "active_tab"),
    State(ids.SLIDER, "value"),
    *[State(c, "value") for c in CURVES],
    State(ids.EPOCHS, "data"),
    State(ids.RUNS, "data"),
    prevent_initial_call=True,
)
@rule("member")
def restore(href, tab, index, smoothing, log_y, x, group, epochs, run_ids):
    """Back and forward set the page from its URL (what it shows already: no update). A URL
    naming other runs is another page: Dash's router renders it."""
    infos = page_infos(run_ids)
    view = parse(
        _epochs(epochs),
        url_state.query_of(href),
        wall_time_note(infos) is None,
        group_fields([i.spec for i in infos]),
    )
    c = view.curves
    return tuple(
        url_state.changed(now, want)
        for now, want in zip(
            (tab, index, smoothing, log_y, x, group),
            (view.tab, view.index, c.smoothing, c.log_y, c.x, view.group),
            strict=True,
        )
    )
