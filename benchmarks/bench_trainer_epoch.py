"""The Trainer's MLP epoch against a minimal hand-written `lax.scan` epoch of the same MLP.

Usage: .venv/bin/python benchmarks/bench_trainer_epoch.py [--rounds 7] [--epochs 3] [--quick]
Prints a table and writes benchmarks/results/trainer_epoch.json. See benchmarks/README.md.

Issue 19 asks for the Trainer's epoch (`Trainer(record=False)`, the core benchmark's
"training alone") within 1.05x of a minimal epoch of the same MLP: 784-128-64-10 relu, 60,000
random inputs of 10 classes, batch 128, Adam 1e-3, the same initial parameters, the same
on-device shuffle. Everything runs in one process, in interleaved rounds (each round starts
with another variant), so that ratios survive a busy neighbour: each ratio is the median of
the rounds' own ratios to the minimal epoch of that round. Variants between the two show
where a difference comes from:

- `minimal`: a hand-written forward pass (jnp matmuls), mean loss over 469 batches (the last
  one wrapped around the shuffled order), one jitted call per epoch, parameters donated;
- `minimal+norms`: plus per-layer gradient norms of every step, averaged over the epoch;
- `minimal+weights`: plus the Trainer's weighted loss (the padded last batch counts once);
- `epoch_fn`: the Trainer's own epoch function (`Trainer._build_epoch_fn`), one jitted call
  per epoch;
- `trainer`: `Trainer(record=False).run()` timed from epoch 0's callback, as bench_core does
  (chunks with validation each epoch, metrics copied to the host).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from bench_core import machine, mlp_spec, synthetic_dataset  # noqa: E402
from harness import _busy_seconds, _own_seconds, print_table  # noqa: E402
from jax import lax  # noqa: E402

from netlens.worker.train import Trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_epoch.json"
LIMIT = 1.05  # issue 19: the Trainer's epoch within 1.05x of the minimal one


def minimal_epoch(data, batch: int, seed: int, norms: bool = False, weights: bool = False):
    """A jitted (params, opt_state, epoch) -> (params, opt_state, loss) of one epoch."""
    n = len(data.x_train)
    nb = math.ceil(n / batch)
    pad = nb * batch - n
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    w = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(nb, batch)
    tx = optax.adam(1e-3)
    key = jax.random.PRNGKey(seed)

    def forward(p, xb):
        h = jax.nn.relu(xb @ p["hidden_1"]["kernel"] + p["hidden_1"]["bias"])
        h = jax.nn.relu(h @ p["hidden_2"]["kernel"] + p["hidden_2"]["bias"])
        return h @ p["output"]["kernel"] + p["output"]["bias"]

    def loss_fn(p, xb, yb, wb):
        losses = optax.softmax_cross_entropy_with_integer_labels(forward(p, xb), yb)
        return jnp.sum(losses * wb) / jnp.sum(wb) if weights else jnp.mean(losses)

    def step(carry, batch_in):
        p, s = carry
        idx, wb = batch_in
        loss, g = jax.value_and_grad(loss_fn)(p, x[idx], y[idx], wb)
        updates, s = tx.update(g, s, p)
        out = {"loss": loss}
        if norms:
            out |= {k: optax.tree.norm(v) for k, v in g.items()}
        return (optax.apply_updates(p, updates), s), out

    def epoch(p, s, e):
        perm = jax.random.permutation(jax.random.fold_in(key, e), n)
        idx = jnp.concatenate([perm, perm[:pad]]).reshape(nb, batch)
        (p, s), out = lax.scan(step, (p, s), (idx, w))
        return p, s, jax.tree.map(jnp.mean, out)

    return jax.jit(epoch, donate_argnums=(0, 1)), tx


def time_epochs(fn, init, tx, epochs: int) -> tuple[float, float]:
    """(wall, CPU) seconds per epoch of `epochs` calls of a jitted epoch function, blocking
    at the end. CPU time is this process's (all threads)."""
    p = jax.tree.map(jnp.array, init)
    s = tx.init(p)
    jax.block_until_ready((p, s))
    start, cpu = time.perf_counter(), time.process_time()
    for e in range(1, epochs + 1):
        p, s, m = fn(p, s, jnp.int32(e))
    jax.block_until_ready((p, s, m))
    return (time.perf_counter() - start) / epochs, (time.process_time() - cpu) / epochs


def time_trainer(trainer: Trainer) -> tuple[float, float]:
    """bench_core.time_training: (wall, CPU) seconds per epoch from epoch 0's callback (after
    the initial evaluation) to run()'s end."""
    stamps: list[tuple[float, float]] = []

    def on_chunk(_chunk) -> None:
        if not stamps:
            stamps.append((time.perf_counter(), time.process_time()))

    trainer.run(on_chunk)
    wall, cpu = time.perf_counter() - stamps[0][0], time.process_time() - stamps[0][1]
    return wall / trainer.spec.training.epochs, cpu / trainer.spec.training.epochs


