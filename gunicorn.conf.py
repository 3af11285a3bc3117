"""gunicorn settings of the provider: ``gunicorn -c gunicorn.conf.py`` (the container's command).

Threaded workers (gthread): a request mostly waits on PostgreSQL, Redis or a vendor, so a few
processes with several threads each serve more logins than many single-threaded ones in the
same memory. ``WEB_CONCURRENCY`` (processes) and ``GUNICORN_CMD_ARGS`` (any other option, such
as ``--threads 8`` or ``--bind``) override these defaults.

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics there and ``/metrics``
sums them; the directory is emptied when the server starts (a previous run's values would be
counted again), and a worker that exits is marked dead so its gauges stop counting.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

wsgi_app = "idp:create_app()"
bind = ["0.0.0.0:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = None  # the provider writes its own access line (endpoint, status, request id)
errorlog = "-"


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
