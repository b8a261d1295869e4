"""A worker process's row in the `workers` table (storage/workers.py), for the admin page."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from collections.abc import Callable

from netlens.storage import workers
from netlens.storage.db import Database
from netlens.storage.settings import Settings

log = logging.getLogger("netlens.worker")  # the logger these messages have always used


class WorkerHeartbeat(threading.Thread):
    """Reports this worker process in the `workers` table every heartbeat period; `stop`
    marks it stopped (a clean exit). `describe_device` names the device the worker computes
    on (the worker passes worker.service.describe_worker_device, which initialises JAX in
    this thread: this package never imports JAX itself)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        name: str,
        queues: list[str],
        describe_device: Callable[[], str],
    ):
        super().__init__(name="netlens-worker-heartbeat", daemon=True)
        self.db, self.interval = db, max(0.2, settings.heartbeat_seconds)
        self.me = workers.WorkerIdentity(name, socket.gethostname(), os.getpid(), tuple(queues))
        self.describe_device = describe_device
        self._stop_event = threading.Event()

    def run(self) -> None:
        self._call(workers.forget_silent, self.db)
        self._call(workers.register, self.db, self.me)
        try:
            device = self.describe_device()
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
