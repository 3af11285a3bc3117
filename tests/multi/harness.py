"""Several provider instances on loopback, as a city would run them behind a load balancer.

``Cluster`` starts N instances of the provider under ``idp-serve`` (one worker each, on free
127.0.0.1 ports) that share one PostgreSQL database, one Redis, one key directory and the same
settings. ``RedisServer`` is a private ``redis-server`` the tests may stop and start again.
``Browser`` is one cookie jar that sends each request to the instance the test names, the way a
load balancer without sticky sessions may. The test process keeps a ``control`` app with the
same settings for what a test arranges and reads back (database rows, the SMS queue).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "http://localhost"
KILL_FILE_VARIABLE = "MULTI_TEST_KILL_FILE"  # read by tests/multi/wsgi.py only
START_TIMEOUT = 60.0


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def flatten(options: Mapping[str, str]) -> list[str]:
    """Command-line options from a mapping: ["--name", "value", ...]."""
    return [part for option in options.items() for part in option]


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# --- Redis ------------------------------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of the test's own on a free loopback port, without persistence: it
    can be killed (a Redis outage) and started again on the same port, empty."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        options = {
            "--bind": "127.0.0.1",
            "--port": str(self.port),
            "--save": "",
            "--appendonly": "no",
            "--dir": str(self.directory),
            "--logfile": str(self.directory / "redis.log"),
        }
        self.process = subprocess.Popen(
            [self.executable, *flatten(options)],
            stdin=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: _answers(client), f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as when the machine or the process dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushdb()


def _answers(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


# --- instances ------------------------------------------------------------------------------


@dataclass
class Instance:
    """One provider instance: the server's main process and its single worker (``idp-serve``)."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        options = {
            "--bind": f"127.0.0.1:{self.port}",
            "--workers": "1",
            "--threads": "4",
            "--log-level": "warning",
            "--app": "tests.multi.wsgi:app",
        }
        command = [sys.executable, "-m", "idp.serve", *flatten(options)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"instance {self.name} exited:\n{self.log_text()}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def worker_pids(self) -> list[int]:
        """The server's workers: the children of its main process."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        self.terminate()
        self.wait()

    def terminate(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@dataclass
class Cluster:
    """N instances with one configuration: the same database, Redis, keys, secrets and queue."""

    directory: Path
    database_url: str
    redis_url: str
    keys_dir: Path
    trust_dir: Path
    count: int = 3
    overrides: Mapping[str, str] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    control: Flask | None = None
    env: dict[str, str] = field(default_factory=dict)  # the IDP_* settings, once started

    def settings_env(self) -> dict[str, str]:
        """The ``IDP_*`` variables every instance (and ``idp`` commands) run with."""
        values = {
            "IDP_ISSUER": ISSUER,
            "IDP_DEV_MODE": "1",
            "IDP_INSTANCE_DIR": str(self.directory / "instance"),
            "IDP_DATABASE_URL": self.database_url,
            "IDP_SECRET_KEY": "multi-" + uuid.uuid4().hex,
            "IDP_DATA_KEY": Fernet.generate_key().decode(),
            "IDP_STORE_BACKEND": "redis",
            "IDP_REDIS_URL": self.redis_url,
            "IDP_KEYS_DIR": str(self.keys_dir),
            "IDP_TRUST_DIR": str(self.trust_dir),
            "IDP_SMS_OUTBOX": str(self.directory / "sms-outbox.jsonl"),
            "IDP_SMS_QUEUE_NAME": "idp_multi",
            "IDP_SMS_RETRY_DELAY": "0",
            "IDP_JWKS_MAX_AGE": "1",  # a rotation activates after 1 s
            "IDP_REALNAME_SANDBOX_FILE": str(self.directory / "realname-sandbox.csv"),
        }
        values.update(self.overrides)
        return values

    def start(self) -> None:
        settings_env = self.env = self.settings_env()
        process_env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        process_env |= settings_env | {
            "PYTHONPATH": str(ROOT),
            KILL_FILE_VARIABLE: str(self.kill_file),
        }
        self.instances = [
            Instance(
                name=name,
                port=free_port(),
                env=process_env,
                log=self.directory / f"instance-{name}.log",
            )
            for name in "ABCDEFGH"[: self.count]
        ]
        for instance in self.instances:
            instance.start()
        for instance in self.instances:
            wait_until(instance.ready, f"instance {instance.name}", timeout=START_TIMEOUT)
        self.control = make_control_app(settings_env)

    @contextmanager
    def instances_with_clocks(self, offsets: Mapping[str, int]) -> Iterator[list[Instance]]:
        """More instances, by name, whose clocks run the given seconds ahead (libfaketime,
        preloaded into the server's processes), for as long as the block runs."""
        library = faketime_library()
        assert library is not None, "libfaketime not installed"
        extra = [
            Instance(
                name=name,
                port=free_port(),
                env=self.instances[0].env
                | {"LD_PRELOAD": str(library), "FAKETIME": f"{offset:+d}s"},
                log=self.directory / f"instance-{name}.log",
            )
            for name, offset in offsets.items()
        ]
        self.instances.extend(extra)
        try:
            for instance in extra:
                instance.start()
            for instance in extra:
                wait_until(instance.ready, f"instance {instance.name}", timeout=START_TIMEOUT)
            yield extra
        finally:
            stop_all(extra)
            for instance in extra:
                self.instances.remove(instance)

    @property
    def kill_file(self) -> Path:
        return self.directory / "kill-next-token-request"

    def stop(self) -> None:
        stop_all(self.instances)
        if self.control is not None:
            from idp import db

            db.dispose(self.control)
            self.control.extensions["idp.keys"].close()

    def logs(self) -> str:
        return "\n".join(f"--- {i.name}:\n{i.log_text()}" for i in self.instances)

    def idp(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run an ``idp`` command with the instances' settings (as an operator would)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env |= self.env | {"PYTHONPATH": str(ROOT)}
        return subprocess.run(
            [sys.executable, "-m", "idp.cli", *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def __getitem__(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)


def stop_all(instances: list[Instance]) -> None:
    """SIGTERM to every instance at once, then wait for each to finish what is in flight."""
    for instance in instances:
        instance.terminate()
    for instance in instances:
        instance.wait()


def faketime_library() -> Path | None:
    """Debian's libfaketime for multithreaded programs (package libfaketime), if installed."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


def make_control_app(env: Mapping[str, str]) -> Flask:
    from idp import create_app
    from idp.config import Settings

    app = create_app(Settings.from_env(dict(env)))
    app.config.update(TESTING=True)
    return app


# --- a browser --------------------------------------------------------------------------------


class Browser:
    """One browser (one cookie jar) whose requests the test sends to a chosen instance."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def at(self, instance: Instance) -> InstanceClient:
        return InstanceClient(self.http, instance.url)

    def cookie(self, name: str) -> str | None:
        value = self.http.cookies.get(name)
        return None if value is None else str(value)

    def set_cookie(self, name: str, value: str) -> None:
        self.http.cookies.set(name, value, domain="127.0.0.1", path="/")


class InstanceClient:
    """The part of Flask's test client that ``tests/flows.py`` uses, over real HTTP to one
    instance: paths or issuer URLs, no redirects followed, form posts."""

    def __init__(self, http: requests.Session, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    def url(self, path: str) -> str:
        if path.startswith(ISSUER):
            path = path[len(ISSUER) :]
        assert path.startswith("/"), f"not a provider URL: {path}"
        return self.base_url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(
            self.url(path),
            params=kwargs.pop("query_string", None),
            allow_redirects=False,
            timeout=30,
            **kwargs,
        )

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), allow_redirects=False, timeout=30, **kwargs)


@contextmanager
def started(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, started; stopped afterwards, its logs printed when a start failed."""
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        print(cluster.logs())
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
