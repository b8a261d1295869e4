"""The admin page over the REST API (docs/api.md), on webapp/api.py's blueprint: the job queue
(filtered, sorted, paged), one job with its traceback, requeue, the queue's counts, workers,
accounts (list; disable or enable), storage per user and the largest runs. Cancel, retry and
delete are the runs' own routes (/runs/{id}/...), which admins may use on any run.

Every route is `@rule("admin")`: the guard refuses members with 403 before the view runs.
What each returns is what the admin page shows (webapp/views/admin.py), from the same
storage functions (storage/admin.py, storage/workers.py, storage/users.py); what it changes
is what the page (webapp/pages/admin.py) and `netlens users disable|enable` change, with the
same rule: an admin cannot change their own account (409), so nobody locks themselves out.
Never a password hash. No SQL here, no JAX.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import request

from netlens.dispatch.submission import requeue_run
from netlens.storage import admin, jobs, runs, users, workers
from netlens.storage.models import JOB_STATES
from netlens.webapp import api_more, context, openapi
from netlens.webapp.api import (
    MAX_INT,
    ApiProblem,
    _body,
    _check_args,
    _get_run,
    _int_arg,
    _iso,
    _json,
    _no_job,
    _text_arg,
    bp,
)
from netlens.webapp.api_compare import list_arg
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import rule
from netlens.webapp.views.admin import broker_sizes

JOB_ARGS = ("state", "owner", "queue", "since", "until", "sort", "order", "limit", "offset")
LARGEST_DEFAULT = 20  # the admin page's "largest runs"
# RFC 3339 date-time (what the document's `format: date-time` means): date, T, time, offset
RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
MAX_TIME_LENGTH = openapi.DATE_TIME["maxLength"]
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


# ---- query helpers ---------------------------------------------------------------------------


def _time_arg(name: str) -> datetime | None:
    """An RFC 3339 date-time in UTC. One beyond the years 1 to 9999 once in UTC (year 1
    at +05:00, say) is the earliest or latest moment there is: a bound, still."""
    text = request.args.get(name)
    if text is None:
        return None
    found = RFC3339.match(text) if len(text) <= MAX_TIME_LENGTH else None
    problem = (
        f"{name}: {text[:40]!r} is not an RFC 3339 date-time of at most {MAX_TIME_LENGTH} "
        "characters (e.g. 2026-01-31T08:00:00Z)"
    )
    if not found:
        raise ApiProblem(400, problem, [name])
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    micro = int((found.group(7) or ".0")[1:7].ljust(6, "0"))
    sign, off_h, off_m = found.group(9), found.group(10), found.group(11)
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) if sign else timedelta(0)
    if sign and (int(off_h) > 23 or int(off_m) > 59):
        raise ApiProblem(400, problem, [name])
    try:  # a leap second (:60) counts as :59
        local = datetime(year or 1, month, day, hour, minute, min(second, 59), micro)
        if second > 60:
            raise ValueError
    except ValueError:
        raise ApiProblem(400, problem, [name]) from None
    if year == 0:  # RFC 3339 has a year 0; Python does not: before anything stored
        return EARLIEST
    try:
        moment = local - offset if sign != "-" else local + offset
    except OverflowError:
        return EARLIEST if sign == "+" else LATEST
    return moment.replace(tzinfo=UTC)


def _state(part: str) -> str:
    if part not in JOB_STATES:
        raise ApiProblem(
            400, f"state: {part[:40]!r} is not one of {', '.join(JOB_STATES)}", ["state"]
        )
    return part


def _choice(name: str, default: str | None, choices) -> str | None:
    value = request.args.get(name, default)  # given empty: not one of them (400)
    if value is not None and value not in choices:
        raise ApiProblem(400, f"{name}: {value[:40]!r} is not one of {', '.join(choices)}", [name])
    return value


# ---- JSON shapes ------------------------------------------------------------------------------


def _job_json(j: admin.JobRow) -> dict:
    return {
        "run_id": j.run_id,
        "name": j.name,
        "owner_id": j.owner_id,
        "owner": j.owner,
        "state": j.state,
        "queue": j.queue,
        "attempt": j.attempt,
        "max_attempts": j.max_attempts,
        "worker_id": j.worker_id,
        "cancel_requested": j.cancel_requested,
        "progress_epoch": j.progress_epoch,
        "progress_total": j.progress_total,
        "enqueued_at": _iso(j.enqueued_at),
        "claimed_at": _iso(j.claimed_at),
        "heartbeat_at": _iso(j.heartbeat_at),
        "finished_at": _iso(j.finished_at),
        "runtime_s": j.runtime_s,
        "error": j.error,
        "has_traceback": j.has_traceback,
        "url": f"/runs/{j.run_id}",
    }


def _account_json(u: users.UserInfo) -> dict:
    return {
        "id": u.id,
        "name": u.name,
        "admin": u.is_admin,
        "disabled": u.disabled,
        "created_at": _iso(u.created_at),
    }


# ---- jobs -------------------------------------------------------------------------------------


@bp.route("/admin/jobs", methods=["GET"])
@rule("admin")
def list_admin_jobs():
    _check_args(*JOB_ARGS)
    states = list_arg("state", len(JOB_STATES), _state)
    owner = _text_arg("owner", 40)
    queue = _choice("queue", None, admin.QUEUES)
    since, until = _time_arg("since"), _time_arg("until")
    sort = _choice("sort", "enqueued_at", admin.SORTABLE)
    order = _choice("order", "desc", ("asc", "desc"))
    limit = _int_arg("limit", openapi.DEFAULT_LIMIT, 1, openapi.MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, MAX_INT)
    db = context.current().db
    owner_id = None
    if owner is not None:
        try:
            owner_id = admin.resolve_owner(db, owner)
        except admin.AdminQueryError:
            raise ApiProblem(404, f"owner: no user named {owner!r}", ["owner"]) from None
    if since is not None and until is not None and until < since:
        items, total = [], 0  # an empty window, as an empty epoch range is
    else:
        try:
            items, total = admin.query_jobs(
                db,
                states=states,
                owner=owner_id,
                queue=queue,
                since=since,
                until=until,
                sort=[(sort, order)],
                offset=offset,
                limit=limit,
            )
        except admin.AdminQueryError as exc:  # (every argument was checked above)
            raise ApiProblem(400, str(exc), [str(exc).split(":", 1)[0]]) from None
    return api_more.paged(
        {"jobs": [_job_json(j) for j in items], "total": total, "limit": limit, "offset": offset},
        total,
    )


@bp.route("/admin/jobs/<id:run_id>", methods=["GET"])
@rule("admin")
def get_admin_job(run_id: int):
    _check_args()
    db = context.current().db
    _get_run(db, run_id)
    try:
        d = admin.job_detail(db, run_id)
    except runs.RunNotFound:
        raise ApiProblem(
            404,
            f"run_id: run {run_id} has no job: it was trained by `netlens train` in a process "
            "of its own, not through the queue",
            ["run_id"],
        ) from None
    return _json(
        _job_json(d.row)
        | {
            "error": d.error,
            "traceback": d.traceback,
            "time_limit_s": d.time_limit_s,
            "from_scratch": d.from_scratch,
            "last_metrics": d.last_metrics,
            "run_status": d.run_status,
            "epochs_recorded": d.epochs_recorded,
            "recorded_bytes": d.recorded_bytes,
        }
    )


@bp.route("/admin/jobs/<id:run_id>/requeue", methods=["POST"])
@rule("admin")
def requeue_job(run_id: int):
    """The admin page's Requeue: a queued or running job as a new attempt, sent again."""
    _check_args()
    _body(openapi.EmptyRequest, required=False)
    web = context.current()
    _get_run(web.db, run_id)
    try:
        attempt = requeue_run(web.db, web.settings, run_id)
    except jobs.JobStateError as exc:
        raise ApiProblem(409, str(exc), ["run_id"]) from None
    except runs.RunNotFound:
        _no_job(run_id)
    return _json({"id": run_id, "attempt": attempt, "state": "queued"})


