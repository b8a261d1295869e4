"""REST API benchmark: many concurrent clients listing runs against a real server; and, with
--overhead, the API against the same reads in-process.

    .venv/bin/python benchmarks/bench_api.py [--clients 50] [--requests 40] [--cap-s 60]
                                             [--runs 1000] [--limit 50] [--no-postgres]
    .venv/bin/python benchmarks/bench_api.py --overhead [--runs 10000] [--rounds 5]
                                             [--pairs 31] [--no-postgres] [--no-sqlite]

The load (the default):

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

The overhead (--overhead; goal: each API figure at most 2x the in-process one), on
PostgreSQL (`netlens_bench_api`, as above) and SQLite:

1. Seeds `--runs` runs (default 10,000 here) through `storage.runs.create_runs` (1,000 per
   transaction), plus one run whose `params/hidden_1/kernel` (64x128 float32) and two other
   tensors were recorded for 100 epochs through `storage.records.write_epochs`, 10 epochs
   per chunk (one row per tensor per chunk, as the recorder commits them); a member `bench`
   and its token.
2. The same live `netlens serve --workers 0` (logins required: every request carries the
   token).
3. Paging: every run, page by page, at the largest page size (500): over HTTP, following
   `next` from `GET /api/runs?limit=500` and decoding each JSON page (the ids checked
   against the database); in-process, `storage.runs.runs_page(limit=500, offset=...)` until
   `total` is reached. `--rounds` rounds of each, interleaved after one warm-up each: the
   figure is the median of the rounds' own ratios (drift between rounds cancels out).
4. One tensor: 100 epochs of the kernel, `GET /api/runs/{id}/tensors/params/hidden_1/kernel
   ?start=0&stop=99` as .npy (`np.load` of the body, values checked) against
   `storage.records.read_tensor(db, id, name, 0, 99)`; `--pairs` (31) pairs after 5
   warm-ups, the median of the pairs' ratios. Also: the same request answered 304
   (If-None-Match).

Every section records other processes' share of the CPU (as harness.measured, the server's
counted as ours); writes benchmarks/results/api_overhead.json (or --results).
tests/integration/test_bench_api.py runs it at a tiny size (SQLite, 20 runs).
"""

from __future__ import annotations

import argparse
import io
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

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import harness  # noqa: E402

from netlens.storage import records, runs, users  # noqa: E402
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


# ---- --overhead: the API against the same reads in-process ----------------------------------

TENSOR, TENSOR_SHAPE, TENSOR_EPOCHS, CHUNK_EPOCHS = "params/hidden_1/kernel", (64, 128), 100, 10
MAX_PAGE = 500  # webapp.openapi.MAX_LIMIT


def seed_many(db: Database, n: int, batch: int = 1000) -> None:
    """n runs (no jobs), the preset specs and STATUSES in turn, `batch` per transaction."""
    specs = [get_preset(name) for name in preset_names()]
    for first in range(0, n, batch):
        numbers = range(first, min(n, first + batch))
        runs.create_runs(
            db,
            [
                specs[i % len(specs)].model_copy(
                    update={"name": f"{specs[i % len(specs)].name}-{i}"}
                )
                for i in numbers
            ],
            [STATUSES[i % len(STATUSES)] for i in numbers],
        )


def seed_tensor_run(db: Database) -> int:
    """A run with TENSOR (and two more tensors) recorded for TENSOR_EPOCHS epochs."""
    run_id = runs.create_run(db, get_preset("digits"), status="succeeded")
    rng = np.random.default_rng(0)
    rows, cols = TENSOR_SHAPE
    for start in range(0, TENSOR_EPOCHS, CHUNK_EPOCHS):
        epochs = list(range(start, start + CHUNK_EPOCHS))
        tensors = {
            TENSOR: rng.standard_normal((CHUNK_EPOCHS, rows, cols)).astype(np.float32),
            "params/hidden_1/bias": rng.standard_normal((CHUNK_EPOCHS, cols)).astype(np.float32),
            "params/output/kernel": rng.standard_normal((CHUNK_EPOCHS, cols, 10)).astype(
                np.float32
            ),
        }
        metrics = [{"train_loss": 1.0 / (e + 1), "train_accuracy": 0.5} for e in epochs]
        records.write_epochs(db, run_id, records.EpochChunk(epochs, metrics, tensors, {}))
    return run_id


