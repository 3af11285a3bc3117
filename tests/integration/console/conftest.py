"""Fixtures of the org admin console tests (操作员管理, 用户审核) and the public join pages.

Requests go through ``IsolatedClient`` (a fresh app context per request, as in production; see
tests/integration/auth/conftest.py), so tests read committed state in sessions of their own
(``helpers.count``/``helpers.fetch``).

Actors:
- ``admin``: the browser (``client``) holds the org admin session of the demo organisation,
  registered for the demo relying party (``helpers.cert_login`` writes the session a verified
  UKey login leaves);
- ``other_admin``: another browser with the admin session of a second registered organisation;
- operators are added through the console or with ``tests.conftest.make_operator``.

The real-name check is the sandbox (``instance/realname-sandbox.csv``); ``known`` adds the
pairs a carrier would confirm. A phone not in the file has no record: "unknown" (503).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import (
    DEMO_USCC,
    OTHER_ORG_NAME,
    OTHER_USCC,
    RegisteredClient,
    add_other_org,
    register_for,
)
from tests.integration.orgs.helpers import cert_login


@pytest.fixture
def home_org(org, rp: RegisteredClient):
    """The demo organisation (审计单位), registered for the demo relying party."""
    register_for(org, rp.client_id)
    return org


@pytest.fixture
def other_org(app: Flask, rp: RegisteredClient):
    return add_other_org(rp.client_id)


@pytest.fixture
def admin(client: FlaskClient, home_org) -> FlaskClient:
    """``client`` is logged in as the demo organisation's admin."""
    cert_login(client, uscc=DEMO_USCC, org_id=home_org.id)
    return client


@pytest.fixture
def other_admin(app: Flask, other_org) -> FlaskClient:
    """Another browser, logged in as the other organisation's admin."""
    browser = app.test_client()
    cert_login(browser, uscc=OTHER_USCC, org_name=OTHER_ORG_NAME, org_id=other_org.id)
    return browser


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A second, anonymous browser (an operator's or an applicant's)."""
    return app.test_client()
