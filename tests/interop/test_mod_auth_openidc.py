"""Apache httpd with mod_auth_openidc 2.4 (Debian's package), configured with the guide's
block (docs/relying-parties.md), logs a person in at the provider and protects its pages."""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from idp.oidc import grants
from tests.conftest import missing
from tests.integration.oidc.helpers import audit_count
from tests.interop.conftest import (
    GUIDE_ISSUER,
    GUIDE_RP,
    Provider,
    csrf_of,
    guide_block,
    log_in_on_provider_page,
)
from tests.processes import stop

pytestmark = pytest.mark.interop

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
START_TIMEOUT = 10.0  # seconds; Apache starts in well under one
PAGE = "上海市房屋维修资金管理系统（Apache）"
HTTP_TIMEOUT = 10  # seconds; a guard against a hung server, every answer here is local


@pytest.fixture(scope="session")
def apache_binary() -> str:
    if not Path(APACHE).exists() or not (MODULES / "mod_auth_openidc.so").exists():
        missing(
            "Apache httpd with mod_auth_openidc is not installed "
            "(apt-get install apache2 libapache2-mod-auth-openidc)"
        )
    return APACHE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Apache:
    url: str
    client_id: str
    error_log: Path


def server_config(root: Path, port: int, oidc: str, extra: str) -> str:
    """The guide's block inside a minimal server of its own (no system configuration)."""
    modules = [
        ("mpm_event_module", "mod_mpm_event.so"),
        ("authn_core_module", "mod_authn_core.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("authz_user_module", "mod_authz_user.so"),
        ("mime_module", "mod_mime.so"),
        ("auth_openidc_module", "mod_auth_openidc.so"),
    ]
    loads = "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in modules)
    run_as = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    return f"""ServerRoot {root}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn auth_openidc:debug
{loads}
{run_as}TypesConfig /etc/mime.types
AddDefaultCharset utf-8
DocumentRoot {root}/htdocs
<Directory />
    AllowOverride None
</Directory>
{oidc}
{extra}
"""


@pytest.fixture
def apache(
    apache_binary: str, provider: Provider, request: pytest.FixtureRequest
) -> Iterator[Apache]:
    port = free_port()
    base = f"http://localhost:{port}"
    registration = guide_block("json", '"funds-apache"').replace(GUIDE_RP, base)
    registered = provider.register(json.loads(registration))
    # Apache's workers run as nobody when the tests run as root: a directory they can read
    # (pytest's own temporary directories are private to root).
    root = Path(tempfile.mkdtemp(prefix="idp-apache-"))
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    root.chmod(0o755)
    (root / "htdocs" / "funds").mkdir(parents=True)
    (root / "htdocs" / "funds" / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "htdocs" / "index.html").write_text("public", encoding="utf-8")
    oidc = guide_block("apache", "funds-oidc.conf")
    oidc = oidc.replace(GUIDE_ISSUER, provider.url).replace(GUIDE_RP, base)
    extra = getattr(request, "param", "")
    (root / "httpd.conf").write_text(
        server_config(root, port, oidc, "OIDCInfoHook id_token userinfo access_token\n" + extra),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "OIDC_CLIENT_SECRET": registered.secret,
        "OIDC_CRYPTO_PASSPHRASE": secrets.token_urlsafe(24),
    }
    process = subprocess.Popen(
        [apache_binary, "-f", str(root / "httpd.conf"), "-DFOREGROUND"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(process, port, root / "error.log")
        yield Apache(url=base, client_id=registered.client_id, error_log=root / "error.log")
    finally:
        stop(process, grace=10)


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            errors = log.read_text() if log.exists() else ""
            raise AssertionError(f"apache exited with {process.returncode}: {output}{errors}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling while the process starts, not a fixed wait
    raise AssertionError("apache did not listen in time")


def log_in(browser: requests.Session, apache: Apache, provider: Provider, outbox: Any) -> None:
    login_page = browser.get(f"{apache.url}/funds/index.html")
    done = log_in_on_provider_page(browser, provider, login_page, outbox)
    assert done.status_code == 200, (
        done.url,
        done.text[:500],
        apache.error_log.read_text()[-3000:],
    )
    assert done.url == f"{apache.url}/funds/index.html"
    assert done.text == PAGE


def session_info(browser: requests.Session, apache: Apache) -> dict[str, Any]:
    """What the module holds for this browser (``OIDCInfoHook``, added by the test)."""
    info = browser.get(f"{apache.url}/funds/oidc-callback", params={"info": "json"})
    assert info.status_code == 200, info.text
    found: dict[str, Any] = info.json()
    return found


def provider_logout(browser: requests.Session, provider: Provider) -> None:
    page = browser.get(f"{provider.url}/logout")
    token = csrf_of(page.text)
    assert browser.post(f"{provider.url}/logout", data={"csrf_token": token}).status_code == 200


def test_a_login_through_mod_auth_openidc(apache: Apache, provider: Provider, outbox: Any) -> None:
    browser = requests.Session()
    assert browser.get(f"{apache.url}/index.html").text == "public"
    log_in(browser, apache, provider, outbox)

    info = session_info(browser, apache)
    claims, userinfo = info["id_token"], info["userinfo"]
    assert claims["iss"] == provider.url
    assert claims["aud"] == apache.client_id
    assert claims["role"] == "operator"
    assert claims["org_type"] == "audit"
    assert claims["acr"] == "urn:idp:acr:operator"
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["name"] == "张三"


def test_with_the_provider_session_live_a_new_module_session_needs_no_page(
    apache: Apache, provider: Provider, outbox: Any
) -> None:
    """The guide's answer to prompt=none: a plain authorization request of a browser that is
    logged in at the provider comes straight back with a code, no page shown."""
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    browser.cookies.clear(domain="localhost.local")  # the module's session ends (timeout)
    for cookie in list(browser.cookies):
        if cookie.name.startswith("mod_auth_openidc"):
            browser.cookies.clear(cookie.domain, cookie.path, cookie.name)

    again = browser.get(f"{apache.url}/funds/index.html")

    assert again.status_code == 200
    assert again.text == PAGE
    assert [r.url.split("?")[0] for r in again.history][1:3] == [
        f"{provider.url}/authorize",
        f"{apache.url}/funds/oidc-callback",
    ]


SILENT = '<Location /funds/silent/>\n    OIDCPathAuthRequestParams "prompt=none"\n</Location>\n'


@pytest.mark.parametrize("apache", [SILENT], indirect=True)
def test_prompt_none_errors_carry_iss_which_the_module_takes_for_a_new_login(
    apache: Apache, provider: Provider
) -> None:
    """mod_auth_openidc 2.4.12 reads a redirect-URI request with ``iss`` as the answer of its
    own discovery page (a third-party-initiated login) before it looks for ``error``: the
    provider's ``login_required`` (RFC 9207: every authorization response has ``iss``) ends on
    the module's "Invalid Request" page (or, with OIDCDefaultURL, a new login there), never
    in its own prompt=none error handling. The guide says not to use prompt=none."""
    browser = requests.Session()

    answer = browser.get(f"{apache.url}/funds/silent/page.html")

    callback = answer.history[-1].headers["Location"]
    assert callback.startswith(f"{apache.url}/funds/oidc-callback?error=login_required&")
    assert "&iss=" in callback
    assert "Invalid Request" in answer.text
    assert "oidc_handle_discovery_response" in apache.error_log.read_text()


# The guide's refresh setting, with the provider's 600-second access tokens brought forward so
# that the refresh is due one second after each token is issued.
REFRESH_NOW = "OIDCRefreshAccessTokenBeforeExpiry 599 logout_on_error\n"


@pytest.mark.parametrize("apache", [REFRESH_NOW], indirect=True)
def test_a_revoked_login_ends_at_the_modules_next_refresh(
    apache: Apache, provider: Provider, outbox: Any
) -> None:
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    provider_logout(browser, provider)  # the provider revokes the session's tokens
    time.sleep(2.1)  # until the refresh is due (whole seconds, rounded either way)

    ended = browser.get(f"{apache.url}/funds/index.html", allow_redirects=False)

    assert ended.status_code == 302
    assert ended.headers["Location"] == f"{apache.url}/"  # OIDCDefaultLoggedOutURL
    again = browser.get(f"{apache.url}/funds/index.html", allow_redirects=False)
    assert again.headers["Location"].startswith(f"{provider.url}/authorize?")


@pytest.mark.parametrize("apache", ["OIDCUserInfoRefreshInterval 1\n"], indirect=True)
def test_a_failing_userinfo_refresh_alone_does_not_end_the_modules_session(
    apache: Apache, provider: Provider, outbox: Any
) -> None:
    """mod_auth_openidc 2.4.12: the userinfo refresh that the revoked token fails (401) keeps
    the session and its old claims (2.4.14 adds ``logout_on_error`` to this directive), so the
    guide relies on the refresh setting for revocation."""
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    provider_logout(browser, provider)
    time.sleep(2.1)  # until the userinfo refresh is due (whole seconds, rounded either way)

    still = browser.get(f"{apache.url}/funds/index.html", allow_redirects=False)

    assert still.status_code == 200
    assert still.text == PAGE
    assert "userinfo" in apache.error_log.read_text()


def hold_first_refresh_until_another_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    another = threading.Event()
    arrivals = itertools.count()
    authenticate = grants.RefreshTokenGrant.authenticate_refresh_token

    def held(grant: grants.RefreshTokenGrant, refresh_token: str) -> Any:
        if next(arrivals) == 0:
            another.wait(timeout=5)
        else:
            another.set()
        return authenticate(grant, refresh_token)

    monkeypatch.setattr(grants.RefreshTokenGrant, "authenticate_refresh_token", held)


@pytest.mark.parametrize("apache", [REFRESH_NOW], indirect=True)
def test_parallel_refreshes_of_one_session_keep_it(
    apache: Apache, provider: Provider, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apache serves a page's requests in parallel, and each finds the refresh due: they
    present the same refresh token. The client's reuse interval (the guide's registration)
    gives them all the same successor instead of revoking the family.

    The first refresh to arrive waits (at most 5 s) for a second one, so that they overlap
    however fast the provider answers and however busy the machine is."""
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    hold_first_refresh_until_another_arrives(monkeypatch)
    time.sleep(2.1)  # until the refresh is due (whole seconds, rounded either way)
    cookies = {c.name: c.value for c in browser.cookies if c.name.startswith("mod_auth_openidc")}
    url = f"{apache.url}/funds/index.html"
    with ThreadPoolExecutor(max_workers=6) as pool:
        pages = list(
            pool.map(
                lambda _n: requests.get(
                    url, cookies=cookies, allow_redirects=False, timeout=HTTP_TIMEOUT
                ),
                range(6),
            )
        )

    assert [p.status_code for p in pages] == [200] * 6
    assert audit_count("oidc.refresh_token_reused_within_interval") >= 1
    assert audit_count("oidc.refresh_token_reused") == 0
    assert (
        requests.get(url, cookies=cookies, allow_redirects=False, timeout=HTTP_TIMEOUT).text == PAGE
    )


def test_rp_initiated_logout_through_the_module(
    apache: Apache, provider: Provider, outbox: Any
) -> None:
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    sid = session_info(browser, apache)["id_token"]["sid"]
    logout = f"{apache.url}/funds/oidc-callback?logout=" + quote(f"{apache.url}/", safe="")

    to_provider = browser.get(logout, allow_redirects=False)

    assert to_provider.headers["Location"].startswith(f"{provider.url}/oauth/logout?id_token_hint=")
    logged_out = browser.get(to_provider.headers["Location"])
    assert logged_out.status_code == 200
    assert "您已安全退出" in logged_out.text
    assert f'href="{apache.url}/"' in logged_out.text  # continues to the post-logout URI
    # The module was used in the session, so the page frames it too (harmless: its own
    # session is over already).
    assert frames(logged_out.text) == [
        f"{apache.url}/funds/oidc-callback?logout=get&"
        + urlencode({"iss": provider.url, "sid": sid})
    ]
    again = browser.get(f"{apache.url}/funds/index.html")
    assert again.url.startswith(f"{provider.url}/login?interaction=")  # both sessions ended


def test_front_channel_logout_ends_the_modules_session(
    apache: Apache, provider: Provider, outbox: Any
) -> None:
    """The provider's logged-out page frames the module's ``?logout=get`` with ``iss`` and
    ``sid``; the module ends the session in its cache, so the session cookie the browser still
    holds (one that ignored the cleared cookie, or sent none to the frame) is worthless too.
    2.4.12 answers with ``X-Frame-Options: DENY`` (``OIDCLogoutXFrameOptions`` made no
    difference here): the hidden frame stays blank, the logout has happened."""
    browser = requests.Session()
    log_in(browser, apache, provider, outbox)
    sid = session_info(browser, apache)["id_token"]["sid"]
    held = {c.name: c.value for c in browser.cookies if c.name.startswith("mod_auth_openidc")}

    page = browser.get(f"{provider.url}/logout")
    logged_out = browser.post(f"{provider.url}/logout", data={"csrf_token": csrf_of(page.text)})
    [frame] = frames(logged_out.text)
    assert frame == (
        f"{apache.url}/funds/oidc-callback?logout=get&"
        + urlencode({"iss": provider.url, "sid": sid})
    )
    loaded = browser.get(frame)  # what the browser does with the provider's iframe

    assert loaded.status_code == 200
    assert loaded.headers["X-Frame-Options"] == "DENY"
    stale = requests.get(
        f"{apache.url}/funds/index.html", cookies=held, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    assert stale.status_code == 302
    assert stale.headers["Location"].startswith(f"{provider.url}/authorize?")


def frames(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<iframe[^>]*src="([^"]+)"', page)]
