"""The web app in a real browser against a real `netlens serve` (see conftest.py): the form
trains a run through the queue, every view of the run page draws it at the slider's epoch, bad
input is refused in place, and the home, runs and error pages behave."""

from __future__ import annotations

import json
import re

import pytest

from netlens.dispatch.celery_app import make_celery, send
from netlens.storage import jobs, runs
from netlens.storage.presets import get_preset, preset_names
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec
from netlens.webapp import captions, glossary
from tests.browser.conftest import shot
from tests.conftest import small_spec

pytestmark = pytest.mark.browser

RUN_URL = re.compile(r".*/runs/(\d+)$")
FORM_RUN_NAME = "browser form xor"
EPOCHS = 300
TABS = [
    ("curves", "Loss & accuracy"),
    ("params", "Parameters"),
    ("outputs", "Outputs per input"),
    ("network", "Network graph"),
    ("network3d", "3D network"),
    ("activations", "Activations"),
    ("gradients", "Gradients"),
    ("boundary", "Decision boundary"),
    ("neurons", "Neuron maps"),
    ("representation", "Hidden representation"),
]

# What every graph of the active tab pane shows: traces Plotly actually drew (in the DOM; a 3-D
# scene draws on a WebGL canvas), whether it is NetLens' empty placeholder figure (no trace,
# hidden axes, a message), and where it marks the current epoch (its title, or the dashed
# vertical line at that epoch).
DESCRIBE_PANE = """() => {
  const pane = document.querySelector('.tab-content > .tab-pane.active');
  if (!pane) return null;
  return Array.from(pane.querySelectorAll('.dash-graph')).map(div => {
    const gd = div.querySelector('.js-plotly-plot');
    const full = (gd && gd._fullData) || [];
    const layout = (gd && gd.layout) || {};
    const title = typeof layout.title === 'string' ? layout.title : ((layout.title || {}).text || '');
    const hidden = ax => ax && ax.visible === false;
    return {
      id: div.id,
      loading: div.getAttribute('data-dash-is-loading'),
      traces: full.filter(t => t.visible !== false).length,
      drawn: gd ? gd.querySelectorAll(
        '.scatterlayer g.trace, .heatmaplayer g.hm, .contourlayer g.contour, .gl-container canvas').length : 0,
      placeholder: full.length === 0 && hidden(layout.xaxis) && hidden(layout.yaxis),
      annotations: (layout.annotations || []).map(a => a.text),
      title: title,
      epoch_lines: (layout.shapes || []).filter(s => s.type === 'line' && s.x0 === s.x1).map(s => s.x0),
    };
  });
}"""


def _shows_epoch(graph: dict, epoch: int) -> bool:
    return (
        re.search(rf"\bepoch {epoch}\b", graph["title"]) is not None
        or epoch in graph["epoch_lines"]
    )


def _pane_ready(graphs, epoch: int) -> bool:
    return bool(graphs) and all(
        g["loading"] in (None, "false") and g["traces"] > 0 and _shows_epoch(g, epoch)
        for g in graphs
    )


def _wait_for_pane(page, epoch: int, timeout_s: float = 20) -> list[dict]:
    """The active pane's graphs once every one has drawn traces for `epoch` (or the last
    description seen, for the assertion message, when that never happens)."""
    graphs = None
    deadline_ms = timeout_s * 1000
    waited = 0
    while waited < deadline_ms:
        graphs = page.evaluate(DESCRIBE_PANE)
        if _pane_ready(graphs, epoch):
            return graphs
        page.wait_for_timeout(100)
        waited += 100
    return graphs or []


def _slider_thumb(page):
    return page.locator("#run-epoch [role=slider]")


def _wait_text(page, selector: str, text: str, timeout_ms: int = 20_000) -> None:
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); "
        "return e !== null && e.innerText.trim() === t; }",
        arg=[selector, text],
        timeout=timeout_ms,
    )


