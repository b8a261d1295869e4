"""A client run crafted by hand over the REST API (not by the Python API), valid by
webapp/run_meta.py's rules: its run page opens and every tab draws or explains, with no 5xx
and no browser error (the `page` fixture fails the test on either)."""

from __future__ import annotations

import json

import pytest
import requests

from netlens.storage.wire import pack_arrays
from tests.browser.conftest import shot
from tests.browser.test_recorder_pages import TABS, _problems, _wait_pane
from tests.integration.test_client_run_meta import crafted_flax_run

pytestmark = pytest.mark.browser


def test_a_crafted_valid_client_run_opens_on_every_tab(page, server):
    meta, arrays, chunk = crafted_flax_run(epochs=3)
    files = {"meta": ("run.json", json.dumps(meta)), "arrays": ("a.npz", pack_arrays(arrays))}
    created = requests.post(f"{server.url}/api/v1/client-runs", files=files, timeout=30)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    octet = {"Content-Type": "application/octet-stream"}
    api = f"{server.url}/api/v1/runs/{run_id}"
    sent = requests.post(f"{api}/epochs", data=chunk, headers=octet, timeout=30)
    assert sent.status_code == 200 and sent.json()["written"] == 3, sent.text
    done = requests.post(f"{api}/finish", json={"status": "succeeded"}, timeout=30)
    assert done.status_code == 200, done.text
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_function(
        "document.querySelector('#run-epoch-label')?.innerText.trim() === 'epoch 3'"
    )
    failures = []
    for tab_id, label in TABS:
        page.get_by_role("tab", name=label, exact=True).click()
        failures += _problems(label, _wait_pane(page, False), False)
        shot(page, f"crafted-run-{tab_id}")
    assert not failures, "\n".join(failures)
    page.goto(f"{server.url}/runs/{run_id}/signatures")  # class names, probe inputs
    page.wait_for_load_state("networkidle")
    shot(page, "crafted-run-signatures")
    assert "Traceback" not in server.log_text()
