"""The Python API's Keras-like model against the CLI: XOR 2-3-1 for 2,000 epochs.

(a) `netlens train --preset xor --epochs 2000 --quiet`, called in this process (click's
    CliRunner: the command's own code: open the database, create the run, run_experiment);
(b) `nl.Sequential([Dense(3, tanh), Dense(1, sigmoid)]).compile(Adam(0.05),
    "binary_crossentropy").fit(x, y, epochs=2000, batch_size=4, verbose=0)` on the same
    four points (nl.datasets.load("xor")).

Both record every epoch into the same SQLite database under a temporary NETLENS_HOME and use
its compile cache; each call is timed whole (checks, run creation, trace and compile,
training, the last write). One warm-up of each, then N alternating rounds; the figure is the
ratio of the medians, b / a (goal: at most 1.2).

Usage: .venv/bin/python benchmarks/bench_sdk.py [--rounds N] [--epochs E]
Prints a table and writes benchmarks/results/sdk.json.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import measured, print_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sdk.json"
GOAL = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2000)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="netlens-bench-sdk-")
    os.environ["NETLENS_HOME"] = home
    os.environ.pop("NETLENS_DATABASE_URL", None)

    from click.testing import CliRunner

    import netlens as nl
    from netlens.cli import main as cli
    from netlens.sdk.home import database
    from netlens.storage import runs

    db = database()  # migrated once, before anything is timed
    (x, y), _ = nl.datasets.load("xor")
    runner = CliRunner()

    def cli_train() -> int:
        result = runner.invoke(
            cli, ["train", "--preset", "xor", "--epochs", str(args.epochs), "--quiet"]
        )
        if result.exit_code != 0:
            raise RuntimeError(result.output)
        return int(result.output.strip().splitlines()[-1])

    def sdk_fit() -> int:
        model = nl.Sequential(
            [nl.layers.Dense(3, activation="tanh"), nl.layers.Dense(1, activation="sigmoid")],
            input_shape=(2,),
        )
        model.compile(optimizer=nl.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy")
        return model.fit(x, y, epochs=args.epochs, batch_size=4, verbose=0).run.id

    def timed(fn) -> tuple[float, int, float]:
        t0 = time.perf_counter()
        out = measured(lambda: {"result": fn()})
        return time.perf_counter() - t0, out["result"], out["other_cpu_share"]

    for fn in (cli_train, sdk_fit):  # warm-up: imports, first compile into the cache
        fn()
    times: dict[str, list[float]] = {"cli": [], "fit": []}
    noise: list[float] = []
    for i in range(args.rounds):
        order = (("cli", cli_train), ("fit", sdk_fit))
        for name, fn in order if i % 2 == 0 else order[::-1]:
            seconds, run_id, other = timed(fn)
            info = runs.get_run(db, run_id)
            assert info.status == "succeeded" and info.epochs_recorded == args.epochs + 1
            times[name].append(seconds)
            noise.append(other)
    cli_s, fit_s = statistics.median(times["cli"]), statistics.median(times["fit"])
    ratio = fit_s / cli_s
    rows = [
        (f"netlens train --preset xor, {args.epochs} epochs (median)", f"{cli_s:.2f} s", "", None),
        (f"nl.Sequential.fit, {args.epochs} epochs (median)", f"{fit_s:.2f} s", "", None),
        ("ratio fit / train", f"{ratio:.3f}", f"<= {GOAL}", ratio <= GOAL),
        ("other processes' CPU share (max)", f"{max(noise):.2f}", "< 0.1", None),
    ]
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "epochs": args.epochs,
                "rounds": args.rounds,
                "seconds": times,
                "median_cli_s": cli_s,
                "median_fit_s": fit_s,
                "ratio": ratio,
                "goal": GOAL,
                "other_cpu_share": noise,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
