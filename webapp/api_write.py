"""The REST API's routes for what the web pages and the CLI do beyond single runs
(docs/api.md), on webapp/api.py's blueprint: sweeps (POST and GET /groups), signature
analysis requests (POST /runs/{run_id}/analyses) and data uploads (/uploads).

Each has the web app's rule for the same action. A sweep is the new-experiment page's
sweep and `netlens sweep`: the same grid checks (storage/sweep.py) and per-user limits
(storage/limits.py), through netlens.dispatch.submission.submit_sweep; the group and its runs
are the caller's. Any member may request analyses, as on the signatures page (they are
derived views of a run every member reads). Uploads go through storage.uploads.save_upload
as the page's POST /uploads does (streamed, size-checked while read, checked for their
kind, counted against the owner's limits) and are their owner's: another member's upload
answers 404, as a missing one (storage.uploads.usable_upload). No SQL here (storage/ does
it) and no JAX.
"""

from __future__ import annotations

import io
from typing import Any

import flask
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from netlens.dispatch.analysis_requests import AnalysisError, recorded_epochs, wanted_analyses
from netlens.dispatch.submission import submit_analyses, submit_projection, submit_sweep
from netlens.storage import analyses, uploads, users
from netlens.storage.groups import count_groups, get_group, list_groups
from netlens.storage.spec import SpecError
from netlens.storage.uploads import UploadError, UploadInUse, resolve_spec_upload
from netlens.webapp import context, openapi
from netlens.webapp.api import (
    MAX_INT,
    ApiProblem,
    _body,
    _check_args,
    _fields_of,
    _int_arg,
    _iso,
    _json,
    _spec_of,
    _text_arg,
    bp,
)
from netlens.webapp.api_more import _run, analysis_json, group_json, group_summary_json, paged
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule

# Fields a sweep cannot vary from the API, as on the web page: the data file is resolved and
# checked once, for the base spec (and a client never names a path on the server).
NOT_SWEPT_HERE = ("dataset.upload", "dataset.path")
RAW_UPLOAD_TYPES = ("application/octet-stream", "text/csv")
MULTIPART = "multipart/form-data"


# ---- sweeps ----------------------------------------------------------------------------------


@bp.route("/groups", methods=["GET"])
@rule("member")
def list_groups_route():
    _check_args("limit", "offset", "owner")
    limit = _int_arg("limit", openapi.DEFAULT_LIMIT, 1, openapi.MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, MAX_INT)
    owner = _text_arg("owner", 40)
    db = context.current().db
    owner_id = None
    if owner is not None:
        info = users.get_user_by_name(db, owner)
        if info is None:  # as GET /runs?owner=: an empty page, not an error
            return paged({"groups": [], "total": 0, "limit": limit, "offset": offset}, 0)
        owner_id = info.id
    total = count_groups(db, owner_id)
    found = list_groups(db, limit=limit, offset=offset, owner_id=owner_id) if total else []
    names = users.user_names(db) if found else {}
    return paged(
        {
            "groups": [group_summary_json(g, names.get(g.owner_id)) for g in found],
            "total": total,
            "limit": limit,
            "offset": offset,
        },
        total,
    )


def _sweep_problem(lines: list[str]) -> ApiProblem:
    """422 naming each field at fault; the sweep's own "grid: ..." lines are about `axes`."""
    lines = ["axes:" + line[len("grid:") :] if line.startswith("grid:") else line for line in lines]
    return ApiProblem(422, "invalid sweep: " + "; ".join(lines), _fields_of(lines), lines)


