"""The runs page's filter box (docs/filter.md): typing an expression narrows the grid on the
server, the URL carries it (no reload; back restores the previous one; a link opens on it),
a bad one shows its error naming the token, and Download CSV saves the runs it matches."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from netlens.storage import runs
from netlens.webapp.csv_export import RUN_COLUMNS
from tests.browser.conftest import shot
from tests.browser.test_pages import _wait_rows
from tests.conftest import small_spec

pytestmark = pytest.mark.browser


def _where(page) -> str | None:
    return parse_qs(urlsplit(page.url).query).get("where", [None])[0]


def _wait_where(page, expected: str) -> None:
    for _ in range(100):
        if _where(page) == expected:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the URL never said where={expected!r}: {page.url}")


def _apply(page, text: str) -> None:
    box = page.locator("#runs-where")
    box.fill(text)
    box.press("Enter")


def test_the_filter_narrows_the_grid_lives_in_the_url_and_downloads_csv(page, server, web_db):
    made = {}
    for name, rate, tags in (
        ("bf alpha", 0.1, ["bfilter"]),
        ("bf beta", 0.001, ["bfilter"]),
        ("bf gamma", 0.001, []),
    ):
        spec = small_spec(name=name, tags=tags, optimizer={"learning_rate": rate})
        made[name] = runs.create_run(web_db, spec, status="cancelled")

    page.goto(server.url + "/runs")
    page.wait_for_selector("#runs-grid .ag-row")
    page.evaluate("window.__netlensNoReload = true")

    _apply(page, "tag:bfilter")
    _wait_rows(page, ["bf beta", "bf alpha"])  # newest first
    _wait_where(page, "tag:bfilter")

    narrower = "tag:bfilter and optimizer.learning_rate < 0.01"
    _apply(page, narrower)
    _wait_rows(page, ["bf beta"])
    _wait_where(page, narrower)
    assert page.evaluate("window.__netlensNoReload === true")  # no reload: the same page
    assert page.inner_text("#runs-where-error") == ""
    shot(page, "runs-filter")

    with page.expect_download() as caught:
        page.click("#runs-csv")
    download = caught.value
    assert download.suggested_filename == "runs.csv"
    header, *rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert header == list(RUN_COLUMNS)
    assert [(int(r[0]), r[1]) for r in rows] == [(made["bf beta"], "bf beta")]

    # a bad expression: its error under the box, naming the token; grid and URL unchanged
    _apply(page, "tag:bfilter and val_acc > 0.9")
    page.wait_for_function(
        "document.getElementById('runs-where-error')?.innerText.includes('val_acc')"
    )
    error = page.inner_text("#runs-where-error")
    assert 'unknown field "val_acc" at column 17' in error, error
    assert page.get_attribute("#runs-where", "class").count("is-invalid") == 1
    shot(page, "runs-filter-error")
    _wait_rows(page, ["bf beta"])
    assert _where(page) == narrower

    # back: the previous expression, in the box and the grid
    page.go_back()
    _wait_where(page, "tag:bfilter")
    page.wait_for_function("document.getElementById('runs-where')?.value === 'tag:bfilter'")
    _wait_rows(page, ["bf beta", "bf alpha"])

    # a link opens on its filter
    page.goto(server.url + "/runs?where=" + "tag%3Abfilter+and+not+lr+%3E+0.01")
    page.wait_for_function(
        "document.getElementById('runs-where')?.value === 'tag:bfilter and not lr > 0.01'"
    )
    _wait_rows(page, ["bf beta"])

    # values an attacker types: quotes, SQL keywords and comments are a value like any other
    # (bound parameters): they match nothing or what they say, and the runs table is intact
    for attack, rows in (
        ("""tag:bfilter and name = "bf beta' OR '1'='1" """, []),
        (
            """tag:bfilter and (name ~ "'; DROP TABLE runs; --" or name = "bf alpha")""",
            ["bf alpha"],
        ),
        ("""tag:bfilter and name ~ "beta\\" or 1=1 --" """, []),
    ):
        _apply(page, attack)
        _wait_where(page, attack.strip())  # accepted as a valid expression: in the URL
        _wait_rows(page, rows)
        assert page.inner_text("#runs-where-error") == "", attack
    _apply(page, "tag:bfilter")
    _wait_rows(page, ["bf beta", "bf alpha"])
    assert len(runs.list_runs(web_db)) >= 3
