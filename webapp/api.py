"""The REST API: JSON under /api/v1 (and its alias /api, the same views and rules), for
scripts and the CLI's `--server` (docs/api.md).

Every route is behind the request guard (webapp/auth.py), which identifies the caller from
`Authorization: Bearer <token>` and answers 401 before a view runs; each view carries its
rule (webapp/authz.py). Members read every run and submit their own; cancel, retry and
delete are `@rule("owner", run="run_id")` routes: the guard checks the run's owner in the
database (webapp/ownership.py) before the view runs. Errors are JSON: {"error": "...",
"fields": [...]}, the message naming the field and the limit. Request bodies must be
application/json, at most MAX_BODY_BYTES. Ids in paths are `<id:...>` (IdConverter): 1 to
2^31-1, else no route (404). The OpenAPI description (webapp/openapi.py) is served at
/api/v1/openapi.json. No SQL here (storage/ does it) and no JAX (netlens.dispatch.submission imports none).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime
from typing import Any, NoReturn

import dash
import flask
from flask import Blueprint, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing.converters import IntegerConverter

from netlens.dispatch.submission import retry_run, submit_spec
from netlens.storage import jobs, records, run_filter, runs, users
from netlens.storage.export import EXPORT_FORMAT_VERSION
from netlens.storage.groups import GroupNotFound, get_group
from netlens.storage.limits import LimitExceeded
from netlens.storage.models import RUN_STATUSES
from netlens.storage.presets import get_preset
from netlens.storage.spec import (
    ExperimentSpec,
    SpecError,
    check_submittable,
    check_trainable,
    parse_spec,
)
from netlens.storage.uploads import UploadError, resolve_spec_upload
from netlens.webapp import context, csv_export, etags, openapi
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule
from netlens.webapp.exports import ExportFailed, export_response

log = logging.getLogger(__name__)
# Served under /api/v1 (blueprint "api") and, the same views with the same rules, under /api
# (blueprint "api_alias", the unversioned alias kept for existing clients).
bp = Blueprint("api", __name__)
BLUEPRINTS = {"api": openapi.PREFIX, "api_alias": "/api"}
MAX_INT = 2**31 - 1
JSON_TYPES = ("application/json",)
PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PIECE_BYTES = 256 * 1024  # an answer is handed to the WSGI server this much at a time


class IdConverter(IntegerConverter):
    """`<id:run_id>`: an id as stored (a 32-bit primary key), 1 to openapi.MAX_ID. Anything
    else (0, too many digits, beyond 2^31-1) matches no route: 404, and no id beyond the
    database's integers ever reaches a query."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=openapi.MAX_ID)


