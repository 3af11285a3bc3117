"""Benchmark the token endpoint and complete code flows against the provider under gunicorn.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/token_endpoint.py [--requests N] [--concurrency C]
                                                  [--only sqlite|postgres]

For each configuration the script prepares a fresh provider in a temporary directory (migrations,
signing keys, one confidential client, one organisation, one operator per simulated browser, all
through the ``idp`` command), starts ``gunicorn -w 2 --threads 4`` on a free loopback port and
measures, with C client threads (one ``requests.Session`` each):

1. code redemption: ``authorization_code`` grant with PKCE (S256) at /oauth/token; the codes
   are minted first, sequentially, through /authorize with logged-in browser sessions;
2. refresh: ``refresh_token`` grant with rotation, each refresh token of step 1 used once;
3. complete code flows: GET /authorize with an existing login session cookie -> code ->
   /oauth/token. The interactive login (SMS code, forced password change) is done once per
   simulated browser before the measurement, because logins are rate-limited per phone.

Configurations: (a) ``sqlite``: embedded default, SQLite file + IDP_STORE_BACKEND=sql;
(b) ``postgres``: PostgreSQL database ``idp_bench`` (recreated, dropped at the end) + Redis db 14.

Only loopback addresses are used. Every loop is bounded in count and in time; the gunicorn
process and the temporary database are removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: redirects are not followed there
SCOPE = "openid profile phone"
USCC = "91310000MA1K000019"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_DATABASE = "idp_bench"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/14"
REDIS_PREFIX = "idp:"  # RedisStore's key prefix
HTTP_TIMEOUT = 30  # seconds, every request
CLI_TIMEOUT = 120  # seconds, every ``idp`` command
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
# Settings that differ from the defaults only to make the benchmark possible, never faster:
# all simulated browsers share 127.0.0.1 (30 SMS codes and 50 login attempts per network by
# default), and minting many codes before redeeming them may take longer than the 60 s code
# lifetime.
BENCH_SETTINGS = {
    "IDP_SMS_IP_HOURLY_LIMIT": "1000",
    "IDP_LOGIN_IP_LIMIT": "1000",
    "IDP_CODE_TTL": "600",
}
ERROR_LINE = re.compile(r"Traceback|Error|ERROR|Exception|CRITICAL|WORKER TIMEOUT|\b5\d\d\b")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The provider or the environment did not behave as the benchmark needs."""


# --- HTTP helpers --------------------------------------------------------------------------------


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass
class Client:
    client_id: str
    client_secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)


@dataclass
class Minted:
    """An authorization code waiting for redemption, with its PKCE verifier."""

    code: str
    verifier: str


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if not match:
        raise BenchError(f"no csrf_token in page: {html[:300]!r}")
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def describe(response: requests.Response) -> str:
    return f"{response.request.method} {urlsplit(response.url).path} -> {response.status_code} {response.text[:400]!r}"


def authorize_params(client_id: str, pkce: Pkce) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }


def code_from(response: requests.Response, state: str) -> str:
    """The code of an authorization response that redirects to the relying party."""
    location = response.headers.get("Location", "")
    if response.status_code != 302 or not location.startswith(REDIRECT_URI):
        raise BenchError(
            f"authorize did not redirect to the client with a code: {describe(response)} Location={location!r}"
        )
    params = query_of(location)
    if "code" not in params or params.get("state") != state:
        raise BenchError(f"bad authorization response: {location!r}")
    return params["code"]