def test_new_experiment_form_trains_a_run_and_every_view_draws_it(page, server, web_db):
    page.goto(server.url + "/new")
    # The preset select fills the whole form: switch away and back to see it do so.
    page.wait_for_function("document.querySelector('#f-epochs')?.value === '2000'")
    page.select_option("#new-preset", "two-regions")
    page.wait_for_function("document.querySelector('#f-dataset')?.value === 'two-regions'")
    page.select_option("#new-preset", "xor")
    page.wait_for_function(
        "document.querySelector('#f-dataset')?.value === 'xor' && "
        "document.querySelector('#f-epochs')?.value === '2000'"
    )
    page.fill("#f-name", FORM_RUN_NAME)
    page.press("#f-name", "Tab")
    page.fill("#f-epochs", str(EPOCHS))
    page.press("#f-epochs", "Tab")  # the input is debounced: its value is sent on blur
    # The server validated the new value: the size estimate counts epochs 0..300.
    page.wait_for_function(
        "document.querySelector('#new-size')?.innerText.includes('301 recorded')"
    )
    shot(page, "new")
    before = runs.count_runs(web_db)

    page.click("#new-submit")
    page.wait_for_url(RUN_URL, timeout=20_000)
    run_id = int(RUN_URL.match(page.url).group(1))
    assert runs.count_runs(web_db) == before + 1
    info = runs.get_run(web_db, run_id)
    assert (info.name, info.dataset, info.epochs_total) == (FORM_RUN_NAME, "xor", EPOCHS)

    # The header refreshes every 1.5 s until the run has finished.
    page.wait_for_function(
        "['succeeded', 'failed', 'diverged', 'cancelled'].includes("
        "document.querySelector('#run-header .badge')?.innerText.trim())",
        timeout=90_000,
    )
    header = page.inner_text("#run-header")
    assert page.inner_text("#run-header .badge").strip() == "succeeded", header
    assert page.inner_text("#run-header .progress-bar").strip() == f"{EPOCHS}/{EPOCHS}", header
    assert f"#{run_id} {FORM_RUN_NAME}" in header

    # The page was opened while the run was queued: its layer choices arrive with the refresh.
    page.wait_for_selector("#param-layer option[value=output]", state="attached")

    # The slider starts at the last epoch; the keyboard moves it (Home, then arrows).
    _wait_text(page, "#run-epoch-label", f"epoch {EPOCHS}")
    thumb = _slider_thumb(page)
    assert thumb.get_attribute("aria-valuenow") == str(EPOCHS)
    thumb.focus()
    thumb.press("Home")
    _wait_text(page, "#run-epoch-label", "epoch 0")
    epoch = 3
    for _ in range(epoch):
        thumb.press("ArrowRight")
    _wait_text(page, "#run-epoch-label", f"epoch {epoch}")
    assert thumb.get_attribute("aria-valuenow") == str(epoch)

    failures = []
    for tab_id, label in TABS:
        page.get_by_role("tab", name=label, exact=True).click()
        graphs = _wait_for_pane(page, epoch)
        active = page.locator("#run-tabs .nav-link.active").inner_text().strip()
        shot(page, f"run-{tab_id}")
        if active != label:
            failures.append(f"{label}: the active tab is {active!r}")
        elif not _pane_ready(graphs, epoch):
            failures.append(f"{label}: not drawn for epoch {epoch}: {json.dumps(graphs)}")
        else:
            for g in graphs:
                if g["placeholder"] or g["drawn"] == 0:
                    failures.append(f"{label}: {g['id']} shows no data: {json.dumps(g)}")
    assert not failures, "\n".join(failures)


