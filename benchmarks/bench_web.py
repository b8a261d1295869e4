"""Web benchmark: the run page of a big run in a real browser.

Goal: "a run with 20,000 epochs and a 100-unit layer: the run page's first paint under 2 s and
an epoch-slider step under 300 ms".

    .venv/bin/python benchmarks/bench_web.py [--repeats 5] [--steps 5] [--home DIR]

1. Creates the run for real, in this process: a temporary SQLite home migrated with
   `storage.migrate.upgrade`, `storage.runs.create_run`, `worker.runner.run_experiment`
   (two-regions, 500 samples, 2-100-1 relu, 20,000 epochs, every epoch recorded). With
   `--home DIR` holding a finished run from an earlier call, training is skipped.
2. Starts `netlens serve --workers 0` on that home and drives Debian's Chromium with
   Playwright (never Playwright's own browser download).
3. First paint: from `page.goto(/runs/<id>)` (the navigation's start) until the loss graph has
   drawn its traces, in a fresh browser context each time (cold browser cache; the first
   repeat also finds the server's caches cold).
4. Slider steps: on the tabs Network graph, Parameters, Hidden representation, Decision
   boundary, Outputs per input, ArrowLeft on the focused slider handle; the time from the
   keydown until every graph of the tab has been re-plotted (Plotly's `plotly_afterplot`) for
   the new epoch (its title or its dashed epoch line shows it). Times are taken inside the
   browser (performance.now()), so Playwright's polling adds nothing.
5. Server side: the browser's own timing of each `/_dash-update-component` request (time to
   first byte = the callback's server time, response size), matched to its callback output.

Prints a table, writes benchmarks/results/web.json (web_<epochs>x<units>.json for other sizes).
Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIRST_PAINT_TARGET_S, STEP_TARGET_MS = 2.0, 300.0
# (tab label, tab id, graph ids in that tab)
STEP_TABS = [
    ("Network graph", "network", ["fig-network"]),
    ("Parameters", "params", ["fig-trajectory", "fig-weight-hist"]),
    ("Hidden representation", "representation", ["fig-representation"]),
    ("Decision boundary", "boundary", ["fig-boundary"]),
    ("Outputs per input", "outputs", ["fig-outputs"]),
]


def spec_data(epochs: int, units: int) -> dict:
    return {
        "name": f"bench-web {epochs} epochs x {units} units",
        "dataset": {"name": "two-regions", "n_samples": 500, "val_fraction": 0.2},
        "model": {"hidden": [{"units": units, "activation": "relu"}]},
        "training": {"epochs": epochs, "batch_size": 400},
        "recording": {"probe_size": 50, "grid_resolution": 40},
    }


def folder_mb(home: Path) -> float:
    return sum(p.stat().st_size for p in home.glob("netlens.db*")) / 1e6


# --------------------------------------------------------------------------- 1. the run


def make_run(home: Path, epochs: int, units: int) -> tuple[int, dict]:
    """The finished run in `home` (trained now unless an earlier call left one)."""
    from netlens.storage import runs
    from netlens.storage.db import Database
    from netlens.storage.migrate import upgrade
    from netlens.storage.spec import parse_spec

    db = Database(f"sqlite:///{home}/netlens.db")
    upgrade(db)
    spec = parse_spec(spec_data(epochs, units))
    for info in runs.list_runs(db, limit=100):
        if info.name == spec.name and info.status == "succeeded":
            print(f"reusing run {info.id} in {home} (trained by an earlier call)")
            db.dispose()
            return info.id, {
                "reused": True,
                "epochs_recorded": info.epochs_recorded,
                "recorded_bytes": info.recorded_bytes,
                "database_mb": round(folder_mb(home), 1),
            }
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from netlens.worker.runner import run_experiment

    run_id = runs.create_run(db, spec)
    print(
        f"training run {run_id}: {spec.model.describe()} ... {epochs} epochs, every epoch recorded",
        flush=True,
    )
    t0 = time.perf_counter()
    status = run_experiment(db, run_id)
    seconds = time.perf_counter() - t0
    info = runs.get_run(db, run_id)
    db.dispose()
    if status != "succeeded":
        raise SystemExit(f"the run ended {status}: {info.error}")
    out = {
        "reused": False,
        "train_seconds": round(seconds, 1),
        "epochs_recorded": info.epochs_recorded,
        "recorded_bytes": info.recorded_bytes,
        "database_mb": round(folder_mb(home), 1),
    }
    print(
        f"trained and recorded in {seconds:.1f} s: {info.epochs_recorded:,} epochs, "
        f"{out['database_mb']:,.0f} MB of SQLite",
        flush=True,
    )
    return run_id, out


def grid_epochs(home: Path, run_id: int) -> list[int]:
    from netlens.storage import records
    from netlens.storage.db import Database

    db = Database(f"sqlite:///{home}/netlens.db")
    try:
        return [int(e) for e in records.tensor_epoch_list(db, run_id, "grid/output")]
    finally:
        db.dispose()


# --------------------------------------------------------------------------- 2. the server


def machine_busy_share(seconds: float = 2.0) -> float:
    """Share of the whole machine's CPU busy over `seconds` (other work, as we are idle)."""
    from benchmarks.harness import _busy_seconds

    b0 = _busy_seconds()
    time.sleep(seconds)
    return (_busy_seconds() - b0) / (seconds * os.cpu_count())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    home: Path,
    extra_env: dict[str, str] | None = None,
    ready_path: str = "/",
    timeout_s: float = 60,
) -> tuple[subprocess.Popen, str]:
    """`netlens serve --workers 0` on `home` (SQLite, embedded broker) and its URL, once
    `ready_path` answers 200; `extra_env` adds or overrides NETLENS_* settings."""
    port = free_port()
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
        **(extra_env or {}),
    }
    log = open(home / "serve.log", "w")  # noqa: SIM115 - for the life of the process
    process = subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "serve", "--workers", "0", "--port", str(port)],
        cwd=home,  # ./control lands in home
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((home / "serve.log").read_text())
        try:
            with urllib.request.urlopen(url + ready_path, timeout=5) as r:
                if r.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("netlens serve did not answer:\n" + (home / "serve.log").read_text())


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- 3-5. the browser

