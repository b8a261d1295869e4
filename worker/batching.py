"""A background thread that hands training chunks on in batches while training goes on: the
base of the SQL writer (worker/recorder.py Recorder) and of the Python API's REST writer
(netlens/sdk/sink.py RestWriter). No JAX, no SQL here."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np

COMMIT_SECONDS = 0.1  # small epochs are handed on together about this often
COMMIT_BYTES = 1024**2
_DONE = object()


def _nbytes(tensor) -> int:
    """Its size without waiting for a device array's host copy (JAX arrays know theirs)."""
    size = getattr(tensor, "nbytes", None)
    return int(size) if size is not None else np.asarray(tensor).nbytes


class BatchingWriter:
    """`put(chunk)` from the training thread; a background thread hands them on in batches
    (`_flush`, about every `batch_seconds` or `batch_bytes`), in order. The queue is bounded, so
    a slow destination slows training down instead of filling memory. An error in the thread is
    raised on the next `put` or on `close`, and nothing after it is flushed (no gap is left
    behind what was stored). Subclasses: Recorder (SQL), netlens.sdk.sink.RestWriter (HTTP)."""

    batch_seconds, batch_bytes = COMMIT_SECONDS, COMMIT_BYTES

    def __init__(self, run_id: int, max_pending: int = 8, thread_name: str = "recorder"):
        self.run_id = run_id
        self.last_epoch: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"{thread_name}-{run_id}", daemon=True
        )
        self._thread.start()

    def put(self, chunk: Any) -> None:
        self._raise_if_failed()
        self._queue.put(chunk)

    def close(self) -> None:
        """Flush everything queued and stop the thread; raise any writer error."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()

    def _failure(self) -> str:
        return f"recording run {self.run_id} failed: {self._error}"

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(self._failure()) from self._error

    def _flush(self, chunks: list[Any], final: bool = False) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        pending: list[Any] = []
        pending_bytes, last_flush = 0, time.monotonic()
        while True:
            timeout = max(0.0, self.batch_seconds - (time.monotonic() - last_flush))
            try:
                item = self._queue.get(timeout=timeout) if pending else self._queue.get()
            except queue.Empty:
                item = None
            if item is not None and item is not _DONE:
                pending.append(item)
                pending_bytes += sum(_nbytes(t) for t in item.tensors.values())
            due = (
                time.monotonic() - last_flush >= self.batch_seconds
                or pending_bytes >= self.batch_bytes
                or item is _DONE
            )
            if pending and due and self._error is None:
                try:
                    self._flush(pending, final=item is _DONE)
                except BaseException as exc:  # reported to the training thread
                    self._error = exc
                pending, pending_bytes, last_flush = [], 0, time.monotonic()
            if item is _DONE:
                return
