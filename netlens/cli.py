"""The `netlens` command line. Heavy modules (JAX) are imported only by commands that train."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from netlens.figure_cli import figure
from netlens.limits_cli import limits
from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.storage.spec import ExperimentSpec, SpecError
from netlens.storage_cli import storage_group

EXIT_BAD_INPUT = 2
EXIT_RUN_NOT_SUCCEEDED = 1


def _open_db(settings: Settings, migrate: bool = True) -> Database:
    from netlens.storage.migrate import SchemaOutOfDate, ensure_schema

    db = Database.from_settings(settings)
    if migrate:
        try:
            ensure_schema(db, auto_upgrade=db.is_sqlite)
        except SchemaOutOfDate as exc:
            raise click.ClickException(str(exc)) from None
    return db


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load_spec(spec_file: str | None, preset: str | None, overrides: dict) -> ExperimentSpec:
    from netlens.storage.presets import get_preset
    from netlens.storage.spec import check_trainable, load_spec_file, parse_spec

    if bool(spec_file) == bool(preset):
        _fail("give either a SPEC_FILE or --preset NAME (see `netlens presets`)")
    spec = load_spec_file(spec_file) if spec_file else get_preset(preset)
    data = spec.model_dump()
    for section, key, value in (
        ("training", "epochs", overrides.get("epochs")),
        ("training", "seed", overrides.get("seed")),
        (None, "name", overrides.get("name")),
    ):
        if value is not None:
            (data[section] if section else data)[key] = value
    return check_trainable(parse_spec(data))  # a flax model is the user's code's to train


def _check_local_data(settings: Settings, specs: list[ExperimentSpec]) -> None:
    """Fail before anything is queued when a spec needs MNIST files this machine lacks: the
    run would only fail later in the worker, with the same message (it names `netlens data
    get`). Uploads are the server's copies and are checked where they are stored. Only for
    workers on this machine: `train`, or submit/sweep with the filesystem broker (with a
    NETLENS_BROKER_URL the workers, and their data folders, may be elsewhere)."""
    from netlens.worker.datasets.base import DatasetError
    from netlens.worker.datasets.mnist import locate

    for spec in specs:
        ds = spec.dataset
        if ds.name in ("mnist", "fashion-mnist") and ds.upload is None:
            try:
                locate(ds.name, ds.path, settings.resolved_data_dir)
            except DatasetError as exc:
                _fail(str(exc))


@click.group()
@click.version_option(package_name="netlens")
@click.pass_context
def main(ctx: click.Context) -> None:
    """NetLens: train networks and record every epoch's parameters, metrics and signatures."""
    ctx.obj = Settings()


def spec_options(command):
    """SPEC_FILE or --preset NAME, with the overrides every command that takes a spec has."""
    for decorator in reversed(
        [
            click.argument("spec_file", required=False, type=click.Path(dir_okay=False)),
            click.option("--preset", help="A named preset instead of a spec file."),
            click.option("--epochs", type=int, help="Override training.epochs."),
            click.option("--seed", type=int, help="Override training.seed."),
            click.option("--name", help="Name of the run."),
        ]
    ):
        command = decorator(command)
    return command


@main.command()
@spec_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def train(settings: Settings, spec_file, preset, epochs, seed, name, quiet) -> None:
    """Train SPEC_FILE (YAML or JSON) or --preset NAME in this process.

    The last line printed on standard output is the run id alone.
    """
    try:
        spec = _load_spec(spec_file, preset, {"epochs": epochs, "seed": seed, "name": name})
    except SpecError as exc:
        _fail(str(exc))
    _check_local_data(settings, [spec])
    from netlens.storage.runs import create_run, get_run
    from netlens.worker.progress import ProgressBar
    from netlens.worker.runner import enable_compile_cache, run_experiment

    db = _open_db(settings)
    enable_compile_cache(settings.home / "jax-cache")
    run_id = create_run(db, spec, status="queued")
    click.echo(
        f"run {run_id}: training {spec.name or 'unnamed'} "
        f"({spec.model.describe()}, {spec.training.epochs} epochs)",
        err=True,
    )
    with ProgressBar(spec.training.epochs, disable=quiet) as bar:
        status = run_experiment(db, run_id, settings.resolved_data_dir, on_progress=bar.update)
    info = get_run(db, run_id)
    summary = ", ".join(f"{k} {v:.4g}" for k, v in info.final_metrics.items() if v is not None)
    click.echo(
        f"run {run_id} {status}: {info.epochs_recorded} epochs recorded; {summary}", err=True
    )
    if info.error:
        click.echo(info.error.split("\n\n")[0], err=True)
    click.echo(str(run_id))
    if status != "succeeded":
        sys.exit(EXIT_RUN_NOT_SUCCEEDED)


