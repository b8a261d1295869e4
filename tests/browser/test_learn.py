"""The Learn section in a real browser against a real `netlens serve` (queue + worker): a new user
does lesson 1 by clicking only (a screenshot per step, no console error), and every lesson opens,
trains its first run and draws its views with computed statements."""

from __future__ import annotations

import re

import pytest

from netlens.webapp.learn.lessons import LESSONS
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT_MS = 90_000  # a first run compiles its network (seconds; more on a busy machine)


def facts(page, key: str) -> list[str]:
    return page.locator(f".learn-facts-{key} li").all_inner_texts()


def wait_facts(page, key: str, contains: str = "epoch") -> list[str]:
    page.wait_for_function(
        """([key, word]) => Array.from(document.querySelectorAll('.learn-facts-' + key + ' li'))
             .some(li => li.innerText.includes(word))""",
        arg=[key, contains],
        timeout=TRAIN_TIMEOUT_MS,
    )
    return facts(page, key)


def wait_finished(page) -> None:
    page.wait_for_function(
        "() => /succeeded|failed|cancelled/.test(document.getElementById('learn-status').innerText)"
        " && !/running|queued/.test(document.getElementById('learn-status').innerText)",
        timeout=TRAIN_TIMEOUT_MS,
    )


def wait_drawn(page) -> str:
    """Wait until the finished run is what the page draws: the status (one callback) says
    finished, then the body (another callback, a moment later) shows the run's last epoch with
    no 'still training' note. The status's 'N/M' gives the last epoch. Returns the label."""
    wait_finished(page)
    last = re.search(r"#\d+ (\d+)/\d+", page.inner_text("#learn-status")).group(1)
    page.wait_for_function(
        """(want) => document.getElementById('learn-epoch-label').innerText === want
             && !document.querySelector('.learn-still-training')""",
        arg=f"epoch {last}",
        timeout=TRAIN_TIMEOUT_MS,
    )
    return f"epoch {last}"


def test_lesson_one_by_clicking_only(page, server):
    page.goto(server.url + "/learn")
    page.get_by_role("link", name="Learn", exact=True).wait_for()
    shot(page, "learn-1-index")
    page.click("#learn-open-xor")
    page.wait_for_url("**/learn/xor")
    page.locator("#learn-base-train").wait_for()
    shot(page, "learn-2-lesson-opened")

    page.click("#learn-base-train")
    single = wait_facts(page, "baseline", "never gets all 4")
    shot(page, "learn-3-single-neuron")
    assert any("at best" in f for f in single)

    page.click("#learn-train")
    wait_drawn(page)
    wait_facts(page, "lines", "side of its line")
    wait_facts(page, "curves", "falls from")
    first_run = page.inner_text("#learn-status")
    curves = facts(page, "curves")
    shot(page, "learn-4-trained")
    assert any("falls from" in f for f in curves), curves
    assert page.locator("#learn-neuron-maps-slot a").get_attribute("href").endswith("tab=neurons")
    # the per-neuron maps: one heatmap per hidden unit of the 2-3-1 (3), drawn
    page.wait_for_function(
        "() => document.querySelectorAll('#learn-fig-neurons .heatmaplayer .hm').length >= 3"
    )
    assert page.locator("#learn-fig-outputs .scatterlayer g.trace").count() > 0
    shot(page, "learn-4-trained")

    label = page.inner_text("#learn-epoch-label")
    box = page.locator("#learn-epoch .rc-slider, #learn-epoch").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "(old) => document.getElementById('learn-epoch-label').innerText !== old", arg=label
    )
    assert page.inner_text("#learn-epoch-label") != label
    shot(page, "learn-5-slider-moved")

    page.select_option("#learn-c-learning-rate", "0.3")
    page.click("#learn-train")
    page.wait_for_function(
        "(old) => document.getElementById('learn-status').innerText !== old", arg=first_run
    )
    wait_drawn(page)
    wait_facts(page, "curves", "epoch")
    assert page.inner_text("#learn-status") != first_run
    shot(page, "learn-6-retrained-lr-0.3")


OTHER_LESSONS = ["deeper", "compare", "bottleneck", "signatures"]
assert {"xor", *OTHER_LESSONS} == set(LESSONS), "a lesson without a browser test"


@pytest.mark.parametrize("slug", OTHER_LESSONS)
def test_every_lesson_opens_trains_and_draws(page, server, slug):
    page.goto(f"{server.url}/learn/{slug}")
    page.click("#learn-train")
    label = wait_drawn(page)
    key = {"bottleneck": "bottleneck", "signatures": "unseen", "compare": "compare"}.get(
        slug, "curves"
    )
    found = wait_facts(page, key, "")
    assert found
    page.wait_for_function(
        "() => document.querySelectorAll('.learn-graph .js-plotly-plot').length > 0"
    )
    drawn = page.locator(".learn-graph .scatterlayer g.trace, .learn-graph .barlayer g.trace")
    assert drawn.count() > 0
    # the slider stands at the last epoch and the statements are the finished run's
    assert page.inner_text("#learn-epoch-label") == label
    shot(page, f"learn-lesson-{slug}")
