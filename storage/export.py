"""Export a run to one .npz file (format: docs/export-format.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from storage import records, runs
from storage.db import Database

EXPORT_FORMAT_VERSION = 1


def collect_run(db: Database, run_id: int) -> dict[str, np.ndarray]:
    """Every array of the export, keyed as in the file."""
    info = runs.get_run(db, run_id)
    epochs, metrics = records.read_metrics(db, run_id)
    out: dict[str, np.ndarray] = {
        "format_version": np.array(EXPORT_FORMAT_VERSION),
        "config": np.array(json.dumps(info.spec)),
        "run": np.array(json.dumps(_run_summary(info))),
        "layers": np.array([layer["name"] for layer in info.layers], dtype=str),
        "epochs": epochs,
    }
    out |= {f"metrics/{name}": values for name, values in metrics.items()}
    for name, array in records.read_arrays(db, run_id).items():
        out[name] = array
    for name in records.tensor_names(db, run_id):
        if name.startswith("lowres/"):  # a page-speed copy of series already exported
            continue
        tensor_epochs, values = records.read_tensor(db, run_id, name)
        out[name] = values
        if name == "grid/output":
            out["grid/epochs"] = tensor_epochs
        elif len(tensor_epochs) != len(epochs):
            raise RuntimeError(f"run {run_id}: {name} has {len(tensor_epochs)} epochs, the run "
                               f"{len(epochs)}; the record is inconsistent")
    return out


def _run_summary(info: runs.RunInfo) -> dict:
    keys = ("id", "name", "status", "error", "device", "data_sha256", "data_info",
            "epochs_total", "created_at", "started_at", "finished_at", "layers")
    full = info.to_dict()
    return {k: full[k] for k in keys}


def export_run(db: Database, run_id: int, path: str | Path, compress: bool = False) -> Path:
    path = Path(path)
    arrays = collect_run(db, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:  # np.savez on a path would append .npz to the .part name
        (np.savez_compressed if compress else np.savez)(f, **arrays)
    tmp.replace(path)
    return path
