"""The signatures page of a finished digits-1-7 run (1s vs 7s, unseen 3s and 4s), analysed by
the server's real worker after training, in a real browser: every tab draws, UMAP (not in the
default analysis) is computed when chosen on the page, and an epoch without an analysis gets
one queued from the page."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from netlens.storage import analyses, runs
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

EPOCHS = 20
TABS = [
    "Separability",
    "Clusters",
    "Flow",
    "Projections",
    "Class signatures",
    "Unseen classes",
    "Compare two inputs",
]
# Each graph of the active pane: how many traces it drew (SVG layers; a Sankey's links).
DESCRIBE_PANE = """() => {
  const pane = document.querySelector('#sig-tabs ~ .tab-content > .tab-pane.active')
            || document.querySelector('.tab-content > .tab-pane.active');
  return Array.from(pane.querySelectorAll('.dash-graph')).map(div => {
    const gd = div.querySelector('.js-plotly-plot');
    const layout = (gd && gd.layout) || {};
    return {id: div.id, loading: div.getAttribute('data-dash-is-loading'),
            title: (layout.title || {}).text || '',
            drawn: gd ? gd.querySelectorAll('.scatterlayer g.trace, .barlayer g.trace, ' +
                   '.heatmaplayer g.hm, .sankey-link').length : 0};
  });
}"""


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _done(db, run_id: int, kind: str, epoch: int) -> bool:
    found = analyses.get(db, run_id, kind, epoch)
    assert found is None or found.state != "failed", found.error
    return found is not None and found.state == "done"


def _pane_drawn(page, timeout_s: float = 30) -> list[dict]:
    graphs = []
    for _ in range(int(timeout_s * 4)):
        graphs = page.evaluate(DESCRIBE_PANE)
        if all(g["loading"] in (None, "false") and g["drawn"] > 0 for g in graphs):
            return graphs
        page.wait_for_timeout(250)
    return graphs


def test_signatures_page_of_a_finished_digits_run(page, server, web_db):
    env = {
        **os.environ,
        "NETLENS_HOME": str(server.home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
    }
    submitted = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "submit",
            "--preset",
            "digits-1-7",
            "--epochs",
            str(EPOCHS),
            "--name",
            "browser digits",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=server.home,
    )
    assert submitted.returncode == 0, submitted.stderr
    run_id = int(submitted.stdout.strip().splitlines()[-1])
    _wait(lambda: runs.get_run(web_db, run_id).status == "succeeded", 180, "training")
    _wait(
        lambda: (
            _done(web_db, run_id, "epoch", EPOCHS) and _done(web_db, run_id, "timeline", EPOCHS)
        ),
        240,
        "the worker's analyses",
    )

    page.goto(f"{server.url}/runs/{run_id}")
    page.get_by_role("button", name="Signatures: clusters, flow, unseen classes →").click()
    page.wait_for_url(f"**/runs/{run_id}/signatures")
    page.wait_for_function(
        f"document.querySelector('#sig-epoch-label')?.innerText === 'epoch {EPOCHS}'"
    )
    for i, label in enumerate(TABS):
        page.get_by_role("tab", name=label, exact=True).click()
        graphs = _pane_drawn(page)
        assert graphs and all(g["drawn"] > 0 for g in graphs), (label, graphs)
        page.wait_for_timeout(800)  # let the Sankey finish its transition before the picture
        shot(page, f"signatures-{i}-{label.lower().replace(' ', '-')}")
    # UMAP is not in the worker's default analysis: choosing it asks a worker for it, the
    # page says so and shows its progress while it runs, then draws it
    assert analyses.get(web_db, run_id, "umap", EPOCHS) is None
    page.get_by_role("tab", name="Projections", exact=True).click()
    page.get_by_label("UMAP").check()
    page.wait_for_function(
        "document.querySelector('#fig-projection .js-plotly-plot')?.layout?.annotations?.[0]"
        f"?.text?.startsWith('UMAP of epoch {EPOCHS}')"
    )
    page.wait_for_function(
        "document.querySelector('#sig-projection-note')?.innerText"
        f".match(/(queued: UMAP|UMAP of epoch {EPOCHS}: on its way)/)"
    )
    requested = analyses.get(web_db, run_id, "umap", EPOCHS)
    assert requested is not None and requested.state in ("queued", "running", "done")
    shot(page, "signatures-umap-requested")
    # its progress, as the polling shows it (a picture when the worker is slow enough to be
    # caught at it; whether it is depends on the machine, so it is not asserted)
    for _ in range(80):
        line = page.locator("#sig-progress")
        if line.count() and f"UMAP of epoch {EPOCHS}: computing" in line.inner_text():
            shot(page, "signatures-umap-progress")
            break
        if _done(web_db, run_id, "umap", EPOCHS):
            break
        page.wait_for_timeout(250)
    _wait(lambda: _done(web_db, run_id, "umap", EPOCHS), 180, "the UMAP of the last epoch")
    assert analyses.get(web_db, run_id, "tsne", EPOCHS) is None  # only what was asked for
    page.get_by_label("correct / wrong").check()
    page.wait_for_function(
        "document.querySelector('#fig-projection .gtitle')?.textContent.includes('UMAP at epoch')"
        " && document.querySelector('#fig-projection .legend')?.textContent.includes('correct')"
    )
    legend = page.locator("#fig-projection .legend").text_content()
    assert "wrong" in legend or "correct" in legend
    assert "unseen class" in legend and "(unseen)" not in legend
    # Hovering a point shows that input beside the graph; clicking it makes it input A.
    point = page.locator("#fig-projection .scatterlayer .point").nth(3).bounding_box()
    page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    page.wait_for_function(
        "document.querySelector('#sig-hover-card')?.innerText.includes('probe input #')"
    )
    assert "data:image/png" in page.locator("#sig-hover-card img").get_attribute("src")
    shown = page.locator("#sig-hover-card h6").inner_text().split("#")[1]
    page.mouse.click(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    page.wait_for_function(f"document.querySelector('#sig-input-a')?.value === '{shown}'")
    # An earlier epoch has no analysis: the page says which one it shows, and queues its own.
    thumb = page.locator("#sig-epoch [role=slider]")
    thumb.focus()
    for _ in range(EPOCHS - 5):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "document.querySelector('#sig-epoch-label')?.innerText === "
        f"'epoch 5 · showing the analysis of epoch {EPOCHS}'"
    )
    page.get_by_role("button", name="Analyse this epoch").click()
    page.wait_for_function(
        "document.querySelector('#sig-analyze-feedback')?.innerText.includes('queued')"
    )
    _wait(lambda: _done(web_db, run_id, "epoch", 5), 120, "the analysis of epoch 5")
    page.wait_for_function(
        "document.querySelector('#sig-epoch-label')?.innerText === 'epoch 5'", timeout=15_000
    )
    page.get_by_role("tab", name="Flow", exact=True).click()
    # The pane still holds the epoch-20 flow drawn earlier until its callback answers.
    page.wait_for_function(
        "document.querySelector('#fig-sankey .js-plotly-plot')?.layout"
        "?.title?.text?.includes('at epoch 5 ')"
    )
    assert all(g["drawn"] > 0 for g in _pane_drawn(page))
    page.wait_for_timeout(800)
    shot(page, "signatures-epoch-5-flow")
