"""Core NetLens benchmark: what recording every epoch costs, against training alone and peers.

Usage: .venv/bin/python benchmarks/bench_core.py [--quick] [--no-postgres]
Prints a table and writes benchmarks/results/core.json.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (benchmarks/peers.py: PyTorch and tensorboardX baselines)

from storage import migrate, records, runs  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.presets import get_preset  # noqa: E402
from storage.spec import ExperimentSpec, parse_spec  # noqa: E402
from worker import runner  # noqa: E402
from worker.datasets import Dataset, load_dataset  # noqa: E402
from worker.recorder import Recorder  # noqa: E402
from worker.train import Trainer  # noqa: E402

PG_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/netlens_bench"
RESULTS = Path(__file__).resolve().parent / "results" / "core.json"
READ_TENSOR = "params/hidden_2/kernel"


# -- data, specs, databases -------------------------------------------------------------------
def synthetic_dataset(n_train: int, n_val: int = 1000, n_probe: int = 1000,
                      features: int = 784, classes: int = 10, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)

    def inputs(n: int) -> np.ndarray:
        return rng.random((n, features), dtype=np.float32)

    return Dataset(x_train=inputs(n_train), y_train=rng.integers(0, classes, n_train, np.int32),
                   x_val=inputs(n_val), y_val=rng.integers(0, classes, n_val, np.int32),
                   probe_x=inputs(n_probe), probe_y=rng.integers(0, classes, n_probe, np.int64),
                   probe_is_ood=np.zeros(n_probe, bool), classes=list(range(classes)),
                   class_names=[str(c) for c in range(classes)])


def mlp_spec(epochs: int, n_train: int) -> ExperimentSpec:
    return parse_spec({
        "name": f"bench-mlp-{n_train}", "dataset": {"name": "mnist", "n_samples": n_train},
        "model": {"hidden": [{"units": 128, "activation": "relu"},
                             {"units": 64, "activation": "relu"}]},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {"epochs": epochs, "batch_size": 128},
        "recording": {"probe_size": 1000, "grid_resolution": 0}})


def preset_spec(name: str, epochs: int) -> ExperimentSpec:
    data = get_preset(name).model_dump()
    data["training"]["epochs"] = epochs
    return parse_spec(data)


def sqlite_db(folder: str) -> Database:
    db = Database(f"sqlite:///{folder}/bench.db")
    migrate.upgrade(db)
    return db


def postgres_db() -> Database | None:
    """A fresh `netlens_bench` database, or None (with a note) when the server is missing."""
    try:
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS netlens_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE netlens_bench")
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        print(f"note: PostgreSQL sections skipped ({exc.__class__.__name__}: {exc})")
        return None
    db = Database(PG_URL)
    migrate.upgrade(db)
    return db


# -- timed runs -------------------------------------------------------------------------------
def _noop(_chunk) -> None:
    pass


def time_training(trainer: Trainer) -> float:
    """Seconds per epoch of one run of an already compiled Trainer, from epoch 0's callback."""
    stamps: list[float] = []
    trainer.run(lambda _c: stamps.append(time.perf_counter()) if not stamps else None)
    return (time.perf_counter() - stamps[0]) / trainer.spec.training.epochs


def time_recorded(db: Database, trainer: Trainer) -> tuple[float, int]:
    """Seconds per epoch of the real pipeline (Recorder thread + SQL), same window as above.

    Reproduces worker.runner.run_experiment with an in-memory Dataset; the clock stops when
    the recorder has flushed every epoch and the run is marked finished."""
    data, spec = trainer.data, trainer.spec
    run_id = runs.create_run(db, spec)
    runs.mark_started(db, run_id, layers=[x.to_dict() for x in trainer.layer_infos],
                      device=runner.describe_device(), data_info=runner.data_info(data))
    records.write_arrays(db, run_id, runner._static_arrays(trainer, data))
    recorder, stamps = Recorder(db, run_id), []

    def on_chunk(chunk) -> None:
        if not stamps:
            stamps.append(time.perf_counter())
        recorder.put(chunk)

    status = runner._train_and_finish(db, run_id, trainer, recorder, on_chunk)
    elapsed = time.perf_counter() - stamps[0]
    assert status == "succeeded", runs.get_run(db, run_id).error
    return elapsed / spec.training.epochs, run_id


def warm(*trainers: Trainer) -> None:
    """Compile: the first run() of a Trainer traces and compiles; later runs reuse it."""
    for trainer in trainers:
        trainer.run(_noop)


# -- sections ---------------------------------------------------------------------------------
def bench_mlp(dbs: dict[str, Database], epochs: int, repeats: int) -> dict:
    spec, data = mlp_spec(epochs, 60_000), synthetic_dataset(60_000)
    plain, rec = Trainer(spec, data, record=False), Trainer(spec, data)
    warm(plain, rec)
    times: dict[str, list[float]] = {"train": [], **{k: [] for k in dbs}}
    for _ in range(repeats):  # interleaved, so that drift hits every variant alike
        times["train"].append(time_training(plain))
        for kind, db in dbs.items():
            times[kind].append(time_recorded(db, rec)[0])
    best = {k: min(v) * 1e3 for k, v in times.items()}
    out = {"epochs": epochs, "repeats": repeats, "train_ms": best["train"], "data": data,
           "params": {f"{layer}/{p}": np.asarray(v) for layer, ps in rec.init_params.items()
                      for p, v in ps.items()}}
    for kind in dbs:
        out[f"{kind}_ms"] = best[kind]
        out[f"{kind}_ratio"] = best[kind] / best["train"]
        out[f"{kind}_cost_ms"] = best[kind] - best["train"]
    return out


