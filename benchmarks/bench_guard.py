"""The request guard's added cost per request, and 50 concurrent API clients with no errors.

    .venv/bin/python benchmarks/bench_guard.py [--requests 2000] [--clients 50]
                                               [--per-client 20] [--no-postgres] [--no-load]

1. In process, through Flask's test client (no sockets, no waitress): the app of
   `create_app` with NETLENS_AUTH=required on PostgreSQL (a scratch database
   `netlens_bench_guard` made and seeded by bench_api's helpers: 1,000 runs, a member
   `bench` with an API token; SQLite with --no-postgres). Every before_request / after_request function of NetLens's own modules
   (`netlens.webapp.*`: the guard of webapp/auth.py and whatever else sits in front of every
   request) is wrapped in a timer; their sum per request is "the guard's cost", whatever the
   guard is made of on the day it runs. Three requests, in turn, --requests times each after
   100 warm-ups:
   - `callback`: the page-routing callback opening /new (every page view makes one), with
     the browser's session cookie;
   - `callback-30`: the new-experiment form's check callback (its ~30 inputs, each bound by
     position by the guard), with the session cookie;
   - `api`: `GET /api/runs?limit=50` with a bearer token.
   The same again in single-user mode (loopback, no login: no session, no token; its Host
   and proxy checks instead), unless --no-single-user.
   Reports p50 / p99 of the guard's cost and of the whole request, and guard p50 / request
   p50, and within the guard the identification (webapp.auth._identify: the session or
   token looked up in the database) apart from the checks, and, in the same loop, one
   database round trip (`SELECT 1` in a storage session) as the yardstick of the
   identification: on a busy machine its absolute time swings with the scheduler. Every
   timed answer must be a 200 (a refusal would time the short way out).
2. Load (skipped with --no-load): bench_api's live server, its sequential client and its 50
   concurrent clients (`netlens serve --workers 0`, logins on, `GET /api/runs?limit=50`);
   the errors must be 0.

Target: the guard's p50 under 1 ms for a callback and an API call. Prints a table and writes
benchmarks/results/guard.json. Figures: docs/performance.md ("Request guard").
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import dash
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_api  # noqa: E402
import harness  # noqa: E402

from netlens.storage import users  # noqa: E402
from netlens.storage.db import Database  # noqa: E402
from netlens.storage.presets import get_preset  # noqa: E402
from netlens.storage.settings import Settings  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
# bench_api's scratch-database helpers, on a database of this benchmark's own: bench_api
# drops its own at start and end, which would pull the floor from under a run of both.
bench_api.PG_NAME = "netlens_bench_guard"
ORIGIN = "http://localhost"  # the test client's own origin: callbacks pass the CSRF check
KINDS = ("callback", "callback-30", "api")


IDENTIFY_NS = [0]  # time in webapp.auth._identify since last set to 0 (see time_identify)


def time_identify() -> bool:
    """Wrap webapp.auth._identify (the guard calls it by its global name) in a timer, once."""
    from netlens.webapp import auth

    identify = getattr(auth, "_identify", None)
    if identify is None or hasattr(identify, "timed"):
        return identify is not None

    @functools.wraps(identify)
    def timed(*args, **kwargs):
        started = time.perf_counter_ns()
        try:
            return identify(*args, **kwargs)
        finally:
            IDENTIFY_NS[0] += time.perf_counter_ns() - started

    timed.timed = True
    auth._identify = timed
    return True


class HookTimer:
    """Wraps NetLens's request hooks; `spent_ns` is their time since it was set to 0."""

    def __init__(self, server):
        self.spent_ns = 0
        self.wrapped: list[str] = []
        for funcs in (server.before_request_funcs, server.after_request_funcs):
            for key, hooks in funcs.items():
                funcs[key] = [self._wrap(f) if self._ours(f) else f for f in hooks]

    @staticmethod
    def _ours(fn) -> bool:
        return getattr(fn, "__module__", "").startswith("netlens.webapp.")

    def _wrap(self, fn):
        self.wrapped.append(f"{fn.__module__}.{fn.__qualname__}")

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            started = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent_ns += time.perf_counter_ns() - started

        return timed