def trainer_at(ref: str):
    """The Trainer class of worker/train.py as committed at git `ref` (to time a before and
    an after in the same process)."""
    source = subprocess.run(
        ["git", "show", f"{ref}:worker/train.py"],
        cwd=Path(__file__).resolve().parents[1],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType(f"train_at_{ref}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"worker/train.py@{ref}", "exec"), module.__dict__)  # noqa: S102
    return module.Trainer


def build_variants(epochs: int, n_train: int, baseline: str | None = None) -> dict:
    spec, data = mlp_spec(epochs, n_train), synthetic_dataset(n_train)
    trainer = Trainer(spec, data, record=False)
    init, seed, batch = trainer.init_params, spec.training.seed, spec.training.batch_size
    variants = {}
    for name, kw in (
        ("minimal", {}),
        ("minimal+norms", {"norms": True}),
        ("minimal+weights", {"weights": True}),
    ):
        fn, tx = minimal_epoch(data, batch, seed, **kw)
        variants[name] = lambda fn=fn, tx=tx: time_epochs(fn, init, tx, epochs)
    epoch_fn = jax.jit(trainer._build_epoch_fn())
    variants["epoch_fn"] = lambda: time_epochs(epoch_fn, init, trainer.tx, epochs)
    variants["trainer"] = lambda: time_trainer(trainer)
    if baseline:
        before = trainer_at(baseline)(spec, data, record=False)
        variants[f"trainer@{baseline}"] = lambda: time_trainer(before)
    for fn in variants.values():  # compile and warm up
        fn()
    return variants


def run(rounds: int, epochs: int, n_train: int, baseline: str | None = None) -> dict:
    variants = build_variants(epochs, n_train, baseline)
    names = list(variants)
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    shares = []
    load0 = os.getloadavg()
    for r in range(rounds):
        own0, busy0, wall0 = _own_seconds(), _busy_seconds(), time.perf_counter()
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, used = variants[name]()
            times[name].append(wall)
            cpu[name].append(used)
        wall, own = time.perf_counter() - wall0, _own_seconds() - own0
        other = max(0.0, _busy_seconds() - busy0 - own)
        shares.append(other / (max(wall, 1.0) * os.cpu_count()))
        print(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {times[k][-1] * 1e3:.0f}" for k in names)
            + f" ms/epoch; other processes {shares[-1]:.0%} of the CPU",
            flush=True,
        )
    out = {
        "machine": machine(),
        "rounds": rounds,
        "epochs_per_round": epochs,
        "n_train": n_train,
        "load_average_before": load0,
        "load_average_after": os.getloadavg(),
        "other_cpu_share_rounds": shares,
        "other_cpu_share": statistics.median(shares),
        "times_ms": {k: [round(t * 1e3, 2) for t in v] for k, v in times.items()},
        "cpu_ms": {k: [round(t * 1e3, 2) for t in v] for k, v in cpu.items()},
    }
    for name in names:
        out[f"{name}_ms"] = statistics.median(times[name]) * 1e3
        out[f"{name}_ratio"] = statistics.median(
            [t / m for t, m in zip(times[name], times["minimal"], strict=True)]
        )
        out[f"{name}_ratio_best"] = min(times[name]) / min(times["minimal"])
        out[f"{name}_cpu_ratio"] = statistics.median(
            [t / m for t, m in zip(cpu[name], cpu["minimal"], strict=True)]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant per round")
    parser.add_argument("--quick", action="store_true", help="6,000 inputs, 3 rounds")
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="also time the Trainer of worker/train.py as committed at GIT_REF",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rounds, n_train = (3, 6_000) if args.quick else (args.rounds, 60_000)
    r = run(rounds, args.epochs, n_train, args.baseline)
    rows = [
        (f"{k} ms/epoch (median of rounds)", f"{r[k + '_ms']:.1f}", "", None) for k in r["times_ms"]
    ]
    for k in r["times_ms"]:
        if k == "minimal":
            continue
        rows += [
            (f"{k} / minimal, best round / best round", f"{r[k + '_ratio_best']:.3f}", "", None),
            (f"{k} / minimal, CPU time (median of rounds)", f"{r[k + '_cpu_ratio']:.3f}", "", None),
        ]
        if k != "trainer":
            rows.append(
                (f"{k} / minimal (median of round ratios)", f"{r[k + '_ratio']:.3f}", "", None)
            )
    rows.append(
        (
            "trainer / minimal (median of round ratios)",
            f"{r['trainer_ratio']:.3f}",
            f"<= {LIMIT}",
            r["trainer_ratio"] <= LIMIT,
        )
    )
    print_table(rows)
    shares = ", ".join(f"{s:.0%}" for s in r["other_cpu_share_rounds"])
    print(
        f"\nother processes' share of the CPU per round: {shares}; load average "
        f"{r['load_average_before'][0]:.2f} before, {r['load_average_after'][0]:.2f} after"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
