"""More of the REST API (docs/api.md), on webapp/api.py's blueprint: presets and spec
validation, a run's recorded tensors and signature analyses, sweeps (run groups), and the
run list's extra filters, sorting and `next` link (used by api.list_runs).

Every route reads only, with the rule of the web page that shows the same thing ("member":
lab members read every run). Ids in paths are `<id:...>` (webapp/api.py's IdConverter: 1 to
2^31-1, others match no route: 404, never a database error). No SQL here (storage/ does it) and no JAX.
"""

from __future__ import annotations

import io
import math
from typing import Any
from urllib.parse import urlencode

import flask
import numpy as np
from flask import request
from pydantic import BaseModel, ConfigDict

from netlens.storage import analyses, records, runs, users
from netlens.storage.groups import GroupInfo, GroupNotFound, get_group
from netlens.storage.models import ANALYSIS_KINDS
from netlens.storage.presets import get_preset, preset_description, preset_names
from netlens.storage.sizing import estimate_recorded_bytes, recorded_epochs
from netlens.storage.spec import LIMITS, SpecError, check_trainable, parse_spec
from netlens.storage.uploads import UploadError, resolve_spec_upload
from netlens.webapp import context, etags, openapi
from netlens.webapp.api import (
    PIECE_BYTES,
    ApiProblem,
    _body,
    _check_args,
    _dumps,
    _fields_of,
    _int_arg,
    _iso,
    _json,
    _json_text,
    _run_attempt,
    _text_arg,
    bp,
)
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule
from netlens.webapp.openapi import MAX_ID

MAX_EPOCH = openapi.MAX_EPOCH
RUN_LIST_ARGS = ("dataset", "tag", "name", "sort", "order")
NPY_TYPES = ("application/octet-stream", "application/x-npy")
NPY_BATCH_BYTES = 32 * 1024**2  # a .npy answer is read and sent about this much at a time


