"""Execute one delivered job: claim it, heartbeat its lease, train with fencing, finish."""

from __future__ import annotations

import logging
import threading
import time
import traceback

from netlens.storage import jobs, runs
from netlens.storage.db import Database, with_retry
from netlens.storage.settings import Settings
from netlens.worker.events import events
from netlens.worker.train import Chunk

log = logging.getLogger("netlens.worker")

# Set when this worker process is asked to shut down (SIGTERM: Docker's and systemd's stop,
# worker/service.py): the running job stops after its current chunk, writes a checkpoint and
# goes back to the queue, so that the stop's grace period is enough (a warm shutdown would
# otherwise wait for the whole job).
SHUTTING_DOWN = threading.Event()


class Lease(threading.Thread):
    """Renews the job's lease every `interval` s and carries progress and cancel requests."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        attempt: int,
        interval: float,
        time_limit_s: float | None = None,
    ):
        super().__init__(name=f"lease-{run_id}", daemon=True)
        self.db, self.run_id, self.attempt, self.interval = db, run_id, attempt, interval
        self.cancel_requested = self.lost = self.timed_out = False
        self._progress: tuple[int, dict] | None = None
        self._stop_event = threading.Event()
        # The hard time limit: training checks the limit after each chunk; a chunk that runs
        # far past it (one huge epoch) is ended from here (see watchdog)
        self.time_limit_s = time_limit_s
        self.hard_deadline = (
            None
            if time_limit_s is None
            else time.monotonic() + time_limit_s + hard_limit_slack(time_limit_s)
        )

    def progress(self, chunk: Chunk) -> None:
        self._progress = (chunk.epochs[-1], chunk.metrics[-1])

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lost

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.beat()
            self.watchdog()

    def watchdog(self) -> None:
        """Past the hard deadline and still inside a chunk: the job ends failed here, with
        the epochs and the checkpoint stored so far; the chunk's own writes are then fenced
        off (LeaseLost) and the worker takes its next job once the chunk returns."""
        if self.hard_deadline is None or self.lost or time.monotonic() < self.hard_deadline:
            return
        where = (
            f"inside epoch {self._progress[0] + 1}"
            if self._progress
            else "before the first recorded epoch"
        )
        error = (
            f"time limit of {self.time_limit_s:g} s reached {where} (loading, compiling or "
            "one compiled chunk ran past the limit): stopped; epochs so far and the last "
            "checkpoint are kept"
        )
        try:
            with_retry(jobs.finish, self.db, self.run_id, self.attempt, "failed", error)
            self.timed_out = True
            events.info("run %s attempt %s: %s", self.run_id, self.attempt, error)
        except jobs.LeaseLost:
            pass  # the job ended meanwhile (its own end, a cancel, a requeue)
        except Exception:  # a database hiccup: the next beat tries again
            log.exception("could not end run %s at its time limit", self.run_id)
            return
        self.lost = True

    def beat(self) -> None:
        epoch, metrics = self._progress or (None, None)
        try:
            self.cancel_requested = jobs.heartbeat(
                self.db, self.run_id, self.attempt, epoch, _finite(metrics)
            )
        except jobs.LeaseLost:
            if not self._stop_event.is_set():  # not merely racing the job's own end
                log.warning("run %s attempt %s lost its lease; stopping", self.run_id, self.attempt)
            self.lost = True
        except Exception:  # a database hiccup: try again next beat; the lease has slack
            log.exception("heartbeat of run %s failed", self.run_id)

    def stop(self) -> None:
        self._stop_event.set()


def hard_limit_slack(time_limit_s: float) -> float:
    """How far past its time limit a job may run inside one chunk before it is ended from
    the lease thread: 10 % of the limit, at least 5 s (chunk boundaries come first)."""
    return max(5.0, 0.1 * time_limit_s)


def _finite(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: (v if v == v and abs(v) != float("inf") else None) for k, v in metrics.items()}


def execute(db: Database, settings: Settings, run_id: int, attempt: int, worker_id: str) -> str:
    """The whole task body. A stale or duplicate delivery returns 'skipped' having written nothing."""
    from netlens.worker.runner import run_experiment

    job = with_retry(jobs.claim, db, run_id, attempt, worker_id)
    if job is None:
        events.info(
            "run %s attempt %s: not claimable (duplicate, stale or cancelled)", run_id, attempt
        )
        return "skipped"
    started = time.monotonic()
    events.info("run %s started (attempt %s)", run_id, attempt)
    if job.from_scratch:
        jobs.clear_records(db, run_id, attempt)
    time_limit_s = job.time_limit_s or settings.job_time_limit_seconds
    lease = Lease(db, run_id, attempt, settings.heartbeat_seconds, time_limit_s)
    lease.start()
    try:
        status = run_experiment(
            db,
            run_id,
            settings.resolved_data_dir,
            on_progress=lease.progress,
            should_stop=lease.should_stop,
            attempt=attempt,
            resume=not job.from_scratch,
            time_limit_s=time_limit_s,
            checkpoint_seconds=settings.checkpoint_seconds,
            should_release=SHUTTING_DOWN.is_set,
        )
        if status == "released":
            status = _release(db, settings, run_id, attempt, worker_id)
    except Exception as exc:  # never leave a job running behind a live worker
        from netlens.worker.runner import describe_failure

        log.exception("run %s attempt %s crashed", run_id, attempt)
        status = "failed"
        try:
            with_retry(
                jobs.finish,
                db,
                run_id,
                attempt,
                status,
                describe_failure(exc),
                traceback.format_exc(),
            )
        except jobs.LeaseLost:
            status = "lost"
    finally:
        lease.stop()
    if lease.timed_out:
        status = "failed"  # ended by the watchdog; the chunk's late writes were fenced off
    elapsed = time.monotonic() - started
    if status == "lost":
        # Fenced: the job moved on without this attempt (its lease expired while this worker
        # was cut off from the database or stalled, or an admin requeued it). Say so plainly:
        # on another host nobody else can tell that this worker trained on, unheard.
        events.warning(
            "run %s attempt %s was fenced off: attempt %s owns the job now (this worker's "
            "lease expired: cut off from the database or stalled, or an admin requeued the "
            "job); its late writes were refused and it stops here",
            run_id,
            attempt,
            _current_attempt(db, run_id),
        )
    events.info("run %s attempt %s ended %s (%.1f s)", run_id, attempt, status, elapsed)
    if (
        status in ANALYSED_STATUSES
        and settings.analyze_after_training
        and _wants_analyses(db, run_id)
    ):
        _queue_analyses(db, settings, run_id)
    return status


def _current_attempt(db: Database, run_id: int) -> str:
    """The job's attempt now, for the fenced-off line ("a later one" when unreadable)."""
    try:
        return str(jobs.get_job(db, run_id).attempt)
    except Exception:
        return "a later one"


