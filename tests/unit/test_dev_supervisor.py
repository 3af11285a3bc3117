"""``idp-dev run`` (behind ``make run``) stops the services it started however it is ended:
one of them ending, Ctrl-C, SIGTERM, or the end of the process that started it (``make``
killed leaves its command running, reparented)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idp.config import ROOT

SUPERVISOR = """
import os, subprocess, sys
from devtools.demo import supervise
children = [
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(2)
]
print(os.getpid(), *(child.pid for child in children), flush=True)
supervise(children)
"""
# Starts the supervisor, tells its pids, then waits to be killed.
LAUNCHER = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1]])
time.sleep(120)
"""


def ended(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (an orphan's new parent may never reap it)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


def wait_ended(pids: list[int], seconds: float = 15) -> list[int]:
    """The pids still running after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (running := [pid for pid in pids if not ended(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def start(code: str, *args: str) -> tuple[subprocess.Popen[str], list[int]]:
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    return process, [int(pid) for pid in process.stdout.readline().split()]


@pytest.fixture
def cleanup():
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_services_and_the_supervisor(cleanup, signum):
    supervisor, pids = start(SUPERVISOR)
    cleanup.extend(pids)
    assert len(pids) == 3 and not any(ended(pid) for pid in pids)

    supervisor.send_signal(signum)

    assert supervisor.wait(timeout=15) == 0
    assert wait_ended(pids[1:]) == []


def test_the_end_of_the_starting_process_stops_the_services(cleanup):
    launcher, pids = start(LAUNCHER, SUPERVISOR)
    cleanup.extend(pids)
    assert len(pids) == 3 and not any(ended(pid) for pid in pids)

    launcher.kill()  # as make, killed, leaves its command running
    launcher.wait(timeout=5)

    assert wait_ended(pids) == []


def test_one_service_ending_stops_the_others(cleanup):
    supervisor, pids = start(SUPERVISOR)
    cleanup.extend(pids)

    os.kill(pids[1], signal.SIGKILL)

    assert supervisor.wait(timeout=15) == 0
    assert wait_ended(pids[2:]) == []