def test_a_page_opened_before_training_offers_the_layers_afterwards(page, server, web_db):
    """What a user sees after Submit: the page of a queued run, left open while it trains."""
    settings = Settings(home=server.home, database_url="", broker_url="")
    delivery = jobs.submit(
        web_db,
        parse_spec(
            {"name": "browser live page", "dataset": {"name": "xor"}, "training": {"epochs": 50}}
        ),
    )
    page.goto(f"{server.url}/runs/{delivery.run_id}")
    page.wait_for_function(
        "document.querySelector('#run-header .badge')?.innerText.trim() === 'queued'"
    )
    send(make_celery(settings), delivery)  # only now may a worker take it
    page.wait_for_function(
        "document.querySelector('#run-header .badge')?.innerText.trim() === 'succeeded'",
        timeout=60_000,
    )
    missing = []
    for tab_id, label, select in (
        ("params", "Parameters", "#param-layer"),
        ("activations", "Activations", "#act-layer"),
        ("representation", "Hidden representation", "#rep-layer"),
    ):
        page.get_by_role("tab", name=label, exact=True).click()
        graphs = _wait_for_pane(page, 50, timeout_s=5)
        options = page.locator(f"{select} option:not([disabled])").count()
        if not options or not _pane_ready(graphs, 50):
            shot(page, f"live-{tab_id}")
            missing.append(f"{label}: {options} layer choices; {json.dumps(graphs)}")
    assert not missing, "\n".join(missing)


def test_an_invalid_field_is_marked_and_nothing_is_submitted(page, server, web_db):
    page.goto(server.url + "/new")
    page.wait_for_function("document.querySelector('#f-epochs')?.value === '2000'")
    before = runs.count_runs(web_db)
    page.fill("#f-epochs", "0")
    page.press("#f-epochs", "Tab")
    page.wait_for_selector("#f-epochs.is-invalid")
    feedback = page.locator("#f-epochs-error")
    feedback.wait_for(state="visible")
    assert "at least 1" in feedback.inner_text()
    # "Next to it": the message belongs to the field's own group, below the input.
    assert page.evaluate(
        "document.querySelector('#f-epochs').parentElement"
        ".contains(document.querySelector('#f-epochs-error'))"
    )
    assert not page.locator("#f-batch.is-invalid").count()  # only the bad field is marked

    page.click("#new-submit")
    alert = page.locator("#new-feedback .alert")
    alert.wait_for(state="visible")
    assert "Not submitted" in alert.inner_text()
    page.wait_for_timeout(1000)  # a redirect, had there been one, would have happened by now
    shot(page, "new-invalid")
    assert page.url == server.url + "/new"
    assert runs.count_runs(web_db) == before


def test_home_launches_a_preset(page, server, web_db):
    page.goto(server.url + "/")
    cards = page.locator(".preset-card")
    cards.first.wait_for()
    assert cards.count() == len(preset_names())
    shot(page, "home")
    before = runs.count_runs(web_db)
    first = preset_names()[0]

    cards.first.get_by_role("button", name="Launch").click()
    page.wait_for_url(RUN_URL, timeout=20_000)
    run_id = int(RUN_URL.match(page.url).group(1))
    assert runs.count_runs(web_db) == before + 1
    info = runs.get_run(web_db, run_id)
    assert info.name == get_preset(first).name and info.dataset == get_preset(first).dataset.name
    page.wait_for_function(
        "(s) => document.querySelector('#run-header')?.innerText.includes(s)", arg=f"#{run_id} "
    )


# The rows the grid has loaded, from its API: the DOM holds only the rows in view (and a
# buffer), so with more than ~24 runs in the session the oldest are not elements at all.
GRID_NODES = """(() => { const rows = []; try { dash_ag_grid.getApi('runs-grid').forEachNode(
  n => { if (n.data) rows.push([n.rowIndex, n.id, n.data.name]); }); } catch (e) { return []; }
  return rows.sort((a, b) => a[0] - b[0]); })"""
ROW_NAMES = f"() => {GRID_NODES}().map(x => x[2])"
ROW_IDS = f"() => {GRID_NODES}().map(x => x[1])"
DOM_ROW_IDS = """() => Array.from(document.querySelectorAll('#runs-grid .ag-center-cols-container .ag-row'))
  .map(r => r.getAttribute('row-id')).filter(x => x !== null)"""


