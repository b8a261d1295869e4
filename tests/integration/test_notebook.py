"""examples/tour.ipynb executed end to end, as a reader runs it (issue 15): every cell by a real
Jupyter kernel of this environment (nbclient + ipykernel), in a NETLENS_HOME of its own so it
never touches the user's database. The notebook is stored without outputs; what its cells
print is checked against what the API reads back from that database afterwards."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")  # the test extra installs them: never skipped on CI
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "tour.ipynb"
KERNEL = "netlens-tour-test"


def _kernelspec(root: Path) -> Path:
    """A kernel spec that starts this very interpreter (the project's .venv), whatever kernels
    the machine has registered under the name python3."""
    folder = root / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "NetLens test",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    return root


def _text(cell) -> str:
    """What a cell printed or displayed as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_the_stored_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.fixture
def executed(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("NETLENS_HOME", str(home))
    for name in ("NETLENS_DATABASE_URL", "NETLENS_SERVER", "NETLENS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on a failure
    return nb, work, home


def test_the_tour_notebook_runs_end_to_end(executed):
    nb, work, home = executed
    cells = {c.id: c for c in nb.cells}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell.id
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.id

    # what the cells showed is what the user's database now holds
    import netlens as nl

    assert (home / "netlens.db").exists()
    fitted = int(re.search(r"^run (\d+)$", _text(cells["fit"]), re.M).group(1))
    recorded = int(re.search(r"^run (\d+) modules", _text(cells["recorder"]), re.M).group(1))
    listed = nl.runs(tag="tour")
    assert sorted(listed["id"]) == sorted([fitted, recorded])
    run = nl.get(fitted)
    assert run.status == "succeeded" and run.spec.model.kind == "sequential"
    metrics = run.metrics()
    last_val = re.search(r"last val_accuracy (\S+)", _text(cells["fit"])).group(1)
    assert float(last_val) == pytest.approx(float(metrics["val_accuracy"].iloc[-1]), abs=5e-5)
    assert f"recorded epochs: {run.epochs}" in _text(cells["get"])

    kernel = run.tensor("params/hidden_1/kernel", epochs=slice(0, 6))
    assert f"shape {kernel.shape}" in _text(cells["tensor"])
    hidden = run.signatures("hidden_2")
    saturated = f"{np.mean(np.abs(hidden) > 0.95):.1%}"
    assert saturated in _text(cells["signatures"])

    own = nl.get(recorded)
    assert own.status == "succeeded" and own.spec.model.kind == "flax"
    assert own.layers and str([m["name"] for m in own.layers]) in _text(cells["recorder"])
    assert list(own.epochs) == list(range(11))

    # each figure cell displayed a Plotly figure
    for cell_id in ("metrics", "network", "boundary", "representation", "recorder-figure"):
        bundles = [o.get("data", {}) for o in cells[cell_id].outputs]
        assert any("application/vnd.plotly.v1+json" in b for b in bundles), cell_id

    # the export is the run's, and numpy alone recomputed its outputs
    with np.load(work / "tour-run.npz") as f:
        assert list(f["epochs"]) == list(run.epochs)
    assert "matches the recorded one: True" in _text(cells["export"])
