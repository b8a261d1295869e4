"""Each page's HTML carries only the big scripts it needs: plotly.js and AG Grid.

Dash puts the script of every component library, and every asset, in every page. Two of them
are most of the JavaScript a page evaluates before it shows anything: NetLens's partial
plotly.js bundle (webapp/assets/netlens-plotly.min.js, 1.4 MB) and dash-ag-grid (1.3 MB).

- plotly.js: left out of pages registered with `graphs=False` (`dash.register_page(...,
  graphs=False)`). A graph on such a page, or on a page reached from it without a reload,
  still draws: dcc.Graph loads plotly.js itself from `window._dashPlotlyJSURL` when
  `window.Plotly` does not exist, and every page pins that URL to our bundle (Dash would
  point it at the full 4.8 MB plotly.min.js).
- AG Grid: only in pages registered with `grids=True` (the runs table). A page without it
  stands in a small `window.dash_ag_grid` that, if a grid is ever rendered there (a page with
  a grid reached by a client-side link), reloads the page from the server, which then sends
  the page with the script.
"""

from __future__ import annotations

import json
import re

import dash
import flask

from netlens.webapp.auth import find_page

# A tag may already carry the CSP nonce (webapp/headers.py adds one to every script of the HTML).
BUNDLE_TAG = re.compile(
    r'<script(?: nonce="[^"]*")? src="(?P<src>[^"]*/netlens-plotly\.min\.js[^"]*)"></script>\s*'
)
GRID_TAG = re.compile(
    r'<script(?: nonce="[^"]*")? src="[^"]*/dash_ag_grid/dash_ag_grid\.[^"]*\.js"></script>\s*'
)
GRID_STAND_IN = (
    "<script>window.dash_ag_grid = {AgGrid: function () {"
    " window.location.reload(); return null; }};</script>"
)


def install(app: dash.Dash) -> None:
    """Wrap the app's index so that each page's HTML carries only the scripts it needs."""
    original = app.interpolate_index

    def interpolate_index(**kwargs):
        kwargs["scripts"] = scripts_for(kwargs.get("scripts", ""), flask.request.path)
        return original(**kwargs)

    app.interpolate_index = interpolate_index


def page_needs(path: str) -> tuple[bool, bool]:
    """(draws graphs, shows an AG Grid) when the page at `path` opens. Unknown pages: graphs
    yes (the safe side: no wait for plotly.js), grids no."""
    page = find_page(path)
    if page is None:
        return True, False
    return page.get("graphs", True) is not False, page.get("grids", False) is True


def scripts_for(scripts: str, path: str) -> str:
    """The index's <script> tags for `path` (see the module's docstring)."""
    graphs, grids = page_needs(path)
    head = ""
    match = BUNDLE_TAG.search(scripts)
    if match is not None:
        head += (
            '<script>Object.defineProperty(window, "_dashPlotlyJSURL", {get: function () '
            f"{{ return {json.dumps(match.group('src'))}; }}, set: function () {{}}}});"
            "</script>"
        )
        if not graphs:
            scripts = scripts.replace(match.group(0), "")
    if not grids and GRID_TAG.search(scripts):
        scripts = GRID_TAG.sub("", scripts)
        head += GRID_STAND_IN
    return head + scripts