class ApiProblem(Exception):
    """An error answer: status, message (naming the field and the limit), fields at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: list[str] | None = None,
        errors: list[str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message = status, message
        self.fields, self.errors = fields or [], errors


def install(app: dash.Dash) -> None:
    """Register the API on the Dash app's Flask server (after webapp.auth.install), under
    /api/v1 and its alias /api."""
    app.server.url_map.converters["id"] = IdConverter
    for name, prefix in BLUEPRINTS.items():
        app.server.register_blueprint(bp, name=name, url_prefix=prefix)
    app.server.before_request(_api_routing)


# ---- errors ----------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> flask.Response:
    """A JSON response with keys in their own order (specs read as written; flask.jsonify
    would sort them), and never NaN or Infinity (invalid JSON): those become null."""
    return _json_text(_dumps(data), status)


# one encoder (json.dumps with options makes one per call: half the time of a small object)
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _dumps(data: Any) -> str:
    """Compact JSON, keys in their order, NaN and infinities as null."""
    try:
        return _ENCODE(data)
    except ValueError:
        return _ENCODE(_without_nan(data))


def _json_text(text: str, status: int = 200) -> flask.Response:
    """A response of JSON text; a large one in pieces of PIECE_BYTES (its Content-Length
    still set), which the WSGI server sends on as they come: waitress spills a response it
    holds whole over 1 MiB (its outbuf_overflow) to a temporary file first."""
    data = text.encode()
    body = (
        [data[i : i + PIECE_BYTES] for i in range(0, len(data), PIECE_BYTES)]
        if len(data) > PIECE_BYTES
        else data
    )
    return flask.current_app.response_class(body, status=status, mimetype="application/json")


def _without_nan(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def _problem(
    status: int, message: str, fields: list[str] | None = None, errors: list[str] | None = None
) -> flask.Response:
    body: dict[str, Any] = {"error": message, "fields": fields or []}
    if errors is not None:
        body["errors"] = errors
    return _json(body, status)


@bp.errorhandler(ApiProblem)
def _api_problem(exc: ApiProblem):
    return _problem(exc.status, exc.message, exc.fields, exc.errors)


@bp.errorhandler(LimitExceeded)
def _over_limit(exc: LimitExceeded):
    """A per-user limit (storage/limits.py): 429 a full quota, 400 a request too large."""
    return _problem(exc.status, exc.message, [exc.limit])


@bp.errorhandler(etags.HeaderTooLong)
def _header_too_long(exc: etags.HeaderTooLong):
    return _problem(400, str(exc), ["If-None-Match"])


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    return _problem(
        413, f"body: over the limit of {openapi.MAX_BODY_BYTES:,} bytes (1 MiB)", ["body"]
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _problem(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(Exception)
def _internal_error(exc: Exception):
    log.exception("API request %s %s failed", request.method, request.path)
    return _problem(500, f"internal error ({exc.__class__.__name__}); the server logged it")


def _api_methods(path: str) -> set[str]:
    """The methods that API routes serve at `path` (the web app's catch-all page route, which
    takes GET on any path, does not count)."""
    adapter = flask.current_app.url_map.bind_to_environ(request.environ)
    out = set()
    for method in PROBED_METHODS:
        try:
            endpoint, _args = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint.split(".", 1)[0] in BLUEPRINTS:
            out.add(method)
    return out


def _api_routing():
    """After the guard (its 401 comes first, with no hint): paths under /api/ that no API
    route serves answer 404 JSON, not the web app's pages; a method an API path does not take
    answers 405 with `Allow`; OPTIONS lists exactly the API path's methods."""
    if not request.path.startswith("/api/"):
        return None
    if request.blueprint in BLUEPRINTS and request.method != "OPTIONS":
        return None
    allowed = _api_methods(request.path)
    if not allowed:
        return _problem(
            404, f"path: no API route {request.path} (see {openapi.PREFIX}/openapi.json)", ["path"]
        )
    allow = ", ".join(sorted(allowed | {"OPTIONS"} | ({"HEAD"} if "GET" in allowed else set())))
    if request.method == "OPTIONS":
        response = flask.Response(status=204)
    else:
        response = _problem(
            405,
            f"method: {request.method} is not allowed on {request.path}; allowed: {allow}",
            ["method"],
        )
    response.headers["Allow"] = allow
    return response


def _fields_of(messages: list[str]) -> list[str]:
    """'training.epochs: 0 is out of range: ...' -> 'training.epochs'."""
    out = []
    for message in messages:
        head = message.split(":", 1)[0].strip()
        if head and " " not in head and head not in out:
            out.append(head)
    return out


