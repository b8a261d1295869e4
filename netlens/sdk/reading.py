"""Reading runs from scripts and notebooks: `nl.runs(...)`, `nl.get(id)` and its `Run`.

Everything is read through storage/ (no SQL here) from the database `netlens` commands use
(netlens.sdk.home.database()), and nothing here imports JAX: reading a run in a notebook
starts in well under a second. Tables are pandas DataFrames when pandas is importable, else
lists of dicts (runs) or dicts of arrays (metrics).
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netlens.storage import export, records
from netlens.storage import runs as stored_runs
from netlens.storage.catalog import DATASETS
from netlens.storage.db import Database
from netlens.storage.models import RUN_STATUSES
from netlens.storage.runs import RunInfo
from netlens.storage.spec import ExperimentSpec, parse_spec

DEFAULT_URL = "http://127.0.0.1:8050"  # `netlens serve`'s address
MAX_LISTED = 10_000


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _database(database: Database | None) -> Database:
    if database is not None:
        return database
    from netlens.sdk.home import database as home_database

    return home_database()


def base_url() -> str:
    """Where the web app is reached: $NETLENS_URL (storage.settings), default
    http://127.0.0.1:8050, where `netlens serve` listens."""
    from netlens.sdk.home import settings

    return (settings().url or DEFAULT_URL).rstrip("/")


# ---- the list -----------------------------------------------------------------------------------

COLUMNS = (
    "id",
    "name",
    "status",
    "dataset",
    "model",
    "architecture",
    "optimizer",
    "epochs_total",
    "last_epoch",
    "epochs_recorded",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "tags",
    "group_id",
    "created_at",
    "finished_at",
)


def _row(info: RunInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "status": info.status,
        "dataset": info.dataset,
        "model": info.spec.get("model", {}).get("kind"),
        "architecture": info.architecture,
        "optimizer": info.optimizer,
        "epochs_total": info.epochs_total,
        "last_epoch": info.last_epoch,
        "epochs_recorded": info.epochs_recorded,
        **info.final_metrics,
        "tags": list(info.tags),
        "group_id": info.group_id,
        "created_at": info.created_at,
        "finished_at": info.finished_at,
    }


def runs(
    status: str | None = None,
    tag: str | None = None,
    dataset: str | None = None,
    *,
    name: str | None = None,
    limit: int = 1000,
    database: Database | None = None,
):
    """The runs that match every filter given, newest first: a pandas DataFrame (one row per
    run, columns COLUMNS) when pandas is installed, else a list of dicts.

    status: queued, running, succeeded, failed, cancelled, diverged. tag: runs carrying it.
    dataset: a dataset name (xor, mnist, external for nl.Recorder runs, ...). name: a
    case-insensitive part of the name. limit: at most this many runs (1 to 10,000)."""
    check_run_filters(status, tag, dataset, name, limit)
    connection = _remote() if database is None else None
    if connection is not None:
        from netlens.sdk.remote_run import list_remote_runs

        found = list_remote_runs(connection, status, tag, dataset, name or None, int(limit))
    else:
        found, _total = stored_runs.runs_page(
            _database(database),
            limit=int(limit),
            status=status,
            tag=tag,
            dataset=dataset,
            name_contains=name or None,
        )
    return _table([_row(info) for info in found])


def check_run_filters(status, tag, dataset, name, limit) -> None:
    """nl.runs' arguments, checked the same way for the local database and a server."""
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(RUN_STATUSES)}")
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"dataset: {dataset!r} is not one of {', '.join(DATASETS)}")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 50):
        raise ValueError(f"tag: {tag!r} must be a text of 1 to 50 characters")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise ValueError(f"name: {name!r} must be a text of at most 200 characters")
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral):
        raise TypeError(f"limit: must be an integer, got {limit!r}")
    if not 1 <= limit <= MAX_LISTED:
        raise ValueError(f"limit: {limit} is out of range: must be 1 to {MAX_LISTED:,}")


def _table(rows: list[dict[str, Any]]):
    pandas = _pandas()
    if pandas is None:
        return rows
    return pandas.DataFrame(rows, columns=list(COLUMNS))


