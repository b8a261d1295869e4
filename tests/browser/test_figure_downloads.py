"""Every figure as a file from the page, at publication size: the modebar's PNG and SVG
buttons (webapp/assets/netlens-save.js over each dcc.Graph's config) on the run page, the
signatures page and the compare page, and the parallel coordinates' own PNG and SVG buttons
on /explore (webapp/assets/netlens-parcoords.js). PNG: 1200 x 700 at scale 2; SVG: 1200 x 700."""

from __future__ import annotations

import re

import pytest

from netlens.storage import runs
from tests.browser.conftest import ARTIFACTS, shot
from tests.conftest import small_spec
from tests.unit.test_parcoords import add_varied_runs

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"
PNG_BUTTON = '.modebar-btn[data-title="Download PNG (publication size)"]'
SVG_BUTTON = '.modebar-btn[data-title="Download SVG (publication size)"]'
DRAWN = "id => !!document.querySelector(`#${id} .main-svg`)"


@pytest.fixture(scope="module")
def analysed_run(web_db) -> int:
    """An xor run trained in this process, analysed at its last epoch (epoch and timeline:
    the signatures page draws them)."""
    from netlens.worker.analyze import run_analysis
    from netlens.worker.runner import run_experiment

    run_id = runs.create_run(
        web_db,
        small_spec(
            name="downloads",
            dataset={"name": "xor"},
            optimizer={"learning_rate": 0.1},
            training={"epochs": 30, "batch_size": 4, "seed": 0},
            model={"hidden": [{"units": 3, "activation": "tanh"}]},
        ),
    )
    run_experiment(web_db, run_id)
    for kind in ("epoch", "timeline"):
        run_analysis(web_db, run_id, kind, 30)
    return run_id


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG, data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _svg_size(text: str) -> tuple[int, int]:
    head = re.search(r"<svg[^>]*>", text).group(0)
    width = re.search(r'\swidth="(\d+)', head).group(1)
    height = re.search(r'\sheight="(\d+)', head).group(1)
    return int(width), int(height)


def _download(page, selector: str):
    """(file name, bytes) of what clicking `selector` downloads; a copy goes to
    test-artifacts/downloads/ to look at."""
    with page.expect_download() as found:
        page.locator(selector).first.click()
    download = found.value
    ARTIFACTS.joinpath("downloads").mkdir(parents=True, exist_ok=True)
    download.save_as(ARTIFACTS / "downloads" / download.suggested_filename)
    return download.suggested_filename, open(download.path(), "rb").read()


def _graph_files(page, graph_id: str) -> tuple[bytes, str]:
    """The PNG and the SVG that graph `graph_id`'s modebar buttons save."""
    page.wait_for_function(DRAWN, arg=graph_id)
    page.locator(f"#{graph_id} .main-svg").first.hover()
    name, png = _download(page, f"#{graph_id} {PNG_BUTTON}")
    assert name.endswith(".png") and _png_size(png) == (2400, 1400), (graph_id, name)
    page.locator(f"#{graph_id} .main-svg").first.hover()
    name, svg = _download(page, f"#{graph_id} {SVG_BUTTON}")
    text = svg.decode()
    assert name.endswith(".svg") and _svg_size(text) == (1200, 700), (graph_id, name)
    assert 'class="gtitle"' in text  # a title, and axes (below) in the file
    return png, text


def test_run_page_graphs_save_png_and_svg_at_publication_size(page, server, analysed_run):
    page.goto(f"{server.url}/runs/{analysed_run}")
    png, svg = _graph_files(page, "fig-loss")
    assert "Loss" in svg and 'class="xtitle"' in svg and 'class="ytitle"' in svg
    # the camera of plotly itself is replaced, not doubled
    page.locator("#fig-loss .main-svg").first.hover()
    assert page.locator('#fig-loss .modebar-btn[data-title="Download plot as a png"]').count() == 0
    shot(page, "figure-downloads-run-modebar")
    # a figure drawn without a title gets one in the file (the graph's name), not on the page
    page.evaluate(
        "() => Plotly.relayout(document.querySelector('#fig-loss .js-plotly-plot'),"
        " {'title.text': ''})"
    )
    _, untitled = _graph_files(page, "fig-loss")
    assert re.search(r'class="gtitle"[^>]*>Loss<', untitled)


def test_signatures_and_compare_graphs_save_png_and_svg(page, server, analysed_run, three_runs):
    page.goto(f"{server.url}/runs/{analysed_run}/signatures")
    page.wait_for_function(
        "document.querySelector('#fig-sep-layers .gtitle')?.textContent.includes('epoch 30')"
    )
    _, svg = _graph_files(page, "fig-sep-layers")
    assert "separability by layer at epoch 30" in svg
    page.get_by_role("tab", name="Projections", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#fig-projection .gtitle')?.textContent.includes('PCA at')"
    )
    _, svg = _graph_files(page, "fig-projection")
    assert "PCA at epoch 30" in svg
    shot(page, "figure-downloads-signatures")
    page.goto(f"{server.url}/compare?runs={three_runs[0]},{three_runs[1]}")
    _, svg = _graph_files(page, "compare-loss")
    # the page's legend is HTML (the run key); the file has plotly's
    assert 'class="legend"' not in page.locator("#compare-loss").inner_html()
    assert 'class="legend"' in svg and f"#{three_runs[1]} train" in svg


def test_parallel_coordinates_save_png_and_svg_with_styles_inlined(page, server, web_db):
    add_varied_runs(web_db, 10, tag="downloads")
    page.goto(f"{server.url}/explore?tag=downloads")
    page.wait_for_function("document.querySelector('.overview-graph')?.dataset.drawn === '10'")
    name, png = _download(page, '.nl-pc-download[data-format="png"]')
    assert name == "runs-parallel-coordinates.png" and _png_size(png) == (2400, 1400)
    name, svg = _download(page, '.nl-pc-download[data-format="svg"]')
    text = svg.decode()
    assert name.endswith(".svg") and _svg_size(text) == (1200, 700)
    assert text.count("<path") >= 10 and "class=" not in text  # lines; styles, not classes
    assert "stroke-width:" in text and "font-size:" in text
    heading = page.locator(".overview-caption strong").inner_text()
    assert heading and heading in text
    shot(page, "figure-downloads-explore")
    # /explore ships no plotly.js: a graph page reached by a link (no reload) loads it, and
    # its graphs have the buttons
    assert page.evaluate("() => typeof window.Plotly") == "undefined"
    page.evaluate("() => { window.__samePage = true; }")
    page.locator(".overview-selection a[href^='/runs/']").first.click()
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    _graph_files(page, "fig-loss")
    assert page.evaluate("() => window.__samePage") is True
