"""`netlens storage thin RUN... | --older-than 30d [--dry-run]` and `netlens storage policy`:
the retention policy and thinning of old runs (storage/retention.py, docs/admin.md)."""

from __future__ import annotations

import click

from netlens.storage.settings import Settings

POLICY_OPTIONS = (
    click.option("--every", "every", help="keep every k-th recorded epoch (k >= 1)"),
    click.option("--log-points", "log_points", help="log-spaced epochs kept besides (>= 0)"),
)


def _policy_options(fn):
    for option in reversed(POLICY_OPTIONS):
        fn = option(fn)
    return fn


def _policy(
    db,
    every: str | None,
    log_points: str | None,
    keep_days: str | None = None,
    auto_hours: str | None = None,
):
    from netlens.cli import _fail
    from netlens.storage import retention

    given = {"every": every, "log_points": log_points, "keep_days": keep_days}
    given["auto_hours"] = auto_hours
    try:
        return retention.parse_policy(
            {k: v for k, v in given.items() if v is not None}, retention.get_policy(db)
        )
    except retention.RetentionError as exc:
        _fail(f"--{str(exc).replace('_', '-', 1)}" if not str(exc).startswith("-") else str(exc))


@click.group("storage")
def storage_group() -> None:
    """What the database keeps: thin old runs to some epochs' tensors (every metric stays)."""


@storage_group.command("thin")
@click.argument("run_ids", nargs=-1, type=str)
@click.option(
    "--older-than",
    "older_than",
    help="thin every finished run that ended longer ago than this (30d, 12h, 2w); "
    "'policy': the saved policy's keep_days",
)
@click.option("--dry-run", is_flag=True, help="print what would be freed; change nothing")
@click.option("--no-vacuum", is_flag=True, help="leave the freed pages to later writes")
@_policy_options
@click.pass_obj
def thin(
    settings: Settings,
    run_ids: tuple[str, ...],
    older_than: str | None,
    dry_run: bool,
    no_vacuum: bool,
    every: str | None,
    log_points: str | None,
) -> None:
    """Thin RUN_IDS, or every run older than --older-than, by the saved policy (docs/admin.md)
    or the --every / --log-points given. Queued and running runs are skipped."""
    from netlens.cli import _fail, _open_db
    from netlens.storage import retention
    from netlens.storage.models import MAX_ID
    from netlens.storage.runs import RunNotFound

    if bool(run_ids) == bool(older_than):
        _fail("give RUN ids or --older-than AGE (e.g. --older-than 30d), not both")
    ids: list[int] = []
    for text in run_ids:
        if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
            _fail(f"RUN: {text!r} is not a run id (a whole number from 1 to {MAX_ID})")
        ids.append(int(text))
    db = _open_db(settings)
    policy = _policy(db, every, log_points)
    if older_than is not None:
        try:
            age = (
                None if older_than == "policy" else retention.parse_age(older_than, "--older-than")
            )
        except retention.RetentionError as exc:
            _fail(str(exc))
        age = age if age is not None else retention.parse_age(f"{policy.keep_days}d")
        ids = retention.candidates(db, age)
    click.echo(f"policy: {policy.describe()}" + (" (dry run: nothing changes)" if dry_run else ""))
    report = retention.ThinReport([], dry_run, size_before=retention.database_size(db))
    for run_id in ids:
        try:
            result = retention.thin_run(db, run_id, policy, dry_run)
        except RunNotFound:
            _fail(f"RUN: run {run_id} does not exist")
        report.results.append(result)
        if result.skipped:
            click.echo(f"run {run_id}: skipped ({result.skipped})")
        else:
            verb = "would keep" if dry_run else "kept"
            click.echo(
                f"run {run_id} {result.name!r}: {verb} {len(result.kept):,} of "
                f"{result.epochs_before:,} epochs' tensors, "
                f"{'would drop' if dry_run else 'dropped'} {result.dropped:,}, "
                f"{'about ' if dry_run else ''}{retention.human_bytes(result.bytes_freed)}"
            )
    if not dry_run and not no_vacuum and report.thinned:
        report.vacuum = retention.vacuum(db)
        click.echo(report.vacuum)
    if not dry_run:
        report.size_after = retention.database_size(db)
    click.echo(report.summary())


@storage_group.command("policy")
@click.option("--keep-days", "keep_days", help="days a finished run keeps every epoch (>= 0)")
@_policy_options
@click.option(
    "--auto-hours",
    "auto_hours",
    help="the workers thin the due runs every so many hours (0: only by hand, the default)",
)
@click.pass_obj
def policy(
    settings: Settings,
    keep_days: str | None,
    every: str | None,
    log_points: str | None,
    auto_hours: str | None,
) -> None:
    """Show the retention policy, or save the values given (the admin page shows it too)."""
    from netlens.cli import _open_db
    from netlens.storage import retention

    db = _open_db(settings)
    chosen = _policy(db, every, log_points, keep_days, auto_hours)
    if any(v is not None for v in (keep_days, every, log_points, auto_hours)):
        retention.set_policy(db, chosen)
        click.echo("saved")
    for name, value in chosen.to_dict().items():
        click.echo(f"{name.replace('_', '-')}: {value}  ({retention.LIMITS[name][2]})")


@storage_group.command("epochs")
@click.argument("run_id", type=str)
@click.pass_obj
def epochs_with_tensors(settings: Settings, run_id: str) -> None:
    """The epochs of RUN that still have their tensors (all of them unless it was thinned),
    and when and how it was thinned."""
    from netlens.cli import _fail, _open_db
    from netlens.storage import retention, runs
    from netlens.storage.models import MAX_ID

    if not run_id.isdigit() or not 1 <= int(run_id) <= MAX_ID:
        _fail(f"RUN: {run_id!r} is not a run id (a whole number from 1 to {MAX_ID})")
    db = _open_db(settings)
    try:
        info = runs.get_run(db, int(run_id))
    except runs.RunNotFound:
        _fail(f"RUN: run {run_id} does not exist")
    kept = retention.kept_epochs(db, info.id)
    if info.thinned_at is None:
        click.echo(f"run {info.id}: not thinned; tensors at all {len(kept):,} recorded epochs")
    else:
        t = info.thinning or {}
        click.echo(
            f"run {info.id}: thinned {info.thinned_at:%Y-%m-%d %H:%M} UTC by "
            f"{t.get('policy')}; tensors at {len(kept):,} of {info.epochs_recorded:,} epochs"
        )
    click.echo(" ".join(map(str, kept)))
