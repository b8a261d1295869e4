"""kombu's filesystem transport (the embedded default's broker: folders, no servers) with
messages written atomically.

kombu writes a message by opening its final file name and then writing to it; a worker
polling the folder can move and read that file in between, find it empty, and die on
"Unrecoverable error: JSONDecodeError" (seen on CI: the web app queued an analysis while the
worker polled). Here a message is written under a name the reader ignores (`.part` after the
queue's `.msg`) and renamed into place (atomic on one filesystem), so a reader sees whole
messages or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

TRANSPORT = "netlens.dispatch.fs_transport:Transport"  # Celery's broker_transport setting
PARTIAL = ".part"  # kombu's reader takes only names ending in "<queue>.msg"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: written beside, then renamed into place."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
