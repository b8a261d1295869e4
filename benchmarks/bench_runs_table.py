"""Runs page with 10,000 runs: time of the SQL behind one grid block (sort, filter, page).

.venv/bin/python benchmarks/bench_runs_table.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from sqlalchemy import insert

from netlens.storage import runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.models import Run, utcnow
from netlens.storage.presets import get_preset, preset_names

REQUESTS = {
    "newest first": {"sort": None, "contains": {}},
    "sort by val accuracy": {"sort": [("final_val_accuracy", "desc")], "contains": {}},
    "filter name contains 'spir'": {"sort": None, "contains": {"name": "spir"}},
    "filter status + sort by loss": {
        "sort": [("final_train_loss", "asc")],
        "contains": {"status": "succ"},
    },
}


def fill(db: Database, n: int) -> None:
    """n run rows in one transaction (the rows the table lists; no epochs needed)."""
    specs = [get_preset(name) for name in preset_names()]
    rows = []
    for i in range(n):
        spec = specs[i % len(specs)]
        rows.append(
            {
                "name": f"{spec.name}-{i}",
                "status": ("succeeded", "failed", "running")[i % 3],
                "spec": spec.model_dump(mode="json"),
                "spec_version": 1,
                "dataset": spec.dataset.name,
                "architecture": spec.model.describe(),
                "optimizer": spec.optimizer.name,
                "epochs_total": spec.training.epochs,
                "epochs_recorded": 0,
                "last_epoch": spec.training.epochs,
                "recorded_bytes": 0,
                "final_train_loss": 1.0 / (i + 1),
                "final_val_accuracy": (i % 1000) / 1000,
                "layers": [],
                "tags": [],
                "notes": "",
                "data_info": {},
                "created_at": utcnow(),
            }
        )
    with db.session() as s:
        s.execute(insert(Run), rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    db = Database(f"sqlite:///{tempfile.mkdtemp()}/runs.db")
    upgrade(db)
    fill(db, args.runs)
    print(f"{args.runs} runs, SQLite; one 50-row block of the Runs grid (median of 20):")
    for label, request in REQUESTS.items():
        times = []
        for offset in range(0, 20 * 50, 50):
            started = time.perf_counter()
            items, total = runs.query_runs(db, offset=offset, limit=50, **request)
            times.append(time.perf_counter() - started)
        print(f"  {label:<32} {statistics.median(times) * 1000:6.1f} ms  ({total} match)")


if __name__ == "__main__":
    main()
