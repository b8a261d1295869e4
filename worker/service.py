"""Worker processes: a solo-pool Celery worker per process, each with a reaper thread."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

from celery import Celery
from netlens.storage import jobs, workers
from netlens.storage.analyses import ANALYZE_TASK
from netlens.storage.db import Database
from netlens.storage.jobs import TRAIN_TASK, Delivery
from netlens.storage.limits import delete_unused_uploads
from netlens.storage.models import utcnow
from netlens.storage.settings import Settings
from netlens.worker.celery_app import make_celery, send

log = logging.getLogger("netlens.worker")
UPLOAD_CLEANUP_S = 60.0


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


def broker_queue_size(app: Celery, queue: str) -> int | None:
    """Messages waiting in `queue`; 0 when the broker does not know the queue (flushed);
    None when the broker cannot be reached."""
    from kombu.exceptions import ChannelError

    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:
        return 0
    except Exception:
        log.warning("cannot read the size of queue %s", queue, exc_info=True)
        return None


def reap_once(app: Celery, db: Database, settings: Settings,
              suspects: set[Delivery] | None = None) -> int:
    """Requeue jobs whose lease expired, and resend queued jobs whose message was lost
    (broker restarted or flushed): a queued job older than the grace period while its
    broker queue is empty. Duplicate messages are harmless (only one claim succeeds) but
    avoidable: a worker may have just taken the message and not yet claimed the job, so with
    `suspects` (kept by the Reaper between rounds) a job is resent only when a second round
    still finds it queued behind an empty broker queue."""
    resent = jobs.reap_stale(db, settings.lease_seconds)
    grace = utcnow() - timedelta(seconds=2 * settings.heartbeat_seconds)
    waiting = jobs.queued_since(db, grace)
    lost: list[Delivery] = []
    for queue in {d.queue for d in waiting}:
        if broker_queue_size(app, queue) == 0:
            lost += [d for d in waiting if d.queue == queue]
    if suspects is not None:
        confirmed = [d for d in lost if d in suspects]
        suspects.clear()
        suspects.update(d for d in lost if d not in confirmed)
        lost = confirmed
    if lost:
        log.warning("%d queued jobs have no message on the broker: resending", len(lost))
    resent += lost
    for delivery in resent:
        log.info("reaper: sending run %s attempt %s to queue %s", delivery.run_id,
                 delivery.attempt, delivery.queue)
        send(app, delivery)
    jobs.mark_resent(db, resent)
    return len(resent)


class Reaper(threading.Thread):
    def __init__(self, app: Celery, db: Database, settings: Settings):
        super().__init__(name="netlens-reaper", daemon=True)
        self.app, self.db, self.settings = app, db, settings
        self.interval = max(1.0, settings.heartbeat_seconds / 2)
        self._stop_event = threading.Event()
        self._suspects: set[Delivery] = set()

    def run(self) -> None:
        next_cleanup = 0.0  # uploads are checked once a minute, not every round
        while not self._stop_event.is_set():
            try:
                reap_once(self.app, self.db, self.settings, self._suspects)
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + UPLOAD_CLEANUP_S
                    delete_unused_uploads(self.db, self.settings)
            except Exception:  # database or broker down for a moment: next round
                log.exception("reaper round failed")
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()


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


class WorkerHeartbeat(threading.Thread):
    """Reports this worker process in the `workers` table (storage/workers.py) every
    heartbeat period, for the admin page; `stop` marks it stopped (a clean exit)."""

    def __init__(self, db: Database, settings: Settings, name: str, queues: list[str]):
        super().__init__(name="netlens-worker-heartbeat", daemon=True)
        self.db, self.interval = db, max(0.2, settings.heartbeat_seconds)
        self.me = workers.WorkerIdentity(name, socket.gethostname(), os.getpid(), tuple(queues))
        self._stop_event = threading.Event()

    def run(self) -> None:
        self._call(workers.forget_silent, self.db)
        self._call(workers.register, self.db, self.me)
        try:
            device = describe_worker_device()
        except Exception:  # a broken backend shows as such; the worker's jobs will say why
            log.warning("cannot describe the JAX device", exc_info=True)
            device = "unknown"
        self.me = dataclasses.replace(self.me, device=device)
        while not self._stop_event.is_set():
            self._call(workers.heartbeat, self.db, self.me)
            self._stop_event.wait(self.interval)

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # the database is down for a moment: next beat
            log.warning("worker heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)
        self._call(workers.mark_stopped, self.db, self.me.name)


def run_worker(settings: Settings, queues: list[str], name: str | None = None,
               with_reaper: bool = True) -> None:
    """Run one worker in this process until it is stopped."""
    if "gpu" not in queues:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a cpu worker never grabs a GPU
    from netlens.storage.migrate import ensure_schema
    from netlens.worker.runner import enable_compile_cache

    db = Database.from_settings(settings)
    ensure_schema(db, auto_upgrade=db.is_sqlite)
    enable_compile_cache(settings.home / "jax-cache")
    name = name or f"netlens-{os.getpid()}@{socket.gethostname()}"
    app = make_celery(settings)
    register_tasks(app, settings, db, worker_id=name)
    heartbeat = WorkerHeartbeat(db, settings, name, queues)
    heartbeat.start()
    if settings.analyze_after_training:
        threading.Thread(target=_warm_up_analyses, name="umap-warm-up", daemon=True).start()
    # The reaper gets a Celery app of its own: kombu connections and pools are not shared
    # between this thread and the worker's consumer, which is still starting up when the
    # reaper's first requeue may be sent.
    reaper = Reaper(make_celery(settings), db, settings) if with_reaper else None
    if reaper:
        reaper.start()
    try:
        app.worker_main(["worker", "--pool=solo", "--concurrency=1", f"--queues={','.join(queues)}",
                         "--without-mingle", "--without-gossip", f"--hostname={name}",
                         "--loglevel=INFO", "--prefetch-multiplier=1"])
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


def _spawn_workers(queues: list[str], count: int) -> list[subprocess.Popen]:
    host = socket.gethostname()
    return [subprocess.Popen([sys.executable, "-m", "netlens.cli", "worker",
                              f"--queues={','.join(queues)}", "--concurrency=1",
                              f"--name=netlens-{i}-{os.getpid()}@{host}"])
            for i in range(count)]


def _forward_signals(children: list[subprocess.Popen]) -> None:
    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)


def run_workers(queues: list[str], concurrency: int) -> int:
    """JAX does not survive fork: scale with processes, each a solo worker."""
    children = _spawn_workers(queues, concurrency)
    _forward_signals(children)
    return max(child.wait() for child in children)


def serve_forever(settings: Settings, workers: int, queues: list[str],
                  web: tuple[str, int] | None) -> int:
    """The embedded default and the lab server's entry point: the web app (in this process,
    which never imports JAX) and local worker processes (real Celery workers on the
    configured broker), until stopped. With no local workers, a reaper runs here."""
    children = _spawn_workers(queues, workers)
    _forward_signals(children)
    if workers == 0:
        Reaper(make_celery(settings), Database.from_settings(settings), settings).start()
    try:
        if web is not None:
            _serve_web(settings, *web)
        elif children:
            return max(child.wait() for child in children)
        else:
            threading.Event().wait()
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait(30)
    return 0


def _serve_web(settings: Settings, host: str, port: int) -> None:
    from netlens.webapp.app import create_app
    from netlens.webapp.single_user import login_reason
    from waitress import serve

    app = create_app(settings, bind_host=host)
    reason = login_reason(settings, host)
    mode = (f"login required: {reason}" if reason else
            "single-user mode, no login: loopback only, Host localhost/127.0.0.1/[::1]")
    print(f"NetLens is running at http://{host}:{port}/ ({mode})", flush=True)
    # Proxy headers reach the app: ProxyFix reads them (NETLENS_PROXY_HOPS), and single-user
    # mode refuses requests that carry them (waitress would drop them unseen by default).
    serve(app.server, host=host, port=port, threads=8, _quiet=True,
          clear_untrusted_proxy_headers=False)
