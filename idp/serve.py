"""``idp-serve``: the provider's HTTP server in production (the container's command).

granian (an HTTP server written in Rust) runs ``idp:create_app()`` in a few worker processes of
a few threads each. It parses HTTP and keeps connections alive outside Python, which is most of
what a light request costs (docs/performance.md, "The server's own cost").

- Processes: ``--workers`` or ``WEB_CONCURRENCY`` (4); threads per process: ``--threads`` (4).
  A request mostly waits on PostgreSQL, Redis or a vendor, so a few processes with several
  threads each serve more logins than many single-threaded ones in the same memory.
- A worker that dies is started again at once; one that dies again within granian's crash-loop
  window (5.5 s) stops the server, for the orchestrator to restart it (docs/faults.md).
- ``SIGTERM``: the workers finish the requests in flight (up to 30 s, ``--shutdown-timeout``),
  then exit; a worker still loading the app misses the signal and is killed when that time is
  over.
- With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics there and ``/metrics``
  sums them; the directory is emptied first, or a previous run's counts would be added again.
  The provider has counters and histograms only, whose files stay in the sum after a worker
  exits, so nothing is marked when one does.
- A worker whose main process is gone (killed with SIGKILL, say) ends itself within a second:
  granian's workers would otherwise go on serving, orphaned, on the socket they share.
- The provider writes its own access line (endpoint, status, request id): granian's is off.
- Each worker drops the ``IDP_*`` variables once the app has read them: granian copies the
  worker's environment into every request's WSGI environ.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import MPServer  # worker processes (what granian.Server is with a GIL)

APP = "idp:create_app()"
# What the workers (spawned processes) read from the main process; IDP_* are settings only.
APP_VARIABLE = "WSGI_APP"  # --app
MAIN_PID_VARIABLE = "WSGI_SERVER_PID"
SHUTDOWN_VARIABLE = "WSGI_SHUTDOWN_SECONDS"  # --shutdown-timeout
SHUTDOWN_SECONDS = 30  # in-flight requests finish within this after SIGTERM


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="idp-serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="0.0.0.0:8000", help="host:port (0.0.0.0:8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "4")),
        help="processes (WEB_CONCURRENCY, else 4)",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per process (4)")
    parser.add_argument("--log-level", default="info", choices=["warning", "info", "debug"])
    parser.add_argument("--app", default=APP, help=f"module:attribute, or module:factory() ({APP})")
    parser.add_argument(
        "--shutdown-timeout",
        type=int,
        default=SHUTDOWN_SECONDS,
        help=f"seconds the workers have after SIGTERM to finish and exit ({SHUTDOWN_SECONDS})",
    )
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--bind: expected host:port, got {args.bind!r}")
    if min(args.workers, args.threads, args.shutdown_timeout) < 1:
        parser.error("--workers, --threads and --shutdown-timeout: at least 1")
    args.host, args.port = host, int(port)
    return args


def empty_metrics_dir() -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)


def worker_app() -> Any:
    """What each worker runs: the app ``--app`` names, its main process watched."""
    shutdown_seconds = int(os.environ.get(SHUTDOWN_VARIABLE, SHUTDOWN_SECONDS))
    end_when_orphaned(int(os.environ[MAIN_PID_VARIABLE]), shutdown_seconds)
    app = load_app(os.environ[APP_VARIABLE])
    forget_settings_variables()
    keep_out_of_collections()
    return app


def forget_settings_variables() -> None:
    """The app has read its settings: the ``IDP_*`` variables, secrets among them, leave the
    worker's environment, which granian copies into every request's WSGI environ (where an
    error reporter or a debugging aid would show them)."""
    for name in [name for name in os.environ if name.startswith("IDP_")]:
        del os.environ[name]


def keep_out_of_collections() -> None:
    """What the worker has loaded lives as long as it does: frozen, the garbage collector's full
    collections no longer walk it. Each walked ~150,000 objects, 51 ms with every thread
    stopped (docs/performance.md, "JSON in compiled code, and collections that stop every
    thread")."""
    gc.collect()
    gc.freeze()


def load_app(spec: str) -> Any:
    """``module:attribute``, or ``module:factory()`` called."""
    module, _, name = spec.removesuffix("()").partition(":")
    app = getattr(importlib.import_module(module), name)
    return app() if spec.endswith("()") else app


def end_when_orphaned(main_pid: int, shutdown_seconds: int = SHUTDOWN_SECONDS) -> None:
    """Once ``main_pid`` is no longer this worker's parent (the main process died, maybe before
    this worker ran): SIGTERM it, so that it finishes what is in flight, again every second (a
    worker still loading the app misses the signal), and exit after ``shutdown_seconds``."""

    def watch() -> None:
        while os.getppid() == main_pid:
            time.sleep(1)
        for _ in range(shutdown_seconds):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def server(args: argparse.Namespace) -> MPServer:
    return MPServer(
        "idp.serve:worker_app",  # not __name__: "__main__" under python -m
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        factory=True,
        workers=args.workers,
        blocking_threads=args.threads,
        websockets=False,
        log_level=LogLevels(args.log_level),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=args.shutdown_timeout,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    empty_metrics_dir()
    os.environ.update(
        {
            APP_VARIABLE: args.app,
            MAIN_PID_VARIABLE: str(os.getpid()),
            SHUTDOWN_VARIABLE: str(args.shutdown_timeout),
        }
    )
    server(args).serve()


if __name__ == "__main__":
    main()