def get(run_id: int, *, database: Database | None = None) -> RunBase:
    """One run by id (LookupError when there is none): from the server while connected
    (nl.connect; a RemoteRun), else from the local database (a Run). `database` reads that
    database whatever the connection."""
    if isinstance(run_id, bool) or not isinstance(run_id, numbers.Integral):
        raise TypeError(f"run_id: must be an integer, got {run_id!r}")
    connection = _remote() if database is None else None
    if connection is not None:
        from netlens.sdk.remote_run import RemoteRun

        run: RunBase = RemoteRun(int(run_id), connection)
    else:
        run = Run(int(run_id), _database(database))
    run.info  # noqa: B018 - RunNotFound (a LookupError) now rather than on first use
    return run


def _remote():
    """The team server in use (netlens.sdk.connection), or None: the local database."""
    from netlens.sdk.connection import current

    return current()


# ---- one run --------------------------------------------------------------------------------------


class RunBase:
    """What every run handle offers, local (Run) or on a team server (RemoteRun): the public
    surface, its argument checks and its error messages, written once over a few reads that
    each kind does its own way (_info, epochs, tensor_names, _tensor_epochs, _read_tensor,
    _metric_arrays, arrays, export, url, analyze)."""

    id: int

    def __repr__(self) -> str:
        info = self.info
        return (
            f"<{type(self).__name__} {self.id} {info.name!r} {info.status}: {info.dataset}, "
            f"{info.architecture}, {info.epochs_recorded} epochs recorded>"
        )

    # -- what each kind reads its own way ----------------------------------------------------
    @property
    def info(self) -> RunInfo:
        """Everything the runs table holds about it (storage.runs.RunInfo), read now."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def epochs(self) -> np.ndarray:
        """The recorded epoch numbers, ascending."""
        raise NotImplementedError

    @property
    def tensor_names(self) -> list[str]:
        """Every recorded tensor (params/..., signatures/..., grid/output, lowres/...)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The run's fixed arrays: probe/x, probe/y, probe/is_ood, classes, grid/x."""
        raise NotImplementedError

    def export(self, path: str | Path, compress: bool = False) -> Path:
        """Write the run to one .npz file (docs/export-format.md); returns its path."""
        raise NotImplementedError

    def analyze(self, epoch: int | None = None, **options: Any) -> Analyses:
        """See Run.analyze and RemoteRun.analyze (options: force / timeout, methods)."""
        raise NotImplementedError

    def _metric_arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(epochs, {metric: values}), NaN where missing (storage.records.read_metrics)."""
        raise NotImplementedError

    def _tensor_epochs(self, name: str) -> np.ndarray:
        """The epochs at which tensor `name` (a recorded one) was recorded."""
        raise NotImplementedError

    def _read_tensor(
        self, name: str, first: int | None, last: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of tensor `name` at its recorded epochs in [first, last]."""
        raise NotImplementedError

    # -- summary ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def spec(self) -> ExperimentSpec:
        """The experiment spec (for an nl.Recorder run: kind flax, dataset external; only
        name, tags, training.epochs and recording.probe_size describe it)."""
        return parse_spec(self.info.spec)

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The recorded layers in forward order (name, kind, units, ...)."""
        return self.info.layers

    # -- metrics and arrays ---------------------------------------------------------------------
    def metrics(self):
        """One row per recorded epoch, one column per metric (NaN where missing): a pandas
        DataFrame indexed by epoch, else a dict {"epoch": array, name: array}."""
        epochs, values = self._metric_arrays()
        pandas = _pandas()
        if pandas is None:
            return {"epoch": epochs, **values}
        return pandas.DataFrame(values, index=pandas.Index(epochs, name="epoch"))

    def probe(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(probe inputs, their labels or None)."""
        arrays = self.arrays()
        return arrays["probe/x"], arrays.get("probe/y")

    def tensor(
        self,
        name: str,
        epochs: int | slice | Sequence[int] | None = None,
        *,
        with_epochs: bool = False,
    ):
        """One recorded tensor. epochs: None for all recorded epochs (shape (E, ...)); an
        epoch number (shape (...), that epoch alone); slice(a, b[, k]) for the recorded
        epochs e with a <= e < b (and (e - a) % k == 0), as range(a, b, k) would list them;
        a list of epoch numbers, in that order. Epochs are epoch numbers, not positions.
        with_epochs=True returns (epoch numbers, values)."""
        self._check_name(name)
        single = isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool)
        first, last, wanted = self._epoch_bounds(epochs)
        found, values = self._read_tensor(name, first, last)
        if isinstance(epochs, slice) and epochs.step is not None:
            start = epochs.start if epochs.start is not None else (found[0] if len(found) else 0)
            keep = (found - start) % epochs.step == 0
            found, values = found[keep], values[keep]
        if wanted is not None:
            position = {int(e): i for i, e in enumerate(found)}
            missing = [e for e in wanted if e not in position]
            if missing:
                raise ValueError(
                    f"epochs: {missing[:5]} not recorded for {name} in run {self.id} "
                    f"(recorded: {_describe_epochs(self._tensor_epochs(name))})"
                )
            rows = [position[e] for e in wanted]
            found, values = found[rows], values[rows]
            if single:
                return (int(found[0]), values[0]) if with_epochs else values[0]
        return (found, values) if with_epochs else values

    def signatures(self, layer: str, epoch: int | None = None) -> np.ndarray:
        """What `layer` output for each probe input at `epoch` (default: the last recorded
        epoch): shape (probe inputs, ...)."""
        if not isinstance(layer, str):
            raise TypeError(f"layer: must be a layer's name, got {layer!r}")
        name = layer if layer.startswith("signatures/") else f"signatures/{layer}"
        names = self.tensor_names
        if name not in names:
            layers = [n.removeprefix("signatures/") for n in names]
            layers = [n for n in layers if not n.startswith(("params/", "lowres/", "grid/"))]
            close = difflib.get_close_matches(layer, layers, n=3)
            raise ValueError(
                f"layer: {layer!r} has no recorded signatures in run {self.id}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" (layers: {', '.join(layers[:20])})"
            )
        if epoch is None:
            recorded = self._tensor_epochs(name)
            if not len(recorded):
                raise ValueError(f"epoch: run {self.id} has no epoch recorded yet")
            epoch = int(recorded[-1])
        return self.tensor(name, epoch)

    # -- figures ------------------------------------------------------------------------------
    def figure(self, view: str, epoch: int | None = None, **options: Any):
        """The run page's figure of `view` at `epoch` (default: the last recorded), as a
        plotly Figure (shown inline in Jupyter). Views: see netlens.sdk.figures.VIEWS."""
        from netlens.sdk.figures import run_figure

        return run_figure(self, view, epoch, **options)

    # -- helpers --------------------------------------------------------------------------------
    def _check_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name: must be a tensor name, got {name!r}")
        names = self.tensor_names
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            raise ValueError(
                f"name: {name!r} is not recorded in run {self.id}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" (run.tensor_names lists all {len(names)})"
            )

    @staticmethod
    def _epoch_bounds(epochs) -> tuple[int | None, int | None, list[int] | None]:
        """(first, last) epochs to read, and the exact epochs wanted (None: every one read)."""
        if epochs is None:
            return None, None, None
        if isinstance(epochs, bool | str | bytes):  # ("12" would read as [1, 2])
            raise TypeError("epochs: an epoch number, a slice or a list of epoch numbers")
        if isinstance(epochs, numbers.Integral):
            return int(epochs), int(epochs), [int(epochs)]
        if isinstance(epochs, slice):
            for part in ("start", "stop", "step"):
                value = getattr(epochs, part)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, numbers.Integral)
                ):
                    raise TypeError(f"epochs: the slice's {part} must be an integer or None")
            if epochs.step is not None and epochs.step < 1:
                raise ValueError("epochs: the slice's step must be 1 or more")
            stop = None if epochs.stop is None else int(epochs.stop) - 1
            start = None if epochs.start is None else int(epochs.start)
            return start, stop, None
        try:
            wanted = [int(e) for e in epochs]
        except (TypeError, ValueError):
            raise TypeError("epochs: an epoch number, a slice or a list of epoch numbers") from None
        if not wanted:
            return 0, -1, []
        return min(wanted), max(wanted), wanted


