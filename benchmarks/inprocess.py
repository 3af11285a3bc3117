"""CPU per request in-process: the same scenarios as ``benchmarks.run``, one request at a time
through Flask's test client, with no server, network or load generator around the application.
For judging one change (run the old and the new code one after the other) and for a cProfile
of one scenario; what a request costs under load is the benchmark's to say (docs/performance.md,
"In-process measurements").

    .venv/bin/python -m benchmarks.inprocess                       # SQLite, every scenario
    .venv/bin/python -m benchmarks.inprocess --database postgres --scenarios userinfo,refresh
    .venv/bin/python -m benchmarks.inprocess --scenarios refresh --profile refresh.prof
    .venv/bin/python -m benchmarks.inprocess --database postgres --scenarios token --instructions

Each scenario runs ``--requests`` requests ``--reps`` times after a warm-up and reports the
best repetition's CPU time per request (``time.process_time``: this process only; the SMS
worker delivering the login codes is another process) and the statements per request that the
request's database session sends (the SQL store has an engine of its own: not counted).

``--instructions`` runs it all under valgrind's callgrind instead and counts the instructions
this process executes per request (once, ``--requests`` requests after the warm-up): the same
code gives the same count to a fraction of a per cent whatever else the machine is doing, where
CPU time drifts by more than the few per cent a change is worth. It leaves out what the
instructions wait for (caches, the kernel), so it judges a change to the code's own work.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import gc
import logging
import os
import pstats
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from benchmarks import load, servers
from benchmarks.run import SCENARIOS as BENCHMARK_SCENARIOS
from benchmarks.seeding import SeedSpec

ISSUER = "http://127.0.0.1:5000"  # never listened on: requests go to the app object
# The benchmark's scenarios that reach Flask (discovery and the JWKS are answered in front of
# it, idp/oidc/published.py), and healthz: what any request through the app costs.
SCENARIOS = (
    "healthz",
    *(name for name in BENCHMARK_SCENARIOS if name not in ("discovery", "jwks")),
)
WARMUP = 20
# Set in the process that valgrind runs: where callgrind writes its counts.
CALLGRIND_OUT = "BENCHMARK_CALLGRIND_OUT"


class Browser:
    """A browser of its own (cookie jar) driving the application through its test client."""

    def __init__(self, app: Flask) -> None:
        self.client: FlaskClient = app.test_client()

    def get(self, url: str) -> Any:
        return self.client.get(url, base_url=ISSUER)

    def post(self, url: str, data: dict[str, str], auth: str | None = None) -> Any:
        headers = {"Authorization": auth} if auth else {}
        return self.client.post(url, data=data, headers=headers, base_url=ISSUER)


class RelyingParty:
    """The seeded client's side of the code flow, and its back end's token requests."""

    def __init__(self, app: Flask, instance: servers.Instance, spec: SeedSpec) -> None:
        self.app = app
        self.spec = spec
        self.client_id = instance.seeded["client_id"]
        secret = instance.seeded["client_secret"]
        self.auth = "Basic " + base64.b64encode(f"{self.client_id}:{secret}".encode()).decode()
        self.outbox = load.Outbox(instance.outbox)
        self.back_end = Browser(app)
        self.operators = iter(range(spec.operators))

    def authorize(self, browser: Browser) -> tuple[Any, load.Pkce]:
        pkce = load.Pkce()
        params = load.authorization_params(self.client_id, pkce, state="s")
        return browser.get("/authorize?" + urlencode(params)), pkce

    def follow(self, browser: Browser, response: Any) -> str | Any:
        """The code once a redirect reaches the client, else the page where they stop."""
        for _hop in range(load.MAX_HOPS):
            location = response.headers.get("Location", "")
            if response.status_code not in (302, 303) or not location:
                return response
            if location.startswith(servers.REDIRECT_URI):
                return parse_qs(urlsplit(location).query)["code"][0]
            response = browser.get(location)
        raise load.LoadError("too many redirects")

    def log_in(self, browser: Browser) -> tuple[str, load.Pkce]:
        """A complete code flow up to the code, as ``load.Client.log_in`` drives it."""
        response, pkce = self.authorize(browser)
        page = self.follow(browser, response)
        if isinstance(page, str) or page.status_code != 200:
            raise load.LoadError(f"authorize did not lead to a login page: {page}")
        interaction = parse_qs(urlsplit(page.request.url).query)["interaction"][0]
        token = load.csrf_token(page.text)
        phone = self.spec.phone(next(self.operators))
        sent = browser.post("/login/sms-code", {"phone": phone, "csrf_token": token})
        if sent.status_code != 200:
            raise load.LoadError(f"SMS code request: {sent.status_code} {sent.text[:300]}")
        form = {
            "phone": phone,
            "password": self.spec.password,
            "sms_code": self.code_for(phone),
            "csrf_token": token,
            "interaction": interaction,
        }
        code = self.follow(browser, browser.post("/login", form))
        if not isinstance(code, str):
            raise load.LoadError(f"login failed: {code.status_code} {code.text[:300]}")
        return code, pkce

    def code_for(self, phone: str) -> str:
        deadline = time.monotonic() + load.SMS_WAIT
        while time.monotonic() < deadline:
            if (code := self.outbox.take(phone)) is not None:
                return code
            time.sleep(0.01)
        raise load.LoadError(f"no login code for {phone}")

    def mint(self, browser: Browser) -> tuple[str, load.Pkce]:
        response, pkce = self.authorize(browser)
        code = self.follow(browser, response)
        if not isinstance(code, str):
            raise load.LoadError("authorize asked for a login again")
        return code, pkce

    def token(self, data: dict[str, str]) -> dict[str, Any]:
        answer = self.back_end.post("/oauth/token", data, auth=self.auth)
        if answer.status_code != 200:
            raise load.LoadError(f"token endpoint: {answer.status_code} {answer.text[:300]}")
        body: dict[str, Any] = answer.json
        return body

    def redeem(self, code: str, pkce: load.Pkce) -> dict[str, Any]:
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": servers.REDIRECT_URI,
                "code_verifier": pkce.verifier,
            }
        )


def one_request(rp: RelyingParty, scenario: str, count: int) -> Callable[[], None]:
    """What one request (or flow) of ``scenario`` is; anything it consumes is made now, for
    ``count`` calls."""
    browser = Browser(rp.app)
    if scenario == "healthz":

        def healthz() -> None:
            browser.get("/healthz")

        return healthz
    if scenario == "client_credentials":

        def client_credentials() -> None:
            rp.token({"grant_type": "client_credentials"})

        return client_credentials
    if scenario == "flows":

        def flow() -> None:
            rp.redeem(*rp.log_in(Browser(rp.app)))

        return flow
    tokens = rp.redeem(*rp.log_in(browser))
    if scenario == "token":
        codes = iter([rp.mint(browser) for _ in range(count)])

        def redemption() -> None:
            rp.redeem(*next(codes))

        return redemption
    if scenario == "refresh":
        chain = {"refresh_token": tokens["refresh_token"]}

        def refresh() -> None:
            chain["refresh_token"] = rp.token({"grant_type": "refresh_token", **chain})[
                "refresh_token"
            ]

        return refresh
    if scenario == "userinfo":
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        def userinfo() -> None:
            # From the relying party's back end, as the benchmark's load sends it: no cookies.
            answer = rp.back_end.client.get("/oauth/userinfo", headers=bearer, base_url=ISSUER)
            if answer.status_code != 200:
                raise load.LoadError(f"userinfo: {answer.status_code}")

        return userinfo

    def introspect() -> None:
        data = {"token": tokens["access_token"]}
        answer = rp.back_end.post("/oauth/introspect", data, auth=rp.auth)
        if not answer.json.get("active"):
            raise load.LoadError("introspection: token not active")

    return introspect


@contextlib.contextmanager
def counted_statements(app: Flask) -> Iterator[list[int]]:
    """How many SQL statements the application sends, counted while the block runs."""
    count = [0]

    def one(*_args: Any) -> None:
        count[0] += 1

    from idp import db

    for engine in db.engines(app):
        event.listen(engine, "before_cursor_execute", one)
    try:
        yield count
    finally:
        for engine in db.engines(app):
            event.remove(engine, "before_cursor_execute", one)


def measure(
    rp: RelyingParty, scenario: str, requests: int, reps: int, profile: Path | None
) -> tuple[float, float]:
    """Best CPU ms per request of ``reps`` runs (under callgrind: instructions per request of
    one run), and statements per request."""
    runs = WARMUP + requests * reps + (requests if profile else 0)
    call = one_request(rp, scenario, runs)
    for _ in range(WARMUP):
        call()
    if counting():
        gc.collect()
        gc.freeze()
        with counted_statements(rp.app) as statements:
            count = instructions(scenario, lambda: [call() for _ in range(requests)])
        return count / requests, statements[0] / requests
    best = float("inf")
    with counted_statements(rp.app) as statements:
        for _ in range(reps):
            began = time.process_time()
            for _ in range(requests):
                call()
            best = min(best, (time.process_time() - began) / requests * 1000)
    if profile is not None:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(lambda: [call() for _ in range(requests)])
        profiler.dump_stats(profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return best, statements[0] / (requests * reps)


def instructions(scenario: str, work: Callable[[], object]) -> int:
    """Instructions this process executes in ``work``: callgrind counts only while told to
    (``--instr-atstart=no``), and writes the count to a file of its own when told to dump."""

    def control(*arguments: str) -> None:
        command = ["callgrind_control", *arguments, str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)

    control("--zero")
    control("--instr=on")
    work()
    control(f"--dump={scenario}")
    control("--instr=off")
    trigger = f"desc: Trigger: dump {scenario}\n"
    for part in Path(os.environ[CALLGRIND_OUT]).parent.iterdir():
        text = part.read_text(errors="replace")
        if trigger in text:
            part.unlink()
            return int(text.split("\ntotals: ")[1].split()[0])
    raise RuntimeError(f"callgrind wrote no count for {scenario}")


def under_callgrind(argv: list[str]) -> int:
    """Run this command again, without ``--instructions``, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="idp-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",  # the start, the seeding and the logins are not counted
            f"--callgrind-out-file={out}",
            "--log-file=" + str(Path(tmp) / "valgrind.log"),
            sys.executable,
            "-m",
            "benchmarks.inprocess",
            *(argument for argument in argv if argument != "--instructions"),
        ]
        # One string hash for every run: the layout of sets and dicts changes the count.
        env = {**os.environ, CALLGRIND_OUT: str(out), "PYTHONHASHSEED": "0"}
        return subprocess.run(command, env=env).returncode


