"""Where nl.Sequential.fit's runs go: the seam between training in the user's process and
the place runs are stored (nl.Recorder's is netlens/sdk/sink.py; the two are to become one
when part 5 of issue 15 adds a REST sink).

`LocalSink` writes to a database (by default the CLI's: netlens.sdk.home.database()) with
the functions a worker uses (storage.runs, storage.records, worker.recorder.Recorder), so a
run made by `fit` is stored exactly as a spec run is. A team-server sink (issue 15, part 5)
will implement the same methods over the REST API.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from netlens.storage import records, runs
from netlens.storage.db import Database
from netlens.storage.spec import ExperimentSpec

# `netlens serve` shows the run page here by default (its --host and --port)


class Writer(Protocol):
    def put(self, chunk: Any) -> None: ...  # a worker.train.Chunk, in epoch order

    def close(self) -> None: ...  # flush; raises what the writer met


class Sink(Protocol):
    def create(self, spec: ExperimentSpec, arrays: dict[str, np.ndarray]) -> int: ...

    def start(
        self,
        run_id: int,
        *,
        layers: list[dict],
        device: str,
        data_info: dict,
        architecture: str,
        arrays: dict[str, np.ndarray],
    ) -> None: ...

    def writer(self, run_id: int) -> Writer: ...

    def extend(self, run_id: int, spec: ExperimentSpec) -> None: ...

    def finish(self, run_id: int, status: str, error: str | None) -> None: ...

    def url(self, run_id: int) -> str: ...


class LocalSink:
    """Runs in a database this process opens (SQLite or PostgreSQL)."""

    def __init__(self, db: Database | None = None, web_url: str | None = None):
        """`web_url`: where run pages are reached (default: $NETLENS_URL, as nl.get's)."""
        from netlens.sdk.reading import base_url

        if db is None:
            from netlens.sdk.home import database

            db = database()
        self.db, self.web_url = db, (web_url or base_url()).rstrip("/")

    def create(self, spec: ExperimentSpec, arrays: dict[str, np.ndarray]) -> int:
        """A queued run with its stored data, in one transaction."""
        return runs.create_run_with_arrays(self.db, spec, arrays, status="queued")

    def start(
        self,
        run_id: int,
        *,
        layers: list[dict],
        device: str,
        data_info: dict,
        architecture: str,
        arrays: dict[str, np.ndarray],
    ) -> None:
        """The run is running: its layers, device and data summary, and its fixed arrays
        (probe, grid), as worker.runner.run_experiment stores them."""
        runs.mark_started(
            self.db,
            run_id,
            layers=layers,
            device=device,
            data_info=data_info,
            architecture=architecture,
        )
        records.write_arrays(self.db, run_id, arrays)

    def writer(self, run_id: int) -> Writer:
        from netlens.worker.recorder import Recorder

        return Recorder(self.db, run_id)

    def extend(self, run_id: int, spec: ExperimentSpec) -> None:
        runs.extend_run(self.db, run_id, spec)

    def finish(self, run_id: int, status: str, error: str | None) -> None:
        runs.finish_run(self.db, run_id, status, error)

    def url(self, run_id: int) -> str:
        return f"{self.web_url}/runs/{run_id}"


def default_sink() -> Sink:
    """Where a new run of the Python API goes: the local database (netlens.sdk.home). The
    team-server part (nl.connect) will choose its REST sink here."""
    return LocalSink()