class Run(RunBase):
    """A run in the local database. Its summary is read fresh on each access (a live run
    moves); tensors are read on demand, only the epochs asked for."""

    def __init__(self, run_id: int, database: Database | None = None):
        self.id = run_id
        self.db = _database(database)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and (other.id, other.db.url) == (self.id, self.db.url)

    def __hash__(self) -> int:
        return hash((self.id, self.db.url))

    @property
    def info(self) -> RunInfo:
        """Everything the runs table holds about it (storage.runs.RunInfo), read now."""
        return stored_runs.get_run(self.db, self.id)

    @property
    def url(self) -> str:
        """The run's page in the web app ($NETLENS_URL, default http://127.0.0.1:8050)."""
        return f"{base_url()}/runs/{self.id}"

    @property
    def epochs(self) -> np.ndarray:
        """The recorded epoch numbers, ascending."""
        return np.asarray(stored_runs.recorded_epoch_numbers(self.db, self.id), np.int64)

    @property
    def tensor_names(self) -> list[str]:
        """Every recorded tensor (params/..., signatures/..., grid/output, lowres/...)."""
        return records.tensor_names(self.db, self.id)

    def arrays(self) -> dict[str, np.ndarray]:
        """The run's fixed arrays: probe/x, probe/y, probe/is_ood, classes, grid/x."""
        return records.read_arrays(self.db, self.id)

    def export(self, path: str | Path, compress: bool = False) -> Path:
        """Write the run to one .npz file (docs/export-format.md); returns its path."""
        return export.export_run(self.db, self.id, path, compress)

    def analyze(
        self, epoch: int | None = None, *, force: bool = False, methods: Any = ()
    ) -> Analyses:
        """The signature analyses of `epoch` (default: the last recorded): clusters,
        separability, unseen classes, PCA projections, and the t-SNE / UMAP projections
        named in `methods` (["tsne", "umap"] or "tsne,umap": slow, seconds per layer). Read
        when stored (by a worker, the run page or `netlens analyze`), else computed here as
        `netlens analyze` does and stored; `force` computes again."""
        from netlens.dispatch.analysis_requests import (
            projection_methods,
            resolve_epoch,
            with_projections,
        )
        from netlens.storage import analyses
        from netlens.worker.analyze import run_analysis

        _check_epoch_argument(epoch)
        asked = projection_methods(list(methods) if isinstance(methods, tuple) else methods)
        run = self.info
        epoch = resolve_epoch(self.db, run, epoch)
        last = resolve_epoch(self.db, run, None)
        wanted = [("epoch", epoch)] + ([("timeline", last)] if epoch == last else [])
        wanted += [(method, epoch) for method in asked]
        found = {}
        for kind, at in wanted:
            stored = analyses.get(self.db, self.id, kind, at)
            if force or stored is None or stored.state != "done":
                run_analysis(self.db, self.id, kind, at)
                stored = analyses.get(self.db, self.id, kind, at)
            found[kind] = stored.summary
        summary = with_projections(found["epoch"], {m: found[m] for m in asked})
        return Analyses(self.id, epoch, summary, found.get("timeline"))

    def _metric_arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return records.read_metrics(self.db, self.id)

    def _tensor_epochs(self, name: str) -> np.ndarray:
        return records.tensor_epoch_list(self.db, self.id, name)

    def _read_tensor(self, name, first, last):
        return records.read_tensor(self.db, self.id, name, first, last)


