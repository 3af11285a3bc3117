"""Child processes the tests start (a server, an agent): stopped the way their users stop them."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
