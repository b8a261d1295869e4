"""The REST API's routes for runs trained in a client's process (the Python API's REST sink,
netlens/sdk/sink.py): create one, stream its epochs, reopen, extend, finish, and read what a
resume needs (docs/api.md, "Streaming runs from the Python API").

Training happens on the client; the server stores what it is sent, after checking it as it
checks a submitted run: the spec (only the kinds the Python API makes: storage/client_runs.py),
the .npz bodies entry by entry (storage/wire.py: types, shapes, sizes, no pickle), the body
limits (webapp/upload_route.py: NETLENS_MAX_CHUNK_MB) and the owner's `active_jobs` limit.
The run is the token's user's; every later write is `@rule("owner", run="run_id")`. Chunks
are idempotent by epoch: a chunk sent again after a lost answer writes nothing twice and
answers 200. No SQL here (storage/ does it) and no JAX.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask import request
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from netlens.storage import client_runs, jobs, records, runs
from netlens.storage.runs import RunNotFound
from netlens.storage.spec import SpecError, parse_spec
from netlens.storage.wire import WireError, pack_arrays, unpack_arrays, unpack_chunk
from netlens.webapp import context, run_meta
from netlens.webapp.api import (
    ApiProblem,
    _body,
    _check_args,
    _fields_of,
    _json,
    _validation_messages,
    bp,
)
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule
from netlens.webapp.openapi_ingest import ClientRunMeta, ExtendRequest, FinishRequest, ReopenRequest
from netlens.webapp.upload_route import ingest_limit

MULTIPART = "multipart/form-data"
NPZ_TYPES = ("application/octet-stream", "application/x-npz")
MAX_JSON_BYTES = 256 * 1024  # layers and data_info of a run


def _limit() -> tuple[int, str]:
    found = ingest_limit(request.endpoint, context.current().settings)
    assert found is not None, request.endpoint
    return found


def _too_large() -> ApiProblem:
    return ApiProblem(413, _limit()[1], ["body"])


def _raw_npz() -> bytes:
    if request.mimetype not in NPZ_TYPES:
        shown = repr(request.mimetype) if request.mimetype else "missing"
        raise ApiProblem(
            415,
            f"Content-Type: {shown} is not accepted; send the .npz as application/octet-stream",
            ["Content-Type"],
        )
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large() from None
    if not data:  # 422 as any other body that is not an .npz: the schema cannot say "not empty"
        raise ApiProblem(422, "body: an .npz file is required (the body is empty)", ["body"])
    return data


def _wire(exc: WireError) -> ApiProblem:
    field = str(exc).split(":", 1)[0]
    status = 413 if "uncompressed is over the limit" in str(exc) else 422
    return ApiProblem(status, str(exc), [field])


def _refused(exc: client_runs.ClientRunError) -> ApiProblem:
    return ApiProblem(exc.status, str(exc), [exc.field])


def _bounded(value: Any, field: str) -> Any:
    """layers and data_info are typed (webapp/run_meta.py); all of either is bounded too."""
    text = json.dumps(value)
    if len(text) > MAX_JSON_BYTES:
        raise ApiProblem(
            422, f"{field}: {len(text):,} bytes of JSON is over {MAX_JSON_BYTES:,}", [field]
        )
    return value


def _refuse_problems(problems: list[str]) -> None:
    """422 naming each field at fault, when the checks across fields found any."""
    if problems:
        raise ApiProblem(422, "; ".join(problems), _fields_of(problems), problems)


def _create_parts() -> tuple[ClientRunMeta, bytes]:
    if request.mimetype != MULTIPART:
        shown = repr(request.mimetype) if request.mimetype else "missing"
        raise ApiProblem(
            415,
            f"Content-Type: {shown} is not accepted; send {MULTIPART} with parts meta (JSON) "
            "and arrays (.npz)",
            ["Content-Type"],
        )
    try:
        files, form = request.files, request.form
    except RequestEntityTooLarge:
        raise _too_large() from None
    extra = sorted((set(files) | set(form)) - {"meta", "arrays"})
    if extra:
        raise ApiProblem(400, f"{extra[0]}: unknown part; send meta and arrays", extra)
    texts = form.getlist("meta") + [f.read(MAX_JSON_BYTES * 4 + 1) for f in files.getlist("meta")]
    blobs = [f.read() for f in files.getlist("arrays")]
    if len(texts) != 1 or len(blobs) != 1:
        raise ApiProblem(
            400,
            "meta, arrays: send one part of each (curl -F meta=@run.json -F arrays=@a.npz)",
            ["meta", "arrays"],
        )
    try:
        meta = ClientRunMeta.model_validate_json(texts[0])
    except ValidationError as exc:
        messages = _validation_messages(exc, "meta.")
        raise ApiProblem(422, "; ".join(messages), _fields_of(messages), messages) from None
    return meta, blobs[0]


@bp.route("/client-runs", methods=["POST"])
@rule("member")
def create_client_run():
    """A running run owned by the caller, with its fixed arrays, streamed from the Python API."""
    _check_args()
    meta, blob = _create_parts()
    try:
        spec = client_runs.check_client_spec(parse_spec(meta.spec))
    except SpecError as exc:
        errors = [f"spec.{e}" for e in exc.errors]
        raise ApiProblem(422, "; ".join(errors), _fields_of(errors), errors) from None
    limit = _limit()[0]
    try:
        arrays = unpack_arrays(blob, limit)
    except WireError as exc:
        raise _wire(exc) from None
    expected = None
    if spec.model.kind == "sequential":  # the data a worker would retrain it from
        from netlens.worker.datasets import DatasetError
        from netlens.worker.datasets.arrays import dataset_from_arrays
        from netlens.worker.datasets.base import data_info

        try:
            expected = data_info(dataset_from_arrays(spec, arrays))
        except (DatasetError, ValueError, TypeError, IndexError) as exc:
            raise ApiProblem(422, f"arrays: {exc}", ["arrays"]) from None
    shapes = {name: array.shape for name, array in arrays.items()}
    _refuse_problems(
        run_meta.check_meta(
            spec, meta.layers, meta.data_info, shapes, expected_data_info=expected, prefix="meta."
        )
    )
    web = context.current()
    try:
        run_id = client_runs.create(
            web.db,
            web.settings,
            spec,
            arrays=arrays,
            layers=_bounded(run_meta.dump_layers(meta.layers), "meta.layers"),
            device=meta.device,
            data_info=_bounded(run_meta.dump_data_info(meta.data_info), "meta.data_info"),
            architecture=meta.architecture,
            owner_id=current_actor().id,
        )
    except SpecError as exc:
        raise ApiProblem(422, str(exc), _fields_of(exc.errors), exc.errors) from None
    response = _json({"id": run_id, "url": f"/runs/{run_id}"}, 201)
    response.headers["Location"] = flask.url_for(f"{request.blueprint}.get_run", run_id=run_id)
    return response


@bp.route("/runs/<id:run_id>/epochs", methods=["POST"])
@rule("owner", run="run_id")
def append_epochs(run_id: int):
    """A chunk of epochs (.npz, storage/wire.py); epochs the run holds already are skipped."""
    _check_args()
    data = _raw_npz()
    try:
        chunk, checkpoint = unpack_chunk(data, _limit()[0])
    except WireError as exc:
        raise _wire(exc) from None
    db = context.current().db
    try:
        written = client_runs.append(db, run_id, chunk, checkpoint)
    except client_runs.ClientRunError as exc:
        raise _refused(exc) from None
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return _json(
        {
            "run_id": run_id,
            "epochs": len(chunk.epochs),
            "written": written,
            "last_epoch": chunk.epochs[-1],
        }
    )


@bp.route("/runs/<id:run_id>/finish", methods=["POST"])
@rule("owner", run="run_id")
def finish_client_run(run_id: int):
    _check_args()
    _require_client_run(run_id)
    body = _body(FinishRequest, required=True)
    try:
        changed = client_runs.finish(
            context.current().db, run_id, body.status, body.error, body.epochs_total
        )
    except client_runs.ClientRunError as exc:
        raise _refused(exc) from None
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return _json({"id": run_id, "status": body.status, "changed": changed})


@bp.route("/runs/<id:run_id>/reopen", methods=["POST"])
@rule("owner", run="run_id")
def reopen_client_run(run_id: int):
    _check_args()
    _require_client_run(run_id)
    body = _body(ReopenRequest, required=True)
    layers = None if body.layers is None else run_meta.dump_layers(body.layers)
    data_info = None if body.data_info is None else run_meta.dump_data_info(body.data_info)
    if body.layers is not None or body.data_info is not None:
        _check_reopen(run_id, body)
    try:
        client_runs.reopen(
            context.current().db,
            run_id,
            device=body.device,
            layers=None if layers is None else _bounded(layers, "layers"),
            data_info=None if data_info is None else _bounded(data_info, "data_info"),
            architecture=body.architecture,
        )
    except client_runs.ClientRunError as exc:
        raise _refused(exc) from None
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return _json({"id": run_id, "status": "running", "changed": True})


@bp.route("/runs/<id:run_id>/extend", methods=["POST"])
@rule("owner", run="run_id")
def extend_client_run(run_id: int):
    _check_args()
    _require_client_run(run_id)
    body = _body(ExtendRequest, required=True)
    try:
        spec = parse_spec(body.spec)
    except SpecError as exc:
        errors = [f"spec.{e}" for e in exc.errors]
        raise ApiProblem(422, "; ".join(errors), _fields_of(errors), errors) from None
    try:
        client_runs.extend(context.current().db, run_id, spec)
    except client_runs.ClientRunError as exc:
        raise _refused(exc) from None
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return _json({"id": run_id, "status": "running", "changed": True})


def _check_reopen(run_id: int, body: ReopenRequest) -> None:
    """New layers or data_info against the run's spec, fixed arrays and what it keeps: a
    continued fit trains on the same data, so its data_info is the stored one."""
    db = context.current().db
    try:
        info = runs.get_run(db, run_id)
        shapes = {
            name: tuple(json.loads(shape)) for name, _, shape in records.array_catalog(db, run_id)
        }
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    spec = parse_spec(info.spec)
    try:
        layers = body.layers
        if layers is None:
            layers = [run_meta.LayerEntry.model_validate(x) for x in info.layers]
        data = body.data_info or run_meta.DataInfo.model_validate(info.data_info)
    except ValidationError:  # a run stored before these checks: both must be sent
        missing = "layers" if body.layers is None else "data_info"
        raise ApiProblem(
            422, f"{missing}: required with the other (the stored one is not checkable)", [missing]
        ) from None
    expected = info.data_info if spec.model.kind == "sequential" and body.data_info else None
    _refuse_problems(run_meta.check_meta(spec, layers, data, shapes, expected_data_info=expected))


def _require_client_run(run_id: int) -> None:
    """409 (or 404) before the body is read: a run the workers train takes none of these."""
    try:
        client_runs.require(context.current().db, run_id)
    except client_runs.ClientRunError as exc:
        raise _refused(exc) from None
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None


def _npz_response(data: bytes, filename: str, headers: dict[str, str] | None = None):
    response = flask.Response(data, mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    response.headers.update(headers or {})
    return response


@bp.route("/runs/<id:run_id>/arrays", methods=["GET"])
@rule("member")
def run_arrays(run_id: int):
    """The run's fixed arrays (probe, grid; not the training data) as one .npz."""
    _check_args()
    db = context.current().db
    try:
        arrays = records.read_arrays(db, run_id)
        if not arrays:
            from netlens.storage.runs import get_run

            get_run(db, run_id)  # 404 for a run that does not exist
    except RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return _npz_response(pack_arrays(arrays), f"run{run_id}-arrays.npz")


@bp.route("/runs/<id:run_id>/checkpoint", methods=["GET"])
@rule("owner", run="run_id")
def run_checkpoint(run_id: int):
    """The newest checkpoint an nl.Recorder run saved (its epoch in NetLens-Checkpoint-Epoch);
    404 when it saved none."""
    _check_args()
    found = jobs.load_checkpoint(context.current().db, run_id)
    if found is None:
        raise ApiProblem(404, f"checkpoint: run {run_id} saved none", ["checkpoint"])
    epoch, data = found
    return _npz_response(
        data, f"run{run_id}-checkpoint.npz", {"NetLens-Checkpoint-Epoch": str(epoch)}
    )