def callback_body(deps: list[dict], marker: str, values: dict) -> dict:
    """The body a browser sends for the callback whose output contains `marker`: every
    input and state in its declared order, with `values` by id.property (else None)."""
    dep = next(d for d in deps if marker in d["output"])

    def item(x):
        return {**x, "value": values.get(f"{x['id']}.{x['property']}")}

    outputs = [
        {"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
        for o in dep["output"].strip(".").split("...")
    ]
    first = dep["inputs"][0]
    return {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(i) for i in dep["inputs"]],
        "state": [item(s) for s in dep.get("state", [])],
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def requests_to_time(app, db: Database, token: str | None) -> dict:
    """kind -> a function sending that request through a test client, returning its answer
    (no session and no token: single-user mode)."""
    from netlens.webapp.authz import PAGES_CALLBACK_PREFIX

    browser = app.server.test_client()
    if token is not None:
        user = users.get_user_by_name(db, "bench")  # a member, as bench_api.seed made it
        browser.set_cookie("netlens_session", users.create_session(db, user.id))
    deps = browser.get("/_dash-dependencies").json
    page = next(p for p in dash.page_registry.values() if p["path"] == "/new")
    new = sys.modules[page["module"]]
    form = {
        f"{cid}.value": value
        for (cid, *_), value in zip(new.FIELDS, new.spec_to_form(get_preset("spiral")), strict=True)
    }
    routing = callback_body(
        deps,
        PAGES_CALLBACK_PREFIX,
        {
            "_pages_location.pathname": "/new",
            "_pages_location.search": "",
            "_pages_location.hash": "",
        },
    )
    check = callback_body(deps, "new-sketch.figure", form)
    api = app.server.test_client()
    headers = {"Origin": ORIGIN}
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    return {
        "callback": lambda: browser.post("/_dash-update-component", json=routing, headers=headers),
        "callback-30": lambda: browser.post("/_dash-update-component", json=check, headers=headers),
        "api": lambda: api.get("/api/runs?limit=50", headers=bearer),
    }


def in_process(db: Database, home: Path, token: str | None, n: int) -> dict:
    """The team server's guard (a member's session and token); single-user mode's (loopback,
    no login) when token is None."""
    from netlens.webapp.app import create_app

    settings = Settings(home=home, database_url=db.url, auth="required" if token else "auto")
    app = create_app(settings, db, bind_host="127.0.0.1")
    app.server.test_client().get("/healthz")  # Dash builds its callback map on the 1st request
    timer = HookTimer(app.server)
    has_identify = time_identify()
    send = requests_to_time(app, db, token)
    samples = {k: {"guard": [], "identify": [], "total": []} for k in KINDS}
    round_trips: list[float] = []
    for round_ in range(100 + n):
        started = time.perf_counter_ns()
        with db.session() as s:
            s.execute(text("SELECT 1"))
        if round_ >= 100:
            round_trips.append((time.perf_counter_ns() - started) / 1e6)
        for kind in KINDS:
            timer.spent_ns = IDENTIFY_NS[0] = 0
            started = time.perf_counter_ns()
            response = send[kind]()
            total = time.perf_counter_ns() - started
            assert response.status_code == 200, (
                kind,
                response.status_code,
                response.get_data(as_text=True)[:300],
            )
            if round_ >= 100:
                samples[kind]["guard"].append(timer.spent_ns / 1e6)
                samples[kind]["identify"].append(IDENTIFY_NS[0] / 1e6)
                samples[kind]["total"].append(total / 1e6)
    out: dict = {
        "hooks": timer.wrapped,
        "requests": n,
        "identify_timed": has_identify,
        "round_trip_p50_ms": bench_api.percentile(round_trips, 0.5),
    }
    for kind in KINDS:
        guard, total = samples[kind]["guard"], samples[kind]["total"]
        checks = [g - i for g, i in zip(guard, samples[kind]["identify"], strict=True)]
        p = bench_api.percentile
        out[kind] = {
            "guard_p50_ms": p(guard, 0.5),
            "guard_p99_ms": p(guard, 0.99),
            "identify_p50_ms": p(samples[kind]["identify"], 0.5),
            "checks_p50_ms": p(checks, 0.5),
            "checks_p99_ms": p(checks, 0.99),
            "request_p50_ms": p(total, 0.5),
            "request_p99_ms": p(total, 0.99),
            "guard_share_p50": p(guard, 0.5) / p(total, 0.5),
        }
    return out


def live_load(db_url: str, home: Path, token: str, args) -> dict:
    server = bench_api.Server(home, db_url)
    try:
        alone = bench_api.sequential(server.url, token, 50)
        out = bench_api.with_cpu_shares(
            server.proc.pid,
            bench_api.load,
            server.url,
            token,
            args.clients,
            args.per_client,
            args.cap_s,
            50,
        )
    finally:
        server.stop()
    out["sequential"] = alone
    return out


def table(results: dict) -> list[tuple]:
    rows = []
    section = results["in_process"]
    for kind in KINDS:
        r = section[kind]
        rows += [
            (
                f"{kind}: guard p50 / p99",
                f"{r['guard_p50_ms']:.2f}/{r['guard_p99_ms']:.2f} ms",
                "< 1 ms",
                r["guard_p50_ms"] < 1.0,
            ),
            (
                f"{kind}:   identify p50; checks p50 / p99",
                f"{r['identify_p50_ms']:.2f}; {r['checks_p50_ms']:.2f}/{r['checks_p99_ms']:.2f} ms",
                "",
                None,
            ),
            (
                f"{kind}: whole request p50 / p99",
                f"{r['request_p50_ms']:.1f}/{r['request_p99_ms']:.1f} ms",
                "",
                None,
            ),
            (f"{kind}: guard / request (p50)", f"{r['guard_share_p50']:.1%}", "", None),
        ]
    rows.append(
        (
            "one database round trip (SELECT 1 in a session), p50",
            f"{section['round_trip_p50_ms']:.2f} ms",
            "",
            None,
        )
    )
    alone = results.get("single_user")
    for kind in KINDS if alone else ():
        r = alone[kind]
        rows.append(
            (
                f"single-user {kind}: guard p50 / p99",
                f"{r['guard_p50_ms']:.2f}/{r['guard_p99_ms']:.2f} ms",
                "",
                None,
            )
        )
    load = results.get("load")
    if load:
        rows += [
            (
                f"{load['clients']} clients x {load['requests_per_client']} GET /api/runs: errors",
                f"{load['errors']} of {load['completed'] + load['errors']}",
                "0",
                load["errors"] == 0,
            ),
            ("  latency p50 / p99", f"{load['p50_ms']:.0f}/{load['p99_ms']:.0f} ms", "", None),
            ("  throughput", f"{load['throughput_rps']:.0f} req/s", "", None),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed, of each kind")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--cap-s", type=float, default=120.0, help="time cap of the load")
    parser.add_argument("--runs", type=int, default=1000, help="runs seeded")
    parser.add_argument(
        "--tries",
        type=int,
        default=1,
        help="repeat the in-process part up to N times while others are busy",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite instead")
    parser.add_argument("--no-load", action="store_true", help="in-process part only")
    parser.add_argument(
        "--no-single-user",
        action="store_true",
        help="skip single-user mode's guard (loopback, no login)",
    )
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
    with tempfile.TemporaryDirectory(prefix="netlens-bench-guard-") as tmp:
        home = Path(tmp)
        db = None if args.no_postgres else bench_api.postgres_db()
        results["backend"] = "sqlite" if db is None else "postgres"
        db = db or harness.sqlite_db(tmp)
        try:
            token = bench_api.seed(db, args.runs)
            results["in_process"] = harness.quietest(
                args.tries, in_process, db, home, token, args.requests
            )
            if not args.no_single_user:
                results["single_user"] = harness.quietest(
                    args.tries, in_process, db, home, None, args.requests
                )
            url = db.url
            db.dispose()
            if not args.no_load:
                results["load"] = live_load(url, home, token, args)
        finally:
            if results["backend"] == "postgres":
                bench_api.drop_postgres_db()
    for name in ("in_process", "single_user"):
        if name in results:
            print(
                f"{name} ({results['backend']}): hooks timed: {', '.join(results[name]['hooks'])}"
            )
    harness.report(results, table(results), RESULTS / "guard.json")


if __name__ == "__main__":
    main()
