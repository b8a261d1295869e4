"""Where nl.Recorder's runs go: the one seam between recording and storing.

A sink creates (or reopens) a run and takes its epochs. `LocalSink` writes to the local
database (netlens.sdk.home.database()) through storage/ and the worker's background writer
(worker/recorder.py); a REST sink for a team server (issue 15, part 5) will implement the
same methods over the API. The Recorder never touches storage/ itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from netlens.storage.db import Database
from netlens.storage.spec import ExperimentSpec


@dataclass(frozen=True)
class NewRun:
    """Everything a new recorder run starts with, written all at once."""

    spec: ExperimentSpec
    layers: list[dict[str, Any]]
    architecture: str
    device: str
    data_info: dict[str, Any]
    arrays: dict[str, np.ndarray]  # probe/x, probe/y, probe/is_ood, classes


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


class Sink(Protocol):
    def create(self, run: NewRun) -> int: ...

    def load(self, run_id: int) -> StoredRun: ...

    def reopen(self, run_id: int, device: str) -> None: ...

    def start(self, run_id: int) -> None: ...

    def put(self, chunk: Any) -> None: ...

    def finish(self, status: str, error: str | None, epochs_total: int | None) -> None: ...

    def handle(self, run_id: int) -> Any: ...


class LocalSink:
    """The local database: one transaction creates the run with its probe; a writer thread
    (worker.recorder.Recorder) commits epochs as they come, about every 0.1 s."""

    def __init__(self, db: Database | None = None):
        if db is None:
            from netlens.sdk.home import database

            db = database()
        self.db = db
        self.run_id: int | None = None
        self._writer = None

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

    def reopen(self, run_id: int, device: str) -> None:
        from netlens.storage import runs

        info = runs.get_run(self.db, run_id)
        runs.mark_started(
            self.db,
            run_id,
            layers=info.layers,
            device=device,
            data_info=info.data_info,
            architecture=info.architecture,
        )

    def start(self, run_id: int) -> None:
        from netlens.worker.recorder import Recorder as Writer

        self.run_id = run_id
        self._writer = Writer(self.db, run_id, given_states=True)

    def put(self, chunk: Any) -> None:
        """Queue one chunk of epochs (worker.train.Chunk); raises an earlier write's error."""
        self._writer.put(chunk)

    def finish(self, status: str, error: str | None, epochs_total: int | None) -> None:
        """Flush every queued epoch, then end the run with `status`. A write that failed
        ends it failed, and is raised."""
        from netlens.storage import runs

        failure = None
        try:
            self._writer.close()
        except Exception as exc:  # the writer's error: the run says it, and it is raised
            failure = exc
            status, error = "failed", f"recording failed: {exc}"
        if epochs_total is not None:
            runs.set_epochs_total(self.db, self.run_id, epochs_total)
        runs.finish_run(self.db, self.run_id, status, error)
        if failure is not None:
            raise failure

    def handle(self, run_id: int) -> Any:
        from netlens.sdk.reading import Run

        return Run(run_id, self.db)