# Installed in every page before its scripts: the time the loss graph first has drawn traces
# (rAF polling, ~16 ms resolution), the last keydown, and the epoch label's changes.
INIT_SCRIPT = """
window.__bench = {keyAt: null, labelAt: null, lossAt: null, longTasks: []};
new PerformanceObserver(list => list.getEntries().forEach(
  e => window.__bench.longTasks.push([e.startTime, e.duration]))).observe({type: 'longtask', buffered: true});
document.addEventListener('keydown', () => { window.__bench.keyAt = performance.now(); }, true);
(function poll() {
  const gd = document.querySelector('#fig-loss .js-plotly-plot');
  if (gd && (gd._fullData || []).length && gd.querySelector('.scatterlayer g.trace')) {
    window.__bench.lossAt = performance.now();
    return;
  }
  requestAnimationFrame(poll);
})();
new MutationObserver(() => {
  const label = document.querySelector('#run-epoch-label');
  if (label && !label.__watched) {
    label.__watched = true;
    new MutationObserver(() => { window.__bench.labelAt = performance.now(); })
      .observe(label, {childList: true, characterData: true, subtree: true});
  }
}).observe(document, {childList: true, subtree: true});
"""

HOOK_GRAPHS = """(ids) => ids.map(id => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!gd) return null;
  if (!gd.__bench) {
    gd.__bench = {plots: 0, at: null};
    gd.on('plotly_afterplot', () => { gd.__bench.plots += 1; gd.__bench.at = performance.now(); });
  }
  return gd.__bench.plots;
})"""

GRAPH_STATE = """(ids) => ids.map(id => {
  const div = document.querySelector('#' + id);
  const gd = div && div.querySelector('.js-plotly-plot');
  const layout = (gd && gd.layout) || {};
  const title = typeof layout.title === 'string' ? layout.title : ((layout.title || {}).text || '');
  return {id: id, plots: gd && gd.__bench ? gd.__bench.plots : 0,
          at: gd && gd.__bench ? gd.__bench.at : null,
          traces: ((gd && gd._fullData) || []).length,
          loading: div ? div.getAttribute('data-dash-is-loading') : null,
          title: title,
          lines: (layout.shapes || []).filter(s => s.type === 'line' && s.x0 === s.x1).map(s => s.x0)};
})"""