def page_http(session: requests.Session, url: str) -> list[int]:
    ids, target = [], f"/api/runs?limit={MAX_PAGE}"
    while target:
        response = session.get(url + target, timeout=60)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        ids.extend(r["id"] for r in body["runs"])
        target = body.get("next")
    return ids


def page_inproc(db: Database) -> list[int]:
    ids, offset = [], 0
    while True:
        items, total = runs.runs_page(db, limit=MAX_PAGE, offset=offset)
        ids.extend(r.id for r in items)
        offset += MAX_PAGE
        if offset >= total:
            return ids


def tensor_http(session: requests.Session, url: str, run_id: int) -> np.ndarray:
    response = session.get(
        f"{url}/api/runs/{run_id}/tensors/{TENSOR}",
        params={"start": 0, "stop": TENSOR_EPOCHS - 1},
        headers={"Accept": "application/octet-stream"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:300]
    return np.load(io.BytesIO(response.content), allow_pickle=False)["value"]


def tensor_inproc(db: Database, run_id: int) -> np.ndarray:
    return records.read_tensor(db, run_id, TENSOR, 0, TENSOR_EPOCHS - 1)[1]


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, out


def _paired(api, local, pairs: int, warmups: int) -> dict:
    """Alternate api() and local() `pairs` times after `warmups` of each: medians in ms and
    the median of the pairs' ratios (api / local)."""
    for _ in range(warmups):
        api(), local()
    api_ms, local_ms = [], []
    for i in range(pairs):
        first, second = (api, local) if i % 2 == 0 else (local, api)  # neither always first
        t_first, _ = _timed(first)
        t_second, _ = _timed(second)
        api_ms.append(t_first if first is api else t_second)
        local_ms.append(t_second if first is api else t_first)
    ratios = [a / b for a, b in zip(api_ms, local_ms, strict=True)]
    return {
        "api_ms": statistics.median(api_ms),
        "inproc_ms": statistics.median(local_ms),
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "api_times_ms": api_ms,
        "inproc_times_ms": local_ms,
    }


def _measured(server_pid: int, fn, *args) -> dict:
    """fn's result plus `other_cpu_share`: the share of the machine's CPU that processes other
    than this one, the server and PostgreSQL used meanwhile (as harness.measured does)."""
    own0, busy0 = harness._own_seconds() + cpu_seconds(server_pid), harness._busy_seconds()
    wall0 = time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - wall0
    own = harness._own_seconds() + cpu_seconds(server_pid) - own0
    other = max(0.0, harness._busy_seconds() - busy0 - own)
    out["other_cpu_share"] = other / (max(wall, 1.0) * os.cpu_count())
    return out


def overhead_backend(name: str, db: Database, home: Path, args) -> dict:
    started = time.perf_counter()
    seed_many(db, args.runs)
    tensor_run = seed_tensor_run(db)
    token = seed(db, 0)
    seeded_s = time.perf_counter() - started
    server = Server(home, db.url)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    try:
        expected = page_inproc(db)
        assert len(expected) == args.runs + 1 == len(set(expected))
        assert page_http(session, server.url) == expected
        np.testing.assert_array_equal(
            tensor_http(session, server.url, tensor_run), tensor_inproc(db, tensor_run)
        )
        paging = _measured(
            server.proc.pid,
            _paired,
            lambda: page_http(session, server.url),
            lambda: page_inproc(db),
            args.rounds,
            1,
        )
        paging["pages"] = -(-len(expected) // MAX_PAGE)
        tensor = _measured(
            server.proc.pid,
            _paired,
            lambda: tensor_http(session, server.url, tensor_run),
            lambda: tensor_inproc(db, tensor_run),
            args.pairs,
            min(5, args.pairs),
        )
        tensor["bytes"] = TENSOR_EPOCHS * int(np.prod(TENSOR_SHAPE)) * 4
        url = f"{server.url}/api/runs/{tensor_run}/tensors/{TENSOR}?start=0&stop=99&format=npy"
        tag = session.get(url, timeout=60).headers.get("ETag")  # (none before issue 18)
        not_modified = []
        for _ in range(args.pairs if tag else 0):
            t, response = _timed(session.get, url, headers={"If-None-Match": tag})
            assert response.status_code == 304
            not_modified.append(t)
        tensor["not_modified_ms"] = statistics.median(not_modified) if tag else float("nan")
    finally:
        session.close()
        server.stop()
    out = {"runs_seeded": args.runs + 1, "seed_s": seeded_s, "paging": paging, "tensor": tensor}
    print(
        f"{name}: paging {len(expected)} runs ({paging['pages']} pages of {MAX_PAGE}): API "
        f"{paging['api_ms']:.0f} ms, in-process {paging['inproc_ms']:.0f} ms, ratio "
        f"{paging['ratio']:.2f}; tensor 100 x 64x128 .npy: API {tensor['api_ms']:.1f} ms, "
        f"in-process {tensor['inproc_ms']:.1f} ms, ratio {tensor['ratio']:.2f}, 304 "
        f"{tensor['not_modified_ms']:.1f} ms"
    )
    return out


def overhead(args) -> None:
    results: dict = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory(prefix="netlens-bench-api-") as tmp:
        if not args.no_postgres:
            pg = postgres_db()
            if pg is not None:
                home = Path(tmp) / "postgres"
                home.mkdir()
                try:
                    results["postgres"] = overhead_backend("postgres", pg, home, args)
                finally:
                    pg.dispose()
                    drop_postgres_db()
        if not args.no_sqlite:
            home = Path(tmp) / "sqlite"
            home.mkdir()
            db = harness.sqlite_db(str(home))
            try:
                results["sqlite"] = overhead_backend("sqlite", db, home, args)
            finally:
                db.dispose()
    rows = []
    for name in ("postgres", "sqlite"):
        r = results.get(name)
        if not r:
            continue
        p, t = r["paging"], r["tensor"]
        rows += [
            (
                f"{name}: page through {r['runs_seeded']:,} runs (x{MAX_PAGE}): API / in-process",
                f"{p['ratio']:.2f}",
                "<= 2",
                p["ratio"] <= 2,
            ),
            (
                f"{name}:   API, in-process (ms)",
                f"{p['api_ms']:.0f}, {p['inproc_ms']:.0f}",
                "",
                None,
            ),
            (
                f"{name}: 100 epochs of a 64x128 kernel, .npy: API / in-process",
                f"{t['ratio']:.2f}",
                "<= 2",
                t["ratio"] <= 2,
            ),
            (
                f"{name}:   API, in-process, 304 (ms)",
                f"{t['api_ms']:.1f}, {t['inproc_ms']:.1f}, {t['not_modified_ms']:.1f}",
                "",
                None,
            ),
        ]

    def notes(res: dict) -> None:
        for name in ("postgres", "sqlite"):
            for part in ("paging", "tensor"):
                share = res.get(name, {}).get(part, {}).get("other_cpu_share", 0)
                if share > harness.QUIET:
                    print(
                        f"note: other processes used {share:.0%} of the CPU during {name} "
                        f"{part}: its figures are noisy, run again on a quiet machine"
                    )

    harness.report(results, rows, args.results or RESULTS / "api_overhead.json", notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--cap-s", type=float, default=60.0, help="time cap of the load")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs seeded (1,000; 10,000 with --overhead)"
    )
    parser.add_argument("--limit", type=int, default=50, help="runs per page")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--overhead", action="store_true", help="the API against in-process reads, not the load"
    )
    parser.add_argument("--rounds", type=int, default=5, help="--overhead: paging rounds")
    parser.add_argument("--no-sqlite", action="store_true", help="--overhead: PostgreSQL only")
    parser.add_argument("--pairs", type=int, default=31, help="--overhead: tensor reads timed")
    parser.add_argument("--results", type=Path, help="--overhead: write here instead")
    args = parser.parse_args()
    if args.overhead:
        args.runs = 10_000 if args.runs is None else args.runs
        return overhead(args)
    args.runs = 1000 if args.runs is None else args.runs

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
