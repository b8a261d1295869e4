"""Storage benchmark (issue 19 part 1): bytes per recorded epoch before (raw) and after the
lossless codec (storage/arrays.py: zstd where it pays), and the codec's CPU cost per epoch;
then the same with the optional lossy float16 signatures, and their largest relative error.

Runs: the core MLP (784-128-64-10, 1,000 probe inputs, synthetic data as in bench_core.py),
the Playground preset (spiral 2-8-8-1), two-regions (2-100-2-1) and digits-1-7, each trained
for a few epochs into a fresh SQLite database by the real Trainer and writer.

Usage: .venv/bin/python benchmarks/bench_storage.py [--quick]
Prints a table and writes benchmarks/results/storage.json (--quick: storage_quick.json).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from bench_core import (  # noqa: E402
    machine,
    mlp_spec,
    preset_spec,
    static_arrays,
    synthetic_dataset,
)
from harness import report, sqlite_db  # noqa: E402

from netlens.storage import records, runs  # noqa: E402
from netlens.storage.arrays import encode, pack  # noqa: E402
from netlens.worker.datasets import load_dataset  # noqa: E402
from netlens.worker.recorder import Recorder  # noqa: E402
from netlens.worker.train import Trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"


def measure(name: str, trainer: Trainer) -> dict:
    """Train, write every chunk, and compare the run's logical and stored tensor bytes; then
    write the same chunks again with the signatures as float16 (recording.signature_dtype)."""
    chunks: list = []
    trainer.run(chunks.append)
    used, epochs, _ = _write(trainer, chunks, "float32")
    half, _, error = _write(trainer, chunks, "float16")
    # the codec's own cost: pack every tensor of every chunk once more, timed
    blobs = [encode(np.asarray(t))[2] for c in chunks for t in c.tensors.values()]
    start = time.perf_counter()
    for blob in blobs:
        pack(blob)
    pack_ms = (time.perf_counter() - start) * 1e3 / max(1, epochs)
    return {
        "run": name,
        "epochs": epochs,
        "raw_per_epoch": used.raw_bytes / epochs,
        "stored_per_epoch": used.stored_bytes / epochs,
        "ratio": used.ratio,
        "packed_rows": used.packed_rows,
        "rows": used.rows,
        "pack_ms_per_epoch": pack_ms,
        "stored_per_epoch_f16": half.stored_bytes / epochs,
        "f16_max_relative_error": error,
    }


def _write(trainer: Trainer, chunks: list, signature_dtype: str):
    """(footprint, epochs, largest relative error of a stored signature) of the chunks
    written to a fresh SQLite database by the worker's writer."""
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite_db(folder)
        run_id = runs.create_run(db, trainer.spec)
        records.write_arrays(db, run_id, static_arrays(trainer))
        # the worker's writer: merges tiny epochs into rows
        recorder = Recorder(db, run_id, signature_dtype=signature_dtype)
        for chunk in chunks:
            recorder.put(chunk)
        recorder.close()
        used = records.footprint(db, run_id)
        epochs = runs.get_run(db, run_id).epochs_recorded
        error = 0.0
        for name in [n for n in chunks[0].tensors if n.startswith("signatures/")]:
            exact = np.concatenate([np.asarray(c.tensors[name]) for c in chunks])
            stored = records.read_tensor(db, run_id, name)[1]
            scale = np.maximum(np.abs(exact), np.finfo(np.float16).tiny)
            error = max(error, float(np.max(np.abs(stored - exact) / scale)))
        db.dispose()
    return used, epochs, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (a smoke test)")
    args = parser.parse_args()
    n = 2 if args.quick else 1
    cases = [
        ("MLP 784-128-64-10", lambda: Trainer(mlp_spec(6 // n, 6_000), synthetic_dataset(6_000))),
        ("Playground (spiral)", lambda: _preset("spiral", 100 // n)),
        ("two-regions", lambda: _preset("two-regions", 60 // n)),
        ("digits-1-7", lambda: _preset("digits-1-7", 20 // n)),
    ]
    rows = [measure(name, make()) for name, make in cases]
    table = [
        (
            f"{r['run']}: bytes per epoch raw -> stored ({r['epochs']} epochs)",
            f"{r['raw_per_epoch'] / 1e3:.1f} kB -> {r['stored_per_epoch'] / 1e3:.1f} kB "
            f"({r['ratio']:.2f}x; codec {r['pack_ms_per_epoch']:.2f} ms/epoch)",
            "lossless, smaller",
            r["stored_per_epoch"] < r["raw_per_epoch"],
        )
        for r in rows
    ]
    table += [
        (
            f"{r['run']}: stored per epoch with float16 signatures",
            f"{r['stored_per_epoch_f16'] / 1e3:.1f} kB "
            f"({r['raw_per_epoch'] / r['stored_per_epoch_f16']:.2f}x of raw, "
            f"{r['stored_per_epoch'] / r['stored_per_epoch_f16']:.2f}x of lossless; largest "
            f"relative error {r['f16_max_relative_error']:.2e})",
            "relative error <= 2**-11",
            r["f16_max_relative_error"] <= 2.0**-11,
        )
        for r in rows
    ]
    median = statistics.median(r["ratio"] for r in rows)
    table.append(("median compression ratio", f"{median:.2f}x", "", None))
    out = RESULTS.with_name("storage_quick.json") if args.quick else RESULTS
    report({"machine": machine(), "runs": rows}, table, out)


def _preset(name: str, epochs: int) -> Trainer:
    spec = preset_spec(name, epochs)
    return Trainer(spec, load_dataset(spec))


if __name__ == "__main__":
    main()
