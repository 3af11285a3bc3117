"""Fixtures of the registration wizard tests (journey 1).

Requests go through ``IsolatedClient`` (a fresh app context per request, as in production; see
tests/integration/auth/conftest.py), so the test reads committed state in sessions of its own
(``helpers.count``/``helpers.fetch``).

The certificate login is stood in for by ``helpers.cert_login``: it writes the login session
that a verified UKey login leaves (kind ``org_admin``, the certificate's facts, ``org_id`` None
until the org is registered) into the store and hands its id to the browser as the
``idp_session`` cookie. The certificate checks themselves are tested with the certificate login.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import RegisteredClient, register
from tests.integration.orgs.helpers import cert_login


@pytest.fixture
def fund(rp: RegisteredClient) -> RegisteredClient:
    """上海市房屋维修资金管理系统, allowing every third-party org type (the default)."""
    return rp


@pytest.fixture
def other_rp(app: Flask) -> RegisteredClient:
    """A second relying party that allows only audit firms."""
    return register(
        app,
        {
            "client_id": "other-system",
            "client_name": "上海市物业管理监管与服务平台",
            "redirect_uris": ["https://other.example/callback"],
            "org_types": ["audit"],
        },
    )


@pytest.fixture
def admin(client: FlaskClient, fund: RegisteredClient) -> str:
    """The browser holds the login session of a certificate login of an unregistered org;
    returns the session id."""
    return cert_login(client).id
