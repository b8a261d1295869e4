"""The partial plotly.js bundle in webapp/assets (built by scripts/build_plotly_bundle.sh)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "webapp" / "assets" / "netlens-plotly.min.js"
LAZY = REPO / "webapp" / "assets" / "netlens-plotly-gl3d.lazy.js"
# Figures of these types are built with plotly (a standard description) but drawn by NetLens's
# own script, never by plotly.js: parallel coordinates in SVG (webapp/views/overview.py).
DRAWN_BY_NETLENS = {"parcoords": REPO / "webapp" / "assets" / "netlens-parcoords.js"}
BUILD = REPO / "webapp" / "plotly-bundle"
VERSION = re.compile(r"plotly\.js (?:\([^)]*\) )?v([0-9][0-9.]*)")


def _header(path: Path, size: int = 600) -> str:
    with path.open(encoding="utf-8") as f:
        return f.read(size)


def _bundle_traces() -> list[str]:
    match = re.search(r"^\* traces: (.+)$", _header(BUNDLE), re.M)
    assert match, "the bundle's header lists no traces: rebuild it (scripts/build_plotly_bundle.sh)"
    return [t.strip() for t in match.group(1).split(",")]


def _lazy_traces() -> list[str]:
    """The traces the main bundle loads from LAZY before plotting them (its header says)."""
    match = re.search(r"^\* lazy traces \(([^,)]+)[^)]*\): (.+)$", _header(BUNDLE), re.M)
    assert match, "the bundle's header lists no lazy traces: rebuild it"
    assert match.group(1) == LAZY.name
    return [t.strip() for t in match.group(2).split(",")]


def _traces_used_by_webapp() -> set[str]:
    names = set()
    for path in (REPO / "webapp").rglob("*.py"):
        names.update(re.findall(r"\bgo\.([A-Z][A-Za-z0-9]*)\(", path.read_text(encoding="utf-8")))
    return {
        name.lower()
        for name in names
        if isinstance(getattr(go, name, None), type)
        and issubclass(getattr(go, name), BaseTraceType)
    }


def test_bundle_is_an_asset_that_defines_window_plotly():
    assert BUNDLE.is_file(), "run scripts/build_plotly_bundle.sh"
    text = BUNDLE.read_text(encoding="utf-8")
    assert 1_000_000 < len(text) < 3_000_000  # the full plotly.min.js is 4.8 MB
    assert text.rstrip().endswith("window.Plotly = Plotly;")


def test_bundle_is_the_plotly_js_version_of_the_python_package():
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    want = VERSION.search(_header(shipped))
    got = VERSION.search(_header(BUNDLE))
    assert want and got
    assert got.group(1) == want.group(1), (
        f"webapp/assets/netlens-plotly.min.js is plotly.js v{got.group(1)} but the plotly package "
        f"ships v{want.group(1)}: set it in webapp/plotly-bundle/package.json and run "
        "scripts/build_plotly_bundle.sh --update"
    )
    package = json.loads((BUILD / "package.json").read_text())
    assert package["devDependencies"]["plotly.js"] == want.group(1)  # pinned exactly
    lock = json.loads((BUILD / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/plotly.js"]["version"] == want.group(1)


def test_bundle_registers_every_trace_type_the_webapp_draws():
    used = _traces_used_by_webapp()
    assert {"scatter", "heatmap", "contour", "scatter3d"} <= used  # the scan finds them
    registered, lazy = _bundle_traces(), _lazy_traces()
    assert not set(registered) & set(lazy)
    assert "parcoords" in used and not set(DRAWN_BY_NETLENS) & set(registered + lazy)
    assert all(path.is_file() for path in DRAWN_BY_NETLENS.values())
    used -= set(DRAWN_BY_NETLENS)
    assert not used - set(registered) - set(lazy), (
        f"webapp/ draws {sorted(used - set(registered) - set(lazy))} but the plotly.js bundle "
        "lacks them: add them to TRACES (or LAZY_TRACES) in webapp/plotly-bundle/build.mjs and "
        "run scripts/build_plotly_bundle.sh"
    )
    for path, traces in ((BUNDLE, registered), (LAZY, lazy)):
        text = path.read_text(encoding="utf-8")
        for trace in traces:  # each trace module's `name: '<type>'` made it into the code
            assert f'name:"{trace}"' in text, (path.name, trace)
    main = BUNDLE.read_text(encoding="utf-8")
    assert "scatter3d" in lazy and 'name:"scatter3d"' not in main  # gl3d is really split off


def test_the_lazy_bundle_is_not_in_the_pages_but_is_served():
    """Dash must not add the lazy file to every page (assets_ignore), yet serve it on request,
    at the URL (with the content hash) the main bundle asks for."""
    from netlens.storage.settings import Settings
    from netlens.webapp.app import create_app

    manifest = json.loads((BUILD / "manifest.json").read_text())
    app = create_app(Settings(home=Path("/nonexistent-netlens-home"), database_url="sqlite://"))
    client = app.server.test_client()
    page = client.get("/404-no-such-page-either").text
    assert BUNDLE.name in page and LAZY.name not in page
    wanted = f"{LAZY.name}?v={manifest['lazy']['sha256'][:12]}"
    assert wanted in BUNDLE.read_text(encoding="utf-8")
    served = client.get(f"/assets/{wanted}")
    assert served.status_code == 200
    assert hashlib.sha256(served.data).hexdigest() == manifest["lazy"]["sha256"]


def test_manifest_describes_the_committed_bundle():
    manifest = json.loads((BUILD / "manifest.json").read_text())
    data = BUNDLE.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest(), "bundle and manifest differ"
    assert manifest["bytes"] == len(data)
    assert manifest["traces"] == _bundle_traces()
    assert manifest["lazy"]["traces"] == _lazy_traces()
    assert manifest["lazy"]["sha256"] == hashlib.sha256(LAZY.read_bytes()).hexdigest()
    assert manifest["lazy"]["bytes"] == LAZY.stat().st_size
    assert f"v{manifest['plotly_js']}" in _header(BUNDLE)


def test_dash_graph_uses_an_existing_window_plotly():
    """dcc.Graph's plotly.js loader resolves to `window.Plotly` when it exists; otherwise it
    would still fetch the full plotly.min.js and the bundle would only add to the page."""
    import dash.dcc

    source = (Path(dash.dcc.__file__).parent / "dash_core_components.js").read_text(
        encoding="utf-8"
    )
    assert "Promise.resolve(window.Plotly||" in source


def test_pages_without_graphs_leave_plotly_out_and_every_page_pins_dcc_graph_to_the_bundle():
    from netlens.storage.settings import Settings
    from netlens.webapp.app import create_app
    from netlens.webapp.page_scripts import BUNDLE_TAG

    app = create_app(Settings(home=Path("/nonexistent-netlens-home"), database_url="sqlite://"))
    client = app.server.test_client()
    for path, has_bundle in (
        ("/admin", False),
        ("/", False),
        ("/runs", False),
        ("/explore", False),
        ("/account", False),
        ("/runs/3", True),
        ("/compare", True),
        ("/new", True),
        ("/runs/3/signatures", True),
        ("/groups/2", True),
        ("/no/such/page", True),
    ):
        html = client.get(path).text
        assert (BUNDLE_TAG.search(html) is not None) == has_bundle, path
        pin = re.search(r'"_dashPlotlyJSURL", \{get: function \(\) \{ return "([^"]+)"', html)
        assert pin and f"/assets/{BUNDLE.name}?m=" in pin.group(1), path
        assert "package_data/plotly.min.js" not in html  # Dash's full plotly.js: never