def _release(db: Database, settings: Settings, run_id: int, attempt: int, worker_id: str) -> str:
    """Give the job back to the queue (this worker is shutting down): 'released', or 'lost'
    when the attempt no longer owned it anyway."""
    from netlens.dispatch.submission import release_run

    try:
        following = with_retry(
            release_run, db, settings, run_id, attempt, f"worker {worker_id} shut down"
        )
    except jobs.LeaseLost:
        return "lost"
    events.info("run %s released for attempt %s (this worker is shutting down)", run_id, following)
    return "released"


# Lesson runs (webapp/learn tags them "learn"): no lesson reads a stored analysis (the
# signatures lesson computes what it states from the signatures), and analysing them (UMAP and
# t-SNE, tens of seconds) would hold up the learner's next run on a one-worker server. Their
# signatures page still analyses an epoch on request ("Analyse this epoch").
UNANALYSED_TAGS = ("learn",)


def _wants_analyses(db: Database, run_id: int) -> bool:
    try:
        tags = runs.get_run(db, run_id).tags
    except Exception:  # the run is gone: nothing to analyse either way
        return False
    return not any(t in UNANALYSED_TAGS for t in tags)


# Runs whose last recorded epoch is worth analysing (a diverged run's last epoch is not finite).
ANALYSED_STATUSES = ("succeeded", "cancelled")


def _queue_analyses(db: Database, settings: Settings, run_id: int) -> None:
    """After training: queue the signature analyses of the last epoch (issue 5). A failure
    here never changes the run's outcome."""
    from netlens.dispatch.submission import submit_analyses

    try:
        submit_analyses(db, settings, run_id)
    except Exception:
        log.exception("could not queue the analyses of run %s", run_id)
