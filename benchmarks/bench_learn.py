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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from netlens.dispatch.submission import submit_spec, submit_sweep
from netlens.storage import runs
from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.webapp.learn.lessons import LESSONS, checked_choices, lesson_spec, sweep_axes

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]


def start_server(home: Path, port: int = 18765) -> subprocess.Popen:
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


def time_lesson(db: Database, settings: Settings, slug: str) -> dict:
    lesson = LESSONS[slug]
    choices = checked_choices(lesson, {})
    spec = lesson_spec(lesson, choices)
    start = time.perf_counter()
    if slug == "compare":
        _, ids = submit_sweep(db, settings, spec, sweep_axes(choices), name="bench learn")
    else:
        ids = [submit_spec(db, settings, spec)]
    first = done = None
    while done is None and time.perf_counter() - start < 300:
        infos = [runs.get_run(db, i) for i in ids]
        if first is None and all(i.epochs_recorded > 0 for i in infos):
            first = time.perf_counter() - start
        if all(i.is_finished for i in infos):
            done = time.perf_counter() - start
            status = [i.status for i in infos]
        time.sleep(0.05)
    return {
        "lesson": slug,
        "runs": len(ids),
        "first_epoch_s": round(first or -1, 2),
        "done_s": round(done or -1, 2),
        "status": status if done else "timeout",
        "epochs": spec.training.epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-learn-"))
    proc = start_server(home)
    try:
        settings = Settings(home=home, database_url=None, broker_url=None)
        db = Database.from_settings(settings)
        rows = []
        for round_ in range(1, args.rounds + 1):
            for slug in LESSONS:
                row = time_lesson(db, settings, slug) | {"round": round_}
                print(json.dumps(row), flush=True)
                rows.append(row)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "learn.json").write_text(json.dumps(rows, indent=1))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


if __name__ == "__main__":
    main()
