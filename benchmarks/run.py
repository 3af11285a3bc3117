"""Run the benchmark: ``.venv/bin/python -m benchmarks.run [--quick] [options]``.

The run starts each provider (ours on PostgreSQL + Redis, ours on SQLite, the node reference)
fresh and logs in one browser per connection to each, then measures every scenario for a fixed
duration after a warm-up, ``--reps`` times, each repetition of every provider in turn, and
reports the medians (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

from benchmarks import load, report, servers, wrk
from benchmarks.seeding import SeedSpec

CONCURRENCY = 16
PROVIDERS = ("ours-postgres", "ours-sqlite", "node")
SCENARIOS = (
    "discovery",
    "jwks",
    "client_credentials",
    "token",
    "refresh",
    "userinfo",
    "introspection",
    "flows",
)
PHONE_PREFIX = "139"
SCALE = {"operators": 100_000, "extra_clients": 999, "tokens": 1_000_000}


@dataclass
class Options:
    duration: float
    warmup: float
    reps: int
    scenarios: list[str]
    providers: list[str]
    operators: int
    scale: bool
    workers: servers.Workers


@dataclass
class Bench:
    """One provider being measured: its client, logged-in browsers and endpoints."""

    target: servers.Target
    client: load.Client
    browsers: list[aiohttp.ClientSession]
    options: Options

    @property
    def endpoints(self) -> dict[str, str]:
        return self.client.endpoints

    def rss_mib(self) -> float:
        workers = servers.children_of(self.target.master_pid) or [self.target.master_pid]
        return max(servers.peak_rss_kib(pid) for pid in workers) / 1024


# --- scenarios over wrk ------------------------------------------------------------------------


async def fresh_access_token(bench: Bench) -> str:
    tokens = await bench.client.redeem(await bench.client.mint(bench.browsers[0]))
    return str(tokens["access_token"])


def basic_auth(bench: Bench) -> str:
    return bench.client.auth.encode()


FORM = "application/x-www-form-urlencoded"


async def request_for(bench: Bench, scenario: str) -> wrk.Request:
    endpoints = bench.endpoints
    if scenario == "discovery":
        return wrk.Request(f"{bench.target.base}/.well-known/openid-configuration")
    if scenario == "jwks":
        return wrk.Request(endpoints["jwks_uri"])
    if scenario == "client_credentials":
        headers = {"Authorization": basic_auth(bench), "Content-Type": FORM}
        return wrk.Request(
            endpoints["token_endpoint"], "POST", headers, "grant_type=client_credentials"
        )
    access_token = await fresh_access_token(bench)
    if scenario == "userinfo":
        headers = {"Authorization": f"Bearer {access_token}"}
        return wrk.Request(endpoints["userinfo_endpoint"], headers=headers)
    headers = {"Authorization": basic_auth(bench), "Content-Type": FORM}
    return wrk.Request(
        endpoints["introspection_endpoint"], "POST", headers, f"token={access_token}"
    )


async def check(bench: Bench, request: wrk.Request, scenario: str) -> None:
    """One request before measuring: it must succeed (an active token for introspection)."""
    response = await bench.client.http.request(
        request.method, request.url, headers=request.headers, data=request.body or None
    )
    body = await response.read()
    if response.status != 200 or (
        scenario == "introspection" and b'"active":true' not in body.replace(b" ", b"")
    ):
        raise load.LoadError(f"{scenario}: {response.status} {body[:300]!r}")


async def with_wrk(bench: Bench, scenario: str) -> report.Rep:
    request = await request_for(bench, scenario)
    await check(bench, request, scenario)
    options = bench.options
    if options.warmup >= 1:
        await asyncio.to_thread(wrk.run, request, seconds=options.warmup, connections=CONCURRENCY)
    pids = bench.target.pids()
    cpu_before, started = servers.cpu_seconds(pids), time.perf_counter()
    counted = await asyncio.to_thread(
        wrk.run, request, seconds=options.duration, connections=CONCURRENCY
    )
    cpu = servers.cpu_seconds(pids) - cpu_before
    wall = time.perf_counter() - started
    succeeded = counted.requests - counted.errors
    return report.Rep(
        rate=succeeded / counted.seconds,
        p50_ms=counted.p50_ms,
        p99_ms=counted.p99_ms,
        errors=counted.errors,
        cpu_percent=100 * cpu / wall,
        cpu_ms=1000 * cpu / max(succeeded, 1),
        rss_mib=bench.rss_mib(),
        seconds=counted.seconds,
    )


# --- scenarios over the asyncio client ---------------------------------------------------------


MINTING_FACTOR = 2


async def token(bench: Bench) -> tuple[Callable[[int], Awaitable[None]], str]:
    """Codes minted beforehand (by every browser at once, for twice warm-up + duration: a
    code's ``/authorize`` costs ours more than its redemption), each redeemed once; the window
    ends early should they run out."""
    seconds = MINTING_FACTOR * (bench.options.warmup + bench.options.duration)
    pool = collections.deque(await load.mint_pool(bench.client, bench.browsers, seconds))

    async def one(_connection: int) -> None:
        if not pool:
            raise load.Exhausted
        await bench.client.redeem(pool.popleft())

    return one, f"{len(pool)} codes minted"


async def refresh(bench: Bench) -> tuple[Callable[[int], Awaitable[None]], str]:
    """Each connection chains its own refresh tokens: every answer's new token is the next
    request's."""
    client = bench.client

    async def first(browser: aiohttp.ClientSession) -> str:
        return str((await client.redeem(await client.mint(browser)))["refresh_token"])

    chains = list(await asyncio.gather(*(first(b) for b in bench.browsers)))

    async def one(connection: int) -> None:
        chains[connection] = await client.refresh(chains[connection])

    return one, ""


async def flows(bench: Bench) -> tuple[Callable[[int], Awaitable[None]], str]:
    """A complete code flow per call, in a new browser, as a new operator."""

    async def one(_connection: int) -> None:
        browser = bench.client.browser()
        try:
            await bench.client.redeem(await bench.client.log_in(browser))
        finally:
            await browser.close()

    return one, ""


STATEFUL = {"token": token, "refresh": refresh, "flows": flows}
MEASURING_ERRORS = (load.LoadError, aiohttp.ClientError, RuntimeError, TimeoutError)


async def with_client(bench: Bench, scenario: str) -> report.Rep:
    one, note = await STATEFUL[scenario](bench)
    if note:
        servers.log(f"{bench.target.name} {scenario}: {note}")
    window = await load.measure(
        bench.target,
        one,
        connections=CONCURRENCY,
        warmup=bench.options.warmup,
        duration=bench.options.duration,
    )
    for sample in window.samples:
        servers.log(f"{bench.target.name} {scenario} error: {sample}")
    if window.seconds < bench.options.duration:
        servers.log(f"{bench.target.name} {scenario}: codes ran out after {window.seconds:.1f} s")
    return report.Rep(
        rate=len(window.latencies) / window.seconds,
        p50_ms=report.percentile(window.latencies, 0.50) * 1000,
        p99_ms=report.percentile(window.latencies, 0.99) * 1000,
        errors=window.errors,
        cpu_percent=100 * window.cpu_seconds / window.seconds,
        cpu_ms=1000 * window.cpu_seconds / max(len(window.latencies), 1),
        rss_mib=bench.rss_mib(),
        seconds=window.seconds,
    )


# --- one provider ------------------------------------------------------------------------------


async def discover(base: str) -> dict[str, str]:
    async with (
        aiohttp.ClientSession(timeout=load.HTTP_TIMEOUT) as http,
        http.get(f"{base}/.well-known/openid-configuration") as response,
    ):
        metadata: dict[str, str] = await response.json()
        return metadata


async def open_bench(target: servers.Target, options: Options) -> Bench:
    """The provider's client with one logged-in browser per connection."""
    client = load.Client(target, await discover(target.base), CONCURRENCY)
    bench = Bench(target, client, [client.browser() for _ in range(CONCURRENCY)], options)
    servers.log(f"{target.name}: logging in {CONCURRENCY} browsers")
    try:
        await asyncio.gather(*(client.log_in(b) for b in bench.browsers))
    except BaseException:
        await close_bench(bench)
        raise
    return bench


async def close_bench(bench: Bench) -> None:
    for browser in bench.browsers:
        await browser.close()
    await bench.client.close()


async def bench_all(
    targets: list[servers.Target], options: Options, results: dict[tuple[str, str], report.Result]
) -> None:
    """Every scenario's repetitions, each taken of every provider in turn: the providers'
    figures of one repetition come from the same minute of the machine, whose speed drifts
    within the hour (docs/performance.md, "Method"). ``results``: by provider and scenario."""
    benches: list[Bench] = []
    try:
        for target in targets:
            try:
                benches.append(await open_bench(target, options))
            except MEASURING_ERRORS as error:
                servers.log(f"{target.name} FAILED: {type(error).__name__}: {error}")
                for scenario in options.scenarios:
                    results[(target.name, scenario)].failure = f"{type(error).__name__}: {error}"
        for scenario in options.scenarios:
            measure = with_client if scenario in STATEFUL else with_wrk
            for rep in range(options.reps):
                for bench in benches:
                    result = results[(bench.target.name, scenario)]
                    if result.failure:
                        continue
                    servers.log(f"{bench.target.name}: {scenario} ({rep + 1}/{options.reps})")
                    try:
                        result.reps.append(await measure(bench, scenario))
                    except MEASURING_ERRORS as error:
                        result.failure = f"{type(error).__name__}: {error}"
                        servers.log(f"{bench.target.name} {scenario} FAILED: {result.failure}")
    finally:
        for bench in benches:
            await close_bench(bench)


def server_for(
    name: str, spec: SeedSpec, tmp: Path, workers: servers.Workers
) -> AbstractContextManager[servers.Target]:
    if name == "node":
        return servers.node(spec, tmp)
    return servers.ours(name.removeprefix("ours-"), spec, tmp, workers)


def run_all(options: Options, results: list[report.Result]) -> None:
    """Every provider started (one after the other, each in its own directory), then measured
    side by side (``bench_all``). ``results`` gets one per provider and scenario at once, in
    the options' order, filled as they are measured: what was measured stays when the run is
    stopped. A provider that does not start fails its own scenarios only."""
    password = "Bench-" + secrets.token_urlsafe(12)
    scale = SCALE if options.scale else {"operators": options.operators}
    spec = SeedSpec(
        redirect_uri=servers.REDIRECT_URI, password=password, phone_prefix=PHONE_PREFIX, **scale
    )
    by_key = {
        (name, scenario): report.Result(scenario, name)
        for name in options.providers
        for scenario in options.scenarios
    }
    results.extend(by_key.values())
    with ExitStack() as running:
        targets = []
        for name in options.providers:
            tmp = running.enter_context(tempfile.TemporaryDirectory(prefix=f"idp-bench-{name}-"))
            try:
                targets.append(
                    running.enter_context(server_for(name, spec, Path(tmp), options.workers))
                )
            except (servers.BenchError, OSError) as error:
                servers.log(f"{name} FAILED: {type(error).__name__}: {error}")
                for scenario in options.scenarios:
                    by_key[(name, scenario)].failure = f"{type(error).__name__}: {error}"
        asyncio.run(bench_all(targets, options, by_key))


# --- command line ------------------------------------------------------------------------------


def names(value: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(allowed)}")
    return chosen


def parse(argv: list[str]) -> tuple[Options, Path]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions, median reported (3)")
    parser.add_argument(
        "--scenarios",
        type=lambda v: names(v, SCENARIOS),
        default=list(SCENARIOS),
        help=f"comma-separated, of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--providers",
        type=lambda v: names(v, PROVIDERS),
        default=list(PROVIDERS),
        help=f"comma-separated, of {','.join(PROVIDERS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="--duration 3 --warmup 1 --reps 1: a smoke run"
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="seed 100,000 operators, 1,000 clients and 1,000,000 tokens first",
    )
    parser.add_argument(
        "--operators", type=int, default=5000, help="seeded operator pool without --scale (5000)"
    )
    parser.add_argument(
        "--workers",
        type=servers.Workers.parse,
        default=servers.Workers(),
        help="how ours is served: granian:PxT (idp-serve, as in production), or gunicorn's"
        " gthread:PxT or sync:N (processes x threads; default granian:1x4)",
    )
    parser.add_argument("--output", type=Path, help="JSON file (default benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.reps = 3.0, 1.0, 1
    if not (1 <= args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.reps <= 20):
        parser.error("--duration 1..600, --warmup 0..60, --reps 1..20")
    if not 100 <= args.operators <= 1_000_000:
        parser.error("--operators 100..1000000")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or servers.ROOT / "benchmarks" / "results" / f"{stamp}.json"
    options = Options(
        args.duration,
        args.warmup,
        args.reps,
        args.scenarios,
        args.providers,
        args.operators,
        args.scale,
        args.workers,
    )
    return options, output


def time_limit(options: Options) -> int:
    """Seconds the whole run may take: preparation plus every measurement, generously."""
    per_rep = 3 * (options.warmup + options.duration) + 60
    per_provider = (900 if options.scale else 180) + len(options.scenarios) * options.reps * per_rep
    return int(len(options.providers) * per_provider)


class OverTimeError(Exception):
    """The run took longer than ``time_limit``: stop, cleaning up on the way out."""


def on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise OverTimeError("the benchmark ran over its time limit")


def main(argv: list[str] | None = None) -> int:
    options, output = parse(sys.argv[1:] if argv is None else argv)
    os.sched_setaffinity(0, {servers.LOAD_CPU})  # wrk and the asyncio client inherit it
    servers.stop_on_sigterm()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(time_limit(options))
    started = datetime.now(UTC)
    results: list[report.Result] = []
    try:
        run_all(options, results)
    except OverTimeError as error:
        servers.log(f"stopped: {error}")
        results.append(report.Result("-", "-", failure=str(error)))
    signal.alarm(0)
    settings: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "duration": options.duration,
        "warmup": options.warmup,
        "reps": options.reps,
        "concurrency": CONCURRENCY,
        "scale": options.scale,
        "workers": str(options.workers),
        "server_cpu": servers.SERVER_CPU,
        "load_cpu": servers.LOAD_CPU,
        "bench_settings": servers.BENCH_SETTINGS,
    }
    report.write_json(output, settings, results)
    print(
        f"\n{started:%Y-%m-%d %H:%M} UTC, {options.duration:g} s after {options.warmup:g} s "
        f"warm-up, {options.reps} rep(s), concurrency {CONCURRENCY}, ours on {options.workers}"
        f"{', after --scale seeding' if options.scale else ''}; medians; (ours/node)\n"
    )
    print(report.table(results))
    for result in results:
        if result.failure:
            print(f"{result.provider} {result.scenario}: {result.failure}")
    print(f"\nJSON: {output}")
    return 1 if any(r.failure or any(rep.errors for rep in r.reps) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
