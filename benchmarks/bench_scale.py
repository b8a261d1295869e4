"""Thousands of runs on PostgreSQL: server time of every page at 1,000 and 10,000 runs.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--sizes 1000 10000] [--repeats 7]
                                               [--full-every 20] [--results PATH]

For each size N (default 1,000 then 10,000; `--quick`: 200 then 2,000) a fresh PostgreSQL
database `netlens_bench_scale` on 127.0.0.1:5432 (harness.postgres_db: dropped, created,
migrated; dropped again at the end)
is seeded (`seed`) with:

- 5 members and an admin; N runs owned round-robin, each with its job row: the presets'
  specs in turn (so 7 datasets), learning rates varied, 30-100 recorded epochs each,
  statuses mostly succeeded (some failed, diverged, cancelled, running, queued), tags
  (`preset` on half, `baseline` on a third, `sweep-<k>` on some), final metrics that match
  their last epoch;
- one run_epochs row per recorded epoch of every run (its four metrics and wall time);
- for 1 run in `--full-every` (default 10): the full tensors of a digits MLP 64-32-16-10
  (params of the 3 layers and the signatures of the 3 layers on 50 probe inputs, 50
  recorded epochs in chunks of 10, as the worker's Recorder writes them) and its fixed arrays. The first such
  run is written through the real storage API (`runs.create_run`, `runs.mark_started`,
  `records.write_arrays`, `records.write_epochs`); the others are the same rows copied in
  SQL (`INSERT ... SELECT`), which is the same bytes, 50x faster than encoding them again.
- runs created one every 5 minutes back from now, their jobs enqueued then; finally
  `VACUUM ANALYZE` (the steady state autovacuum keeps a server's database in).

Then (`measure`) the server time, median of `--repeats`, of: the runs table's first block
(`pages.runs.rows_for_request`, as the AG Grid block callback), the table sorted and
filtered by its column filters, the table with a filter expression (`where=`), the REST
list `GET /api/v1/runs?where=...` (Flask test client of the real app), opening a run page
(its layout function plus the reads of its first callbacks: curves, tensor names, one
parameter's history), comparing 8 runs (the compare page's layout: all curves), the admin
page's layout (every card), and the database's size (pg_database_size). Each read starts
with an empty RunData cache (what a fresh server process would do).

Writes benchmarks/results/scale.json (`scale_quick.json` with --quick). Figures:
docs/performance.md, "Thousands of runs on PostgreSQL".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.harness import postgres_db, report  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DB_NAME = "netlens_bench_scale"  # its own: other benchmarks drop netlens_bench
TARGET_MS = 1000.0
MEMBERS = [f"member{i}" for i in range(1, 6)]
ADMIN = "admin"
PASSWORD = "bench-password-123"
HIDDEN = [32, 16]
PROBE = 50
TEMPLATE_EPOCHS = 50  # recorded epochs of the full-tensor runs
CHUNK = 10  # epochs per tensor row, as the Recorder's chunks of a tiny network
WHERE = 'dataset = "digits" and val_accuracy > 0.9 and tag:preset'
STATUSES = ["succeeded"] * 14 + ["failed", "diverged", "cancelled", "running", "queued"]


def _epochs_of(i: int) -> int:
    return 30 + (i * 37) % 71  # 30-100 recorded epochs


def _layers() -> list[dict]:
    widths = [*HIDDEN, 10]
    names = [f"hidden_{k + 1}" for k in range(len(HIDDEN))] + ["output"]
    acts = ["relu"] * len(HIDDEN) + ["softmax"]
    return [
        {"name": n, "kind": "dense", "units": w, "activation": a}
        for n, w, a in zip(names, widths, acts, strict=True)
    ]


def _template_tensors(epochs: int, rng) -> dict[str, np.ndarray]:
    """A digits MLP 64-32-16-10: params and signatures of each layer, one slice per epoch."""
    tensors: dict[str, np.ndarray] = {}
    fan_in = 64
    for layer in _layers():
        units = layer["units"]
        base = rng.normal(0, 0.3, (fan_in, units)).astype("float32")
        drift = rng.normal(0, 0.01, (epochs, fan_in, units)).astype("float32").cumsum(0)
        tensors[f"params/{layer['name']}/kernel"] = base + drift
        tensors[f"params/{layer['name']}/bias"] = rng.normal(0, 0.05, (epochs, units)).astype(
            "float32"
        )
        tensors[f"signatures/{layer['name']}"] = rng.random((epochs, PROBE, units), "float32")
        fan_in = units
    return tensors


def _metrics(i: int, e: int, epochs: int) -> dict[str, float]:
    t = (e + 1) / epochs
    top = 0.5 + 0.49 * ((i * 7919) % 1000) / 1000
    return {
        "train_loss": round(2.3 * (1 - t) + 0.05, 5),
        "train_accuracy": round(0.1 + (top - 0.1) * t, 5),
        "val_loss": round(2.3 * (1 - t) + 0.1, 5),
        "val_accuracy": round(0.1 + (top - 0.12) * t, 5),
    }


def seed(db, n: int, full_every: int = 10) -> dict:
    """n runs as the module docstring says; returns what was seeded and how long it took."""
    from sqlalchemy import insert, text

    from netlens.storage import records, runs, users
    from netlens.storage.models import Job, Run, utcnow
    from netlens.storage.presets import get_preset, preset_names

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    owners = [users.create_user(db, name, PASSWORD).id for name in MEMBERS]
    users.create_user(db, ADMIN, PASSWORD, is_admin=True)
    specs = []
    for name in preset_names():
        spec = get_preset(name)
        specs.append((spec, spec.model_dump(mode="json")))
    digits = next(k for k, (s, _) in enumerate(specs) if s.dataset.name == "digits")

    # The template: one full run through the real storage API.
    tspec = get_preset("digits").model_copy(deep=True)
    tspec.model.hidden = [
        h.model_copy(update={"units": u}) for h, u in zip(tspec.model.hidden, HIDDEN, strict=True)
    ]
    t_epochs = TEMPLATE_EPOCHS
    template = runs.create_run(db, tspec)
    runs.mark_started(db, template, layers=_layers(), device="cpu", data_info={"n_train": 1437})
    records.write_arrays(
        db,
        template,
        {
            "probe/x": rng.random((PROBE, 64), "float32"),
            "probe/y": (np.arange(PROBE) % 10).astype("int32"),
        },
    )
    tensors = _template_tensors(t_epochs, rng)
    for start in range(0, t_epochs, CHUNK):
        ep = list(range(start + 1, min(start + CHUNK, t_epochs) + 1))
        records.write_epochs(
            db,
            template,
            records.EpochChunk(
                ep,
                [_metrics(0, e - 1, t_epochs) for e in ep],
                {k: v[start : start + len(ep)] for k, v in tensors.items()},
                {},
                [time.time()] * len(ep),
            ),
        )
    runs.finish_run(db, template, "succeeded")
    template_info = runs.get_run(db, template)
    template_bytes = template_info.recorded_bytes

    # The other n - 1 runs: bulk rows.
    now = utcnow()
    run_rows, full = [], []
    for i in range(1, n):
        is_full = i % full_every == 0
        spec, dumped = specs[digits] if is_full else specs[i % len(specs)]
        epochs = t_epochs if is_full else _epochs_of(i)
        status = "succeeded" if is_full else STATUSES[i % len(STATUSES)]
        recorded = 0 if status == "queued" else epochs
        last = _metrics(i, recorded - 1, epochs) if recorded else {}
        tags = (["preset"] if i % 2 == 0 else []) + (["baseline"] if i % 3 == 0 else [])
        if i % 50 < 10:
            tags.append(f"sweep-{i // 50}")
        created = now - timedelta(minutes=5 * (n - i))  # one run every 5 minutes
        run_rows.append(
            {
                "name": f"{spec.name}-{i}",
                "status": status,
                "spec": dumped
                | {"optimizer": dumped["optimizer"] | {"learning_rate": 0.001 * (1 + i % 9)}},
                "spec_version": 1,
                "dataset": spec.dataset.name,
                "architecture": spec.model.describe(),
                "optimizer": spec.optimizer.name,
                "epochs_total": epochs,
                "epochs_recorded": recorded,
                "last_epoch": recorded or None,
                "recorded_bytes": template_bytes if is_full else 0,
                "final_train_loss": last.get("train_loss"),
                "final_train_accuracy": last.get("train_accuracy"),
                "final_val_loss": last.get("val_loss"),
                "final_val_accuracy": last.get("val_accuracy"),
                "layers": _layers(),
                "tags": tags,
                "notes": "",
                "error": "Traceback ...\nFloatingPointError" if status == "failed" else None,
                "device": "cpu",
                "data_info": {"n_train": 1437},
                "created_at": created,
                "started_at": created + timedelta(seconds=20) if recorded else None,
                "finished_at": (
                    created + timedelta(minutes=3) if status not in ("running", "queued") else None
                ),
                "owner_id": owners[i % len(owners)],
            }
        )
        full.append(is_full)
    with db.session() as s:
        s.execute(
            text("UPDATE runs SET owner_id = :o WHERE id = :r"), {"o": owners[0], "r": template}
        )
        ids = []
        for lo in range(0, len(run_rows), 2000):
            ids += s.scalars(insert(Run).returning(Run.id), run_rows[lo : lo + 2000]).all()
        s.execute(
            insert(Job),
            [
                {
                    "run_id": rid,
                    "state": row["status"],
                    "queue": "gpu" if rid % 8 == 0 else "cpu",
                    "attempt": 1,
                    "max_attempts": 3,
                    "progress_epoch": row["epochs_recorded"],
                    "progress_total": row["epochs_total"],
                    "last_metrics": {},
                    "error": row["error"],
                    "enqueued_at": row["created_at"],
                    "claimed_at": row["started_at"],
                    "finished_at": row["finished_at"],
                }
                for rid, row in zip(ids, run_rows, strict=True)
            ]
            + [
                {
                    "run_id": template,
                    "state": "succeeded",
                    "queue": "cpu",
                    "last_metrics": {},
                    "enqueued_at": now,
                }
            ],
        )
    # run_epochs of every bulk run, generated in SQL from the run's own row.
    with db.session() as s:
        s.execute(
            text(
                """
                INSERT INTO run_epochs (run_id, epoch, metrics, wall_time)
                SELECT r.id, e, json_build_object(
                    'train_loss', round((2.3 * (1 - e::float / r.epochs_total) + 0.05)::numeric, 5),
                    'train_accuracy', round((e::float / r.epochs_total * r.final_train_accuracy)::numeric, 5),
                    'val_loss', round((2.3 * (1 - e::float / r.epochs_total) + 0.1)::numeric, 5),
                    'val_accuracy', round((e::float / r.epochs_total * r.final_val_accuracy)::numeric, 5)),
                    extract(epoch from now()) + e
                FROM runs r, generate_series(1, r.epochs_recorded) AS e
                WHERE r.id <> :template
                """
            ),
            {"template": template},
        )
    full_ids = [rid for rid, f in zip(ids, full, strict=True) if f]
    with db.session() as s:
        for table in ("run_tensors", "run_arrays"):
            cols = [
                r[0]
                for r in s.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = :t AND column_name <> 'run_id' ORDER BY ordinal_position"
                    ),
                    {"t": table},
                )
            ]
            listed = ", ".join(cols)
            s.execute(
                text(
                    f"INSERT INTO {table} (run_id, {listed}) "  # noqa: S608 - our own names
                    f"SELECT f.id, {listed} FROM {table} t, unnest(CAST(:ids AS integer[])) AS f(id) "
                    "WHERE t.run_id = :template"
                ),
                {"ids": full_ids, "template": template},
            )
    # A server's database is vacuumed by autovacuum soon after such writes: measure that
    # steady state (visibility map set, statistics fresh), not the minute after a bulk load.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with db.session() as s:
        counts = {
            t: s.scalar(text(f"SELECT count(*) FROM {t}"))  # noqa: S608
            for t in ("runs", "jobs", "run_epochs", "run_tensors", "run_arrays")
        }
    return {
        "runs": n,
        "full_tensor_runs": len(full_ids) + 1,
        "template_run": template,
        "full_run_ids": [template, *full_ids],
        "rows": counts,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm: the first call compiles SQL and fills connection caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def measure(db, seeded: dict, repeats: int = 7) -> dict:
    """Server time (ms, median of `repeats`) of each page at this size, and the database size."""
    import flask
    from sqlalchemy import text

    from netlens.storage.settings import Settings
    from netlens.storage.users import Actor, get_user_by_name
    from netlens.webapp.app import create_app
    from netlens.webapp.data import RunData

    home = Path(tempfile.mkdtemp(prefix="netlens-scale-"))
    settings = Settings(home=home, database_url=db.url, broker_url=None)
    app = create_app(settings, db)
    web = app.server.config["NETLENS"]
    runs_page = sys.modules["pages.runs"]
    run_page = sys.modules["pages.run"]
    compare_page = sys.modules["pages.compare"]
    admin_page = sys.modules["pages.admin"]
    admin = Actor.of(get_user_by_name(db, ADMIN))
    client = app.server.test_client()
    run_id = seeded["full_run_ids"][len(seeded["full_run_ids"]) // 2]
    eight = ",".join(str(i) for i in seeded["full_run_ids"][-8:])

    def in_request(path, fn):
        def call():
            with app.server.test_request_context(path):
                flask.g.netlens_actor = admin
                web.data = RunData(db)  # an empty cache: what a fresh process reads
                return fn()

        return call

    def grid(request, where=None):
        def call():
            out = runs_page.rows_for_request(request, where)
            assert out["rowData"] or out["rowCount"] == 0, out
            return out

        return in_request("/runs", call)

    def rest(path):
        def call():
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])

        return call

    def open_run():
        info = web.data.info(run_id)
        run_page.layout(run_id=str(run_id))
        web.data.metrics(info)
        names = web.data.tensor_names(info)
        web.data.history(info, next(n for n in names if n.startswith("params/")))

    block = runs_page.BLOCK
    figures = {
        "runs table: first block (newest first, + count)": grid({"startRow": 0, "endRow": block}),
        "runs table: sorted by val accuracy, name filter": grid(
            {
                "startRow": 0,
                "endRow": block,
                "sortModel": [{"colId": "final_val_accuracy", "sort": "desc"}],
                "filterModel": {"name": {"filter": "dig"}, "status": {"filter": "succ"}},
            }
        ),
        "runs table: block at offset 5% (sorted by train loss)": grid(
            {
                "startRow": (seeded["runs"] // 20) // block * block,
                "endRow": (seeded["runs"] // 20) // block * block + block,
                "sortModel": [{"colId": "final_train_loss", "sort": "asc"}],
            }
        ),
        "runs table: filter expression (where=)": grid(
            {
                "startRow": 0,
                "endRow": block,
                "sortModel": [{"colId": "final_val_accuracy", "sort": "desc"}],
            },
            WHERE,
        ),
        "REST GET /api/v1/runs?where=...": rest(
            "/api/v1/runs?limit=50&where=" + __import__("urllib.parse").parse.quote(WHERE)
        ),
        "REST GET /api/v1/runs (first page)": rest("/api/v1/runs?limit=50"),
        "run page: layout + first reads": in_request(f"/runs/{run_id}", open_run),
        "compare 8 runs: layout (all curves)": in_request(
            f"/compare?runs={eight}", lambda: compare_page.layout(runs=eight)
        ),
        "REST GET /api/v1/compare/metrics (8 runs)": rest(f"/api/v1/compare/metrics?runs={eight}"),
        "admin page: layout (all cards)": in_request("/admin", admin_page.layout),
    }
    out = {name: _median_ms(fn, repeats) for name, fn in figures.items()}
    with db.session() as s:
        out["database size (MB)"] = round(
            s.scalar(text("SELECT pg_database_size(current_database())")) / 1e6, 1
        )
    return out


def _drop(name: str) -> None:
    import psycopg

    from benchmarks.harness import PG_SERVER

    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 runs")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--full-every", type=int, default=10)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    sizes = args.sizes or ([200, 2000] if args.quick else [1000, 10_000])
    path = args.results or RESULTS / ("scale_quick.json" if args.quick else "scale.json")
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_average(),
        },
        "where": WHERE,
        "full_every": args.full_every,
        "sizes": {},
    }
    for n in sizes:
        db = postgres_db(DB_NAME)
        if db is None:
            sys.exit("PostgreSQL is needed (127.0.0.1:5432, user postgres)")
        seeded = seed(db, n, args.full_every)
        print(f"{n} runs seeded in {seeded['seconds']} s: {seeded['rows']}")
        load0 = load_average()
        figures = measure(db, seeded, args.repeats)
        results["sizes"][str(n)] = {
            "seeded": {k: v for k, v in seeded.items() if k != "full_run_ids"},
            "figures_ms": figures,
            "load_average": [load0, load_average()],
        }
        for name, value in figures.items():
            print(f"  {name:<55} {value:>9}")
        db.engine.dispose()
    _drop(DB_NAME)  # a GB of the shared server's disk
    small, large = (results["sizes"][str(s)]["figures_ms"] for s in (sizes[0], sizes[-1]))
    rows = []
    for name in large:
        ratio = round(large[name] / small[name], 2) if small[name] else None
        met = None if "size" in name else large[name] < TARGET_MS
        rows.append((f"{name} @{sizes[-1]} (x{ratio} vs {sizes[0]})", large[name], "< 1000", met))
    results["ratios"] = {
        name: round(large[name] / small[name], 2) if small[name] else None for name in large
    }
    report(results, rows, path, notes=lambda r: None)


if __name__ == "__main__":
    main()