@main.command()
@spec_options
@click.option("--server", metavar="URL", help="Submit to the NetLens at URL (REST API).")
@click.option("--token", help="API token for --server (default: $NETLENS_TOKEN).")
@click.pass_obj
def submit(settings: Settings, spec_file, preset, epochs, seed, name, server, token) -> None:
    """Queue SPEC_FILE or --preset NAME for the workers. The last line printed is the run id.

    With --server URL, the spec is checked here and queued on that server as the token's user.
    """
    if token and not server:
        _fail("--token: only used with --server URL")
    try:
        spec = _load_spec(spec_file, preset, {"epochs": epochs, "seed": seed, "name": name})
    except SpecError as exc:
        _fail(str(exc))
    if server:
        from netlens.remote import RemoteError, connect

        try:
            run_id = connect(server, token).submit(spec)
        except RemoteError as exc:
            _fail(str(exc), exc.exit_code)
        click.echo(f"run {run_id} queued on {server.rstrip('/')}", err=True)
        click.echo(str(run_id))
        return
    if not settings.broker_url:
        _check_local_data(settings, [spec])
    from netlens.dispatch.submission import submit_spec

    run_id = submit_spec(_open_db(settings), settings, spec)
    click.echo(f"run {run_id} queued", err=True)
    click.echo(str(run_id))


@main.command()
@spec_options
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="FIELD=V1,V2,...",
    help="A swept field and its values, e.g. optimizer.learning_rate=0.001,0.01; "
    "1 to 3 of them (model.width sets every hidden layer's units).",
)
@click.option("--dry-run", is_flag=True, help="Print the runs without submitting them.")
@click.pass_obj
def sweep(settings: Settings, spec_file, preset, epochs, seed, name, grid, dry_run) -> None:
    """Queue one run per point of a grid over SPEC_FILE or --preset NAME, as one group.

    Prints one line per run, then the group and its page. Nothing is queued when any value
    is invalid (at most 3 axes and 200 runs)."""
    from netlens.storage.sweep import SweepError, expand_grid, parse_axes, parse_grid_option

    try:
        base = _load_spec(spec_file, preset, {"epochs": epochs, "seed": seed, "name": name})
        axes = parse_axes(base, [parse_grid_option(text) for text in grid])
        specs = expand_grid(base, axes)
    except SweepError as exc:
        for line in exc.errors:
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except SpecError as exc:
        _fail(str(exc))
    if dry_run:
        from netlens.storage.sizing import dataset_shape

        for i, spec in enumerate(specs, start=1):
            features, classes, _ = dataset_shape(spec)
            shape = spec.model.describe(features, 1 if classes == 2 else classes)
            click.echo(f"{i:>4}  {spec.name}  ({shape}, {spec.training.epochs} epochs)")
        click.echo(f"{len(specs)} runs; dry run: nothing submitted")
        return
    if not settings.broker_url:
        _check_local_data(settings, specs)
    from netlens.dispatch.submission import submit_sweep

    group_id, run_ids = submit_sweep(_open_db(settings), settings, base, axes)
    for run_id, spec in zip(run_ids, specs, strict=True):  # the same grid order
        click.echo(f"run {run_id:>4}  {spec.name}")
    click.echo(f"group {group_id}: {len(run_ids)} runs queued; page /groups/{group_id}")


@main.command()
@click.argument("run_id", type=int)
@click.pass_obj
def cancel(settings: Settings, run_id: int) -> None:
    """Cancel a queued run, or stop a running one after its current epoch."""
    from netlens.storage.jobs import JobStateError, request_cancel
    from netlens.storage.runs import RunNotFound

    try:
        click.echo(f"run {run_id}: {request_cancel(_open_db(settings), run_id)}")
    except (JobStateError, RunNotFound) as exc:
        _fail(str(exc))