def _validation_messages(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"]) if err["loc"] else prefix.rstrip(".")
        loc = loc or "body"
        if err["type"] == "extra_forbidden":
            out.append(f"{loc}: unknown field")
        else:
            out.append(f"{loc}: {err['msg']}")
    return out


# ---- request helpers -------------------------------------------------------------------------


def _body(model: type[BaseModel], *, required: bool) -> BaseModel:
    """The JSON body validated by `model` (no body at all is `model()` when not required; a
    body of only whitespace is not JSON: 400).
    Non-JSON content types are 415, bodies over MAX_BODY_BYTES 413."""
    request.max_content_length = openapi.MAX_BODY_BYTES
    has_body = (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )
    if request.mimetype and request.mimetype not in JSON_TYPES:
        raise ApiProblem(
            415,
            f"Content-Type: {request.mimetype!r} is not accepted; send application/json",
            ["Content-Type"],
        )
    if has_body and not request.mimetype:
        raise ApiProblem(
            415, "Content-Type: missing; send the body as application/json", ["Content-Type"]
        )
    raw = request.get_data(cache=False) if has_body else b""
    if not raw:
        if required:
            raise ApiProblem(400, "body: a JSON object is required", ["body"])
        return model()
    if not raw.strip():  # sent, but not JSON: an optional body is absent or an object
        raise ApiProblem(400, "body: not JSON (send a JSON object, or no body)", ["body"])
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, f"body: not valid JSON ({exc})", ["body"]) from None
    if not isinstance(data, dict):
        raise ApiProblem(400, f"body: must be a JSON object, not {type(data).__name__}", ["body"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        messages = _validation_messages(exc)
        raise ApiProblem(422, "; ".join(messages), _fields_of(messages), messages) from None


def _check_args(*known: str) -> None:
    unknown = sorted(set(request.args) - set(known))
    if unknown:
        raise ApiProblem(
            400,
            f"{unknown[0]}: unknown query parameter; known: {', '.join(known) or 'none'}",
            unknown,
        )


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.args.get(name)
    if text is None:  # (an empty value is no integer: 400)
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiProblem(400, f"{name}: {text[:40]!r} is not an integer", [name]) from None
    if not low <= value <= high:
        raise ApiProblem(400, f"{name}: {value} is out of range: must be {low} to {high}", [name])
    return value


def _bool_arg(name: str) -> bool:
    """A boolean query parameter, as the document says: `true` or `false` (absent: false)."""
    text = request.args.get(name)
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise ApiProblem(400, f"{name}: {text[:40]!r} is not a boolean (true or false)", [name])


def _text_arg(name: str, max_length: int) -> str | None:
    text = request.args.get(name)
    if text is not None and len(text) > max_length:
        raise ApiProblem(
            400, f"{name}: {len(text)} characters is over the limit of {max_length}", [name]
        )
    if text is not None and "\x00" in text:  # PostgreSQL cannot compare a NUL: refuse it here
        raise ApiProblem(400, f"{name}: must not contain a NUL character", [name])
    return text or None


# ---- JSON shapes -----------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _run_json(info: runs.RunInfo, owner: str | None) -> dict[str, Any]:
    out = info.to_dict()
    out["final_metrics"] = {k: _finite(v) for k, v in info.final_metrics.items()}
    out["owner"], out["url"] = owner, f"/runs/{info.id}"
    return out


# runs.JSON_COLUMNS as RunInfo has them when stored as SQL NULL or JSON null
_STORED_DEFAULTS = {"spec": "null", "layers": "[]", "tags": "[]", "data_info": "{}"}


def _stored_json(text: str | None, default: str) -> str:
    """A JSON column's stored text, to splice into an answer as it is. It was written by
    json.dumps, so it is JSON, except that json.dumps writes NaN and Infinity: a text
    holding those words is decoded and written again (null for them); NULL and null give
    RunInfo's default."""
    if text is None:
        return default
    if "NaN" in text or "Infinity" in text:
        value = json.loads(text)
        return default if value is None else _dumps(value)
    return default if text.strip() == "null" else text


def _run_text(info: runs.RunInfo) -> str:
    """The JSON text of _run_json(info) for a run read with runs_page(json_text=True): its
    JSON columns' stored text (extra["json"]) spliced in where decoding and encoding them
    again would put them (the same answer, parsed; a few times faster than doing it)."""
    stored = info.extra["json"]
    pieces: list[str] = []
    group: dict[str, Any] = {}  # consecutive other fields, encoded together
    for key, value in _run_json(info, info.extra.get("owner")).items():
        if key not in stored:
            group[key] = value
            continue
        if group:
            pieces.append(_dumps(group)[1:-1])
            group = {}
        pieces.append(f'"{key}":{_stored_json(stored[key], _STORED_DEFAULTS[key])}')
    if group:
        pieces.append(_dumps(group)[1:-1])
    return "{" + ",".join(pieces) + "}"


def _job_json(job: jobs.JobInfo) -> dict[str, Any]:
    return {
        "state": job.state,
        "queue": job.queue,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "progress_epoch": job.progress_epoch,
        "progress_total": job.progress_total,
        "worker_id": job.worker_id,
        "error": job.error,
        "enqueued_at": _iso(job.enqueued_at),
        "claimed_at": _iso(job.claimed_at),
        "heartbeat_at": _iso(job.heartbeat_at),
        "finished_at": _iso(job.finished_at),
    }


def _token_json(token: users.TokenInfo, user: str) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "user": user,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
        "scope": token.scope,
        "expires_at": _iso(token.expires_at),
    }


def _get_run(db, run_id: int) -> runs.RunInfo:
    try:
        return runs.get_run(db, run_id)
    except runs.RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None


def _run_attempt(db, run_id: int) -> tuple[runs.RunInfo, int | None]:
    """The run and its job's attempt (None: no job), what derived ETags come from; 404."""
    try:
        return runs.get_run_attempt(db, run_id)
    except runs.RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None


def _owner_name(db, owner_id: int | None) -> str | None:
    if owner_id is None:
        return None
    user = users.get_user(db, owner_id)
    return user.name if user else None


def _no_job(run_id: int) -> NoReturn:
    raise ApiProblem(
        409,
        f"run {run_id} has no job: it was trained by `netlens train` in a "
        "process of its own, not through the queue",
        ["run_id"],
    )


# ---- runs ------------------------------------------------------------------------------------


RUN_FILTER_ARGS = ("status", "group", "owner", "where")  # and api_more.RUN_LIST_ARGS


def _run_filters() -> dict[str, Any]:
    """The run list's filters and order from the query (runs_page's arguments): 400 naming
    the parameter, 404 for a group that does not exist."""
    status = request.args.get("status")
    if status is not None and status not in RUN_STATUSES:
        raise ApiProblem(
            400, f"status: {status[:40]!r} is not one of {', '.join(RUN_STATUSES)}", ["status"]
        )
    group = _int_arg("group", None, 1, MAX_INT)
    where = _text_arg("where", run_filter.MAX_LENGTH)
    if where is not None:
        try:
            run_filter.parse(where)
        except run_filter.FilterError as exc:
            raise ApiProblem(400, f"where: {exc.message}", ["where"]) from None
    if group is not None:
        try:
            get_group(context.current().db, group)
        except GroupNotFound as exc:
            raise ApiProblem(404, f"group: {exc}", ["group"]) from None
    return {
        "status": status,
        "group": group,
        "owner": _text_arg("owner", 40),
        "where": where,
        **api_more.run_list_options(),
    }


@bp.route("/runs", methods=["GET"])
@rule("member")
def list_runs():
    _check_args("limit", "offset", *RUN_FILTER_ARGS, *api_more.RUN_LIST_ARGS)
    limit = _int_arg("limit", openapi.DEFAULT_LIMIT, 1, openapi.MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, MAX_INT)
    filters = _run_filters()
    items, total = runs.runs_page(
        context.current().db,
        limit=limit,
        offset=offset,
        json_text=True,  # specs and the like passed on as stored, not decoded and encoded
        **filters,
    )
    return api_more.paged(
        {"total": total, "limit": limit, "offset": offset},
        total,
        ("runs", "[" + ",".join(_run_text(r) for r in items) + "]"),
    )


@bp.route("/runs.csv", methods=["GET"])
@rule("member")
def runs_csv():
    """The runs the filters match (as GET /runs, without paging), at most MAX_CSV_ROWS."""
    _check_args(*RUN_FILTER_ARGS, *api_more.RUN_LIST_ARGS)
    text, total = csv_export.runs_csv(context.current().db, **_run_filters())
    response = csv_export.csv_response(text, csv_export.runs_filename(total))
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.route("/runs/<id:run_id>", methods=["GET"])
@rule("member")
def get_run(run_id: int):
    _check_args()
    db = context.current().db
    info = _get_run(db, run_id)
    out = _run_json(info, _owner_name(db, info.owner_id))
    try:
        out["job"] = _job_json(jobs.get_job(db, run_id))
    except runs.RunNotFound:
        out["job"] = None
    response = _json(out)
    tag = etags.of_body(run_id, "run", response.get_data())  # a few rows, read anyway
    hit = etags.not_modified(tag)
    return hit if hit is not None else etags.tagged(response, tag)


@bp.route("/runs/<id:run_id>/metrics", methods=["GET"])
@rule("member")
def run_metrics(run_id: int):
    _check_args()
    db = context.current().db
    tag = etags.derived(*_run_attempt(db, run_id), "metrics")
    hit = etags.not_modified(tag)
    if hit is not None:
        return hit
    epochs, metrics = records.read_metrics(db, run_id)
    response = _json(
        {
            "run_id": run_id,
            "epochs": epochs.tolist(),
            "metrics": {
                name: [v if math.isfinite(v) else None for v in values.tolist()]
                for name, values in metrics.items()
            },
        }
    )
    return etags.tagged(response, tag)


@bp.route("/runs/<id:run_id>/metrics.csv", methods=["GET"])
@rule("member")
def run_metrics_csv(run_id: int):
    """Every recorded epoch's metrics as CSV: epoch, then one column per metric."""
    _check_args()
    db = context.current().db
    _get_run(db, run_id)
    return csv_export.csv_response(csv_export.metrics_csv(db, run_id), f"run{run_id}-metrics.csv")


@bp.route("/runs/<id:run_id>/export", methods=["GET"])
@rule("member")
def export(run_id: int):
    """The .npz, streamed by webapp.exports from a temporary file with no name on disk."""
    _check_args("compress")
    compress = _bool_arg("compress")
    db = context.current().db
    info, attempt = _run_attempt(db, run_id)
    # the run's fixed arrays are written just after it starts, before any epoch: named too
    tag = etags.derived(
        info,
        attempt,
        "export",
        compress=compress,
        format=EXPORT_FORMAT_VERSION,
        arrays=records.array_catalog(db, run_id),
    )
    hit = etags.not_modified(tag, {"Cache-Control": "no-store"})
    if hit is not None:
        return hit
    try:
        return etags.tagged(export_response(run_id, compress=compress), tag)
    except ExportFailed as exc:
        raise ApiProblem(exc.status, str(exc), ["run_id"]) from None


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Merge `overrides` into a spec's dict: nested objects merge, dotted keys are paths."""
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        target = data
        for depth, part in enumerate(parents):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                path = ".".join(parents[: depth + 1])
                raise ApiProblem(
                    422, f"overrides.{key}: {path} is not an object of fields", [f"overrides.{key}"]
                )
        if isinstance(value, dict) and isinstance(target.get(leaf), dict):
            _apply_overrides(target[leaf], value)
        else:
            target[leaf] = value


def _spec_of(body: openapi.SubmitRequest) -> ExperimentSpec:
    if (body.spec is None) == (body.preset is None):
        raise ApiProblem(
            422,
            "spec, preset: give either a spec object or a preset name (with optional overrides)",
            ["spec", "preset"],
        )
    try:
        data = (
            dict(body.spec)
            if body.spec is not None
            else get_preset(body.preset).model_dump(mode="json")
        )
        if body.overrides:
            _apply_overrides(data, json.loads(json.dumps(body.overrides)))
        return check_trainable(check_submittable(parse_spec(data)))  # arrays; kind flax
    except SpecError as exc:
        raise ApiProblem(422, str(exc), _fields_of(exc.errors), exc.errors) from None


@bp.route("/runs", methods=["POST"])
@rule("member")
def submit():
    _check_args()
    body = _body(openapi.SubmitRequest, required=True)
    spec = _spec_of(body)
    web = context.current()
    try:
        actor = current_actor()
        spec = resolve_spec_upload(
            web.db, web.settings, spec, allow_paths=False, user_id=actor.id, is_admin=actor.is_admin
        )
    except UploadError as exc:
        raise ApiProblem(422, str(exc), _fields_of([str(exc)]), [str(exc)]) from None
    run_id = submit_spec(web.db, web.settings, spec, owner_id=current_actor().id)
    response = _json({"id": run_id, "url": f"/runs/{run_id}"}, 201)
    response.headers["Location"] = flask.url_for(f"{request.blueprint}.get_run", run_id=run_id)
    return response


@bp.route("/runs/<id:run_id>/cancel", methods=["POST"])
@rule("owner", run="run_id")
def cancel(run_id: int):
    _check_args()
    _body(openapi.EmptyRequest, required=False)
    db = context.current().db  # the guard checked the run's owner (rule "owner")
    try:
        state = jobs.request_cancel(db, run_id)
    except jobs.JobStateError as exc:
        raise ApiProblem(409, str(exc), ["run_id"]) from None
    except runs.RunNotFound:
        _no_job(run_id)
    return _json({"id": run_id, "state": state})


@bp.route("/runs/<id:run_id>/retry", methods=["POST"])
@rule("owner", run="run_id")
def retry(run_id: int):
    _check_args()
    body = _body(openapi.RetryRequest, required=False)
    web = context.current()
    try:
        attempt = retry_run(web.db, web.settings, run_id, body.from_scratch)
    except jobs.JobStateError as exc:
        raise ApiProblem(409, str(exc), ["run_id"]) from None
    except runs.RunNotFound:
        _no_job(run_id)
    return _json({"id": run_id, "attempt": attempt, "state": "queued"})


@bp.route("/runs/<id:run_id>", methods=["DELETE"])
@rule("owner", run="run_id")
def delete_run(run_id: int):
    _check_args()
    _body(openapi.EmptyRequest, required=False)
    db = context.current().db  # the guard checked the run's owner (rule "owner")
    info = _get_run(db, run_id)
    if not info.is_finished:
        raise ApiProblem(
            409,
            f"run {run_id} is {info.status}: only finished runs can be deleted; cancel it first",
            ["run_id"],
        )
    try:
        runs.delete_run(db, run_id)
    except runs.RunNotFound as exc:
        raise ApiProblem(404, str(exc), ["run_id"]) from None
    return flask.Response(status=204)


# ---- tokens ----------------------------------------------------------------------------------


@bp.route("/tokens", methods=["GET"])
@rule("member")
def list_tokens():
    _check_args("user")
    actor, db = current_actor(), context.current().db
    wanted = _text_arg("user", 40)
    user_id = actor.id
    if wanted is not None and wanted != actor.name:
        if not actor.is_admin:
            raise ApiProblem(403, "user: only admins may list another user's tokens", ["user"])
        info = users.get_user_by_name(db, wanted)
        if info is None:
            raise ApiProblem(404, f"user: no user named {wanted!r}", ["user"])
        user_id = info.id
    names = users.user_names(db)
    # The single-user mode's local operator (no account) sees every token.
    return _json(
        {
            "tokens": [
                _token_json(t, names.get(t.user_id, "?")) for t in users.list_tokens(db, user_id)
            ]
        }
    )


@bp.route("/tokens", methods=["POST"])
@rule("member")
def create_token():
    """Refused: the API acts on a token, and a token that could mint tokens would outlive
    its own revocation in them."""
    _check_args()
    _body(openapi.TokenRequest, required=True)
    if current_actor().id is None:
        raise ApiProblem(
            409,
            "user: tokens belong to user accounts, and single-user mode has "
            "none (it needs no token); see `netlens users add`",
            ["user"],
        )
    raise ApiProblem(
        403,
        "token: a token cannot create tokens; create one on the account page "
        "(logged in) or with `netlens tokens create` on the server",
        ["Authorization"],
    )


@bp.route("/tokens/<id:token_id>", methods=["DELETE"])
@rule("member")
def revoke_token(token_id: int):
    _check_args()
    _body(openapi.EmptyRequest, required=False)
    try:
        users.revoke_token(context.current().db, token_id, current_actor())
    except users.UserError as exc:
        raise ApiProblem(404, str(exc), ["token_id"]) from None
    except users.Forbidden as exc:
        raise ApiProblem(403, str(exc), ["token_id"]) from None
    return flask.Response(status=204)


# ---- the description -------------------------------------------------------------------------


@bp.route("/openapi.json", methods=["GET"])
@rule("member")
def openapi_document():
    return _json(openapi.document(request.host_url.rstrip("/")))


# More routes on this blueprint: reads (presets, spec validation, tensors, analyses, groups),
# then sweeps, analysis requests and uploads; comparing runs; the admin page's data and actions.
from netlens.webapp import api_more, api_write  # noqa: E402, F401, I001
from netlens.webapp import api_admin, api_compare, api_ingest  # noqa: E402, F401, I001
