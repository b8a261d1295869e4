"""The curves' controls (issue 17 part 3) in a real browser, on the run and compare pages:
EMA smoothing (the raw line stays faint behind the smoothed one), log y, x by wall time, the
choices in the URL, and the compare page's runs grouped by seed as mean ± std bands. Uses the
XOR runs of tests/browser/conftest.py `three_runs` (two seeds of one network, a wider one)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from netlens.webapp.figures.compare import run_color
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

FIGURE = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  if (!gd || !gd._fullLayout || !gd.data) return null;
  return {
    traces: gd.data.map(t => ({name: t.name, legend: t.showlegend !== false,
                               fill: t.fill || null, color: (t.line || {}).color || null})),
    ytype: gd._fullLayout.yaxis.type,
    xtitle: (gd._fullLayout.xaxis.title || {}).text || '',
    fills: gd.querySelectorAll('path.js-fill').length,
  };
}"""


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _wait_figure(page, selector: str, check, what: str) -> dict:
    """The figure's summary once `check(summary)` holds."""
    got = None
    for _ in range(200):
        got = page.evaluate(FIGURE, selector)
        if got and check(got):
            return got
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never showed {what}: {got}")


def _smooth_to(page, slider: str, fraction: float) -> None:
    """Click the smoothing slider's track at `fraction` of its length (0.6 → about 0.6)."""
    rail = page.locator(f"#{slider} .dash-slider-track").bounding_box()
    page.mouse.click(rail["x"] + fraction * rail["width"], rail["y"] + rail["height"] / 2)


def _smoothed(fig: dict) -> bool:
    """Every line has its faint raw twin before it: pairs of (raw, smoothed) traces."""
    traces = fig["traces"]
    return (
        len(traces) >= 2
        and len(traces) % 2 == 0
        and all(
            raw["name"] == f"{line['name']} (raw)" and not raw["legend"]
            for raw, line in zip(traces[::2], traces[1::2], strict=True)
        )
    )


def _turn_on_the_controls(page, prefix: str, figure: str) -> dict:
    _smooth_to(page, f"{prefix}-smooth", 0.6)
    _wait_figure(page, figure, _smoothed, "the raw lines faint behind the smoothed ones")
    page.locator(f"#{prefix}-logy").check()
    _wait_figure(page, figure, lambda f: f["ytype"] == "log", "a log y axis")
    page.locator(f"#{prefix}-x").get_by_text("wall time").click()
    return _wait_figure(
        page, figure, lambda f: f["xtitle"].startswith("wall time"), "x by wall time"
    )


def test_run_page_smoothing_log_y_and_wall_time(page, server, three_runs):
    run_id = three_runs[0]
    page.goto(f"{server.url}/runs/{run_id}")
    first = _wait_figure(page, "#fig-loss", lambda f: f["traces"], "its curves")
    assert all(t["legend"] for t in first["traces"]) and first["ytype"] == "linear"
    fig = _turn_on_the_controls(page, "run", "#fig-loss")
    assert _smoothed(fig) and fig["ytype"] == "log"
    assert "since the run started" in fig["xtitle"]
    acc = page.evaluate(FIGURE, "#fig-accuracy")
    assert _smoothed(acc) and acc["ytype"] == "log"
    query = _query(page)
    assert query["logy"] == "1" and query["x"] == "time"
    assert 0.5 <= float(query["smooth"]) <= 0.7
    shot(page, "run-curves-smoothed-log-wall-time")

    # the link opens the same view; junk in it opens the default one
    page.goto(f"{server.url}/runs/{run_id}?smooth=0.9&logy=1&x=time")
    fig = _wait_figure(page, "#fig-loss", _smoothed, "the smoothed curves from the link")
    assert fig["ytype"] == "log" and fig["xtitle"].startswith("wall time")
    page.goto(f"{server.url}/runs/{run_id}?smooth=abc&logy=yes&x=minutes")
    fig = _wait_figure(page, "#fig-loss", lambda f: f["traces"], "its curves")
    assert not _smoothed(fig) and fig["ytype"] == "linear" and fig["xtitle"] == "epoch"


def test_compare_page_controls_and_group_by_seed_with_bands(page, server, three_runs):
    ids = ",".join(map(str, three_runs))
    page.goto(f"{server.url}/compare?runs={ids}")
    page.wait_for_selector("text=Comparing 3 runs")
    first = _wait_figure(page, "#compare-loss", lambda f: f["traces"], "its curves")
    assert len(first["traces"]) == 3  # each run's train loss (XOR has no validation split)
    fig = _turn_on_the_controls(page, "cmp", "#compare-loss")
    assert _smoothed(fig) and len(fig["traces"]) == 3 * 2  # a faint raw line per curve
    assert fig["ytype"] == "log"
    shot(page, "compare-curves-smoothed-log-wall-time")

    page.select_option("#cmp-group", "training.seed")
    fig = _wait_figure(
        page, "#compare-loss", lambda f: any(t["fill"] for t in f["traces"]), "bands"
    )
    means = [t for t in fig["traces"] if t["legend"]]
    # the two seeds of the 3-unit network pooled (n=2); the wider network alone (n=1)
    assert len(means) == 2 and "(n=2)" in means[0]["name"] and "(n=1)" in means[1]["name"]
    assert "3 tanh" in means[0]["name"] and "5 tanh" in means[1]["name"]
    # each group in the colour of its first run in the run key (#1 blue, #3 green)
    assert [m["color"] for m in means] == [run_color(0), run_color(2)]
    assert [t["fill"] for t in fig["traces"][:2]] == [None, "tonexty"]
    assert fig["fills"] >= 2 and fig["ytype"] == "log"
    assert _query(page)["group"] == "training.seed"
    page.locator("#compare-loss").scroll_into_view_if_needed()
    shot(page, "compare-grouped-by-seed-log-wall-time")
    page.locator("#cmp-x").get_by_text("epoch", exact=True).click()
    page.locator("#cmp-logy").uncheck()
    fig = _wait_figure(
        page, "#compare-loss", lambda f: f["ytype"] == "linear" and f["xtitle"] == "epoch", "epochs"
    )
    assert any(t["fill"] for t in fig["traces"])
    page.locator("#compare-loss").scroll_into_view_if_needed()
    shot(page, "compare-grouped-by-seed-bands")


def test_a_run_without_wall_times_says_why_wall_time_is_off(page, server, web_db):
    """A run recorded before NetLens kept per-epoch times: its page offers x by epoch only,
    the wall-time choice disabled with the reason beside it; a link asking for it draws by
    epoch."""
    from netlens.storage import records, runs
    from tests.conftest import small_spec

    run_id = runs.create_run(web_db, small_spec(name="untimed", dataset={"name": "xor"}))
    losses = [{"train_loss": 0.7 * 0.9**e, "train_accuracy": 0.5 + e / 40} for e in range(20)]
    records.write_epochs(web_db, run_id, records.EpochChunk(list(range(20)), losses, {}, {}))
    runs.finish_run(web_db, run_id, "succeeded", None)
    page.goto(f"{server.url}/runs/{run_id}?x=time&logy=1")
    fig = _wait_figure(page, "#fig-loss", lambda f: f["traces"], "its curves")
    assert fig["xtitle"] == "epoch" and fig["ytype"] == "log"
    wall = page.locator("#run-x input[value=time]")
    assert wall.is_disabled() and not wall.is_checked()
    assert "not recorded for this run" in page.locator("#run-x").locator("..").inner_text()
    shot(page, "run-curves-no-wall-time")
