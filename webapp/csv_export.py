"""CSV files of the runs a filter matches and of a run's metrics, for the runs and run pages'
"Download CSV" buttons and the REST API's runs.csv and metrics.csv (docs/filter.md).

Names, tags and other text are the users' own: a cell of text beginning with = + - @ (or a
tab or carriage return) would be read as a formula by a spreadsheet, so it is written with
a leading ' (OWASP's advice on CSV injection). Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import flask

from netlens.storage import records, runs
from netlens.storage.db import Database
from netlens.webapp import context
from netlens.webapp.authz import rule

MAX_CSV_ROWS = 10_000  # runs in one file: more are left out (the file says so in its name)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "owner",
    "dataset",
    "architecture",
    "optimizer",
    "learning_rate",
    "epochs_total",
    "last_epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "tags",
    "created_at",
    "started_at",
    "finished_at",
    "group_id",
)


def safe_cell(value: Any) -> Any:
    """A cell as written: text that a spreadsheet would take for a formula gets a leading
    quote; None and non-finite numbers are empty; datetimes ISO 8601."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue()


def _run_row(info: runs.RunInfo) -> list[Any]:
    m = info.final_metrics
    return [
        info.id,
        info.name,
        info.status,
        info.extra.get("owner"),
        info.dataset,
        info.architecture,
        info.optimizer,
        (info.spec.get("optimizer") or {}).get("learning_rate"),
        info.epochs_total,
        info.last_epoch,
        m["train_loss"],
        m["train_accuracy"],
        m["val_loss"],
        m["val_accuracy"],
        ";".join(info.tags),
        info.created_at,
        info.started_at,
        info.finished_at,
        info.group_id,
    ]


def runs_csv(db: Database, **query: Any) -> tuple[str, int]:
    """The CSV of the runs runs_page(**query) finds (e.g. where=, sort=), the first
    MAX_CSV_ROWS of them, and how many match in all. FilterError for a bad `where`."""
    items, total = runs.runs_page(db, limit=MAX_CSV_ROWS, offset=0, **query)
    return to_csv(RUN_COLUMNS, (_run_row(i) for i in items)), total


def metrics_csv(db: Database, run_id: int) -> str:
    """A run's recorded metrics, one row per epoch: epoch and each metric (empty where an
    epoch has none)."""
    epochs, metrics = records.read_metrics(db, run_id)
    names = list(metrics)
    rows = ([int(e), *(float(metrics[n][i]) for n in names)] for i, e in enumerate(epochs))
    return to_csv(["epoch", *names], rows)


def runs_filename(total: int) -> str:
    return "runs.csv" if total <= MAX_CSV_ROWS else f"runs-first-{MAX_CSV_ROWS}-of-{total}.csv"


def csv_response(text: str, filename: str) -> flask.Response:
    return flask.Response(
        text,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def install(app) -> None:
    """GET /runs/<id>/metrics.csv for the browser (the run page's Metrics CSV is a link)."""

    @app.server.route("/runs/<id:run_id>/metrics.csv", methods=["GET"])
    @rule("member")
    def netlens_run_metrics_csv(run_id: int):
        db = context.current().db
        try:
            runs.get_run(db, run_id)
        except runs.RunNotFound as exc:
            return flask.Response(str(exc), status=404, mimetype="text/plain")
        return csv_response(metrics_csv(db, run_id), f"run{run_id}-metrics.csv")