@main.command()
@click.argument("run_id", type=int)
@click.option("--from-scratch", is_flag=True, help="Drop the recorded epochs and start again.")
@click.pass_obj
def retry(settings: Settings, run_id: int, from_scratch: bool) -> None:
    """Queue a new attempt of a failed or cancelled run (continues from its last epoch)."""
    from netlens.dispatch.submission import retry_run
    from netlens.storage.jobs import JobStateError
    from netlens.storage.runs import RunNotFound

    try:
        attempt = retry_run(_open_db(settings), settings, run_id, from_scratch)
    except (JobStateError, RunNotFound) as exc:
        _fail(str(exc))
    click.echo(f"run {run_id}: attempt {attempt} queued")


@main.command()
@click.option("--queues", default="cpu", show_default=True, help="Comma-separated: cpu, gpu.")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each trains one job at a time).",
)
@click.option("--name", help="Worker name (default netlens-PID@HOST).")
@click.option(
    "--verbose", is_flag=True, help="Celery's banner, warnings and per-task INFO lines too."
)
@click.pass_obj
def worker(
    settings: Settings, queues: str, concurrency: int, name: str | None, verbose: bool
) -> None:
    """Run training workers for the job queue: one line per event (worker ready, run started,
    run ended with its status, analysis done); --verbose for Celery's own output."""
    from netlens.serve import run_workers
    from netlens.worker.service import run_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [q for q in names if q not in ("cpu", "gpu")]
    if bad or not names:
        _fail(f"--queues: {queues!r}: each queue must be cpu or gpu")
    if concurrency > 1:
        sys.exit(run_workers(names, concurrency, verbose))
    run_worker(settings, names, name, verbose=verbose)


@main.command()
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Local worker processes to start (0: rely on workers elsewhere).",
)
@click.option("--queues", default="cpu", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web app.")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--no-web", is_flag=True, help="Run only the workers (and reaper).")
@click.option(
    "--verbose", is_flag=True, help="Celery's banner, warnings and per-task INFO lines too."
)
@click.pass_obj
def serve(
    settings: Settings,
    workers: int,
    queues: str,
    host: str,
    port: int,
    no_web: bool,
    verbose: bool,
) -> None:
    """Start NetLens: the web app and local workers on the configured broker (default: an
    embedded filesystem broker and SQLite in NETLENS_HOME, no servers needed). Prints one line
    per event; --verbose adds the workers' Celery banner and per-task log lines."""
    from netlens.serve import serve_forever

    db = _open_db(settings)
    db.dispose()
    click.echo(
        f"NetLens: database {_safe_url(db.url)}, broker "
        f"{settings.resolved_broker_url.split('@')[-1]}, {workers} local worker(s)",
        err=True,
    )
    web = None if no_web else (host, port)
    queue_names = [q.strip() for q in queues.split(",")]
    sys.exit(serve_forever(settings, workers, queue_names, web, verbose))


@main.command()
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.pass_obj
def reaper(settings: Settings, once: bool) -> None:
    """Requeue jobs whose worker died, and resend jobs whose broker message was lost.

    Every worker already runs one; this is for deployments that want it separate.
    """
    from netlens.dispatch.celery_app import make_celery
    from netlens.dispatch.reaper import Reaper, reap_once

    db, app = _open_db(settings), make_celery(settings)
    if once:
        click.echo(f"requeued or resent {reap_once(app, db, settings)} jobs")
        return
    thread = Reaper(app, db, settings)
    thread.run()


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
def validate(spec_file: str) -> None:
    """Check a spec file without running anything."""
    from netlens.storage.spec import load_spec_file

    try:
        spec = load_spec_file(spec_file)
    except SpecError as exc:
        _fail(str(exc))
    click.echo(f"ok: {spec.dataset.name}, {spec.model.describe()}, {spec.training.epochs} epochs")


@main.command()
def presets() -> None:
    """List the presets."""
    from netlens.storage.presets import get_preset, preset_description, preset_names

    for name in preset_names():
        spec = get_preset(name)
        click.echo(
            f"{name:<12} {spec.model.describe():<16} {spec.training.epochs:>6} epochs  "
            f"{preset_description(name)}"
        )


