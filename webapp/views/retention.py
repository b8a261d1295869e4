"""The admin page's retention card: the policy (saved in server_settings, storage/retention.py),
Save, Preview (a dry run) and Thin now. Admins only: the guard checks the rule, and each
action checks the actor's role again on the server before it reads or changes anything."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, html, no_update

from netlens.storage import retention
from netlens.webapp import context
from netlens.webapp.auth import current_actor
from netlens.webapp.authz import declare_kind, on_click, rule

P = "admin-retention-"
KEEP_DAYS, EVERY, LOG_POINTS = P + "keep-days", P + "every", P + "log-points"
AUTO_HOURS = P + "auto-hours"
SAVE, PREVIEW, THIN, FEEDBACK = P + "save", P + "preview", P + "thin", P + "feedback"
FIELDS = {
    "keep_days": KEEP_DAYS,
    "every": EVERY,
    "log_points": LOG_POINTS,
    "auto_hours": AUTO_HOURS,
}
for _id in FIELDS.values():
    declare_kind(_id, "value", "text")

MAX_RUNS_PER_CLICK = 200  # a click's work is bounded; the next click takes the rest
LISTED = 8  # runs named in the answer


def admin_card() -> dbc.Card:
    policy = retention.get_policy(context.current().db)

    def field(label: str, name: str) -> dbc.Col:
        low, high, _ = retention.LIMITS[name]
        return dbc.Col(
            [
                dbc.Label(label, html_for=FIELDS[name], className="small mb-0 d-block"),
                dbc.Input(
                    id=FIELDS[name],
                    value=str(getattr(policy, name)),
                    type="text",
                    inputMode="numeric",
                    size="sm",
                    style={"width": "7rem"},
                    placeholder=f"{low} to {high:,}",
                ),
            ],
            width="auto",
        )

    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("Retention", className="mb-1"),
                html.P(
                    "A finished run keeps every epoch for the days below; after that, thinning "
                    "keeps the tensors (parameters, signatures, analyses) of every k-th epoch, a "
                    "log-spaced set, the first, the best (lowest validation loss) and the last "
                    "epoch, and every epoch's metrics. Queued and running runs are never "
                    "thinned. The database file is compacted afterwards (docs/admin.md). With "
                    "automatic rounds (hours above 0), the workers thin the due runs that "
                    "often; 0 leaves thinning to this page and the netlens storage thin command.",
                    className="text-muted small",
                ),
                dbc.Row(
                    [
                        field("Keep every epoch for (days)", "keep_days"),
                        field("Then every k-th epoch, k =", "every"),
                        field("Log-spaced epochs", "log_points"),
                        field("Thin automatically every (hours, 0 = never)", "auto_hours"),
                        dbc.Col(
                            html.Div(
                                [
                                    dbc.Button("Save policy", id=SAVE, size="sm", color="primary"),
                                    dbc.Button(
                                        "Preview",
                                        id=PREVIEW,
                                        size="sm",
                                        color="secondary",
                                        outline=True,
                                        title="what Thin now would free, changing nothing",
                                    ),
                                    dbc.Button(
                                        "Thin now",
                                        id=THIN,
                                        size="sm",
                                        color="danger",
                                        title="thin the runs older than the days above, by "
                                        "the policy as typed",
                                    ),
                                ],
                                className="d-flex gap-2",
                            ),
                            width="auto",
                        ),
                    ],
                    className="g-3 mb-2 align-items-end",
                ),
                html.Div(id=FEEDBACK),
            ]
        ),
        className="mb-3",
        id=P + "card",
    )


def _answer(report: retention.ThinReport, more: int) -> dbc.Alert:
    lines: list = [html.P(report.summary(), className="mb-1")]
    shown = [r for r in report.results if r.skipped or r.dropped or r.rows_deleted]
    items = [
        html.Li(
            f"run {r.run_id} {r.name}: "
            + (
                f"skipped: {r.skipped}"
                if r.skipped
                else f"{len(r.kept):,} of {r.epochs_before:,} epochs kept, "
                f"{retention.human_bytes(r.bytes_freed)}"
            )
        )
        for r in shown[:LISTED]
    ]
    if len(shown) > LISTED:
        items.append(html.Li(f"… and {len(shown) - LISTED} more runs"))
    if items:
        lines.append(html.Ul(items, className="mb-1 ps-3"))
    unchanged = len(report.results) - len(shown)
    if unchanged:
        lines.append(
            html.P(f"{unchanged} run(s) already thinned by this policy.", className="mb-0")
        )
    if more:
        lines.append(html.P(f"{more} more runs are due: click again.", className="mb-0"))
    if report.vacuum:
        lines.append(html.P(report.vacuum, className="mb-0 text-muted"))
    color = "info" if report.dry_run else "success"
    return dbc.Alert(lines, color=color, className="small py-2", dismissable=True)


@callback(
    Output(FEEDBACK, "children"),
    Input(SAVE, "n_clicks"),
    Input(PREVIEW, "n_clicks"),
    Input(THIN, "n_clicks"),
    State(KEEP_DAYS, "value"),
    State(EVERY, "value"),
    State(LOG_POINTS, "value"),
    State(AUTO_HOURS, "value"),
    prevent_initial_call=True,
)
@on_click
@rule("admin")
def retention_action(_save, _preview, _thin, keep_days, every, log_points, auto_hours):
    """Save the policy, preview or thin: the role is checked again here, then every value."""
    if not current_actor().is_admin:  # the guard refused already; never rely on one check
        return dbc.Alert("Refused: only an admin can change retention.", color="danger")
    action = dash.ctx.triggered_id
    if action not in (SAVE, PREVIEW, THIN):
        return no_update
    db = context.current().db
    given = {
        "keep_days": keep_days,
        "every": every,
        "log_points": log_points,
        "auto_hours": auto_hours,
    }
    try:
        policy = retention.parse_policy(
            {k: (v.strip() if isinstance(v, str) else v) for k, v in given.items()}
        )
    except retention.RetentionError as exc:
        verb = "Not saved" if action == SAVE else "Nothing thinned"
        return dbc.Alert(f"{verb}: {exc}", color="warning", className="small py-2")
    if action == SAVE:
        retention.set_policy(db, policy)
        return dbc.Alert(
            f"Saved: {policy.describe()}.", color="success", className="small py-2", duration=6000
        )
    due = retention.candidates(db, retention.parse_age(f"{policy.keep_days}d"))
    report = retention.thin_runs(db, due[:MAX_RUNS_PER_CLICK], policy, dry_run=action == PREVIEW)
    return _answer(report, max(0, len(due) - MAX_RUNS_PER_CLICK))