STEP_DONE = """([ids, before, label, epochs]) => {
  const l = document.querySelector('#run-epoch-label');
  if (!l || l.innerText.trim() !== label) return false;
  return ids.every((id, i) => {
    const div = document.querySelector('#' + id);
    const gd = div && div.querySelector('.js-plotly-plot');
    if (!gd || !gd.__bench || gd.__bench.plots <= before[i]) return false;
    if (['true', true].includes(div.getAttribute('data-dash-is-loading'))) return false;
    const layout = gd.layout || {};
    const title = typeof layout.title === 'string' ? layout.title : ((layout.title || {}).text || '');
    const e = epochs[i];
    return new RegExp('\\\\bepoch ' + e + '\\\\b').test(title) ||
      (layout.shapes || []).some(s => s.type === 'line' && s.x0 === s.x1 && s.x0 === e);
  });
}"""


class Requests:
    """Every finished /_dash-update-component request with its callback output and timing."""

    def __init__(self, page):
        self.items: list = []
        page.on(
            "requestfinished",
            lambda r: self.items.append(r) if "/_dash-update-component" in r.url else None,
        )

    def since(self, wall_ms: float) -> list[dict]:
        out = []
        for r in self.items:
            t = r.timing
            if t["startTime"] < wall_ms - 5:
                continue
            body = json.loads(r.post_data or "{}")
            try:
                size = r.sizes()["responseBodySize"]
            except Exception:  # noqa: BLE001 - the size is a nicety
                size = None
            out.append(
                {
                    "output": body.get("output", "?"),
                    "start": t["startTime"],
                    "server_ms": round(t["responseStart"] - t["requestStart"], 1),
                    "end": t["startTime"] + t["responseEnd"],
                    "bytes": size,
                }
            )
        return out


MILESTONES = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const ends = f => res.filter(f).map(r => r.responseEnd);
  return {
    html_ms: nav.responseEnd,
    scripts_ms: Math.max(0, ...ends(r => r.initiatorType === 'script' && !r.name.includes('plotly'))),
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    plotly_js_loaded_ms: Math.max(0, ...ends(r => r.name.includes('plotly.min.js'))),
    // main-thread tasks over 50 ms before the loss graph was drawn (script evaluation, render)
    long_tasks_ms: window.__bench.longTasks.filter(t => t[0] < window.__bench.lossAt)
      .reduce((a, t) => a + t[1], 0),
    longest_task: window.__bench.longTasks.reduce((a, t) => t[1] > a[1] ? t : a, [0, 0])
      .map(Math.round),
    dash_layout_ms: Math.max(0, ...ends(r => r.name.includes('/_dash-layout'))),
    transferred_kb: Math.round((nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0)) / 1000),
  };
}"""


def _load(page, url: str, requests: Requests) -> dict:
    """One navigation to the run page: when the loss graph was drawn and where the time went
    (every time in ms since the navigation started)."""
    wall_start = time.time() * 1000
    wall0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("window.__bench.lossAt !== null", timeout=60_000, polling=50)
    wall = time.perf_counter() - wall0
    loss_at = page.evaluate("window.__bench.lossAt")
    origin = page.evaluate("performance.timeOrigin")
    page.wait_for_timeout(300)  # let the page's other callbacks finish for the request log
    milestones = page.evaluate(MILESTONES)
    calls = [
        {
            "output": c["output"],
            "start_ms": round(c["start"] - origin, 1),
            "end_ms": round(c["end"] - origin, 1),
            "server_ms": c["server_ms"],
            "bytes": c["bytes"],
        }
        for c in requests.since(wall_start)
    ]
    calls = [c for c in calls if c["start_ms"] <= loss_at]
    content = next((c for c in calls if "_pages_content" in c["output"]), None)
    curves = next((c for c in calls if "fig-loss" in c["output"]), None)
    return {
        "first_paint_ms": round(loss_at, 1),
        "python_wall_ms": round(wall * 1000, 1),
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in milestones.items()},
        "page_content_callback": content,
        "curves_callback": curves,
        "callbacks_before_paint": len(calls),
        "slowest_callbacks": sorted(calls, key=lambda c: -c["server_ms"])[:4],
    }


def first_paint(browser, url: str, run_id: int) -> dict:
    """A fresh browser context (empty cache) loads the page, then loads it again (cached)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    requests = Requests(page)
    cold = _load(page, f"{url}/runs/{run_id}", requests)
    page.goto("about:blank")
    warm = _load(page, f"{url}/runs/{run_id}", requests)
    context.close()
    return {"cold_cache": cold, "warm_cache": warm}


