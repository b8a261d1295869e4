"""Helpers for the benchmarks: scratch databases, noise detection (other processes' CPU
during a section) and the results table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from netlens.storage import migrate
from netlens.storage.db import Database

PG_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/netlens_bench"
QUIET = 0.1  # other processes' share of the CPU above which a section's figures are noisy


def sqlite_db(folder: str) -> Database:
    db = Database(f"sqlite:///{folder}/bench.db")
    migrate.upgrade(db)
    return db


def postgres_db(name: str = "netlens_bench") -> Database | None:
    """A fresh database `name` (default `netlens_bench`), or None (with a note) when the
    server is missing."""
    try:
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        print(f"note: PostgreSQL sections skipped ({exc.__class__.__name__}: {exc})")
        return None
    db = Database(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    migrate.upgrade(db)
    return db


def print_table(rows) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':>10}  {'target':>8}  met")
    for name, value, target, met in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>8}  {'' if met is None else met}")


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _postgres_seconds() -> float:
    """CPU seconds used by the running PostgreSQL server processes (they work for us too)."""
    total = 0
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = path.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
            fields = text[text.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """This process's CPU, its finished children's (a server it started and stopped) and
    PostgreSQL's."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + _postgres_seconds()


def measured(fn, *args, **kwargs) -> dict:
    """fn's result plus `other_cpu_share`: the share of the machine's CPU that other processes
    (PostgreSQL's excepted) used meanwhile: 0 on a quiet machine; above ~0.1, noisy figures."""
    own0, busy0, wall0 = _own_seconds(), _busy_seconds(), time.perf_counter()
    out = fn(*args, **kwargs)
    wall, own = time.perf_counter() - wall0, _own_seconds() - own0
    # CPU times tick every 10 ms: below a second of wall time the share means nothing.
    other = max(0.0, _busy_seconds() - busy0 - own)
    out["other_cpu_share"] = other / (max(wall, 1.0) * os.cpu_count())
    return out


def quietest(tries: int, fn, *args, **kwargs) -> dict:
    """Run a section up to `tries` times until other processes stayed quiet; keep the quietest."""
    best: dict | None = None
    for _ in range(tries):
        out = measured(fn, *args, **kwargs)
        if best is None or out["other_cpu_share"] < best["other_cpu_share"]:
            best = out
        if best["other_cpu_share"] <= QUIET:
            break
    return best


def print_noise_notes(results: dict) -> None:
    for name, section in results.items():
        if isinstance(section, dict) and section.get("other_cpu_share", 0) > QUIET:
            print(
                f"note: other processes used {section['other_cpu_share']:.0%} of the CPU "
                f"during {name}: its figures are noisy, run again on a quiet machine"
            )


def report(results: dict, rows, path, notes=None) -> None:
    """Print the table and the noise notes (`notes`, default print_noise_notes); save the
    results with the table as JSON."""
    print_table(rows)
    (notes or print_noise_notes)(results)
    results["table"] = [{"figure": a, "value": b, "target": c, "met": d} for a, b, c, d in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {path}")
