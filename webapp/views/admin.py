"""What the admin page (webapp/pages/admin.py) shows, as components: the queue and state
cards, workers, storage and users, the jobs table (one page, rendered on the server) and one
job's details. Data from storage/admin.py, storage/workers.py and the broker's queue lengths
(read in a background thread at most every BROKER_TTL_S seconds, never in a request).

It lives outside webapp/pages/ so that tests and benchmarks import it once (see
webapp/views/overview.py for why pages must not be imported twice)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from netlens.storage import admin, runs, users, workers
from netlens.storage.models import JOB_STATES
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.views.common import STATUS_COLORS

P = "admin-"
TICK, REFRESH, UPDATED = P + "tick", P + "refresh", P + "updated"
VIEW, PICKED, SORT, PAGE, PICK = P + "view", P + "picked", P + "sort", P + "page", P + "pick"
CARDS, WORKERS, STORAGE, USERS = P + "cards", P + "workers", P + "storage", P + "users"
GRID, DETAIL, FEEDBACK = P + "jobs", P + "detail", P + "feedback"
F_STATE, F_USER, F_QUEUE, F_TIME, F_FROM, F_TO, F_DATES_BOX = (
    P + "f-state",
    P + "f-user",
    P + "f-queue",
    P + "f-time",
    P + "f-from",
    P + "f-to",
    P + "f-dates-box",
)
CANCEL, RETRY, REQUEUE, DELETE = P + "cancel", P + "retry", P + "requeue", P + "delete"
STORE_DELETE, CONFIRM, PENDING, STORAGE_FEEDBACK = (
    P + "store-delete",
    P + "confirm-delete",
    P + "pending-delete",
    P + "storage-feedback",
)
USER_TOGGLE, USERS_FEEDBACK = P + "user-toggle", P + "users-feedback"

REFRESH_MS = 3000
BLOCK = 50
BROKER_TTL_S = 2.0
BROKER_QUEUES = ("cpu", "gpu")
LARGEST = 20
TIME_CHOICES = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "all": None,
}
TIME_LABELS = {
    "hour": "last hour",
    "day": "last day",
    "week": "last week",
    "all": "all time",
    "dates": "between dates…",
}
ANY = "*"  # the "any user" / "any queue" choice (a select's value cannot be empty)
VERBS = {CANCEL: "cancel", RETRY: "retry", REQUEUE: "requeue", DELETE: "delete"}


# ---- formatting ---------------------------------------------------------------------------


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else ""


# ---- broker queue lengths (cached, never blocking a request) -------------------------------


class BrokerSizes:
    """Queue lengths read by a background thread at most every `ttl_s` seconds; readers get
    the latest figures at once (None: the broker could not be reached)."""

    def __init__(self, ttl_s: float = BROKER_TTL_S):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sizes: dict[str, int | None] | None = None
        self._checked = 0.0
        self._busy = False
        self._app = None

    def get(self, settings, wait_s: float = 0.5) -> dict[str, int | None] | None:
        """The latest sizes, or None while the first reading is still under way."""
        with self._lock:
            start = not self._busy and time.monotonic() - self._checked > self.ttl_s
            if start:
                self._busy = True
        if start:
            thread = threading.Thread(
                target=self._read, args=(settings,), daemon=True, name="admin-broker-sizes"
            )
            thread.start()
            if self._sizes is None:
                thread.join(wait_s)  # the first view: a moment for the first figures
        with self._lock:
            return None if self._sizes is None else dict(self._sizes)

    def _read(self, settings) -> None:
        from netlens.dispatch.celery_app import broker_queue_size

        try:
            if self._app is None:
                from netlens.dispatch.celery_app import make_celery

                self._app = make_celery(settings)
            sizes = {q: broker_queue_size(self._app, q) for q in BROKER_QUEUES}
        except Exception:  # noqa: BLE001 - a broker we cannot even talk to is "unreachable"
            sizes = dict.fromkeys(BROKER_QUEUES)
        with self._lock:
            self._sizes, self._checked, self._busy = sizes, time.monotonic(), False


broker_sizes = BrokerSizes()


# ---- the cards ----------------------------------------------------------------------------


def _stat(
    label: str,
    value,
    note: str = "",
    color: str = "",
    stat_id: str | None = None,
    title: str | None = None,
) -> html.Div:
    value_box = html.Div(value, className=f"admin-stat-value {color}".strip())
    if stat_id:
        value_box.id = stat_id
    return html.Div(
        [
            html.Div(label, className="admin-stat-label"),
            value_box,
            html.Div(note or "\u00a0", className="admin-stat-note"),
        ],
        className="admin-stat",
        title=title,
    )


STATE_TEXT = {
    "queued": "text-secondary",
    "running": "text-primary",
    "succeeded": "text-success",
    "failed": "text-danger",
    "cancelled": "text-warning",
    "diverged": "text-danger",
}


def summary_cards(db, settings) -> html.Div:
    sizes = broker_sizes.get(settings)
    in_db = admin.queued_per_queue(db)
    stats = []
    for queue in BROKER_QUEUES:
        value = "…" if sizes is None else sizes.get(queue)
        text = "unreachable" if value is None else (value if value == "…" else f"{value:,}")
        stats.append(
            _stat(
                f"queue {queue}",
                text,
                f"DB: {in_db.get(queue, 0):,} queued",
                "text-danger admin-stat-text" if value is None else "",
                f"{P}queue-{queue}",
                title="Messages waiting on the broker; below, the jobs the "
                "database has queued on it",
            )
        )
    counts = admin.state_counts(db)
    for state in JOB_STATES:
        stats.append(
            _stat(state, f"{counts[state]:,}", "", STATE_TEXT.get(state, ""), f"{P}count-{state}")
        )
    return html.Div(stats, className="admin-stats")


def workers_table(db, settings) -> html.Div:
    found = workers.list_workers(db, settings.heartbeat_seconds)
    if not found:
        return html.P(
            [
                "No worker has reported yet: a worker appears here once it starts ",
                html.Code("netlens worker"),
                " or ",
                html.Code("netlens serve"),
                ".",
            ],
            className="text-muted mb-0",
        )
    badge = {"online": "success", "offline": "danger", "stopped": "secondary"}
    rows = []
    for w in found:
        job = (
            "—"
            if w.current_run_id is None
            else html.Span(
                [
                    dcc.Link(f"#{w.current_run_id}", href=f"/runs/{w.current_run_id}"),
                    f" {w.current_run_name or ''} (attempt {w.current_attempt})",
                ]
            )
        )
        rows.append(
            html.Tr(
                [
                    html.Td(w.name, className="text-break"),
                    html.Td(
                        dbc.Badge(w.state, color=badge[w.state]),
                        title="stopped: exited cleanly; offline: no heartbeat for "
                        f"{workers.online_window_s(settings.heartbeat_seconds):g} s",
                    ),
                    html.Td(job),
                    html.Td(w.device or "…"),
                    html.Td(", ".join(w.queues)),
                    html.Td(ago(w.seconds_since_heartbeat), title=when(w.heartbeat_at) + " UTC"),
                    html.Td(when(w.started_at)),
                    html.Td(f"{w.hostname} / {w.pid}"),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in (
                    "worker",
                    "status",
                    "current job",
                    "device",
                    "queues",
                    "last heartbeat",
                    "started (UTC)",
                    "host / pid",
                )
            ]
        )
    )
    return dbc.Table(
        [head, html.Tbody(rows)],
        size="sm",
        hover=True,
        responsive=True,
        className="mb-0 admin-table",
        id=P + "workers-table",
    )


def storage_panel(db) -> html.Div:
    per_user = admin.storage_by_user(db)
    largest_total = max((u.total_bytes for u in per_user), default=0) or 1
    user_rows = [
        html.Tr(
            [
                html.Td(u.owner or ("no owner" if u.owner_id is None else f"user {u.owner_id}")),
                html.Td(f"{u.runs:,}", className="text-end"),
                html.Td(size(u.recorded_bytes), className="text-end"),
                html.Td(
                    f"{size(u.upload_bytes)} ({u.uploads})" if u.uploads else "—",
                    className="text-end",
                ),
                html.Td(
                    html.Div(
                        [
                            html.Div(
                                className="admin-bar",
                                style={"width": f"{100 * u.total_bytes / largest_total:.1f}%"},
                            ),
                            html.Span(size(u.total_bytes), className="admin-bar-label"),
                        ],
                        className="admin-bar-box",
                    )
                ),
            ]
        )
        for u in per_user
    ]
    by_user = dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("user"),
                        html.Th("runs", className="text-end"),
                        html.Th("recorded", className="text-end"),
                        html.Th("uploads", className="text-end"),
                        html.Th("total", style={"width": "35%"}),
                    ]
                )
            ),
            html.Tbody(user_rows),
        ],
        size="sm",
        className="admin-table",
        id=P + "storage-users",
    )
    largest = [r for r in admin.largest_runs(db, LARGEST) if r.recorded_bytes > 0]
    run_rows = [
        html.Tr(
            [
                html.Td(dcc.Link(f"#{r.run_id}", href=f"/runs/{r.run_id}")),
                html.Td(
                    r.name or "unnamed", className="text-truncate", style={"maxWidth": "14rem"}
                ),
                html.Td(r.owner or "—"),
                html.Td(r.status),
                html.Td(f"{r.epochs_recorded:,}", className="text-end"),
                html.Td(size(r.recorded_bytes), className="text-end"),
                html.Td(
                    dbc.Button(
                        "Delete",
                        id={"type": STORE_DELETE, "run": r.run_id},
                        size="sm",
                        color="danger",
                        outline=True,
                        className="py-0",
                        disabled=r.status in ("queued", "running"),
                        title="cancel it first"
                        if r.status in ("queued", "running")
                        else f"delete run {r.run_id} and everything recorded",
                    )
                ),
            ]
        )
        for r in largest
    ]
    biggest = dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [html.Th(h) for h in ("run", "name", "owner", "status")]
                    + [
                        html.Th("epochs", className="text-end"),
                        html.Th("size", className="text-end"),
                        html.Th(""),
                    ]
                )
            ),
            html.Tbody(run_rows),
        ],
        size="sm",
        hover=True,
        className="admin-table mb-0",
        id=P + "storage-runs",
    )
    if not per_user:
        return html.P("No runs yet.", className="text-muted mb-0")
    return html.Div(
        [
            html.H6("Per user"),
            by_user,
            html.H6(
                f"The {len(largest)} largest runs"
                if largest
                else "No run has recorded anything yet.",
                className="mt-3",
            ),
            biggest if largest else None,
        ]
    )


def users_table(db) -> html.Div:
    me = current_actor()
    found = users.list_users(db)
    if not found:
        return html.P(
            [
                "No accounts (single-user mode). Add one with ",
                html.Code("netlens users add NAME --admin"),
                ".",
            ],
            className="text-muted mb-0",
        )
    rows = []
    for u in found:
        own = me.id is not None and u.id == me.id
        button = dbc.Button(
            "Enable" if u.disabled else "Disable",
            id={"type": USER_TOGGLE, "name": u.name, "disable": not u.disabled},
            size="sm",
            color="success" if u.disabled else "secondary",
            outline=True,
            className="py-0",
            disabled=own,
            title="your own account" if own else None,
        )
        rows.append(
            html.Tr(
                [
                    html.Td(u.name),
                    html.Td("admin" if u.is_admin else "member"),
                    html.Td(
                        dbc.Badge("disabled", color="danger")
                        if u.disabled
                        else dbc.Badge("active", color="success")
                    ),
                    html.Td(button),
                ]
            )
        )
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in ("user", "role", "state", "")])),
            html.Tbody(rows),
        ],
        size="sm",
        className="admin-table mb-0",
        id=P + "users-table",
    )


# ---- the jobs table ------------------------------------------------------------------------
# A plain table rendered on the server, one page of BLOCK rows: it arrives with the page's
# layout and with each refresh, with no grid library to load and no second request for rows.

COLUMNS = [
    ("run_id", "run"),
    ("name", "name"),
    ("owner", "owner"),
    ("state", "state"),
    ("queue", "queue"),
    ("attempt", "attempt"),
    ("worker", "worker"),
    ("enqueued_at", "enqueued (UTC)"),
    ("runtime", "runtime"),
    ("error", "error"),
]
DEFAULT_VIEW = {"page": 0, "sort": ["enqueued_at", "desc"]}


def _header(column: str, title: str, sort: list) -> html.Th:
    if column not in admin.SORTABLE:
        return html.Th(title)
    arrow = {"asc": " ▲", "desc": " ▼"}.get(sort[1]) if sort and sort[0] == column else ""
    return html.Th(
        html.Button(
            title + (arrow or ""),
            id={"type": SORT, "col": column},
            className="admin-sort",
            title=f"sort by {title}",
        ),
        **{
            "aria-sort": {"asc": "ascending", "desc": "descending"}.get(
                sort[1] if arrow else "", "none"
            )
        },
    )


def _job_row(j: admin.JobRow, picked: bool) -> html.Tr:
    state = j.state + (" (cancelling)" if j.cancel_requested and j.state == "running" else "")
    cells = {
        "run_id": html.A(f"#{j.run_id}", href=f"/runs/{j.run_id}"),
        "name": j.name or "unnamed",
        "owner": j.owner or "—",
        "state": state,
        "queue": j.queue,
        "attempt": f"{j.attempt}/{j.max_attempts}",
        "worker": j.worker_id or "",
        "enqueued_at": when(j.enqueued_at),
        "runtime": duration(j.runtime_s),
        "error": j.error or "",
    }
    # A tick mark, not a checkbox component: the whole row is the control (its n_clicks), and
    # 50 fewer components to render on every refresh.
    tds = [
        html.Td(
            "☑" if picked else "☐",
            className="admin-pick-cell",
            **{"data-col": "pick"},
            title="click the row to (un)select it",
        )
    ]
    for column, _ in COLUMNS:
        extra = {"className": f"admin-state-{j.state}"} if column == "state" else {}
        if column == "error":
            extra = {"className": "admin-error", "title": j.error or None}
        tds.append(html.Td(cells[column], **{"data-col": column}, **extra))
    return html.Tr(
        tds,
        id={"type": PICK, "run": j.run_id},
        n_clicks=0,
        **{"data-run": str(j.run_id), "aria-selected": "true" if picked else "false"},
        className="admin-row" + (" table-active" if picked else ""),
    )


def _pager(page: int, per_page: int, total: int) -> html.Div:
    last = max(0, (total - 1) // per_page)
    first_row, last_row = (page * per_page + 1, min(total, (page + 1) * per_page))

    def go(label: str, to: int, title: str):
        # "role" keeps the ids apart when two buttons lead to the same page (« and ‹ on page 2)
        return dbc.Button(
            label,
            id={"type": PAGE, "to": to, "role": title.split()[0]},
            size="sm",
            color="light",
            className="py-0 px-2",
            disabled=to == page or not 0 <= to <= last,
            title=title,
        )

    return html.Div(
        [
            html.Span(
                f"{first_row:,} to {last_row:,} of {total:,}" if total else "no jobs",
                className="small me-3",
                id=P + "rows-summary",
            ),
            go("«", 0, "first page"),
            go("‹", page - 1, "previous page"),
            html.Span(f"page {page + 1:,} of {last + 1:,}", className="small mx-2"),
            go("›", page + 1, "next page"),
            go("»", last, "last page"),
        ],
        className="d-flex align-items-center justify-content-end mt-1",
    )


def jobs_table(view: dict | None, filters: tuple, picked: list[int] | None) -> html.Div:
    """One page of jobs (filtered, sorted and paged in SQL) with its pager; a bad filter is
    named instead."""
    view = {**DEFAULT_VIEW, **(view or {})}
    sort = view["sort"]
    try:
        since, until = time_range(*filters[3:])
        user, queue = (None if v in (None, "", ANY) else v for v in filters[1:3])
        items, total = admin.query_jobs(
            context.current().db,
            states=filters[0] or None,
            owner=user,
            queue=queue,
            since=since,
            until=until,
            sort=[tuple(sort)] if sort else None,
            offset=view["page"] * BLOCK,
            limit=BLOCK,
        )
    except (admin.AdminQueryError, ValueError) as exc:
        return html.Div(dbc.Alert(str(exc), color="danger", className="py-2"))
    picked_set = set(picked or [])
    head = html.Thead(
        html.Tr(
            [html.Th("", className="admin-pick-cell")] + [_header(c, t, sort) for c, t in COLUMNS]
        )
    )
    body = html.Tbody([_job_row(j, j.run_id in picked_set) for j in items])
    table = dbc.Table([head, body], size="sm", hover=True, className="admin-table mb-0")
    empty = (
        None
        if items
        else html.P("No job matches these filters.", className="text-muted small my-2")
    )
    return html.Div(
        [html.Div(table, className="admin-jobs-scroll"), empty, _pager(view["page"], BLOCK, total)]
    )


def time_range(
    choice: str | None, start: str | None, end: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """(since, until) in UTC for the time filter: a recent window, or whole days [start, end]."""
    now = now or datetime.now(UTC)
    if choice in TIME_CHOICES:
        window = TIME_CHOICES[choice]
        return (None if window is None else now - window), None
    if choice == "dates":
        since = (
            datetime.combine(date.fromisoformat(start[:10]), datetime.min.time(), UTC)
            if start
            else None
        )
        until = (
            datetime.combine(date.fromisoformat(end[:10]), datetime.min.time(), UTC)
            + timedelta(days=1)
            if end
            else None
        )
        return since, until
    return None, None


def job_panel(run_id: int, selected: int) -> html.Div:
    try:
        d = admin.job_detail(context.current().db, run_id)
    except runs.RunNotFound:
        return html.P(f"Run {run_id} no longer exists.", className="text-muted mb-0")
    r = d.row
    facts = [
        ("state", dbc.Badge(r.state, color=STATUS_COLORS.get(r.state, "secondary"))),
        ("attempt", f"{r.attempt} of {r.max_attempts}"),
        ("queue", r.queue),
        ("owner", r.owner or "—"),
        ("worker", r.worker_id or "—"),
        ("progress", f"epoch {r.progress_epoch} of {r.progress_total}"),
        ("runtime", duration(r.runtime_s) or "—"),
        ("enqueued", when(r.enqueued_at)),
        ("claimed", when(r.claimed_at) or "—"),
        ("last heartbeat", when(r.heartbeat_at) or "—"),
        ("finished", when(r.finished_at) or "—"),
        ("recorded", f"{d.epochs_recorded:,} epochs, {size(d.recorded_bytes)}"),
    ]
    return html.Div(
        [
            html.H6(
                [
                    dcc.Link(f"#{r.run_id} {r.name or 'unnamed'}", href=f"/runs/{r.run_id}"),
                    html.Span(
                        f"  ({selected} selected: showing the first)" if selected > 1 else "",
                        className="text-muted small",
                    ),
                ]
            ),
            html.Div(
                [
                    html.Span(
                        [html.Span(k + ": ", className="text-muted"), v], className="admin-fact"
                    )
                    for k, v in facts
                ],
                className="mb-2",
            ),
            html.Div([html.Strong("Error: "), html.Span(d.error)], className="text-danger mb-2")
            if d.error
            else None,
            html.Pre(d.traceback, className="admin-traceback", id=P + "traceback")
            if d.traceback
            else html.P("No traceback.", className="text-muted small mb-0"),
        ]
    )
