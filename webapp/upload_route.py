"""Request body limits, and POST /uploads: data files reach the server outside Dash callbacks.

A file chosen in the new-experiment page's dcc.Upload is posted by a small clientside callback
(webapp/assets/netlens-upload.js) as the raw request body to POST /uploads, which streams it
to disk through storage.uploads.save_upload with the upload limit checked while reading.
Every other request body (Dash callbacks above all) is capped at Settings.max_request_kb, far
below the upload limit, so no callback can make the web process read tens of megabytes.
"""

from __future__ import annotations

import flask
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from netlens.storage.limits import LimitExceeded
from netlens.storage.spec import LIMITS
from netlens.storage.uploads import DATASET_KIND, KINDS, UploadError, format_size, save_upload
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule

ENDPOINT = "netlens_upload"
# The API's POST /uploads (webapp/api_write.py), under /api/v1 and its alias /api: a file
# too, sent raw or as multipart/form-data (whose part headers and boundaries are the slack)
API_ENDPOINTS = ("api.create_upload", "api_alias.create_upload")
MULTIPART_SLACK = 64 * 1024
MB = 2**20


def _limit_for_this_request() -> tuple[int, str]:
    settings = context.current().settings
    if request.endpoint == ENDPOINT:
        return settings.max_upload_bytes, f"file: over the {settings.max_upload_mb} MB upload limit"
    if request.endpoint in API_ENDPOINTS:
        return settings.max_upload_bytes + MULTIPART_SLACK, (
            f"file: over the {settings.max_upload_mb} MB upload limit (NETLENS_MAX_UPLOAD_MB)"
        )
    ingest = ingest_limit(request.endpoint, settings)
    if ingest is not None:
        return ingest
    kb = settings.max_request_kb
    return settings.max_request_bytes, (
        f"request body: over the {kb:,} kB limit for requests "
        "other than file uploads (NETLENS_MAX_REQUEST_KB)"
    )


def ingest_limit(endpoint: str | None, settings) -> tuple[int, str] | None:
    """The body limits of the Python API's streaming routes (webapp/api_ingest.py)."""
    name = (endpoint or "").split(".", 1)[-1]
    if (endpoint or "").split(".", 1)[0] not in ("api", "api_alias"):
        return None
    if name == "append_epochs":
        return settings.max_chunk_bytes, (
            f"body: over the {settings.max_chunk_mb} MiB limit of a chunk of epochs "
            "(NETLENS_MAX_CHUNK_MB)"
        )
    if name == "create_client_run":
        limit = LIMITS["max_data_bytes"] + settings.max_chunk_bytes + MULTIPART_SLACK
        return limit, (
            f"body: over the {limit // MB:,} MiB limit of a run's arrays (the data's "
            f"max_data_bytes {LIMITS['max_data_bytes'] // MB} MiB + NETLENS_MAX_CHUNK_MB "
            f"{settings.max_chunk_mb} MiB)"
        )
    return None


def _limit_body():
    """Runs before the guard reads any body: sets this request's limit, and refuses at once a
    body whose declared length is over it (a chunked one is cut off while it is read)."""
    limit, message = _limit_for_this_request()
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        return _too_large(message)
    return None


def _too_large(message: str) -> flask.Response:
    if request.path.startswith("/api/"):  # the API's error shape (webapp/api.py)
        return flask.jsonify(
            error=message, fields=["file" if message.startswith("file:") else "body"]
        ), 413
    if request.endpoint == ENDPOINT:
        return flask.jsonify(error=message), 413
    return flask.Response(message, status=413, mimetype="text/plain")


def _kind(dataset: str | None, name: str) -> str:
    return DATASET_KIND.get(dataset or "") or ("mnist" if name.lower().endswith(".npz") else "csv")


def install(app) -> None:
    """Register before auth.install: the body limit must be set before the guard reads one."""
    server = app.server
    # the default for any body read outside a request's own limit (set by _limit_body)
    server.config["MAX_CONTENT_LENGTH"] = server.config["NETLENS"].settings.max_request_bytes
    server.before_request(_limit_body)

    @server.errorhandler(RequestEntityTooLarge)
    def netlens_too_large(_exc):
        return _too_large(_limit_for_this_request()[1])

    @server.route("/uploads", methods=["POST"], endpoint=ENDPOINT)
    @rule("member")
    def netlens_upload():
        """The raw file as the body; ?name= the file's name (shown only), ?dataset= the form's
        dataset (picks csv or mnist). JSON {id, message} or {error} (400, 413, 429)."""
        name = request.args.get("name", "")
        kind = request.args.get("kind") or _kind(request.args.get("dataset"), name)
        if kind not in KINDS:
            return flask.jsonify(error=f"kind: {kind!r} is not one of {', '.join(KINDS)}"), 400
        web = context.current()
        try:
            info = save_upload(web.db, web.settings, current_actor().id, name, request.stream, kind)
        except UploadError as exc:
            return flask.jsonify(error=str(exc)), 400
        except LimitExceeded as exc:  # the user's upload quota (storage.limits)
            return flask.jsonify(error=str(exc)), exc.status
        return flask.jsonify(
            id=info.id,
            message=f"uploaded {info.original_name} ({format_size(info.size)}), id {info.id}",
        ), 201
