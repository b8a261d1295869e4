"""Uploading a CSV through the new-experiment page (issue 7): the file goes to the server as the
body of POST /uploads (netlens-upload.js, issue 13: not in a callback), is stored under a
generated name in <data dir>/uploads/, its id fills dataset.upload, and the run submitted
from the form trains on the stored copy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netlens.storage import runs
from netlens.storage.uploads import list_uploads
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

RUN_URL = re.compile(r".*/runs/(\d+)$")
ROWS = "".join(
    f"{x},{y},{'in' if x * x + y * y < 50 else 'out'}\n" for x in range(-8, 9) for y in range(-8, 9)
)
CSV = "x,y,where\n" + ROWS


def _choose_csv(page, server):
    page.goto(server.url + "/new")
    page.wait_for_function("document.querySelector('#f-epochs')?.value === '2000'")
    page.select_option("#f-dataset", "csv")
    page.wait_for_selector("#new-upload-box", state="visible")


def test_a_bad_file_is_refused_in_place(page, server, web_db, tmp_path, request):
    _choose_csv(page, server)
    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"\xff\xfe\x00binary")
    page.set_input_files("#new-upload input[type=file]", str(bad))
    page.wait_for_function(
        "document.querySelector('#new-upload-status')?.innerText.includes('file: not UTF-8 text')"
    )
    assert page.input_value("#f-upload") == ""
    assert "text-danger" in page.get_attribute("#new-upload-status", "class")
    assert not any(u.original_name == "binary.csv" for u in list_uploads(web_db))
    # the refusal is a 400, which Chromium logs as a failed resource: expected, and only it
    problems = request.node.browser_problems
    refusal = [p for p in problems if "status of 400" in p and "/uploads?name=binary.csv" in p]
    assert len(refusal) == 1, problems
    problems.remove(refusal[0])


def test_upload_a_csv_and_train_on_it(page, server, web_db, tmp_path):
    _choose_csv(page, server)
    source = tmp_path / "circle points.csv"
    source.write_text(CSV)
    page.set_input_files("#new-upload input[type=file]", str(source))
    page.wait_for_function(
        "document.querySelector('#new-upload-status')?.innerText"
        ".includes('uploaded circle points.csv')"
    )
    upload = next(u for u in list_uploads(web_db) if u.original_name == "circle points.csv")
    assert f"id {upload.id}" in page.inner_text("#new-upload-status")
    page.wait_for_function(f"document.querySelector('#f-upload')?.value === '{upload.id}'")
    stored = server.home / "data" / "uploads" / upload.stored_name
    assert stored.read_text() == CSV and upload.size == len(CSV)

    page.fill("#f-name", "browser upload csv")
    page.press("#f-name", "Tab")
    page.fill("#f-epochs", "30")
    page.press("#f-epochs", "Tab")
    page.wait_for_function("document.querySelector('#new-size')?.innerText.includes('31 recorded')")
    shot(page, "new-upload")
    page.click("#new-submit")
    page.wait_for_url(RUN_URL, timeout=20_000)
    run_id = int(RUN_URL.match(page.url).group(1))
    info = runs.get_run(web_db, run_id)
    assert info.spec["dataset"]["upload"] == upload.id
    assert Path(info.spec["dataset"]["path"]) == stored.resolve()
    page.wait_for_function(
        "['succeeded', 'failed', 'diverged', 'cancelled'].includes("
        "document.querySelector('#run-header .badge')?.innerText.trim())",
        timeout=90_000,
    )
    info = runs.get_run(web_db, run_id)
    assert info.status == "succeeded", info.error
    assert info.data_sha256 == upload.sha256
