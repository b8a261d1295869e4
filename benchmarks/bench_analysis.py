"""Analysis benchmark: the default analysis of one epoch (worker.signatures.analyze_epoch:
clusters, flow, PCA projection, class signatures, separability, OOD report) for 1,000 probe
inputs x 3 hidden layers (128, 64, 32 units) of 784-pixel inputs; target: <= 15 s on this
machine (2 cores), warm and in a fresh process. Then the projections computed only when asked
for (worker.signatures.project_epoch): t-SNE, and UMAP first in a process (numba compile, or
its on-disk cache under NUMBA_CACHE_DIR) and warm.

Usage: .venv/bin/python benchmarks/bench_analysis.py [--quick] [--repeats N] [--compare-threads]
Prints a table and writes benchmarks/results/analysis.json (--quick: analysis_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import QUIET, measured, report  # noqa: E402

from netlens.worker import signatures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "analysis.json"
TARGET_S = 15.0  # the default analysis of one epoch, warm and in a fresh process
TRAINED, OOD = (1, 7), (3, 4)


# -- synthetic signatures ---------------------------------------------------------------------
def synthetic_epoch(
    n_probe: int = 1000, units: tuple[int, ...] = (128, 64, 32), features: int = 784, seed: int = 0
) -> dict:
    """One epoch of an MLP trained on 1 vs 7 with 3s and 4s as OOD probe inputs.

    Latent class centres (16-d) plus noise feed a chain of random ReLU layers (some units
    dead, as in real nets); the 4s' centre lies between the 1s' and the 7s', the 3s' apart.
    Output: sigmoid probability of 7 from a read-out along the 1 -> 7 direction."""
    rng = np.random.default_rng(seed)
    shares = (0.4, 0.4, 0.1, 0.1)
    labels = np.array(TRAINED + OOD)
    y = np.repeat(labels, [round(s * n_probe) for s in shares])[:n_probe]
    y = y[rng.permutation(len(y))]
    centres = {1: rng.normal(size=16), 7: rng.normal(size=16), 3: rng.normal(size=16)}
    centres[4] = 0.6 * centres[1] + 0.4 * centres[7] + 0.5 * rng.normal(size=16)
    z = 1.5 * np.stack([centres[int(v)] for v in y]) + rng.normal(size=(len(y), 16))
    layers, h = {}, z
    for i, width in enumerate(units, start=1):
        w = rng.normal(size=(h.shape[1], width)) / np.sqrt(h.shape[1])
        bias = rng.normal(0.0, 0.5, width) - np.where(rng.random(width) < 0.1, 100.0, 0.0)
        h = np.maximum(h @ w + bias, 0.0)
        layers[f"hidden_{i}"] = h.astype(np.float32)
    direction = centres[7] - centres[1]
    logit = (z - 0.75 * (centres[1] + centres[7])) @ direction / np.linalg.norm(direction)
    x = np.clip(z @ rng.normal(size=(16, features)) / 8 + 0.5, 0, 1).astype(np.float32)
    return {
        "layers": layers,
        "output": (1 / (1 + np.exp(-2 * logit)))[:, None].astype(np.float32),
        "y": y.astype(np.int64),
        "is_ood": np.isin(y, OOD),
        "classes": np.array(TRAINED, np.int64),
        "x": x,
    }


# -- timed sections ---------------------------------------------------------------------------
def run_analysis(epoch: dict, **kwargs) -> dict:
    """analyze_epoch once: wall seconds, the per-part timings, the describe() text."""
    start = time.perf_counter()
    result = signatures.analyze_epoch(
        epoch["layers"],
        epoch["output"],
        y=epoch["y"],
        is_ood=epoch["is_ood"],
        classes=epoch["classes"],
        x=epoch["x"],
        **kwargs,
    )
    wall = time.perf_counter() - start
    json.dumps(result.summary, allow_nan=False)  # what the worker will store must serialise
    return {
        "wall_s": wall,
        "timings": result.summary["timings"],
        "text": signatures.describe(result.summary),
    }


def run_projection(epoch: dict, method: str) -> dict:
    """project_epoch once (t-SNE or UMAP of every hidden layer, as asked for on the page)."""
    start = time.perf_counter()
    result = signatures.project_epoch(epoch["layers"], method)
    return {"wall_s": time.perf_counter() - start, "timings": result.summary["timings"]}


FRESH = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {bench!r})
from bench_analysis import synthetic_epoch
from netlens.worker import signatures
imported = time.perf_counter() - start
epoch = synthetic_epoch({n_probe})
start = time.perf_counter()
if {method!r} == "default":
    signatures.analyze_epoch(epoch["layers"], epoch["output"], y=epoch["y"],
        is_ood=epoch["is_ood"], classes=epoch["classes"], x=epoch["x"])
else:
    signatures.project_epoch(epoch["layers"], {method!r})
print(json.dumps({{"import_s": imported, "analysis_s": time.perf_counter() - start}}))
"""


