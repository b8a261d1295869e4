"""Many runs (/explore) in a real browser: the parallel coordinates draw, a brush applied the
way Plotly applies a mouse brush updates the selection, and the compare link carries exactly
the brushed runs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import shot
from tests.unit.test_parcoords import LEARNING_RATES, add_varied_runs

pytestmark = pytest.mark.browser

N_RUNS = 12
GRAPH = ".overview-graph .js-plotly-plot"
# Axes Plotly drew for the parcoords trace: one `g.y-axis` per dimension in the SVG.
DRAWN = """(selector) => {
  const gd = document.querySelector(selector);
  if (!gd || !gd._fullData || !gd._fullData.length) return null;
  return {axes: gd.querySelectorAll('.parcoords .y-axis').length,
          labels: Array.from(gd.querySelectorAll('.parcoords .axis-title')).map(t => t.textContent),
          dims: gd._fullData[0].dimensions.length,
          canvases: gd.querySelectorAll('.gl-container canvas, canvas.gl-canvas').length};
}"""
BRUSH = """([selector, index, ranges]) => {
  const gd = document.querySelector(selector);
  return Plotly.restyle(gd, {['dimensions[' + index + '].constraintrange']: [ranges]})
    .then(() => true);
}"""


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
    page.wait_for_function(f"(() => {{ const d = ({DRAWN})('{GRAPH}'); "
                           "return d !== null && d.axes > 0 && d.axes === d.dims; })()")
    drawn = page.evaluate(DRAWN, GRAPH)
    # hidden widths and learning rate vary (the optimizer is adam for all), then 4 metrics
    assert drawn["labels"] == ["hidden widths", "learning rate", "train loss", "val loss",
                               "val acc", "train acc"]
    assert _count_text(page) == f"All {N_RUNS} runs (no brush): drag along an axis to select runs"
    assert page.locator(".overview-table tbody tr").count() == N_RUNS

    # Brush the learning-rate axis (log10) around 0.01, as a mouse brush would.
    assert page.evaluate(BRUSH, [GRAPH, 1, [[-2.05, -1.95]]])
    expected = [run_id for k, run_id in enumerate(ids) if LEARNING_RATES[k % 5] == 0.01]
    page.wait_for_function("t => document.querySelector('.overview-count')?.innerText.trim() "
                           "=== t", arg=f"{len(expected)} runs selected by the brush (of 12)")
    assert _compare_ids(page) == expected
    assert page.locator(".overview-table tbody tr").count() == len(expected)
    shot(page, "explore")

    # A second range on the same axis: 0.01 or 0.1.
    assert page.evaluate(BRUSH, [GRAPH, 1, [[-2.05, -1.95], [-1.05, -0.95]]])
    expected = [run_id for k, run_id in enumerate(ids) if LEARNING_RATES[k % 5] in (0.01, 0.1)]
    page.wait_for_function("t => document.querySelector('.overview-count')?.innerText.trim() "
                           "=== t", arg=f"{len(expected)} runs selected by the brush (of 12)")
    assert _compare_ids(page) == expected

    # And a brush on a second axis narrows it: hidden widths "8-8" (code 1) only.
    assert page.evaluate(BRUSH, [GRAPH, 0, [[0.9, 1.1]]])
    expected = [run_id for k, run_id in enumerate(ids)
                if LEARNING_RATES[k % 5] in (0.01, 0.1) and 5 <= k < 10]
    page.wait_for_function("t => document.querySelector('.overview-count')?.innerText.trim() "
                           "=== t", arg=f"{len(expected)} runs selected by the brush (of 12)")
    assert _compare_ids(page) == expected


def test_explore_filters_go_into_the_url_and_bad_ones_are_named(page, server, web_db):
    page.goto(server.url + "/explore?group=abc")
    page.wait_for_selector(".explore-error")
    assert "group: 'abc' must be a run group number" in page.inner_text(".explore-error")
    page.goto(server.url + "/explore")
    page.wait_for_selector(".overview-panel")
    page.select_option("#explore-status", "diverged")
    page.wait_for_url("**/explore?status=diverged")
    page.wait_for_function("document.querySelector('.overview-panel') !== null && "
                           "document.querySelector('#explore-status').value === 'diverged'")
    page.get_by_role("link", name="Many runs").wait_for()


def test_runs_page_links_to_explore_with_its_name_filter(page, server, web_db):
    add_varied_runs(web_db, 2, tag="browser-link")  # names explore-0, explore-1
    page.goto(server.url + "/runs")
    link = page.get_by_role("link", name="Parallel coordinates of these runs →")
    link.wait_for()
    assert link.get_attribute("href") == "/explore"
    page.locator(".ag-header-cell[col-id=name] .ag-header-cell-filter-button").click()
    page.locator(".ag-filter-body input").first.fill("explore-")
    page.wait_for_function("document.querySelector('#runs-explore')?.getAttribute('href') "
                           "=== '/explore?name=explore-'")
    link.click()
    page.wait_for_url("**/explore?name=explore-")
    page.wait_for_selector(".overview-graph .parcoords .y-axis")
    assert page.input_value("#explore-name") == "explore-"
