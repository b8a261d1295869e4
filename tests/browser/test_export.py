"""The run page's Export (issue 13 point 7): a plain link to GET /runs/<id>/export.npz that the
browser downloads as a file (no callback carries it, base64 in JSON as before), a valid .npz
of the run."""

from __future__ import annotations

import numpy as np
import pytest

from netlens.storage import runs
from netlens.worker.runner import run_experiment
from tests.conftest import small_spec

pytestmark = pytest.mark.browser


def test_export_downloads_the_runs_npz(page, server, web_db, tmp_path):
    run_id = runs.create_run(
        web_db,
        small_spec(
            name="export me", dataset={"name": "xor"}, training={"epochs": 6, "batch_size": 4}
        ),
    )
    assert run_experiment(web_db, run_id) == "succeeded"
    page.goto(f"{server.url}/runs/{run_id}")
    link = page.locator("#run-export")
    assert link.get_attribute("href") == f"/runs/{run_id}/export.npz"
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"run{run_id}.npz"
    saved = tmp_path / "run.npz"
    download.value.save_as(saved)
    with np.load(saved, allow_pickle=False) as npz:
        assert list(npz["epochs"]) == list(range(7)) and "params/hidden_1/kernel" in npz.files
    assert not list(server.home.glob("**/netlens-export-*"))
