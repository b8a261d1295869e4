"""The signatures page's state in its URL: `/runs/3/signatures?tab=flow&epoch=40&layer=dense`.

tab, epoch (a NUMBER: the nearest recorded epoch; none means the latest) and layer; invalid
values fall back to the defaults (webapp/url_state.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dash import Input, Output, State, callback
from dash.exceptions import PreventUpdate

from netlens.storage.runs import RunInfo, RunNotFound
from netlens.webapp import context, url_state
from netlens.webapp.authz import rule

TABS = ("separability", "clusters", "flow", "projections", "classes", "ood", "compare")


@dataclass(frozen=True)
class SignaturesView:
    tab: str
    index: int  # the slider's position
    layer: str | None


def hidden_layers(info: RunInfo) -> list[str]:
    return [layer["name"] for layer in info.layers[:-1]]


def parse(info: RunInfo, epochs: Sequence[int], query: Mapping[str, object]) -> SignaturesView:
    hidden = hidden_layers(info)
    index = url_state.nearest_index(epochs, query.get("epoch"))
    return SignaturesView(
        url_state.choice(query.get("tab"), TABS, TABS[0]) or TABS[0],
        max(0, len(epochs) - 1) if index is None else index,
        url_state.choice(query.get("layer"), hidden, hidden[-1] if hidden else None),
    )


def query(info: RunInfo, epochs: Sequence[int], index, last, tab, layer) -> dict[str, object]:
    """Defaults left out: the first tab, the latest epoch, the last hidden layer."""
    hidden = hidden_layers(info)
    return {
        "tab": tab if tab in TABS and tab != TABS[0] else None,
        "epoch": url_state.epoch_of(epochs, index, last),
        "layer": layer if layer in hidden and layer != hidden[-1] else None,
    }


def _run(run_id) -> tuple[RunInfo, Sequence[int]]:
    data = context.current().data
    try:
        info = data.info(run_id)
    except RunNotFound:
        raise PreventUpdate from None
    return info, data.epochs(info)


def register(ids) -> tuple:
    """The callbacks keeping the URL and the page in step (`ids`: the page's id namespace)."""

    @callback(
        Output(ids.URL, "href"),
        Input(ids.TABS, "active_tab"),
        Input(ids.SLIDER, "value"),
        Input(ids.LAYER, "value"),
        Input(ids.PLAY_TICK, "disabled"),
        State(ids.SLIDER, "max"),
        State(ids.URL, "href"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    @rule("member")
    def write_url(tab, index, layer, is_stopped, last, href, run_id):
        """A history entry per change; none while Play runs (the URL catches up at its end)."""
        if is_stopped is False:
            raise PreventUpdate
        info, epochs = _run(run_id)
        pairs = query(info, epochs, index, last, tab, layer)
        new = url_state.with_query(href, pairs, f"/runs/{run_id}/signatures")
        if new == href:
            raise PreventUpdate
        return new

    @callback(
        Output(ids.TABS, "active_tab", allow_duplicate=True),
        Output(ids.SLIDER, "value", allow_duplicate=True),
        Output(ids.LAYER, "value", allow_duplicate=True),
        Input(ids.URL, "href"),
        State(ids.TABS, "active_tab"),
        State(ids.SLIDER, "value"),
        State(ids.LAYER, "value"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    @rule("member")
    def restore(href, tab, index, layer, run_id):
        """Back and forward set the page from its URL (what it shows already: no update)."""
        info, epochs = _run(run_id)
        view = parse(info, epochs, url_state.query_of(href))
        return (
            url_state.changed(tab, view.tab),
            url_state.changed(index, view.index),
            url_state.changed(layer, view.layer),
        )

    return write_url, restore