@bp.route("/admin/queues", methods=["GET"])
@rule("admin")
def queue_summary():
    _check_args()
    web = context.current()
    return _json(
        {
            "states": admin.state_counts(web.db),
            "queued": admin.queued_per_queue(web.db),
            "broker": broker_sizes.get(web.settings),
        }
    )


# ---- workers, accounts, storage ----------------------------------------------------------------


@bp.route("/admin/workers", methods=["GET"])
@rule("admin")
def list_workers():
    _check_args("limit")
    limit = _int_arg("limit", workers.MAX_LISTED, 1, openapi.MAX_WORKERS)
    web = context.current()
    beat = web.settings.heartbeat_seconds
    return _json(
        {
            "workers": [
                {
                    "name": w.name,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "queues": w.queues,
                    "device": w.device,
                    "started_at": _iso(w.started_at),
                    "heartbeat_at": _iso(w.heartbeat_at),
                    "stopped_at": _iso(w.stopped_at),
                    "state": w.state,
                    "seconds_since_heartbeat": w.seconds_since_heartbeat,
                    "current_run_id": w.current_run_id,
                    "current_run_name": w.current_run_name,
                    "current_attempt": w.current_attempt,
                }
                for w in workers.list_workers(web.db, beat, limit=limit)
            ],
            "online_window_s": workers.online_window_s(beat),
        }
    )


