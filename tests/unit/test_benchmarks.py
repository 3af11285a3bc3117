"""The benchmark harness's own logic (benchmarks/): the table and its ratios, the wrk script,
the SMS outbox reader, the order providers are measured in, the in-process measurement (run end
to end, small). Running the benchmark itself is ``python -m benchmarks.run``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from benchmarks import inprocess, load, report, run, served, servers, wrk
from idp import serve
from tests.conftest import missing


def run_async(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: a browser test on the same pytest worker may
    have left an event loop running in this one (Playwright's sync API)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def rep(rate: float, p50: float = 10.0) -> report.Rep:
    return report.Rep(
        rate=rate,
        p50_ms=p50,
        p99_ms=2 * p50,
        errors=0,
        cpu_percent=50,
        cpu_ms=1.0,
        rss_mib=100,
        seconds=10,
    )


def test_table_shows_medians_and_each_figure_as_a_ratio_to_node():
    ours = report.Result("token", "ours-sqlite", [rep(10), rep(30), rep(20, p50=40)])
    node = report.Result("token", "node", [rep(100, p50=5)])
    lines = report.table([ours, node]).splitlines()
    ours_row = next(line for line in lines if "ours-sqlite" in line)
    node_row = next(line for line in lines if "| node" in line)
    assert "20.0 (0.20)" in ours_row  # median rate 20 over node's 100
    assert "10.0 (2.00)" in ours_row  # median p50 10 ms over node's 5 ms
    assert "(" not in node_row


def test_table_marks_a_failed_scenario_and_gives_no_ratio_without_node():
    failed = report.Result("flows", "ours-postgres", failure="LoadError: no login code")
    alone = report.Result("jwks", "ours-sqlite", [rep(50)])
    text = report.table([failed, alone])
    assert "FAILED" in next(line for line in text.splitlines() if "flows" in line)
    assert "50.0 |" in text and "(" not in text.split("\n", 2)[2]


def test_json_holds_every_repetition_and_the_medians(tmp_path: Path):
    result = report.Result("jwks", "node", [rep(10), rep(20), rep(30)])
    path = tmp_path / "out" / "run.json"
    report.write_json(path, {"reps": 3}, [result])
    document = json.loads(path.read_text())
    assert document["settings"] == {"reps": 3}
    assert [r["rate"] for r in document["results"][0]["reps"]] == [10, 20, 30]
    assert document["results"][0]["median"]["rate"] == 20


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 0.50) == 50
    assert report.percentile(values, 0.99) == 99
    assert report.percentile([], 0.5) != report.percentile([], 0.5)  # nan


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.seen.append((self.command, self.headers["Authorization"], body))
        self.send_response(200 if body == "grant_type=client_credentials" else 400)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk drops its connections when it stops


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
def test_wrk_sends_the_scripted_request_and_counts_the_answers():
    server = QuietServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = wrk.Request(
            f"http://127.0.0.1:{server.server_address[1]}/token",
            "POST",
            {"Authorization": "Basic YTpi", "Content-Type": "application/x-www-form-urlencoded"},
            "grant_type=client_credentials",
        )
        result = wrk.run(request, seconds=1, connections=2)
    finally:
        server.shutdown()
    assert result.requests > 0 and result.errors == 0
    assert set(Recorder.seen) == {("POST", "Basic YTpi", "grant_type=client_credentials")}
    assert 0 < result.p50_ms <= result.p99_ms


def test_wrk_script_quotes_values_apart_from_the_table_brackets():
    text = wrk.script(wrk.Request("http://x/", headers={"Authorization": "Bearer t"}))
    assert "[[" not in text  # "[[" would start a Lua long string inside the index
    with pytest.raises(ValueError):
        wrk.lua_string("a]==]b")


def test_outbox_reader_takes_complete_lines_only_and_each_code_once(tmp_path: Path):
    path = tmp_path / "outbox.jsonl"
    outbox = load.Outbox(path)
    first = {"phone": "13900000001", "purpose": "login", "code": "123456"}
    other = {"phone": "13900000002", "purpose": "join", "code": "999999"}
    half = json.dumps({"phone": "13900000003", "purpose": "login", "code": "654321"})
    path.write_text(json.dumps(first) + "\n" + json.dumps(other) + "\n" + half[:20])
    assert run_async(outbox.code_for("13900000001")) == "123456"
    assert "13900000002" not in outbox.codes  # not a login code
    with path.open("a") as file:
        file.write(half[20:] + "\n")
    assert run_async(outbox.code_for("13900000003")) == "654321"
    assert outbox.codes == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sync", ("sync", 1, 1)),
        ("sync:2", ("sync", 2, 1)),
        ("gthread:1x4", ("gthread", 1, 4)),
        ("gthread:2", ("gthread", 2, 1)),
        ("granian:1x2", ("granian", 1, 2)),
    ],
)
def test_workers_option_names_class_processes_and_threads(value, expected):
    workers = servers.Workers.parse(value)
    assert (workers.kind, workers.processes, workers.threads) == expected
    assert servers.Workers.parse(str(workers)) == workers


@pytest.mark.parametrize("value", ["eventlet", "sync:1x4", "gthread:0x4", "gthread:1x99", "sync:x"])
def test_workers_option_refuses_what_no_server_should_run(value):
    with pytest.raises(ValueError):
        servers.Workers.parse(value)


def test_ours_is_served_as_in_production_unless_told_otherwise():
    workers = servers.Workers()

    assert str(workers) == "granian:1x4"
    assert Path(workers.command("127.0.0.1:9000")[0]).name == "idp-serve"


def test_each_repetition_is_taken_of_every_provider_in_turn(monkeypatch):
    """A ratio compares figures of the same minutes; a provider that cannot log in fails its
    own scenarios and the others are still measured."""
    taken: list[tuple[str, str]] = []

    async def open_bench(target: Any, options: Any) -> Any:
        if target.name == "ours-sqlite":
            raise load.LoadError("login refused")
        return run.Bench(target, None, [], options)  # type: ignore[arg-type]

    async def measure(bench: Any, scenario: str) -> report.Rep:
        taken.append((bench.target.name, scenario))
        return rep(100.0)

    monkeypatch.setattr(run, "open_bench", open_bench)
    monkeypatch.setattr(run, "close_bench", lambda bench: asyncio.sleep(0))
    monkeypatch.setattr(run, "with_wrk", measure)
    monkeypatch.setattr(run, "with_client", measure)
    providers = ["ours-postgres", "ours-sqlite", "node"]
    options = run.Options(
        duration=1,
        warmup=0,
        reps=2,
        scenarios=["jwks", "token"],
        providers=providers,
        operators=1,
        scale=False,
        workers=servers.Workers(),
    )
    targets: Any = [SimpleNamespace(name=name) for name in providers]
    results = {(p, s): report.Result(s, p) for p in providers for s in options.scenarios}

    run_async(run.bench_all(targets, options, results))

    assert taken == [
        ("ours-postgres", "jwks"), ("node", "jwks"), ("ours-postgres", "jwks"), ("node", "jwks"),
        ("ours-postgres", "token"), ("node", "token"), ("ours-postgres", "token"), ("node", "token"),
    ]  # fmt: skip
    assert [len(results[("node", s)].reps) for s in options.scenarios] == [2, 2]
    assert all(
        results[("ours-sqlite", s)].failure == "LoadError: login refused" for s in options.scenarios
    )


# A benchmark command's shape: a server started through ``servers.process``, then a long wait.
WITH_A_SERVER = """
import sys, time
from pathlib import Path
from benchmarks import servers
servers.stop_on_sigterm()
sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
with servers.process(sleeper, {}, Path(sys.argv[1])) as server:
    print(server.pid, flush=True)
    time.sleep(120)