def _known_id(value: int, what: str, field: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise ApiProblem(404, f"{what} {value} does not exist", [field])
    return value


def _run(run_id: int) -> runs.RunInfo:
    _known_id(run_id, "run", "run_id")
    try:
        return runs.get_run(context.current().db, run_id)
    except runs.RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None


# ---- the run list's filters, sorting and next link (api.list_runs) --------------------------


def run_list_options() -> dict[str, Any]:
    """The filters and order of GET /api/runs beyond limit, offset, status, group and owner."""
    order = request.args.get("order", "desc")  # given empty: not one of them (400)
    sort = request.args.get("sort", "id")
    if sort not in runs.SORTABLE:
        raise ApiProblem(
            400, f"sort: {sort[:40]!r} is not one of {', '.join(runs.SORTABLE)}", ["sort"]
        )
    if order not in ("asc", "desc"):
        raise ApiProblem(400, f"order: {order[:40]!r} is not asc or desc", ["order"])
    return {
        "dataset": _text_arg("dataset", 40),
        "tag": _text_arg("tag", 50),  # as spec.tags's items
        "name_contains": _text_arg("name", 200),
        "sort": sort,
        "order": order,
    }


def paged(body: dict[str, Any], total: int, items: tuple[str, str] | None = None) -> flask.Response:
    """`body` (with limit and offset) as JSON, plus `next` (in the body and a Link header)
    when more match: the same query with the next offset. `items`: (key, a JSON array's
    text) put first in the answer as it is (the run list's runs, their stored JSON spliced
    in: api._run_text)."""
    limit, offset = body["limit"], body["offset"]
    next_url = None
    if offset + limit < total:
        query = {k: v for k, v in request.args.items() if k != "offset"}
        query["offset"] = str(offset + limit)
        next_url = f"{request.script_root}{request.path}?{urlencode(query)}"
        body["next"] = next_url
    if items is None:
        response = _json(body)
    else:
        key, array = items
        rest = _dumps(body)[1:]  # '"total":...}'
        response = _json_text("{" + _dumps(key) + ":" + array + "," + rest)
    if next_url:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


# ---- presets and specs -----------------------------------------------------------------------


@bp.route("/presets", methods=["GET"])
@rule("member")
def list_presets():
    _check_args()
    return _json(
        {
            "presets": [
                {
                    "name": name,
                    "description": preset_description(name),
                    "spec": get_preset(name).model_dump(mode="json"),
                }
                for name in preset_names()
            ]
        }
    )


class _AnySpec(BaseModel):
    """A JSON object of any fields: the spec itself, checked by parse_spec."""

    model_config = ConfigDict(extra="allow")


@bp.route("/specs/validate", methods=["POST"])
@rule("member")
def validate_spec():
    """The checks of POST /api/runs on a spec, creating nothing: 422 with the same error,
    fields and errors, or the normalised spec and its size estimate."""
    _check_args()
    data = dict(_body(_AnySpec, required=True).model_extra or {})
    web = context.current()
    try:
        spec = check_trainable(parse_spec(data))  # as POST /api/runs: kind flax is refused
        actor = current_actor()
        resolved = resolve_spec_upload(
            web.db, web.settings, spec, allow_paths=False, user_id=actor.id, is_admin=actor.is_admin
        )
    except SpecError as exc:
        raise ApiProblem(422, str(exc), _fields_of(exc.errors), exc.errors) from None
    except UploadError as exc:
        raise ApiProblem(422, str(exc), _fields_of([str(exc)]), [str(exc)]) from None
    return _json(
        {
            "spec": spec.model_dump(mode="json"),
            "estimated_bytes": estimate_recorded_bytes(resolved),
            "limit_bytes": LIMITS["max_recorded_bytes"],
            "recorded_epochs": recorded_epochs(spec.training.epochs, spec.recording.every),
        }
    )


# ---- tensors ---------------------------------------------------------------------------------


def _tensor_json(entry: records.TensorEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "dtype": entry.dtype,
        "shape": entry.shape,
        "epochs": entry.epochs,
    }


@bp.route("/runs/<id:run_id>/tensors", methods=["GET"])
@rule("member")
def list_tensors(run_id: int):
    _check_args()
    _known_id(run_id, "run", "run_id")
    db = context.current().db
    tag = etags.derived(*_run_attempt(db, run_id), "tensors")
    hit = etags.not_modified(tag)
    if hit is not None:
        return hit
    catalog = records.tensor_catalog(db, run_id)
    response = _json({"run_id": run_id, "tensors": [_tensor_json(e) for e in catalog]})
    return etags.tagged(response, tag)


def _wants_npy() -> bool:
    fmt = request.args.get("format")
    if fmt is not None:
        if fmt not in ("json", "npy"):
            raise ApiProblem(400, f"format: {fmt[:40]!r} is not json or npy", ["format"])
        return fmt == "npy"
    best = request.accept_mimetypes.best_match(("application/json", *NPY_TYPES))
    return best in NPY_TYPES


@bp.route("/runs/<id:run_id>/tensors/<path:name>", methods=["GET"])
@rule("member")
def get_tensor(run_id: int, name: str):
    _check_args("start", "stop", "format")
    start = _int_arg("start", 0, 0, MAX_EPOCH)
    stop = _int_arg("stop", MAX_EPOCH, 0, MAX_EPOCH)
    npy = _wants_npy()
    _known_id(run_id, "run", "run_id")
    db = context.current().db
    info, attempt = _run_attempt(db, run_id)
    if len(name) > 200 or "\x00" in name:  # (no NUL can reach PostgreSQL)
        raise ApiProblem(404, f"name: run {run_id} recorded no tensor of that name", ["name"])
    found = records.tensor_catalog(db, run_id, name)
    if not found:
        raise ApiProblem(
            404,
            f"name: run {run_id} recorded no tensor {name!r} (see /api/runs/{run_id}/tensors)",
            ["name"],
        )
    entry = found[0]
    epochs = [e for e in entry.epochs if start <= e <= stop]  # start > stop: none, as a slice
    values = len(epochs) * math.prod(entry.shape)
    if not npy and values > openapi.MAX_JSON_VALUES:
        raise ApiProblem(
            413,
            f"values: {values:,} is over the limit of {openapi.MAX_JSON_VALUES:,} for JSON; "
            "narrow start and stop, or ask for .npy (Accept: application/octet-stream)",
            ["start", "stop"],
        )
    # the representation depends on Accept (unless ?format= says): caches must key on it
    fmt, vary = ("npy" if npy else "json"), {"Vary": "Accept"}
    tag = etags.derived(info, attempt, "tensor", name=name, start=start, stop=stop, format=fmt)
    hit = etags.not_modified(tag, vary)
    if hit is not None:
        return hit
    if npy:
        return etags.tagged(_npy_response(db, run_id, entry, epochs), tag, vary)
    got_epochs, got = records.read_tensor(db, run_id, name, start, stop) if epochs else ([], [])
    response = _json(
        {
            "run_id": run_id,
            "name": name,
            "dtype": entry.dtype,
            "shape": entry.shape,
            "epochs": list(map(int, got_epochs)),
            "values": got.tolist() if epochs else [],
        }
    )
    return etags.tagged(response, tag, vary)


def _npy_response(db, run_id: int, entry: records.TensorEntry, epochs: list[int]):
    """A .npy of one structured array, one row per epoch: fields `epoch` (int64) and `value`
    (the tensor). Written a batch of epochs at a time, never whole in memory; never pickle."""
    value_dtype = np.dtype(entry.dtype).newbyteorder("<")
    dtype = np.dtype([("epoch", "<i8"), ("value", value_dtype, tuple(entry.shape))])
    header = io.BytesIO()
    info = np.lib.format.header_data_from_array_1_0(np.empty(0, dtype))
    info["shape"] = (len(epochs),)
    np.lib.format.write_array_header_2_0(header, info)
    per_batch = max(1, NPY_BATCH_BYTES // max(1, dtype.itemsize))

    def generate():
        yield header.getvalue()
        for i in range(0, len(epochs), per_batch):
            batch = epochs[i : i + per_batch]
            got_epochs, got = records.read_tensor(db, run_id, entry.name, batch[0], batch[-1])
            rows = np.empty(len(got_epochs), dtype)
            rows["epoch"], rows["value"] = got_epochs, got
            raw = rows.view(np.uint8)  # to the WSGI server in pieces (see api._json_text)
            for j in range(0, len(raw), PIECE_BYTES):
                yield raw[j : j + PIECE_BYTES].tobytes()

    filename = f"run{run_id}-{entry.name.replace('/', '.')}.npy"
    response = flask.Response(generate(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(len(header.getvalue()) + len(epochs) * dtype.itemsize)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-NetLens-Epochs"] = str(len(epochs))
    return response


# ---- analyses and groups ---------------------------------------------------------------------


@bp.route("/runs/<id:run_id>/analyses", methods=["GET"])
@rule("member")
def list_analyses(run_id: int):
    _check_args("kind")
    kind = request.args.get("kind")
    if kind is not None and kind not in ANALYSIS_KINDS:  # empty included
        raise ApiProblem(
            400, f"kind: {kind[:40]!r} is not one of {', '.join(ANALYSIS_KINDS)}", ["kind"]
        )
    _run(run_id)
    found = analyses.list_analyses(context.current().db, run_id, kind=kind)
    response = _json({"run_id": run_id, "analyses": [analysis_json(a) for a in found]})
    tag = etags.of_body(run_id, "analyses", response.get_data())  # a few rows, read anyway
    hit = etags.not_modified(tag)
    return hit if hit is not None else etags.tagged(response, tag)


def analysis_json(a: analyses.AnalysisInfo) -> dict[str, Any]:
    """One analysis (openapi.Analysis): its state, and its summary once done."""
    return {
        "kind": a.kind,
        "epoch": a.epoch,
        "state": a.state,
        "summary": a.summary,
        "error": a.error,
        "requested_at": _iso(a.requested_at),
        "started_at": _iso(a.started_at),
        "finished_at": _iso(a.finished_at),
        "progress": a.progress,
    }


@bp.route("/groups/<id:group_id>", methods=["GET"])
@rule("member")
def get_group_route(group_id: int):
    _check_args()
    _known_id(group_id, "group", "group_id")
    db = context.current().db
    try:
        group = get_group(db, group_id)
    except GroupNotFound as exc:
        raise ApiProblem(404, str(exc), ["group_id"]) from None
    return _json(group_json(db, group))


def group_summary_json(group: GroupInfo, owner: str | None) -> dict[str, Any]:
    """A group as GET /groups lists it (openapi.GroupSummary): no runs, their ids."""
    return {
        "id": group.id,
        "name": group.name,
        "kind": group.kind,
        "axes": group.axes,
        "base_spec": group.base_spec,
        "created_at": _iso(group.created_at),
        "size": group.size,
        "finished": group.is_finished,
        "counts": group.counts,
        "owner": owner,
        "url": f"/groups/{group.id}",
        "run_ids": group.run_ids,
    }


def group_json(db, group: GroupInfo) -> dict[str, Any]:
    """A group with its runs in grid order (openapi.Group): GET and POST /groups answer it."""
    members, _ = runs.runs_page(
        db, limit=max(1, group.size), group=group.id, sort="id", order="asc"
    )
    owner = users.get_user(db, group.owner_id) if group.owner_id is not None else None
    out = group_summary_json(group, owner.name if owner else None)
    out["runs"] = [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "owner": r.extra.get("owner"),
            "epochs_total": r.epochs_total,
            "epochs_recorded": r.epochs_recorded,
            "final_metrics": {
                k: (v if v is None or math.isfinite(v) else None)
                for k, v in r.final_metrics.items()
            },
            "url": f"/runs/{r.id}",
        }
        for r in members
    ]
    return out
