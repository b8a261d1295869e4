"""When a lesson page redraws and when it stops polling: a stamp that changes only with the runs'
state, and a check that the finished runs are what the page shows.

The page has two callbacks: `poll` (the status line, the slider, this stamp) and `render` (the
views, and DRAWN: the run state it read). The status can say "finished" a moment before the
body shows it, so polling stops only once DRAWN equals the finished state; a final render that
failed or never arrived is asked for again, a few times.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

MAX_ASKS = 4  # asks again for a final render that did not arrive
ASK_AFTER = 4  # polls to wait before the first ask; doubled before each next one


class _Info(Protocol):
    id: int
    last_epoch: int | None
    is_finished: bool


def run_state(infos: Iterable[_Info]) -> list[int]:
    """(id, last recorded epoch or -1, finished 0/1) per run, flattened (a Store holds ints)."""
    return [
        v
        for i in infos
        for v in (i.id, -1 if i.last_epoch is None else i.last_epoch, int(i.is_finished))
    ]


def is_finished(state: list[int]) -> bool:
    return all(state[2::3])


def next_stamp(stamp: list[int] | None, state: list[int], drawn, n: int) -> list[int]:
    """[asks, poll at which it asked, *state]: a new value only when the runs' state changes
    (an idle page does not redraw) or, once they have all finished while the page still draws
    an older state, as a new ask after a wait that doubles each time (so a slow render is not
    cut short by the next ask: Dash drops the answer of a callback asked again)."""
    if stamp and len(stamp) >= 2 and stamp[2:] == state:
        asks, asked_at = stamp[0], stamp[1]
        if not (0 <= asks <= MAX_ASKS and asked_at <= n):  # a crafted stamp
            return [min(max(asks, 0), MAX_ASKS), n, *state]
        if is_finished(state) and drawn != state and asks < MAX_ASKS:
            if n - asked_at >= ASK_AFTER << asks:
                return [asks + 1, n, *state]
        return stamp
    return [0, n, *state]


def may_stop(stamp: list[int], state: list[int], drawn) -> bool:
    """Stop polling: the finished runs are drawn, or the asks for it are spent."""
    if not is_finished(state):
        return False
    return drawn == state or stamp[0] >= MAX_ASKS
