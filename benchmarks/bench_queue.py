"""Job-queue benchmark: submit -> running latency and throughput of tiny jobs (Redis + PostgreSQL).

    .venv/bin/python benchmarks/bench_queue.py [--jobs 100] [--workers 2]

Writes benchmarks/results/queue.json. Needs PostgreSQL on 127.0.0.1:5432 and Redis on
127.0.0.1:6379 (scripts/services.sh starts them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from netlens.dispatch.submission import submit_spec
from netlens.storage import jobs, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/netlens_bench_queue"
REDIS_URL = "redis://127.0.0.1:6379/12"
RESULTS = Path(__file__).parent / "results"


def fresh_database() -> Database:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS netlens_bench_queue WITH (FORCE)")
        conn.execute("CREATE DATABASE netlens_bench_queue")
    db = Database(PG_URL)
    upgrade(db)
    return db


def start_workers(n: int, home: Path) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "NETLENS_DATABASE_URL": PG_URL,
        "NETLENS_BROKER_URL": REDIS_URL,
        "NETLENS_HOME": str(home),
        "JAX_PLATFORMS": "cpu",
    }
    procs = []
    for i in range(n):
        log = home / f"w{i}.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "netlens.cli", "worker", f"--name=bench{i}"],
                env=env,
                stdout=open(log, "w"),
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + 60
    while not all(" ready." in (home / f"w{i}.log").read_text() for i in range(n)):
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)
    return procs


def tiny_spec(i: int):
    return parse_spec(
        {
            "name": f"bench{i}",
            "dataset": {"name": "xor"},
            "model": {"hidden": [{"units": 3, "activation": "tanh"}]},
            "optimizer": {"learning_rate": 0.05},
            "training": {"epochs": 200, "batch_size": 4},
        }
    )


def wait_all(db: Database, ids: list[int], states=("succeeded", "failed")) -> None:
    while any(jobs.get_job(db, i).state not in states for i in ids):
        time.sleep(0.05)


def latency(db: Database, settings: Settings, samples: int) -> list[float]:
    """Seconds from submit() being called to the job being claimed, worker idle each time."""
    out = []
    for i in range(samples):
        started = time.time()
        run_id = submit_spec(db, settings, tiny_spec(i))
        while jobs.get_job(db, run_id).state == "queued":
            time.sleep(0.005)
        out.append(jobs.get_job(db, run_id).claimed_at.timestamp() - started)
        wait_all(db, [run_id])
    return out


def throughput(db: Database, settings: Settings, n: int, n_workers: int) -> dict:
    t0 = time.time()
    ids = [submit_spec(db, settings, tiny_spec(1000 + i)) for i in range(n)]
    wait_all(db, ids)
    wall = time.time() - t0
    infos = [runs.get_run(db, i) for i in ids]
    statuses = {r.status for r in infos}
    training = sum((r.finished_at - r.started_at).total_seconds() for r in infos)
    return {
        "jobs": n,
        "workers": n_workers,
        "wall_s": wall,
        "jobs_per_minute": 60 * n / wall,
        "statuses": sorted(statuses),
        "fraction_outside_training": 1 - training / (wall * n_workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=10)
    args = parser.parse_args()
    redis.Redis.from_url(REDIS_URL).flushdb()
    db = fresh_database()
    home = Path(tempfile.mkdtemp(prefix="netlens-bench-"))
    settings = Settings(database_url=PG_URL, broker_url=REDIS_URL, home=home)
    procs = start_workers(args.workers, home)
    try:
        wait_all(db, [submit_spec(db, settings, tiny_spec(-1))])  # warm the compile cache
        lat = latency(db, settings, args.latency_samples)
        result = {
            "submit_to_running_s": {
                "median": statistics.median(lat),
                "max": max(lat),
                "samples": len(lat),
            },
            "throughput": throughput(db, settings, args.jobs, args.workers),
        }
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "queue.json").write_text(json.dumps(result, indent=1))
    t = result["throughput"]
    print(
        f"submit -> running (idle worker, Redis): median {result['submit_to_running_s']['median'] * 1000:.0f} ms, "
        f"max {result['submit_to_running_s']['max'] * 1000:.0f} ms  (target < 1 s)"
    )
    print(
        f"{t['jobs']} xor jobs (200 epochs) on {t['workers']} workers: {t['wall_s']:.1f} s, "
        f"{t['jobs_per_minute']:.0f} jobs/min, {t['fraction_outside_training']:.0%} of worker "
        f"time outside training; statuses {t['statuses']}"
    )


if __name__ == "__main__":
    main()