@main.command("runs")
@click.option("--limit", default=30, show_default=True)
@click.option("--status", help="Only runs with this status.")
@click.option("--group", "group", type=int, help="Only runs of this group (sweep).")
@click.option(
    "--where",
    metavar="EXPR",
    help="Only runs matching a filter expression (docs/filter.md), e.g. "
    "'dataset = digits and val_accuracy > 0.9 and tag:preset'.",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--server", metavar="URL", help="List the runs of the NetLens at URL (REST API).")
@click.option("--token", help="API token for --server (default: $NETLENS_TOKEN).")
@click.pass_obj
def runs_cmd(
    settings: Settings,
    limit: int,
    status: str | None,
    group: int | None,
    where: str | None,
    as_json: bool,
    server: str | None,
    token: str | None,
) -> None:
    """A table of the most recent runs."""
    from netlens.storage.run_filter import FilterError, parse

    if token and not server:
        _fail("--token: only used with --server URL")
    try:  # before any connection: the error names the token and its column
        parse(where or "")
    except FilterError as exc:
        _fail(f"--where: {exc.message}")
    if server:
        from netlens.remote import RemoteError, connect

        try:
            items = connect(server, token).list_runs(limit, status, group, where)
        except RemoteError as exc:
            _fail(str(exc), exc.exit_code)
    else:
        from netlens.storage.groups import GroupNotFound, get_group
        from netlens.storage.runs import runs_page

        db = _open_db(settings)
        if group is not None:
            try:
                get_group(db, group)
            except GroupNotFound as exc:
                _fail(str(exc))
        try:
            items, _total = runs_page(db, limit=limit, status=status, group=group, where=where)
        except ValueError as exc:  # a status that is none
            _fail(str(exc))
    if as_json:
        click.echo(json.dumps([_show_dict(r) for r in items], indent=1))
        return
    click.echo(
        f"{'id':>5}  {'status':<10} {'dataset':<13} {'architecture':<18} "
        f"{'epochs':>13}  {'loss':>8} {'acc':>6}  {'created':<16}  name"
    )
    for r in items:
        loss, acc = r.final_metrics["train_loss"], r.final_metrics["train_accuracy"]
        click.echo(
            f"{r.id:>5}  {r.status:<10} {r.dataset:<13} {r.architecture[:18]:<18} "
            f"{(r.last_epoch or 0):>6}/{r.epochs_total:<6}  "
            f"{'' if loss is None else f'{loss:.4f}':>8} "
            f"{'' if acc is None else f'{acc:.3f}':>6}  "
            f"{r.created_at:%Y-%m-%d %H:%M}  {r.name}"
        )


def _show_dict(info) -> dict:
    out = info.to_dict()
    out["epochs_recorded"], out["epochs_total"] = info.epochs_recorded, info.epochs_total
    return out


@main.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(settings: Settings, run_id: int, as_json: bool) -> None:
    """Details of one run."""
    from netlens.storage.runs import RunNotFound, get_run

    try:
        info = get_run(_open_db(settings), run_id)
    except RunNotFound as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(_show_dict(info), indent=1))
        return
    for key in (
        "id",
        "name",
        "status",
        "dataset",
        "architecture",
        "optimizer",
        "device",
        "epochs_recorded",
        "epochs_total",
        "last_epoch",
        "recorded_bytes",
        "data_sha256",
        "created_at",
        "started_at",
        "finished_at",
    ):
        click.echo(f"{key:>16}: {getattr(info, key)}")
    for key, value in info.final_metrics.items():
        click.echo(f"{key:>16}: {value}")
    click.echo(
        f"{'layers':>16}: "
        + ", ".join(f"{x['name']}({x['units']} {x['activation']})" for x in info.layers)
    )
    if info.error:
        click.echo(f"{'error':>16}: {info.error}")