@bp.route("/groups", methods=["POST"])
@rule("member")
def create_group():
    """A sweep, as the new-experiment page's Submit with sweep rows and `netlens sweep`."""
    _check_args()
    body = _body(openapi.SweepRequest, required=True)
    base = _spec_of(body)  # 422: neither or both of spec and preset, an invalid spec
    unsweepable = [
        f"axes.{i}.field: {axis.field} cannot be swept here; the data file is checked once, "
        "for the base spec"
        for i, axis in enumerate(body.axes)
        if axis.field in NOT_SWEPT_HERE
    ]
    if unsweepable:
        raise ApiProblem(422, "; ".join(unsweepable), _fields_of(unsweepable), unsweepable)
    web, actor = context.current(), current_actor()
    try:
        base = resolve_spec_upload(
            web.db, web.settings, base, allow_paths=False, user_id=actor.id, is_admin=actor.is_admin
        )
    except UploadError as exc:
        raise ApiProblem(422, str(exc), _fields_of([str(exc)]), [str(exc)]) from None
    axes = [(axis.field, list(axis.values)) for axis in body.axes]
    try:  # the grid checked all or nothing; LimitExceeded (400, 429): api._over_limit
        group_id, _run_ids = submit_sweep(
            web.db, web.settings, base, axes, name=body.name, owner_id=actor.id
        )
    except SpecError as exc:  # SweepError included: one line per field, value and limit
        raise _sweep_problem(exc.errors) from None
    response = _json(group_json(web.db, get_group(web.db, group_id)), 201)
    response.headers["Location"] = flask.url_for(
        f"{request.blueprint}.get_group_route", group_id=group_id
    )
    return response


# ---- signature analyses ----------------------------------------------------------------------


@bp.route("/runs/<id:run_id>/analyses", methods=["POST"])
@rule("member")
def request_analyses(run_id: int):
    """The signatures page's Analyze: any member may ask (derived views of a run)."""
    _check_args()
    body = _body(openapi.AnalysisRequest, required=False)
    info = _run(run_id)
    web = context.current()
    epochs = recorded_epochs(web.db, info)
    if not len(epochs):
        raise ApiProblem(
            409,
            f"run_id: run {run_id} has recorded no signatures (yet): nothing to analyse "
            f"(it is {info.status}; signatures are recorded with each recorded epoch)",
            ["run_id"],
        )
    try:
        wanted = wanted_analyses(web.db, info, body.epoch)
        queued = submit_analyses(web.db, web.settings, run_id, body.epoch)
        for method in dict.fromkeys(body.methods):  # t-SNE / UMAP: only when asked for
            wanted.append((method, wanted[0][1]))
            queued += submit_projection(web.db, web.settings, run_id, method, wanted[0][1])
    except AnalysisError as exc:  # the epoch was not recorded: the message gives the range
        raise ApiProblem(422, str(exc), ["epoch"]) from None
    found = [a for kind, at in wanted if (a := analyses.get(web.db, run_id, kind, at))]
    done = len(found) == len(wanted) and all(a.state == "done" for a in found)
    return _json(
        {
            "run_id": run_id,
            "epoch": wanted[0][1],
            "queued": [{"kind": kind, "epoch": epoch} for kind, epoch in queued],
            "analyses": [analysis_json(a) for a in found],
        },
        200 if done else 202,
    )


# ---- uploads ---------------------------------------------------------------------------------


def _upload_json(info: uploads.UploadInfo, owner: str | None) -> dict[str, Any]:
    return {
        "id": info.id,
        "kind": info.kind,
        "name": info.original_name,
        "size": info.size,
        "sha256": info.sha256,
        "owner": owner,
        "created_at": _iso(info.created_at),
        "used_at": _iso(info.used_at),
    }


def _owner_names() -> dict[int, str]:
    return users.user_names(context.current().db)


def _visible_upload(upload_id: int) -> uploads.UploadInfo:
    """The upload if the caller may see it (its owner, or an admin), else 404 as for a
    missing one: another member's upload is not disclosed."""
    actor = current_actor()
    info = uploads.usable_upload(
        context.current().db, upload_id, user_id=actor.id, is_admin=actor.is_admin
    )
    if info is None:
        raise ApiProblem(404, f"upload_id: upload {upload_id} does not exist", ["upload_id"])
    return info


@bp.route("/uploads", methods=["GET"])
@rule("member")
def list_uploads():
    _check_args("user")
    actor, db = current_actor(), context.current().db
    wanted = _text_arg("user", 40)
    owner_id = actor.id  # the single-user mode's local operator (no account): every upload
    if wanted is not None and wanted != actor.name:
        if not actor.is_admin:
            raise ApiProblem(403, "user: only admins may list another user's uploads", ["user"])
        info = users.get_user_by_name(db, wanted)
        if info is None:
            raise ApiProblem(404, f"user: no user named {wanted!r}", ["user"])
        owner_id = info.id
    found = uploads.list_uploads(db, owner_id)
    names = _owner_names() if found else {}
    return _json({"uploads": [_upload_json(u, names.get(u.owner_id)) for u in found]})