def mint_code(base: str, browser: requests.Session, client: Client) -> Minted:
    """One /authorize request with a logged-in session: straight to the client with a code."""
    pkce = Pkce.new()
    params = authorize_params(client.client_id, pkce)
    response = browser.get(
        f"{base}/authorize", params=params, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    return Minted(code_from(response, params["state"]), pkce.verifier)


def token_problem(response: requests.Response, *, want_id_token: bool) -> str | None:
    """None when ``response`` is a complete token response, else a description. A refresh
    response need not carry an ID token (OIDC Core §12.2)."""
    if response.status_code != 200:
        return describe(response)
    try:
        body = response.json()
    except ValueError:
        return describe(response)
    expected = {"access_token", "refresh_token"} | ({"id_token"} if want_id_token else set())
    if not isinstance(body, dict) or not expected <= set(body):
        return f"token response without {sorted(expected)}: {response.text[:400]!r}"
    return None


def redeem(
    base: str, rp: requests.Session, client: Client, minted: Minted
) -> tuple[str | None, dict[str, Any]]:
    response = rp.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": minted.code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": minted.verifier,
        },
        auth=client.auth,
        timeout=HTTP_TIMEOUT,
    )
    problem = token_problem(response, want_id_token=True)
    return problem, ({} if problem else response.json())


def refresh(base: str, rp: requests.Session, client: Client, refresh_token: str) -> str | None:
    response = rp.post(
        f"{base}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=client.auth,
        timeout=HTTP_TIMEOUT,
    )
    problem = token_problem(response, want_id_token=False)
    if problem is None and response.json()["refresh_token"] == refresh_token:
        return "refresh token was not rotated"
    return problem


# --- the interactive login, once per simulated browser ------------------------------------------


def outbox_code(outbox: Path, phone: str, *, tries: int = 100) -> str:
    """The newest login code sent to ``phone`` (written by ``idp worker`` shortly after the
    response)."""
    for _attempt in range(tries):
        lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
        for line in reversed(lines):
            record = json.loads(line)
            if record.get("phone") == phone and record.get("purpose") == "login":
                return str(record["code"])
        time.sleep(0.1)
    raise BenchError(f"no login code for {phone} in {outbox}")


def follow(base: str, browser: requests.Session, response: requests.Response, state: str) -> str:
    """Follow redirects inside the provider until one goes to the client; return the code."""
    for _hop in range(8):
        location = response.headers.get("Location", "")
        if response.status_code in (302, 303) and location.startswith(REDIRECT_URI):
            return code_from(response, state)
        if response.status_code not in (302, 303) or not location:
            raise BenchError(f"unexpected step in the code flow: {describe(response)}")
        response = browser.get(
            urljoin(base + "/", location), allow_redirects=False, timeout=HTTP_TIMEOUT
        )
    raise BenchError("too many redirects in the code flow")


