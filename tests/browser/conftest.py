"""Browser journeys: the provider and the demo relying party on real HTTP servers, Chromium on top.

The provider listens on ``127.0.0.1`` and the relying party on ``localhost`` (same machine,
different host names), so the browser keeps their cookies apart like two real sites. Chromium is
Debian's package launched as described in docs/testing.md; ``playwright install``
is never needed.

Certificate (UKey) journeys add the real agent (``python -m clients.ukey_agent``) in a
subprocess over a SoftHSM2 token of the test's own: the subprocess gets its own
``SOFTHSM2_CONF``, so no PyKCS11 state is shared with the test process (tests/ukey_token.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.config import Settings
from tests.conftest import DEMO_USCC, missing
from tests.flows import PASSWORD
from tests.pki import Leaf, TestPki, shared_pki
from tests.processes import stop
from tests.ukey_token import make_soft_token, softhsm_module

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Playwright's own timeouts: every step here is local and takes well under a second.
STEP_TIMEOUT_MS = 5_000
ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "test-results"

RP_CLIENT_ID = "maintenance-fund"
RP_CLIENT_NAME = "上海市房屋维修资金管理系统"
ORG_NAME = "上海示例审计事务所有限公司"
OPERATOR_NAME = "李四"
OPERATOR_PHONE = "13900139000"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# --- Chromium ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("IDP_TEST_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        missing(
            "Chromium not installed (apt-get install chromium fonts-wqy-microhei, "
            "or set IDP_TEST_CHROMIUM to its path)"
        )
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    """One headless Chromium per test session (each test gets its own context)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context: no cookies from other tests."""
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP_TIMEOUT_MS)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def csp_violations(page: Any) -> list[str]:
    """Content-Security-Policy violations Chromium reports on the page's console."""
    found: list[str] = []

    def collect(message: Any) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text.strip())

    page.on("console", collect)
    return found


@pytest.fixture(scope="session")
def results_dir() -> Path:
    """Screenshots go to test-results/ (git-ignored)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    return RESULTS_DIR


# --- live servers -----------------------------------------------------------------------------


class LiveServer:
    """A threaded werkzeug server on an ephemeral loopback port.

    The socket is bound first (port 0, so no other process can take the port between picking and
    binding); the WSGI app is attached afterwards, once its settings can name the port.
    """

    def __init__(self) -> None:
        self._app: Wsgi | None = None
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self._app is not None, "live server started without an app"
        return self._app(environ, start_response)

    def start(self, app: Wsgi) -> None:
        self._app = app
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def provider_server() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def rp_server() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(provider_server: LiveServer) -> dict[str, object]:
    """The ``settings`` fixture of tests/conftest.py, with the live provider's issuer."""
    return {"issuer": f"http://127.0.0.1:{provider_server.port}"}


@dataclass(frozen=True)
class LiveProvider:
    url: str
    app: Flask
    client_id: str
    client_secret: str
    rp_url: str
    org_name: str
    operator_name: str
    operator_phone: str
    operator_password: str


@pytest.fixture
def seed_operator() -> bool:
    """Whether ``live_provider`` seeds the demo organisation with a first-login operator.
    Modules whose journeys start from an unknown organisation override it with False."""
    return True


@pytest.fixture
def live_provider(
    settings: Settings, provider_server: LiveServer, rp_server: LiveServer, seed_operator: bool
) -> Iterator[LiveProvider]:
    """The provider with the demo RP registered (as ``idp-dev setup`` does) and, unless
    ``seed_operator`` says otherwise, one new operator who must change the initial password at
    the first login."""
    from idp import db
    from idp.oidc.clients import register_client
    from idp.orgs.registration import add_org
    from tests.conftest import enrol

    rp_url = f"http://localhost:{rp_server.port}"
    app = create_app(settings)
    with app.app_context():
        _client, secret = register_client(
            db.session(),
            {
                "client_id": RP_CLIENT_ID,
                "client_name": RP_CLIENT_NAME,
                "redirect_uris": [f"{rp_url}/callback"],
                "post_logout_redirect_uris": [f"{rp_url}/logged-out"],
                "initiate_login_uri": f"{rp_url}/login",
                "client_uri": f"{rp_url}/",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid profile phone org.operators org.reviews",
                "require_pkce": True,
                # As idp-dev setup registers it: every third-party org type may enter.
                "org_types": ["audit", "cost_consulting", "bookkeeping"],
            },
        )
        if seed_operator:
            org = add_org(db.session(), uscc=DEMO_USCC, name=ORG_NAME, org_type="audit")
            account = enrol(
                db.session(), org, name=OPERATOR_NAME, phone=OPERATOR_PHONE, password=PASSWORD
            )
            assert account.must_change_password
        db.session().commit()
    assert secret is not None
    provider_server.start(app)
    try:
        yield LiveProvider(
            url=settings.issuer,
            app=app,
            client_id=RP_CLIENT_ID,
            client_secret=secret,
            rp_url=rp_url,
            org_name=ORG_NAME,
            operator_name=OPERATOR_NAME,
            operator_phone=OPERATOR_PHONE,
            operator_password=PASSWORD,
        )
    finally:
        provider_server.stop()
        db.dispose(app)


