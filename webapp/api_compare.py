"""Comparing runs over the REST API (docs/api.md), on webapp/api.py's blueprint: several
runs' metrics aligned on the union of their epochs, CKA between two runs' layers at an epoch,
and each run's distance from its initial weights: what the compare page shows, computed by
the same functions (webapp/comparison.py).

Read-only, rule "member" like the page. Lists in the query are one comma-separated value
(`runs=3,5`): each item checked, none repeated, their number bounded. No SQL, no JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from flask import request

from netlens.storage import runs
from netlens.webapp import comparison, context, openapi
from netlens.webapp.api import ApiProblem, _check_args, _int_arg, _json, bp
from netlens.webapp.authz import rule
from netlens.webapp.openapi import MAX_ID

T = TypeVar("T")
DEFAULT_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


# ---- query helpers (also used by webapp/api_admin.py) -----------------------------------------


def list_arg(name: str, max_items: int, item: Callable[[str], T]) -> list[T] | None:
    """A comma-separated list (absent: None): every item through `item` (which raises
    ApiProblem naming the field), none given twice, at most `max_items`."""
    text = request.args.get(name)
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) > max_items:
        raise ApiProblem(
            400, f"{name}: {len(parts)} values is over the limit of {max_items}", [name]
        )
    out: list[T] = []
    for part in parts:
        value = item(part)
        if value in out:
            raise ApiProblem(400, f"{name}: {part[:40]!r} is given twice", [name])
        out.append(value)
    return out


def required_id(name: str) -> int:
    if name not in request.args:
        raise ApiProblem(400, f"{name}: required (a run id, 1 to {MAX_ID})", [name])
    return _int_arg(name, None, 1, MAX_ID)


def _run_ids() -> list[int]:
    if "runs" not in request.args:
        raise ApiProblem(400, "runs: required: the runs to compare, e.g. runs=3,5", ["runs"])
    try:
        return comparison.parse_ids(request.args["runs"], strict=True)
    except ValueError as exc:
        raise ApiProblem(400, str(exc), ["runs"]) from None


def _info(run_id: int, field: str) -> runs.RunInfo:
    try:
        return context.current().data.info(run_id)
    except runs.RunNotFound:
        raise ApiProblem(404, f"{field}: run {run_id} does not exist", [field]) from None


def _metric_name(part: str) -> str:
    if not part or len(part) > 200 or "\x00" in part:
        raise ApiProblem(
            400, f"metric: {part[:40]!r} is not a metric name (1 to 200 characters)", ["metric"]
        )
    return part


# ---- routes --------------------------------------------------------------------------------------


@bp.route("/compare/metrics", methods=["GET"])
@rule("member")
def compare_metrics():
    _check_args("runs", "metric")
    ids = _run_ids()
    asked = list_arg("metric", openapi.MAX_METRICS, _metric_name)
    data = context.current().data
    infos = [_info(i, "runs") for i in ids]
    recorded = comparison.metric_names(data, infos)
    if asked is None:
        names = [n for n in DEFAULT_METRICS if n in recorded]
    else:
        missing = [n for n in asked if n not in recorded]
        if missing:
            raise ApiProblem(
                404,
                f"metric: none of runs {', '.join(map(str, ids))} recorded {missing[0]!r} "
                "(GET /runs/{run_id}/metrics names what a run recorded)",
                ["metric"],
            )
        names = asked
    epochs = comparison.union_epochs([data.metrics(info)[0] for info in infos])
    values = len(epochs) * len(infos) * len(names)
    if values > openapi.MAX_JSON_VALUES:
        raise ApiProblem(
            413,
            f"values: {values:,} is over the limit of {openapi.MAX_JSON_VALUES:,}; ask for "
            "fewer runs or metrics",
            ["runs", "metric"],
        )
    epochs, aligned = comparison.aligned_metrics(data, infos, names)
    return _json({"runs": ids, "epochs": epochs.tolist(), "metrics": aligned})


def _span(epochs: np.ndarray) -> str:
    if not len(epochs):
        return "none"
    return f"{len(epochs)}, from {int(epochs[0])} to {int(epochs[-1])}"


@bp.route("/compare/cka", methods=["GET"])
@rule("member")
def compare_cka():
    _check_args("a", "b", "epoch")
    a_id, b_id = required_id("a"), required_id("b")
    epoch = _int_arg("epoch", None, 0, openapi.MAX_EPOCH)
    data = context.current().data
    a, b = _info(a_id, "a"), _info(b_id, "b")
    recorded = {}
    for field, info in (("a", a), ("b", b)):
        recorded[field] = comparison.signature_epochs(data, info)
        if not len(recorded[field]):
            raise ApiProblem(
                409,
                f"{field}: run {info.id} ({info.status}) has recorded no signatures yet",
                [field],
            )
    shared = np.intersect1d(recorded["a"], recorded["b"])
    if epoch is None:
        if not len(shared):
            raise ApiProblem(
                409,
                f"epoch: runs {a.id} and {b.id} recorded signatures at no common epoch "
                f"(a: {_span(recorded['a'])}; b: {_span(recorded['b'])})",
                ["epoch"],
            )
        epoch = int(shared[-1])
    elif epoch not in shared:
        raise ApiProblem(
            404,
            f"epoch: runs {a.id} and {b.id} did not both record signatures at epoch {epoch} "
            f"(epochs both recorded: {_span(shared)})",
            ["epoch"],
        )
    try:
        found = comparison.cka(data, a, b, epoch, epoch)
    except comparison.NotComparable as exc:  # too few shared inputs (a, b), no probe (a or b)
        fields = ["a", "b"] if exc.field == "runs" else [exc.field]
        raise ApiProblem(409, f"{', '.join(fields)}: {exc}", fields) from None
    return _json(
        {
            "a": a.id,
            "b": b.id,
            "epoch": epoch,
            "inputs": found.n_inputs,
            "rows": found.rows,
            "columns": found.columns,
            "matrix": found.matrix.tolist(),
        }
    )


@bp.route("/compare/distance", methods=["GET"])
@rule("member")
def compare_distance():
    _check_args("runs")
    ids = _run_ids()
    data = context.current().data
    out = []
    for info in [_info(i, "runs") for i in ids]:
        epochs, moved, initial = comparison.distance(data, info)
        out.append(
            {
                "run_id": info.id,
                "epochs": np.asarray(epochs).astype(int).tolist(),
                "distance": np.asarray(moved, dtype=float).tolist(),
                "initial_norm": float(initial),
            }
        )
    return _json({"runs": out})