@bp.route("/admin/users", methods=["GET"])
@rule("admin")
def list_accounts():
    _check_args()
    return _json({"users": [_account_json(u) for u in users.list_users(context.current().db)]})


@bp.route("/admin/users/<name>", methods=["PATCH"])
@rule("admin")
def change_user(name: str):
    """Disable or enable an account, as the admin page's toggle and `netlens users
    disable|enable` do; never the caller's own (the local operator of single-user mode has
    no account, and may change any)."""
    _check_args()
    body = _body(openapi.UserChange, required=True)
    db, me = context.current().db, current_actor()
    user = None if len(name) > 40 or "\x00" in name else users.get_user_by_name(db, name)
    if user is None:
        raise ApiProblem(404, f"name: no user named {name[:40]!r}", ["name"])
    if me.id is not None and user.id == me.id:
        raise ApiProblem(
            409,
            "name: you cannot disable or enable your own account (another admin can, or "
            "`netlens users` on the server)",
            ["name"],
        )
    users.set_disabled(db, user.name, body.disabled)
    return _json(_account_json(users.get_user(db, user.id)))


@bp.route("/admin/storage", methods=["GET"])
@rule("admin")
def storage_report():
    _check_args("limit")
    limit = _int_arg("limit", LARGEST_DEFAULT, 1, admin.MAX_LARGEST)
    db = context.current().db
    return _json(
        {
            "users": [
                {
                    "owner_id": u.owner_id,
                    "owner": u.owner,
                    "runs": u.runs,
                    "recorded_bytes": u.recorded_bytes,
                    "uploads": u.uploads,
                    "upload_bytes": u.upload_bytes,
                    "total_bytes": u.total_bytes,
                }
                for u in admin.storage_by_user(db)
            ],
            "largest_runs": [
                {
                    "run_id": r.run_id,
                    "name": r.name,
                    "owner_id": r.owner_id,
                    "owner": r.owner,
                    "status": r.status,
                    "epochs_recorded": r.epochs_recorded,
                    "recorded_bytes": r.recorded_bytes,
                    "created_at": _iso(r.created_at),
                    "url": f"/runs/{r.run_id}",
                }
                for r in admin.largest_runs(db, limit)
                if r.recorded_bytes > 0  # as the page: a run that recorded nothing takes no room
            ],
        }
    )
