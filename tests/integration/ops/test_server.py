"""The production server with 2 worker processes, started as the container starts it (the
entry point, then ``idp-serve``): whichever worker answers ``/metrics`` reports the requests of
both, summed; a worker that is replaced keeps its counts in the sum; the workers end when the
main process is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from idp.config import ROOT
from tests.processes import stop

REQUESTS = 40
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, metrics_dir: Path) -> None:
        self.process, self.url, self.metrics_dir = process, f"http://127.0.0.1:{port}", metrics_dir

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def healthz_count(self) -> float:
        """``idp_http_requests_total`` of /healthz, from a fresh connection each time."""
        response = requests.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == "idp_http_requests_total"
            and sample.labels["endpoint"] == "ops.healthz"
        )

    def healthz_count_of_each_worker(self) -> dict[int, float]:
        """What each worker's own file holds (by worker pid), read as /metrics reads them."""
        counts = {}
        for path in self.metrics_dir.glob("counter_*.db"):
            families = multiprocess.MultiProcessCollector.merge([str(path)], accumulate=False)
            counts[int(path.stem.rsplit("_", 1)[1])] = sum(
                sample.value
                for family in families
                for sample in family.samples
                if sample.name == "idp_http_requests_total"
                and sample.labels["endpoint"] == "ops.healthz"
            )
        return counts

    def send_healthz(self, count: int) -> None:
        """``count`` requests at once, each on its own connection, so both workers get some."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(
                    lambda _: requests.get(f"{self.url}/healthz", timeout=10).status_code,
                    range(count),
                )
            )
        assert statuses == [200] * count

    def wait_for_workers(self, count: int) -> int:
        """Until ``count`` workers run and each has answered a /healthz (a worker still loading
        the app would miss a SIGTERM); returns how many /healthz were sent meanwhile."""
        deadline, sent = time.monotonic() + START_SECONDS, 0
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            pids = self.worker_pids()
            if len(pids) == count:
                try:
                    self.send_healthz(REQUESTS)
                    sent += REQUESTS
                except requests.RequestException:  # a worker still loading the app
                    pass
                answered = self.healthz_count_of_each_worker()
                if all(answered.get(pid, 0) > 0 for pid in pids):
                    return sent
            time.sleep(0.2)
        raise AssertionError("the server did not start its workers")


@pytest.fixture
def server(tmp_path: Path, keys_dir: Path) -> Iterator[Server]:
    port, metrics_dir = free_port(), tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"a previous run's values")
    environment = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "IDP_DEV_MODE": "1",
        "IDP_INSTANCE_DIR": str(tmp_path / "instance"),
        "IDP_KEYS_DIR": str(keys_dir),
        "IDP_ISSUER": f"http://127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_CONCURRENCY": "2",
    }
    command = [
        str(ROOT / "deploy" / "entrypoint.sh"),
        "idp-serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--threads",
        "2",
    ]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=log, stderr=log)
    try:
        running = Server(process, port, metrics_dir)
        running.wait_for_workers(2)
        yield running
    finally:
        stop(process, grace=30)
        log.close()


def test_both_workers_counts_are_summed(server: Server) -> None:
    assert not (server.metrics_dir / "counter_1.db").exists()  # emptied at start
    before = server.healthz_count()

    server.send_healthz(REQUESTS)
    after = [server.healthz_count() for _ in range(6)]
    per_worker = server.healthz_count_of_each_worker()

    assert all(per_worker.get(pid, 0) > 0 for pid in server.worker_pids()), per_worker
    assert after == [before + REQUESTS] * 6  # whichever worker answered: the sum of both
    assert sum(per_worker.values()) == before + REQUESTS


def test_a_replaced_workers_counts_stay_in_the_sum(server: Server) -> None:
    server.send_healthz(REQUESTS)
    counted = server.healthz_count()
    old = server.worker_pids()

    os.kill(min(old), signal.SIGTERM)  # the server starts a new worker in its place
    deadline = time.monotonic() + START_SECONDS
    while (server.worker_pids() == old or len(server.worker_pids()) != 2) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    sent_meanwhile = server.wait_for_workers(2)

    assert server.worker_pids() != old
    assert server.healthz_count() == counted + sent_meanwhile


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_workers_end_when_the_main_process_is_killed(server: Server) -> None:
    workers = server.worker_pids()

    server.process.kill()  # SIGKILL: the main process cannot stop its workers
    server.process.wait()
    deadline = time.monotonic() + 15
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert not [pid for pid in workers if running(pid)]
    with pytest.raises(requests.ConnectionError):  # nobody is left on the socket
        requests.get(f"{server.url}/healthz", timeout=5)


def test_a_worker_that_starts_after_its_main_process_died_ends_itself() -> None:
    """The watch compares the parent with the main process's pid (not with the parent it saw
    first), so a worker the main process spawned just before it died ends too."""
    gone = "0"  # no process's parent: as a main process that died before the worker ran
    script = f"import time; from idp import serve; serve.end_when_orphaned({gone}); time.sleep(30)"
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)

    assert worker.wait(timeout=15) == -signal.SIGTERM


def test_a_worker_freezes_what_it_loaded_out_of_the_collectors_walks() -> None:
    """Full collections would otherwise walk every object the app loaded, all threads stopped."""
    script = "import gc; from idp import serve; serve.worker_app(); print(gc.get_freeze_count())"
    environment = {**os.environ, "WSGI_APP": "idp:create_app", "WSGI_SERVER_PID": str(os.getpid())}
    frozen = subprocess.run(
        [sys.executable, "-c", script], env=environment, cwd=ROOT, capture_output=True, timeout=60
    )

    assert frozen.returncode == 0, frozen.stderr
    assert int(frozen.stdout) > 10_000  # what it imported: the provider's package, Flask, …


def test_a_worker_keeps_no_settings_variable_once_the_app_has_read_them(
    tmp_path: Path, keys_dir: Path
) -> None:
    """granian copies the worker's environment into every request's WSGI environ: the
    settings, secrets among them, must not travel with each request."""
    script = (
        "import os; from idp import serve; from idp.config import settings; "
        "app = serve.worker_app(); "
        "print(sorted(name for name in os.environ if name.startswith('IDP_'))); "
        "app.app_context().push(); print(settings().issuer)"
    )
    environment = {
        **os.environ,
        "WSGI_APP": "idp:create_app()",
        "WSGI_SERVER_PID": str(os.getpid()),
        "IDP_DEV_MODE": "1",
        "IDP_INSTANCE_DIR": str(tmp_path / "instance"),
        "IDP_KEYS_DIR": str(keys_dir),
        "IDP_ISSUER": "http://127.0.0.1:5999",
    }
    worker = subprocess.run(
        [sys.executable, "-c", script], env=environment, cwd=ROOT, capture_output=True, timeout=60
    )

    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.decode().splitlines() == ["[]", "http://127.0.0.1:5999"]
