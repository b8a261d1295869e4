"""benchmarks/bench_api.py --overhead runs end to end at a tiny size (SQLite, 20 runs, one
paging round, two tensor reads): the benchmark itself checks that the API's pages and
tensor are what storage reads in-process. Its figures are not judged here (a timed test
would fail on a busy machine); docs/performance.md has them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_overhead_benchmark_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "api_overhead.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_api.py"),
            "--overhead",
            "--no-postgres",
            "--runs",
            "20",
            "--rounds",
            "1",
            "--pairs",
            "2",
            "--results",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())["sqlite"]
    assert figures["runs_seeded"] == 21 and figures["paging"]["pages"] == 1
    for part in ("paging", "tensor"):
        assert figures[part]["ratio"] > 0 and len(figures[part]["api_times_ms"]) >= 1
    assert figures["tensor"]["not_modified_ms"] > 0
