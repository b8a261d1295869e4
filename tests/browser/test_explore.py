"""Many runs (/explore) in a real browser: the parallel coordinates draw (in SVG, by
webapp/assets/netlens-parcoords.js), a mouse brush and brushes set through the drawing's API
update the selection, and the compare link carries exactly the brushed runs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import shot
from tests.unit.test_parcoords import LEARNING_RATES, add_varied_runs

pytestmark = pytest.mark.browser

N_RUNS = 12
PLOT = ".overview-graph"
DRAWN = """(selector) => {
  const plot = document.querySelector(selector);
  if (!plot || !plot.dataset.drawn) return null;
  return {axes: plot.querySelectorAll('.nl-pc-axis').length, dims: Number(plot.dataset.axes),
          lines: plot.querySelectorAll('.nl-pc-line').length, runs: Number(plot.dataset.drawn),
          labels: Array.from(plot.querySelectorAll('.nl-pc-label')).map(t => t.textContent),
          titles: Array.from(plot.querySelectorAll('.nl-pc-line title')).map(t => t.textContent),
          on: plot.querySelectorAll('.nl-pc-focus .nl-pc-line').length,
          canvases: plot.querySelectorAll('canvas').length};
}"""
BRUSH = """([selector, brushes]) => window.netlensParcoords.setBrushes(
  document.querySelector(selector), brushes)"""
# Where the tick labelled `text` of axis `axis` is on the screen (the axis line's x).
TICK = """([axis, text]) => {
  const ax = document.querySelector(`.overview-graph .nl-pc-axis[data-index="${axis}"]`);
  const label = Array.from(ax.querySelectorAll('.nl-pc-tick-label')).find(t => t.textContent === text);
  const at = label.getBoundingClientRect(), line = ax.querySelector('.nl-pc-axis-line').getBoundingClientRect();
  return {x: line.x + line.width / 2, y: at.y + at.height / 2};
}"""


def _selected(page, n: int) -> None:
    page.wait_for_function(
        "t => document.querySelector('.overview-count')?.innerText.trim() === t",
        arg=f"{n} runs selected by the brush (of {N_RUNS})",
    )


def _count_text(page) -> str:
    return page.locator(".overview-count").inner_text().strip()


def _compare_ids(page) -> list[int] | None:
    link = page.locator("a.overview-compare")
    if link.count() == 0:
        return None
    href = link.get_attribute("href")
    return sorted(int(i) for i in parse_qs(urlparse(href).query)["runs"][0].split(","))


def test_brushing_the_parallel_coordinates_selects_runs_to_compare(page, server, web_db):
    ids = add_varied_runs(web_db, N_RUNS, tag="browser-brush")  # the 7th one diverged
    page.goto(server.url + "/explore?tag=browser-brush")
    page.wait_for_function(
        f"(() => {{ const d = ({DRAWN})('{PLOT}'); "
        "return d !== null && d.axes > 0 && d.axes === d.dims; })()"
    )
    drawn = page.evaluate(DRAWN, PLOT)
    # hidden widths and learning rate vary (the optimizer is adam for all), then 4 metrics
    assert drawn["labels"] == [
        "hidden widths",
        "learning rate",
        "train loss",
        "val loss",
        "val acc",
        "train acc",
    ]
    assert drawn["lines"] == drawn["runs"] == drawn["on"] == N_RUNS and drawn["canvases"] == 0
    assert drawn["titles"][6] == f"#{ids[6]} explore-6 (diverged)"  # a line's tooltip
    assert _count_text(page) == f"All {N_RUNS} runs (no brush): drag along an axis to select runs"
    assert page.locator(".overview-table tbody tr").count() == N_RUNS

    # A mouse brush over the learning-rate tick 0.01: drag from above it to below it.
    at = page.evaluate(TICK, [1, "0.01"])
    page.mouse.move(at["x"], at["y"] - 8)
    page.mouse.down()
    page.mouse.move(at["x"], at["y"], steps=3)
    page.mouse.move(at["x"], at["y"] + 8, steps=3)
    page.mouse.up()
    expected = [run_id for k, run_id in enumerate(ids) if LEARNING_RATES[k % 5] == 0.01]
    _selected(page, len(expected))
    assert _compare_ids(page) == expected
    assert page.locator(".overview-table tbody tr").count() == len(expected)
    assert page.evaluate(DRAWN, PLOT)["on"] == len(expected)  # the others are greyed
    assert page.locator(f"{PLOT} .nl-pc-brush").count() == 1
    shot(page, "explore")

    # A click on the axis clears its brush: every run again.
    page.mouse.click(at["x"], at["y"] + 40)
    page.wait_for_function(
        "document.querySelector('.overview-count')?.innerText.startsWith('All ')"
    )
    assert page.evaluate(DRAWN, PLOT)["on"] == N_RUNS

    # Two ranges on the learning-rate axis (log10): 0.01 or 0.1.
    assert page.evaluate(BRUSH, [PLOT, {1: [[-2.05, -1.95], [-1.05, -0.95]]}])
    expected = [run_id for k, run_id in enumerate(ids) if LEARNING_RATES[k % 5] in (0.01, 0.1)]
    _selected(page, len(expected))
    assert _compare_ids(page) == expected

    # And a brush on a second axis narrows it: hidden widths "8-8" (code 1) only.
    assert page.evaluate(BRUSH, [PLOT, {1: [[-2.05, -1.95], [-1.05, -0.95]], 0: [[0.9, 1.1]]}])
    expected = [
        run_id
        for k, run_id in enumerate(ids)
        if LEARNING_RATES[k % 5] in (0.01, 0.1) and 5 <= k < 10
    ]
    _selected(page, len(expected))
    assert _compare_ids(page) == expected


def test_explore_filters_go_into_the_url_and_bad_ones_are_named(page, server, web_db):
    page.goto(server.url + "/explore?group=abc")
    page.wait_for_selector(".explore-error")
    assert "group: 'abc' must be a run group number" in page.inner_text(".explore-error")
    page.goto(server.url + "/explore")
    page.wait_for_selector(".overview-panel")
    page.select_option("#explore-status", "diverged")
    page.wait_for_url("**/explore?status=diverged")
    page.wait_for_function(
        "document.querySelector('.overview-panel') !== null && "
        "document.querySelector('#explore-status').value === 'diverged'"
    )
    page.get_by_role("link", name="Many runs").wait_for()


def test_runs_page_links_to_explore_with_its_name_filter(page, server, web_db):
    add_varied_runs(web_db, 2, tag="browser-link")  # names explore-0, explore-1
    page.goto(server.url + "/runs")
    link = page.get_by_role("link", name="Parallel coordinates of these runs →")
    link.wait_for()
    assert link.get_attribute("href") == "/explore"
    page.locator(".ag-header-cell[col-id=name] .ag-header-cell-filter-button").click()
    page.locator(".ag-filter-body input").first.fill("explore-")
    page.wait_for_function(
        "document.querySelector('#runs-explore')?.getAttribute('href') === '/explore?name=explore-'"
    )
    link.click()
    page.wait_for_url("**/explore?name=explore-")
    page.wait_for_selector(".overview-graph .nl-pc-axis")
    assert page.input_value("#explore-name") == "explore-"