def log_in(
    base: str, outbox: Path, client: Client, *, phone: str, password: str, new_password: str
) -> tuple[requests.Session, Minted]:
    """The first code flow of one browser: /authorize -> /login (password + SMS code) ->
    forced /password/change -> /authorize/resume -> code. Returns the logged-in session."""
    browser = requests.Session()
    pkce = Pkce.new()
    params = authorize_params(client.client_id, pkce)
    first = browser.get(
        f"{base}/authorize", params=params, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    location = first.headers.get("Location", "")
    if first.status_code != 302 or "/login" not in location:
        raise BenchError(f"authorize did not ask for a login: {describe(first)}")
    interaction = query_of(location)["interaction"]
    page = browser.get(urljoin(base + "/", location), timeout=HTTP_TIMEOUT)
    token = csrf_token(page.text)
    sent = browser.post(
        f"{base}/login/sms-code", data={"phone": phone, "csrf_token": token}, timeout=HTTP_TIMEOUT
    )
    if sent.status_code != 200:
        raise BenchError(f"SMS code request failed: {describe(sent)}")
    done = browser.post(
        f"{base}/login",
        data={
            "phone": phone,
            "password": password,
            "sms_code": outbox_code(outbox, phone),
            "csrf_token": token,
            "interaction": interaction,
        },
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    if done.status_code != 302 or "/password/change" not in done.headers.get("Location", ""):
        raise BenchError(f"login did not lead to the forced password change: {describe(done)}")
    page = browser.get(
        f"{base}/password/change", params={"interaction": interaction}, timeout=HTTP_TIMEOUT
    )
    changed = browser.post(
        f"{base}/password/change",
        params={"interaction": interaction},
        data={
            "current_password": password,
            "new_password": new_password,
            "confirm_password": new_password,
            "csrf_token": csrf_token(page.text),
        },
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    if changed.status_code != 302:
        raise BenchError(f"password change failed: {describe(changed)}")
    code = follow(base, browser, changed, params["state"])
    return browser, Minted(code, pkce.verifier)


def new_password() -> str:
    """A random password meeting the policy: four character classes, no phone number inside."""
    return "Bk7-" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")


# --- measurement -----------------------------------------------------------------------------


@dataclass
class Result:
    config: str
    scenario: str
    requests: int
    concurrency: int
    seconds: float
    latencies: list[float]  # seconds, one per completed request (or flow)
    errors: int
    skipped: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)] * 1000


def run_parallel(
    items: list[Any],
    concurrency: int,
    make_state: Callable[[int], Any],
    call: Callable[[Any, Any], str | None],
    *,
    budget: float,
) -> tuple[float, list[float], int, int, list[str]]:
    """Run ``call(state, item)`` for every item on ``concurrency`` threads (a static share
    each, one ``make_state(i)`` per thread). Returns wall time, latencies, errors, skipped
    items (over the time budget) and up to 5 error descriptions."""
    chunks = [items[i::concurrency] for i in range(concurrency)]
    lock = threading.Lock()
    latencies: list[float] = []
    problems: list[str] = []
    counts = {"errors": 0, "skipped": 0}
    barrier = threading.Barrier(concurrency + 1, timeout=120)
    window = {"deadline": 0.0}

    def worker(index: int) -> None:
        state = make_state(index)
        barrier.wait()
        for item in chunks[index]:
            if time.monotonic() > window["deadline"]:
                with lock:
                    counts["skipped"] += 1
                continue
            started = time.perf_counter()
            try:
                problem = call(state, item)
            except (requests.RequestException, BenchError) as error:
                problem = f"{type(error).__name__}: {error}"
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if problem is not None:
                    counts["errors"] += 1
                    if len(problems) < 5:
                        problems.append(problem)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, i) for i in range(concurrency)]
        window["deadline"] = time.monotonic() + budget
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result(timeout=budget + HTTP_TIMEOUT * 2 + 60)
        wall = time.perf_counter() - started
    return wall, latencies, counts["errors"], counts["skipped"], problems


# --- the provider under gunicorn -------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def idp_command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "idp"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"idp {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


def json_output(text: str) -> dict[str, Any]:
    """The JSON object the ``idp`` command printed (stdout holds nothing else)."""
    value = json.loads(text[text.index("{") :])
    if not isinstance(value, dict):
        raise BenchError(f"unexpected idp output: {text[:300]!r}")
    return value


def prepare(env: dict[str, str], phones: list[str], password: str) -> Client:
    """Migrate, create signing keys, register the client, the organisation and the operators."""
    idp_command(env, "db", "upgrade")
    idp_command(env, "keys", "generate", "--alg", "ES256")
    idp_command(env, "keys", "generate", "--alg", "RS256")
    metadata = {
        "client_name": "benchmark RP",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": SCOPE,
        "require_pkce": True,
    }
    info = json_output(idp_command(env, "clients", "add", "--json", json.dumps(metadata)))
    client = Client(str(info["client_id"]), str(info["client_secret"]))
    idp_command(env, "orgs", "add", "--uscc", USCC, "--name", "压测审计事务所", "--type", "audit")
    for index, phone in enumerate(phones):
        idp_command(
            env,
            "operators",
            "add",
            "--org",
            USCC,
            "--name",
            f"压测{index}",
            "--phone",
            phone,
            "--password",
            password,
        )
    return client


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, logfile: Path) -> Iterator[subprocess.Popen[bytes]]:
    base = f"http://127.0.0.1:{port}"
    command = [
        str(VENV_BIN / "gunicorn"),
        "-w",
        str(GUNICORN_WORKERS),
        "--threads",
        str(GUNICORN_THREADS),
        "-b",
        f"127.0.0.1:{port}",
        "--error-logfile",
        "-",
        "idp:create_app()",
    ]
    with logfile.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _attempt in range(240):  # at most about 60 s
            if process.poll() is not None:
                raise BenchError(f"gunicorn exited with {process.returncode}; see log below")
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{base}/.well-known/openid-configuration", timeout=2)
                if ready.status_code == 200:
                    break
            time.sleep(0.25)
        else:
            raise BenchError("gunicorn did not answer within 60 s")
        yield process
    finally:
        stop(process)