def _upload_source(name: str | None, kind: str | None) -> tuple[Any, str]:
    """(a binary stream of the file, its name): a multipart body's one part named `file`, or
    the raw body. The name is `name` (?name=), else the part's file name, else "upload" with
    the kind's extension. The body limit (the upload limit) was set before the guard ran
    (webapp/upload_route.py)."""
    default = "upload" + uploads.STORED_SUFFIX[kind or "csv"]
    mimetype = request.mimetype
    if mimetype == MULTIPART:
        try:
            files, form = request.files, request.form
        except RequestEntityTooLarge:
            raise _too_large() from None
        extra = sorted((set(files) | set(form)) - {"file"})
        if extra:
            raise ApiProblem(
                400,
                f"{extra[0]}: unknown part; send one part named file (kind and name are "
                "query parameters)",
                extra,
            )
        parts, texts = files.getlist("file"), form.getlist("file")
        if len(parts) + len(texts) != 1:
            raise ApiProblem(
                400,
                f"file: {len(parts) + len(texts)} parts named file; send exactly 1 "
                "(curl -F file=@PATH)",
                ["file"],
            )
        if texts:  # a part without a file name: its text is the file
            return io.BytesIO(texts[0].encode()), name or default
        return parts[0].stream, name or parts[0].filename or default
    if mimetype in RAW_UPLOAD_TYPES:
        return request.stream, name or default
    shown = repr(mimetype) if mimetype else "missing"
    raise ApiProblem(
        415,
        f"Content-Type: {shown} is not accepted; send {MULTIPART} with a part named file "
        f"(curl -F file=@PATH), or the raw file as {' or '.join(RAW_UPLOAD_TYPES)} (?name= "
        "its name)",
        ["Content-Type"],
    )


def _too_large() -> ApiProblem:
    settings = context.current().settings
    return ApiProblem(
        413,
        f"file: over the {settings.max_upload_mb} MB upload limit (NETLENS_MAX_UPLOAD_MB)",
        ["file"],
    )


@bp.route("/uploads", methods=["POST"])
@rule("member")
def create_upload():
    _check_args("kind", "name")
    kind = request.args.get("kind")
    if kind is not None and kind not in uploads.KINDS:  # given empty: not one of them
        raise ApiProblem(
            400, f"kind: {kind[:40]!r} is not one of {', '.join(uploads.KINDS)}", ["kind"]
        )
    given = _text_arg("name", openapi.UPLOAD_NAME_MAX)  # a longer one: 400, not cut; empty: none
    stream, name = _upload_source(given, kind)
    kind = kind or ("mnist" if name.lower().endswith(".npz") else "csv")
    web, actor = context.current(), current_actor()
    try:
        info = uploads.save_upload(web.db, web.settings, actor.id, name, stream, kind)
    except RequestEntityTooLarge:
        raise _too_large() from None
    except UploadError as exc:  # over the limit while read: 413; the file's checks: 422
        message = str(exc)
        if message.startswith("file: over the"):
            raise ApiProblem(413, message, ["file"]) from None
        raise ApiProblem(422, message, ["name" if "must be named" in message else "file"]) from None
    response = _json(_upload_json(info, actor.name), 201)
    response.headers["Location"] = flask.url_for(
        f"{request.blueprint}.get_upload", upload_id=info.id
    )
    return response


@bp.route("/uploads/<id:upload_id>", methods=["GET"])
@rule("member")
def get_upload(upload_id: int):
    _check_args()
    info = _visible_upload(upload_id)
    return _json(_upload_json(info, _owner_names().get(info.owner_id)))


@bp.route("/uploads/<id:upload_id>", methods=["DELETE"])
@rule("member")
def delete_upload(upload_id: int):
    """Its owner or an admin (checked by _visible_upload: others get 404)."""
    _check_args()
    _body(openapi.EmptyRequest, required=False)
    _visible_upload(upload_id)
    web = context.current()
    try:
        gone = uploads.delete_upload(web.db, web.settings, upload_id)
    except UploadInUse as exc:
        raise ApiProblem(409, f"upload_id: {exc}", ["upload_id"]) from None
    if not gone:  # deleted meanwhile
        raise ApiProblem(404, f"upload_id: upload {upload_id} does not exist", ["upload_id"])
    return flask.Response(status=204)
