"""Where the Python API's runs go (nl.Sequential.fit and nl.Recorder): the one seam between
training in the user's process and the place runs are stored.

A sink creates a run (already running, with its spec, summary and fixed arrays), reopens it
(a resumed Recorder, a continued fit), extends it (a continued fit's epochs), hands out a
writer that takes chunks of epochs (worker.train.Chunk, in epoch order) on a background
thread, and finishes it. `LocalSink` writes a database this process opens (by default
netlens.sdk.home's) with the functions a worker uses; `RestSink` sends the same to a team
server's REST API (webapp/api_ingest.py) under the token's user. `default_sink()` picks the
RestSink while nl.connect() is in force. Neither fit nor the Recorder touches storage/ or HTTP.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from netlens.storage.db import Database
from netlens.storage.spec import ExperimentSpec
from netlens.worker.batching import BatchingWriter


@dataclass(frozen=True)
class NewRun:
    """Everything a new run starts with, written all at once."""

    spec: ExperimentSpec
    layers: list[dict[str, Any]]
    architecture: str
    device: str
    data_info: dict[str, Any]
    arrays: dict[str, np.ndarray]  # probe, grid, and fit's data/... a worker retrains from


@dataclass(frozen=True)
class StoredRun:
    """What a resumed run already holds."""

    id: int
    spec: dict[str, Any]
    status: str
    layers: list[dict[str, Any]]
    data_info: dict[str, Any]
    arrays: dict[str, np.ndarray]
    last_epoch: int | None
    epochs_recorded: int
    recorded_bytes: int
    checkpoint: tuple[int, bytes] | None = field(default=None, repr=False)


class Writer(Protocol):
    def put(self, chunk: Any) -> None: ...  # a worker.train.Chunk, in epoch order

    def close(self) -> None: ...  # flush; raises what the writer met


class Sink(Protocol):
    def create(self, run: NewRun) -> int: ...

    def load(self, run_id: int) -> StoredRun: ...

    def reopen(
        self,
        run_id: int,
        *,
        device: str,
        layers: list[dict] | None = None,
        data_info: dict | None = None,
        architecture: str | None = None,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None: ...

    def extend(self, run_id: int, spec: ExperimentSpec) -> None: ...

    def writer(self, run_id: int, *, given_states: bool = False) -> Writer: ...

    def finish(
        self, run_id: int, status: str, error: str | None, epochs_total: int | None = None
    ) -> None: ...

    def handle(self, run_id: int) -> Any: ...


class LocalSink:
    """A database this process opens (SQLite or PostgreSQL): one transaction creates the run
    with its arrays; the worker's writer thread (worker.recorder.Recorder) commits epochs about
    every 0.1 s."""

    def __init__(self, db: Database | None = None):
        if db is None:
            from netlens.sdk.home import database

            db = database()
        self.db = db

    def create(self, run: NewRun) -> int:
        from netlens.storage import runs

        return runs.create_started_run(
            self.db,
            run.spec,
            layers=run.layers,
            device=run.device,
            data_info=run.data_info,
            architecture=run.architecture,
            arrays=run.arrays,
        )

    def load(self, run_id: int) -> StoredRun:
        from netlens.storage import jobs, records, runs

        info = runs.get_run(self.db, run_id)  # RunNotFound (a LookupError) names the run
        return StoredRun(
            id=info.id,
            spec=info.spec,
            status=info.status,
            layers=info.layers,
            data_info=info.data_info,
            arrays=records.read_arrays(self.db, run_id),
            last_epoch=info.last_epoch,
            epochs_recorded=info.epochs_recorded,
            recorded_bytes=info.recorded_bytes,
            checkpoint=jobs.load_checkpoint(self.db, run_id),
        )

    def reopen(
        self, run_id, *, device, layers=None, data_info=None, architecture=None, arrays=None
    ):
        """Running again, with what changed (a continued fit: its layers, data summary and
        fixed arrays, as worker.runner.run_experiment stores them)."""
        from netlens.storage import records, runs

        info = runs.get_run(self.db, run_id)
        runs.mark_started(
            self.db,
            run_id,
            layers=info.layers if layers is None else layers,
            device=device,
            data_info=info.data_info if data_info is None else data_info,
            architecture=architecture or info.architecture,
        )
        if arrays:
            records.write_arrays(self.db, run_id, arrays)

    def extend(self, run_id: int, spec: ExperimentSpec) -> None:
        from netlens.storage import runs

        runs.extend_run(self.db, run_id, spec)

    def writer(self, run_id: int, *, given_states: bool = False) -> Writer:
        from netlens.worker.recorder import Recorder

        return Recorder(self.db, run_id, given_states=given_states)

    def finish(self, run_id, status, error, epochs_total=None) -> None:
        from netlens.storage import runs

        if epochs_total is not None:
            runs.set_epochs_total(self.db, run_id, epochs_total)
        runs.finish_run(self.db, run_id, status, error)

    def handle(self, run_id: int) -> Any:
        from netlens.sdk.reading import Run

        return Run(run_id, self.db)


# ---- a team server ------------------------------------------------------------------------

API = "/api/v1"
SEND_SECONDS = 0.25  # epochs are sent together about this often
SEND_BYTES = 4 * 2**20  # or when this much is waiting
RETRY_SECONDS = 60.0  # a chunk is retried this long (connection errors, timeouts, 5xx)
FINISH_RETRY_SECONDS = 15.0
TIMEOUT = (10, 120)  # connect, read


class RestSink:
    """A team server (nl.connect): the same calls as LocalSink, over its REST API, under the
    token's user and with the server's limits and permissions."""

    def __init__(self, connection: Any = None, retry_seconds: float = RETRY_SECONDS):
        if connection is None:
            from netlens.sdk.connection import current

            connection = current()
        if connection is None:
            raise RuntimeError("RestSink: not connected; call nl.connect(url, token=...)")
        self.connection, self.retry_seconds = connection, retry_seconds
        self.base_url = connection.url.rstrip("/")

    # -- HTTP ---------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, retry_s: float = 0.0, **kwargs: Any):
        """One request; with `retry_s`, connection errors, timeouts and 5xx are retried with
        backoff for that long (only for requests the server treats idempotently)."""
        import requests

        from netlens.remote import RemoteError, _error

        session = self.connection.client._session
        deadline, delay, last = time.monotonic() + retry_s, 0.1, ""
        while True:
            try:
                response = session.request(
                    method, self.base_url + API + path, timeout=TIMEOUT, **kwargs
                )
                if response.status_code < 500:
                    if response.status_code >= 400:
                        raise _error(response)
                    return response
                last = f"HTTP {response.status_code}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = type(exc).__name__
            if time.monotonic() + delay > deadline:
                raise RemoteError(
                    f"server: {method} {path} at {self.base_url} failed ({last})"
                    + (f" for {retry_s:.0f} s of retries" if retry_s else "")
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- the Sink -------------------------------------------------------------------------------
    def create(self, run: NewRun) -> int:
        from netlens.storage.wire import pack_arrays

        meta = {
            "spec": run.spec.model_dump(mode="json"),
            "layers": run.layers,
            "device": run.device,
            "data_info": run.data_info,
            "architecture": run.architecture,
        }
        files = {
            "meta": ("run.json", json.dumps(meta), "application/json"),
            "arrays": ("arrays.npz", pack_arrays(run.arrays), "application/octet-stream"),
        }
        return int(self.call("POST", "/client-runs", files=files).json()["id"])

    def load(self, run_id: int) -> StoredRun:
        from netlens.remote import RemoteError
        from netlens.storage.wire import unpack_arrays

        try:
            info = self.call("GET", f"/runs/{run_id}", retry_s=10).json()
        except RemoteError as exc:
            if "(404)" in str(exc):
                raise LookupError(f"run {run_id} does not exist on {self.base_url}") from None
            raise
        data = self.call("GET", f"/runs/{run_id}/arrays", retry_s=10).content
        try:
            response = self.call("GET", f"/runs/{run_id}/checkpoint", retry_s=10)
            checkpoint = (int(response.headers["NetLens-Checkpoint-Epoch"]), response.content)
        except RemoteError as exc:
            if "(404)" not in str(exc):
                raise
            checkpoint = None
        return StoredRun(
            id=int(info["id"]),
            spec=info["spec"],
            status=info["status"],
            layers=info["layers"],
            data_info=info["data_info"],
            arrays=unpack_arrays(data, 2**40),
            last_epoch=info["last_epoch"],
            epochs_recorded=info["epochs_recorded"],
            recorded_bytes=info["recorded_bytes"],
            checkpoint=checkpoint,
        )

    def reopen(
        self, run_id, *, device, layers=None, data_info=None, architecture=None, arrays=None
    ):
        """(`arrays`, a continued fit's probe and grid, are those the run was created with:
        the same data and recording settings; they are not sent again.)"""
        body = {"device": device[:200], "layers": layers, "data_info": data_info}
        if architecture:
            body["architecture"] = architecture[:200]
        self.call("POST", f"/runs/{run_id}/reopen", json=body, retry_s=self.retry_seconds)

    def extend(self, run_id: int, spec: ExperimentSpec) -> None:
        self.call(
            "POST",
            f"/runs/{run_id}/extend",
            json={"spec": spec.model_dump(mode="json")},
            retry_s=self.retry_seconds,
        )

    def writer(self, run_id: int, *, given_states: bool = False) -> Writer:
        return RestWriter(self, run_id, given_states=given_states)

    def finish(self, run_id, status, error, epochs_total=None) -> None:
        body = {"status": status, "error": error[:20_000] if error else None}
        if epochs_total is not None:
            body["epochs_total"] = int(epochs_total)
        self.call("POST", f"/runs/{run_id}/finish", json=body, retry_s=FINISH_RETRY_SECONDS)

    def handle(self, run_id: int) -> Any:
        from netlens.sdk.remote_run import RemoteRun

        return RemoteRun(run_id, self.connection)  # this sink's server, whatever connects later


class RestWriter(BatchingWriter):
    """`put(chunk)` from the training thread; a background thread sends them in batches
    (about every SEND_SECONDS or SEND_BYTES), one request at a time and in epoch order, each
    retried on connection errors, timeouts and 5xx for up to the sink's retry_seconds. The
    server skips epochs it holds, so a batch sent twice (its answer lost) is stored once.
    After a batch fails for good nothing later is sent (no gap is left behind stored epochs):
    the error is raised on the next `put` or on `close`."""

    batch_seconds, batch_bytes = SEND_SECONDS, SEND_BYTES

    def __init__(self, sink: RestSink, run_id: int, *, given_states: bool, max_pending: int = 8):
        self.sink, self.given_states = sink, given_states
        super().__init__(run_id, max_pending, "rest")

    def _failure(self) -> str:
        sent = f"epochs through {self.last_epoch}" if self.last_epoch is not None else "none"
        return (
            f"streaming run {self.run_id} to {self.sink.base_url} failed: {self._error} "
            f"(stored there: {sent})"
        )

    def _flush(self, chunks: list[Any], final: bool = False) -> None:
        self._send(chunks)

    def _send(self, chunks: list[Any]) -> None:
        from netlens.storage.wire import pack_chunk
        from netlens.worker.recorder import merge_chunks

        merged = merge_chunks(chunks)
        checkpoint = None
        state = next((c.state for c in reversed(chunks) if c.state is not None), None)
        if self.given_states and state is not None:
            from netlens.worker.checkpoint import state_to_bytes

            checkpoint = (state.epoch, state_to_bytes(state))
        self.sink.call(
            "POST",
            f"/runs/{self.run_id}/epochs",
            data=pack_chunk(merged, checkpoint),
            headers={"Content-Type": "application/octet-stream"},
            retry_s=self.sink.retry_seconds,
        )
        self.last_epoch = merged.epochs[-1]


def default_sink() -> Sink:
    """Where a new run of the Python API goes: the team server of nl.connect() (or
    $NETLENS_SERVER), else the local database (netlens.sdk.home)."""
    from netlens.sdk.connection import current

    if current() is not None:
        return RestSink()
    return LocalSink()
