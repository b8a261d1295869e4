"""The compare page in a real browser: three runs side by side, one shared epoch slider."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

SIDE_GRAPHS = """() => [0, 1, 2, 3].map(i => {
  const col = document.getElementById('cmp-side-col-' + i);
  const gd = document.querySelector('#cmp-fig-side-' + i + ' .js-plotly-plot');
  const title = gd && gd.layout && gd.layout.title ? (gd.layout.title.text || '') : '';
  const types = gd && gd._fullData ? gd._fullData.map(t => t.type) : [];
  return {visible: !!col && col.offsetParent !== null, title: title, types: types,
          drawn: gd ? gd.querySelectorAll('.scatterlayer g.trace, .heatmaplayer g.hm').length : 0};
})"""


def _wait_side(
    page, epoch: int, n: int, trace_type: str = "scatter", timeout_ms: int = 20_000
) -> list[dict]:
    """The first n side-by-side graphs once each has drawn a `trace_type` trace and titles
    `epoch`."""
    graphs = []
    for _ in range(timeout_ms // 100):
        graphs = page.evaluate(SIDE_GRAPHS)
        shown = [g for g in graphs if g["visible"]]
        if len(shown) == n and all(
            g["drawn"] > 0
            and trace_type in g["types"]
            and re.search(rf"· epoch {epoch}\b", g["title"])
            for g in shown
        ):
            return graphs
        page.wait_for_timeout(100)
    raise AssertionError(f"side-by-side graphs never showed epoch {epoch}: {graphs}")


def test_three_runs_side_by_side_follow_the_shared_slider(page, server, three_runs):
    page.goto(f"{server.url}/compare?runs={','.join(map(str, three_runs))}")
    page.wait_for_selector("text=Comparing 3 runs")
    # plotly.js draws a figure's traces in one pass, after the page's text is shown
    page.wait_for_selector("#compare-loss .scatterlayer g.trace")
    assert page.locator("#compare-loss .scatterlayer g.trace").count() == 3
    graphs = _wait_side(page, 40, 3)
    assert [f"#{i}" in g["title"] for i, g in zip(three_runs, graphs, strict=False)] == [True] * 3
    shot(page, "compare-3-runs-epoch-40")

    thumb = page.locator("#cmp-epoch [role=slider]")
    thumb.focus()
    page.keyboard.press("Home")
    _wait_side(page, 0, 3)
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#cmp-epoch-label').innerText === 'epoch 12'")
    _wait_side(page, 12, 3)

    page.select_option("#cmp-side-view", "boundary")
    graphs = _wait_side(page, 12, 3, trace_type="contour")
    assert all("contour" not in g["types"] for g in page.evaluate(SIDE_GRAPHS)[3:])
    shot(page, "compare-3-runs-boundary-epoch-12")

    page.get_by_text("Similarity of layers (CKA)", exact=True).click()
    page.wait_for_function(
        "document.querySelectorAll('#cmp-fig-cka .heatmaplayer g.hm').length > 0"
    )
    title = page.evaluate(
        "document.querySelector('#cmp-fig-cka .js-plotly-plot').layout.title.text"
    )
    assert "epoch 12" in title and "shared probe inputs" in title
    shot(page, "compare-cka")


def _traces(page, graph_id: str) -> dict:
    return page.evaluate(
        """(id) => {
      const gd = document.querySelector('#' + id + ' .js-plotly-plot');
      if (!gd || !gd._fullData) return {n: 0, points: 0, title: '', drawn: 0};
      return {n: gd._fullData.length,
              points: gd._fullData.reduce((s, t) => s + (t.y ? t.y.length : 0), 0),
              title: (gd.layout.title && gd.layout.title.text) || '',
              drawn: gd.querySelectorAll('.scatterlayer g.trace, .barlayer g.trace').length};
    }""",
        graph_id,
    )


def test_activation_distributions_and_dead_units_of_three_runs(page, server, three_runs):
    runs = ",".join(map(str, three_runs))
    page.goto(f"{server.url}/compare?runs={runs}&tab=weights&epoch=30")
    page.wait_for_selector("text=Comparing 3 runs")
    page.wait_for_function(
        "document.querySelectorAll('#cmp-fig-weights .scatterlayer g.trace').length === 3"
    )
    assert "weights at epoch 30" in _traces(page, "cmp-fig-weights")["title"]
    assert not page.locator("#cmp-units-box").is_visible()  # the units go with activations
    page.get_by_text("activations on the probe inputs", exact=True).click()
    page.wait_for_function(
        "(() => { const gd = document.querySelector('#cmp-fig-weights .js-plotly-plot');"
        " return gd && gd.layout.title.text.includes('activations') &&"
        " gd.querySelectorAll('.scatterlayer g.trace').length === 3; })()"
    )
    drawn = _traces(page, "cmp-fig-weights")
    assert drawn["n"] == 3 and drawn["points"] > 0
    assert "hidden_1 activations on the probe inputs at epoch 30" in drawn["title"]
    page.wait_for_function(
        "document.querySelectorAll('#cmp-fig-units .barlayer g.trace').length > 0"
    )
    units = _traces(page, "cmp-fig-units")
    assert units["n"] == 6 and "Dead and saturated units" in units["title"]  # 3 runs x 2 panels
    assert page.locator("#cap-compare-units").is_visible()
    # the wide run has 5 units where the others have 3: said above the figures
    assert "hidden_1: different units or activation" in page.inner_text("#cmp-layer-note")
    page.mouse.move(0, 0)  # no glossary tooltip over the figures
    page.locator("#cmp-fig-weights").scroll_into_view_if_needed()
    shot(page, "compare-activation-distributions")
    page.locator("#cmp-fig-units").scroll_into_view_if_needed()
    shot(page, "compare-dead-saturated-units")