def _wait_rows(page, names: list[str]) -> None:
    from playwright.sync_api import Error as PlaywrightError  # (conftest skips without it)

    try:
        page.wait_for_function(
            f"(want) => JSON.stringify(({ROW_NAMES})()) === JSON.stringify(want)",
            arg=names,
            timeout=15_000,
        )
    except PlaywrightError:
        pytest.fail(f"rows {page.evaluate(ROW_NAMES)}, expected {names}")


def test_runs_grid_lists_sorts_and_filters_on_the_server(page, server, web_db):
    # Runs whose names sort first and last, and one the filter below leaves out (never
    # trained: the grid only lists them).
    for name in ("aaa browser-sort", "zzz browser-sort", "mmm browser-other"):
        runs.create_run(
            web_db, parse_spec({"name": name, "dataset": {"name": "xor"}}), status="cancelled"
        )
    every = runs.list_runs(web_db, limit=50)
    requests = []
    page.on(
        "request",
        lambda r: (
            requests.append(json.loads(r.post_data))
            if "/_dash-update-component" in r.url and "getRowsRequest" in (r.post_data or "")
            else None
        ),
    )

    page.goto(server.url + "/runs")
    try:
        page.wait_for_function(f"({ROW_IDS})().length === {len(every)}")
    except Exception:
        pytest.fail(
            f"rows {sorted(page.evaluate(ROW_IDS))}, expected "
            f"{sorted(str(r.id) for r in every)}; now in the database "
            f"{sorted(r.id for r in runs.list_runs(web_db, limit=100))}"
        )
    assert sorted(page.evaluate(ROW_IDS)) == sorted(str(r.id) for r in every)
    shown = page.evaluate(DOM_ROW_IDS)  # and the rows in view are those rows
    assert shown and set(shown) <= {str(r.id) for r in every}
    if any(r.name == FORM_RUN_NAME for r in every):  # the form test ran first in this session
        assert FORM_RUN_NAME in page.evaluate(ROW_NAMES)
    assert (
        f"of {len(every)}" in page.locator("#runs-grid .ag-paging-row-summary-panel").inner_text()
    )

    def sort_models():
        return [
            inp.get("value", {}).get("sortModel")
            for body in requests
            for inp in body["inputs"]
            if inp.get("property") == "getRowsRequest"
        ]

    names = sorted(r.name for r in every)
    header = page.locator(".ag-header-cell[col-id=name] .ag-header-cell-label")
    header.click()
    _wait_rows(page, names)
    assert any(m and m[0]["colId"] == "name" and m[0]["sort"] == "asc" for m in sort_models()), (
        sort_models()
    )
    header.click()
    _wait_rows(page, names[::-1])
    assert any(m and m[0]["colId"] == "name" and m[0]["sort"] == "desc" for m in sort_models()), (
        sort_models()
    )

    page.locator(".ag-header-cell[col-id=name] .ag-header-cell-filter-button").click()
    box = page.locator(".ag-filter-body input").first
    box.fill("browser-sort")
    _wait_rows(page, ["zzz browser-sort", "aaa browser-sort"])
    page.wait_for_function(
        "document.querySelector('#runs-grid .ag-paging-row-summary-panel')"
        "?.innerText.includes('of 2')"
    )
    filters = [
        inp["value"].get("filterModel")
        for body in requests
        for inp in body["inputs"]
        if inp.get("property") == "getRowsRequest" and inp.get("value")
    ]
    assert any((f or {}).get("name", {}).get("filter") == "browser-sort" for f in filters), filters
    shot(page, "runs")


def test_unknown_run_and_unknown_page(page, server):
    page.goto(server.url + "/runs/999999")
    page.get_by_text("No such run").wait_for()
    body = page.inner_text("body")
    assert "There is no run '999999'" in body
    assert "Traceback" not in body and "Error" not in body
    assert not page.locator("#run-tabs").count()
    shot(page, "run-unknown")

    page.goto(server.url + "/no/such/page")
    page.get_by_text("This page does not exist").wait_for()
    assert "Traceback" not in page.inner_text("body")
    shot(page, "not-found")


