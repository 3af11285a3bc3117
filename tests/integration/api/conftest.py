"""Fixtures of the management API tests (/api/v1/org/).

Actors, each with tokens a relying party got through the code flow (``helpers``):
- ``admin``: the demo organisation's org admin (real UKey login with the test PKI) at
  ``api_rp``, a client registered with the API scopes;
- ``other_admin``: the admin of a second organisation, registered for the same client;
- operators are added with ``tests.conftest.make_operator`` and log in with phone, password and
  SMS code.

The real-name check is the sandbox file; ``known`` adds the pairs a carrier would confirm (a
phone not in the file has no record: 503). Requests go through ``IsolatedClient``; tests read
committed state with ``tests.integration.console.helpers.count``/``fetch``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import OTHER_USCC, RegisteredClient, add_other_org, register, register_for
from tests.flows import REDIRECT_URI
from tests.integration.api.helpers import (
    API_SCOPE,
    Tokens,
    admin_tokens,
    code_flow,
    ukey_login,
)
from tests.pki import TestPki, shared_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return shared_pki()


@pytest.fixture
def settings_overrides(pki: TestPki, tmp_path: Path) -> dict[str, object]:
    return {"trust_dir": pki.write_trust_dir(tmp_path / "trust")}


@pytest.fixture
def api_rp(app: Flask) -> RegisteredClient:
    """A relying party registered for the management API scopes (as the demo RP is)."""
    return register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": API_SCOPE,
        },
    )


@pytest.fixture
def home_org(org, api_rp: RegisteredClient):
    """The demo organisation (审计单位, the PKI's USCC), registered for ``api_rp``."""
    register_for(org, api_rp.client_id)
    return org


@pytest.fixture
def other_org(app: Flask, api_rp: RegisteredClient):
    return add_other_org(api_rp.client_id)


@pytest.fixture
def admin_browser(app: Flask, pki: TestPki, home_org) -> FlaskClient:
    """A browser holding the demo organisation's admin login session (real UKey login), for
    the console pages and the code flow."""
    browser = app.test_client()
    ukey_login(browser, pki)
    return browser


@pytest.fixture
def admin(admin_browser: FlaskClient, api_rp: RegisteredClient) -> Tokens:
    """The demo organisation's admin tokens (all API scopes)."""
    body = code_flow(admin_browser, api_rp.client_id, api_rp.secret, scope=API_SCOPE)
    return Tokens(body["access_token"], body["refresh_token"])


@pytest.fixture
def other_admin(app: Flask, pki: TestPki, api_rp: RegisteredClient, other_org) -> Tokens:
    return admin_tokens(app.test_client(), pki, api_rp, uscc=OTHER_USCC)


@pytest.fixture
def api(client: FlaskClient) -> FlaskClient:
    """The relying party's back end calling the API (no cookies of anybody's)."""
    return client