@main.command()
@click.argument("run_id", type=int)
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--compress", is_flag=True, help="Write a compressed .npz (smaller, slower).")
@click.option("--server", metavar="URL", help="Download from the NetLens at URL (REST API).")
@click.option("--token", help="API token for --server (default: $NETLENS_TOKEN).")
@click.pass_obj
def export(
    settings: Settings, run_id: int, out: str, compress: bool, server: str | None, token: str | None
) -> None:
    """Export RUN_ID to OUT.npz (format: docs/export-format.md)."""
    from netlens.storage.export import export_run
    from netlens.storage.runs import RunNotFound

    if token and not server:
        _fail("--token: only used with --server URL")
    started = time.perf_counter()
    try:
        if server:
            from netlens.remote import RemoteError, connect

            try:
                path = connect(server, token).export(run_id, out, compress=compress)
            except RemoteError as exc:
                _fail(str(exc), exc.exit_code)
        else:
            path = export_run(_open_db(settings), run_id, out, compress=compress)
    except RunNotFound as exc:
        _fail(str(exc))
    click.echo(
        f"wrote {path} ({Path(path).stat().st_size / 1024**2:.1f} MiB) "
        f"in {time.perf_counter() - started:.1f} s",
        err=True,
    )
    click.echo(str(path))


@main.command()
@click.argument("run_id", type=int)
@click.option("--epoch", type=int, help="Recorded epoch to analyse (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole stored summary as JSON.")
@click.option("--force", is_flag=True, help="Compute again even when a result is stored.")
@click.option(
    "--methods",
    default="",
    metavar="tsne,umap",
    help="Also compute these projections of the epoch (slow: seconds per layer; the default "
    "analysis projects by PCA only).",
)
@click.pass_obj
def analyze(
    settings: Settings, run_id: int, epoch: int | None, as_json: bool, force: bool, methods: str
) -> None:
    """Signature analyses of RUN_ID at one epoch: clusters, separability, unseen classes,
    PCA projections; t-SNE / UMAP with --methods.

    Computed here and stored, unless a worker already stored them (t-SNE takes seconds per
    layer; UMAP's first fit compiles once, then numba's cache keeps it); the run page shows
    the same results."""
    from netlens.dispatch.analysis_requests import (
        AnalysisError,
        projection_methods,
        resolve_epoch,
        with_projections,
    )
    from netlens.worker.analyze import use_numba_cache

    use_numba_cache(settings.home)
    try:
        asked = projection_methods(methods)
    except AnalysisError as exc:
        _fail(f"--{exc}")
    from netlens.storage import analyses
    from netlens.storage.runs import RunNotFound, get_run
    from netlens.worker.analyze import run_analysis
    from netlens.worker.signatures import describe

    db = _open_db(settings)
    try:
        run = get_run(db, run_id)
        epoch = resolve_epoch(db, run, epoch)
        last = resolve_epoch(db, run, None)
    except (RunNotFound, AnalysisError) as exc:
        _fail(str(exc))
    wanted = [("epoch", epoch)] + ([("timeline", last)] if epoch == last else [])
    wanted += [(method, epoch) for method in asked]
    for kind, at in wanted:
        stored = analyses.get(db, run_id, kind, at)
        if force or stored is None or stored.state != "done":
            click.echo(f"analysing run {run_id}: {kind} at epoch {at} ...", err=True)
            try:
                run_analysis(db, run_id, kind, at)
            except AnalysisError as exc:
                _fail(str(exc))
    summary = analyses.get(db, run_id, "epoch", epoch).summary
    projected = {m: analyses.get(db, run_id, m, epoch).summary for m in asked}
    if as_json:  # the on-demand projections' summaries beside PCA's
        click.echo(json.dumps(with_projections(summary, projected), indent=1))
    else:
        click.echo(
            f"run {run_id} at epoch {epoch}: {summary['n_probe']} probe inputs "
            f"({summary['n_ood']} of unseen classes)"
        )
        click.echo(describe(summary))
        for method, found in projected.items():
            click.echo(
                f"\n{method}: {', '.join(found['layers'])} projected in {found['seconds']:.1f} s"
            )


@main.group()
def users() -> None:
    """Accounts of a team server: add, list, set a password, disable, enable."""


def _read_password(from_stdin: bool) -> str:
    """The password from a piped stdin (one line) or asked twice on a terminal.

    A pipe is read without --password-stdin too: `echo pw | netlens users add alice` is
    what people type, and a prompt on a closed pipe would only answer "Aborted!".
    """
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            _fail("password: nothing on stdin (pipe one line, or run on a terminal to be asked)")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _user_call(fn, *args) -> None:
    from netlens.storage.users import UserError

    try:
        fn(*args)
    except UserError as exc:
        _fail(str(exc))


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see and steer every run and the job queue.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password as one line from stdin, even on a terminal (a pipe is read anyway).",
)
@click.pass_obj
def users_add(settings: Settings, name: str, admin: bool, password_stdin: bool) -> None:
    """Add a user.

    On a terminal the password is asked twice; piped in (`echo PW | netlens users add NAME`)
    it is read as one line. Either way it must pass the same length rules.
    """
    from netlens.storage.users import check_name, create_user

    _user_call(check_name, name)
    password = _read_password(password_stdin)
    _user_call(create_user, _open_db(settings), name, password, admin)
    click.echo(f"user {name} added{' (admin)' if admin else ''}")


