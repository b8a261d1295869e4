"""A writer thread that stores training chunks in SQL while training goes on."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from netlens.storage.db import Database, with_retry
from netlens.storage.records import EpochChunk, write_epochs
from netlens.worker.train import Chunk

COMMIT_SECONDS = 0.1  # small epochs are committed together about this often
COMMIT_BYTES = 16 * 1024**2
CHECKPOINT_SECONDS = 5.0  # a resumed run re-trains at most about this much
_DONE = object()


def merge_chunks(chunks: list[Chunk]) -> EpochChunk:
    """Concatenate consecutive chunks into one storage chunk. Tensors may still be device
    arrays whose host copy is on its way (nl.Recorder): np.asarray waits for them here, on
    the writer thread."""
    if len(chunks) == 1:
        c = chunks[0]
        tensors = {n: np.asarray(t) for n, t in c.tensors.items()}
        return EpochChunk(c.epochs, c.metrics, tensors, c.sparse_epochs)
    names = chunks[0].tensors.keys()
    return EpochChunk(
        epochs=[e for c in chunks for e in c.epochs],
        metrics=[m for c in chunks for m in c.metrics],
        tensors={n: np.concatenate([np.asarray(c.tensors[n]) for c in chunks]) for n in names},
        sparse_epochs={
            n: [e for c in chunks for e in c.sparse_epochs[n]] for n in chunks[0].sparse_epochs
        },
    )


class Recorder:
    """`put(chunk)` from the training thread; a background thread commits them in batches.

    The queue is bounded, so a slow database slows training down instead of filling memory.
    Errors in the writer are raised on the next `put` or on `close`.
    """

    def __init__(
        self,
        db: Database,
        run_id: int,
        max_pending: int = 8,
        attempt: int | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        given_states: bool = False,
    ):
        """`given_states`: the caller decides when to checkpoint (nl.Recorder): a chunk that
        carries a state is checkpointed with the epochs it is written with, without a job
        attempt. Otherwise states are saved every `checkpoint_seconds` for a job's attempt."""
        self.db, self.run_id, self.attempt = db, run_id, attempt
        self.checkpoint_seconds, self.given_states = checkpoint_seconds, given_states
        self._last_checkpoint = time.monotonic()
        self.epochs_written = 0
        self.last_epoch: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"recorder-{run_id}", daemon=True)
        self._thread.start()

    def put(self, chunk: Chunk) -> None:
        self._raise_if_failed()
        self._queue.put(chunk)

    def close(self) -> None:
        """Flush everything queued and stop the thread; raise any writer error."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"recording run {self.run_id} failed: {self._error}"
            ) from self._error

    def _loop(self) -> None:
        pending: list[Chunk] = []
        pending_bytes, last_commit = 0, time.monotonic()
        while True:
            timeout = max(0.0, COMMIT_SECONDS - (time.monotonic() - last_commit))
            try:
                item = self._queue.get(timeout=timeout) if pending else self._queue.get()
            except queue.Empty:
                item = None
            if item is not None and item is not _DONE:
                pending.append(item)
                pending_bytes += sum(t.nbytes for t in item.tensors.values())
            due = (
                time.monotonic() - last_commit >= COMMIT_SECONDS
                or pending_bytes >= COMMIT_BYTES
                or item is _DONE
            )
            if pending and due and self._error is None:
                try:
                    self._flush(pending, final=item is _DONE)
                except BaseException as exc:  # reported to the training thread
                    self._error = exc
                pending, pending_bytes, last_commit = [], 0, time.monotonic()
            if item is _DONE:
                return

    def _flush(self, chunks: list[Chunk], final: bool = False) -> None:
        merged = merge_chunks(chunks)
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
