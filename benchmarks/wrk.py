"""Drive wrk (https://github.com/wg/wrk) for the stateless scenarios: one request, repeated.

A small Lua script sets the method, headers and body and, at the end, prints the counts and
latency percentiles as one JSON line, which ``run`` parses. wrk runs one thread with as many
connections as the benchmark's concurrency, on the load generator's CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MARK = "WRK_JSON "
DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    "MARK", summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
""".replace("MARK", MARK)


@dataclass
class Request:
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float


def lua_string(value: str) -> str:
    if "]==]" in value:
        raise ValueError("value cannot be quoted for Lua")
    return f" [==[{value}]==] "  # spaces: "[[" would open a long string


def script(request: Request) -> str:
    lines = [f"wrk.method = {lua_string(request.method)}"]
    if request.body:
        lines.append(f"wrk.body = {lua_string(request.body)}")
    lines += [
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}"
        for name, value in request.headers.items()
    ]
    return "\n".join(lines) + "\n" + DONE


def run(request: Request, *, seconds: float, connections: int) -> WrkResult:
    """Run wrk for ``seconds`` (whole seconds, at least 1) and return what it counted."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    duration = max(1, round(seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script(request))
        path = Path(file.name)
    try:
        done = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                str(path),
                request.url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
        )
    finally:
        path.unlink()
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"
        )
    counts = json.loads(lines[-1][len(MARK) :])
    return WrkResult(
        requests=counts["requests"],
        seconds=counts["duration_us"] / 1e6,
        errors=counts["socket_errors"] + counts["non_2xx"],
        p50_ms=counts["p50_us"] / 1000,
        p99_ms=counts["p99_us"] / 1000,
    )