@pytest.fixture
def live_rp(
    live_provider: LiveProvider, rp_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The demo relying party, configured for the live provider; returns its base URL."""
    from clients.maintenance_fund import Config
    from clients.maintenance_fund import create_app as create_rp

    # create_app sets AUTHLIB_INSECURE_TRANSPORT process-wide for an http issuer; registering it
    # with monkeypatch first puts the environment back after the test.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    config = Config(
        issuer=live_provider.url,
        client_id=live_provider.client_id,
        client_secret=live_provider.client_secret,
        base_url=live_provider.rp_url,
    )
    rp_server.start(create_rp(config))
    return live_provider.rp_url


# --- UKey: test PKI, SoftHSM2 token, the agent in a subprocess --------------------------------

UKEY_PIN = "123456"
UKEY_SO_PIN = "12345678"
AGENT_START_TIMEOUT = 10.0  # seconds; the agent starts in well under one
AGENT_LISTENING = re.compile(r"UKey agent on (http://127\.0\.0\.1:\d+) ")


@pytest.fixture(scope="session")
def ukey_pki() -> TestPki:
    """The test PKI of this process (tests/pki.py), with its CRL/OCSP server on 127.0.0.1."""
    return shared_pki()


@pytest.fixture(scope="session")
def softhsm() -> str:
    """The SoftHSM2 PKCS#11 module, or a skip (a failure under IDP_TEST_REQUIRE_ALL=1)."""
    path = softhsm_module()
    if path is None:
        missing("SoftHSM2 is not installed (apt-get install softhsm2): no libsofthsm2.so")
    assert path is not None
    return path


@pytest.fixture
def ukey_leaf() -> str:
    """Which leaf of the test PKI the UKey holds; a test may parametrize it (e.g. "good_ec")."""
    return "good_rsa"


@pytest.fixture
def ukey_token(tmp_path: Path, softhsm: str, ukey_pki: TestPki, ukey_leaf: str) -> Path:
    """A fresh SoftHSM2 token ("UKey") with the leaf's key, certificate and issuing CA chain;
    returns the ``softhsm2.conf`` to give the agent as ``SOFTHSM2_CONF``."""
    leaf = ukey_pki[ukey_leaf]
    return make_soft_token(
        tmp_path / "softhsm",
        label="ukey-1",
        pin=UKEY_PIN,
        so_pin=UKEY_SO_PIN,
        key=leaf.key,
        cert_der=leaf.der,
        extra_certs=leaf.chain,
    )


@dataclass(frozen=True)
class UkeyAgent:
    url: str
    origin: str  # the one page origin it serves (the live provider's)
    pin: str
    leaf: Leaf
    log: Path


@pytest.fixture
def ukey_agent(
    provider_server: LiveServer,
    ukey_token: Path,
    softhsm: str,
    ukey_pki: TestPki,
    ukey_leaf: str,
    tmp_path: Path,
) -> Iterator[UkeyAgent]:
    """``python -m clients.ukey_agent`` for the live provider's origin, on a port the kernel
    picks (read back from its log line, so no port is guessed), over this test's token."""
    origin = f"http://127.0.0.1:{provider_server.port}"
    log = tmp_path / "ukey-agent.log"
    command = [sys.executable, "-m", "clients.ukey_agent", "--allow-origin", origin]
    command += ["--port", "0", "--module", softhsm]
    env = {**os.environ, "SOFTHSM2_CONF": str(ukey_token), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        url = _wait_for_agent(process, log, origin)
        yield UkeyAgent(url=url, origin=origin, pin=UKEY_PIN, leaf=ukey_pki[ukey_leaf], log=log)
    finally:
        stop(process, grace=5)  # SIGTERM first: the agent finalises the token library


def _wait_for_agent(process: subprocess.Popen[bytes], log: Path, origin: str) -> str:
    """The agent's URL once ``GET /status`` answers with the token's certificate."""
    deadline = time.monotonic() + AGENT_START_TIMEOUT
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the UKey agent exited with {process.returncode}: {log.read_text()}"
            )
        if url is None and (found := AGENT_LISTENING.search(log.read_text())):
            url = found.group(1)
        if url is not None:
            try:
                status = requests.get(f"{url}/status", headers={"Origin": origin}, timeout=2)
            except requests.ConnectionError:
                status = None
            if status is not None and status.status_code == 200:
                body = status.json()
                assert body["certificate"] is not None, body
                return url
        time.sleep(0.02)  # polling interval while the subprocess starts, not a fixed wait
    raise AssertionError(
        f"the UKey agent did not answer within {AGENT_START_TIMEOUT} s: {log.read_text()}"
    )
