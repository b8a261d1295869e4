"""The embedded default's broker (kombu's filesystem transport, netlens/dispatch/fs_transport.py)
never hands a worker a half-written message: a message is written beside its final name and
renamed into place. (kombu's own transport created the final file before writing it; a worker
polling in between read it empty and died on JSONDecodeError, once on CI: a race too rare to
reproduce on demand, so the first test checks the mechanism, the second the delivery.)"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from netlens.dispatch.celery_app import make_celery
from netlens.dispatch.fs_transport import PARTIAL, TRANSPORT
from netlens.storage.settings import Settings


def _app(tmp_path: Path):
    return make_celery(
        Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db", broker_url="")
    )


def test_a_message_still_being_written_is_not_taken_and_a_renamed_one_is(tmp_path):
    app = _app(tmp_path)
    assert app.conf.broker_transport == TRANSPORT
    name = f"probe{uuid.uuid4().hex[:8]}"  # kombu keeps queue bindings per process
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue(name)
        queue.put({"run_id": 1})
        folder = Path(app.conf.broker_transport_options["data_folder_in"])
        (written,) = [p for p in folder.iterdir() if p.name.endswith(f".{name}.msg")]
        assert not list(folder.glob(f"*{PARTIAL}"))  # renamed into place
        # a message caught half-written (empty, under the name a writer uses meanwhile)
        os.replace(written, str(written) + PARTIAL)
        Path(str(written) + PARTIAL).write_bytes(b"")
        try:
            queue.get(timeout=0.5)
            raise AssertionError("a half-written message was taken")
        except queue.Empty:
            pass
        Path(str(written) + PARTIAL).unlink()
        queue.close()


def test_many_messages_written_while_a_worker_reads_all_arrive_whole(tmp_path):
    app = _app(tmp_path)
    sent, received, errors = 400, [], []
    with app.connection_for_write() as writer_connection, app.connection_for_read() as reader:
        many = f"many{uuid.uuid4().hex[:8]}"
        inbox = reader.SimpleQueue(many)  # (kombu keeps bindings per process: a name of its own)

        def write() -> None:
            outbox = writer_connection.SimpleQueue(many)
            for i in range(sent):
                outbox.put({"n": i, "pad": "x" * 20_000})  # large enough to be caught mid-write
            outbox.close()

        writer = threading.Thread(target=write)
        writer.start()
        while len(received) < sent:
            try:
                message = inbox.get(timeout=10)
            except inbox.Empty:
                break
            except Exception as exc:  # noqa: BLE001 - kombu's filesystem read of a partial file
                errors.append(exc)
                break
            received.append(message.payload["n"])
            message.ack()
        writer.join()
        inbox.close()
    assert not errors and sorted(received) == list(range(sent))