@contextlib.contextmanager
def sms_worker(env: dict[str, str], logfile: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``idp worker``, which delivers the login codes into the outbox."""
    command = [sys.executable, "-m", "idp.cli", "worker", "--workers", "2"]
    with logfile.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master (graceful), SIGKILL to its process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group start_new_session made
            process.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_report(master: int) -> str:
    parts = [f"master {master}: VmHWM {status_kib(master, 'VmHWM')} KiB"]
    for pid in children_of(master):
        parts.append(
            f"worker {pid}: VmHWM {status_kib(pid, 'VmHWM')} KiB "
            f"(VmRSS now {status_kib(pid, 'VmRSS')} KiB)"
        )
    return "; ".join(parts)


def error_lines(logfile: Path, *, limit: int = 80) -> list[str]:
    """Lines of the gunicorn log that look like errors, with the traceback lines after them."""
    if not logfile.exists():
        return []
    picked: list[str] = []
    in_traceback = False
    for line in logfile.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line.startswith((" ", "\t")):
            in_traceback = False
            picked.append(line)  # the exception line closing the traceback
            continue
        if in_traceback or ERROR_LINE.search(line):
            picked.append(line)
        if len(picked) >= limit:
            break
    return picked


# --- external services of configuration (b) ---------------------------------------------------


def recreate_postgres() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))


def drop_postgres() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE))
        )


def clear_redis() -> int:
    """Delete the provider's keys (prefix idp:) from Redis db 14; returns how many."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=REDIS_PREFIX + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += int(client.delete(*batch))
            batch = []
        if removed > 5_000_000:  # bound: far more than a run creates
            break
    if batch:
        removed += int(client.delete(*batch))
    client.close()
    return removed


# --- one configuration -------------------------------------------------------------------------


@dataclass
class Options:
    requests: int
    concurrency: int
    budget: float


def bench_configuration(
    name: str, options: Options
) -> tuple[list[Result], str, list[str], str | None]:
    """Prepare, start, measure and stop one configuration; returns results, memory, gunicorn
    log lines that look like errors, and the failure (None when it ran through)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix=f"idp-bench-{name}-") as tmp:
        instance = Path(tmp) / "instance"
        instance.mkdir()  # ``idp db upgrade`` does not create it when IDP_SECRET_KEY is set
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update(
            IDP_INSTANCE_DIR=str(instance),
            IDP_KEYS_DIR=str(Path(tmp) / "keys"),
            IDP_ISSUER=base,
            IDP_DEV_MODE="1",
            IDP_SECRET_KEY=secrets.token_urlsafe(48),
            **BENCH_SETTINGS,
        )
        if name == "postgres":
            env.update(IDP_DATABASE_URL=PG_URL, IDP_STORE_BACKEND="redis", IDP_REDIS_URL=REDIS_URL)
        else:
            env.update(IDP_STORE_BACKEND="sql")
        logfile = Path(tmp) / "gunicorn.log"
        memory = "not measured"
        failure = None
        try:
            if name == "postgres":
                recreate_postgres()
                log(f"{name}: removed {clear_redis()} stale keys from Redis db 14")
            browsers_wanted = options.concurrency
            phones = [f"1390000{index:04d}" for index in range(browsers_wanted)]
            password = new_password()
            log(f"{name}: preparing (migrations, keys, client, {len(phones)} operators)")
            client = prepare(env, phones, password)
            with sms_worker(env, Path(tmp) / "worker.log"), gunicorn(env, port, logfile) as process:
                log(f"{name}: gunicorn master {process.pid} on {base}")
                results = measure(
                    name, base, instance / "sms-outbox.jsonl", client, phones, password, options
                )
                memory = memory_report(process.pid)
        except Exception as error:  # reported with the gunicorn log; the next configuration runs
            failure = f"{type(error).__name__}: {error}"
            log(f"{name}: FAILED: {failure}")
        finally:
            if name == "postgres":
                with contextlib.suppress(Exception):
                    drop_postgres()
                with contextlib.suppress(Exception):
                    clear_redis()
            lines = error_lines(logfile)
    return results, memory, lines, failure


def measure(
    name: str,
    base: str,
    outbox: Path,
    client: Client,
    phones: list[str],
    password: str,
    options: Options,
) -> list[Result]:
    concurrency = options.concurrency
    log(f"{name}: logging in {len(phones)} browsers (SMS code + forced password change)")
    browsers: list[requests.Session] = []
    warmup: list[Minted] = []
    for phone in phones:
        browser, minted = log_in(
            base, outbox, client, phone=phone, password=password, new_password=new_password()
        )
        browsers.append(browser)
        warmup.append(minted)

    results = []
    n = options.requests
    log(f"{name}: minting {n} + {concurrency} codes sequentially through /authorize")
    mint_latencies: list[float] = []
    codes: list[Minted] = []
    mint_problems: list[str] = []
    started = time.perf_counter()
    deadline = time.monotonic() + options.budget
    for index in range(n + concurrency):
        if time.monotonic() > deadline:
            break
        one = time.perf_counter()
        try:
            codes.append(mint_code(base, browsers[index % len(browsers)], client))
        except (requests.RequestException, BenchError) as error:
            if len(mint_problems) < 5:
                mint_problems.append(str(error))
        mint_latencies.append(time.perf_counter() - one)
    results.append(
        Result(
            name,
            "authorize -> code (sequential mint)",
            n + concurrency,
            1,
            time.perf_counter() - started,
            mint_latencies,
            len(mint_latencies) - len(codes),
            n + concurrency - len(mint_latencies),
            mint_problems,
        )
    )
    warmup += codes[:concurrency]
    codes = codes[concurrency:]

    refresh_tokens: list[str] = []

    def rp_session(_index: int) -> requests.Session:
        return requests.Session()

    def redeem_call(rp: requests.Session, minted: Minted) -> str | None:
        problem, body = redeem(base, rp, client, minted)
        if problem is None:
            refresh_tokens.append(body["refresh_token"])
        return problem

    log(f"{name}: warm-up, {len(warmup)} redemptions")
    run_parallel(warmup, concurrency, rp_session, redeem_call, budget=options.budget)
    warm_tokens = list(refresh_tokens)
    refresh_tokens.clear()
    run_parallel(
        warm_tokens,
        concurrency,
        rp_session,
        lambda rp, token: refresh(base, rp, client, token),
        budget=options.budget,
    )

    log(f"{name}: 1. redeeming {len(codes)} codes with {concurrency} threads")
    wall, latencies, errors, skipped, problems = run_parallel(
        codes, concurrency, rp_session, redeem_call, budget=options.budget
    )
    results.append(
        Result(
            name,
            "1. code redemption (PKCE)",
            len(codes),
            concurrency,
            wall,
            latencies,
            errors,
            skipped,
            problems,
        )
    )

    tokens = refresh_tokens[:n]
    log(f"{name}: 2. refreshing {len(tokens)} refresh tokens with {concurrency} threads")
    wall, latencies, errors, skipped, problems = run_parallel(
        tokens,
        concurrency,
        rp_session,
        lambda rp, token: refresh(base, rp, client, token),
        budget=options.budget,
    )
    results.append(
        Result(
            name,
            "2. refresh (rotation)",
            len(tokens),
            concurrency,
            wall,
            latencies,
            errors,
            skipped,
            problems,
        )
    )

    def flow_state(index: int) -> tuple[requests.Session, requests.Session]:
        return browsers[index % len(browsers)], requests.Session()

    def flow_call(state: tuple[requests.Session, requests.Session], _item: int) -> str | None:
        browser, rp = state
        minted = mint_code(base, browser, client)
        problem, _body = redeem(base, rp, client, minted)
        return problem

    log(f"{name}: 3. {n} code flows (authorize + token) with {concurrency} threads")
    wall, latencies, errors, skipped, problems = run_parallel(
        list(range(n)), concurrency, flow_state, flow_call, budget=options.budget
    )
    results.append(
        Result(
            name,
            "3. code flow: authorize+token (logged in)",
            n,
            concurrency,
            wall,
            latencies,
            errors,
            skipped,
            problems,
        )
    )
    return results


# --- report ------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    header = (
        "configuration",
        "scenario",
        "requests",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
    )
    rows = [
        (
            r.config,
            r.scenario,
            str(r.requests) + (f" ({r.skipped} skipped)" if r.skipped else ""),
            str(r.concurrency),
            f"{r.rate:.1f}",
            f"{r.percentile_ms(0.50):.1f}",
            f"{r.percentile_ms(0.99):.1f}",
            str(r.errors),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 7}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return " | ".join(cells)

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (and browsers)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="one configuration only")
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds per scenario; requests left after it are skipped and reported",
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..100000 and --concurrency 1..64")
    options = Options(args.requests, args.concurrency, args.budget)
    configurations = [args.only] if args.only else ["sqlite", "postgres"]

    print(
        f"provider: gunicorn -w {GUNICORN_WORKERS} --threads {GUNICORN_THREADS} 'idp:create_app()' "
        f"on 127.0.0.1, {os.cpu_count()} CPUs shared with this client; "
        f"benchmark-only settings {BENCH_SETTINGS}",
        flush=True,
    )
    all_results: list[Result] = []
    memory: dict[str, str] = {}
    logs: dict[str, list[str]] = {}
    failures: dict[str, str] = {}
    for name in configurations:
        results, memory[name], logs[name], failure = bench_configuration(name, options)
        all_results += results
        if failure is not None:
            failures[name] = failure

    print()
    print(table(all_results))
    print()
    print(
        "1: codes minted beforehand, sequentially; each redeemed once (client_secret_basic, PKCE "
        "S256).\n"
        "2: the refresh tokens issued in 1, each used once; every response must carry a new "
        "refresh token.\n"
        f"3: one flow = GET /authorize with a logged-in session cookie (no login, no consent) + "
        f"POST /oauth/token; latency per flow, req/s = flows/s. The login (SMS code + forced "
        f"password change) was done once per simulated browser ({options.concurrency} operators) "
        "before measuring.\n"
        "Warm-up (not counted): the first code of each browser and one code per thread, redeemed "
        "and refreshed before 1."
    )
    print()
    for name, text in memory.items():
        print(f"peak RSS (VmHWM), {name}: {text}")
    for result in all_results:
        for sample in result.samples:
            print(f"error sample [{result.config} / {result.scenario}]: {sample}")
    for name, lines in logs.items():
        if lines:
            print(f"\ngunicorn log lines that look like errors ({name}):")
            print("\n".join(lines))
    for name, text in failures.items():
        print(f"\nconfiguration {name} FAILED: {text}")
    return 1 if failures or any(r.errors for r in all_results) else 0


if __name__ == "__main__":
    sys.exit(main())