"""


def test_a_command_stopped_with_sigterm_stops_the_servers_it_started(tmp_path: Path):
    command = subprocess.Popen(
        [sys.executable, "-c", WITH_A_SERVER, str(tmp_path / "server.log")],
        cwd=servers.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert command.stdout is not None
    server = int(command.stdout.readline())
    command.terminate()

    assert command.wait(timeout=60) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(server, 0)


def test_waiting_for_a_server_ends_at_the_time_it_is_given(tmp_path: Path):
    """``benchmarks.served`` gives a server under callgrind longer than the default."""
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    logfile = tmp_path / "server.log"
    logfile.write_text("")
    try:
        began = time.monotonic()
        with pytest.raises(servers.BenchError, match=r"did not answer within 1\.5 s"):
            servers.wait_ready(silent, f"http://127.0.0.1:{servers.free_port()}", logfile, 1.5)
        assert 1.5 <= time.monotonic() - began < servers.START_TIMEOUT
    finally:
        silent.kill()
        silent.wait()
    assert served.START_TIMEOUT > servers.START_TIMEOUT
    # and its worker has longer than idp-serve's default to exit, yet ends before served stops
    assert serve.SHUTDOWN_SECONDS < served.WORKER_EXIT_SECONDS < served.EXIT_TIMEOUT


def run_module(module: str, *argv: str) -> str:
    """A benchmark command run as its users run it: what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def run_inprocess(*argv: str) -> dict[str, tuple[float, float]]:
    """``benchmarks.inprocess``: its table's rows, by scenario."""
    printed = run_module("benchmarks.inprocess", *argv)
    return {
        cells[0]: (float(cells[1].replace(",", "")), float(cells[2]))
        for line in printed.splitlines()
        if line.startswith("| ") and not line.startswith("| scenario")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }


def test_inprocess_run_reports_every_scenario_with_its_statements():
    """The in-process measurement end to end on the embedded default: a prepared instance, its
    SMS worker, logins through the test client, every scenario measured."""
    rows = run_inprocess("--requests", "3", "--reps", "1")
    assert set(rows) == set(inprocess.SCENARIOS)
    assert all(cpu_ms > 0 for cpu_ms, _ in rows.values())
    assert rows["healthz"][1] == 0.0  # the probe touches no database
    assert rows["client_credentials"][1] == 1.0  # the token (the client is kept: client_cache)
    assert rows["userinfo"][1] == 1.0  # the token with its client and standing


def test_inprocess_counts_the_same_instructions_each_time_under_callgrind():
    """``--instructions``: a count per request from valgrind's callgrind, the same in two runs
    of the same code (what makes it fit to judge a change of a few per cent)."""
    if shutil.which("callgrind_control") is None:
        missing("valgrind is not installed (Debian: valgrind)")
    argv = ["--scenarios", "client_credentials", "--requests", "5", "--instructions"]

    def count() -> float:
        return run_inprocess(*argv)["client_credentials"][0]

    first, second = count(), count()
    assert 100_000 < first < 100_000_000  # a request, not a process start or nothing
    assert abs(first - second) <= first / 200


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        (inprocess, ["--scenarios", "userinfo,bogus"], "unknown bogus"),
        (inprocess, ["--instructions", "--profile", "x.prof"], "one at a time"),
        (inprocess, ["--requests", "0"], "at least 1"),
        (inprocess, ["--database", "mysql"], "invalid choice"),
        (served, ["--scenarios", "userinfo"], "unknown scenarios: userinfo"),  # needs a login
        (served, ["--requests", "0"], "at least 1"),
        (served, ["--warmup", "0"], "at least 1"),
    ],
)
def test_measuring_commands_refuse_what_they_cannot_measure(command, argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        command.parse(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_served_counts_the_instructions_of_a_request_the_worker_serves():
    """``benchmarks.served`` end to end on the embedded default: the worker under callgrind,
    two runs, the difference per request."""
    if shutil.which("valgrind") is None:
        missing("valgrind is not installed (Debian: valgrind)")
    argv = ["--scenarios", "healthz", "--requests", "50", "--warmup", "10"]
    printed = run_module("benchmarks.served", *argv)
    row = next(line for line in printed.splitlines() if line.startswith("| healthz"))
    count = int(row.split("|")[2].replace(",", ""))
    assert 100_000 < count < 10_000_000  # a request, not a process start or nothing