def slider_steps(
    browser, url: str, run_id: int, last_epoch: int, grid: list[int], steps: int
) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests = Requests(page)
    page.goto(f"{url}/runs/{run_id}")
    page.wait_for_function("window.__bench.lossAt !== null", timeout=60_000)
    page.wait_for_function(
        f"document.querySelector('#run-epoch-label')?.innerText.trim() === 'epoch {last_epoch}'"
    )
    thumb = page.locator("#run-epoch [role=slider]")
    epoch = last_epoch
    out = {}
    for label, tab_id, graphs in STEP_TABS:
        page.get_by_role("tab", name=label, exact=True).click()
        page.wait_for_function(
            "(ids) => ids.every(id => (document.querySelector('#' + id + "
            "' .js-plotly-plot')?._fullData || []).length > 0)",
            arg=graphs,
            timeout=60_000,
        )
        page.wait_for_timeout(500)
        rows = []
        for _ in range(steps):
            before = page.evaluate(HOOK_GRAPHS, graphs)
            epoch -= 1
            expect = [
                max(e for e in grid if e <= epoch) if g == "fig-boundary" else epoch for g in graphs
            ]
            page.evaluate("window.__bench.keyAt = null; window.__bench.labelAt = null")
            wall0 = time.time() * 1000
            thumb.focus()
            thumb.press("ArrowLeft")
            page.wait_for_function(
                STEP_DONE,
                arg=[graphs, before, f"epoch {epoch}", expect],
                timeout=60_000,
                polling=20,
            )
            state = page.evaluate(GRAPH_STATE, graphs)
            bench = page.evaluate("window.__bench")
            origin = page.evaluate("performance.timeOrigin")
            plotted = max(s["at"] for s in state)
            page.wait_for_timeout(400)  # the step's other callbacks (PreventUpdate) finish
            calls = requests.since(wall0)
            mine = [c for c in calls if any(g in c["output"] for g in graphs)]
            response_end = max((c["end"] for c in mine), default=None)
            rows.append(
                {
                    "epoch": epoch,
                    "step_ms": round(plotted - bench["keyAt"], 1),
                    "label_ms": round(bench["labelAt"] - bench["keyAt"], 1)
                    if bench["labelAt"]
                    else None,
                    "server_ms": max((c["server_ms"] for c in mine), default=None),
                    "response_bytes": sum(c["bytes"] or 0 for c in mine),
                    # after the figure's response arrived: JSON parse, React, Plotly.react
                    "browser_render_ms": round(origin + plotted - response_end, 1)
                    if response_end
                    else None,
                    "callbacks_fired": len(calls),
                    "label_server_ms": next(
                        (c["server_ms"] for c in calls if "run-epoch-label" in c["output"]), None
                    ),
                }
            )
        out[tab_id] = {"label": label, "steps": rows}
        print(
            f"  {label}: step {[r['step_ms'] for r in rows]} ms; server "
            f"{[r['server_ms'] for r in rows]} ms",
            flush=True,
        )
    context.close()
    if errors:
        print("browser errors:", *errors, sep="\n  ")
    return out


def _span(call: dict | None) -> str:
    if not call:
        return "none"
    return f"{call['start_ms']:.0f}-{call['end_ms']:.0f}, server {call['server_ms']:.0f}"


def summarise(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return (
        {
            "median": round(statistics.median(values), 1),
            "max": round(max(values), 1),
            "min": round(min(values), 1),
            "n": len(values),
        }
        if values
        else {}
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20_000)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5, help="first-paint loads")
    ap.add_argument("--steps", type=int, default=5, help="slider steps per tab")
    ap.add_argument(
        "--home",
        help="reuse (or create) this NETLENS_HOME instead of a temporary "
        "one (which is deleted at the end: about 0.5 GB)",
    )
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is missing (bash scripts/browser.sh)")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="netlens-bench-web-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        measure(args, home, chromium)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)