def run_fresh(method: str, n_probe: int, numba_cache: Path | None = None) -> dict:
    """A fresh process: import worker.signatures, then the default analysis ("default") or
    one projection; the synthetic data are made in between (not timed). `numba_cache`: the
    NUMBA_CACHE_DIR it runs with (a worker's is under the NetLens home)."""
    env = dict(os.environ)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    code = FRESH.format(bench=str(Path(__file__).resolve().parent), n_probe=n_probe, method=method)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    )
    found = json.loads(done.stdout.splitlines()[-1])
    return found | {"wall_s": found["import_s"] + found["analysis_s"]}


def run_warm_up() -> dict:
    """What a worker pays at start: import worker.signatures and warm_up(), in a fresh process."""
    code = (
        "import time; start = time.perf_counter(); from netlens.worker import signatures; "
        "signatures.warm_up(); print(time.perf_counter() - start)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {"wall_s": float(done.stdout.split()[-1])}


def run_separability(epoch: dict, repeats: int) -> dict:
    """separability_by_layer for one epoch (input, 3 hidden layers, output): median ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        signatures.separability_by_layer(
            epoch["layers"],
            epoch["output"],
            y=epoch["y"],
            is_ood=epoch["is_ood"],
            classes=epoch["classes"],
            x=epoch["x"],
        )
        times.append(time.perf_counter() - start)
    return {
        "repeats": repeats,
        "median_ms": statistics.median(times) * 1e3,
        "times_ms": [round(t * 1e3, 2) for t in times],
    }


def median_timings(runs: list[dict]) -> dict[str, float]:
    return {
        part: statistics.median(r["timings"][part] for r in runs) for part in runs[0]["timings"]
    }


def run_sections(repeats: int, compare_threads: bool, n_probe: int) -> dict:
    epoch = synthetic_epoch(n_probe)
    r: dict = {
        "machine": machine(),
        "config": {
            "n_probe": n_probe,
            "units": [v.shape[1] for v in epoch["layers"].values()],
            "input_features": epoch["x"].shape[1],
            "trained": list(TRAINED),
            "ood": list(OOD),
            "default_methods": list(signatures.DEFAULT_METHODS),
            "on_demand_methods": list(signatures.ON_DEMAND_METHODS),
            "threads": signatures.THREADS,
            "kmeans_n_init": signatures.KMEANS_N_INIT,
            "tsne_max_iter": signatures.TSNE_MAX_ITER,
        },
    }
    r["cold"] = measured(run_analysis, epoch)  # first in this process (imports done)
    # child processes: measured() would count them as noise
    r["fresh"] = run_fresh("default", n_probe)
    runs = [measured(run_analysis, epoch) for _ in range(repeats)]
    r["describe"] = [run.pop("text") for run in runs][-1]
    r["warm"] = {
        "repeats": repeats,
        "runs": runs,
        "median_s": statistics.median(x["wall_s"] for x in runs),
        "best_s": min(x["wall_s"] for x in runs),
        "timings_median": median_timings(runs),
        "other_cpu_share": max(x["other_cpu_share"] for x in runs),
    }
    r["cold"].pop("text")
    if compare_threads:
        r["warm_default_threads"] = measured(run_analysis, epoch, threads=None)
        r["warm_default_threads"].pop("text")
    r["separability"] = measured(run_separability, epoch, 2 * repeats + 1)
    # on demand: t-SNE; UMAP first in this process (import + compile, or the numba cache
    # this environment has) and again (warm); UMAP in fresh processes on an empty numba cache
    # directory, then on the cache the first one left (a worker's under the NetLens home)
    r["tsne"] = measured(run_projection, epoch, "tsne")
    r["umap_first"] = measured(run_projection, epoch, "umap")
    r["umap_warm"] = measured(run_projection, epoch, "umap")
    with tempfile.TemporaryDirectory() as cache:
        r["umap_fresh_empty_cache"] = run_fresh("umap", n_probe, Path(cache))
        r["umap_fresh_cached"] = run_fresh("umap", n_probe, Path(cache))
    r["warm_up"] = run_warm_up()
    return r


# -- report -----------------------------------------------------------------------------------
def machine() -> dict:
    """Where the figures come from; versions from package metadata (importing umap here would
    spoil the cold figure)."""
    return {
        "date": date.today().isoformat(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("numpy", "scikit-learn", "umap-learn", "numba")},
    }


def table_rows(r: dict) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, target, met) rows; met None when there is no target."""
    cold, warm, fresh = r["cold"], r["warm"], r["fresh"]
    layers = len(r["config"]["units"])
    rows = [
        (
            "default analysis, fresh process (import + analysis), s",
            f"{fresh['wall_s']:.1f}",
            f"<= {TARGET_S:.0f}",
            fresh["wall_s"] <= TARGET_S,
        ),
        ("  of which importing worker.signatures, s", f"{fresh['import_s']:.1f}", "", None),
        ("default analysis, first in this process, s", f"{cold['wall_s']:.1f}", "", None),
        (
            f"default analysis warm, median of {warm['repeats']}, s",
            f"{warm['median_s']:.1f}",
            f"<= {TARGET_S:.0f}",
            warm["median_s"] <= TARGET_S,
        ),
    ]
    for part, seconds in warm["timings_median"].items():
        if part != "total":
            rows.append((f"  {part}, s", f"{seconds:.3f}", "", None))
    if "warm_default_threads" in r:
        rows.append(
            (
                "default analysis warm, library-default threads, s",
                f"{r['warm_default_threads']['wall_s']:.1f}",
                "",
                None,
            )
        )
    rows += [
        (
            f"separability_by_layer, one epoch (input + {layers} layers + output), ms",
            f"{r['separability']['median_ms']:.0f}",
            "",
            None,
        ),
        (f"on demand: t-SNE of {layers} layers, s", f"{r['tsne']['wall_s']:.1f}", "", None),
        (
            f"on demand: UMAP of {layers} layers, first in this process, s",
            f"{r['umap_first']['wall_s']:.1f}",
            "",
            None,
        ),
        (
            f"on demand: UMAP of {layers} layers, warm, s",
            f"{r['umap_warm']['wall_s']:.1f}",
            "",
            None,
        ),
        (
            "on demand: UMAP, fresh process, empty numba cache, s",
            f"{r['umap_fresh_empty_cache']['wall_s']:.1f}",
            "",
            None,
        ),
        (
            "on demand: UMAP, fresh process, numba cache filled, s",
            f"{r['umap_fresh_cached']['wall_s']:.1f}",
            "",
            None,
        ),
        (
            "warm_up() in a fresh process (import + UMAP compile), s",
            f"{r['warm_up']['wall_s']:.1f}",
            "",
            None,
        ),
    ]
    return rows


def print_noise_notes(r: dict) -> None:
    for name in (
        "cold",
        "warm",
        "warm_default_threads",
        "separability",
        "tsne",
        "umap_first",
        "umap_warm",
    ):
        share = r.get(name, {}).get("other_cpu_share", 0)
        if share > QUIET:
            print(
                f"note: other processes used {share:.0%} of the CPU during {name}: "
                "its figures are noisy, run again on a quiet machine"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm run: a smoke check")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs (median reported)")
    parser.add_argument(
        "--compare-threads",
        action="store_true",
        help="one more warm run with the libraries' default thread counts",
    )
    parser.add_argument("--probe", type=int, default=1000, help="probe inputs")
    args = parser.parse_args()
    r = run_sections(1 if args.quick else args.repeats, args.compare_threads, args.probe)
    rows = table_rows(r)
    print(r["describe"])
    report(
        r,
        rows,
        RESULTS.with_name("analysis_quick.json") if args.quick else RESULTS,
        notes=print_noise_notes,
    )


if __name__ == "__main__":
    main()
