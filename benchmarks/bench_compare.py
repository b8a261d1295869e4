"""Compare benchmark: 8 runs of 1,000 epochs on the compare page, in a real browser.

Goal (issue 6): "comparing 8 runs of 1,000 epochs opens in under 2 s".

    .venv/bin/python benchmarks/bench_compare.py [--repeats 5] [--home DIR]

1. Trains 8 real runs in this process (two-regions, 500 samples, 2-16-2-1 relu, 1,000 epochs,
   every epoch recorded; seeds 0-3 x learning rates 0.01 / 0.03) into a temporary SQLite home,
   or reuses the runs an earlier call left in `--home DIR`.
2. Starts `netlens serve --workers 0` there and drives Debian's Chromium with Playwright.
3. Open: from `page.goto(/compare?runs=...)` until the loss and accuracy graphs have drawn all
   8 runs and the "Inside, in step" tab has drawn its 4 network graphs, in a fresh browser
   context each time (empty browser cache; the first repeat also finds the server's caches
   cold). Also the same with the browser cache warm.
4. Slider step: ArrowLeft on the shared slider until the 4 side-by-side graphs re-plotted for
   the new epoch, and the same for the decision boundary view.

Prints a table, writes benchmarks/results/compare.json. Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_web import (  # noqa: E402
    CHROMIUM_ARGS,
    RESULTS,
    machine_busy_share,
    start_server,
    stop_server,
)

RUNS, EPOCHS, OPEN_TARGET_S = 8, 1000, 2.0

OPENED = """() => {
  const drawn = sel => { const gd = document.querySelector(sel + ' .js-plotly-plot');
    return gd ? gd.querySelectorAll('.scatterlayer g.trace, .heatmaplayer g.hm').length : 0; };
  const side = [0, 1, 2, 3].filter(i => drawn('#cmp-fig-side-' + i) > 0).length;
  return drawn('#compare-loss') >= RUNS && drawn('#compare-accuracy') >= RUNS && side === 4;
}""".replace("RUNS", str(RUNS))

SIDE_STATE = """() => [0, 1, 2, 3].map(i => {
  const gd = document.querySelector('#cmp-fig-side-' + i + ' .js-plotly-plot');
  const t = gd && gd.layout && gd.layout.title ? (gd.layout.title.text || '') : '';
  return [t, gd && gd._fullData ? gd._fullData.map(d => d.type).join(',') : ''];
})"""


def spec_data(seed: int, lr: float) -> dict:
    return {
        "name": f"bench-compare seed {seed} lr {lr}",
        "dataset": {"name": "two-regions", "n_samples": 500, "val_fraction": 0.2},
        "model": {
            "hidden": [{"units": 16, "activation": "relu"}, {"units": 2, "activation": "relu"}]
        },
        "optimizer": {"learning_rate": lr},
        "training": {"epochs": EPOCHS, "batch_size": 100, "seed": seed},
        "recording": {"probe_size": 200, "grid_resolution": 40, "grid_every": 10},
    }


def make_runs(home: Path) -> tuple[list[int], float | None]:
    from netlens.storage import runs
    from netlens.storage.db import Database
    from netlens.storage.migrate import upgrade
    from netlens.storage.spec import parse_spec

    db = Database(f"sqlite:///{home}/netlens.db")
    upgrade(db)
    wanted = [spec_data(seed, lr) for lr in (0.01, 0.03) for seed in range(RUNS // 2)]
    done = {i.name: i.id for i in runs.list_runs(db, limit=1000) if i.status == "succeeded"}
    if all(w["name"] in done for w in wanted):
        print(f"reusing {RUNS} runs in {home}")
        return [done[w["name"]] for w in wanted], None
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from netlens.worker.runner import run_experiment

    ids, t0 = [], time.perf_counter()
    for data in wanted:
        run_id = runs.create_run(db, parse_spec(data))
        if run_experiment(db, run_id) != "succeeded":
            raise SystemExit(f"run {run_id} failed: {runs.get_run(db, run_id).error}")
        ids.append(run_id)
        print(f"trained run {run_id} ({data['name']})", flush=True)
    db.dispose()
    return ids, time.perf_counter() - t0


def open_once(browser, url: str, warm_context=None) -> float:
    context = warm_context or browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(OPENED, polling=20, timeout=60_000)
    seconds = time.perf_counter() - t0
    page.close()
    if warm_context is None:
        context.close()
    return seconds


def slider_steps(browser, url: str, steps: int, view: str) -> list[float]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(OPENED, polling=20, timeout=60_000)
    want_type = "scatter"
    if view != "network":
        page.select_option("#cmp-side-view", view)
        want_type = "contour"
        page.wait_for_function(
            f"() => ({SIDE_STATE})().every(s => s[1].includes('contour'))",
            polling=20,
            timeout=60_000,
        )
    page.locator("#cmp-epoch [role=slider]").focus()
    out = []
    for _ in range(steps):
        before = page.evaluate("document.querySelector('#cmp-epoch-label').innerText")
        t0 = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "b => document.querySelector('#cmp-epoch-label').innerText !== b",
            arg=before,
            polling=10,
        )
        epoch = int(
            re.search(
                r"\d+", page.evaluate("document.querySelector('#cmp-epoch-label').innerText")
            ).group()
        )
        page.wait_for_function(
            f"([e, t]) => ({SIDE_STATE})().every(s => s[0].includes('epoch ' + e) && "
            "s[1].includes(t))",
            arg=[epoch, want_type],
            polling=10,
            timeout=60_000,
        )
        out.append((time.perf_counter() - t0) * 1000)
    context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--home", type=Path, help="keep the runs here (reused next time)")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (scripts/browser.sh)")
    home = args.home or Path(tempfile.mkdtemp(prefix="netlens-bench-compare-"))
    home.mkdir(parents=True, exist_ok=True)
    ids, train_s = make_runs(home)
    process, base = start_server(home)
    url = f"{base}/compare?runs={','.join(map(str, ids))}"
    try:
        from playwright.sync_api import sync_playwright

        busy = machine_busy_share()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            cold = [open_once(browser, url) for _ in range(args.repeats)]
            warm_context = browser.new_context(viewport={"width": 1500, "height": 1000})
            open_once(browser, url, warm_context)
            warm = [open_once(browser, url, warm_context) for _ in range(args.repeats)]
            network = slider_steps(browser, url, args.steps, "network")
            boundary = slider_steps(browser, url, args.steps, "boundary")
            browser.close()
    finally:
        stop_server(process)
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "runs": RUNS,
        "epochs": EPOCHS,
        "train_seconds": train_s,
        "machine_busy_share_before": round(busy, 2),
        "open_first_s": round(cold[0], 3),
        "open_empty_cache_median_s": round(statistics.median(cold[1:] or cold), 3),
        "open_warm_cache_median_s": round(statistics.median(warm), 3),
        "step_network_4_runs_median_ms": round(statistics.median(network)),
        "step_boundary_4_runs_median_ms": round(statistics.median(boundary)),
        "target_open_s": OPEN_TARGET_S,
    }
    result["open_over_target"] = round(result["open_empty_cache_median_s"] / OPEN_TARGET_S, 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=1))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