def measure(args, home: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    run_id, run = make_run(home, args.epochs, args.units)
    grid = grid_epochs(home, run_id)
    last_epoch = args.epochs
    busy = machine_busy_share()
    print(f"machine busy before measuring: {busy:.0%} of the CPU", flush=True)
    server, url = start_server(home)
    result = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "chromium": subprocess.run(
                [chromium, "--version"], capture_output=True, text=True
            ).stdout.strip(),
        },
        "spec": spec_data(args.epochs, args.units),
        "run": run,
        "grid_epochs": len(grid),
        "machine_busy_before": round(busy, 3),
    }
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            paints = []
            for i in range(args.repeats):
                paints.append(first_paint(browser, url, run_id))
                for kind in ("cold_cache", "warm_cache"):
                    x = paints[-1][kind]
                    print(
                        f"first paint {i + 1}, {kind.replace('_', ' ')}: "
                        f"{x['first_paint_ms']:.0f} ms (DOMContentLoaded "
                        f"{x['dom_content_loaded_ms']:.0f}, plotly.js loaded "
                        f"{x['plotly_js_loaded_ms']:.0f}, longest task {x['longest_task']}, "
                        f"curves callback {_span(x['curves_callback'])})",
                        flush=True,
                    )
            steps = slider_steps(browser, url, run_id, last_epoch, grid, args.steps)
            browser.close()
    finally:
        stop_server(server)
    result["first_paint"] = {
        "runs": paints,
        "cold_server_ms": paints[0]["cold_cache"]["first_paint_ms"],
        **{
            kind: {
                key: summarise([x[kind][key] for x in paints])
                for key in (
                    "first_paint_ms",
                    "scripts_ms",
                    "dom_content_loaded_ms",
                    "dash_layout_ms",
                    "plotly_js_loaded_ms",
                    "long_tasks_ms",
                    "transferred_kb",
                )
            }
            | {
                "curves_server_ms": summarise(
                    [
                        x[kind]["curves_callback"]["server_ms"]
                        for x in paints
                        if x[kind]["curves_callback"]
                    ]
                ),
                "curves_end_ms": summarise(
                    [
                        x[kind]["curves_callback"]["end_ms"]
                        for x in paints
                        if x[kind]["curves_callback"]
                    ]
                ),
            }
            for kind in ("cold_cache", "warm_cache")
        },
    }
    result["slider_step"] = {
        tab: {
            **v,
            "summary": {
                key: summarise([r[key] for r in v["steps"]])
                for key in (
                    "step_ms",
                    "label_ms",
                    "server_ms",
                    "browser_render_ms",
                    "response_bytes",
                )
            },
        }
        for tab, v in steps.items()
    }
    RESULTS.mkdir(exist_ok=True)
    default = (args.epochs, args.units) == (20_000, 100)
    out = RESULTS / ("web.json" if default else f"web_{args.epochs}x{args.units}.json")
    out.write_text(json.dumps(result, indent=1))

    print(
        f"\nrun: {run['epochs_recorded']:,} recorded epochs, {run['database_mb']:,.0f} MB SQLite"
        + (f", trained in {run['train_seconds']} s" if "train_seconds" in run else "")
    )
    print(f"\n{'figure':<42} {'median':>8} {'max':>8} {'target':>8}  met")
    for kind in ("cold_cache", "warm_cache"):
        fp = result["first_paint"][kind]
        print(
            f"{'first paint, ' + kind.replace('_', ' ') + ', ms':<42} "
            f"{fp['first_paint_ms']['median']:>8} {fp['first_paint_ms']['max']:>8} "
            f"{FIRST_PAINT_TARGET_S * 1000:>8.0f}  "
            f"{fp['first_paint_ms']['max'] <= FIRST_PAINT_TARGET_S * 1000}"
        )
        print(
            f"{'   DOMContentLoaded / plotly.js loaded':<42} "
            f"{fp['dom_content_loaded_ms']['median']:>8} {fp['plotly_js_loaded_ms']['median']:>8}"
        )
        print(
            f"{'   long tasks / curves callback server':<42} "
            f"{fp['long_tasks_ms']['median']:>8} {fp['curves_server_ms'].get('median')!s:>8}"
        )
    for v in result["slider_step"].values():
        s = v["summary"]
        print(
            f"{'slider step: ' + v['label'] + ', ms':<42} {s['step_ms']['median']:>8} "
            f"{s['step_ms']['max']:>8} {STEP_TARGET_MS:>8.0f}  "
            f"{s['step_ms']['max'] <= STEP_TARGET_MS}"
        )
        print(
            f"{'   server (callback TTFB) / browser render':<42} "
            f"{s['server_ms'].get('median')!s:>8} {s['browser_render_ms'].get('median')!s:>8}"
            f"   ({s['response_bytes'].get('median', 0) / 1000:.0f} kB response)"
        )
    print(
        f"\nwrote {out}"
        + (f"; the run stays in {home} (--home {home} reuses it)" if args.home else "")
    )


if __name__ == "__main__":
    main()
