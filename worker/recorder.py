"""A writer thread that stores training chunks in SQL while training goes on."""

from __future__ import annotations

import time

import numpy as np

from netlens.storage.db import Database, with_retry
from netlens.storage.records import EpochChunk, write_epochs
from netlens.worker.batching import BatchingWriter
from netlens.worker.train import Chunk

CHECKPOINT_SECONDS = 5.0  # a resumed run re-trains at most about this much


def lossy_signatures(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """recording.signature_dtype "float16": every `signatures/<layer>` array as float16
    (round to nearest: a relative error of at most 2**-11). An array with a finite value
    beyond float16's range (|x| > 65504) stays float32: lossy, never wrong."""
    out = dict(tensors)
    for name, values in tensors.items():
        if not name.startswith("signatures/") or values.dtype != np.float32:
            continue
        with np.errstate(over="ignore"):  # an overflow is caught just below
            half = values.astype(np.float16)
        if np.array_equal(np.isfinite(half), np.isfinite(values)):
            out[name] = half
    return out


def merge_chunks(chunks: list[Chunk]) -> EpochChunk:
    """Concatenate consecutive chunks into one storage chunk. Tensors may still be device
    arrays whose host copy is on its way (nl.Recorder): np.asarray waits for them here, on
    the writer thread."""
    if len(chunks) == 1:
        c = chunks[0]
        tensors = {n: np.asarray(t) for n, t in c.tensors.items()}
        return EpochChunk(c.epochs, c.metrics, tensors, c.sparse_epochs, c.times)
    names = chunks[0].tensors.keys()
    return EpochChunk(
        epochs=[e for c in chunks for e in c.epochs],
        metrics=[m for c in chunks for m in c.metrics],
        tensors={n: np.concatenate([np.asarray(c.tensors[n]) for c in chunks]) for n in names},
        sparse_epochs={
            n: [e for c in chunks for e in c.sparse_epochs[n]] for n in chunks[0].sparse_epochs
        },
        times=[t for c in chunks for t in c.times] if all(c.times for c in chunks) else None,
    )


class Recorder(BatchingWriter):
    """Commits chunks to SQL in batches (storage.records.write_epochs, idempotent by epoch),
    fenced by the job's attempt when there is one, with a checkpoint now and then."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        max_pending: int = 8,
        attempt: int | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        given_states: bool = False,
        signature_dtype: str = "float32",
    ):
        """`given_states`: the caller decides when to checkpoint (nl.Recorder): a chunk that
        carries a state is checkpointed with the epochs it is written with, without a job
        attempt. Otherwise states are saved every `checkpoint_seconds` for a job's attempt.
        `signature_dtype` "float16" stores the probe signatures lossily (`lossy_signatures`),
        here on the writer thread."""
        self.db, self.attempt = db, attempt
        self.half_signatures = signature_dtype == "float16"
        self.checkpoint_seconds, self.given_states = checkpoint_seconds, given_states
        self._last_checkpoint = time.monotonic()
        self.epochs_written = 0
        super().__init__(run_id, max_pending, "recorder")

    def _flush(self, chunks: list[Chunk], final: bool = False) -> None:
        merged = merge_chunks(chunks)
        if self.half_signatures:
            merged.tensors = lossy_signatures(merged.tensors)
        checkpoint = None
        state = chunks[-1].state
        due = final or time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        if self.given_states:
            state = next((c.state for c in reversed(chunks) if c.state is not None), None)
        if (self.attempt is not None and due or self.given_states) and state is not None:
            from netlens.worker.checkpoint import state_to_bytes

            checkpoint = (state.epoch, state_to_bytes(state))
            self._last_checkpoint = time.monotonic()
        self.epochs_written += with_retry(
            write_epochs, self.db, self.run_id, merged, self.attempt, checkpoint
        )
        self.last_epoch = merged.epochs[-1]