@users.command("list")
@click.pass_obj
def users_list(settings: Settings) -> None:
    from netlens.storage.users import list_users

    for user in list_users(_open_db(settings)):
        flags = ", ".join(
            f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on
        )
        click.echo(f"{user.id:>4}  {user.name:<40} {flags}")


@users.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password as one line from stdin, even on a terminal (a pipe is read anyway).",
)
@click.pass_obj
def users_passwd(settings: Settings, name: str, password_stdin: bool) -> None:
    """Set a user's password; their browser sessions end.

    The password is asked twice on a terminal, or read as one line from a pipe.
    """
    from netlens.storage.users import set_password

    _user_call(set_password, _open_db(settings), name, _read_password(password_stdin))
    click.echo(f"password of {name} changed")


@users.command("disable")
@click.argument("name")
@click.pass_obj
def users_disable(settings: Settings, name: str) -> None:
    """Disable a user: no login, sessions end, tokens stop working (runs are kept)."""
    from netlens.storage.users import set_disabled

    _user_call(set_disabled, _open_db(settings), name, True)
    click.echo(f"user {name} disabled")


@users.command("enable")
@click.argument("name")
@click.pass_obj
def users_enable(settings: Settings, name: str) -> None:
    from netlens.storage.users import set_disabled

    _user_call(set_disabled, _open_db(settings), name, False)
    click.echo(f"user {name} enabled")


@users.command("throttles")
@click.option("--clear", "key", default=None, help="Forget one throttle key (as listed).")
@click.option("--clear-all", is_flag=True, help="Forget every throttle.")
@click.pass_obj
def users_throttles(settings: Settings, key: str | None, clear_all: bool) -> None:
    """Failed logins counted per (name, address) and per address (docs/team-server.md)."""
    from netlens.storage import throttle
    from netlens.storage.models import utcnow

    db = _open_db(settings)
    if key is not None or clear_all:
        removed = throttle.clear(db, None if clear_all else key)
        if key is not None and not removed:
            _fail(f"key: no throttle {key!r} (see `netlens users throttles`)")
        click.echo(f"{removed} throttle(s) cleared")
        return
    for t in throttle.list_throttles(db, policy=throttle.Policy.from_settings(settings)):
        is_blocked = t.blocked_until is not None and t.blocked_until > utcnow()
        blocked = f"blocked until {t.blocked_until:%H:%M:%S}" if is_blocked else ""
        click.echo(
            f"{t.key:<60} {t.failures:>4} failures since {t.window_start:%H:%M:%S} {blocked}"
        )


@main.group()
def tokens() -> None:
    """REST API tokens (per user, revocable)."""


def _expiry(text: str | None):
    """ "30d" or "12h" from now (None: never)."""
    import re
    from datetime import timedelta

    from netlens.storage.models import utcnow

    if text is None:
        return None
    match = re.fullmatch(r"(\d{1,4})([dh])", text.strip())
    if not match or int(match.group(1)) == 0:
        _fail("expires: a number of days or hours, e.g. 30d or 12h (at most 366d)")
    unit = "days" if match.group(2) == "d" else "hours"
    return utcnow() + timedelta(**{unit: int(match.group(1))})


@tokens.command("create")
@click.argument("user")
@click.option("--label", default="", help="What the token is for.")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    default="write",
    show_default=True,
    help="read: GET and HEAD only.",
)
@click.option("--expires", default=None, help="Lifetime, e.g. 30d or 12h (default: none).")
@click.pass_obj
def tokens_create(
    settings: Settings, user: str, label: str, scope: str, expires: str | None
) -> None:
    """Create a token for USER; it is printed once (last stdout line) and never stored."""
    from netlens.storage.users import UserError, create_token, get_user_by_name

    db = _open_db(settings)
    info = get_user_by_name(db, user)
    if info is None:
        _fail(f"user: no user named {user!r}")
    try:
        token_id, secret = create_token(db, info.id, label, scope, _expiry(expires))
    except UserError as exc:
        _fail(str(exc))
    click.echo(f"token {token_id} for {user}; keep it secret, it is not shown again:", err=True)
    click.echo(secret)


