"""One readable line per worker event (ready, run started and ended, analysis done) on stderr.

`netlens serve` and `netlens worker` keep Celery quiet by default (no banner, no per-task INFO
lines): these lines are what a person watching the terminal needs; `--verbose` brings Celery's
own output back beside them.
"""

from __future__ import annotations

import logging
import sys

events = logging.getLogger("netlens.events")


def show_events() -> None:
    """Print the event lines as `HH:MM:SS netlens: ...`, once per process."""
    if events.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s netlens: %(message)s", "%H:%M:%S"))
    events.addHandler(handler)
    events.setLevel(logging.INFO)
    events.propagate = False  # not twice when --verbose also logs the root logger
