"""Run exports over HTTP: the .npz streamed from an anonymous temporary file, never kept.

Served at GET /runs/<id>/export.npz for the browser (the run page's Export is a plain link)
and at GET /api/runs/<id>/export for API clients. The file is written by storage.export one
tensor at a time into a temporary file that has no name in any folder (O_TMPFILE, or
unlinked at once), so nothing is left behind even when the client goes away; the web
process holds one tensor chunk, not the run.
"""

from __future__ import annotations

import os
import tempfile

import flask
from flask import request
from werkzeug.wsgi import wrap_file

from netlens.storage import runs
from netlens.storage.export import write_export
from netlens.webapp import context
from netlens.webapp.authz import rule


class ExportFailed(Exception):
    """A run that cannot be exported now: (HTTP status, message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def export_response(run_id: int, compress: bool = False) -> flask.Response:
    """The run's .npz as a streamed attachment; ExportFailed for a missing run (404) or a
    record caught mid-write (409)."""
    db = context.current().db
    handle = tempfile.TemporaryFile(prefix="netlens-export-")
    try:
        write_export(db, run_id, handle, compress=compress)
    except runs.RunNotFound as exc:
        handle.close()
        raise ExportFailed(404, str(exc)) from None
    except RuntimeError as exc:  # storage.export: a record caught mid-write
        handle.close()
        raise ExportFailed(409, f"run_id: {exc}; try again") from None
    except BaseException:
        handle.close()
        raise
    size = os.fstat(handle.fileno()).st_size
    handle.seek(0)
    response = flask.Response(
        wrap_file(request.environ, handle, buffer_size=1 << 20),
        mimetype="application/octet-stream",
        direct_passthrough=True,
    )
    response.content_length = size
    response.headers["Content-Disposition"] = f'attachment; filename="run{run_id}.npz"'
    response.headers["Cache-Control"] = "no-store"
    response.call_on_close(handle.close)  # also closed by the WSGI server once sent
    return response


def install(app) -> None:
    @app.server.route("/runs/<id:run_id>/export.npz", methods=["GET"])
    @rule("member")
    def netlens_run_export(run_id: int):
        try:
            return export_response(run_id)
        except ExportFailed as exc:
            return flask.Response(str(exc), status=exc.status, mimetype="text/plain")
