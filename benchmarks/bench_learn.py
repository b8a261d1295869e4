"""Learn lessons: time from submitting each lesson's first run to its first recorded epoch (ready
to watch) and to its end, through the real queue on the embedded default (`netlens serve`:
SQLite, filesystem broker, one worker), as a learner pressing Train gets it.

    .venv/bin/python benchmarks/bench_learn.py [--rounds 2]

Round 1 includes each network's JAX compilation (the worker's persistent compile cache is fresh);
later rounds show the cached case. Writes benchmarks/results/learn.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from netlens.dispatch.submission import submit_spec, submit_sweep
from netlens.storage import analyses, jobs, runs
from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.webapp.learn.lessons import LESSONS, checked_choices, lesson_spec, sweep_axes

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nobody listens on (a fixed one met a stale server of an earlier run)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "NETLENS_HOME": str(home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
    }
    log = open(home / "serve.log", "w")  # noqa: SIM115 - for the life of the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "netlens.cli", "serve", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            if "running at http://" in (home / "serve.log").read_text():
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("netlens serve did not start:\n" + (home / "serve.log").read_text())


def time_lesson(db: Database, settings: Settings, slug: str, run_ids: list[int]) -> dict:
    lesson = LESSONS[slug]
    choices = checked_choices(lesson, {})
    spec = lesson_spec(lesson, choices)
    start = time.perf_counter()
    if slug == "compare":
        _, ids = submit_sweep(db, settings, spec, sweep_axes(choices), name="bench learn")
    else:
        ids = [submit_spec(db, settings, spec)]
    ready = first = started = done = None
    while done is None and time.perf_counter() - start < 300:
        infos = [runs.get_run(db, i) for i in ids]
        now = time.perf_counter() - start
        if started is None and any(i.started_at is not None for i in infos):
            started = now  # the worker took the lesson's first run (after what was queued)
        if ready is None and any(i.epochs_recorded > 0 for i in infos):
            ready = now  # the page draws from the first run with an epoch: ready to watch
        if first is None and all(i.epochs_recorded > 0 for i in infos):
            first = now
        if all(i.is_finished for i in infos):
            done = now
            status = [i.status for i in infos]
        time.sleep(0.05)
    run_ids.extend(ids)
    return {
        "lesson": slug,
        "runs": len(ids),
        "started_s": round(started or -1, 2),
        "ready_s": round(ready or -1, 2),
        "first_epoch_s": round(first or -1, 2),
        "done_s": round(done or -1, 2),
        "status": status if done else "timeout",
        "epochs": spec.training.epochs,
    }


def wait_idle(db: Database, run_ids: list[int], timeout_s: float = 120) -> float:
    """Seconds until the worker has nothing queued or running (the signatures lesson's run
    queues its analyses, which a next lesson's run waits behind on a one-worker server)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        states = jobs.count_by_state(db)
        busy = any(states.get(k) for k in ("queued", "running"))
        busy = busy or any(
            a.state in ("queued", "running")
            for i in run_ids
            for a in analyses.list_analyses(db, i, with_summary=False)
        )
        if not busy:
            break
        time.sleep(0.1)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--idle",
        action="store_true",
        help="start each lesson on an idle worker (else in a learner's order, right after the "
        "previous lesson's run and whatever it queued)",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-learn-"))
    proc = start_server(home, free_port())
    try:
        settings = Settings(home=home, database_url=None, broker_url=None)
        db = Database.from_settings(settings)
        rows, run_ids = [], []
        for round_ in range(1, args.rounds + 1):
            for slug in LESSONS:
                waited = wait_idle(db, run_ids) if args.idle else None
                row = time_lesson(db, settings, slug, run_ids) | {
                    "round": round_,
                    "idle_wait_s": waited,
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        RESULTS.mkdir(exist_ok=True)
        name = "learn-idle.json" if args.idle else "learn.json"
        (RESULTS / name).write_text(json.dumps(rows, indent=1))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


if __name__ == "__main__":
    main()
