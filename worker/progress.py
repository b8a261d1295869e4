"""A terminal progress bar for in-process training: epoch, loss, accuracy, epochs/s."""

from __future__ import annotations

import sys

from tqdm import tqdm

from netlens.worker.train import Chunk


class ProgressBar:
    def __init__(self, total_epochs: int, disable: bool = False):
        self._bar = tqdm(
            total=total_epochs,
            unit="epoch",
            file=sys.stderr,
            disable=disable,
            dynamic_ncols=True,
            mininterval=0.2,
        )
        self._done = 0

    def update(self, chunk: Chunk) -> None:
        last = chunk.metrics[-1]
        self._bar.update(chunk.epochs[-1] - self._done)
        self._done = chunk.epochs[-1]
        shown = {"loss": last.get("train_loss"), "acc": last.get("train_accuracy")}
        if "val_accuracy" in last:
            shown["val_acc"] = last["val_accuracy"]
        self._bar.set_postfix(
            {k: f"{v:.4f}" for k, v in shown.items() if v is not None}, refresh=False
        )

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()
