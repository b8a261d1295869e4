"""The Celery app: a delivery mechanism only. It carries (run_id, attempt); the jobs table decides.

Imports no JAX, so the web process can use it to send tasks. The worker registers the tasks
(worker/service.py) under the names below.
"""

from __future__ import annotations

import logging

from celery import Celery

from netlens.dispatch.fs_transport import TRANSPORT
from netlens.storage.jobs import Delivery
from netlens.storage.settings import Settings

# The Celery task names on the broker: sent by the web app, the CLI and the reaper,
# registered by the worker. Messages already queued carry them: never rename.
TRAIN_TASK = "netlens.train_run"
ANALYZE_TASK = "netlens.analyze_run"

log = logging.getLogger("netlens.worker")  # the logger these messages have always used


def broker_options(settings: Settings) -> dict:
    url = settings.resolved_broker_url
    if url.startswith("filesystem"):
        folder = settings.broker_folder
        # whoever can write these folders can deliver job messages: the user's alone
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(exist_ok=True, mode=0o700)
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(exist_ok=True, mode=0o700)
        # control_folder: without it kombu writes ./control in whatever folder the process
        # was started from.
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
            "polling_interval": 0.1,
        }
    if url.startswith("redis"):
        # Redelivery after a lost worker is the reaper's job (heartbeat leases); the broker's
        # own redelivery is a second line, fenced by the attempt number either way.
        return {
            "visibility_timeout": 3600,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
    return {}


def make_celery(settings: Settings) -> Celery:
    app = Celery("netlens", broker=settings.resolved_broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        # filesystem:// (the embedded default): kombu's transport with atomic message writes
        broker_transport=TRANSPORT
        if settings.resolved_broker_url.startswith("filesystem")
        else None,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def send(app: Celery, delivery: Delivery) -> None:
    app.send_task(TRAIN_TASK, args=[delivery.run_id, delivery.attempt], queue=delivery.queue)


def send_analysis(app: Celery, run_id: int, kind: str, epoch: int, queue: str) -> None:
    app.send_task(ANALYZE_TASK, args=[run_id, kind, epoch], queue=queue)


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
