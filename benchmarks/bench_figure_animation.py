"""`netlens figure RUN VIEW --epochs A:B:STEP -o out.gif|mp4`: 100 frames, end to end.

Goal (issue 17): "100 frames in under 30 s on this 2-core machine".

    .venv/bin/python benchmarks/bench_figure_animation.py [--frames 100] [--views loss,network,boundary]
                                                          [--kaleido 20] [--keep DIR]

1. Trains an xor run (2-D: every view of the run page draws) of --frames * 2 epochs in a
   temporary SQLite home, in this process.
2. For each view: the CLI's own steps, timed one by one: build the frames (the page's
   builders over CachedRun), hold them still (webapp/figures/animation.py), draw them
   (netlens/figure_render.py: one browser page, Plotly.toImage per frame, 800 x 480), encode
   a GIF and an MP4 (imageio); then the whole command (`netlens figure ... --epochs`, a
   subprocess: Python start, imports and the browser's start included).
3. --kaleido N: the same frames through kaleido's own batch API (`Kaleido.calc_fig` over N
   frames, one browser, two tabs), per frame, for the comparison in docs/performance.md.

Prints frames/s and seconds for 100 frames; writes benchmarks/results/figure_animation.json.
The machine's load average is printed too: the 2-core lab VM is shared, and wall times
follow it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _train(home: Path, epochs: int) -> int:
    from netlens.storage.db import Database
    from netlens.storage.migrate import upgrade
    from netlens.storage.presets import get_preset
    from netlens.storage.runs import create_run
    from netlens.storage.spec import parse_spec
    from netlens.worker.runner import run_experiment

    db = Database(f"sqlite:///{home / 'netlens.db'}")
    upgrade(db)
    data = get_preset("xor").model_dump()
    data["training"]["epochs"] = epochs
    run_id = create_run(db, parse_spec(data))
    assert run_experiment(db, run_id, None) == "succeeded"
    db.dispose()
    return run_id


def _steps(home: Path, run_id: int, view: str, frames: int, out: Path) -> dict:
    from netlens.figure_animation import CachedRun, encode
    from netlens.figure_cli import FRAME_HEIGHT, FRAME_WIDTH, for_file
    from netlens.figure_render import render_frames
    from netlens.storage.db import Database
    from netlens.webapp.figures.animation import steady

    db = Database(f"sqlite:///{home / 'netlens.db'}")
    run = CachedRun(run_id, db)
    epochs = [int(e) for e in run.epochs[: 2 * frames : 2]][:frames]
    times = {}
    started = time.perf_counter()
    figures = [run.figure(view, e) for e in epochs]
    times["build_s"] = time.perf_counter() - started
    started = time.perf_counter()
    figures = [for_file(f, FRAME_WIDTH, FRAME_HEIGHT) for f in steady(figures, epochs)]
    times["steady_s"] = time.perf_counter() - started
    started = time.perf_counter()
    images = render_frames(figures, "png", FRAME_WIDTH, FRAME_HEIGHT, 1)
    times["render_s"] = time.perf_counter() - started
    for suffix in ("gif", "mp4"):
        started = time.perf_counter()
        encode(images, out / f"{view}.{suffix}", 8)
        times[f"encode_{suffix}_s"] = time.perf_counter() - started
    db.dispose()
    return {"frames": len(images), **{k: round(v, 2) for k, v in times.items()}}


def _command(home: Path, run_id: int, view: str, frames: int, out: Path) -> float:
    env = {**os.environ, "NETLENS_HOME": str(home), "NETLENS_DATABASE_URL": ""}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "netlens.cli", "figure", str(run_id), view, "--epochs",
         f"0:{2 * (frames - 1)}:2", "-o", str(out / f"{view}-cli.gif")],
        env=env, check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


def _kaleido(home: Path, run_id: int, view: str, n: int) -> float:
    """Seconds per frame through kaleido's batch API (one browser, two tabs)."""
    import kaleido

    from netlens.figure_animation import CachedRun
    from netlens.figure_cli import FRAME_HEIGHT, FRAME_WIDTH, for_file
    from netlens.storage.db import Database

    db = Database(f"sqlite:///{home / 'netlens.db'}")
    run = CachedRun(run_id, db)
    figures = [
        for_file(run.figure(view, int(e)), FRAME_WIDTH, FRAME_HEIGHT) for e in run.epochs[:n]
    ]
    opts = {"format": "png", "width": FRAME_WIDTH, "height": FRAME_HEIGHT, "scale": 1}

    async def draw() -> float:
        async with kaleido.Kaleido(n=2) as k:
            await k.calc_fig(figures[0], opts=opts)  # the first: page and plotly.js warm
            started = time.perf_counter()
            await asyncio.gather(*(k.calc_fig(f, opts=opts) for f in figures))
            return (time.perf_counter() - started) / len(figures)

    per_frame = asyncio.run(draw())
    db.dispose()
    return per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--views", default="loss,network,boundary")
    parser.add_argument("--kaleido", type=int, default=20, help="frames through kaleido (0: skip)")
    parser.add_argument("--keep", help="keep the home and the files in DIR")
    args = parser.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    home = Path(args.keep or tempfile.mkdtemp(prefix="netlens-bench-anim-"))
    home.mkdir(parents=True, exist_ok=True)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    started = time.perf_counter()
    run_id = _train(home, 2 * args.frames)
    print(f"trained xor for {2 * args.frames} epochs in {time.perf_counter() - started:.1f} s")
    results = {"frames": args.frames, "cpus": os.cpu_count(), "views": {}}
    for view in args.views.split(","):
        steps = _steps(home, run_id, view, args.frames, home)
        inside = steps["build_s"] + steps["steady_s"] + steps["render_s"] + steps["encode_gif_s"]
        command = _command(home, run_id, view, args.frames, home)
        steps.update(
            in_process_gif_s=round(inside, 2),
            command_gif_s=round(command, 2),
            frames_per_s=round(steps["frames"] / command, 1),
            load_average=os.getloadavg()[0],
        )
        if args.kaleido:
            steps["kaleido_s_per_frame"] = round(_kaleido(home, run_id, view, args.kaleido), 3)
            steps["render_s_per_frame"] = round(steps["render_s"] / steps["frames"], 3)
        results["views"][view] = steps
        print(
            f"{view:10s} {steps['frames']} frames: build {steps['build_s']} s, steady "
            f"{steps['steady_s']} s, draw {steps['render_s']} s, GIF {steps['encode_gif_s']} s, "
            f"MP4 {steps['encode_mp4_s']} s | command {command:.1f} s = "
            f"{steps['frames_per_s']} frames/s"
            + (
                f" | per frame: ours {steps['render_s_per_frame']} s, kaleido "
                f"{steps['kaleido_s_per_frame']} s"
                if args.kaleido
                else ""
            )
            + f" (load {steps['load_average']:.1f})"
        )
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "figure_animation.json").write_text(json.dumps(results, indent=1))
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