def run(options: argparse.Namespace) -> list[tuple[str, float, float]]:
    flows = options.requests * (options.reps + 1) + WARMUP + 1
    spec = SeedSpec(
        redirect_uri=servers.REDIRECT_URI,
        password="Bench-" + secrets.token_urlsafe(12),
        phone_prefix="139",
        operators=flows * len(options.scenarios) + 10,
    )
    with (
        tempfile.TemporaryDirectory(prefix="idp-inprocess-") as tmp,
        servers.prepared(options.database, spec, Path(tmp), ISSUER) as instance,
        (Path(tmp) / "app.log").open("a") as app_log,
    ):
        os.environ.update(instance.env)  # the application's settings come from the environment
        from idp import create_app, db

        app = create_app()
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(app_log)  # as a server's log lines go to a file
        rp = RelyingParty(app, instance, spec)
        results = []
        for scenario in options.scenarios:
            profile = options.profile if scenario == options.scenarios[0] else None
            cpu_ms, statements = measure(rp, scenario, options.requests, options.reps, profile)
            results.append((scenario, cpu_ms, statements))
            cost = f"{cpu_ms:,.0f} instructions" if counting() else f"{cpu_ms:.3f} ms CPU"
            servers.log(f"{scenario}: {cost} per request, {statements:.1f} statements")
        db.dispose(app)
        return results


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inprocess", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=300, help="per repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="cProfile of the first scenario, to FILE")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instructions per request, counted under valgrind's callgrind (needs valgrind)",
    )
    options = parser.parse_args(argv)
    options.scenarios = options.scenarios.split(",")
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios: unknown {', '.join(sorted(unknown))}")
    if options.requests < 1 or options.reps < 1:
        parser.error("--requests and --reps: at least 1")
    if options.instructions and options.profile:
        parser.error("--instructions and --profile: one at a time")
    if options.instructions and not shutil.which("callgrind_control"):
        parser.error("--instructions: valgrind is not installed")
    return options


def counting() -> bool:
    """This process runs under callgrind for ``--instructions``."""
    return CALLGRIND_OUT in os.environ


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    servers.stop_on_sigterm()
    if options.instructions and not counting():
        return under_callgrind(argv)
    results = run(options)
    if counting():
        heading, unit, cell = f"{options.requests} requests under callgrind", "instructions", ",.0f"
    else:
        heading, unit, cell = (
            f"best of {options.reps} × {options.requests} requests",
            "CPU ms",
            ".3f",
        )
    cost = f"{unit}/request"
    print(f"\n{options.database}, {heading}")
    print(f"| scenario           | {cost} | statements/request |")
    print(f"|--------------------|{'-' * (len(cost) + 2)}|--------------------|")
    for scenario, value, statements in results:
        print(f"| {scenario:<18} | {value:>{len(cost)}{cell}} | {statements:>18.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
