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
        print("note: torch is not installed; PyTorch comparison skipped "
              "(pip install torch==2.13.0)")
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def _torch_epoch_ms(torch, model, loss_fn, x, y, batch: int, epochs: int) -> float:
    """Mean ms per epoch of a plain eager loop (Adam, reshuffled each epoch), after a warm-up."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, n = torch.from_numpy(x), torch.from_numpy(y), len(x)

    def epoch() -> None:
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - start) / epochs * 1e3


def torch_mlp_ms(torch, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    return _torch_epoch_ms(torch, model, nn.CrossEntropyLoss(), x, y.astype(np.int64), 128, epochs)


def torch_playground_ms(torch, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 1), nn.Flatten(0))
    return _torch_epoch_ms(torch, model, nn.BCEWithLogitsLoss(), x, y.astype(np.float32), 10,
                           epochs)


def tensorboardx_ms(params: dict[str, np.ndarray], repeats: int) -> float | None:
    """Median ms to log one epoch's weight histograms (one per tensor) and flush."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        print("note: tensorboardX is not installed; histogram comparison skipped "
              "(pip install tensorboardX)")
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
    out: dict = {}
    torch = _torch()
    if torch is not None:
        out["torch_version"] = torch.__version__
        data = mlp["data"]
        out["torch_mlp_ms"] = torch_mlp_ms(torch, data.x_train, data.y_train, 1 if quick else 3)
        data = playground["data"]
        out["torch_playground_ms"] = torch_playground_ms(torch, data.x_train, data.y_train,
                                                         5 if quick else 20)
        out["mlp_speedup"] = out["torch_mlp_ms"] / mlp["train_ms"]
        out["playground_speedup"] = out["torch_playground_ms"] / playground["train_ms"]
    tbx = tensorboardx_ms(mlp["params"], 5 if quick else 20)
    if tbx is not None:
        out["tensorboardx_histograms_ms"] = tbx
        out["netlens_record_ms"] = {k[:-8]: v for k, v in mlp.items() if k.endswith("_cost_ms")}
    return out


def table_rows(p: dict, mlp: dict, playground: dict) -> list[tuple[str, str, str, bool | None]]:
    rows: list[tuple[str, str, str, bool | None]] = []
    if "torch_mlp_ms" in p:
        rows += [("PyTorch eager MLP, ms/epoch", f"{p['torch_mlp_ms']:.0f}", "", None),
                 ("MLP speedup vs PyTorch", f"{p['mlp_speedup']:.2f}x", ">= 2x",
                  p["mlp_speedup"] >= 2),
                 ("PyTorch eager Playground, ms/epoch", f"{p['torch_playground_ms']:.1f}", "",
                  None),
                 ("Playground speedup vs PyTorch", f"{p['playground_speedup']:.0f}x", ">= 20x",
                  p["playground_speedup"] >= 20)]
    if "tensorboardx_histograms_ms" in p:
        rows.append(("tensorboardX 6 MLP histograms + flush, ms",
                     f"{p['tensorboardx_histograms_ms']:.1f}", "", None))
        for kind, cost in p["netlens_record_ms"].items():
            rows.append((f"NetLens MLP epoch record cost ({kind}), ms", f"{cost:.1f}", "", None))
    return rows
