"""REST API benchmark: many concurrent clients listing runs against a real server.

    .venv/bin/python benchmarks/bench_api.py [--clients 50] [--requests 40] [--cap-s 60]
                                             [--runs 1000] [--limit 50] [--no-postgres]

For SQLite (a temporary NETLENS_HOME) and then PostgreSQL (the scratch database
`netlens_bench_api` on 127.0.0.1:5432, created afresh and dropped at the end; skipped with a
note when the server is missing):

1. Seeds `--runs` runs through `storage.runs.create_run` (the preset specs in turn, statuses
   cycling; no job rows, so the server's reaper has nothing to resend), a user `bench` and
   an API token for it through `storage.users`.
2. Starts `netlens serve --workers 0` on a free loopback port with NETLENS_AUTH=required
   (every request is authenticated by its token, as on a team server), and waits for
   /healthz.
3. One client alone: 20 warm-up requests, then 50 timed ones (sequential latency).
4. The load: `--clients` threads, each with its own keep-alive `requests.Session`, released
   together, each sending up to `--requests` `GET /api/runs?limit=50` (the newest 50 runs
   with their specs) and reading the whole body, until all are done or `--cap-s` seconds
   have passed. A request that is not a 200 with a JSON page of `--limit` runs, or that
   raises, is an error.
5. Reports p50 / p95 / p99 / max latency, throughput (completed requests / wall time of the
   load), errors, the server process's CPU per request (from /proc), and the shares of the
   machine's CPU taken by the server, the load generator, PostgreSQL and other processes
   (noise: above 10 % the figures are flagged). The load generator runs on the same machine
   as the server and PostgreSQL, so on a small machine they share its cores.

Prints a table and writes benchmarks/results/api.json. Figures: docs/performance.md
("REST API").
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import harness  # noqa: E402

from netlens.storage import runs, users  # noqa: E402
from netlens.storage.db import Database  # noqa: E402
from netlens.storage.migrate import upgrade  # noqa: E402
from netlens.storage.presets import get_preset, preset_names  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
PG_NAME = "netlens_bench_api"
STATUSES = ("succeeded", "failed", "cancelled", "succeeded", "diverged")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(db: Database, n: int) -> str:
    """n runs and a token of the user `bench` (returned)."""
    specs = [get_preset(name) for name in preset_names()]
    for i in range(n):
        spec = specs[i % len(specs)]
        spec = spec.model_copy(update={"name": f"{spec.name}-{i}"})
        runs.create_run(db, spec, status=STATUSES[i % len(STATUSES)])
    user = users.create_user(db, "bench", "a long enough password")
    return users.create_token(db, user.id, "bench")[1]


def postgres_db() -> Database | None:
    """A fresh scratch database of this benchmark's own (other benchmarks use netlens_bench,
    which harness.postgres_db drops), or None with a note when the server is missing."""
    try:
        import psycopg

        with psycopg.connect(harness.PG_SERVER, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_NAME}")
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        print(f"note: PostgreSQL skipped ({exc.__class__.__name__}: {exc})")
        return None
    db = Database(harness.PG_URL.rsplit("/", 1)[0] + f"/{PG_NAME}")
    upgrade(db)
    return db


def drop_postgres_db() -> None:
    import psycopg

    with psycopg.connect(harness.PG_SERVER, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, home: Path, database_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "NETLENS_HOME": str(home),
            "NETLENS_DATABASE_URL": database_url,
            "NETLENS_BROKER_URL": "",
            "NETLENS_AUTH": "required",
        }
        self.log = home / "serve.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "netlens.cli",
                    "serve",
                    "--workers",
                    "0",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=home,
            )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("netlens serve exited:\n" + self.log.read_text())
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("netlens serve did not start:\n" + self.log.read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def check_page(response: requests.Response, limit: int) -> bool:
    if response.status_code != 200:
        return False
    try:
        return len(response.json()["runs"]) == limit
    except (ValueError, KeyError):
        return False


def sequential(url: str, token: str, limit: int, n: int = 50) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    target = f"{url}/api/runs?limit={limit}"
    for _ in range(20):
        assert check_page(session.get(target, timeout=30), limit)
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(target, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        size = len(response.content)
        assert check_page(response, limit), response.text[:300]
    return {"p50_ms": statistics.median(times), "min_ms": min(times), "bytes": size}


def load(url: str, token: str, clients: int, per_client: int, cap_s: float, limit: int) -> dict:
    target = f"{url}/api/runs?limit={limit}"
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    spans: list[tuple[float, float]] = []
    deadline = [0.0]

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        barrier.wait()
        mine, bad, first, last = [], [], None, None
        for _ in range(per_client):
            if time.monotonic() > deadline[0]:
                break
            started = time.perf_counter()
            try:
                response = session.get(target, timeout=max(1.0, deadline[0] - time.monotonic()))
                ok = response.status_code == 200 and len(response.content) > 0
                if ok and not mine:  # the first answer of each client is parsed and checked
                    ok = check_page(response, limit)
                if not ok:
                    bad.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                bad.append(exc.__class__.__name__)
                ok = False
            ended = time.perf_counter()
            first = started if first is None else first
            last = ended
            if ok:
                mine.append((ended - started) * 1000)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)
            if first is not None:
                spans.append((first, last))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + cap_s
    barrier.wait()
    for thread in threads:
        thread.join(cap_s + 60)
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    completed = len(latencies)
    return {
        "clients": clients,
        "requests_per_client": per_client,
        "cap_s": cap_s,
        "completed": completed,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "wall_s": wall,
        "throughput_rps": completed / wall if wall else 0.0,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=0.0),
        "mean_ms": statistics.fmean(latencies) if latencies else 0.0,
        "capped": completed + len(errors) < clients * per_client,
    }


def _client_seconds() -> float:
    t = os.times()
    return t.user + t.system


def with_cpu_shares(server_pid: int, fn, *args) -> dict:
    """fn's result plus where the machine's CPU went meanwhile: the server process, this
    process (the load generator), PostgreSQL, and other processes (noise; harness.QUIET)."""
    busy0, wall0 = harness._busy_seconds(), time.perf_counter()
    server0, client0, pg0 = (
        cpu_seconds(server_pid),
        _client_seconds(),
        harness._postgres_seconds(),
    )
    out = fn(*args)
    wall = time.perf_counter() - wall0
    server = cpu_seconds(server_pid) - server0
    client = _client_seconds() - client0
    pg = harness._postgres_seconds() - pg0
    capacity = max(wall, 1.0) * os.cpu_count()
    other = max(0.0, harness._busy_seconds() - busy0 - server - client - pg)
    out.update(
        server_cpu_ms_per_request=server * 1000 / max(1, out["completed"]),
        postgres_cpu_ms_per_request=pg * 1000 / max(1, out["completed"]),
        cpu_share={
            "server": server / capacity,
            "load_generator": client / capacity,
            "postgres": pg / capacity,
            "other": other / capacity,
        },
        other_cpu_share=other / capacity,
    )
    return out


def bench_backend(name: str, db: Database, home: Path, args) -> dict:
    started = time.perf_counter()
    token = seed(db, args.runs)
    seeded_s = time.perf_counter() - started
    url = db.url
    db.dispose()
    server = Server(home, url)
    try:
        alone = sequential(server.url, token, args.limit)
        out = with_cpu_shares(
            server.proc.pid,
            load,
            server.url,
            token,
            args.clients,
            args.requests,
            args.cap_s,
            args.limit,
        )
    finally:
        server.stop()
    out["sequential"] = alone
    out["runs_seeded"], out["seed_s"] = args.runs, seeded_s
    print(
        f"{name}: {out['completed']} requests in {out['wall_s']:.1f} s, "
        f"{out['throughput_rps']:.0f}/s, p50 {out['p50_ms']:.0f} ms, p99 "
        f"{out['p99_ms']:.0f} ms, errors {out['errors']}; alone p50 "
        f"{alone['p50_ms']:.1f} ms ({alone['bytes'] / 1024:.0f} KiB)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--cap-s", type=float, default=60.0, help="time cap of the load")
    parser.add_argument("--runs", type=int, default=1000, help="runs seeded")
    parser.add_argument("--limit", type=int, default=50, help="runs per page")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    results: dict = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="netlens-bench-api-") as tmp:
        home = Path(tmp) / "sqlite"
        home.mkdir()
        results["sqlite"] = bench_backend("sqlite", harness.sqlite_db(str(home)), home, args)
        if not args.no_postgres:
            pg = postgres_db()
            if pg is not None:
                home = Path(tmp) / "postgres"
                home.mkdir()
                try:
                    results["postgres"] = bench_backend("postgres", pg, home, args)
                finally:
                    drop_postgres_db()

    rows = []
    for name in ("sqlite", "postgres"):
        r = results.get(name)
        if not r:
            continue
        label = f"{name}: {r['clients']} clients x {r['requests_per_client']} GET /api/runs"
        rows += [
            (
                f"{label}: p50 / p95 / p99",
                f"{r['p50_ms']:.0f}/{r['p95_ms']:.0f}/{r['p99_ms']:.0f} ms",
                "",
                None,
            ),
            (f"{name}: throughput", f"{r['throughput_rps']:.0f} req/s", "", None),
            (
                f"{name}: errors (of {r['completed'] + r['errors']})",
                str(r["errors"]),
                "0",
                r["errors"] == 0,
            ),
            (
                f"{name}: server CPU per request",
                f"{r['server_cpu_ms_per_request']:.1f} ms",
                "",
                None,
            ),
            (f"{name}: one client alone, p50", f"{r['sequential']['p50_ms']:.1f} ms", "", None),
        ]
    harness.report(results, rows, RESULTS / "api.json")


if __name__ == "__main__":
    main()
