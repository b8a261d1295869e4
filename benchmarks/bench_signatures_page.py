"""Signatures page benchmark: stored results shown in under 1 s.

    .venv/bin/python benchmarks/bench_signatures_page.py [--repeats 5]

1. Trains a real run (all ten digits, classes 0-7 trained, 8 and 9 unseen, three hidden layers
   of 128, 64 and 32 ReLU units, 1,000 probe inputs, 30 epochs) in a temporary SQLite home and
   stores its analyses (last epoch and timeline) with worker.analyze.run_analysis, as a worker
   would.
2. Server side: every callback of the page called in-process (first call with cold caches,
   then the median of --repeats warm calls).
3. In a real browser (Debian's Chromium via Playwright, `netlens serve --workers 0`): from
   navigation start until the Separability tab's graphs are drawn, with an empty browser cache,
   and the time from clicking each other tab until its graphs are drawn.

Writes benchmarks/results/signatures_page.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "signatures_page.json"
TARGET_S = 1.0
TABS = [
    "Clusters",
    "Flow",
    "Projections",
    "Class signatures",
    "Unseen classes",
    "Compare two inputs",
]
DRAWN = """() => { const pane = document.querySelector('.tab-content > .tab-pane.active');
  if (!pane) return false;
  const graphs = Array.from(pane.querySelectorAll('.dash-graph'));
  return graphs.length > 0 && graphs.every(div => div.getAttribute('data-dash-is-loading')
    !== 'true' && div.querySelectorAll('.scatterlayer g.trace, .barlayer g.trace, '
    + '.heatmaplayer g.hm, .sankey-link').length > 0); }"""


def build(home: Path) -> int:
    from netlens.storage.db import Database
    from netlens.storage.migrate import upgrade
    from netlens.storage.runs import create_run
    from netlens.storage.spec import parse_spec
    from netlens.worker.analyze import run_analysis
    from netlens.worker.runner import run_experiment

    db = Database(f"sqlite:///{home / 'netlens.db'}")
    upgrade(db)
    spec = parse_spec(
        {
            "name": "bench signatures",
            "dataset": {"name": "digits", "classes": list(range(8)), "ood_classes": [8, 9]},
            "model": {
                "hidden": [
                    {"units": 128, "activation": "relu"},
                    {"units": 64, "activation": "relu"},
                    {"units": 32, "activation": "relu"},
                ]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.003},
            "training": {"epochs": 30, "batch_size": 32},
            "recording": {"probe_size": 1000},
        }
    )
    run_id = create_run(db, spec)
    run_experiment(db, run_id)
    started = time.perf_counter()
    summary = run_analysis(db, run_id, "epoch", 30)
    run_analysis(db, run_id, "timeline", 30)
    run_analysis(db, run_id, "umap", 30)  # on demand since t-SNE / UMAP left the default
    print(f"analysed {summary['n_probe']} probe inputs in {time.perf_counter() - started:.1f} s")
    db.dispose()
    return run_id


def server_side(home: Path, run_id: int, repeats: int) -> dict:
    from netlens.storage.db import Database
    from netlens.storage.settings import Settings
    from netlens.webapp.app import create_app

    settings = Settings(home=home, database_url=None, broker_url=None)
    app = create_app(settings, Database.from_settings(settings))
    p = sys.modules["pages.signatures"]
    calls = {
        "status": lambda v: p.status(None, 0, run_id, None),
        "separability": lambda v: p.separability(
            "separability", None, "linear-probe accuracy", v, run_id
        ),
        "clusters": lambda v: p.clusters("clusters", None, "hidden_1", v, run_id),
        "flow": lambda v: p.flow("flow", None, v, run_id),
        "projection (UMAP)": lambda v: p.projection(
            "projections", None, "hidden_1", "umap", "class", v, run_id
        ),
        "projection (PCA timeline)": lambda v: p.projection(
            "projections", None, "hidden_1", "pca", "class", v, run_id
        ),
        "class signatures": lambda v: p.class_signatures("classes", None, "hidden_1", v, run_id),
        "unseen classes": lambda v: p.unseen("ood", None, "hidden_1", v, run_id),
        "compare two inputs": lambda v: p.compare("compare", None, 0, 1, run_id),
    }
    out = {}
    with app.server.app_context():
        version = p.status(None, 0, run_id, None)[4]
        for name, call in calls.items():
            started = time.perf_counter()
            call(version)
            cold = time.perf_counter() - started
            warm = []
            for _ in range(repeats):
                started = time.perf_counter()
                call(version)
                warm.append(time.perf_counter() - started)
            out[name] = {"cold_s": cold, "warm_s": statistics.median(warm)}
    return out


def browser_side(home: Path, run_id: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_web import CHROMIUM_ARGS, start_server, stop_server

    server, base = start_server(home)
    url = f"{base}/runs/{run_id}/signatures"
    loads, warm_loads, tabs = [], [], {t: [] for t in TABS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.wait_for_function(DRAWN, timeout=30_000)
                loads.append(page.evaluate("performance.now()") / 1000)
                for tab in TABS:
                    started = page.evaluate("performance.now()")
                    page.get_by_role("tab", name=tab, exact=True).click()
                    page.wait_for_timeout(50)
                    page.wait_for_function(DRAWN, timeout=30_000)
                    tabs[tab].append((page.evaluate("performance.now()") - started) / 1000)
                page.goto(url)  # the same browser profile again: its cache is warm
                page.wait_for_function(DRAWN, timeout=30_000)
                warm_loads.append(page.evaluate("performance.now()") / 1000)
                context.close()
            browser.close()
    finally:
        stop_server(server)
    return {"first_paint_s": loads, "first_paint_warm_cache_s": warm_loads, "tab_switch_s": tabs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="netlens-bench-sig-"))
    run_id = build(home)
    server = server_side(home, run_id, args.repeats)
    browser = browser_side(home, run_id, args.repeats)
    result = {"date": str(date.today()), "target_s": TARGET_S, "server": server, "browser": browser}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    print(f"{'callback':<28} {'cold ms':>8} {'warm ms':>8}")
    for name, t in server.items():
        print(f"{name:<28} {t['cold_s'] * 1000:8.0f} {t['warm_s'] * 1000:8.0f}")
    loads = browser["first_paint_s"]
    print(
        f"first paint (empty cache): median {statistics.median(loads):.2f} s, "
        f"max {max(loads):.2f} s (target < {TARGET_S} s)"
    )
    warm = browser["first_paint_warm_cache_s"]
    print(
        f"first paint (warm cache): median {statistics.median(warm):.2f} s, max {max(warm):.2f} s"
    )
    for tab, times in browser["tab_switch_s"].items():
        print(
            f"tab {tab:<24} median {statistics.median(times) * 1000:6.0f} ms, "
            f"max {max(times) * 1000:6.0f} ms"
        )


if __name__ == "__main__":
    main()
