"""A page's view state in its URL (`/runs/3?tab=network&epoch=100`): reading the query's claims,
writing the state back, and the "copy link" button.

The query string is a claim like any other: every value is checked against what the page can
show (a known tab, a recorded epoch, an existing layer, a number in range) and anything else
falls back to the page's default, silently: a link that is out of date still opens the page.

The pages keep the URL in step with their own dcc.Location (refresh=False, so changing its
href pushes a history entry without a reload and without re-running Dash's page router).
Back and forward set that Location's href, and each page's `restore` callback sets its
components from it; Dash's router may also re-render the page from the URL it came back to,
which lands on the same state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dash import Input, Output, State, callback, dcc, html, no_update

from netlens.webapp.authz import rule
from netlens.webapp.figures.curves import X_AXES, CurveOptions, smoothing_of

MAX_QUERY_VALUE = 200  # longer values are junk: no tab, layer or number is that long
MAX_INT = 2**31 - 1
DECIMAL = re.compile(r"-?[0-9]{1,10}")  # ASCII digits only ("٣".isdigit() is true)


def query_of(href: object, max_value: int = MAX_QUERY_VALUE) -> dict[str, str]:
    """The query's values by name (the first of a repeated name), from a full href or a
    '?a=1' search; {} for anything that is not text. Values over `max_value` characters
    are left out (the runs page's filter expression may be longer than a tab's name)."""
    if not isinstance(href, str) or len(href) > 4096:
        return {}
    query = urlsplit(href).query if "?" in href else ""
    out: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=False):
        if len(value) <= max_value:
            out.setdefault(name, value)
    return out


def with_query(href: object, pairs: Mapping[str, object], path: str) -> str:
    """`href` with its query replaced by `pairs` (None values left out), or `path` with that
    query when `href` is not a URL of this page."""
    query = urlencode([(k, str(v)) for k, v in pairs.items() if v is not None], safe=",")
    if not isinstance(href, str) or not href:
        return path + (f"?{query}" if query else "")
    parts = urlsplit(href)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def choice(value: object, allowed: Iterable[str], default: str | None) -> str | None:
    """`value` when it is one of `allowed`, else `default`."""
    return value if isinstance(value, str) and value in set(allowed) else default


def whole_number(value: object, low: int = 0, high: int = MAX_INT) -> int | None:
    """A decimal integer from `low` to `high`, or None (junk, '1.5', '1e9', out of range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def nearest_index(epochs: Sequence[int], epoch: object) -> int | None:
    """The slider position of the recorded epoch nearest to `epoch` (a number; the earlier
    one on a tie), or None when there is no epoch or `epoch` is not a whole number."""
    wanted = whole_number(epoch, -MAX_INT, MAX_INT)
    if wanted is None or not len(epochs):
        return None
    return min(range(len(epochs)), key=lambda i: (abs(int(epochs[i]) - wanted), i))


def epoch_of(epochs: Sequence[int], index: object, last: object) -> int | None:
    """The epoch the slider at `index` shows, or None at its end (`last`: a link without an
    epoch follows a running run to its latest) or when `index` is not a position."""
    position = whole_number(index) if isinstance(index, int) else None  # not "2": a position
    end = whole_number(last) if isinstance(last, int) else None
    if position is None or position >= len(epochs) or (end is not None and position >= end):
        return None
    return int(epochs[position])


def curves_of(query: Mapping[str, object], timed: bool = True) -> CurveOptions:
    """The curves' options a query asks for (`smooth`: 0..0.99, `logy=1`, `x=time`); junk
    gives the default of its name, and so does `x=time` for runs that recorded no times."""
    x = choice(query.get("x"), X_AXES, "epoch") or "epoch"
    return CurveOptions(
        smoothing_of(query.get("smooth")) or 0.0,
        query.get("logy") == "1",
        x if timed else "epoch",
    )


def curves_query(smoothing: object, log_y: object, x: object) -> dict[str, object]:
    """The query names of the curves' options, defaults left out (a control's junk too)."""
    weight = smoothing_of(smoothing)
    return {
        "smooth": f"{weight:g}" if weight else None,
        "logy": "1" if log_y is True else None,
        "x": "time" if x == "time" else None,
    }


def changed(current: object, wanted: object):
    """`wanted` as a callback output, or no_update when the component already shows it (so
    that restoring a state triggers no view that need not redraw, and no new URL)."""
    return no_update if wanted is None or current == wanted else wanted


# ---- the location and the copy-link button -----------------------------------------------


def location(location_id: str) -> dcc.Location:
    """The page's own Location: refresh=False pushes a history entry, no reload, no routing."""
    return dcc.Location(id=location_id, refresh=False)


def copy_link(clipboard_id: str) -> html.Span:
    """A button copying the page's URL, with its state, to the clipboard (dcc.Clipboard: no
    script of ours, so nothing the CSP must allow)."""
    return html.Span(
        dcc.Clipboard(
            id=clipboard_id,
            children=html.Span("Copy link", className="btn btn-sm btn-outline-secondary"),
            copied_children=html.Span("Link copied", className="btn btn-sm btn-success"),
            title="Copy a link to this page as you see it: tab, epoch and choices",
        ),
        className="copy-link",
    )


def add_copy_link(clipboard_id: str, location_id: str):
    """The callback that gives the clipboard the page's current URL when it is clicked."""

    @callback(
        Output(clipboard_id, "content"),
        Input(clipboard_id, "n_clicks"),
        State(location_id, "href"),
        prevent_initial_call=True,
    )
    @rule("member")
    def copy_url(_n, href):
        return href if isinstance(href, str) else no_update

    return copy_url
