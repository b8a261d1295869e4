"""Baselines for bench_core.py: a plain eager PyTorch loop and tensorboardX histograms.

Both packages are optional (`pip install torch==2.13.0 tensorboardX`); a missing one skips
its figures with a printed note.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np


def _torch():
    try:
        import torch
    except ImportError:
        print(
            "note: torch is not installed; PyTorch comparison skipped (pip install torch==2.13.0)"
        )
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def _torch_epoch_ms(torch, model, loss_fn, x, y, batch: int, epochs: int) -> float:
    """Best ms per epoch of a plain eager loop (Adam, reshuffled each epoch), after a warm-up."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, n = torch.from_numpy(x), torch.from_numpy(y), len(x)

    def epoch() -> None:
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def torch_mlp_ms(torch, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    return _torch_epoch_ms(torch, model, nn.CrossEntropyLoss(), x, y.astype(np.int64), 128, epochs)


def torch_playground_ms(torch, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0)
    )
    return _torch_epoch_ms(
        torch, model, nn.BCEWithLogitsLoss(), x, y.astype(np.float32), 10, epochs
    )


def tensorboardx_ms(params: dict[str, np.ndarray], repeats: int) -> float | None:
    """Median ms to log one epoch's weight histograms (one per tensor) and flush."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        print(
            "note: tensorboardX is not installed; histogram comparison skipped "
            "(pip install tensorboardX)"
        )
        return None
    times = []
    with tempfile.TemporaryDirectory(prefix="netlens-tbx-") as folder:
        writer = SummaryWriter(logdir=folder)
        for step in range(repeats + 1):
            start = time.perf_counter()
            for name, value in params.items():
                writer.add_histogram(name, value, step)
            writer.flush()
            times.append(time.perf_counter() - start)
        writer.close()
    return statistics.median(times[1:]) * 1e3


def run_all(mlp: dict, playground: dict, quick: bool) -> dict:
    """Peers' figures; speedups against our training-alone epoch timed again right before
    (best of 2), so that both sides of a ratio see the same machine load."""
    out: dict = {}
    torch = _torch()
    if torch is not None:
        out["torch_version"] = torch.__version__
        for name, section, batch_epochs in (
            ("mlp", mlp, 1 if quick else 3),
            ("playground", playground, 5 if quick else 20),
        ):
            ours = min(section["train_fn"]() for _ in range(2))
            data, timer = section["data"], torch_mlp_ms if name == "mlp" else torch_playground_ms
            theirs = timer(torch, data.x_train, data.y_train, batch_epochs)
            out |= {
                f"netlens_{name}_ms": ours,
                f"torch_{name}_ms": theirs,
                f"{name}_speedup": theirs / ours,
            }
    tbx = tensorboardx_ms(mlp["params"], 5 if quick else 20)
    if tbx is not None:
        out["tensorboardx_histograms_ms"] = tbx
        kinds = [k[:-9] for k in mlp if k.endswith("_write_ms")]
        out["netlens_record_ms"] = {
            k: {"b_minus_a": mlp[f"{k}_cost_ms"], "write_epochs": mlp[f"{k}_write_ms"]}
            for k in kinds
        }
    return out


def table_rows(p: dict) -> list[tuple[str, str, str, bool | None]]:
    rows: list[tuple[str, str, str, bool | None]] = []
    if "torch_mlp_ms" in p:
        rows += [
            (
                "NetLens MLP train alone (same moment), ms/epoch",
                f"{p['netlens_mlp_ms']:.0f}",
                "",
                None,
            ),
            ("PyTorch eager MLP, ms/epoch", f"{p['torch_mlp_ms']:.0f}", "", None),
            (  # issue 19: >= 2x with margin
                "MLP speedup vs PyTorch",
                f"{p['mlp_speedup']:.2f}x",
                ">= 2.2x",
                p["mlp_speedup"] >= 2.2,
            ),
            (
                "NetLens Playground train alone (same moment), ms/epoch",
                f"{p['netlens_playground_ms']:.3f}",
                "",
                None,
            ),
            ("PyTorch eager Playground, ms/epoch", f"{p['torch_playground_ms']:.1f}", "", None),
            (
                "Playground speedup vs PyTorch",
                f"{p['playground_speedup']:.0f}x",
                ">= 20x",
                p["playground_speedup"] >= 20,
            ),
        ]
    if "tensorboardx_histograms_ms" in p:
        rows.append(
            (
                "tensorboardX 6 MLP histograms + flush, ms",
                f"{p['tensorboardx_histograms_ms']:.1f}",
                "",
                None,
            )
        )
        for kind, cost in p["netlens_record_ms"].items():
            rows += [
                (
                    f"NetLens MLP epoch, added to the epoch (b-a, {kind}), ms",
                    f"{cost['b_minus_a']:.1f}",
                    "",
                    None,
                ),
                (
                    f"NetLens MLP epoch, writer-thread write ({kind}), ms",
                    f"{cost['write_epochs']:.1f}",
                    "",
                    None,
                ),
            ]
    return rows
