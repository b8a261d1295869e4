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


def test_metrics_csv_downloads_the_runs_metrics(page, server, web_db, tmp_path):
    """The run page's Metrics CSV: a plain link to GET /runs/<id>/metrics.csv, one row per
    recorded epoch (docs/filter.md)."""
    import csv

    from netlens.storage import records
    from tests.browser.conftest import shot

    run_id = runs.create_run(
        web_db,
        small_spec(
            name="metrics csv", dataset={"name": "xor"}, training={"epochs": 4, "batch_size": 4}
        ),
    )
    assert run_experiment(web_db, run_id) == "succeeded"
    page.goto(f"{server.url}/runs/{run_id}")
    link = page.locator("#run-metrics-csv")
    assert link.get_attribute("href") == f"/runs/{run_id}/metrics.csv"
    page.wait_for_selector("#fig-loss .js-plotly-plot", state="attached")
    shot(page, "run-metrics-csv")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"run{run_id}-metrics.csv"
    saved = tmp_path / "metrics.csv"
    download.value.save_as(saved)
    header, *rows = list(csv.reader(saved.open(encoding="utf-8")))
    epochs, metrics = records.read_metrics(web_db, run_id)
    assert header == ["epoch", *metrics]
    assert [int(r[0]) for r in rows] == epochs.tolist()
    column = header.index("train_loss")
    assert [float(r[column]) for r in rows] == pytest.approx(metrics["train_loss"].tolist())
