"""`netlens serve` and `netlens worker --concurrency N`: the processes composed here, in the
CLI layer. Worker processes are children (`python -m netlens.cli worker`, JAX does not survive
fork); the web app runs in this process, which never imports JAX."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

from netlens.dispatch.celery_app import make_celery
from netlens.dispatch.reaper import Reaper
from netlens.storage.db import Database
from netlens.storage.settings import Settings


def _spawn_workers(queues: list[str], count: int, verbose: bool) -> list[subprocess.Popen]:
    host = socket.gethostname()
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netlens.cli",
                "worker",
                f"--queues={','.join(queues)}",
                "--concurrency=1",
                f"--name=netlens-{i}-{os.getpid()}@{host}",
                *(["--verbose"] if verbose else []),
            ]
        )
        for i in range(count)
    ]


def _forward_signals(children: list[subprocess.Popen]) -> None:
    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)


def run_workers(queues: list[str], concurrency: int, verbose: bool = False) -> int:
    """JAX does not survive fork: scale with processes, each a solo worker."""
    children = _spawn_workers(queues, concurrency, verbose)
    _forward_signals(children)
    return max(child.wait() for child in children)


def serve_forever(
    settings: Settings,
    workers: int,
    queues: list[str],
    web: tuple[str, int] | None,
    verbose: bool = False,
) -> int:
    """The embedded default and the lab server's entry point: the web app (in this process,
    which never imports JAX) and local worker processes (real Celery workers on the
    configured broker), until stopped. With no local workers, a reaper runs here."""
    children = _spawn_workers(queues, workers, verbose)
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
    from waitress import serve

    from netlens.webapp.app import create_app
    from netlens.webapp.single_user import login_reason

    app = create_app(settings, bind_host=host)
    reason = login_reason(settings, host)
    mode = (
        f"login required: {reason}"
        if reason
        else "single-user mode, no login: loopback only, Host localhost/127.0.0.1/[::1]"
    )
    print(f"NetLens is running at http://{host}:{port}/ ({mode})", flush=True)
    # Proxy headers reach the app: ProxyFix reads them (NETLENS_PROXY_HOPS), and single-user
    # mode refuses requests that carry them (waitress would drop them unseen by default).
    serve(
        app.server,
        host=host,
        port=port,
        threads=8,
        _quiet=True,
        clear_untrusted_proxy_headers=False,
    )