@tokens.command("list")
@click.argument("user", required=False)
@click.pass_obj
def tokens_list(settings: Settings, user: str | None) -> None:
    from netlens.storage.users import get_user_by_name, list_tokens, user_names

    db = _open_db(settings)
    user_id = None
    if user:
        info = get_user_by_name(db, user)
        if info is None:
            _fail(f"user: no user named {user!r}")
        user_id = info.id
    names = user_names(db)
    for t in list_tokens(db, user_id):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "live"
        expiry = f"expires {t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "no expiry"
        click.echo(
            f"{t.id:>4}  {names.get(t.user_id, '?'):<20} {t.name:<30} {t.scope:<6} "
            f"{expiry:<27} {state}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def tokens_revoke(settings: Settings, token_id: int) -> None:
    from netlens.storage.users import LOCAL, revoke_token

    _user_call(revoke_token, _open_db(settings), token_id, LOCAL)
    click.echo(f"token {token_id} revoked")


main.add_command(limits)
main.add_command(figure)
main.add_command(storage_group)


@main.group()
def data() -> None:
    """Datasets read from files: download MNIST / Fashion-MNIST, see what is present."""


@data.command("get")
@click.argument("name", type=click.Choice(["mnist", "fashion-mnist"]))
@click.option(
    "--dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder (default: $NETLENS_DATA_DIR or $NETLENS_HOME/data); files go in DIR/NAME/.",
)
@click.option("--source", metavar="URL", help="A mirror's base URL holding the four .gz files.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON {file: sha256} to check against instead of NetLens's pinned sums (a mirror "
    "serving other files).",
)
@click.option("--force", is_flag=True, help="Download again even if verified files are there.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def data_get(settings: Settings, name, data_dir, source, manifest, force, quiet) -> None:
    """Download NAME's four IDX files, check their sha256 and put them where NetLens reads them.

    A broken download resumes when run again. Offline, it prints the URLs and sums to fetch
    the files by hand and the folder to put them in.
    """
    from netlens.datafetch import DataGetError, get_dataset, read_manifest

    folder = data_dir or settings.resolved_data_dir
    try:
        hashes = read_manifest(manifest) if manifest else None
        if hashes is not None:
            click.echo(f"checking against the sha256 sums in {manifest}, not NetLens's", err=True)
        where = get_dataset(
            name,
            folder,
            source=source,
            manifest=hashes,
            force=force,
            progress=not quiet and sys.stderr.isatty(),
            say=lambda line: click.echo(line, err=True),
        )
    except DataGetError as exc:
        _fail(str(exc), 1)
    click.echo(f"{name}: ready in {where}")


@data.command("list")
@click.option("--dir", "data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def data_list(settings: Settings, data_dir) -> None:
    """The datasets read from files, present or missing, and the folder each is read from."""
    from netlens.datafetch import REMOTES, dataset_status

    folder = data_dir or settings.resolved_data_dir
    click.echo(f"data folder: {folder}")
    for name in REMOTES:
        state, note = dataset_status(name, folder)
        hint = "" if state == "present" else f"; `netlens data get {name}`"
        click.echo(f"{name:<14} {state:<8} {folder / name}/  ({note}{hint})")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@click.pass_obj
def upgrade(settings: Settings) -> None:
    """Migrate the database (NETLENS_DATABASE_URL, default SQLite) to the latest schema."""
    from netlens.storage.migrate import current_revision
    from netlens.storage.migrate import upgrade as do_upgrade

    database = Database.from_settings(settings)
    do_upgrade(database)
    click.echo(f"database at revision {current_revision(database)}: {_safe_url(database.url)}")


@db.command()
@click.pass_obj
def current(settings: Settings) -> None:
    """Print the schema revision of the database and the latest one."""
    from netlens.storage.migrate import current_revision, head_revision

    database = Database.from_settings(settings)
    click.echo(
        f"current {current_revision(database)}, latest {head_revision(database)}: "
        f"{_safe_url(database.url)}"
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
