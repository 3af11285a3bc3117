"""Instructions per request of the server's worker process, granian and all: the requests as a
client sends them over HTTP, one at a time, counted under valgrind's callgrind.

    .venv/bin/python -m benchmarks.served --database postgres
    .venv/bin/python -m benchmarks.served --scenarios introspection --requests 1000

``benchmarks.inprocess --instructions`` counts the application through Flask's test client: it
leaves out the HTTP server (granian parses the request, builds the WSGI environ and writes the
answer) and counts the test client's own work. This counts what the worker process executes:
each scenario is served twice by a fresh ``idp-serve`` (one process, its default threads) under
callgrind, once for ``--warmup`` requests and once for those and ``--requests`` more; the
difference of the two totals, divided by ``--requests``, is what one request costs, start-up
and warm-up cancelled out. Runs of the same code agree to 0.4 %. The scenarios are the
ones a client needs no login for (docs/performance.md, "Instructions of the served
requests").
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import secrets
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from benchmarks import servers
from benchmarks.seeding import SeedSpec

SCENARIOS = ("healthz", "discovery", "jwks", "client_credentials", "introspection")
DISCOVERY = "/.well-known/openid-configuration"
# Seconds for the server to answer, and to exit, under callgrind, where its start (importing
# and building the app) is some fifty times slower: one took 51 s on an idle machine.
START_TIMEOUT = 300
EXIT_TIMEOUT = 120
# The worker's own exit, given by idp-serve: its default 30 s were too few for a worker under
# callgrind on a loaded machine (killed, it writes no count).
WORKER_EXIT_SECONDS = 100


class Client:
    """One keep-alive connection to the server, with the seeded client's credentials."""

    def __init__(self, port: int, seeded: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        secret = f"{seeded['client_id']}:{seeded['client_secret']}".encode()
        self.authorization = "Basic " + base64.b64encode(secret).decode()

    def get(self, path: str) -> bytes:
        self.connection.request("GET", path)
        return self._answer(path)

    def post(self, path: str, form: dict[str, str]) -> bytes:
        headers = {
            "Authorization": self.authorization,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self.connection.request("POST", path, urlencode(form), headers)
        return self._answer(path)

    def _answer(self, path: str) -> bytes:
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise servers.BenchError(f"{path}: {response.status} {body[:200]!r}")
        return body

    def request_for(self, scenario: str) -> Callable[[], bytes]:
        """One request of ``scenario``."""
        if scenario == "healthz":
            return lambda: self.get("/healthz")
        if scenario == "discovery":
            return lambda: self.get(DISCOVERY)
        if scenario == "jwks":
            keys = urlsplit(json.loads(self.get(DISCOVERY))["jwks_uri"]).path
            return lambda: self.get(keys)
        token = {"grant_type": "client_credentials"}
        if scenario == "client_credentials":
            return lambda: self.post("/oauth/token", token)
        introspected = {"token": json.loads(self.post("/oauth/token", token))["access_token"]}
        return lambda: self.post("/oauth/introspect", introspected)


def total_instructions(instance: servers.Instance, scenario: str, requests: int) -> int:
    """What the worker executed from its start to its exit, having served ``requests`` of
    ``scenario``. Each server on a port of its own: on the port of the one before, the second
    scenario's requests went uncounted. Not pinned to a CPU: under callgrind the worker's exit
    alone takes seconds, and it must end within ``idp-serve``'s shutdown time to be counted."""
    port = servers.free_port()
    out = instance.directory / "callgrind"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    command = [
        *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/out.%p"),
        f"--log-file={instance.directory / 'valgrind.log'}",
        *servers.Workers().command(f"127.0.0.1:{port}"),
        *("--shutdown-timeout", str(WORKER_EXIT_SECONDS)),
    ]
    # One string hash for every run: the layout of sets and dicts changes the count.
    env = {**instance.env, "PYTHONHASHSEED": "0", "IDP_ISSUER": f"http://127.0.0.1:{port}"}
    logfile = instance.directory / "server.log"
    with logfile.open("ab") as output:
        server = subprocess.Popen(
            command, env=env, cwd=servers.ROOT, stdout=output, stderr=output, start_new_session=True
        )
    try:
        servers.wait_ready(server, f"http://127.0.0.1:{port}", logfile, START_TIMEOUT)
        (worker,) = servers.children_of(server.pid)
        client = Client(port, instance.seeded)
        request = client.request_for(scenario)
        for _ in range(requests):
            request()
        client.connection.close()
        # The main process stops the worker, as in production (signalled directly too, the
        # worker counted a shutdown of varying length).
        server.terminate()
        server.wait(timeout=EXIT_TIMEOUT)
    finally:
        servers.stop(server)
    return _total(out / f"out.{worker}")


def _total(part: Path) -> int:
    """callgrind's total, which it writes as the process exits."""
    text = part.read_text(errors="replace") if part.exists() else ""
    if "\ntotals: " not in text:
        raise servers.BenchError(f"callgrind wrote no count to {part}: the worker was killed?")
    return int(text.split("\ntotals: ")[1].split()[0])


def per_request(instance: servers.Instance, scenario: str, requests: int, warmup: int) -> int:
    warm = total_instructions(instance, scenario, warmup)
    counted = total_instructions(instance, scenario, warmup + requests)
    return (counted - warm) // requests


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.served", description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=500, help="counted, per scenario")
    parser.add_argument("--warmup", type=int, default=100, help="requests before those counted")
    options = parser.parse_args(argv)
    options.scenarios = options.scenarios.split(",")
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))} (of {', '.join(SCENARIOS)})")
    if options.requests < 1 or options.warmup < 1:
        parser.error("--requests and --warmup: at least 1")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    servers.stop_on_sigterm()
    spec = SeedSpec(
        redirect_uri=servers.REDIRECT_URI,
        password="Bench-" + secrets.token_urlsafe(12),
        phone_prefix="139",
        operators=10,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="idp-served-") as tmp:
        issuer = "http://127.0.0.1"  # each server's own port added (total_instructions)
        with servers.prepared(options.database, spec, Path(tmp), issuer) as instance:
            for scenario in options.scenarios:
                count = per_request(instance, scenario, options.requests, options.warmup)
                servers.log(f"{scenario}: {count:,} instructions per request")
                rows.append((scenario, count))
    print(f"\n{options.database}, {options.requests} requests served under callgrind")
    print("| scenario           | instructions/request |")
    print("|--------------------|----------------------|")
    for scenario, count in rows:
        print(f"| {scenario:<18} | {count:>20,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
