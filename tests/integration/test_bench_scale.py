"""benchmarks/bench_scale.py's seeding and measuring run end to end at a tiny size (20 runs,
1 in 5 with full tensors) on the test PostgreSQL, so that the benchmark cannot rot. Its
timings are not judged here (a timed test would fail on a busy machine): that every figure
is there, and that the seeded rows are what the benchmark says it seeds."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_scale  # noqa: E402

FIGURES = (
    "runs table: first block (newest first, + count)",
    "runs table: sorted by val accuracy, name filter",
    "runs table: block at offset 5% (sorted by train loss)",
    "runs table: filter expression (where=)",
    "REST GET /api/v1/runs?where=...",
    "REST GET /api/v1/runs (first page)",
    "run page: layout + first reads",
    "compare 8 runs: layout (all curves)",
    "REST GET /api/v1/compare/metrics (8 runs)",
    "admin page: layout (all cards)",
    "database size (MB)",
)


def test_the_scale_benchmark_seeds_and_measures_a_tiny_database(pg_db):
    seeded = bench_scale.seed(pg_db, 20, full_every=5)
    rows = seeded["rows"]
    assert rows["runs"] == rows["jobs"] == 20
    assert seeded["full_tensor_runs"] == 4 == len(seeded["full_run_ids"])
    assert rows["run_tensors"] == rows["run_tensors"] // 4 * 4 > 0  # the same rows per full run
    assert rows["run_arrays"] == 4 * 2
    # one run_epochs row per recorded epoch of every run (queued runs have none)
    from sqlalchemy import text

    with pg_db.session() as s:
        recorded = s.scalar(text("SELECT sum(epochs_recorded) FROM runs"))
    assert rows["run_epochs"] == recorded > 20 * 30 * 0.5

    figures = bench_scale.measure(pg_db, seeded, repeats=1)
    assert set(figures) == set(FIGURES)
    assert all(value > 0 for value in figures.values())
