"""Worker processes: a solo-pool Celery worker per process, each with a reaper thread and a
heartbeat (both in netlens/dispatch/). Several processes, and `netlens serve`, are started by
netlens/serve.py."""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import worker_ready, worker_shutting_down

from netlens.dispatch.celery_app import ANALYZE_TASK, TRAIN_TASK, make_celery
from netlens.dispatch.heartbeat import WorkerHeartbeat
from netlens.dispatch.reaper import Reaper
from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.worker.events import events, show_events
from netlens.worker.jobs import SHUTTING_DOWN

log = logging.getLogger("netlens.worker")


def register_tasks(app: Celery, settings: Settings, db: Database, worker_id: str) -> None:
    # runner is imported now, not between taking a message and claiming its job.
    from netlens.worker import analyze, runner  # noqa: F401
    from netlens.worker.jobs import execute

    @app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True)
    def train_run(run_id: int, attempt: int) -> str:
        return execute(db, settings, run_id, attempt, worker_id)

    @app.task(name=ANALYZE_TASK, acks_late=True, reject_on_worker_lost=True)
    def analyze_run(run_id: int, kind: str, epoch: int) -> str:
        return analyze.execute(db, run_id, kind, epoch, worker_id)


def describe_worker_device() -> str:
    """The JAX default backend and its device kind: "cpu", or e.g. "gpu: NVIDIA H100 80GB HBM3"
    (" x2" when JAX sees two). Initialises JAX's backend; only worker processes call it."""
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        return "cpu"
    devices = jax.devices()
    kind = getattr(devices[0], "device_kind", "") or backend
    return f"{backend}: {kind}" + (f" x{len(devices)}" if len(devices) > 1 else "")


def celery_worker_argv(queues: list[str], name: str, verbose: bool) -> list[str]:
    """Celery's command line. Quiet by default: `-q` drops the banner and WARNING drops the
    INFO line Celery writes per task received and per task done (events.py says those)."""
    return [
        *([] if verbose else ["-q"]),
        "worker",
        "--pool=solo",
        "--concurrency=1",
        f"--queues={','.join(queues)}",
        "--without-mingle",
        "--without-gossip",
        f"--hostname={name}",
        f"--loglevel={'INFO' if verbose else 'WARNING'}",
        "--prefetch-multiplier=1",
    ]


def _quiet_celery_warnings() -> None:
    """Celery warns (SecurityWarning) whenever a worker runs as root, as it does in a container
    or a dev box. The danger it names is unpickling a message from the broker as root; these
    workers accept JSON only (celery_app.make_celery), and Celery itself refuses to start as
    root with pickle enabled, so the warning has nothing to tell here. --verbose keeps it
    and kombu's note below."""
    warnings.filterwarnings("ignore", category=SecurityWarning)
    # kombu asks a filesystem:// broker for a host name it does not have, at every report.
    logging.getLogger("kombu.connection").addFilter(
        lambda record: not record.getMessage().startswith("No hostname was supplied")
    )


def run_worker(
    settings: Settings,
    queues: list[str],
    name: str | None = None,
    with_reaper: bool = True,
    verbose: bool = False,
) -> None:
    """Run one worker in this process until it is stopped."""
    show_events()
    if not verbose:
        _quiet_celery_warnings()
    if "gpu" not in queues:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a cpu worker never grabs a GPU
    from netlens.storage.migrate import ensure_schema
    from netlens.worker.runner import enable_compile_cache

    db = Database.from_settings(settings)
    ensure_schema(db, auto_upgrade=db.is_sqlite)
    enable_compile_cache(settings.home / "jax-cache")
    from netlens.worker.analyze import use_numba_cache

    use_numba_cache(settings.home)
    name = name or f"netlens-{os.getpid()}@{socket.gethostname()}"
    app = make_celery(settings)
    register_tasks(app, settings, db, worker_id=name)
    heartbeat = WorkerHeartbeat(db, settings, name, queues, describe_worker_device)
    heartbeat.start()
    if settings.analyze_after_training:
        threading.Thread(target=_warm_up_analyses, name="umap-warm-up", daemon=True).start()
    # The reaper gets a Celery app of its own: kombu connections and pools are not shared
    # between this thread and the worker's consumer, which is still starting up when the
    # reaper's first requeue may be sent.
    reaper = Reaper(make_celery(settings), db, settings) if with_reaper else None
    if reaper:
        reaper.start()

    @worker_ready.connect(weak=False)
    def announce(**_kw) -> None:
        events.info("worker %s ready (queues %s, solo pool)", name, ",".join(queues))

    @worker_shutting_down.connect(weak=False)
    def release_on_shutdown(sig=None, how=None, **_kw) -> None:
        """SIGTERM (warm) or SIGINT: the running job stops after its current chunk and goes
        back to the queue (worker/jobs.py SHUTTING_DOWN); Celery then exits."""
        SHUTTING_DOWN.set()
        events.info("worker %s: %s shutdown (%s): releasing its job", name, how, sig)

    try:
        app.worker_main(celery_worker_argv(queues, name, verbose))
    finally:
        if reaper:
            reaper.stop()
        heartbeat.stop()
        db.dispose()


def _warm_up_analyses() -> None:
    """UMAP's first fit in a process compiles for 12-15 s (numba): pay it once, at the lowest
    CPU priority, before the first analysis job needs it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        from netlens.worker.signatures import warm_up

        warm_up()
    except Exception:  # only an optimisation: the first analysis then compiles instead
        log.warning("UMAP warm-up failed", exc_info=True)
