"""The play button of an epoch slider: a dcc.Interval that steps the slider to its end."""

from __future__ import annotations

from dash import Input, Output, State, callback, no_update
from netlens.webapp.authz import rule


def add_player(play_id: str, tick_id: str, slider_id: str, frames: int):
    """Register the two callbacks of a play button (`play_id`) that toggles an interval
    (`tick_id`) stepping `slider_id` from its position to its end in about `frames` steps.
    Returns them (toggle, advance) so tests can call them."""

    @callback(Output(tick_id, "disabled"), Output(play_id, "children"),
              Input(play_id, "n_clicks"), State(tick_id, "disabled"), prevent_initial_call=True)
    @rule("member")
    def toggle_play(_clicks, was_stopped):
        playing = bool(was_stopped)
        return (not playing), ("⏸ Pause" if playing else "▶ Play")

    @callback(Output(slider_id, "value"), Output(tick_id, "disabled", allow_duplicate=True),
              Output(play_id, "children", allow_duplicate=True),
              Input(tick_id, "n_intervals"), State(slider_id, "value"),
              State(slider_id, "max"), prevent_initial_call=True)
    @rule("member")
    def advance(_n, value, maximum):
        maximum = maximum or 0  # the guard checked the types; a missing max: nothing to play
        step = max(1, maximum // frames)
        value = 0 if value is None or value >= maximum else min(maximum, value + step)
        at_end = value >= maximum
        return value, at_end, ("▶ Play" if at_end else no_update)

    return toggle_play, advance
