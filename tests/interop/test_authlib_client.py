"""The guide's Authlib (Flask) relying party (docs/relying-parties.md, ``funds_app.py``), run as
written against the provider: login, the claims it keeps, and the checks it makes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from tests.browser.conftest import LiveServer
from tests.interop.conftest import Provider, guide_block, log_in_on_provider_page

pytestmark = pytest.mark.interop


@pytest.fixture
def rp_server() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def guide_program() -> dict[str, Any]:
    """The module namespace of the guide's program, once ``funds_app`` has run it."""
    return {"__name__": "funds_app"}


@pytest.fixture
def funds_app(
    provider: Provider,
    rp_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    guide_program: dict[str, Any],
) -> Iterator[str]:
    """The guide's program, registered as ``funds-flask`` and served on localhost."""
    base = f"http://localhost:{rp_server.port}"
    registered = provider.register(
        {
            "client_id": "funds-flask",
            "client_name": "上海市房屋维修资金管理系统（Flask）",
            "redirect_uris": [f"{base}/callback"],
            "scope": "openid profile phone",
            "require_pkce": True,
        }
    )
    monkeypatch.setenv("OIDC_ISSUER", provider.url)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", registered.secret)
    monkeypatch.setenv("FUNDS_SECRET_KEY", secrets.token_hex(16))
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test provider is plain http
    program = compile(guide_block("python", "funds_app.py"), "funds_app.py", "exec")
    exec(program, guide_program)  # noqa: S102  (the guide's own text, run as written)
    app: Flask = guide_program["app"]
    rp_server.start(app)
    yield base


def test_the_guides_authlib_client_logs_in(funds_app: str, provider: Provider, outbox: Any):
    browser = requests.Session()
    assert browser.get(f"{funds_app}/").json() is None

    login_page = browser.get(f"{funds_app}/login")
    done = log_in_on_provider_page(browser, provider, login_page, outbox)

    assert done.status_code == 200, done.text[:500]
    assert done.url == f"{funds_app}/"
    user = done.json()
    assert user["name"] == "张三"
    assert user["role"] == "operator"
    assert user["org_type"] == "audit"
    assert user["org"]["uscc"] == "91310000MA1K000019"
    assert user["sid"]
    callback = next(r for r in done.history if r.url.startswith(f"{funds_app}/callback"))
    assert f"iss={requests.utils.quote(provider.url, safe='')}" in callback.url


def test_the_guides_callback_refuses_an_answer_without_our_iss(
    funds_app: str, provider: Provider, outbox: Any
):
    browser = requests.Session()
    login_page = browser.get(f"{funds_app}/login")
    log_in_on_provider_page(browser, provider, login_page, outbox)
    browser.get(f"{funds_app}/login")  # logged in at the provider: straight back with a code
    forged = browser.get(f"{funds_app}/callback", params={"code": "x", "state": "y"})

    assert forged.status_code == 400
    other = browser.get(
        f"{funds_app}/callback", params={"code": "x", "state": "y", "iss": "https://evil.example"}
    )
    assert other.status_code == 400


def test_authlib_passes_the_claims_parameter(
    funds_app: str, provider: Provider, outbox: Any, guide_program: dict[str, Any]
):
    """``claims=`` given to Authlib's authorization request (as the guide says) reaches the
    provider, which keeps it with the code: an essential acr the operator login meets."""
    from idp import db
    from idp.oidc.models import AuthorizationCode

    claims = {"id_token": {"acr": {"essential": True, "value": "urn:idp:acr:operator"}}}
    with guide_program["app"].test_request_context(base_url=funds_app):
        created = guide_program["oauth"].unified_login.create_authorization_url(
            f"{funds_app}/callback", claims=json.dumps(claims)
        )
    assert "claims=" in created["url"]
    browser = requests.Session()
    login_page = browser.get(f"{funds_app}/login")
    log_in_on_provider_page(browser, provider, login_page, outbox)

    answer = browser.get(created["url"], allow_redirects=False)

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"{funds_app}/callback?code=")
    kept = db.session().query(AuthorizationCode).order_by(AuthorizationCode.id.desc()).first()
    assert kept is not None
    assert kept.claims == {
        "id_token": {"acr": {"essential": True, "values": ["urn:idp:acr:operator"]}}
    }
