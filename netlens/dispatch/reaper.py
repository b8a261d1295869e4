"""The reaper: requeue jobs whose lease expired (their worker died), resend queued jobs whose
broker message was lost, delete unused uploads, and start the retention policy's automatic
rounds when it asks for them (storage/retention.py, auto_hours). Every worker runs one;
`netlens serve --workers 0` and `netlens reaper` run it without a worker."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from celery import Celery

from netlens.dispatch.celery_app import broker_queue_size, send
from netlens.storage import jobs, retention
from netlens.storage.db import Database
from netlens.storage.jobs import Delivery
from netlens.storage.limits import delete_unused_uploads
from netlens.storage.models import utcnow
from netlens.storage.settings import Settings

log = logging.getLogger("netlens.worker")  # the logger these messages have always used
UPLOAD_CLEANUP_S = 60.0
RETENTION_CHECK_S = 300.0  # how often a reaper asks whether an automatic round is due


def reap_once(
    app: Celery, db: Database, settings: Settings, suspects: set[Delivery] | None = None
) -> int:
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
        log.info(
            "reaper: sending run %s attempt %s to queue %s",
            delivery.run_id,
            delivery.attempt,
            delivery.queue,
        )
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
        self._thinning: threading.Thread | None = None

    def run(self) -> None:
        next_cleanup = 0.0  # uploads are checked once a minute, not every round
        next_retention = time.monotonic() + min(RETENTION_CHECK_S, 10 * self.interval)
        while not self._stop_event.is_set():
            try:
                reap_once(self.app, self.db, self.settings, self._suspects)
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + UPLOAD_CLEANUP_S
                    delete_unused_uploads(self.db, self.settings)
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + RETENTION_CHECK_S
                    self.start_retention_round()
            except Exception:  # database or broker down for a moment: next round
                log.exception("reaper round failed")
            self._stop_event.wait(self.interval)

    def start_retention_round(self) -> threading.Thread | None:
        """Thin the due runs in a thread of their own (a round over many runs must not hold
        up requeueing), unless the last round is still going; retention.auto_round decides
        whether a round is due and lets one reaper of many claim it."""
        if self._thinning is not None and self._thinning.is_alive():
            return None
        self._thinning = threading.Thread(
            target=_retention_round, args=(self.db,), name="netlens-retention", daemon=True
        )
        self._thinning.start()
        return self._thinning

    def stop(self) -> None:
        self._stop_event.set()


def _retention_round(db: Database) -> None:
    try:
        report = retention.auto_round(db)
    except Exception:  # the database down for a moment: the next check tries again
        log.exception("automatic retention round failed")
        return
    if report is not None:
        log.info("automatic retention round: %s", report.summary())
