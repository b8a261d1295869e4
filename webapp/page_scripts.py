"""plotly.js only on the pages that draw graphs.

The partial plotly.js bundle (webapp/assets/netlens-plotly.min.js, 1.4 MB) is most of the
JavaScript a page evaluates before it shows anything. Pages registered with `graphs=False`
(`dash.register_page(..., graphs=False)`: home, runs, many runs, admin, account) leave its
<script> out of their HTML. A graph on such a page, or on a page reached from it without a
reload (a dcc.Link), still draws: dcc.Graph loads plotly.js itself from
`window._dashPlotlyJSURL` when `window.Plotly` does not exist, and every page pins that URL
to our bundle (Dash would point it at the full 4.8 MB plotly.min.js).
"""

from __future__ import annotations

import json
import re

import dash
import flask

from webapp.auth import find_page

BUNDLE_TAG = re.compile(r'<script src="(?P<src>[^"]*/netlens-plotly\.min\.js[^"]*)"></script>\s*')


def install(app: dash.Dash) -> None:
    """Wrap the app's index so that each page's HTML carries only the scripts it needs."""
    original = app.interpolate_index

    def interpolate_index(**kwargs):
        kwargs["scripts"] = scripts_for(kwargs.get("scripts", ""), flask.request.path)
        return original(**kwargs)

    app.interpolate_index = interpolate_index


def draws_graphs(path: str) -> bool:
    """Whether the page at `path` draws graphs when it opens (unknown pages: assume it does)."""
    page = find_page(path)
    return page is None or page.get("graphs", True) is not False


def scripts_for(scripts: str, path: str) -> str:
    """The index's <script> tags for `path`: the plotly.js bundle only where graphs are drawn,
    and before everything the line that points dcc.Graph's own loader at the bundle."""
    match = BUNDLE_TAG.search(scripts)
    if match is None:
        return scripts
    pin = ('<script>Object.defineProperty(window, "_dashPlotlyJSURL", {get: function () '
           f'{{ return {json.dumps(match.group("src"))}; }}, set: function () {{}}}});</script>')
    if not draws_graphs(path):
        scripts = scripts.replace(match.group(0), "")
    return pin + scripts