def bench_playground(db: Database, epochs: int, repeats: int) -> dict:
    spec = preset_spec("spiral", epochs)
    data = load_dataset(spec)
    plain, rec = Trainer(spec, data, record=False), Trainer(spec, data)
    warm(plain, rec)
    train = min(time_training(plain) for _ in range(repeats))
    recorded = min(time_recorded(db, rec)[0] for _ in range(repeats))
    return {"epochs": epochs, "n_train": len(data.x_train), "train_ms": train * 1e3,
            "sqlite_ms": recorded * 1e3, "sqlite_ratio": recorded / train,
            "recorded_epochs_per_s": 1 / recorded, "data": data}


def bench_xor(db: Database, epochs: int) -> dict:
    """Cold: the whole run_experiment (dataset, compile, train, write); then steady state."""
    spec = preset_spec("xor", epochs)
    run_id = runs.create_run(db, spec)
    start = time.perf_counter()
    status = runner.run_experiment(db, run_id)
    cold = time.perf_counter() - start
    assert status == "succeeded", runs.get_run(db, run_id).error
    assert runs.get_run(db, run_id).epochs_recorded == epochs + 1
    trainer = Trainer(spec, load_dataset(spec))
    warm(trainer)
    steady = time_recorded(db, trainer)[0]
    return {"epochs": epochs, "cold_total_s": cold, "steady_ms_per_epoch": steady * 1e3}


def bench_read(dbs: dict[str, Database], epochs: int, repeats: int) -> dict:
    spec, data = mlp_spec(epochs, 2_000), synthetic_dataset(2_000)
    trainer = Trainer(spec, data)
    out = {"epochs_read": min(100, epochs), "repeats": repeats}
    for kind, db in dbs.items():
        _, run_id = time_recorded(db, trainer)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            got_epochs, values = records.read_tensor(db, run_id, READ_TENSOR, 1, out["epochs_read"])
            times.append(time.perf_counter() - start)
        assert values.shape == (out["epochs_read"], 128, 64), values.shape
        assert list(got_epochs) == list(range(1, out["epochs_read"] + 1))
        out[f"{kind}_ms"] = statistics.median(times) * 1e3
    return out


# -- report -----------------------------------------------------------------------------------
def table_rows(r: dict) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, target, met) rows; met None when there is no target."""
    m, p, x, rd = r["mlp"], r["playground"], r["xor"], r["read"]
    rows = [("MLP train alone, ms/epoch", f"{m['train_ms']:.0f}", "", None)]
    for kind, limit in (("sqlite", 1.05), ("postgres", 1.10)):
        if f"{kind}_ms" in m:
            rows += [(f"MLP recorded to {kind}, ms/epoch", f"{m[kind + '_ms']:.0f}", "", None),
                     (f"MLP {kind} / train", f"{m[kind + '_ratio']:.3f}", f"<= {limit}",
                      m[kind + "_ratio"] <= limit)]
    rows += [("Playground train alone, ms/epoch", f"{p['train_ms']:.3f}", "", None),
             ("Playground recorded (sqlite), ms/epoch", f"{p['sqlite_ms']:.3f}", "", None),
             ("Playground sqlite / train", f"{p['sqlite_ratio']:.3f}", "<= 1.3",
              p["sqlite_ratio"] <= 1.3),
             ("Playground recorded epochs/s", f"{p['recorded_epochs_per_s']:.0f}", "", None),
             (f"XOR {x['epochs']} epochs recorded, ms/epoch", f"{x['steady_ms_per_epoch']:.4f}",
              "<= 0.1", x["steady_ms_per_epoch"] <= 0.1),
             ("XOR whole run incl. compile, s", f"{x['cold_total_s']:.2f}", "", None)]
    rows += peers.table_rows(r.get("peers", {}), m, p)
    for kind, limit in (("sqlite", 10), ("postgres", 30)):
        if f"{kind}_ms" in rd:
            rows.append((f"read {rd['epochs_read']} epochs of {READ_TENSOR} ({kind}), ms",
                         f"{rd[kind + '_ms']:.2f}", f"<= {limit}", rd[kind + "_ms"] <= limit))
    return rows


def print_table(rows) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':>10}  {'target':>8}  met")
    for name, value, target, met in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>8}  {'' if met is None else met}")


def machine() -> dict:
    import jax

    return {"date": date.today().isoformat(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__, "device": runner.describe_device()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs: a smoke check")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory(prefix="netlens-bench-") as folder:
        dbs = {"sqlite": sqlite_db(folder)}
        pg = None if args.no_postgres else postgres_db()
        if pg is not None:
            dbs["postgres"] = pg
        r: dict = {"machine": machine(), "quick": q}
        r["mlp"] = bench_mlp(dbs, epochs=2 if q else 4, repeats=1 if q else 3)
        r["playground"] = bench_playground(dbs["sqlite"], 100 if q else 500, 2 if q else 5)
        r["xor"] = bench_xor(dbs["sqlite"], 2_000 if q else 20_000)
        r["peers"] = peers.run_all(r["mlp"], r["playground"], quick=q)
        r["read"] = bench_read(dbs, epochs=110, repeats=5 if q else 21)
        for db in dbs.values():
            db.dispose()
    for key in ("params", "data"):
        r["mlp"].pop(key)
    r["playground"].pop("data")
    rows = table_rows(r)
    print_table(rows)
    r["table"] = [{"figure": a, "value": b, "target": c, "met": d} for a, b, c, d in rows]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(r, indent=2) + "\n")
    print(f"\nwritten: {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
