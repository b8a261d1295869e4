"""The compare page's state in its URL: `/compare?runs=3,5&tab=cka&epoch=20` (also a sweep
group's page, whose comparison is the same components).

tab and epoch (a NUMBER: the nearest epoch of the runs' union; none means the latest); the
query's other names (runs) are the page's identity and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dash import Input, Output, State, callback
from dash.exceptions import PreventUpdate

from netlens.webapp import url_state
from netlens.webapp.authz import rule
from netlens.webapp.views.compare import TAB_IDS, ids

OWN = ("tab", "epoch")  # the names this page writes; any other (runs) it keeps


@dataclass(frozen=True)
class CompareView:
    tab: str
    index: int  # the slider's position


def parse(epochs: Sequence[int], query: Mapping[str, object]) -> CompareView:
    index = url_state.nearest_index(epochs, query.get("epoch"))
    return CompareView(
        url_state.choice(query.get("tab"), TAB_IDS, TAB_IDS[0]) or TAB_IDS[0],
        max(0, len(epochs) - 1) if index is None else index,
    )


def _epochs(value) -> list[int]:
    """The page's epochs (its store; the guard checked them as integers)."""
    return value if isinstance(value, list) else []


@callback(
    Output(ids.URL, "href"),
    Input(ids.TABS, "active_tab"),
    Input(ids.SLIDER, "value"),
    Input(ids.PLAY_TICK, "disabled"),
    State(ids.SLIDER, "max"),
    State(ids.EPOCHS, "data"),
    State(ids.URL, "href"),
    prevent_initial_call=True,
)
@rule("member")
def write_url(tab, index, is_stopped, last, epochs, href):
    """A history entry per change; none while Play runs (the URL catches up at its end)."""
    if is_stopped is False or not isinstance(href, str):
        raise PreventUpdate
    kept = {k: v for k, v in url_state.query_of(href).items() if k not in OWN}
    pairs = kept | {
        "tab": tab if tab in TAB_IDS and tab != TAB_IDS[0] else None,
        "epoch": url_state.epoch_of(_epochs(epochs), index, last),
    }
    new = url_state.with_query(href, pairs, "/compare")
    if new == href:
        raise PreventUpdate
    return new


@callback(
    Output(ids.TABS, "active_tab", allow_duplicate=True),
    Output(ids.SLIDER, "value", allow_duplicate=True),
    Input(ids.URL, "href"),
    State(ids.TABS, "active_tab"),
    State(ids.SLIDER, "value"),
    State(ids.EPOCHS, "data"),
    prevent_initial_call=True,
)
@rule("member")
def restore(href, tab, index, epochs):
    """Back and forward set the page from its URL (what it shows already: no update). A URL
    naming other runs is another page: Dash's router renders it."""
    view = parse(_epochs(epochs), url_state.query_of(href))
    return url_state.changed(tab, view.tab), url_state.changed(index, view.index)