@dataclass(frozen=True)
class Analyses:
    """A run's signature analyses at one epoch, as the signatures page shows them.

    summary: the epoch's analysis (worker/analyze.py's summary, `netlens analyze --json`):
    run_id, epoch, layers, n_probe, n_ood, classes, class_names, and per layer the
    separability, clusters, unseen-class and projection results. timeline: for the last
    recorded epoch, the separability of each layer over up to 40 epochs (None otherwise)."""

    run_id: int
    epoch: int
    summary: dict[str, Any]
    timeline: dict[str, Any] | None = None

    def describe(self) -> str:
        """The text `netlens analyze` prints: per layer K, silhouettes, linear probe."""
        from netlens.worker.signatures import describe

        return describe(self.summary)


def _check_epoch_argument(epoch) -> None:
    if epoch is None:
        return
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise TypeError(f"epoch: must be an epoch number or None, got {epoch!r}")
    if not 0 <= epoch <= 2**31 - 1:
        raise ValueError(f"epoch: {epoch} is out of range: must be 0 to {2**31 - 1}")


def _describe_epochs(epochs: np.ndarray) -> str:
    if not len(epochs):
        return "none"
    if len(epochs) <= 6:
        return ", ".join(str(int(e)) for e in epochs)
    return f"{len(epochs)} epochs from {int(epochs[0])} to {int(epochs[-1])}"