def test_pages_without_graphs_load_no_plotly_and_graphs_reached_from_them_still_draw(
    page, server, web_db
):
    """Home has no graph: its HTML carries no plotly.js. A run launched there opens without a
    reload, and dcc.Graph then loads NetLens's partial bundle (never Dash's full plotly.min.js),
    and the 3-D view its lazy part (webapp/page_scripts.py)."""
    scripts = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(server.url + "/")
    page.locator(".preset-card").first.wait_for()
    assert page.evaluate("typeof window.Plotly") == "undefined"
    assert not any("plotly" in url for url in scripts), scripts
    page.locator(".preset-card").first.get_by_role("button", name="Launch").click()
    page.wait_for_url(RUN_URL, timeout=20_000)
    run_id = int(RUN_URL.match(page.url).group(1))
    page.wait_for_function(
        "['succeeded', 'failed', 'diverged', 'cancelled'].includes("
        "document.querySelector('#run-header .badge')?.innerText.trim())",
        timeout=90_000,
    )
    assert runs.get_run(web_db, run_id).status == "succeeded"
    epoch = runs.get_run(web_db, run_id).last_epoch
    graphs = _wait_for_pane(page, epoch)
    assert _pane_ready(graphs, epoch), graphs
    assert page.evaluate("typeof window.Plotly") == "object"
    page.get_by_role("tab", name="3D network", exact=True).click()
    graphs = _wait_for_pane(page, epoch)
    assert _pane_ready(graphs, epoch) and all(g["drawn"] > 0 for g in graphs), graphs
    loaded = [url.split("?")[0].rsplit("/", 1)[-1] for url in scripts if "plotly" in url]
    assert loaded == ["netlens-plotly.min.js", "netlens-plotly-gl3d.lazy.js"], scripts


def test_the_runs_grid_reached_by_a_link_from_a_page_without_ag_grid_works(page, server, web_db):
    """Only /runs carries AG Grid's script: the navbar link from the home page (no reload in
    Dash) reloads /runs from the server, and its grid shows rows (webapp/page_scripts.py)."""
    run_id = runs.create_run(web_db, small_spec(name="grid after a link"), status="running")
    runs.finish_run(web_db, run_id, "cancelled", error="made by the test, never trained")
    scripts = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(server.url + "/")
    page.locator(".preset-card").first.wait_for()
    assert not any("dash_ag_grid" in url for url in scripts)
    page.get_by_role("link", name="Runs", exact=True).click()
    page.wait_for_url(server.url + "/runs")
    page.wait_for_selector("#runs-grid .ag-row >> text=grid after a link")
    assert any("dash_ag_grid" in url for url in scripts)
    assert page.evaluate("typeof window.dash_ag_grid.getApi") == "function"


def test_a_caption_word_shows_its_definition_on_hover(page, server, web_db):
    """Issue 16: above each view, its words explained where they stand (a tooltip on hover,
    also in a tab opened later) and a link to its lesson; no console error (the fixture)."""
    run_id = runs.create_run(web_db, small_spec(name="words on hover"), status="running")
    runs.finish_run(web_db, run_id, "cancelled", error="made by the test, never trained")
    page.goto(f"{server.url}/runs/{run_id}")
    for tab_id, label in (("curves", None), ("params", "Parameters")):
        if label:
            page.get_by_role("tab", name=label, exact=True).click()
        caption = captions.CAPTIONS["run", tab_id]
        first_word = captions.terms_of(caption.shows)[0]
        word = page.locator(f"#cap-run-{tab_id}-t0")
        word.hover()
        tip = page.locator(".tooltip.show .tooltip-inner")
        tip.wait_for(state="visible")
        assert tip.inner_text().strip() == glossary.GLOSSARY[first_word], tab_id
        assert page.locator(f"#cap-run-{tab_id} .lesson-link").get_attribute("href") == (
            f"/learn/{caption.lesson}"
        )
        shot(page, f"words-{tab_id}")
        page.mouse.move(0, 0)
        tip.wait_for(state="hidden")
